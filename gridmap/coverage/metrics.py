"""Coverage metrics: households, visits and patrols per cell, community, street and district.

Definitions (one place; the README repeats them with a worked example). A period is
``[date_from, date_to]`` in whole local days, both ends included; ``as_of`` (a local day,
default ``date_to``) is the day the "now" figures are taken on.

- ``households``: households in the registry during the period, each counted once, in the cell
  where it lived on the period's last day (``min(date_to, as_of)``), or on its last day in the
  registry if it left during the period. **Moves**: a household's addresses are kept with the
  days they were valid (``household_locations``), so a past period counts it where it lived
  then, not where it lives now; a household that moved during the period counts only in its
  new cell.
- ``visited``: of those households, the ones with at least one visit on a day of the period
  (wherever they lived at the visit).
- ``visit_coverage`` (入户走访率) = visited / households; ``None`` when there are no households.
- ``overdue_households``: households in the registry on ``as_of`` (in the cell where they live
  that day) whose next visit was due before ``as_of``. The next visit is due ``interval``
  calendar months (the household kind's ``visit_interval_months``) after the last visit on or
  before ``as_of``, or after the day the household entered the registry if it was never visited;
  a due day past the end of a month falls on the month's last day (Jan 31 + 1 month = Feb 28).
- ``patrol_days``: days of the period, up to ``as_of``, on which patrol tracks spent at least
  ``min_patrol_minutes`` (setting ``patrol_min_minutes``) in the cell, all tracks of the day
  added up; ``days``: the days of the period up to ``as_of``;
  ``patrol_coverage`` = patrol_days / days (``None`` when days is 0).
- ``last_patrol``: the last day on or before ``as_of`` on which the cell was patrolled (as
  above); ``days_since_patrol`` = as_of − last_patrol; a cell is **stale** ("not patrolled for
  N days", N = ``stale_days``, setting ``patrol_stale_days``) when it was not patrolled on any of
  the N days ending on ``as_of``: never patrolled, or days_since_patrol ≥ N.
- Communities, streets and the district add up their cells: households, visited and overdue
  are sums (each household sits in one cell, so nothing is counted twice); ``patrol_days`` and
  ``days`` are **cell-days** (a community of 4 cells over 30 days has 120 cell-days), so
  ``patrol_coverage`` is the share of cell-days patrolled; ``stale_cells`` counts stale cells.

**Scopes**: every function that reads rows takes the asking principal's ``access``
(:class:`gridmap.security.access.AccessScope`). A scoped principal (a grid manager, a grid worker) gets the
cells inside its areas only, and the areas above them (its street, the district) add up those
cells only; areas with no part in the scope are not listed.
"""

from __future__ import annotations

import calendar
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from gridmap.errors import Forbidden, InvalidInput, NotFound
from gridmap.security.access import AccessScope
from gridmap.storage.coverage import Household, HouseholdKind, HouseholdLocation, PatrolSegment, PatrolTrack, Visit
from gridmap.storage.models import Area
from gridmap.storage.workflow import GridWorker, GridWorkerCell

DEFAULT_MIN_PATROL_MINUTES = 10.0
DEFAULT_STALE_DAYS = 7
#: Length of each level's code: a cell's community, street and district codes are its prefixes.
CODE_LENGTHS = {"cells": 15, "communities": 12, "streets": 9, "districts": 6}
LEVELS = tuple(CODE_LENGTHS)
#: Days of patrols and visits that make a worker "responsible" for a cell when no grid worker is assigned.
RESPONSIBILITY_WINDOW_DAYS = 90


# --- definitions -------------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """``day`` plus whole calendar months; past the end of the month means its last day."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def next_visit_due(last_visit: date | None, registered_on: date, interval_months: int) -> date:
    """The day a household's next visit is due: interval months after its last visit (or registration)."""
    return add_months(last_visit or registered_on, interval_months)


def ratio(part: int, whole: int) -> float | None:
    """part / whole, or None when whole is 0."""
    return part / whole if whole else None


