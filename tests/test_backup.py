"""`gridmap backup` and `gridmap restore`: an online, consistent copy; a restore is all or nothing."""

from __future__ import annotations

import re
import shutil
import sqlite3
import threading
import uuid
from datetime import UTC, date, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import JSON, Text, cast, func, select

from gridmap.cli import EXIT_BAD_INPUT, main
from gridmap.core import Gridmap
from gridmap.ops.backup import APPLICATION_ID, code_revisions, inspect_backup, model_tables
from gridmap.storage.coverage import (
    Household,
    HouseholdKind,
    HouseholdLocation,
    PatrolSegment,
    PatrolTrack,
    Visit,
    VisitIssue,
)
from gridmap.storage.db import Database
from gridmap.storage.interop import ApiKey, Open311Token
from gridmap.storage.models import Issue, IssueTransition
from gridmap.storage.security import ApiToken, AuditEntry, IdempotencyKey, User
from gridmap.storage.workflow import GridWorker, GridWorkerCell, IssueEscalation
from helpers import cell_point

CELL = "460204001001001"
UTC = UTC


def run(*args, input: str | None = None):
    return CliRunner().invoke(main, list(map(str, args)), input=input)


@pytest.fixture
def new_database(request, database_url, tmp_path):
    """``new_database(backend=None)``: the URL of another empty database (default: the backend under test)."""
    made: list[str] = []

    def make(backend: str | None = None) -> str:
        backend = backend or ("postgresql" if database_url.startswith("postgresql") else "sqlite")
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / uuid.uuid4().hex[:8]}.sqlite3"
        name = "t_" + uuid.uuid4().hex[:12]
        made.append(name)
        return request.getfixturevalue("pg_server").create_database(name)

    yield make
    for name in made:
        request.getfixturevalue("pg_server").drop_database(name)


def every_row(url: str) -> dict[str, list[tuple]]:
    """Every row of every table, by primary key; JSON as its stored text (SQL NULL and JSON null differ).

    The audit log's own record of a restore is left out: a restore adds it to the restored log.
    """
    db = Database(url)
    try:
        with db.engine.connect() as connection:
            return {
                table.name: [tuple(row) for row in connection.execute(
                    select(*(cast(c, Text) if isinstance(c.type, JSON) else c for c in table.columns))
                    .where(*([table.c.operation != "restore"] if table.name == "audit_log" else []))
                    .order_by(*table.primary_key.columns))]
                for table in model_tables()
            }
    finally:
        db.dispose()


def fill_every_table(gm: Gridmap, mini_geodata) -> None:
    """Rows in every table, with values easy to get wrong: microseconds, non-ASCII text, JSON null
    next to SQL NULL, booleans, dates, and an issue that refers to a later issue."""
    lon, lat = cell_point(mini_geodata, CELL)
    record = {"lon": lon, "lat": lat, "category": "E0505", "description": "路边机动车乱停放 🚗",
              "reported_at": "2025-06-02 09:30"}
    first = gm.intake.create(gm.db, {**record, "photos": "http://x/1.jpg;http://x/2.jpg"})
    second = gm.intake.create(gm.db, {**record, "lon": lon + 0.0001, "reporter_name": "张三",
                                      "registered_at": "2025-06-02 10:00",
                                      "status": "registered"})
    at = datetime(2025, 6, 2, 1, 30, 15, 123456, tzinfo=UTC)
    with gm.db.session() as session:
        session.get(Issue, first.id).possible_duplicate_of = second.id  # refers forward
        session.get(Issue, second.id).duplicate_of = first.id
        session.get(Issue, first.id).paused_seconds = 0.1 + 0.2
        session.add(IssueTransition(issue_id=first.id, action="comment", to_status="reported", actor="李四", at=at,
                                    details=None))  # JSON null, where the intake's rows hold SQL NULL
        session.add(IssueEscalation(issue_id=first.id, level=1, area_level="cell", area_code=CELL, deadline=at,
                                    due_at=at,
                                    created_at=at))
        worker = GridWorker(name="王五", phone="13800000001")
        session.add(worker)
        session.flush()
        session.add(GridWorkerCell(cell_code=CELL, worker_id=worker.id))
        session.merge(HouseholdKind(code="test_kind", name_zh="测试户", name_en="Test", key=True,
                                    visit_interval_months=1,
                                    description=None))
        household = Household(external_id="H-1", name="赵六", phone=None, kind="test_kind", members=3, created_at=at,
                              updated_at=at)
        session.add(household)
        session.flush()
        session.add(HouseholdLocation(household_id=household.id, valid_from=date(2025, 1, 1), valid_to=None,
                                      address="春园路1号",
                                      lon=lon, lat=lat, located_by="point", cell_code=CELL, community_code=CELL[:12],
                                      street_code=CELL[:9], district_code=CELL[:6]))
        visit = Visit(household_id=household.id, visitor="王五", visited_at=at, visited_on=date(2025, 6, 2),
                      cell_code=CELL,
                      notes="一切正常", source="import", created_at=at)
        session.add(visit)
        session.flush()
        session.add(VisitIssue(visit_id=visit.id, issue_id=first.id))
        track = PatrolTrack(worker="王五", day=date(2025, 6, 2), started_at=at, ended_at=at,
                            points=[[lon, lat, 1748827815.5]],
                            point_count=1, outside_points=0, length_m=0.0, outside_length_m=0.0, outside_seconds=0.0,
                            source="track.gpx", created_at=at)
        session.add(track)
        session.flush()
        session.add(PatrolSegment(track_id=track.id, cell_code=CELL, day=date(2025, 6, 2), entered_at=at, left_at=at,
                                  seconds=1.5, length_m=2.25))
        key = ApiKey(name="client", key_hash="a" * 64, created_at=at, revoked_at=None)
        session.add(key)
        session.flush()
        session.add(Open311Token(token="tok-1", issue_id=first.id, api_key_id=key.id, created_at=at))
        session.add(User(name="admin", role="admin", scopes=[], password_hash="x", created_at=at))
        session.add(ApiToken(name="robot", token_hash="b" * 64, role="dispatcher", scopes=["460204001"], created_at=at))
        session.add(IdempotencyKey(principal="robot", key="k-1", request_hash="c" * 64, issue_id=first.id,
                                   created_at=at))


