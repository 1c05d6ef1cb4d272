"""Scopes on coverage: a grid manager or worker reads and writes the households, visits and patrols
of their own cells only, and sees households' names and phones only if their role may.

The data is test_coverage's hand-computed scenario (households H1–H6 in cells A, B, C of community
460204001001 and H5 in cell D of 460204001002; three patrols through A, B and C), with its 3-minute
patrol threshold. Scopes used below:

    manager of community 460204001001   cells A, B, C …: H1 H2 H3 H4 H6
    manager of community 460204001002   cell D …:        H5
    worker of cell A                    H1 H2 (H4 moved on to B on 06-15)
    planner                             the whole district, aggregates only
"""

from __future__ import annotations

import io
import json

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from gridmap.storage.coverage import Household, HouseholdLocation, PatrolTrack, Visit
from gridmap.storage.models import Issue
from test_coverage import COMMUNITY, A, B, C, D, at, registry, scenario  # noqa: F401  (the hand-computed scenario)

OTHER_COMMUNITY = "460204001002"
STREET = "460204001"
DISTRICT = "460204"
JUNE = "from=2026-06-01&to=2026-06-30"
MANAGER = ("manager", COMMUNITY)
OTHER_MANAGER = ("manager", OTHER_COMMUNITY)
WORKER_A = ("worker", A)
WORKER_B = ("worker", B)
PLANNER = ("planner",)


@pytest.fixture
def settings(settings):
    """Three minutes in a cell make a patrol day, as in test_coverage's hand-computed figures."""
    return {**settings, "patrol_min_minutes": 3}


def get_json(client, url: str):
    with client.get(url) as response:
        return response.status_code, response.get_json()


def post_json(client, url: str, body):
    with client.post(url, data=json.dumps(body), content_type="application/json") as response:
        return response.status_code, response.get_json()


def upload(client, url: str, name: str, text: str, **fields):
    data = {"file": (io.BytesIO(text.encode("utf-8")), name), **fields}
    with client.post(url, data=data, content_type="multipart/form-data") as response:
        return response.status_code, response.get_json()


def household_ids(gm) -> dict[str, int]:
    with gm.db.sessions() as session:
        return dict(session.execute(select(Household.external_id, Household.id)).all())


def counts(gm) -> tuple[int, int, int, int, int]:
    """(households, household locations, visits, issues, patrol tracks) stored."""
    with gm.db.sessions() as session:
        return tuple(session.scalar(select(func.count()).select_from(table))
                     for table in (Household, HouseholdLocation, Visit, Issue, PatrolTrack))


def gpx(*points: tuple[float, float, str]) -> str:
    """A GPX track through (x metres, y metres, UTC time) points of the mini district."""
    body = "".join(f'<trkpt lat="{at(x, y)[1]}" '
                   f'lon="{at(x, y)[0]}"><time>{time}</time></trkpt>' for x, y, time in points)
    return ('<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1">'
            f"<trk><trkseg>{body}</trkseg></trk></gpx>")


# --- figures per level --------------------------------------------------------------------------------

KEYS = ("code", "cells", "households", "visited", "overdue_households", "patrol_days", "days", "stale_cells")