def format_share(part: int, whole: int) -> str:
    """A percentage for ledgers: "100%" only when part == whole; otherwise rounded down to 0.1 %."""
    if not whole:
        return "—"
    if part == whole:
        return "100%"
    tenths = part * 1000 // whole
    return f"{tenths / 10:.1f}%"


def ledger_line(row: dict[str, Any]) -> str:
    """A ledger line such as "2,219 households, 100% visited" from one coverage row."""
    return f"{row['households']:,} households, {format_share(row['visited'], row['households'])} visited"


def check_period(date_from: date, date_to: date, as_of: date | None = None) -> date:
    """Validate a period and return as_of (default: the period's last day)."""
    if date_from > date_to:
        raise InvalidInput(f"from ({date_from}) is after to ({date_to}); swap them")
    return date_to if as_of is None else as_of


def check_area_code(area: str, access: AccessScope) -> None:
    """Refuse an area code that is not 6, 9, 12 or 15 digits (InvalidInput) or has no part in ``access`` (Forbidden)."""
    if not area.isdigit() or len(area) not in (6, 9, 12, 15):
        raise InvalidInput(f"area {area!r} must be a 6, 9, 12 or 15-digit area code")
    if not access.shows_area(area):
        raise Forbidden(f"area {area} is outside your areas ({', '.join(access.areas or ())})")


def refuse_outside(access: AccessScope, cells: Iterable[tuple[str, str | None]], what: str) -> None:
    """Forbidden when any ``(label, cell code)`` lies outside ``access``, naming the first few; the caller writes
    nothing."""
    if access.areas is None:
        return
    outside = [(label, cell) for label, cell in cells if not access.covers_cell(cell)]
    if outside:
        listed = "; ".join(f"{label}: cell {cell}" if label else f"cell {cell}" for label, cell in outside[:5])
        more = f" and {len(outside) - 5} more" if len(outside) > 5 else ""
        raise Forbidden(f"{what} outside your areas ({', '.join(access.areas)}): {listed}{more}; nothing was written",
                        details={"outside": [{"where": label, "cell": cell} for label, cell in outside]})


# --- queries -------------------------------------------------------------------------------------


def households_in_scope(column, access: AccessScope) -> list[Any]:
    """SQL conditions: the household id ``column`` had an address in ``access`` at some time (none if unlimited)."""
    if access.areas is None:
        return []
    inside = aliased(HouseholdLocation)
    return [column.in_(select(inside.household_id).where(access.cell_condition(inside.cell_code)))]


def _period_cells(session: Session, start: date, end: date, access: AccessScope) -> dict[int, str]:
    """household id → the cell it lived in on ``end`` (or on its last day if it left before), cells in ``access``
    only."""
    in_period = (HouseholdLocation.valid_from <= end,
                 or_(HouseholdLocation.valid_to.is_(None), HouseholdLocation.valid_to > start))
    statement = (
        select(HouseholdLocation.household_id, HouseholdLocation.cell_code)
        .where(*in_period, *households_in_scope(HouseholdLocation.household_id, access))
        .order_by(HouseholdLocation.household_id, HouseholdLocation.valid_from)
    )
    cells = {household: cell for household, cell in session.execute(statement)}  # the latest row wins
    # A household that moved out of the scope during the period counts where it lived last: not here.
    return {household: cell for household, cell in cells.items() if access.covers_cell(cell)}


def _present_on(session: Session, day: date, access: AccessScope) -> dict[int, tuple[str, str]]:
    """household id → (cell, kind) of the households in the registry on ``day`` in cells of ``access``."""
    statement = (
        select(HouseholdLocation.household_id, HouseholdLocation.cell_code, Household.kind)
        .join(Household, Household.id == HouseholdLocation.household_id)
        .where(HouseholdLocation.valid_from <= day,
               or_(HouseholdLocation.valid_to.is_(None), HouseholdLocation.valid_to > day),
               access.cell_condition(HouseholdLocation.cell_code))
    )
    return {household: (cell, kind) for household, cell, kind in session.execute(statement)}


