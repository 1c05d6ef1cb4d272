"""The map pages in headless Chromium, offline: drawing, figures on click, filters in the URL,
drill-down, language switch, markers, the time view, the large-set path and hostile text."""

from __future__ import annotations

import json
import re

import pytest
from shapely.geometry import shape

from browser import chromium_page, live_server, screenshot
from map_issues import CELL_A, CELL_X, XSS_ADDRESS, XSS_DESCRIPTION, load_households, load_map_issues

pytestmark = pytest.mark.browser

# Page conditions are arrow functions, not bare expressions: Playwright re-evaluates an expression
# with eval while it polls, which the pages' Content-Security-Policy (no unsafe-eval) refuses.
READY = "() => window.gridmapMap && Object.keys(window.gridmapMap.cells).length > 0"


@pytest.fixture
def loaded(gm, mini_geodata):
    return load_map_issues(gm, mini_geodata)


def assert_clean(watch) -> None:
    assert watch.console_errors == []
    assert watch.failed_requests == []
    assert watch.blocked == []


def open_map(page, url: str) -> None:
    page.goto(url, wait_until="networkidle")
    page.wait_for_function(READY)


def away_from_issues(geodata, code: str) -> tuple[float, float]:
    """A lon/lat point inside a cell, near its south-west corner: away from the markers at its centre."""
    for feature in json.loads((geodata / "cells.geojson").read_text())["features"]:
        if feature["properties"]["code"] == code:
            minx, miny, maxx, maxy = shape(feature["geometry"]).bounds
            return minx + (maxx - minx) * 0.15, miny + (maxy - miny) * 0.15
    raise KeyError(code)


def click_at(page, lon: float, lat: float) -> None:
    """Click the map at a lon/lat point."""
    x, y = page.evaluate("([lat, lon]) => { const p = window.gridmapMap.map.latLngToContainerPoint([lat, lon]);"
                         " return [p.x, p.y]; }", [lat, lon])
    box = page.locator(".folium-map").bounding_box()
    page.mouse.click(box["x"] + x, box["y"] + y)


def fill_of(page, code: str) -> str:
    return page.evaluate("code => window.gridmapMap.cells[code].options.fillColor", code)


def test_the_overview_draws_every_cell_and_a_click_shows_the_cells_figures(app, loaded, mini_geodata):
    lon, lat = away_from_issues(mini_geodata, CELL_A)
    with live_server(app) as base, chromium_page(login_to=base) as (page, watch):
        open_map(page, base + "/")
        assert page.locator("path.leaflet-interactive").count() == 74
        assert page.locator(".leaflet-control-scale").count() == 1
        assert "热力图" in page.locator(".leaflet-control-layers").inner_text()
        assert "每网格 · 全部问题" in page.locator(".map-legend").inner_text()
        click_at(page, lon, lat)
        popup = page.wait_for_selector(".leaflet-popup-content")
        text = popup.inner_text()
        assert CELL_A in text and "超期" in text
        figures = dict(re.findall(r"(全部|未结|超期|已结)\s+(\d+)", text))
        assert figures == {"全部": "3", "未结": "1", "超期": "1", "已结": "2"}
        assert CELL_A in page.locator("#selected").inner_text()
        page.wait_for_timeout(400)  # the popup fades in and the map pans to it
        screenshot(page, "map_overview")
        assert_clean(watch)


def test_changing_a_filter_changes_the_map_and_the_url(app, loaded):
    with live_server(app) as base, chromium_page(login_to=base) as (page, watch):
        open_map(page, base + "/")
        assert page.locator("#total").inner_text() == "7"
        before = fill_of(page, CELL_A)
        page.select_option("#category", "E0102")
        page.wait_for_url(re.compile(r"category=E0102"))
        page.wait_for_function("() => document.getElementById('total').textContent === '3'")
        assert fill_of(page, CELL_A) != before  # CELL_A has no E0102 issue: now the zero colour
        page.locator("#source-filter summary").click()
        page.check("#source-filter input[value=hotline]")
        page.wait_for_url(re.compile(r"category=E0102&source=hotline"))
        page.wait_for_function("() => document.getElementById('total').textContent === '1'")
        page.select_option("#metric", "open")
        page.wait_for_url(re.compile(r"metric=open"))
        page.wait_for_function("() => document.querySelector('.map-legend h3').textContent.includes('未结')")
        screenshot(page, "map_filtered")
        page.go_back()
        page.wait_for_url(re.compile(r"category=E0102&source=hotline$"))
        page.go_back()
        page.go_back()
        page.wait_for_function("() => document.getElementById('total').textContent === '7'")
        assert page.input_value("#category") == ""
        assert_clean(watch)


