"""Basemap tiles, chosen by the ``tiles`` setting: none (the default, offline), osm, tianditu, amap.

AMap (高德) draws its tiles in GCJ-02, so with ``amap`` every overlay is shifted from WGS84 to
GCJ-02 for display (:mod:`gridmap.maps.display`); Tianditu uses CGCS2000, within centimetres of
WGS84 at map scale, so nothing moves. The data itself always stays WGS84.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from gridmap.errors import InvalidInput
from gridmap.labels import N_

TILE_CHOICES: tuple[str, ...] = ("none", "osm", "tianditu", "amap")


@dataclass(frozen=True)
class TileSource:
    """One tile layer: URL template (Leaflet's {s}/{z}/{x}/{y}), attribution, subdomains, name."""

    name: str
    url: str
    attribution: str
    subdomains: str = "abc"
    max_native_zoom: int = 18


_TIANDITU = (
    "https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER={layer}"
    "&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"
)


def tile_sources(tiles: str | None, tianditu_key: str | None = None) -> list[TileSource]:
    """The tile layers of a ``tiles`` setting, bottom first; InvalidInput for an unknown one."""
    choice = (tiles or "none").strip().lower()
    if choice == "none":
        return []
    if choice == "osm":
        return [TileSource(N_("OpenStreetMap 底图"), "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                           "© OpenStreetMap contributors", subdomains="abc", max_native_zoom=19)]
    if choice == "tianditu":
        key = (tianditu_key or "").strip()
        if not key:
            raise InvalidInput("tiles=tianditu needs a Tianditu browser key: set GRIDMAP_TIANDITU_KEY (tianditu_key)")
        if not key.isalnum():
            raise InvalidInput("tianditu_key must be letters and digits only (the tk of your Tianditu application)")
        return [
            TileSource(N_("天地图 底图"), _TIANDITU.format(layer="vec", key=key), "© 天地图 Tianditu",
                       subdomains="01234567"),
            TileSource(N_("天地图 注记"), _TIANDITU.format(layer="cva", key=key), "© 天地图 Tianditu",
                       subdomains="01234567"),
        ]
    if choice == "amap":
        return [TileSource(N_("高德 底图"),
                           "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}",
                           "© 高德地图 AutoNavi", subdomains="1234")]
    raise InvalidInput(f"unknown tiles setting {tiles!r}; use one of {', '.join(TILE_CHOICES)}")


def display_shift(tiles: str | None) -> str:
    """How overlays must be shifted to sit on the basemap: ``gcj02`` on AMap, else ``none``."""
    return "gcj02" if (tiles or "").strip().lower() == "amap" else "none"


def tile_origins(sources: Sequence[TileSource]) -> tuple[str, ...]:
    """The origins (``https://host``) browsers fetch the tiles of ``sources`` from, each once, in order."""
    origins: list[str] = []
    for source in sources:
        hosts = [source.url.replace("{s}", s) for s in source.subdomains] if "{s}" in source.url else [source.url]
        for url in hosts:
            parts = urlsplit(url)
            origins.append(f"{parts.scheme}://{parts.netloc}")
    return tuple(dict.fromkeys(origins))
