"""`gridmap coverage … import`: households, visits and patrol tracks from files, bad rows by number, one transaction."""

from __future__ import annotations

import json
from datetime import date

import gpxpy.gpx
import pytest
from click.testing import CliRunner
from openpyxl import Workbook
from sqlalchemy import func, select

from gridmap.cli import main
from gridmap.geo.crs import wgs84_to_gcj02
from gridmap.storage.coverage import Household, HouseholdLocation, PatrolSegment, PatrolTrack, Visit, VisitIssue
from gridmap.storage.models import Issue
from helpers import write_csv
from test_coverage import A, B, C, at

COMMUNITY = "460204101001"  # 梅村: 24 cells, 2000–3000 m east of the origin


def run(*args):
    return CliRunner().invoke(main, ["coverage", *map(str, args)])


def count(gm, model) -> int:
    with gm.db.sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def household_row(external_id: str, x: float = 125, y: float = 125, **extra) -> dict:
    lon, lat = at(x, y)
    return {"external_id": external_id, "address": f"春园路{external_id}号", "kind": "ordinary", "members": 3,
            "lon": lon, "lat": lat, "registered_on": "2026-01-01", **extra}


# --- households ------------------------------------------------------------------------------------


def test_households_are_located_from_lon_lat_or_a_cell_code(gm, cli_env, tmp_path):
    path = write_csv(tmp_path / "households.csv", [
        household_row("H1"),
        {"external_id": "H2", "address": "春园路2号", "kind": "独居老人户", "members": 1, "cell": B,
         "registered_on": "2026-01-01"},
    ])
    result = run("households", "import", path)
    assert result.exit_code == 0, result.output
    assert "imported 2 of 2 row(s)" in result.output
    with gm.db.sessions() as session:
        rows = session.execute(select(Household.external_id, Household.kind, HouseholdLocation.cell_code,
                                      HouseholdLocation.located_by, HouseholdLocation.community_code)
                               .join(HouseholdLocation).order_by(Household.external_id)).all()
    assert rows == [("H1", "ordinary", A, "point", "460204001001"),
                    ("H2", "elderly_alone", B, "cell", "460204001001")]  # the kind by its Chinese name


@pytest.mark.parametrize("bad, message", [
    ({"kind": "富裕户"}, "row 3: unknown household kind '富裕户'"),  # not in the kinds file
    ({"lon": 108.0, "lat": 18.0}, "row 3: (108, 18) lies outside every grid cell"),  # in the sea west of the district
    ({"lon": "", "lat": "", "cell": "460204001001999"}, "row 3: unknown cell '460204001001999'"),
    ({"lon": "", "lat": "", "cell": ""}, "row 3: give lon and lat, or cell"),
    ({"lat": ""}, "row 3: give both lon and lat, or neither"),
    ({"cell": C}, f"row 3: ({at(125, 125)[0]:g}, {at(125, 125)[1]:g}) lies in cell {A}, not in the given cell {C}"),
    ({"members": "0"}, "row 3: members must be a whole number from 1 to 99"),
    ({"registered_on": "2026-13-01"}, "row 3: registered_on '2026-13-01' is not a date"),
    ({"registered_on": "2099-01-01"}, "row 3: registered_on 2099-01-01 is in the future"),
    ({"address": ""}, "row 3: address is empty"),
])
def test_a_bad_household_row_is_reported_by_number_and_nothing_is_written(gm, cli_env, tmp_path, bad, message):
    path = write_csv(tmp_path / "households.csv", [household_row("H1"), household_row("H2", **{"cell": "", **bad})])
    result = run("households", "import", path)
    assert result.exit_code == 2
    assert message in result.output
    assert "nothing imported" in result.output
    assert count(gm, Household) == 0


def test_skip_bad_rows_and_dry_run(gm, cli_env, tmp_path):
    path = write_csv(tmp_path / "households.csv", [household_row("H1"), household_row("H2", kind="富裕户")])
    dry = run("households", "import", path, "--skip-bad-rows", "--dry-run")
    assert dry.exit_code == 0 and "would import 1 of 2 row(s), skipped 1 bad row(s)" in dry.output
    assert count(gm, Household) == 0
    result = run("households", "import", path, "--skip-bad-rows")
    assert result.exit_code == 0 and "imported 1 of 2 row(s), skipped 1 bad row(s)" in result.output
    assert count(gm, Household) == 1


