"""Hotspots: where issues concentrate (Getis-Ord Gi*), repeat locations, change against the last period.

**Statistic.** For each unit grid cell *i* with issue count x_i (issues reported in the period),
Getis-Ord Gi* (Getis & Ord 1992; Ord & Getis 1995) with binary weights that include the cell
itself::

    Gi* = (Σ_j w_ij x_j − X̄ Σ_j w_ij) / (S √((n Σ_j w_ij² − (Σ_j w_ij)²) / (n − 1)))

where n is the number of cells, X̄ the mean count and S = √(Σ x_j² / n − X̄²). Gi* is a z-score.

**Neighbourhood.** Queen contiguity: w_ij = 1 when cells i and j share an edge or a corner
(within 1 cm, which absorbs reprojection rounding), and w_ii = 1; every other weight is 0. A cell
without neighbours (an island) is compared with itself alone.

**Significance.** Two-sided p from the standard normal, p = erfc(|z| / √2), then the
Benjamini–Hochberg false discovery rate correction over all cells (``p_fdr``). A cell is
``hot-99`` / ``hot-95`` / ``hot-90`` when z > 0 and p_fdr < 0.01 / 0.05 / 0.10, ``cold-…``
likewise for z < 0, else ``none``. When every count is equal (S = 0) no cell is significant.

**Repeat locations.** Issues of the same category within ``radius_m`` (default 30 m) of a spot,
``min_count`` (default 3) or more times in the period. A spot is anchored at the earliest report;
later reports of that category within the radius of an anchor join it (no chaining).

**Change.** The same counts and classes for the previous period of equal length.

**Scopes**. Every query counts only the issues inside the asking principal's ``access``. For
a principal limited to some areas (a grid manager, a grid worker) the statistic is computed over
the cells of its areas only: n, X̄ and S are theirs, and neighbours outside the areas are left
out, so the classes say where issues concentrate *within* those areas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import select
from sqlalchemy.orm import Session

from gridmap.analytics.indicators import Period
from gridmap.geo.layers import LayerSet
from gridmap.issues.counts import IssueFilter, grouped_counts
from gridmap.labels import N_
from gridmap.security.access import AccessScope
from gridmap.storage.models import Issue

#: Cells closer than this (degrees, about 1 cm) count as touching.
TOUCH_TOLERANCE_DEG = 1e-7
#: Significance classes: (name, p_fdr limit), strictest first.
CONFIDENCE_LEVELS: tuple[tuple[str, float], ...] = (("99", 0.01), ("95", 0.05), ("90", 0.10))
CLASSES: tuple[str, ...] = ("hot-99", "hot-95", "hot-90", "none", "cold-90", "cold-95", "cold-99")
CLASS_LABELS: dict[str, str] = {
    "hot-99": N_("热点 99%"), "hot-95": N_("热点 95%"), "hot-90": N_("热点 90%"), "none": N_("不显著"),
    "cold-90": N_("冷点 90%"), "cold-95": N_("冷点 95%"), "cold-99": N_("冷点 99%"),
}
REPEAT_RADIUS_M = 30.0
REPEAT_MIN_COUNT = 3
EARTH_RADIUS_M = 6_371_008.8


def queen_neighbours(cells: gpd.GeoDataFrame) -> list[list[int]]:
    """For each cell (by position), the positions of the other cells sharing an edge or a corner."""
    geometries = cells.geometry.values
    tree = shapely.STRtree(geometries)
    pairs = tree.query(geometries, predicate="dwithin", distance=TOUCH_TOLERANCE_DEG)
    neighbours: list[list[int]] = [[] for _ in range(len(geometries))]
    for i, j in zip(*pairs):
        if i != j:
            neighbours[int(i)].append(int(j))
    return [sorted(n) for n in neighbours]


def getis_ord_gi_star(values: Sequence[float], neighbours: Sequence[Sequence[int]]) -> np.ndarray:
    """Gi* z-scores of ``values`` with binary weights: the cell itself and its ``neighbours``."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < 2:
        return np.zeros(n)
    mean = x.mean()
    s = math.sqrt(max((x ** 2).mean() - mean ** 2, 0.0))
    z = np.zeros(n)
    if s == 0:
        return z
    for i in range(n):
        members = [i, *neighbours[i]]
        weight_sum = len(members)  # binary weights: Σw = Σw² = number of members
        local = x[members].sum()
        spread = math.sqrt((n * weight_sum - weight_sum ** 2) / (n - 1))
        z[i] = (local - mean * weight_sum) / (s * spread) if spread > 0 else 0.0
    return z


