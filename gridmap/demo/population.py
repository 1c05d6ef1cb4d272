"""The demo's synthetic population surface: where people live in and around Tianya, and where the sea is.

Dense in the city (河西 between 三亚湾 and 三亚河, and the 三亚湾 coast), smaller town centres, thin
in the hills, none at sea. The coastline used for "none at sea" is a rough hand-drawn polygon
(a few hundred metres off in places): good enough to keep synthetic people and issues on land.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely


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
SEA = shapely.Polygon(
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
shapely.prepare(SEA)
KM_PER_DEG_LAT = 110.57
KM_PER_DEG_LON = 111.32 * np.cos(np.radians(18.3))


def is_sea(lon, lat) -> np.ndarray:
    """True where a WGS84 point lies in the (roughly drawn) sea off Tianya."""
    return shapely.contains_xy(SEA, np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))


def population_density(lon, lat) -> np.ndarray:
    """The synthetic population surface at WGS84 points (relative units; 0 at sea)."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    density = np.full(np.broadcast(lon, lat).shape, RURAL_DENSITY)
    for place in SETTLEMENTS:
        dx = (lon - place.lon) * KM_PER_DEG_LON
        dy = (lat - place.lat) * KM_PER_DEG_LAT
        density = density + place.weight * np.exp(-(dx * dx + dy * dy) / (2 * place.sigma_km**2))
    return np.where(is_sea(lon, lat), 0.0, density)
