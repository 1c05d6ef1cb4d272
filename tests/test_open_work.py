"""Open work read through indexes: the dispatcher queue's plan, cursors over the issue lists, streaming exports."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from gridmap.issues.query import IssueQuery
from gridmap.issues.queue import queue_candidates
from helpers import explain

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
