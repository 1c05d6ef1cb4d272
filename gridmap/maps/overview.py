"""The overview map: cells as a choropleth of issue counts, plus a heatmap of issue locations.

Rendered server-side with folium from aggregates; every asset is the app's own (see
:mod:`gridmap.maps.assets`).  The full map UI (drill-down, filters, coverage) is issue #4.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import branca.colormap as cm
import folium
import numpy as np
from folium.plugins import HeatMap

from gridmap.layers import LayerSet, feature_collection
from gridmap.maps.assets import localize_assets

TILES = {
    "none": None,
    "osm": ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "© OpenStreetMap contributors"),
}
METRICS = ("total", "open", "overdue", "closed")
METRIC_LABELS = {"total": "全部问题 all issues", "open": "未结 open", "overdue": "超期 overdue", "closed": "已结 closed"}


@dataclass(frozen=True)
class MapParts:
    """The pieces of a rendered folium map to place in a page template."""

    header: str
    body: str
    script: str
    legend: tuple[tuple[str, str], ...] = ()  # (colour, label) per class, for the page's legend


def overview_map(
    layers: LayerSet,
    cell_counts: Sequence[dict[str, Any]],
    heat_points: Sequence[Sequence[float]],
    *,
    static_url: Callable[[str], str],
    metric: str = "total",
    tiles: str = "none",
) -> MapParts:
    """Render the overview map of a layer set with per-cell counts and heat points."""
    counts = {row["code"]: row for row in cell_counts}
    minx, miny, maxx, maxy = layers.districts.total_bounds
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], tiles=None, control_scale=True,
                   zoom_control=True, max_zoom=19)
    if TILES.get(tiles):
        url, attribution = TILES[tiles]
        folium.TileLayer(url, attr=attribution, name="底图 basemap").add_to(m)
    m.fit_bounds([[miny, minx], [maxy, maxx]])

    cells = feature_collection(layers.cells, "cells")
    values = []
    for feature in cells["features"]:
        row = counts.get(feature["properties"]["code"], {})
        for key in METRICS:
            feature["properties"][key] = int(row.get(key, 0))
        values.append(feature["properties"][metric])
    colormap = quantile_colormap(values, caption=f"每网格{METRIC_LABELS[metric]} per cell")

    def style(feature: dict[str, Any]) -> dict[str, Any]:
        value = feature["properties"][metric]
        return {
            "fillColor": colormap(value) if value else "#f7f7f7",
            "fillOpacity": 0.65 if value else 0.15,
            "color": "#777777",
            "weight": 0.3,
        }

    folium.GeoJson(
        cells,
        name="网格 cells",
        style_function=style,
        highlight_function=lambda _: {"weight": 2, "color": "#000000"},
        tooltip=folium.GeoJsonTooltip(
            fields=["code", "name", *METRICS],
            aliases=["网格编码", "名称", "全部", "未结", "超期", "已结"],
            sticky=False,
        ),
    ).add_to(m)
    folium.GeoJson(
        feature_collection(layers.communities, "communities"),
        name="社区 communities",
        style_function=lambda _: {"fill": False, "color": "#3b4cc0", "weight": 1.2},
        tooltip=folium.GeoJsonTooltip(fields=["code", "name"], aliases=["社区编码", "社区"]),
    ).add_to(m)
    folium.GeoJson(
        feature_collection(layers.streets, "streets"),
        name="街道 streets",
        style_function=lambda _: {"fill": False, "color": "#222222", "weight": 2.5},
    ).add_to(m)
    if heat_points:
        HeatMap([list(p) for p in heat_points], name="热力图 heatmap", radius=10, blur=12, min_opacity=0.05,
                max_zoom=14).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)

    localize_assets(m, static_url)
    figure = m.get_root()
    figure.render()
    return MapParts(header=figure.header.render(), body=figure.html.render(), script=figure.script.render(),
                    legend=legend_classes(colormap))


#: Sequential colours (ColorBrewer YlOrRd) for up to six classes.
CLASS_COLOURS = ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026")


def quantile_colormap(values: Sequence[int], *, caption: str) -> cm.StepColormap:
    """Classes at quantiles of the non-zero values, so a few extreme cells do not wash out the rest."""
    positive = np.array([v for v in values if v > 0], dtype=float)
    if positive.size == 0:
        return cm.StepColormap([CLASS_COLOURS[0]], index=[0, 1], vmin=0, vmax=1, caption=caption)
    breaks = np.unique(np.quantile(positive, [0, 0.2, 0.4, 0.6, 0.8, 0.95, 1.0]).round())
    if breaks.size == 1:
        breaks = np.array([breaks[0], breaks[0] + 1])
    colours = list(CLASS_COLOURS[-(breaks.size - 1):]) if breaks.size - 1 < len(CLASS_COLOURS) else list(CLASS_COLOURS)
    return cm.StepColormap(colours, index=breaks.tolist(), vmin=float(breaks[0]), vmax=float(breaks[-1]), caption=caption)


def legend_classes(colormap: cm.StepColormap) -> tuple[tuple[str, str], ...]:
    """(colour, "low–high") for each class of a step colormap, plus the colour of zero."""
    index = [int(v) for v in colormap.index]
    classes = [("#f7f7f7", "0")]
    for i in range(len(index) - 1):
        low = index[i] if i == 0 else index[i] + 1
        high = index[i + 1]
        label = f"{low}" if low >= high else f"{low}–{high}"
        classes.append((colormap.rgb_hex_str(index[i]), label))
    return tuple(classes)


def cells_summary(cell_counts: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Totals over all cells, for the page's headline figures."""
    return {key: sum(int(row.get(key, 0)) for row in cell_counts) for key in METRICS}


def dumps(value: Any) -> str:
    """Compact JSON for embedding."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
