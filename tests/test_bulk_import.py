"""Large imports stream the file in batches: the same rows, histories, flags and errors as one batch;
one transaction."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner
from openpyxl import Workbook
from sqlalchemy import delete, func, select

from gridmap.cli import main
from gridmap.errors import OutOfScope
from gridmap.issues.record_files import iter_issue_file
from gridmap.security.access import AccessScope
from gridmap.storage.models import Issue, IssueTransition
from gridmap.storage.security import AuditEntry
from helpers import cell_point, write_csv

STAGES = ("registered_at", "dispatched_at", "handled_at", "checked_at", "closed_at", "revisited_at")


def many_rows(mini_geodata, count: int, seed: int = 7) -> list[dict]:
    """``count`` issues in the mini district's cells, out of time order, many with stage times, many near each other."""
    from shapely.geometry import shape

    cells = json.loads((mini_geodata / "cells.geojson").read_text())["features"]
    centres = [shape(cell["geometry"]).representative_point() for cell in cells]
    rng = random.Random(seed)
    start = datetime(2025, 3, 1, 8, 0)
    rows = []
    for index in range(count):
        centre = rng.choice(centres[:12])  # few cells, so that likely duplicates are common
        reported = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 30))
        row = {"lon": round(centre.x + rng.uniform(-1e-4, 1e-4), 7),
               "lat": round(centre.y + rng.uniform(-1e-4, 1e-4), 7),
               "category": rng.choice(("E0505", "E0102")), "description": f"第{index}件",
               "reported_at": reported.isoformat(sep=" ", timespec="minutes"),
               "source": rng.choice(("patrol", "hotline")),
               "status": "reported", "satisfaction": "", **dict.fromkeys(STAGES, "")}
        reached = rng.choice((0, 0, 2, 6))
        moment = reported
        for stage in STAGES[:reached]:
            moment += timedelta(hours=rng.randrange(1, 30))
            row[stage] = moment.isoformat(sep=" ", timespec="minutes")
        row["status"] = {0: rng.choice(("reported", "rejected", "suspended")), 2: "dispatched", 6: "revisited"}[reached]
        if reached == 6:
            row["satisfaction"] = str(rng.randrange(1, 6))
        rows.append(row)
    return rows


def run_import(*args):
    return CliRunner().invoke(main, ["issues", "import", *map(str, args)])


def snapshot(gm) -> tuple[list, list]:
    """Every stored issue and transition, ids replaced by the issue's place in the file."""
    with gm.db.sessions() as session:
        issues = session.scalars(select(Issue).order_by(Issue.id)).all()
        place = {issue.id: number for number, issue in enumerate(issues)}
        columns = [c.key for c in Issue.__table__.columns if c.key not in ("id", "created_at")]
        stored = [{key: place.get(value) if key.endswith("duplicate_of") and value else value
                   for key in columns for value in [getattr(issue, key)]} for issue in issues]
        transitions = [(place[t.issue_id], t.action, t.from_status, t.to_status, t.actor, t.at, t.comment, t.details)
                       for t in session.scalars(select(IssueTransition).order_by(IssueTransition.id))]
    return stored, transitions


def clear(gm) -> None:
    with gm.db.session() as session:
        session.execute(delete(IssueTransition))
        session.execute(delete(Issue))


def counts(gm) -> tuple[int, int]:
    with gm.db.sessions() as session:
        return (session.scalar(select(func.count()).select_from(Issue)),
                session.scalar(select(func.count()).select_from(IssueTransition)))


