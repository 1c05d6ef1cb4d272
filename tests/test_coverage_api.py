"""Coverage over HTTP: /api/v1/coverage/… (JSON, XLSX) and the /coverage/ pages (summary, visit form, work lists)."""

from __future__ import annotations

import io
import json

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from gridmap.storage.models import Issue
from test_coverage import COMMUNITY, A, B, C, at, registry, scenario  # noqa: F401  (the hand-computed scenario)

JUNE = "from=2026-06-01&to=2026-06-30"


def post_json(client, url: str, body):
    with client.post(url, data=json.dumps(body), content_type="application/json") as response:
        return response.status_code, response.get_json()


def get_json(client, url: str):
    with client.get(url) as response:
        return response.status_code, response.get_json()


@pytest.fixture
def household_id(client):
    lon, lat = at(125, 125)
    status, body = post_json(client, "/api/v1/coverage/households", {
        "external_id": "H1", "address": "春园路1号", "kind": "elderly_alone", "members": 1, "lon": lon, "lat": lat,
        "name": "王秀英", "registered_on": "2026-01-01"})
    assert status == 201, body
    return body["id"]


# --- households and visits ----------------------------------------------------------------------------


def test_a_household_is_registered_visited_and_moved(client, household_id):
    status, visit = post_json(client, "/api/v1/coverage/visits", {
        "household": "H1", "visitor": "张伟", "visited_at": "2026-06-10T10:00:00+08:00", "notes": "身体状况良好",
        "issues": [{"category": "E0708", "description": "独居老人生活困难，申请临时救助"}]})
    assert status == 201, visit
    assert (visit["household_id"], visit["cell_code"], visit["visited_on"],
            len(visit["issue_ids"])) == (household_id, A, "2026-06-10", 1)
    status, issue = get_json(client, f"/api/v1/issues/{visit['issue_ids'][0]}")
    assert status == 200 and issue["source"] == "visit"

    lon, lat = at(375, 125)
    status, moved = post_json(client, f"/api/v1/coverage/households/{household_id}/move",
                              {"lon": lon, "lat": lat, "address": "春园路9号", "moved_on": "2026-07-01"})
    assert status == 200, moved
    assert [(loc["cell_code"], loc["valid_from"], loc["valid_to"]) for loc in moved["locations"]] == [
        (A, "2026-01-01", "2026-07-01"), (B, "2026-07-01", None)]
    status, detail = get_json(client, f"/api/v1/coverage/households/{household_id}")
    assert (detail["kind_name"], detail["key"], detail["last_visit"], detail["location"]["address"]) == (
        "独居老人户", True, "2026-06-10", "春园路9号")
    assert detail["visits"][0]["issue_ids"] == visit["issue_ids"]


@pytest.mark.parametrize("url, body, status, message", [
    ("/api/v1/coverage/households", {"address": "x", "kind": "富裕户", "cell": A}, 400, "unknown household kind"),
    ("/api/v1/coverage/households", {"address": "x", "kind": "ordinary", "lon": 108.0, "lat": 18.0}, 422,
     "outside every grid cell"),
    ("/api/v1/coverage/households", {"address": "x", "kind": "ordinary", "cell": A, "external_id": "H1"}, 409,
     "already registered"),
    ("/api/v1/coverage/households", {"address": "x", "kind": "ordinary", "colour": "red"}, 400,
     "unknown field(s) colour"),
    ("/api/v1/coverage/households", [1, 2], 400, "must be a JSON object"),
    ("/api/v1/coverage/visits", {"household": "H9", "visitor": "张伟", "visited_at": "2026-06-10T10:00:00+08:00"}, 404,
     "no household 'H9'"),
    ("/api/v1/coverage/visits", {"household": "H1", "visitor": "张伟", "visited_at": "tomorrow"}, 400,
     "visited_at 'tomorrow'"),
    ("/api/v1/coverage/visits", {"household": "H1", "visitor": "张伟", "visited_at": "2026-06-10T10:00:00+08:00",
                                 "issues": [{"category": "E0708"}]}, 400, "description is empty"),
    ("/api/v1/coverage/households/1/move", {"cell": B, "moved_on": "2025-06-01"}, 409, "must be after 2026-01-01"),
    ("/api/v1/coverage/households/99/move", {"cell": B}, 404, "no household with id 99"),
    ("/api/v1/coverage/households/1/leave", {"left_on": "2025-01-01"}, 409, "must be after 2026-01-01"),
])
def test_bad_requests_get_a_4xx_that_says_what_to_fix(client, household_id, url, body, status, message):
    got, answer = post_json(client, url, body)
    assert got == status, answer
    assert message in answer["error"]["message"]


