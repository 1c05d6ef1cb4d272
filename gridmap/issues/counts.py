"""Aggregation: issue counts per area (cell, community, street, district) for a period.

Definitions (one place; the README repeats them):

- ``total``: issues reported in the period (every status, rejected reports included);
- ``open``: of those, still being worked on (reported … checked, or suspended);
- ``closed``: closed or revisited (结案, 回访);
- ``overdue``: open, clock running (not suspended) and past the deadline at ``as_of`` (default now).

The period is ``[from, to]`` in whole local days (the service's time zone); either end may be
left open. A category filter takes an item code (``E0505``) or a class code (``E05``: all items).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, literal_column, select
from sqlalchemy.orm import Session

from gridmap.dates import parse_period
from gridmap.errors import InvalidInput
from gridmap.geo.layers import LEVELS
from gridmap.issues.categories import CategoryTree
from gridmap.issues.params import LEVEL_COLUMNS
from gridmap.issues.states import CLOCK_STOPPED_STATUSES, CLOSED_STATUSES, OPEN_STATUSES
from gridmap.security.access import UNLIMITED, AccessScope
from gridmap.storage.models import RUNNING_STATUSES, Area, Issue
from gridmap.storage.rollup import issue_rollup, rollup_timezone

#: The four counts of every area figure, in the order grouped_counts returns them.
COUNTS: tuple[str, ...] = ("total", "open", "overdue", "closed")


@dataclass(frozen=True)
class IssueFilter:
    """Which issues to count: a reporting period in local days and an optional category."""

    date_from: date | None = None
    date_to: date | None = None
    category: str | None = None
    timezone: str = "Asia/Shanghai"
    access: AccessScope = UNLIMITED  # the rows the asking principal may see

    @classmethod
    def parse(cls, *, date_from: str | None, date_to: str | None, category: str | None,
              categories: CategoryTree, timezone_name: str, access: AccessScope) -> IssueFilter:
        """Build a filter from query-string values, refusing bad dates and unknown categories.

        ``access`` is required so that no caller forgets whose rows it is counting.
        """
        start, end = parse_period(date_from, date_to)
        code = None
        if category not in (None, ""):
            code = categories.get(category).code
        return cls(start, end, code, timezone_name, access)

    def conditions(self, on: Any = Issue) -> list[Any]:
        """SQL conditions on the issues table, or with ``on=issue_rollup.c`` the same selection of the rollup."""
        tz = ZoneInfo(self.timezone)
        conditions = []
        by_day = not hasattr(on, "reported_at")  # the rollup counts whole local days
        if self.date_from:
            conditions.append(on.day >= self.date_from if by_day else
                              on.reported_at >= datetime.combine(self.date_from, time(), tz).astimezone(UTC))
        if self.date_to:
            end = datetime.combine(self.date_to + timedelta(days=1), time(), tz).astimezone(UTC)
            conditions.append(on.day <= self.date_to if by_day else on.reported_at < end)
        if self.category:
            conditions.append(on.category.startswith(self.category, autoescape=True))
        conditions += self.access.issue_conditions(on)
        return conditions


def grouped_counts(session: Session, level: str, issue_filter: IssueFilter, *,
                   as_of: datetime | None = None) -> dict[str, tuple[int, int, int, int]]:
    """(total, open, overdue, closed) per area code of ``level`` over the issues ``issue_filter`` selects.

    The one grouped count behind the stats, the map, OGC and the analytics; areas without issues
    are left out. Total, open and closed come from the rollup (gridmap.storage.rollup) when it is
    built for the filter's time zone, else from the raw rows; overdue depends on the clock and is
    counted over the open issues whose clock runs, through their (status, deadline) index.
    """
    column = level_column(level)
    if rollup_timezone(session.connection()) != issue_filter.timezone:
        return raw_grouped_counts(session, column, issue_filter.conditions(), as_of=as_of)
    area = issue_rollup.c[column.key]
    status = issue_rollup.c.status
    statement = (
        select(area, func.sum(issue_rollup.c.issues),
               *(func.sum(case((status.in_(sorted(statuses)), issue_rollup.c.issues), else_=0))
                 for statuses in (OPEN_STATUSES, CLOSED_STATUSES)))
        .where(*issue_filter.conditions(issue_rollup.c))
        .group_by(area)
    )
    overdue: dict[str, int] = dict(session.connection().execute(
        select(column, func.count()).where(*issue_filter.conditions(), _running_past_deadline(as_of)).group_by(column)
    ).all())
    return {code: (int(total), int(open_ or 0), int(overdue.get(code, 0)), int(closed or 0))
            for code, total, open_, closed in session.connection().execute(statement).all() if total}


def _running_past_deadline(as_of: datetime | None) -> Any:
    """Overdue issues, with the statuses written out as the partial index ``ix_issues_running_deadline`` has them."""
    return and_(Issue.status.in_([literal_column(f"'{name}'") for name in RUNNING_STATUSES]),
                Issue.deadline < (as_of or datetime.now(UTC)))


def raw_grouped_counts(session: Session, column: Any, conditions: list[Any], *,
                       as_of: datetime | None = None) -> dict[str, tuple[int, int, int, int]]:
    """(total, open, overdue, closed) per value of ``column`` over the issues ``conditions`` select,
    from the raw rows."""
    statement = (
        select(column, func.count(),
               *(func.sum(case((metric_condition(m, as_of), 1), else_=0)) for m in COUNTS[1:]))
        .where(*conditions)
        .group_by(column)
    )
    return {code: (int(total), int(open_ or 0), int(overdue or 0), int(closed or 0))
            for code, total, open_, overdue, closed in session.connection().execute(statement).all()}


def level_column(level: str) -> Any:
    """The Issue column of a level's area code; InvalidInput naming the levels for an unknown one."""
    if level not in LEVEL_COLUMNS:
        raise InvalidInput(f"unknown level {level!r}; use one of {', '.join(LEVELS)}")
    return LEVEL_COLUMNS[level]


