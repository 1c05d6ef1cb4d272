"""The workflow engine: one issue through every state and side path; illegal actions refused.

Times are Beijing time on ordinary working days (2025-03-03 is a Monday, no holiday that week).
The category is E0102 暴露垃圾: 4 working hours (08:00–12:00, 14:00–18:00).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from gridmap.cli import EXIT_BAD_INPUT, main
from gridmap.errors import InvalidInput, NotFound
from gridmap.issues.states import ACTIONS, MAX_EXTENSIONS, STATUSES
from gridmap.issues.workflow import IllegalTransition, allowed_actions, apply_action, apply_to_issues, load_issue
from gridmap.storage.models import Issue, IssueTransition
from helpers import cell_point

BEIJING = ZoneInfo("Asia/Shanghai")
CELL = "460204001001001"


def at(text: str) -> datetime:
    """A Beijing-time moment from 'YYYY-MM-DD HH:MM'."""
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING)


def new_issue(gm, point, *, category="E0102", reported_at="2025-03-03 09:00", **extra) -> int:
    record = {"lon": point[0], "lat": point[1], "category": category, "description": "路边暴露垃圾",
              "reported_at": at(reported_at), **extra}
    return gm.intake.create(gm.db, record).id


@pytest.fixture
def point(mini_geodata):
    return cell_point(mini_geodata, CELL)


def act(gm, issue_id, action, when, **params):
    """Apply one action in its own transaction, as the API and CLI do; return the fresh issue."""
    with gm.db.session() as session:
        issue = load_issue(session, issue_id)
        apply_action(session, issue, action, actor="张调度", at=at(when), rules=gm.workflow_rules, **params)
    with gm.db.sessions() as session:
        return session.get(Issue, issue_id)


def history(gm, issue_id):
    with gm.db.sessions() as session:
        rows = session.scalars(
            select(IssueTransition).where(IssueTransition.issue_id == issue_id).order_by(IssueTransition.id)
        )
        return [(t.action, t.from_status, t.to_status) for t in rows]


def test_one_issue_through_every_state_and_side_path(gm, point):
    issue_id = new_issue(gm, point)
    # register at 09:30: 4 working hours → 09:30–12:00 (2.5 h) + 14:00–15:30 (1.5 h)
    issue = act(gm, issue_id, "register", "2025-03-03 09:30")
    assert issue.status == "registered" and issue.deadline == at("2025-03-03 15:30")
    assert (issue.time_limit_kind, issue.time_limit_value) == ("working_hours", 4.0)
    issue = act(gm, issue_id, "dispatch", "2025-03-03 09:40", department="环卫所", assignee="李师傅")
    assert (issue.status, issue.department, issue.assignee) == ("dispatched", "环卫所", "李师傅")
    assert issue.dispatched_at == at("2025-03-03 09:40")
    issue = act(gm, issue_id, "start", "2025-03-03 10:00")

    # extend twice (approved), each by one original time limit; the third is refused
    issue = act(gm, issue_id, "extend", "2025-03-03 10:30", comment="需协调产权单位", approver="王值班长")
    assert issue.deadline == at("2025-03-04 09:30")  # 15:30–18:00 (2.5 h) + Tue 08:00–09:30 (1.5 h)
    issue = act(gm, issue_id, "extend", "2025-03-03 10:45", comment="材料未到", approver="王值班长")
    assert issue.deadline == at("2025-03-04 15:30") and issue.extension_count == MAX_EXTENSIONS
    assert "extend" not in allowed_actions(issue)
    with pytest.raises(IllegalTransition) as refused:
        act(gm, issue_id, "extend", "2025-03-03 10:50", comment="再次申请", approver="王值班长")
    assert refused.value.status == 409
    assert "already been extended 2 times" in refused.value.message
    assert "allowed actions from in_progress: feedback, return, suspend, merge" in refused.value.message

    # the department returns it: back to dispatch, department and assignee cleared
    issue = act(gm, issue_id, "return", "2025-03-03 11:00", comment="非本部门职责")
    assert (issue.status, issue.department, issue.assignee, issue.dispatched_at) == ("registered", None, None, None)
    issue = act(gm, issue_id, "dispatch", "2025-03-03 11:10", department="市政管理处")
    issue = act(gm, issue_id, "start", "2025-03-03 11:20")

    # suspend Mon 11:30, resume Tue 10:30: paused 0.5 + 4 + 2.5 = 7 working hours
    issue = act(gm, issue_id, "suspend", "2025-03-03 11:30", comment="需规划部门意见")
    assert (issue.status, issue.suspended_from) == ("suspended", "in_progress")
    assert allowed_actions(issue) == ["resume"]
    issue = act(gm, issue_id, "resume", "2025-03-04 10:30")
    assert issue.status == "in_progress" and issue.suspended_at is None
    assert issue.paused_seconds == 7 * 3600
    assert issue.deadline == at("2025-03-05 14:30")  # Tue 15:30 + 7 h: 2.5 Tue, 4 Wed morning, 0.5 Wed afternoon

    # feedback, a failed check (rework: same department, count +1), feedback again, check, close
    issue = act(gm, issue_id, "feedback", "2025-03-04 11:00")
    assert issue.status == "handled" and issue.handled_at == at("2025-03-04 11:00")
    issue = act(gm, issue_id, "rework", "2025-03-04 11:30", comment="核查未通过：垃圾未清运完")
    assert (issue.status, issue.rework_count, issue.department,
            issue.handled_at) == ("in_progress", 1, "市政管理处", None)
    issue = act(gm, issue_id, "feedback", "2025-03-04 14:30")
    issue = act(gm, issue_id, "check", "2025-03-04 15:00")
    issue = act(gm, issue_id, "close", "2025-03-04 15:10")
    assert issue.status == "closed" and issue.closed_at == at("2025-03-04 15:10")

    # revisit: the citizen is dissatisfied (2) and the case is reopened with a new time limit
    issue = act(gm, issue_id, "revisit", "2025-03-05 09:00", satisfaction=2)
    assert (issue.status, issue.satisfaction) == ("revisited", 2)
    issue = act(gm, issue_id, "reopen", "2025-03-05 09:30", comment="回访不满意，垃圾又堆起来了")
    assert issue.status == "registered" and issue.registered_at == at("2025-03-05 09:30")
    assert issue.deadline == at("2025-03-05 15:30") and issue.extension_count == 0
    assert issue.closed_at is issue.revisited_at is issue.handled_at is issue.dispatched_at is None

    # and round the loop again to a satisfied revisit
    for action, when, params in [
        ("dispatch", "2025-03-05 09:40", {}),  # keeps the department
        ("start", "2025-03-05 10:00", {}),
        ("feedback", "2025-03-05 11:00", {}),
        ("check", "2025-03-05 11:30", {}),
        ("close", "2025-03-05 11:40", {}),
        ("revisit", "2025-03-06 09:00", {"satisfaction": 5}),
    ]:
        issue = act(gm, issue_id, action, when, **params)
    assert (issue.status, issue.satisfaction, issue.department, issue.rework_count) == ("revisited", 5, "市政管理处", 1)
    assert allowed_actions(issue) == ["reopen"]

    assert history(gm, issue_id) == [
        ("report", None, "reported"),
        ("register", "reported", "registered"),
        ("dispatch", "registered", "dispatched"),
        ("start", "dispatched", "in_progress"),
        ("extend", "in_progress", "in_progress"),
        ("extend", "in_progress", "in_progress"),
        ("return", "in_progress", "registered"),
        ("dispatch", "registered", "dispatched"),
        ("start", "dispatched", "in_progress"),
        ("suspend", "in_progress", "suspended"),
        ("resume", "suspended", "in_progress"),
        ("feedback", "in_progress", "handled"),
        ("rework", "handled", "in_progress"),
        ("feedback", "in_progress", "handled"),
        ("check", "handled", "checked"),
        ("close", "checked", "closed"),
        ("revisit", "closed", "revisited"),
        ("reopen", "revisited", "registered"),
        ("dispatch", "registered", "dispatched"),
        ("start", "dispatched", "in_progress"),
        ("feedback", "in_progress", "handled"),
        ("check", "handled", "checked"),
        ("close", "checked", "closed"),
        ("revisit", "closed", "revisited"),
    ]
    with gm.db.sessions() as session:
        extend = session.scalars(select(IssueTransition).where(IssueTransition.action == "extend")).first()
    assert (extend.actor, extend.comment, extend.at) == ("张调度", "需协调产权单位", at("2025-03-03 10:30"))
    assert extend.details["approver"] == "王值班长" and extend.details["extension"] == 1

    # another report is not registered as a case: rejected, with its reason
    rejected_id = new_issue(gm, point, reported_at="2025-03-03 10:00")
    issue = act(gm, rejected_id, "reject", "2025-03-03 10:05", comment="不属于城市管理范围")
    assert issue.status == "rejected" and allowed_actions(issue) == []
    assert history(gm, rejected_id)[-1] == ("reject", "reported", "rejected")


def set_status(gm, issue_id, status, **fields):
    with gm.db.session() as session:
        issue = session.get(Issue, issue_id)
        issue.status = status
        for name, value in fields.items():
            setattr(issue, name, value)


@pytest.mark.parametrize(
    "status, action, allowed",
    [
        ("reported", "dispatch", "register, reject, suspend, merge"),  # dispatch needs a registered case
        ("reported", "close", "register, reject, suspend, merge"),  # no closing what was never handled
        ("registered", "start", "dispatch, suspend, merge"),  # nobody to start it yet
        ("registered", "resume", "dispatch, suspend, merge"),  # not suspended
        ("dispatched", "feedback", "start, return, extend, suspend, merge"),  # the department has not started
        ("in_progress", "check", "feedback, return, extend, suspend, merge"),  # nothing reported back to check
        ("handled", "close", "check, rework, suspend"),  # closing needs a passed check
        ("handled", "extend", "check, rework, suspend"),  # extensions are for the handling department
        ("handled", "merge", "check, rework, suspend"),  # too late to merge a handled case
        ("checked", "revisit", "close, suspend"),  # revisit comes after closing
        ("closed", "dispatch", "revisit, reopen"),  # a closed case is reopened, not dispatched
        ("closed", "suspend", "revisit, reopen"),  # only open cases are suspended
        ("revisited", "revisit", "reopen"),  # one revisit per closing
        ("rejected", "register", "none (the case is finished)"),  # a rejected report stays rejected
        ("suspended", "start", "resume"),  # the clock is stopped: resume first
        ("suspended", "suspend", "resume"),  # already suspended
    ],
)
def test_illegal_transitions_are_refused_with_409_naming_the_allowed_actions(gm, point, status, action, allowed):
    issue_id = new_issue(gm, point)
    set_status(gm, issue_id, status, suspended_from="in_progress" if status == "suspended" else None)
    before = history(gm, issue_id)
    with pytest.raises(IllegalTransition) as refused:
        act(gm, issue_id, action, "2025-03-03 12:00", comment="原因", satisfaction=5 if action == "revisit" else None)
    assert refused.value.status == 409 and refused.value.code == "illegal_transition"
    assert f"cannot {action} issue {issue_id}: it is {status}" in refused.value.message
    assert f"allowed actions from {status}: {allowed}" in refused.value.message
    assert refused.value.details["allowed"] == ([] if status == "rejected" else allowed.split(", "))
    assert history(gm, issue_id) == before  # nothing written
    with gm.db.sessions() as session:
        assert session.get(Issue, issue_id).status == status


def test_allowed_actions_cover_the_whole_vocabulary(gm, point):
    issue_id = new_issue(gm, point)
    seen = set()
    with gm.db.sessions() as session:
        issue = session.get(Issue, issue_id)
        for status in STATUSES:
            issue.status = status
            seen.update(allowed_actions(issue))
    assert seen == set(ACTIONS)


@pytest.mark.parametrize("action", ["reject", "return", "rework", "extend", "suspend", "reopen"])
def test_side_paths_need_a_reason(gm, point, action):
    status = {"reject": "reported", "return": "dispatched", "rework": "handled", "extend": "in_progress",
              "suspend": "registered", "reopen": "closed"}[action]
    issue_id = new_issue(gm, point)
    set_status(gm, issue_id, status)
    with pytest.raises(InvalidInput, match=f"{action} needs a reason"):
        act(gm, issue_id, action, "2025-03-03 12:00", approver="王值班长" if action == "extend" else None)


@pytest.mark.parametrize(
    "status, action, params, message",
    [
        ("closed", "revisit", {}, "revisit needs satisfaction"),  # the score is the point of a revisit
        ("closed", "revisit", {"satisfaction": 0}, "from 1 to 5, got 0"),  # out of range
        ("closed", "revisit", {"satisfaction": 6}, "from 1 to 5, got 6"),
        ("closed", "revisit", {"satisfaction": "5"}, "whole number from 1 to 5, got '5'"),  # text is not a score
        ("closed", "revisit", {"satisfaction": True}, "got True"),  # nor is a boolean
        ("in_progress", "extend", {"comment": "原因"}, "extend needs the approver"),  # an extension is approved
        ("registered", "dispatch", {"satisfaction": 3}, "dispatch takes only department, assignee; got satisfaction"),
        ("reported", "register", {"department": "环卫所"}, "register takes no parameters; got department"),
        ("reported", "approve", {}, "unknown action 'approve': use one of register, reject"),  # not in the vocabulary
        ("reported", "merge", {}, "merge needs original"),
    ],
)
def test_bad_parameters_are_refused_with_400(gm, point, status, action, params, message):
    issue_id = new_issue(gm, point)
    set_status(gm, issue_id, status)
    with pytest.raises(InvalidInput) as refused:
        act(gm, issue_id, action, "2025-03-03 12:00", **params)
    assert refused.value.status == 400
    assert message in refused.value.message


def test_dispatch_without_department_keeps_the_routed_one_but_needs_someone(gm, point):
    issue_id = new_issue(gm, point)
    act(gm, issue_id, "register", "2025-03-03 09:30")
    issue = act(gm, issue_id, "dispatch", "2025-03-03 09:40")
    assert issue.department == "环卫所"  # routed at intake from the category tree
    act(gm, issue_id, "return", "2025-03-03 10:00", comment="不归我们管")
    with pytest.raises(InvalidInput, match="needs a department or an assignee"):
        act(gm, issue_id, "dispatch", "2025-03-03 10:10")
    issue = act(gm, issue_id, "dispatch", "2025-03-03 10:10", assignee="网格员小陈")
    assert (issue.department, issue.assignee) == (None, "网格员小陈")


def test_an_action_cannot_be_dated_before_the_last_step(gm, point):
    issue_id = new_issue(gm, point)
    act(gm, issue_id, "register", "2025-03-03 09:30")
    with pytest.raises(InvalidInput, match="before the issue's last recorded step"):
        act(gm, issue_id, "dispatch", "2025-03-03 09:00")


def test_actor_is_required(gm, point):
    issue_id = new_issue(gm, point)
    with pytest.raises(InvalidInput, match="actor is empty"), gm.db.session() as session:
        apply_action(session, load_issue(session, issue_id), "register", actor=" ", rules=gm.workflow_rules)


def test_load_issue_of_an_unknown_id_is_404(gm):
    with gm.db.sessions() as session, pytest.raises(NotFound):
        load_issue(session, 999)


def test_a_suspended_import_resumes_to_the_stage_it_had_reached(gm, point):
    # imported as suspended after dispatch: the history says where it was
    record = {"lon": point[0], "lat": point[1], "category": "E0102", "description": "挂账案件", "status": "suspended",
              "reported_at": "2025-03-03 09:00", "registered_at": "2025-03-03 09:10",
              "dispatched_at": "2025-03-03 09:20"}
    report = gm.intake.import_records(gm.db, [record])
    (issue_id,) = report.issue_ids
    with gm.db.sessions() as session:
        due = session.get(Issue, issue_id).deadline
    issue = act(gm, issue_id, "resume", "2025-03-04 09:20")
    assert issue.status == "dispatched"
    # suspended at 09:20 Monday (the import's last stage), resumed Tuesday 09:20: 8 working hours paused
    assert issue.paused_seconds == 8 * 3600
    assert issue.deadline == gm.calendar.add_working_time(due, timedelta(hours=8))


def test_bulk_dispatch_is_all_or_nothing(gm, point):
    first, second, third = (new_issue(gm, point, reported_at=f"2025-03-03 09:0{i}") for i in range(3))
    for issue_id in (first, second):
        act(gm, issue_id, "register", "2025-03-03 09:30")
    with pytest.raises(IllegalTransition) as refused, gm.db.session() as session:
        apply_to_issues(session, [first, second, third, 999], "dispatch", actor="张调度", rules=gm.workflow_rules,
                        department="环卫所")
    assert "2 of 4 issue(s) cannot dispatch, so none was changed" in refused.value.message
    assert [p["issue"] for p in refused.value.details["problems"]] == [third, 999]
    assert history(gm, first)[-1][0] == "register"  # not dispatched
    with gm.db.session() as session:
        done = apply_to_issues(session, [first, second], "dispatch", actor="张调度", rules=gm.workflow_rules,
                               assignee="李师傅")
    assert [t.to_status for t in done] == ["dispatched", "dispatched"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_transition_and_assign(gm, cli_env, point):
    issue_id = new_issue(gm, point)
    result = run("issues", "transition", issue_id, "dispatch", "--department", "环卫所")
    assert result.exit_code == EXIT_BAD_INPUT
    assert (
        "cannot dispatch issue" in result.output and "allowed actions from reported: register, reject" in result.output
    )
    result = run("issues", "transition", issue_id, "register", "--actor", "王受理")
    assert result.exit_code == 0, result.output
    assert f"issue {issue_id}: register reported → registered" in result.output
    result = run("issues", "assign", issue_id, "--assignee", "李师傅")
    assert result.exit_code == 0, result.output
    assert "dispatched 1 issue(s)" in result.output
    result = run("issues", "transition", issue_id, "extend", "--comment", "缺材料")
    assert result.exit_code == EXIT_BAD_INPUT and "extend needs the approver" in result.output
    with gm.db.sessions() as session:
        issue = session.get(Issue, issue_id)
        assert (issue.status, issue.assignee) == ("dispatched", "李师傅")
        assert session.scalar(select(func.count()).select_from(IssueTransition).where(
            IssueTransition.issue_id == issue_id, IssueTransition.actor == "王受理")) == 1


def test_init_demo_holds_every_status_side_path_and_escalations(cli_env, settings):
    from gridmap.core import Gridmap
    from gridmap.storage.workflow import GridWorker, IssueEscalation

    result = run("init", "--demo")
    assert result.exit_code == 0, result.output
    assert "demo grid workers" in result.output and "sla tick" in result.output
    gm = Gridmap(settings)
    try:
        with gm.db.sessions() as session:
            statuses = set(session.scalars(select(Issue.status).distinct()))
            actions = set(session.scalars(select(IssueTransition.action).distinct()))
            overdue = session.scalar(select(func.count()).select_from(Issue).where(Issue.sla_state == "overdue"))
            levels = set(session.scalars(select(IssueEscalation.level).distinct()))
            workers = session.scalar(select(func.count()).select_from(GridWorker))
    finally:
        gm.close()
    # `reported` (not yet registered) exists only if a report came in during the last minutes before
    # the demo's end: it depends on the hour the demo is built, so it is not required here.
    assert statuses >= set(STATUSES) - {"reported"}
    assert {"extend", "rework", "return", "suspend", "resume", "reopen", "reject"} <= actions
    assert overdue > 0 and levels == {1, 2, 3}
    assert workers == 7
