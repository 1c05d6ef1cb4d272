"""Roles in a real browser: a grid manager lands on their own area, a planner's map asks for nothing refused."""

from __future__ import annotations

import pytest

from browser import chromium_page, live_server, log_in, screenshot
from conftest import make_user
from map_issues import load_map_issues

pytestmark = pytest.mark.browser

COMMUNITY = "460204001001"


def test_a_grid_manager_sees_their_own_community_without_choosing(app, gm, mini_geodata):
    load_map_issues(gm, mini_geodata)
    make_user(gm, "李网格长", "manager", (COMMUNITY,), password="manager passphrase")
    with live_server(app) as base, chromium_page() as (page, watch):
        log_in(page, base, "李网格长", "manager passphrase")
        page.goto(base + "/manager", wait_until="networkidle")
        assert page.locator(f"text={COMMUNITY}").count() >= 1  # their community is listed, no chooser
        assert page.locator(".leaflet-overlay-pane path").count() > 0
        assert page.locator("nav a", has_text="调度台").count() == 0  # no dispatcher desk for a manager
        screenshot(page, "manager-own-area")
        refused = page.goto(base + "/manager?area=460204101001", wait_until="load")
        assert refused.status == 403 and "outside your areas" in page.locator(".error-message").inner_text()
        assert watch.failed_requests == [] and watch.blocked == []
        assert [e for e in watch.console_errors if "403" not in e] == []  # only the refused page itself


def test_a_planners_map_draws_aggregates_and_requests_nothing_it_may_not_read(app, gm, mini_geodata):
    load_map_issues(gm, mini_geodata)
    make_user(gm, "规划员", "planner", password="planner passphrase")
    requested: list[str] = []
    with live_server(app) as base, chromium_page() as (page, watch):
        page.on("response",
                lambda response: response.status >= 400 and requested.append(f"{response.status} {response.url}"))
        log_in(page, base, "规划员", "planner passphrase")
        page.goto(base + "/?area=460204001", wait_until="networkidle")
        for _ in range(8):  # zoom in fully: from the marker zoom on, an admin's map would load issue markers
            if page.locator(".leaflet-control-zoom-in.leaflet-disabled").count():
                break
            page.locator(".leaflet-control-zoom-in").first.click()
            page.wait_for_timeout(400)
        page.wait_for_load_state("networkidle")
        assert page.locator(".leaflet-control-zoom-in.leaflet-disabled").count() == 1
        assert page.locator(".leaflet-overlay-pane path").count() > 0
        layer_names = page.locator(".leaflet-control-layers-overlays").inner_text()
        assert (
            "问题点" not in layer_names and "走访覆盖率" in layer_names
        )  # no markers; coverage figures are aggregates
        screenshot(page, "planner-overview")
        assert requested == []
        assert watch.console_errors == [] and watch.failed_requests == [] and watch.blocked == []


#: A user of every role, with the scope that role needs (a community, a cell, a department).
ROLE_SCOPES = {
    "admin": (),
    "dispatcher": (),
    "manager": (COMMUNITY,),
    "worker": ("460204001001001",),
    "handler": ("市政管理处",),
    "planner": (),
}


@pytest.mark.parametrize("role", list(ROLE_SCOPES))
def test_every_nav_link_opens_a_page_the_role_may_see_without_console_errors(app, gm, mini_geodata, role):
    load_map_issues(gm, mini_geodata)
    name = f"导航{role}"
    make_user(gm, name, role, ROLE_SCOPES[role], password="nav passphrase")
    with live_server(app) as base, chromium_page() as (page, watch):
        log_in(page, base, name, "nav passphrase")
        links = page.locator("header a.brand, nav a").evaluate_all("links => links.map(a => a.href)")
        assert len(links) >= 3, links  # the brand, the map and at least one more page
        for link in dict.fromkeys(links):
            response = page.goto(link, wait_until="networkidle")
            assert response is not None and response.status == 200, f"{role}: {link} answered {response.status}"
            assert watch.console_errors == [], f"{role}: {link} logged {watch.console_errors}"
            assert watch.failed_requests == [] and watch.blocked == [], f"{role}: {link}"
