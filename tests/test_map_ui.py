"""The map UI without a browser: pages, drill-down, filters in the URL, layer endpoints, display geometry."""

from __future__ import annotations

import gzip
import html
import json
import re

import numpy as np
import pytest
import shapely
from shapely.geometry import shape

from conftest import admin_client
from gridmap.errors import InvalidInput
from gridmap.geo.crs import wgs84_to_gcj02
from gridmap.maps.assets import external_urls
from gridmap.maps.data import legend_classes, metric_value
from gridmap.maps.display import DISPLAY_DECIMALS, decode_ring, encode_geometry, encode_ring
from gridmap.maps.scope import AreaCatalogue, AreaScope
from gridmap.maps.tiles import display_shift, tile_sources
from map_issues import CELL_A, CELL_B, CELL_C, load_households, load_map_issues

DISTRICT = "460204"
STREET = "460204001"
COMMUNITY = "460204001001"


@pytest.fixture
def loaded(gm, mini_geodata):
    return load_map_issues(gm, mini_geodata)


def page_config(html: str) -> dict:
    """The JSON config a map page gives its JavaScript."""
    match = re.search(r'<script type="application/json" id="map-config">(.*?)</script>', html, re.S)
    assert match, "no map config in the page"
    return json.loads(match.group(1))


def get_json(client, url, **headers):
    with client.get(url, headers=headers) as response:
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_data()
        if response.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return json.loads(body)


# --- display geometry ---------------------------------------------------------------------------


def test_a_ring_is_delta_encoded_in_units_of_1e5_degrees_without_the_closing_vertex():
    ring = np.array([[109.400004, 18.2], [109.401, 18.2], [109.401, 18.201], [109.400004, 18.2]])
    assert encode_ring(ring) == [10940000, 1820000, 100, 0, 0, 100]
    assert np.allclose(decode_ring([10940000, 1820000, 100, 0, 0, 100]), ring[:-1], atol=0.5e-5)


def test_a_ring_smaller_than_the_display_precision_is_drawn_as_its_bounding_box():
    tiny = shapely.box(109.400001, 18.200001, 109.400003, 18.200003)
    encoded = encode_geometry(tiny)
    assert len(encoded) == 1 and len(encoded[0][0]) >= 6


def test_every_decoded_vertex_is_within_two_metres_of_the_stored_cell(client, gm, mini_geodata):
    payload = get_json(client, "/api/v1/maps/areas/cells")
    assert payload["precision"] == DISPLAY_DECIMALS and payload["shift"] == "none"
    stored = {f["properties"]["code"]: shape(f["geometry"])
              for f in json.loads((mini_geodata / "cells.geojson").read_text())["features"]}
    assert len(payload["features"]) == 74
    for feature in payload["features"]:
        vertices = np.vstack([decode_ring(ring) for polygon in feature["g"] for ring in polygon])
        distance_deg = shapely.distance(stored[feature["code"]].boundary, shapely.points(vertices))
        assert distance_deg.max() < 2e-5, feature["code"]  # ≈ 2 m


def test_on_amap_tiles_every_vertex_is_shifted_to_gcj02(settings, gm, mini_geodata):
    from gridmap.web import create_app

    app = create_app({**settings, "tiles": "amap"})
    try:
        with admin_client(app):
            plain = get_json(admin_client(app), "/api/v1/maps/areas/cells")  # same geometry, its shift says gcj02
        assert plain["shift"] == "gcj02"
        feature = next(f for f in plain["features"] if f["code"] == CELL_A)
        shown = decode_ring(feature["g"][0][0])[0]
        stored = {f["properties"]["code"]: shape(f["geometry"])
                  for f in json.loads((mini_geodata / "cells.geojson").read_text())["features"]}[CELL_A]
        # The first shown vertex is a stored vertex moved by the GCJ-02 offset (a few hundred metres).
        lon, lat = np.array(stored.exterior.coords).T
        gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
        nearest = np.argmin(np.hypot(gcj_lon - shown[0], gcj_lat - shown[1]))
        assert abs(gcj_lon[nearest] - shown[0]) < 1e-5 and abs(gcj_lat[nearest] - shown[1]) < 1e-5
        offset_m = np.hypot((gcj_lon[nearest] - lon[nearest]) * 105_700, (gcj_lat[nearest] - lat[nearest]) * 110_700)
        assert 200 < offset_m < 1000
    finally:
        app.extensions["gridmap"].close()


