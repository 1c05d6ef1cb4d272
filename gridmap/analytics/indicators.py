"""Planner indicators (考核指标): every definition in one place, each with its formula.

A *period* is ``[from, to]`` in whole local days of the service's time zone. Each indicator is
computed per group: an area of one level (district, street, community or cell), a department or
a worker (the issue's current assignee); the ``total`` row covers every issue.

Cohorts (which issues an indicator looks at):

- **received cohort**: issues *reported* in the period (every source and status, rejected
  reports and merged duplicates included: they were received);
- **due cohort** (应结案): registered cases that ought to be closed in the period, chosen by the
  ``due`` option (see :data:`DUE_RULES`, default ``deadline``). Merged duplicates (``duplicate_of``
  set and closed by the ``merge`` action) are never in the due cohort, so they count neither as
  应结案 nor as 结案: their original carries the case.

Rates are fractions (0.955 = 95.5%) and ``None`` when the denominator is 0. docs/indicators.md
works every formula through an example.

Scopes: every function that loads issues takes the asking principal's ``access``
(:class:`gridmap.security.access.AccessScope`) and counts only the issues inside it; the ``total`` row is
then the total of the scope, and area rows list only the areas the scope shows.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gridmap.dates import EARLIEST_DAY, LATEST_DAY, parse_period
from gridmap.errors import InvalidInput
from gridmap.issues.params import LEVEL_COLUMNS, parse_choice
from gridmap.issues.states import CLOSED_STATUSES
from gridmap.labels import N_
from gridmap.security.access import AccessScope
from gridmap.storage.models import Area, Issue

#: Which cases are 应结案 (due) in a period.
#: ``deadline`` (default): registered cases whose deadline falls inside the period; 结案 = those
#: of them closed before the period ends.
#: ``closed``: cases closed inside the period plus cases still open at its end whose deadline fell
#: inside it (应结案 = 结案 + 超期未结); 结案 = cases closed inside the period.
DUE_RULES: tuple[str, ...] = ("deadline", "closed")
DEFAULT_DUE_RULE = "deadline"
#: What a row of the table is.
GROUPS: tuple[str, ...] = ("area", "department", "worker")
#: Area level → the Issue column of its code (gridmap.issues.params.LEVEL_COLUMNS).
AREA_LEVELS: dict[str, Any] = LEVEL_COLUMNS
#: Satisfaction is scored 1–5 at the revisit; 4 (满意) and 5 (非常满意) count as satisfied.
SATISFIED_MIN = 4
#: The labels of issues without a department or without a worker.
UNASSIGNED = {"department": "（未派遣）", "worker": "（未指派）"}

#: Indicator name → (Chinese label, formula). Counts first, then rates, then the median.
INDICATORS: dict[str, tuple[str, str]] = {
    "received": (N_("受理数"), "issues reported in the period"),
    "registered": (N_("立案数"), "of the received, those registered (立案)"),
    "dispatched": (N_("派遣数"), "of the received, those dispatched"),
    "due": (N_("应结案数"), "registered cases due in the period (the `due` option), merged duplicates excluded"),
    "closed": (N_("结案数"), "of the due, those closed (结案, 回访)"),
    "closed_on_time": (N_("按期结案数"), "of the closed, those closed no later than their deadline"),
    "reworked": (N_("返工数"), "of the due, cases sent back for rework at least once"),
    "extended": (N_("延期数"), "of the due, cases granted at least one extension"),
    "revisited": (N_("回访数"), "of the closed, those revisited with a satisfaction score"),
    "satisfied": (N_("满意数"), "of the revisited, scores 4–5 (of 1–5)"),
    "registration_rate": (N_("立案率"), "立案数 / 受理数"),
    "dispatch_rate": (N_("派遣率"), "派遣数 / 立案数"),
    "closure_rate": (N_("结案率"), "结案数 / 应结案数"),
    "on_time_rate": (N_("按期结案率"), "按期结案数 / 应结案数"),
    "rework_rate": (N_("返工率"), "返工数 / 应结案数"),
    "extension_rate": (N_("延期率"), "延期数 / 应结案数"),
    "median_hours_to_close": (
        N_("结案时长中位数（小时）"), "median of closed_at − registered_at over the closed, in hours"
    ),
    "satisfaction_rate": (N_("回访满意率"), "满意数 / 回访数"),
}
RATES: dict[str, tuple[str, str]] = {
    "registration_rate": ("registered", "received"),
    "dispatch_rate": ("dispatched", "registered"),
    "closure_rate": ("closed", "due"),
    "on_time_rate": ("closed_on_time", "due"),
    "rework_rate": ("reworked", "due"),
    "extension_rate": ("extended", "due"),
    "satisfaction_rate": ("satisfied", "revisited"),
}
COUNTS: tuple[str, ...] = tuple(name for name in INDICATORS if name not in RATES and name != "median_hours_to_close")




@dataclass(frozen=True)
class Period:
    """``[date_from, date_to]`` in whole local days of ``timezone``."""

    date_from: date
    date_to: date
    timezone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        for name, day in (("from", self.date_from), ("to", self.date_to)):
            if not EARLIEST_DAY <= day <= LATEST_DAY:
                raise InvalidInput(f"`{name}` ({day}) must lie between {EARLIEST_DAY} and {LATEST_DAY}")
        if self.date_from > self.date_to:
            raise InvalidInput(f"from ({self.date_from}) is after to ({self.date_to}); swap them")

    @classmethod
    def parse(cls, date_from: str | None, date_to: str | None, timezone_name: str, *,
              today: date | None = None) -> Period:
        """From query-string dates by :func:`gridmap.dates.parse_period`: default the last 30 days up to today."""
        start, end = parse_period(date_from, date_to, today=today or datetime.now(ZoneInfo(timezone_name)).date())
        assert start is not None and end is not None  # a closed period: parse_period fills both ends
        return cls(start, end, timezone_name)

    @property
    def start(self) -> datetime:
        """The first instant of the period (UTC)."""
        return datetime.combine(self.date_from, time(), ZoneInfo(self.timezone)).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the period (UTC)."""
        return datetime.combine(self.date_to + timedelta(days=1), time(), ZoneInfo(self.timezone)).astimezone(UTC)

    @property
    def days(self) -> int:
        """The period's length in days."""
        return (self.date_to - self.date_from).days + 1

    def previous(self) -> Period:
        """The period of equal length just before this one."""
        if (self.date_from - EARLIEST_DAY).days < self.days:
            raise InvalidInput(f"no previous period of {self.days} days before {self.date_from}: start on or after "
                               f"{EARLIEST_DAY + timedelta(days=self.days)}")
        return Period(self.date_from - timedelta(days=self.days), self.date_from - timedelta(days=1), self.timezone)

    def contains(self, moment: datetime | None) -> bool:
        """Whether an instant lies inside the period."""
        return moment is not None and self.start <= moment < self.end

    def as_dict(self) -> dict[str, str]:
        """``{"from": …, "to": …}`` as ISO dates."""
        return {"from": self.date_from.isoformat(), "to": self.date_to.isoformat()}


