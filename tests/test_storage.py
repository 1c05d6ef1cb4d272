"""Storage: Alembic migrations build exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, text

from conftest import BACKEND
from gridmap.storage import Area, Base, Database, rollup
from gridmap.storage.spatial import include_object


def test_migrations_match_the_models(database_url):
    db = Database(database_url)
    db.migrate()
    db.migrate()  # a second run is a no-op
    with db.engine.connect() as connection:
        # The issue rollup's tables are kept by triggers, not models (gridmap.storage.rollup);
        # PostGIS geometry columns are kept by the database (gridmap.storage.spatial).
        context = MigrationContext.configure(connection, opts={"include_object": include_object})
        assert compare_metadata(context, [Base.metadata, rollup.metadata]) == []
    db.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(database_url):
    db = Database(database_url)
    with db.engine.connect() as connection:
        if BACKEND == "sqlite":
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        else:
            assert connection.dialect.name == "postgresql"
    db.dispose()


def test_loading_a_layer_set_replaces_the_stored_areas(gm):
    levels = dict.fromkeys(("districts", "streets", "communities", "cells"), 0)
    with gm.db.sessions() as session:
        for level, count in session.execute(select(Area.level, func.count()).group_by(Area.level)):
            levels[level] = count
    assert levels == {"districts": 1, "streets": 2, "communities": 4, "cells": 74}
    assert gm.init_database() == 81  # loading again replaces, never duplicates