def test_the_gcj02_shift_matches_the_published_reference_point():
    lon, lat = wgs84_to_gcj02(np.array([120.0]), np.array([40.0]))
    assert (round(float(lon[0]), 6), round(float(lat[0]), 6)) == (120.005676, 40.001305)


# --- tiles --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tiles, key, layers, shift",
    [
        ("none", None, 0, "none"),  # default: no basemap, works offline
        ("osm", None, 1, "none"),
        ("tianditu", "abc123", 2, "none"),  # vector map + labels; CGCS2000 ≈ WGS84, nothing moves
        ("amap", None, 1, "gcj02"),  # AMap tiles are GCJ-02: overlays move
    ],
)
def test_tile_settings(tiles, key, layers, shift):
    sources = tile_sources(tiles, key)
    assert len(sources) == layers
    assert display_shift(tiles) == shift
    if tiles == "tianditu":
        assert all("tk=abc123" in source.url for source in sources)


@pytest.mark.parametrize(
    "tiles, key, message",
    [
        ("tianditu", None, "needs a Tianditu browser key"),  # key missing
        ("tianditu", "ab&c", "letters and digits"),  # not a key
        ("google", None, "unknown tiles setting"),
    ],
)
def test_bad_tile_settings_say_what_to_fix(tiles, key, message):
    with pytest.raises(InvalidInput, match=message):
        tile_sources(tiles, key)


def test_the_page_draws_the_configured_basemap(settings, gm):
    from gridmap.web import create_app

    app = create_app({**settings, "tiles": "tianditu", "tianditu_key": "abc123"})
    try:
        with admin_client(app).get("/") as response:
            html = response.get_data(as_text=True)
        assert "tianditu.gov.cn/vec_w" in html and "tianditu.gov.cn/cva_w" in html
        assert len(page_config(html)["names"]["tiles"]) == 2
    finally:
        app.extensions["gridmap"].close()


# --- areas and scope ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, codes",
    [
        ("", (DISTRICT,)),  # nothing: the whole layer set
        (STREET, (STREET,)),
        (f"{COMMUNITY},{CELL_A}", (COMMUNITY,)),  # a cell inside a listed community adds nothing
        (f"{CELL_C}, {CELL_A}", (CELL_A, CELL_C)),  # sorted, spaces allowed
    ],
)
def test_area_scopes(gm, text, codes):
    catalogue = AreaCatalogue(gm.areas.layers)
    assert AreaScope.parse(text, catalogue).codes == codes


@pytest.mark.parametrize(
    "text, status, message",
    [
        ("46020400", 400, "not an area code"),  # 8 digits: no level
        ("abc", 400, "not an area code"),
        ("460204999", 404, "no area has the code"),  # well-formed, not in the layer set
    ],
)
def test_bad_area_parameters(client, gm, text, status, message):
    with client.get(f"/?area={text}") as response:
        assert response.status_code == status
        assert message in response.get_data(as_text=True)
    with client.get(f"/api/v1/maps/data?area={text}") as response:
        assert response.status_code == status
        assert message in response.get_json()["error"]["message"]


# --- the overview page --------------------------------------------------------------------------


def test_the_district_view_lists_its_streets_with_their_figures(client, loaded):
    with client.get("/") as response:
        html = response.get_data(as_text=True)
    config = page_config(html)
    assert config["state"]["area"] == DISTRICT and config["level"] == "cells"
    assert len(config["layers"]["choropleth"]["features"]) == 74  # small: embedded in the page
    # 天涯镇: the rejected issue and the open one reported in July, overdue by now.
    assert config["data"]["children"] == {"460204001": [5, 3, 1, 2], "460204101": [2, 1, 1, 0]}
    assert re.search(r'<dd id="total">7</dd>', html)
    assert 'href="/?area=460204001"' in html  # drill into a street