@pytest.mark.parametrize("who, level, expected", [
    # The manager's community: every area above it adds up its 24 cells only (not the district's 74, 6 households).
    (MANAGER, "communities", [(COMMUNITY, 24, 5, 2, 1, 5, 720, 23)]),
    (MANAGER, "streets", [(STREET, 24, 5, 2, 1, 5, 720, 23)]),
    (MANAGER, "districts", [(DISTRICT, 24, 5, 2, 1, 5, 720, 23)]),
    # The other community: H5 only, not visited in June (its visit is on 07-02), never patrolled.
    (OTHER_MANAGER, "communities", [(OTHER_COMMUNITY, 24, 1, 0, 0, 0, 720, 24)]),
    (OTHER_MANAGER, "districts", [(DISTRICT, 24, 1, 0, 0, 0, 720, 24)]),
    # Cell A alone: H1 (visited) and H2 (overdue since 06-20); patrolled on 06-01 and 06-10, stale on 06-30.
    (WORKER_A, "communities", [(COMMUNITY, 1, 2, 1, 1, 2, 30, 1)]),
    (WORKER_A, "districts", [(DISTRICT, 1, 2, 1, 1, 2, 30, 1)]),
    # The planner sees the whole district.
    (PLANNER, "districts", [(DISTRICT, 74, 6, 2, 1, 5, 74 * 30, 73)]),
])
def test_figures_per_level_add_up_only_the_cells_of_the_scope(client_as, scenario, who, level, expected):
    status, body = get_json(client_as(*who), f"/api/v1/coverage/{level}?{JUNE}")
    assert status == 200, body
    assert [tuple(row[key] for key in KEYS) for row in body[level]] == expected


@pytest.mark.parametrize("who, cells", [
    (MANAGER, {A: (2, 1, 1), B: (2, 1, 0), C: (1, 0, 0)}),  # and 21 empty cells of the community
    (OTHER_MANAGER, {D: (1, 0, 0)}),
    (WORKER_A, {A: (2, 1, 1)}),
])
def test_the_cells_level_lists_the_scope_s_cells_with_their_own_figures(client_as, scenario, who, cells):
    status, body = get_json(client_as(*who), f"/api/v1/coverage/cells?{JUNE}")
    assert status == 200
    rows = {row["code"]: row for row in body["cells"]}
    scope = who[1]
    assert rows and all(code.startswith(scope) for code in rows)
    assert len(rows) == (1 if len(scope) == 15 else 24)
    assert {code: (rows[code]["households"], rows[code]["visited"], rows[code]["overdue_households"])
            for code in cells} == cells
    assert sum(row["households"] for row in rows.values()) == sum(h for h, _, _ in cells.values())


def test_the_xlsx_export_holds_the_scope_only(client_as, scenario):
    with client_as(*MANAGER).get(f"/api/v1/coverage/export.xlsx?{JUNE}") as response:
        assert response.status_code == 200
        workbook = load_workbook(io.BytesIO(response.data), read_only=True)
    sheets = {name: list(workbook[name].iter_rows(min_row=2,
                                                  values_only=True)) for name in ("区", "街道", "社区", "网格")}
    workbook.close()
    assert [row[:5] for row in sheets["区"]] == [(DISTRICT, "三亚市天涯区", 24, 5, 2)]
    assert [row[:4] for row in sheets["街道"]] == [(STREET, "河西街道", 24, 5)]
    assert [row[:4] for row in sheets["社区"]] == [(COMMUNITY, "春园社区", 24, 5)]
    assert len(sheets["网格"]) == 24 and all(row[0].startswith(COMMUNITY) for row in sheets["网格"])


def test_the_summary_page_lists_the_scope_s_communities_and_ledger(client_as, scenario):
    with client_as(*MANAGER).get(f"/coverage/?{JUNE}") as response:
        page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'data-code="{COMMUNITY}"' in page and f'data-code="{OTHER_COMMUNITY}"' not in page
    assert "三亚市天涯区：5 户，入户走访率 40.0%" in page


def test_the_map_coverage_layer_colours_the_scope_s_areas_only(client_as, scenario):
    status, body = get_json(client_as(*MANAGER), f"/api/v1/maps/coverage?{JUNE}")
    assert status == 200, body
    assert body["areas"] and all(code.startswith(COMMUNITY) for code in body["areas"])
    assert sum(area["households"] for area in body["areas"].values()) == 5
    status, body = get_json(client_as(*MANAGER), f"/api/v1/maps/coverage?area={OTHER_COMMUNITY}&{JUNE}")
    assert status == 403


