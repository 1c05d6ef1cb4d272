"""The authorization matrix: every endpoint × every role, and the cross-scope reads that must fail.

The table below is the specification, written out by hand: which roles may call each endpoint.
A test checks that it names every route of the app, so a new endpoint cannot go unclassified.
"Allowed" means the answer is neither 401 nor 403 (it may still be 400 or 404 for the sample
input); "refused" means 403 for a logged-in role, and 401 (API) or a redirect to the login page
(pages) for an anonymous caller.
"""

from __future__ import annotations

import pytest

from conftest import make_token
from helpers import cell_point

ALL = frozenset({"admin", "dispatcher", "manager", "worker", "handler", "planner"})
PUBLIC = "public"
ROLES = ("anonymous", "admin", "dispatcher", "manager", "worker", "handler", "planner")

# Roles by capability (mirrors the README's table; written out, not imported from the code).
ISSUE_READERS = frozenset({"admin", "dispatcher", "manager", "worker", "handler"})
ISSUE_REPORTERS = frozenset({"admin", "dispatcher", "manager", "worker"})
DISPATCHERS = frozenset({"admin", "dispatcher"})
LEDGER = frozenset({"admin", "dispatcher", "manager"})
COVERAGE = frozenset({"admin", "dispatcher", "manager", "worker", "planner"})
HOUSEHOLDS = frozenset({"admin", "manager", "worker"})
ADMINS = frozenset({"admin"})

COMMUNITY_A = "460204001001"  # the manager's community
COMMUNITY_B = "460204101001"  # someone else's
DEPARTMENT = "市政管理处"