def test_drilling_into_a_community_shows_only_its_cells_and_fits_the_map_to_it(client, loaded, gm):
    with client.get(f"/?area={COMMUNITY}") as response:
        html = response.get_data(as_text=True)
    config = page_config(html)
    codes = [f["code"] for f in config["layers"]["choropleth"]["features"]]
    assert len(codes) == 24 and all(code.startswith(COMMUNITY) for code in codes)
    assert config["data"]["features"][CELL_A][:4] == [3, 1, 1, 2]
    assert re.search(r'<dd id="total">3</dd>', html)
    breadcrumb = re.search(r'<nav class="breadcrumb".*?</nav>', html, re.S).group(0)
    assert re.findall(r">([^<>›]+)</a>", breadcrumb) == ["三亚市天涯区", "河西街道", "春园社区"]
    bounds = AreaCatalogue(gm.areas.layers).get(COMMUNITY).bounds
    fit = re.search(r"fitBounds\(\s*\[\[([\d.]+),\s*([\d.]+)\],\s*\[([\d.]+),\s*([\d.]+)\]\]", html)
    assert fit and np.allclose([float(v) for v in fit.groups()], [bounds[1], bounds[0], bounds[3], bounds[2]])


def test_a_cell_view_shows_that_cell(client, loaded):
    config = page_config(client.get(f"/?area={CELL_A}").get_data(as_text=True))
    assert [f["code"] for f in config["layers"]["choropleth"]["features"]] == [CELL_A]
    assert config["data"]["summary"]["total"] == 3


@pytest.mark.parametrize(
    "query, total, note",
    [
        ("", 7, "everything"),
        ("category=E01", 3, "a class takes its items (E0102)"),
        ("category=E0505", 3, "an item"),
        ("status=reported", 3, "one status"),
        ("status=reported,suspended", 4, "two statuses, comma-separated"),
        ("status=reported&status=suspended", 4, "two statuses, repeated as a form sends them"),
        ("source=hotline", 2, "one source"),
        ("from=2025-06-01&to=2025-06-30", 3, "a period in local days"),
        ("area=460204101&source=web", 1, "area and source together"),
    ],
)
def test_filters_in_the_url_change_the_figures(client, loaded, query, total, note):
    with client.get(f"/?{query}") as response:
        assert response.status_code == 200
        config = page_config(response.get_data(as_text=True))
    assert config["data"]["summary"]["total"] == total, note
    data = get_json(
        client, f"/api/v1/maps/data?{query.replace('status=reported&status=suspended', 'status=reported,suspended')}"
    )
    assert data["summary"]["total"] == total, note


def test_the_form_shows_the_filters_of_the_url(client, loaded):
    html = client.get("/?category=E0505&status=reported,closed&source=web&from=2025-01-01&metric=open").get_data(
        as_text=True
    )
    assert re.search(r'<option value="E0505" selected>', html)
    assert re.search(r'<option value="open" selected>', html)
    assert re.search(r'value="reported" checked', html) and re.search(r'value="closed" checked', html)
    assert re.search(r'value="web" checked', html)
    assert 'value="2025-01-01"' in html
    assert page_config(html)["state"] == {"area": DISTRICT, "metric": "open", "category": "E0505",
                                          "status": ["reported", "closed"], "source": ["web"],
                                          "from": "2025-01-01", "to": ""}


@pytest.mark.parametrize(
    "query, message",
    [
        ("status=lost", "unknown status 'lost'"),
        ("source=fax", "unknown source 'fax'"),
        ("metric=happiness", "unknown metric"),
        ("from=2025-07-01&to=2025-06-01", "swap them"),
        ("category=E99", "unknown category"),
    ],
)
def test_bad_filters_are_a_400_that_says_what_to_fix(client, gm, query, message):
    with client.get(f"/?{query}") as response:
        assert response.status_code == 400
        assert message in html.unescape(response.get_data(as_text=True))


