"""Synthetic city-scale data for bench/scale.py: N issues on the active layer set, and coverage.

Issues are drawn as an import takes them (category, source, place, report time, status and
stage times) and then go through the app's own per-row steps, ``Intake.prepare`` (validate,
locate, stamp cell/community/street/district codes, route to a department, set the deadline),
so every derived column is the app's. Only the write is different: SQLAlchemy Core executemany
in big batches on SQLite, ``COPY`` through psycopg 3 on PostgreSQL, with ids chosen here so the
transition histories (the app's own reconstruction from the stage times) need no RETURNING.
The SLA state of open issues is left to ``gridmap sla tick``, run after loading.

The mix: 90 % closed (most revisited with a satisfaction score, a few rejected), 10 % open —
mostly the newest reports, some stale ones long past their deadline; categories of the tree
with a time limit (a few dominate, as in any hotline); sources weighted like a grid centre's;
report times over ``years`` years, growing year by year, in working hours mostly; places
clustered around the demo's hot spots, the rest spread by population.
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

#: Shares of the sources (patrol, hotline, web, visit, open311, import).
SOURCE_SHARES = {"patrol": 0.34, "hotline": 0.36, "web": 0.1, "visit": 0.08, "open311": 0.05, "import": 0.07}
#: Statuses of open issues and their shares.
OPEN_SHARES = {"reported": 0.14, "registered": 0.14, "dispatched": 0.3, "in_progress": 0.16, "handled": 0.16,
               "checked": 0.1}
STAGE_NAMES = ("registered_at", "dispatched_at", "handled_at", "checked_at", "closed_at", "revisited_at")
#: How many stage times each open status has reached.
REACHED = {"reported": 0, "registered": 1, "dispatched": 2, "in_progress": 2, "handled": 3, "checked": 4}
HOTSPOT_SHARE = 0.35
BATCH = 20_000


def draw_records(gm: Any, n: int, *, seed: int = 0, years: int = 3, open_share: float = 0.1,
                 now: datetime | None = None, first: int = 0) -> Iterator[list[dict[str, Any]]]:
    """Issue records as ``gridmap issues import`` reads them, in batches of BATCH (same seed, same records)."""
    from gridmap.demo.places import HOTSPOTS, Places, place_points

    now = now or datetime.now(UTC)
    rng = np.random.default_rng(seed)
    leaves = [c for c in gm.categories.leaves() if c.time_limit_kind and c.time_limit_value]
    weights = 1.0 / np.arange(1, len(leaves) + 1) ** 0.9  # a few categories dominate
    weights = rng.permutation(weights) / weights.sum()
    places = Places(gm.areas.layers, seed)
    valid = np.array([places.locate(np.array([h.lon]), np.array([h.lat]))[0] >= 0 for h in HOTSPOTS])
    cell_weights = places.weights(1.0)
    sources = list(SOURCE_SHARES)
    source_p = np.array(list(SOURCE_SHARES.values()))
    covered = sorted(gm.calendar.years)  # working time can be counted only in the calendar's years
    earliest = datetime(covered[0], 1, 2, tzinfo=UTC) if covered else now - timedelta(days=365 * years)
    span = min(years * 365 * 86400.0, (now - earliest).total_seconds())
    for start in range(0, n, BATCH):
        m = min(BATCH, n - start)
        # Report times: older years thinner (volume grows ~30 %/year), daytime hours mostly.
        age = span * (1 - rng.random(m) ** 1.3)
        reported = [now - timedelta(seconds=float(a)) for a in age]
        hour = np.clip(rng.normal(13, 3.5, m), 0, 23.99)
        reported = [(r.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(hours=float(h))
                     - timedelta(hours=8)) for r, h in zip(reported, hour)]  # local (UTC+8) hour of day
        reported = [r if r < now - timedelta(minutes=5) else now - timedelta(minutes=5 + 30 * float(rng.random()))
                    for r in reported]
        category = rng.choice(len(leaves), size=m, p=weights)
        source = rng.choice(len(sources), size=m, p=source_p)
        hotspot = np.where((rng.random(m) < HOTSPOT_SHARE) & valid.any(),
                           rng.choice(np.flatnonzero(valid) if valid.any() else [0], size=m), -1)
        target = rng.choice(len(places.codes), size=m, p=cell_weights)
        lon, lat, _ = place_points(places, target, hotspot, rng)
        # Open: mostly fresh (days old: ok, warning or just overdue), some weeks old, a few stale.
        is_open = rng.random(m) < open_share
        fresh = rng.exponential(1.5 * 86400, m)
        weeks = rng.uniform(0, 45 * 86400, m)
        open_age = np.where(rng.random(m) < 0.75, fresh, np.where(rng.random(m) < 0.8, weeks, age))
        for i in np.flatnonzero(is_open):
            reported[i] = now - timedelta(seconds=float(min(open_age[i], span)) + 600)
        open_status = rng.choice(len(OPEN_SHARES), size=m, p=np.array(list(OPEN_SHARES.values())))
        gaps = rng.gamma(1.5, 1.0, (m, 6)) * np.array([2, 6, 30, 10, 8, 40]) * 3600  # seconds between stages
        fate = rng.random(m)
        satisfaction = rng.choice([1, 2, 3, 4, 5], size=m, p=[0.03, 0.04, 0.1, 0.33, 0.5])
        batch = []
        for i in range(m):
            k = first + start + i
            leaf = leaves[int(category[i])]
            record: dict[str, Any] = {
                "category": leaf.code, "description": f"{leaf.name_zh}（合成案件 {k + 1}）",
                "source": sources[int(source[i])], "lon": float(lon[i]), "lat": float(lat[i]),
                "reported_at": reported[i],
            }
            if record["source"] == "hotline":
                record.update(reporter_name=f"市民{k % 9973}", reporter_phone=f"1360000{k % 10000:04d}",
                              external_id=f"12345-{reported[i].year}-{k + 1:08d}")
            times = reported[i] + np.cumsum(gaps[i]) * timedelta(seconds=1)
            if is_open[i]:
                status = list(OPEN_SHARES)[int(open_status[i])]
                reached = REACHED[status]
                if reached and times[reached - 1] >= now:  # squeeze the stages reached into the time so far
                    fractions = np.sort(rng.random(reached))
                    times = [reported[i] + (now - reported[i]) * float(f) for f in fractions]
            elif fate[i] < 0.03:
                status, reached = "rejected", 1 if fate[i] < 0.015 else 0
            else:
                status, reached = ("revisited", 6) if fate[i] < 0.65 else ("closed", 5)
                if times[reached - 1] >= now:  # too new to be closed by now: squeeze, keep it closed
                    fractions = np.sort(rng.random(reached)) * 0.95
                    times = [reported[i] + (now - reported[i]) * float(f) for f in fractions]
            record["status"] = status
            for j, stage in enumerate(STAGE_NAMES[:reached]):
                record[stage] = times[j]
            if reached >= 2:
                record["assignee"] = f"网格员{int(lon[i] * 1e4) % 400:03d}"
            if status == "revisited":
                record["satisfaction"] = int(satisfaction[i])
            batch.append(record)
        yield batch


def issue_rows(gm: Any, records: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The app's prepared rows for records (every derived column the app sets), plus the registration's limit."""
    rows, errors = gm.intake.prepare(records)
    if errors:
        raise SystemExit(f"generated records did not pass the intake: {errors[0]}")
    for row in rows:
        category = gm.categories.get(row["category"])
        registered = row.get("registered_at") is not None
        row["time_limit_kind"] = str(category.time_limit_kind.value) if registered else None
        row["time_limit_value"] = float(category.time_limit_value) if registered else None
        row["created_at"] = now
    return rows


