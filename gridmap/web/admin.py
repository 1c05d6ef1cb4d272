"""Administration pages: the audit log (page and JSON), users and API tokens."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _

from gridmap.errors import Conflict
from gridmap.issues.params import parse_integer
from gridmap.security.access import ROLE_LABELS, disable_user, enable_user, list_tokens, list_users, revoke_token
from gridmap.security.audit import audit_entries
from gridmap.storage.models import MAX_ROW_ID
from gridmap.web.auth import principal, requires

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


@blueprint.get("/admin/users")
@requires("users:manage")
def users_page():
    """Users and API tokens with their roles and scopes; disable or enable users, revoke tokens."""
    with current_app.extensions["gridmap"].db.sessions() as session:
        users, tokens = list_users(session), list_tokens(session)
    return render_template("admin/users.html", users=users, tokens=tokens, role_labels=ROLE_LABELS)


@blueprint.post("/admin/users/<path:name>/<any(disable, enable):change>")
@requires("users:manage")
def change_user(name: str, change: str):
    """Disable a user (their session ends at their next request) or enable them again."""
    if change == "disable" and name == principal().name:
        raise Conflict("you cannot disable yourself: ask another administrator")
    with current_app.extensions["gridmap"].db.session() as session:
        (disable_user if change == "disable" else enable_user)(session, name)
    flash(_("用户 %(name)s 已停用", name=name) if change == "disable" else _("用户 %(name)s 已启用", name=name))
    return redirect(url_for("admin.users_page"), code=303)


@blueprint.post("/admin/tokens/<path:name>/revoke")
@requires("users:manage")
def revoke(name: str):
    """Revoke an API token: it stops working at once."""
    with current_app.extensions["gridmap"].db.session() as session:
        revoke_token(session, name)
    flash(_("令牌 %(name)s 已吊销", name=name))
    return redirect(url_for("admin.users_page"), code=303)


OPENAPI_PATHS = {
    "/audit": {
        "get": {
            "summary": "Audit log (admins): every change with who, when, before and after",
            "parameters": [
                {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
                for name in ("entity", "entity_id", "actor")
            ] + [
                {"name": "limit", "in": "query", "required": False,
                 "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                {"name": "offset", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0}},
            ],
            "responses": {"200": {"description": "A page of entries"}, "401": {"description": "Not logged in"},
                          "403": {"description": "Not an admin"}},
        }
    }
}
