"""Coverage figures computed by hand on the mini district: households, visits, moves, patrols.

The mini district's community 460204001001 is 1000 m × 1500 m of 250 m cells numbered
west→east, north→south, so its bottom row (0–250 m north of the origin) is cells 021, 022, 023,
024 from west to east. Coordinates below are metres from the fixture's origin (UTM 49N).

The scenario (households registered 2026-01-01 unless said otherwise):

    H1 ordinary      in A (021)  visited 2026-06-10
    H2 elderly alone in A (021)  visited 2026-05-20 (before June)   → overdue on 06-30 (due 06-20)
    H3 ordinary      in B (022)  never visited                      → due 07-01, not overdue on 06-30
    H4 hardship      in A, moves to B on 2026-06-15; visited 2026-06-05 (in A)
    H5 ordinary      in D (460204001002021)  visited 2026-07-02 (after June)
    H6 ordinary      in C (023), registered 2026-06-20, never visited

    patrol 06-01 09:00–09:13 along the bottom row, x 50 → 700 m: A 4 min, B 5 min, C 4 min
    patrol 06-10 09:00–09:12 from x 100 m out of the district to x −200 m and back: A 2 + 2 min, 8 min outside
    patrol 06-28 09:00–09:20 inside B: 20 min
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pyproj
import pytest
from sqlalchemy import select

from conftest import UTM, X0, Y0
from gridmap.coverage.households import HouseholdRegistry
from gridmap.coverage.metrics import (
    add_months,
    area_coverage,
    cell_coverage,
    format_share,
    ledger_line,
    next_visit_due,
    stale_cells,
    worklists,
)
from gridmap.coverage.patrols import import_tracks
from gridmap.coverage.track_files import TrackInput
from gridmap.security.access import UNLIMITED
from gridmap.storage.coverage import HouseholdLocation, PatrolTrack, Visit

A, B, C = "460204001001021", "460204001001022", "460204001001023"
D = "460204001002021"
COMMUNITY = "460204001001"
BEIJING = timezone(timedelta(hours=8))
JUNE = (date(2026, 6, 1), date(2026, 6, 30))
_TO_WGS84 = pyproj.Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)


def at(x: float, y: float) -> tuple[float, float]:
    """WGS84 lon/lat of a point given in metres from the mini district's origin."""
    lon, lat = _TO_WGS84.transform(X0 + x, Y0 + y)
    return round(lon, 8), round(lat, 8)


def household(external_id: str, kind: str, *, x: float | None = None, y: float | None = None, cell: str | None = None,
              registered_on: str = "2026-01-01", **extra) -> dict:
    record = {"external_id": external_id, "kind": kind, "address": f"{external_id} 号",
              "registered_on": registered_on, **extra}
    if x is not None:
        record["lon"], record["lat"] = at(x, y)
    if cell is not None:
        record["cell"] = cell
    return record


def moment(day: str, clock: str = "10:00") -> str:
    return f"{day}T{clock}:00+08:00"


def track(number: int, day: str, points: list[tuple[float, float, int]], worker: str = "张伟") -> TrackInput:
    """A track from (x metres, y metres, minutes after 09:00) points on ``day``."""
    start = datetime.fromisoformat(f"{day}T09:00:00+08:00")
    return TrackInput(number, worker, [[(*at(x, y), start + timedelta(minutes=m)) for x, y, m in points]])


CROSSES_THREE_CELLS = [(50, 125, 0), (700, 125, 13)]
LEAVES_THE_DISTRICT = [(100, 125, 0), (-200, 125, 6), (100, 125, 12)]
STAYS_IN_B = [(300, 125, 0), (350, 125, 5), (400, 125, 10), (450, 125, 15), (450, 200, 20)]


@pytest.fixture
def registry(gm):
    return HouseholdRegistry.for_core(gm)