def area_counts(session: Session, level: str, issue_filter: IssueFilter, *,
                as_of: datetime | None = None) -> list[dict[str, Any]]:
    """Counts (total, open, overdue, closed) for every area of ``level``, zeros included, by code."""
    counted = grouped_counts(session, level, issue_filter, as_of=as_of)
    codes = [code for code in session.scalars(select(Area.code).where(Area.level == level).order_by(Area.code))
             if issue_filter.access.shows_area(code)]
    result = []
    for code in codes:
        result.append({"code": code, **dict(zip(COUNTS, counted.pop(code, (0, 0, 0, 0))))})
    # Issues stamped with codes of an older layer set still count, under their own code.
    for code, counts in sorted(counted.items()):
        result.append({"code": code, **dict(zip(COUNTS, counts)), "retired": True})
    return result


def metric_condition(metric: str, as_of: datetime | None = None):
    """The SQL condition selecting the issues one count (total, open, overdue, closed) counts."""
    as_of = as_of or datetime.now(UTC)
    conditions = {
        "total": None,
        "open": Issue.status.in_(sorted(OPEN_STATUSES)),
        "overdue": and_(Issue.status.in_(sorted(OPEN_STATUSES - CLOCK_STOPPED_STATUSES)), Issue.deadline < as_of),
        "closed": Issue.status.in_(sorted(CLOSED_STATUSES)),
    }
    if metric not in conditions:
        raise InvalidInput(f"unknown metric {metric!r}; use one of {', '.join(conditions)}")
    return conditions[metric]


def issue_points(session: Session, issue_filter: IssueFilter, *, limit: int, metric: str = "total",
                 as_of: datetime | None = None) -> list[tuple[float, float]]:
    """Up to ``limit`` locations (lat, lon) of the issues a metric counts, newest first."""
    condition = metric_condition(metric, as_of)
    conditions = issue_filter.conditions() + ([condition] if condition is not None else [])
    statement = select(Issue.lat, Issue.lon).where(*conditions).order_by(Issue.reported_at.desc()).limit(limit)
    return [(lat, lon) for lat, lon in session.execute(statement)]
