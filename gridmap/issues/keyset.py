"""Keyset (cursor) paging: opaque cursors that point just after the last row of a page.

A cursor holds the sort it was made for and the sort key of the last row shown: the next page
starts strictly after that key, and every sort ends with the unique issue id, so no row is shown
twice or skipped when issues are added or change between pages (unlike an offset, which shifts
when rows are inserted before it). Cursors are base64url text; clients pass them back unchanged.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, false, literal, or_
from sqlalchemy.sql.elements import ColumnElement

from gridmap.errors import InvalidInput
from gridmap.storage.models import Issue, UTCDateTime

#: The sorts of the issue lists: (column, descending), each ending with the unique id.
SORT_KEYS: dict[str, tuple[tuple[str, bool], ...]] = {
    "-reported_at": (("reported_at", True), ("id", True)),
    "reported_at": (("reported_at", False), ("id", False)),
    "deadline": (("deadline", False), ("id", False)),
    "-deadline": (("deadline", True), ("id", True)),
    "id": (("id", False),),
    "-id": (("id", True),),
}
#: Columns that may be empty: sorted after the others ascending, before them descending, on both backends.
NULLABLE = frozenset({"deadline"})


def order_by(sort: str) -> list[ColumnElement[Any]]:
    """ORDER BY terms of a sort (empty deadlines last when ascending, first when descending)."""
    terms: list[ColumnElement[Any]] = []
    for name, descending in SORT_KEYS[sort]:
        column = getattr(Issue, name)
        if name in NULLABLE:
            empty = column.is_(None)
            terms.append(empty.desc() if descending else empty.asc())
        terms.append(column.desc() if descending else column.asc())
    return terms


def encode(sort: str, issue: Issue) -> str:
    """The cursor pointing just after ``issue`` in ``sort`` order."""
    values = []
    for name, _ in SORT_KEYS[sort]:
        value = getattr(issue, name)
        values.append(value.isoformat() if isinstance(value, datetime) else value)
    text = json.dumps({"sort": sort, "after": values}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode(cursor: str, sort: str) -> list[Any]:
    """The sort key a cursor points after; InvalidInput if it is not one of ours or was made for another sort."""
    problem = f"cursor {cursor[:40]!r} is not a cursor of this list: pass next_cursor of the previous page unchanged"
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        made_for, values = data["sort"], data["after"]
        keys = SORT_KEYS[made_for]
        if not isinstance(values, list) or len(values) != len(keys):
            raise ValueError
        parsed = [_parse(name, value) for (name, _), value in zip(keys, values)]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(problem) from None
    if made_for != sort:
        raise InvalidInput(f"the cursor was made for sort={made_for}, not sort={sort}: keep the sort while paging")
    return parsed


def _parse(name: str, value: Any) -> Any:
    if name == "id":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError
        return value
    if value is None:
        if name not in NULLABLE:
            raise ValueError
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError
    return moment


def after(sort: str, values: Sequence[Any]) -> ColumnElement[bool]:
    """The condition selecting the rows strictly after ``values`` in ``sort`` order."""
    return _after(list(SORT_KEYS[sort]), list(values))


def _after(keys: list[tuple[str, bool]], values: list[Any]) -> ColumnElement[bool]:
    if not keys:
        return false()
    (name, descending), rest = keys[0], keys[1:]
    column, value = getattr(Issue, name), values[0]
    if value is None:  # in the group of empty values: only the rest of the key decides, then the filled ones
        tail = _after(rest, values[1:])
        return or_(and_(column.is_(None), tail), column.is_not(None)) if descending else and_(column.is_(None), tail)
    bound = literal(value, UTCDateTime()) if isinstance(value, datetime) else literal(value)
    beyond = column < bound if descending else column > bound
    same = and_(column == bound, _after(rest, values[1:])) if rest else false()
    condition = or_(beyond, same)
    if name in NULLABLE and not descending:
        return or_(condition, column.is_(None))
    return condition if name not in NULLABLE else and_(column.is_not(None), condition)

