"""The planner page in a real browser, offline: sortable indicator table, XLSX export, hot cells, charts."""

from __future__ import annotations

import pytest

from analytics_data import add, cell_codes, closed_case, issue_row, shift
from browser import chromium_page, live_server, screenshot
from gridmap.analytics.hotspots import queen_neighbours

pytestmark = pytest.mark.browser


@pytest.fixture
def planner_data(gm):
    """Two months of cases in every cell (half of 城管中队's closed late) and a planted cluster in June."""
    codes = cell_codes(gm)
    neighbours = queen_neighbours(gm.areas.layers.cells)
    centre = max(range(len(codes)), key=lambda i: len(neighbours[i]))
    issues = []
    for n, code in enumerate(codes):
        for day, department in ((5, "环卫所"), (35, "园林所"), (40, "城管中队"), (50, "环卫所")):
            reported = shift("2025-05-01 09:00", days=day + n % 5)
            late = department == "城管中队" and n % 2 == 0
            issues.append(closed_case(gm, cell=code, category=("E0102", "E0505", "C0402")[n % 3], reported=reported,
                                      deadline=shift(reported, days=3), closed=shift(reported, days=5 if late else 2),
                                      department=department, assignee=f"处置员{n % 4}", satisfaction=3 + n % 3))
    for i in [centre, *neighbours[centre]]:
        issues += [issue_row(gm, cell=codes[i], category="E0505",
                             reported=f"2025-06-{10 + k:02d} 09:00") for k in range(8)]
    add(gm, issues)
    return codes[centre]


def test_the_planner_page_sorts_exports_and_shows_hot_cells(app, planner_data):
    with live_server(app) as base, chromium_page(login_to=base) as (page, watch):
        page.goto(base + "/planner/?from=2025-06-01&to=2025-06-30&group_by=department&interval=week",
                  wait_until="networkidle")
        rows = page.locator("#indicators tbody tr")
        assert rows.count() == 4  # 环卫所, 城管中队, 园林所 and the undispatched cluster reports
        on_time = page.locator("#indicators thead th", has_text="按期结案率")
        on_time.click()  # ascending: the undispatched reports (nothing due, no rate) first, then 城管中队's late cases
        keys = [row.get_attribute("data-key") for row in page.locator("#indicators tbody tr").all()]
        assert keys[:2] == ["", "城管中队"]
        on_time.click()  # descending
        assert page.locator("#indicators tbody tr").first.get_attribute("data-key") in ("环卫所", "园林所")
        assert on_time.get_attribute("aria-sort") == "descending"
        # Fetched rather than clicked: Chromium reports a download as an aborted request.
        export = page.request.get(base + page.get_attribute("#export", "href"))
        assert export.ok and "indicators-2025-06-01-2025-06-30.xlsx" in export.headers["content-disposition"]
        assert export.body()[:2] == b"PK"  # a zip: the XLSX container
        assert page.locator(f"#hotspot-map path[data-code='{planner_data}']").get_attribute("data-class") == "hot-99"
        assert page.locator("#hotspots tbody tr").first.get_attribute("data-code") == planner_data
        assert page.locator("svg.chart polyline").count() >= 2
        screenshot(page, "planner")
        assert (watch.console_errors, watch.failed_requests, watch.blocked) == ([], [], [])
