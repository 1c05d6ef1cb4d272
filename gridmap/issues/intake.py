"""Intake: the one path by which reported problems become stored issues.

Every source goes through the same steps, in this order: validate each record, locate it (one
vectorised call for a batch), stamp its area codes, route it to a department, set its deadline,
check it lies in the caller's scope (:class:`gridmap.security.access.AccessScope`) — all before
anything is written — then write it in one transaction with its history (and its retry key),
and flag likely duplicates.  A single report (``POST /api/v1/issues``, Open311 ``POST requests``,
a form) uses :meth:`Intake.submit`; an import (``gridmap issues import``, the ledger import, the
demo) uses the batch form :meth:`Intake.import_records`; issues raised in another record's
transaction (a household visit) use :meth:`Intake.submit_in`.  All three share
:meth:`Intake.prepare` (the per-row steps) and :meth:`Intake.write`.  A row that is wrong or
lies outside every cell is reported by its row number, never dropped silently; its error has a
type (:class:`RowError.error`) and names its fields, so no caller reads the message's words.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from gridmap.dates import CLOCK_SKEW, EARLIEST_DAY, LATEST_DAY
from gridmap.errors import GridmapError, InvalidField, InvalidInput, OutOfScope, OutsideCells, UnknownCategory
from gridmap.geo.areas import AreaIndex
from gridmap.geo.crs import InputCRS, parse_crs
from gridmap.issues.bulk_write import DEFAULT_BATCH_ROWS, IssueWriter
from gridmap.issues.categories import CategoryTree
from gridmap.issues.dispatch import Routing
from gridmap.issues.duplicates import DuplicateRule, duplicate_distance_m
from gridmap.issues.idempotency import RetryKey, find_replay, remember
from gridmap.issues.record_files import REQUIRED_COLUMNS
from gridmap.issues.sla import WorkingCalendar, deadline
from gridmap.issues.states import CLOSED_STATUSES, SOURCES, STATUSES
from gridmap.security import audit
from gridmap.security.access import UNLIMITED, AccessScope
from gridmap.storage.db import Database
from gridmap.storage.models import Issue

#: Stage timestamps in workflow order, with the action and status each one records.
STAGES: tuple[tuple[str, str, str], ...] = (
    ("registered_at", "register", "registered"),
    ("dispatched_at", "dispatch", "dispatched"),
    ("handled_at", "feedback", "handled"),
    ("checked_at", "check", "checked"),
    ("closed_at", "close", "closed"),
    ("revisited_at", "revisit", "revisited"),
)
OPTIONAL_COLUMNS = (
    "source", "address", "reporter_name", "reporter_phone", "status", "department", "assignee",
    "photos", "satisfaction", "external_id", *(stage for stage, _, _ in STAGES),
)
_DATETIME_FORMS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d")


@dataclass(frozen=True)
class RowError:
    """A row that cannot be taken: its number in the source (CSV line, feature number), what is wrong,
    the error type a single report raises for it, the fields it is about and (out of scope) the cell."""

    row: int
    message: str
    error: type[GridmapError] = InvalidInput
    fields: tuple[str, ...] = ()
    cell: str | None = None

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"

    @classmethod
    def of(cls, row: int, exc: GridmapError) -> RowError:
        """The row error of a raised error (its type and fields kept)."""
        return cls(row, exc.message, type(exc), getattr(exc, "fields", ()))

    def exception(self) -> GridmapError:
        """The error a single report raises for this row."""
        if issubclass(self.error, InvalidField):
            return self.error(self.message, fields=self.fields)
        return self.error(self.message, details=None if self.cell is None else {"cell": self.cell})


@dataclass
class Submission:
    """What one report through :meth:`Intake.submit` did, with what an answer shows.

    ``issue`` is loaded with its transitions and escalations; ``duplicate`` is the likely original
    (or None) and ``duplicate_distance_m`` its distance in metres.
    """

    issue: Issue
    replayed: bool = False
    duplicate: Issue | None = None
    duplicate_distance_m: float | None = None

    @property
    def issue_id(self) -> int:
        return self.issue.id


@dataclass
class ImportReport:
    """What an import did (or, in a dry run, would do)."""

    rows: int
    imported: int
    errors: list[RowError] = field(default_factory=list)
    dry_run: bool = False
    issue_ids: Sequence[int] = field(default_factory=list)  # runs of consecutive ids for large imports

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
                raise ValueError(
                    f"{text!r} is not a date-time; use ISO 8601 such as 2025-06-01T08:30:00+08:00"
                ) from None
    if not EARLIEST_DAY <= moment.date() <= LATEST_DAY:  # beyond, time zone arithmetic overflows
        raise ValueError(f"{moment.isoformat()} is out of range: give a time between {EARLIEST_DAY} and {LATEST_DAY}")
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def _number(value: Any, name: str) -> float:
    try:
        number = float(str(value).strip()) if not isinstance(value, (int, float)) else float(value)
    except ValueError:
        raise InvalidField(f"{name} {value!r} is not a number", fields=(name,)) from None
    if not math.isfinite(number):
        raise InvalidField(f"{name} must be a finite number", fields=(name,))
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

    # --- the per-row steps ---------------------------------------------------------------

    def prepare(
        self,
        records: Sequence[Mapping[str, Any]],
        *,
        crs: InputCRS | str | None = None,
        row_numbers: Sequence[int] | None = None,
        default_source: str = "import",
        access: AccessScope = UNLIMITED,
    ) -> tuple[list[dict[str, Any]], list[RowError]]:
        """Validate, locate, stamp, route and scope-check records; issue rows ready to write and the row errors."""
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
            except GridmapError as exc:
                errors.append(RowError.of(number, exc))
                continue
            rows.append(row)
            kept.append(number)
        if not rows:
            return [], errors

        lon, lat, cell = self.areas.locate_indices(np.array(xs), np.array(ys), crs)
        prepared = []
        for row, number, x, y, index, raw_x, raw_y in zip(rows, kept, lon, lat, cell, xs, ys):
            if not (-180 <= x <= 180 and -90 <= y <= 90):
                errors.append(RowError(number, range_message(raw_x, raw_y), InvalidField, ("lon", "lat")))
                continue
            if index < 0:
                errors.append(RowError(number, f"({raw_x:g}, {raw_y:g}) lies outside every grid cell; check the "
                                       "coordinates, their order (lon, lat) and the CRS", OutsideCells, ("lon", "lat")))
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
            outside = _outside_scope(row, access)
            if outside:
                errors.append(RowError(number, outside, OutOfScope, ("lon", "lat"), cell=location.cell))
                continue
            prepared.append(row)
        errors.sort(key=lambda e: e.row)
        return prepared, errors

    def _route(self, category_code: str, street_code: str) -> str | None:
        if self.routing is not None:
            return self.routing.department_for(category_code, street_code)
        return self.categories.get(category_code).department

    def _validate(self, record: Mapping[str, Any], default_source: str) -> dict[str, Any]:
        if record.get("__error__"):
            raise InvalidInput(record["__error__"])
        try:
            category = self.categories.find(_text(record.get("category")) or "")
        except InvalidInput as exc:
            raise UnknownCategory(exc.message, details=exc.details) from None
        if not category.is_leaf:
            children = ", ".join(c.code for c in self.categories.children(category.code))
            raise UnknownCategory(f"category {category.code} ({category.name_zh}) is a class; "
                                  f"give one of its items: {children}")
        description = _text(record.get("description"))
        if not description:
            raise InvalidField("description is empty", fields=("description",))
        source = _text(record.get("source")) or default_source
        if source not in SOURCES:
            raise InvalidField(f"unknown source {source!r}; use one of {', '.join(SOURCES)}", fields=("source",))
        status = _text(record.get("status")) or "reported"
        if status not in STATUSES:
            raise InvalidField(f"unknown status {status!r}; use one of {', '.join(STATUSES)}", fields=("status",))
        try:
            reported_at = parse_datetime(record.get("reported_at") if _text(record.get("reported_at")) else "", self.tz)
        except ValueError as exc:
            raise InvalidField(f"reported_at {exc}", fields=("reported_at",)) from None
        if reported_at > datetime.now(UTC) + CLOCK_SKEW:
            raise InvalidField(f"reported_at {reported_at.isoformat()} is in the future", fields=("reported_at",))
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
            "extra": {k: v for k, v in record.items()
                      if k not in REQUIRED_COLUMNS and k not in OPTIONAL_COLUMNS and _text(v)
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
                raise InvalidField(f"{stage} {exc}", fields=(stage,)) from None
            if moment < previous:
                raise InvalidField(f"{stage} {moment.isoformat()} is earlier than the stage before it "
                                   f"({previous.isoformat()})", fields=(stage,))
            row[stage] = previous = moment
        if status in CLOSED_STATUSES and row["closed_at"] is None:
            raise InvalidField(f"status {status} needs closed_at", fields=("status", "closed_at"))
        satisfaction = _text(record.get("satisfaction"))
        if satisfaction is not None:
            score = _number(satisfaction, "satisfaction")
            if score not in (1, 2, 3, 4, 5):
                raise InvalidField(f"satisfaction must be 1–5, got {satisfaction}", fields=("satisfaction",))
            row["satisfaction"] = int(score)
        start = row["registered_at"] or reported_at
        row["deadline"] = (
            deadline(start, category.time_limit_kind, category.time_limit_value, self.calendar)
            if category.time_limit_kind and category.time_limit_value
            else None
        )
        return row

    # --- the write step ------------------------------------------------------------------

    def write(self, session: Session, rows: Sequence[dict[str, Any]], *, actor: str,
              on_progress: Callable[[int], None] | None = None,
              histories: Sequence[Sequence[Mapping[str, Any]] | None] | None = None,
              batch_rows: int = DEFAULT_BATCH_ROWS) -> list[int]:
        """Insert prepared rows and their transition histories in the caller's transaction; flag duplicates.

        ``histories`` (one entry per row) restores a known history exactly: an entry is that
        row's transitions as IssueTransition column values without ``issue_id``, stored in the
        given order; None (or no ``histories``) rebuilds the history from the stage timestamps.
        """
        if histories is not None and len(histories) != len(rows):
            raise ValueError(f"histories has {len(histories)} entries for {len(rows)} rows")
        writer = IssueWriter(session, actor=actor, duplicate_rule=self.duplicate_rule, batch_rows=batch_rows,
                             row_by_row=len(rows) <= audit.ROWS_LOGGED_ONE_BY_ONE)
        ids: list[int] = []
        for start in range(0, len(rows), batch_rows):
            batch = rows[start:start + batch_rows]
            given = [None] * len(batch) if histories is None else histories[start:start + batch_rows]
            ids += writer.write(batch, [history_of(row, actor) if known is None else known
                                        for row, known in zip(batch, given)])
            if on_progress:
                on_progress(len(batch))
        writer.finish()
        return ids

    # --- the three forms of the one path -------------------------------------------------

    def submit(self, db: Database, record: Mapping[str, Any], *, access: AccessScope = UNLIMITED,
               actor: str = "api", crs: InputCRS | str | None = None, default_source: str = "web",
               retry: RetryKey | None = None, also: Callable[[Session, int], None] | None = None) -> Submission:
        """Take one report: every per-row step, then write it with its retry key in one transaction.

        Raises the row's typed error (InvalidInput and its kinds, OutsideCells, OutOfScope) with
        nothing written. A retry with a known ``retry`` key answers the issue made the first time
        (``replayed``); ``also(session, issue_id)`` runs in the writing transaction.
        """
        known = None if retry is None else find_replay(db, retry)
        if known is None:
            try:
                with db.session() as session:
                    (issue_id,) = self.submit_in(session, [record], access=access, actor=actor, crs=crs,
                                                 default_source=default_source)
                    if retry is not None:
                        remember(session, retry, issue_id)
                    if also is not None:
                        also(session, issue_id)
                    return _submission(session, issue_id, replayed=False)
            except IntegrityError:  # a concurrent retry stored the key first; its issue is the one
                known = None if retry is None else find_replay(db, retry)
                if known is None:
                    raise
        with db.sessions() as session:
            return _submission(session, known, replayed=True)

    def create(self, db: Database, record: Mapping[str, Any], **options: Any) -> Issue:
        """The issue :meth:`submit` stored (a shorthand for callers that need only the issue)."""
        return self.submit(db, record, **options).issue

    def submit_in(self, session: Session, records: Sequence[Mapping[str, Any]], *, access: AccessScope = UNLIMITED,
                  actor: str, crs: InputCRS | str | None = None,
                  crs_each: Sequence[InputCRS | str | None] | None = None, default_source: str = "web") -> list[int]:
        """Take reports inside the caller's transaction (all or none): ids, or the first bad one's typed error.

        ``crs_each`` gives each record its own CRS (else ``crs`` is every record's). Nothing is
        written unless every record passes every step.
        """
        crses = list(crs_each) if crs_each is not None else [crs] * len(records)
        rows: list[dict[str, Any]] = []
        for number, (record, record_crs) in enumerate(zip(records, crses, strict=True), start=1):
            prepared, errors = self.prepare([record], crs=record_crs, row_numbers=[number],
                                            default_source=default_source, access=access)
            if errors:
                raise errors[0].exception()
            rows += prepared
        return self.write(session, rows, actor=actor)

    def check_batch(self, records: Sequence[Mapping[str, Any]], *, access: AccessScope = UNLIMITED,
                    crs: InputCRS | str | None = None, row_numbers: Sequence[int] | None = None,
                    default_source: str = "import") -> tuple[list[dict[str, Any]], list[RowError]]:
        """The checking half of the batch form: :meth:`prepare`, and OutOfScope if any row lies outside ``access``.

        The ledger import calls it (and then :meth:`write`) to restore exported fields in between.
        """
        rows, errors = self.prepare(records, crs=crs, row_numbers=row_numbers, default_source=default_source,
                                    access=access)
        refuse_out_of_scope(errors, access)
        return rows, errors

    def import_records(self, db: Database, records: Sequence[Mapping[str, Any]],
                       row_numbers: Sequence[int] | None = None, **options: Any) -> ImportReport:
        """The batch form for records in memory: :meth:`import_batches` of one batch."""
        numbers = list(row_numbers) if row_numbers is not None else list(range(1, len(records) + 1))
        return self.import_batches(db, [(records, numbers)], **options)

    def import_batches(
        self,
        db: Database,
        batches: Iterable[tuple[Sequence[Mapping[str, Any]], Sequence[int]]],
        *,
        access: AccessScope = UNLIMITED,
        crs: InputCRS | str | None = None,
        skip_bad_rows: bool = False,
        dry_run: bool = False,
        actor: str = "import",
        default_source: str = "import",
        on_progress: Callable[[int], None] | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
    ) -> ImportReport:
        """Import (records, row numbers) batches in one transaction: all rows, or (``skip_bad_rows``) the good ones.

        Each batch is checked (every per-row step) and written before the next is read, so memory
        does not grow with the file. The first bad row stops the writing, not the checking: every
        bad row is reported, and the transaction is rolled back. A row outside ``access`` refuses
        the whole import (OutOfScope), ``skip_bad_rows`` or not.
        """
        crs = crs if isinstance(crs, InputCRS) else parse_crs(crs)
        report = ImportReport(rows=0, imported=0, dry_run=dry_run)
        try:
            with db.session() as session:
                writer = None if dry_run else IssueWriter(session, actor=actor, duplicate_rule=self.duplicate_rule,
                                                          batch_rows=batch_rows)
                for records, numbers in batches:
                    rows, errors = self.prepare(records, crs=crs, row_numbers=numbers, default_source=default_source,
                                                access=access)
                    report.rows += len(records)
                    report.errors += errors
                    report.imported += len(rows)
                    if errors and (not skip_bad_rows or any(issubclass(e.error, OutOfScope) for e in errors)):
                        writer = None  # all or nothing: keep checking to report every bad row, write no more
                    if writer is not None:
                        for start in range(0, len(rows), batch_rows):
                            batch = rows[start:start + batch_rows]
                            writer.write(batch, [history_of(row, actor) for row in batch])
                    if on_progress:
                        on_progress(len(records))
                refuse_out_of_scope(report.errors, access)
                if writer is None:
                    raise _Discard
                writer.finish()
                report.issue_ids = writer.ids
        except _Discard:
            pass
        if report.errors and not skip_bad_rows:
            report.imported = 0  # nothing was written
        return report


class _Discard(Exception):
    """Roll the import's transaction back: a dry run, or a bad row without ``skip_bad_rows``."""


def _outside_scope(row: Mapping[str, Any], access: AccessScope) -> str | None:
    """Why a located, routed issue row lies outside ``access``, or None when inside."""
    if not access.covers_cell(row["cell_code"]):
        return f"the location is in cell {row['cell_code']}, outside your areas; nothing was stored"
    if access.departments is not None and row["department"] not in access.departments:
        return f"the issue goes to department {row['department']}, outside your departments; nothing was stored"
    return None


def refuse_out_of_scope(errors: Sequence[RowError], access: AccessScope) -> None:
    """OutOfScope naming the first few rows outside ``access``: an import with one such row writes nothing."""
    outside = [error for error in errors if issubclass(error.error, OutOfScope)]
    if not outside:
        return
    listed = "; ".join(f"row {error.row}: cell {error.cell}" for error in outside[:5])
    more = f" and {len(outside) - 5} more" if len(outside) > 5 else ""
    areas = f" ({', '.join(access.areas)})" if access.areas is not None else ""
    raise OutOfScope(f"issues outside your areas{areas}: {listed}{more}; nothing was written",
                     details={"outside": [{"where": f"row {error.row}", "cell": error.cell} for error in outside]})


def _submission(session: Session, issue_id: int, *, replayed: bool) -> Submission:
    """The stored issue with its history and escalations loaded, and its likely original if any."""
    issue = session.scalars(select(Issue).where(Issue.id == issue_id)
                            .options(selectinload(Issue.transitions), selectinload(Issue.escalations))).one()
    answer = Submission(issue, replayed=replayed)
    original = None if issue.possible_duplicate_of is None else session.get(Issue, issue.possible_duplicate_of)
    if original is not None:
        answer.duplicate, answer.duplicate_distance_m = original, duplicate_distance_m(issue, original)
    return answer


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


def history_of(row: Mapping[str, Any], actor: str) -> list[dict[str, Any]]:
    """The transitions of an imported issue (without its id), rebuilt from its stage timestamps."""
    history = [dict(action="report", from_status=None, to_status="reported", actor=actor, at=row["reported_at"],
                    comment=None)]
    status, last = "reported", row["reported_at"]
    for stage, action, to_status in STAGES:
        if row.get(stage) is not None:
            history.append(dict(action=action, from_status=status, to_status=to_status, actor=actor, at=row[stage],
                                comment=None))
            status, last = to_status, row[stage]
    if row["status"] != status:
        action = {"rejected": "reject", "suspended": "suspend", "in_progress": "start"}.get(row["status"], "import")
        history.append(dict(action=action, from_status=status, to_status=row["status"], actor=actor, at=last,
                            comment="status as imported"))
    return history
