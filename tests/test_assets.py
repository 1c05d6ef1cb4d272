"""Map pages load every JS/CSS file from gridmap itself: the service runs without internet.

gridmap/maps/assets.py rewrites folium's CDN links to the files under gridmap/static/vendor/
(written by scripts/vendor-assets.sh); these tests hold it to that.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import branca.colormap
import folium
import pytest
from folium import plugins

from gridmap.maps.assets import (
    ASSETS,
    MANIFEST,
    STATIC_DIR,
    VENDOR_DIR,
    UnknownAssetError,
    external_urls,
    is_external_url,
    localize_assets,
    vendored_files,
)


def static_url(path: str) -> str:
    """What the Flask layer's url_for('static', filename=path) returns, without Flask."""
    return "/static/" + path


POLYGONS = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "id": code,
            "properties": {"code": code, "name": name},
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[x, 18.2], [x + 0.01, 18.2], [x + 0.01, 18.21], [x, 18.2]]],
            },
        }
        for code, name, x in [
            ("460204001001", "春园社区", 109.40),
            ("460204001002", "海湾社区", 109.41),
        ]
    ],
}
POINTS_IN_TIME = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [109.40, 18.20]},
            "properties": {"times": ["2024-05-01T08:00:00", "2024-05-02T08:00:00"]},
        }
    ],
}
POINTS = [[18.20 + i * 0.001, 109.40 + i * 0.001, 1.0] for i in range(10)]


def new_map() -> folium.Map:
    """A map as gridmap makes them: no basemap tiles (maxZoom set, as MarkerCluster needs one)."""
    return folium.Map(location=[18.205, 109.405], zoom_start=14, tiles=None, maxZoom=19)


def add_markers(m: folium.Map) -> None:
    cluster = plugins.MarkerCluster(name="issues").add_to(m)
    icon = folium.Icon(icon="info-sign")
    folium.Marker(POINTS[0][:2], popup="路灯损坏", icon=icon).add_to(cluster)
    folium.Marker(POINTS[1][:2], icon=folium.Icon(prefix="fa", icon="bus", angle=45)).add_to(m)


def add_choropleth(m: folium.Map) -> None:
    folium.Choropleth(
        geo_data=POLYGONS,
        data={"460204001001": 3, "460204001002": 7},
        key_on="feature.id",
        name="issues per community",
    ).add_to(m)


def add_everything(m: folium.Map) -> None:
    add_markers(m)
    add_choropleth(m)
    folium.GeoJson(
        POLYGONS,
        name="communities",
        tooltip=folium.GeoJsonTooltip(["name"]),
        popup=folium.GeoJsonPopup(["code"]),
    ).add_to(m)
    plugins.HeatMap(POINTS, name="heat").add_to(m)
    plugins.Fullscreen().add_to(m)
    plugins.MiniMap(tile_layer=folium.TileLayer("/tiles/{z}/{x}/{y}.png", attr="local")).add_to(m)
    plugins.MeasureControl().add_to(m)
    plugins.HeatMapWithTime([[p[:2] for p in POINTS[:5]], [p[:2] for p in POINTS[5:]]]).add_to(m)
    plugins.TimestampedGeoJson(POINTS_IN_TIME).add_to(m)
    folium.LayerControl().add_to(m)


# What gridmap's maps use; each case is one page that must render with local files only.
PAGES = {
    # Leaflet, jQuery and the awesome-markers files every folium.Map links.
    "bare map": lambda m: None,
    # Glyphicons (Icon's default prefix), Font Awesome with rotation, Leaflet.markercluster.
    "markers": add_markers,
    "heat map": lambda m: plugins.HeatMap(POINTS).add_to(m),
    # The legend is a branca colormap: it adds d3 to the page while rendering.
    "choropleth": add_choropleth,
    "colormap legend": lambda m: branca.colormap.LinearColormap(
        ["green", "red"], vmin=0, vmax=9
    ).add_to(m),
    "geojson with tooltip and popup": lambda m: folium.GeoJson(
        POLYGONS, tooltip=folium.GeoJsonTooltip(["name"]), popup=folium.GeoJsonPopup(["code"])
    ).add_to(m),
    "fast marker cluster": lambda m: plugins.FastMarkerCluster([p[:2] for p in POINTS]).add_to(m),
    "fullscreen": lambda m: plugins.Fullscreen().add_to(m),
    "minimap": lambda m: plugins.MiniMap(
        tile_layer=folium.TileLayer("/tiles/{z}/{x}/{y}.png", attr="local")
    ).add_to(m),
    "measure control": lambda m: plugins.MeasureControl().add_to(m),
    # Leaflet.TimeDimension, whose control CSS was patched to take Glyphicons locally.
    "heat map with time": lambda m: plugins.HeatMapWithTime([[p[:2] for p in POINTS]]).add_to(m),
    "timestamped geojson": lambda m: plugins.TimestampedGeoJson(POINTS_IN_TIME).add_to(m),
    "everything on one map": add_everything,
}


