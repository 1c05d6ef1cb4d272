"""Likely duplicates, flagged at intake: the same category within 50 m and 24 h (configurable).

Rule: a new issue is a likely duplicate of an earlier issue (reported at most ``hours`` before
it, or at the same moment with a lower id) of the same category whose location lies within
``distance_m`` metres (geodesic, WGS84), unless that issue was rejected or has been merged into
another. Of several such issues the candidate is the one that is not itself flagged, then the
nearest, then the earliest. The candidate is stored in ``Issue.possible_duplicate_of``; nothing
else changes until a dispatcher merges the issue (the ``merge`` action) or handles it normally.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from pyproj import Geod
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from gridmap.errors import InvalidInput
from gridmap.issues.states import DISCARDED_STATUSES
from gridmap.storage.models import Issue

_GEOD = Geod(ellps="WGS84")
_METRES_PER_DEGREE = 111_320.0


@dataclass(frozen=True)
class DuplicateRule:
    """Same category within ``distance_m`` metres and ``hours`` hours."""

    distance_m: float = 50.0
    hours: float = 24.0

    def __post_init__(self) -> None:
        if not (self.distance_m >= 0 and self.hours >= 0):
            raise InvalidInput(
                f"duplicate rule needs non-negative distance and hours, got {self.distance_m} m and {self.hours} h "
                "(settings duplicate_distance_m, duplicate_hours)"
            )

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> DuplicateRule:
        """The rule of the settings ``duplicate_distance_m`` and ``duplicate_hours``."""
        return cls(settings["duplicate_distance_m"], settings["duplicate_hours"])


def flag_duplicates(session: Session, issue_ids: Sequence[int], rule: DuplicateRule) -> dict[int, int]:
    """Flag each of the (just stored) issues that is a likely duplicate; return {issue id: candidate id}."""
    if not issue_ids or rule.distance_m == 0:
        return {}
    new = session.execute(
        select(Issue.id, Issue.category, Issue.lon, Issue.lat, Issue.reported_at).where(Issue.id.in_(list(issue_ids)))
    ).all()
    if not new:
        return {}
    window = timedelta(hours=rule.hours)
    pool = session.execute(
        select(Issue.id, Issue.category, Issue.lon, Issue.lat, Issue.reported_at, Issue.possible_duplicate_of).where(
            Issue.category.in_({row.category for row in new}),
            Issue.reported_at >= min(row.reported_at for row in new) - window,
            Issue.reported_at <= max(row.reported_at for row in new),
            Issue.status.not_in(DISCARDED_STATUSES),
            Issue.duplicate_of.is_(None),
        )
    ).all()
    by_category: dict[str, list[Any]] = {}
    for earlier in pool:
        by_category.setdefault(earlier.category, []).append(earlier)
    columns = {}
    for category, rows in by_category.items():
        rows.sort(key=lambda r: (r.reported_at, r.id))
        columns[category] = (
            np.array([r.id for r in rows]),
            np.array([r.reported_at.timestamp() for r in rows]),
            np.array([r.lon for r in rows]),
            np.array([r.lat for r in rows]),
            {r.id: r.possible_duplicate_of is not None for r in rows},
        )
    seconds = rule.hours * 3600
    lat_margin = rule.distance_m / _METRES_PER_DEGREE * 1.01
    found: dict[int, int] = {}
    for row in sorted(new, key=lambda r: (r.reported_at, r.id)):
        if row.category not in columns:
            continue
        ids, times, lons, lats, flagged = columns[row.category]
        moment = row.reported_at.timestamp()
        first, last = np.searchsorted(times, moment - seconds, "left"), np.searchsorted(times, moment, "right")
        index = np.arange(first, last)
        index = index[(ids[index] != row.id) & ((times[index] < moment) | (ids[index] < row.id))]
        lon_margin = lat_margin / max(np.cos(np.radians(row.lat)), 1e-6)
        index = index[(np.abs(lats[index] - row.lat) <= lat_margin) & (np.abs(lons[index] - row.lon) <= lon_margin)]
        if not len(index):
            continue
        _, _, distance = _GEOD.inv(np.full(len(index), row.lon), np.full(len(index), row.lat), lons[index], lats[index])
        near = distance <= rule.distance_m
        if not near.any():
            continue
        index, distance = index[near], distance[near]
        best = min(range(len(index)), key=lambda k: (flagged[ids[index[k]]], distance[k], times[index[k]], ids[index[k]]))
        found[row.id] = int(ids[index[best]])
        flagged[row.id] = True
    if found:
        session.execute(update(Issue), [{"id": issue_id, "possible_duplicate_of": other} for issue_id, other in found.items()])
    return found


def duplicate_distance_m(first: Issue, second: Issue) -> float:
    """Geodesic distance between two issues in metres."""
    return float(_GEOD.inv(first.lon, first.lat, second.lon, second.lat)[2])