# --- stale cells and work lists --------------------------------------------------------------------------


@pytest.mark.parametrize("who, query, status, stale", [
    (WORKER_A, "", 200, [A]),  # A not patrolled since 06-10
    (WORKER_B, "", 200, []),  # B patrolled on 06-28
    (OTHER_MANAGER, "", 200, (OTHER_COMMUNITY, 24)),  # the community never patrolled
    (MANAGER, f"&area={DISTRICT}", 200, (COMMUNITY, 23)),  # a wider area: its part in the scope (every cell but B)
    (MANAGER, f"&area={OTHER_COMMUNITY}", 403, None),  # an area outside the scope
    (WORKER_A, f"&area={D}", 403, None),
])
def test_stale_cells_are_the_scope_s(client_as, scenario, who, query, status, stale):
    got, body = get_json(client_as(*who), f"/api/v1/coverage/stale-cells?days=7&as_of=2026-06-30{query}")
    assert got == status, body
    if status == 403:
        assert "outside your areas" in body["error"]["message"]
    elif isinstance(stale, tuple):
        prefix, count = stale
        assert len(body["cells"]) == count and all(row["code"].startswith(prefix) for row in body["cells"])
    else:
        assert [row["code"] for row in body["cells"]] == stale


@pytest.mark.parametrize("who, cells, due, stale", [
    # 张伟 patrols A, B and C; a worker of A sees his list for A only.
    (WORKER_A, [A], ["H2"], [A]),
    (WORKER_B, [B], [], []),
    (MANAGER, [A, B, C], ["H2"], [C, A]),
    (OTHER_MANAGER, None, None, None),  # 张伟 answers for no cell of community 002
])
def test_work_lists_cover_only_the_scope_s_cells(client_as, scenario, who, cells, due, stale):
    client = client_as(*who)
    status, body = get_json(client, "/api/v1/coverage/worklists?as_of=2026-06-30")
    assert status == 200
    if cells is None:
        assert body["worklists"] == []
        assert get_json(client, "/api/v1/coverage/worklists?as_of=2026-06-30&worker=张伟")[0] == 404
        with client.get("/coverage/worklists/张伟?as_of=2026-06-30") as response:
            assert response.status_code == 404
        return
    (entry,) = body["worklists"]
    assert (entry["worker"], entry["cells"]) == ("张伟", cells)
    assert [h["external_id"] for h in entry["households_due"]] == due
    assert [c["code"] for c in entry["stale_cells"]] == stale
    with client.get("/coverage/worklists/张伟?as_of=2026-06-30") as response:
        page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert all(code in page for code in stale)
    assert all(code not in page for code in {A, B, C} - set(cells))


def test_work_lists_of_assigned_workers_keep_to_the_scope(gm, client_as, scenario):
    from gridmap.issues.dispatch import Worker, store_workers

    with gm.db.session() as session:
        store_workers(session, [Worker("李娜", "13800000001", (A, B)), Worker("王芳", None, (C, D))])
    status, body = get_json(client_as(*OTHER_MANAGER), "/api/v1/coverage/worklists?as_of=2026-07-31")
    assert status == 200
    assert [(entry["worker"], entry["source"],
             entry["cells"]) for entry in body["worklists"]] == [("王芳", "assigned", [D])]
    assert get_json(client_as(*OTHER_MANAGER), "/api/v1/coverage/worklists?as_of=2026-07-31&worker=李娜")[0] == 404


# --- households, visits and patrols one by one -------------------------------------------------------------


