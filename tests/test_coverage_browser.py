"""Coverage pages in a real browser, offline: record a visit with the form, read the summary and a work list."""

from __future__ import annotations

import pytest

from browser import chromium_page, live_server, screenshot
from test_coverage import registry, scenario  # noqa: F401  (the hand-computed scenario)

pytestmark = pytest.mark.browser


def test_a_visit_recorded_with_the_form_shows_on_the_household_page(app, scenario):  # noqa: F811
    with live_server(app) as base, chromium_page(login_to=base) as (page, watch):
        page.goto(base + "/coverage/visits/new?household=H3", wait_until="networkidle")
        page.fill("#visitor", "张伟")
        page.fill("#visited_at", "2026-06-12T15:30")
        page.fill("#notes", "入户了解家庭情况，宣传消防安全")
        page.select_option("#issue_category", "E0704")
        page.fill("#issue_description", "楼道内给电动车充电")
        screenshot(page, "coverage-visit-form")
        page.click("#submit")
        page.wait_for_selector("#recorded")
        assert "入户了解家庭情况" in page.locator("#visits").inner_text()
        assert page.locator("#visits a").count() == 1  # the issue raised at the visit
        screenshot(page, "coverage-household")
        assert (watch.console_errors, watch.failed_requests, watch.blocked) == ([], [], [])


def test_the_summary_and_a_work_list_render_offline(app, scenario):  # noqa: F811
    with live_server(app) as base, chromium_page(login_to=base) as (page, watch):
        page.goto(base + "/coverage/?from=2026-06-01&to=2026-06-30", wait_until="networkidle")
        assert "6 户，入户走访率 33.3%" in page.locator("#ledger").inner_text()
        assert page.locator("#communities tbody tr").count() == 4
        screenshot(page, "coverage-summary")
        page.goto(base + "/coverage/worklists/张伟?as_of=2026-06-30", wait_until="networkidle")
        assert page.locator("#due tbody tr.overdue").count() == 1
        assert page.locator("#stale tbody tr").count() == 2
        screenshot(page, "coverage-worklist")
        assert (watch.console_errors, watch.failed_requests, watch.blocked) == ([], [], [])
