"""Households (户): the registry and its address history.

- **Kinds** of household come from the kinds file (:mod:`gridmap.coverage.kinds`).
- **Households** are imported from CSV/XLSX/GeoJSON points like issues: located with the layer
  set's locator (lon/lat, in any CRS the intake accepts) or given a cell code; every bad row is
  reported by its row number and the import is one transaction (all or nothing, unless
  ``skip_bad_rows``; ``dry_run`` writes nothing). A row whose ``external_id`` is already
  registered updates that household; if its location changed, that is a **move** effective
  ``moved_on`` (default today): the old address stays in ``household_locations`` with
  ``valid_to = moved_on`` and the new one starts that day, so past periods keep counting the
  household where it lived then.
- **Visits** (:mod:`gridmap.coverage.visits`) are recorded through the same registry.
- **Scopes**: reads take the asking principal's ``access``; a household is inside it when
  its current address (or its last one, if it left) lies in a cell of the scope, a visit when the
  cell it was stamped with does. Outside, a household or visit does not exist for that principal
  (NotFound, the same message as for a missing one). Writes take ``access`` too: a household
  registered or moved to a cell outside it is refused with :class:`gridmap.errors.Forbidden`
  before anything is written; an import with one such row writes nothing.
  :func:`mask_household` hides name and phone from roles without ``personal:read``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from sqlalchemy import func, insert, or_, select
from sqlalchemy.orm import Session

from gridmap.coverage.kinds import HouseholdKinds, load_household_kinds, sync_household_kinds
from gridmap.coverage.metrics import check_area_code, next_visit_due, refuse_outside
from gridmap.coverage.records import (
    CoverageImportReport,
    Rollback,
    current_location,
    household_or_404,
    latest_cells,
)
from gridmap.coverage.records import text_value as _text
from gridmap.coverage.visits import VisitRecords, visit_detail
from gridmap.errors import Conflict, GridmapError, InvalidField, InvalidInput, OutsideCells
from gridmap.geo.crs import InputCRS, parse_crs
from gridmap.issues.intake import RowError, range_message
from gridmap.security.access import UNLIMITED, AccessScope, mask_name, mask_phone
from gridmap.storage.coverage import Household, HouseholdKind, HouseholdLocation, Visit

if TYPE_CHECKING:
    from gridmap.geo.areas import AreaIndex
    from gridmap.issues.intake import Intake
    from gridmap.storage.db import Database


class CoverageParts(Protocol):
    """What the registry needs of a configured gridmap (the core façade has it; a test may pass its own)."""

    @property
    def db(self) -> Database: ...
    @property
    def areas(self) -> AreaIndex: ...
    @property
    def intake(self) -> Intake: ...
    @property
    def settings(self) -> Mapping[str, Any]: ...
    @property
    def timezone(self) -> str: ...


HOUSEHOLD_REQUIRED = ("address", "kind")
HOUSEHOLD_OPTIONAL = ("lon", "lat", "cell", "members", "external_id", "name", "phone", "registered_on", "moved_on")
MAX_MEMBERS = 99



# --- kinds ----------------------------------------------------------------------------------------


# --- parsing helpers ------------------------------------------------------------------------------------


def _number(value: Any, name: str) -> float:
    try:
        number = float(value) if isinstance(value, (int, float)) else float(str(value).strip())
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number")
    return number


def parse_day_value(value: Any, name: str) -> date | None:
    """A local day from ISO text (2026-06-01, 2026/6/1), a date or a datetime; None when empty."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    if text is None:
        return None
    match = re.fullmatch(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})(?:[ T]00:00(?::00)?)?", text)
    if match:
        try:
            return date(*map(int, match.groups()))
        except ValueError:
            pass
    raise ValueError(f"{name} {text!r} is not a date; use 2026-06-01")


def _members(value: Any) -> int:
    text = _text(value)
    if text is None:
        return 1
    number = _number(text, "members")
    if number != int(number) or not 1 <= number <= MAX_MEMBERS:
        raise ValueError(f"members must be a whole number from 1 to {MAX_MEMBERS}, got {text}")
    return int(number)


# --- the registry ---------------------------------------------------------------------------------------


