"""HTML pages."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request, url_for

from gridmap.aggregate import area_counts, issue_points
from gridmap.errors import InvalidInput
from gridmap.maps.overview import METRIC_LABELS, METRICS, cells_summary, overview_map
from gridmap.web.api import core, issue_filter_from_request

blueprint = Blueprint("pages", __name__)

HEAT_POINT_LIMIT = 20000


@blueprint.get("/")
def overview():
    """The district map: cells coloured by issue count, with a heatmap of issues."""
    gm = core()
    metric = request.args.get("metric") or "total"
    if metric not in METRICS:
        raise InvalidInput(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    issue_filter = issue_filter_from_request()
    with gm.db.sessions() as session:
        counts = area_counts(session, "cells", issue_filter)
        points = issue_points(session, issue_filter, limit=HEAT_POINT_LIMIT, metric=metric)
    parts = overview_map(
        gm.areas.layers,
        counts,
        points,
        static_url=lambda path: url_for("static", filename=path),
        metric=metric,
        tiles=gm.settings["tiles"],
    )
    district = gm.areas.layers.districts.iloc[0]
    return render_template(
        "overview.html",
        map=parts,
        district_name=district["name"],
        summary=cells_summary(counts),
        metric=metric,
        metric_label=METRIC_LABELS[metric],
        metrics=[(key, METRIC_LABELS[key]) for key in METRICS],
        categories=gm.categories.leaves(),
        filters={"from": request.args.get("from", ""), "to": request.args.get("to", ""),
                 "category": request.args.get("category", "")},
        heat_limited=len(points) >= HEAT_POINT_LIMIT,
    )
