"""The map side of a configured gridmap: area catalogue, display geometry, basemap, limits.

Built once per application from the parts of the configured core it draws on (the layer set,
settings, categories, time zone and database) and kept; the display encoding of a layer set is
computed on first use. Knows no web framework.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import numpy as np

from gridmap.errors import Forbidden
from gridmap.geo.layers import LayerSet
from gridmap.issues.categories import CategoryTree
from gridmap.maps.data import MapQuery, level_for
from gridmap.maps.display import DisplayGeometry, shift_points
from gridmap.maps.filters import parse_map_filter, parse_metric
from gridmap.maps.scope import AreaCatalogue, AreaScope
from gridmap.maps.tiles import TileSource, display_shift, tile_sources
from gridmap.maps.vector_tiles import AreaTiles, TileCache, TileId, encode_postgis, encode_python, postgis_available
from gridmap.security.access import AccessScope
from gridmap.storage.db import Database

#: Up to this many features a page embeds its geometry and data; above, the browser fetches them.
EMBED_MAX_FEATURES = 2000


class MapService:
    """Everything the map pages and endpoints share for one Gridmap."""

    def __init__(self, *, layers: LayerSet, settings: Mapping[str, Any], categories: CategoryTree, timezone: str,
                 db: Database, embed_max_features: int = EMBED_MAX_FEATURES) -> None:
        self.layers = layers
        self.settings = settings
        self.categories = categories
        self.timezone = timezone
        self.db = db
        self.embed_max_features = embed_max_features
        self.tile_cache = TileCache()
        self._tile_sources: dict[str, AreaTiles] = {}
        self._tile_lock = threading.Lock()
        self._encoder: str | None = None

    @cached_property
    def catalogue(self) -> AreaCatalogue:
        return AreaCatalogue(self.layers)

    @cached_property
    def tiles(self) -> list[TileSource]:
        """The basemap layers of the ``tiles`` setting (checked on first use)."""
        return tile_sources(self.settings.get("tiles"), self.settings.get("tianditu_key"))

    @property
    def shift(self) -> str:
        """``gcj02`` when overlays are drawn on AMap tiles, else ``none``."""
        return display_shift(self.settings.get("tiles"))

    @cached_property
    def geometry(self) -> DisplayGeometry:
        return DisplayGeometry(self.layers, self.shift)

    @property
    def max_cells(self) -> int:
        """Above this many cells (vector tiles off) a view colours by community until you drill down."""
        return self.settings["map_max_cells"]

    @property
    def tile_cells(self) -> int:
        """Above this many cells a view draws them from vector tiles; 0: never."""
        return self.settings["map_tile_cells"]

    def uses_tiles(self, cells: int) -> bool:
        """Whether a choropleth of ``cells`` cells is drawn from vector tiles."""
        return 0 < self.tile_cells < cells

    @property
    def tile_encoder(self) -> str:
        """``postgis`` (ST_AsMVT) on PostgreSQL with PostGIS and unshifted overlays, else ``python``."""
        if self._encoder is None:
            with self.db.sessions() as session:
                usable = self.shift == "none" and postgis_available(session)
            self._encoder = "postgis" if usable else "python"
        return self._encoder

    def vector_tile(self, level: str, tile: TileId, prefixes: tuple[str, ...] | None) -> bytes:
        """The encoded tile of ``level``'s areas inside ``prefixes`` (None: all), from the cache when there."""
        version = self.geometry.version
        key = (level, tile.z, tile.x, tile.y, prefixes)
        data = self.tile_cache.get(version, key)
        if data is not None:
            return data
        with self._tile_lock:
            source = self._tile_sources.get(level)
            if source is None:
                source = self._tile_sources.setdefault(level, AreaTiles(self.geometry, level))
        positions = source.candidates(tile, prefixes)
        if self.tile_encoder == "postgis":
            with self.db.sessions() as session:
                data = encode_postgis(session, source, tile, positions)
        else:
            data = encode_python(source, tile, positions)
        self.tile_cache.put(version, key, data)
        return data

    def scope(self, text: str | None, *, access: AccessScope, default_all: bool = True) -> AreaScope:
        """The areas named by an ``area`` parameter, which must lie in ``access``.

        When empty: the principal's own areas, else all districts (``default_all``) or InvalidInput.
        """
        if not (text or "").strip() and access.areas is not None:
            return AreaScope.of(access.areas)
        scope = AreaScope.parse(text, self.catalogue, default_all=default_all)
        outside = [code for code in scope.codes if not access.covers_cell(code)]
        if outside:
            raise Forbidden(f"area {', '.join(outside)} is outside your areas ({', '.join(access.areas or ())})")
        return scope

    def query(self, args: Mapping[str, str], scope: AreaScope, *, access: AccessScope, default_metric: str = "total",
              level: str | None = None) -> MapQuery:
        """The map query of a URL's parameters inside ``scope``, counting only the rows ``access`` allows."""
        metric = parse_metric(args.get("metric"), default_metric)
        issue_filter = parse_map_filter(args, categories=self.categories, timezone_name=self.timezone, scope=scope,
                                        access=access)
        if level is None:
            level = level_for(self.catalogue, scope, self.max_cells, tile_cells=self.tile_cells)
        return MapQuery(scope=scope, level=level, metric=metric, issue_filter=issue_filter)

    def display_bounds(self, scope: AreaScope) -> tuple[float, float, float, float]:
        """The bounds of the scope in display coordinates (shifted like the overlays)."""
        minx, miny, maxx, maxy = scope.bounds(self.catalogue)
        lon, lat = shift_points(np.array([minx, maxx]), np.array([miny, maxy]), self.shift)
        return float(lon[0]), float(lat[0]), float(lon[1]), float(lat[1])

    def feature_count(self, query: MapQuery) -> int:
        """How many choropleth features a view draws."""
        return len(query.scope.inside(self.catalogue, query.level))
