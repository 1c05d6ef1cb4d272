"""The first map at /: cells coloured by issue counts plus a heatmap, all assets local."""

from __future__ import annotations

import re

from conftest import make_token
from gridmap.maps.assets import external_urls
from helpers import cell_point


def test_overview_map_draws_every_cell_and_the_heatmap(client, gm, mini_geodata):
    point = cell_point(mini_geodata, "460204001001001")
    gm.intake.import_records(gm.db, [{"lon": point[0], "lat": point[1], "category": "E0102",
                                      "description": "暴露垃圾", "reported_at": "2025-05-01 08:00"}])
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "三亚市天涯区" in html
    assert len(set(re.findall(r'"code":\s*"(\d{15})"', html))) == 74
    assert "L.heatLayer" in html
    assert re.search(r'<dd id="total">1</dd>', html)


def test_overview_references_no_external_host(client, gm):
    html = client.get("/").get_data(as_text=True)
    assert external_urls(html) == []
    for path in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        with client.get(path) as response:
            assert response.status_code == 200, path


def test_bad_filters_on_the_page_are_a_400_page(client, gm):
    response = client.get("/?from=someday")
    assert response.status_code == 400
    assert "must be a date" in response.get_data(as_text=True)


def test_the_heatmap_shows_the_issues_the_chosen_metric_counts(client, gm, mini_geodata):
    point = cell_point(mini_geodata, "460204001001001")
    gm.intake.import_records(gm.db, [{"lon": point[0], "lat": point[1], "category": "E0102",
                                      "description": "暴露垃圾", "reported_at": "2025-05-01 08:00"}])
    assert "L.heatLayer" in client.get("/?metric=open").get_data(as_text=True)
    assert "L.heatLayer" not in client.get("/?metric=closed").get_data(as_text=True)  # nothing closed yet


def test_an_unknown_metric_is_a_400(client, gm):
    response = client.get("/?metric=happiness")
    assert response.status_code == 400
    assert "unknown metric" in response.get_data(as_text=True)


def test_a_grid_managers_map_names_the_areas_above_their_own_without_linking_them(app, gm):
    community = "460204001001"
    manager = app.test_client()
    manager.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {make_token(gm, 'manager', (community,))}"
    page = manager.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    crumb = html[html.index('class="breadcrumb"'):html.index("</nav>", html.index('class="breadcrumb"'))]
    assert re.findall(r'data-code="(\d+)"', crumb) == [community]  # their community, linked
    assert crumb.count('class="outside-scope"') == 2  # the district and the street: named only
    for code in ("460204", "460204001"):
        assert manager.get(f"/?area={code}").status_code == 403
