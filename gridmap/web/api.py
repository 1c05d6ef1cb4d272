"""JSON API under /api/v1."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from gridmap.aggregate import IssueFilter, area_counts
from gridmap.service import Gridmap

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
    )


@blueprint.get("/stats/<any(cells, communities, streets, districts):level>")
def stats(level: str):
    """Issue counts (total, open, overdue, closed) per area of one level."""
    issue_filter = issue_filter_from_request()
    with core().db.sessions() as session:
        counts = area_counts(session, level, issue_filter)
    return jsonify({level: counts})
