"""How each demo case runs through the workflow: its stage times, side paths and state at the end.

Times are drawn per source and urgency (registration, dispatch, handling within the category's
time limit, checking, closing, the revisit), on the working calendar; some cases are rejected,
suspended or left stalled, and the newest wait at the intake desk.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

import numpy as np

from gridmap.issues.sla import TimeLimitKind, WorkingCalendar, deadline

_LATER_STAGES = ("registered_at", "dispatched_at", "handled_at", "checked_at", "closed_at", "revisited_at")
_STAGE_STATUS = dict(zip(_LATER_STAGES, ("registered", "dispatched", "handled", "checked", "closed", "revisited")))
_REJECT_SHARE = {"patrol": 0.01, "visit": 0.02, "hotline": 0.04, "web": 0.08, "open311": 0.08, "import": 0.03}
_REVISIT_SHARE = {"patrol": 0.25, "visit": 0.5, "hotline": 0.85, "web": 0.6, "open311": 0.6, "import": 0.7}
_SUSPEND_SHARE = {"E0705": 0.08, "E0709": 0.06, "E0701": 0.04}
_REGISTER_MINUTES = {"patrol": 10, "visit": 20, "hotline": 25, "web": 40, "open311": 40, "import": 5}
_DISPATCH_MINUTES = {"urgent": 6, "high": 12, "normal": 25, "low": 40}
_SATISFACTION = {False: (0.02, 0.03, 0.08, 0.27, 0.60), True: (0.08, 0.10, 0.20, 0.32, 0.30)}


def demo_calendar(calendar: WorkingCalendar | None, end: datetime) -> WorkingCalendar:
    """The holiday calendar, with years it does not cover counted as plain weeks (demo data only)."""
    base = calendar if calendar is not None else WorkingCalendar.load()
    years = set(base.years) | set(range(end.year - 2, end.year + 3))
    return WorkingCalendar(
        base.holidays, base.workdays, years=years, working_periods=base.working_periods, timezone=base.tz,
        source=base.source,
    )


@dataclass
class Draws:
    """Per-issue random numbers, drawn in one go so the result does not depend on loop order."""

    register: np.ndarray  # minutes
    dispatch: np.ndarray  # minutes
    handle_share: np.ndarray  # of the time allowed
    check: np.ndarray  # hours
    close: np.ndarray  # minutes
    revisit: np.ndarray  # hours
    sign: np.ndarray  # hours from dispatch until the department starts (in_progress)
    reject: np.ndarray
    suspend: np.ndarray
    revisited: np.ndarray
    satisfaction: np.ndarray
    spare: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int, sources: np.ndarray, categories: list) -> Draws:
        urgency = [str(getattr(c.urgency, "value", c.urgency)) for c in categories]
        return cls(
            register=np.array([_REGISTER_MINUTES[s] for s in sources]) * np.exp(rng.normal(0, 0.6, n)),
            dispatch=np.array([_DISPATCH_MINUTES.get(u, 25) for u in urgency]) * np.exp(rng.normal(0, 0.6, n)),
            handle_share=np.exp(rng.normal(np.log(0.45), 0.6, n)),  # about 9% go over their time limit
            check=2.5 * np.exp(rng.normal(0, 0.7, n)),
            close=25 * np.exp(rng.normal(0, 0.6, n)),
            revisit=20 * np.exp(rng.normal(0, 0.4, n)),
            sign=1.0 * np.exp(rng.normal(0, 0.5, n)),
            reject=rng.random(n),
            suspend=rng.random(n),
            revisited=rng.random(n),
            satisfaction=rng.random(n),
            spare=rng.random(n),
        )


def plan_course(
    draws: Draws, i: int, category: Any, source: str, reported: datetime, calendar: WorkingCalendar
) -> dict[str, Any]:
    """The planned stage times of one case (before cutting at ``end``) and its side paths."""
    course: dict[str, Any] = dict.fromkeys(_LATER_STAGES)
    course.update(rejected=False, suspended=False, overdue=False, deadline=None)
    registered = reported + timedelta(minutes=float(draws.register[i]))
    if source in ("web", "open311") and not 8 <= registered.hour < 22:
        # Online reports wait for the morning shift.
        morning = registered if registered.hour >= 22 else registered - timedelta(days=1)
        registered = datetime.combine(morning.date() + timedelta(days=1), time(8), registered.tzinfo) + timedelta(
            minutes=float(draws.register[i])
        )
    registered = registered.replace(microsecond=0)
    if draws.reject[i] < _REJECT_SHARE[source]:
        course.update(rejected=True, decided_at=registered)
        return course
    course["registered_at"] = registered
    dispatched = (registered + timedelta(minutes=float(draws.dispatch[i]))).replace(microsecond=0)
    course["dispatched_at"] = dispatched
    kind = TimeLimitKind(str(getattr(category.time_limit_kind, "value", category.time_limit_kind)))
    due = deadline(registered, kind, category.time_limit_value, calendar)
    course["deadline"] = due
    if draws.suspend[i] < _SUSPEND_SHARE.get(category.code, 0.006):
        course["suspended"] = True
        return course
    share = float(draws.handle_share[i])
    if kind.needs_calendar:
        allowed = max(calendar.working_time_between(dispatched, due), timedelta(minutes=30))
        handled = calendar.add_working_time(dispatched, allowed * share)
    else:
        handled = dispatched + max(due - dispatched, timedelta(minutes=30)) * share
    handled = handled.replace(microsecond=0)
    checked = (handled + timedelta(hours=float(draws.check[i]))).replace(microsecond=0)
    closed = (checked + timedelta(minutes=float(draws.close[i]))).replace(microsecond=0)
    course.update(handled_at=handled, checked_at=checked, closed_at=closed, overdue=handled > due)
    if draws.revisited[i] < _REVISIT_SHARE[source]:
        course["revisited_at"] = (closed + timedelta(hours=float(draws.revisit[i]))).replace(microsecond=0)
    return course


def hold_the_newest(issues: list[dict[str, Any]], count: int = 3) -> None:
    """Whatever the hour, leave the newest reports waiting for registration (待立案) and the
    few before them registered but not yet dispatched (待派遣): the intake desk's backlog."""
    order = sorted(range(len(issues)), key=lambda index: issues[index]["reported_at"])
    waiting, to_dispatch = order[-count:], order[-2 * count:-count]
    for index in waiting:
        issues[index].update(dict.fromkeys(_LATER_STAGES), rejected=False, suspended=False, stalled=False)
    for index in to_dispatch:
        if issues[index]["registered_at"] is None:
            continue  # rejected at intake: stays as it is
        issues[index].update(dict.fromkeys(_LATER_STAGES[1:]), suspended=False, stalled=False)


