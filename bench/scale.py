"""Benchmark: the live service at city scale — N issues, the pages and APIs of three roles, the commands.

Builds a database with N synthetic issues on the bundled Tianya layer set (bench/scale_data.py:
90 % closed with their stage times and transitions, 10 % open, categories, sources and places
drawn like a grid centre's, several years of reports), plus households, a year of visits and
patrols; runs the migrations again and `gridmap rollup rebuild` when that command exists (so
derived tables are filled whatever the schema), and a first `gridmap sla tick`. Then it starts
the real service (`gridmap serve`) and times, over HTTP with tokens made by `gridmap tokens add`,
every page and API the dispatcher, the grid manager and the planner open (p50/p95 of --repeat
requests after one warm-up), plus `gridmap sla tick`, `gridmap ledger export`, `gridmap backup`,
`gridmap issues import` of a generated CSV with stage times (into a fresh database), and the
peak memory (VmHWM) of the server and of each command.

    python bench/scale.py --backend sqlite --issues 100000 [--repeat 5] [--keep DIR] [--import-rows 20000]
    python bench/scale.py --backend postgresql --issues 1000000 --keep /var/tmp/scale-pg

PostgreSQL runs on a throwaway server started by tests/pgserver.py (tuned as it tunes it: fsync
off, synchronous_commit off, full_page_writes off — a benchmark server, not a production one).
With --keep the database (and for PostgreSQL its cluster) stays in DIR and is reused by the
next run with the same --backend, --issues and --seed. The last output is a markdown table.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: Runs `gridmap` with this interpreter and reports the process's peak RSS (VmHWM) on exit.
CLI_HOOK = (
    "import atexit, sys\n"
    "def _peak():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM'):\n"
    "            sys.stderr.write('BENCH_VMHWM_KB=' + line.split()[1] + '\\n')\n"
    "atexit.register(_peak)\n"
    "from gridmap.cli import main\n"
    "sys.exit(main())\n"
)
GRIDMAP = [sys.executable, "-c", CLI_HOOK]
#: How long `gridmap serve` may take to listen (minutes on a machine at load 20).
START_TIMEOUT_S = 600


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--issues", type=int, default=100_000, help="issues to store (default 100000)")
    parser.add_argument("--repeat", type=int, default=5, help="timed requests per page/API (default 5)")
    parser.add_argument("--keep", type=Path, default=None, help="build (or reuse) the database in this folder")
    parser.add_argument("--import-rows", type=int, default=20_000,
                        help="rows of the CSV timed through `gridmap issues import` (0: skip; default 20000)")
    parser.add_argument("--households", type=int, default=None, help="households (default issues/20, 200…100000)")
    parser.add_argument("--patrol-days", type=int, default=None,
                        help="days of patrols of every grid worker (default issues/5000, 7…365)")
    parser.add_argument("--years", type=int, default=3, help="years of reports (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.issues < 1 or args.repeat < 1:
        parser.error("--issues and --repeat must be at least 1")
    return run(args)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build (or reuse), measure, print the table; the figures as a dict."""
    print(machine_summary(), flush=True)
    with tempfile.TemporaryDirectory(prefix="gridmap-scale-") as tmp:
        folder = (args.keep or Path(tmp)).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        with database(args.backend, folder, args.keep is not None) as (url, server):
            env = {"GRIDMAP_DATABASE_URL": url, "GRIDMAP_INSTANCE": str(folder / "instance"),
                   "GRIDMAP_TIMEZONE": "Asia/Shanghai"}
            results: dict[str, Any] = {"backend": args.backend, "issues": args.issues,
                                       "load_average": os.getloadavg()[0]}
            build(args, env, folder, results)
            measure_service(args, env, folder, results)
            measure_commands(env, folder, results)
            if args.import_rows:
                measure_import(args, env, folder, server, results)
            results["load_average_end"] = os.getloadavg()[0]
    print(table(results), flush=True)
    return results


# --- the database ---------------------------------------------------------------------------


