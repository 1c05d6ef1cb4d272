"""CellLocator: which cell a lon/lat point is in, including points on shared edges and vertices."""

from __future__ import annotations

from functools import cache

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Point, Polygon

from gridmap.errors import InvalidInput
from gridmap.geo.locator import CellLocator

# A small layer on an exact binary lattice (every coordinate below is a float without rounding):
# one unit U is 1/8 of a cell side S; (i, j) means (X0 + i*U, Y0 + j*U); j grows northwards.
#
#          0       8  9 11 13 15 16     24      32
#   j=24   +-------+--\-----------+-------+
#          | A001  |A002\   B001  | B002  |
#   j=16   +-------+------\-------+-------+-------+
#          | A003  | A004  \ B003 | B004  |   C   |   B004 has two holes: an island [18,20]x[10,12]
#   j=8    +-------+--------\-----+-------+-------+   (a part of C) and an empty pond [21,23]x[13,15]
#          | A005  | A006    \B005| B006  |
#   j=0    +-------+----------\---+-------+-------+
#                                         |   D   |   D touches B006 only at the vertex (24, 0)
#   j=-8                                  +-------+
#
# The community boundary runs from (9, 24) through (11, 16) and (13, 8) to (15, 0).
X0, Y0 = 109.5, 18.25
U = 2.0**-13  # about 13 m; a cell side is 8 U, about 100 m

A, B, C, D = "460203001001", "460203001002", "460203002001", "460203000009"


def _ring(*points: tuple[float, float]) -> list[tuple[float, float]]:
    return [(X0 + i * U, Y0 + j * U) for i, j in points]


def _square(i0: int, j0: int, i1: int, j1: int) -> list[tuple[float, float]]:
    return _ring((i0, j0), (i1, j0), (i1, j1), (i0, j1))


@cache
def lattice_layer() -> tuple[list[str], list[Polygon | MultiPolygon]]:
    """The drawing above: two communities split by a slanted line, a hole, an island, a pond."""
    island = _square(18, 10, 20, 12)
    pond = _square(21, 13, 23, 15)
    cells = {
        A + "001": Polygon(_square(0, 16, 8, 24)),
        A + "002": Polygon(_ring((8, 16), (11, 16), (9, 24), (8, 24))),
        A + "003": Polygon(_square(0, 8, 8, 16)),
        A + "004": Polygon(_ring((8, 8), (13, 8), (11, 16), (8, 16))),
        A + "005": Polygon(_square(0, 0, 8, 8)),
        A + "006": Polygon(_ring((8, 0), (15, 0), (13, 8), (8, 8))),
        B + "001": Polygon(_ring((11, 16), (16, 16), (16, 24), (9, 24))),
        B + "002": Polygon(_square(16, 16, 24, 24)),
        B + "003": Polygon(_ring((13, 8), (16, 8), (16, 16), (11, 16))),
        B + "004": Polygon(_square(16, 8, 24, 16), holes=[island, pond]),
        B + "005": Polygon(_ring((15, 0), (16, 0), (16, 8), (13, 8))),
        B + "006": Polygon(_square(16, 0, 24, 8)),
        C + "001": MultiPolygon([Polygon(island), Polygon(_square(24, 8, 32, 16))]),
        D + "001": Polygon(_square(24, -8, 32, 0)),
    }
    # Shuffled, so that index order and code order differ.
    order = [5, 12, 0, 9, 3, 13, 7, 1, 11, 4, 10, 2, 8, 6]
    codes = list(cells)
    return [codes[i] for i in order], [cells[codes[i]] for i in order]


@cache
def clipped_layer() -> tuple[list[str], list[Polygon | MultiPolygon]]:
    """100 m UTM squares clipped to three Voronoi communities, in lon/lat: float noise on every edge."""
    to_lonlat = pyproj.Transformer.from_crs("EPSG:32649", "EPSG:4326", always_xy=True)
    x0, y0 = 340_000.0, 2_024_000.0
    square = shapely.box(x0, y0, x0 + 600, y0 + 600)
    seeds = shapely.multipoints([(x0 + 130, y0 + 420), (x0 + 470, y0 + 510), (x0 + 330, y0 + 90)])
    communities = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=square, ordered=True))
    codes, cells = [], []
    for k, community in enumerate(communities):
        community = community.intersection(square)
        seq = 0
        for row in range(6):
            for col in range(6):
                piece = shapely.box(x0 + col * 100, y0 + 500 - row * 100, x0 + col * 100 + 100, y0 + 600 - row * 100)
                piece = piece.intersection(community)
                if piece.area < 1.0 or piece.geom_type not in ("Polygon", "MultiPolygon"):
                    continue
                seq += 1
                codes.append(f"4602030010{k + 1:02d}{seq:03d}")
                cells.append(_to_lonlat(piece, to_lonlat))
    return codes, cells


