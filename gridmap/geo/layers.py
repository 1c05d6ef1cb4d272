"""Layer sets: the area hierarchy (district > street > community > cell) as GeoJSON files.

A layer set is a folder holding ``districts.geojson``, ``streets.geojson``,
``communities.geojson`` and ``cells.geojson``: RFC 7946 FeatureCollections in WGS84 lon/lat,
coordinates rounded to 6 decimals (about 0.1 m), each feature with the properties ``code``,
``name``, ``parent_code`` (absent for districts) and ``area_m2`` (geodesic area on WGS84).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from shapely.geometry import mapping, shape

from gridmap.errors import InvalidInput
from gridmap.geo.crs import WGS84, InputCRS, parse_crs, to_wgs84
from gridmap.geo.measure import geodesic_areas
from gridmap.json_text import parse_json

LEVELS: tuple[str, ...] = ("districts", "streets", "communities", "cells")
#: Code length of each level: 6-digit district (GB/T 2260) + 3 street + 3 community + 3 cell.
CODE_LENGTHS: dict[str, int] = {"districts": 6, "streets": 9, "communities": 12, "cells": 15}
PARENT_LEVEL: dict[str, str | None] = {
    "districts": None,
    "streets": "districts",
    "communities": "streets",
    "cells": "communities",
}
COORDINATE_DECIMALS = 6


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a layer set, named by file and feature."""

    level: str
    feature: str  # the feature's code, or "#N" (1-based position) when it has no usable code
    message: str

    def __str__(self) -> str:
        return f"{self.level}.geojson: {self.feature}: {self.message}"


@dataclass
class LayerSet:
    """The four levels of a layer set as GeoDataFrames (WGS84) with code, name, parent_code, area_m2."""

    districts: gpd.GeoDataFrame
    streets: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    cells: gpd.GeoDataFrame
    source: Path | None = None
    _ancestors: dict[str, dict[str, str]] | None = field(default=None, repr=False)

    def level(self, name: str) -> gpd.GeoDataFrame:
        """The GeoDataFrame of one level by its name (``districts`` … ``cells``)."""
        if name not in LEVELS:
            raise InvalidInput(f"unknown level {name!r}; use one of {', '.join(LEVELS)}")
        return getattr(self, name)

    def ancestors(self, cell_code: str) -> dict[str, str]:
        """The codes above a cell: {"cell", "community", "street", "district"}."""
        if self._ancestors is None:
            self._ancestors = self._build_ancestors()
        return self._ancestors[cell_code]

    def _build_ancestors(self) -> dict[str, dict[str, str]]:
        community_parent = dict(zip(self.communities["code"], self.communities["parent_code"]))
        street_parent = dict(zip(self.streets["code"], self.streets["parent_code"]))
        result = {}
        for cell, community in zip(self.cells["code"], self.cells["parent_code"]):
            street = community_parent.get(community)
            result[cell] = {
                "cell": cell,
                "community": community,
                "street": street,
                "district": street_parent.get(street),
            }
        return result

    @cached_property
    def cell_centroids(self) -> dict[str, tuple[float, float]]:
        """Each cell's centroid (lon, lat) by code, computed once per layer set."""
        points = shapely.centroid(np.asarray(self.cells.geometry.values, dtype=object))
        return dict(zip(self.cells["code"], zip(shapely.get_x(points).tolist(), shapely.get_y(points).tolist())))

    def features(self) -> Iterable[tuple[str, dict[str, Any]]]:
        """(level, row) for every feature, districts first: what gets stored in the database."""
        for level in LEVELS:
            frame = self.level(level)
            for row in frame.itertuples(index=False):
                yield level, row._asdict()


# --- reading -------------------------------------------------------------------------------


def _declared_crs(collection: dict[str, Any]) -> str | None:
    """The CRS named by an old-style (GeoJSON 2008) ``crs`` member, if any."""
    crs = collection.get("crs")
    if not isinstance(crs, dict):
        return None
    name = (crs.get("properties") or {}).get("name")
    return str(name) if name else None


