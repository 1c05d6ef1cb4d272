"""bench/scale.py keeps working: a tiny city built, served and measured once.

It runs on the backend of the test run (SQLite, or with GRIDMAP_TEST_DATABASE=postgresql a
throwaway PostgreSQL that the script starts itself). Correctness only — every page of the three
roles answers 200, the mix and the stamped columns are right; the timings are not checked:
benchmarks are not timed tests.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.bench


def _scale():
    sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location("bench_scale", ROOT / "bench" / "scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scale_builds_serves_and_measures_a_tiny_city(capsys):
    backend = "postgresql" if os.environ.get("GRIDMAP_TEST_DATABASE") == "postgresql" else "sqlite"
    results = _scale().main(["--backend", backend, "--issues", "300", "--repeat", "1", "--import-rows", "40",
                             "--patrol-days", "3"])

    pages = results["pages"]
    assert {row["role"] for row in pages} == {"dispatcher", "manager", "planner"}
    assert [row["path"] for row in pages if row["status"] != 200] == []
    assert results["stored"]["issues"] == 300
    assert results["stored"]["issue_transitions"] > 300 * 3  # report, the stages, close…
    assert min(results["stored"][table] for table in ("households", "visits", "patrol_tracks")) > 0
    closed = results["statuses"].get("closed", 0) + results["statuses"].get("revisited", 0)
    assert 0.8 * 300 <= closed <= 0.95 * 300  # about 90 % closed
    assert results["unstamped"] == 0  # codes, deadline and department set by the app's intake steps
    open_count = 300 - closed - results["statuses"].get("rejected", 0)
    assert sum(results["sla_states"].get(state, 0) for state in ("ok", "warning", "overdue")) == open_count
    assert results["export_lines"] >= 300 and results["import_rows_s"] > 0 and results["server_vmhwm_mb"] > 0
    printed = capsys.readouterr().out
    assert f"| {backend}, 300 issues | value |" in printed and "dispatcher page `/dispatch`" in printed
