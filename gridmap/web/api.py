"""JSON API under /api/v1."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from gridmap.core import Gridmap
from gridmap.issues.counts import IssueFilter, area_counts
from gridmap.web.auth import requires, scope

blueprint = Blueprint("api", __name__)


def core() -> Gridmap:
    return current_app.extensions["gridmap"]


def issue_filter_from_request() -> IssueFilter:
    """The period and category filter of the query string (``from``, ``to``, ``category``)."""
    gm = core()
    return IssueFilter.parse(
        date_from=request.args.get("from"),
        date_to=request.args.get("to"),
        category=request.args.get("category"),
        categories=gm.categories,
        timezone_name=gm.timezone,
        access=scope(),
    )


@blueprint.get("/stats/<any(cells, communities, streets, districts):level>")
@requires("aggregates:read")
def stats(level: str):
    """Issue counts (total, open, overdue, closed) per area of one level."""
    issue_filter = issue_filter_from_request()
    with core().db.sessions() as session:
        counts = area_counts(session, level, issue_filter)
    return jsonify({level: counts})


def _stats_path(level: str) -> dict:
    return {
        "get": {
            "summary": f"Issue counts per area of the level {level}",
            "description": "total, open, overdue and closed per area; every area listed (zeros included), by code.",
            "tags": ["stats"],
            "parameters": [
                {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"},
                 "description": "First local day."},
                {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"},
                 "description": "Last local day, included."},
                {"name": "category", "in": "query", "schema": {"type": "string"},
                 "description": "Item (E0505) or class (E05)."},
            ],
            "responses": {
                "200": {"description": "Counts",
                        "content": {"application/json": {"schema": {"type": "object", "properties": {
                    level: {"type": "array", "items": {"type": "object", "properties": {
                        "code": {"type": "string"}, "total": {"type": "integer"}, "open": {"type": "integer"},
                        "overdue": {"type": "integer"}, "closed": {"type": "integer"}}}}}}}}},
                "400": {"$ref": "#/components/responses/BadRequest"},
            },
        }
    }


#: Paths of this module for the OpenAPI document (see gridmap.web.openapi).
OPENAPI_PATHS = {f"/stats/{level}": _stats_path(level) for level in ("cells", "communities", "streets", "districts")}
