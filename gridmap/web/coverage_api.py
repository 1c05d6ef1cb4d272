"""JSON API of coverage under /api/v1/coverage: metrics, households, visits, patrols, work lists, XLSX export.

Periods: ``from``/``to`` are local days (both included; default the year so far), ``as_of`` the
day the "now" figures are taken on (default ``min(to, today)``). Definitions: :mod:`gridmap.coverage.metrics`.

Every view passes the caller's scope (:func:`gridmap.web.auth.scope`) to the core, which counts,
lists and writes only inside it; households' names and phones are masked for roles without
``personal:read`` (:func:`personal`).
"""

from __future__ import annotations

import io
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, jsonify, request, send_file

from gridmap.core import Gridmap
from gridmap.coverage.export import write_coverage_xlsx
from gridmap.coverage.households import (
    HOUSEHOLD_REQUIRED,
    HouseholdRegistry,
    household_detail,
    list_households,
    mask_household,
)
from gridmap.coverage.metrics import LEVELS, area_coverage, check_area_code, stale_cells, worklists
from gridmap.coverage.patrols import import_tracks, track_detail
from gridmap.coverage.track_files import read_track_data
from gridmap.coverage.visits import VISIT_REQUIRED, visit_detail
from gridmap.dates import parse_day
from gridmap.errors import InvalidInput
from gridmap.issues.record_files import read_record_file
from gridmap.web.auth import principal, requires, scope
from gridmap.web.parsing import check_body_size, json_body

blueprint = Blueprint("coverage_api", __name__)

HOUSEHOLD_FIELDS = ("address", "kind", "lon", "lat", "cell", "crs", "members", "external_id", "name", "phone",
                    "registered_on")
MOVE_FIELDS = ("address", "lon", "lat", "cell", "crs", "moved_on")
LEAVE_FIELDS = ("left_on",)
VISIT_FIELDS = ("household", "visitor", "visited_at", "notes", "issues", "issue_ids", "crs")
_TRUE = ("1", "true", "yes", "on")


def core() -> Gridmap:
    """The app's configured core."""
    return current_app.extensions["gridmap"]


def registry() -> HouseholdRegistry:
    """The household registry of the app's core."""
    return HouseholdRegistry.for_core(core())


def today() -> date:
    """Today in the service's time zone."""
    return datetime.now(UTC).astimezone(ZoneInfo(core().timezone)).date()


def personal(household: dict[str, Any]) -> dict[str, Any]:
    """A household as the caller may see it: name and phone masked without ``personal:read``."""
    return household if principal().sees_personal_data else mask_household(household)