@pytest.mark.parametrize("who, area, status, listed", [
    (MANAGER, "", 200, ["H1", "H2", "H3", "H4", "H6"]),
    (OTHER_MANAGER, "", 200, ["H5"]),
    (WORKER_A, "", 200, ["H1", "H2"]),  # H4 lives in B since 06-15
    (MANAGER, DISTRICT, 200, ["H1", "H2", "H3", "H4", "H6"]),  # a wider area: its part in the scope
    (MANAGER, B, 200, ["H3", "H4"]),
    (MANAGER, OTHER_COMMUNITY, 403, None),  # outside the scope
    (PLANNER, "", 403, None),  # aggregates only
])
def test_the_household_list_holds_the_scope_s_households(client_as, scenario, who, area, status, listed):
    got, body = get_json(client_as(*who), f"/api/v1/coverage/households?as_of=2026-06-30&area={area}")
    assert got == status, body
    if listed is not None:
        assert [h["external_id"] for h in body["households"]] == listed
        assert body["total"] == len(listed)


@pytest.mark.parametrize("who, visible", [
    (MANAGER, {"H1", "H2", "H3", "H4", "H6"}),
    (OTHER_MANAGER, {"H5"}),
    (WORKER_A, {"H1", "H2"}),
    (WORKER_B, {"H3", "H4"}),
])
def test_a_household_outside_the_scope_does_not_exist_for_the_caller(gm, client_as, scenario, who, visible):
    client = client_as(*who)
    for external_id, household_id in household_ids(gm).items():
        status, body = get_json(client, f"/api/v1/coverage/households/{household_id}")
        with client.get(f"/coverage/households/{household_id}") as response:
            page_status = response.status_code
        if external_id in visible:
            assert (status, body["external_id"], page_status) == (200, external_id, 200)
        else:  # the same answer as for an id that does not exist
            assert (status, body["error"]["message"], page_status) == (404, f"no household with id {household_id}", 404)
    assert get_json(client, "/api/v1/coverage/households/9999")[1]["error"]["message"] == "no household with id 9999"


@pytest.mark.parametrize("who, visible", [
    # Visits are stamped with the cell the household lived in that day: H4's on 06-05 in A.
    (MANAGER, {"H1", "H2", "H4"}),
    (OTHER_MANAGER, {"H5"}),
    (WORKER_A, {"H1", "H2", "H4"}),
    (WORKER_B, set()),
])
def test_a_visit_outside_the_scope_does_not_exist_for_the_caller(gm, client_as, scenario, who, visible):
    with gm.db.sessions() as session:
        visits = session.execute(select(Visit.id, Household.external_id).join(Household)).all()
    assert len(visits) == 4
    client = client_as(*who)
    for visit_id, external_id in visits:
        status, body = get_json(client, f"/api/v1/coverage/visits/{visit_id}")
        assert status == (200 if external_id in visible else 404), (external_id, body)


@pytest.mark.parametrize("who, segments", [
    # Track 1 runs through A, B and C; track 3 stays in B.
    (WORKER_A, {1: [A], 2: [A, A], 3: None}),
    (WORKER_B, {1: [B], 2: None, 3: [B]}),
    (MANAGER, {1: [A, B, C], 2: [A, A], 3: [B]}),
    (OTHER_MANAGER, {1: None, 2: None, 3: None}),
])
def test_a_patrol_track_shows_only_its_segments_in_the_scope(gm, client_as, scenario, who, segments):
    with gm.db.sessions() as session:
        ids = list(session.scalars(select(PatrolTrack.id).order_by(PatrolTrack.started_at)))
    client = client_as(*who)
    for number, track_id in enumerate(ids, start=1):
        status, body = get_json(client, f"/api/v1/coverage/patrols/{track_id}")
        if segments[number] is None:
            assert (status, body["error"]["message"]) == (404, f"no patrol track with id {track_id}")
        else:
            assert status == 200 and [s["cell_code"] for s in body["segments"]] == segments[number]


# --- personal data -------------------------------------------------------------------------------------------


@pytest.fixture
def named(client):
    """A household in A with a name and a phone, registered by an administrator."""
    lon, lat = at(125, 125)
    status, body = post_json(client, "/api/v1/coverage/households", {
        "external_id": "N1", "address": "春园路1号", "kind": "elderly_alone", "lon": lon, "lat": lat,
        "name": "王秀英", "phone": "13812345678", "registered_on": "2026-01-01"})
    assert status == 201 and body["phone"] == "13812345678"
    return body["id"]


