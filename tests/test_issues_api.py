"""The issues API under /api/v1: intake, search, detail, transitions, suggestions, bulk assignment."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from gridmap.geo.crs import wgs84_to_gcj02
from gridmap.issues.escalation import sla_tick
from helpers import cell_point

BEIJING = ZoneInfo("Asia/Shanghai")
CELL = "460204001002010"


@pytest.fixture
def point(mini_geodata):
    return cell_point(mini_geodata, CELL)


def post(client, url, body, *, raw: bytes | None = None):
    data = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode("utf-8")
    with client.post(url, data=data, content_type="application/json") as response:
        return response.status_code, response.get_json(), response.headers


def get(client, url):
    with client.get(url) as response:
        return response.status_code, response.get_json()


def new_issue(point, **extra):
    return {"category": "E0102", "description": "路边暴露垃圾", "lon": point[0], "lat": point[1], **extra}


# --- POST /issues ---------------------------------------------------------------------------------


def test_post_issue_locates_routes_and_answers_201(client, point):
    status, body, headers = post(client, "/api/v1/issues", new_issue(
        point, address="河西路12号", source="hotline", reporter={"name": "王女士", "phone": "13900000000"},
        photos=["https://example.org/p/1.jpg"], reported_at="2025-03-03 09:00"))
    assert status == 201, body
    assert headers["Location"] == f"/api/v1/issues/{body['id']}"
    assert (body["cell"], body["community"], body["street"], body["district"]) == (CELL, CELL[:12], CELL[:9], CELL[:6])
    assert (body["status"], body["source"], body["department"]) == ("reported", "hotline", "环卫所")
    assert body["deadline"] == "2025-03-03T15:00:00+08:00"  # 4 working hours from 09:00: 09–12, 14–15
    assert body["reporter"] == {"name": "王女士", "phone": "13900000000"}
    assert body["photos"] == ["https://example.org/p/1.jpg"]
    assert body["duplicate_candidate"] is None
    assert body["allowed_actions"] == ["register", "reject", "suspend", "merge"]
    assert [t["action"] for t in body["transitions"]] == ["report"]


def test_post_issue_flags_a_likely_duplicate(client, point):
    _, first, _ = post(client, "/api/v1/issues", new_issue(point))
    _, second, _ = post(client, "/api/v1/issues", new_issue((point[0] + 0.0001, point[1])))  # ~10 m east
    candidate = second["duplicate_candidate"]
    assert candidate["id"] == first["id"] and candidate["status"] == "reported"
    assert 9 < candidate["distance_m"] < 12
    assert second["possible_duplicate_of"] == first["id"]


def test_post_issue_converts_gcj02(client, point):
    lon, lat = wgs84_to_gcj02(*point)
    status, body, _ = post(client, "/api/v1/issues", new_issue((float(lon), float(lat)), crs="gcj02"))
    assert status == 201 and body["cell"] == CELL
    assert body["lon"] == pytest.approx(point[0], abs=1e-6)


@pytest.mark.parametrize(
    "body, raw, status, message",
    [
        (None, b"{not json", 400, "not valid JSON"),  # broken JSON
        (None, b"", 400, "the request body is empty"),
        ([1, 2], None, 400, "must be a JSON object, got a JSON list"),
        ({"colour": "red"}, None, 400, "unknown field(s) colour"),
        ({"description": "x", "lon": 110.25, "lat": 18.23}, None, 400, "category is required"),
        ({"category": "E0102", "description": "x", "lon": "110.25", "lat": 18.23}, None, 400,
         "lon must be a number, got a string"),
        ({"category": "E0102", "description": "x", "lon": 110.25, "lat": True}, None, 400,
         "lat must be a number, got a boolean"),
        ({"category": "E0102", "description": "x", "lon": 110.25}, None, 400, "lat is required"),
        ({"category": "E0102", "description": " ", "lon": 110.25, "lat": 18.23}, None, 400, "description is empty"),
        ({"category": 102, "description": "x", "lon": 110.25, "lat": 18.23}, None, 400,
         "category must be a string, got a number"),
        ({"category": "E9999", "description": "x", "lon": 110.25, "lat": 18.23}, None, 400,
         "'E9999'"),  # unknown category
        ({"category": "E05", "description": "x", "lon": 110.25, "lat": 18.23}, None, 400,
         "is a class; give one of its items"),
        ({"category": "E0102", "description": "x", "lon": 108.0, "lat": 18.0}, None, 422, "outside every grid cell"),
        ({"category": "E0102", "description": "x", "lon": 110.25, "lat": 18.23, "source": "fax"}, None, 400,
         "unknown source 'fax'"),
        ({"category": "E0102", "description": "x", "lon": 110.25, "lat": 18.23, "photos": "a.jpg"}, None, 400,
         "photos must be an array"),
        ({"category": "E0102", "description": "x", "lon": 110.25, "lat": 18.23, "reporter": "王"}, None, 400,
         "reporter must be an object"),
        ({"category": "E0102", "description": "x", "lon": 110.25, "lat": 18.23, "crs": True}, None, 400,
         "crs must be an EPSG code"),
        ({"category": "E0102", "description": "x", "lon": 110.25, "lat": 18.23, "reported_at": "yesterday"}, None, 400,
         "reported_at"),
        ({"category": "E0102", "description": "x", "lon": 420000, "lat": 2015000}, None, 400,
         "projected"),  # metres as degrees
    ],
)
def test_post_issue_errors(client, body, raw, status, message):
    code, answer, _ = post(client, "/api/v1/issues", body, raw=raw)
    assert code == status, answer
    assert message in answer["error"]["message"]


# --- GET /issues -------------------------------------------------------------------------------------


@pytest.fixture
def listed(gm, mini_geodata):
    """Five issues in known places, states and times."""
    a = cell_point(mini_geodata, "460204001001001")
    b = cell_point(mini_geodata, "460204001002010")
    c = cell_point(mini_geodata, "460204101001005")

    def row(p, **extra):
        return {"lon": p[0], "lat": p[1], "category": "E0102", "description": "x",
                "reported_at": "2025-06-02 09:30", **extra}

    records = [
        row(a),  # 1: reported, long overdue
        row(a, category="E0505", source="hotline", reported_at="2025-06-03 10:00"),  # 2
        row(b, status="closed", registered_at="2025-06-02 09:40", closed_at="2025-06-03 10:00"),  # 3
        row(b, status="dispatched", registered_at="2025-06-04 08:10", dispatched_at="2025-06-04 08:20",
            department="环卫所", assignee="李师傅", reported_at="2025-06-04 08:00"),  # 4
        row(c, status="suspended", registered_at="2025-06-05 08:10",
            reported_at="2025-06-05 08:00"),  # 5: clock stopped
    ]
    report = gm.intake.import_records(gm.db, records)
    assert report.errors == []
    return report.issue_ids


def ids_of(client, query):
    status, body = get(client, "/api/v1/issues" + query)
    assert status == 200, body
    return [issue["id"] for issue in body["issues"]]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("", [5, 4, 2, 3, 1]),  # newest first, then by id
        ("?sort=id", [1, 2, 3, 4, 5]),
        ("?area=460204", [5, 4, 2, 3, 1]),  # district
        ("?area=460204001&sort=id", [1, 2, 3, 4]),  # street
        ("?area=460204001002&sort=id", [3, 4]),  # community
        ("?area=460204001001001&sort=id", [1, 2]),  # cell
        ("?status=dispatched,suspended&sort=id", [4, 5]),
        ("?status=open&sort=id", [1, 2, 4, 5]),  # the open group
        ("?status=closed", [3]),
        ("?category=E05", [2]),  # a class
        ("?category=E0102&sort=id", [1, 3, 4, 5]),
        ("?source=hotline", [2]),
        ("?from=2025-06-03&to=2025-06-04&sort=id", [2, 4]),  # local days, both included
        ("?overdue=true&sort=id", [1, 2, 4]),  # open, clock running, deadline passed
        ("?overdue=false&sort=id", [3, 5]),
        ("?department=环卫所&assignee=李师傅", [4]),
        ("?sort=id&limit=2&offset=1", [2, 3]),
    ],
)
def test_get_issues_filters(client, listed, query, expected):
    assert ids_of(client, query) == [listed[i - 1] for i in expected]


def test_get_issues_pages_with_the_total(client, listed):
    status, body = get(client, "/api/v1/issues?limit=2&sort=id")
    assert (body["total"], body["limit"], body["offset"], len(body["issues"])) == (5, 2, 0, 2)
    assert "reporter" not in body["issues"][0]  # personal data only in the detail


def test_get_issues_bbox(client, listed, mini_geodata):
    lon, lat = cell_point(mini_geodata, "460204101001005")
    assert ids_of(client, f"?bbox={lon - 0.001},{lat - 0.001},{lon + 0.001},{lat + 0.001}") == [listed[4]]


@pytest.mark.parametrize(
    "query, message",
    [
        ("?area=4602040", "is not an area code"),
        ("?status=lost", "unknown status 'lost'"),
        ("?source=fax", "unknown source 'fax'"),
        ("?category=E9999", "unknown category code 'E9999'"),
        ("?bbox=1,2,3", "bbox must be four numbers"),
        ("?bbox=3,2,1,4", "west < east"),
        ("?from=2025-06-05&to=2025-06-01", "swap them"),
        ("?from=June", "must be a date"),
        ("?overdue=maybe", "overdue must be true or false"),
        ("?limit=0", "limit must be from 1 to 1000"),
        ("?limit=ten", "limit must be a whole number"),
        ("?offset=-1", "offset must be from 0 to 2147483647"),
        ("?sort=colour", "unknown sort 'colour'"),
    ],
)
def test_get_issues_errors(client, query, message):
    status, body = get(client, "/api/v1/issues" + query)
    assert status == 400
    assert message in body["error"]["message"]


# --- GET /issues/{id} and transitions -----------------------------------------------------------------


def test_detail_with_history_and_escalations_after_a_tick(client, gm, listed):
    with gm.db.session() as session:
        sla_tick(session, gm.workflow_rules, datetime(2025, 6, 10, 9, 0, tzinfo=BEIJING))
    status, body = get(client, f"/api/v1/issues/{listed[3]}")
    assert status == 200
    assert [(t["action"], t["from"], t["to"]) for t in body["transitions"]] == [
        ("report", None, "reported"), ("register", "reported", "registered"), ("dispatch", "registered", "dispatched")]
    assert body["sla_state"] == "overdue"
    assert [(e["level"], e["area_level"], e["area_code"]) for e in body["escalations"]] == [
        (1, "cell", "460204001002010"), (2, "community", "460204001002"), (3, "street", "460204001")]
    assert body["escalations"][0]["due_at"] == body["deadline"]
    status, page = get(client, "/api/v1/issues?sort=id&status=dispatched")
    assert [(i["id"], i["sla_state"], i["escalation_level"]) for i in page["issues"]] == [(listed[3], "overdue", 3)]
    status, suspended = get(client, f"/api/v1/issues/{listed[4]}")
    assert (suspended["sla_state"], suspended["escalations"]) == ("paused", [])


def test_unknown_issue_is_404(client):
    assert get(client, "/api/v1/issues/999")[0] == 404
    status, body = get(client, "/api/v1/issues/abc")
    assert status == 404 and body["error"]["code"] == "not_found"


def test_post_transitions_drive_the_workflow(client, client_as, point):
    _, issue, _ = post(client, "/api/v1/issues", new_issue(point, reported_at="2025-03-03 09:00"))
    url = f"/api/v1/issues/{issue['id']}/transitions"
    desk = client_as("dispatcher")
    status, body, _ = post(desk, url, {"action": "register", "at": "2025-03-03 09:30"})
    assert status == 201, body
    assert body["transition"]["action"] == "register"
    assert body["transition"]["actor"].startswith("token:test-dispatcher-")  # the caller, not a typed name
    assert body["issue"]["deadline"] == "2025-03-03T15:30:00+08:00"
    status, body, _ = post(client,
                           url, {"action": "dispatch", "department": "环卫所", "assignee": "李师傅",
                                 "at": "2025-03-03 09:40"})
    assert (status, body["issue"]["assignee"],
            body["transition"]["details"]) == (201, "李师傅", {"department": "环卫所", "assignee": "李师傅"})
    status, body, _ = post(client, url,
                           {"action": "extend", "comment": "缺材料", "approver": "值班长", "at": "2025-03-03 10:00"})
    assert status == 201 and body["issue"]["extension_count"] == 1
    status, body = get(client, f"/api/v1/issues/{issue['id']}")
    assert [t["action"] for t in body["transitions"]] == ["report", "register", "dispatch", "extend"]
    assert body["transitions"][-1]["action_label"] == "延期" and body["transitions"][-1]["comment"] == "缺材料"


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"action": "close"}, 409, "allowed actions from reported: register, reject, suspend, merge"),  # illegal
        ({"action": "reject"}, 400, "reject needs a reason"),
        ({"action": "fly"}, 400, "unknown action 'fly'"),
        ({}, 400, "action is required"),
        ({"action": "register", "colour": "red"}, 400, "unknown field(s) colour"),
        ({"action": "register", "satisfaction": 5}, 400, "register takes no parameters; got satisfaction"),
        ({"action": "register", "at": "soon"}, 400, "at 'soon' is not a date-time"),
        ({"action": "register", "comment": 5}, 400, "comment must be a string"),
    ],
)
def test_post_transition_errors(client, point, body, status, message):
    _, issue, _ = post(client, "/api/v1/issues", new_issue(point))
    code, answer, _ = post(client, f"/api/v1/issues/{issue['id']}/transitions", body)
    assert code == status, answer
    assert message in answer["error"]["message"]
    if status == 409:
        assert answer["error"]["code"] == "illegal_transition"
        assert answer["error"]["details"]["allowed"] == ["register", "reject", "suspend", "merge"]


def test_transition_of_an_unknown_issue_is_404(client):
    status, body, _ = post(client, "/api/v1/issues/999/transitions", {"action": "register"})
    assert status == 404 and "no issue has the id 999" in body["error"]["message"]


# --- suggestions and bulk assignment -------------------------------------------------------------------


def test_suggestions(client, gm, point, tmp_path):
    from gridmap.demo.people import demo_workers
    from gridmap.issues.dispatch import store_workers

    with gm.db.session() as session:
        store_workers(session, demo_workers(gm.areas.layers))
    _, issue, _ = post(client, "/api/v1/issues", new_issue(point))
    status, body = get(client, f"/api/v1/issues/{issue['id']}/suggestions?limit=3")
    assert status == 200 and body["issue"] == issue["id"]
    first, second, third = body["suggestions"]
    assert (first["kind"], first["department"], first["rank"]) == ("department", "环卫所", 1)
    assert (second["kind"], second["responsibility"]) == ("worker", 2)
    assert second["reason"].startswith(f"grid worker of cell {CELL}")
    assert get(client, f"/api/v1/issues/{issue['id']}/suggestions?limit=x")[0] == 400
    assert get(client, "/api/v1/issues/999/suggestions")[0] == 404


def test_bulk_assign(client, point):
    ids = []
    for _ in range(3):
        _, issue, _ = post(client, "/api/v1/issues", new_issue(point))
        ids.append(issue["id"])
    for issue_id in ids[:2]:
        post(client, f"/api/v1/issues/{issue_id}/transitions", {"action": "register"})
    status, body, _ = post(client, "/api/v1/issues/assign", {"ids": ids, "assignee": "李师傅"})
    assert status == 409  # the third is not registered: nothing is dispatched
    assert body["error"]["details"]["problems"][0]["issue"] == ids[2]
    assert get(client, f"/api/v1/issues/{ids[0]}")[1]["status"] == "registered"
    status, body, _ = post(client, "/api/v1/issues/assign", {"ids": ids[:2], "department": "市政管理处"})
    assert status == 200, body
    assert body["assigned"] == 2 and [t["to"] for t in body["transitions"]] == ["dispatched", "dispatched"]
    assert get(client, f"/api/v1/issues/{ids[1]}")[1]["department"] == "市政管理处"


@pytest.mark.parametrize(
    "body, status, message",
    [
        ({"ids": []}, 400, "ids must be a non-empty array"),
        ({"ids": ["1"]}, 400, "ids must be a non-empty array of issue ids"),
        ({"department": "x"}, 400, "ids must be a non-empty array"),
        ({"ids": [999]}, 404, "no issue has the id 999"),
        ({"ids": [1, 1]}, 400, "listed twice"),
    ],
)
def test_bulk_assign_errors(client, body, status, message):
    code, answer, _ = post(client, "/api/v1/issues/assign", body)
    assert code == status, answer
    assert message in answer["error"]["message"]
