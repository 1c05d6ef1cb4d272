"""Map layers under /api/v1/maps: cacheable, gzip-compressed display geometry and map data.

- ``GET /api/v1/maps/areas/<level>?within=CODE[,CODE…]&v=VERSION`` — display geometry of one
  level (see :mod:`gridmap.maps.display`). With ``v`` equal to the layer set's version the answer
  is immutable (cached for a year); without it, it is revalidated by ETag.
- ``GET /api/v1/maps/data?area=&metric=&category=&status=&source=&from=&to=[&level=][&heat=0]``
  — figures, metric value and class per area, summary, legend, children, heat points.
- ``GET /api/v1/maps/issues?bbox=minlon,minlat,maxlon,maxlat&…filters`` — issues in view (markers).
- ``GET /api/v1/maps/coverage?area=&from=&to=[&level=]`` — visit and patrol coverage per area, when present.
- ``GET /api/v1/maps/tiles/<level>/<z>/<x>/<y>.mvt?within=CODE[,CODE…]&v=VERSION`` — a Mapbox Vector
  Tile of one level's areas (see :mod:`gridmap.maps.vector_tiles`), only those in the caller's scope.

Every answer has an ETag (304 on If-None-Match) and is gzip-compressed when the client accepts it.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections import OrderedDict

from flask import Blueprint, Response, current_app, request
from flask_babel import gettext

from gridmap.geo.layers import LEVELS
from gridmap.issues.params import parse_choice, parse_integer
from gridmap.maps import coverage_layer
from gridmap.maps.data import MARKER_LIMIT, MAX_MARKERS, issue_markers, map_data, view_bbox
from gridmap.maps.overview import dumps
from gridmap.maps.service import MapService
from gridmap.maps.vector_tiles import TileId
from gridmap.web.api import core
from gridmap.web.auth import requires, scope

blueprint = Blueprint("maps_api", __name__)

#: Compressed answers kept in memory, newest last (geometry is asked for again and again).
GZIP_CACHE_ENTRIES = 64
GZIP_MIN_BYTES = 1024
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
#: Tiles depend on the caller's scope: browsers may keep them, shared caches may not.
TILE_IMMUTABLE = "private, max-age=31536000, immutable"
TILE_REVALIDATE = "private, no-cache"
MVT_MIMETYPE = "application/vnd.mapbox-vector-tile"


def map_service() -> MapService:
    """The app's MapService, built on first use."""
    extensions = current_app.extensions
    service = extensions.get("gridmap.maps")
    if service is None:
        gm = core()
        service = extensions.setdefault("gridmap.maps", MapService(
            layers=gm.areas.layers, settings=gm.settings, categories=gm.categories, timezone=gm.timezone, db=gm.db))
    return service


class _GzipCache:
    def __init__(self, entries: int) -> None:
        self.entries = entries
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, etag: str, body: bytes) -> bytes:
        with self._lock:
            if etag in self._items:
                self._items.move_to_end(etag)
                return self._items[etag]
        compressed = gzip.compress(body, compresslevel=6, mtime=0)
        with self._lock:
            self._items[etag] = compressed
            while len(self._items) > self.entries:
                self._items.popitem(last=False)
        return compressed


def _gzip_cache() -> _GzipCache:
    return current_app.extensions.setdefault("gridmap.maps.gzip", _GzipCache(GZIP_CACHE_ENTRIES))