def test_issues_per_100_households_is_offered_only_when_households_exist(client, loaded):
    html = client.get("/").get_data(as_text=True)
    assert re.search(r'<option value="per_100_households" disabled', html)
    assert page_config(html)["households"] is False


def test_the_time_view_has_one_step_per_week_with_issues(client, loaded):
    weeks = page_config(client.get("/").get_data(as_text=True))["weeks"]
    assert weeks[0] == "2025-06-02"  # the Monday of the first issue's week
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", w) for w in weeks)
    assert len(weeks) > 20


def test_the_geometry_of_a_large_area_is_fetched_from_the_layer_endpoint_instead_of_embedded(app, client, loaded):
    from gridmap.web.maps_api import map_service

    with app.app_context():
        map_service().embed_max_features = 10
    html = client.get("/").get_data(as_text=True)
    config = page_config(html)
    assert config["renderer"] == "canvas"
    assert config["data"]["summary"]["total"] == 7  # the figures still come with the page
    url = config["layers"]["choropleth"]["url"]
    assert url.startswith("/api/v1/maps/areas/cells?v=")
    assert '"code":"460204001001001"' not in html
    assert len(get_json(client, url)["features"]) == 74


def test_above_map_max_cells_the_district_is_coloured_by_community(settings, gm, loaded):
    from gridmap.web import create_app

    app = create_app({**settings, "map_max_cells": 30})
    try:
        client = admin_client(app)
        assert page_config(client.get("/").get_data(as_text=True))["level"] == "communities"
        config = page_config(client.get(f"/?area={COMMUNITY}").get_data(as_text=True))  # 24 cells: drawn
        assert config["level"] == "cells"
        data = get_json(client, "/api/v1/maps/data")
        assert data["level"] == "communities" and data["features"][COMMUNITY][:4] == [3, 1, 1, 2]
    finally:
        app.extensions["gridmap"].close()


# --- layer endpoints ----------------------------------------------------------------------------


def test_the_cell_layer_is_gzip_compressed_cacheable_and_revalidated_by_etag(client, gm):
    version = get_json(client, "/api/v1/maps/areas/cells")["version"]
    with client.get(f"/api/v1/maps/areas/cells?v={version}", headers={"Accept-Encoding": "gzip"}) as response:
        assert response.headers["Content-Encoding"] == "gzip"
        assert "immutable" in response.headers["Cache-Control"]
        assert "Accept-Encoding" in response.headers["Vary"]
        etag = response.headers["ETag"]
        assert len(json.loads(gzip.decompress(response.get_data()))["features"]) == 74
    with client.get("/api/v1/maps/areas/cells", headers={"Accept-Encoding": "gzip", "If-None-Match": etag}) as response:
        assert response.status_code == 304
        assert response.headers["Cache-Control"] == "no-cache"  # no version: always revalidated


def test_the_geometry_of_an_area_holds_only_its_features(client, gm):
    payload = get_json(client, f"/api/v1/maps/areas/cells?within={COMMUNITY},{CELL_C}")
    codes = [f["code"] for f in payload["features"]]
    assert len(codes) == 25 and codes == sorted(codes)
    assert get_json(client, "/api/v1/maps/areas/streets")["features"][0]["name"] == "河西街道"
    with client.get("/api/v1/maps/areas/parcels") as response:
        assert response.status_code == 400


def test_map_data_gives_figures_values_classes_and_children(client, loaded):
    data = get_json(client, f"/api/v1/maps/data?area={STREET}&metric=closed_share")
    assert data["features"][CELL_A] == [3, 1, 1, 2, 66.7]
    assert data["features"][CELL_B] == [2, 2, 0, 0, 0.0]
    assert data["default"] is None  # cells without issues have no closed share
    assert data["children"] == {"460204001001": [3, 1, 1, 2], "460204001002": [2, 2, 0, 0]}
    assert [c["label"] for c in data["legend"]["classes"]] == ["0–20 %", "20–40 %", "40–60 %", "60–80 %", "80–100 %"]
    assert data["heat"]["mode"] == "points" and len(data["heat"]["points"]) == 2  # the closed issues


