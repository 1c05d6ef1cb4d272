"""Writing many issues fast in one transaction: COPY on PostgreSQL, executemany on SQLite's driver.

:class:`IssueWriter` stores prepared issue rows with their transition histories, batch by batch,
in the caller's transaction, keeping nothing per row beyond the batch in hand (the new ids are
kept as runs of consecutive ids). Ids are known per batch before the transitions are written:
on PostgreSQL they are reserved from the sequence, on SQLite the batch's rows get the next
rowids while the transaction holds the write lock. Likely duplicates are flagged once every
batch is in (:meth:`IssueWriter.finish`), page by page in (reported_at, id) order, which gives
the same flags however the rows were cut into batches. A large write bypasses the ORM, so the
audit log gets one summary entry per table from :meth:`IssueWriter.finish`; a small one
(``row_by_row``) goes through the ORM and is logged row by row.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from itertools import islice
from typing import Any, cast, overload

from sqlalchemy import JSON, Connection, Table, and_, func, insert, or_, select, text
from sqlalchemy.orm import Session

from gridmap.issues.duplicates import DuplicateRule, flag_duplicates
from gridmap.security import audit
from gridmap.storage.models import Issue, IssueTransition, UTCDateTime

ISSUES = cast(Table, Issue.__table__)
TRANSITIONS = cast(Table, IssueTransition.__table__)
#: Rows an import reads, checks and writes at a time when no batch size is given.
DEFAULT_BATCH_ROWS = 5000


class IssueWriter:
    """Stores batches of prepared issue rows and their histories in ``session``'s transaction."""

    def __init__(self, session: Session, *, actor: str, duplicate_rule: DuplicateRule | None,
                 batch_rows: int = DEFAULT_BATCH_ROWS, row_by_row: bool = False) -> None:
        self.session = session
        self.row_by_row = row_by_row  # through the ORM, so the audit log has one entry per row
        self.actor = actor
        self.duplicate_rule = duplicate_rule
        self.batch_rows = batch_rows
        self.connection: Connection = session.connection()
        self.copy = self.connection.dialect.name == "postgresql" and self.connection.dialect.driver == "psycopg"
        self.ids = IssueIds()
        self.transitions = 0
        self.explicit_ids = False
        self.now = datetime.now(UTC)

    def write(self, rows: Sequence[Mapping[str, Any]], histories: Sequence[Sequence[Mapping[str, Any]]]) -> list[int]:
        """Insert ``rows`` (each with ``histories``' entry: its transitions without issue_id); their new ids."""
        if len(histories) != len(rows):
            raise ValueError(f"histories has {len(histories)} entries for {len(rows)} rows")
        if not rows:
            return []
        issues = [{**row, "created_at": self.now} for row in rows]
        given = [row.get("id") for row in issues]
        if self.row_by_row:
            ids = list(self.session.scalars(insert(Issue).returning(Issue.id, sort_by_parameter_order=True),
                                            _filled(ISSUES, issues)))
        elif all(i is not None for i in given):
            self.explicit_ids = True
            ids = [int(i) for i in given]  # type: ignore[arg-type]
        elif self.copy:
            ids = list(self.connection.scalars(text("SELECT nextval(pg_get_serial_sequence('issues', 'id')) "
                                                    "FROM generate_series(1, :n)"), {"n": len(issues)}))
            ids.sort()
        else:
            ids = []
        if self.row_by_row:
            pass
        elif ids:
            for row, issue_id in zip(issues, ids):
                row["id"] = issue_id
        else:
            for row in issues:
                row.pop("id", None)
        if not self.row_by_row:
            self._insert(ISSUES, issues)
        if not ids:  # SQLite gave the batch the next rowids, in order, under the transaction's write lock
            last = int(self.connection.scalar(select(func.max(Issue.id))) or 0)
            ids = list(range(last - len(issues) + 1, last + 1))
        transitions = [{**transition, "issue_id": issue_id}
                       for issue_id, history in zip(ids, histories) for transition in history]
        self._insert(TRANSITIONS, transitions)
        self.ids.extend(ids)
        self.transitions += len(transitions)
        return ids

    def _insert(self, table: Table, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        filled = _filled(table, rows)
        if self.row_by_row:
            self.session.execute(insert(table), filled)
        elif self.copy:
            _copy(self.connection, table, list(filled[0]), filled)
        elif self.connection.dialect.name == "sqlite":
            _executemany(self.connection, table, list(filled[0]), filled)
        else:
            self.connection.execute(table.insert(), filled)

    def finish(self) -> None:
        """Flag likely duplicates among the new issues, record the import in the audit log, fix the id sequence."""
        if not self.ids:
            return
        ranges = self.ids.ranges
        if self.duplicate_rule is not None:
            self._flag_duplicates(ranges)
        if self.explicit_ids and self.copy:  # explicit ids do not advance the sequence
            self.connection.execute(text("SELECT setval(pg_get_serial_sequence('issues', 'id'), "
                                         "(SELECT coalesce(max(id), 1) FROM issues))"))
        if audit.installed() and not self.row_by_row:
            span = f"{self.ids[0]}…{self.ids[-1]}" if len(self.ids) > 1 else str(self.ids[0])
            audit.record(self.connection, "insert", Issue.__tablename__, f"{span} ({len(self.ids)} rows)",
                         after={"rows": len(self.ids), "ids": list(islice(self.ids, 100000)),
                                "id_ranges": [list(r) for r in ranges[:1000]], "by": self.actor})
            if self.transitions:
                audit.record(self.connection, "insert", IssueTransition.__tablename__,
                             f"issues {span} ({self.transitions} rows)",
                             after={"rows": self.transitions, "issue_id_ranges": [list(r) for r in ranges[:1000]]})

    def _flag_duplicates(self, ranges: list[tuple[int, int]]) -> None:
        """Flag the new issues page by page in (reported_at, id) order: each page's candidates are final."""
        assert self.duplicate_rule is not None
        ours = or_(*(Issue.id.between(first, last) for first, last in ranges))
        after: Any = None
        while True:
            query = select(Issue.id, Issue.reported_at).where(ours)
            if after is not None:
                query = query.where(or_(Issue.reported_at > after.reported_at,
                                        and_(Issue.reported_at == after.reported_at, Issue.id > after.id)))
            page = self.session.execute(query.order_by(Issue.reported_at, Issue.id).limit(self.batch_rows)).all()
            if not page:
                return
            flag_duplicates(self.session, [row.id for row in page], self.duplicate_rule)
            after = page[-1]


class IssueIds(Sequence[int]):
    """Issue ids in the order they were written, kept as runs of consecutive ids (memory follows the runs)."""

    def __init__(self) -> None:
        self.ranges: list[tuple[int, int]] = []  # (first, last), both included
        self._ends: list[int] = []  # how many ids up to and including each run

    def extend(self, ids: Iterable[int]) -> None:
        for issue_id in ids:
            if self.ranges and issue_id == self.ranges[-1][1] + 1:
                self.ranges[-1] = (self.ranges[-1][0], issue_id)
                self._ends[-1] += 1
            else:
                self.ranges.append((issue_id, issue_id))
                self._ends.append((self._ends[-1] if self._ends else 0) + 1)

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> list[int]: ...

    def __getitem__(self, index: int | slice) -> int | list[int]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        run = bisect_right(self._ends, index)
        before = self._ends[run - 1] if run else 0
        return self.ranges[run][0] + index - before

    def __iter__(self) -> Iterator[int]:
        for first, last in self.ranges:
            yield from range(first, last + 1)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"IssueIds({list(self) if len(self) <= 20 else self.ranges!r})"


def _filled(table: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with the same keys each (one statement needs them), Python-side column defaults filled in."""
    keys = list(dict.fromkeys(key for row in rows for key in row))
    for column in table.columns:
        if column.key not in keys and column.default is not None and column.server_default is None:
            keys.append(column.key)
    return [{key: row[key] if key in row else _default(table, key, row) for key in keys} for row in rows]


class _RowContext:
    """What a context-sensitive column default asks of SQLAlchemy's execution context: the row's values."""

    def __init__(self, row: dict[str, Any]) -> None:
        self.row = row

    def get_current_parameters(self, isolate_multiinsert_groups: bool = True) -> dict[str, Any]:
        return self.row


def _default(table: Table, key: str, row: dict[str, Any]) -> Any:
    default: Any = table.columns[key].default
    if default is None:
        return None
    if default.is_scalar:
        return default.arg
    if default.is_callable:
        return default.arg(_RowContext(row))
    return None


def _copy(connection: Connection, table: Table, keys: list[str], rows: list[dict[str, Any]]) -> None:
    """``COPY table (keys) FROM STDIN`` of ``rows``, values converted as the column types would bind them."""
    converters = [_copy_value(table, key) for key in keys]
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    columns = ", ".join(f'"{key}"' for key in keys)
    with cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([None if row[key] is None else convert(row[key]) for key, convert in zip(keys, converters)])


def _executemany(connection: Connection, table: Table, keys: list[str], rows: list[dict[str, Any]]) -> None:
    """One ``executemany`` of ``rows`` on the SQLite driver, values stored as SQLAlchemy stores them."""
    converters = [_copy_value(table, key, sqlite=True) for key in keys]
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    columns = ", ".join(f'"{key}"' for key in keys)
    cursor.executemany(f'INSERT INTO "{table.name}" ({columns}) VALUES ({", ".join("?" * len(keys))})',
                       ([None if row[key] is None else convert(row[key]) for key, convert in zip(keys, converters)]
                        for row in rows))


def _copy_value(table: Table, key: str, *, sqlite: bool = False) -> Any:
    kind = table.columns[key].type
    if isinstance(kind, UTCDateTime):
        return _sqlite_datetime if sqlite else _naive_utc
    if isinstance(kind, JSON):
        return json.dumps
    return _same


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the database; attach a time zone first")
    return value.astimezone(UTC).replace(tzinfo=None)


def _sqlite_datetime(value: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime stores (microseconds always written)."""
    moment = _naive_utc(value)
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond:06d}"


def _same(value: Any) -> Any:
    return value