def read_layer(path: Path, level: str, crs: str | InputCRS | None = None) -> tuple[gpd.GeoDataFrame, list[Problem]]:
    """Read one level's GeoJSON file into WGS84, returning the frame and per-feature problems.

    Structural faults of the whole file (unreadable, not JSON, not a FeatureCollection) raise
    InvalidInput; faults of single features are returned as problems and the feature skipped.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"{path}: file not found; a layer set needs "
                           f"{', '.join(level + '.geojson' for level in LEVELS)}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{path}: not UTF-8 text; GeoJSON must be saved as UTF-8") from None
    collection = parse_json(text, str(path), kind="GeoJSON")
    if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
        raise InvalidInput(f"{path}: not a GeoJSON FeatureCollection (top-level \"type\" must be "
                           "\"FeatureCollection\")")
    features = collection.get("features")
    if not isinstance(features, list):
        raise InvalidInput(f"{path}: \"features\" must be a list")

    input_crs = parse_crs(crs) if not isinstance(crs, InputCRS) else crs
    if crs is None and _declared_crs(collection):
        input_crs = parse_crs(_declared_crs(collection))

    problems: list[Problem] = []
    rows: list[dict[str, Any]] = []
    geometries = []
    for position, feature in enumerate(features, start=1):
        label = f"#{position}"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            problems.append(Problem(level, label, "not a GeoJSON Feature"))
            continue
        props = feature.get("properties") or {}
        code = props.get("code")
        code = str(code) if code is not None else None
        label = code or label
        try:
            geometry = shape(feature.get("geometry")) if feature.get("geometry") else None
        except Exception as exc:  # shapely raises several types for malformed coordinates
            problems.append(Problem(level, label, f"unreadable geometry: {exc}"))
            continue
        if geometry is None or geometry.is_empty:
            problems.append(Problem(level, label, "has no geometry"))
            continue
        if geometry.geom_type not in ("Polygon", "MultiPolygon"):
            problems.append(Problem(level, label,
                                    f"geometry is a {geometry.geom_type}; areas must be Polygon or MultiPolygon"))
            continue
        parent = props.get("parent_code")
        rows.append(
            {
                "code": code,
                "name": props.get("name"),
                "parent_code": str(parent) if parent not in (None, "") else None,
                "position": position,
            }
        )
        geometries.append(geometry)

    geoms = np.array(geometries, dtype=object)
    if len(geoms) and not input_crs.is_wgs84:
        geoms = _transform_geometries(geoms, input_crs)
    frame = gpd.GeoDataFrame(rows, geometry=list(geoms), crs=WGS84) if rows else _empty_frame()
    if len(frame):
        frame["area_m2"] = geodesic_areas(frame.geometry.values)
    return frame, problems


def _transform_geometries(geoms: np.ndarray, crs: InputCRS) -> np.ndarray:
    def convert(coords: np.ndarray) -> np.ndarray:
        lon, lat = to_wgs84(coords[:, 0], coords[:, 1], crs)
        return np.column_stack([lon, lat])

    return shapely.transform(geoms, convert)


def _empty_frame() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"code": [], "name": [], "parent_code": [], "position": [], "area_m2": []}, geometry=[], crs=WGS84
    )


def read_layer_set(folder: Path | str, crs: str | InputCRS | None = None, *,
                   with_cells: bool = True) -> tuple[LayerSet, list[Problem]]:
    """Read a layer set folder; return it with the per-feature problems found while reading."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInput(f"{folder}: not a folder; give the folder holding districts.geojson … cells.geojson")
    frames: dict[str, gpd.GeoDataFrame] = {}
    problems: list[Problem] = []
    for level in LEVELS:
        if level == "cells" and not with_cells:
            frames[level] = _empty_frame()
            continue
        frames[level], found = read_layer(folder / f"{level}.geojson", level, crs)
        problems.extend(found)
    return LayerSet(**frames, source=folder), problems


# --- writing -------------------------------------------------------------------------------


def _round_coords(obj: Any) -> Any:
    if isinstance(obj, (list, tuple)):
        if obj and isinstance(obj[0], float | int):
            return [round(float(v), COORDINATE_DECIMALS) for v in obj]
        return [_round_coords(item) for item in obj]
    return obj


def feature_collection(frame: gpd.GeoDataFrame, level: str) -> dict[str, Any]:
    """The RFC 7946 FeatureCollection of one level, coordinates rounded to 6 decimals."""
    # Snapping to the 1e-6° grid first keeps the rounded polygons valid (set_precision repairs).
    snapped = shapely.set_precision(np.asarray(frame.geometry.values, dtype=object), 10.0 ** -COORDINATE_DECIMALS)
    features = []
    for row, geom in zip(frame.itertuples(index=False), snapped):
        properties: dict[str, Any] = {"code": row.code, "name": row.name}
        if level != "districts":
            properties["parent_code"] = row.parent_code
        area = getattr(row, "area_m2", None)
        properties["area_m2"] = round(float(area), 1) if area is not None and not math.isnan(area) else None
        geometry = mapping(geom)
        features.append(
            {
                "type": "Feature",
                "id": row.code,
                "properties": properties,
                "geometry": {"type": geometry["type"], "coordinates": _round_coords(geometry["coordinates"])},
            }
        )
    return {"type": "FeatureCollection", "features": features}


def write_layer(frame: gpd.GeoDataFrame, path: Path | str, level: str) -> None:
    """Write one level as RFC 7946 GeoJSON (UTF-8, coordinates rounded to 6 decimals)."""
    frame = frame if frame.crs is None or frame.crs.equals(pyproj.CRS(WGS84)) else frame.to_crs(WGS84)
    if "area_m2" not in frame.columns:
        frame = frame.assign(area_m2=geodesic_areas(frame.geometry.values))
    collection = feature_collection(frame, level)
    Path(path).write_text(json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")


def write_layer_set(layers: LayerSet, folder: Path | str) -> None:
    """Write all four levels into ``folder`` (created if missing)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for level in LEVELS:
        write_layer(layers.level(level), folder / f"{level}.geojson", level)