def test_reimporting_a_household_with_a_new_address_records_a_move(gm, cli_env, tmp_path):
    write_csv(tmp_path / "first.csv", [household_row("H1")])
    assert run("households", "import", tmp_path / "first.csv").exit_code == 0
    same = run("households", "import", tmp_path / "first.csv")  # unchanged: no move
    assert same.exit_code == 0 and "moved" not in same.output
    path = write_csv(tmp_path / "moves.csv", [household_row("H1", x=375, moved_on="2026-03-01")])
    result = run("households", "import", path)
    assert result.exit_code == 0 and "(1 moved)" in result.output
    with gm.db.sessions() as session:
        history = session.execute(select(HouseholdLocation.cell_code, HouseholdLocation.valid_from,
                                         HouseholdLocation.valid_to)
                                  .order_by(HouseholdLocation.valid_from)).all()
    assert history == [(A, date(2026, 1, 1), date(2026, 3, 1)), (B, date(2026, 3, 1), None)]
    backwards = write_csv(tmp_path / "back.csv", [household_row("H1", x=625, moved_on="2026-02-01")])
    refused = run("households", "import", backwards)
    assert refused.exit_code == 2
    assert "row 2: moved_on 2026-02-01 must be after 2026-03-01" in refused.output
    assert count(gm, HouseholdLocation) == 2  # nothing half-written


def test_xlsx_and_geojson_files(gm, cli_env, tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["external_id", "address", "kind", "members", "lon", "lat"])
    sheet.append(["X1", "春园路1号", "hardship", 4, *at(125, 125)])
    sheet.append(["X2", "春园路2号", "nobody", 4, *at(125, 125)])
    workbook.save(tmp_path / "households.xlsx")
    result = run("households", "import", tmp_path / "households.xlsx")
    assert result.exit_code == 2 and "row 3: unknown household kind 'nobody'" in result.output
    features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": list(at(375, 125))},
                 "properties": {"external_id": "G1", "address": "春园路3号", "kind": "migrant", "members": 2}},
                {"type": "Feature", "geometry": None,
                 "properties": {"external_id": "G2", "address": "x", "kind": "ordinary"}}]
    (tmp_path / "households.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    result = run("households", "import", tmp_path / "households.geojson", "--skip-bad-rows")
    assert result.exit_code == 0 and "row 2: feature 2 is not a Point" in result.output
    with gm.db.sessions() as session:
        assert session.scalar(select(HouseholdLocation.cell_code)) == B


def test_gcj02_coordinates_and_a_missing_column(gm, cli_env, tmp_path):
    lon, lat = at(625, 125)
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    path = write_csv(tmp_path / "amap.csv", [household_row("H1", lon=float(g_lon), lat=float(g_lat))])
    assert run("households", "import", path, "--crs", "gcj02").exit_code == 0
    with gm.db.sessions() as session:
        assert session.scalar(select(HouseholdLocation.cell_code)) == C
    (tmp_path / "bad.csv").write_text("address,lon,lat\nx,1,2\n")
    result = run("households", "import", tmp_path / "bad.csv")
    assert result.exit_code == 2 and "missing column(s) kind" in result.output


# --- visits -----------------------------------------------------------------------------------------


@pytest.fixture
def households(gm, cli_env, tmp_path):
    path = write_csv(tmp_path / "households.csv", [household_row("H1"), household_row("H2", x=375, name="王秀英")])
    assert run("households", "import", path).exit_code == 0


def visit_row(household: str = "H1", visited_at: str = "2026-06-10 10:00", **extra) -> dict:
    return {"household": household, "visitor": "张伟", "visited_at": visited_at, "notes": "家庭情况稳定", **extra}


def test_issues_raised_at_a_visit_are_created_with_source_visit_and_linked(gm, households, tmp_path):
    path = write_csv(tmp_path / "visits.csv", [
        visit_row("H2", issue_category="E0704", issue_description="楼道内给电动车充电"),
        visit_row("H2", issue_category="E0702", issue_description="消防通道堆放杂物"),  # same visit, a second issue
        visit_row("H1", "2026-06-11 15:30"),
    ])
    result = run("visits", "import", path)
    assert result.exit_code == 0, result.output
    assert "imported 3 of 3 row(s), 2 issue(s) raised" in result.output
    with gm.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Visit)) == 2
        issues = session.scalars(select(Issue).order_by(Issue.id)).all()
        links = session.execute(select(VisitIssue.visit_id, VisitIssue.issue_id)).all()
        h2 = session.execute(select(HouseholdLocation.lon, HouseholdLocation.lat, HouseholdLocation.cell_code)
                             .join(Household).where(Household.external_id == "H2")).one()
    assert [(i.category, i.source, i.cell_code, i.reporter_name) for i in issues] == [
        ("E0704", "visit", B, "王秀英"), ("E0702", "visit", B, "王秀英")]
    assert (issues[0].lon, issues[0].lat) == pytest.approx((h2.lon, h2.lat))  # at the household
    assert issues[0].reported_at.isoformat() == "2026-06-10T02:00:00+00:00"  # the visit's time
    assert len(links) == 2 and len({visit for visit, _ in links}) == 1


