"""postgis: geometry columns with GiST indexes on PostgreSQL, (lat, lon) indexes on SQLite

On PostgreSQL (PostGIS, SRID 4326): ``areas.geom`` MultiPolygon from the GeoJSON text,
``issues.geom`` and ``household_locations.geom`` Points from lon/lat, ``patrol_tracks.geom`` a
LineString from the JSON points (NULL below two points) — all generated columns, so every writer
(ORM, Core bulk insert, COPY, restore) fills them without knowing; ``visits.geom`` is the point of
the household's location on the visit's day, kept by triggers on visits and household_locations.
Each has a GiST index. On SQLite: composite (lat, lon) indexes on issues and household_locations.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""
from alembic import op

from gridmap.errors import GridmapError

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_POINT_FROM_LON_LAT = "ST_SetSRID(ST_MakePoint(lon, lat), 4326)"

_POSTGRESQL_UP = [
    f"ALTER TABLE issues ADD COLUMN geom geometry(Point, 4326) GENERATED ALWAYS AS ({_POINT_FROM_LON_LAT}) STORED",
    f"ALTER TABLE household_locations ADD COLUMN geom geometry(Point, 4326) "
    f"GENERATED ALWAYS AS ({_POINT_FROM_LON_LAT}) STORED",
    "ALTER TABLE areas ADD COLUMN geom geometry(MultiPolygon, 4326) "
    "GENERATED ALWAYS AS (ST_Multi(ST_SetSRID(ST_GeomFromGeoJSON(geometry), 4326))) STORED",
    # Immutable: the line depends on the points alone, so it may feed a generated column. Its search_path
    # is fixed: pg_restore fills generated columns with an empty one, where PostGIS's functions are not found.
    """CREATE FUNCTION gridmap_track_line(points json) RETURNS geometry LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path FROM CURRENT AS $$
        SELECT CASE WHEN count(*) >= 2 THEN
            ST_SetSRID(ST_MakeLine(ST_MakePoint((p ->> 0)::float8, (p ->> 1)::float8) ORDER BY n), 4326) END
        FROM json_array_elements(points) WITH ORDINALITY AS t(p, n)
    $$""",
    "ALTER TABLE patrol_tracks ADD COLUMN geom geometry(LineString, 4326) "
    "GENERATED ALWAYS AS (gridmap_track_line(points)) STORED",
    "ALTER TABLE visits ADD COLUMN geom geometry(Point, 4326)",
    """CREATE FUNCTION gridmap_visit_point(household integer, day date) RETURNS geometry LANGUAGE sql STABLE
    SET search_path FROM CURRENT AS $$
        SELECT geom FROM household_locations
        WHERE household_id = household AND valid_from <= day AND (valid_to IS NULL OR valid_to > day)
        ORDER BY valid_from DESC LIMIT 1
    $$""",
    """CREATE FUNCTION gridmap_visits_geom() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.geom := gridmap_visit_point(NEW.household_id, NEW.visited_on);
        RETURN NEW;
    END $$""",
    "CREATE TRIGGER visits_geom BEFORE INSERT OR UPDATE ON visits FOR EACH ROW EXECUTE FUNCTION gridmap_visits_geom()",
    # A location written after its visits (a restore, a corrected history) moves them too.
    """CREATE FUNCTION gridmap_household_locations_visits() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE visits SET geom = gridmap_visit_point(household_id, visited_on)
        WHERE household_id = NEW.household_id
          AND geom IS DISTINCT FROM gridmap_visit_point(household_id, visited_on);
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER household_locations_visits AFTER INSERT OR UPDATE ON household_locations "
    "FOR EACH ROW EXECUTE FUNCTION gridmap_household_locations_visits()",
    "UPDATE visits SET geom = gridmap_visit_point(household_id, visited_on)",
    *(f"CREATE INDEX ix_{table}_geom ON {table} USING gist (geom)"
      for table in ("areas", "issues", "household_locations", "visits", "patrol_tracks")),
]

_POSTGRESQL_DOWN = [
    "DROP TRIGGER IF EXISTS household_locations_visits ON household_locations",
    "DROP TRIGGER IF EXISTS visits_geom ON visits",
    *(f"ALTER TABLE {table} DROP COLUMN IF EXISTS geom"
      for table in ("areas", "issues", "household_locations", "visits", "patrol_tracks")),
    "DROP FUNCTION IF EXISTS gridmap_household_locations_visits()",
    "DROP FUNCTION IF EXISTS gridmap_visits_geom()",
    "DROP FUNCTION IF EXISTS gridmap_visit_point(integer, date)",
    "DROP FUNCTION IF EXISTS gridmap_track_line(json)",
]


def _require_postgis() -> None:
    """CREATE EXTENSION postgis unless present; a GridmapError saying what to do when it cannot."""
    bind = op.get_bind()
    if bind.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'postgis'").first():
        return
    database = bind.exec_driver_sql("SELECT current_database()").scalar()
    if not bind.exec_driver_sql("SELECT 1 FROM pg_available_extensions WHERE name = 'postgis'").first():
        raise GridmapError("PostGIS is not installed on the database server: install it there (Debian: "
                           "apt-get install postgresql-15-postgis-3), then run `gridmap init` again")
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS postgis")
    except Exception as exc:  # noqa: BLE001  (no privilege: say who can do it)
        raise GridmapError(f"cannot create the PostGIS extension ({str(exc).splitlines()[0]}): as a superuser "
                           f"run `CREATE EXTENSION postgis;` in database {database}, "
                           "then `gridmap init` again") from None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _require_postgis()
        for statement in _POSTGRESQL_UP:
            op.execute(statement)
        return
    op.create_index("ix_issues_lat_lon", "issues", ["lat", "lon"])
    op.create_index("ix_household_locations_lat_lon", "household_locations", ["lat", "lon"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in _POSTGRESQL_DOWN:
            op.execute(statement)
        return
    op.drop_index("ix_household_locations_lat_lon", table_name="household_locations")
    op.drop_index("ix_issues_lat_lon", table_name="issues")
