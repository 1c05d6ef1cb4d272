"""Bbox and radius queries: the same answers on SQLite and PostgreSQL, answered by a spatial index.

On PostgreSQL every geometry column (areas, issues, household locations, visits, patrol tracks)
follows the lon/lat and GeoJSON columns on every write path, and EXPLAIN shows the GiST index;
on SQLite the composite (lat, lon) index answers the same conditions.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from pyproj import Geod
from sqlalchemy import ClauseElement, Executable, MetaData, Table, insert, inspect, select, text, update
from sqlalchemy.ext.compiler import compiles

from conftest import BACKEND
from gridmap.errors import GridmapError
from gridmap.geo.layers import read_layer_set
from gridmap.issues.duplicates import candidate_query
from gridmap.issues.params import bbox_conditions
from gridmap.ops.backup import backup_database, restore_database
from gridmap.storage import Database
from gridmap.storage.coverage import Household, HouseholdLocation, PatrolTrack, Visit
from gridmap.storage.models import Issue
from gridmap.storage.spatial import within_radius
from helpers import cell_point

GEOD = Geod(ellps="WGS84")
T0 = datetime(2025, 6, 2, 1, 30, tzinfo=UTC)
CELL = "460204001001006"
#: An index scan or bitmap index scan on the GiST index of issues.geom, in PostgreSQL's EXPLAIN.
GIST_SCAN = re.compile(r"Index Scan (on|using) ix_issues_geom")


class Explain(Executable, ClauseElement):
    """``EXPLAIN`` (PostgreSQL) or ``EXPLAIN QUERY PLAN`` (SQLite) of a statement, with its parameters."""

    inherit_cache = False

    def __init__(self, statement: Any) -> None:
        self.statement = statement


@compiles(Explain)
def _explain_sqlite(element: Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN QUERY PLAN " + compiler.process(element.statement, **kw)


@compiles(Explain, "postgresql")
def _explain_postgresql(element: Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN " + compiler.process(element.statement, **kw)


def plan(session, statement) -> str:
    rows = session.execute(Explain(statement)).all()
    return "\n".join(str(row[-1]) for row in rows)


@pytest.fixture
def origin(mini_geodata) -> tuple[float, float]:
    return cell_point(mini_geodata, CELL)


def moved(point: tuple[float, float], bearing: float, metres: float) -> tuple[float, float]:
    lon, lat, _ = GEOD.fwd(point[0], point[1], bearing, metres)
    return lon, lat


def issue_row(lon: float, lat: float, *, category: str = "E0102", reported_at: datetime = T0) -> dict[str, Any]:
    """Every column an issue needs, for a Core insert (the cell codes need not match the point)."""
    return {"category": category, "description": "暴露垃圾", "source": "web", "lon": lon, "lat": lat,
            "cell_code": CELL, "community_code": CELL[:12], "street_code": CELL[:9], "district_code": CELL[:6],
            "urgency": "normal", "status": "reported", "reported_at": reported_at, "created_at": reported_at}


def store(db: Database, points: list[tuple[float, float]], **fields: Any) -> list[int]:
    """Core bulk insert of issues at ``points``; their ids in the same order."""
    with db.session() as session:
        first = session.scalar(select(Issue.id).order_by(Issue.id.desc()).limit(1)) or 0
        rows = [{"id": first + 1 + k, **issue_row(lon, lat, **fields)} for k, (lon, lat) in enumerate(points)]
        session.execute(insert(Issue.__table__), rows)
    return [row["id"] for row in rows]


def ids_where(db: Database, *conditions) -> set[int]:
    with db.sessions() as session:
        return set(session.scalars(select(Issue.id).where(*conditions)))


# --- identical answers ----------------------------------------------------------------------------


def test_a_bbox_keeps_points_on_its_edges_and_drops_points_just_outside(gm, origin):
    west, south, east, north = origin[0] - 0.002, origin[1] - 0.001, origin[0] + 0.002, origin[1] + 0.001
    tiny = 1e-9  # about 0.1 mm
    inside = [origin, (west, origin[1]), (east, origin[1]), (origin[0], south), (origin[0], north),
              (west, south), (east, north), (west + tiny, north - tiny)]
    outside = [(west - tiny, origin[1]), (east + tiny, origin[1]), (origin[0], south - tiny),
               (origin[0], north + tiny), (east + tiny, north + tiny), (origin[0] + 0.01, origin[1])]
    ids = store(gm.db, inside + outside)
    assert ids_where(gm.db, *bbox_conditions((west, south, east, north))) == set(ids[:len(inside)])
    point_box = (origin[0], origin[1], origin[0], origin[1])  # equal ends: a point
    assert ids_where(gm.db, *bbox_conditions(point_box)) == {ids[0]}


def test_the_ogc_and_issues_apis_filter_by_bbox(gm, client, origin):
    near, far = store(gm.db, [origin, moved(origin, 90, 500)])
    bbox = f"{origin[0] - 0.001},{origin[1] - 0.001},{origin[0] + 0.001},{origin[1] + 0.001}"
    features = client.get(f"/ogc/collections/issues/items?bbox={bbox}&f=json").json["features"]
    assert [feature["id"] for feature in features] == [near]
    listed = client.get(f"/api/v1/issues?bbox={bbox}").json
    assert [issue["id"] for issue in listed["issues"]] == [near]


@pytest.mark.parametrize("radius", [50.0, 1000.0])
def test_a_radius_keeps_points_up_to_the_distance_and_drops_those_beyond(gm, origin, radius):
    bearings = (0, 45, 90, 135, 180, 270)
    just_in = [moved(origin, bearing, radius - 0.1) for bearing in bearings]
    just_out = [moved(origin, bearing, radius + 0.1) for bearing in bearings]
    ids = store(gm.db, [origin, *just_in, *just_out])
    found = ids_where(gm.db, within_radius(Issue.lon, Issue.lat, origin[0], origin[1], radius))
    assert found == set(ids[:1 + len(just_in)])
    assert ids_where(gm.db, within_radius(Issue.lon, Issue.lat, origin[0], origin[1], 0)) == {ids[0]}


@pytest.mark.parametrize("metres, flagged", [(49.9, True), (50.1, False)])
def test_the_50_metre_duplicate_rule_at_its_edge(gm, origin, metres, flagged):
    first = gm.intake.create(gm.db, {"lon": origin[0], "lat": origin[1], "category": "E0102", "description": "x",
                                     "reported_at": T0})
    north = moved(origin, 0, metres)  # along the meridian
    second = gm.intake.create(gm.db, {"lon": north[0], "lat": north[1], "category": "E0102", "description": "x",
                                      "reported_at": T0 + timedelta(hours=1)})
    assert second.possible_duplicate_of == (first.id if flagged else None)


# --- the index answers --------------------------------------------------------------------------


def test_bbox_radius_and_duplicate_queries_are_answered_by_the_spatial_index(gm, origin):
    grid = [(origin[0] + 0.0004 * i, origin[1] + 0.0004 * j) for i in range(-30, 30) for j in range(-30, 30)]
    store(gm.db, grid)  # 3,600 issues of one category on one day, 40 m apart: only the place tells them apart
    with gm.db.sessions() as session:
        session.execute(text("ANALYZE issues"))
        new = session.execute(select(Issue.id, Issue.category, Issue.lon, Issue.lat, Issue.reported_at)
                              .order_by(Issue.id.desc()).limit(20)).all()
        queries = {
            "bbox": select(Issue.id).where(
                *bbox_conditions((origin[0], origin[1], origin[0] + 0.001, origin[1] + 0.001))
            ),
            "radius": select(Issue.id).where(within_radius(Issue.lon, Issue.lat, origin[0], origin[1], 50)),
            "duplicates": candidate_query(new, timedelta(hours=24), 50),
        }
        if BACKEND == "postgresql":
            for name, query in queries.items():  # with the statistics of ANALYZE
                assert GIST_SCAN.search(plan(session, query)), f"{name}: {plan(session, query)}"
            session.execute(text("SET enable_seqscan = off"))  # and whatever the statistics
            for name, query in queries.items():
                assert GIST_SCAN.search(plan(session, query)), f"{name}: {plan(session, query)}"
        else:
            for name in ("bbox", "radius"):
                found = re.search(r"SEARCH issues USING (COVERING )?INDEX ix_issues_lat_lon \(lat>\? AND lat<\?\)",
                                  plan(session, queries[name]))
                assert found, f"{name}: {plan(session, queries[name])}"
            # The pairs of the duplicate check: the (lat, lon) range or the time window, whichever the planner
            # finds narrower (a district's 24 hours can be), never a full scan.
            found = re.search(r"SEARCH other USING INDEX ix_issues_(lat_lon \(lat|reported_at \(reported_at)>\? AND",
                              plan(session, queries["duplicates"]))
            assert found, plan(session, queries["duplicates"])


# --- geometry columns follow the other columns ----------------------------------------------------


def geometry_mismatches(db: Database) -> list[Any]:
    """Rows whose geometry column differs from their lon/lat, GeoJSON or points (PostgreSQL)."""
    checks = [
        "SELECT 'issue', id FROM issues WHERE geom IS NULL OR ST_SRID(geom) <> 4326 "
        "OR ST_X(geom) <> lon OR ST_Y(geom) <> lat",
        "SELECT 'location', id FROM household_locations WHERE geom IS NULL OR ST_X(geom) <> lon OR ST_Y(geom) <> lat",
        "SELECT 'area', 0 FROM areas WHERE geom IS NULL OR GeometryType(geom) <> 'MULTIPOLYGON' "
        "OR NOT ST_Equals(geom, ST_GeomFromGeoJSON(geometry))",
        "SELECT 'visit', v.id FROM visits v JOIN household_locations l ON l.household_id = v.household_id "
        "AND l.valid_from <= v.visited_on AND (l.valid_to IS NULL OR l.valid_to > v.visited_on) "
        "WHERE v.geom IS NULL OR NOT ST_Equals(v.geom, l.geom)",
        "SELECT 'track', id FROM patrol_tracks WHERE (json_array_length(points) >= 2) <> (geom IS NOT NULL) "
        "OR ST_NPoints(geom) <> json_array_length(points) "
        "OR ST_X(ST_StartPoint(geom)) <> (points -> 0 ->> 0)::float8",
    ]
    with db.engine.connect() as connection:
        return [row for check in checks for row in connection.execute(text(check)).all()]


def add_household_history(db: Database, origin: tuple[float, float]) -> None:
    """A household that moved on 1 June 2025 (a visit before, one after), and two patrol tracks."""
    moved_to = moved(origin, 90, 300)
    now = T0
    with db.session() as session:
        household = Household(kind="ordinary", members=3, created_at=now, updated_at=now)
        session.add(household)
        session.flush()
        codes = {"cell_code": CELL, "community_code": CELL[:12], "street_code": CELL[:9], "district_code": CELL[:6]}
        session.add(HouseholdLocation(household_id=household.id, valid_from=date(2025, 1, 1), address="春园路 1 号",
                                      lon=origin[0], lat=origin[1], located_by="point", **codes))
        session.flush()
        for day in (date(2025, 3, 1), date(2025, 7, 1)):  # the July visit is written before the move
            at = datetime(day.year, day.month, day.day, 2, tzinfo=UTC)
            session.add(Visit(household_id=household.id, visitor="李网格", visited_at=at, visited_on=day,
                              cell_code=CELL, source="api", created_at=now))
        session.flush()
        session.execute(update(HouseholdLocation).where(HouseholdLocation.household_id == household.id)
                        .values(valid_to=date(2025, 6, 1)))
        session.add(HouseholdLocation(household_id=household.id, valid_from=date(2025, 6, 1), address="春园路 9 号",
                                      lon=moved_to[0], lat=moved_to[1], located_by="point", **codes))
        track = [[origin[0], origin[1], 1748829600], [moved_to[0], moved_to[1], 1748829900],
                 [moved_to[0], moved_to[1] + 0.001, 1748830200]]
        for worker, points in (("李网格", track), ("王网格", track[:1])):
            session.add(PatrolTrack(worker=worker, day=date(2025, 6, 2), started_at=now, ended_at=now, points=points,
                                    point_count=len(points), outside_points=0, length_m=0.0, outside_length_m=0.0,
                                    outside_seconds=0.0, created_at=now))


def test_geometry_columns_follow_every_write_path(gm, origin):
    gm.intake.create(gm.db, {"lon": origin[0], "lat": origin[1], "category": "E0102", "description": "x",
                             "reported_at": T0})
    bulk = store(gm.db, [moved(origin, 45, 20 * k) for k in range(1, 6)])
    with gm.db.session() as session:
        session.execute(update(Issue).where(Issue.id == bulk[0]).values(lon=origin[0] + 0.001, lat=origin[1] - 0.001))
        session.get(Issue, bulk[1]).lat = origin[1] + 0.002  # through the ORM
    add_household_history(gm.db, origin)
    with gm.db.engine.connect() as connection:
        columns = {table: {c["name"] for c in inspect(connection).get_columns(table)}
                   for table in ("areas", "issues", "household_locations", "visits", "patrol_tracks")}
    if BACKEND == "postgresql":
        assert all("geom" in names for names in columns.values())
        assert geometry_mismatches(gm.db) == []
    else:
        assert not any("geom" in names for names in columns.values())  # SQLite has lon/lat and GeoJSON only
    moved_issue = ids_where(gm.db, within_radius(Issue.lon, Issue.lat, origin[0] + 0.001, origin[1] - 0.001, 1))
    assert moved_issue == {bulk[0]}


def test_the_migration_fills_the_geometry_of_existing_rows(request, database_url, mini_geodata, origin):
    if BACKEND == "postgresql":  # a database without PostGIS: the migration creates the extension
        server = request.getfixturevalue("pg_server")
        name = "t_" + uuid.uuid4().hex[:12]
        database_url = server.create_database(name)
        request.addfinalizer(lambda: server.drop_database(name))
    db = Database(database_url)
    try:
        config = db._alembic_config()
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0005")
        db.load_layer_set(read_layer_set(mini_geodata)[0])
        with db.engine.begin() as connection:  # the issues table as revision 0005 has it
            issues_0005 = Table("issues", MetaData(), autoload_with=connection)
            points = [origin, moved(origin, 0, 49.9), moved(origin, 0, 50.1)]
            ids = [1, 2, 3]
            connection.execute(insert(issues_0005), [
                {**issue_row(lon, lat, reported_at=T0.replace(tzinfo=None)), "id": i, "photos": [], "extra": {},
                 "rework_count": 0} for i, (lon, lat) in zip(ids, points)])
        add_household_history(db, origin)
        db.migrate()
        assert ids_where(db, within_radius(Issue.lon, Issue.lat, origin[0], origin[1], 50)) == set(ids[:2])
        if BACKEND == "postgresql":
            assert geometry_mismatches(db) == []
    finally:
        db.dispose()


def test_backups_carry_no_geometry_and_restores_regenerate_it(request, gm, origin, tmp_path):
    ids = store(gm.db, [origin, moved(origin, 180, 49.9), moved(origin, 180, 50.1)])
    add_household_history(gm.db, origin)
    report = backup_database(gm.db, tmp_path / "backup.sqlite3")
    backup = Database(f"sqlite:///{report.path}")
    try:
        with backup.engine.connect() as connection:
            assert not any(c["name"] == "geom" for table in ("issues", "areas", "visits", "patrol_tracks")
                           for c in inspect(connection).get_columns(table))
    finally:
        backup.dispose()
    targets = [f"sqlite:///{tmp_path / 'restored.sqlite3'}"]
    if BACKEND == "postgresql":
        server = request.getfixturevalue("pg_server")
        name = "t_" + uuid.uuid4().hex[:12]
        targets.append(server.create_database(name))
        request.addfinalizer(lambda: server.drop_database(name))
    for url in targets:
        restored = Database(url)
        try:
            restore_database(restored, report.path)
            assert ids_where(restored, within_radius(Issue.lon, Issue.lat, origin[0], origin[1], 50)) == set(ids[:2])
            if url.startswith("postgresql"):
                assert geometry_mismatches(restored) == []
        finally:
            restored.dispose()


def test_init_says_who_must_create_postgis_when_the_user_may_not(pg_server):
    """Runs on both test backends: it needs a PostgreSQL user without the right to create PostGIS."""
    suffix = uuid.uuid4().hex[:8]
    role, name = f"app_{suffix}", f"t_{suffix}"
    with pg_server.connect("postgres") as connection:
        connection.execute(f'CREATE ROLE "{role}" LOGIN')
        connection.execute(f'CREATE DATABASE "{name}" OWNER "{role}"')
    db = Database(f"postgresql+psycopg://{role}@{pg_server.host}:{pg_server.port}/{name}")
    try:
        with pytest.raises(GridmapError, match=f"as a superuser run `CREATE EXTENSION postgis;` in database {name}"):
            db.migrate()
        assert db.pending_migrations()  # nothing half-done: the whole upgrade rolled back
        with db.engine.connect() as connection:
            assert not inspect(connection).get_table_names()
    finally:
        db.dispose()
        pg_server.drop_database(name)
        with pg_server.connect("postgres") as connection:
            connection.execute(f'DROP ROLE "{role}"')