def _registered_on(session: Session, access: AccessScope) -> dict[int, date]:
    statement = (select(HouseholdLocation.household_id, func.min(HouseholdLocation.valid_from))
                 .where(*households_in_scope(HouseholdLocation.household_id, access))
                 .group_by(HouseholdLocation.household_id))
    return dict(session.execute(statement).all())


def _last_visits(session: Session, as_of: date, access: AccessScope) -> dict[int, date]:
    statement = (select(Visit.household_id, func.max(Visit.visited_on))
                 .where(Visit.visited_on <= as_of, *households_in_scope(Visit.household_id, access))
                 .group_by(Visit.household_id))
    return dict(session.execute(statement).all())


def visit_intervals(session: Session) -> dict[str, int]:
    """kind code → visit interval in months, from the stored household kinds."""
    return dict(session.execute(select(HouseholdKind.code, HouseholdKind.visit_interval_months)).all())


def _patrolled_cell_days(min_seconds: float, *conditions):
    return (
        select(PatrolSegment.cell_code, PatrolSegment.day)
        .where(*conditions)
        .group_by(PatrolSegment.cell_code, PatrolSegment.day)
        .having(func.sum(PatrolSegment.seconds) >= min_seconds)
    )


def _patrol_days(session: Session, start: date, end: date, min_seconds: float, access: AccessScope) -> Counter:
    if end < start:
        return Counter()
    days = _patrolled_cell_days(min_seconds, PatrolSegment.day >= start, PatrolSegment.day <= end,
                                access.cell_condition(PatrolSegment.cell_code)).subquery()
    statement = select(days.c.cell_code, func.count()).group_by(days.c.cell_code)
    return Counter(dict(session.execute(statement).all()))


def _last_patrols(session: Session, as_of: date, min_seconds: float, access: AccessScope) -> dict[str, date]:
    days = _patrolled_cell_days(min_seconds, PatrolSegment.day <= as_of,
                                access.cell_condition(PatrolSegment.cell_code)).subquery()
    statement = select(days.c.cell_code, func.max(days.c.day)).group_by(days.c.cell_code)
    return dict(session.execute(statement).all())


def _cell_codes(session: Session, access: AccessScope) -> list[str]:
    return list(session.scalars(select(Area.code).where(Area.level == "cells", access.cell_condition(Area.code))
                                .order_by(Area.code)))


def overdue_household_ids(session: Session, as_of: date, *, access: AccessScope) -> dict[int, tuple[str, date]]:
    """household id → (cell, due day) of the households in ``access`` overdue for a visit on ``as_of``."""
    intervals = visit_intervals(session)
    registered = _registered_on(session, access)
    last = _last_visits(session, as_of, access)
    overdue = {}
    for household, (cell, kind) in _present_on(session, as_of, access).items():
        due = next_visit_due(last.get(household), registered[household], intervals.get(kind, 6))
        if due < as_of:
            overdue[household] = (cell, due)
    return overdue


# --- per cell and per area ---------------------------------------------------------------------


