"""Demo side paths: drive a few demo issues through rework, extension, return, suspension, reopen and merge.

The demo generator (gridmap.demo.issues) writes each issue's main path from its stage times; this adds
the side paths a dispatcher meets, through :func:`gridmap.issues.workflow.apply_action` like any other
change, so the demo holds every status and every kind of transition record. The issues are
chosen deterministically (lowest ids of a status), the steps happen now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridmap.issues.states import MERGEABLE_STATUSES
from gridmap.issues.workflow import WorkflowRules, apply_action
from gridmap.storage.models import Issue

if TYPE_CHECKING:
    from gridmap.core import Gridmap

DEMO_ACTOR = "demo"


def _first(session: Session, *conditions, skip: set[int]) -> Issue | None:
    query = select(Issue).where(*conditions)
    if skip:
        query = query.where(Issue.id.not_in(skip))
    return session.scalars(query.order_by(Issue.id).limit(1)).first()


def play_demo_side_paths(session: Session, rules: WorkflowRules, now: datetime | None = None) -> int:
    """Apply the demo's side-path steps in the caller's transaction; return how many steps were applied."""
    now = now or datetime.now(UTC)
    used: set[int] = set()
    steps = 0

    def act(issue: Issue | None, *actions: tuple[str, dict]) -> None:
        nonlocal steps
        if issue is None:
            return
        used.add(issue.id)
        for offset, (action, params) in enumerate(actions):
            at = now + timedelta(seconds=offset)
            apply_action(session, issue, action, actor=DEMO_ACTOR, at=at, rules=rules, **params)
            steps += 1

    in_progress = Issue.status == "in_progress"
    # A department asks twice for more time (approved); the case is still being handled.
    act(_first(session, in_progress, skip=used),
        ("extend", dict(comment="需协调产权单位，申请延期", approver="指挥中心值班长")),
        ("extend", dict(comment="材料未到货，再次申请延期", approver="指挥中心值班长")))
    # A check fails: rework by the same department.
    act(_first(session, in_progress, skip=used),
        ("feedback", {}), ("rework", dict(comment="核查发现未处置到位，返工")))
    # A department returns a case that is not theirs; the dispatcher sends it elsewhere (now dispatched).
    act(_first(session, in_progress, skip=used),
        ("return", dict(comment="非本部门职责，退回重新派遣")), ("dispatch", dict(department="区城市运行管理服务中心")))
    # Returned and waiting for dispatch again (registered).
    act(_first(session, in_progress, skip=used), ("return", dict(comment="地址不清，退回核实")))
    # Reported done (handled), and reported done and checked (checked).
    act(_first(session, in_progress, skip=used), ("feedback", {}))
    act(_first(session, in_progress, skip=used), ("feedback", {}), ("check", {}))
    # A case suspended into the problem register and resumed.
    act(_first(session, in_progress, skip=used),
        ("suspend", dict(comment="涉及规划调整，暂时挂账")), ("resume", dict(comment="规划已批复，恢复处置")))
    # A dissatisfied citizen: the case is reopened.
    act(_first(session, Issue.status == "revisited", Issue.satisfaction <= 2, skip=used),
        ("reopen", dict(comment="回访不满意，问题仍存在")))
    # A likely duplicate flagged at intake is merged into its original.
    duplicate = _first(session, Issue.status.in_(sorted(MERGEABLE_STATUSES)), Issue.possible_duplicate_of.is_not(None),
                       skip=used)
    if duplicate is not None:
        act(duplicate, ("merge", dict(comment="与已受理案件重复，合并", original=duplicate.possible_duplicate_of)))
    return steps


def load_demo_workflow(gm: Gridmap, now: datetime | None = None) -> str:
    """Demo grid workers, side paths and a first SLA tick, in one transaction; a one-line summary."""
    from gridmap.demo.people import demo_workers
    from gridmap.issues.dispatch import store_workers
    from gridmap.issues.escalation import sla_tick

    now = now or datetime.now(UTC)
    with gm.db.session() as session:
        workers = store_workers(session, demo_workers(gm.areas.layers))
        steps = play_demo_side_paths(session, gm.workflow_rules, now)
        report = sla_tick(session, gm.workflow_rules, now + timedelta(minutes=1))
    return (f"loaded {workers} demo grid workers; {steps} demo side-path steps; sla tick: "
            f"{report.states['warning']} warning, {report.states['overdue']} overdue, {report.escalations} escalations")

