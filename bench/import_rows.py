"""Import speed and memory: make a CSV of N issues with stage times, import it, print rows/s and peak RSS.

    python bench/import_rows.py --rows 100000                       # SQLite in a temporary folder
    GRIDMAP_DATABASE_URL=postgresql+psycopg://… python bench/import_rows.py --rows 100000

The rows are a demo year of N issues (bundled Tianya layer set, most of them closed with every
stage time, written by the demo generator). The import runs as ``gridmap issues import``
under ``/usr/bin/time -v`` in a fresh process, after ``gridmap init`` made the database; the
figures are for that process alone (start-up and reading the layer set included). On a shared
machine the rows per CPU second of the import process say more than the wall time (on
PostgreSQL the server's own CPU is not in it).
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

COLUMNS = ("lon", "lat", "category", "description", "reported_at", "source", "address", "reporter_name",
           "reporter_phone", "status", "department", "assignee", "satisfaction", "registered_at", "dispatched_at",
           "handled_at", "checked_at", "closed_at", "revisited_at")


def write_csv(path: Path, rows: int) -> None:
    """A demo year of N issues as a CSV with every column the import takes."""
    from gridmap.core import Gridmap
    from gridmap.demo.issues import generate_demo_issues

    gm = Gridmap()
    records = generate_demo_issues(gm.areas.layers, gm.categories, count=rows)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for index in range(rows):
            record = records[index]
            writer.writerow([_text(record.get(column)) for column in COLUMNS])


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def gridmap_command() -> str:
    """The ``gridmap`` script next to this Python."""
    found = Path(sys.executable).with_name("gridmap")
    return str(found) if found.exists() else shutil.which("gridmap") or "gridmap"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--csv", type=Path, default=None, help="Reuse (or keep) the CSV at this path.")
    parser.add_argument("--gridmap", default=gridmap_command(), help="The gridmap command to measure.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gridmap-import-") as folder:
        env = dict(os.environ)
        env.setdefault("GRIDMAP_INSTANCE", folder)
        path = args.csv or Path(folder) / "issues.csv"
        if not path.exists():
            started = time.perf_counter()
            write_csv(path, args.rows)
            print(f"wrote {args.rows} rows to {path} in {time.perf_counter() - started:.1f} s", flush=True)
        subprocess.run([args.gridmap, "init"], env=env, check=True, stdout=subprocess.DEVNULL)
        started = time.perf_counter()
        done = subprocess.run(["/usr/bin/time", "-v", args.gridmap, "issues", "import", str(path)], env=env,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"import failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}")
        rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
        cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", done.stderr).group(1))
                  for kind in ("User", "System"))
        imported = int(re.search(r"imported (\d+) of", done.stdout).group(1))
    database = env.get("GRIDMAP_DATABASE_URL", "sqlite").split(":")[0]
    print(f"{database}: imported {imported} rows in {seconds:.1f} s: {imported / seconds:,.0f} rows/s, "
          f"peak RSS {rss_kb / 1024:,.0f} MB; the import process used {cpu:.1f} s of CPU: "
          f"{imported / cpu:,.0f} rows per CPU second")


if __name__ == "__main__":
    main()
