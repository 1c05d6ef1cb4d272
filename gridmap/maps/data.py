"""What the map draws, aggregated on the server: per-area figures, classes, heat points, markers.

The counts are those of :mod:`gridmap.issues.counts` (one definition of total / open / overdue /
closed); this module adds the derived metrics, the colour classes, the heatmap's points (one per
issue up to ``HEAT_RAW_LIMIT`` issues, one weighted point per area above) and the issues near
the viewer. One grouped query per view gives the figures, the summary, the children and the heat.

Derived metrics (per area, over the issues the filter selects):

- ``closed_share`` = closed / total × 100 (%); no value where total = 0;
- ``per_100_households`` = total / households × 100; no value where an area has no households
  (households come from the coverage data, when it exists).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from gridmap.errors import InvalidInput
from gridmap.geo.crs import gcj02_to_wgs84
from gridmap.geo.layers import CODE_LENGTHS
from gridmap.issues.counts import COUNTS, grouped_counts, metric_condition
from gridmap.issues.params import BBox, bbox_conditions, parse_bbox
from gridmap.labels import NO_DATA, RATIO_METRICS, Translate, untranslated
from gridmap.maps.display import shift_points
from gridmap.maps.filters import MapFilter
from gridmap.maps.scope import AreaCatalogue, AreaScope
from gridmap.storage.models import Issue

#: Up to this many issues the heatmap gets one point per issue; above, one weighted point per area.
HEAT_RAW_LIMIT = 5000
#: The issues each heat metric counts (ratios are drawn from the issues behind them).
HEAT_METRIC = {"total": "total", "open": "open", "overdue": "overdue", "closed": "closed",
               "closed_share": "closed", "per_100_households": "total"}

#: Sequential colours (ColorBrewer YlOrRd) for counts: more is worse.
COUNT_COLOURS = ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026")
#: Sequential colours (ColorBrewer YlGn) for the closed share: more is better.
SHARE_COLOURS = ("#ffffcc", "#c2e699", "#78c679", "#31a354", "#006837")
ZERO_COLOUR = "#f7f7f7"
NO_DATA_COLOUR = "#d9d9d9"


@dataclass(frozen=True)
class MapQuery:
    """Everything that decides the picture: the areas, the choropleth level, metric and filter."""

    scope: AreaScope
    level: str
    metric: str
    issue_filter: MapFilter


def figures(
    session: Session, query: MapQuery, *, as_of: datetime | None = None
) -> dict[str, tuple[int, int, int, int]]:
    """(total, open, overdue, closed) per area of the query's level inside its scope, zeros left out.

    The grouped count of :func:`gridmap.issues.counts.grouped_counts`, as the stats use it, without
    listing the areas that have none.
    """
    counted = grouped_counts(session, query.level, query.issue_filter, as_of=as_of)
    # The filter's scope condition selects issues by their stamped area codes, and codes nest by
    # prefix, so every code found lies in that scope; only another scope needs checking.
    if query.issue_filter.scope == query.scope:
        return counted
    return {code: counts for code, counts in counted.items() if query.scope.contains(code)}


def metric_value(metric: str, counts: Sequence[int], households: int | None) -> float | None:
    """The value of ``metric`` for one area's (total, open, overdue, closed); None when undefined."""
    total, open_, overdue, closed = counts
    if metric in COUNTS:
        return float(counts[COUNTS.index(metric)])
    if metric == "closed_share":
        return round(closed / total * 100, 1) if total else None
    if metric == "per_100_households":
        return round(total / households * 100, 2) if households else None
    raise ValueError(metric)