@pytest.mark.parametrize("who, name, phone", [
    (MANAGER, "王**", "138****5678"),  # a grid manager has no personal:read
    (WORKER_A, "王秀英", "13812345678"),  # the grid worker visits them
    (("admin",), "王秀英", "13812345678"),
])
def test_household_names_and_phones_are_masked_for_roles_without_personal_data(client_as, named, who, name, phone):
    client = client_as(*who)
    status, detail = get_json(client, f"/api/v1/coverage/households/{named}")
    assert status == 200 and (detail["name"], detail["phone"]) == (name, phone)
    status, listing = get_json(client, "/api/v1/coverage/households")
    assert [h["name"] for h in listing["households"]] == [name]
    status, lists = get_json(client, "/api/v1/coverage/worklists?as_of=2026-06-30")
    assert status == 200  # nobody patrolled or visited yet: no lists, nothing to leak
    with client.get(f"/coverage/households/{named}") as response:
        page = response.get_data(as_text=True)
    assert name in page and ("王秀英" in page) == (name == "王秀英")


def test_names_in_work_lists_and_write_answers_are_masked_for_a_manager(client_as, named):
    manager = client_as(*MANAGER)
    status, visit = post_json(manager, "/api/v1/coverage/visits",
                              {"household": "N1", "visitor": "张伟", "visited_at": "2026-05-10T10:00:00+08:00"})
    assert status == 201, visit
    status, body = get_json(manager, "/api/v1/coverage/worklists?as_of=2026-06-30")
    (entry,) = body["worklists"]
    assert [h["name"] for h in entry["households_due"]] == ["王**"]  # a monthly household, due 06-10
    with manager.get("/coverage/worklists/张伟?as_of=2026-06-30") as response:
        page = response.get_data(as_text=True)
    assert "王**" in page and "王秀英" not in page
    status, moved = post_json(manager, f"/api/v1/coverage/households/{named}/move",
                              {"cell": B, "moved_on": "2026-06-01"})
    assert status == 200 and (moved["name"], moved["phone"]) == ("王**", "138****5678")