def stall_a_few(issues: list[dict[str, Any]], end: datetime, rng: np.random.Generator) -> None:
    """Leave a handful of cases from two to eight weeks ago stuck with the department: overdue."""
    candidates = [
        index for index, issue in enumerate(issues)
        if issue["handled_at"] is not None and timedelta(weeks=2) <= end - issue["reported_at"] <= timedelta(weeks=8)
    ]
    if not candidates:
        return
    size = min(len(candidates), max(3, len(issues) // 800))
    for index in rng.choice(candidates, size=size, replace=False):
        issues[index].update(handled_at=None, checked_at=None, closed_at=None, revisited_at=None, stalled=True)


def state_at(issue: dict[str, Any], end: datetime, draws: Draws) -> tuple[dict[str, Any], str, int | None]:
    """The stages a case has reached by ``end``, its status then, and its satisfaction score if revisited."""
    i = issue["i"]
    stages = {
        stage: issue[stage] if issue[stage] is not None and issue[stage] <= end else None for stage in _LATER_STAGES
    }
    for earlier, later in zip(_LATER_STAGES, _LATER_STAGES[1:]):
        if stages[earlier] is None:
            stages[later] = None
    reached = [stage for stage in _LATER_STAGES if stages[stage] is not None]
    if issue["rejected"]:
        status = "rejected" if issue["decided_at"] <= end else "reported"
    elif not reached:
        status = "reported"
    elif reached[-1] == "dispatched_at" and issue["suspended"]:
        status = "suspended"
    elif reached[-1] == "dispatched_at":
        started = end - stages["dispatched_at"] > timedelta(hours=float(draws.sign[i]))
        status = "in_progress" if started or issue.get("stalled") and draws.spare[i] < 0.7 else "dispatched"
    else:
        status = _STAGE_STATUS[reached[-1]]

    satisfaction = None
    if status == "revisited":
        weights = _SATISFACTION[bool(issue["overdue"])]
        satisfaction = int(np.searchsorted(np.cumsum(weights), draws.satisfaction[i] * sum(weights), side="right") + 1)
        satisfaction = min(satisfaction, 5)
    return stages, status, satisfaction