def rendered(build, url=static_url) -> str:
    m = new_map()
    build(m)
    localize_assets(m, url)
    return m.get_root().render()


def static_references(html: str) -> list[str]:
    """The paths under gridmap/static/ that the page's src/href attributes name."""
    return re.findall(r"""\b(?:src|href)\s*=\s*["']/static/([^"'?#]+)""", html)


@pytest.mark.parametrize("build", PAGES.values(), ids=PAGES.keys())
def test_localized_page_references_no_other_host(build):
    assert external_urls(rendered(build)) == []


@pytest.mark.parametrize("build", PAGES.values(), ids=PAGES.keys())
def test_every_static_reference_of_a_localized_page_exists(build):
    references = static_references(rendered(build))
    assert references, "the page should link its scripts and stylesheets from /static/"
    missing = [path for path in references if not (STATIC_DIR / path).is_file()]
    assert missing == []


def test_without_localize_assets_the_same_page_references_cdns():
    # The check above can fail: folium alone links its libraries from CDNs.
    m = new_map()
    add_everything(m)
    urls = external_urls(m.get_root().render())
    assert "https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js" in urls
    assert "https://cdnjs.cloudflare.com/ajax/libs/d3/3.5.5/d3.min.js" in urls


def test_links_are_made_by_the_given_static_url():
    html = rendered(add_markers, url=lambda path: f"/gridmap/static/{path}?v=1")
    assert '<script src="/gridmap/static/vendor/leaflet/leaflet.js?v=1"></script>' in html
    assert 'href="/gridmap/static/vendor/leaflet.markercluster/MarkerCluster.css?v=1"' in html


def test_bootstrap_is_not_linked_since_folium_templates_do_not_use_it():
    html = rendered(add_everything)
    assert "bootstrap.bundle" not in html
    assert "bootstrap.min.css" not in html
    # jQuery stays: folium's popups call $(...).
    assert '<script src="/static/vendor/jquery/jquery.min.js"></script>' in html


def test_a_file_two_plugins_link_under_different_names_is_linked_once():
    # folium.Map links jQuery as "jquery", TimestampedGeoJson as "jquery3.7.1"; HeatMapWithTime
    # and TimestampedGeoJson both link Leaflet.TimeDimension under different names.
    html = rendered(add_everything)
    assert html.count("vendor/jquery/jquery.min.js") == 1
    assert html.count("vendor/leaflet-timedimension/leaflet.timedimension.min.js") == 1


def test_localizing_twice_changes_nothing():
    m = new_map()
    add_everything(m)
    localize_assets(m, static_url)
    localize_assets(m, static_url)
    html = m.get_root().render()
    assert external_urls(html) == []
    assert html.count('src="/static/vendor/leaflet/leaflet.js"') == 1


def test_localize_sets_instance_attributes_and_leaves_folium_classes_alone():
    m = new_map()
    heat = plugins.HeatMap(POINTS).add_to(m)
    localize_assets(m, static_url)
    assert m.default_js[0] == ("leaflet", "/static/vendor/leaflet/leaflet.js")
    assert heat.default_js == [("leaflet-heat.js", "/static/vendor/folium/leaflet_heat.min.js")]
    assert folium.Map.default_js[0][1].startswith("https://")
    assert plugins.HeatMap.default_js[0][1].startswith("https://")
    assert external_urls(new_map().get_root().render()) != []


def test_plugin_without_vendored_copy_is_refused_naming_asset_and_url():
    m = new_map()
    plugins.Draw().add_to(m)
    with pytest.raises(UnknownAssetError) as raised:
        localize_assets(m, static_url)
    message = str(raised.value)
    assert "Draw" in message
    assert "'leaflet_draw_js'" in message
    assert "https://cdnjs.cloudflare.com/ajax/libs/leaflet.draw/1.0.2/leaflet.draw.js" in message
    assert "scripts/vendor-assets.sh" in message


def test_known_name_with_another_url_is_refused_not_swapped_for_our_file():
    # BoatMarker links leaflet.boatmarker under the name MarkerCluster uses for its script.
    m = new_map()
    plugins.BoatMarker([18.2, 109.4]).add_to(m)
    with pytest.raises(UnknownAssetError, match=r"'markerclusterjs'.*leaflet\.boatmarker"):
        localize_assets(m, static_url)


def test_asset_added_after_localizing_is_refused_when_the_page_renders():
    m = new_map()
    localize_assets(m, static_url)
    plugins.Draw().add_to(m)
    with pytest.raises(UnknownAssetError, match="leaflet_draw_js"):
        m.get_root().render()