@dataclass
class Tally:
    """The counts of one group, from which every rate follows."""

    received: int = 0
    registered: int = 0
    dispatched: int = 0
    due: int = 0
    closed: int = 0
    closed_on_time: int = 0
    reworked: int = 0
    extended: int = 0
    revisited: int = 0
    satisfied: int = 0
    hours_to_close: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Counts, rates (fractions or None) and the median time to close (hours or None)."""
        row: dict[str, Any] = {name: getattr(self, name) for name in COUNTS}
        for name, (part, whole) in RATES.items():
            row[name] = ratio(getattr(self, part), getattr(self, whole))
        row["median_hours_to_close"] = round(statistics.median(self.hours_to_close), 2) if self.hours_to_close else None
        return {name: row[name] for name in INDICATORS}


def ratio(part: int, whole: int) -> float | None:
    """``part / whole`` rounded to 6 places, None when ``whole`` is 0."""
    return round(part / whole, 6) if whole else None


def format_rate(value: float | None) -> str:
    """A rate as a percentage with one decimal (0.95472 → ``95.5%``), ``—`` when undefined."""
    return "—" if value is None else f"{value * 100:.1f}%"


def is_merged_duplicate(issue: Any) -> bool:
    """A duplicate closed into its original by ``merge``: never 应结案 nor 结案."""
    return issue.duplicate_of is not None and issue.status in CLOSED_STATUSES


def is_closed(issue: Any, before: datetime) -> bool:
    """Closed (结案 or 回访) and closed before ``before``."""
    return issue.status in CLOSED_STATUSES and issue.closed_at is not None and issue.closed_at < before


def is_due(issue: Any, period: Period, rule: str) -> bool:
    """Whether a case is 应结案 in the period under the ``due`` rule (see :data:`DUE_RULES`)."""
    if issue.registered_at is None or is_merged_duplicate(issue):
        return False
    if rule == "deadline":
        return period.contains(issue.deadline)
    closed_inside = is_closed(issue, period.end) and period.contains(issue.closed_at)
    overdue_open = not is_closed(issue, period.end) and period.contains(issue.deadline)
    return closed_inside or overdue_open


def tally(issues: Iterable[Any], period: Period, due_rule: str = DEFAULT_DUE_RULE) -> Tally:
    """Count one group's issues (any objects with the Issue columns) for the period."""
    result = Tally()
    for issue in issues:
        if period.contains(issue.reported_at):
            result.received += 1
            result.registered += issue.registered_at is not None
            result.dispatched += issue.dispatched_at is not None
        if not is_due(issue, period, due_rule):
            continue
        result.due += 1
        result.reworked += (issue.rework_count or 0) > 0
        result.extended += (issue.extension_count or 0) > 0
        if not is_closed(issue, period.end):
            continue
        result.closed += 1
        result.closed_on_time += issue.deadline is None or issue.closed_at <= issue.deadline
        result.hours_to_close.append((issue.closed_at - issue.registered_at).total_seconds() / 3600)
        if issue.satisfaction is not None:
            result.revisited += 1
            result.satisfied += issue.satisfaction >= SATISFIED_MIN
    return result


