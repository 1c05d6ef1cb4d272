"""The closed loop of digital city management (数字城管): statuses, actions, their rules and clock.

reported → registered (立案) | rejected (不予立案) → dispatched (派遣) → in_progress (处置) →
handled (反馈) → checked (核查) → closed (结案) → revisited (回访); ``suspended`` (挂账) stops
the clock.

Every change of an issue goes through :func:`apply_action`: it checks that the action is allowed
from the issue's status (else :class:`IllegalTransition`, a 409 naming the allowed actions),
checks the action's parameters (else InvalidInput), updates the issue (status, stage times,
deadline, department, assignee…) and writes one :class:`~gridmap.storage.models.IssueTransition`
(who, when, from, to, comment, details) in the caller's transaction.

Actions (the fixed vocabulary; the README has the table):

==========  ==============================  ================================================
action      from → to                       parameters and effect
==========  ==============================  ================================================
register    reported → registered           deadline = registration + the category's limit
reject      reported → rejected             reason (comment) required
dispatch    registered → dispatched         ``department`` and/or ``assignee``; without them
                                            the department routed at intake is kept
start       dispatched → in_progress        the department has taken the case on
feedback    in_progress → handled           the department reports it done
check       handled → checked               the check passed
rework      handled → in_progress           the check failed; reason required; rework_count+1
close       checked → closed
revisit     closed → revisited              ``satisfaction`` 1–5 required
return      dispatched, in_progress →       reason required; the department sends the case
            registered                      back to dispatch (department, assignee cleared)
extend      dispatched, in_progress         reason and ``approver`` required; the deadline
            (status unchanged)              moves by one more original time limit; ≤ 2 times
suspend     any open status → suspended     reason required; the clock stops
resume      suspended → the status before   the deadline moves by the paused clock time
reopen      closed, revisited → registered  reason required; a new time limit from now
merge       reported … in_progress → closed ``original`` (issue id): closes a duplicate into it
==========  ==============================  ================================================

Extensions are recorded as one action that carries both the request (the actor, the reason)
and its approval (``approver``): a case is extended only once it is approved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridmap.dates import CLOCK_SKEW
from gridmap.errors import Conflict, InvalidInput, NotFound
from gridmap.issues.categories import CategoryTree, load_categories
from gridmap.issues.sla import TimeLimitKind, WorkingCalendar, deadline, parse_time_limit_kind
from gridmap.issues.states import (
    _STAGE_OF_STATUS,
    ACTION_PARAMS,
    ACTIONS,
    CLOCK_STOPPED_STATUSES,
    DISCARDED_STATUSES,
    MAX_EXTENSIONS,
    OPEN_STATUSES,
    REASON_REQUIRED,
    TRANSITIONS,
)
from gridmap.storage.models import Issue, IssueTransition

#: The SLA states change strictly after their moment (overdue once ``now > deadline``).
JUST_AFTER = timedelta(microseconds=1)


class IllegalTransition(Conflict):
    """An action that the issue's current status (or history) does not allow (409)."""

    code = "illegal_transition"


@dataclass(frozen=True)
class WorkflowRules:
    """What the workflow needs besides the database: the working calendar and the category tree."""

    calendar: WorkingCalendar
    categories: CategoryTree
    warn_share: float = 0.8

    def __post_init__(self) -> None:
        if not 0 < self.warn_share <= 1:
            raise InvalidInput(
                "sla_warning_share must be in (0, 1], e.g. 0.8 for a warning at 80% of the time limit; "
                f"got {self.warn_share!r}"
            )

    @classmethod
    def default(cls) -> WorkflowRules:
        """The bundled calendar and category tree (the service builds its own from the settings)."""
        return cls(WorkingCalendar.load(), load_categories())

    def time_limit(self, issue: Issue) -> tuple[TimeLimitKind, float] | None:
        """The issue's time limit: the one fixed at registration, else its category's (None if none)."""
        if issue.time_limit_kind and issue.time_limit_value:
            return parse_time_limit_kind(issue.time_limit_kind), float(issue.time_limit_value)
        if issue.category in self.categories:
            category = self.categories.get(issue.category)
            if category.time_limit_kind and category.time_limit_value:
                return category.time_limit_kind, float(category.time_limit_value)
        return None


# --------------------------------------------------------------------------------------------
# The clock of a time-limit kind