def personal_worklists(lists: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Work lists with each due household's name masked without ``personal:read``."""
    if principal().sees_personal_data:
        return lists
    return [{**entry, "households_due": [mask_household(row) for row in entry["households_due"]]} for entry in lists]


# --- request parsing -------------------------------------------------------------------------------


def period_from_request() -> tuple[date, date, date]:
    """(from, to, as_of) of the query string: default the year so far; as_of default min(to, today)."""
    now = today()
    date_to = parse_day(request.args.get("to"), "to") or now
    date_from = parse_day(request.args.get("from"), "from") or date(date_to.year, 1, 1)
    if date_from > date_to:
        raise InvalidInput(f"from ({date_from}) is after to ({date_to}); swap them")
    as_of = parse_day(request.args.get("as_of"), "as_of") or min(date_to, now)
    return date_from, date_to, as_of


def int_arg(name: str, default: int, *, minimum: int = 0, maximum: int = 10_000) -> int:
    """An integer query parameter within [minimum, maximum]."""
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"`{name}` must be a whole number, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise InvalidInput(f"`{name}` must be between {minimum} and {maximum}, got {value}")
    return value


def flag(name: str) -> bool:
    """A boolean from the query string or a form field (1, true, yes, on)."""
    return (request.values.get(name) or "").strip().lower() in _TRUE


def uploaded() -> tuple[bytes, str]:
    """The uploaded file (multipart field ``file``, or the raw body with ``?filename=``) and its name."""
    check_body_size()
    upload = request.files.get("file")
    if upload is not None:
        return upload.read(), upload.filename or ""
    data = request.get_data(cache=False)
    if not data:
        raise InvalidInput("no file: send it as the multipart field `file`, or as the body with ?filename=NAME.csv")
    return data, request.args.get("filename", "")


def _read_table(data: bytes, filename: str, required: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[int]]:
    suffix = Path(filename).suffix.lower()
    if suffix not in (".csv", ".txt", ".xlsx", ".geojson", ".json"):
        raise InvalidInput(f"unknown file type {suffix or '(none)'!r}; upload a .csv, .xlsx or .geojson file")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            return read_record_file(path, encoding=request.values.get("encoding") or None, required=required)
        except InvalidInput as exc:  # name the upload, not the temporary file
            raise InvalidInput(exc.message.replace(str(path), filename or "the upload"), details=exc.details) from None


def _import_answer(report, what: str):
    if report.errors and not flag("skip_bad_rows"):
        raise InvalidInput(f"{len(report.errors)} bad {what} of {report.rows}; nothing imported "
                           "(fix them, or pass skip_bad_rows=1 to import the rest)", details=report.as_dict())
    return jsonify(report.as_dict())


# --- metrics -------------------------------------------------------------------------------------------


@blueprint.get("/coverage/<any(cells, communities, streets, districts):level>")
@requires("coverage:read")
def coverage(level: str):
    """Coverage per area of one level for a period."""
    gm = core()
    date_from, date_to, as_of = period_from_request()
    stale_days = int_arg("stale_days", gm.settings["patrol_stale_days"], minimum=1)
    minutes = gm.settings["patrol_min_minutes"]
    with gm.db.sessions() as session:
        rows = area_coverage(session, level, date_from, date_to, access=scope(), as_of=as_of,
                             min_patrol_minutes=minutes, stale_days=stale_days)
    return jsonify({"from": date_from.isoformat(), "to": date_to.isoformat(), "as_of": as_of.isoformat(),
                    "min_patrol_minutes": minutes, "stale_days": stale_days, level: rows})


@blueprint.get("/coverage/stale-cells")
@requires("coverage:read")
def stale():
    """Cells not patrolled on any of the last N days (``days``, default the setting) up to ``as_of``."""
    gm = core()
    as_of = parse_day(request.args.get("as_of"), "as_of") or today()
    days = int_arg("days", gm.settings["patrol_stale_days"], minimum=1)
    area = request.args.get("area") or ""
    if area:
        check_area_code(area, scope())
    with gm.db.sessions() as session:
        rows = stale_cells(session, as_of=as_of, access=scope(), stale_days=days,
                           min_patrol_minutes=gm.settings["patrol_min_minutes"])
    rows = [row for row in rows if row["code"].startswith(area)]
    return jsonify({"as_of": as_of.isoformat(), "days": days, "cells": rows})


@blueprint.get("/coverage/export.xlsx")
@requires("coverage:read")
def export_xlsx():
    """Coverage per district, street, community and cell as an XLSX workbook."""
    gm = core()
    date_from, date_to, as_of = period_from_request()
    stale_days = int_arg("stale_days", gm.settings["patrol_stale_days"], minimum=1)
    out = io.BytesIO()
    with gm.db.sessions() as session:
        write_coverage_xlsx(session, out, date_from, date_to, access=scope(), as_of=as_of, stale_days=stale_days,
                            min_patrol_minutes=gm.settings["patrol_min_minutes"])
    out.seek(0)
    return send_file(out, mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                     as_attachment=True, download_name=f"coverage_{date_from}_{date_to}.xlsx")


@blueprint.get("/coverage/worklists")
@requires("households:read")
def worklist():
    """Per grid worker: households due this month and stale cells (``worker`` picks one)."""
    gm = core()
    as_of = parse_day(request.args.get("as_of"), "as_of") or today()
    with gm.db.sessions() as session:
        lists = worklists(session, as_of=as_of, access=scope(), worker=request.args.get("worker") or None,
                          stale_days=int_arg("stale_days", gm.settings["patrol_stale_days"], minimum=1),
                          min_patrol_minutes=gm.settings["patrol_min_minutes"])
    return jsonify({"as_of": as_of.isoformat(), "worklists": personal_worklists(lists)})


@blueprint.get("/coverage/kinds")
@requires("coverage:read")
def kinds():
    """The household kinds and their visit intervals (the kinds file)."""
    return jsonify({"kinds": [kind.as_dict() for kind in registry().kinds]})


# --- households -------------------------------------------------------------------------------------------


@blueprint.get("/coverage/households")
@requires("households:read")
def households():
    """Households in the registry on ``as_of`` (default today), by area and kind, paginated."""
    as_of = parse_day(request.args.get("as_of"), "as_of") or today()
    with core().db.sessions() as session:
        page = list_households(session, as_of=as_of, access=scope(), area=request.args.get("area") or None,
                               kind=request.args.get("kind") or None,
                               limit=int_arg("limit", 100, minimum=1, maximum=1000),
                               offset=int_arg("offset", 0, maximum=10**9))
    page["households"] = [personal(row) for row in page["households"]]
    return jsonify({"as_of": as_of.isoformat(), **page})


@blueprint.post("/coverage/households")
@requires("households:write")
def create_household():
    """Register one household."""
    body = json_body(HOUSEHOLD_FIELDS)
    return jsonify(personal(registry().create_household(body, crs=body.get("crs"), access=scope()))), 201


@blueprint.post("/coverage/households/import")
@requires("households:write")
def import_households():
    """Import households from an uploaded CSV, XLSX or GeoJSON file (one transaction)."""
    data, filename = uploaded()
    records, numbers = _read_table(data, filename, HOUSEHOLD_REQUIRED)
    report = registry().import_households(records, numbers, crs=request.values.get("crs") or None,
                                          skip_bad_rows=flag("skip_bad_rows"), dry_run=flag("dry_run"), access=scope())
    return _import_answer(report, "row(s)")


@blueprint.get("/coverage/households/<id:household_id>")
@requires("households:read")
def household(household_id: int):
    """A household with its address history, latest visits and next visit due."""
    with core().db.sessions() as session:
        return jsonify(personal(household_detail(session, household_id, as_of=today(), access=scope())))


@blueprint.post("/coverage/households/<id:household_id>/move")
@requires("households:write")
def move_household(household_id: int):
    """Record a move to a new address from ``moved_on`` (default today)."""
    body = json_body(MOVE_FIELDS)
    return jsonify(personal(registry().move_household(household_id, body, crs=body.get("crs"), access=scope())))


@blueprint.post("/coverage/households/<id:household_id>/leave")
@requires("households:write")
def household_leaves(household_id: int):
    """Take a household out of the registry from ``left_on`` (default today)."""
    body = json_body(LEAVE_FIELDS) if request.get_data(cache=True).strip() else {}
    return jsonify(personal(registry().household_leaves(household_id, body.get("left_on"), access=scope())))


# --- visits -----------------------------------------------------------------------------------------------


@blueprint.post("/coverage/visits")
@requires("visits:write")
def create_visit():
    """Record a visit, with the issues raised at it (created with source ``visit``) or linked by id."""
    body = json_body(VISIT_FIELDS)
    actor = f"visit:{str(body.get('visitor') or '')[:80]}"
    return jsonify(registry().record_visit(body, source="api", actor=actor, crs=body.get("crs"), access=scope())), 201


@blueprint.post("/coverage/visits/import")
@requires("visits:write")
def import_visits():
    """Import visits from an uploaded CSV or XLSX file (one transaction)."""
    data, filename = uploaded()
    records, numbers = _read_table(data, filename, VISIT_REQUIRED)
    report = registry().import_visits(records, numbers, crs=request.values.get("crs") or None,
                                      skip_bad_rows=flag("skip_bad_rows"), dry_run=flag("dry_run"),
                                      actor=f"import:{filename[:80]}", access=scope())
    return _import_answer(report, "row(s)")


@blueprint.get("/coverage/visits/<id:visit_id>")
@requires("households:read")
def visit(visit_id: int):
    """One visit with the ids of the issues raised at it."""
    with core().db.sessions() as session:
        return jsonify(visit_detail(session, visit_id, access=scope()))


# --- patrols ----------------------------------------------------------------------------------------------


@blueprint.post("/coverage/patrols")
@requires("patrols:write")
def import_patrols():
    """Import patrol tracks from an uploaded GPX or GeoJSON file: split into cells, outside parts reported."""
    gm = core()
    data, filename = uploaded()
    tracks = read_track_data(data, filename=filename, timezone_name=gm.timezone)
    report = import_tracks(gm.db, gm.areas, tracks, worker=request.values.get("worker") or None,
                           crs=request.values.get("crs") or None, timezone_name=gm.timezone,
                           source=filename or "api", skip_bad_rows=flag("skip_bad_rows"), dry_run=flag("dry_run"),
                           access=scope())
    return _import_answer(report, "track(s)")


@blueprint.get("/coverage/patrols/<id:track_id>")
@requires("households:read")
def patrol(track_id: int):
    """A stored patrol track: its points, times and cell segments."""
    with core().db.sessions() as session:
        return jsonify(track_detail(session, track_id, access=scope()))


# --- OpenAPI ----------------------------------------------------------------------------------------------


def _query(name: str, description: str, schema: dict[str, Any] | None = None, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or {"type": "string"}}


def _json(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema or {"type": "object"}}}}


