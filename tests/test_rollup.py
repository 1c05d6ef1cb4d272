"""The issue rollup: it always equals the counts of the raw rows, and its readers answer as the raw rows do.

The rollup (gridmap.storage.rollup) is kept by database triggers in the same transaction as every
change to issues. The property test runs random sequences of intakes, workflow actions, issue and
ledger imports, bulk statements, duplicate merges, deletes and a backup/restore, and after each sequence compares
the rollup with the raw rows and every reader's answer with the raw-row answer.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, exists, func, or_, select, text, update
from sqlalchemy.orm import aliased

from gridmap.cli import main
from gridmap.core import Gridmap
from gridmap.errors import GridmapError
from gridmap.geo.layers import LEVELS
from gridmap.interop.ledger_export import LedgerFilter, export_ledger
from gridmap.interop.ledger_import import import_ledger
from gridmap.issues.counts import IssueFilter, grouped_counts, level_column, raw_grouped_counts
from gridmap.issues.workflow import allowed_actions, apply_action, load_issue
from gridmap.maps.filters import MapFilter
from gridmap.ops.backup import backup_database, restore_database
from gridmap.security.access import UNLIMITED, AccessScope
from gridmap.security.audit import audit_entries
from gridmap.storage.models import Issue
from gridmap.storage.rollup import differences, issue_rollup, local_day, rebuild, rollup_timezone
from helpers import cell_point

BEIJING = ZoneInfo("Asia/Shanghai")
START = datetime(2025, 6, 2, 0, 0, tzinfo=BEIJING)  # a Monday, local midnight
CELLS = ("460204001001001", "460204001002001", "460204101001001", "460204101002001")
CATEGORIES = ("E0102", "E0103", "C0101", "C0102")
SOURCES = ("web", "hotline", "patrol", "import")
DEPARTMENTS = ("天涯镇环卫站", "消防救援大队")
AS_OF = START + timedelta(days=4)


def rollup_rows(gm) -> dict[tuple, int]:
    with gm.db.sessions() as session:
        return {tuple(row[:-1]): row[-1] for row in session.execute(select(issue_rollup)).all()}


def filters() -> list[IssueFilter]:
    """Filters a reader meets: none, a period with a category class and area scope, departments, statuses, sources."""
    return [
        IssueFilter(timezone="Asia/Shanghai"),
        IssueFilter(date(2025, 6, 2), date(2025, 6, 3), "E01", access=AccessScope(areas=("460204001",))),
        IssueFilter(date(2025, 6, 1), None, "C0101", access=AccessScope(areas=("460204101001001", "460204001002"))),
        IssueFilter(None, date(2025, 6, 2), access=AccessScope(departments=DEPARTMENTS[:1])),
        IssueFilter(access=AccessScope(areas=("460204101",), departments=DEPARTMENTS)),
        MapFilter(date(2025, 6, 2), None, statuses=("open",), sources=("web", "import")),
        MapFilter(statuses=("closed", "rejected"), access=AccessScope(areas=("460204001001",))),
    ]


def assert_rollup_equals_raw_rows(gm) -> None:
    with gm.db.sessions() as session:
        assert differences(session.connection()) == []
        for issue_filter in filters():
            for level in LEVELS:
                raw = raw_grouped_counts(session, level_column(level), issue_filter.conditions(), as_of=AS_OF)
                assert grouped_counts(session, level, issue_filter, as_of=AS_OF) == raw, (level, issue_filter)


# --- the steps of a random history --------------------------------------------------------------


def report(gm, points, cell: int, category: str, source: str, hours: int) -> None:
    lon, lat = points[cell]
    gm.intake.create(gm.db, {"lon": lon, "lat": lat, "category": category, "description": "随机上报",
                             "source": source, "reported_at": START + timedelta(hours=hours)})


def import_rows(gm, points, rows: list[tuple[int, str, int, bool]]) -> None:
    records = []
    for cell, category, hours, closed in rows:
        reported = START + timedelta(hours=hours)
        record = {"lon": points[cell][0], "lat": points[cell][1], "category": category, "description": "导入",
                  "reported_at": reported.isoformat()}
        if closed:
            record.update(status="closed", registered_at=(reported + timedelta(hours=1)).isoformat(),
                          closed_at=(reported + timedelta(hours=30)).isoformat())
        records.append(record)
    report_ = gm.intake.import_records(gm.db, records)
    assert report_.errors == [] and report_.imported == len(records)


def act(gm, pick: int, choice: int) -> None:
    """Take one of the actions the picked issue allows (merging into another open case when it is a merge)."""
    with gm.db.session() as session:
        ids = session.scalars(select(Issue.id).order_by(Issue.id)).all()
        if not ids:
            return
        issue = load_issue(session, ids[pick % len(ids)])
        actions = allowed_actions(issue)
        if not actions:
            return
        action = actions[choice % len(actions)]
        params = {"dispatch": {"department": DEPARTMENTS[choice % 2]}, "revisit": {"satisfaction": 4},
                  "extend": {"approver": "李科长"}}.get(action, {})
        if action == "merge":
            original = session.scalar(select(Issue.id).where(Issue.id != issue.id, Issue.duplicate_of.is_(None),
                                                             Issue.status.in_(("registered", "dispatched"))))
            if original is None:
                return
            params = {"original": original}
        last = max(filter(None, (issue.reported_at, *(t.at for t in issue.transitions))))
        try:
            with session.begin_nested():
                apply_action(session, issue, action, actor="测试", comment="随机操作", at=last + timedelta(hours=2),
                             rules=gm.workflow_rules, **params)
        except GridmapError:
            pass  # an action the history does not allow (e.g. extending twice): nothing changed


def bulk(gm, kind: int, pick: int) -> None:
    """A bulk statement as importers and scripts write: move reports a day, change category, department or status."""
    chosen = Issue.id % 3 == pick % 3
    with gm.db.session() as session:
        if kind == 0:  # by primary key, as the ORM's bulk update writes many rows
            moved = [{"id": id_, "reported_at": at + timedelta(hours=17)}
                     for id_, at in session.execute(select(Issue.id, Issue.reported_at).where(chosen))]
            if moved:
                session.execute(update(Issue), moved)
            return
        # A status moved by a bare statement would leave the issue's history behind (the ledger import then
        # rightly refuses it): status changes come from workflow actions; statements move the other keys.
        values = ({"category": CATEGORIES[pick % 4]}, {"department": DEPARTMENTS[pick % 2]}, {"source": "hotline"},
                  {"department": None})[kind - 1]
        session.execute(update(Issue).where(chosen).values(values))


def ledger_round_trip(gm, folder) -> None:
    """Export the ledger (台账) and import it again as new issues, with their statuses and histories."""
    path = folder / "ledger.csv"
    with gm.db.sessions() as session:
        if session.scalar(select(func.count()).select_from(Issue)) > 12:
            return  # keep the history small
    export_ledger(gm, path, LedgerFilter.parse(categories=gm.categories, timezone_name=gm.timezone, access=UNLIMITED))
    report_ = import_ledger(gm, path)
    assert report_.errors == []


def delete_one(gm, pick: int) -> None:
    """Delete an issue that no other issue refers to."""
    other = aliased(Issue)
    with gm.db.session() as session:
        free = session.scalars(select(Issue.id).where(~exists().where(or_(
            other.duplicate_of == Issue.id, other.possible_duplicate_of == Issue.id))).order_by(Issue.id)).all()
        if free:
            session.execute(delete(Issue).where(Issue.id == free[pick % len(free)]))


STEPS = st.one_of(
    st.tuples(st.just("report"), st.integers(0, 3), st.sampled_from(CATEGORIES), st.sampled_from(SOURCES),
              st.integers(-30, 80)),
    st.tuples(st.just("import"), st.lists(st.tuples(st.integers(0, 3), st.sampled_from(CATEGORIES),
                                                    st.integers(-30, 80), st.booleans()), min_size=1, max_size=4)),
    st.tuples(st.just("act"), st.integers(0, 50), st.integers(0, 10)),
    st.tuples(st.just("act"), st.integers(0, 50), st.integers(0, 10)),
    st.tuples(st.just("bulk"), st.integers(0, 4), st.integers(0, 5)),
    st.tuples(st.just("delete"), st.integers(0, 50)),
    st.tuples(st.just("ledger")),
    st.tuples(st.just("backup")),
    st.tuples(st.just("restore")),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEPS, min_size=1, max_size=8))
def test_the_rollup_equals_the_raw_rows_after_any_history(gm, mini_geodata, tmp_path, steps):
    points = [cell_point(mini_geodata, code) for code in CELLS]
    backup_file = tmp_path / "rollup-backup.sqlite3"
    for step in steps:
        kind, *args = step
        if kind == "report":
            report(gm, points, *args)
        elif kind == "import":
            import_rows(gm, points, args[0])
        elif kind == "act":
            act(gm, *args)
        elif kind == "bulk":
            bulk(gm, *args)
        elif kind == "delete":
            delete_one(gm, *args)
        elif kind == "ledger":
            ledger_round_trip(gm, tmp_path)
        elif kind == "backup":
            backup_database(gm.db, backup_file)
        elif backup_file.exists():
            restore_database(gm.db, backup_file)
    assert_rollup_equals_raw_rows(gm)


# --- fixed cases --------------------------------------------------------------------------------


def test_a_merge_and_a_restore_keep_the_counts(gm, mini_geodata, tmp_path):
    points = [cell_point(mini_geodata, code) for code in CELLS]
    report(gm, points, 0, "E0102", "web", 1)
    report(gm, points, 0, "E0102", "hotline", 2)
    act(gm, 0, 0)  # register the first
    with gm.db.session() as session:
        duplicate = load_issue(session, session.scalars(select(Issue.id).order_by(Issue.id.desc())).first())
        apply_action(session, duplicate, "merge", actor="测试", comment="重复", original=duplicate.id - 1,
                     at=START + timedelta(hours=5), rules=gm.workflow_rules)
    day = date(2025, 6, 2)
    assert rollup_rows(gm) == {
        (day, CELLS[0], CELLS[0][:12], CELLS[0][:9], CELLS[0][:6], "E0102", "web", "registered", "环卫所"): 1,
        (day, CELLS[0], CELLS[0][:12], CELLS[0][:9], CELLS[0][:6], "E0102", "hotline", "closed", "环卫所"): 1,
    }
    backup_database(gm.db, tmp_path / "b.sqlite3")
    import_rows(gm, points, [(1, "C0101", 3, True)])
    restore_database(gm.db, tmp_path / "b.sqlite3")
    assert sum(rollup_rows(gm).values()) == 2
    assert_rollup_equals_raw_rows(gm)


def test_rollup_rows_are_not_in_the_audit_log(gm, mini_geodata):
    report(gm, [cell_point(mini_geodata, CELLS[0])], 0, "E0102", "web", 1)
    with gm.db.sessions() as session:
        assert audit_entries(session, entity="issues")[0] == 1
        assert audit_entries(session, entity="issue_rollup")[0] == 0


def test_check_and_rebuild_commands(gm, mini_geodata, cli_env):
    report(gm, [cell_point(mini_geodata, CELLS[0])], 0, "E0102", "web", 1)
    runner = CliRunner()
    checked = runner.invoke(main, ["rollup", "check"])
    assert (checked.exit_code, checked.output.strip()) == (0, "rollup matches the raw rows")
    with gm.db.session() as session:
        session.execute(text("UPDATE issue_rollup SET issues = issues + 2"))
    checked = runner.invoke(main, ["rollup", "check"])
    assert checked.exit_code == 1
    assert f"day=2025-06-02 cell_code={CELLS[0]}" in checked.output and "raw rows 1, rollup 3" in checked.output
    rebuilt = runner.invoke(main, ["rollup", "rebuild"])
    assert (rebuilt.exit_code, rebuilt.output.strip()) == (0, "rollup rebuilt: 1 row(s), days in Asia/Shanghai")
    assert runner.invoke(main, ["rollup", "check"]).exit_code == 0


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/St_Johns", "Asia/Kathmandu"])
def test_days_follow_the_service_time_zone_across_daylight_saving(settings, mini_geodata, zone):
    """A zone with daylight saving (and half-hour offsets): days are local, readers answer as the raw rows."""
    core = Gridmap({**settings, "timezone": zone})
    core.init_database()  # the rollup is rebuilt for the service's zone
    try:
        tz = ZoneInfo(zone)
        lon, lat = cell_point(mini_geodata, CELLS[0])
        moments = [datetime(2025, 3, 30, 0, 59, tzinfo=ZoneInfo("UTC")), datetime(2025, 3, 30, 1, 0, tzinfo=tz),
                   datetime(2025, 10, 26, 23, 30, tzinfo=tz), datetime(2025, 11, 2, 0, 15, tzinfo=tz),
                   datetime(2025, 3, 9, 2, 30, tzinfo=ZoneInfo("UTC")), datetime(2025, 12, 31, 23, 59, tzinfo=tz)]
        for moment in moments:
            core.intake.create(core.db, {"lon": lon, "lat": lat, "category": "E0102", "description": "夏令时",
                                         "reported_at": moment})
        with core.db.sessions() as session:
            assert rollup_timezone(session.connection()) == zone
            days = sorted(row.day for row in session.execute(select(issue_rollup.c.day, issue_rollup.c.issues)))
            expected = sorted({local_day(moment, zone) for moment in moments})
            assert days == expected
            for day in expected:
                one_day = IssueFilter(day, day, timezone=zone)
                raw = raw_grouped_counts(session, level_column("cells"), one_day.conditions())
                assert grouped_counts(session, "cells", one_day) == raw
                assert sum(counts[0] for counts in raw.values()) == sum(local_day(m, zone) == day for m in moments)
    finally:
        core.close()


def test_readers_fall_back_to_the_raw_rows_for_another_zone(gm, mini_geodata):
    report(gm, [cell_point(mini_geodata, CELLS[0])], 0, "E0102", "web", 1)  # 01:00 in Beijing, still 1 June in UTC
    with gm.db.sessions() as session:
        utc_day = IssueFilter(date(2025, 6, 1), date(2025, 6, 1), timezone="UTC", access=UNLIMITED)
        assert grouped_counts(session, "cells", utc_day)[CELLS[0]][0] == 1
    with gm.db.session() as session:
        assert rebuild(session.connection(), "UTC") == 1
        assert session.scalar(select(issue_rollup.c.day)) == date(2025, 6, 1)


def test_migration_0006_counts_the_issues_already_stored(database_url):
    """Upgrading a filled database to 0006 fills the rollup from the rows it finds."""
    from alembic import command

    from gridmap.storage.db import Database

    db = Database(database_url)
    config = db._alembic_config()
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
    stored = [("2025-06-01 16:30:00", "460204001001001", "E0102", "web", "closed", "环卫所"),  # 2 June in Beijing
              ("2025-06-01 15:59:59", "460204001001001", "E0102", "web", "closed", "环卫所"),  # still 1 June
              ("2025-06-02 03:00:00", "460204001001001", "E0102", "web", "closed", "环卫所"),
              ("2025-06-02 03:00:00", "460204101002001", "C0101", "patrol", "reported", None)]
    with db.engine.begin() as connection:
        for at, cell, category, source, status, department in stored:
            connection.execute(text(
                "INSERT INTO issues (category, description, source, lon, lat, cell_code, community_code, street_code, "
                "district_code, urgency, status, department, reported_at, created_at, photos, extra, rework_count, "
                "extension_count, paused_seconds) VALUES (:category, 'x', :source, 109.5, 18.3, :cell, :community, "
                ":street, :district, 'normal', :status, :department, :at, :at, '[]', '{}', 0, 0, 0)"),
                {"category": category, "source": source, "cell": cell, "community": cell[:12], "street": cell[:9],
                 "district": cell[:6], "status": status, "department": department,
                 "at": datetime.fromisoformat(at)})
    db.migrate()
    with db.engine.connect() as connection:
        assert differences(connection) == []
        rows = {(str(row.day), row.cell_code, row.department): row.issues
                for row in connection.execute(select(issue_rollup))}
    assert rows == {("2025-06-02", "460204001001001", "环卫所"): 2, ("2025-06-01", "460204001001001", "环卫所"): 1,
                    ("2025-06-02", "460204101002001", ""): 1}
    db.dispose()