def change_after_the_backup(gm: Gridmap) -> None:
    with gm.db.session() as session:
        session.get(Issue, 1).description = "changed after the backup"
        session.delete(session.get(Visit, 1))


def issue_count(url: str) -> int:
    db = Database(url)
    try:
        with db.engine.connect() as connection:
            return connection.scalar(select(func.count()).select_from(Issue))
    finally:
        db.dispose()


# --- round trips ----------------------------------------------------------------------------------


def test_a_restore_brings_back_every_row_of_every_table(gm, cli_env, mini_geodata, new_database, monkeypatch, tmp_path):
    fill_every_table(gm, mini_geodata)
    original = every_row(gm.db.url)
    assert not [name for name, rows in original.items() if not rows]  # the test covers every table

    result = run("backup", tmp_path / "backup.sqlite3")
    assert result.exit_code == 0, result.output
    assert (
        f"backup {tmp_path / 'backup.sqlite3'}: {len(model_tables())} tables, 2 issues, 4 issue_transitions"
        in result.output
    )
    assert re.search(r"rows in all; \d+(\.\d)? (kB|MB), \d+\.\d s \(schema [0-9a-z, ]+\)$", result.output.strip())

    target = new_database()
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", target)
    result = run("restore", tmp_path / "backup.sqlite3")  # a new, empty database: no confirmation needed
    assert result.exit_code == 0, result.output
    assert f"restored {tmp_path / 'backup.sqlite3'}: {len(model_tables())} tables, 2 issues" in result.output
    assert every_row(target) == original

    # PostgreSQL: the sequences were set past the restored ids, so a new issue gets a fresh id.
    restored = Gridmap({"database_url": target, "geodata": str(mini_geodata)})
    lon, lat = cell_point(mini_geodata, CELL)
    new = restored.intake.create(restored.db, {"lon": lon, "lat": lat, "category": "E0505", "description": "after",
                                               "reported_at": "2025-06-04 09:30"})
    restored.close()
    assert new.id == 3


def test_a_restore_undoes_later_changes(gm, cli_env, mini_geodata, tmp_path):
    fill_every_table(gm, mini_geodata)
    original = every_row(gm.db.url)
    assert run("backup", tmp_path / "backup.sqlite3").exit_code == 0
    lon, lat = cell_point(mini_geodata, CELL)
    gm.intake.create(gm.db, {"lon": lon, "lat": lat, "category": "E0505", "description": "later",
                             "reported_at": "2025-06-03 09:30"})
    change_after_the_backup(gm)

    result = run("restore", "--yes", tmp_path / "backup.sqlite3")
    assert result.exit_code == 0, result.output
    assert every_row(gm.db.url) == original
    with gm.db.sessions() as session:  # the restored log ends with the restore: who, and from which file
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)).one()
    assert (last.operation, last.entity_id, last.actor[:4]) == ("restore", "backup.sqlite3", "cli:")
    assert last.after["rows"]["issues"] == 2