@pytest.mark.parametrize("row, message", [
    (visit_row("H9"), "row 3: no household 'H9'"),
    (visit_row(visited_at="2025-12-31 10:00"),
     "row 3: household H1 was not in the registry on 2025-12-31 (registered from 2026-01-01)"),
    (visit_row(visited_at="yesterday"), "row 3: visited_at 'yesterday' is not a date-time"),
    (visit_row(visited_at="2099-01-01 10:00"), "row 3: visited_at 2099-01-01T10:00:00+08:00 is in the future"),
    (visit_row(visitor=""), "row 3: visitor is empty"),
    (visit_row(issue_ids="999"), "row 3: no issue with id 999"),
    (visit_row(issue_category="E9999", issue_description="x"), "row 3: issue raised at the visit: "),
])
def test_a_bad_visit_row_is_reported_by_number_and_nothing_is_written(gm, households, tmp_path, row, message):
    path = write_csv(tmp_path / "visits.csv", [visit_row("H2"), row])
    result = run("visits", "import", path)
    assert result.exit_code == 2
    assert message in result.output
    assert count(gm, Visit) == 0 and count(gm, Issue) == 0


def test_a_visit_is_imported_once(gm, households, tmp_path):
    path = write_csv(tmp_path / "visits.csv", [visit_row()])
    assert run("visits", "import", path).exit_code == 0
    again = run("visits", "import", path)
    assert again.exit_code == 2 and "row 2: this visit is already recorded" in again.output
    assert run("visits", "import", path, "--dry-run", "--skip-bad-rows").exit_code == 0
    assert count(gm, Visit) == 1


# --- the ledger line --------------------------------------------------------------------------------


def test_a_ledger_line_of_2219_households_all_visited_is_reproduced_from_data(gm, cli_env, tmp_path):
    """The seed figure "2,219 households, 100% visited": a community's registry and a half-year of visits."""
    cells = [f"{COMMUNITY}{n:03d}" for n in range(1, 25)]
    households = [{"external_id": f"M{i:04d}", "address": f"梅村{i % 8 + 1}组{i}号",
                   "kind": "ordinary" if i % 10 else "hardship",
                   "members": i % 5 + 1, "cell": cells[i % len(cells)],
                   "registered_on": "2025-12-01"} for i in range(2219)]
    assert run("households", "import", write_csv(tmp_path / "h.csv", households)).exit_code == 0
    visits = [{"household": f"M{i:04d}", "visitor": f"网格员{i % 24 + 1}号",
               "visited_at": f"2026-{i % 6 + 1:02d}-{i % 27 + 1:02d} 10:00"}
              for i in range(2219)]
    result = run("visits", "import", write_csv(tmp_path / "v.csv", visits))
    assert result.exit_code == 0, result.output
    summary = run("summary", "--level", "communities", "--area", COMMUNITY, "--from", "2026-01-01", "--to",
                  "2026-06-30")
    assert summary.exit_code == 0, summary.output
    assert f"{COMMUNITY} 梅村: 2,219 households, 100% visited" in summary.output
    # One household fewer visited and the line must not round up to 100%.
    with gm.db.session() as session:
        session.execute(Visit.__table__.delete().where(Visit.id == 1))
    summary = run("summary", "--level", "communities", "--area", COMMUNITY, "--from", "2026-01-01", "--to",
                  "2026-06-30")
    assert "2,219 households, 99.9% visited" in summary.output


# --- patrols ----------------------------------------------------------------------------------------


