"""JSON API of issues under /api/v1: intake, search, detail, transitions, suggestions, bulk assignment.

The actor of every change is the caller: the logged-in user or the API token's name. A new issue goes
through :meth:`gridmap.issues.intake.Intake.submit`, the one intake path; this module parses and serialises.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, jsonify, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from gridmap.core import Gridmap
from gridmap.errors import Forbidden, InvalidInput, NotFound
from gridmap.issues.dispatch import suggest_assignees
from gridmap.issues.idempotency import RetryKey
from gridmap.issues.intake import parse_datetime
from gridmap.issues.params import parse_integer
from gridmap.issues.query import MAX_LIMIT, IssueQuery, issue_as_dict, transitions_as_dicts
from gridmap.issues.states import ACTION_PARAMS, ACTIONS, SOURCES
from gridmap.issues.workflow import apply_action, apply_to_issues, load_issue
from gridmap.storage.models import Issue
from gridmap.web import MAX_ID
from gridmap.web.auth import principal, requires, scope
from gridmap.web.parsing import json_body

blueprint = Blueprint("issues_api", __name__)

NEW_ISSUE_FIELDS = ("category", "description", "lon", "lat", "crs", "address", "source", "reporter", "photos",
                    "reported_at", "external_id", "client_request_id")
TRANSITION_FIELDS = ("action", "comment", "at", *dict.fromkeys(p for params in ACTION_PARAMS.values() for p in params))
ASSIGN_FIELDS = ("ids", "department", "assignee", "comment", "at")


def core() -> Gridmap:
    return current_app.extensions["gridmap"]


# --- request parsing -------------------------------------------------------------------------


def _string(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidInput(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string, got {_json_type(value)}")
    if required and not value.strip():
        raise InvalidInput(f"{name} is empty")
    return value


def _number(body: dict[str, Any], name: str) -> float:
    value = body.get(name)
    if value is None:
        raise InvalidInput(f"{name} is required: a number (WGS84 degrees unless crs says otherwise)")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{name} must be a number, got {_json_type(value)}")
    try:
        number = float(value)  # OverflowError: a JSON integer of hundreds of digits
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):  # Python's JSON reader also takes NaN and Infinity
        raise InvalidInput(f"{name} must be a finite number of degrees (or of the crs's units), got {str(value)[:20]}")
    return number


def _integer(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be a whole number, got {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array",
             dict: "an object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _moment(body: dict[str, Any], name: str) -> datetime | None:
    text = _string(body, name)
    if text is None:
        return None
    try:
        return parse_datetime(text, ZoneInfo(core().timezone))
    except ValueError as exc:
        raise InvalidInput(f"{name} {exc}") from None


def _actor() -> str:
    """Who acts: the logged-in user or the token's name (never a name the client types)."""
    return principal().label


# --- endpoints -------------------------------------------------------------------------------


def _issue_json(issue: Issue, *, detail: bool = False) -> dict[str, Any]:
    gm = core()
    return issue_as_dict(issue, rules=gm.workflow_rules, timezone_name=gm.timezone, detail=detail,
                         personal=principal().sees_personal_data)


def _load_full(session, issue_id: int) -> Issue:
    issue = session.scalar(
        select(Issue).where(Issue.id == issue_id).options(selectinload(Issue.transitions),
                                                          selectinload(Issue.escalations))
    )
    if issue is None or not scope().covers_issue(issue):
        raise NotFound(f"no issue has the id {issue_id} in your areas")
    return issue


def _check_may_take(action: str) -> None:
    if not principal().may_take(action):
        raise Forbidden(f"role {principal().role} may not {action} issues")