def _to_lonlat(geometry, transformer: pyproj.Transformer):
    return shapely.transform(geometry, lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))


@cache
def long_edge_layer() -> tuple[list[str], list[Polygon]]:
    """Two triangles sharing an edge as long as their coordinates are large.

    Near such an edge a plain floating-point orientation test often gets the side wrong (Kettner
    et al., "Classroom examples of robustness problems in geometric computations").
    """
    a, b = (0.1, 0.3), (17.3, 23.9)
    return ["460203001001002", "460203001001001"], [Polygon([a, b, (0.1, 23.9)]), Polygon([a, (17.3, 0.3), b])]


@cache
def overlapping_layer() -> tuple[list[str], list[Polygon]]:
    """A row of cells overlapped by their northern neighbours in bands 0.17 to 1 m wide.

    Layer validation lets overlaps narrower than about 1 m pass, so an imported layer may have them.
    """
    band = 4.5e-6  # about 0.5 m
    codes, cells = [], []
    for i in range(6):
        codes.append(f"{B}{i + 1:03d}")
        cells.append(shapely.box(X0 + 8 * i * U, Y0, X0 + 8 * (i + 1) * U, Y0 + 8 * U))
        codes.append(f"{A}{i + 1:03d}")
        cells.append(shapely.box(X0 + 8 * i * U, Y0 + 8 * U - band * (i + 1) / 3, X0 + 8 * (i + 1) * U, Y0 + 16 * U))
    return codes, cells


LAYERS = {
    "lattice": lattice_layer,
    "clipped": clipped_layer,
    "long_edge": long_edge_layer,
    "overlapping": overlapping_layer,
}


@cache
def locator(layer: str = "lattice", bucket_size: float | None = None) -> CellLocator:
    codes, cells = LAYERS[layer]()
    return CellLocator(codes, cells, bucket_size=bucket_size)


def truth(codes: list[str], cells: list, x: float, y: float) -> str | None:
    """The edge rule, by brute force: the lowest code among the cells that cover the point."""
    covers = shapely.covers(np.asarray(cells, dtype=object), Point(x, y))
    return min((code for code, hit in zip(codes, covers) if hit), default=None)


def at(i: float, j: float) -> tuple[float, float]:
    return X0 + i * U, Y0 + j * U


# --- hand-written cases ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        # interior points
        (at(4, 20), A + "001"),
        (at(10, 12), A + "004"),
        (at(14, 12), B + "003"),
        (at(28, -4), D + "001"),
        # an edge between two cells of one community: the one numbered first (north, then west)
        (at(4, 16), A + "001"),
        (at(8, 20), A + "001"),
        (at(16, 4), B + "005"),
        # the slanted edge between communities: the lower community code
        (at(10, 20), A + "002"),
        (at(12, 12), A + "004"),
        # a vertex shared by four cells: the lowest code
        (at(8, 8), A + "003"),
        (at(16, 16), B + "001"),
        (at(11, 16), A + "002"),  # two cells of each community
        (at(13, 8), A + "004"),
        # an edge and a vertex shared across communities, where the other code is lower
        (at(24, 12), B + "004"),
        (at(24, 0), D + "001"),
        # the outer boundary of the covered area belongs to its only cell
        (at(0, 20), A + "001"),
        (at(0, 0), A + "005"),
        (at(24, 4), B + "006"),
        (at(32, 16), C + "001"),
        # an island (a part of the MultiPolygon C) inside a hole of B004, and an empty pond
        (at(19, 11), C + "001"),
        (at(18, 11), B + "004"),  # the island's shore is shared: B sorts lower
        (at(22, 14), None),
        (at(21, 14), B + "004"),  # the pond's shore belongs to B004 alone
        # outside every cell
        (at(-1, 4), None),
        (at(28, 4), None),  # between C and D, inside the total bounds
        (at(28, 20), None),
        (at(1000, 1000), None),
    ],
)
@pytest.mark.parametrize("bucket_size", [None, 8 * U, 3 * U, 100 * U])
def test_locate_follows_the_edge_rule(point, expected, bucket_size):
    codes, cells = lattice_layer()
    assert truth(codes, cells, *point) == expected  # the drawing agrees with shapely
    assert locator("lattice", bucket_size).locate(*point) == expected


def test_points_within_rounding_of_an_edge_get_the_exact_answer():
    codes, cells = long_edge_layer()
    t = np.linspace(0.01, 0.99, 300)
    nudges = [(i, j) for i in range(-2, 3) for j in range(-2, 3)]
    x = np.array([_nudge(0.1 + s * 17.2, i) for s in t for i, _ in nudges])
    y = np.array([_nudge(0.3 + s * 23.6, j) for s in t for _, j in nudges])
    expected = [truth(codes, cells, px, py) for px, py in zip(x, y)]
    assert len(set(expected)) == 2  # both sides are probed
    assert locator("long_edge").locate_codes(x, y).tolist() == expected


