"""`gridmap grid build`: square cells clipped to communities, slivers merged, coded in order."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
from click.testing import CliRunner

from conftest import UTM, mini_areas, utm_box, write_areas
from gridmap.cli import main
from gridmap.errors import InvalidInput
from gridmap.geo.crs import wgs84_to_gcj02
from gridmap.geo.gridbuild import build_cells
from gridmap.geo.layers import read_layer_set
from gridmap.geo.validate import validate_layer_set


@pytest.fixture(scope="module")
def cells():
    return build_cells(mini_areas()["communities"], 250).to_crs(UTM)


def test_cells_tile_each_community_including_islands_and_a_lake(cells):
    communities = mini_areas()["communities"].to_crs(UTM).set_index("code")
    for code, group in cells.groupby("parent_code"):
        community = communities.loc[code].geometry
        union = shapely.union_all(group.geometry.values)
        assert union.symmetric_difference(community).area < 1.0  # m², i.e. the same ground
        assert group.geometry.area.sum() == pytest.approx(community.area, rel=1e-9)  # no overlaps either


def test_every_island_part_belongs_to_a_cell_of_its_own_community(cells):
    islands = cells[cells["parent_code"] == "460204101002"]
    tiny_island = utm_box(4000, 0, 4050, 50)
    assert sum(cell.covers(tiny_island.buffer(-0.01)) for cell in islands.geometry) == 1


def test_codes_are_unique_and_numbered_west_to_east_then_north_to_south(cells):
    assert cells["code"].is_unique
    community = cells[cells["parent_code"] == "460204101001"].sort_values("code")  # 1000 m × 1500 m, 4 × 6 cells
    assert list(community["code"].str[-3:]) == [f"{i:03d}" for i in range(1, 25)]
    centres = shapely.centroid(community.geometry.values)
    xs, ys = shapely.get_x(centres).reshape(6, 4), shapely.get_y(centres).reshape(6, 4)
    assert (np.diff(xs, axis=1) > 0).all()  # west → east within a row
    assert (np.diff(ys[:, 0]) < 0).all()  # rows north → south


def test_full_cells_are_squares_of_the_requested_size(cells):
    areas = cells.geometry.area
    assert (np.isclose(areas, 250 * 250)).sum() >= 60


def test_slivers_are_merged_into_a_neighbour():
    # A 1010 m wide community: the last 10 m column is a sliver (4% of a 250 m cell).
    communities = gpd.GeoDataFrame({"code": ["460204001001"], "name": ["窄条社区"]},
                                   geometry=[utm_box(0, 0, 1010, 500)], crs=UTM).to_crs(4326)
    cells = build_cells(communities, 250).to_crs(UTM)
    assert len(cells) == 8
    assert sorted(np.round(cells.geometry.area, -1)) == [62500] * 6 + [65000] * 2


def test_cell_size_must_be_positive():
    with pytest.raises(InvalidInput, match="positive"):
        build_cells(mini_areas()["communities"], 0)


def test_too_many_cells_for_the_three_digit_sequence_is_refused():
    with pytest.raises(InvalidInput, match="larger --cell-size"):
        build_cells(mini_areas()["communities"], 20)


def test_cli_builds_a_complete_valid_layer_set(tmp_path):
    areas = write_areas(tmp_path / "areas", mini_areas())
    result = CliRunner().invoke(main,
                                ["grid", "build", str(areas), "--cell-size", "250", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    layers, problems = read_layer_set(tmp_path / "out")
    assert problems == [] and validate_layer_set(layers) == []
    assert len(layers.cells) == 74
    feature = json.loads((tmp_path / "out" / "cells.geojson").read_text())["features"][0]
    assert set(feature["properties"]) == {"code", "name", "parent_code", "area_m2"}
    lon = feature["geometry"]["coordinates"][0][0][0]
    assert round(lon, 6) == lon  # 6 decimals


def test_cli_reads_gcj02_input_and_writes_wgs84(tmp_path):
    frames = mini_areas()
    shifted = {}
    for level, frame in frames.items():
        shifted[level] = frame.set_geometry(
            shapely.transform(frame.geometry.values, lambda xy: np.column_stack(wgs84_to_gcj02(xy[:, 0], xy[:, 1])))
        )
    areas = write_areas(tmp_path / "gcj", shifted)
    result = CliRunner().invoke(main, ["grid", "build", str(areas), "--cell-size", "250", "--crs", "gcj02",
                                       "--out", str(tmp_path / "wgs")])
    assert result.exit_code == 0, result.output
    layers, _ = read_layer_set(tmp_path / "wgs")
    original = frames["districts"].geometry.iloc[0]
    # Back where it started, but for rounding to 6 decimals twice (about 0.2 m).
    assert shapely.hausdorff_distance(layers.districts.geometry.iloc[0], original) < 3e-6


def test_cli_refuses_to_overwrite_non_wgs84_input(tmp_path):
    areas = write_areas(tmp_path / "areas", mini_areas())
    result = CliRunner().invoke(main, ["grid", "build", str(areas), "--cell-size", "250", "--crs", "EPSG:4490"])
    assert result.exit_code == 2
    assert "give --out" in result.output


def test_cli_refuses_broken_input_naming_the_feature(tmp_path):
    frames = mini_areas()
    frames["communities"].loc[0, "parent_code"] = "460204999"
    areas = write_areas(tmp_path / "areas", frames)
    result = CliRunner().invoke(main, ["grid", "build", str(areas), "--cell-size", "250"])
    assert result.exit_code == 2
    assert "460204001001: parent 460204999 does not exist" in result.output
    assert not (areas / "cells.geojson").exists()