def clock_between(start: datetime, end: datetime, kind: TimeLimitKind | str, calendar: WorkingCalendar) -> timedelta:
    """Time on the kind's clock from ``start`` to ``end`` (working time for the working kinds)."""
    kind = parse_time_limit_kind(kind)
    if kind.needs_calendar:
        return calendar.working_time_between(start, end)
    if kind is TimeLimitKind.calendar_days:
        return _wall(end, calendar) - _wall(start, calendar)
    return end - start


def clock_add(start: datetime, amount: timedelta, kind: TimeLimitKind | str, calendar: WorkingCalendar) -> datetime:
    """The moment ``amount`` of the kind's clock after ``start`` (``amount`` ≥ 0)."""
    kind = parse_time_limit_kind(kind)
    if kind.needs_calendar:
        return calendar.add_working_time(start, amount)
    if kind is TimeLimitKind.calendar_days:
        return (_wall(start, calendar) + amount).replace(tzinfo=calendar.tz).astimezone(start.tzinfo)
    return start + amount


def time_limit_length(kind: TimeLimitKind | str, value: float, calendar: WorkingCalendar) -> timedelta:
    """One time limit as an amount of the kind's clock (working days count 8 working hours each)."""
    kind = parse_time_limit_kind(kind)
    if kind is TimeLimitKind.working_days:
        return calendar.working_day_length * value
    if kind is TimeLimitKind.calendar_days:
        return timedelta(days=value)
    return timedelta(hours=value)


def clock_earliest_within(end: datetime, amount: timedelta, kind: TimeLimitKind | str,
                          calendar: WorkingCalendar) -> datetime:
    """The earliest moment from which at most ``amount`` of the kind's clock is left until ``end``."""
    kind = parse_time_limit_kind(kind)
    if kind.needs_calendar:
        return calendar.earliest_within(end, amount)
    if kind is TimeLimitKind.calendar_days:
        return (_wall(end, calendar) - amount).replace(tzinfo=calendar.tz).astimezone(end.tzinfo)
    return end - amount


def _wall(moment: datetime, calendar: WorkingCalendar) -> datetime:
    return calendar.local(moment).replace(tzinfo=None)


def sla_state_of(issue: Issue, now: datetime, rules: WorkflowRules) -> str | None:
    """``ok``, ``warning``, ``overdue`` for an open issue with a running clock; ``paused`` when suspended; else None.

    Warning once ``rules.warn_share`` of the time allowed (the time limit times one plus the
    approved extensions) has passed on the kind's clock; overdue once the deadline has passed.
    """
    if issue.status not in OPEN_STATUSES or issue.deadline is None:
        return None
    if issue.status in CLOCK_STOPPED_STATUSES:
        return "paused"
    if now > issue.deadline:
        return "overdue"
    limit = rules.time_limit(issue)
    if limit is None:
        return "ok"
    kind, value = limit
    allowed = time_limit_length(kind, value, rules.calendar) * (1 + (issue.extension_count or 0))
    remaining = clock_between(now, issue.deadline, kind, rules.calendar)
    return "warning" if remaining <= allowed * (1 - rules.warn_share) else "ok"


def sla_next_change(issue: Issue, now: datetime, rules: WorkflowRules, state: str | None) -> datetime | None:
    """After ``now``, the next moment the SLA tick has work for the issue (``sla_next_at``); None: never.

    ``state`` is the issue's SLA state at ``now``. ``ok`` → the warning starts; ``warning`` → the
    deadline passes; ``overdue`` → just after the deadline, when escalation level 1 falls due (the
    tick, :func:`gridmap.issues.escalation.sla_tick`, moves it on to the next level); paused,
    finished and deadline-less issues wait for their next action. Raises InvalidInput when the
    calendar cannot count the issue's clock.
    """
    if issue.status not in OPEN_STATUSES or issue.deadline is None or state in (None, "paused"):
        return None
    limit = rules.time_limit(issue)
    if state in ("warning", "overdue") or limit is None:
        return issue.deadline + JUST_AFTER
    kind, value = limit
    allowed = time_limit_length(kind, value, rules.calendar) * (1 + (issue.extension_count or 0))
    return clock_earliest_within(issue.deadline, allowed * (1 - rules.warn_share), kind, rules.calendar)


# --------------------------------------------------------------------------------------------
# Actions


def allowed_actions(issue: Issue) -> list[str]:
    """The actions the issue's status allows now, in vocabulary order."""
    return [
        action
        for action in ACTIONS
        if issue.status in TRANSITIONS[action]
        and not (action == "extend" and (issue.extension_count or 0) >= MAX_EXTENSIONS)
    ]