def test_tiny_batches_store_exactly_what_one_batch_stores(gm, cli_env, tmp_path, mini_geodata, monkeypatch):
    path = write_csv(tmp_path / "issues.csv", many_rows(mini_geodata, 2500))
    monkeypatch.setenv("GRIDMAP_IMPORT_BATCH_ROWS", "100000")
    result = run_import(path)
    assert result.exit_code == 0, result.output
    assert "imported 2500 of 2500 row(s)" in result.output
    one_batch = snapshot(gm)
    clear(gm)

    monkeypatch.setenv("GRIDMAP_IMPORT_BATCH_ROWS", "7")
    result = run_import(path)
    assert result.exit_code == 0, result.output
    assert "imported 2500 of 2500 row(s)" in result.output
    tiny_batches = snapshot(gm)

    assert tiny_batches[0] == one_batch[0]
    assert tiny_batches[1] == one_batch[1]
    assert sum(issue["possible_duplicate_of"] is not None for issue in one_batch[0]) > 100  # the flags were tested
    assert len(one_batch[1]) > 2500 * 2  # and the histories
    with gm.db.sessions() as session:
        logged = session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == "issues", AuditEntry.operation == "insert")
            .order_by(AuditEntry.id)
        ).all()
    assert [entry.after["rows"] for entry in logged] == [2500, 2500]  # one summary entry per import


def test_a_bad_row_in_a_late_batch_leaves_nothing_written(gm, cli_env, tmp_path, mini_geodata, monkeypatch):
    rows = many_rows(mini_geodata, 600)
    rows[590]["category"] = "E9999"
    monkeypatch.setenv("GRIDMAP_IMPORT_BATCH_ROWS", "50")
    result = run_import(write_csv(tmp_path / "issues.csv", rows))
    assert result.exit_code == 2
    assert "row 592:" in result.output and "E9999" in result.output  # CSV line: header, then rows from line 2
    assert "nothing imported" in result.output
    assert counts(gm) == (0, 0)


def test_skip_bad_rows_reports_the_bad_rows_of_every_batch(gm, cli_env, tmp_path, mini_geodata, monkeypatch):
    rows = many_rows(mini_geodata, 300)
    for index in (3, 140, 299):
        rows[index]["reported_at"] = "yesterday"
    monkeypatch.setenv("GRIDMAP_IMPORT_BATCH_ROWS", "40")
    result = run_import(write_csv(tmp_path / "issues.csv", rows), "--skip-bad-rows")
    assert result.exit_code == 0, result.output
    for line in (5, 142, 301):
        assert f"row {line}: reported_at 'yesterday' is not a date-time" in result.output
    assert "imported 297 of 300 row(s), skipped 3 bad row(s)" in result.output
    assert counts(gm)[0] == 297


def test_a_dry_run_checks_every_batch_and_writes_nothing(gm, cli_env, tmp_path, mini_geodata, monkeypatch):
    monkeypatch.setenv("GRIDMAP_IMPORT_BATCH_ROWS", "25")
    result = run_import(write_csv(tmp_path / "issues.csv", many_rows(mini_geodata, 200)), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would import 200 of 200 row(s)" in result.output
    assert counts(gm) == (0, 0)


def test_a_row_outside_the_callers_areas_in_a_late_batch_refuses_the_whole_import(gm, tmp_path, mini_geodata):
    rows = many_rows(mini_geodata, 300)  # in street 460204001
    rows[280]["lon"], rows[280]["lat"] = cell_point(mini_geodata, "460204101002001")
    scope = AccessScope(areas=("460204001",))
    batches = iter_issue_file(write_csv(tmp_path / "issues.csv", rows), batch_rows=30)
    with pytest.raises(OutOfScope, match="row 282: cell 460204101002001"):
        gm.intake.import_batches(gm.db, batches, access=scope, skip_bad_rows=True, batch_rows=30)
    assert counts(gm) == (0, 0)


def test_an_xlsx_file_is_read_in_batches_with_its_row_numbers(gm, tmp_path, mini_geodata):
    rows = many_rows(mini_geodata, 120)
    rows[100]["lon"] = "east"
    book = Workbook()
    sheet = book.active
    sheet.append(list(rows[0]))
    for row in rows:
        sheet.append(list(row.values()))
    book.save(tmp_path / "issues.xlsx")
    batches = iter_issue_file(tmp_path / "issues.xlsx", batch_rows=16)
    report = gm.intake.import_batches(gm.db, batches, skip_bad_rows=True, batch_rows=16)
    assert [(error.row, error.message) for error in report.errors] == [(102, "lon 'east' is not a number")]
    assert (report.rows, report.imported) == (120, 119)
    assert counts(gm)[0] == 119