class HouseholdRegistry(VisitRecords):
    """Households, their addresses over time and their visits, against one layer set and kinds file."""

    def __init__(self, db: Database, areas: AreaIndex, kinds: HouseholdKinds, intake: Intake,
                 timezone_name: str = "Asia/Shanghai") -> None:
        self.db = db
        self.areas = areas
        self.kinds = kinds
        self.intake = intake
        self.tz = ZoneInfo(timezone_name)
        self._cell_index = {code: i for i, code in enumerate(areas.cell_codes)}
        self._cell_points: dict[int, tuple[float, float]] = {}

    @classmethod
    def for_core(cls, gm: CoverageParts) -> HouseholdRegistry:
        """The registry of a configured core (its database, layer set, kinds file and time zone)."""
        return cls(gm.db, gm.areas, load_household_kinds(gm.settings.get("household_kinds")), gm.intake, gm.timezone)

    def today(self, now: datetime | None = None) -> date:
        """Today's local date (or ``now``'s)."""
        return (now or datetime.now(UTC)).astimezone(self.tz).date()

    def sync_kinds(self, session: Session | None = None) -> None:
        """Copy the kinds file into the database."""
        if session is not None:
            sync_household_kinds(session, self.kinds)
            return
        with self.db.session() as own:
            sync_household_kinds(own, self.kinds)

    # --- locating ---------------------------------------------------------------------------------

    def _cell_point(self, index: int) -> tuple[float, float]:
        if index not in self._cell_points:
            point = shapely.point_on_surface(self.areas.layers.cells.geometry.values[index])
            self._cell_points[index] = (round(point.x, 7), round(point.y, 7))
        return self._cell_points[index]

    def locate_rows(self, specs: Sequence[dict[str, Any]], crs: InputCRS | str | None) -> list[GridmapError | None]:
        """Fill each spec's location fields in place from its lon/lat or cell; an error per spec or None.

        The error is OutsideCells for a point outside every cell, else InvalidField naming the fields.
        """
        crs = crs if isinstance(crs, InputCRS) else parse_crs(crs)
        messages: list[GridmapError | None] = [None] * len(specs)
        with_point = [i for i, spec in enumerate(specs) if spec.get("x") is not None]
        if with_point:
            xs = np.array([specs[i]["x"] for i in with_point])
            ys = np.array([specs[i]["y"] for i in with_point])
            lon, lat, index = self.areas.locate_indices(xs, ys, crs)
            for i, x, y, cell in zip(with_point, lon, lat, index):
                spec = specs[i]
                if not (-180 <= x <= 180 and -90 <= y <= 90):  # swapped, projected metres…: say which
                    messages[i] = InvalidField(range_message(spec["x"], spec["y"]), fields=("lon", "lat"))
                    continue
                if cell < 0:
                    messages[i] = OutsideCells(f"({spec['x']:g}, {spec['y']:g}) lies outside every grid cell; check "
                                               "the coordinates, their order (lon, lat) and the CRS")
                    continue
                location = self.areas.location_at(int(cell), x, y)
                if spec.get("cell") and spec["cell"] != location.cell:
                    messages[i] = InvalidField(f"({spec['x']:g}, {spec['y']:g}) lies in cell {location.cell}, not in "
                                               f"the given cell {spec['cell']}", fields=("lon", "lat", "cell"))
                    continue
                spec.update(lon=location.lon, lat=location.lat, located_by="point", cell_code=location.cell,
                            community_code=location.community, street_code=location.street,
                            district_code=location.district)
        for i, spec in enumerate(specs):
            if spec.get("x") is not None or messages[i]:
                continue
            index = self._cell_index.get(spec.get("cell") or "")
            if index is None:
                messages[i] = InvalidField(f"unknown cell {spec.get('cell')!r}: give the 15-digit code of a cell of "
                                           "the layer set" if spec.get("cell") else "give lon and lat, or cell",
                                           fields=("cell",) if spec.get("cell") else ("lon", "lat", "cell"))
                continue
            lon, lat = self._cell_point(index)
            location = self.areas.location_at(index, lon, lat)
            spec.update(lon=location.lon, lat=location.lat, located_by="cell", cell_code=location.cell,
                        community_code=location.community, street_code=location.street, district_code=location.district)
        return messages

    @staticmethod
    def _location_spec(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
        """x, y (as given, before CRS conversion) and cell of a record; ValueError on half a point."""
        lon, lat = _text(record.get(prefix + "lon")), _text(record.get(prefix + "lat"))
        cell = _text(record.get(prefix + "cell"))
        if (lon is None) != (lat is None):
            raise ValueError(f"give both {prefix}lon and {prefix}lat, or neither")
        spec: dict[str, Any] = {"x": None, "y": None, "cell": cell}
        if lon is not None:
            spec.update(x=_number(lon, prefix + "lon"), y=_number(lat, prefix + "lat"))
        return spec

    # --- households ---------------------------------------------------------------------------------

    def _validate_household(self, record: Mapping[str, Any], today: date) -> dict[str, Any]:
        if record.get("__error__"):
            raise ValueError(record["__error__"])
        address = _text(record.get("address"))
        if not address:
            raise ValueError("address is empty")
        if len(address) > 300:
            raise ValueError("address is longer than 300 characters")
        kind_text = _text(record.get("kind"))
        if not kind_text:
            raise ValueError("kind is empty")
        kind = self.kinds.find(kind_text)
        spec = self._location_spec(record)
        registered_on = parse_day_value(record.get("registered_on"), "registered_on") or today
        moved_on = parse_day_value(record.get("moved_on"), "moved_on")
        for name, day in (("registered_on", registered_on), ("moved_on", moved_on)):
            if day is not None and day > today:
                raise ValueError(f"{name} {day} is in the future")
        external_id = _text(record.get("external_id"))
        if external_id and len(external_id) > 64:
            raise ValueError("external_id is longer than 64 characters")
        spec.update(
            address=address, kind=kind.code, members=_members(record.get("members")), external_id=external_id,
            name=_text(record.get("name")), phone=_text(record.get("phone")), registered_on=registered_on,
            moved_on=moved_on, members_given=_text(record.get("members")) is not None,
        )
        return spec

    def prepare_households(self, records: Sequence[Mapping[str, Any]], *, crs: InputCRS | str | None = None,
                           row_numbers: Sequence[int] | None = None, now: datetime | None = None
                           ) -> tuple[list[tuple[int, dict[str, Any]]], list[RowError]]:
        """Validate and locate household records; (row number, spec) pairs ready to write, and the row errors."""
        numbers = list(row_numbers) if row_numbers is not None else list(range(1, len(records) + 1))
        today = self.today(now)
        specs, kept, errors = [], [], []
        for number, record in zip(numbers, records):
            try:
                specs.append(self._validate_household(record, today))
                kept.append(number)
            except GridmapError as exc:
                errors.append(RowError.of(number, exc))
            except ValueError as exc:
                errors.append(RowError(number, str(exc)))
        problems = self.locate_rows(specs, crs)
        prepared = []
        for number, spec, problem in zip(kept, specs, problems):
            if problem is not None:
                errors.append(RowError.of(number, problem))
            else:
                prepared.append((number, spec))
        errors.sort(key=lambda e: e.row)
        return prepared, errors

    def import_households(self, records: Sequence[Mapping[str, Any]], row_numbers: Sequence[int] | None = None, *,
                          crs: InputCRS | str | None = None, skip_bad_rows: bool = False, dry_run: bool = False,
                          now: datetime | None = None, access: AccessScope = UNLIMITED) -> CoverageImportReport:
        """Register (or update and move) households in one transaction; bad rows by number, nothing half-written.

        A row in a cell outside ``access``, or updating a household outside it, refuses the whole
        import (Forbidden), ``skip_bad_rows`` or not.
        """
        prepared, errors = self.prepare_households(records, crs=crs, row_numbers=row_numbers, now=now)
        refuse_outside(access, ((f"row {number}", spec["cell_code"]) for number, spec in prepared), "households")
        report = CoverageImportReport(rows=len(records), imported=0, errors=errors, dry_run=dry_run)
        if errors and not skip_bad_rows:
            return report
        now = now or datetime.now(UTC)
        try:
            with self.db.session() as session:
                self.sync_kinds(session)
                ids, moved, db_errors = self._write_households(session, prepared, now=now, access=access)
                report.errors = sorted(report.errors + db_errors, key=lambda e: e.row)
                report.ids, report.moved, report.imported = ids, moved, len(prepared) - len(db_errors)
                if (db_errors and not skip_bad_rows) or dry_run:
                    raise Rollback
        except Rollback:
            report.ids = []
            if not dry_run:
                report.imported = report.moved = 0
        return report

    def _write_households(self, session: Session, prepared: Sequence[tuple[int, dict[str, Any]]], *, now: datetime,
                          access: AccessScope = UNLIMITED) -> tuple[list[int], int, list[RowError]]:
        """Insert new households in batches, update known ones (moves included); return ids, moves, row errors."""
        external = sorted({spec["external_id"] for _, spec in prepared if spec["external_id"]})
        known: dict[str, int] = {}
        for start in range(0, len(external), 500):
            chunk = external[start:start + 500]
            known.update(session.execute(select(Household.external_id, Household.id)
                                         .where(Household.external_id.in_(chunk))).all())
        if access.areas is not None and known:  # updating a household elsewhere is writing outside the scope
            current = latest_cells(session, list(known.values()))
            refuse_outside(access, ((f"row {number} (external_id {spec['external_id']}, registered already)",
                                     current.get(known[spec["external_id"]]))
                                    for number, spec in prepared if spec["external_id"] in known), "households")
        ids: list[int] = []
        errors: list[RowError] = []
        moved = 0
        pending: list[dict[str, Any]] = []
        pending_external: set[str] = set()

        def flush() -> None:
            new_ids = self.insert_households(session, pending, now=now)
            for spec, new_id in zip(pending, new_ids):
                if spec["external_id"]:
                    known[spec["external_id"]] = new_id
            ids.extend(new_ids)
            pending.clear()
            pending_external.clear()

        for number, spec in prepared:
            external_id = spec["external_id"]
            if external_id and (external_id in known or external_id in pending_external):
                if external_id in pending_external:
                    flush()
                try:
                    moved += self._update_household(session, known[external_id], spec, now=now)
                except ValueError as exc:
                    errors.append(RowError(number, str(exc)))
                    continue
                ids.append(known[external_id])
                continue
            pending.append(spec)
            if external_id:
                pending_external.add(external_id)
            if len(pending) >= 2000:
                flush()
        flush()
        return ids, moved, errors

    @staticmethod
    def insert_households(session: Session, specs: Sequence[dict[str, Any]], *, now: datetime) -> list[int]:
        """Bulk-insert new households with their first location (specs as prepared); return their ids."""
        if not specs:
            return []
        rows = [{"external_id": s["external_id"], "name": s["name"], "phone": s["phone"], "kind": s["kind"],
                 "members": s["members"], "created_at": now, "updated_at": now} for s in specs]
        new_ids = list(session.scalars(insert(Household).returning(Household.id, sort_by_parameter_order=True), rows))
        session.execute(insert(HouseholdLocation), [
            {"household_id": household_id, "valid_from": s["registered_on"], "valid_to": None, **_location_fields(s)}
            for household_id, s in zip(new_ids, specs)
        ])
        return new_ids

    def _update_household(self, session: Session, household_id: int, spec: dict[str, Any], *, now: datetime) -> int:
        """Apply an import row to a registered household; a changed location is a move. Return 1 if moved."""
        household = session.get(Household, household_id)
        household.kind = spec["kind"]
        if spec["members_given"]:
            household.members = spec["members"]
        household.name = spec["name"] or household.name
        household.phone = spec["phone"] or household.phone
        household.updated_at = now
        current = current_location(session, household_id)
        if current is None:
            raise ValueError(f"household {spec['external_id']} has left the registry; register it again under a new "
                             "external_id")
        same = (current.cell_code == spec["cell_code"] and current.address == spec["address"]
                and abs(current.lon - spec["lon"]) < 1e-7 and abs(current.lat - spec["lat"]) < 1e-7)
        if same:
            return 0
        moved_on = spec["moved_on"] or self.today(now)
        self._move(session, current, spec, moved_on)
        return 1

    @staticmethod
    def _move(session: Session, current: HouseholdLocation, spec: dict[str, Any], moved_on: date) -> None:
        if moved_on <= current.valid_from:
            raise ValueError(f"moved_on {moved_on} must be after {current.valid_from}, the day the current address "
                             f"({current.address}) took effect")
        if session.scalar(select(Visit.id).where(Visit.household_id == current.household_id,
                                                 Visit.visited_on >= moved_on).limit(1)) is not None:
            raise ValueError(f"visits on or after {moved_on} were recorded at the old address; "
                             "a move must come after the household's last recorded visit")
        current.valid_to = moved_on
        session.add(HouseholdLocation(household_id=current.household_id, valid_from=moved_on, valid_to=None,
                                      **_location_fields(spec)))
        session.flush()

    def create_household(self, record: Mapping[str, Any], *, crs: InputCRS | str | None = None,
                         now: datetime | None = None, access: AccessScope = UNLIMITED) -> dict[str, Any]:
        """Register one household (API); InvalidInput/OutsideCells/Conflict/Forbidden say what is wrong."""
        prepared, errors = self.prepare_households([record], crs=crs, now=now)
        if errors:
            raise errors[0].exception()
        (_, spec), = prepared
        refuse_outside(access, [("the address", spec["cell_code"])], "the household lies")
        now = now or datetime.now(UTC)
        with self.db.session() as session:
            self.sync_kinds(session)
            if spec["external_id"] and session.scalar(
                select(Household.id).where(Household.external_id == spec["external_id"])
            ):
                raise Conflict(f"a household with external_id {spec['external_id']} is already registered; "
                               "to record a move, POST to its /move")
            (household_id,) = self.insert_households(session, [spec], now=now)
            return household_detail(session, household_id, as_of=self.today(now), access=access)

    def move_household(self, household_id: int, record: Mapping[str, Any], *, crs: InputCRS | str | None = None,
                       now: datetime | None = None, access: AccessScope = UNLIMITED) -> dict[str, Any]:
        """Record that a household in ``access`` moved to a new address in it (``moved_on``, default today)."""
        today = self.today(now)
        try:
            spec = self._location_spec(record)
            spec["address"] = _text(record.get("address"))
            moved_on = parse_day_value(record.get("moved_on"), "moved_on") or today
            if moved_on > today:
                raise ValueError(f"moved_on {moved_on} is in the future")
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        problem = self.locate_rows([spec], crs)[0]
        if problem is not None:
            raise problem
        with self.db.session() as session:
            current = current_location(session, household_or_404(session, household_id, access).id)
            if current is None:
                raise Conflict(f"household {household_id} has left the registry")
            refuse_outside(access, [("the new address", spec["cell_code"])], "the new address lies")
            spec["address"] = spec["address"] or current.address
            try:
                self._move(session, current, spec, moved_on)
            except ValueError as exc:
                raise Conflict(str(exc)) from None
            return household_detail(session, household_id, as_of=today, access=access)

    def household_leaves(self, household_id: int, left_on: Any = None, *, now: datetime | None = None,
                         access: AccessScope = UNLIMITED) -> dict[str, Any]:
        """Take a household in ``access`` out of the registry from ``left_on`` (moved out of the district,
        dissolved)."""
        today = self.today(now)
        try:
            day = parse_day_value(left_on, "left_on") or today
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        with self.db.session() as session:
            current = current_location(session, household_or_404(session, household_id, access).id)
            if current is None:
                raise Conflict(f"household {household_id} has already left the registry")
            if day <= current.valid_from:
                raise Conflict(f"left_on {day} must be after {current.valid_from}, when its current address took "
                               "effect")
            current.valid_to = day
            session.flush()
            return household_detail(session, household_id, as_of=today, access=access)

# --- reading back -------------------------------------------------------------------------------------------


def _location_fields(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {key: spec[key] for key in ("address", "lon", "lat", "located_by", "cell_code", "community_code",
                                       "street_code", "district_code")}


def mask_household(row: Mapping[str, Any]) -> dict[str, Any]:
    """A household's dict with its name and phone masked, for roles without ``personal:read``."""
    masked = dict(row)
    for key, mask in (("name", mask_name), ("phone", mask_phone)):
        if key in masked:
            masked[key] = mask(masked[key])
    return masked


def _location_dict(location: HouseholdLocation) -> dict[str, Any]:
    return {"valid_from": location.valid_from.isoformat(),
            "valid_to": location.valid_to.isoformat() if location.valid_to else None,
            "address": location.address, "lon": location.lon, "lat": location.lat, "located_by": location.located_by,
            "cell_code": location.cell_code, "community_code": location.community_code,
            "street_code": location.street_code, "district_code": location.district_code}


def household_detail(session: Session, household_id: int, *, as_of: date, access: AccessScope,
                     visits: int = 50) -> dict[str, Any]:
    """A household in ``access`` with its address history (all of it), its latest visits and when the next is due."""
    household = household_or_404(session, household_id, access)
    locations = session.scalars(select(HouseholdLocation).where(HouseholdLocation.household_id == household_id)
                                .order_by(HouseholdLocation.valid_from)).all()
    kind = session.get(HouseholdKind, household.kind)
    recent = session.scalars(select(Visit.id).where(Visit.household_id == household_id)
                             .order_by(Visit.visited_at.desc()).limit(visits)).all()
    last_visit = session.scalar(select(Visit.visited_on).where(Visit.household_id == household_id,
                                                               Visit.visited_on <= as_of)
                                .order_by(Visit.visited_on.desc()).limit(1))
    current = locations[-1] if locations and locations[-1].valid_to is None else None
    interval = kind.visit_interval_months if kind else 6
    due = next_visit_due(last_visit, locations[0].valid_from, interval) if current else None
    return {
        "id": household.id, "external_id": household.external_id, "name": household.name, "phone": household.phone,
        "kind": household.kind, "kind_name": kind.name_zh if kind else household.kind,
        "key": bool(kind.key) if kind else False, "visit_interval_months": interval, "members": household.members,
        "registered_on": locations[0].valid_from.isoformat() if locations else None,
        "left_on": None if current or not locations else locations[-1].valid_to.isoformat(),
        "location": _location_dict(current) if current else None,
        "locations": [_location_dict(location) for location in locations],
        "last_visit": last_visit.isoformat() if last_visit else None,
        "next_visit_due": due.isoformat() if due else None,
        "overdue": bool(due and due < as_of),
        "visits": [visit_detail(session, visit_id, access=UNLIMITED) for visit_id in recent],  # the household's own
    }


def list_households(session: Session, *, as_of: date, access: AccessScope, area: str | None = None,
                    kind: str | None = None, limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """Households in the registry on ``as_of`` in cells of ``access``, optionally in one area or of one kind.

    ``area`` (any level's code) must have a part in ``access`` (else Forbidden).
    """
    if not 1 <= limit <= 1000:
        raise InvalidInput(f"limit must be 1–1000, got {limit}")
    if offset < 0:
        raise InvalidInput(f"offset must not be negative, got {offset}")
    conditions = [HouseholdLocation.valid_from <= as_of,
                  or_(HouseholdLocation.valid_to.is_(None), HouseholdLocation.valid_to > as_of)]
    if area:
        check_area_code(area, access)
        conditions.append(HouseholdLocation.cell_code.startswith(area, autoescape=True))
    conditions.append(access.cell_condition(HouseholdLocation.cell_code))
    if kind:
        conditions.append(Household.kind == kind)
    base = (select(Household, HouseholdLocation).join(HouseholdLocation, HouseholdLocation.household_id == Household.id)
            .where(*conditions))
    total = session.scalar(select(func.count()).select_from(base.subquery()))
    rows = session.execute(base.order_by(Household.id).limit(limit).offset(offset)).all()
    return {
        "total": int(total or 0), "limit": limit, "offset": offset,
        "households": [{"id": h.id, "external_id": h.external_id, "name": h.name, "kind": h.kind,
                        "members": h.members, "address": loc.address, "cell_code": loc.cell_code,
                        "lon": loc.lon, "lat": loc.lat} for h, loc in rows],
    }
