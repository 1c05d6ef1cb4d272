"""A 50,000-cell layer set in headless Chromium: the cells come from vector tiles, not one document."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from browser import chromium_page, live_server
from conftest import BACKEND
from lattice_layers import lattice_index, write_lattice

pytestmark = pytest.mark.browser

CELLS = 50_000
# Arrow functions, not expressions: Playwright evaluates bare expressions with eval, which the CSP refuses.
TILES_DRAWN = "() => window.gridmapMap && window.gridmapMap.tileStats.idle && window.gridmapMap.tileCodes().length > 0"


@pytest.fixture(scope="module")
def lattice_app(tmp_path_factory, request):
    """An app on a 50,000-cell lattice layer set, built once for the module."""
    from gridmap.core import Gridmap
    from gridmap.web import create_app

    folder = write_lattice(tmp_path_factory.mktemp("lattice") / "geodata")
    instance = tmp_path_factory.mktemp("lattice-instance")
    server = name = None
    if BACKEND == "sqlite":
        url = f"sqlite:///{instance / 'gridmap.sqlite3'}"
    else:
        server = request.getfixturevalue("pg_server")
        name = "t_lattice_" + uuid.uuid4().hex[:8]
        url = server.create_database(name, extensions=("postgis",))
    settings = {"geodata": str(folder), "database_url": url, "instance": str(instance)}
    index = lattice_index(folder)
    assert len(index.layers.cells) == CELLS
    core = Gridmap(settings)
    core.__dict__["areas"] = index
    core.init_database()
    core.close()
    app = create_app({**settings, "TESTING": True})
    app.extensions["gridmap"].__dict__["areas"] = index
    yield app
    app.extensions["gridmap"].close()
    if server is not None:
        server.drop_database(name)


def test_a_50000_cell_layer_set_is_drawn_from_vector_tiles(lattice_app):
    with live_server(lattice_app) as base, chromium_page(login_to=base) as (page, watch):
        tiles: list[tuple[int, str]] = []
        page.on("response", lambda r: tiles.append((r.status, r.url)) if ".mvt" in r.url else None)
        page.goto(base + "/", wait_until="load")
        page.wait_for_function(TILES_DRAWN, timeout=180_000)
        config = json.loads(page.locator("#map-config").text_content())
        choropleth = config["layers"]["choropleth"]
        assert choropleth["level"] == "cells" and "/api/v1/maps/tiles/cells/{z}/{x}/{y}.mvt?v=" in choropleth["tiles"]
        assert "features" not in choropleth and "url" not in choropleth  # no cell geometry in or beside the page
        assert tiles and all(status == 200 for status, _ in tiles), tiles
        codes = page.evaluate("() => window.gridmapMap.tileCodes()")
        # The whole district is in view: every cell is drawn, each once however many tiles it crosses.
        assert len(codes) == len(set(codes)) == CELLS
        assert all(re.fullmatch(r"460204\d{9}", code) for code in codes)
        painted = page.evaluate("() => Array.from(document.querySelectorAll('.leaflet-tile-container canvas'))"
                                ".filter(c => c.width > 0 && c.getContext('2d').getImageData(0, 0, c.width, c.height)"
                                ".data.some(v => v !== 0)).length")
        assert painted >= 1
        box = page.locator(".folium-map").bounding_box()
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        popup = page.wait_for_selector(".leaflet-popup-content")
        assert re.search(r"460204\d{9}", popup.inner_text())
        assert re.search(r"460204\d{9}", page.locator("#selected").inner_text())
        assert watch.console_errors == []
        assert watch.failed_requests == []
        assert watch.blocked == []