def _allowed_text(issue: Issue) -> str:
    allowed = allowed_actions(issue)
    listed = ", ".join(allowed) if allowed else "none (the case is finished)"
    return f"allowed actions from {issue.status}: {listed}"


def _refuse(issue: Issue, action: str, why: str) -> IllegalTransition:
    return IllegalTransition(
        f"cannot {action} issue {issue.id}: {why}; {_allowed_text(issue)}",
        details={"issue": issue.id, "status": issue.status, "action": action, "allowed": allowed_actions(issue)},
    )


def _known_action(action: object) -> str:
    name = str(action).strip().lower() if action is not None else ""
    if name not in TRANSITIONS:
        raise InvalidInput(
            f"unknown action {action!r}: use one of {', '.join(ACTIONS)}", details={"actions": list(ACTIONS)}
        )
    return name


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text, got {type(value).__name__}")
    return value.strip() or None


def _moment(value: datetime | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"the time of an action must be a timezone-aware datetime, got {value!r}")
    if value > datetime.now(UTC) + CLOCK_SKEW:  # a step in the future would block every later one
        raise InvalidInput(f"the time of an action, {value.isoformat()}, is in the future; leave it out to act now")
    return value


def apply_action(
    session: Session,
    issue: Issue,
    action: str,
    *,
    actor: str,
    comment: str | None = None,
    at: datetime | None = None,
    rules: WorkflowRules | None = None,
    **params: Any,
) -> IssueTransition:
    """Apply ``action`` to ``issue`` at ``at`` (default now) in the caller's transaction; return its record.

    Raises IllegalTransition (409) when the status does not allow the action, InvalidInput
    (400) for a missing reason or a bad parameter; nothing is changed then.
    """
    action = _known_action(action)
    accepted = ACTION_PARAMS.get(action, ())
    unknown = sorted(name for name, value in params.items() if name not in accepted and value is not None)
    if unknown:
        takes = f"takes only {', '.join(accepted)}" if accepted else "takes no parameters"
        raise InvalidInput(f"{action} {takes}; got {', '.join(unknown)}")
    actor_name = _text(actor, "actor")
    if not actor_name:
        raise InvalidInput("actor is empty: say who performs the action")
    comment = _text(comment, "comment")
    at = _moment(at)
    rules = rules if rules is not None else WorkflowRules.default()

    if issue.status not in TRANSITIONS[action]:
        raise _refuse(issue, action, f"it is {issue.status}")
    if action == "extend" and (issue.extension_count or 0) >= MAX_EXTENSIONS:
        raise _refuse(issue, action, f"it has already been extended {issue.extension_count} times, the most allowed")
    if action in REASON_REQUIRED and not comment:
        raise InvalidInput(f"{action} needs a reason: give a comment saying why", details={"action": action})
    last = session.scalar(select(func.max(IssueTransition.at)).where(IssueTransition.issue_id == issue.id))
    earliest = max(filter(None, (last, issue.reported_at)))
    if at < earliest:
        raise InvalidInput(
            f"{action} at {at.isoformat()} would come before the issue's last recorded step "
            f"({earliest.isoformat()}); the history is kept in time order"
        )

    handler = _HANDLERS.get(action)
    changes, details = handler(session, issue, at, rules, params) if handler else ({}, {})
    target = changes.pop("status", None) or TRANSITIONS[action][issue.status]
    from_status = issue.status
    for name, value in changes.items():
        setattr(issue, name, value)
    issue.status = target
    issue.sla_state, issue.sla_next_at = _quiet_sla_state(issue, at, rules)
    transition = IssueTransition(
        issue_id=issue.id,
        action=action,
        from_status=from_status,
        to_status=target,
        actor=actor_name,
        at=at,
        comment=comment,
        details=details or None,
    )
    session.add(transition)
    session.flush()
    return transition


def _quiet_sla_state(issue: Issue, at: datetime, rules: WorkflowRules) -> tuple[str | None, datetime | None]:
    """The SLA state at ``at`` and when the tick must look again (an overdue issue: at once, for its escalations)."""
    try:
        state = sla_state_of(issue, at, rules)
        return state, sla_next_change(issue, at, rules, state)
    except InvalidInput:  # e.g. a deadline in a year the calendar does not cover yet: the tick will say
        return None, at if issue.status in OPEN_STATUSES else None


