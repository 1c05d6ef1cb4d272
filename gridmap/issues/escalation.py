"""The SLA tick: warning and overdue states of open issues, and escalation up the area hierarchy.

``gridmap sla tick`` (safe to run from cron, e.g. every 10 minutes) evaluates, in one transaction at
one moment ``now``, the open issues whose state can change by then: each issue's ``sla_next_at``
holds the next moment its SLA state changes or an escalation level falls due (set by every
workflow action and by the tick itself; intake and imports mark new rows due at once), so a tick
reads only the rows due through the partial index ``ix_issues_sla_next_at``. When the rules that
place those moments change (calendar, time limits, warning share) the next tick evaluates every
open issue once.

- ``sla_state``: ``ok``; ``warning`` once the warning share (setting ``sla_warning_share``, default
  0.8) of the time allowed has passed on the time limit's own clock (working time for the working
  kinds); ``overdue`` once the deadline has passed; ``paused`` while suspended (挂账). Closed and
  rejected issues have none.
- Escalation rule: an overdue issue is escalated to level 1, its **cell** (网格), as soon as its
  deadline has passed; to level 2, its **community** (社区), once it is overdue by one more
  original time limit; to level 3, its **street** (街道/镇), once overdue by two. Level *k* falls
  due at ``deadline + (k − 1) × time limit`` counted on the limit's clock (a 4-working-hour case due
  Friday 16:00 reaches the community on Monday 10:00 and the street on Monday 16:00).
- Each record is written once per issue, level and deadline: running the tick again writes
  nothing new (idempotent), two ticks at once do not clash (insert-or-ignore), and an issue whose
  deadline moves (extension, resume, reopen) and is missed again escalates afresh from level 1.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gridmap.errors import InvalidInput
from gridmap.issues.sla import deadline as add_time_limit
from gridmap.issues.states import OPEN_STATUSES
from gridmap.issues.workflow import JUST_AFTER, WorkflowRules, sla_next_change, sla_state_of
from gridmap.storage.models import Issue, IssueEscalation, Meta

#: Escalation levels: (level, area level, the issue's column holding that area's code).
ESCALATION_LEVELS: tuple[tuple[int, str, str], ...] = (
    (1, "cell", "cell_code"),
    (2, "community", "community_code"),
    (3, "street", "street_code"),
)


@dataclass
class TickReport:
    """What one tick found and wrote."""

    at: datetime
    checked: int = 0
    states: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("ok", "warning", "overdue", "paused"), 0))
    escalations: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "checked": self.checked, "states": self.states,
                "escalations": self.escalations, "problems": self.problems}


def escalation_due_times(issue: Issue, rules: WorkflowRules, until: datetime | None = None) -> list[datetime]:
    """When each escalation level falls due for the issue's current deadline; with ``until``, only those due by then."""
    return [moment for moment in _due_times_through(issue, rules, until) if until is None or moment < until]


def _due_times_through(issue: Issue, rules: WorkflowRules, until: datetime | None) -> list[datetime]:
    """The escalation due times up to and including the first one at or after ``until``."""
    if issue.deadline is None:
        return []
    due = [issue.deadline]
    limit = rules.time_limit(issue)
    while limit is not None and len(due) < len(ESCALATION_LEVELS) and (until is None or due[-1] < until):
        due.append(add_time_limit(due[-1], limit[0], limit[1], rules.calendar))
    return due


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> None:
    dialect = session.get_bind().dialect.name
    unique = ["issue_id", "level", "deadline"]
    if dialect == "postgresql":
        session.execute(postgresql.insert(IssueEscalation).on_conflict_do_nothing(index_elements=unique), rows)
    elif dialect == "sqlite":
        session.execute(sqlite.insert(IssueEscalation).on_conflict_do_nothing(index_elements=unique), rows)
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        session.execute(insert(IssueEscalation), rows)


#: Issues the tick evaluates per batch (a batch's escalations are read and written together).
TICK_BATCH = 1000
#: The meta key holding the fingerprint of the rules the stored ``sla_next_at`` were placed with.
RULES_KEY = "sla_rules"


