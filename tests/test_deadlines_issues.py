"""Deadlines at the issue level: registration, suspension, warning, overdue and escalation.

Hand-computed answers (Beijing time) with the bundled calendar (State Council notice for 2025):
- 2025-03-07 Fri, 03-08 Sat, 03-09 Sun (weekend), 03-10 Mon; 2025-03-03 Mon is ordinary.
- 2025-09-26 Fri (work), 09-27 Sat (off), 09-28 Sun (make-up workday, 调休上班), 09-29 Mon, 09-30 Tue (work),
  10-01 Wed … 10-08 Wed (National Day + Mid-Autumn, off), 10-09 Thu (work), 10-10 Fri (work),
  10-11 Sat (make-up workday), 10-12 Sun (off), 10-13 Mon.
Working periods 08:00–12:00 and 14:00–18:00; a working day is 8 working hours.
Categories: C0101 上水井盖 2 continuous hours; E0102 暴露垃圾 4 working hours; C0118 路灯 2 working days;
E0709 信访事项 15 calendar days.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from gridmap.cli import main
from gridmap.issues.escalation import sla_tick
from gridmap.issues.sla import BUNDLED_HOLIDAYS
from gridmap.issues.workflow import apply_action, load_issue, sla_state_of
from gridmap.storage.models import Issue
from gridmap.storage.workflow import IssueEscalation
from helpers import cell_point

BEIJING = ZoneInfo("Asia/Shanghai")
CELL = "460204001002010"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BEIJING)


@pytest.fixture
def point(mini_geodata):
    return cell_point(mini_geodata, CELL)


def registered(gm, point, category: str, when: str) -> int:
    """The id of an issue reported and registered at ``when``."""
    record = {"lon": point[0], "lat": point[1], "category": category, "description": "测试", "reported_at": at(when)}
    issue_id = gm.intake.create(gm.db, record).id
    act(gm, issue_id, "register", when)
    return issue_id


def act(gm, issue_id: int, action: str, when: str, **params) -> Issue:
    with gm.db.session() as session:
        issue = load_issue(session, issue_id)
        apply_action(session, issue, action, actor="测试", at=at(when), rules=gm.workflow_rules, **params)
    with gm.db.sessions() as session:
        return session.get(Issue, issue_id)


def deadline_of(gm, issue_id: int) -> datetime:
    with gm.db.sessions() as session:
        return session.get(Issue, issue_id).deadline


@pytest.mark.parametrize(
    "category, registered_at, due",
    [
        # continuous hours: the clock never stops, whatever the calendar says
        ("C0101", "2025-03-08 23:00", "2025-03-09 01:00"),  # Saturday night into Sunday
        ("C0101", "2025-10-01 11:00", "2025-10-01 13:00"),  # National Day holiday
        ("C0101", "2025-09-28 17:30", "2025-09-28 19:30"),  # make-up workday: no working-hour logic either
        # working hours: only 08–12 and 14–18 of working days count
        ("E0102", "2025-03-07 16:30", "2025-03-10 10:30"),  # Fri 1.5 h, weekend skipped, Mon 2.5 h
        ("E0102", "2025-09-30 17:00", "2025-10-09 11:00"),  # Tue 1 h, eight holiday days skipped, Thu 3 h
        ("E0102", "2025-09-26 17:00", "2025-09-28 11:00"),  # Fri 1 h, Sat off, Sunday make-up workday 3 h
        ("E0102", "2025-12-31 17:00", "2026-01-04 11:00"),  # New Year 1–3 Jan off, Sunday 4 Jan make-up workday
        ("E0102", "2025-03-03 12:30", "2025-03-03 18:00"),  # registered in the lunch break: counts from 14:00
        # working days: 2 × 8 working hours
        ("C0118", "2025-03-06 15:00", "2025-03-10 15:00"),  # Thu 3 h, Fri 8 h, Mon 4 + 1 h
        ("C0118", "2025-09-30 10:00", "2025-10-10 10:00"),  # Tue 6 h, holiday, Thu 8 h, Fri 2 h
        ("C0118", "2025-10-10 10:00", "2025-10-13 10:00"),  # Fri 6 h, Saturday make-up workday 8 h, Sun off, Mon 2 h
        # calendar days: the same clock time 15 days later, holidays or not
        ("E0709", "2025-03-07 10:00", "2025-03-22 10:00"),  # from a Friday to a Saturday
        ("E0709", "2025-09-30 10:00", "2025-10-15 10:00"),  # across the National Day holiday
        ("E0709", "2025-09-28 09:00", "2025-10-13 09:00"),  # from a make-up workday
    ],
)
def test_deadline_set_at_registration(gm, point, category, registered_at, due):
    issue_id = registered(gm, point, category, registered_at)
    assert deadline_of(gm, issue_id) == at(due)


@pytest.mark.parametrize(
    "category, suspended, resumed, due_before, due_after",
    [
        # continuous hours: paused 2 days 10 hours of wall time
        ("C0101", "2025-09-26 17:00", "2025-09-29 03:00", "2025-09-26 18:00", "2025-09-29 04:00"),
        # working hours: paused Fri 17–18 (1 h) + Sun make-up workday 8 h + Mon 08–09 (1 h) = 10 working hours;
        # due Fri 18:00 → + 10 h: Sun 08–12, 14–18 (8), Mon 08–10 (2) → Mon 10:00 (the 1 h left at suspension)
        ("E0102", "2025-09-26 17:00", "2025-09-29 09:00", "2025-09-26 18:00", "2025-09-29 10:00"),
        # working days (registered Tue 09-30 09:00, 16 h): Tue 7 h, holiday, Thu 10-09 8 h, Fri 10-10 1 h → Fri 09:00;
        # paused Tue 10:00 → Thu 10:00 = 6 h + 2 h = 8 working hours (the holiday is free):
        # Fri 09:00 + 8 h: Fri 09–12, 14–18 (7), Saturday 10-11 make-up workday 08–09 (1) → Sat 09:00
        ("C0118", "2025-09-30 10:00", "2025-10-09 10:00", "2025-10-10 09:00", "2025-10-11 09:00"),
        # calendar days: paused 3 days of wall time over the weekend
        ("E0709", "2025-03-07 12:00", "2025-03-10 12:00", "2025-03-22 11:00", "2025-03-25 11:00"),
    ],
)
def test_resume_moves_the_deadline_by_the_paused_time(gm, point, category, suspended, resumed, due_before, due_after):
    start = {"C0101": "2025-09-26 16:00", "E0102": "2025-09-26 14:00", "C0118": "2025-09-30 09:00",
             "E0709": "2025-03-07 11:00"}[category]
    issue_id = registered(gm, point, category, start)
    assert deadline_of(gm, issue_id) == at(due_before)
    act(gm, issue_id, "suspend", suspended, comment="挂账")
    issue = act(gm, issue_id, "resume", resumed)
    assert issue.deadline == at(due_after)
    assert issue.status == "registered"


@pytest.mark.parametrize(
    "now, state",
    [
        ("2025-03-03 13:00", "ok"),  # lunch: 2 of 4 working hours used
        ("2025-03-03 15:11", "ok"),  # 3.18 h used: below 80 %
        ("2025-03-03 15:12", "warning"),  # 3.2 h used: 80 % of the time limit
        ("2025-03-03 16:00", "warning"),  # the deadline itself
        ("2025-03-03 16:01", "overdue"),  # past it
    ],
)
def test_warning_and_overdue_are_counted_on_the_working_clock(gm, point, now, state):
    issue_id = registered(gm, point, "E0102", "2025-03-03 10:00")  # due 16:00 (10–12, 14–16)
    with gm.db.sessions() as session:
        assert sla_state_of(session.get(Issue, issue_id), at(now), gm.workflow_rules) == state


def test_an_extension_widens_the_warning_window(gm, point):
    issue_id = registered(gm, point, "E0102", "2025-03-03 10:00")  # due 16:00
    act(gm, issue_id, "dispatch", "2025-03-03 10:05", department="环卫所")
    issue = act(gm, issue_id, "extend", "2025-03-03 10:10", comment="缺材料", approver="值班长")
    assert issue.deadline == at("2025-03-04 10:00")  # 16–18 (2 h) + Tue 08–10 (2 h)
    # 8 h allowed in all; warning when 1.6 h or less remain: from Tue 08:24
    assert sla_state_of(issue, at("2025-03-04 08:20"), gm.workflow_rules) == "ok"
    assert sla_state_of(issue, at("2025-03-04 08:30"), gm.workflow_rules) == "warning"


def escalations(gm, issue_id):
    with gm.db.sessions() as session:
        rows = session.scalars(
            select(IssueEscalation).where(IssueEscalation.issue_id == issue_id).order_by(IssueEscalation.level)
        )
        return [(e.level, e.area_level, e.area_code, e.due_at) for e in rows]


def tick(gm, when: str):
    with gm.db.session() as session:
        return sla_tick(session, gm.workflow_rules, at(when))


def test_escalation_climbs_cell_community_street_by_one_time_limit_each(gm, point):
    # registered Fri 14:00, 4 working hours: due Fri 18:00; community Mon 12:00; street Mon 18:00
    issue_id = registered(gm, point, "E0102", "2025-03-07 14:00")
    report = tick(gm, "2025-03-07 17:30")  # 3.5 of 4 hours used
    assert report.escalations == 0 and escalations(gm, issue_id) == []
    assert report.states["warning"] == 1
    report = tick(gm, "2025-03-08 10:00")  # Saturday: overdue, level 1 only
    assert report.states["overdue"] == 1 and report.escalations == 1
    assert escalations(gm, issue_id) == [(1, "cell", CELL, at("2025-03-07 18:00"))]
    assert tick(gm, "2025-03-08 11:00").escalations == 0  # idempotent
    tick(gm, "2025-03-10 12:30")
    tick(gm, "2025-03-10 12:30")
    assert escalations(gm, issue_id)[1:] == [(2, "community", CELL[:12], at("2025-03-10 12:00"))]
    tick(gm, "2025-03-10 18:05")
    assert escalations(gm, issue_id)[2:] == [(3, "street", CELL[:9], at("2025-03-10 18:00"))]
    with gm.db.sessions() as session:
        assert session.get(Issue, issue_id).sla_state == "overdue"


def test_a_moved_deadline_that_is_missed_again_escalates_again(gm, point):
    issue_id = registered(gm, point, "E0102", "2025-03-03 08:00")  # due 12:00
    act(gm, issue_id, "dispatch", "2025-03-03 08:10", department="环卫所")
    tick(gm, "2025-03-03 12:30")
    act(gm, issue_id, "extend", "2025-03-03 14:00", comment="缺材料", approver="值班长")  # due 18:00
    assert tick(gm, "2025-03-03 15:00").states["ok"] == 1  # 3 of 8 allowed hours left: no longer overdue
    tick(gm, "2025-03-03 18:30")
    assert [(level, due) for level, _, _, due in escalations(gm, issue_id)] == [
        (1, at("2025-03-03 12:00")), (1, at("2025-03-03 18:00"))]


def test_suspended_and_finished_issues_are_not_escalated(gm, point):
    suspended = registered(gm, point, "E0102", "2025-03-03 08:00")
    act(gm, suspended, "suspend", "2025-03-03 09:00", comment="挂账")
    closed = registered(gm, point, "C0101", "2025-03-03 08:00")
    for action, when in [("dispatch", "2025-03-03 08:05"), ("start", "2025-03-03 08:10"),
                         ("feedback", "2025-03-03 09:00"),
                         ("check", "2025-03-03 09:10"), ("close", "2025-03-03 09:20")]:
        act(gm, closed, action, when, **({"department": "供水公司"} if action == "dispatch" else {}))
    report = tick(gm, "2025-03-20 10:00")
    assert report.states == {"ok": 0, "warning": 0, "overdue": 0, "paused": 1}
    assert escalations(gm, suspended) == escalations(gm, closed) == []
    with gm.db.sessions() as session:
        assert (session.get(Issue, suspended).sla_state, session.get(Issue, closed).sla_state) == ("paused", None)


def test_sla_tick_cli_is_safe_to_repeat(gm, cli_env, point):
    issue_id = registered(gm, point, "C0101", "2025-03-03 08:00")  # due 10:00; community 12:00; street 14:00
    result = CliRunner().invoke(main, ["sla", "tick", "--at", "2025-03-03 13:00"])
    assert result.exit_code == 0, result.output
    assert "1 open issue(s): 0 ok, 0 warning, 1 overdue, 0 paused; 2 new escalation(s)" in result.output
    result = CliRunner().invoke(main, ["sla", "tick", "--at", "2025-03-03 13:00"])
    assert "0 new escalation(s)" in result.output
    assert [level for level, *_ in escalations(gm, issue_id)] == [1, 2]


def test_sla_tick_lists_issues_it_cannot_evaluate_and_exits_1(gm, cli_env, point, tmp_path, monkeypatch):
    first = registered(gm, point, "E0102", "2025-12-31 17:00")  # due 2026-01-04 11:00
    second = registered(gm, point, "E0102", "2025-12-31 08:00")  # due 12:00 the same day
    # the operator swaps in a calendar without 2026: the first one's remaining time cannot be counted
    only_2025 = [
        line
        for line in BUNDLED_HOLIDAYS.read_text(encoding="utf-8-sig").splitlines()
        if not line.startswith("202") or line.startswith("2025")
    ]
    (tmp_path / "holidays.csv").write_text("\n".join(only_2025) + "\n", encoding="utf-8")
    monkeypatch.setenv("GRIDMAP_HOLIDAYS", str(tmp_path / "holidays.csv"))
    result = CliRunner().invoke(main, ["sla", "tick", "--at", "2025-12-31 17:30"])
    assert result.exit_code == 1
    assert f"issue {first}: the holiday calendar" in result.output and "has no entries for 2026" in result.output
    assert "1 overdue" in result.output  # the other one is evaluated and escalated all the same
    assert [level for level, *_ in escalations(gm, second)] == [1]
    result = CliRunner().invoke(main, ["sla", "tick", "--at", "not a time"])
    assert result.exit_code == 2 and "--at" in result.output
