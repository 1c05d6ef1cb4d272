"""Engine and sessions: SQLite (WAL, foreign keys on) by default, PostgreSQL in production."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, delete, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from gridmap.errors import GridmapError, InvalidInput
from gridmap.geo.layers import LEVELS, LayerSet
from gridmap.resources import resource
from gridmap.storage.models import Area, Meta, table_of
from gridmap.storage.spatial import register_sqlite_functions

MIGRATIONS = resource("storage/migrations")


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
    register_sqlite_functions(dbapi_connection)


def create_db_engine(url: str) -> Engine:
    """An engine for ``url``; for SQLite the folder is created and WAL + foreign keys switched on."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidInput(
            f"bad database URL {url!r}; "
            "e.g. sqlite:///instance/gridmap.sqlite3 or postgresql+psycopg://user@host/db"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


class Database:
    """The application's database: an engine, a session factory and schema management."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_db_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on any error."""
        with self.sessions() as session, session.begin():
            yield session

    def _alembic_config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        return config

    def migrate(self) -> None:
        """Create the schema or bring it up to the newest Alembic revisions."""
        config = self._alembic_config()
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "heads")

    def ensure_rollup_timezone(self, timezone: str) -> None:
        """Rebuild the issue rollup when it counts days in another time zone than ``timezone``."""
        from gridmap.storage import rollup

        with self.engine.begin() as connection:
            if rollup.rollup_timezone(connection) != timezone:
                rollup.rebuild(connection, timezone)

    def pending_migrations(self) -> set[str]:
        """Alembic heads this database has not reached yet (empty when it is up to date)."""
        heads = set(ScriptDirectory.from_config(self._alembic_config()).get_heads())
        with self.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
        return heads - current

    def require_current_schema(self) -> None:
        """Raise GridmapError if the database is missing or behind the code's migrations."""
        if self.pending_migrations():
            raise GridmapError(
                f"the database at {self.engine.url.render_as_string(hide_password=True)} is not initialised "
                "or not up to date: run `gridmap init` first"
            )

    def load_layer_set(self, layers: LayerSet) -> int:
        """Replace the stored areas by the layer set's, in one transaction; return how many."""
        rows = []
        for level in LEVELS:
            frame = layers.level(level)
            for code, name, parent, area, geom in zip(
                frame["code"], frame["name"], frame["parent_code"], frame["area_m2"], frame.geometry
            ):
                rows.append(
                    {
                        "code": code,
                        "level": level,
                        "name": name,
                        "parent_code": parent if level != "districts" else None,
                        "area_m2": float(area),
                        "geometry": json.dumps(geom.__geo_interface__, separators=(",", ":")),
                    }
                )
        with self.session() as session:
            # Children before parents on delete, parents before children on insert.
            for level in reversed(LEVELS):
                session.execute(delete(Area).where(Area.level == level))
            if rows:
                session.execute(table_of(Area).insert(), rows)
            session.merge(Meta(key="geodata_source", value=str(layers.source or "")))
        return len(rows)

    def meta(self, key: str) -> str | None:
        """A value from the meta table, or None."""
        with self.sessions() as session:
            return session.scalar(select(Meta.value).where(Meta.key == key))

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def connect(url: str) -> Database:
    """Open the database at ``url`` (does not create or migrate it)."""
    return Database(url)