def load_issue(session: Session, issue_id: int, *, for_update: bool = True) -> Issue:
    """The issue with this id, locked for update (PostgreSQL) while the transaction lasts; NotFound otherwise."""
    query = select(Issue).where(Issue.id == issue_id)
    if for_update and session.bind is not None and session.bind.dialect.name != "sqlite":
        query = query.with_for_update()
    issue = session.scalar(query)
    if issue is None:
        raise NotFound(f"no issue has the id {issue_id}")
    return issue


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _limit_or_refuse(issue: Issue, action: str, rules: WorkflowRules) -> tuple[TimeLimitKind, float]:
    limit = rules.time_limit(issue)
    if limit is None:
        raise InvalidInput(
            f"cannot {action} issue {issue.id}: its category {issue.category} "
            f"has no time limit in {rules.categories.source}"
        )
    return limit


def _clear_stages_after(status: str) -> dict[str, Any]:
    """Stage times beyond ``status`` set to None (a backward move; the history keeps them)."""
    names = [stage for stage, _ in _STAGE_OF_STATUS]
    reached = {"reported": 0, "registered": 1, "dispatched": 2, "in_progress": 2, "handled": 3, "checked": 4}[status]
    return dict.fromkeys(names[reached:])


def _register(session, issue, at, rules, params):
    kind, value = _limit_or_refuse(issue, "register", rules)
    due = deadline(at, kind, value, rules.calendar)
    changes = dict(registered_at=at, deadline=due, time_limit_kind=kind.value, time_limit_value=value)
    return changes, {"deadline": _iso(due), "time_limit": {"kind": kind.value, "value": value}}


def _dispatch(session, issue, at, rules, params):
    department = _text(params.get("department"), "department")
    assignee = _text(params.get("assignee"), "assignee")
    department = department or issue.department
    if not department and not assignee:
        raise InvalidInput(
            f"dispatch of issue {issue.id} needs a department or an assignee (it has no routed department)"
        )
    changes = dict(department=department, assignee=assignee, dispatched_at=at)
    return changes, {"department": department, "assignee": assignee}


def _feedback(session, issue, at, rules, params):
    return dict(handled_at=at), {}


def _check(session, issue, at, rules, params):
    return dict(checked_at=at), {}


def _rework(session, issue, at, rules, params):
    count = (issue.rework_count or 0) + 1
    return dict(rework_count=count, handled_at=None), {"rework": count}


def _close(session, issue, at, rules, params):
    return dict(closed_at=at), {}


def _revisit(session, issue, at, rules, params):
    score = params.get("satisfaction")
    if score is None:
        raise InvalidInput(
            "revisit needs satisfaction: the citizen's score from 1 (very dissatisfied) to 5 (very satisfied)"
        )
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise InvalidInput(f"satisfaction must be a whole number from 1 to 5, got {score!r}")
    return dict(revisited_at=at, satisfaction=score), {"satisfaction": score}


def _return(session, issue, at, rules, params):
    details = {"department": issue.department, "assignee": issue.assignee}
    return dict(department=None, assignee=None, **_clear_stages_after("registered")), details


def _extend(session, issue, at, rules, params):
    approver = _text(params.get("approver"), "approver")
    if not approver:
        raise InvalidInput("extend needs the approver: who approved the extension (延期审批人)")
    if issue.deadline is None:
        raise InvalidInput(f"cannot extend issue {issue.id}: it has no deadline")
    kind, value = _limit_or_refuse(issue, "extend", rules)
    due = deadline(issue.deadline, kind, value, rules.calendar)
    count = (issue.extension_count or 0) + 1
    details = {"approver": approver, "extension": count, "deadline_before": _iso(issue.deadline), "deadline": _iso(due)}
    return dict(deadline=due, extension_count=count), details


def _suspend(session, issue, at, rules, params):
    return dict(suspended_at=at, suspended_from=issue.status), {}


def _resume(session, issue, at, rules, params):
    back_to = issue.suspended_from or _status_before_suspension(session, issue)
    since = issue.suspended_at or _suspended_since(session, issue)
    changes: dict[str, Any] = dict(status=back_to, suspended_at=None, suspended_from=None)
    details: dict[str, Any] = {"status": back_to}
    limit = rules.time_limit(issue)
    if issue.deadline is not None and since is not None and limit is not None:
        kind = limit[0]
        paused = max(clock_between(since, at, kind, rules.calendar), timedelta(0))
        due = clock_add(issue.deadline, paused, kind, rules.calendar)
        changes.update(deadline=due, paused_seconds=(issue.paused_seconds or 0.0) + paused.total_seconds())
        details.update(paused_seconds=paused.total_seconds(), deadline_before=_iso(issue.deadline), deadline=_iso(due))
    return changes, details


