"""kill -9 during a large `gridmap issues import`: afterwards the database opens, passes its integrity
check, and holds all of the import or none of it (the import is one transaction)."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select, text

from gridmap.core import Gridmap
from gridmap.storage.db import Database
from gridmap.storage.models import Issue, IssueTransition
from helpers import cell_point

#: Rows per import. PostgreSQL writes them several times slower here, so it gets fewer to stay in time.
ROWS = {"sqlite": 40_000, "postgresql": 20_000}
#: When to kill: seconds after the import visibly started writing; None: while it is still reading the file.
KILL_AFTER = (None, 0.0, 1.0, 3.0)


def write_import(path: Path, geodata: Path, rows: int) -> Path:
    """A valid CSV of ``rows`` issues spread over every cell and over 2025 (seven minutes apart)."""
    cells = [f["properties"]["code"] for f in json.loads((geodata / "cells.geojson").read_text())["features"]]
    points = [cell_point(geodata, code) for code in cells]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["lon", "lat", "category", "description", "reported_at"])
        for i in range(rows):
            minute = i * 7
            day = minute // 1440
            writer.writerow([*points[i % len(points)], "E0505", f"crash test {i}",
                             f"2025-{1 + day // 28 % 12:02d}-{1 + day % 28:02d} "
                             f"{minute // 60 % 24:02d}:{minute % 60:02d}"])
    return path


def start_import(csv_path: Path, log: Path) -> subprocess.Popen:
    """`gridmap issues import` in its own process (the environment points it at the test's database)."""
    with open(log, "wb") as output:
        return subprocess.Popen([sys.executable, "-c", "from gridmap.cli import main; main()", "issues", "import",
                                 str(csv_path)],
                                stdout=output, stderr=subprocess.STDOUT, env=dict(os.environ))


class Watch:
    """Tells when an import process has started writing to the database, and checks the database afterwards."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = url.startswith("sqlite")
        self.wal = Path(url.removeprefix("sqlite:///") + "-wal")
        self.pg = None if self.sqlite else Database(url)  # SQLite: no connection kept, so the -wal file goes away

    def writing(self) -> bool:
        """SQLite: the -wal file has pages (it is gone before the import starts); PostgreSQL: a session holds a write
        transaction."""
        if self.sqlite:
            return self.wal.exists() and self.wal.stat().st_size > 0
        with self.pg.engine.connect() as connection:
            return bool(connection.scalar(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()")))

    def check(self) -> tuple[int, int]:
        """Open the database, check its integrity and that no transition lacks its issue; return (issues,
        transitions)."""
        if self.sqlite:
            connection = sqlite3.connect(self.url.removeprefix("sqlite:///"))
            try:
                assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
                assert connection.execute("PRAGMA foreign_key_check").fetchall() == []
            finally:
                connection.close()  # the last connection: SQLite checkpoints and removes the -wal file
        db = Database(self.url)
        try:
            with db.engine.connect() as connection:
                assert connection.scalar(text("SELECT 1")) == 1  # the server still answers
                orphans = connection.scalar(select(func.count()).select_from(IssueTransition).outerjoin(Issue)
                                            .where(Issue.id.is_(None)))
                assert orphans == 0
                return (connection.scalar(select(func.count()).select_from(Issue)),
                        connection.scalar(select(func.count()).select_from(IssueTransition)))
        finally:
            db.dispose()

    def close(self) -> None:
        if self.pg is not None:
            self.pg.dispose()


def test_killing_a_large_import_leaves_all_of_it_or_none(settings, cli_env, mini_geodata, tmp_path):
    backend = "sqlite" if settings["database_url"].startswith("sqlite") else "postgresql"
    rows = ROWS[backend]
    big = write_import(tmp_path / "big.csv", Path(mini_geodata), rows)
    log = tmp_path / "import.log"
    core = Gridmap(settings)
    core.init_database()
    core.close()
    watch = Watch(settings["database_url"])
    try:
        stored = watch.check()
        assert stored == (0, 0)
        outcomes = []
        for delay in KILL_AFTER:
            assert not watch.writing()  # SQLite: no -wal left behind; PostgreSQL: the killed session is gone
            process = start_import(big, log)
            started = time.monotonic()
            try:
                if delay is None:
                    time.sleep(0.5)  # still reading and checking the file
                else:
                    while not watch.writing():
                        assert process.poll() is None, log.read_text()
                        assert time.monotonic() - started < 30, "the import did not start writing within 30 s"
                        time.sleep(0.05)
                    time.sleep(delay)
                running = process.poll() is None
                process.send_signal(signal.SIGKILL)
            finally:
                process.kill()
                process.wait(10)
            if not watch.sqlite:  # the server aborts the killed session's transaction when it notices
                while watch.writing():
                    assert time.monotonic() - started < 60, "the killed import's transaction is still open"
                    time.sleep(0.05)
            issues, transitions = watch.check()
            assert issues in (stored[0], stored[0] + rows)  # none of it, or all of it
            assert transitions - stored[1] == issues - stored[0]  # each imported issue with its one transition
            outcomes.append(("killed" if running else "finished", "none" if issues == stored[0] else "all"))
            stored = (issues, transitions)
        # The kills hit running imports, and the imports interrupted while writing left nothing.
        assert outcomes.count(("killed", "none")) >= 3, outcomes

        small = write_import(tmp_path / "small.csv", Path(mini_geodata), 2000)
        process = start_import(small, log)  # after four crashes the database still takes an import
        try:
            assert process.wait(120) == 0, log.read_text()
        finally:
            process.kill()
        assert watch.check() == (stored[0] + 2000, stored[1] + 2000)
    finally:
        watch.close()
