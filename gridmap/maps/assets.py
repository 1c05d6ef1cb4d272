"""Serve every JavaScript/CSS file of a folium map from gridmap itself (the intranet rule).

folium links Leaflet and its plugins from CDNs: each element lists ``(name, url)`` pairs in
``default_js``/``default_css``, and a few (branca's colormap legend) add links while rendering.
:func:`localize_assets` points all of them at the copies under ``gridmap/static/vendor/``,
written by ``scripts/vendor-assets.sh``, and refuses any asset it has no copy of, so a new folium
plugin cannot quietly make a page fetch from the internet. :func:`external_urls` lists what a
rendered page would still take from another host.

URLs are made by a ``static_url`` callable (path under ``gridmap/static/`` -> URL), so this
module knows no Flask; the web layer passes ``lambda p: url_for("static", filename=p)``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from branca.element import Element, Figure, Link
from folium.elements import JSCSSMixin

from gridmap.maps.folium_adapter import add_last, children, remove_child, replace_child, set_asset_links, walk
from gridmap.resources import resource

StaticUrl = Callable[[str], str]

STATIC_DIR = resource("static")
VENDOR_DIR = STATIC_DIR / "vendor"


class UnknownAssetError(ValueError):
    """A map links a JS/CSS file from another host and gridmap has no local copy of it."""


class Asset(NamedTuple):
    """What gridmap serves in place of one of folium's named assets."""

    path: str | None  # under gridmap/static/; None when pages work without the file
    replaces: tuple[str, ...]  # the ends (package@version/…/file) of the URLs folium links under this name


_FOLIUM_GH = "gh/python-visualization/folium"
_CDNJS = "ajax/libs"
_TIMEDIMENSION = "npm/leaflet-timedimension@1.1.1/dist"
_ISO8601 = "npm/iso8601-js-period@0.2.1/iso8601.min.js"
_JQUERY = "vendor/jquery/jquery.min.js"
_D3 = "vendor/d3/d3.min.js"

