"""Dispatch: routing rules, grid workers of cells, assignment suggestions and their ranking.

The mini district: street 460204001 (communities 001, 002) and the town 460204101 (communities
001 and the islands 002), 250 m cells (24 per mainland community, 2 on the islands).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import shapely
from click.testing import CliRunner
from pyproj import Transformer
from sqlalchemy import select

from conftest import UTM
from gridmap.cli import main
from gridmap.demo.people import demo_workers
from gridmap.errors import InvalidInput
from gridmap.geo.validate import load_layer_set
from gridmap.issues.categories import load_categories
from gridmap.issues.dispatch import (
    BUNDLED_WORKERS,
    Routing,
    parse_workers,
    read_workers,
    responsible_worker,
    store_workers,
    suggest_assignees,
    workers_csv,
)
from gridmap.settings import BUNDLED_GEODATA
from gridmap.storage.models import Issue
from gridmap.storage.workflow import GridWorker
from helpers import cell_point, write_csv

CATEGORIES = load_categories()


@pytest.mark.parametrize(
    "category, street, department",
    [
        ("E0102", "460204001", "环卫所"),  # a 街道: the category's own department
        ("E0102", "460204100", "育才镇环卫站"),  # a town: the class rule E01 for 育才镇
        ("E0505", "460204001", "交警大队"),  # illegal parking in a 街道: the traffic police
        ("E0505", "460204101",
         "抱龙镇综合行政执法队"),  # in 抱龙镇 the town's class rule E05 wins over the item default
        ("C0118", "460204102", "天涯镇村镇建设服务中心"),  # an item rule for one town
        ("C0118", "460204101", "路灯管理所"),  # …that does not reach the next town
        ("E0704", "460204001", "消防救援大队"),  # a district-wide item rule overrides the category tree
        ("E0704", None, "消防救援大队"),  # also without a street
    ],
)
def test_bundled_routing(category, street, department):
    assert Routing.load(None, CATEGORIES).department_for(category, street) == department


def routing_file(tmp_path: Path, rows: list[dict]) -> Path:
    return write_csv(tmp_path / "routing.csv", rows)


def test_the_most_specific_rule_wins(tmp_path):
    path = routing_file(tmp_path, [
        {"category": "E05", "street": "", "department": "class anywhere"},
        {"category": "E0505", "street": "", "department": "item anywhere"},
        {"category": "E05", "street": "460204001", "department": "class in street"},
        {"category": "E0505", "street": "460204101", "department": "item in street"},
    ])
    routing = Routing.load(path, CATEGORIES)
    assert routing.department_for("E0505", "460204101") == "item in street"
    assert routing.department_for("E0505", "460204001") == "class in street"
    assert routing.department_for("E0505", "460204999") == "item anywhere"
    assert routing.department_for("E0501", "460204999") == "class anywhere"
    assert routing.department_for("E0102", "460204001") == "环卫所"  # no rule: the category tree


def test_a_bad_routing_file_lists_every_problem(tmp_path):
    path = routing_file(tmp_path, [
        {"category": "E9999", "street": "", "department": "x"},  # line 2: unknown category
        {"category": "E0505", "street": "4602", "department": "x"},  # line 3: not a street code
        {"category": "E0505", "street": "", "department": ""},  # line 4: no department
        {"category": "E0505", "street": "460204001", "department": "a"},
        {"category": "E0505", "street": "460204001", "department": "b"},  # line 6: twice
    ])
    with pytest.raises(InvalidInput) as error:
        Routing.load(path, CATEGORIES)
    message = error.value.message
    assert "has 4 problem(s)" in message
    assert "line 2, column category (A): unknown category 'E9999'" in message
    assert "line 3, column street (B): '4602' is not a 9-digit street code" in message
    assert "line 4, column department (C): department is empty" in message
    assert "line 6: category E0505 and street 460204001 already routed on line 5" in message


def test_intake_routes_each_issue_by_its_street(gm, mini_geodata):
    town = cell_point(mini_geodata, "460204101001005")
    city = cell_point(mini_geodata, "460204001001001")
    records = [
        {"lon": town[0], "lat": town[1], "category": "E0505", "description": "乱停车",
         "reported_at": "2025-06-02 09:30"},
        {"lon": city[0], "lat": city[1], "category": "E0505", "description": "乱停车",
         "reported_at": "2025-06-02 09:30"},
        {"lon": town[0], "lat": town[1], "category": "E0505", "description": "乱停车",
         "reported_at": "2025-06-02 09:30",
         "department": "指定部门"},  # a department named by the source is kept
    ]
    report = gm.intake.import_records(gm.db, records)
    with gm.db.sessions() as session:
        departments = [session.get(Issue, i).department for i in report.issue_ids]
    assert departments == ["抱龙镇综合行政执法队", "交警大队", "指定部门"]


# --- grid workers -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def layers(mini_geodata):
    return load_layer_set(mini_geodata)


def rows(*entries):
    return [(line, {"name": name, "phone": phone,
                    "areas": areas}) for line, (name, phone, areas) in enumerate(entries, start=2)]


def test_workers_name_cells_or_whole_communities(layers):
    workers = parse_workers(rows(
        ("陈网格", "13800000001", "460204001001001 460204001001002"),
        ("林网格", "", "460204001002"),  # every cell of the community
    ), layers)
    assert workers[0].cells == ("460204001001001", "460204001001002")
    assert len(workers[1].cells) == 24 and workers[1].phone is None


@pytest.mark.parametrize(
    "entries, message",
    [
        ((("陈网格", "1", "460204001001001"), ("陈网格", "2", "460204001001002")),
         "陈网格 is already listed on line 2"),
        ((("陈网格", "1", "460204001001001"), ("林网格", "2", "460204001001")),
         "cell 460204001001001 already belongs to 陈网格 (line 2); a cell has one grid worker"),
        ((("陈网格", "1", "460204001001999"),), "'460204001001999' is neither a cell (15 digits) nor a community"),
        ((("陈网格", "1", ""),), "陈网格 has no cells"),
        ((("", "1", "460204001001001"),), "line 2: name is empty"),
    ],
)
def test_bad_workers_are_refused_with_the_line(layers, entries, message):
    with pytest.raises(InvalidInput) as error:
        parse_workers(rows(*entries), layers)
    assert message in error.value.message


def test_demo_workers_cover_every_cell_once_about_20_each(layers):
    workers = demo_workers(layers)
    cells = [cell for worker in workers for cell in worker.cells]
    assert sorted(cells) == sorted(layers.cells["code"])  # every cell, once
    assert len({worker.name for worker in workers}) == len(workers)
    assert max(len(worker.cells) for worker in workers) <= 20
    assert len(workers) == 2 + 2 + 2 + 1  # 24 cells → 2 workers of 12; the 2 island cells → 1
    assert demo_workers(layers) == workers  # the same every time


def test_the_bundled_workers_file_is_the_demo_workers_of_the_bundled_layer_set():
    tianya = load_layer_set(BUNDLED_GEODATA)
    expected = workers_csv(demo_workers(tianya), tianya)
    assert BUNDLED_WORKERS.read_text(encoding="utf-8") == expected
    assert read_workers(BUNDLED_WORKERS, tianya) == demo_workers(tianya)


def test_workers_load_and_generate_cli(gm, cli_env, tmp_path):
    out = tmp_path / "workers.csv"
    result = CliRunner().invoke(main, ["workers", "generate", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "wrote 7 grid worker(s)" in result.output
    result = CliRunner().invoke(main, ["workers", "load", str(out)])
    assert result.exit_code == 0, result.output
    assert "loaded 7 grid worker(s) responsible for 74 cell(s)" in result.output
    with gm.db.sessions() as session:
        assert (
            responsible_worker(session, "460204101002002").name
            == list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))[-1]["name"]
        )
    bad = write_csv(tmp_path / "bad.csv", [{"name": "陈网格", "phone": "1", "areas": "460204001001999"}])
    result = CliRunner().invoke(main, ["workers", "load", str(bad)])
    assert result.exit_code == 2 and "line 2" in result.output
    with gm.db.sessions() as session:  # nothing replaced
        assert len(session.scalars(select(GridWorker)).all()) == 7


# --- suggestions ----------------------------------------------------------------------------------

ISSUE_CELL = "460204001001001"


@pytest.fixture
def staffed(gm, layers, mini_geodata):
    """Four workers: A has the issue's cell, B the rest of its community, C and D other communities (C busy)."""
    with gm.db.session() as session:
        store_workers(session, parse_workers(rows(
            ("A网格员", "13800000001", ISSUE_CELL),
            ("B网格员", "13800000002",
             " ".join(c for c in layers.cells["code"] if c.startswith("460204001001") and c != ISSUE_CELL)),
            ("C网格员", "13800000003", "460204001002"),
            ("D网格员", "13800000004", "460204101001"),
        ), layers))
    point = cell_point(mini_geodata, ISSUE_CELL)
    busy = cell_point(mini_geodata, "460204001002001")
    records = [{"lon": point[0], "lat": point[1], "category": "E0102", "description": "暴露垃圾",
                "reported_at": "2025-06-02 09:30"}]
    records += [{"lon": busy[0], "lat": busy[1], "category": "E0505", "description": "乱停车",
                 "reported_at": "2025-06-02 09:30",
                 "status": "dispatched", "registered_at": "2025-06-02 09:40", "dispatched_at": "2025-06-02 09:50",
                 "assignee": "C网格员"} for _ in range(3)]
    ids = gm.intake.import_records(gm.db, records).issue_ids
    return ids[0]