def test_links_added_while_rendering_are_checked_too():
    # VegaLite puts vega from jsdelivr into the page header in render(), not in default_js.
    m = new_map()
    marker = folium.Marker([18.2, 109.4]).add_to(m)
    folium.Popup().add_child(folium.VegaLite({"mark": "point"})).add_to(marker)
    localize_assets(m, static_url)
    with pytest.raises(UnknownAssetError, match=r"'vega' from https://cdn\.jsdelivr\.net/npm/"):
        m.get_root().render()


def test_localizing_twice_works_with_absolute_static_urls():
    # url_for(..., _external=True) gives absolute URLs; the second pass must recognise them.
    m = new_map()
    add_markers(m)
    absolute = lambda path: "http://gridmap.intranet/static/" + path  # noqa: E731
    localize_assets(m, absolute)
    localize_assets(m, absolute)
    assert 'src="http://gridmap.intranet/static/vendor/leaflet/leaflet.js"' in m.get_root().render()


def test_links_that_are_already_local_are_kept():
    m = new_map()
    # folium's add_js_link appends to the class-level list; copy it so other maps stay clean.
    m.default_js = list(m.default_js)
    m.add_js_link("gridmap_map", "/static/js/map.js")
    localize_assets(m, static_url)
    assert ("gridmap_map", "/static/js/map.js") in m.default_js


# --- the vendored files -------------------------------------------------------------------------


def test_every_manifest_file_is_vendored():
    files = vendored_files()
    assert len(files) == len(set(MANIFEST.values()))
    assert [f for f in files if not f.is_file()] == []
    assert all(f.is_relative_to(VENDOR_DIR) for f in files)


def library_folders() -> list[Path]:
    return sorted(p for p in VENDOR_DIR.iterdir() if p.is_dir())


def test_every_vendored_library_folder_has_a_licence_file():
    assert len(library_folders()) >= 10
    unlicensed = [
        folder.name
        for folder in library_folders()
        if not any(re.search(r"(?i)licen[cs]e", f.name) for f in folder.iterdir() if f.is_file())
    ]
    assert unlicensed == []


def test_vendor_readme_lists_every_library_folder():
    readme = (VENDOR_DIR / "README.md").read_text(encoding="utf-8")
    assert [f.name for f in library_folders() if f"`{f.name}/`" not in readme] == []


def test_every_manifest_file_lives_in_a_library_folder():
    folders = {f.name for f in library_folders()}
    assert {Path(path).parts[1] for path in MANIFEST.values()} <= folders


def css_references(css: str) -> list[str]:
    """The url(...) targets of a stylesheet, except data: URIs and same-document #fragments."""
    targets = re.findall(r"""url\(\s*["']?([^"')]+?)["']?\s*\)""", css)
    return [t for t in targets if not t.startswith(("data:", "#"))]


VENDORED_CSS = sorted(VENDOR_DIR.rglob("*.css"))


def test_vendored_css_was_found():
    assert len(VENDORED_CSS) >= 10


@pytest.mark.parametrize("css", VENDORED_CSS, ids=lambda p: str(p.relative_to(VENDOR_DIR)))
def test_every_url_in_vendored_css_resolves_to_a_vendored_file(css):
    text = css.read_text(encoding="utf-8")
    assert external_urls(text) == []
    unresolved = []
    for target in css_references(text):
        relative = unquote(urlsplit(target).path)  # "font.eot?#iefix" -> "font.eot"
        resolved = (css.parent / relative).resolve()
        if not (resolved.is_file() and resolved.is_relative_to(VENDOR_DIR)):
            unresolved.append(target)
    assert unresolved == []


def test_every_asset_path_is_under_vendor():
    assert all(a.path is None or a.path.startswith("vendor/") for a in ASSETS.values())


