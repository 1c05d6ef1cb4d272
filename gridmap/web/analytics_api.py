"""JSON API of planner analytics under /api/v1: indicators (and their XLSX), hotspots, trends.

Periods: ``from``/``to`` are local days, both included; default the last 30 days up to today.
Definitions: gridmap.analytics.indicators, gridmap.analytics.hotspots, gridmap.analytics.trends (and
docs/indicators.md).
Every figure counts only the issues in the caller's scope (:func:`gridmap.web.auth.scope`).
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, jsonify, request, send_file

from gridmap.analytics.hotspots import REPEAT_MIN_COUNT, REPEAT_RADIUS_M, hotspot_report
from gridmap.analytics.indicators import (
    AREA_LEVELS,
    DEFAULT_DUE_RULE,
    DUE_RULES,
    GROUPS,
    Period,
    indicators,
    write_indicators_xlsx,
)
from gridmap.analytics.trends import BY, INTERVALS, TREND_INDICATORS, trend_counts, trend_indicators
from gridmap.core import Gridmap
from gridmap.issues.params import parse_choice, parse_integer, parse_number
from gridmap.web.auth import requires, scope

blueprint = Blueprint("analytics_api", __name__)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def core() -> Gridmap:
    """The app's configured core."""
    return current_app.extensions["gridmap"]


def period_arg() -> Period:
    """The ``from``/``to`` period of the query string (default: the last 30 days)."""
    zone = core().timezone
    today = datetime.now(UTC).astimezone(ZoneInfo(zone)).date()
    return Period.parse(request.args.get("from"), request.args.get("to"), zone, today=today)


def category_arg() -> str | None:
    """The ``category`` filter as a known item or class code, or None."""
    value = request.args.get("category", "").strip()
    return core().categories.get(value).code if value else None


def choice_arg(name: str, allowed: tuple[str, ...], default: str) -> str:
    """A query argument that must be one of ``allowed``."""
    return parse_choice(request.args.get(name), allowed, name, default)


def number_arg(name: str, default: float, minimum: float) -> float:
    """A numeric query argument of at least ``minimum``."""
    return parse_number(request.args.get(name), name, default, minimum)


def indicator_options() -> dict[str, Any]:
    """Keyword arguments of gridmap.analytics.indicators.indicators from the query string."""
    return {
        "group_by": choice_arg("group_by", GROUPS, "area"),
        "level": choice_arg("level", tuple(AREA_LEVELS), "districts"),
        "due_rule": choice_arg("due", DUE_RULES, DEFAULT_DUE_RULE),
        "category": category_arg(),
    }


def compute_indicators() -> dict[str, Any]:
    """The indicator table the query string asks for."""
    period, options = period_arg(), indicator_options()
    with core().db.sessions() as session:
        return indicators(session, period, access=scope(), **options)


@blueprint.get("/indicators")
@requires("aggregates:read")
def get_indicators():
    """Indicators per area, department or worker for a period."""
    return jsonify(compute_indicators())


@blueprint.get("/indicators.xlsx")
@requires("aggregates:read")
def get_indicators_xlsx():
    """The same table as an XLSX download."""
    result = compute_indicators()
    buffer = io.BytesIO()
    write_indicators_xlsx(result, buffer)
    buffer.seek(0)
    name = f"indicators-{result['period']['from']}-{result['period']['to']}.xlsx"
    return send_file(buffer, mimetype=XLSX, as_attachment=True, download_name=name)


def compute_hotspots() -> dict[str, Any]:
    """The hotspot report the query string asks for."""
    gm = core()
    period, category = period_arg(), category_arg()
    radius = number_arg("radius_m", REPEAT_RADIUS_M, 1)
    min_count = parse_integer(request.args.get("min_count"), "min_count", REPEAT_MIN_COUNT, 2)
    with gm.db.sessions() as session:
        return hotspot_report(session, gm.areas.layers, period, access=scope(), category=category, radius_m=radius,
                              min_count=min_count)


@blueprint.get("/hotspots")
@requires("aggregates:read")
def get_hotspots():
    """Gi* classes of every cell, the ranked hot list, repeat locations, change against the previous period."""
    return jsonify(compute_hotspots())