@blueprint.post("/issues")
@requires("issues:create")
def create_issue():
    """Report a new issue: locate it, stamp its area codes, route it, flag a likely duplicate."""
    gm = core()
    body = json_body(NEW_ISSUE_FIELDS)
    reporter = body.get("reporter") or {}
    if not isinstance(reporter, dict) or set(reporter) - {"name", "phone"}:
        raise InvalidInput("reporter must be an object with name and phone (both optional)")
    photos = body.get("photos") or []
    if not isinstance(photos, list) or not all(isinstance(p, str) and p.strip() for p in photos):
        raise InvalidInput("photos must be an array of URLs (strings)")
    crs = body.get("crs")
    if crs is not None and (isinstance(crs, bool) or not isinstance(crs, (str, int))):
        raise InvalidInput(f"crs must be an EPSG code (4326, 'EPSG:4490'), 'gcj02' or 'bd09', got {_json_type(crs)}")
    record = {
        "category": _string(body, "category", required=True),
        "description": _string(body, "description", required=True),
        "lon": _number(body, "lon"),
        "lat": _number(body, "lat"),
        "address": _string(body, "address"),
        "source": _string(body, "source"),  # the intake checks it (default web)
        "reporter_name": _string(reporter, "name"),
        "reporter_phone": _string(reporter, "phone"),
        "photos": photos,
        "external_id": _string(body, "external_id"),
        "reported_at": _moment(body, "reported_at") or datetime.now(UTC),
    }
    retry = RetryKey.of(principal().label, request.headers.get("Idempotency-Key") or body.get("client_request_id"),
                        {k: v for k, v in body.items() if k != "client_request_id"})
    done = gm.intake.submit(gm.db, record, access=scope(), actor=_actor(), crs=None if crs is None else str(crs),
                            retry=retry)
    issue, replayed = done.issue, done.replayed
    answer = _issue_json(issue, detail=True)
    answer["duplicate_candidate"] = None
    if done.duplicate is not None:
        answer["duplicate_candidate"] = {
            "id": done.duplicate.id,
            "status": done.duplicate.status,
            "reported_at": done.duplicate.reported_at.astimezone(ZoneInfo(gm.timezone)).isoformat(),
            "distance_m": round(done.duplicate_distance_m or 0.0, 1),
        }
    response = jsonify(answer)
    response.status_code = 200 if replayed else 201
    response.headers["Location"] = url_for("issues_api.get_issue", issue_id=issue.id)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@blueprint.get("/issues")
@requires("issues:read")
def list_issues():
    """Issues matching the filters, newest first, one page at a time, with the total."""
    gm = core()
    query = IssueQuery.parse(request.args, categories=gm.categories, timezone_name=gm.timezone, access=scope())
    with gm.db.sessions() as session:
        total, issues, next_cursor = query.page(session)
        items = [_issue_json(issue) for issue in issues]
    body = {"total": total, "limit": query.limit, "offset": query.offset, "next_cursor": next_cursor, "next": None,
            "issues": items}
    if next_cursor is not None:
        args = {key: value for key, value in request.args.items() if key not in ("cursor", "offset")}
        body["next"] = url_for("issues_api.list_issues", **args, cursor=next_cursor)
    return jsonify(body)


@blueprint.get("/issues/<id:issue_id>")
@requires("issues:read")
def get_issue(issue_id: int):
    """One issue with its reporter, transition history and escalations."""
    with core().db.sessions() as session:
        return jsonify(_issue_json(_load_full(session, issue_id), detail=True))


@blueprint.post("/issues/<id:issue_id>/transitions")
@requires("issues:act")
def post_transition(issue_id: int):
    """Apply a workflow action; 409 naming the allowed actions when the status does not allow it."""
    gm = core()
    body = json_body(TRANSITION_FIELDS)
    action = _string(body, "action", required=True).strip()
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
    _check_may_take(action)
    params = {name: value for name, value in body.items() if name not in ("action", "comment", "at")}
    with gm.db.session() as session:
        issue = load_issue(session, issue_id)
        if not scope().covers_issue(issue):
            raise NotFound(f"no issue has the id {issue_id} in your areas")
        transition = apply_action(session, issue, action, actor=_actor(), comment=_string(body, "comment"),
                                  at=_moment(body, "at"), rules=gm.workflow_rules, **params)
        answer = {"transition": transitions_as_dicts([transition], gm.timezone)[0], "issue": _issue_json(issue)}
    response = jsonify(answer)
    response.status_code = 201
    return response


@blueprint.get("/issues/<id:issue_id>/suggestions")
@requires("issues:assign")
def get_suggestions(issue_id: int):
    """Who to dispatch the issue to, best first, with the figures of the ranking."""
    gm = core()
    limit = parse_integer(request.args.get("limit"), "limit", 10, 1, MAX_LIMIT)
    with gm.db.sessions() as session:
        issue = load_issue(session, issue_id, for_update=False)
        if not scope().covers_issue(issue):
            raise NotFound(f"no issue has the id {issue_id} in your areas")
        suggestions = suggest_assignees(session, issue, layers=gm.areas.layers, routing=gm.routing,
                                        workload_m=gm.settings["suggestion_workload_m"], limit=limit)
    return jsonify({"issue": issue_id, "suggestions": [s.as_dict() for s in suggestions]})


