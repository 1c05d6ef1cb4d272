"""User text (descriptions, addresses, area names) reaches pages as text, never as markup.

The pages autoescape everything they render and embed their data as JSON that cannot close its
<script> element; the map's JavaScript puts data into popups and tooltips with textContent
(the browser side is in tests/test_map_browser.py).
"""

from __future__ import annotations

import json
import re

import pytest

from conftest import admin_client
from map_issues import CELL_X, XSS_ADDRESS, XSS_DESCRIPTION, load_map_issues

HOSTILE_NAME = '<b onmouseover="alert(3)">梅村</b></script><script>alert(4)</script>'


@pytest.fixture
def hostile_geodata(mini_geodata, tmp_path):
    """The mini layer set with a community and a cell whose names are markup."""
    folder = tmp_path / "hostile"
    folder.mkdir()
    for path in mini_geodata.iterdir():
        collection = json.loads(path.read_text(encoding="utf-8"))
        for feature in collection["features"]:
            if feature["properties"]["code"] in ("460204101001", CELL_X):
                feature["properties"]["name"] = HOSTILE_NAME
        (folder / path.name).write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    return folder


@pytest.fixture
def hostile_client(settings, hostile_geodata):
    from gridmap.core import Gridmap
    from gridmap.web import create_app

    overrides = {**settings, "geodata": str(hostile_geodata)}
    core = Gridmap(overrides)
    core.init_database()
    load_map_issues(core, hostile_geodata)
    core.close()
    app = create_app(overrides)
    yield admin_client(app)
    app.extensions["gridmap"].close()


def no_markup_from_data(html: str) -> None:
    assert "<img" not in html
    assert "<script>alert" not in html
    assert "<b onmouseover" not in html
    # Embedded JSON cannot end its <script> element early.
    for block in re.findall(r'<script type="application/json"[^>]*>(.*?)</script>', html, re.S):
        assert "<" not in block
        json.loads(block)


@pytest.mark.parametrize(
    "path",
    [
        "/",  # the area names in the embedded geometry
        "/?area=460204101001",  # breadcrumb and title of the hostile community
        f"/?area={CELL_X}",
        "/manager?area=460204101001",  # the list shows descriptions and addresses
        "/manager",  # the chooser lists community names
    ],
)
def test_pages_render_user_text_as_text(hostile_client, path):
    with hostile_client.get(path) as response:
        assert response.status_code == 200
        html = response.get_data(as_text=True)
    no_markup_from_data(html)


def test_the_manager_list_shows_the_hostile_description_escaped(hostile_client):
    html = hostile_client.get("/manager?area=460204101001").get_data(as_text=True)
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;路" in html
    assert "&lt;b onmouseover=" in html


def test_layer_data_is_json_for_the_client_to_put_in_as_text(hostile_client):
    with hostile_client.get("/api/v1/maps/issues?bbox=100,10,120,25") as response:
        assert response.mimetype == "application/json"
        issues = response.get_json()["issues"]
    hostile = next(issue for issue in issues if issue["description"] == XSS_DESCRIPTION)
    assert hostile["address"] == XSS_ADDRESS
    with hostile_client.get("/api/v1/maps/areas/cells") as response:
        assert response.mimetype == "application/json"
        names = {f["code"]: f["name"] for f in response.get_json()["features"]}
    assert names[CELL_X] == HOSTILE_NAME