# --- external_urls ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        # Script and stylesheet links on a CDN.
        ('<script src="https://cdn.example.com/a.js"></script>', ["https://cdn.example.com/a.js"]),
        ("<link rel=stylesheet href='http://cdn.example.com/a.css'>", ["http://cdn.example.com/a.css"]),
        # Protocol-relative URLs go to another host too.
        ('<img src="//cdn.example.com/a.png">', ["//cdn.example.com/a.png"]),
        # Unquoted attribute.
        ("<script src=https://cdn.example.com/a.js></script>", ["https://cdn.example.com/a.js"]),
        # CSS url(...) and @import, quoted or not.
        ("<style>.a{background:url(https://x.example/i.png)}</style>", ["https://x.example/i.png"]),
        ("<style>@font-face{src:url('//x.example/f.woff')}</style>", ["//x.example/f.woff"]),
        ('<style>@import "https://x.example/s.css";</style>', ["https://x.example/s.css"]),
        ("<style>@import url(https://x.example/s.css);</style>", ["https://x.example/s.css"]),
        # Inside a JavaScript string the quotes are escaped.
        (r'var a = "<a href=\"https://x.example/\">x</a>";', ["https://x.example/"]),
        # Each URL once, in page order.
        (
            '<script src="https://b.example/1.js"></script><link href="https://a.example/2.css">'
            '<script src="https://b.example/1.js"></script>',
            ["https://b.example/1.js", "https://a.example/2.css"],
        ),
        # Relative, root-relative, loopback, data: and fragments are all local.
        ('<script src="/static/vendor/leaflet/leaflet.js"></script>', []),
        ('<link href="vendor/a.css"><img src="../b.png">', []),
        ('<script src="http://localhost:5000/static/a.js"></script>', []),
        ('<script src="http://127.0.0.1:8000/a.js"></script><img src="http://[::1]/a.png">', []),
        ('<img src="data:image/png;base64,iVBORw0KGgo=">', []),
        ('<a href="#map">map</a><a href="mailto:grid@example.com">mail</a>', []),
        ("<style>.a{behavior:url(#default#VML)}</style>", []),
        # A tile URL template inside a script is no src/href: out of scope.
        ('L.tileLayer("https://tile.example/{z}/{x}/{y}.png")', []),
    ],
)
def test_external_urls(html, expected):
    assert external_urls(html) == expected


@pytest.mark.parametrize(
    ("url", "external"),
    [
        ("https://cdn.jsdelivr.net/npm/leaflet@1.9.3/dist/leaflet.js", True),
        ("//cdn.jsdelivr.net/x.js", True),
        ("HTTPS://CDN.EXAMPLE/x.js", True),
        ("http://gridmap.intranet/static/x.js", True),  # another host, even on the intranet
        ("http://localhost/x.js", False),
        ("http://app.localhost:8080/x.js", False),
        ("http://127.0.0.2/x.js", False),
        ("/static/x.js", False),
        ("x.js", False),
        ("data:text/css,a{}", False),
    ],
)
def test_is_external_url(url, external):
    assert is_external_url(url) is external


# --- the folium/branca adapter: the only code that relies on their private structure --------------------


def test_the_adapter_lists_adds_last_replaces_and_removes_children_as_branca_renders_them():
    from branca.element import CssLink, Element, Figure, JavascriptLink

    from gridmap.maps.folium_adapter import add_last, children, remove_child, replace_child

    figure = Figure()
    header = figure.header
    first, second = JavascriptLink("/static/a.js"), CssLink("/static/b.css")
    header.add_child(first, name="a")
    header.add_child(second, name="b")
    # What branca keeps, in render order: a branca release that stores children otherwise fails here.
    assert [name for name, _child in children(header)] == ["meta_http", "a", "b"]  # branca's own meta tag first
    assert children(header)[1][1] is first
    replace_child(header, "a", JavascriptLink("/static/a2.js"))
    assert [name for name, _child in children(header)] == ["meta_http", "a", "b"]
    assert "/static/a2.js" in header.render() and "/static/a.js\"" not in header.render()
    remove_child(header, "b")
    remove_child(header, "absent")  # no error
    assert [name for name, _child in children(header)] == ["meta_http", "a"] and "b.css" not in header.render()
    figure.add_child(Element("<i>1</i>"), name="check")
    figure.add_child(Element("<i>2</i>"), name="other")
    add_last(figure, Element("<i>3</i>"), "check")
    assert [name for name, _child in children(figure)][-2:] == ["other", "check"]
    assert figure.html.render() == ""  # children of a Figure render into its parts, not its html


def test_the_adapter_walks_every_element_of_a_map_once():
    from gridmap.maps.folium_adapter import walk

    m = folium.Map(tiles=None)
    marker = folium.Marker([20.0, 110.0]).add_to(m)
    walked = list(walk(m))
    assert walked[0] is m and marker in walked
    figure = m.get_root()
    from_figure = list(walk(figure))
    assert all(part in from_figure for part in (figure.header, figure.html, figure.script, m, marker))
    assert len({id(e) for e in walked}) == len(walked)


def test_the_adapter_sets_one_elements_asset_links_and_folium_renders_them():
    from gridmap.maps.folium_adapter import set_asset_links

    m, other = folium.Map(tiles=None), folium.Map(tiles=None)
    before = list(folium.Map.default_js)
    set_asset_links(m, [("leaflet", "/static/own-leaflet.js")], [])
    assert "/static/own-leaflet.js" in m.get_root().render()
    assert folium.Map.default_js == before and "/static/own-leaflet.js" not in other.get_root().render()