def test_map_data_answers_304_when_nothing_changed(client, loaded):
    with client.get("/api/v1/maps/data") as response:
        etag = response.headers["ETag"]
        assert response.headers["Cache-Control"] == "no-cache"
    with client.get("/api/v1/maps/data", headers={"If-None-Match": etag}) as response:
        assert response.status_code == 304


def test_above_the_raw_limit_the_heatmap_is_weighted_per_cell(client, loaded, monkeypatch):
    import gridmap.maps.data as data_module

    monkeypatch.setattr(data_module, "HEAT_RAW_LIMIT", 2)
    data = get_json(client, "/api/v1/maps/data?metric=open")
    heat = data["heat"]
    # No points of its own: the browser weighs each cell's point by its open count (index 1).
    assert heat == {"mode": "areas", "level": "cells", "index": 1, "count": 4, "points": []}
    assert sum(row[heat["index"]] for row in data["features"].values()) == 4
    cells = get_json(client, "/api/v1/maps/areas/cells")["features"]
    assert all(len(f["p"]) == 2 for f in cells)  # the point inside each cell


def test_issue_markers_in_a_box(client, loaded, mini_geodata):
    from helpers import cell_point

    lon, lat = cell_point(mini_geodata, CELL_A)
    result = get_json(client, f"/api/v1/maps/issues?bbox={lon - 0.001},{lat - 0.001},{lon + 0.001},{lat + 0.001}")
    assert len(result["issues"]) == 3 and result["truncated"] is False
    newest = result["issues"][0]
    assert newest["category"] == "C0118" and newest["status"] == "revisited" and newest["overdue"] is False
    overdue = [i for i in result["issues"] if i["overdue"]]
    assert len(overdue) == 1 and overdue[0]["deadline"].startswith("2025-06")
    assert "reporter_phone" not in newest and "reporter_name" not in newest  # personal data stays out
    limited = get_json(client,
                       f"/api/v1/maps/issues?bbox={lon - 0.001},{lat - 0.001},{lon + 0.001},{lat + 0.001}&limit=1")
    assert len(limited["issues"]) == 1 and limited["truncated"] is True


@pytest.mark.parametrize(
    "bbox",
    [
        "1,2,3",  # three numbers
        "a,b,c,d",
        "109.5,18.3,109.4,18.2",  # min > max
    ],
)
def test_a_bad_bbox_is_a_400(client, gm, bbox):
    with client.get(f"/api/v1/maps/issues?bbox={bbox}") as response:
        assert response.status_code == 400
        assert "bbox" in response.get_json()["error"]["message"]


# --- classes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "metric, counts, households, value",
    [
        ("total", (3, 1, 1, 2), None, 3.0),
        ("overdue", (3, 1, 1, 2), None, 1.0),
        ("closed_share", (3, 1, 1, 2), None, 66.7),
        ("closed_share", (0, 0, 0, 0), None, None),  # no issues: no share
        ("per_100_households", (3, 1, 1, 2), 200, 1.5),
        ("per_100_households", (3, 1, 1, 2), 0, None),  # no households: no rate
    ],
)
def test_metric_values(metric, counts, households, value):
    assert metric_value(metric, counts, households) == value


def test_count_classes_are_quantiles_of_the_positive_values():
    legend = legend_classes("total", [0, 0, 1, 1, 2, 3, 5, 8, 13, 100])
    assert legend["zero"]["label"] == "0" and legend["none"] is None
    uppers = [c["upper"] for c in legend["classes"]]
    assert uppers == sorted(uppers) and uppers[-1] == 100
    assert legend["classes"][0]["label"].startswith("1")


def test_a_single_value_still_gets_a_class():
    assert [c["label"] for c in legend_classes("open", [4, 4, 4])["classes"]] == ["1–4"]
    assert [c["label"] for c in legend_classes("open", [])["classes"]] == ["1"]


# --- manager view -------------------------------------------------------------------------------