def _python_defaults(table: Any, given: set[str]) -> dict[str, Any]:
    """Column values the model fills on the Python side (``default=``), for the columns not given."""
    values = {}
    for column in table.columns:
        if column.name in given or column.default is None or column.primary_key:
            continue
        default = column.default
        if getattr(default, "is_scalar", False):
            values[column.name] = default.arg
        elif getattr(default, "is_callable", False):
            values[column.name] = default.arg(None)
    return values


class Writer:
    """Writes prepared issue rows and their histories: executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self, gm: Any) -> None:
        from sqlalchemy import func, select

        from gridmap.storage.models import Issue, IssueTransition

        self.gm = gm
        self.issues, self.transitions = Issue.__table__, IssueTransition.__table__
        self.postgresql = gm.db.engine.dialect.name == "postgresql"
        with gm.db.sessions() as session:
            self.next_id = int(session.scalar(select(func.max(Issue.id))) or 0) + 1
            self.next_transition = int(session.scalar(select(func.max(IssueTransition.id))) or 0) + 1

    def write(self, rows: list[dict[str, Any]]) -> int:
        """Store rows (ids assigned here) and their transition histories in one transaction; transitions written."""
        from gridmap.issues import intake
        from gridmap.storage.models import SLA_DUE_NOW

        for row in rows:
            row["id"] = self.next_id
            row["sla_next_at"] = SLA_DUE_NOW  # as an import leaves it: the first tick places every issue's next moment
            self.next_id += 1
        history = [{**step, "issue_id": row["id"]} for row in rows for step in intake.history_of(row, "import")]
        for step in history:
            step["id"] = self.next_transition
            self.next_transition += 1
        for table, data in ((self.issues, rows), (self.transitions, history)):
            keys = set().union(*data) & {c.name for c in table.columns}
            defaults = _python_defaults(table, keys)
            data[:] = [{**defaults, **{k: r.get(k) for k in keys}} for r in data]
        with self.gm.db.engine.begin() as connection:
            if self.postgresql:
                self._copy(connection, self.issues, rows)
                self._copy(connection, self.transitions, history)
            else:
                connection.execute(self.issues.insert(), rows)
                connection.execute(self.transitions.insert(), history)
        return len(history)

    def _copy(self, connection: Any, table: Any, data: list[dict[str, Any]]) -> None:
        """COPY data into table, each value in the column type's database form (naive UTC, JSON text)."""
        from sqlalchemy import JSON

        from gridmap.storage.models import UTCDateTime

        names = list(data[0])
        kinds = [table.columns[name].type for name in names]
        cursor = connection.connection.driver_connection.cursor()
        columns = ", ".join(f'"{name}"' for name in names)
        with cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
            for row in data:
                values = []
                for name, kind in zip(names, kinds):
                    value = row[name]
                    if value is not None and isinstance(kind, UTCDateTime):
                        value = value.astimezone(UTC).replace(tzinfo=None)
                    elif value is not None and isinstance(kind, JSON):
                        value = json.dumps(value, ensure_ascii=False)
                    elif hasattr(value, "value") and not isinstance(value, (str, int, float)):
                        value = value.value  # an enum
                    values.append(value)
                copy.write_row(values)

    def finish(self) -> None:
        """Move PostgreSQL's id sequences past the ids written here."""
        if not self.postgresql:
            return
        from sqlalchemy import text

        with self.gm.db.engine.begin() as connection:
            for table in ("issues", "issue_transitions"):
                connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                        f"(SELECT coalesce(max(id), 1) FROM {table}))"))


