"""The category tree of events (事件) and components (部件): a CSV file the operator edits.

One row per category (UTF-8; the bundled ``gridmap/data/categories.csv`` opens in Excel/WPS)::

    standard,kind,code,parent_code,name_zh,name_en,department,urgency,time_limit_kind,time_limit_value,description
    CJ/T 214-2007,event,E01,,市容环境,City appearance,,,,,
    CJ/T 214-2007,event,E0102,E01,暴露垃圾,Exposed garbage,环卫所,normal,working_hours,4,…

- ``kind``: ``event`` or ``component``. Codes carry the kind's letter so the two never collide:
  events ``E01`` (major) / ``E0102`` (minor), components ``C01`` / ``C0118``. A minor's code is
  its parent's code plus digits; ``parent_code`` is empty for majors. Two levels only.
- ``standard``: where the class comes from (``CJ/T 214-2007``, ``local``…); several standards may
  coexist in one file, codes are unique across it.
- ``urgency``: ``urgent``, ``high``, ``normal`` or ``low``.
- ``time_limit_kind`` / ``time_limit_value``: see :class:`gridmap.issues.sla.TimeLimitKind`; a positive
  number (fractions allowed).
- A major with minors may leave department, urgency and time limit empty; every category without
  minors (the ones issues are filed under) must have all three.

:func:`load_categories` validates the whole file and reports every problem with its line and
column, so an operator can fix them in one pass.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from gridmap.errors import InvalidInput
from gridmap.issues.sla import TimeLimitKind, excel_column, read_csv_records
from gridmap.resources import resource

#: The category tree shipped with gridmap (setting ``GRIDMAP_CATEGORIES`` chooses another file).
BUNDLED_CATEGORIES = resource("data/categories.csv")

COLUMNS = (
    "standard",
    "kind",
    "code",
    "parent_code",
    "name_zh",
    "name_en",
    "department",
    "urgency",
    "time_limit_kind",
    "time_limit_value",
    "description",
)


class CategoryKind(StrEnum):
    """Events (事件: things that happen) or components (部件: things that are installed)."""

    event = "event"
    component = "component"

    @property
    def prefix(self) -> str:
        """The letter every code of this kind starts with."""
        return "E" if self is CategoryKind.event else "C"


class Urgency(StrEnum):
    """How urgent a category is by default."""

    urgent = "urgent"
    high = "high"
    normal = "normal"
    low = "low"


@dataclass(frozen=True)
class Category:
    """One class of the tree: a major (level 1) or a minor (level 2) event or component."""

    standard: str
    kind: CategoryKind
    code: str
    parent_code: str | None
    name_zh: str
    name_en: str
    department: str | None
    urgency: Urgency | None
    time_limit_kind: TimeLimitKind | None
    time_limit_value: float | None
    description: str = ""
    is_leaf: bool = True

    @property
    def level(self) -> int:
        """1 for a major class, 2 for a minor one."""
        return 1 if self.parent_code is None else 2


class CategoryTree:
    """The categories of one file, by code, in file order."""

    def __init__(self, categories: list[Category], source: str = "the category tree") -> None:
        self._by_code: dict[str, Category] = {category.code: category for category in categories}
        self._children: dict[str, list[Category]] = {}
        for category in categories:
            if category.parent_code is not None:
                self._children.setdefault(category.parent_code, []).append(category)
        self._by_name: dict[str, list[Category]] = {}
        for category in categories:
            for name in {category.name_zh, category.name_en.casefold()} - {""}:
                self._by_name.setdefault(name, []).append(category)
        self.source = source

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code.strip().upper() in self._by_code

    def __iter__(self) -> Iterator[Category]:
        return iter(self._by_code.values())

    def __len__(self) -> int:
        return len(self._by_code)

    def __repr__(self) -> str:
        return f"CategoryTree({len(self)} categories from {self.source!r})"

    def get(self, code: str) -> Category:
        """The category with this code; InvalidInput suggesting close codes if there is none."""
        key = str(code).strip().upper()
        if key in self._by_code:
            return self._by_code[key]
        hint = ""
        by_name = self._by_name.get(str(code).strip()) or self._by_name.get(str(code).strip().casefold())
        if by_name:
            codes = " or ".join(c.code for c in by_name)
            hint = f"; {code!r} is a category name, not a code: its code is {codes}"
        else:
            close = difflib.get_close_matches(key, list(self._by_code), n=3, cutoff=0.6)
            if close:
                hint = "; did you mean " + ", ".join(f"{c} ({self._by_code[c].name_zh})" for c in close) + "?"
        raise InvalidInput(
            f"unknown category code {code!r}{hint} (categories are read from {self.source}; "
            "add the category there or set GRIDMAP_CATEGORIES to another file)",
            details={"code": str(code)},
        )

    def children(self, code: str) -> list[Category]:
        """The minors of a major category (empty for a minor); InvalidInput for an unknown code."""
        return list(self._children.get(self.get(code).code, []))

    def majors(self) -> list[Category]:
        """The level-1 categories, in file order."""
        return [category for category in self if category.parent_code is None]

    def leaves(self) -> list[Category]:
        """The categories without minors: the ones issues are filed under."""
        return [category for category in self if category.is_leaf]

    def find(self, text: str, kind: CategoryKind | str | None = None) -> Category:
        """The category whose code, Chinese name or English name (any case) is ``text``."""
        wanted = None if kind is None else _parse_enum(CategoryKind, kind, "category kind")
        key = str(text).strip()
        if not key:
            raise InvalidInput("empty category: give a code such as E0102 or a name such as 暴露垃圾")
        if key.upper() in self._by_code:
            matches = [self._by_code[key.upper()]]
        else:
            matches = self._by_name.get(key) or self._by_name.get(key.casefold(), [])
        if wanted is not None:
            matches = [category for category in matches if category.kind is wanted]
        if len(matches) == 1:
            return matches[0]
        if matches:
            listed = ", ".join(f"{c.code} ({c.kind.value} {c.name_zh})" for c in matches)
            raise InvalidInput(
                f"category {text!r} is ambiguous: it names {listed}; give the code instead",
                details={"text": key, "codes": [c.code for c in matches]},
            )
        names = {name: found[0] for name, found in self._by_name.items()}
        close = [names[n] for n in difflib.get_close_matches(key.casefold(), list(names), n=3, cutoff=0.5)]
        codes = difflib.get_close_matches(key.upper(), list(self._by_code), n=3, cutoff=0.6)
        close += [self._by_code[c] for c in codes]
        suggested = list(dict.fromkeys(close))[:3]
        hint = ""
        if suggested:
            hint = "; did you mean " + ", ".join(f"{c.code} ({c.name_zh})" for c in suggested) + "?"
        scope = "" if wanted is None else f" {wanted.value}"
        raise InvalidInput(
            f"no{scope} category has the code or name {text!r}{hint} (categories are read from {self.source})",
            details={"text": key},
        )


def _parse_enum(enum: type[StrEnum], value: object, what: str) -> StrEnum:
    try:
        return enum(str(value).strip().lower())
    except ValueError:
        raise InvalidInput(f"unknown {what} {value!r}: use one of {', '.join(m.value for m in enum)}") from None


def load_categories(path: str | Path | None = None) -> CategoryTree:
    """The validated category tree of a CSV file (None: the bundled one); cached until it changes."""
    resolved = Path(BUNDLED_CATEGORIES if path is None else path).resolve()
    try:
        stat = resolved.stat()
    except OSError:
        raise InvalidInput(
            f"category file {resolved} does not exist: give the path of a categories CSV "
            f"(the bundled one is {BUNDLED_CATEGORIES})"
        ) from None
    return _load_cached(str(resolved), stat.st_mtime_ns, stat.st_size)


_CODE = re.compile(r"^[A-Z][0-9]{2,}$")
_Enum = TypeVar("_Enum", bound=StrEnum)


def _a(kind: CategoryKind) -> str:
    return "an event" if kind is CategoryKind.event else "a component"


class _Problems:
    """The problems found in one file, each with its line and spreadsheet column."""

    def __init__(self, header: list[str]) -> None:
        self.header = header
        self.found: list[tuple[int, str]] = []

    def add(self, line: int, column: str, message: str) -> None:
        self.found.append((line, f"line {line}, column {excel_column(self.header, column)}: {message}"))

    def messages(self) -> list[str]:
        return [message for _, message in sorted(self.found, key=lambda item: item[0])]


@lru_cache(maxsize=16)
def _load_cached(path: str, mtime_ns: int, size: int) -> CategoryTree:
    file = Path(path)
    header, records = read_csv_records(file, required=COLUMNS, what="category file")
    problems = _Problems(header)
    first_line: dict[str, int] = {}  # code -> the line that first uses it, valid or not
    parsed: list[tuple[int, Category]] = []
    for line, row in records:
        category = _parse_row(line, row, problems, first_line)
        if category is not None:
            parsed.append((line, category))
    categories = _link_tree(parsed, problems, first_line)
    if problems.found:
        messages = problems.messages()
        raise InvalidInput(
            f"category file {file} has {len(messages)} problem(s):\n" + "\n".join(messages),
            details={"path": str(file), "problems": messages},
        )
    return CategoryTree(categories, source=str(file))


def _parse_row(line: int, row: dict[str, str], problems: _Problems, first_line: dict[str, int]) -> Category | None:
    """The category of one row, or None after reporting what is wrong with it."""
    before = len(problems.found)
    kind = _row_enum(line, row, "kind", CategoryKind, problems, "use event (事件) or component (部件)")
    code = row["code"].upper()
    parent = row["parent_code"].upper() or None
    if not code:
        problems.add(line, "code", "the code is empty; give one such as E0102 or C0118")
    elif not _CODE.match(code):
        problems.add(
            line, "code",
            f"code {row['code']!r} must be a letter (E for events, C for components) followed by digits, e.g. E0102",
        )
    elif kind is not None and not code.startswith(kind.prefix):
        problems.add(line, "code", f"code {code} of {_a(kind)} must start with {kind.prefix}")
    elif parent is None and len(code) != 3:
        problems.add(
            line, "code",
            f"code {code} has no parent_code, so it is a major, and major codes are a letter and 2 digits "
            f"(e.g. {code[:3]}); fill parent_code if {code} is a minor",
        )
    elif code in first_line:
        problems.add(
            line, "code",
            f"code {code} is used twice (first on line {first_line[code]}); codes are unique across the file",
        )
    first_line.setdefault(code, line)
    if not row["standard"]:
        problems.add(line, "standard", "the standard is empty; give e.g. CJ/T 214-2007, or local for a local addition")
    if not row["name_zh"]:
        problems.add(line, "name_zh", "the Chinese name is empty")
    urgency = _row_enum(line, row, "urgency", Urgency, problems)
    limit_kind = _row_enum(line, row, "time_limit_kind", TimeLimitKind, problems, label="time-limit kind")
    limit_value = _row_time_limit(line, row, problems)
    if len(problems.found) > before or kind is None:
        return None
    return Category(
        standard=row["standard"],
        kind=kind,
        code=code,
        parent_code=parent,
        name_zh=row["name_zh"],
        name_en=row["name_en"],
        department=row["department"] or None,
        urgency=urgency,
        time_limit_kind=limit_kind,
        time_limit_value=limit_value,
        description=row["description"],
    )


def _row_enum(
    line: int,
    row: dict[str, str],
    column: str,
    enum: type[_Enum],
    problems: _Problems,
    hint: str | None = None,
    label: str | None = None,
) -> _Enum | None:
    """The enum member named in ``column`` (None if empty, except for kind), reporting an unknown name."""
    text = row[column]
    if not text and column != "kind":
        return None
    try:
        return enum(text.lower())
    except ValueError:
        hint = hint or f"use one of {', '.join(member.value for member in enum)}"
        problems.add(line, column, f"unknown {label or column} {text!r}; {hint}")
        return None


def _row_time_limit(line: int, row: dict[str, str], problems: _Problems) -> float | None:
    """The time-limit value (None if empty), reporting one that is not a positive number."""
    kind_text, value_text = row["time_limit_kind"], row["time_limit_value"]
    if bool(kind_text) != bool(value_text):
        given, empty = ("time_limit_kind", "time_limit_value") if kind_text else ("time_limit_value", "time_limit_kind")
        problems.add(line, empty, f"{empty} is empty while {given} is given: give both or neither")
    if not value_text:
        return None
    try:
        value = float(value_text)
    except ValueError:
        problems.add(line, "time_limit_value", f"time limit {value_text!r} is not a number")
        return None
    if not 0 < value < float("inf"):
        problems.add(line, "time_limit_value", f"time limit {value_text} must be a positive number")
        return None
    return value


def _link_tree(
    parsed: list[tuple[int, Category]], problems: _Problems, first_line: dict[str, int]
) -> list[Category]:
    """The parsed rows with their parents checked and ``is_leaf`` set; problems reported."""
    by_code = {category.code: category for _, category in parsed}
    parents = {category.parent_code for _, category in parsed if category.parent_code}
    categories: list[Category] = []
    for line, category in parsed:
        parent = category.parent_code
        if parent is not None:
            if parent not in by_code:
                if parent not in first_line:  # else the parent's own row is wrong and already reported
                    problems.add(
                        line, "parent_code",
                        f"parent {parent} does not exist; add its row (parent_code empty) or correct the code",
                    )
                continue
            major = by_code[parent]
            if major.parent_code is not None:
                problems.add(
                    line, "parent_code",
                    f"parent {parent} is itself a minor (under {major.parent_code}); "
                    "the tree has two levels, so the parent must be a major",
                )
                continue
            if major.kind is not category.kind:
                problems.add(
                    line, "parent_code",
                    f"parent {parent} is {_a(major.kind)} but {category.code} is {_a(category.kind)}; "
                    "a minor has the kind of its major",
                )
                continue
            if not (category.code.startswith(parent) and len(category.code) > len(parent)):
                problems.add(
                    line, "code", f"code {category.code} must start with its parent's code {parent} (e.g. {parent}01)"
                )
                continue
        is_leaf = category.code not in parents
        if is_leaf:
            what = "minor" if parent is not None else "major without minors"
            for column, value, needed in (
                ("department", category.department, "a department"),
                ("urgency", category.urgency, "an urgency"),
                ("time_limit_kind", category.time_limit_value, "a time limit (time_limit_kind and time_limit_value)"),
            ):
                if value is None:
                    problems.add(
                        line, column, f"{category.code} is a {what}, so issues are filed under it: it needs {needed}"
                    )
        categories.append(replace(category, is_leaf=is_leaf))
    return categories
