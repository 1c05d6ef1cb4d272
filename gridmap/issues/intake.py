"""Intake: turn reported problems into stored issues, located and stamped with their area codes.

One path serves every source: a single report (API, form), a CSV/XLSX/GeoJSON import and the
demo generator all go through :meth:`Intake.prepare` (validate every row, locate them all in
one vectorised call) and :meth:`Intake.write` (one transaction).  A row that is wrong or lies
outside every cell is reported by its row number, never dropped silently.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import insert

from gridmap.geo.areas import AreaIndex
from gridmap.issues.categories import CategoryTree
from gridmap.geo.crs import InputCRS, parse_crs
from gridmap.dates import CLOCK_SKEW, EARLIEST_DAY, LATEST_DAY
from gridmap.issues.dispatch import Routing
from gridmap.issues.duplicates import DuplicateRule, flag_duplicates
from gridmap.errors import GridmapError, InvalidInput, OutsideCells
from gridmap.issues.sla import WorkingCalendar, deadline
from gridmap.storage.db import Database
from gridmap.storage.models import Issue, IssueTransition
from gridmap.issues.workflow import CLOSED_STATUSES, SOURCES, STATUSES

#: Stage timestamps in workflow order, with the action and status each one records.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("registered_at", "register", "registered"),
    ("dispatched_at", "dispatch", "dispatched"),
    ("handled_at", "feedback", "handled"),
    ("checked_at", "check", "checked"),
    ("closed_at", "close", "closed"),
    ("revisited_at", "revisit", "revisited"),
)
REQUIRED_COLUMNS = ("lon", "lat", "category", "description", "reported_at")
OPTIONAL_COLUMNS = (
    "source", "address", "reporter_name", "reporter_phone", "status", "department", "assignee",
    "photos", "satisfaction", "external_id", *(stage for stage, _, _ in STAGES),
)
_DATETIME_FORMS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")


@dataclass(frozen=True)
class RowError:
    """A row that cannot be taken, with its number in the source (CSV line, feature number)."""

    row: int
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"


@dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do)."""

    rows: int
    imported: int
    errors: list[RowError] = field(default_factory=list)
    dry_run: bool = False
    issue_ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "imported": self.imported,
            "dry_run": self.dry_run,
            "errors": [{"row": e.row, "message": e.message} for e in self.errors],
        }


def parse_datetime(value: Any, tz: tzinfo) -> datetime:
    """An aware datetime from ISO 8601 text or a datetime; naive values are local time ``tz``."""
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        if not text:
            raise ValueError("is empty")
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            for form in _DATETIME_FORMS:
                try:
                    moment = datetime.strptime(text, form)
                    break
                except ValueError:
                    continue
            else:
                raise ValueError(f"{text!r} is not a date-time; use ISO 8601 such as 2025-06-01T08:30:00+08:00") from None
    if not EARLIEST_DAY <= moment.date() <= LATEST_DAY:  # beyond, time zone arithmetic overflows
        raise ValueError(f"{moment.isoformat()} is out of range: give a time between {EARLIEST_DAY} and {LATEST_DAY}")
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def _number(value: Any, name: str) -> float:
    try:
        number = float(str(value).strip()) if not isinstance(value, (int, float)) else float(value)
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number")
    return number


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip()
    return text or None