def suggestions(gm, issue_id, **options):
    with gm.db.sessions() as session:
        issue = session.get(Issue, issue_id)
        return suggest_assignees(session, issue, layers=gm.areas.layers, routing=gm.routing, **options)


def test_suggestions_rank_responsibility_then_distance_plus_workload(gm, staffed):
    ranked = suggestions(gm, staffed)
    assert [(s.rank, s.kind, s.department or s.assignee, s.responsibility, s.open_workload) for s in ranked] == [
        # the routed department: no place, nothing else open (the issue itself not counted)
        (1, "department", "环卫所", 2, 0),
        (2, "worker", "A网格员", 2, 0),  # the cell's own grid worker
        (3, "worker", "B网格员", 1, 0),  # same community
        (4, "worker", "D网格员", 0, 0),  # farther than C, but C has 3 open issues (3 × 500 m)
        (5, "worker", "C网格员", 0, 3),
    ]
    for suggestion in ranked:
        assert suggestion.cost_m == pytest.approx(
            (suggestion.distance_m or 0) + 500 * suggestion.open_workload, abs=0.1
        )
    assert ranked[1].phone == "13800000001"
    assert ranked[4].distance_m < ranked[3].distance_m


def test_distance_is_to_the_centre_of_the_workers_cells_in_metres(gm, staffed, layers):
    by_name = {s.assignee: s for s in suggestions(gm, staffed) if s.kind == "worker"}
    to_utm = Transformer.from_crs(4326, UTM, always_xy=True)
    with gm.db.sessions() as session:
        issue = session.get(Issue, staffed)
        here = shapely.Point(to_utm.transform(issue.lon, issue.lat))
    d_cells = layers.cells[layers.cells["code"].str.startswith("460204101001")].to_crs(UTM).geometry.centroid
    centre = shapely.Point(d_cells.x.mean(), d_cells.y.mean())
    assert by_name["D网格员"].distance_m == pytest.approx(here.distance(centre), rel=0.01)


def test_workload_weight_is_a_setting_and_limit_cuts_the_list(gm, staffed):
    ranked = suggestions(gm, staffed, workload_m=0.0, limit=5)
    assert [s.assignee for s in ranked[3:]] == ["C网格员", "D网格员"]  # by distance alone
    assert len(suggestions(gm, staffed, limit=2)) == 2
    with pytest.raises(InvalidInput, match="limit must be at least 1"):
        suggestions(gm, staffed, limit=0)


def test_a_street_rule_adds_the_category_default_as_second_choice(gm, mini_geodata):
    town = cell_point(mini_geodata, "460204101001005")
    issue_id = gm.intake.create(gm.db, {"lon": town[0], "lat": town[1], "category": "E0505", "description": "乱停车",
                                        "reported_at": "2025-06-02 09:30"}).id
    ranked = suggestions(gm, issue_id)
    assert [(s.department, s.responsibility) for s in ranked] == [("抱龙镇综合行政执法队", 2), ("交警大队", 1)]


def test_suggest_cli_prints_json(gm, cli_env, staffed):
    result = CliRunner().invoke(main, ["issues", "suggest", str(staffed), "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert '"assignee": "A网格员"' in result.output