@pytest.fixture
def scenario(gm, registry):
    """The module docstring's households, visits and patrols."""
    report = registry.import_households([
        household("H1", "ordinary", x=125, y=125),
        household("H2", "elderly_alone", cell=A),
        household("H3", "ordinary", x=375, y=125),
        household("H4", "hardship", x=200, y=100),
        household("H5", "ordinary", cell=D),
        household("H6", "ordinary", x=625, y=125, registered_on="2026-06-20"),
    ])
    assert report.errors == [] and report.imported == 6
    for external_id, day in (("H1", "2026-06-10"), ("H2", "2026-05-20"), ("H4", "2026-06-05"), ("H5", "2026-07-02")):
        registry.record_visit({"household": external_id, "visitor": "张伟", "visited_at": moment(day)})
    moved = registry.import_households([household("H4", "hardship", x=450, y=200, moved_on="2026-06-15")])
    assert moved.errors == [] and moved.moved == 1
    patrols = import_tracks(gm.db, gm.areas, [
        track(1, "2026-06-01", CROSSES_THREE_CELLS),
        track(2, "2026-06-10", LEAVES_THE_DISTRICT),
        track(3, "2026-06-28", STAYS_IN_B),
    ])
    assert patrols.errors == [] and patrols.imported == 3
    return patrols


def by_code(rows: list[dict]) -> dict[str, dict]:
    return {row["code"]: row for row in rows}


def figures(row: dict, *keys: str) -> tuple:
    return tuple(row[key] for key in keys)


# --- definitions ---------------------------------------------------------------------------------


@pytest.mark.parametrize("day, months, expected", [
    (date(2026, 1, 31), 1, date(2026, 2, 28)),  # past the end of February: its last day
    (date(2024, 1, 31), 1, date(2024, 2, 29)),  # leap year
    (date(2026, 6, 20), 6, date(2026, 12, 20)),  # ordinary households: six months
    (date(2026, 11, 15), 3, date(2027, 2, 15)),  # across the new year
])
def test_add_months_keeps_the_day_or_takes_the_last_of_the_month(day, months, expected):
    assert add_months(day, months) == expected


def test_next_visit_is_due_an_interval_after_the_last_visit_or_the_registration():
    assert next_visit_due(date(2026, 5, 20), date(2026, 1, 1), 1) == date(2026, 6, 20)
    assert next_visit_due(None, date(2026, 1, 1), 6) == date(2026, 7, 1)  # never visited: from registration


@pytest.mark.parametrize("part, whole, text", [
    (2219, 2219, "100%"),  # every household visited
    (2218, 2219, "99.9%"),  # 99.95 % is rounded down: never a false 100%
    (2, 5, "40.0%"),
    (1, 3, "33.3%"),
    (0, 7, "0.0%"),
    (0, 0, "—"),  # no households: no share
])
def test_shares_round_down_so_only_complete_coverage_reads_100(part, whole, text):
    assert format_share(part, whole) == text


# --- visits and households ------------------------------------------------------------------------


def test_june_per_cell_counts_a_moved_household_in_its_new_cell_and_ignores_visits_outside_the_period(gm, scenario):
    with gm.db.sessions() as session:
        cells = by_code(cell_coverage(session, *JUNE, access=UNLIMITED, min_patrol_minutes=3))
    keys = ("households", "visited", "visit_coverage", "overdue_households")
    assert figures(cells[A], *keys) == (2, 1, 0.5, 1)  # H1 visited; H2 visited in May only, overdue since 06-20
    assert figures(cells[B], *keys) == (2, 1, 0.5, 0)  # H3 not visited (due 07-01); H4 moved in, visited in A on 06-05
    assert figures(cells[C], *keys) == (1, 0, 0.0, 0)  # H6 registered 06-20
    assert figures(cells[D], *keys) == (1, 0, 0.0, 0)  # H5's visit on 07-02 is after June
    assert sum(row["households"] for row in cells.values()) == 6


