"""The dispatcher's queue on a small map: street outlines and one dot per issue, coloured by its reason.

The queue itself (which issues, why, in which order) is :mod:`gridmap.issues.queue`. Knows no web framework.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

import folium
import shapely
from shapely.geometry import mapping

from gridmap.geo.layers import LayerSet
from gridmap.issues.queue import QueueEntry
from gridmap.maps.assets import localize_assets
from gridmap.maps.display import shift_geometries, shift_points
from gridmap.maps.overview import MapParts, map_parts
from gridmap.maps.tiles import TileSource

#: Marker colours by the most pressing reason (gridmap.issues.queue.REASONS).
REASON_COLOURS = {"overdue": "#c62828", "warning": "#ef6c00", "to_dispatch": "#1565c0", "to_register": "#6a1b9a"}


def queue_map(entries: Sequence[QueueEntry], layers: LayerSet, *, static_url: Callable[[str], str],
              tiles: Sequence[TileSource] = (), shift: str = "none",
              label: Callable[[QueueEntry], str] = lambda e: f"#{e.issue.id}",
              translate: Callable[[str], str] = lambda s: s, script_nonce: str | None = None) -> MapParts:
    """A small map of the queue: street outlines and one dot per issue, coloured by its reason."""
    minx, miny, maxx, maxy = layers.districts.total_bounds
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], tiles=None, control_scale=True,
                   zoom_start=12, maxZoom=19)
    for source in tiles:
        folium.TileLayer(source.url, attr=source.attribution, name=translate(source.name), subdomains=source.subdomains,
                         max_zoom=19, max_native_zoom=source.max_native_zoom).add_to(m)
    streets = layers.streets
    outlines = shift_geometries(shapely.simplify(streets.geometry.values, 0.0002), shift)
    folium.GeoJson(
        {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"name": name}, "geometry": mapping(geometry)}
            for name, geometry in zip(streets["name"], outlines)]},
        name=translate("街道边界"),
        style_function=lambda _: {"fill": False, "color": "#555555", "weight": 1.5},
        tooltip=folium.GeoJsonTooltip(fields=["name"], labels=False),
    ).add_to(m)
    if entries:
        lon, lat = shift_points([e.issue.lon for e in entries], [e.issue.lat for e in entries], shift)
        for entry, x, y in zip(entries, lon, lat):
            folium.CircleMarker(
                [float(y), float(x)], radius=7, weight=2, color="#ffffff", fill=True, fill_opacity=0.9,
                fill_color=REASON_COLOURS[entry.reason],
                tooltip=_tooltip_text(label(entry)),
            ).add_to(m)
        pad = 0.002
        m.fit_bounds([
            [float(lat.min()) - pad, float(lon.min()) - pad],
            [float(lat.max()) + pad, float(lon.max()) + pad],
        ])
    else:
        m.fit_bounds([[miny, minx], [maxy, maxx]])
    localize_assets(m, static_url)
    return map_parts(m, {"map": m.get_name()}, script_nonce)


def _tooltip_text(text: str) -> str:
    """Text for a folium tooltip, which folium writes into a JavaScript template literal as HTML."""
    return html.escape(text).replace("`", "&#96;").replace("$", "&#36;").replace("\\", "&#92;")
