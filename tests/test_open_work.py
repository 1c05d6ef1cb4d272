"""Open work read through indexes: the dispatcher queue's plan, cursors over the issue lists, streaming exports."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from gridmap.issues.query import IssueQuery
from gridmap.issues.queue import queue_candidates
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