_PERIOD = [
    _query("from", "First local day of the period (default 1 January of `to`'s year).",
           {"type": "string", "format": "date"}),
    _query("to", "Last local day of the period, included (default today).", {"type": "string", "format": "date"}),
    _query("as_of", "Day the overdue and stale figures are taken on (default min(to, today)).",
           {"type": "string", "format": "date"}),
    _query("stale_days",
           "A cell is stale when not patrolled on any of this many days up to as_of (default setting "
           "patrol_stale_days).",
           {"type": "integer", "minimum": 1}),
]
_UPLOAD = {"content": {"multipart/form-data": {"schema": {"type": "object", "properties": {
    "file": {"type": "string", "format": "binary"},
    "skip_bad_rows": {"type": "boolean"}, "dry_run": {"type": "boolean"}, "crs": {"type": "string"},
}}}}}
_ERRORS = {"400": {"$ref": "#/components/responses/BadRequest"}}
#: Writes outside the caller's areas.
_OUTSIDE = {"403": {"description": "A row, address or track lies outside the caller's areas; nothing was written.",
                    "content": {"application/json": {"schema": {"type": "object"}}}}}
_IMPORT_REPORT = {"$ref": "#/components/schemas/CoverageImportReport"}

OPENAPI_COMPONENTS: dict[str, Any] = {
    "schemas": {
        "CellCoverage": {"type": "object", "properties": {
            "code": {"type": "string"}, "name": {"type": "string", "nullable": True},
            "households": {"type": "integer"}, "visited": {"type": "integer"},
            "visit_coverage": {"type": "number", "nullable": True, "description": "入户走访率 = visited / households"},
            "overdue_households": {"type": "integer"},
            "patrol_days": {"type": "integer"}, "days": {"type": "integer"},
            "patrol_coverage": {"type": "number", "nullable": True, "description": "patrol_days / days"},
            "last_patrol": {"type": "string", "format": "date", "nullable": True},
            "days_since_patrol": {"type": "integer", "nullable": True}, "stale": {"type": "boolean"},
            "cells": {"type": "integer", "description": "communities and above: number of cells"},
            "stale_cells": {"type": "integer", "description": "communities and above"},
        }},
        "CoverageImportReport": {"type": "object", "properties": {
            "rows": {"type": "integer"}, "imported": {"type": "integer"}, "dry_run": {"type": "boolean"},
            "errors": {"type": "array", "items": {"type": "object", "properties": {
                "row": {"type": "integer"}, "message": {"type": "string"}}}},
        }},
    },
}