def gpx_file(path, points, *, author: str | None = "张伟", with_times: bool = True):
    """A GPX 1.1 file of one track from (x metres, y metres, 'HH:MM') points on 2026-06-01 (Beijing time)."""
    from datetime import datetime

    gpx = gpxpy.gpx.GPX()
    gpx.author_name = author
    track = gpxpy.gpx.GPXTrack(name="巡查")
    segment = gpxpy.gpx.GPXTrackSegment()
    for x, y, clock in points:
        lon, lat = at(x, y)
        when = datetime.fromisoformat(f"2026-06-01T{clock}:00+08:00") if with_times else None
        segment.points.append(gpxpy.gpx.GPXTrackPoint(latitude=lat, longitude=lon, time=when))
    track.segments.append(segment)
    gpx.tracks.append(track)
    path.write_text(gpx.to_xml(), encoding="utf-8")
    return path


def test_a_gpx_track_is_split_into_cells_and_its_worker_read_from_the_file(gm, cli_env, tmp_path):
    path = gpx_file(tmp_path / "patrol.gpx", [(50, 125, "09:00"), (700, 125, "09:13")])
    result = run("patrols", "import", path)
    assert result.exit_code == 0, result.output
    assert "imported 1 of 1 track(s)" in result.output
    with gm.db.sessions() as session:
        (stored,) = session.scalars(select(PatrolTrack)).all()
        segments = session.execute(select(PatrolSegment.cell_code,
                                          PatrolSegment.seconds).order_by(PatrolSegment.entered_at)).all()
    assert (stored.worker, stored.day, stored.point_count, stored.source) == ("张伟", date(2026, 6, 1), 2, "patrol.gpx")
    assert [code for code, _ in segments] == [A, B, C]
    assert [seconds for _, seconds in segments] == pytest.approx([240, 300, 240], abs=0.5)
    again = run("patrols", "import", path)
    assert (
        again.exit_code == 2
        and "row 1: already imported: 张伟's track starting 2026-06-01T01:00:00+00:00" in again.output
    )


@pytest.mark.parametrize("kwargs, args, message", [
    ({"author": None}, [], "row 1: no worker: give --worker"),  # nobody named in the file
    ({"with_times": False}, ["--worker", "张伟"], "row 1: point 1 of segment 1 has no time"),
])
def test_gpx_problems_are_reported_by_track_number(gm, cli_env, tmp_path, kwargs, args, message):
    path = gpx_file(tmp_path / "patrol.gpx", [(50, 125, "09:00"), (700, 125, "09:13")], **kwargs)
    result = run("patrols", "import", path, *args)
    assert result.exit_code == 2 and message in result.output
    assert count(gm, PatrolTrack) == 0


def test_a_track_leaving_the_district_is_imported_with_a_warning(gm, cli_env, tmp_path):
    path = gpx_file(tmp_path / "out.gpx", [(100, 125, "09:00"), (-200, 125, "09:06"), (100, 125, "09:12")])
    result = run("patrols", "import", path)
    assert result.exit_code == 0
    assert (
        "warning: row 1: 1 of 3 points lie outside every grid cell (8.0 min, 400 m outside the district)"
        in result.output
    )


def test_geojson_lines_with_times_and_timed_points_grouped_by_worker_and_day(gm, cli_env, tmp_path):
    line = {"type": "Feature",
            "geometry": {"type": "LineString", "coordinates": [list(at(50, 125)), list(at(700, 125))]},
            "properties": {"worker": "李娜", "times": ["2026-06-02T09:00:00+08:00", "2026-06-02T09:13:00+08:00"]}}
    points = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": list(at(x, 125))},
               "properties": {"worker": "王芳",
                              "time": f"2026-06-03T09:{m:02d}:00+08:00"}} for x, m in ((400, 10), (300, 0), (350, 5))]
    broken = {"type": "Feature",
              "geometry": {"type": "LineString", "coordinates": [list(at(50, 125)), list(at(700, 125))]},
              "properties": {"worker": "李娜", "times": ["2026-06-02T10:00:00+08:00"]}}
    path = tmp_path / "tracks.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [line, *points, broken]}))
    result = run("patrols", "import", path, "--skip-bad-rows")
    assert result.exit_code == 0, result.output
    assert "row 5: feature 5: properties.times must list one time per coordinate" in result.output
    assert "imported 2 of 3 track(s), skipped 1 bad track(s)" in result.output
    with gm.db.sessions() as session:
        tracks = {t.worker: t for t in session.scalars(select(PatrolTrack))}
        assert {t.day for t in tracks.values()} == {date(2026, 6, 2), date(2026, 6, 3)}
        assert tracks["王芳"].segments[0].cell_code == B and round(tracks["王芳"].segments[0].seconds) == 600