@pytest.mark.parametrize("period, as_of, cell, expected", [
    # May: H4 still lives in A and, never visited, has been overdue since 02-01; H2 was visited on 05-20.
    ((date(2026, 5, 1), date(2026, 5, 31)), None, A, (3, 1, 1)),
    ((date(2026, 5, 1), date(2026, 5, 31)), None, B, (1, 0, 0)),
    ((date(2026, 5, 1), date(2026, 5, 31)), None, C, (0, 0, 0)),  # H6 not registered yet
    # July: H4 (last visit 06-05) fell due on 07-05 in B; H5 was visited on 07-02.
    ((date(2026, 7, 1), date(2026, 7, 31)), None, B, (2, 0, 2)),
    ((date(2026, 7, 1), date(2026, 7, 31)), None, D, (1, 1, 0)),
    # The first half of 2026 taken on 06-14, the day before H4 moved: it still counts in A.
    ((date(2026, 1, 1), date(2026, 6, 30)), date(2026, 6, 14), A, (3, 3, 0)),
    ((date(2026, 1, 1), date(2026, 6, 30)), date(2026, 6, 14), B, (1, 0, 0)),
])
def test_other_periods_count_households_where_they_lived_then(gm, scenario, period, as_of, cell, expected):
    with gm.db.sessions() as session:
        row = by_code(cell_coverage(session, *period, access=UNLIMITED, as_of=as_of))[cell]
    assert figures(row, "households", "visited", "overdue_households") == expected


def test_the_move_is_kept_as_address_history_and_the_visit_stamped_with_the_old_cell(gm, scenario):
    with gm.db.sessions() as session:
        rows = session.execute(select(HouseholdLocation.cell_code, HouseholdLocation.valid_from,
                                      HouseholdLocation.valid_to)
                               .join(HouseholdLocation.household).where(HouseholdLocation.household.has(external_id="H4"))
                               .order_by(HouseholdLocation.valid_from)).all()
        visit_cell = session.scalar(select(Visit.cell_code).where(Visit.visited_on == date(2026, 6, 5)))
    assert rows == [(A, date(2026, 1, 1), date(2026, 6, 15)), (B, date(2026, 6, 15), None)]
    assert visit_cell == A


def test_community_street_and_district_add_up_their_cells(gm, scenario):
    with gm.db.sessions() as session:
        community = by_code(area_coverage(session, "communities", *JUNE, access=UNLIMITED,
                                          min_patrol_minutes=3))[COMMUNITY]
        district = area_coverage(session, "districts", *JUNE, access=UNLIMITED, min_patrol_minutes=3)[0]
    assert figures(community, "cells", "households", "visited", "overdue_households") == (24, 5, 2, 1)
    assert ledger_line(community) == "5 households, 40.0% visited"
    # Cell-days: 24 cells × 30 days; patrolled A twice, B twice, C once.
    assert figures(community, "patrol_days", "days", "stale_cells") == (5, 720, 23)
    assert figures(district, "cells", "households", "visited") == (74, 6, 2)
    assert ledger_line(district) == "6 households, 33.3% visited"


# --- patrols --------------------------------------------------------------------------------------


def test_a_track_crossing_three_cells_is_split_at_their_boundaries_with_interpolated_times(gm, scenario):
    with gm.db.sessions() as session:
        first = session.scalar(select(PatrolTrack).order_by(PatrolTrack.started_at))
        segments = [(s.cell_code, s.seconds, s.length_m, s.entered_at) for s in first.segments]
    assert [s[0] for s in segments] == [A, B, C]
    # 650 m in 13 minutes: 200 m (4 min) in A, 250 m (5 min) in B, 200 m (4 min) in C; within 0.5 of each.
    assert [s[1] for s in segments] == pytest.approx([240, 300, 240], abs=0.5)
    assert [s[2] for s in segments] == pytest.approx([200, 250, 200], abs=0.5)
    assert segments[1][3].astimezone(BEIJING).strftime("%H:%M:%S") == "09:04:00"


def test_a_track_that_leaves_the_district_is_reported_and_its_outside_part_counts_for_no_cell(gm, scenario):
    (warning,) = scenario.warnings
    assert warning.row == 2
    assert "1 of 3 points lie outside every grid cell (8.0 min, 400 m outside the district)" in warning.message
    with gm.db.sessions() as session:
        second = session.scalars(select(PatrolTrack).order_by(PatrolTrack.started_at)).all()[1]
        assert (second.outside_points, round(second.outside_seconds), round(second.outside_length_m)) == (1, 480, 400)
        assert [(s.cell_code, round(s.seconds)) for s in second.segments] == [(A, 120), (A, 120)]


def test_a_track_entirely_outside_the_district_is_refused(gm):
    report = import_tracks(gm.db, gm.areas, [track(7, "2026-06-02", [(-400, 100, 0), (-300, 100, 5)])])
    assert report.imported == 0
    assert [(e.row, "entirely outside every grid cell" in e.message) for e in report.errors] == [(7, True)]