#: (method, URL rule, sample URL, JSON body or None, who may call it)
MATRIX: list[tuple[str, str, str, dict | None, frozenset[str] | str]] = [
    ("GET", "/", "/", None, ALL),
    ("GET", "/manager", "/manager", None, ALL),
    ("GET", "/planner/", "/planner/", None, ALL),
    ("GET", "/dispatch", "/dispatch", None, DISPATCHERS),
    ("POST", "/dispatch/issues/<id:issue_id>", "/dispatch/issues/{a}", {"action": "register"}, DISPATCHERS),
    ("GET", "/coverage/", "/coverage/", None, COVERAGE),
    ("GET", "/coverage/households/<id:household_id>", "/coverage/households/999", None, HOUSEHOLDS),
    ("GET", "/coverage/visits/new", "/coverage/visits/new", None, HOUSEHOLDS),
    ("POST", "/coverage/visits/new", "/coverage/visits/new", {}, HOUSEHOLDS),
    ("GET", "/coverage/worklists", "/coverage/worklists", None, HOUSEHOLDS),
    ("GET", "/coverage/worklists/<path:worker>", "/coverage/worklists/nobody", None, HOUSEHOLDS),
    ("GET", "/admin/audit", "/admin/audit", None, ADMINS),
    ("GET", "/admin/users", "/admin/users", None, ADMINS),
    ("POST", "/admin/users/<path:name>/<any(disable, enable):change>", "/admin/users/nobody/enable", {}, ADMINS),
    ("POST", "/admin/tokens/<path:name>/revoke", "/admin/tokens/nobody/revoke", {}, ADMINS),
    ("GET", "/login", "/login", None, PUBLIC),
    ("POST", "/login", "/login", {}, PUBLIC),
    ("POST", "/logout", "/logout", {}, PUBLIC),
    ("GET", "/api/v1/audit", "/api/v1/audit", None, ADMINS),
    ("GET", "/api/v1/openapi.json", "/api/v1/openapi.json", None, PUBLIC),
    ("GET", "/api/v1/stats/<any(cells, communities, streets, districts):level>", "/api/v1/stats/communities",
     None, ALL),
    ("GET", "/api/v1/issues", "/api/v1/issues", None, ISSUE_READERS),
    ("POST", "/api/v1/issues", "/api/v1/issues", {"category": "E0102"}, ISSUE_REPORTERS),
    ("GET", "/api/v1/issues/<id:issue_id>", "/api/v1/issues/{a}", None, ISSUE_READERS),
    ("GET", "/api/v1/issues/<id:issue_id>/suggestions", "/api/v1/issues/{a}/suggestions", None, DISPATCHERS),
    ("POST", "/api/v1/issues/<id:issue_id>/transitions", "/api/v1/issues/{a}/transitions", {"action": "nothing"},
     ISSUE_READERS),
    ("POST", "/api/v1/issues/assign", "/api/v1/issues/assign", {"ids": []}, DISPATCHERS),
    ("GET", "/api/v1/ledger.csv", "/api/v1/ledger.csv", None, LEDGER),
    ("GET", "/api/v1/ledger.xlsx", "/api/v1/ledger.xlsx", None, LEDGER),
    ("GET", "/api/v1/export/issues.geojson", "/api/v1/export/issues.geojson", None, ISSUE_READERS),
    ("GET", "/api/v1/export/<any(districts, streets, communities, cells):layer>.geojson",
     "/api/v1/export/streets.geojson", None, PUBLIC),
    ("GET", "/api/v1/maps/areas/<level>", "/api/v1/maps/areas/communities", None, ALL),
    ("GET", "/api/v1/maps/tiles/<level>/<z>/<x>/<y>.mvt", "/api/v1/maps/tiles/cells/10/823/459.mvt", None, ALL),
    ("GET", "/api/v1/maps/data", "/api/v1/maps/data", None, ALL),
    ("GET", "/api/v1/maps/issues", "/api/v1/maps/issues?bbox=100,10,120,25", None, ISSUE_READERS),
    ("GET", "/api/v1/maps/coverage", "/api/v1/maps/coverage", None, COVERAGE),
    ("GET", "/api/v1/indicators", "/api/v1/indicators", None, ALL),
    ("GET", "/api/v1/indicators.xlsx", "/api/v1/indicators.xlsx", None, ALL),
    ("GET", "/api/v1/hotspots", "/api/v1/hotspots", None, ALL),
    ("GET", "/api/v1/trends", "/api/v1/trends", None, ALL),
    ("GET", "/api/v1/coverage/<any(cells, communities, streets, districts):level>", "/api/v1/coverage/communities",
     None, COVERAGE),
    ("GET", "/api/v1/coverage/export.xlsx", "/api/v1/coverage/export.xlsx", None, COVERAGE),
    ("GET", "/api/v1/coverage/kinds", "/api/v1/coverage/kinds", None, COVERAGE),
    ("GET", "/api/v1/coverage/stale-cells", "/api/v1/coverage/stale-cells", None, COVERAGE),
    ("GET", "/api/v1/coverage/households", "/api/v1/coverage/households", None, HOUSEHOLDS),
    ("POST", "/api/v1/coverage/households", "/api/v1/coverage/households", {}, HOUSEHOLDS),
    ("GET", "/api/v1/coverage/households/<id:household_id>", "/api/v1/coverage/households/999", None, HOUSEHOLDS),
    ("POST", "/api/v1/coverage/households/<id:household_id>/leave", "/api/v1/coverage/households/999/leave", {},
     HOUSEHOLDS),
    ("POST", "/api/v1/coverage/households/<id:household_id>/move", "/api/v1/coverage/households/999/move", {},
     HOUSEHOLDS),
    ("POST", "/api/v1/coverage/households/import", "/api/v1/coverage/households/import", {}, HOUSEHOLDS),
    ("POST", "/api/v1/coverage/visits", "/api/v1/coverage/visits", {}, HOUSEHOLDS),
    ("GET", "/api/v1/coverage/visits/<id:visit_id>", "/api/v1/coverage/visits/999", None, HOUSEHOLDS),
    ("POST", "/api/v1/coverage/visits/import", "/api/v1/coverage/visits/import", {}, HOUSEHOLDS),
    ("POST", "/api/v1/coverage/patrols", "/api/v1/coverage/patrols", {}, HOUSEHOLDS),
    ("GET", "/api/v1/coverage/patrols/<id:track_id>", "/api/v1/coverage/patrols/999", None, HOUSEHOLDS),
    ("GET", "/api/v1/coverage/worklists", "/api/v1/coverage/worklists", None, HOUSEHOLDS),
    ("GET", "/ogc/", "/ogc/", None, PUBLIC),
    ("GET", "/ogc/api", "/ogc/api", None, PUBLIC),
    ("GET", "/ogc/conformance", "/ogc/conformance", None, PUBLIC),
    ("GET", "/ogc/collections", "/ogc/collections", None, PUBLIC),
    ("GET", "/ogc/collections/<name>", "/ogc/collections/issues", None, PUBLIC),
    ("GET", "/ogc/collections/<name>/items", "/ogc/collections/issues/items", None, PUBLIC),
    ("GET", "/ogc/collections/<name>/items/<feature_id>", "/ogc/collections/issues/items/{a}", None, PUBLIC),
    ("GET", "/ogc/<path:anything>", "/ogc/nothing-here", None, PUBLIC),
    ("POST", "/ogc/<path:anything>", "/ogc/nothing-here", {}, PUBLIC),
    ("GET", "/open311/v2/discovery.<fmt>", "/open311/v2/discovery.json", None, PUBLIC),
    ("GET", "/open311/v2/services.<fmt>", "/open311/v2/services.json", None, PUBLIC),
    ("GET", "/open311/v2/services/<code>.<fmt>", "/open311/v2/services/E0102.json", None, PUBLIC),
    ("GET", "/open311/v2/requests.<fmt>", "/open311/v2/requests.json", None, PUBLIC),
    ("POST", "/open311/v2/requests.<fmt>", "/open311/v2/requests.json", {}, PUBLIC),
    ("GET", "/open311/v2/requests/<request_id>.<fmt>", "/open311/v2/requests/{a}.json", None, PUBLIC),
    ("GET", "/open311/v2/tokens/<token>.<fmt>", "/open311/v2/tokens/abc.json", None, PUBLIC),
    ("GET", "/open311/v2/<path:anything>", "/open311/v2/nothing.json", None, PUBLIC),
    ("POST", "/open311/v2/<path:anything>", "/open311/v2/nothing.json", {}, PUBLIC),
]

