"""Where the demo's issues happen: cells weighted by land and population, hotspots, roads.

A cell is drawn by its land area times the population surface (raised to a category's
concentration); some categories gather around hotspots (a market, a building site …). Points
are drawn inside their cell and kept off the sea.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import shapely

from gridmap.demo.population import KM_PER_DEG_LAT, KM_PER_DEG_LON, SEA, is_sea, population_density
from gridmap.errors import InvalidInput
from gridmap.geo.layers import COORDINATE_DECIMALS, LayerSet


@dataclass(frozen=True)
class Hotspot:
    """A place that draws a share of some categories' issues (a market, a building site …)."""

    landmark: str
    road: str | None  # the road of its addresses; None in a village
    lon: float
    lat: float
    sigma_m: float
    shares: dict[str, float]


HOTSPOTS: tuple[Hotspot, ...] = (
    Hotspot("第一市场", "新建街", 109.503, 18.252, 150,
            {"E0501": 0.30, "E0504": 0.25, "E0102": 0.06, "E0506": 0.12, "E0507": 0.08}),
    Hotspot("解放路步行街", "解放路", 109.505, 18.246, 180,
            {"E0505": 0.25, "E0506": 0.15, "E0504": 0.12, "E0201": 0.12}),
    Hotspot("三亚湾路椰梦长廊", "三亚湾路", 109.472, 18.281, 300,
            {"E0501": 0.18, "E0204": 0.35, "E0505": 0.08, "C0301": 0.10}),
    Hotspot("金鸡岭夜市", "金鸡岭路", 109.4965, 18.2765, 120,
            {"E0504": 0.10, "E0102": 0.05, "E0301": 0.06}),
    Hotspot("凤凰片区在建工地", "凤凰路", 109.452, 18.318, 220,
            {"E0302": 0.45, "E0301": 0.20, "E0304": 0.40, "E0103": 0.08, "E0701": 0.15}),
    Hotspot("集市", None, 109.285, 18.318, 130,
            {"E0102": 0.08, "E0103": 0.20, "E0507": 0.06}),
)

ROADS = (
    "解放路", "河西路", "新风街", "三亚湾路", "凤凰路", "迎宾路", "光明街", "胜利路", "金鸡岭路", "月川路",
    "临春河路", "港门路", "海虹路", "商品街", "育秀路", "天涯路", "榆亚路", "建港路", "海坡路", "椰林路",
    "白鹭路", "南海路", "新建街", "同心路", "鸿港路", "友谊路", "春光路", "水居巷", "羊栏路", "机场路",
    "椰海路", "红沙路", "丹州路", "金鸡湾路", "榆港路", "椰梦路", "海润路", "迎宾支路", "凤凰岭路", "落笔洞路",
)

class Places:
    """Land, weights and naming of the layer set's cells, for placing synthetic issues."""

    def __init__(self, layers: LayerSet, seed: int) -> None:
        cells = layers.cells
        self.geometries = np.asarray(cells.geometry.values, dtype=object)
        self.codes = cells["code"].to_numpy(dtype=object)
        self.tree = shapely.STRtree(self.geometries)
        land = shapely.difference(self.geometries, SEA)
        at_sea = shapely.is_empty(land)
        self.land = np.where(at_sea, self.geometries, land)  # a cell all at sea weighs 0: never drawn
        self.land_area = np.where(at_sea, 0.0, shapely.area(land))
        inside = shapely.point_on_surface(self.land)
        self.density = population_density(shapely.get_x(inside), shapely.get_y(inside))
        self.avoid_sea = True
        if not (self.land_area * self.density).sum() > 0:  # a layer set far from the demo surface: spread by area
            self.avoid_sea = False
            self.land = self.geometries
            self.land_area = shapely.area(self.geometries)
            self.density = np.ones(len(self.geometries))
        shapely.prepare(self.geometries)
        names = dict(zip(layers.communities["code"], layers.communities["name"]))
        street_names = dict(zip(layers.streets["code"], layers.streets["name"]))
        district_names = dict(zip(layers.districts["code"], layers.districts["name"]))
        self.community, self.street, self.district = {}, {}, {}
        for code in self.codes:
            above = layers.ancestors(code)
            self.community[code] = names.get(above["community"]) or ""
            self.street[code] = street_names.get(above["street"]) or ""
            self.district[code] = district_names.get(above["district"]) or ""
        self.roads: dict[str, tuple[str, ...]] = {}
        self.seed = seed

    def weights(self, concentration: float) -> np.ndarray:
        weight = self.land_area * self.density**concentration
        return weight / weight.sum()

    def roads_of(self, community: str) -> tuple[str, ...]:
        if community not in self.roads:
            local = np.random.default_rng([self.seed, zlib.crc32(community.encode("utf-8"))])
            self.roads[community] = tuple(ROADS[i] for i in local.choice(len(ROADS), size=3, replace=False))
        return self.roads[community]

    def locate(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Index of a cell covering each point, -1 where none does."""
        found = np.full(len(lon), -1)
        points, cells = self.tree.query(shapely.points(lon, lat), predicate="covered_by")
        found[points[::-1]] = cells[::-1]  # the first match wins
        return found


def place_points(
    places: Places, target: np.ndarray, hotspot: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lon, lat (6 decimals) and cell index of each issue: in its target cell, or near its hotspot."""
    n = len(target)
    lon, lat, cell = np.zeros(n), np.zeros(n), np.full(n, -1)
    pending = np.arange(n)
    for _ in range(2000):  # a thin strip of coast fills little of its bounding box
        if not len(pending):
            break
        x, y = np.zeros(len(pending)), np.zeros(len(pending))
        background = hotspot[pending] < 0
        chosen = target[pending[background]]
        bounds = shapely.bounds(places.land[chosen]) if len(chosen) else np.zeros((0, 4))
        x[background] = rng.uniform(bounds[:, 0], bounds[:, 2])
        y[background] = rng.uniform(bounds[:, 1], bounds[:, 3])
        spots = [HOTSPOTS[h] for h in hotspot[pending[~background]]]
        spread_lon = [s.sigma_m / 1000 / KM_PER_DEG_LON for s in spots]
        spread_lat = [s.sigma_m / 1000 / KM_PER_DEG_LAT for s in spots]
        x[~background] = [s.lon for s in spots] + rng.normal(0, 1, len(spots)) * spread_lon
        y[~background] = [s.lat for s in spots] + rng.normal(0, 1, len(spots)) * spread_lat
        x, y = np.round(x, COORDINATE_DECIMALS), np.round(y, COORDINATE_DECIMALS)
        found = places.locate(x, y)
        ok = (found >= 0) & ~(places.avoid_sea & is_sea(x, y))
        ok[background] &= found[background] == chosen
        done = pending[ok]
        lon[done], lat[done], cell[done] = x[ok], y[ok], found[ok]
        pending = pending[~ok]
    if len(pending):
        raise InvalidInput(f"could not place {len(pending)} demo issues inside their cells")
    return lon, lat, cell
