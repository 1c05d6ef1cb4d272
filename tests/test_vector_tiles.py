"""Vector tiles of the cell layer: what a tile holds, the tile endpoint's scope, caching and errors.

On SQLite the tiles are encoded in Python (shapely + mapbox-vector-tile); on PostgreSQL with PostGIS
by ST_AsMVT. Both are decoded with the same library and must give back the cells of the tile.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import shapely
from sqlalchemy import text

from conftest import BACKEND
from gridmap.maps.service import MapService
from gridmap.maps.vector_tiles import TILE_BUFFER, TILE_EXTENT, TileId, decode_tile

CELLS_URL = "/api/v1/maps/tiles/cells/{z}/{x}/{y}.mvt"
COMMUNITY = "460204001001"


def with_postgis(gm) -> None:
    """On PostgreSQL, install PostGIS in the test database (the encoder then uses ST_AsMVT)."""
    if BACKEND != "sqlite":
        with gm.db.engine.begin() as connection:
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))


def map_service_of(gm) -> MapService:
    return MapService(layers=gm.areas.layers, settings=gm.settings, categories=gm.categories, timezone=gm.timezone,
                      db=gm.db)


def tile_of(lon: float, lat: float, z: int) -> TileId:
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return TileId(z, x, y)


def tiles_covering(bounds, z: int) -> list[TileId]:
    west, south, east, north = bounds
    nw, se = tile_of(west, north, z), tile_of(east, south, z)
    return [TileId(z, x, y) for x in range(nw.x, se.x + 1) for y in range(nw.y, se.y + 1)]


def to_lonlat(coordinates, tile: TileId) -> np.ndarray:
    """Tile units (y down) back to lon/lat."""
    xy = np.asarray(coordinates, dtype=float)
    n = 2 ** tile.z
    px = tile.x + xy[:, 0] / TILE_EXTENT
    py = tile.y + xy[:, 1] / TILE_EXTENT
    lon = px / n * 360 - 180
    lat = np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * py / n))))
    return np.column_stack([lon, lat])


def decoded_shape(geometry: dict, tile: TileId) -> shapely.Geometry:
    polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
    parts = [shapely.Polygon(to_lonlat(rings[0], tile), [to_lonlat(ring, tile) for ring in rings[1:]])
             for rings in polygons]
    return shapely.make_valid(shapely.MultiPolygon(parts) if len(parts) > 1 else parts[0])


def test_a_tile_decodes_back_to_the_cells_of_that_tile(gm):
    with_postgis(gm)
    service = map_service_of(gm)
    assert service.tile_encoder == ("python" if BACKEND == "sqlite" else "postgis")
    cells = gm.areas.layers.cells
    geometry_of = dict(zip(cells["code"], cells.geometry.values))
    seen: set[str] = set()
    for tile in tiles_covering(cells.total_bounds, 15):
        layers = decode_tile(service.vector_tile("cells", tile, None))
        box = shapely.box(*tile.lonlat_bounds())
        buffered = shapely.box(*tile.lonlat_bounds(TILE_BUFFER))
        expected = {code for code, geometry in geometry_of.items() if geometry.intersection(box).area > 0}
        features = layers.get("cells", [])
        codes = {feature["properties"]["code"] for feature in features}
        assert expected <= codes, f"tile {tile}: missing {sorted(expected - codes)}"
        for feature in features:
            code = feature["properties"]["code"]
            assert feature["properties"]["name"] == cells.loc[cells["code"] == code, "name"].item()
            drawn = decoded_shape(feature["geometry"], tile)
            stored = geometry_of[code].intersection(buffered)
            # Quantised to 1/16 px and simplified by as much: nearly the same area, in the same place.
            assert drawn.symmetric_difference(stored).area <= 0.03 * stored.area + 1e-10, (tile, code)
        seen |= codes
    assert seen == set(cells["code"])


def test_a_tile_holds_only_the_areas_asked_for_and_nothing_outside_the_layer_set(gm):
    with_postgis(gm)
    service = map_service_of(gm)
    communities = gm.areas.layers.level("communities")
    west, south, east, north = communities.loc[communities["code"] == COMMUNITY].total_bounds
    tile = tile_of((west + east) / 2, (south + north) / 2, 13)
    everything = {f["properties"]["code"] for f in decode_tile(service.vector_tile("cells", tile, None))["cells"]}
    inside = {f["properties"]["code"] for f in decode_tile(service.vector_tile("cells", tile, (COMMUNITY,)))["cells"]}
    assert inside == {code for code in everything if code.startswith(COMMUNITY)} and len(inside) > 1
    drawn = decode_tile(service.vector_tile("communities", tile, None))["communities"]
    assert COMMUNITY in {f["properties"]["code"] for f in drawn}
    assert service.vector_tile("cells", TileId(13, 0, 0), None) == b""


def test_tiles_are_cached_by_layer_set_version(gm):
    service = map_service_of(gm)
    bounds = gm.areas.layers.cells.total_bounds
    tile = tile_of(bounds[0], bounds[3], 14)
    first = service.vector_tile("cells", tile, None)
    assert len(service.tile_cache) == 1
    assert service.tile_cache.get(service.geometry.version, ("cells", tile.z, tile.x, tile.y, None)) == first
    service.tile_cache.put("another layer set", ("cells", 1, 0, 0, None), b"x")
    assert len(service.tile_cache) == 1 and service.tile_cache.get(service.geometry.version, ("cells", tile.z, tile.x,
                                                                                              tile.y, None)) is None


def centre_tile_url(gm, z: int = 14, **params) -> str:
    bounds = gm.areas.layers.cells.total_bounds
    tile = tile_of(bounds[0] + 0.1 * (bounds[2] - bounds[0]), (bounds[1] + bounds[3]) / 2, z)
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return CELLS_URL.format(z=tile.z, x=tile.x, y=tile.y) + (f"?{query}" if query else "")


def test_the_tile_endpoint_serves_mvt_with_caching_headers(client, gm, app):
    with_postgis(gm)
    response = client.get(centre_tile_url(gm))
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.mapbox-vector-tile"
    assert response.headers["Cache-Control"] == "private, no-cache"
    assert decode_tile(response.data)["cells"]
    etag = response.headers["ETag"]
    again = client.get(centre_tile_url(gm), headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    with app.app_context():
        from gridmap.web.maps_api import map_service
        version = map_service().geometry.version
    pinned = client.get(centre_tile_url(gm, v=version), headers={"Accept-Encoding": "gzip"})
    assert pinned.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    assert pinned.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in pinned.headers["Vary"]
    import gzip
    assert gzip.decompress(pinned.data) == response.data


@pytest.mark.parametrize(("path", "status", "words"), [
    ("/api/v1/maps/tiles/cells/abc/1/1.mvt", 400, "tile z must be a whole number"),
    ("/api/v1/maps/tiles/cells/14/-3/1.mvt", 400, "tile x must be a whole number"),
    ("/api/v1/maps/tiles/cells/14/1/1.5.mvt", 400, "tile y must be a whole number"),
    ("/api/v1/maps/tiles/cells/3/8/1.mvt", 404, "at zoom 3 x and y run 0…7"),
    ("/api/v1/maps/tiles/cells/3/1/9.mvt", 404, "at zoom 3 x and y run 0…7"),
    ("/api/v1/maps/tiles/cells/30/1/1.mvt", 404, "tiles are made for zoom 0…22"),
    ("/api/v1/maps/tiles/parcels/3/1/1.mvt", 400, "level"),
    ("/api/v1/maps/tiles/cells/3/1/1.mvt?within=999999", 404, "999999"),
])
def test_a_bad_tile_address_is_refused_saying_what_is_wrong(client, path, status, words):
    response = client.get(path)
    assert response.status_code == status, response.data
    assert words in response.get_json()["error"]["message"]


def test_a_managers_tiles_hold_only_their_areas(client_as, gm):
    with_postgis(gm)
    manager = client_as("manager", COMMUNITY)
    response = manager.get(centre_tile_url(gm, z=13))
    assert response.status_code == 200
    codes = {f["properties"]["code"] for f in decode_tile(response.data)["cells"]}
    assert codes and all(code.startswith(COMMUNITY) for code in codes)
    assert manager.get(centre_tile_url(gm, z=13, within="460204101001")).status_code == 403
    own = manager.get(centre_tile_url(gm, z=13, within=COMMUNITY))
    assert own.status_code == 200 and own.data == response.data
    assert response.headers["ETag"] != client_as("admin").get(centre_tile_url(gm, z=13)).headers["ETag"]


def test_tiles_need_a_login(anon_client, gm):
    assert anon_client.get(centre_tile_url(gm)).status_code == 401


def page_config(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="map-config">(.*?)</script>', html, re.S)
    assert match, "no map config in the page"
    return json.loads(match.group(1))


def test_above_map_tile_cells_the_page_draws_its_cells_from_tiles(settings, gm):
    from conftest import admin_client
    from gridmap.web import create_app

    app = create_app({**settings, "map_tile_cells": 30, "map_max_cells": 20})
    try:
        client = admin_client(app)
        html = client.get("/").get_data(as_text=True)  # 74 cells: from tiles, still by cell
        config = page_config(html)
        choropleth = config["layers"]["choropleth"]
        assert config["level"] == "cells" and set(choropleth) == {"level", "tiles"}
        assert choropleth["tiles"].startswith("/api/v1/maps/tiles/cells/{z}/{x}/{y}.mvt?v=")
        assert "vendor/leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js" in html
        assert '"code":"460204001001001"' not in html
        # 24 cells: not above map_tile_cells but above map_max_cells, so coloured by community as before
        community = page_config(client.get(f"/?area={COMMUNITY}").get_data(as_text=True))
        assert community["level"] == "communities" and "tiles" not in community["layers"]["choropleth"]
        within = page_config(client.get("/?area=460204001").get_data(as_text=True))["layers"]["choropleth"]
        assert "within=460204001" in within["tiles"]
    finally:
        app.extensions["gridmap"].close()
    app = create_app({**settings, "map_tile_cells": 0})
    try:
        html = admin_client(app).get("/").get_data(as_text=True)
        assert "tiles" not in page_config(html)["layers"]["choropleth"] and "VectorGrid" not in html
    finally:
        app.extensions["gridmap"].close()
