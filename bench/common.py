"""Synthetic city for benchmarks: Voronoi communities in a square around Sanya, issue points.

Everything is built in the UTM zone EPSG:32649 (metres) and converted to WGS84 lon/lat, the
way real layers are stored. All randomness comes from one seed, so a run is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pyproj
import shapely

METRIC_CRS = "EPSG:32649"
WGS84 = "EPSG:4326"
CENTRE_LONLAT = (109.5, 18.3)
DISTRICT_CODE = "460203"  # 吉阳区, Sanya (GB/T 2260)
STREET_ZONES = (2, 5)  # the square is cut into 2 columns x 5 rows of streets


@dataclass(frozen=True)
class City:
    """A synthetic city: its communities (WGS84) and the square it covers (metres, EPSG:32649)."""

    communities: gpd.GeoDataFrame
    square: tuple[float, float, float, float]


def _to_wgs84(geometries: np.ndarray) -> np.ndarray:
    transformer = pyproj.Transformer.from_crs(METRIC_CRS, WGS84, always_xy=True)
    return shapely.transform(geometries, lambda x, y: transformer.transform(x, y), interleaved=False)


def build_city(*, communities: int = 300, size_m: float = 10_000.0, seed: int = 0) -> City:
    """A size_m x size_m square cut into Voronoi communities coded district+street+community."""
    rng = np.random.default_rng(seed)
    to_metric = pyproj.Transformer.from_crs(WGS84, METRIC_CRS, always_xy=True)
    cx, cy = to_metric.transform(*CENTRE_LONLAT)
    half = size_m / 2
    square = (cx - half, cy - half, cx + half, cy + half)
    square_geom = shapely.box(*square)

    seeds = np.column_stack(
        [rng.uniform(square[0], square[2], communities), rng.uniform(square[1], square[3], communities)]
    )
    cells = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=square_geom, ordered=True)
    polygons = shapely.intersection(np.asarray(shapely.get_parts(cells)), square_geom)

    # Streets are zones of the square; communities are numbered north→south, west→east inside one.
    cols, rows = STREET_ZONES
    zone_col = np.minimum(((seeds[:, 0] - square[0]) / size_m * cols).astype(int), cols - 1)
    zone_row = np.minimum(((square[3] - seeds[:, 1]) / size_m * rows).astype(int), rows - 1)
    street = zone_row * cols + zone_col + 1
    order = np.lexsort((seeds[:, 0], -seeds[:, 1], street))
    codes = np.empty(communities, dtype=object)
    names = np.empty(communities, dtype=object)
    seq_in_street: dict[int, int] = {}
    for i in order:
        s = int(street[i])
        seq_in_street[s] = seq_in_street.get(s, 0) + 1
        codes[i] = f"{DISTRICT_CODE}{s:03d}{seq_in_street[s]:03d}"
        names[i] = f"第{s}街道第{seq_in_street[s]}社区"

    frame = gpd.GeoDataFrame(
        {"code": codes, "name": names}, geometry=_to_wgs84(polygons), crs=WGS84
    )
    return City(communities=frame.sort_values("code", ignore_index=True), square=square)


def issue_points(
    city: City, n: int, *, seed: int = 0, hotspots: int = 25, hotspot_share: float = 0.4
) -> tuple[np.ndarray, np.ndarray]:
    """n lon/lat points: uniform over the square plus Gaussian hotspots (some fall outside)."""
    rng = np.random.default_rng(seed + 1)
    x0, y0, x1, y1 = city.square
    n_hot = int(n * hotspot_share)
    n_uniform = n - n_hot
    centres = np.column_stack([rng.uniform(x0, x1, hotspots), rng.uniform(y0, y1, hotspots)])
    spread = rng.uniform(80.0, 500.0, hotspots)
    which = rng.integers(0, hotspots, n_hot)
    x = np.concatenate([rng.uniform(x0, x1, n_uniform), centres[which, 0] + rng.normal(0, spread[which])])
    y = np.concatenate([rng.uniform(y0, y1, n_uniform), centres[which, 1] + rng.normal(0, spread[which])])
    shuffle = rng.permutation(n)
    transformer = pyproj.Transformer.from_crs(METRIC_CRS, WGS84, always_xy=True)
    lon, lat = transformer.transform(x[shuffle], y[shuffle])
    return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