def cell_coverage(
    session: Session,
    date_from: date,
    date_to: date,
    *,
    access: AccessScope,
    as_of: date | None = None,
    min_patrol_minutes: float = DEFAULT_MIN_PATROL_MINUTES,
    stale_days: int = DEFAULT_STALE_DAYS,
) -> list[dict[str, Any]]:
    """Coverage of every cell in ``access`` for a period, zeros included, sorted by code (see the module docstring).

    Each dict: code, households, visited, visit_coverage, overdue_households, patrol_days, days,
    patrol_coverage, last_patrol (ISO date or None), days_since_patrol, stale; cells of an older
    layer set that still hold data are appended with ``retired: True``.
    """
    as_of = check_period(date_from, date_to, as_of)
    if stale_days < 1:
        raise InvalidInput(f"stale days must be at least 1, got {stale_days}")
    end = min(date_to, as_of)
    days = max((end - date_from).days + 1, 0)
    min_seconds = float(min_patrol_minutes) * 60

    counted = _period_cells(session, date_from, end, access) if days else {}
    visited_ids = set(session.scalars(
        select(Visit.household_id).where(Visit.visited_on >= date_from, Visit.visited_on <= end,
                                         *households_in_scope(Visit.household_id, access)).distinct()))
    households: Counter = Counter(counted.values())
    visited: Counter = Counter(cell for household, cell in counted.items() if household in visited_ids)
    overdue: Counter = Counter(cell for cell, _ in overdue_household_ids(session, as_of, access=access).values())
    patrol_days = _patrol_days(session, date_from, end, min_seconds, access)
    last_patrol = _last_patrols(session, as_of, min_seconds, access)

    codes = _cell_codes(session, access)
    known = set(codes)
    retired = sorted(code for code in (set(households) | set(overdue) | set(patrol_days) | set(last_patrol)) - known
                     if access.covers_cell(code))
    rows = []
    for code in codes + retired:
        last = last_patrol.get(code)
        since = (as_of - last).days if last else None
        row = {
            "code": code,
            "households": households[code],
            "visited": visited[code],
            "visit_coverage": ratio(visited[code], households[code]),
            "overdue_households": overdue[code],
            "patrol_days": patrol_days[code],
            "days": days,
            "patrol_coverage": ratio(patrol_days[code], days),
            "last_patrol": last.isoformat() if last else None,
            "days_since_patrol": since,
            "stale": since is None or since >= stale_days,
        }
        if code not in known:
            row["retired"] = True
        rows.append(row)
    return rows


def area_coverage(
    session: Session,
    level: str,
    date_from: date,
    date_to: date,
    *,
    access: AccessScope,
    as_of: date | None = None,
    min_patrol_minutes: float = DEFAULT_MIN_PATROL_MINUTES,
    stale_days: int = DEFAULT_STALE_DAYS,
) -> list[dict[str, Any]]:
    """Coverage of every area of ``level`` (cells, communities, streets, districts) that ``access`` shows, by code.

    Above cells each dict has: code, name, cells, households, visited, visit_coverage,
    overdue_households, patrol_days and days (cell-days), patrol_coverage, stale_cells,
    last_patrol (the latest of its cells); an area only partly in ``access`` adds up its cells in it.
    """
    if level not in CODE_LENGTHS:
        raise InvalidInput(f"unknown level {level!r}; use one of {', '.join(LEVELS)}")
    cells = cell_coverage(session, date_from, date_to, access=access, as_of=as_of,
                          min_patrol_minutes=min_patrol_minutes, stale_days=stale_days)
    names = {code: name for code, name in session.execute(select(Area.code, Area.name).where(Area.level == level))
             if access.shows_area(code)}
    if level == "cells":
        return [{"code": row["code"], "name": names.get(row["code"]), **{k: v for k, v in row.items() if k != "code"}}
                for row in cells]
    length = CODE_LENGTHS[level]
    totals: dict[str, dict[str, Any]] = {
        code: _empty_total(code, names[code]) for code in sorted(names)
    }
    for row in cells:
        code = row["code"][:length]
        total = totals.get(code)
        if total is None:
            total = totals[code] = _empty_total(code, None)
            total["retired"] = True
        total["cells"] += 1
        for key in ("households", "visited", "overdue_households", "patrol_days", "days"):
            total[key] += row[key]
        total["stale_cells"] += int(row["stale"])
        if row["last_patrol"] and (total["last_patrol"] is None or row["last_patrol"] > total["last_patrol"]):
            total["last_patrol"] = row["last_patrol"]
    result = []
    for code in sorted(totals, key=lambda c: (totals[c].get("retired", False), c)):
        total = totals[code]
        total["visit_coverage"] = ratio(total["visited"], total["households"])
        total["patrol_coverage"] = ratio(total["patrol_days"], total["days"])
        result.append(total)
    return result


def _empty_total(code: str, name: str | None) -> dict[str, Any]:
    return {"code": code, "name": name, "cells": 0, "households": 0, "visited": 0, "visit_coverage": None,
            "overdue_households": 0, "patrol_days": 0, "days": 0, "patrol_coverage": None, "stale_cells": 0,
            "last_patrol": None}


