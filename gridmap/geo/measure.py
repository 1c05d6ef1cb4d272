"""Measuring areas: geodesic areas on the WGS84 ellipsoid and the metric CRS a layer set is measured in.

The reader, the validator and the grid builder all measure; keeping the measures here, below
all three, lets each of them import it without importing one another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyproj

from gridmap.geo.crs import WGS84, metric_crs_for

if TYPE_CHECKING:
    import geopandas as gpd
    import shapely

_GEOD = pyproj.Geod(ellps="WGS84")


def geodesic_areas(geometries: Sequence[shapely.Geometry] | np.ndarray) -> np.ndarray:
    """Geodesic area in m² of lon/lat geometries on the WGS84 ellipsoid (NaN where it cannot be measured)."""
    areas = np.empty(len(geometries))
    for i, geom in enumerate(geometries):
        try:
            area, _ = _GEOD.geometry_area_perimeter(geom)
        except Exception:  # invalid or out-of-range geometry: validation reports it
            area = float("nan")
        areas[i] = abs(area)
    return areas


def choose_metric_crs(frame: gpd.GeoDataFrame) -> pyproj.CRS:
    """The UTM zone CRS of the frame's centre, for building and measuring in metres."""
    minx, miny, maxx, maxy = frame.to_crs(WGS84).total_bounds
    return metric_crs_for((minx + maxx) / 2, (miny + maxy) / 2)
