"""Query parameters, one parser per kind: every endpoint (API, map, exports, OGC, Open311, pages) uses these.

No web framework here: the web layer passes the request's values through, as text.

- whole numbers and paging: :func:`parse_integer`, :func:`parse_paging` (``limit``/``offset``) and
  :func:`parse_page` (``page``/``page_size``, turned into limit and offset);
- ``bbox``: :func:`parse_bbox`, ``west,south,east,north`` in WGS84 lon/lat;
- ``status``: :func:`parse_statuses`, statuses and the groups ``open`` / ``closed`` of
  :mod:`gridmap.issues.workflow` (one meaning everywhere);
- choices and yes/no: :func:`parse_choices`, :func:`parse_choice`, :func:`parse_boolean`;
- levels: :data:`LEVEL_COLUMNS` (level → the Issue column stamped with its code) and
  :data:`AREA_COLUMNS` (the same by code length).

Periods (``from``/``to``) are parsed by :func:`gridmap.dates.parse_period`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from gridmap.errors import InvalidInput
from gridmap.geo.layers import CODE_LENGTHS
from gridmap.issues.states import CLOSED_STATUSES, OPEN_STATUSES, STATUSES
from gridmap.storage.models import MAX_ROW_ID, Issue
from gridmap.storage.spatial import in_bbox

#: The Issue column holding the code of each level's area (stamped at intake).
LEVEL_COLUMNS: dict[str, Any] = {
    "districts": Issue.district_code,
    "streets": Issue.street_code,
    "communities": Issue.community_code,
    "cells": Issue.cell_code,
}
#: The same columns by the length of an area code: district 6, street 9, community 12, cell 15 digits.
AREA_COLUMNS: dict[int, Any] = {CODE_LENGTHS[level]: column for level, column in LEVEL_COLUMNS.items()}
#: Status groups accepted wherever statuses are: ``open`` (still being worked on) and ``closed`` (结案, 回访).
#: A rejected report (不予立案) is in neither group, as in the counts.
STATUS_GROUPS: dict[str, frozenset[str]] = {"open": OPEN_STATUSES, "closed": CLOSED_STATUSES}
#: The largest offset: no table holds more rows than the largest row id.
MAX_OFFSET = MAX_ROW_ID

BBox = tuple[float, float, float, float]


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def parse_integer(value: Any, name: str, default: int, low: int, high: int | None = None) -> int:
    """A whole number from query-string text within [low, high]; ``default`` when absent or empty."""
    if _blank(value):
        return default
    try:
        number = int(str(value).strip())
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, got {value!r}") from None
    if number < low or (high is not None and number > high):
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise InvalidInput(f"{name} must be {bounds}, got {number}")
    return number


def parse_paging(limit: Any, offset: Any, *, default_limit: int, max_limit: int) -> tuple[int, int]:
    """(limit, offset): limit 1…``max_limit`` (default ``default_limit``), offset 0…MAX_OFFSET (default 0)."""
    return (parse_integer(limit, "limit", default_limit, 1, max_limit),
            parse_integer(offset, "offset", 0, 0, MAX_OFFSET))


def parse_page(page: Any, page_size: Any, *, max_size: int, page_name: str = "page",
               size_name: str = "page_size") -> tuple[int, int]:
    """(limit, offset) of a numbered page: page 1… (default 1), size 1…``max_size`` (default ``max_size``)."""
    size = parse_integer(page_size, size_name, max_size, 1, max_size)
    number = parse_integer(page, page_name, 1, 1, MAX_OFFSET // max_size)
    return size, (number - 1) * size


def parse_bbox(value: Any) -> BBox | None:
    """``west,south,east,north`` in WGS84 lon/lat; None when absent.

    Four finite numbers (six: a 3D box, the heights are ignored), west ≤ east and south ≤ north
    (equal ends select a line or a point); parts beyond ±180° / ±90° are clipped to the globe,
    so a map view wider than the world still asks for everything in it.
    """
    if _blank(value):
        return None
    try:
        numbers = [float(part) for part in str(value).split(",")]
    except ValueError:
        numbers = []
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4 or not all(math.isfinite(n) for n in numbers):
        raise InvalidInput(f"bbox must be four numbers west,south,east,north (WGS84 lon/lat, "
                           f"e.g. bbox=109.40,18.20,109.45,18.25), got {value!r}")
    west, south, east, north = numbers
    if west > east or south > north:
        raise InvalidInput(f"bbox {value!r} must be west,south,east,north with west < east and south < north "
                           "(or equal, for a line or a point)")
    return max(west, -180.0), max(south, -90.0), min(east, 180.0), min(north, 90.0)


def bbox_conditions(bbox: BBox | None) -> list[Any]:
    """SQL conditions: the issue's point lies in the box (edges included), answered by the spatial index."""
    if bbox is None:
        return []
    return [in_bbox(Issue.lon, Issue.lat, bbox)]


def split_list(value: Any) -> list[str]:
    """The non-empty parts of a comma-separated value."""
    return [part.strip() for part in str(value or "").split(",") if part.strip()]


def parse_choices(value: Any, allowed: Iterable[str], name: str) -> tuple[str, ...]:
    """Comma-separated values that must each be one of ``allowed``, repeats dropped, in the order given."""
    allowed = tuple(allowed)
    values = tuple(dict.fromkeys(split_list(value)))
    unknown = [part for part in values if part not in allowed]
    if unknown:
        raise InvalidInput(f"unknown {name} {', '.join(map(repr, unknown))}; use one or more of "
                           f"{', '.join(allowed)}, separated by commas")
    return values


def parse_choice(value: Any, allowed: Iterable[str], name: str, default: str) -> str:
    """One value of ``allowed``; ``default`` when absent."""
    allowed = tuple(allowed)
    text = default if _blank(value) else str(value).strip()
    if text not in allowed:
        raise InvalidInput(f"unknown {name} {text!r}; use one of {', '.join(allowed)}")
    return text


def status_names(value: Any) -> tuple[str, ...]:
    """The names ``status`` gives, as given (statuses, ``open``, ``closed``), checked; for forms and links."""
    return parse_choices(value, (*STATUS_GROUPS, *STATUSES), "status")


def parse_statuses(value: Any) -> tuple[str, ...]:
    """Workflow statuses from ``status`` (comma-separated; ``open`` and ``closed`` stand for their groups).

    ``closed`` is the group (结案 and 回访), so ``status=closed`` selects revisited cases too, on every endpoint.
    """
    statuses: list[str] = []
    for name in split_list(value):
        if name in STATUS_GROUPS:
            statuses += sorted(STATUS_GROUPS[name])
        elif name in STATUSES:
            statuses.append(name)
        else:
            raise InvalidInput(f"unknown status {name!r}: use one of {', '.join(STATUSES)}, or open / closed")
    return tuple(dict.fromkeys(statuses))


def parse_boolean(value: Any, name: str) -> bool | None:
    """true/1/yes or false/0/no; None when absent."""
    if _blank(value):
        return None
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise InvalidInput(f"{name} must be true or false, got {value!r}")


def parse_number(value: Any, name: str, default: float, minimum: float) -> float:
    """A finite number of at least ``minimum``; ``default`` when absent."""
    if _blank(value):
        return default
    try:
        number = float(str(value).strip())
    except ValueError:
        raise InvalidInput(f"`{name}` must be a number, got {value!r}") from None
    if not (math.isfinite(number) and number >= minimum):
        raise InvalidInput(f"`{name}` must be at least {minimum:g}, got {value!r}")
    return number