class Intake:
    """Validates, locates and stores issues against one layer set and one category tree."""

    def __init__(
        self,
        areas: AreaIndex,
        categories: CategoryTree,
        calendar: WorkingCalendar,
        timezone_name: str = "Asia/Shanghai",
        *,
        routing: Routing | None = None,
        duplicate_rule: DuplicateRule | None = None,
    ) -> None:
        self.areas = areas
        self.categories = categories
        self.calendar = calendar
        self.tz = ZoneInfo(timezone_name)
        self.routing = routing  # None: every issue goes to its category's department
        self.duplicate_rule = duplicate_rule  # None: likely duplicates are not flagged

    # --- validation ----------------------------------------------------------------------

    def prepare(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        crs: InputCRS | str | None = None,
        row_numbers: Sequence[int] | None = None,
        default_source: str = "import",
    ) -> tuple[list[dict[str, Any]], list[RowError]]:
        """Validate and locate records; return issue rows ready to write and the row errors."""
        crs = crs if isinstance(crs, InputCRS) else parse_crs(crs)
        numbers = list(row_numbers) if row_numbers is not None else list(range(1, len(records) + 1))
        rows: list[dict[str, Any]] = []
        errors: list[RowError] = []
        xs, ys, kept = [], [], []
        for number, record in zip(numbers, records):
            try:
                row = self._validate(record, default_source)
                xs.append(_number(record.get("lon"), "lon"))
                ys.append(_number(record.get("lat"), "lat"))
            except (ValueError, GridmapError) as exc:
                errors.append(RowError(number, str(getattr(exc, "message", exc))))
                continue
            rows.append(row)
            kept.append(number)
        if not rows:
            return [], errors

        lon, lat, cell = self.areas.locate_indices(np.array(xs), np.array(ys), crs)
        prepared = []
        for row, number, x, y, index, raw_x, raw_y in zip(rows, kept, lon, lat, cell, xs, ys):
            if not (-180 <= x <= 180 and -90 <= y <= 90):
                errors.append(RowError(number, range_message(raw_x, raw_y)))
                continue
            if index < 0:
                errors.append(RowError(number, f"({raw_x:g}, {raw_y:g}) lies outside every grid cell; check the coordinates, their order (lon, lat) and the CRS"))
                continue
            location = self.areas.location_at(int(index), x, y)
            row.update(
                lon=location.lon,
                lat=location.lat,
                cell_code=location.cell,
                community_code=location.community,
                street_code=location.street,
                district_code=location.district,
                department=row["department"] or self._route(row["category"], location.street),
            )
            prepared.append(row)
        errors.sort(key=lambda e: e.row)
        return prepared, errors

    def _route(self, category_code: str, street_code: str) -> str | None:
        if self.routing is not None:
            return self.routing.department_for(category_code, street_code)
        return self.categories.get(category_code).department

    def _validate(self, record: Mapping[str, Any], default_source: str) -> dict[str, Any]:
        if record.get("__error__"):
            raise ValueError(record["__error__"])
        category = self.categories.find(_text(record.get("category")) or "")
        if not category.is_leaf:
            children = ", ".join(c.code for c in self.categories.children(category.code))
            raise ValueError(f"category {category.code} ({category.name_zh}) is a class; give one of its items: {children}")
        description = _text(record.get("description"))
        if not description:
            raise ValueError("description is empty")
        source = _text(record.get("source")) or default_source
        if source not in SOURCES:
            raise ValueError(f"unknown source {source!r}; use one of {', '.join(SOURCES)}")
        status = _text(record.get("status")) or "reported"
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
        try:
            reported_at = parse_datetime(record.get("reported_at") if _text(record.get("reported_at")) else "", self.tz)
        except ValueError as exc:
            raise ValueError(f"reported_at {exc}") from None
        if reported_at > datetime.now(timezone.utc) + CLOCK_SKEW:
            raise ValueError(f"reported_at {reported_at.isoformat()} is in the future")
        row: dict[str, Any] = {
            "category": category.code,
            "description": description,
            "source": source,
            "status": status,
            "reported_at": reported_at,
            "urgency": category.urgency,
            "department": _text(record.get("department")),  # else routed once located
            "assignee": _text(record.get("assignee")),
            "address": _text(record.get("address")),
            "reporter_name": _text(record.get("reporter_name")),
            "reporter_phone": _text(record.get("reporter_phone")),
            "external_id": _text(record.get("external_id")),
            "photos": _photos(record.get("photos")),
            "satisfaction": None,
            "rework_count": 0,
            "extra": {k: v for k, v in record.items() if k not in REQUIRED_COLUMNS and k not in OPTIONAL_COLUMNS and _text(v)
                      and not k.startswith("__")},
        }
        previous = reported_at
        for stage, _, _ in STAGES:
            value = record.get(stage)
            if value is None or (not isinstance(value, datetime) and not _text(value)):
                row[stage] = None
                continue
            try:
                moment = parse_datetime(value, self.tz)
            except ValueError as exc:
                raise ValueError(f"{stage} {exc}") from None
            if moment < previous:
                raise ValueError(f"{stage} {moment.isoformat()} is earlier than the stage before it ({previous.isoformat()})")
            row[stage] = previous = moment
        if status in CLOSED_STATUSES and row["closed_at"] is None:
            raise ValueError(f"status {status} needs closed_at")
        satisfaction = _text(record.get("satisfaction"))
        if satisfaction is not None:
            score = _number(satisfaction, "satisfaction")
            if score not in (1, 2, 3, 4, 5):
                raise ValueError(f"satisfaction must be 1–5, got {satisfaction}")
            row["satisfaction"] = int(score)
        start = row["registered_at"] or reported_at
        row["deadline"] = (
            deadline(start, category.time_limit_kind, category.time_limit_value, self.calendar)
            if category.time_limit_kind and category.time_limit_value
            else None
        )
        return row

    # --- writing -------------------------------------------------------------------------

    def write(self, session, rows: Sequence[dict[str, Any]], *, actor: str, chunk: int = 2000,
              on_progress: Callable[[int], None] | None = None,
              histories: Sequence[Sequence[Mapping[str, Any]] | None] | None = None) -> list[int]:
        """Insert prepared rows and their transition histories in the caller's transaction.

        ``histories`` (one entry per row) restores a known history exactly: an entry is that
        row's transitions as IssueTransition column values without ``issue_id``, stored in the
        given order; None (or no ``histories``) rebuilds the history from the stage timestamps.
        """
        if histories is not None and len(histories) != len(rows):
            raise ValueError(f"histories has {len(histories)} entries for {len(rows)} rows")
        now = datetime.now(timezone.utc)
        ids: list[int] = []
        for start in range(0, len(rows), chunk):
            batch = [dict(row, created_at=now) for row in rows[start:start + chunk]]
            new_ids = list(session.scalars(insert(Issue).returning(Issue.id, sort_by_parameter_order=True), batch))
            transitions = []
            for offset, (issue_id, row) in enumerate(zip(new_ids, batch)):
                given = None if histories is None else histories[start + offset]
                if given is None:
                    transitions += _history(issue_id, row, actor)
                else:
                    transitions += [dict(transition, issue_id=issue_id) for transition in given]
            if histories is not None:  # one INSERT needs the same keys in every row
                keys = set().union(*transitions)
                transitions = [{key: transition.get(key) for key in keys} for transition in transitions]
            if transitions:
                session.execute(insert(IssueTransition), transitions)
            if self.duplicate_rule is not None:
                flag_duplicates(session, new_ids, self.duplicate_rule)
            ids += new_ids
            if on_progress:
                on_progress(len(batch))
        return ids

    def create(self, db: Database, record: Mapping[str, Any], *, crs: InputCRS | str | None = None,
               actor: str = "api", default_source: str = "web",
               also: Callable[[Any, int], None] | None = None) -> Issue:
        """Validate, locate and store one issue; raise InvalidInput or OutsideCells if it cannot be.

        ``also(session, issue_id)`` runs in the same transaction (e.g. to record an idempotency key).
        """
        rows, errors = self.prepare([record], crs=crs, default_source=default_source)
        if errors:
            message = errors[0].message
            if "outside every grid cell" in message:
                raise OutsideCells(message)
            raise InvalidInput(message)
        with db.session() as session:
            (issue_id,) = self.write(session, rows, actor=actor)
            if also is not None:
                also(session, issue_id)
            return session.get(Issue, issue_id)

    def import_records(
        self,
        db: Database,
        records: Sequence[Mapping[str, Any]],
        row_numbers: Sequence[int] | None = None,
        *,
        crs: InputCRS | str | None = None,
        skip_bad_rows: bool = False,
        dry_run: bool = False,
        actor: str = "import",
        default_source: str = "import",
        on_progress: Callable[[int], None] | None = None,
    ) -> ImportReport:
        """Import records in one transaction: all of them, or (with ``skip_bad_rows``) the good ones."""
        rows, errors = self.prepare(records, crs=crs, row_numbers=row_numbers, default_source=default_source)
        report = ImportReport(rows=len(records), imported=0, errors=errors, dry_run=dry_run)
        if errors and not skip_bad_rows:
            return report  # all or nothing: nothing is written
        if dry_run:
            report.imported = len(rows)  # what a real run would import
            return report
        with db.session() as session:
            report.issue_ids = self.write(session, rows, actor=actor, on_progress=on_progress)
        report.imported = len(report.issue_ids)
        return report