def rules_fingerprint(rules: WorkflowRules) -> str:
    """A digest of everything that places an issue's next SLA change (calendar, time limits, warning share)."""
    calendar = rules.calendar
    parts = [repr(rules.warn_share), str(calendar.tz), repr(calendar.working_periods),
             repr(sorted(calendar.holidays)), repr(sorted(calendar.workdays)), repr(sorted(calendar.years))]
    parts += [f"{c.code}:{c.time_limit_kind}:{c.time_limit_value}" for c in rules.categories]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def next_tick_at(issue: Issue, now: datetime, rules: WorkflowRules, state: str | None) -> datetime | None:
    """After a tick at ``now``: the issue's next moment (an overdue one: the next escalation level not yet due)."""
    if state == "overdue" and issue.status in OPEN_STATUSES:
        later = [moment for moment in _due_times_through(issue, rules, now) if moment >= now]
        return later[0] + JUST_AFTER if later else None
    return sla_next_change(issue, now, rules, state)


def due_issue_ids(now: datetime) -> Select[int]:
    """The ids of the issues whose next SLA moment has come: read through ``ix_issues_sla_next_at`` alone."""
    return select(Issue.id).where(Issue.sla_next_at <= now)


def sla_tick(session: Session, rules: WorkflowRules, now: datetime | None = None, *,
             batch_size: int = TICK_BATCH) -> TickReport:
    """Update ``sla_state`` of the issues due and write the escalations due at ``now``, in the caller's transaction.

    Reads only the rows whose ``sla_next_at`` has come (index ``ix_issues_sla_next_at``), in
    batches of ``batch_size`` by id; every open issue once when the rules changed since the last tick. The report
    counts every open issue by its state.
    """
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidInput(f"the tick's time {now.isoformat()} has no time zone")
    if batch_size < 1:
        raise InvalidInput(f"batch_size must be at least 1, got {batch_size}")
    report = TickReport(at=now)
    fingerprint = rules_fingerprint(rules)
    stored = session.get(Meta, RULES_KEY)
    due_ids = set(session.scalars(due_issue_ids(now)))
    if stored is None or stored.value != fingerprint:
        due_ids.update(session.scalars(select(Issue.id).where(Issue.status.in_(sorted(OPEN_STATUSES)))))
        session.merge(Meta(key=RULES_KEY, value=fingerprint))
    unevaluated: list[str | None] = []
    ordered = sorted(due_ids)
    for start in range(0, len(ordered), batch_size):
        ids = ordered[start:start + batch_size]
        batch = session.scalars(select(Issue).where(Issue.id.in_(ids)).order_by(Issue.id)).all()
        report.escalations += _tick_batch(session, rules, now, list(batch), report, unevaluated)
        session.flush()
        for issue in batch:
            session.expunge(issue)
    counts = dict(session.execute(select(Issue.sla_state, func.count()).where(Issue.status.in_(sorted(OPEN_STATUSES)))
                                  .group_by(Issue.sla_state)).all())
    report.checked = sum(counts.values())
    for state in unevaluated:
        counts[state] -= 1
    for state in report.states:
        report.states[state] = counts.get(state, 0)
    return report


def _tick_batch(session: Session, rules: WorkflowRules, now: datetime, batch: list[Issue], report: TickReport,
                unevaluated: list[str | None]) -> int:
    """Evaluate one batch; return how many escalations were written."""
    existing = {
        (issue_id, level, moment)
        for issue_id, level, moment in session.execute(
            select(IssueEscalation.issue_id, IssueEscalation.level, IssueEscalation.deadline)
            .where(IssueEscalation.issue_id.in_([issue.id for issue in batch]))
        )
    }
    rows = []
    for issue in batch:
        if issue.status not in OPEN_STATUSES:
            issue.sla_state = issue.sla_next_at = None
            continue
        try:
            state = sla_state_of(issue, now, rules)
            due_times = escalation_due_times(issue, rules, until=now) if state == "overdue" else []
            next_at = next_tick_at(issue, now, rules, state)
        except InvalidInput as exc:
            report.problems.append(f"issue {issue.id}: {exc.message}")
            unevaluated.append(issue.sla_state)
            continue
        if issue.sla_state != state:
            issue.sla_state = state
        if issue.sla_next_at != next_at:
            issue.sla_next_at = next_at
        for (level, area_level, column), due in zip(ESCALATION_LEVELS, due_times):
            if (issue.id, level, issue.deadline) in existing:
                continue
            rows.append(dict(issue_id=issue.id, level=level, area_level=area_level, area_code=getattr(issue, column),
                             deadline=issue.deadline, due_at=due, created_at=now))
    if rows:
        _insert_ignoring_duplicates(session, rows)
    return len(rows)