@pytest.mark.parametrize(
    "bucket_size", [None, (U, 0.9 * U), (1.3 * U, 0.37 * U), (0.5 * U, 0.11 * U), (2 * U, 0.031 * U)]
)
def test_thin_overlaps_between_cells_still_follow_the_edge_rule(bucket_size):
    codes, cells = overlapping_layer()
    rng = np.random.default_rng(1)
    x = X0 + rng.uniform(0, 48 * U, 5000)
    y = Y0 + rng.uniform(6 * U, 10 * U, 5000)  # around the overlaps
    expected = [truth(codes, cells, px, py) for px, py in zip(x, y)]
    assert CellLocator(codes, cells, bucket_size=bucket_size).locate_codes(x, y).tolist() == expected


def test_nan_and_infinite_coordinates_are_outside():
    loc = locator()
    lon = np.array([np.nan, X0 + 4 * U, np.inf, -np.inf, X0 + 4 * U])
    lat = np.array([Y0 + 4 * U, np.nan, Y0 + 4 * U, Y0, Y0 + 4 * U])
    assert loc.locate_indices(lon, lat).tolist() == [-1, -1, -1, -1, loc.codes.tolist().index(A + "005")]


def test_empty_input_gives_empty_output():
    loc = locator()
    assert loc.locate_indices([], []).shape == (0,)
    assert loc.locate_indices([], []).dtype == np.int64
    assert loc.locate_codes(np.array([]), np.array([])).tolist() == []
    assert loc.count_per_cell([], []).tolist() == [0] * len(loc)


def test_output_has_the_shape_of_the_input():
    loc = locator()
    lon = np.full((2, 3), X0 + 4 * U)
    lat = np.full((2, 3), Y0 + 20 * U)
    assert loc.locate_indices(lon, lat).shape == (2, 3)
    assert set(loc.locate_codes(lon, lat).ravel()) == {A + "001"}
    assert loc.locate_indices(X0 + 4 * U, Y0 + 20 * U).shape == ()


def test_locate_codes_gives_none_outside():
    loc = locator()
    x, y = zip(at(4, 20), at(-1, 4), at(19, 11))
    assert loc.locate_codes(x, y).tolist() == [A + "001", None, C + "001"]


def test_count_per_cell_counts_located_points_and_skips_the_rest():
    loc = locator()
    x, y = zip(at(4, 20), at(5, 21), at(4, 16), at(-1, 4), at(19, 11), (np.nan, np.nan))
    counts = dict(zip(loc.codes, loc.count_per_cell(x, y)))
    assert counts[A + "001"] == 3
    assert counts[C + "001"] == 1
    assert sum(counts.values()) == 4


def test_count_per_cell_matches_locate_indices_across_chunks():
    codes, cells = lattice_layer()
    loc = CellLocator(codes, cells, chunk_size=7)
    rng = np.random.default_rng(0)
    x = X0 + rng.uniform(-2, 34, 1000) * U
    y = Y0 + rng.uniform(-10, 26, 1000) * U
    found = loc.locate_indices(x, y)
    assert loc.count_per_cell(x, y).tolist() == np.bincount(found[found >= 0], minlength=len(loc)).tolist()


def test_a_locator_without_cells_finds_nothing():
    loc = CellLocator([], [])
    assert loc.locate_indices([X0, 0.0], [Y0, 0.0]).tolist() == [-1, -1]
    assert loc.count_per_cell([X0], [Y0]).tolist() == []
    assert loc.locate(X0, Y0) is None


def test_from_frame_reads_codes_and_geometry():
    codes, cells = lattice_layer()
    frame = gpd.GeoDataFrame({"code": codes, "name": codes}, geometry=cells, crs="EPSG:4326")
    assert CellLocator.from_frame(frame).locate(*at(19, 11)) == C + "001"


def test_from_frame_refuses_projected_cells():
    codes, cells = lattice_layer()
    frame = gpd.GeoDataFrame({"code": codes}, geometry=cells, crs="EPSG:32649")
    with pytest.raises(InvalidInput, match="WGS84"):
        CellLocator.from_frame(frame)


def test_from_frame_needs_a_code_column():
    codes, cells = lattice_layer()
    with pytest.raises(InvalidInput, match="'code'"):
        CellLocator.from_frame(gpd.GeoDataFrame({"id": codes}, geometry=cells, crs="EPSG:4326"))


