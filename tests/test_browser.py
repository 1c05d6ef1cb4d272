"""The overview map in a real browser, offline: it loads, draws cells and shows a cell's figures."""

from __future__ import annotations

import pytest

from browser import chromium_page, live_server, screenshot
from helpers import cell_point

pytestmark = pytest.mark.browser


def test_overview_map_loads_offline_and_shows_cell_figures(app, gm, mini_geodata):
    lon, lat = cell_point(mini_geodata, "460204001001001")
    gm.intake.import_records(gm.db, [{"lon": lon, "lat": lat, "category": "E0505", "description": "乱停车",
                                      "reported_at": "2025-05-01 08:00"}] * 3)
    with live_server(app) as base, chromium_page(login_to=base) as (page, watch):
        page.goto(base + "/", wait_until="networkidle")
        cells = page.locator("path.leaflet-interactive")
        assert cells.count() >= 74
        page.wait_for_selector("canvas.leaflet-heatmap-layer", state="attached")
        # Hover the cell with the issues: its tooltip shows its code and count.
        page.mouse.move(0, 0)
        box = page.locator(".folium-map").bounding_box()
        page.evaluate("""([lat, lon]) => {
            const map = Object.values(window).find(v => v && v instanceof L.Map);
            const p = map.latLngToContainerPoint([lat, lon]);
            window.__probe = [p.x, p.y];
        }""", [lat, lon])
        x, y = page.evaluate("window.__probe")
        page.mouse.move(box["x"] + x, box["y"] + y)
        tooltip = page.wait_for_selector(".leaflet-tooltip")
        assert "460204001001001" in tooltip.inner_text()
        screenshot(page, "overview")
        assert watch.console_errors == []
        assert watch.failed_requests == []
        assert watch.blocked == []
        assert page.locator("#total").inner_text() == "3"
