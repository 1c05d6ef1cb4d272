"""Benchmark: count issue points per grid cell with CellLocator, against geopandas.sjoin.

A synthetic 10 km x 10 km city around Sanya (Voronoi communities, 100 m cells from the project's
grid builder) and 1M issue points (uniform plus hotspots). Both paths start from lon/lat arrays
and the cells GeoDataFrame and end with one count per cell:

* project: ``CellLocator.from_frame(cells).count_per_cell(lon, lat)`` (index build included);
* baseline: ``geopandas.sjoin(points, cells, predicate="within")`` + groupby count; building the
  points GeoDataFrame is timed separately and left out of the headline speedup.

Runs alternate between the two paths (both single-threaded). The speedup compares the best run
of each in CPU time of this process, which other work on a shared machine disturbs far less than
the wall clock; wall-clock figures (best and median runs) are printed too. Memory is measured in
a fresh subprocess that runs the project path once, cold: the rise of its peak resident set
(VmHWM, reset just before) over its resident set before, and the tracemalloc peak; the larger
of the two is reported.

    python bench/aggregate.py [--points 1000000] [--communities 300] [--cell-size 100] [--seed 0] [--repeat 7]

The last line is ``speedup_vs_sjoin=X peak_mb=Y counts_identical=true|false``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gridmap.geo.locator import CellLocator  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=1_000_000, help="issue points (default 1000000)")
    parser.add_argument("--communities", type=int, default=300, help="Voronoi communities (default 300)")
    parser.add_argument("--cell-size", type=float, default=100.0, help="cell side in metres (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs of each path (default 7)")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        measure_memory(args.worker)
        return
    run(args)


def run(args: argparse.Namespace) -> None:
    # Imported here, not at the top, so that the memory-measuring worker process stays lean.
    import geopandas as gpd

    from bench.common import build_city, issue_points
    from gridmap.geo.gridbuild import build_cells

    print(machine_summary())
    started = time.perf_counter()
    city = build_city(communities=args.communities, seed=args.seed)
    cells = build_cells(city.communities, args.cell_size)
    lon, lat = issue_points(city, args.points, seed=args.seed)
    print(
        f"city: {len(city.communities)} communities, {len(cells)} cells of {args.cell_size:g} m, "
        f"{len(lon):,} points (seed {args.seed}); built in {time.perf_counter() - started:.1f} s"
    )

    with tempfile.TemporaryDirectory(prefix="gridmap-bench-") as folder:
        folder = Path(folder)
        with open(folder / "cells.pickle", "wb") as out:
            pickle.dump((cells["code"].tolist(), np.asarray(cells.geometry.values, dtype=object)), out)
        np.save(folder / "lon.npy", lon)
        np.save(folder / "lat.npy", lat)
        worker = subprocess.run(
            [sys.executable, __file__, "--worker", str(folder)], capture_output=True, text=True, check=True
        )
        memory = json.loads(worker.stdout.strip().splitlines()[-1])
        worker_counts = np.load(folder / "counts.npy")

    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")
    runs: dict[str, list[tuple[float, float]]] = {"project": [], "sjoin": [], "points": []}
    for _ in range(args.repeat):
        with _Stopwatch(runs["project"]):
            locator = CellLocator.from_frame(cells)
            project_counts = locator.count_per_cell(lon, lat)
        del locator

        fresh_cells = cells.copy()  # no spatial index cached from the previous run
        with _Stopwatch(runs["sjoin"]):
            joined = gpd.sjoin(points, fresh_cells, predicate="within")
            sjoin_counts = joined.groupby("index_right").size().reindex(range(len(cells)), fill_value=0).to_numpy()
        del joined, fresh_cells

        with _Stopwatch(runs["points"]):
            gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326")

    identical = bool(np.array_equal(project_counts, sjoin_counts) and np.array_equal(worker_counts, sjoin_counts))
    cpu = {name: min(c for _, c in times) for name, times in runs.items()}
    wall = {name: min(w for w, _ in times) for name, times in runs.items()}
    wall_median = {name: statistics.median(w for w, _ in times) for name, times in runs.items()}
    speedup = cpu["sjoin"] / cpu["project"]
    kinds = CellLocator.from_frame(cells).describe_index()

    print(f"points inside cells: {int(sjoin_counts.sum()):,} of {len(lon):,}")
    print(
        f"bucket grid: {kinds['grid'][0]} x {kinds['grid'][1]}, free {kinds['free']:,}, "
        f"single-line {kinds['single_line']:,}, star {kinds['star']:,}, complex {kinds['complex']:,}"
    )
    print(f"timed runs: {args.repeat} of each path, alternating; seconds: CPU (best run), wall clock (best / median)")
    for name, label in (
        ("project", "project  build + locate + count        "),
        ("sjoin", "baseline sjoin(within) + groupby count "),
        ("points", "baseline building the points frame     "),
    ):
        print(f"  {label} cpu {cpu[name]:.3f}   wall {wall[name]:.3f} / {wall_median[name]:.3f}")
    print(
        f"speedup vs sjoin + count: {speedup:.1f}x in CPU time "
        f"(wall clock: {wall['sjoin'] / wall['project']:.1f}x best runs, "
        f"{wall_median['sjoin'] / wall_median['project']:.1f}x medians)"
    )
    end_to_end = (cpu["sjoin"] + cpu["points"]) / cpu["project"]
    print(f"speedup vs points frame + sjoin + count: {end_to_end:.1f}x in CPU time")
    print(
        f"project path memory (fresh process, one cold run): peak RSS rise {memory['rss_rise_mb']:.1f} MB "
        f"({memory['rss_method']}), tracemalloc peak {memory['tracemalloc_peak_mb']:.1f} MB; "
        f"inputs alone (lon/lat arrays) {(lon.nbytes + lat.nbytes) / 2**20:.1f} MB"
    )
    print(f"per-cell counts identical to sjoin: {str(identical).lower()}")
    peak_mb = max(memory["rss_rise_mb"], memory["tracemalloc_peak_mb"])
    print(f"speedup_vs_sjoin={speedup:.1f} peak_mb={peak_mb:.1f} counts_identical={str(identical).lower()}")


class _Stopwatch:
    """Appends (wall seconds, CPU seconds of this process) of the block to a list."""

    def __init__(self, into: list[tuple[float, float]]) -> None:
        self.into = into

    def __enter__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def __exit__(self, *exc: object) -> None:
        self.into.append((time.perf_counter() - self.wall, time.process_time() - self.cpu))


def measure_memory(folder: Path) -> None:
    """Run the project path once in this fresh process; print its memory use as JSON."""
    with open(folder / "cells.pickle", "rb") as source:
        codes, geometries = pickle.load(source)
    lon = np.load(folder / "lon.npy")
    lat = np.load(folder / "lat.npy")

    method = "VmHWM reset via /proc/self/clear_refs"
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        method = "VmHWM since process start (could not reset it)"
    before = _status_kib("VmRSS")
    counts = CellLocator(codes, geometries).count_per_cell(lon, lat)
    rss_rise = (_status_kib("VmHWM") - before) / 1024

    tracemalloc.start()
    CellLocator(codes, geometries).count_per_cell(lon, lat)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    np.save(folder / "counts.npy", counts)
    print(json.dumps({"rss_rise_mb": rss_rise, "rss_method": method, "tracemalloc_peak_mb": traced_peak / 2**20}))


def _status_kib(field: str) -> int:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/proc/self/status has no {field}: memory can only be measured on Linux")
    return int(match.group(1))


def machine_summary() -> str:
    """CPU, cores, RAM and library versions, for the record."""
    import geopandas
    import shapely

    cpu = platform.processor() or "unknown CPU"
    try:
        cpu = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE).group(1)
        ram_gib = _meminfo_kib("MemTotal") / 2**20
    except (OSError, AttributeError):
        ram_gib = float("nan")
    return (
        f"machine: {cpu}, {os.cpu_count()} CPUs, {ram_gib:.1f} GiB RAM; Python {platform.python_version()}, "
        f"numpy {np.__version__}, shapely {shapely.__version__} (GEOS {shapely.geos_version_string}), "
        f"geopandas {geopandas.__version__}"
    )


def _meminfo_kib(field: str) -> int:
    return int(re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.MULTILINE).group(1))


if __name__ == "__main__":
    main()
