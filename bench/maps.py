"""Benchmark: the map UI at scale — a ~13,000-cell layer set with 100,000 issues.

Builds bench/common.py's synthetic city (10.5 km x 10.5 km, 300 Voronoi communities in 10 streets)
cut into 100 m cells by the project's grid builder, writes it as a layer set, loads it and
100,000 issues (bench/common.py's points: uniform plus hotspots; random categories, sources and
states over the past year) into a fresh SQLite database, and requests the pages and layer
endpoints through the Flask test client, the way a browser opening the district view does:

* ``page_html_mb``: size of the overview page ``GET /`` (the whole district), which carries the
  figures of every cell with issues and the heatmap's points (server-aggregated: one weighted
  point per cell above 5,000 issues);
* ``cell_layer_gzip_mb``: the cell layer the browser then fetches from the cacheable endpoint,
  gzip-compressed: the display geometry ``GET /api/v1/maps/areas/cells?v=…`` (immutable for
  that layer set version, so a returning browser does not fetch it again);
* ``render_s``: server time to answer the page (median of the runs; the display geometry is
  encoded once per process and then served from memory — the first, cold encoding and the
  first page after start-up, which loads and validates the layer set, are printed separately).

A filter change (``GET /api/v1/maps/data``) and a marker request are timed too.

    python bench/maps.py [--issues 100000] [--communities 300] [--size-km 10.5] [--cell-size 100]
                         [--seed 0] [--repeat 9]

The last line is ``page_html_mb=X cell_layer_gzip_mb=Y render_s=Z``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BUDGET = {"page_html_mb": 1.5, "cell_layer_gzip_mb": 0.3, "render_s": 0.3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--issues", type=int, default=100_000, help="issues (default 100000)")
    parser.add_argument("--communities", type=int, default=300, help="Voronoi communities (default 300)")
    parser.add_argument(
        "--size-km", type=float, default=10.5,
        help="side of the square city in km (default 10.5: ~13,000 cells of 100 m)",
    )
    parser.add_argument("--cell-size", type=float, default=100.0, help="cell side in metres (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--repeat", type=int, default=9, help="timed runs (default 9)")
    parser.add_argument("--database-url", default=None, help="database to fill (default: SQLite in a temporary folder)")
    parser.add_argument("--keep", type=Path, default=None, help=argparse.SUPPRESS)  # keep the data set here (profiling)
    args = parser.parse_args()
    run(args)


def build_layer_set(folder: Path, communities: int, cell_size: float, seed: int, size_m: float):
    """The synthetic city as a layer set folder: district, streets, communities, cells."""
    import geopandas as gpd
    import shapely

    from bench.common import DISTRICT_CODE, build_city
    from gridmap.geo.gridbuild import build_cells
    from gridmap.geo.layers import LayerSet, write_layer_set

    city = build_city(communities=communities, size_m=size_m, seed=seed)
    comm = city.communities.assign(parent_code=city.communities["code"].str[:9])
    streets = comm.dissolve("parent_code", as_index=False)
    streets = gpd.GeoDataFrame(
        {"code": streets["parent_code"], "name": [f"第{int(c[6:]):d}街道" for c in streets["parent_code"]],
         "parent_code": DISTRICT_CODE}, geometry=streets.geometry.values, crs=comm.crs)
    district = gpd.GeoDataFrame({"code": [DISTRICT_CODE], "name": ["合成区"], "parent_code": [None]},
                                geometry=[shapely.union_all(comm.geometry.values)], crs=comm.crs)
    cells = build_cells(comm, cell_size)
    layers = LayerSet(districts=district, streets=streets,
                      communities=comm[["code", "name", "parent_code", "geometry"]], cells=cells)
    write_layer_set(layers, folder)
    return city, len(cells)


def issue_rows(gm, city, n: int, seed: int) -> list[dict]:
    """n issues inside the cells, in random categories, sources and states over the past year."""
    from bench.common import issue_points
    from gridmap.issues.states import OPEN_STATUSES, SOURCES

    rng = np.random.default_rng(seed + 2)
    lon, lat = issue_points(city, int(n * 1.2) + 100, seed=seed)
    x, y, cell = gm.areas.locate_indices(lon, lat)
    inside = np.flatnonzero(cell >= 0)[:n]
    if len(inside) < n:
        raise SystemExit(f"only {len(inside)} of the points fall inside cells; lower --issues")
    leaves = [c for c in gm.categories.leaves() if c.time_limit_kind]
    now = datetime.now(UTC)
    open_statuses = sorted(OPEN_STATUSES)
    rows = []
    for k, i in enumerate(inside):
        location = gm.areas.location_at(int(cell[i]), x[i], y[i])
        category = leaves[int(rng.integers(len(leaves)))]
        reported = now - timedelta(days=float(rng.uniform(0, 365)))
        roll = rng.random()
        status = (
            "closed" if roll < 0.7
            else "revisited" if roll < 0.8
            else "rejected" if roll < 0.83
            else open_statuses[int(rng.integers(len(open_statuses)))]
        )
        closed = reported + timedelta(days=2) if status in ("closed", "revisited") else None
        rows.append({
            "category": category.code, "description": f"合成问题 {k}",
            "source": SOURCES[int(rng.integers(len(SOURCES)))],
            "lon": location.lon, "lat": location.lat, "address": None,
            "cell_code": location.cell, "community_code": location.community, "street_code": location.street,
            "district_code": location.district, "urgency": str(category.urgency.value), "status": status,
            "deadline": reported + timedelta(days=3), "reported_at": reported, "closed_at": closed,
            "revisited_at": closed + timedelta(days=1) if status == "revisited" else None,
            "photos": [], "rework_count": 0, "extra": {}, "created_at": now,
        })
    return rows


def timed_get(client, path: str, gzip_ok: bool = False) -> tuple[float, bytes, dict]:
    headers = {"Accept-Encoding": "gzip"} if gzip_ok else {}
    started = time.perf_counter()
    with client.get(path, headers=headers) as response:
        body = response.get_data()
        if response.status_code != 200:
            raise SystemExit(f"GET {path}: {response.status_code} {body[:300]!r}")
        return time.perf_counter() - started, body, dict(response.headers)


def run(args: argparse.Namespace) -> None:
    from sqlalchemy import func, insert, select

    from bench.aggregate import machine_summary
    from gridmap.core import Gridmap
    from gridmap.security.access import add_token
    from gridmap.storage.models import Issue
    from gridmap.web import create_app

    print(machine_summary())
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())} "
          "(other work on the machine slows every timing)")
    with tempfile.TemporaryDirectory(prefix="gridmap-bench-maps-") as tmp:
        folder = args.keep or Path(tmp)
        started = time.perf_counter()
        city, cell_count = build_layer_set(folder / "geodata", args.communities, args.cell_size, args.seed,
                                           args.size_km * 1000)
        print(f"layer set: {len(city.communities)} communities, {cell_count:,} cells of {args.cell_size:g} m "
              f"(built in {time.perf_counter() - started:.1f} s)")
        settings = {"geodata": str(folder / "geodata"), "instance": str(folder / "instance"),
                    "database_url": args.database_url or f"sqlite:///{folder / 'instance' / 'gridmap.sqlite3'}"}
        gm = Gridmap(settings)
        started = time.perf_counter()
        gm.init_database()
        with gm.db.sessions() as session:
            if session.scalar(select(func.count()).select_from(Issue)):
                raise SystemExit("the database already holds issues: give an empty one (--database-url)")
        rows = issue_rows(gm, city, args.issues, args.seed)
        with gm.db.session() as session:
            for start in range(0, len(rows), 10_000):
                session.execute(insert(Issue), rows[start:start + 10_000])
        print(f"database: {len(rows):,} issues loaded in {time.perf_counter() - started:.1f} s "
              f"({gm.db.engine.url.get_backend_name()})")
        gm.close()

        app = create_app(settings)
        client = app.test_client()
        with app.extensions["gridmap"].db.session() as session:  # every page needs a principal
            client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {add_token(session, 'bench', 'admin', ())}"
        try:
            cold_page, _, _ = timed_get(client, "/")  # loads and validates the layer set, builds the index
            cold_geometry, _, _ = timed_get(client, "/api/v1/maps/areas/cells", gzip_ok=True)
            print(f"cold: first page {cold_page:.2f} s (layer set loaded and validated), "
                  f"first cell geometry {cold_geometry:.2f} s (display encoding, once per process)")

            page_times, data_times = [], []
            for _ in range(args.repeat):
                seconds, page, _ = timed_get(client, "/")
                page_times.append(seconds)
                config = json.loads(page.decode().split('id="map-config">', 1)[1].split("</script>", 1)[0])
                # What a filter change asks for: the figures and heat of the new view.
                seconds, data, data_headers = timed_get(
                    client, "/api/v1/maps/data?metric=open&category=E05", gzip_ok=True)
                data_times.append(seconds)
            geometry_seconds, geometry, geometry_headers = timed_get(
                client, config["layers"]["choropleth"]["url"], gzip_ok=True)
            _, communities, _ = timed_get(client, "/api/v1/maps/areas/communities", gzip_ok=True)
            assert geometry_headers.get("Content-Encoding") == "gzip" and data_headers.get("Content-Encoding") == "gzip"
            assert "immutable" in geometry_headers.get("Cache-Control", "")
            features = len(json.loads(gzip.decompress(geometry))["features"])
            raw_geometry = len(gzip.decompress(geometry))
            _, page_gzip, _ = timed_get(client, "/", gzip_ok=True)
            marker_seconds, markers, _ = timed_get(
                client, "/api/v1/maps/issues?bbox=" + ",".join(f"{v:.5f}" for v in _centre_box()), gzip_ok=True)
        finally:
            app.extensions["gridmap"].close()

    page_mb = len(page) / 1e6
    layer_mb = len(geometry) / 1e6
    render_s = statistics.median(page_times)
    print(f"page: {page_mb:.3f} MB HTML ({len(page_gzip) / 1e6:.3f} MB gzip), "
          f"{render_s:.3f} s median of {len(page_times)} "
          f"(fastest {min(page_times):.3f} s) "
          f"(figures of {len(config['data']['features']):,} cells and {config['heat']['count']:,} "
          f"issues in the heatmap as {config['heat']['mode']} points)")
    print(f"cell layer: {features:,} cells, {raw_geometry / 1e6:.3f} MB JSON, {layer_mb:.3f} MB gzip, "
          f"{geometry_seconds * 1000:.0f} ms warm; display precision 1e-5 deg (about 1.1 m), simplified at 1e-5 deg")
    print(f"filter change (GET /api/v1/maps/data, figures + heat): {len(data) / 1e6:.3f} MB gzip, "
          f"{statistics.median(data_times):.3f} s median")
    print(f"communities geometry: {len(communities) / 1e6:.3f} MB gzip; markers in a 500 m box: "
          f"{len(json.loads(gzip.decompress(markers))['issues'])} issues, {marker_seconds * 1000:.0f} ms")
    within = (page_mb <= BUDGET["page_html_mb"] and layer_mb <= BUDGET["cell_layer_gzip_mb"]
              and render_s <= BUDGET["render_s"])
    print(f"budgets: page ≤ {BUDGET['page_html_mb']} MB, cell layer ≤ {BUDGET['cell_layer_gzip_mb']} MB gzip, "
          f"render ≤ {BUDGET['render_s']} s: {'met' if within else 'NOT met'}")
    print(f"page_html_mb={page_mb:.3f} cell_layer_gzip_mb={layer_mb:.3f} render_s={render_s:.3f}")


def _centre_box() -> tuple[float, float, float, float]:
    """A 500 m box around the centre of the city (what a zoomed-in browser asks markers for)."""
    from bench.common import CENTRE_LONLAT

    lon, lat = CENTRE_LONLAT
    half_lon, half_lat = 250 / 105_600, 250 / 110_700
    return lon - half_lon, lat - half_lat, lon + half_lon, lat + half_lat


if __name__ == "__main__":
    main()
