"""Grid builder: square cells of a given size, clipped to communities, slivers merged, coded.

How cells are made:

1. Communities are projected to the UTM zone of the layer set's centre (pyproj), so cells are
   true squares of ``cell_size`` metres.  Squares are aligned to multiples of ``cell_size`` in
   that CRS, so neighbouring communities share one lattice.
2. Each community is cut by the squares that meet it; every piece keeps the square's row and
   column.  A square cut into several parts by the community's shape stays one cell
   (a MultiPolygon) — it is still one patch of ground for one grid worker.
3. **Slivers**: a piece smaller than ``sliver_share`` of a full square (default 0.2, i.e.
   2,000 m² for 100 m cells) is merged into the neighbouring cell of the same community with
   which it shares the longest edge; a sliver touching no full cell (a small island) is merged
   into the nearest full cell of its community.  A community with no full cell at all becomes
   a single cell.
4. **Codes**: community code + 3-digit sequence, numbered west→east along each row of squares,
   rows north→south (a merged cell keeps the position of its host square).
"""

from __future__ import annotations

from collections import defaultdict

import geopandas as gpd
import numpy as np
import shapely
from tqdm import tqdm

from gridmap.errors import InvalidInput
from gridmap.geo.crs import WGS84
from gridmap.geo.measure import choose_metric_crs, geodesic_areas

DEFAULT_SLIVER_SHARE = 0.2
MAX_CELLS_PER_COMMUNITY = 999  # the cell sequence has 3 digits


def build_cells(
    communities: gpd.GeoDataFrame,
    cell_size: float,
    *,
    sliver_share: float = DEFAULT_SLIVER_SHARE,
    progress: bool = False,
) -> gpd.GeoDataFrame:
    """Cells of ``cell_size`` metres clipped to each community; WGS84 with code, name, parent_code, area_m2."""
    if not cell_size > 0:
        raise InvalidInput(f"cell size must be a positive number of metres, got {cell_size}")
    if not 0 <= sliver_share < 1:
        raise InvalidInput(f"sliver share must be between 0 and 1, got {sliver_share}")
    if communities.empty:
        raise InvalidInput("no communities to build cells in")
    metric = choose_metric_crs(communities)
    projected = communities.to_crs(metric)

    codes: list[str] = []
    geometries: list[shapely.Geometry] = []
    parents: list[str] = []
    rows = projected[["code", "geometry"]].itertuples(index=False)
    for community_code, geometry in tqdm(
        rows, total=len(projected), desc="building cells", unit="community", disable=not progress
    ):
        cells = _cells_of_community(geometry, cell_size, sliver_share)
        if len(cells) > MAX_CELLS_PER_COMMUNITY:
            raise InvalidInput(
                f"community {community_code} would get {len(cells)} cells; the cell sequence has 3 digits "
                f"(at most {MAX_CELLS_PER_COMMUNITY}): use a larger --cell-size or split the community"
            )
        for sequence, cell in enumerate(cells, start=1):
            codes.append(f"{community_code}{sequence:03d}")
            geometries.append(cell)
            parents.append(community_code)

    frame = gpd.GeoDataFrame(
        {"code": codes, "name": [f"网格{code[-3:]}" for code in codes], "parent_code": parents},
        geometry=geometries,
        crs=metric,
    ).to_crs(WGS84)
    frame["area_m2"] = geodesic_areas(frame.geometry.values)
    return frame


def _cells_of_community(geometry: shapely.Geometry, size: float, sliver_share: float) -> list[shapely.Geometry]:
    """The community's cells in code order (rows north→south, west→east within a row)."""
    geometry = shapely.make_valid(geometry) if not geometry.is_valid else geometry
    minx, miny, maxx, maxy = geometry.bounds
    first_col, last_col = int(np.floor(minx / size)), int(np.ceil(maxx / size))
    first_row, last_row = int(np.floor(miny / size)), int(np.ceil(maxy / size))
    col_grid, row_grid = np.meshgrid(np.arange(first_col, last_col), np.arange(first_row, last_row))
    cols, rows = col_grid.ravel(), row_grid.ravel()
    squares = shapely.box(cols * size, rows * size, (cols + 1) * size, (rows + 1) * size)

    shapely.prepare(geometry)
    meets = shapely.intersects(geometry, squares) & ~shapely.touches(geometry, squares)
    squares, cols, rows = squares[meets], cols[meets], rows[meets]
    inside = shapely.contains_properly(geometry, squares)
    pieces = np.where(inside, squares, shapely.intersection(squares, geometry))
    pieces = np.array([_polygonal_part(piece) for piece in pieces], dtype=object)
    areas = shapely.area(pieces)
    keep = areas > 0
    pieces, cols, rows, areas = pieces[keep], cols[keep], rows[keep], areas[keep]
    if len(pieces) == 0:
        return [geometry]

    full = areas >= sliver_share * size * size
    if not full.any():
        return [geometry]  # the whole community is smaller than one sliver threshold: one cell

    # Merge each sliver into a full cell: longest shared edge, else nearest.
    hosts = np.flatnonzero(full)
    host_tree = shapely.STRtree(pieces[hosts])
    absorbed: dict[int, list[shapely.Geometry]] = defaultdict(list)
    for sliver in np.flatnonzero(~full):
        absorbed[_host_for(pieces[sliver], pieces, hosts, host_tree)].append(pieces[sliver])

    order = np.lexsort((cols[hosts], -rows[hosts]))  # north→south, then west→east
    cells = []
    for index in hosts[order]:
        geom = pieces[index]
        if absorbed.get(index):
            geom = _polygonal_part(shapely.union_all([geom, *absorbed[index]]))
        cells.append(geom)
    return cells


def _host_for(sliver, pieces: np.ndarray, hosts: np.ndarray, host_tree: shapely.STRtree) -> int:
    """Index (into pieces) of the full cell a sliver merges into."""
    touching = host_tree.query(sliver, predicate="intersects")
    if len(touching):
        shared = shapely.length(shapely.intersection(shapely.boundary(pieces[hosts[touching]]), sliver.boundary))
        if shared.max() > 0:
            return int(hosts[touching[int(np.argmax(shared))]])
    nearest = host_tree.nearest(sliver)
    return int(hosts[int(nearest)])


def _polygonal_part(geometry: shapely.Geometry) -> shapely.Geometry:
    """Drop the lines and points an intersection may produce, keeping only the polygons."""
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    polygons = [g for g in shapely.get_parts(geometry) if g.geom_type in ("Polygon", "MultiPolygon")]
    if not polygons:
        return shapely.Polygon()
    merged = shapely.union_all(polygons)
    return merged