# Keyed by folium's asset name. The name alone is not enough: plugins reuse names for other files
# (BoatMarker links leaflet.boatmarker as "markerclusterjs"), so a name is only replaced when its
# URL ends with a path listed here (package, version and file; the hosts are folium's business and
# are not named in gridmap's code). A folium upgrade that changes a URL therefore fails loudly until the
# file is re-vendored in the version folium expects.
ASSETS: dict[str, Asset] = {
    # folium.Map
    "leaflet": Asset(
        "vendor/leaflet/leaflet.js",
        ("npm/leaflet@1.9.3/dist/leaflet.js",),
    ),
    "leaflet_css": Asset(
        "vendor/leaflet/leaflet.css",
        ("npm/leaflet@1.9.3/dist/leaflet.css",),
    ),
    # Popups, GeoJson(embed=False) and objects_to_stay_in_front call $ in folium's own templates.
    "jquery": Asset(_JQUERY, ("jquery-3.7.1.min.js",)),
    # No folium template uses Bootstrap 5; it would only restyle the page.
    "bootstrap": Asset(
        None, ("npm/bootstrap@5.2.2/dist/js/bootstrap.bundle.min.js",)
    ),
    "bootstrap_css": Asset(
        None, ("npm/bootstrap@5.2.2/dist/css/bootstrap.min.css",)
    ),
    "awesome_markers": Asset(
        "vendor/leaflet.awesome-markers/leaflet.awesome-markers.js",
        (f"{_CDNJS}/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.js",),
    ),
    "awesome_markers_css": Asset(
        "vendor/leaflet.awesome-markers/leaflet.awesome-markers.css",
        (f"{_CDNJS}/Leaflet.awesome-markers/2.0.2/leaflet.awesome-markers.css",),
    ),
    # folium.Icon's default prefix is "glyphicon"; prefix="fa" takes Font Awesome.
    "glyphicons_css": Asset(
        "vendor/bootstrap3-glyphicons/css/bootstrap-glyphicons.css",
        ("bootstrap/3.0.0/css/bootstrap-glyphicons.css",),
    ),
    "awesome_markers_font_css": Asset(
        "vendor/fontawesome-free/css/all.min.css",
        ("npm/@fortawesome/fontawesome-free@6.2.0/css/all.min.css",),
    ),
    "awesome_rotate_css": Asset(
        "vendor/folium/leaflet.awesome.rotate.css",
        (f"{_FOLIUM_GH}/folium/templates/leaflet.awesome.rotate.min.css",),
    ),
    # branca colormap legends (e.g. Choropleth's), added to the header while rendering.
    "d3": Asset(_D3, (f"{_CDNJS}/d3/3.5.5/d3.min.js",)),
    # plugins.HeatMap
    "leaflet-heat.js": Asset(
        "vendor/folium/leaflet_heat.min.js",
        (f"{_FOLIUM_GH}@main/folium/templates/leaflet_heat.min.js",),
    ),
    # plugins.MarkerCluster, plugins.FastMarkerCluster
    "markerclusterjs": Asset(
        "vendor/leaflet.markercluster/leaflet.markercluster.js",
        (f"{_CDNJS}/leaflet.markercluster/1.1.0/leaflet.markercluster.js",),
    ),
    "markerclustercss": Asset(
        "vendor/leaflet.markercluster/MarkerCluster.css",
        (f"{_CDNJS}/leaflet.markercluster/1.1.0/MarkerCluster.css",),
    ),
    "markerclusterdefaultcss": Asset(
        "vendor/leaflet.markercluster/MarkerCluster.Default.css",
        (f"{_CDNJS}/leaflet.markercluster/1.1.0/MarkerCluster.Default.css",),
    ),
    # plugins.Fullscreen
    "Control.Fullscreen.js": Asset(
        "vendor/leaflet.fullscreen/Control.FullScreen.js",
        ("npm/leaflet.fullscreen@3.0.0/Control.FullScreen.min.js",),
    ),
    "Control.FullScreen.css": Asset(
        "vendor/leaflet.fullscreen/Control.FullScreen.css",
        ("npm/leaflet.fullscreen@3.0.0/Control.FullScreen.css",),
    ),
    # plugins.MiniMap
    "Control_MiniMap_js": Asset(
        "vendor/leaflet-minimap/Control.MiniMap.min.js",
        (f"{_CDNJS}/leaflet-minimap/3.6.1/Control.MiniMap.js",),
    ),
    "Control_MiniMap_css": Asset(
        "vendor/leaflet-minimap/Control.MiniMap.min.css",
        (f"{_CDNJS}/leaflet-minimap/3.6.1/Control.MiniMap.css",),
    ),
    # plugins.MeasureControl
    "leaflet_measure_js": Asset(
        "vendor/leaflet-measure/leaflet-measure.min.js",
        ("gh/ljagis/leaflet-measure@2.1.7/dist/leaflet-measure.min.js",),
    ),
    "leaflet_measure_css": Asset(
        "vendor/leaflet-measure/leaflet-measure.css",
        ("gh/ljagis/leaflet-measure@2.1.7/dist/leaflet-measure.min.css",),
    ),
    # plugins.HeatMapWithTime
    "iso8601": Asset("vendor/iso8601-js-period/iso8601.js", (_ISO8601,)),
    "leaflet.timedimension.min.js": Asset(
        "vendor/leaflet-timedimension/leaflet.timedimension.min.js",
        (f"{_TIMEDIMENSION}/leaflet.timedimension.min.js",),
    ),
    "leaflet.timedimension.control.min.css": Asset(
        "vendor/leaflet-timedimension/leaflet.timedimension.control.css",
        (f"{_TIMEDIMENSION}/leaflet.timedimension.control.css",),
    ),
    "heatmap.min.js": Asset(
        "vendor/folium/pa7_hm.min.js", (f"{_FOLIUM_GH}/folium/templates/pa7_hm.min.js",)
    ),
    "leaflet-heatmap.js": Asset(
        "vendor/folium/pa7_leaflet_hm.min.js",
        (f"{_FOLIUM_GH}/folium/templates/pa7_leaflet_hm.min.js",),
    ),
    # plugins.TimestampedGeoJson, plugins.TimestampedWmsTileLayers
    "jquery3.7.1": Asset(_JQUERY, (f"{_CDNJS}/jquery/3.7.1/jquery.min.js",)),
    # Neither their templates nor Leaflet.TimeDimension 1.1.1 use jQuery UI or highlight.js.
    "jqueryui1.10.2": Asset(None, (f"{_CDNJS}/jqueryui/1.10.2/jquery-ui.min.js",)),
    "highlight.js_css": Asset(None, (f"{_CDNJS}/highlight.js/8.4/styles/default.min.css",)),
    "leaflet.timedimension": Asset(
        "vendor/leaflet-timedimension/leaflet.timedimension.min.js",
        (f"{_TIMEDIMENSION}/leaflet.timedimension.min.js",),
    ),
    "leaflet.timedimension_css": Asset(
        "vendor/leaflet-timedimension/leaflet.timedimension.control.css",
        (f"{_TIMEDIMENSION}/leaflet.timedimension.control.css",),
    ),
    "moment": Asset("vendor/moment/moment.min.js", (f"{_CDNJS}/moment.js/2.18.1/moment.min.js",)),
}

# folium asset name -> the vendored file (under gridmap/static/) served in its place.
MANIFEST: dict[str, str] = {
    name: asset.path for name, asset in ASSETS.items() if asset.path is not None
}

# Name under which localize_assets adds its header check to the page's Figure.
_HEADER_CHECK = "gridmap_local_assets"


def vendored_files() -> list[Path]:
    """The files MANIFEST names, as absolute paths, each once."""
    return sorted({STATIC_DIR / path for path in MANIFEST.values()})