def legend_classes(metric: str, values: Sequence[float], translate: Translate = untranslated) -> dict[str, Any]:
    """Colour classes for the values of a metric: ``{"classes": [{"upper", "colour", "label"}], "zero", "none"}``.

    Counts and rates: classes at quantiles of the positive values (0, 20, 40, 60, 80, 95, 100 %),
    so a few extreme areas do not wash out the rest; the closed share: fixed 20-point classes.
    A value belongs to the first class whose ``upper`` it does not exceed.
    """
    zero = {"colour": ZERO_COLOUR, "label": "0"} if metric not in RATIO_METRICS else None
    # Counts are never undefined; shares and rates are where nothing is behind them.
    none = {"colour": NO_DATA_COLOUR, "label": translate(NO_DATA)} if metric in RATIO_METRICS else None
    if metric == "closed_share":
        edges = [0, 20, 40, 60, 80, 100]
        classes = [{"upper": float(edges[i + 1]), "colour": SHARE_COLOURS[i],
                    "label": f"{edges[i]}–{edges[i + 1]} %"} for i in range(len(edges) - 1)]
        return {"classes": classes, "zero": None, "none": none}
    decimals = 0 if metric not in RATIO_METRICS else 1
    positive = np.array([v for v in values if v is not None and v > 0], dtype=float)
    if positive.size == 0:
        return {"classes": [{"upper": 1.0, "colour": COUNT_COLOURS[0], "label": "1" if not decimals else "> 0"}],
                "zero": zero, "none": none}
    breaks = np.quantile(positive, [0, 0.2, 0.4, 0.6, 0.8, 0.95, 1.0])
    breaks = np.unique(np.ceil(breaks) if decimals == 0 else np.round(breaks, decimals))
    if breaks.size == 1:
        breaks = np.array([0.0, breaks[0]]) if decimals else np.array([breaks[0] - 1, breaks[0]])
    uppers = breaks[1:] if breaks.size > 1 else breaks
    colours = COUNT_COLOURS[-len(uppers):] if len(uppers) < len(COUNT_COLOURS) else COUNT_COLOURS
    classes = []
    lower = None
    for upper, colour in zip(uppers, colours):
        if decimals == 0:
            low = int(breaks[0]) if lower is None else int(lower) + 1
            label = f"{low}" if low >= int(upper) else f"{low}–{int(upper)}"
        else:
            low = 0.0 if lower is None else lower
            label = f"{low:.{decimals}f}–{upper:.{decimals}f}"
        classes.append({"upper": float(upper), "colour": colour, "label": label})
        lower = upper
    if decimals == 0:
        classes[0]["label"] = f"1–{int(uppers[0])}" if int(uppers[0]) > 1 else "1"
    return {"classes": classes, "zero": zero, "none": none}


def rollup(per_area: Mapping[str, Sequence[int]], length: int) -> dict[str, list[int]]:
    """Figures of areas summed into the areas whose codes are ``length`` digits long."""
    result: dict[str, list[int]] = {}
    for code, counts in per_area.items():
        if len(code) < length:
            continue
        target = result.setdefault(code[:length], [0] * len(counts))
        for i, value in enumerate(counts):
            target[i] += value
    return result


def map_data(
    session: Session,
    catalogue: AreaCatalogue,
    query: MapQuery,
    *,
    households: Mapping[str, int] | None = None,
    heat: bool = True,
    shift: str = "none",
    translate: Translate = untranslated,
    as_of: datetime | None = None,
) -> dict[str, Any]:
    """The data of one map view: figures and metric value per area, summary, legend, children, heat."""
    per_area = figures(session, query, as_of=as_of)
    area_households = rollup({c: (n,) for c, n in (households or {}).items()}, CODE_LENGTHS[query.level])
    area_households = {code: n[0] for code, n in area_households.items() if query.scope.contains(code)}
    features: dict[str, list[Any]] = {}
    values: list[float] = []
    if query.metric in RATIO_METRICS:
        for code in [*per_area, *(code for code in area_households if code not in per_area)]:
            counts = per_area.get(code, (0, 0, 0, 0))
            value = metric_value(query.metric, counts, area_households.get(code))
            features[code] = [*counts, value]
            if value is not None:
                values.append(value)
    else:
        # A count metric's value is one of the counts; only shares and rates travel as a fifth item.
        index = COUNTS.index(query.metric)
        features = {code: list(counts) for code, counts in per_area.items()}
        values = [counts[index] for counts in per_area.values()]
    # Areas left out of ``features`` have no issues: value 0 for counts, none for ratios.
    default = 0.0 if query.metric not in RATIO_METRICS else None
    summary = {key: sum(counts[i] for counts in per_area.values()) for i, key in enumerate(COUNTS)}
    total_households = sum(area_households.values())
    summary["households"] = total_households
    data: dict[str, Any] = {
        "level": query.level,
        "metric": query.metric,
        "summary": summary,
        "features": features,
        "default": default,
        "legend": legend_classes(query.metric, values, translate),
        "children": children_figures(catalogue, query, per_area),
    }
    if heat:
        data["heat"] = heat_points(session, query, per_area, shift=shift, as_of=as_of)
    return data


