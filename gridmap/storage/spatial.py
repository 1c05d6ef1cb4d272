"""Spatial conditions that an index answers, the same API on SQLite and PostgreSQL/PostGIS.

On PostgreSQL, ``issues`` and ``household_locations`` carry a PostGIS ``geom`` column (Point,
SRID 4326) generated from their lon/lat, with a GiST index (migration 0008). On SQLite the same
tables have a composite index on (lat, lon). The conditions here compile per dialect:

- :func:`in_bbox` — PostgreSQL: ``geom && ST_MakeEnvelope(…)`` (GiST), SQLite: a (lat, lon) range
  (B-tree); both then compare lon/lat exactly, edges included, so the answers are identical.
- :func:`within_radius` — PostgreSQL: ``geom && ST_Expand(centre, dlon, dlat)`` (GiST) then
  ``ST_DWithin`` on geography (geodesic, WGS84); SQLite: the same box as a (lat, lon) range, then
  the geodesic distance of :func:`geodesic_m` (pyproj, also WGS84), registered as the SQL
  function ``gm_geodesic_m`` on every SQLite connection.

The geometry columns are not in the models (SQLite has none): :func:`include_object` hides them and
the dialect's own indexes from Alembic's comparison, and :data:`Geometry` lets SQLAlchemy reflect them.
Longitudes are not wrapped across ±180°.
"""

from __future__ import annotations

import math
from typing import Any

from pyproj import Geod
from sqlalchemy import Boolean, ColumnElement, Float, and_, column, func, literal
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import NullType, UserDefinedType

_GEOD = Geod(ellps="WGS84")
#: Fewest metres in one degree of latitude (at the equator, WGS84): degree margins from it are never short.
_MIN_METRES_PER_DEGREE_LAT = 110_574.0
#: Tables with a PostGIS ``geom`` column (PostgreSQL only), its geometry type, and the index on it.
GEOMETRY_COLUMNS = {
    "areas": "MultiPolygon",
    "issues": "Point",
    "household_locations": "Point",
    "visits": "Point",
    "patrol_tracks": "LineString",
}
#: Indexes of one dialect only, outside the models: GiST on PostgreSQL, (lat, lon) on SQLite.
GIST_INDEXES = {table: f"ix_{table}_geom" for table in GEOMETRY_COLUMNS}
LAT_LON_INDEXES = {"issues": "ix_issues_lat_lon", "household_locations": "ix_household_locations_lat_lon"}
SRID = 4326


class Geometry(UserDefinedType):
    """PostGIS ``geometry`` / ``geography`` as SQLAlchemy sees them when it reflects a table (read-only use)."""

    cache_ok = True

    def __init__(self, *args: Any) -> None:
        self.args = args  # reflected type modifiers, e.g. ("Point", 4326)

    def get_col_spec(self, **kw: Any) -> str:
        return "geometry"


ischema_names.setdefault("geometry", Geometry)
ischema_names.setdefault("geography", Geometry)


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic filter: leave out the geometry columns and the per-dialect spatial indexes (not in the models)."""
    if type_ == "table" and reflected and name == "spatial_ref_sys":
        return False  # PostGIS's own table
    if type_ == "column" and name == "geom" and getattr(obj, "table", None) is not None:
        return obj.table.name not in GEOMETRY_COLUMNS
    if type_ == "index" and name in set(GIST_INDEXES.values()) | set(LAT_LON_INDEXES.values()):
        return False
    return True


def geodesic_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Geodesic distance in metres on the WGS84 ellipsoid (the SQLite side of ``gm_geodesic_m``)."""
    return float(_GEOD.inv(lon1, lat1, lon2, lat2)[2])


def register_sqlite_functions(dbapi_connection: Any) -> None:
    """Give a sqlite3 connection ``gm_geodesic_m(lon1, lat1, lon2, lat2)``."""
    dbapi_connection.create_function("gm_geodesic_m", 4, geodesic_m, deterministic=True)


def degree_margins(metres: float, max_abs_lat: float) -> tuple[float, float]:
    """(dlon, dlat) in degrees that hold a circle of ``metres`` around any centre up to ``max_abs_lat``."""
    dlat = metres / _MIN_METRES_PER_DEGREE_LAT * 1.001 + 1e-9
    cosine = math.cos(math.radians(min(abs(max_abs_lat) + dlat, 90.0)))
    dlon = 360.0 if cosine < 1e-6 else min(dlat / cosine, 360.0)
    return dlon, dlat


