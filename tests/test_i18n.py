"""Languages: zh-CN by default, English by ?lang=en (remembered in a cookie); every page text translated."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from map_issues import load_map_issues

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "gridmap" / "translations" / "en" / "LC_MESSAGES"
KEYWORDS = {**DEFAULT_KEYWORDS, "N_": None}


def extracted(method_map: list[tuple[str, str]]) -> set[str]:
    """The message ids pybabel extracts with these patterns (as babel.cfg does)."""
    ids = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(str(ROOT), method_map, keywords=KEYWORDS):
        ids.add(message[0] if isinstance(message, tuple) else message)
    return ids


def english() -> dict[str, str]:
    with open(CATALOGUE / "messages.mo", "rb") as handle:
        catalog = read_mo(handle)
    return {message.id: message.string for message in catalog if message.id}


def test_every_text_of_every_template_has_an_english_translation():
    ids = extracted([("templates/**.html", "jinja2")])
    assert len(ids) > 40
    translations = english()
    missing = sorted(i for i in ids if not translations.get(i))
    assert missing == [], "run `bash scripts/update-translations.sh` and translate these in messages.po"


def test_every_label_of_the_map_ui_has_an_english_translation():
    ids = extracted([("gridmap/maps/**.py", "python"), ("gridmap/labels.py", "python"),
                     ("gridmap/web/pages.py", "python")])
    assert "全部问题" in ids and "图例" in ids  # a marked label and a gettext call
    translations = english()
    assert sorted(i for i in ids if not translations.get(i)) == []


def test_the_compiled_catalogue_is_the_po_file():
    with open(CATALOGUE / "messages.po", "rb") as handle:
        po = {m.id: m.string for m in read_po(handle) if m.id and not m.fuzzy}
    assert english() == po, "recompile: pybabel compile -d gridmap/translations"


@pytest.fixture
def loaded(gm, mini_geodata):
    return load_map_issues(gm, mini_geodata)


@pytest.mark.parametrize(
    "query, present, absent",
    [
        ("", ["问题地图", "全部问题", "机动车乱停放", 'lang="zh-CN"', ">English</a>"], ["Issue map"]),  # default
        ("?lang=en", ["Issue map", "All issues", "Illegal motor-vehicle parking", "Metric", 'lang="en"', ">中文</a>"],
         ["问题地图", "全部类别", "机动车乱停放"]),
        ("?lang=zh-CN", ["问题地图"], ["Issue map"]),  # the tag form works too
        ("?lang=fr", ["问题地图"], ["Issue map"]),  # unknown: the default
    ],
)
def test_page_language(client, loaded, query, present, absent):
    html = client.get("/" + query).get_data(as_text=True)
    for text in present:
        assert text in html, text
    for text in absent:
        assert text not in html, text


def test_the_map_labels_follow_the_language(client, loaded):
    html = client.get("/?lang=en&metric=closed_share").get_data(as_text=True)
    config = re.search(r'id="map-config">(.*?)</script>', html, re.S).group(1)
    assert "Per {level}" in config and "Closed share" in config
    assert "Awaiting registration" in config  # status names
    data = client.get("/api/v1/maps/data?metric=closed_share&lang=en").get_json()
    assert data["legend"]["none"]["label"] == "No data"


def test_the_language_link_keeps_the_view(client, loaded):
    html = client.get("/?area=460204001&metric=open").get_data(as_text=True)
    link = re.search(r'<a id="lang-switch"[^>]*href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert link == "/?area=460204001&metric=open&lang=en"


def test_the_manager_page_in_english(client, loaded):
    html = client.get("/manager?area=460204001001&lang=en").get_data(as_text=True)
    assert "Open and overdue issues" in html and "My area" in html
    assert "Awaiting registration" in html or "Suspended" in html