OPENAPI_PATHS: dict[str, Any] = {
    "/coverage/{level}": {"get": {
        "summary": "Coverage per area: households, visit coverage, overdue households, patrol coverage, stale cells",
        "tags": ["coverage"],
        "parameters": [{"name": "level", "in": "path", "required": True,
                        "schema": {"type": "string", "enum": list(LEVELS)}}, *_PERIOD],
        "responses": {"200": _json("Every area of the level, zeros included, by code; above cells patrol_days and days "
                                   "are cell-days.",
                                   {"type": "object",
                                    "properties": {"from": {"type": "string"}, "to": {"type": "string"},
                                                                     "as_of": {"type": "string"}}}), **_ERRORS},
    }},
    "/coverage/stale-cells": {"get": {
        "summary": "Cells not patrolled for N days", "tags": ["coverage"],
        "parameters": [_query("days", "N (default setting patrol_stale_days)", {"type": "integer", "minimum": 1}),
                       _query("as_of", "Day to count back from (default today)", {"type": "string", "format": "date"}),
                       _query("area", "Only cells under this area code")],
        "responses": {"200": _json("Cells, never-patrolled first, then longest-neglected"), **_ERRORS},
    }},
    "/coverage/export.xlsx": {"get": {
        "summary": "Coverage per district, street, community and cell as an XLSX workbook", "tags": ["coverage"],
        "parameters": _PERIOD,
        "responses": {"200": {"description": "The workbook", "content": {
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                "schema": {"type": "string", "format": "binary"}}}},
            **_ERRORS},
    }},
    "/coverage/worklists": {"get": {
        "summary": "Work lists per grid worker: households due this month, stale cells", "tags": ["coverage"],
        "parameters": [_query("worker", "One worker's list"),
                       _query("as_of", "Day (default today)", {"type": "string", "format": "date"}),
                       _query("stale_days", "N for stale cells", {"type": "integer", "minimum": 1})],
        "responses": {"200": _json("Work lists"), "404": {"$ref": "#/components/responses/NotFound"}, **_ERRORS},
    }},
    "/coverage/kinds": {"get": {"summary": "Household kinds and their visit intervals", "tags": ["coverage"],
                                "responses": {"200": _json("The kinds")}}},
    "/coverage/households": {
        "get": {"summary": "Households in the registry", "tags": ["coverage"],
                "parameters": [_query("area", "Area code of any level"), _query("kind", "Household kind code"),
                               _query("as_of", "Day (default today)", {"type": "string", "format": "date"}),
                               _query("limit", "1–1000 (default 100)", {"type": "integer"}),
                               _query("offset", "Default 0", {"type": "integer"})],
                "responses": {"200": _json("A page of households with the total"), **_ERRORS}},
        "post": {"summary": "Register a household", "tags": ["coverage"],
                 "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object",
                     "required": ["address", "kind"],
                     "properties": {f: {"type": "string"} for f in HOUSEHOLD_FIELDS}}}}},
                 "responses": {"201": _json("The household"), "409": {"$ref": "#/components/responses/Conflict"},
                               "422": {"$ref": "#/components/responses/OutsideCells"}, **_OUTSIDE, **_ERRORS}},
    },
    "/coverage/households/import": {"post": {
        "summary": "Import households (CSV, XLSX, GeoJSON points); all or nothing unless skip_bad_rows",
        "tags": ["coverage"],
        "requestBody": _UPLOAD, "responses": {"200": _json("The import report", _IMPORT_REPORT), **_OUTSIDE, **_ERRORS},
    }},
    "/coverage/households/{household_id}": {"get": {
        "summary": "A household with its address history and visits", "tags": ["coverage"],
        "parameters": [{"name": "household_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        "responses": {"200": _json("The household"), "404": {"$ref": "#/components/responses/NotFound"}},
    }},
    "/coverage/households/{household_id}/move": {"post": {
        "summary": "Record a move to a new address (history kept)", "tags": ["coverage"],
        "parameters": [{"name": "household_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object",
            "properties": {f: {"type": "string"} for f in MOVE_FIELDS}}}}},
        "responses": {"200": _json("The household"), "404": {"$ref": "#/components/responses/NotFound"},
                      "409": {"$ref": "#/components/responses/Conflict"}, **_OUTSIDE, **_ERRORS},
    }},
    "/coverage/households/{household_id}/leave": {"post": {
        "summary": "Take a household out of the registry", "tags": ["coverage"],
        "parameters": [{"name": "household_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        "responses": {"200": _json("The household"), "404": {"$ref": "#/components/responses/NotFound"},
                      "409": {"$ref": "#/components/responses/Conflict"}},
    }},
    "/coverage/visits": {"post": {
        "summary": "Record a visit and the issues raised at it", "tags": ["coverage"],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object",
            "required": ["household", "visitor", "visited_at"], "properties": {
                "household": {"type": "string", "description": "id or external_id"}, "visitor": {"type": "string"},
                "visited_at": {"type": "string", "format": "date-time"}, "notes": {"type": "string"},
                "issues": {"type": "array", "items": {"type": "object", "required": ["category", "description"]}},
                "issue_ids": {"type": "array", "items": {"type": "integer"}}, "crs": {"type": "string"}}}}}},
        "responses": {"201": _json("The visit"), "404": {"$ref": "#/components/responses/NotFound"},
                      "409": {"$ref": "#/components/responses/Conflict"}, **_OUTSIDE, **_ERRORS},
    }},
    "/coverage/visits/import": {"post": {
        "summary": "Import visits (CSV, XLSX); all or nothing unless skip_bad_rows", "tags": ["coverage"],
        "requestBody": _UPLOAD, "responses": {"200": _json("The import report", _IMPORT_REPORT), **_OUTSIDE, **_ERRORS},
    }},
    "/coverage/visits/{visit_id}": {"get": {
        "summary": "A visit", "tags": ["coverage"],
        "parameters": [{"name": "visit_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        "responses": {"200": _json("The visit"), "404": {"$ref": "#/components/responses/NotFound"}},
    }},
    "/coverage/patrols": {"post": {
        "summary": "Import GPS patrol tracks (GPX, GeoJSON): split into cells with the time spent in each",
        "tags": ["coverage"],
        "parameters": [_query("worker", "The worker (default: the file's author / worker property)")],
        "requestBody": _UPLOAD,
        "responses": {"200": _json("The import report, with warnings for parts outside the district"),
                                              **_OUTSIDE, **_ERRORS},
    }},
    "/coverage/patrols/{track_id}": {"get": {
        "summary": "A patrol track with its cell segments", "tags": ["coverage"],
        "parameters": [{"name": "track_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
        "responses": {"200": _json("The track"), "404": {"$ref": "#/components/responses/NotFound"}},
    }},
}
