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
from sqlalchemy import Select, and_, select, update
from sqlalchemy.orm import Session, aliased

from gridmap.errors import InvalidInput
from gridmap.issues.states import DISCARDED_STATUSES
from gridmap.storage.models import Issue
from gridmap.storage.spatial import within_radius

_GEOD = Geod(ellps="WGS84")
#: New issues per candidate query.
_BATCH = 1000


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
    """Flag each of the (just stored) issues that is a likely duplicate; return {issue id: candidate id}.

    The candidates come from one query per batch of new issues, answered by the spatial index
    (GiST on PostgreSQL, (lat, lon) on SQLite, see gridmap.storage.spatial); ranking is done here.
    """
    if not issue_ids or rule.distance_m == 0:
        return {}
    new = session.execute(
        select(Issue.id, Issue.category, Issue.lon, Issue.lat, Issue.reported_at).where(Issue.id.in_(list(issue_ids)))
    ).all()
    if not new:
        return {}
    window = timedelta(hours=rule.hours)
    near: dict[int, list[Any]] = {}
    flagged: dict[int, bool] = {}
    by_time = sorted(new, key=lambda r: (r.reported_at, r.id))  # batches of neighbouring moments: short spans
    for start in range(0, len(by_time), _BATCH):
        for row in _candidates(session, by_time[start:start + _BATCH], window, rule.distance_m):
            near.setdefault(row.new_id, []).append(row)
            flagged[row.id] = row.possible_duplicate_of is not None
    found: dict[int, int] = {}
    for row in by_time:
        others = [c for c in near.get(row.id, ()) if c.id != row.id and row.reported_at - window <= c.reported_at
                  and (c.reported_at < row.reported_at or (c.reported_at == row.reported_at and c.id < row.id))]
        if not others:
            continue
        _, _, distance = _GEOD.inv(np.full(len(others), row.lon), np.full(len(others), row.lat),
                                   np.array([c.lon for c in others]), np.array([c.lat for c in others]))
        ranked = [(flagged[c.id], float(d), c.reported_at, c.id)
                  for c, d in zip(others, distance) if d <= rule.distance_m]
        if not ranked:
            continue
        found[row.id] = min(ranked)[3]
        flagged[row.id] = True
    if found:
        session.execute(
            update(Issue), [{"id": issue_id, "possible_duplicate_of": other} for issue_id, other in found.items()]
        )
    return found


def _candidates(session: Session, batch: Sequence[Any], window: timedelta, distance_m: float) -> Sequence[Any]:
    return session.execute(candidate_query(batch, window, distance_m)).all()


def candidate_query(batch: Sequence[Any], window: timedelta, distance_m: float) -> Select[Any]:
    """Issues of the same category within ``distance_m`` of an issue of ``batch`` and in the batch's window.

    ``batch`` holds stored issues (``id``, ``lat``, ``reported_at``); the window runs from ``window``
    before the earliest to the latest, so the caller keeps each pair's own window. Answer rows name
    the batch issue (``new_id``) and the candidate (``id``, ``lon``, ``lat``, ``reported_at``,
    ``possible_duplicate_of``). The spatial index answers it (gridmap.storage.spatial.within_radius).
    """
    # A materialised list of the batch drives the join: for each of its issues the spatial index finds the others.
    new = (select(Issue.id, Issue.category, Issue.lon, Issue.lat).where(Issue.id.in_([r.id for r in batch]))
           .cte("new_issue").prefix_with("MATERIALIZED"))
    other = aliased(Issue, name="other")
    return (
        select(new.c.id.label("new_id"), other.id, other.lon, other.lat, other.reported_at, other.possible_duplicate_of)
        .join_from(new, other, and_(
            # `|| ''`: no category index may drive the search (a category has issues everywhere).
            other.category.concat("") == new.c.category.concat(""),
            within_radius(other.lon, other.lat, new.c.lon, new.c.lat, distance_m,
                          max_abs_lat=max(abs(r.lat) for r in batch)),
        ))
        .where(
            other.reported_at >= min(r.reported_at for r in batch) - window,
            other.reported_at <= max(r.reported_at for r in batch),
            other.status.not_in(DISCARDED_STATUSES),
            other.duplicate_of.is_(None),
        )
    )


def duplicate_distance_m(first: Issue, second: Issue) -> float:
    """Geodesic distance between two issues in metres."""
    return float(_GEOD.inv(first.lon, first.lat, second.lon, second.lat)[2])
