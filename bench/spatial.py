"""Benchmark: bbox, radius and duplicate-candidate queries with and without the spatial index.

Loads N issues (uniform over a 10 km x 10 km square near Sanya, 20 categories, over one year)
into a fresh database — SQLite by default, a throwaway PostgreSQL/PostGIS server with
``--postgresql`` (tests/pgserver.py) — and times, median of ``--repeat`` runs:

* ``bbox``: the issues in a 500 m x 500 m box (``gridmap.storage.spatial.in_bbox``);
* ``radius``: the issues within 50 m of a point (``within_radius``);
* ``duplicates``: the duplicate candidates of 1,000 issues in a row of time, as an import's batch
  (``gridmap.issues.duplicates.candidate_query``);

each once as gridmap runs it (GiST index on PostgreSQL, (lat, lon) index on SQLite) and once with
the index out of reach (PostgreSQL: ``enable_indexscan``/``enable_bitmapscan`` off; SQLite: the
(lat, lon) index dropped), which is what a scan of the rows costs.

    python bench/spatial.py [--issues 200000] [--postgresql] [--repeat 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from gridmap.issues.duplicates import candidate_query  # noqa: E402
from gridmap.storage import Database  # noqa: E402
from gridmap.storage.models import Issue  # noqa: E402
from gridmap.storage.spatial import in_bbox, within_radius  # noqa: E402

LON0, LAT0 = 109.40, 18.20  # south-west corner
SPAN_LON, SPAN_LAT = 0.095, 0.09  # about 10 km x 10 km
START = datetime(2025, 1, 1, tzinfo=UTC)


def load(db: Database, count: int, rng: np.random.Generator) -> None:
    lons = LON0 + rng.random(count) * SPAN_LON
    lats = LAT0 + rng.random(count) * SPAN_LAT
    seconds = rng.random(count) * 365 * 86400
    categories = rng.integers(1, 21, count)
    code = "460204001001001"
    batch = 20_000
    with db.session() as session:
        for start in range(0, count, batch):
            rows = []
            for k in range(start, min(start + batch, count)):
                moment = START + timedelta(seconds=float(seconds[k]))
                rows.append({"category": f"E01{categories[k]:02d}", "description": "x", "source": "web",
                             "lon": float(lons[k]), "lat": float(lats[k]), "cell_code": code,
                             "community_code": code[:12], "street_code": code[:9], "district_code": code[:6],
                             "urgency": "normal", "status": "reported", "reported_at": moment, "created_at": moment})
            session.execute(insert(Issue.__table__), rows)


def timed(db: Database, statement: Any, repeat: int, *, setup: str | None = None) -> tuple[float, int]:
    """Median seconds and rows of ``statement``."""
    times, rows = [], 0
    for _ in range(repeat):
        with db.engine.connect() as connection:
            if setup:
                for part in setup.split(";"):
                    connection.execute(text(part))
            started = time.perf_counter()
            rows = len(connection.execute(statement).all())
            times.append(time.perf_counter() - started)
            connection.rollback()
    return statistics.median(times), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=200_000)
    parser.add_argument("--postgresql", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    server = None
    with tempfile.TemporaryDirectory() as folder:
        if args.postgresql:
            import pgserver

            server = pgserver.start()
            url = server.create_database("bench_spatial")
        else:
            url = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
        db = Database(url)
        try:
            db.migrate()
            started = time.perf_counter()
            load(db, args.issues, rng)
            with db.engine.begin() as connection:
                connection.execute(text("ANALYZE"))
            print(f"{db.engine.dialect.name}: {args.issues:,} issues loaded in {time.perf_counter() - started:.1f} s")
            centre = (LON0 + SPAN_LON / 2, LAT0 + SPAN_LAT / 2)
            with db.sessions() as session:
                new = session.execute(select(Issue.id, Issue.category, Issue.lon, Issue.lat, Issue.reported_at)
                                      .order_by(Issue.reported_at).offset(args.issues // 2).limit(1000)).all()
            queries = {
                "bbox": select(Issue.id).where(in_bbox(Issue.lon, Issue.lat, (centre[0], centre[1], centre[0] + 0.0047,
                                                                              centre[1] + 0.0045))),
                "radius": select(Issue.id).where(within_radius(Issue.lon, Issue.lat, centre[0], centre[1], 50)),
                "duplicates": candidate_query(new, timedelta(hours=24), 50),
            }
            indexed = {name: timed(db, query, args.repeat) for name, query in queries.items()}
            if args.postgresql:
                setup = "SET enable_indexscan = off; SET enable_bitmapscan = off"
                scanned = {name: timed(db, query, args.repeat, setup=setup) for name, query in queries.items()}
            else:
                with db.engine.begin() as connection:
                    connection.execute(text("DROP INDEX ix_issues_lat_lon"))
                scanned = {name: timed(db, query, args.repeat) for name, query in queries.items()}
            for name in queries:
                (fast, rows), (slow, _) = indexed[name], scanned[name]
                print(f"{name:10s} rows={rows:6d} index={fast * 1000:8.1f} ms  without={slow * 1000:8.1f} ms")
        finally:
            db.dispose()
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