# --- writes ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("who, url, body, status, message", [
    # Registering a household in a cell outside the scope.
    (MANAGER, "/api/v1/coverage/households", {"address": "x", "kind": "ordinary", "cell": D}, 403,
     "outside your areas (460204001001)"),
    (WORKER_A, "/api/v1/coverage/households", {"address": "x", "kind": "ordinary", "cell": B}, 403, f"cell {B}"),
    # Moving a household of the scope out of it, or moving one the caller cannot see.
    (MANAGER, "/api/v1/coverage/households/{H1}/move", {"cell": D, "moved_on": "2026-06-20"}, 403, f"cell {D}"),
    (MANAGER, "/api/v1/coverage/households/{H5}/move", {"cell": A, "moved_on": "2026-06-20"}, 404,
     "no household with id"),
    (WORKER_A, "/api/v1/coverage/households/{H3}/leave", {"left_on": "2026-06-20"}, 404, "no household with id"),
    # A visit to a household outside the scope: it does not exist for the caller.
    (MANAGER, "/api/v1/coverage/visits",
     {"household": "H5", "visitor": "张伟", "visited_at": "2026-06-12T10:00:00+08:00"},
     404, "no household 'H5'"),
    # A visit in the scope raising an issue outside it.
    (MANAGER, "/api/v1/coverage/visits",
     {"household": "H1", "visitor": "张伟", "visited_at": "2026-06-12T10:00:00+08:00",
                                          "issues": [{"category": "E0102", "description": "垃圾",
                                                      "lon": at(1125, 125)[0],
                                                      "lat": at(1125, 125)[1]}]}, 403, "issues raised at the visit"),
    # H4 lives in B now, but on 06-05 it lived in A: a worker of B may not record that visit.
    (WORKER_B, "/api/v1/coverage/visits",
     {"household": "H4", "visitor": "张伟", "visited_at": "2026-06-06T10:00:00+08:00"},
     403, f"household H4 on 2026-06-06: cell {A}"),
    # Linking an issue the caller cannot see is linking an issue that does not exist.
    (MANAGER, "/api/v1/coverage/visits",
     {"household": "H1", "visitor": "张伟", "visited_at": "2026-06-12T10:00:00+08:00",
                                          "issue_ids": ["{issue_in_D}"]}, 400, "no issue with id"),
])
def test_writes_outside_the_scope_are_refused_and_write_nothing(gm, client, client_as, scenario, who, url, body,
                                                                 status, message):
    ids = household_ids(gm)
    lon, lat = at(1125, 125)
    with client.post("/api/v1/issues",
                     json={"category": "E0102", "description": "D 的问题", "lon": lon, "lat": lat}) as response:
        assert response.status_code == 201, response.get_json()
        issue_in_d = response.get_json()["id"]
    body = json.loads(json.dumps(body).replace('"{issue_in_D}"', str(issue_in_d)))
    before = counts(gm)
    with gm.db.sessions() as session:
        locations = session.execute(select(HouseholdLocation.household_id, HouseholdLocation.cell_code,
                                           HouseholdLocation.valid_to).order_by(HouseholdLocation.id)).all()
    got, answer = post_json(client_as(*who), url.format(**ids), body)
    assert got == status, answer
    assert message in answer["error"]["message"]
    assert counts(gm) == before
    with gm.db.sessions() as session:
        assert session.execute(select(HouseholdLocation.household_id, HouseholdLocation.cell_code,
                                      HouseholdLocation.valid_to).order_by(HouseholdLocation.id)).all() == locations


def test_writes_inside_the_scope_go_through(gm, client_as, scenario):
    manager = client_as(*MANAGER)
    status, created = post_json(manager, "/api/v1/coverage/households",
                                {"address": "春园路5号", "kind": "ordinary", "cell": C,
                                                                           "registered_on": "2026-06-01"})
    assert status == 201 and created["location"]["cell_code"] == C
    status, moved = post_json(manager, f"/api/v1/coverage/households/{created['id']}/move", {"cell": A})
    assert status == 200 and moved["location"]["cell_code"] == A
    status, visit = post_json(manager, "/api/v1/coverage/visits", {
        "household": "H3", "visitor": "张伟", "visited_at": "2026-06-12T10:00:00+08:00",
        "issues": [{"category": "E0102", "description": "楼道堆物"}]})
    assert status == 201 and visit["cell_code"] == B and len(visit["issue_ids"]) == 1


@pytest.mark.parametrize("who, text, extra, message", [
    # One row of two outside the scope: nothing is imported, even when bad rows may be skipped.
    (MANAGER, f"external_id,address,kind,cell\nU1,甲,ordinary,{A}\nU2,乙,ordinary,{D}\n", {}, f"row 3: cell {D}"),
    (MANAGER, f"external_id,address,kind,cell\nU1,甲,ordinary,{A}\nU2,乙,ordinary,{D}\n", {"skip_bad_rows": "1"},
     f"row 3: cell {D}"),
    (MANAGER, f"external_id,address,kind,cell\nU1,甲,ordinary,{A}\nU2,乙,ordinary,{D}\n", {"dry_run": "1"},
     f"row 3: cell {D}"),
    # A row updating a household registered outside the scope (H5 in D), even to move it in.
    (MANAGER, f"external_id,address,kind,cell,moved_on\nH5,丙,ordinary,{A},2026-06-20\n", {},
     "row 2 (external_id H5, registered already)"),
])
def test_a_household_import_with_a_row_outside_the_scope_imports_nothing(gm, client_as, scenario, who, text, extra,
                                                                          message):
    before = counts(gm)
    status, body = upload(client_as(*who), "/api/v1/coverage/households/import", "households.csv", text, **extra)
    assert status == 403, body
    assert message in body["error"]["message"] and "nothing was written" in body["error"]["message"]
    assert counts(gm) == before


