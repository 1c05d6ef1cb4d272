"""A synthetic layer set of a regular lattice of small square cells, for tests of large cell layers.

One district of ``streets`` streets side by side (west to east), each a column of
``communities_per_street`` communities (north to south), each community ``cols`` × ``rows`` cells.
Written straight as the four GeoJSON files of a layer set: fast enough to make 50,000 cells in a test.
"""

from __future__ import annotations

import json
from pathlib import Path

#: South-west corner of the lattice (lon, lat) and the cell size in degrees (≈ 53 m × 55 m at 18° N).
ORIGIN = (109.40, 18.25)
STEP = 0.0005
DISTRICT = "460204"


def _box(x0: float, y0: float, x1: float, y1: float) -> dict:
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return {"type": "Polygon", "coordinates": [[[round(x, 6), round(y, 6)] for x, y in ring]]}


def _area_m2(width_deg: float, height_deg: float, lat: float) -> float:
    import math

    return width_deg * 111_320 * math.cos(math.radians(lat)) * height_deg * 110_574


def _feature(code: str, name: str, parent: str | None, geometry: dict, area: float) -> dict:
    properties = {"code": code, "name": name, "area_m2": round(area, 1)}
    if parent is not None:
        properties["parent_code"] = parent
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def write_lattice(folder: Path, *, streets: int = 10, communities_per_street: int = 10, cols: int = 25,
                  rows: int = 20) -> Path:
    """Write the layer set into ``folder``; it has streets × communities_per_street × cols × rows cells."""
    folder.mkdir(parents=True, exist_ok=True)
    x0, y0 = ORIGIN
    width, height = cols * STEP, rows * STEP
    top = y0 + communities_per_street * height
    levels: dict[str, list[dict]] = {"districts": [], "streets": [], "communities": [], "cells": []}
    levels["districts"].append(_feature(DISTRICT, "格子区", None, _box(x0, y0, x0 + streets * width, top),
                                        _area_m2(streets * width, top - y0, y0)))
    for s in range(streets):
        street = f"{DISTRICT}{s + 1:03d}"
        sx = x0 + s * width
        levels["streets"].append(_feature(street, f"第{s + 1}街道", DISTRICT, _box(sx, y0, sx + width, top),
                                          _area_m2(width, top - y0, y0)))
        for c in range(communities_per_street):
            community = f"{street}{c + 1:03d}"
            cy = top - (c + 1) * height
            levels["communities"].append(_feature(community, f"第{s + 1}街道第{c + 1}社区", street,
                                                  _box(sx, cy, sx + width, cy + height), _area_m2(width, height, cy)))
            number = 0
            for r in range(rows):  # north to south, west to east
                y = cy + height - (r + 1) * STEP
                for k in range(cols):
                    number += 1
                    x = sx + k * STEP
                    levels["cells"].append(_feature(f"{community}{number:03d}", f"网格{number}", community,
                                                    _box(x, y, x + STEP, y + STEP), _area_m2(STEP, STEP, y)))
    for level, features in levels.items():
        (folder / f"{level}.geojson").write_text(
            json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False, separators=(",", ":")),
            encoding="utf-8")
    return folder


def lattice_index(folder: Path):
    """The AreaIndex of a lattice layer set, read without the full validation.

    The lattice is valid by construction, and validating 50,000 cells (overlaps, coverage) takes
    minutes on a busy machine; the validation itself is tested on small layer sets.
    """
    from gridmap.geo.areas import AreaIndex
    from gridmap.geo.validate import read_layer_set

    layers, problems = read_layer_set(folder)
    assert not problems, problems
    return AreaIndex(layers)
