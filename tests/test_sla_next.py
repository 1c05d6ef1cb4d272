"""The next moment an issue's SLA state changes (``sla_next_at``), kept right by every transition and the tick.

Hand-computed answers (Beijing time) with the bundled calendar: E0102 暴露垃圾 has 4 working hours
(08:00–12:00, 14:00–18:00 on working days), the warning comes when 20 % (48 working minutes) or
less is left; C0101 上水井盖 has 2 continuous hours (warning 24 minutes before the deadline).
2025-03-03 is a Monday.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from sqlalchemy import select, text

from gridmap.issues.escalation import due_issue_ids, sla_tick
from gridmap.issues.states import CLOCK_STOPPED_STATUSES, CLOSED_STATUSES, DISCARDED_STATUSES, OPEN_STATUSES, STATUSES
from gridmap.issues.workflow import apply_action, load_issue, sla_state_of
from gridmap.storage import Database
from gridmap.storage.models import FINISHED_STATUSES, RUNNING_STATUSES, SLA_DUE_NOW, Issue
from gridmap.storage.workflow import IssueEscalation
from helpers import cell_point, explain

BEIJING = ZoneInfo("Asia/Shanghai")
CELL = "460204001002010"
JUST_AFTER = timedelta(microseconds=1)


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_).replace(tzinfo=BEIJING)


@pytest.fixture
def point(mini_geodata):
    return cell_point(mini_geodata, CELL)


def reported(gm, point, category: str, when: str) -> int:
    record = {"lon": point[0], "lat": point[1], "category": category, "description": "测试", "reported_at": at(when)}
    return gm.intake.create(gm.db, record).id


def act(gm, issue_id: int, action: str, when: str, **params) -> Issue:
    with gm.db.session() as session:
        issue = load_issue(session, issue_id)
        apply_action(session, issue, action, actor="测试", at=at(when), rules=gm.workflow_rules, **params)
    return stored(gm, issue_id)


def stored(gm, issue_id: int) -> Issue:
    with gm.db.sessions() as session:
        return session.get(Issue, issue_id)


def tick(gm, when: str):
    with gm.db.session() as session:
        return sla_tick(session, gm.workflow_rules, at(when))


def levels(gm, issue_id: int) -> list[int]:
    with gm.db.sessions() as session:
        return list(session.scalars(select(IssueEscalation.level).where(IssueEscalation.issue_id == issue_id)
                                    .order_by(IssueEscalation.level)))


def test_the_storage_layer_knows_the_same_statuses_as_the_workflow():
    assert set(FINISHED_STATUSES) == CLOSED_STATUSES | DISCARDED_STATUSES
    assert list(RUNNING_STATUSES) == [s for s in STATUSES if s in OPEN_STATUSES - CLOCK_STOPPED_STATUSES]


def test_registration_sets_the_moment_the_warning_starts(gm, point):
    issue_id = reported(gm, point, "E0102", "2025-03-03 09:55")
    issue = act(gm, issue_id, "register", "2025-03-03 10:00")  # due 16:00
    assert (issue.sla_state, issue.sla_next_at) == ("ok", at("2025-03-03 15:12"))
    assert sla_state_of(issue, at("2025-03-03 15:11"), gm.workflow_rules) == "ok"
    assert sla_state_of(issue, at("2025-03-03 15:12"), gm.workflow_rules) == "warning"


def test_a_warning_that_starts_in_the_lunch_break_starts_when_the_morning_ends(gm, point):
    issue_id = reported(gm, point, "E0102", "2025-03-03 08:40")
    issue = act(gm, issue_id, "register", "2025-03-03 08:48")  # 3 h 12 min in the morning, 48 min after lunch: 14:48
    assert issue.deadline == at("2025-03-03 14:48")
    assert issue.sla_next_at == at("2025-03-03 12:00")  # from 12:00 on only 48 working minutes are left
    assert sla_state_of(issue, at("2025-03-03 11:59"), gm.workflow_rules) == "ok"
    assert sla_state_of(issue, at("2025-03-03 12:00"), gm.workflow_rules) == "warning"


def test_the_tick_moves_the_moment_on_through_warning_overdue_and_each_escalation_level(gm, point):
    issue_id = reported(gm, point, "E0102", "2025-03-03 09:55")
    act(gm, issue_id, "register", "2025-03-03 10:00")  # due 16:00; community Tue 10:00; street Tue 16:00
    tick(gm, "2025-03-03 15:30")
    issue = stored(gm, issue_id)
    assert (issue.sla_state, issue.sla_next_at) == ("warning", at("2025-03-03 16:00") + JUST_AFTER)
    tick(gm, "2025-03-03 16:00")  # the deadline itself is not late yet
    assert stored(gm, issue_id).sla_state == "warning" and levels(gm, issue_id) == []
    tick(gm, "2025-03-03 16:30")
    issue = stored(gm, issue_id)
    assert (issue.sla_state, levels(gm, issue_id)) == ("overdue", [1])
    assert issue.sla_next_at == at("2025-03-04 10:00") + JUST_AFTER
    tick(gm, "2025-03-04 10:30")
    assert (stored(gm, issue_id).sla_next_at, levels(gm, issue_id)) == (at("2025-03-04 16:00") + JUST_AFTER, [1, 2])
    tick(gm, "2025-03-04 17:00")
    assert (stored(gm, issue_id).sla_next_at, levels(gm, issue_id)) == (None, [1, 2, 3])
    report = tick(gm, "2025-03-05 09:00")  # nothing left to do, yet the issue is still counted
    assert report.states["overdue"] == 1 and report.checked == 1 and report.escalations == 0


def test_an_extension_moves_the_warning_to_the_widened_window(gm, point):
    issue_id = reported(gm, point, "E0102", "2025-03-03 09:55")
    act(gm, issue_id, "register", "2025-03-03 10:00")
    act(gm, issue_id, "dispatch", "2025-03-03 10:05", department="环卫所")
    issue = act(gm, issue_id, "extend", "2025-03-03 10:10", comment="缺材料", approver="值班长")
    assert issue.deadline == at("2025-03-04 10:00")
    assert issue.sla_next_at == at("2025-03-04 08:24")  # 8 h allowed: warning when 1.6 h are left


def test_suspension_clears_the_moment_and_resume_sets_it_from_the_moved_deadline(gm, point):
    issue_id = reported(gm, point, "E0102", "2025-09-26 13:55")
    act(gm, issue_id, "register", "2025-09-26 14:00")  # due Fri 18:00
    issue = act(gm, issue_id, "suspend", "2025-09-26 17:00", comment="挂账")
    assert (issue.sla_state, issue.sla_next_at) == ("paused", None)
    issue = act(gm, issue_id, "resume", "2025-09-29 09:00")  # 1 h was left: due Mon 10:00
    assert issue.deadline == at("2025-09-29 10:00")
    assert (issue.sla_state, issue.sla_next_at) == ("ok", at("2025-09-29 09:12"))


def test_rework_of_a_late_case_makes_it_due_for_its_escalations(gm, point):
    issue_id = reported(gm, point, "E0102", "2025-03-03 09:55")
    act(gm, issue_id, "register", "2025-03-03 10:00")  # due 16:00
    steps = [("dispatch", "2025-03-03 10:05"), ("start", "2025-03-03 10:10"), ("feedback", "2025-03-03 15:00")]
    for action, when in steps:
        act(gm, issue_id, action, when, **({"department": "环卫所"} if action == "dispatch" else {}))
    issue = act(gm, issue_id, "rework", "2025-03-03 15:30", comment="未清理干净")
    assert (issue.sla_state, issue.sla_next_at) == ("warning", at("2025-03-03 16:00") + JUST_AFTER)
    act(gm, issue_id, "feedback", "2025-03-03 16:10")
    issue = act(gm, issue_id, "rework", "2025-03-03 16:20", comment="仍未清理")
    assert (issue.sla_state, issue.sla_next_at) == ("overdue", at("2025-03-03 16:00") + JUST_AFTER)
    tick(gm, "2025-03-03 16:30")
    assert levels(gm, issue_id) == [1] and stored(gm, issue_id).sla_next_at == at("2025-03-04 10:00") + JUST_AFTER


def test_closing_clears_the_moment_and_reopening_sets_a_new_one(gm, point):
    issue_id = reported(gm, point, "C0101", "2025-03-03 07:55")
    act(gm, issue_id, "register", "2025-03-03 08:00")
    steps = [("dispatch", "2025-03-03 08:05"), ("start", "2025-03-03 08:10"), ("feedback", "2025-03-03 09:00"),
             ("check", "2025-03-03 09:10"), ("close", "2025-03-03 09:20")]
    for action, when in steps:
        issue = act(gm, issue_id, action, when, **({"department": "供水公司"} if action == "dispatch" else {}))
    assert (issue.sla_state, issue.sla_next_at) == (None, None)
    issue = act(gm, issue_id, "reopen", "2025-03-04 09:00", comment="井盖又松动")  # due 11:00
    assert (issue.sla_state, issue.sla_next_at) == ("ok", at("2025-03-04 10:36"))


def test_imported_open_issues_are_due_at_the_next_tick_and_finished_ones_never(gm, point):
    base = {"lon": point[0], "lat": point[1], "category": "E0102", "description": "导入",
            "reported_at": "2025-03-03 09:00"}
    closed = dict(base, status="closed", registered_at="2025-03-03 10:00", dispatched_at="2025-03-03 10:20",
                  handled_at="2025-03-03 15:00", checked_at="2025-03-03 16:00", closed_at="2025-03-03 16:30")
    registered = dict(base, status="registered", registered_at="2025-03-03 10:00")
    report = gm.intake.import_records(gm.db, [closed, registered])
    closed_id, open_id = report.issue_ids
    assert stored(gm, closed_id).sla_next_at is None
    assert stored(gm, open_id).sla_next_at == SLA_DUE_NOW
    result = tick(gm, "2025-03-03 11:00")
    assert result.checked == 1 and result.states["ok"] == 1
    assert stored(gm, open_id).sla_next_at == at("2025-03-03 15:12")
    assert stored(gm, closed_id).sla_next_at is None


def test_a_tick_reads_only_the_issues_due(gm, point):
    early = reported(gm, point, "C0101", "2025-03-03 07:55")
    act(gm, early, "register", "2025-03-03 08:00")  # warning 09:36
    late = reported(gm, point, "C0101", "2025-03-03 08:55")
    act(gm, late, "register", "2025-03-03 09:00")  # warning 10:36
    tick(gm, "2025-03-03 09:00")  # the first tick with these rules evaluates every open issue
    with gm.db.session() as session:  # a mark the tick would overwrite if it read the row
        session.execute(text("UPDATE issues SET sla_state = 'marked' WHERE id = :id"), {"id": late})
    report = tick(gm, "2025-03-03 09:40")
    assert stored(gm, early).sla_state == "warning" and stored(gm, late).sla_state == "marked"
    assert report.checked == 2 and report.states["warning"] == 1


def test_changed_rules_make_the_next_tick_evaluate_every_open_issue(gm, point):
    issue_id = reported(gm, point, "C0101", "2025-03-03 07:55")
    act(gm, issue_id, "register", "2025-03-03 08:00")  # warning at 09:36 with the 0.8 share
    tick(gm, "2025-03-03 08:30")
    assert stored(gm, issue_id).sla_next_at == at("2025-03-03 09:36")
    gm.workflow_rules = replace(gm.workflow_rules, warn_share=0.5)
    report = tick(gm, "2025-03-03 09:10")
    assert report.states["warning"] == 1 and stored(gm, issue_id).sla_next_at == at("2025-03-03 10:00") + JUST_AFTER


def test_the_tick_finds_the_due_rows_through_its_index(gm):
    statement = due_issue_ids(at("2025-03-03 10:00"))
    with gm.db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SET LOCAL enable_seqscan = off"))  # proves the index can answer it alone
        plan = explain(connection, statement)
    assert "ix_issues_sla_next_at" in plan and "Seq Scan on issues" not in plan and "SCAN issues" not in plan


def test_migration_0007_marks_the_stored_open_work_due_and_leaves_the_archive(database_url):
    db = Database(database_url)
    config = db._alembic_config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
    columns = ("id, category, description, source, lon, lat, cell_code, community_code, street_code, district_code, "
               "urgency, status, deadline, reported_at, created_at, sla_state, extension_count, paused_seconds, "
               "rework_count, photos, extra")
    rows = [(1, "registered", "2025-03-03 08:00:00", None), (2, "closed", "2025-03-03 08:00:00", None),
            (3, "closed", None, "overdue"), (4, "reported", None, None)]
    with db.engine.begin() as connection:
        for issue_id, status, due, state in rows:
            connection.execute(text(
                f"INSERT INTO issues ({columns}) VALUES (:id, 'E0102', '旧案', 'web', 110.2, 18.2, "
                "'460204001002010', '460204001002', '460204001', '460204', 'normal', :status, :due, "
                "'2025-03-03 07:00:00', '2025-03-03 07:00:00', :state, 0, 0, 0, '[]', '{}')"),
                {"id": issue_id, "status": status, "due": due, "state": state})
    db.migrate()
    with db.sessions() as session:
        marks = dict(session.execute(select(Issue.id, Issue.sla_next_at)).all())
    assert marks == {1: SLA_DUE_NOW, 2: None, 3: SLA_DUE_NOW, 4: None}
    db.dispose()