_COLUMNS = (
    Issue.id, Issue.category, Issue.status, Issue.department, Issue.assignee, Issue.cell_code, Issue.community_code,
    Issue.street_code, Issue.district_code, Issue.reported_at, Issue.registered_at, Issue.dispatched_at,
    Issue.closed_at, Issue.deadline, Issue.duplicate_of, Issue.rework_count, Issue.extension_count,
    Issue.satisfaction,
)


def load_issues(session: Session, period: Period, category: str | None = None, *, access: AccessScope) -> list[Any]:
    """The rows in ``access`` any indicator of the period may count: reported, due or closed inside it."""
    touches = or_(
        (Issue.reported_at >= period.start) & (Issue.reported_at < period.end),
        (Issue.deadline >= period.start) & (Issue.deadline < period.end),
        (Issue.closed_at >= period.start) & (Issue.closed_at < period.end),
    )
    statement = select(*_COLUMNS).where(touches, *access.issue_conditions())
    if category:
        statement = statement.where(Issue.category.startswith(category, autoescape=True))
    return list(session.execute(statement.order_by(Issue.id)))


def group_key(issue: Any, group_by: str, level: str) -> str | None:
    """The group an issue belongs to: its area code at ``level``, department or assignee."""
    if group_by == "area":
        return getattr(issue, AREA_LEVELS[level].key)
    if group_by == "department":
        return issue.department
    return issue.assignee


def check_options(group_by: str, level: str, due_rule: str) -> None:
    """Refuse unknown ``group_by``, ``level`` and ``due`` values with the allowed ones."""
    parse_choice(group_by, GROUPS, "group_by", group_by)
    parse_choice(level, AREA_LEVELS, "level", level)
    parse_choice(due_rule, DUE_RULES, "due rule", due_rule)


def indicators(session: Session, period: Period, *, access: AccessScope, group_by: str = "area",
               level: str = "districts", due_rule: str = DEFAULT_DUE_RULE,
               category: str | None = None) -> dict[str, Any]:
    """Every indicator per group for the period, plus a ``total`` row over all issues in ``access``."""
    check_options(group_by, level, due_rule)
    issues = load_issues(session, period, category, access=access)
    groups: dict[str | None, list[Any]] = {}
    for issue in issues:
        groups.setdefault(group_key(issue, group_by, level), []).append(issue)
    rows = []
    if group_by == "area":
        names = {code: name for code, name in session.execute(select(Area.code, Area.name).where(Area.level == level))
                 if access.shows_area(code)}
        for code in sorted(set(names) | {key for key in groups if key}):
            rows.append({"key": code, "name": names.get(code, code),
                         **tally(groups.get(code, []), period, due_rule).as_dict()})
    else:
        for key in sorted(groups, key=lambda k: (k is None, k or "")):
            rows.append({"key": key, "name": key or UNASSIGNED[group_by],
                         **tally(groups[key], period, due_rule).as_dict()})
    return {
        "period": period.as_dict(),
        "group_by": group_by,
        "level": level if group_by == "area" else None,
        "due": due_rule,
        "category": category,
        "rows": rows,
        "total": tally(issues, period, due_rule).as_dict(),
    }


def write_indicators_xlsx(result: dict[str, Any], out: Path | BinaryIO) -> None:
    """The indicator table as an XLSX sheet: one row per group, Chinese headers, rates as percentages."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = "考核指标"
    period = result["period"]
    sheet.append([f"统计期 {period['from']} 至 {period['to']}", f"应结案口径: {result['due']}"])
    headers = ["编码", "名称"] + [label for label, _ in INDICATORS.values()]
    sheet.append(headers)
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for row in result["rows"] + [{"key": "", "name": "合计", **result["total"]}]:
        values: list[Any] = [row["key"] or "", row["name"]]
        values += [row[name] for name in INDICATORS]
        sheet.append(values)
        for name, cell in zip(INDICATORS, sheet[sheet.max_row][2:]):
            if name in RATES:
                cell.number_format = "0.0%"
    for column, width in zip("AB", (18, 20)):
        sheet.column_dimensions[column].width = width
    book.save(out)


__all__ = [
    "DUE_RULES", "GROUPS", "INDICATORS", "RATES", "Period", "Tally", "format_rate", "indicators", "is_due",
    "is_merged_duplicate", "ratio", "tally", "write_indicators_xlsx",
]