def test_a_visit_import_is_all_or_nothing_within_the_scope(gm, client_as, scenario):
    worker_b = client_as(*WORKER_B)
    before = counts(gm)
    # Row 2 (H3, in B) is fine; row 3 is H4 on 06-05, when it lived in A.
    text = "household,visitor,visited_at\nH3,张伟,2026-06-12 10:00\nH4,张伟,2026-06-05 11:00\n"
    status, body = upload(worker_b, "/api/v1/coverage/visits/import", "visits.csv", text)
    assert status == 403 and f"row 3: cell {A}" in body["error"]["message"]
    assert counts(gm) == before
    # A household outside the scope is not found: a bad row, so nothing is imported.
    text = "household,visitor,visited_at\nH3,张伟,2026-06-12 10:00\nH1,张伟,2026-06-12 11:00\n"
    status, body = upload(worker_b, "/api/v1/coverage/visits/import", "visits.csv", text)
    assert status == 400 and body["error"]["details"]["errors"] == [{"row": 3, "message": "no household 'H1' (give its "
                                                                                          "id or external_id)"}]
    assert counts(gm) == before
    status, body = upload(worker_b, "/api/v1/coverage/visits/import", "visits.csv",
                          "household,visitor,visited_at\nH3,张伟,2026-06-12 10:00\n")
    assert status == 200 and body["imported"] == 1


def test_a_patrol_import_passing_through_a_cell_outside_the_scope_imports_nothing(gm, client_as):
    worker_a = client_as(*WORKER_A)
    across = gpx((50, 125, "2026-06-01T01:00:00Z"), (700, 125, "2026-06-01T01:13:00Z"))  # A, B, C
    inside = gpx((50, 125, "2026-06-02T01:00:00Z"), (200, 125, "2026-06-02T01:10:00Z"))  # A only
    with worker_a.post("/api/v1/coverage/patrols?worker=张伟&filename=p.gpx", data=across.encode()) as response:
        body = response.get_json()
        assert response.status_code == 403, body
    assert f"track 1: cell {B}" in body["error"]["message"] and f"cell {C}" in body["error"]["message"]
    assert counts(gm)[4] == 0
    with worker_a.post("/api/v1/coverage/patrols?worker=张伟&filename=p.gpx&skip_bad_rows=1",
                       data=across.encode()) as response:
        assert response.status_code == 403
    with worker_a.post("/api/v1/coverage/patrols?worker=张伟&filename=p.gpx", data=inside.encode()) as response:
        assert response.status_code == 200 and response.get_json()["tracks"][0]["cells"] == [A]
    assert counts(gm)[4] == 1


def test_the_visit_form_refuses_a_household_outside_the_scope(gm, client_as, scenario):
    before = counts(gm)
    form = {"household": "H5", "visitor": "张伟", "visited_at": "2026-06-12T10:00"}
    with client_as(*MANAGER).post("/coverage/visits/new", data=form) as response:
        assert response.status_code == 404 and "no household" in response.get_data(as_text=True)
    assert counts(gm) == before


@pytest.mark.parametrize("url", [
    "/api/v1/coverage/households", "/api/v1/coverage/households/1", "/api/v1/coverage/visits/1",
    "/api/v1/coverage/patrols/1", "/api/v1/coverage/worklists", "/coverage/worklists", "/coverage/households/1",
])
def test_a_planner_reads_no_household_visit_or_patrol(client_as, scenario, url):
    with client_as(*PLANNER).get(url) as response:
        assert response.status_code == 403
