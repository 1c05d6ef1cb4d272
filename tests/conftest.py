"""Shared fixtures: a small synthetic district, a database per test, the app and its client.

The suite runs on SQLite by default; ``GRIDMAP_TEST_DATABASE=postgresql`` runs it against a
throwaway PostgreSQL/PostGIS server that the suite starts itself (tests/pgserver.py).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

BACKEND = os.environ.get("GRIDMAP_TEST_DATABASE", "sqlite")
if BACKEND not in ("sqlite", "postgresql"):
    raise pytest.UsageError(f"GRIDMAP_TEST_DATABASE={BACKEND!r}: use sqlite or postgresql")

PG_TEMPLATE = "gridmap_template"
UTM = "EPSG:32649"
X0, Y0 = 420000.0, 2015000.0  # near Sanya, in UTM zone 49N


def utm_box(x1: float, y1: float, x2: float, y2: float) -> Polygon:
    """A rectangle given in metres from the fixture's origin."""
    return box(X0 + x1, Y0 + y1, X0 + x2, Y0 + y2)


def mini_areas() -> dict[str, gpd.GeoDataFrame]:
    """Districts, streets and communities of a small district with a lake and two islands.

    Street 460204001: communities 001 (0–1000 m) and 002 (1000–2000 m, a lake cut out of it).
    Street 460204101 (a town): community 001 on the mainland, 002 made of two islands.
    """
    lake = utm_box(1400, 600, 1600, 800)
    communities = {
        "460204001001": ("春园社区", utm_box(0, 0, 1000, 1500)),
        "460204001002": ("海湾社区", utm_box(1000, 0, 2000, 1500).difference(lake)),
        "460204101001": ("梅村", utm_box(2000, 0, 3000, 1500)),
        "460204101002": ("南岛村", MultiPolygon([utm_box(3500, 200, 3800, 500), utm_box(4000, 0, 4050, 50)])),
    }
    comm = gpd.GeoDataFrame(
        {"code": list(communities), "name": [v[0] for v in communities.values()],
         "parent_code": [c[:9] for c in communities]},
        geometry=[v[1] for v in communities.values()], crs=UTM,
    )
    streets = comm.dissolve("parent_code", as_index=False)[["parent_code", "geometry"]]
    streets = gpd.GeoDataFrame(
        {"code": streets["parent_code"], "name": ["河西街道", "天涯镇"], "parent_code": ["460204", "460204"]},
        geometry=streets.geometry.values, crs=UTM,
    )
    district = gpd.GeoDataFrame({"code": ["460204"], "name": ["三亚市天涯区"], "parent_code": [None]},
                                geometry=[shapely.union_all(comm.geometry.values)], crs=UTM)
    return {"districts": district.to_crs(4326), "streets": streets.to_crs(4326), "communities": comm.to_crs(4326)}


def write_areas(folder: Path, frames: dict[str, gpd.GeoDataFrame]) -> Path:
    """Write the given levels as a layer set folder (without cells unless given)."""
    from gridmap.geo.layers import write_layer

    folder.mkdir(parents=True, exist_ok=True)
    for level, frame in frames.items():
        write_layer(frame, folder / f"{level}.geojson", level)
    return folder


@pytest.fixture(scope="session")
def mini_geodata(tmp_path_factory) -> Path:
    """A complete, valid layer set of the mini district with 250 m cells."""
    from gridmap.geo.gridbuild import build_cells

    frames = mini_areas()
    frames["cells"] = build_cells(frames["communities"], 250)
    return write_areas(tmp_path_factory.mktemp("mini") / "geodata", frames)


@pytest.fixture(scope="session")
def pg_server():
    import pgserver

    server = pgserver.start()
    # Test databases are copies of one that has PostGIS already (CREATE EXTENSION takes ~2 s each);
    # migration 0008 creates the extension itself where it is missing (tests/test_spatial_index.py).
    server.create_database(PG_TEMPLATE, extensions=("postgis",))
    yield server
    server.stop()


@pytest.fixture
def database_url(request, tmp_path) -> str:
    """A fresh, empty database for one test, on the backend under test."""
    if BACKEND == "sqlite":
        yield f"sqlite:///{tmp_path / 'instance' / 'gridmap.sqlite3'}"
        return
    server = request.getfixturevalue("pg_server")
    name = "t_" + uuid.uuid4().hex[:12]
    yield server.create_database(name, template=PG_TEMPLATE)
    server.drop_database(name)


@pytest.fixture
def settings(mini_geodata, database_url, tmp_path) -> dict:
    """Setting overrides for a test: the mini district and the test's own database."""
    return {"geodata": str(mini_geodata), "database_url": database_url, "instance": str(tmp_path / "instance")}


@pytest.fixture
def gm(settings):
    """A core Gridmap with its database migrated and the layer set loaded."""
    from gridmap.core import Gridmap

    core = Gridmap(settings)
    core.init_database()
    yield core
    core.close()


@pytest.fixture
def app(settings, gm):
    from gridmap.web import create_app

    application = create_app({**settings, "TESTING": True})
    yield application
    application.extensions["gridmap"].close()


def make_token(gm, role: str, scopes: tuple[str, ...] = (), name: str | None = None) -> str:
    """A new API token of ``role`` limited to ``scopes``; returns the secret."""
    from gridmap.security.access import add_token

    with gm.db.session() as session:
        return add_token(session, name or f"test-{role}-{uuid.uuid4().hex[:8]}", role, tuple(scopes))


def make_user(gm, name: str, role: str, scopes: tuple[str, ...] = (), password: str = "correct horse") -> str:
    """A new user of ``role``; returns the password."""
    from gridmap.security.access import add_user

    with gm.db.session() as session:
        add_user(session, name, role, tuple(scopes), password)
    return password


def admin_client(app):
    """A new test client of ``app`` that acts as an administrator (a bearer token on every request)."""
    test_client = app.test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_token(app.extensions['gridmap'], 'admin')}"
    return test_client


@pytest.fixture
def client(app):
    """A test client that acts as an administrator."""
    return admin_client(app)


@pytest.fixture
def anon_client(app):
    """A test client with no credentials."""
    return app.test_client()


@pytest.fixture
def client_as(app, gm):
    """``client_as(role, *scopes)``: a test client acting with a token of that role and scope."""
    def make(role: str, *scopes: str):
        test_client = app.test_client()
        test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_token(gm, role, scopes)}"
        return test_client
    return make


@pytest.fixture
def cli_env(settings, monkeypatch) -> dict:
    """Environment variables that point the CLI at the test's layer set and database."""
    env = {f"GRIDMAP_{key.upper()}": value for key, value in settings.items()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
