"""The folium map of a map page: basemap, scale bar, the server-aggregated heatmap, the marker cluster.

The page's data layers (cell choropleth, boundaries, markers, coverage) are drawn by
``gridmap/static/map-ui.js`` from the embedded or fetched display geometry and map data, so the
same code draws a 74-cell test district and a 13,000-cell city. folium gives the map itself, its
scale bar and tile layers, the first heatmap (server-aggregated points, see
:func:`gridmap.maps.data.heat_points`) and the MarkerCluster group the issue markers go into;
every asset is the app's own (:func:`gridmap.maps.assets.localize_assets`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import folium
from branca.element import MacroElement
from folium.elements import JSCSSMixin
from folium.plugins import HeatMap, MarkerCluster
from folium.template import Template

from gridmap.maps.assets import localize_assets
from gridmap.maps.tiles import TileSource

#: Heatmap look (Leaflet.heat options): radius and blur in pixels.
HEAT_OPTIONS = {"radius": 12, "blur": 14, "min_opacity": 0.05, "max_zoom": 16}
MAX_ZOOM = 19


@dataclass(frozen=True)
class MapParts:
    """The pieces of a rendered folium map to place in a page template, and its JavaScript names."""

    header: str
    body: str
    script: str
    names: dict[str, Any] = field(default_factory=dict)


def render_map(
    bounds: tuple[float, float, float, float],
    *,
    static_url: Callable[[str], str],
    tiles: Sequence[TileSource] = (),
    heat_points: Sequence[Sequence[float]] = (),
    translate: Callable[[str], str] = lambda s: s,
    script_nonce: str | None = None,
) -> MapParts:
    """Render the map fitted to ``bounds`` (minx, miny, maxx, maxy in display lon/lat).

    ``script_nonce`` goes on the inline scripts of the header; the page puts the same nonce on the
    ``<script>`` element it writes around ``script`` (see :func:`map_parts`).
    """
    minx, miny, maxx, maxy = bounds
    # maxZoom as a map option: without tiles nothing else sets it, and MarkerCluster needs it.
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], tiles=None, control_scale=True,
                   zoom_control=True, zoom_start=12, maxZoom=MAX_ZOOM)
    tile_names = []
    for source in tiles:
        layer = folium.TileLayer(source.url, attr=source.attribution, name=translate(source.name),
                                 subdomains=source.subdomains, max_zoom=MAX_ZOOM,
                                 max_native_zoom=source.max_native_zoom, overlay=len(tile_names) > 0)
        layer.add_to(m)
        tile_names.append(layer.get_name())
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    names: dict[str, Any] = {"map": m.get_name(), "tiles": tile_names, "heat": None}
    if heat_points:
        heat = HeatMap([list(p) for p in heat_points], control=False, **HEAT_OPTIONS)
        heat.add_to(m)
        names["heat"] = heat.get_name()
    else:
        _HeatMapAssets().add_to(m)  # the page draws the heatmap once a filter finds issues
    cluster = MarkerCluster(control=False, options={"maxClusterRadius": 45, "disableClusteringAtZoom": 19,
                                                    "chunkedLoading": True})
    cluster.add_to(m)
    names["cluster"] = cluster.get_name()

    localize_assets(m, static_url)
    return map_parts(m, names, script_nonce)


def map_parts(m: folium.Map, names: dict[str, Any], script_nonce: str | None = None) -> MapParts:
    """Render a folium map into the parts a page places; ``script_nonce`` on the header's inline scripts.

    The header is folium's own markup (asset links, style blocks, its global switches script);
    every drawn thing, and so every piece of data, is in ``script``, which the page wraps in a
    ``<script>`` element carrying the nonce. The body gets no nonce: nothing in it is ours to vouch for.
    """
    figure = m.get_root()
    figure.render()
    header = figure.header.render()
    if script_nonce is not None:
        if not _NONCE.fullmatch(script_nonce):
            raise ValueError(f"a CSP nonce is base64 characters, got {script_nonce!r}")
        header = header.replace("<script>", f'<script nonce="{script_nonce}">')
    return MapParts(header=header, body=figure.html.render(), script=figure.script.render(), names=names)


_NONCE = re.compile(r"[A-Za-z0-9+/_=-]+")


class _HeatMapAssets(JSCSSMixin, MacroElement):
    """Links Leaflet.heat (as HeatMap does) without drawing anything."""

    default_js = HeatMap.default_js
    _template = Template("")


def dumps(value: Any) -> str:
    """Compact JSON."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
