"""Layer set validation: geometry, codes, parents, containment, overlaps and gaps; loading a valid set.

Tolerance: overlaps, gaps and parts of a child outside its parent are measured in the layer
set's UTM zone after removing slivers thinner than ``2 × SLIVER_TOLERANCE_M`` (a negative
buffer of 0.5 m): rounding coordinates to 6 decimals (~0.1 m) leaves hairline slivers along
shared boundaries that are not real gaps.  Anything wider is reported with its area.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from gridmap.errors import InvalidInput
from gridmap.geo.layers import CODE_LENGTHS, LEVELS, PARENT_LEVEL, LayerSet, Problem, read_layer_set
from gridmap.geo.measure import choose_metric_crs

SLIVER_TOLERANCE_M = 0.5


def load_layer_set(folder: Path | str) -> LayerSet:
    """Read and validate a layer set; raise InvalidInput listing every problem if it is not valid."""
    layers, problems = read_layer_set(folder)
    problems += validate_layer_set(layers)
    if problems:
        shown = "\n".join(f"  {p}" for p in problems[:20])
        more = f"\n  … and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise InvalidInput(
            f"layer set {folder} is not valid ({len(problems)} problems; "
            f"run `gridmap geodata validate {folder}`):\n{shown}{more}"
        )
    return layers


def validate_layer_set(layers: LayerSet) -> list[Problem]:
    """Every problem of a layer set, each naming the feature (by code) and what is wrong."""
    problems: list[Problem] = []
    for level in LEVELS:
        problems += _check_features(layers.level(level), level)
    problems += _check_unique_codes(layers)
    problems += _check_parents(layers)
    if problems:  # geometry checks below need valid polygons with known codes
        return problems

    frames = [layers.level(level) for level in LEVELS if len(layers.level(level))]
    if not frames:
        return [Problem("districts", "-", "the layer set is empty")]
    metric = choose_metric_crs(frames[0])
    projected = {level: layers.level(level).to_crs(metric) for level in LEVELS}
    for level in LEVELS:  # a feature far from the layer set's centre does not project into its UTM zone in one piece
        for row in projected[level].itertuples(index=False):
            if not (np.isfinite(shapely.get_coordinates(row.geometry)).all() and row.geometry.is_valid):
                problems.append(Problem(level, row.code,
                                        "is too large or too far from the rest of the layer set to be measured "
                                        f"in its UTM zone ({metric.to_string()}); a layer set covers one district"))
    if problems:
        return problems
    for level in LEVELS[1:]:
        parent_level = PARENT_LEVEL[level]
        if parent_level is None:  # only districts have no parent
            continue
        problems += _check_inside_parent(projected[level], projected[parent_level], level)
        problems += _check_overlaps(projected[level], level)
    problems += _check_cells_tile_communities(projected["cells"], projected["communities"])
    return problems


def _label(row) -> str:
    return row.code if row.code else f"#{row.position}"


def _check_features(frame: gpd.GeoDataFrame, level: str) -> list[Problem]:
    problems = []
    length = CODE_LENGTHS[level]
    for row in frame.itertuples(index=False):
        label = _label(row)
        if not row.code:
            problems.append(Problem(level, label, "has no `code` property"))
        elif not (row.code.isdigit() and len(row.code) == length):
            problems.append(Problem(level, label, f"code must be {length} digits"))
        if not row.name:
            problems.append(Problem(level, label, "has no `name` property"))
        minx, miny, maxx, maxy = row.geometry.bounds
        if min(minx, maxx) < -180 or max(minx, maxx) > 180 or min(miny, maxy) < -90 or max(miny, maxy) > 90:
            if -90 <= minx <= maxx <= 90 and -180 <= miny <= maxy <= 180:
                problems.append(Problem(level, label,
                                        f"coordinates out of lon/lat range (e.g. {minx:.1f}, {miny:.1f}): "
                                        "longitude and latitude look swapped; GeoJSON gives lon first, then lat"))
                continue
            problems.append(
                Problem(
                    level,
                    label,
                    f"coordinates out of lon/lat range (e.g. {minx:.1f}, {miny:.1f}): projected coordinates "
                    "given as lon/lat? Convert with --crs EPSG:xxxx, or give RFC 7946 WGS84 lon/lat",
                )
            )
            continue
        if not row.geometry.is_valid:
            problems.append(Problem(level, label, f"invalid geometry: {shapely.is_valid_reason(row.geometry)}"))
    return problems


def _check_unique_codes(layers: LayerSet) -> list[Problem]:
    problems = []
    for level in LEVELS:
        counts = Counter(code for code in layers.level(level)["code"] if code)
        problems += [Problem(level, code, f"code is used by {n} features") for code, n in counts.items() if n > 1]
    return problems


def _check_parents(layers: LayerSet) -> list[Problem]:
    problems = []
    for level in LEVELS:
        parent_level = PARENT_LEVEL[level]
        frame = layers.level(level)
        if parent_level is None:
            continue
        parents = set(layers.level(parent_level)["code"])
        for row in frame.itertuples(index=False):
            label = _label(row)
            if not row.parent_code:
                problems.append(Problem(level, label, "has no `parent_code`"))
            elif row.parent_code not in parents:
                problems.append(Problem(level, label,
                                        f"parent {row.parent_code} does not exist in {parent_level}.geojson"))
            elif row.code and not row.code.startswith(row.parent_code):
                problems.append(Problem(level, label, f"code does not start with its parent's code {row.parent_code}"))
    return problems


def _significant(geometry) -> float:
    """The area of a geometry, or 0 when it is only hairline slivers (nothing survives erosion)."""
    if geometry is None or geometry.is_empty:
        return 0.0
    if shapely.buffer(geometry, -SLIVER_TOLERANCE_M, join_style="mitre").is_empty:
        return 0.0
    return float(geometry.area)


def _where(geometry) -> str:
    point = shapely.point_on_surface(geometry)
    return f"near UTM ({point.x:.0f}, {point.y:.0f})"


def _check_inside_parent(children: gpd.GeoDataFrame, parents: gpd.GeoDataFrame, level: str) -> list[Problem]:
    problems = []
    parent_geometry = dict(zip(parents["code"], parents.geometry))
    for row in children.itertuples(index=False):
        outside = shapely.difference(row.geometry, parent_geometry[row.parent_code])
        area = _significant(outside)
        if area > 0:
            problems.append(
                Problem(level, row.code,
                        f"extends {area:.0f} m² outside its parent {row.parent_code} ({_where(outside)})")
            )
    return problems


def _check_overlaps(frame: gpd.GeoDataFrame, level: str) -> list[Problem]:
    geometries = np.asarray(frame.geometry.values, dtype=object)
    codes = frame["code"].to_numpy()
    left, right = shapely.STRtree(geometries).query(geometries, predicate="intersects")
    pairs = left < right
    problems = []
    for i, j in zip(left[pairs], right[pairs]):
        overlap = shapely.intersection(geometries[i], geometries[j])
        area = _significant(overlap)
        if area > 0:
            problems.append(Problem(level, codes[i], f"overlaps {codes[j]} by {area:.0f} m² ({_where(overlap)})"))
    return problems


def _check_cells_tile_communities(cells: gpd.GeoDataFrame, communities: gpd.GeoDataFrame) -> list[Problem]:
    problems = []
    cells_by_community = cells.groupby("parent_code").geometry.apply(lambda g: shapely.union_all(g.values))
    for row in communities.itertuples(index=False):
        covered = cells_by_community.get(row.code)
        if covered is None:
            problems.append(Problem("communities", row.code, "has no cells"))
            continue
        gap = shapely.difference(row.geometry, covered)
        area = _significant(gap)
        if area > 0:
            problems.append(
                Problem("communities", row.code, f"its cells leave a gap of {area:.0f} m² ({_where(gap)})")
            )
    return problems
