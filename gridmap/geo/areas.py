"""The active layer set in memory: locate points into cells and their community/street/district."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gridmap.errors import OutsideCells
from gridmap.geo.crs import InputCRS, check_lonlat, to_wgs84
from gridmap.geo.layers import LayerSet
from gridmap.geo.locator import CellLocator
from gridmap.geo.validate import load_layer_set


@dataclass(frozen=True)
class Location:
    """Where a point lies: WGS84 lon/lat and the codes of its cell and the areas above it."""

    lon: float
    lat: float
    cell: str
    community: str
    street: str
    district: str

    def as_dict(self) -> dict[str, object]:
        return {
            "lon": self.lon,
            "lat": self.lat,
            "cell": self.cell,
            "community": self.community,
            "street": self.street,
            "district": self.district,
        }


class AreaIndex:
    """A layer set with its cell locator and, per cell, the codes of its ancestors."""

    def __init__(self, layers: LayerSet) -> None:
        self.layers = layers
        self.locator = CellLocator.from_frame(layers.cells)
        cell_codes = layers.cells["code"].to_numpy(dtype=object)
        ancestors = [layers.ancestors(code) for code in cell_codes]
        self.cell_codes = cell_codes
        self.community_codes = np.array([a["community"] for a in ancestors], dtype=object)
        self.street_codes = np.array([a["street"] for a in ancestors], dtype=object)
        self.district_codes = np.array([a["district"] for a in ancestors], dtype=object)

    @classmethod
    def from_folder(cls, folder: Path | str) -> AreaIndex:
        """Load, validate and index the layer set in ``folder``."""
        return cls(load_layer_set(folder))

    def locate_indices(self, lon, lat, crs: InputCRS | str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(wgs84 lon, wgs84 lat, cell index or -1) for coordinate arrays in ``crs``."""
        lon, lat = to_wgs84(np.atleast_1d(lon), np.atleast_1d(lat), crs)
        return lon, lat, self.locator.locate_indices(lon, lat)

    def location_at(self, index: int, lon: float, lat: float) -> Location:
        """The Location of a point already located into cell ``index``."""
        return Location(
            lon=round(float(lon), 7),
            lat=round(float(lat), 7),
            cell=self.cell_codes[index],
            community=self.community_codes[index],
            street=self.street_codes[index],
            district=self.district_codes[index],
        )

    def locate(self, lon: float, lat: float, crs: InputCRS | str | None = None) -> Location:
        """Locate one point; raise OutsideCells when it lies outside every cell."""
        x, y, index = self.locate_indices(lon, lat, crs)
        check_lonlat(x, y)
        if index[0] < 0:
            raise OutsideCells(
                f"({float(x[0]):.6f}, {float(y[0]):.6f}) lies outside every grid cell of the layer set; "
                "check the coordinates, their order (lon first) and their CRS (WGS84 unless --crs/crs says otherwise)"
            )
        return self.location_at(int(index[0]), x[0], y[0])