#: Public endpoints that check credentials of their own: the sample input is refused by them, with this message.
OWN_CHECKS = {
    ("POST", "/login"): "CSRF token",  # a login post without the login form's token: 403
    ("POST", "/open311/v2/requests.<fmt>"): "api_key is required",  # Open311's client key: 403 per the spec
}


@pytest.fixture
def world(app, gm):
    """Two issues (community A and community B, both routed to 市政管理处) and a client per role."""
    lon_a, lat_a = cell_point(gm.geodata, _first_cell(gm, COMMUNITY_A))
    lon_b, lat_b = cell_point(gm.geodata, _first_cell(gm, COMMUNITY_B))
    records = [
        {"category": "E0102", "description": "垃圾 A", "lon": lon_a, "lat": lat_a, "reporter_name": "张三丰",
         "reporter_phone": "13812345678", "department": DEPARTMENT, "reported_at": "2025-03-03 09:00"},
        {"category": "E0102", "description": "垃圾 B", "lon": lon_b, "lat": lat_b, "reporter_name": "李四",
         "reporter_phone": "13900001111", "department": "环卫所", "reported_at": "2025-03-03 10:00"},
    ]
    report = gm.intake.import_records(gm.db, records, actor="fixture")
    assert not report.errors, report.errors
    a, b = report.issue_ids
    clients = {"anonymous": app.test_client()}
    scopes = {"manager": (COMMUNITY_A,), "worker": (_first_cell(gm, COMMUNITY_A),), "handler": (DEPARTMENT,)}
    for role in ROLES[1:]:
        clients[role] = app.test_client()
        clients[role].environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_token(gm, role, scopes.get(role, ()))}"
    return {"a": a, "b": b, "clients": clients, "cell_a": _first_cell(gm, COMMUNITY_A)}