def children_figures(
    catalogue: AreaCatalogue, query: MapQuery, per_area: Mapping[str, Sequence[int]]
) -> dict[str, list[int]]:
    """(total, open, overdue, closed) of each area the side panel lists (an area's children, or the scope's areas)."""
    if query.scope.single is not None:
        children = [child.code for child in catalogue.children(query.scope.single)]
    else:
        children = list(query.scope.codes)
    result: dict[str, list[int]] = {}
    by_length: dict[int, dict[str, list[int]]] = {}
    for code in children:
        length = len(code)
        if length > CODE_LENGTHS[query.level]:
            continue  # finer than the figures: not listed
        if length not in by_length:
            by_length[length] = rollup(per_area, length)
        result[code] = by_length[length].get(code, [0, 0, 0, 0])
    return result


def heat_points(session: Session, query: MapQuery, per_area: Mapping[str, Sequence[int]], *,
                shift: str = "none", as_of: datetime | None = None) -> dict[str, Any]:
    """The heatmap: ``[lat, lon]`` per issue up to HEAT_RAW_LIMIT issues, else weighted per area.

    Above the limit the points are server-aggregated: one per area of the query's level, at the
    area's point ``p`` of the display geometry, weighted by the count at ``index`` of the area's
    figures (the issues the heat metric counts), so the answer carries no points of its own.
    """
    index = COUNTS.index(HEAT_METRIC[query.metric])
    count = sum(counts[index] for counts in per_area.values())
    if count > HEAT_RAW_LIMIT:
        return {"mode": "areas", "level": query.level, "index": index, "count": int(count), "points": []}
    condition = metric_condition(HEAT_METRIC[query.metric], as_of)
    conditions = query.issue_filter.conditions() + ([condition] if condition is not None else [])
    rows = session.execute(select(Issue.lat, Issue.lon).where(*conditions)
                           .order_by(Issue.reported_at.desc()).limit(HEAT_RAW_LIMIT)).all()
    lon, lat = shift_points([r[1] for r in rows], [r[0] for r in rows], shift)
    points = [[y, x] for y, x in zip(np.round(lat, 5).tolist(), np.round(lon, 5).tolist())]
    return {"mode": "points", "level": query.level, "index": index, "count": int(count), "points": points}


MARKER_LIMIT = 1000
#: The most markers one answer may ask for (``limit``).
MAX_MARKERS = 2000
DESCRIPTION_CHARS = 200


def view_bbox(text: str | None, shift: str = "none") -> BBox:
    """The box of a map view (``bbox``, required; the rule of :func:`gridmap.issues.params.parse_bbox`) in WGS84.

    On AMap tiles (``shift`` gcj02) the browser's view is in GCJ-02 while the data is WGS84.
    """
    bbox = parse_bbox(text)
    if bbox is None:
        raise InvalidInput("bbox is required: west,south,east,north (e.g. bbox=109.40,18.20,109.45,18.25)")
    minx, miny, maxx, maxy = bbox
    if shift == "gcj02":
        lon, lat = gcj02_to_wgs84(np.array([minx, maxx]), np.array([miny, maxy]))
        minx, maxx, miny, maxy = float(lon[0]), float(lon[1]), float(lat[0]), float(lat[1])
    return minx, miny, maxx, maxy


def _overdue_case(as_of: datetime):
    return case((metric_condition("overdue", as_of), 1), else_=0)


