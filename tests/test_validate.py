"""`gridmap geodata validate`: every broken layer set is reported by feature, exit code 1."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import shapely
from click.testing import CliRunner
from shapely.geometry import Polygon, mapping

from gridmap.cli import main
from gridmap.settings import BUNDLED_GEODATA


def validate(folder: Path):
    return CliRunner().invoke(main, ["geodata", "validate", str(folder)])


def edit(folder: Path, level: str, change) -> None:
    """Apply ``change(features)`` to one level's file."""
    path = folder / f"{level}.geojson"
    collection = json.loads(path.read_text())
    change(collection["features"])
    path.write_text(json.dumps(collection))


def by_code(features, code):
    return next(f for f in features if f["properties"]["code"] == code)


@pytest.fixture
def layer_set(mini_geodata, tmp_path) -> Path:
    folder = tmp_path / "geodata"
    shutil.copytree(mini_geodata, folder)
    return folder


def test_the_mini_layer_set_is_valid(mini_geodata):
    result = validate(mini_geodata)
    assert result.exit_code == 0, result.output
    assert "valid (1 districts, 2 streets, 4 communities, 74 cells" in result.output


def test_the_bundled_demo_layer_set_is_valid():
    result = validate(BUNDLED_GEODATA)
    assert result.exit_code == 0, result.output


def _shift_cell(features):
    # Move cell 460204001001001 250 m east (about 0.00236°) onto its neighbour: overlap and gap.
    cell = by_code(features, "460204001001001")
    moved = shapely.affinity.translate(shapely.geometry.shape(cell["geometry"]), xoff=0.00118)
    cell["geometry"] = mapping(moved)


def _duplicate_code(features):
    by_code(features, "460204001001002")["properties"]["code"] = "460204001001003"


def _self_intersect(features):
    cell = by_code(features, "460204001001005")
    (x1, y1), (x2, y2) = cell["geometry"]["coordinates"][0][0], cell["geometry"]["coordinates"][0][2]
    bow_tie = Polygon([(x1, y1), (x2, y2), (x2, y1), (x1, y2), (x1, y1)])
    cell["geometry"] = mapping(bow_tie)


def _missing_parent(features):
    by_code(features, "460204001002")["properties"]["parent_code"] = "460204777"


def _projected(features):
    # UTM metres written as if they were lon/lat.
    cell = by_code(features, "460204001001004")
    cell["geometry"]["coordinates"] = [[[420000.0, 2015000.0], [420250.0, 2015000.0], [420250.0, 2015250.0],
                                        [420000.0, 2015000.0]]]


def _remove_cell(features):
    features.remove(by_code(features, "460204101001010"))


@pytest.mark.parametrize(
    "level, change, expected",
    [
        # a cell shifted onto its neighbour overlaps it and leaves a gap behind
        ("cells",
         _shift_cell, ["cells.geojson: 460204001001001: overlaps 460204001001002",
                       "communities.geojson: 460204001001: its cells leave a gap"]),
        # a missing cell leaves a gap in its community (one 250 m cell, give or take rounding)
        ("cells", _remove_cell, ["communities.geojson: 460204101001: its cells leave a gap of 62\\d\\d\\d m²"]),
        # two cells with one code
        ("cells", _duplicate_code, ["cells.geojson: 460204001001003: code is used by 2 features"]),
        # a bow-tie polygon
        ("cells", _self_intersect, ["cells.geojson: 460204001001005: invalid geometry: Self-intersection"]),
        # a community whose street does not exist
        ("communities", _missing_parent, ["communities.geojson: 460204001002: parent 460204777 does not exist"]),
        # projected coordinates given as lon/lat
        ("cells", _projected, ["cells.geojson: 460204001001004: coordinates out of lon/lat range", "--crs"]),
    ],
)
def test_broken_layer_sets_are_reported_by_name(layer_set, level, change, expected):
    edit(layer_set, level, change)
    result = validate(layer_set)
    assert result.exit_code == 1
    for pattern in expected:
        assert re.search(pattern, result.output), pattern


def test_broken_json_names_the_file_and_line(layer_set):
    (layer_set / "streets.geojson").write_text('{"type": "FeatureCollection",\n "features": [}')
    result = validate(layer_set)
    assert result.exit_code == 2
    assert "streets.geojson: broken JSON at line 2" in result.output


def test_a_cell_outside_its_community_is_reported(layer_set):
    def reparent(features):
        by_code(features, "460204001001001")["properties"]["parent_code"] = "460204101001"
        by_code(features, "460204001001001")["properties"]["code"] = "460204101001901"

    edit(layer_set, "cells", reparent)
    result = validate(layer_set)
    assert result.exit_code == 1
    assert re.search(r"cells.geojson: 460204101001901: extends 62\d\d\d m²", result.output)  # one 250 m cell
    assert "outside its parent 460204101001" in result.output