def test_a_backup_restores_into_the_other_backend_and_back(gm, cli_env, mini_geodata, new_database, monkeypatch,
                                                           tmp_path):
    # On PostgreSQL: PostgreSQL → SQLite → PostgreSQL; on SQLite the same path stays on SQLite.
    fill_every_table(gm, mini_geodata)
    original = every_row(gm.db.url)
    assert run("backup", tmp_path / "first.sqlite3").exit_code == 0

    sqlite_url = new_database("sqlite")
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", sqlite_url)
    assert run("restore", tmp_path / "first.sqlite3").exit_code == 0
    assert every_row(sqlite_url) == original
    assert run("backup", tmp_path / "second.sqlite3").exit_code == 0

    back = new_database()
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", back)
    result = run("restore", tmp_path / "second.sqlite3")
    assert result.exit_code == 0, result.output
    assert every_row(back) == original


# --- online and consistent ------------------------------------------------------------------------


def test_a_backup_taken_while_issues_are_written_holds_one_committed_state(
    gm, settings, cli_env, mini_geodata, new_database, monkeypatch, tmp_path
):
    lon, lat = cell_point(mini_geodata, CELL)
    record = {"lon": lon, "lat": lat, "category": "E0505", "description": "写入中", "reported_at": "2025-06-02 09:30",
              "registered_at": "2025-06-02 10:00", "status": "registered"}  # two transitions per issue
    report = gm.intake.import_records(gm.db, [  # enough rows that copying them takes a while, a few minutes apart
        {**record, "reported_at": f"2025-{1 + i // 250:02d}-{1 + i % 25:02d} {8 + i % 10:02d}:{i % 60:02d}",
         "registered_at": f"2025-{1 + i // 250:02d}-{1 + i % 25:02d} "
                          f"{9 + i % 10:02d}:{i % 60:02d}"} for i in range(3000)])
    committed = list(report.issue_ids)
    stop = threading.Event()
    failures: list[BaseException] = []

    def keep_writing() -> None:
        writer = Gridmap(settings)  # its own engine and connections
        try:
            while not stop.is_set():
                committed.append(writer.intake.create(writer.db, record).id)  # issue and transitions, one transaction
        except BaseException as exc:  # noqa: BLE001  (reported by the test below)
            failures.append(exc)
        finally:
            writer.close()

    thread = threading.Thread(target=keep_writing)
    thread.start()
    try:
        while len(committed) < 3020:  # the writer is going
            assert thread.is_alive(), failures
            stop.wait(0.01)
        before = len(committed)
        result = run("backup", tmp_path / "backup.sqlite3")
        during = len(committed) - before
    finally:
        stop.set()
        thread.join(30)
    assert result.exit_code == 0, result.output
    assert not failures and during > 0  # the writer kept committing while the backup ran

    checked = inspect_backup(tmp_path / "backup.sqlite3")  # integrity check, no row without its parent
    kept = checked.rows["issues"]
    assert before <= kept <= len(committed)
    target = new_database()
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", target)
    assert run("restore", tmp_path / "backup.sqlite3").exit_code == 0
    db = Database(target)
    try:
        with db.engine.connect() as connection:
            ids = list(connection.scalars(select(Issue.id).order_by(Issue.id)))
            transitions = dict(connection.execute(
                select(IssueTransition.issue_id, func.count()).group_by(IssueTransition.issue_id)).all())
    finally:
        db.dispose()
    assert ids == sorted(committed[:kept])  # exactly the issues committed up to one moment
    assert set(transitions) == set(ids) and set(transitions.values()) == {2}  # each with all of its transitions


# --- refusals ---------------------------------------------------------------------------------------


