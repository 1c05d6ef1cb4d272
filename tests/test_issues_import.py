"""`gridmap issues import`: every row located and stamped, or reported by row number."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from gridmap.cli import main
from gridmap.geo.crs import wgs84_to_gcj02
from gridmap.storage.models import Issue, IssueTransition
from helpers import cell_point, write_csv


def row(lon, lat, **extra):
    return {"lon": lon, "lat": lat, "category": "E0505", "description": "路边机动车乱停放",
            "reported_at": "2025-06-02 09:30", **extra}


def run_import(*args):
    return CliRunner().invoke(main, ["issues", "import", *map(str, args)])


def stored(gm):
    with gm.db.sessions() as session:
        return session.scalars(select(Issue).order_by(Issue.id)).all()


@pytest.fixture
def points(mini_geodata):
    return {code: cell_point(mini_geodata, code) for code in ("460204001001001", "460204001002010", "460204101002001")}


def test_rows_are_located_and_stamped_with_all_four_codes(gm, cli_env, tmp_path, points):
    path = write_csv(tmp_path / "issues.csv",
                     [row(*points["460204001002010"]), row(*points["460204101002001"], source="hotline")])
    result = run_import(path)
    assert result.exit_code == 0, result.output
    assert "imported 2 of 2 row(s)" in result.output
    first, second = stored(gm)
    assert (first.cell_code, first.community_code, first.street_code, first.district_code) == (
        "460204001002010", "460204001002", "460204001", "460204")
    assert second.cell_code == "460204101002001" and second.source == "hotline"
    assert first.reported_at.isoformat() == "2025-06-02T01:30:00+00:00"  # 09:30 Beijing time
    assert first.deadline is not None and first.deadline > first.reported_at
    assert first.urgency and first.department


def test_rows_outside_every_cell_are_reported_by_row_number_and_nothing_is_written(gm, cli_env, tmp_path, points):
    path = write_csv(tmp_path / "issues.csv", [
        row(*points["460204001001001"]),  # line 2: fine
        row(108.0, 18.0),  # line 3: in the sea, outside every cell
        row(*points["460204001001001"], category="E9999"),  # line 4: unknown category
        row(*points["460204001001001"], reported_at="yesterday"),  # line 5: bad date
    ])
    result = run_import(path)
    assert result.exit_code == 2
    assert "row 3: (108, 18) lies outside every grid cell" in result.output
    assert "row 4:" in result.output and "E9999" in result.output
    assert "row 5: reported_at 'yesterday' is not a date-time" in result.output
    assert "nothing imported" in result.output
    assert stored(gm) == []


def test_skip_bad_rows_imports_the_good_ones_and_lists_the_bad(gm, cli_env, tmp_path, points):
    path = write_csv(tmp_path / "issues.csv", [row(*points["460204001001001"]), row(108.0, 18.0)])
    result = run_import(path, "--skip-bad-rows")
    assert result.exit_code == 0
    assert "row 3:" in result.output and "imported 1 of 2 row(s), skipped 1 bad row(s)" in result.output
    assert len(stored(gm)) == 1


def test_dry_run_writes_nothing(gm, cli_env, tmp_path, points):
    path = write_csv(tmp_path / "issues.csv", [row(*points["460204001001001"])])
    result = run_import(path, "--dry-run")
    assert result.exit_code == 0 and "would import 1 of 1" in result.output
    assert stored(gm) == []


def test_geojson_points_are_imported_with_feature_numbers_for_errors(gm, cli_env, tmp_path, points):
    lon, lat = points["460204001001001"]
    collection = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
         "properties": {"category": "C0118", "description": "路灯不亮", "reported_at": "2025-07-01T20:00:00+08:00"}},
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[lon, lat], [lon, lat]]},
         "properties": {"category": "C0118", "description": "x", "reported_at": "2025-07-01"}},
    ]}
    path = tmp_path / "issues.geojson"
    path.write_text(json.dumps(collection))
    result = run_import(path)
    assert result.exit_code == 2 and "row 2: feature 2 is not a Point" in result.output
    result = run_import(path, "--skip-bad-rows")
    assert result.exit_code == 0
    assert [i.category for i in stored(gm)] == ["C0118"]


def test_gcj02_coordinates_from_amap_are_converted(gm, cli_env, tmp_path, points):
    lon, lat = points["460204001002010"]
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    path = write_csv(tmp_path / "amap.csv", [row(float(g_lon), float(g_lat))])
    assert run_import(path, "--crs", "gcj02").exit_code == 0
    (issue,) = stored(gm)
    assert issue.cell_code == "460204001002010"
    assert issue.lon == pytest.approx(lon, abs=1e-6) and issue.lat == pytest.approx(lat, abs=1e-6)


def test_gbk_files_from_hotline_systems_are_read(gm, cli_env, tmp_path, points):
    path = write_csv(tmp_path / "hotline.csv", [row(*points["460204001001001"], description="噪音扰民")],
                     encoding="gbk")
    result = run_import(path)
    assert result.exit_code == 0, result.output
    assert stored(gm)[0].description == "噪音扰民"


def test_a_missing_column_is_named(gm, cli_env, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("lon,lat,description\n109.5,18.3,x\n")
    result = run_import(path)
    assert result.exit_code == 2
    assert "missing column(s) category, reported_at" in result.output


def test_imported_stages_become_the_transition_history(gm, cli_env, tmp_path, points):
    path = write_csv(tmp_path / "issues.csv", [row(*points["460204001001001"], status="closed",
                                                    registered_at="2025-06-02 10:00", dispatched_at="2025-06-02 10:20",
                                                    handled_at="2025-06-02 15:00", checked_at="2025-06-02 16:00",
                                                    closed_at="2025-06-02 16:30")])
    assert run_import(path).exit_code == 0
    with gm.db.sessions() as session:
        history = session.execute(select(IssueTransition.action,
                                         IssueTransition.to_status).order_by(IssueTransition.id)).all()
    assert history == [("report", "reported"), ("register", "registered"), ("dispatch", "dispatched"),
                       ("feedback", "handled"), ("check", "checked"), ("close", "closed")]


def test_stages_out_of_order_are_refused(gm, cli_env, tmp_path, points):
    path = write_csv(tmp_path / "issues.csv", [row(*points["460204001001001"], registered_at="2025-06-01 10:00")])
    result = run_import(path)
    assert result.exit_code == 2
    assert "registered_at" in result.output and "earlier than" in result.output
