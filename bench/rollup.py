"""Benchmark: the issue rollup — what the triggers cost writers and what the rollup saves readers.

Loads the bundled Tianya layer set into a fresh database (SQLite by default, or ``--database
URL``), inserts ``--issues`` synthetic issues (random cells, categories, sources, statuses,
departments, reported over two years) as bulk statements of 10,000 rows with the rollup's
triggers on, then the same number again with the triggers dropped (and the rollup rebuilt), and
times the per-cell count for the whole history and for one month from the raw rows and from the
rollup, ``gridmap rollup check`` and ``rebuild``.

    python bench/rollup.py [--issues 200000] [--database URL] [--seed 0]

The last line is ``raw_s=X rollup_s=Y insert_trigger_s=Z insert_plain_s=W rollup_rows=N``.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gridmap.core import Gridmap  # noqa: E402
from gridmap.issues.counts import IssueFilter, grouped_counts, level_column, raw_grouped_counts  # noqa: E402
from gridmap.issues.states import STATUSES  # noqa: E402
from gridmap.storage.models import Area, Issue  # noqa: E402
from gridmap.storage.rollup import differences, drop_triggers, install_triggers, rebuild  # noqa: E402

CATEGORIES = ("E0102", "E0103", "C0101", "C0102", "E0505", "E0201")
SOURCES = ("patrol", "hotline", "web", "visit", "open311", "import")
DEPARTMENTS = ("环卫所", "市政管理处", "天涯镇环卫站", "消防救援大队", None)


def issue_rows(cells: list[str], count: int, rng: random.Random) -> list[dict]:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    rows = []
    for _ in range(count):
        cell = rng.choice(cells)
        reported = start + timedelta(seconds=rng.randrange(2 * 365 * 86400))
        rows.append({"category": rng.choice(CATEGORIES), "description": "bench", "source": rng.choice(SOURCES),
                     "lon": 109.4, "lat": 18.3, "cell_code": cell, "community_code": cell[:12],
                     "street_code": cell[:9], "district_code": cell[:6], "urgency": "normal",
                     "status": rng.choice(STATUSES), "deadline": reported + timedelta(days=rng.randrange(1, 20)),
                     "department": rng.choice(DEPARTMENTS), "reported_at": reported, "created_at": reported,
                     "photos": [], "extra": {}})
    return rows


def timed(action) -> tuple[float, object]:
    began = time.perf_counter()
    result = action()
    return time.perf_counter() - began, result


def insert_all(gm: Gridmap, rows: list[dict]) -> float:
    began = time.perf_counter()
    for offset in range(0, len(rows), 10_000):
        with gm.db.session() as session:
            session.connection().execute(insert(Issue), rows[offset:offset + 10_000])
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=200_000)
    parser.add_argument("--database", default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="gridmap-rollup-bench-")
    url = args.database or f"sqlite:///{folder}/bench.sqlite3"
    gm = Gridmap({"database_url": url, "instance": folder})
    gm.init_database()
    with gm.db.sessions() as session:
        cells = list(session.scalars(select(Area.code).where(Area.level == "cells")))
    rng = random.Random(args.seed)
    with_triggers = insert_all(gm, issue_rows(cells, args.issues, rng))
    with gm.db.session() as session:
        drop_triggers(session.connection())
    plain = insert_all(gm, issue_rows(cells, args.issues, rng))
    with gm.db.session() as session:
        install_triggers(session.connection())
        rebuild_s, rollup_rows = timed(lambda: rebuild(session.connection(), gm.timezone))
    print(f"{2 * args.issues:,} issues in {len(cells):,} cells on {gm.db.engine.dialect.name}; "
          f"rollup {rollup_rows:,} rows")
    print(f"insert {args.issues:,} issues: {with_triggers:.2f} s with the triggers, {plain:.2f} s without")
    figures = {}
    for name, issue_filter in (("all", IssueFilter(timezone=gm.timezone)),
                               ("one month", IssueFilter(date(2026, 3, 1), date(2026, 3, 31), timezone=gm.timezone))):
        for source, count in (("raw", lambda f=issue_filter: raw_grouped_counts(
                                  session, level_column("cells"), f.conditions())),
                              ("rollup", lambda f=issue_filter: grouped_counts(session, "cells", f))):
            with gm.db.sessions() as session:
                runs = [timed(count) for _ in range(3)]
            figures[(name, source)] = statistics.median(t for t, _ in runs)
            print(f"per-cell counts, {name}, {source}: {figures[(name, source)]:.3f} s")
        assert runs[0][1] == raw_grouped_counts(session, level_column("cells"), issue_filter.conditions())
    with gm.db.sessions() as session:
        check_s, found = timed(lambda: differences(session.connection()))
    print(f"rollup check: {check_s:.2f} s, {len(found)} difference(s); rebuild: {rebuild_s:.2f} s")
    gm.close()
    print(f"raw_s={figures[('all', 'raw')]:.3f} rollup_s={figures[('all', 'rollup')]:.3f} "
          f"insert_trigger_s={with_triggers:.2f} insert_plain_s={plain:.2f} rollup_rows={rollup_rows}")


if __name__ == "__main__":
    main()
