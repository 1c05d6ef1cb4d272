"""Scopes on planner analytics: indicators, trends, hotspots and repeat locations count only the
caller's issues; a planner sees the whole district and no personal data.

June 2025 in the mini district (a cell of each community; every case due 10 June):

    C1  community 460204001001  3 cases closed on time + 1 still in progress   (department 环卫所)
    C2  community 460204001002  2 cases closed late                           (department 城管中队)
    C3  community 460204101001  1 report rejected (不予立案)

So a manager of 460204001001 has 4 received, 4 due, 3 closed, 3 on time; of street 460204001,
6 received, 6 due, 5 closed, 3 on time; the district 7, 6, 5, 3.
"""

from __future__ import annotations

import io
import re

import pytest
from openpyxl import load_workbook

from analytics_data import add, cell_codes, closed_case, issue_row
from gridmap.analytics.hotspots import gi_star_table, queen_neighbours

COMM1, COMM2, TOWN1 = "460204001001", "460204001002", "460204101001"
STREET, TOWN = "460204001", "460204101"
JUNE = "from=2025-06-01&to=2025-06-30"
REPORTER_NAME, REPORTER_PHONE = "赵铁柱", "13912345678"


def first_cell(gm, community: str) -> str:
    return next(code for code in cell_codes(gm) if code.startswith(community))


@pytest.fixture
def june(gm) -> dict[str, str]:
    """The module docstring's cases; returns the cells C1, C2, C3."""
    c1, c2, c3 = (first_cell(gm, code) for code in (COMM1, COMM2, TOWN1))
    reporter = {"reporter_name": REPORTER_NAME, "reporter_phone": REPORTER_PHONE}
    add(gm, [closed_case(gm, cell=c1, department="环卫所", **reporter) for _ in range(3)]
        + [closed_case(gm, cell=c1, department="环卫所", closed=None, **reporter)]
        + [closed_case(gm, cell=c2, department="城管中队", closed="2025-06-12 10:00", **reporter) for _ in range(2)]
        + [issue_row(gm, cell=c3, status="rejected", **reporter)])
    return {"C1": c1, "C2": c2, "C3": c3}


def get_json(client, url: str):
    with client.get(url) as response:
        assert response.status_code == 200, response.get_json()
        return response.get_json()


# --- indicators -----------------------------------------------------------------------------------------------

TOTAL = ("received", "due", "closed", "closed_on_time")


@pytest.mark.parametrize("who, total, communities", [
    (("admin",), (7, 6, 5, 3), [COMM1, COMM2, TOWN1, "460204101002"]),
    (("planner",), (7, 6, 5, 3), [COMM1, COMM2, TOWN1, "460204101002"]),  # the whole district, in figures
    (("manager", COMM1), (4, 4, 3, 3), [COMM1]),
    (("manager", COMM2), (2, 2, 2, 0), [COMM2]),  # both closed late
    (("manager", STREET), (6, 6, 5, 3), [COMM1, COMM2]),
    (("manager", TOWN), (1, 0, 0, 0), [TOWN1, "460204101002"]),  # a rejected report is received, never due
    (("worker", "{C1}"), (4, 4, 3, 3), [COMM1]),
    (("worker", "{C2}"), (2, 2, 2, 0), [COMM2]),
    (("handler", "城管中队"), (2, 2, 2, 0), [COMM1, COMM2, TOWN1, "460204101002"]),  # its department, every area
])
def test_indicators_count_only_the_scope_s_issues(client_as, june, who, total, communities):
    client = client_as(*(part.format(**june) for part in who))
    body = get_json(client, f"/api/v1/indicators?{JUNE}&level=communities")
    assert tuple(body["total"][key] for key in TOTAL) == total
    assert [row["key"] for row in body["rows"]] == communities
    assert sum(row["received"] for row in body["rows"]) == total[0]