def _first_cell(gm, community: str) -> str:
    return sorted(code for code in gm.areas.layers.cells["code"] if code.startswith(community))[0]


def test_the_matrix_names_every_route_of_the_app(app):
    routes = {(method, rule.rule) for rule in app.url_map.iter_rules() if rule.endpoint != "static"
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    listed = {(method, rule) for method, rule, *_ in MATRIX}
    assert routes - listed == set(), "routes missing from the authorization matrix"
    assert listed - routes == set(), "matrix rows for routes that do not exist"


def _call(client, method: str, url: str, body: dict | None):
    if method == "GET":
        return client.get(url)
    return client.post(url, json=body)


@pytest.mark.parametrize("method, rule, url, body, allowed", MATRIX, ids=[f"{m} {r}" for m, r, *_ in MATRIX])
def test_every_endpoint_for_every_role(world, method, rule, url, body, allowed):
    url = url.format(a=world["a"])
    for role in ROLES:
        response = _call(world["clients"][role], method, url, body)
        status = response.status_code
        assert status < 500, f"{role}: {method} {url} → {status}"
        if allowed == PUBLIC or role in allowed:
            text = response.get_data().decode("utf-8", "replace")
            if (method, rule) in OWN_CHECKS:  # the endpoint's own refusal of the sample input, not the access rule
                assert status in (401, 403) and OWN_CHECKS[method, rule] in text, f"{role}: {method} {url} → {status}"
            else:
                assert status not in (401, 403), f"{role} may {method} {url}, got {status}: {text[:200]}"
        elif role == "anonymous":
            page = method == "GET" and not url.startswith(("/api/", "/ogc/", "/open311/"))
            if page:
                assert status == 302 and "/login" in response.headers["Location"], f"anonymous {url} → {status}"
            else:
                assert status == 401, f"anonymous {method} {url} → {status}"
                assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")
        else:
            assert status == 403, f"{role} must not {method} {url}, got {status}"


# --- cross-scope reads and writes that must fail ---------------------------------------------------


@pytest.mark.parametrize("role", ["manager", "worker", "handler"])
def test_a_scoped_role_lists_only_its_own_issues(world, role):
    body = world["clients"][role].get("/api/v1/issues").get_json()
    assert [issue["id"] for issue in body["issues"]] == [world["a"]]
    assert body["total"] == 1


@pytest.mark.parametrize("role", ["manager", "worker", "handler"])
@pytest.mark.parametrize("url", [
    "/api/v1/issues/{b}",  # detail
    "/ogc/collections/issues/items/{b}",  # OGC single feature (with the role's token)
])
def test_an_issue_outside_the_scope_is_not_found(world, role, url):
    response = world["clients"][role].get(url.format(b=world["b"]))
    assert response.status_code == 404


@pytest.mark.parametrize("role", ["manager", "worker"])
def test_a_workflow_action_outside_the_scope_fails_and_changes_nothing(world, gm, role):
    response = world["clients"][role].post(f"/api/v1/issues/{world['b']}/transitions", json={"action": "check"})
    assert response.status_code == 404
    detail = world["clients"]["admin"].get(f"/api/v1/issues/{world['b']}").get_json()
    assert detail["status"] == "reported" and len(detail["transitions"]) == 1


def test_a_role_may_only_take_its_own_workflow_actions(world):
    handler = world["clients"]["handler"]
    response = handler.post(f"/api/v1/issues/{world['a']}/transitions", json={"action": "register"})
    assert response.status_code == 403 and "register" in response.get_json()["error"]["message"]
    manager = world["clients"]["manager"]
    assert manager.post(f"/api/v1/issues/{world['a']}/transitions", json={"action": "register"}).status_code == 201


@pytest.mark.parametrize("url, outside", [
    ("/api/v1/ledger.csv", "垃圾 B"),
    ("/api/v1/export/issues.geojson", "垃圾 B"),
    ("/ogc/collections/issues/items", "垃圾 B"),
])
def test_exports_hold_only_the_managers_issues(world, url, outside):
    text = world["clients"]["manager"].get(url).get_data(as_text=True)
    assert "垃圾 A" in text and outside not in text


def test_stats_and_maps_of_a_manager_count_only_their_areas(world):
    manager = world["clients"]["manager"]
    communities = manager.get("/api/v1/stats/communities").get_json()["communities"]
    assert [row["code"] for row in communities] == [COMMUNITY_A]
    assert communities[0]["total"] == 1
    districts = manager.get("/api/v1/stats/districts").get_json()["districts"]
    assert districts[0]["total"] == 1  # the district row counts only the manager's issue
    assert manager.get(f"/api/v1/maps/data?area={COMMUNITY_B}").status_code == 403
    assert manager.get(f"/manager?area={COMMUNITY_B}").status_code == 403
    assert manager.get(f"/api/v1/maps/data?area={COMMUNITY_A}").status_code == 200


def test_a_worker_cannot_report_an_issue_outside_their_cells(world, gm):
    lon, lat = cell_point(gm.geodata, _first_cell(gm, COMMUNITY_B))
    body = {"category": "E0102", "description": "越界上报", "lon": lon, "lat": lat}
    response = world["clients"]["worker"].post("/api/v1/issues", json=body)
    assert response.status_code == 403 and "outside your areas" in response.get_json()["error"]["message"]
    total = world["clients"]["admin"].get("/api/v1/issues").get_json()["total"]
    assert total == 2  # nothing was stored


# --- personal data ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role, name, phone", [
    ("admin", "张三丰", "13812345678"),
    ("dispatcher", "张三丰", "13812345678"),
    ("worker", "张三丰", "13812345678"),
    ("handler", "张三丰", "13812345678"),
    ("manager", "张**", "138****5678"),  # oversees, does not call citizens
])
def test_reporter_contact_is_masked_for_roles_that_do_not_need_it(world, role, name, phone):
    detail = world["clients"][role].get(f"/api/v1/issues/{world['a']}").get_json()
    assert detail["reporter"] == {"name": name, "phone": phone}


