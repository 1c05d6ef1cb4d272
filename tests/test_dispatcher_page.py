"""The dispatcher's page (调度台): the queue, its filters and map, and the actions as forms."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from conftest import make_user
from gridmap.issues.dispatch import Worker, store_workers
from gridmap.issues.query import IssueQuery
from gridmap.issues.queue import dispatch_queue, warning_horizon
from gridmap.issues.workflow import apply_action
from gridmap.maps.assets import external_urls
from gridmap.security.access import UNLIMITED
from gridmap.storage.models import Issue, IssueTransition
from helpers import cell_point, csrf_of, log_in

NOW = datetime.now(UTC).replace(microsecond=0)
CELL_A, CELL_B = "460204001001001", "460204101001003"
WORKER = "网格员小王"


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def build_queue_issues(gm, mini_geodata) -> dict[str, int]:
    """Issues with continuous-hour limits (so their state does not depend on the clock of the run).

    E0301 施工扰民 has 4 continuous hours, E0401 路面塌陷 2. Returns ids by story.
    """
    a, b = cell_point(mini_geodata, CELL_A), cell_point(mini_geodata, CELL_B)
    stories = {
        # name: (point, category, source, minutes ago reported, actions as (action, minutes ago, params))
        "to_register": (a, "E0301", "hotline", 10, []),
        "to_dispatch": (a, "E0301", "patrol", 20, [("register", 10, {})]),
        "warning": (b, "E0301", "patrol", 220, [("register", 210, {}), ("dispatch", 200, {})]),  # 3.5 of 4 h gone
        "overdue": (b, "E0401", "hotline", 310, [("register", 300, {}), ("dispatch", 290, {})]),
        "on_time": (a, "E0301", "patrol", 20, [("register", 15, {}), ("dispatch", 10, {})]),
        "suspended": (b, "E0401", "patrol", 400, [("register", 390, {}), ("suspend", 380, {"comment": "待审批"})]),
        "rejected": (a, "E0301", "web", 30, [("reject", 20, {"comment": "重复"})]),
    }
    records = [{"lon": p[0], "lat": p[1], "category": category, "source": source, "description": f"{name} 的问题",
                "reported_at": ago(minutes).isoformat()}
               for name, (p, category, source, minutes, _) in stories.items()]
    report = gm.intake.import_records(gm.db, records, actor="fixture")
    assert not report.errors
    ids = dict(zip(stories, report.issue_ids))
    with gm.db.session() as session:
        store_workers(session, [Worker(WORKER, "13800000001", (CELL_A,))])
        for name, (_, _, _, _, actions) in stories.items():
            issue = session.get(Issue, ids[name])
            for action, minutes, params in actions:
                apply_action(session, issue, action, actor="fixture", at=ago(minutes),
                             rules=gm.workflow_rules, **params)
    return ids


def queue_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="issue-(\d+)"', html)]


@pytest.fixture
def ids(gm, mini_geodata):
    return build_queue_issues(gm, mini_geodata)


def test_the_queue_holds_what_waits_sorted_by_deadline(client, ids):
    with client.get("/dispatch") as response:
        assert response.status_code == 200
        html = response.get_data(as_text=True)
    # overdue (due 3 h 10 min ago) · warning (due in 30 min) · to_register (due in 3 h 50) · to_dispatch (due in 3 h
    # 50, later id)
    assert queue_ids(html) == [ids["overdue"], ids["warning"], ids["to_register"], ids["to_dispatch"]]
    assert "已超期" in html and "即将超期" in html and "待派遣" in html and "待立案" in html
    assert external_urls(html) == []  # the map's assets are the app's own


@pytest.mark.parametrize(("query", "expected"), [
    ({"area": "460204101"}, ["overdue", "warning"]),  # a street
    ({"area": CELL_A}, ["to_register", "to_dispatch"]),  # a cell
    ({"source": "hotline"}, ["overdue", "to_register"]),
    ({"category": "E04"}, ["overdue"]),  # a class
    ({"status": "registered"}, ["to_dispatch"]),
    ({"status": "dispatched", "area": "460204101"}, ["overdue", "warning"]),
])
def test_filters_are_in_the_url(client, ids, query, expected):
    with client.get("/dispatch?" + urlencode(query)) as response:
        assert response.status_code == 200
        html = response.get_data(as_text=True)
    assert queue_ids(html) == [ids[name] for name in expected]
    for value in query.values():
        assert f'value="{value}" selected' in html  # the filter form shows the filter in force


def test_a_bad_filter_is_a_400_page(client, ids):
    with client.get("/dispatch?status=finished") as response:
        assert response.status_code == 400
        assert "unknown status" in response.get_data(as_text=True)


def test_forms_offer_the_allowed_actions_with_suggestions(client, ids):
    with client.get("/dispatch") as response:
        html = response.get_data(as_text=True)
    row = html[html.index(f'<tr id="issue-{ids["to_dispatch"]}"'):]
    row = row[:row.index("</tr>")]
    actions = re.findall(r'name="action" value="(\w+)"', row)
    assert actions == ["dispatch", "suspend", "merge"]  # what the workflow allows from registered
    assert f'value="assignee:{WORKER}"' in row  # the cell's grid worker is suggested
    assert 'value="department:' in row  # and the routed department
    overdue = html[html.index(f'<tr id="issue-{ids["overdue"]}"'):]
    overdue = overdue[:overdue.index("</tr>")]
    assert re.findall(r'name="action" value="(\w+)"', overdue) == ["start", "return", "extend", "suspend", "merge"]
    assert 'name="comment" required' in overdue  # a reason is asked for where one is needed


def post(client, issue_id, **form):
    return client.post(f"/dispatch/issues/{issue_id}", data=form)


def transitions(gm) -> int:
    with gm.db.sessions() as session:
        return session.scalar(select(func.count()).select_from(IssueTransition))


def test_assigning_redirects_to_the_queue_and_the_issue_leaves_it(anon_client, gm, ids):
    make_user(gm, "调度员李", "dispatcher")
    client = anon_client
    log_in(client, "调度员李", "correct horse")
    token = csrf_of(client.get("/dispatch").get_data(as_text=True))
    with post(client, ids["to_dispatch"], action="dispatch", pick=f"assignee:{WORKER}", csrf_token=token,
              filters="area=460204001001") as response:
        assert response.status_code == 303
        assert response.headers["Location"].startswith("/dispatch?area=460204001001&done=")
    with gm.db.sessions() as session:
        issue = session.get(Issue, ids["to_dispatch"])
        assert (issue.status, issue.assignee) == ("dispatched", WORKER)
        assert issue.transitions[-1].actor == "调度员李"
    with client.get(f"/dispatch?area=460204001001&done={ids['to_dispatch']}&action=dispatch") as response:
        html = response.get_data(as_text=True)
    assert ids["to_dispatch"] not in queue_ids(html)
    assert f"案件 #{ids['to_dispatch']}：派遣 已完成" in html


def test_a_typed_department_wins_over_the_pick_and_the_actor_is_the_caller(client, gm, ids):
    with post(client, ids["to_dispatch"], action="dispatch", pick=f"assignee:{WORKER}", department="城管执法队",
              assignee="") as response:
        assert response.status_code == 303
    with gm.db.sessions() as session:
        issue = session.get(Issue, ids["to_dispatch"])
        assert (issue.department, issue.assignee) == ("城管执法队", WORKER)
        assert issue.transitions[-1].actor.startswith("token:test-admin")


@pytest.mark.parametrize(("story", "form", "status", "message"), [
    # returning needs a reason
    ("overdue", {"action": "return"}, 400, "return needs a reason"),
    # extending needs the approver
    ("overdue", {"action": "extend", "comment": "材料未到"}, 400, "extend needs the approver"),
    # a registered case cannot be closed: the allowed actions are named
    ("to_dispatch", {"action": "close"}, 409, "allowed actions from registered: dispatch, suspend, merge"),
    # no such action
    ("to_dispatch", {"action": "teleport"}, 400, "unknown action 'teleport'"),
    # merging into a case that does not exist
    ("to_register", {"action": "merge", "original": "99999"}, 404, "no issue has the id 99999"),
    ("to_register", {"action": "merge", "original": "abc"}, 400, "original must be a whole number"),
])
def test_refused_actions_show_the_error_on_the_page_and_change_nothing(client, gm, ids, story, form, status, message):
    before = transitions(gm)
    with post(client, ids[story], filters="source=hotline", **form) as response:
        assert response.status_code == status
        html = response.get_data(as_text=True)
    assert "操作未执行" in html and str(escape(message)) in html
    assert 'value="hotline" selected' in html  # still the queue the dispatcher was looking at
    assert transitions(gm) == before


def test_an_unknown_issue_is_a_404_on_the_page(client, ids):
    with post(client, 99999, action="register") as response:
        assert response.status_code == 404
        assert "no issue has the id 99999" in response.get_data(as_text=True)


def test_user_text_is_escaped(client, gm, mini_geodata):
    lon, lat = cell_point(mini_geodata, CELL_A)
    gm.intake.import_records(gm.db, [{"lon": lon, "lat": lat, "category": "E0301", "reported_at": ago(5).isoformat(),
                                      "description": "<script>alert(1)</script> 噪音", "address": "<b>x</b>"}])
    with client.get("/dispatch") as response:
        html = response.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; 噪音" in html
    assert "<b>x</b>" not in html


def test_the_page_is_in_english_on_request(client, ids):
    with client.get("/dispatch?lang=en") as response:
        assert response.status_code == 200
        html = response.get_data(as_text=True)
    assert '<html lang="en">' in html and "Dispatch desk" in html and ">Due soon<" in html


def test_queue_core_counts_every_reason_and_limits_the_list(gm, ids):
    query = IssueQuery.parse({}, categories=gm.categories, timezone_name=gm.timezone, access=UNLIMITED)
    with gm.db.sessions() as session:
        queue = dispatch_queue(session, query, gm.workflow_rules, now=NOW, limit=2)
    assert queue.total == 4 and [e.issue.id for e in queue.entries] == [ids["overdue"], ids["warning"]]
    assert queue.counts == {"overdue": 1, "warning": 1, "to_dispatch": 1, "to_register": 1}
    assert queue.entries[0].reasons == ("overdue",)


def test_the_warning_horizon_covers_the_longest_time_limit(gm):
    # The bundled tree's longest limits are in working days; a horizon shorter than their warning
    # window would leave due-soon issues out of the queue.
    horizon = warning_horizon(gm.workflow_rules)
    longest = max(c.time_limit_value for c in gm.categories.leaves() if c.time_limit_kind == "working_days")
    assert horizon >= timedelta(days=longest * 3 * 0.2)


def test_map_tooltips_cannot_break_out_of_folium_s_template_literal():
    from gridmap.maps.dispatch import _tooltip_text

    assert _tooltip_text("<b>`${x}\\") == "&lt;b&gt;&#96;&#36;{x}&#92;"


def test_every_reason_of_the_queue_has_a_marker_colour():
    from gridmap.issues.queue import REASONS
    from gridmap.maps.dispatch import REASON_COLOURS

    assert set(REASON_COLOURS) == set(REASONS)