def test_a_manager_s_rates_and_rows_are_those_of_their_community(client_as, june):
    manager = client_as("manager", COMM1)
    body = get_json(manager, f"/api/v1/indicators?{JUNE}")
    assert [(row["key"], row["received"], row["closure_rate"], row["on_time_rate"]) for row in body["rows"]] == [
        ("460204", 4, 0.75, 0.75)]  # the district row holds only the manager's part of it
    departments = get_json(manager, f"/api/v1/indicators?{JUNE}&group_by=department")
    assert [(row["key"], row["received"]) for row in departments["rows"]] == [("环卫所", 4)]
    cells = get_json(manager, f"/api/v1/indicators?{JUNE}&level=cells")
    assert len(cells["rows"]) == 24 and all(row["key"].startswith(COMM1) for row in cells["rows"])


def test_the_indicator_xlsx_holds_the_scope_only(client_as, june):
    with client_as("manager", COMM1).get(f"/api/v1/indicators.xlsx?{JUNE}&level=communities") as response:
        assert response.status_code == 200
        rows = list(load_workbook(io.BytesIO(response.data)).active.iter_rows(min_row=3, values_only=True))
    assert [(row[0], row[1], row[2]) for row in rows] == [(COMM1, "春园社区", 4), (None, "合计", 4)]


# --- trends -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who, series, total, closure", [
    (("admin",), {COMM1: [4], COMM2: [2], TOWN1: [1]}, [7], [5 / 6]),
    (("manager", COMM1), {COMM1: [4]}, [4], [0.75]),
    (("manager", STREET), {COMM1: [4], COMM2: [2]}, [6], [5 / 6]),
    (("worker", "{C2}"), {COMM2: [2]}, [2], [1.0]),
])
def test_trends_count_only_the_scope_s_issues(client_as, june, who, series, total, closure):
    client = client_as(*(part.format(**june) for part in who))
    body = get_json(client, f"/api/v1/trends?{JUNE}&interval=month&by=area&level=communities")
    assert {line["key"]: line["values"] for line in body["counts"]["series"]} == series
    assert body["counts"]["total"] == total
    rates = {line["key"]: line["values"] for line in body["indicators"]["series"]}
    assert rates["closure_rate"] == pytest.approx(closure)


# --- hotspots and repeat locations ---------------------------------------------------------------------------


@pytest.fixture
def clustered(gm) -> dict[str, object]:
    """A block of busy cells inside community 001, a busier one in 002, and a repeat spot in 002."""
    cells = gm.areas.layers.cells
    codes = cell_codes(gm)
    neighbours = queen_neighbours(cells)
    inside = [i for i, code in enumerate(codes) if code.startswith(COMM1)]
    centre = next(
        i for i in inside if len(neighbours[i]) == 8 and all(codes[j].startswith(COMM1) for j in neighbours[i])
    )
    other = next(i for i, code in enumerate(codes)
                 if code.startswith(COMM2) and all(codes[j].startswith(COMM2) for j in neighbours[i]))
    issues = [issue_row(gm, cell=codes[i],
                        reported="2025-06-05 09:00") for i in [centre, *neighbours[centre]] for _ in range(8)]
    issues += [issue_row(gm, cell=codes[i], reported="2025-06-07 09:00") for i in inside]
    issues += [issue_row(gm, cell=codes[i],
                         reported="2025-06-06 09:00") for i in [other, *neighbours[other]] for _ in range(30)]
    spot = cells.set_index("code").geometry[codes[other]].representative_point()
    repeat = [issue_row(gm, cell=codes[other], category="E0505", lon=spot.x, lat=spot.y,
                        reported=f"2025-06-{day} 09:00",
                        reporter_name=REPORTER_NAME, reporter_phone=REPORTER_PHONE) for day in (10, 11, 12)]
    add(gm, issues + repeat)
    return {"centre": codes[centre], "other": codes[other], "repeat_ids": [issue.id for issue in repeat],
            "issues": len(issues) + len(repeat)}


