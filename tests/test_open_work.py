"""Open work read through indexes: the dispatcher queue's plan, cursors over the issue lists, streaming exports."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, text

from gridmap.errors import InvalidInput
from gridmap.interop.ledger_export import export_ledger, iter_ledger_csv
from gridmap.interop.ledger_format import LedgerFilter
from gridmap.interop.ogc import issue_feature
from gridmap.issues.query import IssueQuery
from gridmap.issues.queue import queue_candidates
from gridmap.issues.workflow import apply_action, load_issue
from gridmap.security.access import UNLIMITED
from gridmap.storage.models import Issue
from gridmap.web.export_api import iter_issues_geojson
from helpers import cell_point, explain

BEIJING = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 6, 10, 1, 0, tzinfo=UTC)


def test_the_dispatcher_queue_reads_open_issues_through_its_partial_index(gm):
    statement = queue_candidates(IssueQuery(), gm.workflow_rules, NOW)
    with gm.db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SET LOCAL enable_seqscan = off"))  # proves the index can answer it alone
            plan = explain(connection, statement)
            assert "ix_issues_running_deadline" in plan and "Seq Scan on issues" not in plan
        else:  # SQLite: its planner takes the status index; the archive is not scanned either
            plan = explain(connection, statement)
            assert "ix_issues_status" in plan and "SCAN issues" not in plan


# --- cursors over GET /api/v1/issues --------------------------------------------------------------

CELL = "460204001002010"


@pytest.fixture
def point(mini_geodata):
    return cell_point(mini_geodata, CELL)


def report(gm, point, when: str) -> int:
    record = {"lon": point[0], "lat": point[1], "category": "E0102", "description": "分页",
              "reported_at": datetime.fromisoformat(when).replace(tzinfo=BEIJING)}
    return gm.intake.create(gm.db, record).id


def walk(client, query: str, *, between=None) -> list[int]:
    """Every id the pages show, following next links; ``between(n)`` runs after page n."""
    seen, url, pages = [], "/api/v1/issues" + query, 0
    while url:
        with client.get(url) as response:
            body = response.get_json()
            assert response.status_code == 200, body
        seen += [issue["id"] for issue in body["issues"]]
        assert (body["next"] is None) == (body["next_cursor"] is None)
        url, pages = body["next"], pages + 1
        if between is not None and url:
            between(pages)
    return seen


def test_cursor_pages_show_every_issue_once_while_new_ones_arrive(client, gm, point):
    times = ["2025-06-01 09:00", "2025-06-01 09:00", "2025-06-02 10:00", "2025-06-03 11:00", "2025-06-03 11:00"]
    ids = [report(gm, point, when) for when in times]
    arrived = []

    def newcomer(page: int) -> None:  # newer than every listed issue: an offset would shift, a cursor does not
        arrived.append(report(gm, point, f"2025-06-0{4 + page} 08:00"))

    seen = walk(client, "?limit=2", between=newcomer)
    assert seen == [ids[4], ids[3], ids[2], ids[1], ids[0]]  # newest first, ties by id, none twice, none lost
    assert walk(client, "?limit=2&sort=reported_at") == ids + arrived
    assert walk(client, "?limit=3&sort=-id") == sorted(ids + arrived, reverse=True)


def test_cursor_pages_by_deadline_put_issues_without_one_last(client, gm, point):
    with_deadline = [report(gm, point, f"2025-06-0{day} 09:00") for day in (3, 1, 2)]
    without = [report(gm, point, "2025-06-01 09:00") for _ in range(2)]
    with gm.db.session() as session:  # as a category without a time limit leaves them
        session.execute(text("UPDATE issues SET deadline = NULL WHERE id IN (:a, :b)"), dict(zip("ab", without)))
    expected = [with_deadline[1], with_deadline[2], with_deadline[0], *without]
    assert walk(client, "?limit=2&sort=deadline") == expected
    assert walk(client, "?limit=1&sort=-deadline") == [*reversed(without), *reversed(expected[:3])]
    with client.get("/api/v1/issues?sort=deadline&limit=100") as response:  # offset paging keeps the same order
        assert [issue["id"] for issue in response.get_json()["issues"]] == expected


@pytest.mark.parametrize("query, message", [
    ("?cursor=bm90IG91cnM", "is not a cursor of this list"),
    ("?cursor=!!!", "is not a cursor of this list"),
    ("?sort=id&offset=2&cursor=eyJzb3J0IjoiaWQiLCJhZnRlciI6WzJdfQ", "give cursor or offset, not both"),
    ("?sort=-id&cursor=eyJzb3J0IjoiaWQiLCJhZnRlciI6WzJdfQ", "made for sort=id, not sort=-id"),
])
def test_a_bad_cursor_is_a_400_saying_what_to_do(client, query, message):
    with client.get("/api/v1/issues" + query) as response:
        assert response.status_code == 400
        assert message in response.get_json()["error"]["message"]


# --- streaming exports ----------------------------------------------------------------------------


@pytest.fixture
def worked(gm, point) -> list[int]:
    """Seven issues at several stages, with their transition histories."""
    ids = [report(gm, point, f"2025-06-0{day} 09:00") for day in range(1, 8)]
    steps = [("register", {}), ("dispatch", {"department": "环卫所"}), ("start", {}), ("feedback", {}),
             ("check", {}), ("close", {})]
    with gm.db.session() as session:
        for number, issue_id in enumerate(ids):
            issue = load_issue(session, issue_id)
            for minute, (action, params) in enumerate(steps[:number]):
                moment = datetime(2025, 6, 8, 9, minute, tzinfo=BEIJING)
                apply_action(session, issue, action, actor="测试", at=moment, rules=gm.workflow_rules, **params)
    return ids


def test_the_ledger_csv_is_the_same_read_one_issue_or_three_at_a_time(gm, worked, tmp_path):
    everything = LedgerFilter.parse(categories=gm.categories, timezone_name=gm.timezone, access=UNLIMITED)
    whole = "".join(iter_ledger_csv(gm, everything, as_of=NOW))
    assert whole.count("\r\n") == 1 + len(worked) and "环卫所" in whole
    for batch_size in (1, 3):
        assert "".join(iter_ledger_csv(gm, everything, as_of=NOW, batch_size=batch_size)) == whole
        path = tmp_path / f"ledger-{batch_size}.csv"
        assert export_ledger(gm, path, everything, as_of=NOW, batch_size=batch_size) == len(worked)
        assert path.read_bytes().decode("utf-8") == whole
    with pytest.raises(InvalidInput, match="batch size must be at least 1"):
        "".join(iter_ledger_csv(gm, everything, batch_size=0))


def test_the_issues_geojson_export_streams_the_same_collection_in_batches(gm, worked, client):
    with client.get("/api/v1/export/issues.geojson?status=open") as response:
        assert response.status_code == 200 and response.is_streamed
        text_ = response.get_data(as_text=True)
    with gm.db.sessions() as session:
        features = [issue_feature(issue, gm) for issue in session.scalars(
            select(Issue).where(Issue.status.not_in(("closed",))).order_by(Issue.id))]
    assert text_ == json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False)
    assert [feature["id"] for feature in features] == worked[:6]
    for batch_size in (1, 4):
        assert "".join(iter_issues_geojson(gm, query_of(gm, "open"), batch_size=batch_size)) == text_


def query_of(gm, status: str) -> IssueQuery:
    return IssueQuery.parse({"status": status}, categories=gm.categories, timezone_name=gm.timezone, access=UNLIMITED)


# --- OGC API items: the next link pages issues by id ----------------------------------------------


def test_ogc_issue_pages_follow_next_links_by_id_while_issues_arrive(client, gm, point):
    ids = [report(gm, point, f"2025-06-0{day} 09:00") for day in range(1, 6)]
    seen, url = [], "/ogc/collections/issues/items?limit=2"
    while url:
        with client.get(url) as response:
            body = response.get_json()
            assert response.status_code == 200, body
        seen += [feature["id"] for feature in body["features"]]
        assert body["numberReturned"] == len(body["features"])
        following = [link["href"] for link in body["links"] if link["rel"] == "next"]
        url = following[0].removeprefix("http://localhost") if following else None
        if url:
            assert f"after={seen[-1]}" in url and "offset" not in url
            if len(seen) == 2:  # an issue arriving meanwhile is shown once, at its place by id
                ids.append(report(gm, point, "2025-06-09 09:00"))
    assert seen == ids
    with client.get("/ogc/collections/issues/items?after=1&offset=2") as response:
        assert response.status_code == 400 and "not both" in response.get_data(as_text=True)