def test_drill_down_from_district_to_street_to_community(app, loaded, mini_geodata):
    lon, lat = away_from_issues(mini_geodata, CELL_A)
    with live_server(app) as base, chromium_page(login_to=base) as (page, watch):
        open_map(page, base + "/?category=E05")
        page.click("#children a:has-text('河西街道')")
        page.wait_for_url(re.compile(r"\?area=460204001&category=E05$"))
        page.wait_for_function(READY)
        assert page.locator("path.leaflet-interactive").count() == 48  # the street's cells
        assert page.locator("#area-name").inner_text() == "河西街道"
        click_at(page, lon, lat)
        page.click(".leaflet-popup-content a:has-text('春园社区')")
        page.wait_for_url(re.compile(r"\?area=460204001001&category=E05$"))
        page.wait_for_function(READY)
        assert page.locator("path.leaflet-interactive").count() == 24
        assert page.locator(".breadcrumb a").all_inner_texts() == ["三亚市天涯区", "河西街道", "春园社区"]
        screenshot(page, "map_community")
        assert_clean(watch)


def test_the_language_switch(app, loaded):
    with live_server(app) as base, chromium_page(login_to=base) as (page, watch):
        open_map(page, base + "/?area=460204001")
        page.click("#lang-switch")
        page.wait_for_url(re.compile(r"lang=en"))
        page.wait_for_function(READY)
        assert page.locator("html").get_attribute("lang") == "en"
        assert "All issues" in page.locator(".summary-figures").inner_text()
        assert "Per cell · All issues" in page.locator(".map-legend").inner_text()
        assert "Heatmap" in page.locator(".leaflet-control-layers").inner_text()
        screenshot(page, "map_english")
        open_map(page, base + "/")  # the cookie keeps English
        assert "Issue map" in page.locator(".topbar").inner_text()
        page.click("#lang-switch")
        page.wait_for_url(re.compile(r"lang=zh_CN"))
        assert "问题地图" in page.locator(".topbar").inner_text()
        assert_clean(watch)


def test_markers_at_close_zoom_show_hostile_text_as_text(app, loaded, mini_geodata):
    dialogs: list[str] = []
    with live_server(app) as base, chromium_page(login_to=base) as (page, watch):
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        open_map(page, base + f"/?area={CELL_X}")
        assert page.evaluate("window.gridmapMap.map.getZoom()") >= 16  # markers from zoom 16 on
        marker = page.wait_for_selector(".issue-marker")
        marker.click()
        popup = page.wait_for_selector(".issue-popup")
        text = popup.inner_text()
        assert XSS_DESCRIPTION in text and XSS_ADDRESS in text
        assert "暴露垃圾" in text and "已超期" in text and "期限" in text
        link = page.locator(".issue-popup a")
        assert link.get_attribute("href") == f"/api/v1/issues/{loaded['x_hostile']}"
        assert page.locator("img[src=x]").count() == 0
        assert page.locator(".issue-popup script").count() == 0
        page.wait_for_timeout(400)
        screenshot(page, "map_markers")
        assert dialogs == []
        assert_clean(watch)