def _pgserver() -> Any:
    """tests/pgserver.py, imported by path (tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location("pgserver", ROOT / "tests" / "pgserver.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["pgserver"] = module
    spec.loader.exec_module(module)
    return module


@contextmanager
def database(backend: str, folder: Path, keep: bool):
    """(URL, PgServer or None) of the benchmark's database: a SQLite file in folder, or a throwaway PostgreSQL."""
    if backend == "sqlite":
        (folder / "instance").mkdir(exist_ok=True)
        yield f"sqlite:///{folder / 'instance' / 'gridmap.sqlite3'}", None
        return
    pgserver = _pgserver()
    as_user = "postgres" if os.geteuid() == 0 else None
    # The cluster lives where the postgres user can reach it (as root: /tmp, as tests/pgserver.py
    # does); folder/pg-cluster.txt points at it so that --keep finds it again.
    pointer = folder / "pg-cluster.txt"
    basedir = Path(pointer.read_text().strip()) if pointer.exists() else None
    reuse = basedir is not None and (basedir / "data" / "PG_VERSION").exists()
    if not reuse:
        basedir = Path(tempfile.mkdtemp(prefix="gridmap-scale-pg-", dir="/tmp" if as_user else None))
        pointer.write_text(str(basedir))
        if as_user:
            shutil.chown(basedir, as_user, as_user)
    server = pgserver.PgServer(pgserver.find_bindir(), basedir, pgserver._free_port(), "gridmap", as_user)
    if not reuse:
        server._initdb()
    server._start(120)
    if not reuse:
        server.create_database("gridmap")
    try:
        yield server.url, server
    finally:  # stop the server; keep its cluster only with --keep
        server._run("pg_ctl", "stop", "-D", str(server.datadir), "-m", "fast", "-w", check=False)
        server._stopped = True
        if not keep:
            shutil.rmtree(basedir, ignore_errors=True)


def cli(env: dict[str, str], *args: str, timeout: float = 3600) -> tuple[str, float, int, float]:
    """Run `gridmap ARGS` with env; (stdout, seconds, peak RSS in kB, CPU seconds). Raises on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run([*GRIDMAP, *args], env={**os.environ, **env}, capture_output=True, text=True,
                            timeout=timeout)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"gridmap {' '.join(args)} failed ({result.returncode}): {result.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    peak = [int(line.split("=")[1]) for line in result.stderr.splitlines() if line.startswith("BENCH_VMHWM_KB=")]
    return result.stdout, seconds, (peak[-1] if peak else 0), cpu


def has_command(env: dict[str, str], *words: str) -> bool:
    """Whether `gridmap WORDS --help` exists in today's code."""
    result = subprocess.run([*GRIDMAP, *words, "--help"], env={**os.environ, **env}, capture_output=True,
                            text=True, timeout=120)
    return result.returncode == 0


