"""The audit log: every change to a stored row, with who made it, when, and the values before and after.

Changes are caught where they reach the database, so no code path can forget to log:

- rows changed through the ORM unit of work (``session.add``, attribute changes, ``session.delete``)
  are logged one entry per row, with the changed columns before and after;
- bulk statements (``session.execute(insert(Issue), rows)``, ``update(...)``, ``delete(...)``, as the
  importers use) are logged one entry per row for small statements and one summary entry (ids and
  row count) for large ones, so a 100,000-row import does not write 100,000 copies of itself.

Who acts comes from :func:`acting_as`, which the web layer sets per request and the CLI per command.
Secrets (password and token hashes) are never written to the log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Insert, event, func, insert, inspect, select
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql.dml import UpdateBase

from gridmap.storage.models import Meta, table_of
from gridmap.storage.rollup import ROLLUP_TABLES
from gridmap.storage.security import AuditEntry

#: Tables whose changes are not logged: the log itself, the meta table (it holds the secret key) and the
#: issue rollup (derived from the issues, whose changes are logged).
UNLOGGED_TABLES = frozenset({AuditEntry.__tablename__, Meta.__tablename__, *ROLLUP_TABLES})
#: Columns whose values are replaced by a marker in the log.
SECRET_COLUMNS = frozenset({"password_hash", "token_hash", "key_hash"})
#: A bulk statement of more rows than this is logged as one summary entry.
ROWS_LOGGED_ONE_BY_ONE = 50

_actor: ContextVar[tuple[str, str | None]] = ContextVar("gridmap_audit_actor", default=("system", None))


def begin_acting(actor: str, context: str | None = None) -> Token:
    """Attribute changes from now on to ``actor``; hand the result to :func:`end_acting`."""
    return _actor.set((actor, context))


def end_acting(token: Token) -> None:
    _actor.reset(token)


@contextmanager
def acting_as(actor: str, context: str | None = None) -> Iterator[None]:
    """Attribute every change made inside the block to ``actor`` (``context``: the request or command)."""
    token = begin_acting(actor, context)
    try:
        yield
    finally:
        end_acting(token)


def current_actor() -> str:
    return _actor.get()[0]


def install() -> None:
    """Log every change made through any Session from now on (idempotent).

    Storage knows nothing of the log; whoever opens the database for the service (the core
    façade) installs it, so every session of the process is logged.
    """
    if not installed():
        event.listen(Session, "after_flush", _log_unit_of_work)
        event.listen(Session, "do_orm_execute", _log_bulk_statement)


def uninstall() -> None:
    """Stop logging changes (idempotent); :func:`install` turns the log on again."""
    if installed():
        event.remove(Session, "after_flush", _log_unit_of_work)
        event.remove(Session, "do_orm_execute", _log_bulk_statement)


def installed() -> bool:
    """Whether changes are being logged."""
    return event.contains(Session, "after_flush", _log_unit_of_work)


@contextmanager
def switched_off() -> Iterator[None]:
    """Changes made inside the block are not logged (benchmarks measure the log's cost with it)."""
    was_installed = installed()
    uninstall()
    try:
        yield
    finally:
        if was_installed:
            install()


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


def _clean(table: str, values: dict[str, Any]) -> dict[str, Any]:
    return {k: ("***" if k in SECRET_COLUMNS and v is not None else _jsonable(v)) for k, v in values.items()}


def _entry(table: str, operation: str, entity_id: str, before: dict | None, after: dict | None) -> dict[str, Any]:
    actor, context = _actor.get()
    return {"at": datetime.now(UTC), "actor": actor[:200], "operation": operation, "entity": table,
            "entity_id": entity_id[:100], "before": before, "after": after, "context": context}


def _identity(mapper, obj) -> str:
    key = mapper.primary_key_from_instance(obj)
    return "/".join(str(part) for part in key)


def _changed_columns(state) -> tuple[dict[str, Any], dict[str, Any]]:
    """(before, after) of the columns an update changes."""
    before, after = {}, {}
    for attr in state.mapper.column_attrs:
        history = state.attrs[attr.key].history
        if (history.added or history.deleted) and history.deleted != history.added:
            before[attr.key] = history.deleted[0] if history.deleted else None
            after[attr.key] = history.added[0] if history.added else None
    return before, after


def _log_unit_of_work(session: Session, _flush_context) -> None:
    entries = []
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    for operation, objects in (("insert", session.new), ("update", session.dirty), ("delete", session.deleted)):
        for obj in objects:
            state = inspect(obj)
            table = state.mapper.local_table.name
            if table in UNLOGGED_TABLES:
                continue
            if operation == "update":
                before, after = _changed_columns(state)
                if not after:
                    continue
            else:
                values = {c.key: getattr(obj, c.key) for c in state.mapper.column_attrs}
                before, after = (None, values) if operation == "insert" else (values, None)
            entries.append(_entry(table, operation, _identity(state.mapper, obj),
                                  None if before is None else _clean(table, before),
                                  None if after is None else _clean(table, after)))
    if entries:
        session.connection().execute(insert(table_of(AuditEntry)), entries)


def _log_bulk_statement(state: ORMExecuteState):
    if not (state.is_insert or state.is_update or state.is_delete):
        return None
    statement = state.statement
    table = getattr(statement, "table", None)
    name = getattr(table, "name", None)
    if name is None or name in UNLOGGED_TABLES:
        return None
    operation = "insert" if state.is_insert else "update" if state.is_update else "delete"
    params = state.parameters
    rows = params if isinstance(params, list) else ([params] if params else [])
    result = state.invoke_statement()
    returned_ids: list[Any] = []
    # The ids of the new rows come back only if the statement has a RETURNING clause.
    if isinstance(statement, Insert) and statement.returning_column_descriptions:
        frozen = result.freeze()
        returned_ids = [row[0] for row in frozen().all()]
        result = frozen()
    ids = [str(row.get("id")) for row in rows if isinstance(row, dict) and row.get("id") is not None]
    ids = ids or [str(i) for i in returned_ids]
    compiled: dict[str, Any] = {}
    if not rows and isinstance(statement, UpdateBase):
        try:
            compiled = dict(statement.compile().params)
        except Exception:  # noqa: BLE001 - a statement we cannot describe is still logged by its kind
            compiled = {}
    entries = []
    if rows and len(rows) <= ROWS_LOGGED_ONE_BY_ONE:
        for index, row in enumerate(rows):
            entity_id = ids[index] if index < len(ids) else "?"
            values = _clean(name, dict(row))
            entries.append(_entry(name, operation, entity_id, values if operation == "delete" else None,
                                  None if operation == "delete" else values))
    else:
        count = len(rows) if rows else getattr(result, "rowcount", None)
        span = f"{ids[0]}…{ids[-1]}" if len(ids) > 1 else (ids[0] if ids else "*")
        entries.append(_entry(name, operation, f"{span} ({count} rows)" if count is not None else span, None,
                              {"rows": count, "ids": ids[:100000] if ids else None,
                               "values": _clean(name, compiled) or None}))
    state.session.connection().execute(insert(table_of(AuditEntry)), entries)
    return result


def record(connection, operation: str, entity: str, entity_id: str, *, before: dict | None = None,
           after: dict | None = None) -> None:
    """Log one change made outside the ORM sessions (a restore), on ``connection``, as the current actor."""
    connection.execute(insert(table_of(AuditEntry)), [_entry(entity, operation, entity_id, before, after)])


def audit_entries(session: Session, *, entity: str | None = None, entity_id: str | None = None,
                  actor: str | None = None, limit: int = 100, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """(total, one page of entries, newest first) with optional filters."""
    conditions = []
    if entity:
        conditions.append(AuditEntry.entity == entity)
    if entity_id:
        conditions.append(AuditEntry.entity_id == entity_id)
    if actor:
        conditions.append(AuditEntry.actor == actor)
    total = session.scalar(select(func.count()).select_from(AuditEntry).where(*conditions)) or 0
    rows = session.scalars(select(AuditEntry).where(*conditions).order_by(AuditEntry.id.desc())
                           .limit(limit).offset(offset)).all()
    return int(total), [
        {"id": row.id, "at": row.at.isoformat(), "actor": row.actor, "operation": row.operation,
         "entity": row.entity, "entity_id": row.entity_id, "before": row.before, "after": row.after,
         "context": row.context}
        for row in rows
    ]