def test_the_managers_ledger_masks_reporter_contacts(world):
    text = world["clients"]["manager"].get("/api/v1/ledger.csv").get_data(as_text=True)
    assert "张**" in text and "138****5678" in text
    assert "张三丰" not in text and "13812345678" not in text


@pytest.mark.parametrize("url", [
    "/ogc/collections/issues/items",
    "/open311/v2/requests.json",
    "/api/v1/export/issues.geojson",
])
def test_public_and_export_reads_never_hold_contacts(world, url):
    client = world["clients"]["admin" if url.startswith("/api/") else "anonymous"]
    text = client.get(url).get_data(as_text=True)
    assert "张三丰" not in text and "13812345678" not in text and "李四" not in text


# --- the scope condition itself --------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # gm is only read
@given(code=st.text("0189", min_size=6, max_size=15).filter(lambda c: len(c) in (6, 9, 12, 15)),
       cell=st.text("0189", min_size=15, max_size=15))
def test_the_sql_scope_condition_is_exactly_starts_with(gm, code, cell):
    """The index-friendly range (code ≤ cell < code+1) selects what str.startswith selects, 999… included."""
    from sqlalchemy import literal, select

    from gridmap.security.access import AccessScope

    scope = AccessScope(areas=(code,))
    with gm.db.sessions() as session:
        selected = session.scalar(select(scope.cell_condition(literal(cell))))
    assert bool(selected) == cell.startswith(code) == scope.covers_cell(cell)
