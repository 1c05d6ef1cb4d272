"""Backups into one SQLite file, taken online and consistent, and restores from it (SQLite and PostgreSQL).

A backup is a SQLite database with gridmap's schema and every row of every table of the models
(``Base.metadata``, whatever migrations added), marked in its header (``application_id``) as a
gridmap backup. The same file restores into SQLite or PostgreSQL.

- From SQLite: the SQLite online backup API copies the live database in one step, inside one
  read transaction: a snapshot of the last commit; writers carry on meanwhile (WAL).
- From PostgreSQL: one REPEATABLE READ, READ ONLY transaction (one snapshot) is copied table by
  table, parents first, in batches, into a new SQLite file whose schema the migrations create.
- Every backup is checked before it replaces FILE: ``PRAGMA integrity_check``, no row without
  its parent (``PRAGMA foreign_key_check``), no table the models do not know.
- Restore checks the file the same way, and that its schema revisions are the target's, then in
  ONE transaction empties every table (children first) and refills it (parents first);
  PostgreSQL sequences are set past the largest id. Any failure rolls everything back.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    Row,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    create_engine,
    event,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.pool import NullPool

import gridmap.storage  # noqa: F401  (imports every model module: Base.metadata then holds every table)
from gridmap.errors import GridmapError, InvalidInput
from gridmap.security.audit import record
from gridmap.storage.db import MIGRATIONS, Database
from gridmap.storage.models import Base

#: "grmp" in the SQLite header of every backup file: tells a gridmap backup from any SQLite file.
APPLICATION_ID = 0x67726D70
#: Rows read and written per batch: memory stays flat however large the tables are.
BATCH_ROWS = 5000
VERSION_TABLE = "alembic_version"
#: Tables `gridmap init` fills from the layer set: a database holding only these counts as empty.
REFERENCE_TABLES = ("areas", "meta")
#: Tables the one-line summaries name; the others are in the totals.
MAIN_TABLES = ("issues", "issue_transitions", "households", "visits", "patrol_tracks")
_SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass(frozen=True)
class BackupFile:
    """What a checked backup file holds."""

    path: Path
    revisions: tuple[str, ...]
    rows: dict[str, int]
    size: int


@dataclass(frozen=True)
class BackupReport:
    """What `backup_database` or `restore_database` did."""

    path: Path
    revisions: tuple[str, ...]
    rows: dict[str, int]
    size: int
    seconds: float

    def summary(self, verb: str) -> str:
        """One line: tables, rows of the main tables, file size, elapsed time."""
        main = ", ".join(f"{self.rows[name]:,} {name}" for name in MAIN_TABLES if name in self.rows)
        return (f"{verb} {self.path}: {len(self.rows)} tables, {main}, {sum(self.rows.values()):,} rows in all; "
                f"{_megabytes(self.size)}, {self.seconds:.1f} s (schema {' '.join(self.revisions)})")


def model_tables() -> list[Table]:
    """Every table of gridmap's models, parents before children."""
    return list(Base.metadata.sorted_tables)


