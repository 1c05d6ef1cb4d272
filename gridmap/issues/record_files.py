"""Issue files: the records of a CSV, XLSX or GeoJSON points file, with their row numbers.

What the intake (:mod:`gridmap.issues.intake`) and the coverage imports read; reading knows no
rules about issues beyond the required header, so a wrong value is the intake's row error.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gridmap.errors import InvalidInput
from gridmap.json_text import parse_json

REQUIRED_COLUMNS = ("lon", "lat", "category", "description", "reported_at")


#: One batch of an issue file: its records and their row numbers (CSV line, XLSX row, feature number).
Batch = tuple[list[dict[str, Any]], list[int]]


def read_issue_file(path: Path | str, *, encoding: str | None = None) -> tuple[list[dict[str, Any]], list[int]]:
    """Records and their row numbers from a CSV, XLSX or GeoJSON file of issues."""
    return read_record_file(path, encoding=encoding, required=REQUIRED_COLUMNS)


def read_record_file(path: Path | str, *, encoding: str | None = None,
                     required: Sequence[str] = ()) -> tuple[list[dict[str, Any]], list[int]]:
    """Records and row numbers from a CSV, XLSX or GeoJSON points file whose header names ``required``."""
    records: list[dict[str, Any]] = []
    numbers: list[int] = []
    for batch, batch_numbers in iter_record_file(path, encoding=encoding, required=required, batch_rows=10_000):
        records += batch
        numbers += batch_numbers
    return records, numbers


def iter_issue_file(path: Path | str, *, encoding: str | None = None, batch_rows: int = 5000) -> Iterator[Batch]:
    """The records of an issue file in batches of ``batch_rows``, read as they are needed (constant memory)."""
    return iter_record_file(path, encoding=encoding, required=REQUIRED_COLUMNS, batch_rows=batch_rows)


def iter_record_file(path: Path | str, *, encoding: str | None = None, required: Sequence[str] = (),
                     batch_rows: int = 5000) -> Iterator[Batch]:
    """Batches of records and row numbers from a CSV, XLSX or GeoJSON points file whose header names ``required``.

    The file's type, encoding and header are checked at once (InvalidInput); CSV and XLSX rows
    are then read batch by batch; a GeoJSON file is parsed whole.
    """
    if batch_rows < 1:
        raise InvalidInput(f"the batch size must be at least 1 row, got {batch_rows}")
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix in (".geojson", ".json"):
        rows = _read_geojson_points(path)
    elif suffix == ".xlsx":
        rows = _read_xlsx(path, required)
    elif suffix in (".csv", ".txt"):
        rows = _read_csv(path, encoding, required)
    else:
        raise InvalidInput(f"{path}: unknown file type {suffix!r}; give a .csv, .xlsx or .geojson file")
    return _batches(rows, batch_rows)


def _batches(rows: Iterator[tuple[int, dict[str, Any]]], size: int) -> Iterator[Batch]:
    records: list[dict[str, Any]] = []
    numbers: list[int] = []
    for number, record in rows:
        records.append(record)
        numbers.append(number)
        if len(records) == size:
            yield records, numbers
            records, numbers = [], []
    if records:
        yield records, numbers


def decode_text(raw: bytes, path: Path, encoding: str | None) -> str:
    """Text of a file: the given encoding, else UTF-8 (BOM allowed), else GB18030 (GBK) as hotline systems export."""
    candidates = [encoding] if encoding else ["utf-8-sig", "gb18030"]
    for candidate in candidates:
        try:
            return raw.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
    raise _undecodable(path, candidates)


def _undecodable(path: Path, candidates: Sequence[str]) -> InvalidInput:
    return InvalidInput(f"{path}: cannot be read as {' or '.join(candidates)}; save it as UTF-8, or name its encoding "
                        "(--encoding; the `encoding` field of an upload)")


def text_encoding(path: Path, encoding: str | None) -> str:
    """The encoding :func:`decode_text` would choose for a file, found by decoding it in chunks (constant memory)."""
    candidates = [encoding] if encoding else ["utf-8-sig", "gb18030"]
    for candidate in candidates:
        try:
            decoder = codecs.getincrementaldecoder(candidate)()
        except LookupError:
            continue
        try:
            with path.open("rb") as stream:
                while chunk := stream.read(1 << 20):
                    decoder.decode(chunk)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return candidate
    raise _undecodable(path, candidates)


def _read_csv(path: Path, encoding: str | None, required: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Check the header now; the rows are read when iterated, the file opened only meanwhile."""
    encoding_name = text_encoding(path, encoding)
    with path.open(encoding=encoding_name, newline="") as stream:
        try:
            header = [h.strip().lower() for h in (csv.DictReader(stream).fieldnames or [])]
        except csv.Error as exc:
            raise InvalidInput(f"{path}: not a readable CSV file ({exc})") from None
    missing = [c for c in required if c not in header]
    if missing:
        raise InvalidInput(
            f"{path}: missing column(s) {', '.join(missing)}; the header must name {', '.join(required)}"
        )
    return _csv_rows(path, encoding_name, header)


