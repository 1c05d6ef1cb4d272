"""Locate lon/lat points in grid cells: vectorised, exact, and fast enough for millions of points.

Edge rule
---------
A point in the interior of a cell belongs to that cell. A point on a boundary shared by two or
more cells (an edge or a vertex) belongs to the one whose code sorts lowest: inside a community
the cell numbered first (the north-west-most), across communities the cell of the lower
community code. A point on the outer boundary of the covered area (the boundary of one cell
only) belongs to that cell. In one line: a point belongs to the lowest code among the cells
that *cover* it (interior or boundary), or to no cell. Codes are compared as strings.

How it works
------------
The total bounds of the cells are cut into a regular grid of buckets, about an eighth of the
median cell extent on a side. Every ring edge of every cell is rasterised into the buckets it
passes within a small margin of (a thousandth of a bucket), and each bucket is classified:

* *free*: no edge comes near it, so the whole bucket lies inside one cell (or outside all of
  them); its cell is stored and points there need no geometry test;
* *single-line*: exactly one straight edge crosses it and no vertex lies in it; the edge splits
  the bucket in two, each side belonging to a known cell (or to none), so a point needs only an
  orientation test against that edge;
* *complex*: everything else (vertices, several edges); points there are tested with shapely
  against the cells whose edges pass through the bucket, lowest code first.

The orientation test is a floating-point filter (Shewchuk's ``orient2d`` error bound): when it
cannot certify the sign (the point is on the edge or within rounding of it) the point falls back
to the shapely test, so every answer equals
``min(code for cell in cells if shapely.covers(cell, Point(lon, lat)))``.

The cells must form a valid layer: their interiors must not overlap, except by slivers thinner
than the margin (floating-point noise along shared edges is fine). Gaps are fine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from gridmap.errors import InvalidInput

if TYPE_CHECKING:
    import geopandas as gpd

# Buckets per median cell extent (per axis), and the cap on their number (memory: ~12 bytes each).
BUCKETS_PER_CELL = 8
MAX_BUCKETS = 4_000_000
# Edges passing within this fraction of a bucket of it are registered in it.
MARGIN = 1e-3
# Points are processed in chunks of this size: it bounds memory and keeps arrays in cache.
CHUNK_SIZE = 65_536
# Shewchuk's ccwerrboundA: |det| >= this * (|detleft| + |detright|) certifies the sign of orient2d.
_ORIENT_ERRBOUND = (3.0 + 16.0 * 2.0**-53) * 2.0**-53

_POLYGON, _MULTIPOLYGON = 3, 6


class CellLocator:
    """Finds the grid cell containing each lon/lat point, by the module's edge rule."""

    def __init__(
        self,
        codes: Sequence[str],
        geometries: Sequence[Any] | np.ndarray,
        *,
        bucket_size: float | tuple[float, float] | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        codes = list(codes)
        geometries = np.asarray(geometries, dtype=object).ravel()
        if len(codes) != len(geometries):
            raise InvalidInput(f"got {len(codes)} codes but {len(geometries)} geometries")
        not_str = [c for c in codes if not isinstance(c, str)]
        if not_str:
            raise InvalidInput(f"cell codes must be strings, got {not_str[0]!r}")
        if len(set(codes)) != len(codes):
            duplicate = next(c for c, k in Counter(codes).items() if k > 1)
            raise InvalidInput(f"duplicate cell code {duplicate!r}")
        try:
            types = shapely.get_type_id(geometries)
        except TypeError:
            raise InvalidInput("cell geometries must be shapely geometries") from None
        bad = np.flatnonzero(~np.isin(types, (_POLYGON, _MULTIPOLYGON)) | shapely.is_empty(geometries))
        if bad.size:
            i = int(bad[0])
            kind = "missing" if geometries[i] is None else geometries[i].geom_type
            raise InvalidInput(f"cell {codes[i]!r}: geometry must be a non-empty Polygon or MultiPolygon, got {kind}")
        if chunk_size < 1:
            raise InvalidInput(f"chunk_size must be positive, got {chunk_size}")

        self.codes: np.ndarray = np.array(codes, dtype=object)
        self.geometries: np.ndarray = geometries
        self._chunk_size = int(chunk_size)
        n = len(codes)
        # Cell indices in code order, and each cell's position in that order.
        self._by_rank = np.argsort(np.array(codes, dtype=str), kind="stable").astype(np.int64)
        self._rank = np.empty(n, dtype=np.int64)
        self._rank[self._by_rank] = np.arange(n)
        self._codes_or_none = np.append(self.codes, None)
        if n == 0:
            self._build_empty()
        else:
            self._build(bucket_size)

    @classmethod
    def from_frame(cls, cells: gpd.GeoDataFrame, **options: Any) -> CellLocator:
        """Build from a GeoDataFrame of cells in WGS84 with a ``code`` column."""
        if "code" not in cells.columns:
            raise InvalidInput("cells need a 'code' column")
        if cells.crs is not None and not cells.crs.equals("EPSG:4326", ignore_axis_order=True):
            raise InvalidInput(f"cells must be in WGS84 lon/lat (EPSG:4326), got {cells.crs.to_string()}")
        return cls(cells["code"].tolist(), np.asarray(cells.geometry.values, dtype=object), **options)

    def __len__(self) -> int:
        return len(self.codes)

    # --- queries ------------------------------------------------------------------------

    def locate_indices(self, lon: Any, lat: Any) -> np.ndarray:
        """Index of the cell containing each point (int64, shape of the broadcast input), -1 if none."""
        x, y, shape = _coordinates(lon, lat)
        out = np.empty(x.size, dtype=np.int64)
        for start, stop in self._chunks(x.size):
            out[start:stop] = self._locate_chunk(x[start:stop], y[start:stop])
        return out.reshape(shape)

    def locate_codes(self, lon: Any, lat: Any) -> np.ndarray:
        """Code of the cell containing each point (object array), None if none."""
        return self._codes_or_none[self.locate_indices(lon, lat)]

    def locate(self, lon: float, lat: float) -> str | None:
        """Code of the cell containing one point, or None."""
        if np.ndim(lon) != 0 or np.ndim(lat) != 0:
            raise InvalidInput("locate takes one point; use locate_codes for arrays")
        return self._codes_or_none[int(self.locate_indices(lon, lat))]

    def count_per_cell(self, lon: Any, lat: Any) -> np.ndarray:
        """Number of points in each cell (int64, one entry per cell); points outside are not counted."""
        x, y, _ = _coordinates(lon, lat)
        counts = np.zeros(len(self.codes), dtype=np.int64)
        for start, stop in self._chunks(x.size):
            found = self._locate_chunk(x[start:stop], y[start:stop])
            counts += np.bincount(found[found >= 0], minlength=len(self.codes))
        return counts

    def describe_index(self) -> dict[str, Any]:
        """Shape of the bucket grid and how many buckets of each kind it has (for tuning)."""
        state = self._state
        return {
            "cells": len(self.codes),
            "grid": (int(self._ny), int(self._nx)),
            "bucket_size": (float(self._dx), float(self._dy)),
            "free": int(np.count_nonzero(state >= -1)),
            "single_line": int(np.count_nonzero((state <= -2) & (state > -2 - self._n_lines))),
            "complex": int(np.count_nonzero(state <= -2 - self._n_lines)),
        }

    # --- lookup -------------------------------------------------------------------------

    def _chunks(self, size: int) -> Iterator[tuple[int, int]]:
        for start in range(0, size, self._chunk_size):
            yield start, min(start + self._chunk_size, size)

    def _locate_chunk(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = np.full(x.size, -1, dtype=np.int64)
        # NaN fails every comparison, so it lands outside.
        inside = np.flatnonzero((x >= self._x0) & (x <= self._x1) & (y >= self._y0) & (y <= self._y1))
        if inside.size == 0:
            return out
        x = x[inside]
        y = y[inside]
        col = ((x - self._x0) * self._sx).astype(np.int64)
        row = ((y - self._y0) * self._sy).astype(np.int64)
        np.minimum(col, self._nx - 1, out=col)
        np.minimum(row, self._ny - 1, out=row)
        row *= self._nx
        row += col
        state = self._state[row].astype(np.int64)
        out[inside] = state  # free buckets are final; the rest is overwritten below

        # A state <= -2 names a row of the candidate table: lines first, then complex buckets.
        csr_row = -2 - state
        on_line = np.flatnonzero((csr_row >= 0) & (csr_row < self._n_lines))
        test = np.flatnonzero(csr_row >= self._n_lines)
        if on_line.size:
            line = csr_row[on_line]
            label, certain = self._side_of_line(line, x[on_line], y[on_line])
            out[inside[on_line[certain]]] = label[certain]
            test = np.concatenate([test, on_line[~certain]])
        if test.size:
            out[inside[test]] = self._first_covering(csr_row[test], x[test], y[test])
        return out

    def _side_of_line(self, line: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The cell on the point's side of each line, and whether the sign of the test is certain."""
        det, certain = _orient(self._line_ax[line], self._line_ay[line], self._line_bx[line], self._line_by[line], x, y)
        label = np.where(det > 0, self._line_left[line], self._line_right[line])
        on = det == 0
        label[on] = self._line_either[line[on]]
        return label, certain

    def _first_covering(self, csr_row: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Exact answer: the first candidate (in code order) of each point's row that covers it."""
        out = np.full(x.size, -1, dtype=np.int64)
        start = self._cand_ptr[csr_row]
        count = self._cand_ptr[csr_row + 1] - start
        pending = np.flatnonzero(count > 0)
        k = 0
        while pending.size:
            cell = self._cand[start[pending] + k]
            hit = shapely.intersects_xy(self.geometries[cell], x[pending], y[pending])
            out[pending[hit]] = cell[hit]
            k += 1
            pending = pending[~hit]
            pending = pending[count[pending] > k]
        return out

    # --- index construction -------------------------------------------------------------

    def _build_empty(self) -> None:
        self._x0 = self._y0 = 0.0
        self._x1 = self._y1 = -1.0  # empty bounds: every point is outside
        self._nx = self._ny = 1
        self._dx = self._dy = self._sx = self._sy = 1.0
        self._state = np.full(1, -1, dtype=np.int32)
        self._n_lines = 0
        self._cand_ptr = np.zeros(1, dtype=np.int64)
        self._cand = np.zeros(0, dtype=np.int64)

    def _build(self, bucket_size: float | tuple[float, float] | None) -> None:
        bounds = shapely.bounds(self.geometries)
        self._x0, self._y0 = float(bounds[:, 0].min()), float(bounds[:, 1].min())
        self._x1, self._y1 = float(bounds[:, 2].max()), float(bounds[:, 3].max())
        self._choose_grid(bounds, bucket_size)

        lines = _lines(self.geometries, self._rank)
        self._store_lines(lines)
        line_bucket, line_id = self._rasterise_lines(lines)
        n_buckets = self._nx * self._ny
        lines_in = np.bincount(line_bucket, minlength=n_buckets)
        free = lines_in == 0
        single = np.flatnonzero(lines_in == 1)
        del lines_in
        line_of = np.empty(n_buckets, dtype=np.int32)
        line_of[line_bucket] = line_id  # read only where exactly one line was registered
        line = line_of[single]
        keep = ~lines["dirty"][line] & ~self._ends_near(single, line)
        single, line = single[keep], line[keep]
        del line_of

        complex_ = ~free
        complex_[single] = False
        complex_buckets = np.flatnonzero(complex_)
        if self._n_lines + complex_buckets.size >= np.iinfo(np.int32).max - 2:
            raise InvalidInput("too many cell edges for one index; use larger buckets")
        state = np.empty(n_buckets, dtype=np.int32)
        state[single] = -2 - line
        state[complex_buckets] = -2 - self._n_lines - np.arange(complex_buckets.size, dtype=np.int32)
        self._store_candidates(lines, complex_, complex_buckets, line_bucket, line_id)
        state[free] = self._label_free_buckets(free, state)
        self._state = state

    def _ends_near(self, bucket: np.ndarray, line: np.ndarray) -> np.ndarray:
        """Whether an end of each line lies within MARGIN of its bucket."""
        row, col = np.divmod(bucket, self._nx)
        near = np.zeros(bucket.size, dtype=bool)
        for x, y in ((self._line_ax, self._line_ay), (self._line_bx, self._line_by)):
            u = (x[line] - self._x0) * self._sx - col
            v = (y[line] - self._y0) * self._sy - row
            near |= (u >= -MARGIN) & (u <= 1 + MARGIN) & (v >= -MARGIN) & (v <= 1 + MARGIN)
        return near

    def _choose_grid(self, bounds: np.ndarray, bucket_size: float | tuple[float, float] | None) -> None:
        span_x = self._x1 - self._x0
        span_y = self._y1 - self._y0
        if bucket_size is None:
            size_x = float(np.median(bounds[:, 2] - bounds[:, 0])) / BUCKETS_PER_CELL
            size_y = float(np.median(bounds[:, 3] - bounds[:, 1])) / BUCKETS_PER_CELL
        else:
            size_x, size_y = (bucket_size, bucket_size) if np.ndim(bucket_size) == 0 else bucket_size
            if not (size_x > 0 and size_y > 0):
                raise InvalidInput(f"bucket_size must be positive, got {bucket_size!r}")
        nx = max(1, int(np.ceil(span_x / size_x))) if size_x > 0 else 1
        ny = max(1, int(np.ceil(span_y / size_y))) if size_y > 0 else 1
        if nx * ny > MAX_BUCKETS:
            shrink = np.sqrt(MAX_BUCKETS / (nx * ny))
            nx, ny = max(1, int(nx * shrink)), max(1, int(ny * shrink))
        self._nx, self._ny = nx, ny
        # A degenerate span (all cells on one line) still needs a positive bucket size.
        self._dx = span_x / nx if span_x > 0 else 1.0
        self._dy = span_y / ny if span_y > 0 else 1.0
        self._sx, self._sy = 1.0 / self._dx, 1.0 / self._dy

    def _store_lines(self, lines: dict[str, np.ndarray]) -> None:
        self._n_lines = len(lines["ax"])
        self._line_ax, self._line_ay = lines["ax"], lines["ay"]
        self._line_bx, self._line_by = lines["bx"], lines["by"]
        self._line_left, self._line_right = lines["left"], lines["right"]
        self._line_either = lines["either"]

    def _rasterise_lines(self, lines: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(bucket, line) for every bucket that a line passes within MARGIN of."""
        u0 = (lines["ax"] - self._x0) * self._sx
        v0 = (lines["ay"] - self._y0) * self._sy
        u1 = (lines["bx"] - self._x0) * self._sx
        v1 = (lines["by"] - self._y0) * self._sy
        flat = np.abs(u1 - u0) >= np.abs(v1 - v0)
        ids = np.arange(u0.size)
        # Walk the longer axis so that each step meets at most three buckets across.
        cols_a, rows_a, line_a = _supercover(u0[flat], v0[flat], u1[flat], v1[flat], self._nx, self._ny)
        rows_b, cols_b, line_b = _supercover(v0[~flat], u0[~flat], v1[~flat], u1[~flat], self._ny, self._nx)
        bucket = np.concatenate([rows_a * self._nx + cols_a, rows_b * self._nx + cols_b])
        line = np.concatenate([ids[flat][line_a], ids[~flat][line_b]])
        return bucket, line

    def _store_candidates(
        self,
        lines: dict[str, np.ndarray],
        complex_: np.ndarray,
        complex_buckets: np.ndarray,
        line_bucket: np.ndarray,
        line_id: np.ndarray,
    ) -> None:
        """Candidate table: one row per line (its cells), then one per complex bucket (the cells of its lines)."""
        n = len(self.codes)
        row_of_bucket = np.empty(complex_.size, dtype=np.int32)
        row_of_bucket[complex_buckets] = np.arange(complex_buckets.size)
        keep = complex_[line_bucket]
        bucket_row = row_of_bucket[line_bucket[keep]].astype(np.int64)
        line = line_id[keep]
        owner_ptr, owner_rank = lines["owner_ptr"], lines["owner_rank"]
        per_line = owner_ptr[line + 1] - owner_ptr[line]
        row = np.repeat(bucket_row, per_line)
        first = np.repeat(owner_ptr[line], per_line)
        offset = np.arange(row.size) - np.repeat(np.cumsum(per_line) - per_line, per_line)
        keys = _sorted_unique(row * n + owner_rank[first + offset])
        complex_counts = np.bincount(keys // n, minlength=complex_buckets.size)
        counts = np.concatenate([np.diff(owner_ptr), complex_counts])
        self._cand_ptr = np.zeros(counts.size + 1, dtype=np.int64)
        np.cumsum(counts, out=self._cand_ptr[1:])
        self._cand = self._by_rank[np.concatenate([owner_rank, keys % n])]

    def _label_free_buckets(self, free: np.ndarray, state: np.ndarray) -> np.ndarray:
        """Cell of each free bucket, taken from a single-line neighbour in its row or located exactly."""
        grid = free.reshape(self._ny, self._nx)
        run_start = grid.copy()
        run_start[:, 1:] &= ~grid[:, :-1]
        run_end = grid.copy()
        run_end[:, :-1] &= ~grid[:, 1:]
        starts = np.flatnonzero(run_start)
        ends = np.flatnonzero(run_end)
        label = np.full(starts.size, -1, dtype=np.int64)
        todo = np.ones(starts.size, dtype=bool)
        # A line near a free bucket never crosses it, so the bucket lies wholly on one side of it.
        for bucket, neighbour, at_edge in (
            (starts, starts - 1, starts % self._nx == 0),
            (ends, ends + 1, ends % self._nx == self._nx - 1),
        ):
            usable = np.flatnonzero(todo & ~at_edge)
            line = -2 - state[neighbour[usable]].astype(np.int64)
            is_single = (line >= 0) & (line < self._n_lines)
            usable, line = usable[is_single], line[is_single]
            cx, cy = self._bucket_centres(bucket[usable])
            side, certain = self._side_of_line(line, cx, cy)
            label[usable[certain]] = side[certain]
            todo[usable[certain]] = False
        rest = np.flatnonzero(todo)
        if rest.size:
            label[rest] = self._locate_exactly(*self._bucket_centres(starts[rest]))
        return np.repeat(label, ends - starts + 1)

    def _bucket_centres(self, bucket: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        row, col = np.divmod(bucket, self._nx)
        return self._x0 + (col + 0.5) * self._dx, self._y0 + (row + 0.5) * self._dy

    def _locate_exactly(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The edge rule by brute force through an STRtree (for the few points the grid cannot settle)."""
        point, cell = shapely.STRtree(self.geometries).query(shapely.points(x, y), predicate="intersects")
        best = np.full(x.size, len(self.codes), dtype=np.int64)
        np.minimum.at(best, point, self._rank[cell])
        found = best < len(self.codes)
        out = np.full(x.size, -1, dtype=np.int64)
        out[found] = self._by_rank[best[found]]
        return out


def _coordinates(lon: Any, lat: Any) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Flat float64 lon and lat arrays of the broadcast shape, and that shape."""
    try:
        x = np.asarray(lon, dtype=np.float64)
        y = np.asarray(lat, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInput("lon and lat must be numbers or arrays of numbers") from None
    try:
        x, y = np.broadcast_arrays(x, y)
    except ValueError:
        raise InvalidInput(f"lon and lat have different shapes: {x.shape} and {y.shape}") from None
    return x.ravel(), y.ravel(), x.shape


def _orient(
    ax: np.ndarray, ay: np.ndarray, bx: np.ndarray, by: np.ndarray, px: np.ndarray, py: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """orient2d(a, b, p) in floats (> 0: p left of a→b) and whether its sign is certified exact."""
    left = (ax - px) * (by - py)
    right = (ay - py) * (bx - px)
    det = left - right
    certain = np.abs(det) >= _ORIENT_ERRBOUND * (np.abs(left) + np.abs(right))
    return det, certain


def _polygons(geometries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The polygons of all cells (MultiPolygons split) and the cell of each."""
    multi = np.flatnonzero(shapely.get_type_id(geometries) == _MULTIPOLYGON)
    if multi.size == 0:  # get_parts costs more than the rest of the index build; skip it if we can
        return geometries, np.arange(geometries.size)
    per_cell = np.ones(geometries.size, dtype=np.int64)
    per_cell[multi] = shapely.get_num_geometries(geometries[multi])
    first = np.cumsum(per_cell) - per_cell
    polygons = np.repeat(geometries, per_cell)
    pieces, piece_cell = shapely.get_parts(geometries[multi], return_index=True)
    within = np.arange(piece_cell.size) - np.searchsorted(piece_cell, piece_cell)
    polygons[first[multi][piece_cell] + within] = pieces
    return polygons, np.repeat(np.arange(geometries.size), per_cell)


def _edges(geometries: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every ring edge (ax, ay, bx, by, cell), directed so that its cell lies on its left."""
    parts, part_cell = _polygons(geometries)
    coords = shapely.get_coordinates(parts)
    # Ring sizes without building ring objects, except for the few polygons with holes.
    holes = shapely.get_num_interior_rings(parts)
    rings_per_part = holes + 1
    first_ring = np.cumsum(rings_per_part) - rings_per_part
    ring_size = np.repeat(shapely.get_num_coordinates(parts), rings_per_part)
    holed = np.flatnonzero(holes)
    if holed.size:
        rings, ring_part = shapely.get_rings(parts[holed], return_index=True)
        within = np.arange(ring_part.size) - np.searchsorted(ring_part, ring_part)
        ring_size[first_ring[holed][ring_part] + within] = shapely.get_num_coordinates(rings)
    ring_part = np.repeat(np.arange(parts.size), rings_per_part)
    exterior = np.zeros(ring_size.size, dtype=bool)
    exterior[first_ring] = True

    # The last coordinate of a ring closes it and starts no edge.
    edges_per_ring = ring_size - 1
    ring = np.repeat(np.arange(ring_size.size), edges_per_ring)
    first_coord = np.cumsum(ring_size) - ring_size
    start = np.arange(ring.size) + np.repeat(first_coord - (np.cumsum(edges_per_ring) - edges_per_ring), edges_per_ring)
    x, y = coords[:, 0], coords[:, 1]
    ax, ay, bx, by = x[start], y[start], x[start + 1], y[start + 1]
    keep = (ax != bx) | (ay != by)
    ax, ay, bx, by, ring = ax[keep], ay[keep], bx[keep], by[keep], ring[keep]

    # Exteriors must run counter-clockwise and holes clockwise (shoelace about each ring's start).
    ox, oy = x[first_coord][ring], y[first_coord][ring]
    term_a = (ax - ox) * (by - oy)
    term_b = (bx - ox) * (ay - oy)
    area2 = np.bincount(ring, weights=term_a - term_b, minlength=ring_size.size)
    scale = np.bincount(ring, weights=np.abs(term_a) + np.abs(term_b), minlength=ring_size.size)
    ccw = area2 > 0
    for r in np.flatnonzero(np.abs(area2) <= 1e-9 * scale):
        ccw[r] = shapely.is_ccw(shapely.linearrings(coords[first_coord[r] : first_coord[r] + ring_size[r]]))
    flip = (ccw != exterior)[ring]
    ax, bx = np.where(flip, bx, ax), np.where(flip, ax, bx)
    ay, by = np.where(flip, by, ay), np.where(flip, ay, by)
    return ax, ay, bx, by, part_cell[ring_part[ring]]


def _lines(geometries: np.ndarray, rank: np.ndarray) -> dict[str, np.ndarray]:
    """Distinct straight edges of all cells, each with the cell on its left and on its right.

    An edge shared by two cells is one line with a cell on each side. A line with two cells on
    one side (overlapping cells) is marked dirty.
    """
    ax, ay, bx, by, owner = _edges(geometries)
    # Write every edge lexicographically smaller end first; a reversed edge's cell is on the right.
    reverse = (ax > bx) | ((ax == bx) & (ay > by))
    px, qx = np.where(reverse, bx, ax), np.where(reverse, ax, bx)
    py, qy = np.where(reverse, by, ay), np.where(reverse, ay, by)
    # Group equal edges by sorting a hash of their coordinates. A collision can only split a group,
    # which leaves its buckets "complex" (tested exactly): slower, never wrong.
    bits = [np.ascontiguousarray(c).view(np.uint64) for c in (px, py, qx, qy)]
    digest = bits[0] * np.uint64(0x9E3779B97F4A7C15)
    for word, mult in zip(bits[1:], (0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5)):
        digest ^= word * np.uint64(mult)
        digest ^= digest >> np.uint64(29)
    order = np.argsort(digest)
    px, py, qx, qy, owner, reverse = px[order], py[order], qx[order], qy[order], owner[order], reverse[order]
    new = np.ones(px.size, dtype=bool)
    new[1:] = (px[1:] != px[:-1]) | (py[1:] != py[:-1]) | (qx[1:] != qx[:-1]) | (qy[1:] != qy[:-1])
    line = np.cumsum(new) - 1
    n_lines = int(line[-1]) + 1 if line.size else 0

    left = np.full(n_lines, -1, dtype=np.int64)
    right = np.full(n_lines, -1, dtype=np.int64)
    left[line[~reverse]] = owner[~reverse]
    right[line[reverse]] = owner[reverse]
    dirty = (np.bincount(line[~reverse], minlength=n_lines) > 1) | (np.bincount(line[reverse], minlength=n_lines) > 1)
    # On the line itself a point is covered by both sides: the lower code wins.
    n = len(rank)
    left_rank = np.where(left >= 0, rank[left], n)
    right_rank = np.where(right >= 0, rank[right], n)
    either = np.where(left_rank <= right_rank, left, right)

    # Cells of each line in code order (usually one or two), for exact fallback tests.
    keys = _sorted_unique(line * n + rank[owner])
    owner_ptr = np.zeros(n_lines + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys // n, minlength=n_lines), out=owner_ptr[1:])
    return {
        "ax": px[new],
        "ay": py[new],
        "bx": qx[new],
        "by": qy[new],
        "left": left,
        "right": right,
        "either": either,
        "dirty": dirty,
        "owner_ptr": owner_ptr,
        "owner_rank": keys % n,
    }


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique for int arrays, by sorting (much faster than numpy's hash-based unique here)."""
    values = np.sort(values)
    if values.size:
        keep = np.ones(values.size, dtype=bool)
        keep[1:] = values[1:] != values[:-1]
        values = values[keep]
    return values


def _supercover(
    u0: np.ndarray, v0: np.ndarray, u1: np.ndarray, v1: np.ndarray, n_u: int, n_v: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u index, v index, segment) of every unit bucket that a segment passes within MARGIN of.

    Coordinates are in bucket units (0..n). Segments must be at least as long along u as along v,
    so each unit step in u meets at most three buckets in v.
    """
    swap = u0 > u1
    u0, u1 = np.where(swap, u1, u0), np.where(swap, u0, u1)
    v0, v1 = np.where(swap, v1, v0), np.where(swap, v0, v1)
    # Coordinates are >= 0, so truncation is floor here (and much faster than np.floor).
    first = np.minimum((u0 - MARGIN).astype(np.int64), n_u - 1)
    last = np.minimum((u1 + MARGIN).astype(np.int64), n_u - 1)
    steps = last - first + 1
    seg = np.repeat(np.arange(u0.size), steps)
    iu = np.arange(seg.size) - np.repeat(np.cumsum(steps) - steps - first, steps)
    # v = c + slope * u along each segment; a segment shorter than a float step is a point.
    slope = np.divide(v1 - v0, u1 - u0, out=np.zeros(u0.size), where=u1 > u0)
    c = v0 - u0 * slope
    seg_slope, seg_c = slope[seg], c[seg]
    v_a = seg_c + np.maximum(iu - MARGIN, u0[seg]) * seg_slope
    v_b = seg_c + np.minimum(iu + (1 + MARGIN), u1[seg]) * seg_slope
    v_first = np.minimum((np.minimum(v_a, v_b) - MARGIN).astype(np.int64), n_v - 1)
    v_last = np.minimum((np.maximum(v_a, v_b) + MARGIN).astype(np.int64), n_v - 1)
    two = v_last > v_first
    three = v_last > v_first + 1
    return (
        np.concatenate([iu, iu[two], iu[three]]),
        np.concatenate([v_first, v_first[two] + 1, v_first[three] + 2]),
        np.concatenate([seg, seg[two], seg[three]]),
    )
