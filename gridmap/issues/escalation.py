"""The SLA tick: warning and overdue states of open issues, and escalation up the area hierarchy.

``gridmap sla tick`` (safe to run from cron, e.g. every 10 minutes) evaluates every open issue in
one transaction at one moment ``now``:

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

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from gridmap.errors import InvalidInput
from gridmap.issues.sla import deadline as add_time_limit
from gridmap.issues.states import OPEN_STATUSES
from gridmap.issues.workflow import WorkflowRules, sla_state_of
from gridmap.storage.models import Issue, IssueEscalation

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
    if issue.deadline is None:
        return []
    due = [issue.deadline]
    limit = rules.time_limit(issue)
    while limit is not None and len(due) < len(ESCALATION_LEVELS) and (until is None or due[-1] < until):
        due.append(add_time_limit(due[-1], limit[0], limit[1], rules.calendar))
    return [moment for moment in due if until is None or moment < until]


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> None:
    dialect = session.get_bind().dialect.name
    unique = ["issue_id", "level", "deadline"]
    if dialect == "postgresql":
        session.execute(postgresql.insert(IssueEscalation).on_conflict_do_nothing(index_elements=unique), rows)
    elif dialect == "sqlite":
        session.execute(sqlite.insert(IssueEscalation).on_conflict_do_nothing(index_elements=unique), rows)
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        session.execute(insert(IssueEscalation), rows)


def sla_tick(session: Session, rules: WorkflowRules, now: datetime | None = None) -> TickReport:
    """Update ``sla_state`` of every issue and write the escalations due at ``now``, in the caller's transaction."""
    now = datetime.now(UTC) if now is None else now
    if now.tzinfo is None or now.utcoffset() is None:
        raise InvalidInput(f"the tick's time {now.isoformat()} has no time zone")
    report = TickReport(at=now)
    session.execute(
        update(Issue).where(Issue.status.not_in(OPEN_STATUSES), Issue.sla_state.is_not(None)).values(sla_state=None)
    )
    issues = session.scalars(select(Issue).where(Issue.status.in_(OPEN_STATUSES)).order_by(Issue.id)).all()
    existing = {
        (issue_id, level, moment)
        for issue_id, level, moment in session.execute(
            select(IssueEscalation.issue_id, IssueEscalation.level, IssueEscalation.deadline)
            .join(Issue, Issue.id == IssueEscalation.issue_id)
            .where(Issue.status.in_(OPEN_STATUSES))
        )
    }
    rows = []
    for issue in issues:
        report.checked += 1
        try:
            state = sla_state_of(issue, now, rules)
            due_times = escalation_due_times(issue, rules, until=now) if state == "overdue" else []
        except InvalidInput as exc:
            report.problems.append(f"issue {issue.id}: {exc.message}")
            continue
        if issue.sla_state != state:
            issue.sla_state = state
        if state in report.states:
            report.states[state] += 1
        for (level, area_level, column), due in zip(ESCALATION_LEVELS, due_times):
            if (issue.id, level, issue.deadline) in existing:
                continue
            rows.append(dict(issue_id=issue.id, level=level, area_level=area_level, area_code=getattr(issue, column),
                             deadline=issue.deadline, due_at=due, created_at=now))
    if rows:
        _insert_ignoring_duplicates(session, rows)
    report.escalations = len(rows)
    session.flush()
    return report