def build(args: argparse.Namespace, env: dict[str, str], folder: Path, results: dict[str, Any]) -> None:
    """Fill the database (unless folder holds one built with the same arguments); record the load figures."""
    from bench.scale_data import load_coverage, load_issues
    from gridmap.core import Gridmap

    marker = folder / f"built-{args.backend}.json"
    wanted = {"issues": args.issues, "seed": args.seed, "years": args.years}
    if marker.exists() and {k: v for k, v in json.loads(marker.read_text()).items() if k in wanted} == wanted:
        built = json.loads(marker.read_text())
        print(f"reusing the database in {folder} ({args.issues:,} issues, built {built['built_at']})", flush=True)
        results.update(built["results"], reused=True)
        cli(env, "init")  # today's migrations on yesterday's data
        return
    started = time.perf_counter()
    _, results["init_s"], _, _ = cli(env, "init")
    now = datetime.now(UTC)
    gm = Gridmap({"database_url": env["GRIDMAP_DATABASE_URL"], "instance": env["GRIDMAP_INSTANCE"]})
    try:
        t0 = time.perf_counter()
        spent = load_issues(gm, args.issues, seed=args.seed, years=args.years, now=now)
        results["load_s"] = time.perf_counter() - t0
        results["load_rows_s"] = args.issues / results["load_s"]
        results.update({f"load_{k}": v for k, v in spent.items()})
        households = args.households or min(100_000, max(200, args.issues // 20))
        t0 = time.perf_counter()
        patrol_days = args.patrol_days or min(365, max(7, args.issues // 5_000))
        coverage = load_coverage(gm, households, seed=args.seed, patrol_days=patrol_days)
        results["coverage_s"] = time.perf_counter() - t0
        results["coverage"] = {k: v for k, v in coverage.items() if isinstance(v, int)}
    finally:
        gm.close()
    _, results["migrate_after_load_s"], _, _ = cli(env, "init")
    if has_command(env, "rollup", "rebuild"):
        _, results["rollup_rebuild_s"], _, _ = cli(env, "rollup", "rebuild")
    _, results["sla_tick_first_s"], _, _ = cli(env, "sla", "tick")
    if args.backend == "postgresql":  # autovacuum would analyze after a bulk load; do it now
        t0 = time.perf_counter()
        _sql(env, "VACUUM ANALYZE")
        results["analyze_s"] = time.perf_counter() - t0
    results["build_s"] = time.perf_counter() - started
    print(f"built in {results['build_s']:.0f} s: {args.issues:,} issues at {results['load_rows_s']:,.0f}/s "
          f"(draw {spent['draw_s']:.0f} s, app's prepare {spent['prepare_s']:.0f} s, "
          f"write {spent['write_s']:.0f} s, {int(spent['transitions']):,} transitions); coverage {results['coverage']} "
          f"in {results['coverage_s']:.0f} s", flush=True)
    keys = [k for k in results if k.endswith("_s") or k.startswith("load_") or k == "coverage"]
    marker.write_text(json.dumps({**wanted, "built_at": now.isoformat(timespec="seconds"),
                                  "results": {k: results[k] for k in keys}}))


def _sql(env: dict[str, str], statement: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(env["GRIDMAP_DATABASE_URL"], isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


# --- the service ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(env: dict[str, str], log: Path):
    """`gridmap serve` on a free loopback port: (base URL, process)."""
    port = _free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen([*GRIDMAP, "serve", "--host", "127.0.0.1", "--port", str(port)],
                                   env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gridmap serve exited with {process.returncode}: {log.read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gridmap serve did not start within {START_TIMEOUT_S} s") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def fetch(url: str, token: str) -> tuple[int, float, int]:
    """GET url as a browser would (gzip accepted); (status, seconds to the last byte, body bytes)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        body, status = error.read(), error.code
    return status, time.perf_counter() - started, len(body)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(round(share * len(ordered) + 0.5)) - 1))]


def pages(env: dict[str, str], folder: Path, results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(role, label, path) of every page and API the three roles open, with areas and ids of this database."""
    from sqlalchemy import create_engine, func, select

    from gridmap.storage.coverage import Household, PatrolTrack, Visit
    from gridmap.storage.models import Area, Issue, IssueTransition

    engine = create_engine(env["GRIDMAP_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            total = connection.scalar(select(func.count()).select_from(Issue)) or 0
            results["stored"] = {table.__tablename__: connection.scalar(select(func.count()).select_from(table))
                                 for table in (Issue, IssueTransition, Household, Visit, PatrolTrack)}
            results["statuses"] = dict(connection.execute(select(Issue.status, func.count())
                                                          .group_by(Issue.status)).all())
            results["sla_states"] = {str(k): v for k, v in connection.execute(
                select(Issue.sla_state, func.count()).group_by(Issue.sla_state)).all()}
            results["unstamped"] = connection.scalar(select(func.count()).select_from(Issue).where(
                Issue.cell_code.is_(None) | Issue.district_code.is_(None) | Issue.deadline.is_(None)
                | Issue.department.is_(None)))
            street = connection.execute(select(Issue.street_code, func.count()).group_by(Issue.street_code)
                                        .order_by(func.count().desc()).limit(1)).first()[0]
            community = connection.execute(select(Issue.community_code, func.count())
                                           .where(Issue.street_code == street).group_by(Issue.community_code)
                                           .order_by(func.count().desc()).limit(1)).first()[0]
            some_id = connection.scalar(select(Issue.id).order_by(Issue.id.desc()).limit(1).offset(total // 2))
            bounds = connection.scalar(select(Area.geometry).where(Area.code == community))
    finally:
        engine.dispose()
    results["manager_street"], results["stored_issues"] = street, total
    lons, lats = _coordinates(json.loads(bounds))
    clon, clat = (min(lons) + max(lons)) / 2, (min(lats) + max(lats)) / 2
    box = f"{clon - 0.0024:.5f},{clat - 0.0023:.5f},{clon + 0.0024:.5f},{clat + 0.0023:.5f}"
    deep = max(0, int(total * 0.9))
    year = datetime.now(UTC).year
    month = f"from={year - 1}-{datetime.now(UTC).month:02d}-01"
    return [
        ("dispatcher", "overview map `/`", "/"),
        ("dispatcher", "`/api/v1/maps/data` (filter change)", "/api/v1/maps/data?metric=open&category=E05"),
        ("dispatcher", "`/api/v1/maps/issues` (markers, 500 m box)", f"/api/v1/maps/issues?bbox={box}"),
        ("dispatcher", "`/api/v1/stats/cells`", "/api/v1/stats/cells"),
        ("dispatcher", "`/api/v1/stats/communities`", "/api/v1/stats/communities"),
        ("dispatcher", "`/api/v1/stats/streets`", "/api/v1/stats/streets"),
        ("dispatcher", "dispatcher page `/dispatch`", "/dispatch"),
        ("dispatcher", "`GET /api/v1/issues` first page", "/api/v1/issues"),
        ("dispatcher", f"`GET /api/v1/issues` deep page (offset {deep:,})", f"/api/v1/issues?offset={deep}"),
        ("dispatcher", "`GET /api/v1/issues/{id}`", f"/api/v1/issues/{some_id}"),
        ("dispatcher", "Open311 `GET /open311/v2/requests.json`", "/open311/v2/requests.json"),
        ("dispatcher", "OGC `/ogc/collections/issues/items`", "/ogc/collections/issues/items?limit=100"),
        ("dispatcher", "OGC issues items in a bbox", f"/ogc/collections/issues/items?bbox={box}&limit=100"),
        ("dispatcher", "OGC cells items", "/ogc/collections/cells/items?limit=100"),
        ("manager", "manager's map `/manager`", "/manager"),
        ("manager", "overview of the street `/?area=`", f"/?area={street}"),
        ("manager", "`/api/v1/maps/data?area=` (community)", f"/api/v1/maps/data?area={community}&metric=open"),
        ("manager", "`GET /api/v1/issues` (their street)", "/api/v1/issues"),
        ("manager", "coverage page `/coverage/`", "/coverage/"),
        ("manager", "`/api/v1/coverage/cells`", "/api/v1/coverage/cells"),
        ("planner", "overview map `/`", "/"),
        ("planner", "planner page `/planner/`", "/planner/"),
        ("planner", "`/api/v1/indicators` (30 days)", "/api/v1/indicators"),
        ("planner", "`/api/v1/indicators` (a year, by street)", f"/api/v1/indicators?{month}&level=streets"),
        ("planner", "`/api/v1/hotspots`", "/api/v1/hotspots"),
        ("planner", "`/api/v1/trends` (a year, monthly)", f"/api/v1/trends?{month}&interval=month"),
        ("planner", "`/api/v1/stats/districts`", "/api/v1/stats/districts"),
    ]


def _coordinates(geometry: dict[str, Any]) -> tuple[list[float], list[float]]:
    flat = json.dumps(geometry["coordinates"]).replace("[", "").replace("]", "").split(",")
    values = [float(v) for v in flat if v.strip()]
    return values[0::2], values[1::2]


def measure_service(args: argparse.Namespace, env: dict[str, str], folder: Path, results: dict[str, Any]) -> None:
    """Start `gridmap serve`, time every page and API of the three roles; the server's peak RSS."""
    targets = pages(env, folder, results)
    stamp = datetime.now(UTC).strftime("%H%M%S%f")
    tokens = {
        "dispatcher": cli(env, "tokens", "add", f"bench-d-{stamp}", "--role", "dispatcher")[0].strip(),
        "manager": cli(env, "tokens", "add", f"bench-m-{stamp}", "--role", "manager",
                       "--scope", results["manager_street"])[0].strip(),
        "planner": cli(env, "tokens", "add", f"bench-p-{stamp}", "--role", "planner")[0].strip(),
    }
    rows = []
    with serve(env, folder / "serve.log") as (base, process):
        started = time.perf_counter()
        status, results["first_request_s"], _ = fetch(base + "/api/v1/stats/districts", tokens["planner"])
        for role, label, path in targets:
            status, cold, size = fetch(base + path, tokens[role])
            times = []
            cpu_before = _cpu_seconds(process.pid)
            for _ in range(args.repeat):
                status, seconds, size = fetch(base + path, tokens[role])
                times.append(seconds)
            cpu = (_cpu_seconds(process.pid) - cpu_before) / args.repeat
            rows.append({"role": role, "label": label, "path": path, "status": status, "cold": cold,
                         "p50": percentile(times, 0.5), "p95": percentile(times, 0.95), "bytes": size, "cpu": cpu})
            print(f"  {role:10} {label:55} {status} p50 {rows[-1]['p50']:.3f} s p95 {rows[-1]['p95']:.3f} s "
                  f"server CPU {cpu:.3f} s (first {cold:.3f} s, {size / 1e3:,.0f} kB)", flush=True)
        results["requests_s"] = time.perf_counter() - started
        results["server_vmhwm_mb"] = _status_kb(process.pid, "VmHWM") / 1024
        results["server_vmrss_mb"] = _status_kb(process.pid, "VmRSS") / 1024
    results["pages"] = rows


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


# --- the commands ---------------------------------------------------------------------------


def measure_commands(env: dict[str, str], folder: Path, results: dict[str, Any]) -> None:
    """`gridmap sla tick`, `ledger export` (CSV) and `backup`: seconds and peak RSS each."""
    # What every command costs before its work:
    _, results["cli_startup_s"], _, results["cli_startup_cpu"] = cli(env, "users", "list")
    _, results["sla_tick_s"], results["sla_tick_mb"], results["sla_tick_cpu"] = cli(env, "sla", "tick")
    results["sla_tick_mb"] /= 1024
    out = folder / "ledger.csv"
    _, results["export_s"], peak, results["export_cpu"] = cli(env, "ledger", "export", str(out))
    results["export_mb"] = peak / 1024
    with open(out, "rb") as ledger:
        results["export_lines"] = sum(1 for _ in ledger) - 1
    results["export_rows_s"] = results["stored_issues"] / results["export_s"]
    results["export_file_mb"] = out.stat().st_size / 1e6
    out.unlink()
    backup = folder / "backup.sqlite3"
    backup.unlink(missing_ok=True)
    _, results["backup_s"], peak, results["backup_cpu"] = cli(env, "backup", str(backup))
    results["backup_mb"] = peak / 1024
    results["backup_file_mb"] = backup.stat().st_size / 1e6
    backup.unlink()
    print(f"  sla tick {results['sla_tick_s']:.1f} s; ledger export {results['export_s']:.1f} s "
          f"({results['export_rows_s']:,.0f} issues/s, {results['export_mb']:.0f} MB peak); "
          f"backup {results['backup_s']:.1f} s", flush=True)


def measure_import(args: argparse.Namespace, env: dict[str, str], folder: Path, server: Any,
                   results: dict[str, Any]) -> None:
    """`gridmap issues import` of a generated CSV with stage times into a fresh database: rows/s, peak RSS."""
    from bench.scale_data import write_import_csv
    from gridmap.core import Gridmap

    csv_path = folder / f"import-{args.import_rows}.csv"
    if not csv_path.exists():
        gm = Gridmap({"database_url": "sqlite://", "instance": str(folder / "instance")})
        try:
            write_import_csv(gm, csv_path, args.import_rows, seed=args.seed, now=datetime.now(UTC))
        finally:
            gm.close()
    if server is None:
        target = folder / "import.sqlite3"
        target.unlink(missing_ok=True)
        url = f"sqlite:///{target}"
    else:
        name = f"import_{datetime.now(UTC).strftime('%H%M%S')}"
        url = server.create_database(name)
    import_env = {**env, "GRIDMAP_DATABASE_URL": url}
    cli(import_env, "init")
    _, seconds, peak, cpu = cli(import_env, "issues", "import", str(csv_path))
    results.update(import_rows=args.import_rows, import_s=seconds, import_rows_s=args.import_rows / seconds,
                   import_mb=peak / 1024, import_cpu=cpu)
    print(f"  issues import: {args.import_rows:,} rows in {seconds:.1f} s ({results['import_rows_s']:,.0f} rows/s, "
          f"{results['import_mb']:.0f} MB peak)", flush=True)
    if server is None:
        (folder / "import.sqlite3").unlink(missing_ok=True)
    else:
        server.drop_database(name)


# --- the report -----------------------------------------------------------------------------


def machine_summary() -> str:
    """CPU, cores, RAM, Python and the load average, for the record."""
    import re

    cpu = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    ram = re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE)
    return (f"machine: {cpu.group(1) if cpu else platform.processor()}, {os.cpu_count()} CPUs, "
            f"{int(ram.group(1)) / 2**20 if ram else float('nan'):.1f} GiB RAM; Python {platform.python_version()}; "
            f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")


def table(results: dict[str, Any]) -> str:
    """The figures as one markdown table."""
    n = results["issues"]
    head = f"| {results['backend']}, {n:,} issues | value |\n| --- | --- |\n"
    lines = []
    if "load_rows_s" in results:
        lines.append(("bulk load (bench's generator, app's `Intake.prepare`, Core/COPY write)",
                      f"{results['load_rows_s']:,.0f} issues/s ({results['load_s']:.0f} s, CPU of this process "
                      f"{results.get('load_cpu_s', 0):.0f} s; draw {results.get('load_draw_s', 0):.0f} s, "
                      f"app's prepare {results.get('load_prepare_s', 0):.0f} s, "
                      f"write {results.get('load_write_s', 0):.0f} s)"))
    if "coverage" in results:
        lines.append(("households / visits / patrol tracks (demo generator)",
                      f"{results['coverage'].get('households', 0):,} / {results['coverage'].get('visits', 0):,} / "
                      f"{results['coverage'].get('tracks', 0):,} in {results.get('coverage_s', 0):.0f} s"))
    if "rollup_rebuild_s" in results:
        lines.append(("`gridmap rollup rebuild`", f"{results['rollup_rebuild_s']:.1f} s"))
    if "sla_tick_first_s" in results:
        lines.append(("first `gridmap sla tick` after loading", f"{results['sla_tick_first_s']:.1f} s"))
    for row in results.get("pages", []):
        flag = "" if row["status"] == 200 else f" **HTTP {row['status']}**"
        lines.append((f"{row['role']}: {row['label']}",
                      f"p50 {row['p50']:.3f} s, p95 {row['p95']:.3f} s, server CPU {row['cpu']:.3f} s "
                      f"({row['bytes'] / 1e3:,.0f} kB){flag}"))
    lines += [
        ("command start-up (`gridmap users list`, included below)",
         f"{results['cli_startup_s']:.1f} s, CPU {results['cli_startup_cpu']:.1f} s"),
        ("`gridmap sla tick` (steady)", f"{results['sla_tick_s']:.1f} s, CPU {results['sla_tick_cpu']:.1f} s, "
                                        f"{results['sla_tick_mb']:.0f} MB peak"),
        ("`gridmap ledger export` CSV", f"{results['export_rows_s']:,.0f} issues/s ({results['export_s']:.1f} s, "
                                        f"CPU {results['export_cpu']:.1f} s, {results['export_file_mb']:.0f} MB file, "
                                        f"{results['export_mb']:.0f} MB peak)"),
        ("`gridmap backup`", f"{results['backup_s']:.1f} s (CPU {results['backup_cpu']:.1f} s, "
                             f"{results['backup_file_mb']:.0f} MB file, {results['backup_mb']:.0f} MB peak)"),
    ]
    if "import_rows_s" in results:
        lines.append((f"`gridmap issues import` CSV with stage times ({results['import_rows']:,} rows, fresh db)",
                      f"{results['import_rows_s']:,.0f} rows/s ({results['import_s']:.1f} s, "
                      f"CPU {results['import_cpu']:.1f} s, {results['import_mb']:.0f} MB peak)"))
    lines.append(("server peak RSS (VmHWM of `gridmap serve`)", f"{results['server_vmhwm_mb']:.0f} MB"))
    lines.append(("load average at start / end", f"{results['load_average']:.1f} / {results['load_average_end']:.1f}"))
    return head + "\n".join(f"| {label} | {value} |" for label, value in lines)


if __name__ == "__main__":
    main()