def test_the_time_view_steps_through_weeks(app, loaded):
    with live_server(app) as base, chromium_page(login_to=base) as (page, watch):
        open_map(page, base + "/")
        page.evaluate("""() => {
            const slider = document.getElementById('week-slider');
            slider.value = '0';
            slider.dispatchEvent(new Event('change'));
        }""")
        page.wait_for_url(re.compile(r"from=2025-06-02&to=2025-06-08"))
        page.wait_for_function("() => document.getElementById('total').textContent === '2'")  # the two issues of 2 June
        assert "2025-06-02" in page.locator("#week-label").inner_text()
        assert page.input_value("#from") == "2025-06-02"
        page.click("#week-all")
        page.wait_for_function("() => !location.search.includes('from=')")
        page.wait_for_function("() => document.getElementById('total').textContent === '7'")
        assert_clean(watch)


def test_a_large_area_fetches_cacheable_gzip_layers_and_draws_on_canvas(app, loaded, mini_geodata):
    from gridmap.web.maps_api import map_service

    with app.app_context():
        map_service().embed_max_features = 0
    lon, lat = away_from_issues(mini_geodata, CELL_A)
    with live_server(app) as base, chromium_page(login_to=base) as (page, watch):
        responses = []
        page.on("response", lambda r: responses.append((r.url, r.status, r.headers.get("content-encoding"),
                                                        r.headers.get("cache-control"))))
        open_map(page, base + "/")
        page.wait_for_function("() => document.querySelector('.map-legend li') !== null")
        assert page.locator("canvas.leaflet-zoom-animated").count() >= 1
        cells = [r for r in responses if "/api/v1/maps/areas/cells" in r[0]]
        assert cells and cells[0][1] == 200 and cells[0][2] == "gzip" and "immutable" in cells[0][3]
        with page.expect_response(lambda r: "/api/v1/maps/data" in r.url) as answer:
            page.select_option("#metric", "overdue")  # a filter change fetches the figures (tiny here: not gzipped)
        assert answer.value.status == 200 and answer.value.headers["cache-control"] == "no-cache"
        assert answer.value.headers["etag"]
        click_at(page, lon, lat)
        assert CELL_A in page.wait_for_selector(".leaflet-popup-content").inner_text()
        page.wait_for_timeout(400)
        screenshot(page, "map_canvas")
        assert_clean(watch)


def test_the_manager_view(app, loaded):
    with live_server(app) as base, chromium_page(login_to=base) as (page, watch):
        open_map(page, base + "/manager?area=460204001001,460204001002")
        assert page.locator("path.leaflet-interactive").count() == 48
        items = page.locator("#issues li")
        assert items.count() == 3
        assert "已超期" in items.first.inner_text()
        assert "每网格 · 未结" in page.locator(".map-legend").inner_text()
        screenshot(page, "map_manager")
        page.goto(base + "/manager", wait_until="networkidle")
        screenshot(page, "map_manager_choose")
        page.click("a:has-text('春园社区')")
        page.wait_for_url(re.compile(r"/manager\?area=460204001001$"))
        page.wait_for_function(READY)
        screenshot(page, "map_manager_community")
        assert_clean(watch)


def test_the_coverage_layer(app, gm, loaded, mini_geodata):
    start, end = load_households(gm)
    lon, lat = away_from_issues(mini_geodata, CELL_A)
    with live_server(app) as base, chromium_page(login_to=base) as (page, watch):
        open_map(page, base + f"/?area=460204001001&from={start}&to={end}")
        before = page.locator("path.leaflet-interactive").count()
        page.locator(".leaflet-control-layers label:has-text('走访覆盖率') input").check()
        page.wait_for_function("() => document.querySelector('.map-legend').textContent.includes('入户走访率')")
        assert page.locator("path.leaflet-interactive").count() == before + 24  # one coverage polygon per cell
        page.mouse.move(0, 0)
        x, y = page.evaluate("([lat, lon]) => { const p = window.gridmapMap.map.latLngToContainerPoint([lat, lon]);"
                             " return [p.x, p.y]; }", [lat, lon])
        box = page.locator(".folium-map").bounding_box()
        page.mouse.move(box["x"] + x, box["y"] + y)
        tooltip = page.wait_for_selector(".leaflet-tooltip:has-text('入户走访率')")
        assert "50 %" in tooltip.inner_text() and "(1 / 2)" in tooltip.inner_text()
        screenshot(page, "map_coverage")
        assert_clean(watch)
