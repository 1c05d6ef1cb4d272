"""The dispatcher's page in a real browser, offline: log in, assign an issue from the queue and see it leave."""

from __future__ import annotations

import pytest

from browser import chromium_page, live_server, log_in, screenshot
from conftest import make_user
from gridmap.storage.models import Issue
from test_dispatcher_page import WORKER, build_queue_issues

pytestmark = pytest.mark.browser


def test_assign_an_issue_from_the_queue_and_see_it_leave(app, gm, mini_geodata):
    ids = build_queue_issues(gm, mini_geodata)
    waiting = ids["to_dispatch"]
    make_user(gm, "调度员李", "dispatcher", password="dispatch desk passphrase")
    with live_server(app) as base, chromium_page() as (page, watch):
        page.goto(base + "/dispatch", wait_until="networkidle")
        assert "/login?next=/dispatch" in page.url  # anonymous visitors are sent to log in
        log_in(page, base, "调度员李", "dispatch desk passphrase")
        page.goto(base + "/dispatch", wait_until="networkidle")
        rows = page.locator("#queue-table tbody tr")
        assert rows.count() == 4
        assert page.locator(".queue-map path.leaflet-interactive").count() >= 4  # a dot per issue, and the streets
        assert page.locator("#count-to_dispatch strong").inner_text() == "1"

        assert page.locator("#actor").inner_text() == "调度员李"  # the actor is who logged in
        row = page.locator(f"#issue-{waiting}")
        row.locator("summary").click()
        form = row.locator("form.action-dispatch")
        form.locator("select[name=pick]").select_option(f"assignee:{WORKER}")
        screenshot(page, "dispatcher-before-assign")
        with page.expect_navigation(wait_until="networkidle"):
            form.locator("button[type=submit]").click()

        assert page.locator(f"#issue-{waiting}").count() == 0  # it left the queue
        assert page.locator("#queue-table tbody tr").count() == 3
        assert f"#{waiting}" in page.locator(".notice").inner_text()
        assert page.locator("#count-to_dispatch strong").inner_text() == "0"
        screenshot(page, "dispatcher-after-assign")
        assert watch.console_errors == []
        assert watch.failed_requests == []
        assert watch.blocked == []
    with gm.db.sessions() as session:
        issue = session.get(Issue, waiting)
        assert (issue.status, issue.assignee, issue.transitions[-1].actor) == ("dispatched", WORKER, "调度员李")