def cached_json(body: str | bytes, *, etag: str | None = None, cache_control: str = REVALIDATE) -> Response:
    """A JSON response with an ETag (304 when the client has it), gzip-compressed when accepted."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    etag = etag or hashlib.sha1(raw).hexdigest()[:20]
    compress = len(raw) >= GZIP_MIN_BYTES and "gzip" in request.headers.get("Accept-Encoding", "").lower()
    variant = f"{etag}.gz" if compress else etag
    if request.if_none_match.contains(variant) or request.if_none_match.contains(etag):
        response = Response(status=304)
    else:
        response = Response(_gzip_cache().get(etag, raw) if compress else raw, mimetype="application/json")
        if compress:
            response.headers["Content-Encoding"] = "gzip"
    response.set_etag(variant)
    response.headers["Cache-Control"] = cache_control
    response.vary.add("Accept-Encoding")
    return response


@blueprint.get("/maps/areas/<level>")
@requires("aggregates:read")
def area_geometry(level: str):
    """Display geometry of one level, optionally only inside some areas."""
    parse_choice(level, LEVELS, "level", level)
    service = map_service()
    within = request.args.get("within")
    prefixes = service.scope(within, access=scope(), default_all=False).codes if within else None
    geometry = service.geometry
    version = geometry.version
    etag = hashlib.sha1(f"{version} {level} {','.join(prefixes or ())}".encode()).hexdigest()[:20]
    cache_control = IMMUTABLE if request.args.get("v") == version else REVALIDATE
    return cached_json(geometry.payload(level, prefixes), etag=etag, cache_control=cache_control)


@blueprint.get("/maps/data")
@requires("aggregates:read")
def data():
    """Figures, classes, legend, children and heat points of one map view."""
    service = map_service()
    area_scope = service.scope(request.args.get("area"), access=scope())
    query = service.query(request.args, area_scope, access=scope(), level=_level_arg())
    heat = request.args.get("heat", "1") not in ("0", "false", "no")
    with service.db.sessions() as session:
        households = (coverage_layer.households_per_area(session, service.settings, query.issue_filter)
                      if query.metric == "per_100_households" else None)
        result = map_data(session, service.catalogue, query, households=households, heat=heat,
                          shift=service.shift, translate=gettext)
    return cached_json(dumps(result))


def _level_arg() -> str | None:
    """The ``level`` parameter (the level the page draws), None when absent."""
    level = request.args.get("level") or None
    return None if level is None else parse_choice(level, LEVELS, "level", level)


@blueprint.get("/maps/issues")
@requires("issues:read")
def issues():
    """The newest issues in a box that the filter selects, for markers (at most ``limit``, ≤ 2000)."""
    service = map_service()
    area_scope = service.scope(request.args.get("area"), access=scope())
    query = service.query(request.args, area_scope, access=scope())
    bbox = view_bbox(request.args.get("bbox"), service.shift)
    limit = parse_integer(request.args.get("limit"), "limit", MARKER_LIMIT, 1, MAX_MARKERS)
    with service.db.sessions() as session:
        result = issue_markers(session, query.issue_filter, bbox, limit=limit, shift=service.shift)
    return cached_json(dumps(result))


@blueprint.get("/maps/coverage")
@requires("coverage:read")
def coverage():
    """Visit and patrol coverage per area of the map's level inside the areas, or why there is none."""
    service = map_service()
    area_scope = service.scope(request.args.get("area"), access=scope())
    query = service.query(request.args, area_scope, access=scope(), level=_level_arg())
    with service.db.sessions() as session:
        result = coverage_layer.coverage_by_area(session, service.settings, query.issue_filter, query.level,
                                                 translate=gettext)
    return cached_json(dumps(result))


@blueprint.get("/maps/tiles/<level>/<z>/<x>/<y>.mvt")
@requires("aggregates:read")
def vector_tile(level: str, z: str, x: str, y: str):
    """A Mapbox Vector Tile of one level's areas inside ``within`` and the caller's scope."""
    parse_choice(level, LEVELS, "level", level)
    tile = TileId.parse(z, x, y)
    service = map_service()
    access = scope()
    within = request.args.get("within")
    prefixes = service.scope(within, access=access, default_all=False).codes if within or access.areas is not None \
        else None
    version = service.geometry.version
    etag = hashlib.sha1(f"{version} {level} {tile.z}/{tile.x}/{tile.y} {','.join(prefixes or ())}".encode()
                        ).hexdigest()[:20]
    cache_control = TILE_IMMUTABLE if request.args.get("v") == version else TILE_REVALIDATE
    if request.if_none_match.contains(etag):
        response = Response(status=304)
    else:
        raw = service.vector_tile(level, tile, prefixes)
        compress = len(raw) >= GZIP_MIN_BYTES and "gzip" in request.headers.get("Accept-Encoding", "").lower()
        response = Response(gzip.compress(raw, compresslevel=6, mtime=0) if compress else raw, mimetype=MVT_MIMETYPE)
        if compress:
            response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    response.set_etag(etag)
    response.headers["Cache-Control"] = cache_control
    return response