def in_bbox(lon: Any, lat: Any, bbox: tuple[float, float, float, float]) -> ColumnElement[bool]:
    """The row's point lies in ``(west, south, east, north)``, edges included.

    ``lon``/``lat`` are the columns of a table listed in :data:`LAT_LON_INDEXES` (or of an alias of it).
    """
    west, south, east, north = (float(v) for v in bbox)
    return _InBBox(lon, lat, literal(west, Float), literal(south, Float), literal(east, Float), literal(north, Float))


def within_radius(lon: Any, lat: Any, centre_lon: Any, centre_lat: Any, metres: float, *,
                  max_abs_lat: float | None = None) -> ColumnElement[bool]:
    """The row's point lies within ``metres`` (geodesic, WGS84) of the centre, the circle's edge included.

    The centre is two numbers, or two columns of another table in the query (a join); then
    ``max_abs_lat``, the largest absolute latitude a centre may have, sizes the index's box.
    """
    if not (metres >= 0 and math.isfinite(metres)):
        raise ValueError(f"radius must be a finite number of metres ≥ 0, got {metres}")
    if max_abs_lat is None:
        if not isinstance(centre_lat, int | float):
            raise ValueError("a centre given as columns needs max_abs_lat, the largest |latitude| it may have")
        max_abs_lat = float(centre_lat)
    dlon, dlat = degree_margins(metres, max_abs_lat)
    centre = [literal(float(v), Float) if isinstance(v, int | float) else v for v in (centre_lon, centre_lat)]
    return _WithinRadius(lon, lat, *centre, literal(float(metres), Float), literal(dlon, Float), literal(dlat, Float))


# Typed NullType, not Boolean: SQLite would compare a Boolean with 1, which hides the ranges from its planner.
class _InBBox(FunctionElement[Any]):
    type = NullType()
    inherit_cache = True
    name = "gm_in_bbox"


class _WithinRadius(FunctionElement[Any]):
    type = NullType()
    inherit_cache = True
    name = "gm_within_radius"


def _exact_box(lon: Any, lat: Any, west: Any, south: Any, east: Any, north: Any) -> ColumnElement[bool]:
    return and_(lat >= south, lat <= north, lon >= west, lon <= east)


def _geom_of(lon: Any) -> Any:
    """The ``geom`` column of the table (or alias) ``lon`` belongs to."""
    return column("geom", Geometry, _selectable=lon.table)


def _point(lon: Any, lat: Any) -> Any:
    return func.ST_SetSRID(func.ST_MakePoint(lon, lat), SRID)


@compiles(_InBBox)
def _in_bbox_sqlite(element: _InBBox, compiler: Any, **kw: Any) -> str:
    return compiler.process(_exact_box(*element.clauses).self_group(), **kw)


@compiles(_InBBox, "postgresql")
def _in_bbox_postgresql(element: _InBBox, compiler: Any, **kw: Any) -> str:
    lon, lat, west, south, east, north = element.clauses
    envelope = func.ST_MakeEnvelope(west, south, east, north, SRID)
    condition = and_(_geom_of(lon).op("&&")(envelope), _exact_box(lon, lat, west, south, east, north))
    return compiler.process(condition.self_group(), **kw)


@compiles(_WithinRadius)
def _within_radius_sqlite(element: _WithinRadius, compiler: Any, **kw: Any) -> str:
    lon, lat, centre_lon, centre_lat, metres, dlon, dlat = element.clauses
    box = _exact_box(lon, lat, centre_lon - dlon, centre_lat - dlat, centre_lon + dlon, centre_lat + dlat)
    distance = func.gm_geodesic_m(lon, lat, centre_lon, centre_lat, type_=Float)
    return compiler.process(and_(box, distance <= metres).self_group(), **kw)


@compiles(_WithinRadius, "postgresql")
def _within_radius_postgresql(element: _WithinRadius, compiler: Any, **kw: Any) -> str:
    lon, lat, centre_lon, centre_lat, metres, dlon, dlat = element.clauses
    geom, centre = _geom_of(lon), _point(centre_lon, centre_lat)
    near = geom.op("&&")(func.ST_Expand(centre, dlon, dlat))
    exact = func.ST_DWithin(func.geography(geom), func.geography(centre), metres, type_=Boolean)
    return compiler.process(and_(near, exact).self_group(), **kw)
