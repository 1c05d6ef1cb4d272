"""Benchmark: a 50,000-cell layer set drawn from vector tiles versus from one GeoJSON-like document.

Writes tests/lattice_layers.py's lattice (10 streets × 10 communities × 500 cells of ≈ 53 m × 55 m,
13 km × 11 km), serves it with waitress on loopback and opens the overview of the whole district in
headless Chromium (non-loopback traffic blocked, as in the browser tests) twice per mode:

* ``tiles``: ``map_tile_cells`` 20,000 (the default) — the cells come from /api/v1/maps/tiles/…;
* ``geojson``: ``map_tile_cells`` 0 and ``map_max_cells`` 100,000 — the cells come from the
  cacheable display-geometry endpoint /api/v1/maps/areas/cells (gzip) and are drawn as polygons
  on a canvas.

Per load it prints the bytes transferred (as sent, gzip included) for the page, the cell layer
(tiles or the geometry document) and everything, the time from navigation to the first cells
drawn (first tile loaded / polygons built) and to all cells in view drawn. The first load of a
mode meets a cold server (tiles encoded, geometry encoded); the second, in a new browser, a warm
server cache but an empty browser cache.

    python bench/tiles.py

The last line is ``tiles_first_s=… tiles_all_s=… tiles_mb=… geojson_first_s=… geojson_all_s=… geojson_mb=…``
(warm server, second load).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from browser import chromium_page, live_server  # noqa: E402
from lattice_layers import lattice_index, write_lattice  # noqa: E402

TILE_FIRST = "() => window.gridmapMap && window.gridmapMap.tileStats.loaded > 0"
TILE_ALL = "() => window.gridmapMap.tileStats.idle && window.gridmapMap.tileCodes().length > 0"
POLY_FIRST = "() => window.gridmapMap && Object.keys(window.gridmapMap.cells).length > 0"
POLY_ALL = "() => Object.keys(window.gridmapMap.cells).length >= 50000"


def make_app(folder: Path, instance: Path, index, **overrides):
    from gridmap.core import Gridmap
    from gridmap.web import create_app

    settings = {"geodata": str(folder), "database_url": f"sqlite:///{instance / 'gridmap.sqlite3'}",
                "instance": str(instance), **overrides}
    if not (instance / "gridmap.sqlite3").exists():
        core = Gridmap(settings)
        core.__dict__["areas"] = index
        core.init_database()
        core.close()
    app = create_app(settings)
    app.extensions["gridmap"].__dict__["areas"] = index
    return app


def measure(base: str, mode: str) -> dict[str, float]:
    sizes = {"page": 0, "layer": 0, "all": 0}
    with chromium_page(login_to=base) as (page, watch):
        def count(response) -> None:
            size = response.request.sizes()["responseBodySize"]
            sizes["all"] += size
            path = response.url[len(base):]
            if path == "/" or path.startswith("/?"):
                sizes["page"] += size
            elif ".mvt" in path or path.startswith("/api/v1/maps/areas/cells"):
                sizes["layer"] += size

        page.on("requestfinished", lambda request: count(request.response()))
        page.goto(base + "/", wait_until="commit", timeout=600_000)
        page.wait_for_function(TILE_FIRST if mode == "tiles" else POLY_FIRST, timeout=600_000, polling=50)
        first = page.evaluate("() => performance.now()") / 1000
        page.wait_for_function(TILE_ALL if mode == "tiles" else POLY_ALL, timeout=600_000, polling=50)
        drawn = page.evaluate("() => performance.now()") / 1000
        page.wait_for_load_state("networkidle")
        assert watch.console_errors == [] and watch.blocked == [], (watch.console_errors, watch.blocked)
    return {"first_s": first, "all_s": drawn, "page_mb": sizes["page"] / 1e6, "layer_mb": sizes["layer"] / 1e6,
            "all_mb": sizes["all"] / 1e6}


def main() -> None:
    import logging

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # a busy machine queues requests: not news
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_lattice(Path(tmp) / "geodata")
        index = lattice_index(folder)
        instance = Path(tmp) / "instance"
        instance.mkdir()
        results = {}
        for mode, overrides in (("tiles", {"map_tile_cells": 20000}),
                                ("geojson", {"map_tile_cells": 0, "map_max_cells": 100000})):
            app = make_app(folder, instance, index, **overrides)
            with live_server(app) as base:
                for run in ("cold", "warm"):
                    result = measure(base, mode)
                    results[(mode, run)] = result
                    print(f"{mode:8s} {run}: first cells {result['first_s']:.2f} s, all cells {result['all_s']:.2f} s, "
                          f"page {result['page_mb']:.3f} MB, cell layer {result['layer_mb']:.3f} MB, "
                          f"all {result['all_mb']:.3f} MB", flush=True)
            app.extensions["gridmap"].close()
        t, g = results[("tiles", "warm")], results[("geojson", "warm")]
        print(f"tiles_first_s={t['first_s']:.2f} tiles_all_s={t['all_s']:.2f} tiles_mb={t['all_mb']:.3f} "
              f"geojson_first_s={g['first_s']:.2f} geojson_all_s={g['all_s']:.2f} geojson_mb={g['all_mb']:.3f}")


if __name__ == "__main__":
    main()
