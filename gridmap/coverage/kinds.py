"""Household kinds (户类): the operator-edited CSV of kinds and its copy in the ``household_kinds`` table.

The file (``gridmap/data/household_kinds.csv``, setting ``household_kinds``) gives each kind a
code, names, whether it is a key household (重点户) and how often it must be visited
(``visit_interval_months``); it is copied into the table whenever coverage data is written or
read through :class:`gridmap.coverage.households.HouseholdRegistry`, so that the metrics need
only a database session.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from gridmap.errors import InvalidInput
from gridmap.issues.sla import read_csv_records
from gridmap.resources import resource
from gridmap.storage.coverage import Household, HouseholdKind

#: The household kinds shipped with gridmap (setting ``household_kinds`` chooses another file).
BUNDLED_HOUSEHOLD_KINDS = resource("data/household_kinds.csv")
KIND_COLUMNS = ("code", "name_zh", "name_en", "key", "visit_interval_months", "description")
_TRUE = {"yes", "y", "true", "1", "是", "重点"}
_FALSE = {"no", "n", "false", "0", "否", ""}


@dataclass(frozen=True)
class HouseholdKindSpec:
    """One household kind of the kinds file."""

    code: str
    name_zh: str
    name_en: str
    key: bool
    visit_interval_months: int
    description: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The kind as stored and served by the API."""
        return {"code": self.code, "name_zh": self.name_zh, "name_en": self.name_en, "key": self.key,
                "visit_interval_months": self.visit_interval_months, "description": self.description}


class HouseholdKinds:
    """The household kinds of one file, found by code or by Chinese or English name."""

    def __init__(self, kinds: Sequence[HouseholdKindSpec], source: str = "the household kinds") -> None:
        self.kinds = tuple(kinds)
        self.source = source
        self._by_text = {}
        for kind in self.kinds:
            for text in (kind.code, kind.name_zh, kind.name_en):
                self._by_text.setdefault(text.strip().lower(), kind)

    def __iter__(self):
        return iter(self.kinds)

    def __len__(self) -> int:
        return len(self.kinds)

    def find(self, text: str) -> HouseholdKindSpec:
        """The kind named by ``text`` (code, 中文名 or English name); ValueError listing the choices."""
        kind = self._by_text.get(str(text).strip().lower())
        if kind is None:
            choices = ", ".join(f"{k.code} ({k.name_zh})" for k in self.kinds)
            raise ValueError(f"unknown household kind {text!r}; use one of {choices}")
        return kind


def load_household_kinds(path: str | Path | None = None) -> HouseholdKinds:
    """Read and validate a household kinds CSV (default: the bundled file); every problem is reported."""
    path = Path(path) if path else BUNDLED_HOUSEHOLD_KINDS
    try:
        stat = path.stat()
    except OSError:
        raise InvalidInput(f"household kinds file {path} does not exist") from None
    return _read_kinds(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _read_kinds(path: str, mtime_ns: int, size: int) -> HouseholdKinds:
    _, records = read_csv_records(Path(path), required=KIND_COLUMNS[:5], what="household kinds file")
    kinds, problems, seen = [], [], set()
    for line, row in records:
        code = row.get("code", "")
        try:
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", code):
                raise ValueError(f"code {code!r} must be lower-case letters, digits and _ (at most 32), starting with "
                                 "a letter")
            if code in seen:
                raise ValueError(f"code {code} appears twice")
            if not row.get("name_zh"):
                raise ValueError("name_zh is empty")
            key = row.get("key", "").lower()
            if key not in _TRUE | _FALSE:
                raise ValueError(f"key must be yes or no, got {row.get('key')!r}")
            try:
                interval = int(row.get("visit_interval_months", ""))
            except ValueError:
                raise ValueError("visit_interval_months must be a whole number of months, got "
                                 f"{row.get('visit_interval_months')!r}") from None
            if not 1 <= interval <= 120:
                raise ValueError(f"visit_interval_months must be 1–120, got {interval}")
        except ValueError as exc:
            problems.append(f"line {line}: {exc}")
            continue
        seen.add(code)
        kinds.append(HouseholdKindSpec(code, row["name_zh"], row.get("name_en") or code, key in _TRUE, interval,
                                       row.get("description", "")))
    if problems:
        raise InvalidInput(f"household kinds file {path} has {len(problems)} problem(s): " + "; ".join(problems),
                           details={"path": path, "problems": problems})
    if not kinds:
        raise InvalidInput(f"household kinds file {path} defines no kind")
    return HouseholdKinds(kinds, source=path)


def sync_household_kinds(session: Session, kinds: HouseholdKinds) -> None:
    """Make the ``household_kinds`` table match the file; a kind dropped from it stays while households have it."""
    stored = {kind.code: kind for kind in session.scalars(select(HouseholdKind))}
    for spec in kinds:
        row = stored.pop(spec.code, None)
        values = spec.as_dict()
        if row is None:
            session.add(HouseholdKind(**values))
        elif any(getattr(row, key) != value for key, value in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
    if stored:
        used = set(session.scalars(select(Household.kind).where(Household.kind.in_(list(stored))).distinct()))
        unused = [code for code in stored if code not in used]
        if unused:
            session.execute(delete(HouseholdKind).where(HouseholdKind.code.in_(unused)))
    session.flush()