def _csv_rows(path: Path, encoding_name: str, header: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding=encoding_name, newline="") as stream:
        reader = csv.DictReader(stream, fieldnames=header)
        next(reader, None)  # the header row, checked by _read_csv
        while True:
            try:
                record = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                raise InvalidInput(f"{path}: line {reader.line_num + 1} cannot be read ({exc})") from None
            if not any((v or "").strip() for v in record.values() if isinstance(v, str)):
                continue
            if None in record:
                raise InvalidInput(f"{path}: line {reader.line_num} has more fields than the header")
            if None in record.values():  # a short row: csv fills the missing fields with None
                given = sum(value is not None for value in record.values())
                record = {**record, "__error__": f"has {given} fields, the header {len(header)}"}
            yield reader.line_num, record


def _read_xlsx(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Check the header now; the rows are read when iterated, the workbook open only meanwhile."""
    workbook = _open_workbook(path)
    try:
        header = [str(h).strip().lower() if h is not None else "" for h in next(_sheet_rows(workbook), [])]
    finally:
        workbook.close()
    missing = [c for c in required if c not in header]
    if missing:
        raise InvalidInput(
            f"{path}: missing column(s) {', '.join(missing)}; the first row must name {', '.join(required)}"
        )
    return _xlsx_rows(path, header)


def _open_workbook(path: Path) -> Any:
    from openpyxl import load_workbook

    try:
        return load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for broken workbooks
        raise InvalidInput(f"{path}: not a readable XLSX workbook ({exc.__class__.__name__})") from None


def _sheet_rows(workbook: Any) -> Iterator[tuple[Any, ...]]:
    return workbook.active.iter_rows(values_only=True)


def _xlsx_rows(path: Path, header: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    workbook = _open_workbook(path)
    try:
        rows = _sheet_rows(workbook)
        next(rows, None)  # the header row, checked by _read_xlsx
        for number, values in enumerate(rows, start=2):
            if all(v is None or str(v).strip() == "" for v in values):
                continue
            yield number, {h: v for h, v in zip(header, values) if h}
    finally:
        workbook.close()


def _read_geojson_points(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    collection = parse_json(path.read_bytes(), str(path), kind="GeoJSON")
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        raise InvalidInput(f"{path}: not a GeoJSON FeatureCollection")
    return _features(collection.get("features") or [])


def _features(features: list[Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, feature in enumerate(features, start=1):
        geometry = (feature or {}).get("geometry") or {}
        properties = dict((feature or {}).get("properties") or {})
        coordinates = geometry.get("coordinates")
        if geometry.get("type") != "Point" or not isinstance(coordinates, list) or len(coordinates) < 2:
            properties.update(lon="nan", lat="nan")
            properties["__error__"] = f"feature {number} is not a Point"
        else:
            properties.update(lon=coordinates[0], lat=coordinates[1])
        yield number, properties