def stale_cells(
    session: Session,
    *,
    as_of: date,
    access: AccessScope,
    stale_days: int = DEFAULT_STALE_DAYS,
    min_patrol_minutes: float = DEFAULT_MIN_PATROL_MINUTES,
    cells: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """Cells in ``access`` not patrolled on any of the ``stale_days`` days ending on ``as_of``, longest-neglected
    first."""
    if stale_days < 1:
        raise InvalidInput(f"stale days must be at least 1, got {stale_days}")
    last_patrol = _last_patrols(session, as_of, float(min_patrol_minutes) * 60, access)
    codes = sorted(c for c in cells if access.covers_cell(c)) if cells is not None else _cell_codes(session, access)
    result = []
    for code in codes:
        last = last_patrol.get(code)
        since = (as_of - last).days if last else None
        if since is None or since >= stale_days:
            result.append({"code": code, "last_patrol": last.isoformat() if last else None, "days_since_patrol": since})
    result.sort(key=lambda r: (r["days_since_patrol"] is not None, -(r["days_since_patrol"] or 0), r["code"]))
    return result


# --- work lists ----------------------------------------------------------------------------------


def responsible_cells(session: Session, *, as_of: date, access: AccessScope) -> tuple[dict[str, list[str]], str]:
    """worker → the cells in ``access`` they answer for, and where that came from.

    The grid workers assigned to cells (``grid_worker_cells``) when any are stored
    (``"assigned"``); otherwise read from the data (``"derived"``): a cell's worker is whoever
    spent the most patrol time in it in the 90 days up to ``as_of``, else whoever visited its
    households most often in that window.
    """
    result: dict[str, list[str]] = defaultdict(list)
    if session.scalar(select(GridWorkerCell.cell_code).limit(1)) is not None:  # assigned anywhere, not only here
        assigned = session.execute(
            select(GridWorker.name, GridWorkerCell.cell_code)
            .join(GridWorkerCell, GridWorkerCell.worker_id == GridWorker.id)
            .where(access.cell_condition(GridWorkerCell.cell_code))
        ).all()
        for name, cell in assigned:
            result[name].append(cell)
        return {name: sorted(cells) for name, cells in sorted(result.items())}, "assigned"
    since = as_of - timedelta(days=RESPONSIBILITY_WINDOW_DAYS - 1)
    owner: dict[str, str] = {}
    patrol_time = session.execute(
        select(PatrolSegment.cell_code, PatrolTrack.worker, func.sum(PatrolSegment.seconds))
        .join(PatrolTrack, PatrolTrack.id == PatrolSegment.track_id)
        .where(PatrolSegment.day >= since, PatrolSegment.day <= as_of, access.cell_condition(PatrolSegment.cell_code))
        .group_by(PatrolSegment.cell_code, PatrolTrack.worker)
    ).all()
    best: dict[str, tuple[float, str]] = {}
    for cell, worker, seconds in patrol_time:
        if cell not in best or (seconds, worker) > best[cell]:
            best[cell] = (float(seconds), worker)
    owner.update({cell: worker for cell, (_, worker) in best.items()})
    visits = session.execute(
        select(Visit.cell_code, Visit.visitor, func.count())
        .where(Visit.visited_on >= since, Visit.visited_on <= as_of, access.cell_condition(Visit.cell_code))
        .group_by(Visit.cell_code, Visit.visitor)
    ).all()
    best_visits: dict[str, tuple[int, str]] = {}
    for cell, visitor, count in visits:
        if cell not in owner and (cell not in best_visits or (count, visitor) > best_visits[cell]):
            best_visits[cell] = (int(count), visitor)
    owner.update({cell: visitor for cell, (_, visitor) in best_visits.items()})
    for cell, worker in owner.items():
        result[worker].append(cell)
    return {name: sorted(cells) for name, cells in sorted(result.items())}, "derived"


def households_due(session: Session, *, as_of: date, due_by: date, access: AccessScope,
                   cells: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Households in ``access`` on ``as_of`` whose next visit is due on or before ``due_by``, most overdue first."""
    wanted = set(cells) if cells is not None else None
    intervals = visit_intervals(session)
    registered = _registered_on(session, access)
    last = _last_visits(session, as_of, access)
    present = _present_on(session, as_of, access)
    due_ids = {}
    for household, (cell, kind) in present.items():
        if wanted is not None and cell not in wanted:
            continue
        due = next_visit_due(last.get(household), registered[household], intervals.get(kind, 6))
        if due <= due_by:
            due_ids[household] = due
    if not due_ids:
        return []
    kinds = dict(session.execute(select(HouseholdKind.code, HouseholdKind.name_zh)).all())
    rows = []
    ids = sorted(due_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        statement = (
            select(Household, HouseholdLocation)
            .join(HouseholdLocation, HouseholdLocation.household_id == Household.id)
            .where(Household.id.in_(chunk), HouseholdLocation.valid_from <= as_of,
                   or_(HouseholdLocation.valid_to.is_(None), HouseholdLocation.valid_to > as_of))
        )
        for household, location in session.execute(statement):
            due = due_ids[household.id]
            visited = last.get(household.id)
            rows.append({
                "id": household.id,
                "external_id": household.external_id,
                "name": household.name,
                "kind": household.kind,
                "kind_name": kinds.get(household.kind, household.kind),
                "members": household.members,
                "address": location.address,
                "cell_code": location.cell_code,
                "last_visit": visited.isoformat() if visited else None,
                "due": due.isoformat(),
                "overdue": due < as_of,
            })
    rows.sort(key=lambda r: (r["due"], r["cell_code"], r["id"]))
    return rows


def month_end(day: date) -> date:
    """The last day of ``day``'s month."""
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def worklists(
    session: Session,
    *,
    as_of: date,
    access: AccessScope,
    worker: str | None = None,
    stale_days: int = DEFAULT_STALE_DAYS,
    min_patrol_minutes: float = DEFAULT_MIN_PATROL_MINUTES,
) -> list[dict[str, Any]]:
    """Per grid worker: their cells, the households due for a visit by the end of ``as_of``'s month, stale cells.

    Only cells in ``access`` are listed, and workers with none of them are left out. ``worker``
    picks one worker (NotFound if they answer for no cell there); each list says whether the
    worker's cells were ``assigned`` (grid workers) or ``derived`` from patrols and visits.
    """
    responsibility, source = responsible_cells(session, as_of=as_of, access=access)
    if worker is not None:
        if worker not in responsibility:
            where = "" if access.areas is None else " in your areas"
            raise NotFound(f"no cells for worker {worker!r}{where}: not an assigned grid worker and no patrols or "
                           f"visits in the {RESPONSIBILITY_WINDOW_DAYS} days up to {as_of}")
        responsibility = {worker: responsibility[worker]}
    due_by = month_end(as_of)
    all_due = households_due(session, as_of=as_of, due_by=due_by, access=access)
    stale = {row["code"]: row for row in stale_cells(session, as_of=as_of, access=access, stale_days=stale_days,
                                                     min_patrol_minutes=min_patrol_minutes)}
    result = []
    for name, cells in responsibility.items():
        mine = set(cells)
        result.append({
            "worker": name,
            "source": source,
            "as_of": as_of.isoformat(),
            "due_by": due_by.isoformat(),
            "cells": cells,
            "households_due": [row for row in all_due if row["cell_code"] in mine],
            "stale_cells": sorted((stale[c] for c in cells if c in stale),
                                  key=lambda r: (r["days_since_patrol"] is not None, -(r["days_since_patrol"] or 0),
                                                 r["code"])),
        })
    return result


__all__ = [
    "add_months", "area_coverage", "cell_coverage", "check_area_code", "format_share", "households_due", "ledger_line",
    "month_end", "next_visit_due", "overdue_household_ids", "ratio", "refuse_outside", "responsible_cells",
    "stale_cells", "worklists",
]