def range_message(x: float, y: float) -> str:
    """What is wrong with coordinates that are not lon/lat degrees in range: swapped, projected metres…."""
    from gridmap.geo.crs import check_lonlat

    try:
        check_lonlat(x, y, what="coordinates")
    except InvalidInput as exc:
        return exc.message
    return f"({x:g}, {y:g}) is out of range"


def _photos(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if str(v).strip()]
    return [part.strip() for part in re.split(r"[;\s]+", str(value)) if part.strip()]


def _history(issue_id: int, row: Mapping[str, Any], actor: str) -> list[dict[str, Any]]:
    """Transition records reconstructed from an imported issue's stage timestamps."""
    history = [dict(issue_id=issue_id, action="report", from_status=None, to_status="reported",
                    actor=actor, at=row["reported_at"], comment=None)]
    status, last = "reported", row["reported_at"]
    for stage, action, to_status in STAGES:
        if row.get(stage) is not None:
            history.append(dict(issue_id=issue_id, action=action, from_status=status, to_status=to_status,
                                actor=actor, at=row[stage], comment=None))
            status, last = to_status, row[stage]
    if row["status"] != status:
        action = {"rejected": "reject", "suspended": "suspend", "in_progress": "start"}.get(row["status"], "import")
        history.append(dict(issue_id=issue_id, action=action, from_status=status, to_status=row["status"],
                            actor=actor, at=last, comment="status as imported"))
    return history


# --- reading files -----------------------------------------------------------------------


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
    try:
        collection = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: broken JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not UTF-8; GeoJSON must be UTF-8") from None
    except (ValueError, RecursionError) as exc:  # a number of thousands of digits, arrays nested thousands deep
        raise InvalidInput(f"{path}: not usable JSON: {str(exc)[:100]}") from None
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
