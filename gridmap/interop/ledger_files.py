"""Reading a ledger file: its table (CSV or XLSX, with the history sheet) and what each column holds.

A column mapping (their header → our field) names the columns; without one, the headers of our
own export (Chinese or English) and the field names themselves are recognised.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridmap.errors import InvalidInput
from gridmap.interop.ledger_format import (
    DERIVED_FIELDS,
    HISTORY_COLUMN,
    HISTORY_SHEET,
    IGNORE,
    IMPORT_FIELDS,
    issue_columns,
)
from gridmap.issues.record_files import REQUIRED_COLUMNS, decode_text
from gridmap.json_text import parse_json

# --- mapping -----------------------------------------------------------------------------------


def builtin_mapping() -> dict[str, str]:
    """Header → field for our own export (Chinese and English headers) and the plain field names."""
    mapping: dict[str, str] = {}
    for column in [*issue_columns(), HISTORY_COLUMN]:
        for header in (column.zh, column.en, column.key):
            mapping.setdefault(header_key(header), column.key)
    for name in IMPORT_FIELDS:
        mapping.setdefault(header_key(name), name)
    return mapping


def header_key(header: Any) -> str:
    """A header compared loosely: spaces collapsed, case folded."""
    return re.sub(r"\s+", " ", str(header if header is not None else "")).strip().casefold()


def load_mapping(path: str | Path) -> dict[str, str]:
    """A column mapping from a JSON object or a two-column CSV (``column,field``; UTF-8 or GBK)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"mapping file {path} not found")
    raw = path.read_bytes()
    if path.suffix.lower() == ".json":
        mapping = parse_json(decode_text(raw, path, None), f"mapping file {path}")
        if not isinstance(mapping, dict) or not all(isinstance(k, str) for k in mapping):
            raise InvalidInput(f"mapping file {path} must be a JSON object such as "
                               '{"诉求编号": "external_id", "诉求内容": "description"}')
        return {k: ("" if v is None else str(v)) for k, v in mapping.items()}
    if path.suffix.lower() in (".csv", ".txt"):
        text = io.StringIO(decode_text(raw, path, None), newline="")
        rows = [r for r in csv.reader(text) if any(c.strip() for c in r)]
        if rows and [c.strip().lower() for c in rows[0][:2]] == ["column", "field"]:
            rows = rows[1:]
        mapping = {}
        for number, row in enumerate(rows, start=1):
            if len(row) < 2:
                raise InvalidInput(f"mapping file {path}, row {number}: give two cells, the column and the field")
            mapping[row[0].strip()] = row[1].strip()
        return mapping
    raise InvalidInput(f"mapping file {path}: give a .json or .csv file")


@dataclass(frozen=True)
class ColumnPlan:
    """How the columns of a file map to fields: field by column index, and the header of each field."""

    fields: dict[int, str]
    headers: dict[str, str]  # field -> the file's header for it
    unmapped: dict[int, str]  # index -> header, kept in the issue's ``extra``


def plan_columns(header: Sequence[Any], mapping: Mapping[str, str] | None, *, source: str) -> ColumnPlan:
    """Resolve a file's header against a mapping (then the built-in one); refuse what cannot work."""
    names = [str(h).strip() if h is not None else "" for h in header]
    by_key = {}
    for index, name in enumerate(names):
        if name:
            by_key.setdefault(header_key(name), index)
    chosen: dict[int, str] = {}
    for their, ours in (mapping or {}).items():
        index = by_key.get(header_key(their))
        if index is None:
            raise InvalidInput(
                f"the mapping names column {their!r}, which {source} does not have; its columns are: "
                + ", ".join(n for n in names if n),
                details={"column": their},
            )
        target = ours.strip()
        if target.lower() in IGNORE:
            chosen[index] = ""
            continue
        if target not in IMPORT_FIELDS and target not in DERIVED_FIELDS:
            raise InvalidInput(
                f"the mapping sends column {their!r} to {target!r}, which is not a field; use one of "
                + ", ".join(IMPORT_FIELDS) + " (or \"\" to ignore the column)",
                details={"column": their, "field": target},
            )
        chosen[index] = target
    builtin = builtin_mapping()
    for index, name in enumerate(names):
        if index not in chosen and name and header_key(name) in builtin:
            chosen[index] = builtin[header_key(name)]
    fields: dict[int, str] = {}
    headers: dict[str, str] = {}
    for index, target in sorted(chosen.items()):
        if not target:
            continue
        if target in headers:
            raise InvalidInput(f"{source}: columns {headers[target]!r} and {names[index]!r} both give {target}; "
                               "map one of them to \"\" to ignore it")
        fields[index] = target
        headers[target] = names[index]
    missing = [f for f in REQUIRED_COLUMNS if f not in headers]
    if missing:
        raise InvalidInput(
            f"{source}: no column gives {', '.join(missing)}; map the file's columns to them with --mapping, "
            'e.g. {"诉求内容": "description", "经度": "lon"}; the file\'s columns are: '
            + ", ".join(n for n in names if n),
            details={"missing": missing},
        )
    unmapped = {i: n for i, n in enumerate(names) if n and i not in chosen}
    return ColumnPlan(fields, headers, unmapped)


# --- reading files ---------------------------------------------------------------------


@dataclass
class RawTable:
    """A file's main table (header and numbered rows) and, for XLSX, its history sheet."""

    header: list[Any]
    rows: list[tuple[int, list[Any]]]
    history: RawTable | None = None
    is_csv: bool = False


def read_table(path: str | Path, *, encoding: str | None = None) -> RawTable:
    """The rows of a CSV (UTF-8, else GB18030/GBK) or XLSX ledger file, with their row numbers."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        reader = csv.reader(io.StringIO(decode_text(path.read_bytes(), path, encoding), newline=""))
        header: list[Any] | None = None
        rows: list[tuple[int, list[Any]]] = []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = cells
                continue
            if len(cells) > len(header):
                raise InvalidInput(f"{path}: line {reader.line_num} has {len(cells)} fields, the header {len(header)}")
            rows.append((reader.line_num, cells))
        if header is None:
            raise InvalidInput(f"{path}: the file is empty; the first row must name the columns")
        return RawTable(header, rows, is_csv=True)
    if suffix == ".xlsx":
        return _read_xlsx(path)
    raise InvalidInput(f"{path}: unknown file type {suffix!r}; give a .csv or .xlsx file")


def _read_xlsx(path: Path) -> RawTable:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for broken workbooks
        raise InvalidInput(f"{path}: not a readable XLSX workbook ({exc.__class__.__name__}); "
                           "save it again from Excel/WPS as .xlsx") from None
    try:
        sheets = {sheet.title: sheet for sheet in workbook.worksheets}
        tables = []
        for sheet in [workbook.worksheets[0]] + [sheets[n] for n in HISTORY_SHEET.values() if n in sheets][:1]:
            values = sheet.iter_rows(values_only=True)
            header = list(next(values, None) or [])
            rows = [(number, list(row)) for number, row in enumerate(values, start=2)
                    if any(v is not None and str(v).strip() for v in row)]
            tables.append(RawTable(header, rows))
    finally:
        workbook.close()
    if not any(h is not None and str(h).strip() for h in tables[0].header):
        raise InvalidInput(f"{path}: the first sheet is empty; its first row must name the columns")
    main = tables[0]
    main.history = tables[1] if len(tables) > 1 else None
    return main


