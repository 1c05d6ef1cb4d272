"""Trends: week and month buckets, counts by category class and area, indicators over time, the chart, the page."""

from __future__ import annotations

from datetime import date

import pytest

from analytics_data import add, cell_codes, closed_case, issue_row
from gridmap.analytics.indicators import Period
from gridmap.analytics.trends import buckets, line_chart, trend_counts, trend_indicators
from gridmap.errors import InvalidInput
from gridmap.security.access import UNLIMITED


@pytest.mark.parametrize("start, end, interval, labels", [
    # 1 June 2025 is a Sunday: the first week is one day long.
    ("2025-06-01", "2025-06-15", "week", ["2025-W22", "2025-W23", "2025-W24"]),
    # Months clipped to the period.
    ("2025-05-20", "2025-07-03", "month", ["2025-05", "2025-06", "2025-07"]),
    # Across a year end.
    ("2025-12-30", "2026-01-02", "month", ["2025-12", "2026-01"]),
])
def test_buckets(start, end, interval, labels):
    parts = buckets(Period(date.fromisoformat(start), date.fromisoformat(end)), interval)
    assert [label for label, _ in parts] == labels
    assert parts[0][1].date_from == date.fromisoformat(start) and parts[-1][1].date_to == date.fromisoformat(end)
    assert all(a[1].date_to.toordinal() + 1 == b[1].date_from.toordinal() for a, b in zip(parts, parts[1:]))


def test_an_unknown_interval_is_refused():
    with pytest.raises(InvalidInput, match="week, month"):
        buckets(Period(date(2025, 6, 1), date(2025, 6, 2)), "day")


def test_counts_by_category_class_and_by_area(gm):
    codes = cell_codes(gm)
    add(gm, [issue_row(gm, category="E0505", reported="2025-06-02 09:00"),
             issue_row(gm, category="E0506", reported="2025-06-03 09:00"),
             issue_row(gm, category="E0102", reported="2025-06-10 09:00", cell=codes[-1]),
             issue_row(gm, category="E0102", reported="2025-07-10 09:00")])  # after the period
    period = Period(date(2025, 6, 1), date(2025, 6, 30))
    with gm.db.sessions() as session:
        by_category = trend_counts(session, period, "week", access=UNLIMITED, categories=gm.categories)
        by_street = trend_counts(session, period, "month", access=UNLIMITED, by="area", level="streets")
    assert by_category["buckets"] == ["2025-W22", "2025-W23", "2025-W24", "2025-W25", "2025-W26", "2025-W27"]
    series = {s["key"]: s for s in by_category["series"]}
    assert series["E05"]["values"] == [0, 2, 0, 0, 0, 0] and series["E05"]["name"] == "街面秩序"
    assert series["E01"]["values"] == [0, 0, 1, 0, 0, 0]
    assert by_category["total"] == [0, 2, 1, 0, 0, 0]
    assert {s["key"]: s["values"] for s in by_street["series"]} == {"460204001": [2], "460204101": [1]}
    with gm.db.sessions() as session:
        only_e05 = trend_counts(session, period, "month", access=UNLIMITED, by="area", level="streets", category="E05")
    assert only_e05["total"] == [2]


def test_indicators_per_month(gm):
    add(gm, [closed_case(gm, reported="2025-06-02 09:00", deadline="2025-06-09 18:00", closed="2025-06-05 10:00"),
             closed_case(gm, reported="2025-06-02 09:00", deadline="2025-06-09 18:00", closed=None),
             closed_case(gm, reported="2025-07-02 09:00", deadline="2025-07-09 18:00", closed="2025-07-05 10:00")])
    with gm.db.sessions() as session:
        result = trend_indicators(session, Period(date(2025, 5, 1), date(2025, 7, 31)), "month", access=UNLIMITED)
    assert result["buckets"] == ["2025-05", "2025-06", "2025-07"]
    closure = next(s for s in result["series"] if s["key"] == "closure_rate")
    assert closure["values"] == [None, 0.5, 1.0]  # May: nothing due, no rate


def test_the_chart_leaves_gaps_for_undefined_values_and_scales_rates_to_100_percent():
    chart = line_chart(["5月", "6月", "7月"], [{"name": "结案率", "values": [None, 0.5, 1.0]}], percent=True)
    (line,) = chart["lines"]
    assert len(line["segments"]) == 1 and len(line["points"]) == 2
    assert chart["ticks"][-1]["label"] == "100%"
    top = chart["top"]
    assert line["points"][1]["y"] == top  # 100% at the top of the plot


@pytest.mark.parametrize("peak, ticks", [
    (84, ["0", "25", "50", "75", "100"]),  # 84 → steps of 25
    (3, ["0", "1", "2", "3", "4"]),  # small counts: whole steps
    (0, ["0", "1", "2", "3", "4"]),  # nothing at all: still whole ticks
])
def test_count_charts_have_round_ticks(peak, ticks):
    chart = line_chart(["a", "b"], [{"name": "n", "values": [0, peak]}])
    assert [t["label"] for t in chart["ticks"]] == ticks


def test_the_trend_api(gm, client):
    add(gm, [closed_case(gm, reported="2025-06-02 09:00")])
    with client.get(
        "/api/v1/trends?from=2025-06-01&to=2025-06-30&interval=month&by=area&level=communities"
    ) as response:
        assert response.status_code == 200
        body = response.get_json()
    assert body["counts"]["buckets"] == ["2025-06"] and body["counts"]["series"][0]["values"] == [1]
    assert [s["key"] for s in body["indicators"]["series"]][0] == "closure_rate"
    with client.get("/api/v1/trends?interval=day") as response:
        assert response.status_code == 400


def test_the_planner_page_shows_tables_hotspots_and_charts(gm, client):
    add(gm, [closed_case(gm, reported="2025-06-02 09:00", department="环卫所<script>")])
    with client.get("/planner/?from=2025-06-01&to=2025-06-30&group_by=department") as response:
        assert response.status_code == 200
        page = response.get_data(as_text=True)
    for fragment in ('id="indicators"', 'id="hotspot-map"', 'id="hotspots"', 'id="repeats"', "<svg class=\"chart\"",
                     "/api/v1/indicators.xlsx?", "环卫所&lt;script&gt;"):
        assert fragment in page, fragment
    assert "环卫所<script>" not in page
    with client.get("/planner/?group_by=nobody") as response:
        assert response.status_code == 400