@pytest.mark.parametrize("minutes, expected", [
    # (patrol days, last patrol) of A, B, C with the daily threshold of minutes in a cell
    (3, {A: (2, "2026-06-10"), B: (2, "2026-06-28"), C: (1, "2026-06-01")}),  # every pass counts
    (4.5, {A: (0, None), B: (2, "2026-06-28"), C: (0, None)}),  # A's 4 min a day and C's 4 min fall short
    (10, {A: (0, None), B: (1, "2026-06-28"), C: (0, None)}),  # only the 20 minutes in B on 06-28
])
def test_patrol_days_need_the_minimum_time_in_the_cell_on_the_day(gm, scenario, minutes, expected):
    with gm.db.sessions() as session:
        cells = by_code(cell_coverage(session, *JUNE, access=UNLIMITED, min_patrol_minutes=minutes))
    assert {code: (cells[code]["patrol_days"], cells[code]["last_patrol"]) for code in expected} == expected
    assert cells[B]["days"] == 30
    assert cells[B]["patrol_coverage"] == expected[B][0] / 30


def test_cells_not_patrolled_for_seven_days(gm, scenario):
    with gm.db.sessions() as session:
        cells = by_code(cell_coverage(session, *JUNE, access=UNLIMITED, min_patrol_minutes=3, stale_days=7))
        stale = stale_cells(session, as_of=date(2026, 6, 30), access=UNLIMITED, stale_days=7, min_patrol_minutes=3,
                            cells=[A, B, C, D])
    assert figures(cells[A], "days_since_patrol", "stale") == (20, True)
    assert figures(cells[B], "days_since_patrol", "stale") == (2, False)
    assert figures(cells[D], "days_since_patrol", "stale") == (None, True)  # never patrolled
    assert [(row["code"], row["days_since_patrol"]) for row in stale] == [(D, None), (C, 29), (A, 20)]


def test_a_period_in_progress_counts_only_the_days_up_to_as_of(gm, scenario):
    with gm.db.sessions() as session:
        row = by_code(cell_coverage(session, *JUNE, access=UNLIMITED, as_of=date(2026, 6, 10), min_patrol_minutes=3))[A]
    # 1–10 June: patrolled on 06-01 and 06-10; H4 has not moved yet; H4 (06-05) and H1 (06-10) visited.
    assert figures(row, "patrol_days", "days", "households", "visited") == (2, 10, 3, 2)


# --- work lists -----------------------------------------------------------------------------------


def test_work_lists_derive_cells_from_patrols_when_no_grid_worker_is_assigned(gm, scenario):
    with gm.db.sessions() as session:
        (entry,) = worklists(session, as_of=date(2026, 6, 30), access=UNLIMITED, stale_days=7, min_patrol_minutes=3)
    assert (entry["worker"], entry["source"], entry["cells"]) == ("张伟", "derived", [A, B, C])
    # Due by the end of June: H2 (overdue since 06-20); H3 and H4 are due in July.
    assert [(h["external_id"], h["due"], h["overdue"]) for h in entry["households_due"]] == [("H2", "2026-06-20", True)]
    assert [c["code"] for c in entry["stale_cells"]] == [C, A]


def test_work_lists_use_the_assigned_grid_workers(gm, scenario):
    from gridmap.issues.dispatch import Worker, store_workers

    with gm.db.session() as session:
        store_workers(session, [Worker("李娜", "13800000001", (A, B)), Worker("王芳", None, (C, D))])
    with gm.db.sessions() as session:
        lists = {
            entry["worker"]: entry
            for entry in worklists(session, as_of=date(2026, 7, 31), access=UNLIMITED, min_patrol_minutes=3)
        }
    assert {name: entry["source"] for name, entry in lists.items()} == {"李娜": "assigned", "王芳": "assigned"}
    assert [h["external_id"] for h in lists["李娜"]["households_due"]] == ["H2", "H3", "H4"]  # due 06-20, 07-01, 07-05
    assert [h["external_id"] for h in lists["王芳"]["households_due"]] == []  # H5 visited 07-02, H6 due in December