def test_hotspots_of_a_manager_are_gi_star_over_their_cells_alone(gm, client_as, client, clustered):
    body = get_json(client_as("manager", COMM1), f"/api/v1/hotspots?{JUNE}")
    cells = gm.areas.layers.cells
    mine = cells[cells["code"].str.startswith(COMM1)].reset_index(drop=True)
    counted = {row["code"]: row["count"] for row in body["cells"]}
    # By hand: the statistic of the community's 24 cells, their counts and their own contiguity.
    expected = gi_star_table(list(mine["code"]), [counted[code] for code in mine["code"]], queen_neighbours(mine))
    assert [row["code"] for row in body["cells"]] == list(mine["code"])
    assert [(row["gi_z"], row["class"]) for row in body["cells"]] == [(row["gi_z"], row["class"]) for row in expected]
    assert counted[clustered["centre"]] == 9 and sum(counted.values()) == 9 * 8 + 24  # the block's 8 + 1 each
    assert body["hotspots"][0]["code"] == clustered["centre"]
    district = {row["code"]: row for row in get_json(client, f"/api/v1/hotspots?{JUNE}")["cells"]}
    assert district[clustered["centre"]]["gi_z"] != body["hotspots"][0]["gi_z"]  # not the district's statistic
    # The block's cells are repeat spots of their own; the E0505 spot of community 002 is not listed.
    assert body["repeats"] and all(spot["cell_code"].startswith(COMM1) for spot in body["repeats"])
    assert "E0505" not in {spot["category"] for spot in body["repeats"]}


def test_hotspots_of_a_worker_cover_their_one_cell(client_as, clustered):
    body = get_json(client_as("worker", clustered["centre"]), f"/api/v1/hotspots?{JUNE}")
    assert [(row["code"], row["count"], row["class"]) for row in body["cells"]] == [(clustered["centre"], 9, "none")]


@pytest.mark.parametrize("who, spots", [
    (("manager", COMM2), 1),
    (("manager", COMM1), 0),
    (("planner",), 1),
])
def test_repeat_locations_are_the_scope_s_and_carry_no_reporter_data(client_as, clustered, who, spots):
    with client_as(*who).get(f"/api/v1/hotspots?{JUNE}&category=E0505") as response:
        text = response.get_data(as_text=True)
        body = response.get_json()
    assert len(body["repeats"]) == spots
    if spots:
        (spot,) = body["repeats"]
        assert (spot["cell_code"], spot["issue_ids"], spot["count"]) == (clustered["other"], clustered["repeat_ids"], 3)
        assert set(spot) == {"category", "lon", "lat", "cell_code", "issue_ids", "first_reported_at",
                             "last_reported_at",
                             "count"}
    assert REPORTER_NAME not in text and REPORTER_PHONE not in text


# --- the planner's page ------------------------------------------------------------------------------------------


def test_the_planner_page_of_a_manager_shows_their_cells_and_figures(client_as, june):
    with client_as("manager", COMM1).get(f"/planner/?{JUNE}&level=communities") as response:
        page = response.get_data(as_text=True)
    assert response.status_code == 200
    drawn = set(re.findall(r'<path d="[^"]*" fill="[^"]*" fill-rule="evenodd" data-code="(\d+)"', page))
    assert len(drawn) == 24 and all(code.startswith(COMM1) for code in drawn)
    assert COMM2 not in page


def test_a_planner_sees_the_whole_district_and_nothing_personal(client_as, june, clustered):
    planner = client_as("planner")
    with planner.get(f"/planner/?{JUNE}") as response:
        page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert REPORTER_NAME not in page and REPORTER_PHONE not in page
    assert get_json(planner, f"/api/v1/indicators?{JUNE}")["total"]["received"] == 7 + clustered["issues"]
    with planner.get("/api/v1/issues") as response:
        assert response.status_code == 403  # aggregates only: no issue list
