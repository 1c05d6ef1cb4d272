"""Mapbox Vector Tiles of a layer set's areas: one layer per tile, a feature per area with ``code`` and ``name``.

Large cell layers (a city of 40,000–50,000 cells) are drawn from tiles instead of one document. A
tile ``z/x/y`` (Web Mercator, XYZ numbering) holds the areas of one level whose bounding boxes meet
the tile, clipped to the tile plus a buffer of ``TILE_BUFFER`` units (so borders do not show at tile
edges) and simplified by one tile unit — 1/16 of a screen pixel at that zoom, so each zoom gets its
own detail. The candidates are chosen in memory from the layer set's bounding boxes; then

- on PostgreSQL with PostGIS, ``ST_AsMVT``/``ST_AsMVTGeom`` encode the tile from the ``areas``
  table, reading its GeoJSON text with ``ST_GeomFromGeoJSON`` on the fly;
- otherwise (SQLite, PostgreSQL without the extension, or overlays shifted to GCJ-02 for AMap,
  which SQL cannot do) shapely clips and simplifies and the ``mapbox-vector-tile`` package encodes.

Both give the same features; the figures a choropleth colours them by are joined in the browser
by ``code``. Encoded tiles are kept in a :class:`TileCache` keyed by the layer set's display version.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import mapbox_vector_tile
import numpy as np
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridmap.errors import InvalidInput, NotFound
from gridmap.geo.layers import LEVELS
from gridmap.maps.display import DisplayGeometry, shift_geometries

#: Tile coordinates run 0…TILE_EXTENT across a tile (the MVT default).
TILE_EXTENT = 4096
#: Geometry is kept this many tile units beyond the tile's edges.
TILE_BUFFER = 64
#: Highest zoom tiles are made for (the map's own highest zoom is 19).
MAX_TILE_ZOOM = 22
#: Encoded tiles kept in memory, in bytes.
TILE_CACHE_BYTES = 64 * 1024 * 1024
_EARTH = 2 * math.pi * 6378137.0  # Web Mercator world width, metres


@dataclass(frozen=True)
class TileId:
    """One tile: zoom and XYZ column/row."""

    z: int
    x: int
    y: int

    @classmethod
    def parse(cls, z: str, x: str, y: str) -> TileId:
        """A tile from URL parts: InvalidInput (400) unless whole numbers, NotFound (404) outside the pyramid."""
        values = []
        for name, raw in (("z", z), ("x", x), ("y", y)):
            if not raw.isascii() or not raw.isdigit() or len(raw) > 8:
                raise InvalidInput(
                    f"tile {name} must be a whole number ≥ 0, got {raw!r} (as in /tiles/cells/14/13388/7346.mvt)"
                )
            values.append(int(raw))
        tile = cls(*values)
        if tile.z > MAX_TILE_ZOOM:
            raise NotFound(f"no tile at zoom {tile.z}: tiles are made for zoom 0…{MAX_TILE_ZOOM}")
        last = 2 ** tile.z - 1
        if tile.x > last or tile.y > last:
            raise NotFound(f"no tile {tile.z}/{tile.x}/{tile.y}: at zoom {tile.z} x and y run 0…{last}")
        return tile

    def lonlat_bounds(self, buffer_units: float = 0) -> tuple[float, float, float, float]:
        """The tile's (minlon, minlat, maxlon, maxlat), widened by ``buffer_units`` tile units."""
        n = 2 ** self.z
        pad = buffer_units / TILE_EXTENT
        west = (self.x - pad) / n * 360 - 180
        east = (self.x + 1 + pad) / n * 360 - 180
        north = _lat_of(self.y - pad, n)
        south = _lat_of(self.y + 1 + pad, n)
        return west, south, east, north


def _lat_of(row: float, n: int) -> float:
    row = min(max(row, 0.0), float(n))
    return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))


def to_tile_units(lon: np.ndarray, lat: np.ndarray, tile: TileId) -> tuple[np.ndarray, np.ndarray]:
    """Lon/lat to the tile's coordinates: 0…TILE_EXTENT from west to east and from north to south."""
    n = 2 ** tile.z
    lat = np.clip(lat, -85.05112878, 85.05112878)
    px = (lon + 180) / 360 * n
    py = (1 - np.log(np.tan(np.radians(lat)) + 1 / np.cos(np.radians(lat))) / math.pi) / 2 * n
    return (px - tile.x) * TILE_EXTENT, (py - tile.y) * TILE_EXTENT


class AreaTiles:
    """The areas of one level for tiling: codes, names, display geometry and bounding boxes, in code order."""

    def __init__(self, display: DisplayGeometry, level: str) -> None:
        if level not in LEVELS:
            raise NotFound(f"no tile layer {level!r}; the layers are {', '.join(LEVELS)}")
        frame = display.layers.level(level).sort_values("code")
        self.level = level
        self.codes = np.asarray([str(code) for code in frame["code"]], dtype=object)
        self.names = [str(name) for name in frame["name"]]
        self.geometries = shift_geometries(np.asarray(frame.geometry.values, dtype=object), display.shift)
        self.bounds = shapely.bounds(self.geometries)

    def candidates(self, tile: TileId, prefixes: Iterable[str] | None) -> np.ndarray:
        """Positions of the areas whose bounding box meets the tile (with its buffer), inside ``prefixes``."""
        west, south, east, north = tile.lonlat_bounds(TILE_BUFFER)
        b = self.bounds
        hit = (b[:, 0] <= east) & (b[:, 2] >= west) & (b[:, 1] <= north) & (b[:, 3] >= south)
        if prefixes is not None:
            wanted = tuple(prefixes)
            hit &= np.fromiter((bool(wanted) and code.startswith(wanted) for code in self.codes),
                               dtype=bool, count=len(self.codes))
        return np.flatnonzero(hit)


