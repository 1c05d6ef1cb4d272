"""``status=open`` and ``status=closed`` mean the same on every endpoint that takes them.

One definition (gridmap.issues.workflow, through gridmap.issues.params.parse_statuses): ``open`` is
still being worked on (reported … checked, or suspended), ``closed`` is closed or revisited (结案,
回访); a rejected report (不予立案) is neither.
"""

from __future__ import annotations

import pytest

from gridmap.issues.states import CLOSED_STATUSES, OPEN_STATUSES
from helpers import cell_point

EVERYWHERE = "-180,-90,180,90"


@pytest.fixture
def statuses(gm, mini_geodata) -> dict[int, str]:
    """One issue in each kind of state: id → status."""
    a = cell_point(mini_geodata, "460204001001001")
    b = cell_point(mini_geodata, "460204101001005")

    def row(p, status, **extra):
        return {"lon": p[0], "lat": p[1], "category": "E0102", "description": status, "status": status,
                "reported_at": "2025-06-02 09:30", **extra}

    registered = {"registered_at": "2025-06-02 09:40"}
    records = [
        row(a, "reported"),
        row(a, "rejected"),
        row(b, "dispatched", **registered, dispatched_at="2025-06-02 10:00"),
        row(b, "suspended", **registered),
        row(a, "closed", **registered, closed_at="2025-06-03 10:00"),
        row(b, "revisited", **registered, closed_at="2025-06-03 10:00", revisited_at="2025-06-04 10:00",
            satisfaction=5),
    ]
    report = gm.intake.import_records(gm.db, records)
    assert report.errors == []
    return dict(zip(report.issue_ids, [r["status"] for r in records]))


def _ids(body, key, field="id"):
    return sorted(item[field] for item in body[key])


#: Each endpoint taking ``status``: (URL with {status}, how to read the ids of the issues it selects).
ENDPOINTS = {
    "issues API": ("/api/v1/issues?status={status}&limit=1000", lambda body: _ids(body, "issues")),
    "export": ("/api/v1/export/issues.geojson?status={status}", lambda body: _ids(body, "features")),
    "OGC items": ("/ogc/collections/issues/items?status={status}&limit=1000", lambda body: _ids(body, "features")),
    "map markers": (f"/api/v1/maps/issues?status={{status}}&bbox={EVERYWHERE}", lambda body: _ids(body, "issues")),
}


@pytest.mark.parametrize("group, members", [("open", OPEN_STATUSES), ("closed", CLOSED_STATUSES)])
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_status_group_selects_the_same_issues_on_every_endpoint(client, statuses, endpoint, group, members):
    url, ids = ENDPOINTS[endpoint]
    response = client.get(url.format(status=group))
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    expected = sorted(i for i, status in statuses.items() if status in members)
    assert ids(response.get_json(force=True)) == expected
    assert not any(statuses[i] == "rejected" for i in expected)


@pytest.mark.parametrize("group, members", [("open", OPEN_STATUSES), ("closed", CLOSED_STATUSES)])
def test_the_map_counts_a_status_group_as_the_lists_select_it(client, statuses, group, members):
    expected = sum(status in members for status in statuses.values())
    data = client.get(f"/api/v1/maps/data?status={group}&heat=0").get_json()
    assert data["summary"]["total"] == expected
    assert data["summary"][group] == expected  # the map's own open / closed count agrees
    stats = client.get("/api/v1/stats/districts").get_json()["districts"]
    assert sum(row[group] for row in stats) == expected  # and so do the stats
    assert client.get(f"/?status={group}").status_code == 200  # the map page takes the group too


def test_an_unknown_status_is_refused_alike(client, statuses):
    for url, _ in ENDPOINTS.values():
        response = client.get(url.format(status="lost"))
        assert response.status_code == 400
        assert "unknown status 'lost'" in response.get_data(as_text=True)