def _truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _scribbled(path):
    data = bytearray(path.read_bytes())
    for page in range(2, len(data) // 4096 - 1):  # every b-tree page after the first gets garbage in its header
        data[page * 4096: page * 4096 + 16] = b"\xff" * 16
    path.write_bytes(bytes(data))


def _sql(statement):
    def change(path):
        connection = sqlite3.connect(path)
        connection.execute(statement)
        connection.commit()
        connection.close()
    return change


def _plain_sqlite(path):
    path.unlink()
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE issues (id INTEGER PRIMARY KEY)")
    connection.close()


@pytest.mark.parametrize("spoil, message", [
    # a CSV file renamed
    (lambda p: p.write_text("lon,lat\n1,2\n"), "is not a gridmap backup (not a SQLite database)"),
    # an empty file
    (lambda p: p.write_bytes(b""), "is not a gridmap backup (not a SQLite database)"),
    # a SQLite database that gridmap did not write
    (_plain_sqlite, "is a SQLite database but not a gridmap backup"),
    # cut off half-way through a copy
    (_truncated, "is damaged"),
    # pages overwritten
    (_scribbled, "is damaged"),
    # a transition whose issue is gone
    (_sql("DELETE FROM issues WHERE id = 1"), "row(s) without their parent"),
    # written by another version of gridmap
    (_sql("UPDATE alembic_version SET version_num = '0001'"),
     f"has schema revisions 0001 but the database has {', '.join(code_revisions())}"),
    (_sql("CREATE TABLE extra (id INTEGER)"), "has tables this gridmap does not know (extra)"),
    # no file at all
    (lambda p: p.unlink(), "no such file"),
])
def test_restore_refuses_a_file_that_is_not_an_intact_backup_and_changes_nothing(gm, cli_env, mini_geodata, tmp_path,
                                                                                spoil, message):
    fill_every_table(gm, mini_geodata)
    assert run("backup", tmp_path / "backup.sqlite3").exit_code == 0
    change_after_the_backup(gm)  # the target now differs from the backup
    before = every_row(gm.db.url)
    spoil(tmp_path / "backup.sqlite3")

    result = run("restore", "--yes", tmp_path / "backup.sqlite3")
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert message in result.output
    assert every_row(gm.db.url) == before


def test_restore_into_a_database_that_holds_issues_needs_yes(
    gm, cli_env, mini_geodata, new_database, monkeypatch, tmp_path
):
    fill_every_table(gm, mini_geodata)
    assert run("backup", tmp_path / "backup.sqlite3").exit_code == 0
    target = new_database()
    other = Gridmap({"database_url": target, "geodata": str(mini_geodata)})
    other.init_database()
    lon, lat = cell_point(mini_geodata, CELL)
    for day in (2, 3, 4):
        other.intake.create(other.db, {"lon": lon, "lat": lat, "category": "E0505", "description": "keep me",
                                       "reported_at": f"2025-07-0{day} 09:30"})
    other.close()
    before = every_row(target)
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", target)

    refused = run("restore", tmp_path / "backup.sqlite3")  # stdin is not a terminal: no question, a refusal
    assert refused.exit_code == EXIT_BAD_INPUT
    assert "the database holds 3 issue(s)" in refused.output and "pass --yes" in refused.output
    assert every_row(target) == before

    assert run("restore", "--yes", tmp_path / "backup.sqlite3").exit_code == 0
    assert issue_count(target) == 2


def test_a_restore_that_fails_half_way_changes_nothing(gm, cli_env, mini_geodata, monkeypatch, tmp_path):
    import gridmap.ops.backup

    fill_every_table(gm, mini_geodata)
    assert run("backup", tmp_path / "backup.sqlite3").exit_code == 0
    change_after_the_backup(gm)
    before = every_row(gm.db.url)
    copy_table = gridmap.ops.backup._copy_table

    def copy_then_fail(source, target, table):
        copied = copy_table(source, target, table)
        if table.name == "issue_transitions":  # issues and their transitions are written by now
            raise OSError("disk full")
        return copied

    monkeypatch.setattr(gridmap.ops.backup, "_copy_table", copy_then_fail)
    result = run("restore", "--yes", tmp_path / "backup.sqlite3")
    assert result.exit_code != 0 and isinstance(result.exception, OSError)
    assert every_row(gm.db.url) == before


@pytest.mark.parametrize("name, message", [
    ("missing/backup.sqlite3", "does not exist; create it first"),  # a folder that is not there
    (".", "is a directory"),
])
def test_backup_refuses_a_target_it_cannot_write(gm, cli_env, tmp_path, name, message):
    result = run("backup", tmp_path / name)
    assert result.exit_code == EXIT_BAD_INPUT
    assert message in result.output


def test_a_backup_never_overwrites_the_live_sqlite_database(mini_geodata, new_database, monkeypatch):
    url = new_database("sqlite")
    Gridmap({"database_url": url, "geodata": str(mini_geodata)}).init_database()
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", url)
    monkeypatch.setenv("GRIDMAP_GEODATA", str(mini_geodata))
    result = run("backup", url.removeprefix("sqlite:///"))
    assert result.exit_code == EXIT_BAD_INPUT
    assert "is the live database itself" in result.output


def test_a_backup_file_is_one_self_contained_marked_sqlite_file(gm, cli_env, tmp_path):
    assert run("backup", tmp_path / "backup.sqlite3").exit_code == 0
    connection = sqlite3.connect(tmp_path / "backup.sqlite3")
    try:
        assert connection.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # no -wal file beside it
    finally:
        connection.close()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".backup", "backup"))) == ["backup.sqlite3"]
    assert (tmp_path / "backup.sqlite3").stat().st_mode & 0o077 == 0  # readable by its owner only
    shutil.copy(tmp_path / "backup.sqlite3", tmp_path / "copy.sqlite3")
    assert inspect_backup(tmp_path / "copy.sqlite3").rows["areas"] == 81