def localize_assets(element: Element, static_url: StaticUrl) -> None:
    """Point every JS/CSS link of ``element`` and its descendants at gridmap's vendored copy.

    Raises UnknownAssetError for a link to another host that has no vendored copy. Links that
    are already local (relative or loopback) are kept as they are. The page must be rendered
    through its Figure (``m.get_root().render()``, ``m.save()``, ``m._repr_html_()``): links
    elements add while rendering are checked there.
    """
    for node in walk(element):
        if isinstance(node, JSCSSMixin):
            owner = type(node).__name__
            # For this element only: the class lists are shared by every map in the process.
            set_asset_links(node, _localized(node.default_js, static_url, owner),
                            _localized(node.default_css, static_url, owner))
    root = element.get_root()
    if isinstance(root, Figure):
        # Re-added so it stays the Figure's last child: it must run after every element
        # has put its links into the header.
        add_last(root, _LocalHeaderLinks(static_url), _HEADER_CHECK)


def is_external_url(url: str) -> bool:
    """True for an http(s) or protocol-relative URL whose host is not loopback."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:  # e.g. an unbalanced IPv6 bracket: treat as external, to be safe
        return True
    if parts.scheme.lower() not in ("http", "https", "") or not parts.netloc:
        return False  # relative, data:, mailto:, javascript:, #fragment
    return not _is_loopback(host or "")


_QUOTED_OR_BARE = r"""(?:\\?(["'])(.*?)\\?\1|([^\s"'\\>)]+))"""
_URL_PATTERNS = (
    # src=/href= attributes; quotes may be backslash-escaped inside JavaScript strings.
    re.compile(r"\b(?:src|href)\s*=\s*" + _QUOTED_OR_BARE, re.IGNORECASE),
    re.compile(r"\burl\(\s*" + _QUOTED_OR_BARE + r"\s*\)", re.IGNORECASE),
    re.compile(r"""@import\s+\\?(["'])(.*?)\\?\1()""", re.IGNORECASE),
)


def external_urls(html: str) -> list[str]:
    """Every URL in a src/href attribute, CSS url(...) or @import of ``html`` on another host.

    http(s) and protocol-relative (``//host/...``) URLs count unless the host is loopback;
    relative URLs and data: URIs do not. Each URL is listed once, in page order.
    """
    found: list[tuple[int, str]] = []
    for pattern in _URL_PATTERNS:
        for match in pattern.finditer(html):
            url = match.group(2) if match.group(1) else match.group(3)
            if url and is_external_url(url):
                found.append((match.start(), url))
    return list(dict.fromkeys(url for _, url in sorted(found)))


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _local_url(name: str, url: str, static_url: StaticUrl, owner: str) -> str | None:
    """The URL to link for folium asset ``name`` at ``url``; None when it is not needed."""
    asset = ASSETS.get(name)
    if not is_external_url(url) or (asset and asset.path and url == static_url(asset.path)):
        return url  # already local, or localized before with an absolute static_url
    fix = (
        "Vendor it with scripts/vendor-assets.sh and list it in ASSETS "
        "(gridmap/maps/assets.py), or do without it."
    )
    if asset is None:
        raise UnknownAssetError(
            f"{owner} links asset {name!r} from {url}; gridmap has no local copy, "
            f"so the map would need the internet. {fix}"
        )
    if not any(url == tail or url.endswith("/" + tail) for tail in asset.replaces):
        local = asset.path or "nothing (dropped)"
        raise UnknownAssetError(
            f"{owner} links asset {name!r} from {url}; gridmap serves {local} for that name, "
            f"in place of {', '.join(asset.replaces)}, which is not the same file. {fix}"
        )
    return None if asset.path is None else static_url(asset.path)


def _localized(
    links: list[tuple[str, str]], static_url: StaticUrl, owner: str
) -> list[tuple[str, str]]:
    localized = []
    for name, url in links:
        local = _local_url(name, url, static_url, owner)
        if local is not None:
            localized.append((name, local))
    return localized


class _LocalHeaderLinks(Element):
    """Localizes the links in the page header once every element has rendered.

    Catches links added outside ``default_js``/``default_css`` (branca's colormap adds d3 in
    ``render``) or by elements attached after ``localize_assets`` ran, and drops a second link
    to a file already linked (folium's "jquery" and "jquery3.7.1" are the same copy).
    """

    def __init__(self, static_url: StaticUrl) -> None:
        super().__init__()
        self._name = "LocalHeaderLinks"
        self.static_url = static_url

    def render(self, **kwargs) -> str:
        header = self.get_root().header
        linked: set[str] = set()
        for name, child in children(header):
            if not isinstance(child, Link):
                continue
            url = _local_url(name, child.url, self.static_url, "the page header")
            if url is None or url in linked:
                remove_child(header, name)
            else:
                if url != child.url:
                    replace_child(header, name, type(child)(url))
                linked.add(url)
        return ""