def code_revisions() -> tuple[str, ...]:
    """The Alembic heads of this version of gridmap: the schema revisions it reads and writes."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return tuple(sorted(ScriptDirectory.from_config(config).get_heads()))


def row_counts(db: Database) -> dict[str, int]:
    """Rows per table of the models in ``db``."""
    with db.engine.connect() as connection:
        return {table.name: connection.scalar(select(func.count()).select_from(table)) for table in model_tables()}


def holds_data(counts: Mapping[str, int]) -> bool:
    """Whether a database holds more than `gridmap init` loads (areas, meta)."""
    return any(count for name, count in counts.items() if name not in REFERENCE_TABLES)


# --- backup -------------------------------------------------------------------------------------


def backup_database(db: Database, path: Path | str) -> BackupReport:
    """Copy the whole database, online and consistent, into the SQLite file ``path`` (replaced atomically)."""
    started = time.monotonic()
    path = Path(path)
    db.require_current_schema()
    live = _sqlite_file(db)
    if live is not None and path.resolve() == live:
        raise InvalidInput(f"{path} is the live database itself; write the backup to another file")
    if path.is_dir():
        raise InvalidInput(f"{path} is a folder; give a file name, e.g. {path / 'gridmap-backup.sqlite3'}")
    if not path.parent.is_dir():
        raise InvalidInput(f"folder {path.parent} does not exist; create it first")
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    _remove(partial)
    try:
        if live is not None:
            _copy_sqlite(live, partial)
        else:
            _copy_snapshot(db, partial)
        _mark(partial)
        os.chmod(partial, 0o600)  # personal data, password hashes, the session key: for the owner only
        checked = inspect_backup(partial)
        _fsync(partial)
        os.replace(partial, path)
        _fsync(path.parent)
    except BaseException:
        _remove(partial)
        raise
    return BackupReport(path, checked.revisions, checked.rows, checked.size, time.monotonic() - started)


def _copy_sqlite(live: Path, partial: Path) -> None:
    """SQLite online backup API, all pages in one step: one read transaction, one snapshot."""
    with closing(sqlite3.connect(live, timeout=30)) as source, closing(sqlite3.connect(partial)) as target:
        source.backup(target, pages=-1)


def _copy_snapshot(db: Database, partial: Path) -> None:
    """Copy one REPEATABLE READ snapshot of a (PostgreSQL) database into a new SQLite file with the same schema."""
    schema = Database(f"sqlite:///{partial}")
    try:
        schema.migrate()
    finally:
        schema.dispose()
    target_engine = _sqlite_engine(partial)
    try:
        with db.engine.connect() as source:
            source = source.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with source.begin():
                revisions = _revisions(source)
                if revisions != code_revisions():
                    raise GridmapError(f"the database is at schema revisions {_names(revisions)}, this gridmap at "
                                       f"{_names(code_revisions())}: run `gridmap init` to migrate it first")
                _check_tables(_postgresql_tables(source), "the database")
                with target_engine.begin() as target:
                    for table in model_tables():
                        _copy_table(source, target, table)
    finally:
        target_engine.dispose()


def _mark(partial: Path) -> None:
    with closing(sqlite3.connect(partial)) as connection:
        connection.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
        connection.commit()


# --- checking a backup file ---------------------------------------------------------------------


def inspect_backup(path: Path | str) -> BackupFile:
    """Check that ``path`` is an intact gridmap backup; return its revisions and rows per table.

    Raises InvalidInput saying what is wrong: not a SQLite file, not a gridmap backup, damaged
    (integrity check), rows without their parent, or tables this gridmap does not know.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    with open(path, "rb") as handle:
        header = handle.read(100)
    if len(header) < 100 or not header.startswith(_SQLITE_HEADER):
        raise InvalidInput(f"{path} is not a gridmap backup (not a SQLite database)")
    if int.from_bytes(header[68:72], "big") != APPLICATION_ID:
        raise InvalidInput(f"{path} is a SQLite database but not a gridmap backup (write one with `gridmap backup "
                           "FILE`)")
    try:
        with closing(sqlite3.connect(_sqlite_uri(path, readonly=True), uri=True)) as connection:
            problems = [row[0] for row in connection.execute("PRAGMA integrity_check(20)")]
            if problems != ["ok"]:
                raise InvalidInput(f"{path} is damaged (integrity check: {'; '.join(problems[:3])})")
            orphans = connection.execute("PRAGMA foreign_key_check").fetchall()
            if orphans:
                table, rowid, parent, _ = orphans[0]
                raise InvalidInput(f"{path} is damaged: {len(orphans)} row(s) without their parent, e.g. {table} "
                                   f"row {rowid} → {parent}")
            names = [row[0] for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
            if VERSION_TABLE not in names:
                raise InvalidInput(f"{path} is damaged: it has no {VERSION_TABLE} table (schema revision)")
            _check_tables(names, str(path))
            revisions = tuple(sorted(row[0] for row in connection.execute(f"SELECT version_num FROM {VERSION_TABLE}")))
            rows = {table.name: connection.execute(f'SELECT count(*) FROM "{table.name}"').fetchone()[0]
                    for table in model_tables() if table.name in names}
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(f"{path} is damaged: {exc}") from None
    return BackupFile(path, revisions, rows, path.stat().st_size)


def _check_tables(names: Iterable[str], where: str) -> None:
    known = {table.name for table in model_tables()}
    names = set(names) - {VERSION_TABLE}
    if names - known:
        raise InvalidInput(f"{where} has tables this gridmap does not know ({_names(names - known)}): "
                           "it was written by another version of gridmap")
    if known - names:
        raise InvalidInput(f"{where} lacks tables of this gridmap ({_names(known - names)}): "
                           "it was written by another version of gridmap")


def _postgresql_tables(connection: Connection) -> list[str]:
    """Tables of the current schema, without those that belong to extensions (PostGIS's spatial_ref_sys)."""
    return list(connection.scalars(text(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema() AND NOT EXISTS ("
        "SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')"
    )))


# --- restore ------------------------------------------------------------------------------------


def restore_database(db: Database, path: Path | str, *,
                     confirm: Callable[[dict[str, int]], bool] | None = None) -> BackupReport:
    """Replace every row of ``db`` by the backup's, in one transaction (all or nothing).

    ``confirm`` is asked, with the rows per table, when the database holds more than `gridmap
    init` loads; False cancels (GridmapError, nothing changed).
    """
    started = time.monotonic()
    path = Path(path)
    backup = inspect_backup(path)
    target_revisions = _current_revisions(db)
    if not target_revisions and backup.revisions == code_revisions():
        db.migrate()  # a new, empty database: give it the schema first
        target_revisions = _current_revisions(db)
    if backup.revisions != target_revisions:
        raise InvalidInput(f"{path} has schema revisions {_names(backup.revisions)} but the database has "
                           f"{_names(target_revisions) or 'none (not initialised)'}: restore with the gridmap "
                           "version that wrote the backup, or migrate both to the same version")
    db.require_current_schema()
    existing = row_counts(db)
    if confirm is not None and holds_data(existing) and not confirm(existing):
        raise GridmapError("restore cancelled; nothing was changed")
    source_engine = _sqlite_engine(path, readonly=True)
    try:
        with source_engine.connect() as source, db.engine.connect() as target:
            sqlite = target.dialect.name == "sqlite"
            if sqlite:
                # Row-by-row foreign key checks make emptying a large table quadratic (issues.duplicate_of
                # has no index); they are checked all at once before the commit instead.
                target.exec_driver_sql("PRAGMA foreign_keys=OFF")  # outside any transaction, or it is ignored
                target.commit()
            try:
                with target.begin():
                    _empty_tables(target)
                    rows = {table.name: _copy_table(source, target, table) for table in model_tables()}
                    if sqlite:
                        _check_foreign_keys(target)
                    else:
                        _reset_sequences(target)
                    # The restored log ends with the restore itself: who replaced the data, from which file.
                    record(target, "restore", "*", Path(path).name,
                           after={"file": str(Path(path).resolve()), "revisions": list(backup.revisions), "rows": rows})
            finally:
                if sqlite:
                    target.exec_driver_sql("PRAGMA foreign_keys=ON")
                    target.commit()
    finally:
        source_engine.dispose()
    return BackupReport(path, backup.revisions, rows, backup.size, time.monotonic() - started)


def _empty_tables(connection: Connection) -> None:
    """Delete every row of every table, children first (PostgreSQL: TRUNCATE, which also keeps writers out)."""
    if connection.dialect.name == "postgresql":
        quote = connection.dialect.identifier_preparer.format_table
        connection.exec_driver_sql(f"TRUNCATE TABLE {', '.join(quote(t) for t in reversed(model_tables()))}")
        return
    for table in reversed(model_tables()):
        connection.execute(table.delete())


def _check_foreign_keys(connection: Connection) -> None:
    orphans = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if orphans:
        table, rowid, parent, _ = orphans[0]
        raise GridmapError(f"restore rolled back: {len(orphans)} row(s) without their parent, e.g. {table} row "
                           f"{rowid} → {parent}")


def _reset_sequences(connection: Connection) -> None:
    """Set each serial column's sequence to the largest id, so new rows get fresh ids."""
    preparer = connection.dialect.identifier_preparer
    for table in model_tables():
        column = table.autoincrement_column
        if column is None:
            continue
        sequence = connection.scalar(text("SELECT pg_get_serial_sequence(:table, :column)"),
                                     {"table": preparer.format_table(table), "column": column.name})
        if sequence:
            largest = connection.scalar(select(func.max(column)))
            connection.execute(text("SELECT setval(:sequence, :value, :called)"),
                               {"sequence": sequence, "value": largest or 1, "called": largest is not None})


# --- copying tables -----------------------------------------------------------------------------


def _copy_table(source: Connection, target: Connection, table: Table) -> int:
    """Copy every row of ``table`` in batches; return how many.

    JSON travels as its text, so SQL NULL and JSON null stay apart. A column referring to its
    own table (an area's parent, an issue's duplicate) is filled in a second pass, so rows may
    refer to rows that come after them.
    """
    columns = list(table.columns)
    own = [c for c in columns if any(fk.column.table is table for fk in c.foreign_keys)]
    keys = list(table.primary_key.columns)
    json_columns = [c for c in columns if isinstance(c.type, JSON)]
    read = select(*(cast(c, Text).label(c.key) if c in json_columns else c for c in columns)).order_by(*keys)
    write = table.insert().values({c.key: _json_value(c, target) for c in json_columns})
    count = 0
    with _batches(source, read) as batches:
        for batch in batches:
            rows = []
            for row in batch:
                values = dict(row._mapping)
                for column in json_columns:
                    values[f"json_{column.key}"] = values.pop(column.key)
                for column in own:
                    values[column.key] = None
                rows.append(values)
            target.execute(write, rows)
            count += len(rows)
    if own:
        pending = select(*keys, *own).where(or_(*(c.is_not(None) for c in own))).order_by(*keys)
        fill = (update(table).where(and_(*(k == bindparam(f"key_{k.key}") for k in keys)))
                .values({c.key: bindparam(f"ref_{c.key}") for c in own}))
        with _batches(source, pending) as batches:
            for batch in batches:
                target.execute(fill, [{**{f"key_{k.key}": row._mapping[k.key] for k in keys},
                                       **{f"ref_{c.key}": row._mapping[c.key] for c in own}} for row in batch])
    return count


@contextmanager
def _batches(connection: Connection, query) -> Iterator[Iterator[Sequence[Row]]]:
    """The rows of ``query`` in lists of BATCH_ROWS (a server-side cursor on PostgreSQL), closed however it ends."""
    result = connection.execute(query.execution_options(yield_per=BATCH_ROWS))
    try:
        yield result.partitions()
    finally:
        result.close()


def _json_value(column, target: Connection) -> Any:
    """The JSON text as given: cast to json on PostgreSQL, stored as is on SQLite."""
    value = bindparam(f"json_{column.key}", type_=Text)
    return cast(value, column.type) if target.dialect.name == "postgresql" else value


# --- helpers ------------------------------------------------------------------------------------


def _sqlite_file(db: Database) -> Path | None:
    """The live SQLite file of ``db``, or None on another backend."""
    url = db.engine.url
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        raise InvalidInput("an in-memory SQLite database cannot be backed up")
    return Path(url.database).resolve()


def _sqlite_uri(path: Path, *, readonly: bool = False) -> str:
    return path.resolve().as_uri() + ("?mode=ro" if readonly else "")


def _sqlite_engine(path: Path, *, readonly: bool = False) -> Engine:
    """An engine on a backup file, foreign keys enforced."""
    uri = _sqlite_uri(path, readonly=readonly)
    engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(uri, uri=True, timeout=30), poolclass=NullPool)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if not readonly:
            cursor.execute("PRAGMA synchronous=OFF")  # a partial file is deleted on failure and fsynced when done
        cursor.close()

    return engine


def _revisions(connection: Connection) -> tuple[str, ...]:
    return tuple(sorted(MigrationContext.configure(connection).get_current_heads()))


def _current_revisions(db: Database) -> tuple[str, ...]:
    with db.engine.connect() as connection:
        return _revisions(connection)


def _names(names: Iterable[str]) -> str:
    return ", ".join(sorted(names))


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 100_000 else f"{size / 1e3:.0f} kB"


def _fsync(path: Path) -> None:
    """Flush a file or folder to disk (folders: so a rename survives a power cut)."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass  # some file systems cannot fsync a folder
    finally:
        os.close(descriptor)


def _remove(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + "-journal"), path.with_name(path.name + "-wal"),
                     path.with_name(path.name + "-shm")):
        leftover.unlink(missing_ok=True)
