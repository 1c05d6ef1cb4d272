"""Every page kind under the Content-Security-Policy in a real browser: no violation, maps drawn."""

from __future__ import annotations

import pytest

from browser import chromium_page, live_server
from conftest import make_user
from helpers import cell_point

pytestmark = pytest.mark.browser

# Records every CSP violation of a document (the list starts empty on each navigation).
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""

# (path, whether the page draws a Leaflet map)
PAGES = [
    ("/", True),  # overview: folium map + map-ui.js, cells, heatmap, markers
    ("/?area=460204001001&metric=open", True),  # drilled into a community, another metric
    ("/manager?area=460204001001", True),  # a grid manager's area
    ("/dispatch", True),  # dispatcher queue with its own folium map
    ("/planner/", False),  # planner: charts drawn by planner.js
    ("/coverage/", False),  # coverage summary
    ("/coverage/visits/new", False),  # visit form
    ("/coverage/worklists", False),  # work lists
    ("/admin/audit", False),  # audit log
    ("/ogc/", False),  # OGC API landing page (HTML)
    ("/no/such/page", False),  # the error page (404)
]


def _violations(page, watch) -> list[str]:
    return page.evaluate("window.__csp") + [m for m in watch.console_errors if "Content Security Policy" in m]


def test_every_page_kind_renders_without_a_csp_violation(app, gm, mini_geodata):
    lon, lat = cell_point(mini_geodata, "460204001001001")
    gm.intake.import_records(gm.db, [{"lon": lon, "lat": lat, "category": "E0505", "description": "乱停车",
                                      "reported_at": "2025-05-01 08:00"}] * 3)
    password = make_user(gm, "csp-admin", "admin")
    with live_server(app) as base, chromium_page() as (page, watch):
        page.add_init_script(RECORD_VIOLATIONS)
        page.goto(base + "/login", wait_until="networkidle")
        assert _violations(page, watch) == []
        page.fill("input[name=name]", "csp-admin")
        page.fill("input[name=password]", password)
        with page.expect_navigation():
            page.click("button[type=submit]")
        for path, has_map in PAGES:
            response = page.goto(base + path, wait_until="networkidle")
            assert response.headers["content-security-policy"].startswith("default-src 'self'"), path
            assert response.status == (404 if path == "/no/such/page" else 200), path
            if has_map:
                # The map exists only if the nonce'd inline script ran; its layers only if map-ui.js did.
                assert page.locator(".folium-map .leaflet-map-pane").count() == 1, path
                assert page.locator(".folium-map path.leaflet-interactive").count() > 0, path
            assert _violations(page, watch) == [], path
            if path == "/no/such/page":  # the browser logs the page's own 404 status, nothing else
                assert [m for m in watch.console_errors if "404" not in m] == [], path
                watch.console_errors.clear()
            assert (watch.console_errors, watch.failed_requests, watch.blocked) == ([], [], []), path

        # Control: the recorder sees a violation, and an inline script without the nonce does not run.
        page.goto(base + "/", wait_until="networkidle")
        page.evaluate("""() => { const s = document.createElement("script");
                                 s.textContent = "window.__injected = true"; document.body.append(s); }""")
        page.wait_for_function("() => window.__csp.length > 0")
        assert page.evaluate("window.__injected === undefined")
        assert "script-src" in page.evaluate("window.__csp")[0]
