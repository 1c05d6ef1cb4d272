"""The dispatcher's queue: open issues that wait for someone, or for time, sorted by deadline.

An open issue is in the queue for one or more reasons:

- ``to_register`` (待立案): reported, not yet registered or rejected;
- ``to_dispatch`` (待派遣): registered (or returned) and not dispatched to anyone;
- ``warning`` (即将超期): the clock runs and the warning share of the time allowed has passed
  (:func:`gridmap.issues.workflow.sla_state_of`, setting ``sla_warning_share``);
- ``overdue`` (已超期): the clock runs and the deadline has passed.

Suspended issues (挂账: the clock is stopped) are never in the queue. The queue is sorted by
deadline, earliest first (issues without one last), then by id. Knows no web framework.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from gridmap.errors import InvalidInput
from gridmap.issues.dispatch import Suggestion
from gridmap.issues.query import IssueQuery
from gridmap.issues.sla import TimeLimitKind
from gridmap.issues.workflow import (
    MAX_EXTENSIONS,
    WorkflowRules,
    sla_state_of,
    time_limit_length,
)
from gridmap.storage.models import RUNNING_STATUSES, Issue

REASONS: tuple[str, ...] = ("overdue", "warning", "to_dispatch", "to_register")
#: Why an issue is in the queue, keyed by status, for the reasons that depend on the status alone.
STATUS_REASONS = {"reported": "to_register", "registered": "to_dispatch"}
DEFAULT_LIMIT = 100


@dataclass
class QueueEntry:
    """One issue of the queue with why it is there and, once asked for, who could take it."""

    issue: Issue
    reasons: tuple[str, ...]
    sla_state: str | None
    suggestions: list[Suggestion] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """The most pressing reason (overdue before warning before waiting)."""
        return self.reasons[0]


@dataclass
class Queue:
    """The entries shown (up to the limit) and how many issues each reason holds in all."""

    entries: list[QueueEntry]
    total: int
    counts: dict[str, int]


def warning_horizon(rules: WorkflowRules) -> timedelta:
    """How far before its deadline an issue of any category may enter the warning state, in wall time.

    Only issues due within this horizon (or already late) are checked one by one. Working time
    is converted generously: a working day of clock may take 1.4 wall days (weekends) and a
    public-holiday block adds up to 12 days.
    """
    longest = timedelta(0)
    for category in rules.categories.leaves():
        if not (category.time_limit_kind and category.time_limit_value):
            continue
        kind = category.time_limit_kind
        allowed = time_limit_length(kind, category.time_limit_value, rules.calendar) * (1 + MAX_EXTENSIONS)
        window = allowed * (1 - rules.warn_share)
        if TimeLimitKind(kind).needs_calendar:
            working_days = window / rules.calendar.working_day_length
            window = timedelta(days=math.ceil(working_days * 1.4) + 12)
        longest = max(longest, window)
    return longest + timedelta(days=1)


def queue_candidates(query: IssueQuery, rules: WorkflowRules, now: datetime) -> Select[Issue]:
    """The issues that may be in the queue, by deadline: open ones with a running clock only.

    Their status condition is the one of the partial index ``ix_issues_running_deadline``
    (PostgreSQL), so the archive of closed issues is never read.
    """
    return (
        select(Issue)
        .where(*query.conditions(now), Issue.status.in_(RUNNING_STATUSES))
        .where(or_(Issue.status.in_(sorted(STATUS_REASONS)),
                   Issue.deadline <= now + warning_horizon(rules),
                   Issue.sla_state.in_(("warning", "overdue"))))
        .order_by(Issue.deadline, Issue.id)
    )


def dispatch_queue(session: Session, query: IssueQuery, rules: WorkflowRules, *,
                   now: datetime | None = None, limit: int = DEFAULT_LIMIT) -> Queue:
    """The queue of the issues that ``query`` selects (its area, category, status and source filters)."""
    if limit < 1:
        raise InvalidInput(f"limit must be at least 1, got {limit}")
    now = now or datetime.now(UTC)
    candidates = session.scalars(queue_candidates(query, rules, now)).all()
    entries = []
    for issue in candidates:
        try:
            state = sla_state_of(issue, now, rules)
        except InvalidInput:  # a deadline in a year the calendar does not cover: the last tick's answer
            state = issue.sla_state
        reasons = tuple(r for r in REASONS if r == state or r == STATUS_REASONS.get(issue.status))
        if reasons:
            entries.append(QueueEntry(issue, reasons, state))
    entries.sort(key=lambda e: (e.issue.deadline is None, e.issue.deadline or now, e.issue.id))
    counts = {reason: sum(reason in e.reasons for e in entries) for reason in REASONS}
    return Queue(entries[:limit], len(entries), counts)
