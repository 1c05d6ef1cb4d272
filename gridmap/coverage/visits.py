"""Home visits (入户走访): recorded one at a time (API, form) or imported, with the issues raised at them.

Each visit is stamped with the cell the household lived in that day. Issues raised at a visit go
through the one intake path (:meth:`gridmap.issues.intake.Intake.submit_in`, source ``visit``,
in the visit's transaction) at the household's location unless given their own, and are linked
to the visit; existing issues may be linked by id. A visit in a cell outside the caller's
``access``, or an issue raised there, is refused (:class:`gridmap.errors.Forbidden`) before
anything is written; an import with one such row writes nothing.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gridmap.coverage.metrics import refuse_outside
from gridmap.coverage.records import CoverageImportReport, Rollback, find_household
from gridmap.coverage.records import text_value as _text
from gridmap.errors import AlreadyRecorded, Forbidden, GridmapError, InvalidInput, NotFound, OutOfScope
from gridmap.geo.crs import InputCRS
from gridmap.issues.intake import RowError, parse_datetime
from gridmap.security.access import UNLIMITED, AccessScope
from gridmap.storage.coverage import HouseholdLocation, Visit, VisitIssue
from gridmap.storage.models import Issue

if TYPE_CHECKING:
    from gridmap.issues.intake import Intake
    from gridmap.storage.db import Database

VISIT_REQUIRED = ("household", "visitor", "visited_at")
VISIT_OPTIONAL = ("notes", "issue_ids", "issue_category", "issue_description", "issue_lon", "issue_lat",
                  "issue_address")


def _issue_ids(value: Any) -> list[int]:
    if value is None:
        return []
    parts = value if isinstance(value, (list, tuple)) else re.split(r"[;,\s]+", str(value))
    ids = []
    for part in parts:
        text = _text(part)
        if text is None:
            continue
        try:
            ids.append(int(text))
        except ValueError:
            raise ValueError(f"issue id {text!r} is not a number") from None
    return ids


class VisitRecords:
    """The visits part of the household registry (a base of :class:`gridmap.coverage.households.HouseholdRegistry`)."""

    db: Database
    intake: Intake
    tz: ZoneInfo

    def sync_kinds(self, session: Session | None = None) -> None:
        """Copy the kinds file into the database (the registry does)."""
        raise NotImplementedError

    def _validate_visit(self, record: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        if record.get("__error__"):
            raise ValueError(record["__error__"])
        household = _text(record.get("household"))
        if household is None:
            raise ValueError("household is empty: give its id or external_id")
        visitor = _text(record.get("visitor"))
        if not visitor:
            raise ValueError("visitor is empty")
        if len(visitor) > 100:
            raise ValueError("visitor is longer than 100 characters")
        raw_time = record.get("visited_at")
        try:
            visited_at = parse_datetime(raw_time if raw_time not in (None, "") else "", self.tz)
        except ValueError as exc:
            raise ValueError(f"visited_at {exc}") from None
        if visited_at > now:
            raise ValueError(f"visited_at {visited_at.isoformat()} is in the future")
        issues = []
        given = record.get("issues")
        if given is not None:
            if not isinstance(given, list) or not all(isinstance(item, Mapping) for item in given):
                raise ValueError("issues must be a list of objects with category and description")
            issues = [dict(item) for item in given]
        elif _text(record.get("issue_category")) or _text(record.get("issue_description")):
            issues = [{"category": record.get("issue_category"), "description": record.get("issue_description"),
                       "lon": record.get("issue_lon"), "lat": record.get("issue_lat"),
                       "address": record.get("issue_address")}]
        return {"household": household, "visitor": visitor, "visited_at": visited_at,
                "visited_on": visited_at.astimezone(self.tz).date(), "notes": _text(record.get("notes")),
                "issue_ids": _issue_ids(record.get("issue_ids")), "issues": issues}

    def _write_visit(self, session: Session, spec: dict[str, Any], *, source: str, actor: str,
                     crs: InputCRS | str | None, this_import: dict[tuple[int, datetime], int],
                     access: AccessScope = UNLIMITED, label: str = "") -> tuple[int, list[int]]:
        """Check a validated visit against the database and write it with its issues; a typed error if it cannot be.

        InvalidInput (and its kinds), OutsideCells or AlreadyRecorded for a bad row; Forbidden (the
        caller's transaction rolls back) when the visit or an issue raised at it lies outside ``access``.
        """
        household = find_household(session, spec["household"], access)
        if household is None:
            raise InvalidInput(f"no household {spec['household']!r} (give its id or external_id)")
        location = session.scalar(
            select(HouseholdLocation).where(
                HouseholdLocation.household_id == household.id, HouseholdLocation.valid_from <= spec["visited_on"],
                or_(HouseholdLocation.valid_to.is_(None), HouseholdLocation.valid_to > spec["visited_on"])))
        if location is None:
            span = session.execute(select(HouseholdLocation.valid_from, HouseholdLocation.valid_to)
                                   .where(HouseholdLocation.household_id == household.id)
                                   .order_by(HouseholdLocation.valid_from)).all()
            left = span[-1][1]
            until = f" until {left}" if left else ""
            raise InvalidInput(f"household {spec['household']} was not in the registry on {spec['visited_on']} "
                             f"(registered from {span[0][0]}{until})")
        refuse_outside(access,
                       [(label or f"household {spec['household']} on {spec['visited_on']}", location.cell_code)],
                       "the visit lies")
        key = (household.id, spec["visited_at"])
        visit_id = this_import.get(key)
        if visit_id is None:
            existing = session.scalar(select(Visit.id).where(Visit.household_id == household.id,
                                                             Visit.visited_at == spec["visited_at"]))
            if existing is not None:
                raise AlreadyRecorded(f"this visit is already recorded (visit {existing})")
        missing = [i for i in spec["issue_ids"] if not _issue_in_scope(session.get(Issue, i), access)]
        if missing:
            raise InvalidInput(f"no issue with id {', '.join(map(str, missing))}")
        new_issue_ids = self._raise_issues(session, spec, household.name, location, crs=crs, actor=actor,
                                           access=access, label=label)
        if visit_id is None:
            visit = Visit(household_id=household.id, visitor=spec["visitor"], visited_at=spec["visited_at"],
                          visited_on=spec["visited_on"], cell_code=location.cell_code, notes=spec["notes"],
                          source=source, created_at=datetime.now(UTC))
            session.add(visit)
            session.flush()
            visit_id = this_import[key] = visit.id
        linked = set(session.scalars(select(VisitIssue.issue_id).where(VisitIssue.visit_id == visit_id)))
        for issue_id in [*spec["issue_ids"], *new_issue_ids]:
            if issue_id not in linked:
                session.add(VisitIssue(visit_id=visit_id, issue_id=issue_id))
                linked.add(issue_id)
        session.flush()
        return visit_id, new_issue_ids

    def _raise_issues(self, session: Session, spec: Mapping[str, Any], reporter: str | None,
                      location: HouseholdLocation, *, crs: InputCRS | str | None, actor: str, access: AccessScope,
                      label: str) -> list[int]:
        """Take the issues raised at a visit through the intake, in the visit's transaction; their ids."""
        if not spec["issues"]:
            return []
        records, crs_each = [], []
        for item in spec["issues"]:
            record = {**item, "reported_at": spec["visited_at"], "source": "visit",
                      "reporter_name": item.get("reporter_name") or reporter}
            at_home = _text(record.get("lon")) is None and _text(record.get("lat")) is None
            if at_home:  # the stored location is WGS84 already
                record.update(lon=location.lon, lat=location.lat,
                              address=_text(item.get("address")) or location.address)
            records.append(record)
            crs_each.append(None if at_home else crs)
        try:
            return self.intake.submit_in(session, records, crs_each=crs_each, access=access, actor=actor,
                                         default_source="visit")
        except OutOfScope as exc:
            try:  # the import's words: which row, which cell
                refuse_outside(access, [(label or "an issue raised at the visit", (exc.details or {}).get("cell"))],
                               "issues raised at the visit lie")
            except Forbidden as refused:
                raise OutOfScope(refused.message, details=refused.details) from None
            raise
        except GridmapError as exc:
            raise _prefixed(exc, "issue raised at the visit: ") from None

    def record_visit(self, record: Mapping[str, Any], *, source: str = "api", actor: str = "api",
                     crs: InputCRS | str | None = None, now: datetime | None = None,
                     access: AccessScope = UNLIMITED) -> dict[str, Any]:
        """Record one visit (API or form) to a household in ``access`` with the issues raised at it; return the stored
        visit."""
        now = now or datetime.now(UTC)
        try:
            spec = self._validate_visit(record, now)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        with self.db.session() as session:
            self.sync_kinds(session)
            if find_household(session, spec["household"], access) is None:
                raise NotFound(f"no household {spec['household']!r} (give its id or external_id)")
            visit_id, _ = self._write_visit(session, spec, source=source, actor=actor, crs=crs, this_import={},
                                            access=access)
            return visit_detail(session, visit_id, access=access)

    def import_visits(self, records: Sequence[Mapping[str, Any]], row_numbers: Sequence[int] | None = None, *,
                      crs: InputCRS | str | None = None, skip_bad_rows: bool = False, dry_run: bool = False,
                      actor: str = "import", now: datetime | None = None,
                      access: AccessScope = UNLIMITED) -> CoverageImportReport:
        """Import visits in one transaction; rows with the same household and time are one visit with several issues.

        Households outside ``access`` are not found (a bad row); a visit or an issue in a cell outside
        it refuses the whole import (Forbidden).
        """
        now = now or datetime.now(UTC)
        numbers = list(row_numbers) if row_numbers is not None else list(range(1, len(records) + 1))
        report = CoverageImportReport(rows=len(records), imported=0, dry_run=dry_run)
        specs = []
        for number, record in zip(numbers, records):
            try:
                specs.append((number, self._validate_visit(record, now)))
            except ValueError as exc:
                report.errors.append(RowError(number, str(exc)))
            except GridmapError as exc:
                report.errors.append(RowError.of(number, exc))
        if report.errors and not skip_bad_rows:
            return report
        try:
            with self.db.session() as session:
                self.sync_kinds(session)
                this_import: dict[tuple[int, datetime], int] = {}
                for number, spec in specs:
                    try:  # every check comes before the first write, so a bad row leaves nothing behind
                        visit_id, issue_ids = self._write_visit(session, spec, source="import", actor=actor,
                                                                crs=crs, this_import=this_import, access=access,
                                                                label=f"row {number}")
                    except Forbidden:
                        raise  # outside the scope: the whole import is refused
                    except GridmapError as exc:
                        report.errors.append(RowError.of(number, exc))
                        continue
                    report.imported += 1
                    report.issues_created += len(issue_ids)
                    if visit_id not in report.ids:
                        report.ids.append(visit_id)
                report.errors.sort(key=lambda e: e.row)
                if (report.errors and not skip_bad_rows) or dry_run:
                    raise Rollback
        except Rollback:
            report.ids = []
            if not dry_run:
                report.imported = report.issues_created = 0
        return report


def _prefixed(exc: GridmapError, prefix: str) -> GridmapError:
    """The same error (type, fields, details) with its message prefixed by where it arose."""
    again = copy.copy(exc)
    again.message = prefix + exc.message
    again.args = (again.message,)
    return again


def _issue_in_scope(issue: Issue | None, access: AccessScope) -> bool:
    return issue is not None and access.covers_issue(issue)


def visit_detail(session: Session, visit_id: int, *, access: AccessScope) -> dict[str, Any]:
    """A stored visit in a cell of ``access`` as a dict (household, visitor, time, cell, notes, linked issue ids)."""
    visit = session.scalar(select(Visit).where(Visit.id == visit_id, access.cell_condition(Visit.cell_code)))
    if visit is None:
        raise NotFound(f"no visit with id {visit_id}")
    issue_ids = sorted(session.scalars(select(VisitIssue.issue_id).where(VisitIssue.visit_id == visit_id)))
    return {"id": visit.id, "household_id": visit.household_id, "visitor": visit.visitor,
            "visited_at": visit.visited_at.isoformat(), "visited_on": visit.visited_on.isoformat(),
            "cell_code": visit.cell_code, "notes": visit.notes, "source": visit.source, "issue_ids": issue_ids}