def _status_before_suspension(session: Session, issue: Issue) -> str:
    """For an issue suspended before the suspension was tracked (an import): from its history or stages."""
    from_status = session.scalar(
        select(IssueTransition.from_status)
        .where(IssueTransition.issue_id == issue.id, IssueTransition.to_status == "suspended")
        .order_by(IssueTransition.at.desc(), IssueTransition.id.desc())
        .limit(1)
    )
    if from_status in OPEN_STATUSES - CLOCK_STOPPED_STATUSES:
        return from_status
    for stage, status in reversed(_STAGE_OF_STATUS[:4]):
        if getattr(issue, stage) is not None:
            return status
    return "reported"


def _suspended_since(session: Session, issue: Issue) -> datetime | None:
    return session.scalar(
        select(IssueTransition.at)
        .where(IssueTransition.issue_id == issue.id, IssueTransition.to_status == "suspended")
        .order_by(IssueTransition.at.desc(), IssueTransition.id.desc())
        .limit(1)
    )


def _reopen(session, issue, at, rules, params):
    kind, value = _limit_or_refuse(issue, "reopen", rules)
    due = deadline(at, kind, value, rules.calendar)
    changes = dict(_clear_stages_after("registered"), registered_at=at, deadline=due, extension_count=0, assignee=None)
    return changes, {"deadline": _iso(due)}


def _merge(session, issue, at, rules, params):
    original_id = params.get("original")
    if original_id is None:
        raise InvalidInput("merge needs original: the id of the issue this one duplicates")
    if isinstance(original_id, bool) or not isinstance(original_id, int):
        raise InvalidInput(f"original must be an issue id (a whole number), got {original_id!r}")
    original = session.get(Issue, original_id)
    if original is None:
        raise NotFound(f"cannot merge issue {issue.id} into {original_id}: no issue has the id {original_id}")
    seen = {issue.id}
    while original.duplicate_of is not None and original.id not in seen:  # merge into the root of a chain
        seen.add(original.id)
        original = session.get(Issue, original.duplicate_of)
    if original.id in seen:
        raise InvalidInput(f"cannot merge issue {issue.id} into itself (issue {original_id} was merged into it)")
    if original.status in DISCARDED_STATUSES:
        raise _refuse(issue, "merge", f"issue {original.id} was rejected; merge into a registered case instead")
    return dict(duplicate_of=original.id, closed_at=at), {"original": original.id}


_HANDLERS = {
    "register": _register,
    "dispatch": _dispatch,
    "feedback": _feedback,
    "check": _check,
    "rework": _rework,
    "close": _close,
    "revisit": _revisit,
    "return": _return,
    "extend": _extend,
    "suspend": _suspend,
    "resume": _resume,
    "reopen": _reopen,
    "merge": _merge,
}


def apply_to_issues(
    session: Session,
    issue_ids: list[int],
    action: str,
    *,
    actor: str,
    comment: str | None = None,
    at: datetime | None = None,
    rules: WorkflowRules | None = None,
    **params: Any,
) -> list[IssueTransition]:
    """Apply one action to several issues, all or nothing: every refusal is listed, nothing is changed then."""
    if not issue_ids:
        raise InvalidInput("no issue ids given")
    if len(set(issue_ids)) != len(issue_ids):
        raise InvalidInput("an issue id is listed twice")
    rules = rules if rules is not None else WorkflowRules.default()
    at = _moment(at)
    transitions: list[IssueTransition] = []
    problems: list[dict[str, Any]] = []
    for issue_id in issue_ids:
        try:
            issue = load_issue(session, issue_id)
            # apply_action changes nothing when it refuses, so the others can still be checked.
            transitions.append(
                apply_action(session, issue, action, actor=actor, comment=comment, at=at, rules=rules, **params)
            )
        except (IllegalTransition, InvalidInput, NotFound) as exc:
            problems.append({"issue": issue_id, "status": exc.status, "message": exc.message})
    if problems:
        worst = max(problems, key=lambda problem: problem["status"])["status"]
        listed = "; ".join(problem["message"] for problem in problems)
        error_type = {404: NotFound, 409: IllegalTransition}.get(worst, InvalidInput)
        raise error_type(
            f"{len(problems)} of {len(issue_ids)} issue(s) cannot {action}, so none was changed: {listed}",
            details={"problems": problems},
        )
    return transitions
