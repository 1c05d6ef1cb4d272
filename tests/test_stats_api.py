"""GET /api/v1/stats/{level}: issue counts per area, rolled up, filtered by period and category."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from helpers import cell_point

NOW = datetime.now(UTC)


def issue(point, *, category="E0505", status="reported", reported_at="2025-06-02 09:30", **stages):
    return {"lon": point[0], "lat": point[1], "category": category, "description": "测试问题",
            "reported_at": reported_at, "status": status, **stages}


@pytest.fixture
def loaded(gm, mini_geodata):
    """Six issues in three cells of two streets, in known states."""
    a = cell_point(mini_geodata, "460204001001001")
    b = cell_point(mini_geodata, "460204001002010")
    c = cell_point(mini_geodata, "460204101001005")
    long_ago = (NOW - timedelta(days=60)).isoformat()
    records = [
        issue(a),  # open, deadline long past: overdue
        issue(a, status="closed", closed_at="2025-06-03 10:00"),
        issue(a, category="C0118", reported_at="2025-08-15 10:00", status="revisited",
              closed_at="2025-08-16 10:00", revisited_at="2025-08-17 10:00"),
        issue(b, reported_at=NOW.isoformat()),  # open, deadline ahead
        issue(b, status="suspended", reported_at=long_ago),  # clock stopped: open, never overdue
        issue(c, status="rejected", reported_at="2025-06-10 08:00"),  # counted in total only
    ]
    report = gm.intake.import_records(gm.db, records)
    assert report.errors == []
    return gm


def by_code(rows):
    return {row["code"]: row for row in rows}


def test_cells_counts_total_open_overdue_closed(client, loaded):
    response = client.get("/api/v1/stats/cells")
    assert response.status_code == 200
    cells = by_code(response.get_json()["cells"])
    assert cells["460204001001001"] == {"code": "460204001001001", "total": 3, "open": 1, "overdue": 1, "closed": 2}
    assert cells["460204001002010"] == {"code": "460204001002010", "total": 2, "open": 2, "overdue": 0, "closed": 0}
    assert cells["460204101001005"] == {"code": "460204101001005", "total": 1, "open": 0, "overdue": 0, "closed": 0}


def test_every_cell_is_listed_even_without_issues(client, loaded):
    cells = client.get("/api/v1/stats/cells").get_json()["cells"]
    assert len(cells) == 74
    assert [c["code"] for c in cells] == sorted(c["code"] for c in cells)


@pytest.mark.parametrize(
    "level, code, total",
    [
        ("communities", "460204001001", 3),
        ("communities", "460204001002", 2),
        ("streets", "460204001", 5),
        ("streets", "460204101", 1),
        ("districts", "460204", 6),
    ],
)
def test_counts_roll_up_the_hierarchy(client, loaded, level, code, total):
    rows = by_code(client.get(f"/api/v1/stats/{level}").get_json()[level])
    assert rows[code]["total"] == total


def test_period_filter_counts_whole_local_days(client, loaded):
    rows = by_code(client.get("/api/v1/stats/cells?from=2025-06-01&to=2025-06-02").get_json()["cells"])
    assert rows["460204001001001"]["total"] == 2
    assert rows["460204101001005"]["total"] == 0


def test_category_filter_takes_an_item_or_a_whole_class(client, loaded):
    item = by_code(client.get("/api/v1/stats/cells?category=C0118").get_json()["cells"])
    assert item["460204001001001"]["total"] == 1
    whole_class = by_code(client.get("/api/v1/stats/districts?category=E05").get_json()["districts"])
    assert whole_class["460204"]["total"] == 5


@pytest.mark.parametrize(
    "query, message",
    [
        ("from=2025-13-01", "`from` must be a date like 2026-06-01"),  # no month 13
        ("from=0001-01-01", "must lie between 1900-01-01 and 2999-12-31"),  # too far back for time zones
        ("to=June", "`to` must be a date"),
        ("from=2025-07-01&to=2025-06-01", "is after to"),
        ("category=E9999", "E9999"),
    ],
)
def test_bad_filters_are_a_400_that_says_what_to_fix(client, loaded, query, message):
    response = client.get(f"/api/v1/stats/cells?{query}")
    assert response.status_code == 400
    assert message in response.get_json()["error"]["message"]


def test_unknown_level_is_a_json_404(client, loaded):
    response = client.get("/api/v1/stats/planets")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
