"""Benchmark: what the audit log costs an import and single-issue intake.

Imports the demo year of issues (the bundled Tianya layer set, ``gridmap.demo.issues``; 12,000 issues)
into a fresh SQLite database, with the audit log's session hooks on and off, alternately, and
creates 300 issues one at a time (the API's path: one transaction each) the same way. Prints the
best CPU time (``time.process_time``) and wall time of each, and the ratios — the machine is
shared, so compare the ratios of one run.

    python bench/audit.py [--repeat 3] [--single 300] [--postgresql]

``--postgresql`` runs it on a throwaway PostgreSQL server started like the test suite's
(tests/pgserver.py; needs Debian's postgresql package), a fresh database per run.

The last line is ``import_ratio=X single_ratio=Y`` (time with the log / time without).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # bench.aggregate's machine summary


@contextmanager
def audit_log(enabled: bool):
    """The audit hooks on (as always in gridmap) or taken off for the block."""
    from gridmap.security import audit

    audit.install()
    with (nullcontext() if enabled else audit.switched_off()):
        yield


def one_run(records, single: int, enabled: bool, server=None) -> tuple[float, float, float, float]:
    """(import cpu, import wall, single cpu, single wall) in a fresh database (SQLite, or on ``server``)."""
    import uuid

    from gridmap.core import Gridmap

    with tempfile.TemporaryDirectory(prefix="gridmap-bench-audit-") as folder:
        name = "bench_" + uuid.uuid4().hex[:10]
        settings = {"instance": folder}
        if server is not None:
            settings["database_url"] = server.create_database(name)
        gm = Gridmap(settings)
        gm.init_database()
        try:
            with audit_log(enabled):
                cpu, wall = time.process_time(), time.perf_counter()
                report = gm.intake.import_records(gm.db, records, actor="bench")
                import_cpu, import_wall = time.process_time() - cpu, time.perf_counter() - wall
                assert report.imported == len(records), report.errors[:3]
                cpu, wall = time.process_time(), time.perf_counter()
                for record in records[:single]:
                    gm.intake.create(gm.db, record, actor="bench")
                single_cpu, single_wall = time.process_time() - cpu, time.perf_counter() - wall
        finally:
            gm.close()
            if server is not None:
                server.drop_database(name)
    return import_cpu, import_wall, single_cpu, single_wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--single", type=int, default=300)
    parser.add_argument("--postgresql", action="store_true", help="Run on a throwaway PostgreSQL server.")
    args = parser.parse_args()

    from bench.aggregate import machine_summary
    from gridmap.core import Gridmap
    from gridmap.demo.issues import generate_demo_issues

    print(machine_summary())
    core = Gridmap({})
    records = generate_demo_issues(core.areas.layers, core.categories)
    print(f"{len(records):,} demo issues; {args.single} created one at a time; {args.repeat} runs each, alternating")
    server = None
    if args.postgresql:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        import pgserver

        server = pgserver.start()
        print(f"backend: PostgreSQL ({server!r})")
    best = {True: [float("inf")] * 4, False: [float("inf")] * 4}
    try:
        for _ in range(args.repeat):
            for enabled in (True, False):
                times = one_run(records, args.single, enabled, server)
                best[enabled] = [min(a, b) for a, b in zip(best[enabled], times)]
    finally:
        if server is not None:
            server.stop()
    for enabled in (True, False):
        ic, iw, sc, sw = best[enabled]
        print(f"audit log {'on ' if enabled else 'off'}: import {ic:.2f} s cpu / {iw:.2f} s wall; "
              f"{args.single} single {sc:.2f} s cpu / {sw:.2f} s wall")
    print(f"import_ratio={best[True][0] / best[False][0]:.2f} single_ratio={best[True][2] / best[False][2]:.2f}")


if __name__ == "__main__":
    main()
