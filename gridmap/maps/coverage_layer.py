"""The coverage layer of the map: visit and patrol coverage per area, from the coverage data.

The figures and their definitions are :mod:`gridmap.coverage.metrics`'s (``area_coverage``); this module
picks the period from the map's filter, colours the areas and says why there is nothing to draw.
The period follows the coverage pages: ``to`` defaults to today, ``from`` to 1 January of that
year, and the "now" figures are taken on ``min(to, today)``.

The layer colours each area by its visit coverage (入户走访率) when the areas shown have
households, else by its patrol coverage (巡查覆盖率), and says so.

The figures count only the cells of the filter's ``access`` (the asking principal's scope).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridmap.dates import parse_period
from gridmap.labels import N_, Translate, untranslated
from gridmap.maps.data import SHARE_COLOURS, legend_classes
from gridmap.maps.filters import MapFilter

NOT_AVAILABLE = N_("走访与巡查覆盖数据尚未接入")
NO_HOUSEHOLDS = N_("尚无住户登记：按巡查覆盖率着色")
NO_DATA = N_("所选时段没有住户和巡查记录")
VISITS = N_("入户走访率")
PATROLS = N_("巡查覆盖率")


def _coverage_module():
    """gridmap.coverage.metrics when it is installed with what the layer needs, else None."""
    try:
        from gridmap.coverage import metrics as coverage
    except ImportError:
        return None
    return coverage if hasattr(coverage, "area_coverage") else None


def coverage_period(issue_filter: MapFilter) -> tuple[date, date, date]:
    """(from, to, as_of) of the coverage figures for a map filter's period."""
    today = datetime.now(UTC).astimezone(ZoneInfo(issue_filter.timezone)).date()
    date_from, date_to = parse_period(issue_filter.date_from, issue_filter.date_to, today=today, default_start="year")
    assert date_from is not None and date_to is not None  # a closed period: both ends filled
    return date_from, date_to, min(date_to, today)


def households_exist(session: Session) -> bool:
    """True when the household registry holds anyone (so rates per household mean something)."""
    if _coverage_module() is None:
        return False
    from gridmap.storage.coverage import HouseholdLocation

    return session.execute(select(HouseholdLocation.id).limit(1)).first() is not None


def _rows(session: Session, settings, issue_filter: MapFilter, level: str) -> list[dict[str, Any]] | None:
    module = _coverage_module()
    if module is None:
        return None
    date_from, date_to, as_of = coverage_period(issue_filter)
    rows = module.area_coverage(
        session, level, date_from, date_to, access=issue_filter.access, as_of=as_of,
        min_patrol_minutes=settings["patrol_min_minutes"], stale_days=settings["patrol_stale_days"],
    )
    scope = issue_filter.scope
    return [row for row in rows if scope is None or scope.contains(row["code"])]


def households_per_area(
    session: Session, settings, issue_filter: MapFilter, level: str = "cells"
) -> dict[str, int] | None:
    """Households per area code in the filter's period and areas; None without coverage data."""
    if not households_exist(session):
        return None
    rows = _rows(session, settings, issue_filter, level)
    return None if rows is None else {row["code"]: int(row["households"]) for row in rows if row["households"]}


def coverage_by_area(session: Session, settings, issue_filter: MapFilter, level: str, *,
                     translate: Translate = untranslated) -> dict[str, Any]:
    """``{"available", "message", "measure", "period", "areas": {code: {…}}, "legend"}`` for the map."""
    rows = _rows(session, settings, issue_filter, level)
    if rows is None:
        return {"available": False, "message": translate(NOT_AVAILABLE), "areas": {}}
    date_from, date_to, as_of = coverage_period(issue_filter)
    with_households = any(row["households"] for row in rows)
    measure = "visit_coverage" if with_households else "patrol_coverage"
    if not with_households and not any(row["patrol_days"] for row in rows):
        message = translate(NO_DATA)
    else:
        message = "" if with_households else translate(NO_HOUSEHOLDS)
    legend = legend_classes("closed_share", [], translate)  # the same 20-point classes of a share
    areas: dict[str, Any] = {}
    for row in rows:
        visit = _percent(row["visit_coverage"])
        patrol = _percent(row["patrol_coverage"])
        shown = visit if measure == "visit_coverage" else patrol
        areas[row["code"]] = {
            "visit": visit, "patrol": patrol, "households": row["households"], "visited": row["visited"],
            "overdue_households": row["overdue_households"],
            "colour": _colour(shown, legend),
        }
    return {
        "available": True,
        "message": message,
        "measure": measure,
        "title": translate(VISITS if measure == "visit_coverage" else PATROLS),
        "period": {"from": date_from.isoformat(), "to": date_to.isoformat(), "as_of": as_of.isoformat()},
        "areas": areas,
        "legend": legend,
    }


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 1)


def _colour(value: float | None, legend: dict[str, Any]) -> str:
    if value is None:
        return legend["none"]["colour"]
    for item in legend["classes"]:
        if value <= item["upper"] + 1e-9:
            return item["colour"]
    return SHARE_COLOURS[-1]