def test_a_visit_recorded_twice_is_a_conflict_and_a_household_can_leave(client, household_id):
    visit = {"household": str(household_id), "visitor": "张伟", "visited_at": "2026-06-10T10:00:00+08:00"}
    assert post_json(client, "/api/v1/coverage/visits", visit)[0] == 201
    assert post_json(client, "/api/v1/coverage/visits", visit)[0] == 409
    status, left = post_json(client, f"/api/v1/coverage/households/{household_id}/leave", {"left_on": "2026-09-01"})
    assert status == 200 and left["left_on"] == "2026-09-01" and left["location"] is None
    status, late = post_json(client, "/api/v1/coverage/visits", {**visit, "visited_at": "2026-09-02T10:00:00+08:00"})
    assert status == 400 and "was not in the registry on 2026-09-02" in late["error"]["message"]


def test_households_import_by_upload_is_all_or_nothing(client):
    lon, lat = at(125, 125)
    text = f"external_id,address,kind,lon,lat\nU1,春园路1号,ordinary,{lon},{lat}\nU2,春园路2号,nobody,{lon},{lat}\n"
    upload = {"file": (io.BytesIO(text.encode("utf-8")), "households.csv")}
    with client.post("/api/v1/coverage/households/import", data=upload, content_type="multipart/form-data") as response:
        assert response.status_code == 400
        report = response.get_json()["error"]["details"]
    assert (report["imported"], report["errors"][0]["row"]) == (0, 3)
    upload = {"file": (io.BytesIO(text.encode("utf-8")), "households.csv"), "skip_bad_rows": "1"}
    with client.post("/api/v1/coverage/households/import", data=upload, content_type="multipart/form-data") as response:
        assert response.status_code == 200 and response.get_json()["imported"] == 1
    assert get_json(client, "/api/v1/coverage/households?area=460204001001")[1]["total"] == 1


def test_patrols_upload(client):
    lon0, lat0 = at(50, 125)
    lon1, lat1 = at(700, 125)
    gpx = (f'<?xml version="1.0"?><gpx version="1.1" creator="t" xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
           f'<trkpt lat="{lat0}" lon="{lon0}"><time>2026-06-01T01:00:00Z</time></trkpt>'
           f'<trkpt lat="{lat1}" lon="{lon1}"><time>2026-06-01T01:13:00Z</time></trkpt></trkseg></trk></gpx>')
    with client.post("/api/v1/coverage/patrols?worker=张伟&filename=p.gpx", data=gpx.encode()) as response:
        assert response.status_code == 200, response.get_json()
        (summary,) = response.get_json()["tracks"]
    assert (summary["worker"], summary["day"], summary["cells"]) == ("张伟", "2026-06-01", [A, B, C])
    status, detail = get_json(client, "/api/v1/coverage/patrols/1")
    assert status == 200 and [s["cell_code"] for s in detail["segments"]] == [A, B, C]
    with client.post("/api/v1/coverage/patrols?filename=p.gpx", data=b"<gpx><broken") as response:
        assert response.status_code == 400 and "not a readable GPX file" in response.get_json()["error"]["message"]


# --- metrics, export, work lists ----------------------------------------------------------------------


def test_coverage_per_level_matches_the_hand_computed_scenario(client, scenario):  # noqa: F811
    status, body = get_json(client, f"/api/v1/coverage/cells?{JUNE}")
    assert status == 200 and body["as_of"] == "2026-06-30" and body["min_patrol_minutes"] == 10.0
    cells = {row["code"]: row for row in body["cells"]}
    assert len(cells) == 74
    assert (cells[A]["households"], cells[A]["visited"], cells[A]["overdue_households"]) == (2, 1, 1)
    assert (cells[B]["patrol_days"], cells[B]["last_patrol"]) == (1, "2026-06-28")  # the default 10-minute threshold
    status, body = get_json(client, f"/api/v1/coverage/communities?{JUNE}")
    community = {row["code"]: row for row in body["communities"]}[COMMUNITY]
    assert (community["name"], community["households"], community["visited"],
            community["days"]) == ("春园社区", 5, 2, 720)