def two_sided_p(z: np.ndarray) -> np.ndarray:
    """Two-sided p-values of standard normal z-scores."""
    return np.array([math.erfc(abs(float(v)) / math.sqrt(2)) for v in np.asarray(z, dtype=float)])


def benjamini_hochberg(p: Sequence[float]) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (monotone, capped at 1), in the input order."""
    p = np.asarray(p, dtype=float)
    m = len(p)
    if m == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    result = np.empty(m)
    result[order] = np.minimum(adjusted, 1.0)
    return result


def classify(z: float, p_fdr: float) -> str:
    """``hot-99`` … ``cold-99`` or ``none`` from a z-score and its FDR-adjusted p."""
    for name, limit in CONFIDENCE_LEVELS:
        if p_fdr < limit and z != 0:
            return f"{'hot' if z > 0 else 'cold'}-{name}"
    return "none"


def gi_star_table(
    codes: Sequence[str], counts: Sequence[float], neighbours: Sequence[Sequence[int]]
) -> list[dict[str, Any]]:
    """Rows ``{code, count, gi_z, p, p_fdr, class}`` for cells with the given counts and neighbourhood."""
    z = getis_ord_gi_star(counts, neighbours)
    p = two_sided_p(z)
    p_fdr = benjamini_hochberg(p)
    return [
        {"code": code, "count": int(count), "gi_z": round(float(zi), 6), "p": float(pi), "p_fdr": float(qi),
         "class": classify(float(zi), float(qi))}
        for code, count, zi, pi, qi in zip(codes, counts, z, p, p_fdr)
    ]


def cell_counts(
    session: Session, period: Period, category: str | None = None, *, access: AccessScope
) -> dict[str, int]:
    """Issues in ``access`` reported in the period per cell code (category: an item or class code prefix)."""
    issue_filter = IssueFilter(period.date_from, period.date_to, category or None, period.timezone, access)
    return {code: counts[0] for code, counts in grouped_counts(session, "cells", issue_filter).items()}


_NEIGHBOURS_CACHE: dict[int, tuple[LayerSet, list[list[int]]]] = {}


def _neighbours_of(layers: LayerSet) -> list[list[int]]:
    cached = _NEIGHBOURS_CACHE.get(id(layers))
    if cached is None or cached[0] is not layers:
        cached = (layers, queen_neighbours(layers.cells))
        _NEIGHBOURS_CACHE.clear()  # one layer set at a time is plenty
        _NEIGHBOURS_CACHE[id(layers)] = cached
    return cached[1]


def hotspot_cells(session: Session, layers: LayerSet, period: Period, *, access: AccessScope,
                  category: str | None = None) -> list[dict[str, Any]]:
    """Every cell of the layer set in ``access`` with ``{code, count, gi_z, p, p_fdr, class}`` for the period."""
    codes = [str(code) for code in layers.cells["code"]]
    neighbours = _neighbours_of(layers)
    if access.areas is not None:  # the statistic over the scope's cells alone: its own mean, spread and neighbours
        keep = [i for i, code in enumerate(codes) if access.covers_cell(code)]
        position = {old: new for new, old in enumerate(keep)}
        codes = [codes[i] for i in keep]
        neighbours = [[position[j] for j in neighbours[i] if j in position] for i in keep]
    counted = cell_counts(session, period, category, access=access)
    return gi_star_table(codes, [counted.get(code, 0) for code in codes], neighbours)


def repeat_locations(session: Session, period: Period, *, access: AccessScope, category: str | None = None,
                     radius_m: float = REPEAT_RADIUS_M, min_count: int = REPEAT_MIN_COUNT) -> list[dict[str, Any]]:
    """Spots where the same category was reported ``min_count`` or more times within ``radius_m``, most first.

    Only issues in ``access`` count; a spot carries no reporter data (ids, category, place, times).
    """
    statement = (select(Issue.id, Issue.category, Issue.lon, Issue.lat, Issue.cell_code, Issue.reported_at)
                 .where(Issue.reported_at >= period.start, Issue.reported_at < period.end, *access.issue_conditions())
                 .order_by(Issue.reported_at, Issue.id))
    if category:
        statement = statement.where(Issue.category.startswith(category, autoescape=True))
    spots: dict[str, list[dict[str, Any]]] = {}
    for issue_id, code, lon, lat, cell, reported_at in session.execute(statement):
        anchors = spots.setdefault(code, [])
        for spot in anchors:
            if _distance_m(spot["lon"], spot["lat"], lon, lat) <= radius_m:
                spot["issue_ids"].append(issue_id)
                spot["last_reported_at"] = reported_at
                break
        else:
            anchors.append({"category": code, "lon": lon, "lat": lat, "cell_code": cell, "issue_ids": [issue_id],
                            "first_reported_at": reported_at, "last_reported_at": reported_at})
    found = [spot for anchors in spots.values() for spot in anchors if len(spot["issue_ids"]) >= min_count]
    for spot in found:
        spot["count"] = len(spot["issue_ids"])
        spot["first_reported_at"] = spot["first_reported_at"].isoformat()
        spot["last_reported_at"] = spot["last_reported_at"].isoformat()
    return sorted(found, key=lambda s: (-s["count"], s["category"], s["issue_ids"][0]))


def _distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance (haversine) in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def hotspot_report(session: Session, layers: LayerSet, period: Period, *, access: AccessScope,
                   category: str | None = None, radius_m: float = REPEAT_RADIUS_M,
                   min_count: int = REPEAT_MIN_COUNT) -> dict[str, Any]:
    """Cells in ``access`` with this and the previous period's counts and classes, the hot list and repeat spots."""
    previous = period.previous()
    current = hotspot_cells(session, layers, period, access=access, category=category)
    before = {row["code"]: row for row in hotspot_cells(session, layers, previous, access=access, category=category)}
    names = dict(zip(layers.cells["code"], layers.cells["name"]))
    cells = []
    for row in current:
        old = before[row["code"]]
        cells.append({**row, "name": names.get(row["code"], row["code"]), "previous_count": old["count"],
                      "change": row["count"] - old["count"], "previous_class": old["class"],
                      "new_hotspot": row["class"].startswith("hot") and not old["class"].startswith("hot")})
    ranked = sorted((c for c in cells if c["class"].startswith("hot")), key=lambda c: (-c["gi_z"], c["code"]))
    return {
        "period": period.as_dict(),
        "previous_period": previous.as_dict(),
        "category": category,
        "neighbourhood": "queen contiguity (shared edge or corner), self included",
        "correction": "Benjamini-Hochberg FDR",
        "cells": cells,
        "hotspots": ranked,
        "coldspots": sorted((c for c in cells if c["class"].startswith("cold")), key=lambda c: (c["gi_z"], c["code"])),
        "repeat_radius_m": radius_m,
        "repeat_min_count": min_count,
        "repeats": repeat_locations(session, period, access=access, category=category, radius_m=radius_m,
                                    min_count=min_count),
    }


__all__ = [
    "CLASSES", "CLASS_LABELS", "benjamini_hochberg", "classify", "getis_ord_gi_star", "gi_star_table",
    "hotspot_cells", "hotspot_report", "queen_neighbours", "repeat_locations", "two_sided_p",
]