@pytest.mark.parametrize(
    ("codes", "geometries", "message"),
    [
        (["a", "b"], [shapely.box(0, 0, 1, 1)], "2 codes but 1 geometries"),
        (["a", "a"], [shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1)], "duplicate cell code 'a'"),
        ([1], [shapely.box(0, 0, 1, 1)], "must be strings"),
        (["a"], [Point(0, 0)], "got Point"),
        (["a"], [None], "got missing"),
        (["a"], [Polygon()], "non-empty"),
        (["a"], ["POLYGON ((0 0, 1 0, 1 1, 0 0))"], "shapely geometries"),
    ],
)
def test_bad_cells_are_refused(codes, geometries, message):
    with pytest.raises(InvalidInput, match=message):
        CellLocator(codes, geometries)


@pytest.mark.parametrize(
    ("lon", "lat", "message"),
    [
        ([1.0, 2.0], [1.0, 2.0, 3.0], "different shapes"),
        (["east"], [1.0], "numbers"),
    ],
)
def test_bad_coordinates_are_refused(lon, lat, message):
    with pytest.raises(InvalidInput, match=message):
        locator().locate_indices(lon, lat)


def test_locate_takes_exactly_one_point():
    with pytest.raises(InvalidInput, match="one point"):
        locator().locate([X0], [Y0])


@pytest.mark.parametrize("layer", ["lattice", "clipped", "long_edge"])
def test_fixture_layers_exercise_every_kind_of_bucket(layer):
    kinds = locator(layer).describe_index()
    assert all(kinds[kind] > 0 for kind in ("free", "single_line", "star", "complex")), kinds


# --- property: the locator agrees with shapely everywhere, edges included ------------------------


@cache
def probe_material(layer: str) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    """Every ring vertex and every edge (as x0, y0, x1, y1) of a layer, and its total bounds."""
    _, cells = LAYERS[layer]()
    rings = shapely.get_rings(shapely.get_parts(np.asarray(cells, dtype=object)))
    edges = []
    for ring in rings:
        xy = shapely.get_coordinates(ring)
        edges.append(np.hstack([xy[:-1], xy[1:]]))
    edges = np.vstack(edges)
    return edges[:, :2].copy(), edges, tuple(shapely.total_bounds(np.asarray(cells, dtype=object)))


def points(layer: str) -> st.SearchStrategy[tuple[float, float]]:
    """Points a locator is likely to get wrong: on vertices and edges, next to them, and beyond."""
    vertices, edges, (x0, y0, x1, y1) = probe_material(layer)
    w, h = x1 - x0, y1 - y0
    uniform = st.tuples(st.floats(x0, x1), st.floats(y0, y1))
    around = st.tuples(st.floats(x0 - 0.1 * w, x1 + 0.1 * w), st.floats(y0 - 0.1 * h, y1 + 0.1 * h))
    vertex = st.sampled_from([tuple(v) for v in vertices.tolist()])
    edge = st.sampled_from([tuple(e) for e in edges.tolist()])
    midpoint = edge.map(lambda e: ((e[0] + e[2]) / 2, (e[1] + e[3]) / 2))
    along = st.builds(_along, edge, st.floats(0, 1))
    ulps = st.integers(-3, 3)
    near_vertex = st.builds(_nudged, vertex, ulps, ulps)
    near_edge = st.builds(_nudged, st.one_of(midpoint, along), ulps, ulps)
    return st.one_of(uniform, around, vertex, near_vertex, midpoint, along, near_edge)


def _along(edge: tuple[float, float, float, float], t: float) -> tuple[float, float]:
    return edge[0] + t * (edge[2] - edge[0]), edge[1] + t * (edge[3] - edge[1])


def _nudged(point: tuple[float, float], x_ulps: int, y_ulps: int) -> tuple[float, float]:
    return _nudge(point[0], x_ulps), _nudge(point[1], y_ulps)


def _nudge(value: float, ulps: int) -> float:
    for _ in range(abs(ulps)):
        value = float(np.nextafter(value, np.inf if ulps > 0 else -np.inf))
    return value


@pytest.mark.parametrize(
    ("layer", "bucket_size"),
    [
        ("lattice", None),
        ("lattice", 8 * U),  # bucket edges fall exactly on cell edges
        ("lattice", 3 * U),
        ("lattice", 1000 * U),  # one bucket: everything goes through the exact test
        ("clipped", None),
        ("clipped", 1e-4),
        ("long_edge", None),
        ("overlapping", None),
        ("overlapping", (1.3 * U, 0.37 * U)),
    ],
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_locator_agrees_with_shapely_covers(layer, bucket_size, data):
    probes = data.draw(st.lists(points(layer), min_size=1, max_size=40))
    codes, cells = LAYERS[layer]()
    x = np.array([p[0] for p in probes])
    y = np.array([p[1] for p in probes])
    expected = [truth(codes, cells, px, py) for px, py in probes]
    assert locator(layer, bucket_size).locate_codes(x, y).tolist() == expected
