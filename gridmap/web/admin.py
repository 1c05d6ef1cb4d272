"""The audit log for administrators (#8): a page and a JSON endpoint."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template, request

from gridmap.audit import audit_entries
from gridmap.issue_query import parse_integer
from gridmap.storage.models import MAX_ROW_ID
from gridmap.web.auth import requires

blueprint = Blueprint("admin", __name__)


def _page() -> tuple[int, list[dict], dict]:
    args = request.args
    filters = {name: (args.get(name) or "").strip() or None for name in ("entity", "entity_id", "actor")}
    limit = parse_integer(args.get("limit"), "limit", 100, 1, 1000)
    offset = parse_integer(args.get("offset"), "offset", 0, 0, MAX_ROW_ID)
    with current_app.extensions["gridmap"].db.sessions() as session:
        total, entries = audit_entries(session, limit=limit, offset=offset, **filters)
    return total, entries, {**filters, "limit": limit, "offset": offset}


@blueprint.get("/api/v1/audit")
@requires("audit:read")
def audit_json():
    """Audit entries, newest first; filters ``entity``, ``entity_id``, ``actor``; ``limit``/``offset``."""
    total, entries, query = _page()
    return jsonify({"total": total, **query, "entries": entries})


@blueprint.get("/admin/audit")
@requires("audit:read")
def audit_page():
    """The audit log as a table, newest first."""
    total, entries, query = _page()
    return render_template("admin/audit.html", total=total, entries=entries, query=query)


OPENAPI_PATHS = {
    "/audit": {
        "get": {
            "summary": "Audit log (admins): every change with who, when, before and after",
            "parameters": [
                {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
                for name in ("entity", "entity_id", "actor")
            ] + [
                {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                {"name": "offset", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}},
            ],
            "responses": {"200": {"description": "A page of entries"}, "401": {"description": "Not logged in"},
                          "403": {"description": "Not an admin"}},
        }
    }
}
