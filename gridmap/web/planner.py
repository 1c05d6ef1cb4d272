"""The planner's page /planner/: indicator tables (sortable, XLSX), hotspots with a cell map, trend charts.

Every figure is the caller's scope's (see gridmap.web.analytics_api); the cell map draws the cells
the hotspot statistic was computed over, so a grid manager sees their own areas only.
"""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, render_template, request, url_for
from flask_babel import gettext
from shapely.geometry import MultiPolygon, Polygon

from gridmap.analytics.hotspots import CLASS_LABELS
from gridmap.analytics.indicators import AREA_LEVELS, DUE_RULES, GROUPS, INDICATORS, RATES, format_rate
from gridmap.analytics.trends import line_chart
from gridmap.labels import N_
from gridmap.web.analytics_api import choice_arg, compute_hotspots, compute_indicators, compute_trends, core
from gridmap.web.auth import requires

blueprint = Blueprint("planner", __name__)

#: Fill colours of the Gi* classes on the cell map (red hot, blue cold).
CLASS_COLORS = {
    "hot-99": "#b2182b", "hot-95": "#ef8a62", "hot-90": "#fddbc7", "none": "#f7f7f7",
    "cold-90": "#d1e5f0", "cold-95": "#67a9cf", "cold-99": "#2166ac",
}
LEVEL_LABELS = {"districts": N_("区"), "streets": N_("街道"), "communities": N_("社区"), "cells": N_("网格")}
GROUP_LABELS = {"area": N_("区域"), "department": N_("部门"), "worker": N_("处置人员")}
DUE_LABELS = {"deadline": N_("期限在统计期内"), "closed": N_("统计期内结案及超期未结")}
INTERVAL_LABELS = {"week": N_("周"), "month": N_("月")}
#: Repeat locations listed on the page (the API lists all).
REPEAT_LIMIT = 20
#: Hot cells listed on the page, highest Gi* z first, unless ``hot_cells=all`` asks for every one.
HOT_CELL_LIMIT = 20


@blueprint.app_template_filter("rate")
def rate_filter(value: float | None) -> str:
    """``{{ row.closure_rate|rate }}``: 95.5% or —."""
    return format_rate(value)


def cell_map(layers: Any, cells: list[dict[str, Any]], width: int = 640) -> dict[str, Any]:
    """SVG paths of the given cells coloured by their Gi* class (equirectangular, north up)."""
    frame = layers.cells
    by_code = {c["code"]: c for c in cells}
    frame = frame[frame["code"].isin(list(by_code))]
    if frame.empty:
        return {"width": width, "height": 20, "shapes": []}
    west, south, east, north = frame.total_bounds
    scale_x = math.cos(math.radians((south + north) / 2))
    span = max((east - west) * scale_x, north - south) or 1.0
    k = (width - 20) / span
    height = int((north - south) * k) + 20

    def ring(coords) -> str:
        return (
            "M" + " L".join(f"{(x - west) * scale_x * k + 10:.1f},{(north - y) * k + 10:.1f}" for x, y in coords) + " Z"
        )

    shapes = []
    for code, geometry in zip(frame["code"], frame.geometry):
        if isinstance(geometry, MultiPolygon):
            polygons = list(geometry.geoms)
        else:
            polygons = [geometry] if isinstance(geometry, Polygon) else []
        d = " ".join(ring(p.exterior.coords) + "".join(" " + ring(h.coords) for h in p.interiors) for p in polygons)
        row = by_code.get(code, {"class": "none", "count": 0, "gi_z": 0.0})
        shapes.append({"code": code, "d": d, "fill": CLASS_COLORS[row["class"]], "class": row["class"],
                       "title": f"{code} · {row['count']} · z={row['gi_z']:.2f} · "
                                f"{gettext(CLASS_LABELS[row['class']])}"})
    return {"width": width, "height": height, "shapes": shapes}


@blueprint.get("/planner/")
@requires("aggregates:read")
def planner():
    """Indicators, hotspots and trends for a period on one page."""
    gm = core()
    result = compute_indicators()
    hotspots = compute_hotspots()
    trends = compute_trends()
    counts, measures = trends["counts"], trends["indicators"]
    charts = {
        "counts": line_chart(counts["buckets"], counts["series"]),
        "indicators": line_chart(measures["buckets"],
                                 [{**line, "name": gettext(line["name"])} for line in measures["series"]],
                                 percent=True),
    }
    show_all = choice_arg("hot_cells", ("top", "all"), "top") == "all"
    hot_cells = hotspots["hotspots"] if show_all else hotspots["hotspots"][:HOT_CELL_LIMIT]
    args = {key: value for key, value in request.args.items() if value and key != "hot_cells"}
    args.update(result["period"])
    export_url = url_for("analytics_api.get_indicators_xlsx", **args)
    hot_cell_urls = {
        "all": url_for("planner.planner", **args, hot_cells="all"),
        "top": url_for("planner.planner", **args),
    }
    return render_template(
        "planner/index.html", result=result, hotspots=hotspots, trends=trends, charts=charts,
        cell_map=cell_map(gm.areas.layers, hotspots["cells"]), export_url=export_url, args=args,
        indicators=INDICATORS, rates=RATES, groups=GROUPS, levels=tuple(AREA_LEVELS), due_rules=DUE_RULES,
        level_labels=LEVEL_LABELS, group_labels=GROUP_LABELS, due_labels=DUE_LABELS, interval_labels=INTERVAL_LABELS,
        class_labels=CLASS_LABELS, class_colors=CLASS_COLORS, interval=trends["counts"]["interval"],
        by=trends["counts"]["by"], repeat_limit=REPEAT_LIMIT,
        hot_cells=hot_cells, hot_cell_limit=HOT_CELL_LIMIT, hot_cell_urls=hot_cell_urls,
    )