def load_issues(gm: Any, n: int, *, seed: int, years: int, now: datetime,
                progress: Any = print) -> dict[str, float]:
    """Generate, prepare and write n issues; the seconds each part took and the rows written."""
    writer = Writer(gm)
    spent = {"draw_s": 0.0, "prepare_s": 0.0, "write_s": 0.0, "transitions": 0.0, "cpu_s": -time.process_time()}
    started = time.perf_counter()
    batches = draw_records(gm, n, seed=seed, years=years, now=now)
    done = 0
    while True:
        t0 = time.perf_counter()
        records = next(batches, None)
        if records is None:
            break
        t1 = time.perf_counter()
        rows = issue_rows(gm, records, now)
        t2 = time.perf_counter()
        spent["transitions"] += writer.write(rows)
        t3 = time.perf_counter()
        spent["draw_s"] += t1 - t0
        spent["prepare_s"] += t2 - t1
        spent["write_s"] += t3 - t2
        done += len(rows)
        if done % 100_000 < BATCH or done == n:
            rate = done / (time.perf_counter() - started)
            progress(f"  {done:,} issues written ({rate:,.0f}/s)")
    writer.finish()
    spent["cpu_s"] += time.process_time()
    return spent


def load_coverage(gm: Any, households: int, *, seed: int, patrol_days: int) -> dict[str, Any]:
    """Households placed by population, a year of their visits, patrols of the last patrol_days days.

    The demo's generators (households, visit schedule, patrol walks of the demo grid workers)
    and the app's own steps: ``HouseholdRegistry.prepare_households``/``insert_households`` and
    ``prepare_tracks``/``write_tracks`` (split into cells like an imported GPX).
    """
    from zoneinfo import ZoneInfo

    from gridmap.coverage.households import HouseholdRegistry
    from gridmap.coverage.patrols import prepare_tracks, write_tracks
    from gridmap.demo import coverage as demo
    from gridmap.storage.coverage import Visit

    tz = ZoneInfo("Asia/Shanghai")
    end = datetime.now(tz)
    today = end.date()
    start = today - timedelta(days=364)
    rng = np.random.default_rng(seed + 3)
    land = demo._Land(gm.areas, rng)
    registry = HouseholdRegistry.for_core(gm)
    workers = [demo.DemoWorker(name, cells, visit_diligence=float(rng.uniform(0.6, 1.0)),
                               patrol_attendance=float(rng.uniform(0.8, 0.97)), stopped_patrolling=None)
               for name, cells in demo._workers(gm)]
    worker_of = {cell: worker for worker in workers for cell in worker.cells}
    records = demo.generate_households(gm.areas.layers, households, rng, start=start, end=today, land=land)
    prepared, errors = registry.prepare_households(records, now=end)
    if errors:
        raise SystemExit(f"generated households did not pass the registry: {errors[0]}")
    specs = [spec for _, spec in prepared]
    with gm.db.session() as session:
        registry.sync_kinds(session)
        intervals = {kind.code: kind.visit_interval_months for kind in registry.kinds}
        ids = registry.insert_households(session, specs, now=end)
        visits = demo._visit_rows(specs, ids, {}, intervals, worker_of, rng, start=start, today=today, tz=tz,
                                  model="")
        for offset in range(0, len(visits), 20_000):
            session.execute(Visit.__table__.insert(), visits[offset:offset + 20_000])
    village = {c for c, n in zip(gm.areas.layers.communities["code"], gm.areas.layers.communities["name"])
               if str(n).endswith("村")}
    tracks = demo._patrol_tracks(workers, land, rng, start=today - timedelta(days=patrol_days - 1), today=today,
                                 tz=tz, village=village)
    results, track_errors, _ = prepare_tracks(gm.areas, tracks, timezone_name="Asia/Shanghai")
    if track_errors:
        raise SystemExit(f"generated patrols did not split: {track_errors[0]}")
    with gm.db.session() as session:
        write_tracks(session, results, source="bench")
    return {"households": len(ids), "visits": len(visits), "tracks": len(results), "patrol_days": patrol_days}


def write_import_csv(gm: Any, path: Path, n: int, *, seed: int, now: datetime) -> None:
    """A CSV for ``gridmap issues import``: n records with stage times, local time with offset."""
    columns = ["lon", "lat", "category", "description", "reported_at", "source", "status", "reporter_name",
               "reporter_phone", "external_id", "assignee", "satisfaction", *STAGE_NAMES]
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, columns, extrasaction="ignore")
        writer.writeheader()
        for batch in draw_records(gm, n, seed=seed + 7, now=now, first=10_000_000):
            for record in batch:
                record["external_id"] = None  # ids must not collide with the loaded ones
                writer.writerow({k: (v.isoformat(timespec="seconds") if isinstance(v, datetime) else v)
                                 for k, v in record.items()})