def test_the_manager_view_lists_open_issues_overdue_first(client, loaded):
    with client.get(f"/manager?area={COMMUNITY},{CELL_B}") as response:
        assert response.status_code == 200
        html = response.get_data(as_text=True)
    config = page_config(html)
    assert config["scope"] == [COMMUNITY, CELL_B] and config["state"]["metric"] == "open"
    assert sorted(f["code"] for f in config["layers"]["choropleth"]["features"])[:2] == [CELL_A, "460204001001002"]
    assert len(config["layers"]["choropleth"]["features"]) == 25
    ids = [int(i) for i in re.findall(r'<li class="issue[^"]*" data-id="(\d+)"', html)]
    assert ids[0] == loaded["a_open"]  # overdue first
    assert set(ids) == {loaded["a_open"], loaded["b_open"], loaded["b_suspended"]}
    assert 'class="issue is-overdue"' in html
    assert re.search(r'<strong id="list-overdue">1</strong>', html)
    assert f'href="/api/v1/issues/{loaded["a_open"]}"' in html


def test_without_areas_the_manager_view_offers_the_communities(client, gm):
    with client.get("/manager") as response:
        html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert f'href="/manager?area={COMMUNITY}"' in html and "春园社区" in html


def test_the_manager_view_refuses_unknown_areas(client, gm):
    with client.get("/manager?area=460204001009") as response:
        assert response.status_code == 404


# --- offline ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/",
        f"/?area={STREET}",
        f"/?area={CELL_A}&metric=closed_share&category=E05",
        "/?lang=en",
        f"/manager?area={COMMUNITY}",
        "/manager",
        "/?area=460204999",  # the error page
    ],
)
def test_no_page_references_an_external_host(client, loaded, path):
    html = client.get(path).get_data(as_text=True)
    assert external_urls(html) == []
    for asset in set(re.findall(r'(?:src|href)="(/static/[^"]+)"', html)):
        with client.get(asset) as response:
            assert response.status_code == 200, asset


def test_the_language_choice_is_remembered_in_a_cookie(client, gm):
    with client.get("/?lang=en") as response:
        assert "lang=en" in response.headers["Set-Cookie"]
    with client.get("/") as response:  # the test client sends the cookie back
        assert "Issue map" in response.get_data(as_text=True)


# --- coverage layer (coverage figures) --------------------------------------------------------------


@pytest.fixture
def households(gm, loaded):
    return load_households(gm)


def test_the_coverage_layer_colours_cells_by_visit_coverage(client, households):
    start, end = households
    result = get_json(client, f"/api/v1/maps/coverage?area={COMMUNITY}&from={start}&to={end}")
    assert result["available"] is True and result["measure"] == "visit_coverage" and result["message"] == ""
    assert result["period"] == {"from": start.isoformat(), "to": end.isoformat(), "as_of": end.isoformat()}
    cell = result["areas"][CELL_A]
    assert (cell["households"], cell["visited"], cell["visit"]) == (2, 1, 50.0)
    assert cell["colour"] == "#78c679"  # the 40–60 % class
    assert all(code.startswith(COMMUNITY) for code in result["areas"])
    assert result["areas"]["460204001001002"]["visit"] is None  # no households: no visit coverage


def test_without_households_or_patrols_the_coverage_layer_says_so(client, loaded):
    result = get_json(client, "/api/v1/maps/coverage")
    assert result["available"] is True
    assert result["measure"] == "patrol_coverage"
    assert "没有住户和巡查记录" in result["message"]


def test_issues_per_100_households_once_households_exist(client, households):
    html = client.get("/?metric=per_100_households").get_data(as_text=True)
    assert not re.search(r'<option value="per_100_households"[^>]*disabled', html)
    config = page_config(html)
    assert config["households"] is True
    assert config["data"]["features"][CELL_A] == [3, 1, 1, 2, 150.0]  # 3 issues / 2 households × 100
    assert config["data"]["features"][CELL_B][4] is None  # issues, but no households
    assert config["data"]["summary"]["households"] == 2