def encode_python(source: AreaTiles, tile: TileId, positions: np.ndarray) -> bytes:
    """The tile encoded with shapely and ``mapbox-vector-tile``: clipped, simplified by one tile unit."""
    if len(positions) == 0:
        return b""

    def project(xy: np.ndarray) -> np.ndarray:
        x, y = to_tile_units(xy[:, 0], xy[:, 1], tile)
        return np.column_stack([x, y])

    projected = shapely.transform(source.geometries[positions], project)
    clipped = shapely.clip_by_rect(projected, -TILE_BUFFER, -TILE_BUFFER, TILE_EXTENT + TILE_BUFFER,
                                   TILE_EXTENT + TILE_BUFFER)
    simplified = shapely.simplify(clipped, 1.0, preserve_topology=True)
    # Snapped to whole tile units and wound as MVT wants (exterior clockwise on screen, y down) here,
    # in vectorised shapely, rather than feature by feature in the encoder (10× slower).
    snapped = shapely.orient_polygons(shapely.set_precision(simplified, 1.0), exterior_cw=False)
    features = []
    for position, geometry in zip(positions, snapped):
        polygons = [part for part in shapely.get_parts(geometry) if part.geom_type == "Polygon" and not part.is_empty]
        if not polygons:
            continue
        shape = polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)
        features.append({"geometry": shape, "properties": {"code": str(source.codes[position]),
                                                           "name": source.names[position]}})
    if not features:
        return b""
    return mapbox_vector_tile.encode(
        [{"name": source.level, "features": features}],
        default_options={"extents": TILE_EXTENT, "y_coord_down": True, "check_winding_order": False},
    )


_POSTGIS_TILE = text(
    """
    WITH envelope AS (SELECT ST_TileEnvelope(:z, :x, :y) AS box),
    features AS (
        SELECT a.code, a.name,
               ST_AsMVTGeom(
                   ST_SimplifyPreserveTopology(
                       ST_Transform(ST_SetSRID(ST_GeomFromGeoJSON(a.geometry), 4326), 3857), :tolerance),
                   envelope.box, :extent, :buffer, true) AS geom
        FROM areas AS a, envelope
        WHERE a.code = ANY(:codes)
    )
    SELECT ST_AsMVT(features, :layer, :extent, 'geom') FROM features WHERE geom IS NOT NULL
    """
)


def encode_postgis(session: Session, source: AreaTiles, tile: TileId, positions: np.ndarray) -> bytes:
    """The tile encoded by PostGIS (``ST_AsMVT``) from the ``areas`` table's GeoJSON."""
    if len(positions) == 0:
        return b""
    tolerance = _EARTH / 2 ** tile.z / TILE_EXTENT  # one tile unit, in metres
    result = session.execute(_POSTGIS_TILE, {
        "z": tile.z, "x": tile.x, "y": tile.y, "tolerance": tolerance, "extent": TILE_EXTENT, "buffer": TILE_BUFFER,
        "codes": [str(code) for code in source.codes[positions]], "layer": source.level,
    }).scalar()
    return bytes(result or b"")


def postgis_available(session: Session) -> bool:
    """True on PostgreSQL with the PostGIS extension (3.0 or later, for ``ST_TileEnvelope``) installed."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    version = session.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")).scalar()
    return bool(version) and int(str(version).split(".")[0]) >= 3


def decode_tile(data: bytes) -> dict[str, list[dict]]:
    """The features of an encoded tile per layer, geometry in tile units (y down), for checks and tests."""
    decoded = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})
    return {name: layer["features"] for name, layer in decoded.items()}


class TileCache:
    """Encoded tiles in memory, least recently used dropped first, bounded by their total size.

    Keys start with the layer set's display version: a tile of another layer set is never served,
    and a new version empties the cache.
    """

    def __init__(self, max_bytes: int = TILE_CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.version: str | None = None
        self._items: OrderedDict[tuple, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, version: str, key: tuple) -> bytes | None:
        """The cached tile, or None."""
        with self._lock:
            if version != self.version:
                return None
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, version: str, key: tuple, data: bytes) -> None:
        """Keep a tile, dropping the oldest while over budget; a new version empties the cache first."""
        with self._lock:
            if version != self.version:
                self._items.clear()
                self._size = 0
                self.version = version
            if key in self._items:
                self._size -= len(self._items.pop(key))
            self._items[key] = data
            self._size += len(data)
            while self._size > self.max_bytes and self._items:
                self._size -= len(self._items.popitem(last=False)[1])

    def __len__(self) -> int:
        return len(self._items)
