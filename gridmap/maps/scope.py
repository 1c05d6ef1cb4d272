"""Which areas a map shows: one area of the hierarchy (drill-down) or a manager's list of areas.

Area codes nest by prefix — a cell's 15-digit code starts with its community's 12 digits, its
street's 9 and its district's 6 — so "inside an area" is "code starts with the area's code", both
for the areas of the layer set and for the codes stamped on issues.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import or_

from gridmap.errors import InvalidInput, NotFound
from gridmap.geo.layers import CODE_LENGTHS, LEVELS, LayerSet
from gridmap.issues.params import AREA_COLUMNS

LEVEL_OF_LENGTH: dict[int, str] = {length: level for level, length in CODE_LENGTHS.items()}
#: Most codes one scope may name (a manager's communities and cells).
MAX_SCOPE_CODES = 500


@dataclass(frozen=True)
class AreaRef:
    """One area of the layer set: its code, level, name and bounds (lon/lat, WGS84)."""

    code: str
    level: str
    name: str
    bounds: tuple[float, float, float, float]


class AreaCatalogue:
    """Every area of a layer set by code, with its children, in code order."""

    def __init__(self, layers: LayerSet) -> None:
        self.layers = layers
        self._areas: dict[str, AreaRef] = {}
        self._codes: dict[str, list[str]] = {}
        for level in LEVELS:
            frame = layers.level(level).sort_values("code")
            codes = [str(code) for code in frame["code"]]
            self._codes[level] = codes
            for code, name, bounds in zip(codes, frame["name"], frame.geometry.bounds.itertuples(index=False)):
                self._areas[code] = AreaRef(code, level, str(name), tuple(float(v) for v in bounds))

    def get(self, code: str) -> AreaRef:
        """The area with this code; NotFound when the layer set has none."""
        try:
            return self._areas[code]
        except KeyError:
            raise NotFound(f"no area has the code {code!r} in the active layer set") from None

    def codes(self, level: str) -> list[str]:
        """Every code of a level, sorted."""
        return self._codes[level]

    def inside(self, level: str, prefix: str) -> list[str]:
        """The codes of ``level`` that start with ``prefix`` (an area and what is inside it)."""
        codes = self._codes[level]
        start = bisect.bisect_left(codes, prefix)
        end = bisect.bisect_left(codes, prefix + "\x7f")
        return codes[start:end]

    def children(self, code: str) -> list[AreaRef]:
        """The areas one level below an area (a cell has none)."""
        level = self.get(code).level
        index = LEVELS.index(level)
        if index + 1 == len(LEVELS):
            return []
        return [self._areas[c] for c in self.inside(LEVELS[index + 1], code)]

    def ancestors(self, code: str) -> list[AreaRef]:
        """The areas above an area and the area itself, district first."""
        self.get(code)
        return [
            self._areas[code[:n]] for n in sorted(CODE_LENGTHS.values()) if n <= len(code) and code[:n] in self._areas
        ]

    @cached_property
    def top(self) -> tuple[str, ...]:
        """The codes of the districts: the scope of a map of everything."""
        return tuple(self._codes["districts"])


@dataclass(frozen=True)
class AreaScope:
    """A set of areas, none inside another, in code order."""

    codes: tuple[str, ...]

    @classmethod
    def parse(cls, text: str | None, catalogue: AreaCatalogue, *, default_all: bool = True) -> AreaScope:
        """Areas from ``CODE[,CODE…]``; every code must exist. Empty: every district, or InvalidInput."""
        codes = [part.strip() for part in (text or "").split(",") if part.strip()]
        if not codes:
            if default_all:
                return cls(catalogue.top)
            raise InvalidInput("give the areas as ?area=CODE[,CODE…] (community or cell codes, e.g. 460204001001)")
        if len(codes) > MAX_SCOPE_CODES:
            raise InvalidInput(f"too many areas ({len(codes)}); give at most {MAX_SCOPE_CODES} codes")
        for code in codes:
            if not code.isdigit() or len(code) not in LEVEL_OF_LENGTH:
                raise InvalidInput(
                    f"area {code!r} is not an area code: give 6 (district), 9 (street), 12 (community) "
                    "or 15 (cell) digits"
                )
            catalogue.get(code)
        return cls.of(codes)

    @classmethod
    def of(cls, codes) -> AreaScope:
        """The scope of these codes, dropping any code inside another one."""
        kept: list[str] = []
        for code in sorted(set(codes), key=lambda c: (len(c), c)):
            if not any(code.startswith(outer) for outer in kept):
                kept.append(code)
        return cls(tuple(sorted(kept)))

    @property
    def single(self) -> str | None:
        """The one area of a drill-down view; None for a list of areas."""
        return self.codes[0] if len(self.codes) == 1 else None

    def contains(self, code: str) -> bool:
        """True when ``code`` is one of the areas or inside one."""
        return code.startswith(self.codes)

    def inside(self, catalogue: AreaCatalogue, level: str) -> list[str]:
        """The codes of ``level`` inside the scope, sorted."""
        found: list[str] = []
        for code in self.codes:  # sorted and none inside another: the ranges come in order, disjoint
            if len(code) <= CODE_LENGTHS[level]:
                found += catalogue.inside(level, code)
        return found

    def condition(self, on: Any = None):
        """SQL condition: the issue lies in one of the areas (by the codes stamped at intake; ``on``: the rollup's)."""
        columns = {
            length: (column if on is None else getattr(on, column.key)) for length, column in AREA_COLUMNS.items()
        }
        return or_(*(columns[len(code)] == code for code in self.codes))

    def bounds(self, catalogue: AreaCatalogue) -> tuple[float, float, float, float]:
        """The lon/lat bounds (minx, miny, maxx, maxy) of all the areas."""
        boxes = [catalogue.get(code).bounds for code in self.codes]
        return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))

    def param(self) -> str:
        """The scope as the ``area`` query parameter."""
        return ",".join(self.codes)