def compute_trends() -> dict[str, Any]:
    """Counts and indicators per bucket, as the query string asks."""
    gm = core()
    period, category = period_arg(), category_arg()
    interval = choice_arg("interval", INTERVALS, "week")
    by = choice_arg("by", BY, "category")
    level = choice_arg("level", tuple(AREA_LEVELS), "districts")
    due_rule = choice_arg("due", DUE_RULES, DEFAULT_DUE_RULE)
    with gm.db.sessions() as session:
        return {
            "counts": trend_counts(session, period, interval, access=scope(), by=by, level=level,
                                   categories=gm.categories, category=category),
            "indicators": trend_indicators(session, period, interval, access=scope(), due_rule=due_rule,
                                           category=category),
        }


@blueprint.get("/trends")
@requires("aggregates:read")
def get_trends():
    """Issue counts by category class or area, and indicators, per week or month."""
    return jsonify(compute_trends())


def _param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


_PERIOD = [
    _param("from", "First local day (default: 29 days before `to`).", {"type": "string", "format": "date"}),
    _param("to", "Last local day, included (default: today).", {"type": "string", "format": "date"}),
    _param("category", "Item (E0505) or class (E05) code.", {"type": "string"}),
]
_ERRORS = {"400": {"$ref": "#/components/responses/BadRequest"}}
_INDICATOR_PARAMS = [
    *_PERIOD,
    _param("group_by", "Rows: area, department or worker.",
           {"type": "string", "enum": list(GROUPS), "default": "area"}),
    _param("level", "Area level when group_by=area.",
           {"type": "string", "enum": list(AREA_LEVELS), "default": "districts"}),
    _param("due", "Which cases are 应结案: deadline in the period, or closed in it (plus overdue open).",
           {"type": "string", "enum": list(DUE_RULES), "default": DEFAULT_DUE_RULE}),
]

#: Merged into /api/v1/openapi.json by gridmap.web.openapi.
OPENAPI_PATHS: dict[str, Any] = {
    "/indicators": {"get": {
        "summary": "Indicators (受理数, 立案率, 结案率, 按期结案率 …) per area, department or worker",
        "tags": ["analytics"], "parameters": _INDICATOR_PARAMS,
        "responses": {"200": {"description": "Rows per group and a total row; rates are fractions or null.",
                              "content": {"application/json": {"schema": {"type": "object"}}}}, **_ERRORS},
    }},
    "/indicators.xlsx": {"get": {
        "summary": "The indicator table as an XLSX workbook", "tags": ["analytics"], "parameters": _INDICATOR_PARAMS,
        "responses": {"200": {"description": "XLSX workbook.",
                              "content": {XLSX: {"schema": {"type": "string", "format": "binary"}}}},
                      **_ERRORS},
    }},
    "/hotspots": {"get": {
        "summary": "Getis-Ord Gi* hot and cold cells (FDR-corrected), repeat locations, change against the previous "
                   "period",
        "tags": ["analytics"],
        "parameters": [*_PERIOD,
                       _param("radius_m", "Repeat-location radius in metres.",
                              {"type": "number", "default": REPEAT_RADIUS_M}),
                       _param("min_count", "Reports that make a repeat location.",
                              {"type": "integer", "default": REPEAT_MIN_COUNT})],
        "responses": {"200": {"description": "cells (code, count, gi_z, p, p_fdr, class …), hotspots, coldspots, "
                                             "repeats.",
                              "content": {"application/json": {"schema": {"type": "object"}}}}, **_ERRORS},
    }},
    "/trends": {"get": {
        "summary": "Counts by category class or area and indicators per week or month", "tags": ["analytics"],
        "parameters": [*_PERIOD,
                       _param("interval", "Bucket size.",
                              {"type": "string", "enum": list(INTERVALS), "default": "week"}),
                       _param("by", "Count series by.", {"type": "string", "enum": list(BY), "default": "category"}),
                       _param("level", "Area level when by=area.",
                              {"type": "string", "enum": list(AREA_LEVELS), "default": "districts"}),
                       _param("due", "应结案 rule of the indicators.",
                              {"type": "string", "enum": list(DUE_RULES), "default": DEFAULT_DUE_RULE})],
        "responses": {"200": {"description": f"counts and indicators ({', '.join(TREND_INDICATORS)}) per bucket.",
                              "content": {"application/json": {"schema": {"type": "object"}}}}, **_ERRORS},
    }},
}