@blueprint.post("/issues/assign")
@requires("issues:assign")
def assign_issues():
    """Dispatch several registered issues to one department and/or assignee, all or nothing."""
    gm = core()
    body = json_body(ASSIGN_FIELDS)
    ids = body.get("ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise InvalidInput("ids must be a non-empty array of issue ids (whole numbers)")
    if not all(1 <= i <= MAX_ID for i in ids):
        raise InvalidInput(f"issue ids run from 1 to {MAX_ID}")
    with gm.db.session() as session:
        outside = [issue.id for issue in session.scalars(select(Issue).where(Issue.id.in_(ids)))
                   if not scope().covers_issue(issue)]
        if outside:
            raise NotFound(f"no issue has the id {outside[0]} in your areas; nothing was assigned")
        transitions = apply_to_issues(session, ids, "dispatch", actor=_actor(), comment=_string(body, "comment"),
                                      at=_moment(body, "at"), rules=gm.workflow_rules,
                                      department=_string(body, "department"), assignee=_string(body, "assignee"))
        records = transitions_as_dicts(transitions, gm.timezone)
    return jsonify({"assigned": len(records), "ids": ids, "transitions": records})


# --- OpenAPI ---------------------------------------------------------------------------------

_ERRORS = {
    "400": {"$ref": "#/components/responses/BadRequest"},
    "404": {"$ref": "#/components/responses/NotFound"},
}
_ID = {"name": "issue_id", "in": "path", "required": True, "schema": {"type": "integer"}}


def _json_body(schema_name: str) -> dict[str, Any]:
    """A required JSON request body of one of the document's schemas."""
    schema = {"$ref": f"#/components/schemas/{schema_name}"}
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


#: Paths of this module for the OpenAPI document (keys relative to /api/v1); see gridmap.web.openapi.
OPENAPI_PATHS: dict[str, Any] = {
    "/issues": {
        "post": {
            "summary": "Report an issue (受理)",
            "description": "Locates the point, stamps cell/community/street/district codes, routes it to a department, "
                           "sets the deadline and flags a likely duplicate (same category within 50 m and 24 h).",
            "tags": ["issues"],
            "requestBody": {"required": True,
                            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/NewIssue"}}}},
            "responses": {
                "201": {"description": "Created",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CreatedIssue"}}}},
                "400": {"$ref": "#/components/responses/BadRequest"},
                "422": {"$ref": "#/components/responses/OutsideCells"},
            },
        },
        "get": {
            "summary": "Search issues",
            "tags": ["issues"],
            "parameters": [
                _query("area", "Area code of any level: 6 (district), 9 (street), 12 (community) or 15 (cell) digits."),
                _query("status", "Statuses, comma-separated, or open / closed."),
                _query("category", "Category item (E0505) or class (E05) code."),
                _query("source", "Sources, comma-separated: " + ", ".join(SOURCES) + "."),
                _query("bbox", "west,south,east,north in WGS84 lon/lat."),
                _query("from", "First local day reported (YYYY-MM-DD).", {"type": "string", "format": "date"}),
                _query("to", "Last local day reported, included.", {"type": "string", "format": "date"}),
                _query("overdue", "true: open, clock running and past the deadline; false: all others.",
                       {"type": "boolean"}),
                _query("department", "Exact department name."),
                _query("assignee", "Exact assignee name."),
                _query("sort", "-reported_at (default), reported_at, deadline, -deadline, id, -id."),
                _query("limit", "Page size, 1–1000 (default 50).", {"type": "integer", "minimum": 1, "maximum": 1000}),
                _query("offset", "Issues to skip (default 0); prefer cursor.", {"type": "integer", "minimum": 0}),
                _query("cursor", "next_cursor of the previous page: the page starts after its last issue "
                       "(stable while issues are added; not with offset)."),
            ],
            "responses": {
                "200": {"description": "A page of issues",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IssuePage"}}}},
                "400": {"$ref": "#/components/responses/BadRequest"},
            },
        },
    },
    "/issues/{issue_id}": {
        "get": {
            "summary": "One issue with its history and escalations",
            "tags": ["issues"],
            "parameters": [_ID],
            "responses": {
                "200": {"description": "The issue",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IssueDetail"}}}},
                "404": {"$ref": "#/components/responses/NotFound"},
            },
        }
    },
    "/issues/{issue_id}/transitions": {
        "post": {
            "summary": "Apply a workflow action",
            "description": "Actions: " + ", ".join(ACTIONS)
                           + ". An action the status does not allow answers 409 naming the allowed ones.",
            "tags": ["workflow"],
            "parameters": [_ID],
            "requestBody": _json_body("TransitionRequest"),
            "responses": {
                "201": {"description": "Applied", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"transition": {"$ref": "#/components/schemas/Transition"},
                                                     "issue": {"$ref": "#/components/schemas/Issue"}}}}}},
                **_ERRORS,
                "409": {"$ref": "#/components/responses/Conflict"},
            },
        }
    },
    "/issues/{issue_id}/suggestions": {
        "get": {
            "summary": "Assignment suggestions, best first",
            "tags": ["workflow"],
            "parameters": [_ID, _query("limit", "How many (default 10).",
                                       {"type": "integer", "minimum": 1, "maximum": 1000})],
            "responses": {
                "200": {"description": "Ranked candidates", "content": {"application/json": {"schema": {
                    "type": "object",
                    "properties": {"issue": {"type": "integer"},
                                   "suggestions": {"type": "array",
                                                   "items": {"$ref": "#/components/schemas/Suggestion"}}}}}}},
                **_ERRORS,
            },
        }
    },
    "/issues/assign": {
        "post": {
            "summary": "Dispatch several registered issues at once (all or nothing)",
            "tags": ["workflow"],
            "requestBody": _json_body("AssignRequest"),
            "responses": {
                "200": {"description": "Dispatched", "content": {"application/json": {"schema": {
                    "type": "object",
                    "properties": {"assigned": {"type": "integer"},
                                   "ids": {"type": "array", "items": {"type": "integer"}},
                                   "transitions": {"type": "array",
                                                   "items": {"$ref": "#/components/schemas/Transition"}}}}}}},
                **_ERRORS,
                "409": {"$ref": "#/components/responses/Conflict"},
            },
        }
    },
}

_NULLABLE_STRING = {"type": "string", "nullable": True}
_TIME = {"type": "string", "format": "date-time", "nullable": True}

#: Shared components this module's paths refer to.
OPENAPI_COMPONENTS: dict[str, Any] = {
    "schemas": {
        "NewIssue": {
            "type": "object",
            "required": ["category", "description", "lon", "lat"],
            "additionalProperties": False,
            "properties": {
                "category": {"type": "string", "example": "E0505",
                             "description": "Category code (or exact name) of an item."},
                "description": {"type": "string"},
                "lon": {"type": "number"},
                "lat": {"type": "number"},
                "crs": {"type": "string", "description": "EPSG code, gcj02 or bd09 (default WGS84)."},
                "address": {"type": "string"},
                "source": {"type": "string", "enum": list(SOURCES), "default": "web"},
                "reporter": {"type": "object", "properties": {"name": {"type": "string"}, "phone": {"type": "string"}},
                             "additionalProperties": False},
                "photos": {"type": "array", "items": {"type": "string"}},
                "reported_at": {"type": "string", "format": "date-time", "description": "Default now."},
                "external_id": {"type": "string"},
                "client_request_id": {"type": "string", "maxLength": 200,
                                      "description": "Retry key (or the Idempotency-Key header): a retried POST "
                                                     "returns the issue made the first time (200)."},
            },
        },
        "Issue": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "category": {"type": "string"},
                "category_name": _NULLABLE_STRING,
                "description": {"type": "string"},
                "source": {"type": "string"},
                "status": {"type": "string"},
                "status_label": {"type": "string"},
                "urgency": {"type": "string"},
                "lon": {"type": "number"},
                "lat": {"type": "number"},
                "address": _NULLABLE_STRING,
                "cell": {"type": "string"},
                "community": {"type": "string"},
                "street": {"type": "string"},
                "district": {"type": "string"},
                "department": _NULLABLE_STRING,
                "assignee": _NULLABLE_STRING,
                "deadline": _TIME,
                "sla_state": {"type": "string", "enum": ["ok", "warning", "overdue", "paused"], "nullable": True},
                **{stage: _TIME for stage in ("reported_at", "registered_at", "dispatched_at", "handled_at",
                                              "checked_at",
                                               "closed_at", "revisited_at")},
                "rework_count": {"type": "integer"},
                "extension_count": {"type": "integer"},
                "satisfaction": {"type": "integer", "nullable": True},
                "photos": {"type": "array", "items": {"type": "string"}},
                "duplicate_of": {"type": "integer", "nullable": True},
                "possible_duplicate_of": {"type": "integer", "nullable": True},
                "external_id": _NULLABLE_STRING,
                "escalation_level": {"type": "integer", "minimum": 0, "maximum": 3,
                                     "description": "Highest escalation level reached against the current deadline (0: "
                                                    "none)."},
                "allowed_actions": {"type": "array", "items": {"type": "string", "enum": list(ACTIONS)}},
            },
        },
        "IssueDetail": {
            "allOf": [
                {"$ref": "#/components/schemas/Issue"},
                {
                    "type": "object",
                    "properties": {
                        "reporter": {"type": "object",
                                     "properties": {"name": _NULLABLE_STRING, "phone": _NULLABLE_STRING}},
                        "suspended_at": _TIME,
                        "paused_seconds": {"type": "number"},
                        "transitions": {"type": "array", "items": {"$ref": "#/components/schemas/Transition"}},
                        "escalations": {"type": "array", "items": {"$ref": "#/components/schemas/Escalation"}},
                    },
                },
            ]
        },
        "CreatedIssue": {
            "allOf": [
                {"$ref": "#/components/schemas/IssueDetail"},
                {"type": "object", "properties": {"duplicate_candidate": {
                    "type": "object", "nullable": True,
                    "properties": {"id": {"type": "integer"}, "status": {"type": "string"},
                                   "reported_at": {"type": "string", "format": "date-time"},
                                   "distance_m": {"type": "number"}}}}},
            ]
        },
        "IssuePage": {
            "type": "object",
            "properties": {
                "total": {"type": "integer"},
                "limit": {"type": "integer"},
                "offset": {"type": "integer"},
                "next_cursor": {"type": "string", "nullable": True},
                "next": {"type": "string", "nullable": True},
                "issues": {"type": "array", "items": {"$ref": "#/components/schemas/Issue"}},
            },
        },
        "Transition": {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "action": {"type": "string"},
                "action_label": {"type": "string"},
                "from": _NULLABLE_STRING,
                "to": {"type": "string"},
                "actor": {"type": "string"},
                "at": {"type": "string", "format": "date-time"},
                "comment": _NULLABLE_STRING,
                "details": {"type": "object", "additionalProperties": True},
            },
        },
        "TransitionRequest": {
            "type": "object",
            "required": ["action"],
            "additionalProperties": False,
            "properties": {
                "action": {"type": "string", "enum": list(ACTIONS)},
                "comment": {"type": "string",
                            "description": "The reason; required for reject, rework, return, extend, suspend, reopen."},
                "at": {"type": "string", "format": "date-time",
                       "description": "Default now; never before the last step."},
                "department": {"type": "string", "description": "dispatch"},
                "assignee": {"type": "string", "description": "dispatch"},
                "satisfaction": {"type": "integer", "minimum": 1, "maximum": 5, "description": "revisit"},
                "approver": {"type": "string", "description": "extend: who approved the extension"},
                "original": {"type": "integer", "description": "merge: the issue this one duplicates"},
            },
        },
        "Escalation": {
            "type": "object",
            "properties": {
                "level": {"type": "integer", "minimum": 1, "maximum": 3},
                "area_level": {"type": "string", "enum": ["cell", "community", "street"]},
                "area_code": {"type": "string"},
                "deadline": {"type": "string", "format": "date-time"},
                "due_at": {"type": "string", "format": "date-time"},
                "created_at": {"type": "string", "format": "date-time"},
            },
        },
        "Suggestion": {
            "type": "object",
            "properties": {
                "rank": {"type": "integer"},
                "kind": {"type": "string", "enum": ["department", "worker"]},
                "department": _NULLABLE_STRING,
                "assignee": _NULLABLE_STRING,
                "phone": _NULLABLE_STRING,
                "responsibility": {"type": "integer", "minimum": 0, "maximum": 2},
                "reason": {"type": "string"},
                "distance_m": {"type": "number", "nullable": True},
                "open_workload": {"type": "integer"},
                "cost_m": {"type": "number"},
            },
        },
        "AssignRequest": {
            "type": "object",
            "required": ["ids"],
            "additionalProperties": False,
            "properties": {
                "ids": {"type": "array", "items": {"type": "integer"}, "minItems": 1},
                "department": {"type": "string"},
                "assignee": {"type": "string"},
                "comment": {"type": "string"},
                "at": {"type": "string", "format": "date-time"},
            },
        },
    },
}
