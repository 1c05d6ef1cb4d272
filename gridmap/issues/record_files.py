"""Issue files: the records of a CSV, XLSX or GeoJSON points file, with their row numbers.

What the intake (:mod:`gridmap.issues.intake`) and the coverage imports read; reading knows no
rules about issues beyond the required header, so a wrong value is the intake's row error.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gridmap.errors import InvalidInput
from gridmap.json_text import parse_json

REQUIRED_COLUMNS = ("lon", "lat", "category", "description", "reported_at")


def read_issue_file(path: Path | str, *, encoding: str | None = None) -> tuple[list[dict[str, Any]], list[int]]:
    """Records and their row numbers from a CSV, XLSX or GeoJSON file of issues."""
    return read_record_file(path, encoding=encoding, required=REQUIRED_COLUMNS)


def read_record_file(path: Path | str, *, encoding: str | None = None,
                     required: Sequence[str] = ()) -> tuple[list[dict[str, Any]], list[int]]:
    """Records and row numbers from a CSV, XLSX or GeoJSON points file whose header names ``required``."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in (".geojson", ".json"):
        return _read_geojson_points(path)
    if suffix == ".xlsx":
        return _read_xlsx(path, required)
    if suffix in (".csv", ".txt"):
        return _read_csv(path, encoding, required)
    raise InvalidInput(f"{path}: unknown file type {suffix!r}; give a .csv, .xlsx or .geojson file")


def decode_text(raw: bytes, path: Path, encoding: str | None) -> str:
    """Text of a file: the given encoding, else UTF-8 (BOM allowed), else GB18030 (GBK) as hotline systems export."""
    candidates = [encoding] if encoding else ["utf-8-sig", "gb18030"]
    for candidate in candidates:
        try:
            return raw.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
    raise InvalidInput(f"{path}: cannot be read as {' or '.join(candidates)}; save it as UTF-8, or name its encoding "
                       "(--encoding; the `encoding` field of an upload)")


def _read_csv(path: Path, encoding: str | None, required: Sequence[str] = REQUIRED_COLUMNS) -> tuple[list[dict[str, Any]], list[int]]:
    text = decode_text(path.read_bytes(), path, encoding)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise InvalidInput(f"{path}: missing column(s) {', '.join(missing)}; the header must name {', '.join(required)}")
    reader.fieldnames = header
    records, numbers = [], []
    for record in reader:
        if not any((v or "").strip() for v in record.values() if isinstance(v, str)):
            continue
        if None in record:
            raise InvalidInput(f"{path}: line {reader.line_num} has more fields than the header")
        if None in record.values():  # a short row: csv fills the missing fields with None
            given = sum(value is not None for value in record.values())
            record = {**record, "__error__": f"has {given} fields, the header {len(header)}"}
        records.append(record)
        numbers.append(reader.line_num)
    return records, numbers


def _read_xlsx(path: Path, required: Sequence[str] = REQUIRED_COLUMNS) -> tuple[list[dict[str, Any]], list[int]]:
    from openpyxl import load_workbook

    try:
        sheet = load_workbook(path, read_only=True, data_only=True).active
    except Exception as exc:  # openpyxl raises many types for broken workbooks
        raise InvalidInput(f"{path}: not a readable XLSX workbook ({exc.__class__.__name__})") from None
    rows = sheet.iter_rows(values_only=True)
    header = [str(h).strip().lower() if h is not None else "" for h in next(rows, [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise InvalidInput(f"{path}: missing column(s) {', '.join(missing)}; the first row must name {', '.join(required)}")
    records, numbers = [], []
    for number, values in enumerate(rows, start=2):
        if all(v is None or str(v).strip() == "" for v in values):
            continue
        records.append({h: v for h, v in zip(header, values) if h})
        numbers.append(number)
    return records, numbers


def _read_geojson_points(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    collection = parse_json(path.read_bytes(), str(path), kind="GeoJSON")
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        raise InvalidInput(f"{path}: not a GeoJSON FeatureCollection")
    records, numbers = [], []
    for number, feature in enumerate(collection.get("features") or [], start=1):
        geometry = (feature or {}).get("geometry") or {}
        properties = dict((feature or {}).get("properties") or {})
        coordinates = geometry.get("coordinates")
        if geometry.get("type") != "Point" or not isinstance(coordinates, list) or len(coordinates) < 2:
            properties.update(lon="nan", lat="nan")
            properties["__error__"] = f"feature {number} is not a Point"
        else:
            properties.update(lon=coordinates[0], lat=coordinates[1])
        records.append(properties)
        numbers.append(number)
    return records, numbers
