"""The issue rollup: issue counts per local day of report, area, category, source, status and department.

One row per (day, cell, community, street, district, category, source, status, department) with
the number of issues in it; a missing department is stored as ``''``. Database triggers on the
issues table keep it in the same transaction as every insert, update, delete (and, on PostgreSQL,
truncate) of issues, whichever code path writes them: on SQLite row triggers with UPSERT, on
PostgreSQL statement-level triggers over transition tables, so a bulk COPY costs one grouped
statement. Rows whose count drops to zero are deleted.

The local day is that of the time zone the rollup was built for, kept with its UTC offsets in
``issue_rollup_zone`` (one row per offset change, computed by Python's zoneinfo so both backends
agree). Readers use the rollup only when its zone is the service's; :func:`rebuild` recomputes it
(for another zone too) in one transaction and :func:`differences` compares it with the raw rows.
The rollup is not a model table: backups copy issues and the triggers recount them on restore.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Column, Connection, Date, Integer, MetaData, String, Table, delete, insert, select, text

from gridmap.storage.models import UTCDateTime

ROLLUP_TABLE = "issue_rollup"
ZONE_TABLE = "issue_rollup_zone"
#: The rollup's tables: not model tables (backups leave them to the triggers of the restoring database).
ROLLUP_TABLES: tuple[str, ...] = (ROLLUP_TABLE, ZONE_TABLE)
#: The key columns after ``day``, as on the issues table.
KEY_COLUMNS: tuple[str, ...] = ("cell_code", "community_code", "street_code", "district_code",
                                "category", "source", "status", "department")
#: The time zone migration 0006 builds the rollup for (the ``timezone`` setting's default).
DEFAULT_TIMEZONE = "Asia/Shanghai"

metadata = MetaData()
issue_rollup = Table(
    ROLLUP_TABLE, metadata,
    Column("day", Date, primary_key=True),
    Column("cell_code", String(15), primary_key=True),
    Column("community_code", String(12), primary_key=True),
    Column("street_code", String(9), primary_key=True),
    Column("district_code", String(6), primary_key=True),
    Column("category", String(16), primary_key=True),
    Column("source", String(16), primary_key=True),
    Column("status", String(16), primary_key=True),
    Column("department", String(100), primary_key=True),
    Column("issues", Integer, nullable=False),
)
issue_rollup_zone = Table(
    ZONE_TABLE, metadata,
    Column("starts_at", UTCDateTime, primary_key=True),
    Column("utc_offset", Integer, nullable=False),  # seconds east of UTC from starts_at on
    Column("timezone", String(64), nullable=False),
)

_KEYS = ", ".join(("day", *KEY_COLUMNS))


# --- the time zone ------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def zone_offsets(timezone: str) -> tuple[tuple[datetime, int], ...]:
    """(UTC instant, offset in seconds) at every offset change of ``timezone`` from 1900 to 2200, first at year 1."""
    zone = ZoneInfo(timezone)

    def offset(instant: datetime) -> int:
        value = instant.astimezone(zone).utcoffset()
        return int(value.total_seconds()) if value is not None else 0

    instant = datetime(1900, 1, 1, tzinfo=UTC)
    current = offset(instant)
    changes = [(datetime(1, 1, 1, tzinfo=UTC), current)]
    end = datetime(2200, 1, 1, tzinfo=UTC)
    step = timedelta(days=1)
    while instant < end:
        following = instant + step
        if offset(following) != current:
            low, high = instant, following  # offset(low) == current != offset(high)
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                middle = middle.replace(microsecond=0)
                if middle <= low:
                    break
                low, high = (middle, high) if offset(middle) == current else (low, middle)
            current = offset(high)
            changes.append((high, current))
        instant = following
    return tuple(changes)


def local_day(instant: datetime, timezone: str) -> date:
    """The local day of an aware instant in ``timezone`` (as the rollup counts it)."""
    return instant.astimezone(ZoneInfo(timezone)).date()


def rollup_timezone(connection: Connection) -> str | None:
    """The time zone the rollup was built for (None: no rollup in this database)."""
    return connection.scalar(select(issue_rollup_zone.c.timezone).limit(1))


# --- SQL ----------------------------------------------------------------------------------------


def _sqlite_day(row: str) -> str:
    return (f"date({row}.reported_at, (SELECT z.utc_offset || ' seconds' FROM {ZONE_TABLE} z "
            f"WHERE z.starts_at <= {row}.reported_at ORDER BY z.starts_at DESC LIMIT 1))")


def _values(row: str, dialect: str) -> str:
    return ", ".join(_split_values(row, dialect))


def _split_values(row: str, dialect: str) -> list[str]:
    day = _sqlite_day(row) if dialect == "sqlite" else f"gridmap_local_day({row}.reported_at)"
    return [day, *(f"{row}.{c}" if c != "department" else f"coalesce({row}.department, '')" for c in KEY_COLUMNS)]


def _sqlite_triggers() -> list[str]:
    add = (f"INSERT INTO {ROLLUP_TABLE} ({_KEYS}, issues) VALUES ({_values('NEW', 'sqlite')}, 1) "
           f"ON CONFLICT ({_KEYS}) DO UPDATE SET issues = issues + 1;")
    match = " AND ".join(f"{c} = {v}" for c, v in zip(("day", *KEY_COLUMNS), _split_values("OLD", "sqlite")))
    remove = (f"UPDATE {ROLLUP_TABLE} SET issues = issues - 1 WHERE {match}; "
              f"DELETE FROM {ROLLUP_TABLE} WHERE {match} AND issues = 0;")
    watched = ("reported_at", *KEY_COLUMNS)
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in watched)
    return [
        f"CREATE TRIGGER issue_rollup_insert AFTER INSERT ON issues BEGIN {add} END",
        f"CREATE TRIGGER issue_rollup_delete AFTER DELETE ON issues BEGIN {remove} END",
        f"CREATE TRIGGER issue_rollup_update AFTER UPDATE OF {', '.join(watched)} ON issues "
        f"WHEN {changed} BEGIN {remove} {add} END",
    ]


def _postgresql_apply(delta: str, *, removes: bool) -> str:
    """Statements adding a grouped ``delta`` (key columns, n) to the rollup, deleting rows that reach zero.

    The zero rows are looked up by key from the delta (a join on the primary key), never by scanning the rollup.
    """
    upsert = (f"INSERT INTO {ROLLUP_TABLE} AS r ({_KEYS}, issues) SELECT {_KEYS}, n FROM ({delta}) d WHERE n <> 0 "
              f"ORDER BY {_KEYS} ON CONFLICT ({_KEYS}) DO UPDATE SET issues = r.issues + EXCLUDED.issues;")
    if not removes:
        return upsert
    match = " AND ".join(f"r.{c} = d.{c}" for c in ("day", *KEY_COLUMNS))
    return f"{upsert} DELETE FROM {ROLLUP_TABLE} r USING ({delta}) d WHERE {match} AND d.n < 0 AND r.issues = 0;"


def _grouped(rows: str, sign: str) -> str:
    return f"SELECT {', '.join(f'{v} AS {c}' for c, v in zip(('day', *KEY_COLUMNS), _split_values('t', 'pg')))}, " \
           f"{sign}1 AS n FROM {rows} t"


def _postgresql_triggers() -> list[str]:
    watched = ("reported_at", *KEY_COLUMNS)
    changed = (f"(SELECT o.* FROM old_rows o JOIN new_rows w ON w.id = o.id "
               f"WHERE ({', '.join('o.' + c for c in watched)}) "
               f"IS DISTINCT FROM ({', '.join('w.' + c for c in watched)}))")
    changed_new = changed.replace("SELECT o.*", "SELECT w.*")
    inserted = f"SELECT {_KEYS}, sum(n) AS n FROM ({_grouped('new_rows', '+')}) g GROUP BY {_KEYS}"
    deleted = f"SELECT {_KEYS}, sum(n) AS n FROM ({_grouped('old_rows', '-')}) g GROUP BY {_KEYS}"
    updated = (f"SELECT {_KEYS}, sum(n) AS n FROM ({_grouped(changed, '-')} UNION ALL "
               f"{_grouped(changed_new, '+')}) g GROUP BY {_KEYS}")
    statements = [
        f"CREATE FUNCTION gridmap_local_day(instant timestamp) RETURNS date LANGUAGE sql STABLE AS $$ "
        f"SELECT (instant + make_interval(secs => z.utc_offset))::date FROM {ZONE_TABLE} z "
        f"WHERE z.starts_at <= instant ORDER BY z.starts_at DESC LIMIT 1 $$",
        f"CREATE FUNCTION issue_rollup_truncate() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"DELETE FROM {ROLLUP_TABLE}; RETURN NULL; END $$",
        "CREATE TRIGGER issue_rollup_truncate AFTER TRUNCATE ON issues FOR EACH STATEMENT "
        "EXECUTE FUNCTION issue_rollup_truncate()",
    ]
    for name, delta, references in (("insert", inserted, "NEW TABLE AS new_rows"),
                                     ("delete", deleted, "OLD TABLE AS old_rows"),
                                     ("update", updated, "OLD TABLE AS old_rows NEW TABLE AS new_rows")):
        statements += [
            f"CREATE FUNCTION issue_rollup_{name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            f"{_postgresql_apply(delta, removes=name != 'insert')} RETURN NULL; END $$",
            f"CREATE TRIGGER issue_rollup_{name} AFTER {name.upper()} ON issues REFERENCING {references} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION issue_rollup_{name}()",
        ]
    return statements


def install_triggers(connection: Connection) -> None:
    """Create the triggers (and on PostgreSQL their functions) that keep the rollup."""
    statements = _sqlite_triggers() if connection.dialect.name == "sqlite" else _postgresql_triggers()
    for statement in statements:
        connection.exec_driver_sql(statement)


def drop_triggers(connection: Connection) -> None:
    """Remove what :func:`install_triggers` created."""
    for name in ("insert", "delete", "update"):
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS issue_rollup_{name}")
        else:
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS issue_rollup_{name} ON issues")
            connection.exec_driver_sql(f"DROP FUNCTION IF EXISTS issue_rollup_{name}()")
    if connection.dialect.name != "sqlite":
        connection.exec_driver_sql("DROP TRIGGER IF EXISTS issue_rollup_truncate ON issues")
        connection.exec_driver_sql("DROP FUNCTION IF EXISTS issue_rollup_truncate()")
        connection.exec_driver_sql("DROP FUNCTION IF EXISTS gridmap_local_day(timestamp)")


def _raw_counts_sql(dialect: str) -> str:
    """The rollup computed from the raw rows: key columns and issues."""
    values = _split_values("i", dialect)
    return (f"SELECT {', '.join(f'{v} AS {c}' for c, v in zip(('day', *KEY_COLUMNS), values))}, count(*) AS issues "
            f"FROM issues i GROUP BY {', '.join(str(n) for n in range(1, len(values) + 1))}")


# --- rebuild and check --------------------------------------------------------------------------


def rebuild(connection: Connection, timezone: str) -> int:
    """Recompute the rollup from the issues for ``timezone``, in the caller's transaction; return its rows.

    On PostgreSQL the issues table is locked against writers (SHARE) until the transaction ends, so
    no change slips between the recount and the commit.
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("LOCK TABLE issues IN SHARE MODE")
    connection.execute(delete(issue_rollup_zone))
    connection.execute(insert(issue_rollup_zone), [{"starts_at": at, "utc_offset": offset, "timezone": timezone}
                                                    for at, offset in zone_offsets(timezone)])
    connection.execute(delete(issue_rollup))
    connection.exec_driver_sql(
        f"INSERT INTO {ROLLUP_TABLE} ({_KEYS}, issues) {_raw_counts_sql(connection.dialect.name)}"
    )
    return int(connection.scalar(select(text("count(*)")).select_from(issue_rollup)) or 0)


def differences(connection: Connection, limit: int = 1000) -> list[dict[str, Any]]:
    """Keys where the rollup and the raw rows disagree: ``{day, …key columns, raw, rollup}``, at most ``limit``."""
    raw = _raw_counts_sql(connection.dialect.name)
    stored = f"SELECT {_KEYS}, issues FROM {ROLLUP_TABLE}"
    found: dict[tuple, dict[str, Any]] = {}
    for side, first, second in (("raw", raw, stored), ("rollup", stored, raw)):
        rows = connection.exec_driver_sql(f"SELECT * FROM ({first}) a EXCEPT SELECT * FROM ({second}) b")
        for row in rows:
            key = tuple(str(v) for v in row[:-1])
            entry = found.setdefault(key, {**dict(zip(("day", *KEY_COLUMNS), key)), "raw": 0, "rollup": 0})
            entry[side] = int(row[-1])
            if len(found) >= limit:
                break
    return sorted(found.values(), key=lambda e: tuple(str(e[c]) for c in ("day", *KEY_COLUMNS)))
