"""The throwaway PostgreSQL server used by the PostgreSQL run of the suite really works.

Runs in every run (SQLite and PostgreSQL): it starts and stops its own server, so a
machine without PostgreSQL/PostGIS fails here loudly instead of skipping.
"""

from __future__ import annotations

import socket

import pytest
import sqlalchemy as sa

import pgserver


@pytest.fixture(scope="module")
def server():
    srv = pgserver.start()
    yield srv
    srv.stop()


def test_server_answers_over_tcp_with_postgresql_15_or_newer(server):
    assert server.url == f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/gridmap"
    with server.connect() as conn:
        version = conn.execute("SELECT version()").fetchone()[0]
        major = conn.execute("SHOW server_version_num").fetchone()[0]
        encoding = conn.execute("SHOW server_encoding").fetchone()[0]
        fsync = conn.execute("SHOW fsync").fetchone()[0]
    assert version.startswith("PostgreSQL ")
    assert int(major) >= 150000
    assert encoding == "UTF8"
    assert fsync == "off"


def test_postgis_extension_works_through_sqlalchemy(server):
    url = server.create_database("postgis_smoke")
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE EXTENSION postgis"))
            assert conn.execute(sa.text("SELECT postgis_version()")).scalar().startswith("3.")
            area = conn.execute(
                sa.text("SELECT ST_Area(ST_Transform(ST_GeomFromText(:wkt, 4326), 4547))"),
                {"wkt": "POLYGON((109.5 18.25, 109.501 18.25, 109.501 18.251, 109.5 18.251, 109.5 18.25))"},
            ).scalar()
            # 0.001 deg x 0.001 deg near Sanya: roughly 105.7 m x 111 m.
            assert 10_000 < area < 13_000
            # Chinese text round-trips in a UTF8 database.
            assert conn.execute(sa.text("SELECT :s"), {"s": "网格化服务管理"}).scalar() == "网格化服务管理"
    finally:
        engine.dispose()
    server.drop_database("postgis_smoke")


def test_databases_can_be_cloned_from_a_template(server):
    server.create_database("tpl_src", extensions=("postgis",))
    with server.connect("tpl_src") as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (1), (2)")
    url = server.create_database("tpl_copy", template="tpl_src")
    assert url.endswith("/tpl_copy")
    with server.connect("tpl_copy") as conn:
        assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 2
        assert conn.execute("SELECT postgis_version()").fetchone()[0].startswith("3.")
    server.drop_database("tpl_copy")
    server.drop_database("tpl_src")


def test_stop_shuts_the_server_down_and_removes_its_folder():
    srv = pgserver.start("scratch", check_postgis=False)
    basedir, port = srv.basedir, srv.port
    assert basedir.is_dir()
    srv.stop()
    srv.stop()  # idempotent
    assert not basedir.exists()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
