"""Issues in known places and states for the map UI tests (tests/test_map_*.py, test_escaping.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from helpers import cell_point

#: Cells of the mini district the issues lie in.
CELL_A = "460204001001001"  # 河西街道 › 春园社区
CELL_B = "460204001002010"  # 河西街道 › 海湾社区
CELL_C = "460204101001005"  # 天涯镇 › 梅村
CELL_X = "460204101001010"  # 天涯镇 › 梅村: the issue with hostile text
XSS_DESCRIPTION = "<img src=x onerror=alert(1)>"
XSS_ADDRESS = "<script>alert(2)</script>路"


def issue(point, *, category="E0505", status="reported", reported_at="2025-06-02 09:30", source="patrol",
          description="测试问题", **more):
    return {"lon": point[0], "lat": point[1], "category": category, "description": description,
            "reported_at": reported_at, "status": status, "source": source, **more}


def load_map_issues(gm, geodata) -> dict[str, int]:
    """Seven issues: A has 3 (1 open and overdue, 2 closed), B 2 open, C 1 rejected, X 1 open with hostile text."""
    now = datetime.now(UTC)
    a, b, c, x = (cell_point(geodata, code) for code in (CELL_A, CELL_B, CELL_C, CELL_X))
    records = [
        issue(a),  # open, deadline long past: overdue
        issue(a, status="closed", closed_at="2025-06-03 10:00", source="hotline"),
        issue(a, category="C0118", reported_at="2025-08-15 10:00", status="revisited", source="web",
              closed_at="2025-08-16 10:00", revisited_at="2025-08-17 10:00"),
        issue(b, category="E0102", reported_at=now.isoformat(), source="hotline"),  # open, deadline ahead
        issue(b, category="E0102", status="suspended", reported_at=(now - timedelta(days=60)).isoformat(),
              source="visit"),  # clock stopped: open, never overdue
        issue(c, status="rejected", reported_at="2025-06-10 08:00", source="import"),
        issue(x, category="E0102", reported_at="2025-07-01 08:00", source="web", description=XSS_DESCRIPTION,
              address=XSS_ADDRESS),
    ]
    report = gm.intake.import_records(gm.db, records)
    assert report.errors == []
    return dict(zip(("a_open", "a_closed", "a_revisited", "b_open", "b_suspended", "c_rejected", "x_hostile"),
                    report.issue_ids))


def load_households(gm) -> tuple:
    """Two households in CELL_A registered 200 days ago, one visited 10 days ago; (30 days ago, today)."""
    from gridmap.coverage.households import HouseholdRegistry

    registry = HouseholdRegistry.for_core(gm)
    today = registry.today()
    registered = (today - timedelta(days=200)).isoformat()
    report = registry.import_households([
        {"external_id": "H1", "kind": "ordinary", "address": "春园路1号", "cell": CELL_A, "registered_on": registered},
        {"external_id": "H2", "kind": "ordinary", "address": "春园路2号", "cell": CELL_A, "registered_on": registered},
    ])
    assert report.errors == []
    registry.record_visit({"household": "H1", "visitor": "张伟",
                           "visited_at": f"{(today - timedelta(days=10)).isoformat()}T10:00:00+08:00"})
    return today - timedelta(days=30), today