@pytest.mark.parametrize("query, message", [
    ("from=2026-07-01&to=2026-06-01", "is after to"),
    ("from=June", "`from` must be a date"),
    ("stale_days=0", "`stale_days` must be between 1"),
])
def test_bad_periods_are_refused(client, query, message):
    status, body = get_json(client, f"/api/v1/coverage/cells?{query}")
    assert status == 400 and message in body["error"]["message"]


def test_stale_cells_and_work_lists(client, scenario):  # noqa: F811
    status, body = get_json(client, "/api/v1/coverage/stale-cells?days=7&as_of=2026-06-30&area=460204001001")
    assert status == 200 and len(body["cells"]) == 23  # every cell of 春园社区 but B
    status, body = get_json(client, "/api/v1/coverage/worklists?as_of=2026-06-30&worker=张伟")
    (entry,) = body["worklists"]
    assert [h["external_id"] for h in entry["households_due"]] == ["H2"]
    assert get_json(client, "/api/v1/coverage/worklists?worker=nobody")[0] == 404


def test_xlsx_export_has_a_sheet_per_level(client, scenario):  # noqa: F811
    with client.get(f"/api/v1/coverage/export.xlsx?{JUNE}") as response:
        assert response.status_code == 200
        workbook = load_workbook(io.BytesIO(response.data), read_only=True)
    assert workbook.sheetnames == ["区", "街道", "社区", "网格", "说明"]
    district = list(workbook["区"].iter_rows(values_only=True))
    workbook.close()
    assert district[0][:6] == ("编码", "名称", "网格数", "户数", "已走访户数", "入户走访率")
    assert district[1][:6] == ("460204", "三亚市天涯区", 74, 6, 2, pytest.approx(1 / 3))


def test_the_openapi_document_lists_the_coverage_endpoints(client):
    status, document = get_json(client, "/api/v1/openapi.json")
    assert status == 200
    for path in ("/coverage/{level}", "/coverage/visits", "/coverage/patrols", "/coverage/worklists",
                 "/coverage/export.xlsx"):
        assert path in document["paths"], path


# --- pages --------------------------------------------------------------------------------------------


def test_the_summary_page_shows_the_ledger_line(client, scenario):  # noqa: F811
    with client.get(f"/coverage/?{JUNE}") as response:
        page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "三亚市天涯区：6 户，入户走访率 33.3%" in page
    assert 'data-code="460204001001"' in page and "/api/v1/coverage/export.xlsx?" in page


def test_the_visit_form_records_a_visit_and_an_issue(client, household_id, gm):
    with client.get(f"/coverage/visits/new?household={household_id}") as response:
        assert response.status_code == 200 and f'value="{household_id}"' in response.get_data(as_text=True)
    form = {"household": "H1", "visitor": "张伟", "visited_at": "2026-06-10T10:00", "notes": "<b>老人</b>身体好",
            "issue_category": "E0704", "issue_description": "楼道内给电动车充电"}
    with client.post("/coverage/visits/new", data=form) as response:
        assert response.status_code == 302
        location = response.headers["Location"]
    with client.get(location) as response:
        page = response.get_data(as_text=True)
    assert "已登记走访记录" in page
    assert "&lt;b&gt;老人&lt;/b&gt;身体好" in page and "<b>老人</b>" not in page  # user text is escaped
    with gm.db.sessions() as session:
        assert session.scalar(select(Issue.source)) == "visit"


def test_the_visit_form_shows_what_to_fix_and_keeps_the_input(client, household_id):
    form = {"household": "H1", "visitor": "张伟", "visited_at": "2099-01-01T10:00", "notes": "保留的备注"}
    with client.post("/coverage/visits/new", data=form) as response:
        page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "is in the future" in page and "保留的备注" in page


def test_work_list_pages(client, scenario):  # noqa: F811
    with client.get("/coverage/worklists?as_of=2026-06-30") as response:
        assert response.status_code == 200 and "张伟" in response.get_data(as_text=True)
    with client.get("/coverage/worklists/张伟?as_of=2026-06-30") as response:
        page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "H2" in page and "2026-06-20" in page and A in page
    with client.get("/coverage/worklists/nobody") as response:
        assert response.status_code == 404