def issue_markers(session: Session, issue_filter: MapFilter, bbox: tuple[float, float, float, float], *,
                  limit: int = MARKER_LIMIT, shift: str = "none", as_of: datetime | None = None) -> dict[str, Any]:
    """The newest issues in a lon/lat box (WGS84) that the filter selects, for markers with popups."""
    as_of = as_of or datetime.now(UTC)
    statement = (
        select(Issue.id, Issue.lat, Issue.lon, Issue.category, Issue.status, Issue.deadline, Issue.source,
               Issue.description, Issue.address, Issue.reported_at, _overdue_case(as_of))
        .where(*issue_filter.conditions(), *bbox_conditions(bbox))
        .order_by(Issue.reported_at.desc(), Issue.id.desc())
        .limit(limit + 1)
    )
    rows = session.execute(statement).all()
    truncated = len(rows) > limit
    rows = rows[:limit]
    lon, lat = shift_points([r.lon for r in rows], [r.lat for r in rows], shift)
    tz = ZoneInfo(issue_filter.timezone)
    issues = []
    for row, x, y in zip(rows, lon.tolist(), lat.tolist()):
        issues.append({
            "id": row.id,
            "lat": round(y, 6),
            "lon": round(x, 6),
            "category": row.category,
            "status": row.status,
            "source": row.source,
            "deadline": _local(row.deadline, tz),
            "reported_at": _local(row.reported_at, tz),
            "overdue": bool(row[-1]),
            "description": _clip(row.description),
            "address": row.address,
        })
    return {"issues": issues, "truncated": truncated, "limit": limit}


def open_issues(session: Session, issue_filter: MapFilter, *, limit: int = 500,
                as_of: datetime | None = None) -> dict[str, Any]:
    """The open issues the filter selects, overdue first, then by deadline: a manager's list."""
    as_of = as_of or datetime.now(UTC)
    open_condition = metric_condition("open", as_of)
    overdue = _overdue_case(as_of)
    conditions = [*issue_filter.conditions(), open_condition]
    totals = session.execute(select(func.count(), func.coalesce(func.sum(overdue), 0)).where(*conditions)).one()
    statement = (
        select(Issue.id, Issue.category, Issue.status, Issue.deadline, Issue.description, Issue.address,
               Issue.cell_code, Issue.reported_at, overdue.label("overdue"))
        .where(*conditions)
        .order_by(overdue.desc(), Issue.deadline.asc().nulls_last(), Issue.id)
        .limit(limit)
    )
    tz = ZoneInfo(issue_filter.timezone)
    rows = [
        {"id": r.id, "category": r.category, "status": r.status, "deadline": _local(r.deadline, tz),
         "description": _clip(r.description), "address": r.address, "cell": r.cell_code,
         "reported_at": _local(r.reported_at, tz), "overdue": bool(r.overdue)}
        for r in session.execute(statement)
    ]
    return {"issues": rows, "open": int(totals[0]), "overdue": int(totals[1]), "limit": limit}


def issue_weeks(session: Session, timezone_name: str) -> list[str]:
    """The Mondays (ISO dates, local time) of the weeks from the first issue to the last: the time axis."""
    # Two statements: each is one step down the reported_at index (one statement with both scans).
    first = session.execute(select(func.min(Issue.reported_at))).scalar()
    last = session.execute(select(func.max(Issue.reported_at))).scalar()
    if first is None:
        return []
    tz = ZoneInfo(timezone_name)
    start = _as_aware(first).astimezone(tz).date()
    end = _as_aware(last).astimezone(tz).date()
    monday = start - timedelta(days=start.weekday())
    weeks = []
    while monday <= end:
        weeks.append(monday.isoformat())
        monday += timedelta(days=7)
    return weeks


def _as_aware(moment: datetime) -> datetime:
    # min()/max() bypass the UTCDateTime type on some backends and come back naive UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _local(moment: datetime | None, tz: ZoneInfo) -> str | None:
    return None if moment is None else _as_aware(moment).astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _clip(text_value: str | None) -> str | None:
    if text_value is None or len(text_value) <= DESCRIPTION_CHARS:
        return text_value
    return text_value[:DESCRIPTION_CHARS - 1] + "…"


def level_for(catalogue: AreaCatalogue, scope: AreaScope, max_cells: int, *, tile_cells: int = 0) -> str:
    """The choropleth level: cells, or communities when the scope holds more than ``max_cells`` cells.

    With vector tiles (``tile_cells`` > 0) a scope of more than ``tile_cells`` cells stays at cells:
    they are drawn from tiles.
    """
    cells = len(scope.inside(catalogue, "cells"))
    if cells <= max_cells or 0 < tile_cells < cells:
        return "cells"
    return "communities"

