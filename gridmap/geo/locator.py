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
median cell extent on a side. Every edge of every cell ring is rasterised into the buckets it
passes within a small margin of (a thousandth of a bucket), and each bucket is classified:

* *free*: no edge comes near it, so the whole bucket lies inside one cell (or outside all of
  them); the cell, found once from a neighbouring bucket, is stored and points there need no
  geometry test;
* *single-line*: exactly one straight edge crosses it and no vertex lies in it; the edge splits
  the bucket in two, each side belonging to a known cell (or to none), so a point needs one
  orientation test against that edge;
* *star*: one vertex lies in it and every edge in it ends at that vertex (a corner where cells
  meet); the edges cut the bucket into sectors, each belonging to one cell, and a point needs
  an orientation test per edge;
* *complex*: everything else; points there are tested with shapely against the cells whose
  edges pass through the bucket, lowest code first.

Orientation tests are computed in floating point and trusted only beyond an error bound (at
least Shewchuk's ``orient2d`` filter bound): when the sign is not certain (the point is on an
edge or within rounding of it), the point goes to the shapely test instead, so every answer equals
``min(code for cell in cells if shapely.covers(cell, Point(lon, lat)))``.

The cells are expected to form a valid layer: interiors that do not overlap (gaps are fine).
Overlaps narrower than about half a bucket (1/16 of a cell side), such as rounding or an
imported layer may leave along shared edges, are still resolved exactly; where cells overlap
more, a point in the overlap gets one of the cells covering it, not necessarily the lowest code.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from gridmap.errors import InvalidInput
from gridmap.geo.cell_edges import (
    MARGIN,
    MULTIPOLYGON,
    ORIENT_ERRBOUND,
    POLYGON,
    distinct_lines,
    group_starts,
    orient,
    ranges,
    sorted_unique,
    supercover,
)

if TYPE_CHECKING:
    import geopandas as gpd

# Buckets per median cell extent (per axis), and the cap on their number (an index keeps 4 bytes
# per bucket; building it peaks at about 22).
BUCKETS_PER_CELL = 8
MAX_BUCKETS = 4_000_000
# Corners with more edges than this stay complex buckets.
MAX_STAR_EDGES = 4
# Points are processed in chunks of this size: it bounds memory and keeps arrays in cache.
CHUNK_SIZE = 131_072
# Star edges closer in angle than this (radians) might be sorted wrongly: such corners stay complex.
_MIN_ANGLE = 1e-9


class CellLocator:
    """Finds the grid cell containing each lon/lat point, by the module's edge rule."""

    # The edges' count and "dirty" flags, set by _store_lines (or _build_empty) and read by _build.
    _n_lines: int
    _line_dirty: np.ndarray

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
        bad = np.flatnonzero(~np.isin(types, (POLYGON, MULTIPOLYGON)) | shapely.is_empty(geometries))
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
        self._codes_or_none = np.append(self.codes, np.array([None], dtype=object))
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

    # --- queries ------------------------------------------------------------------------------

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
            found += 1  # -1 (outside) goes to bin 0, dropped below
            counts += np.bincount(found, minlength=len(self.codes) + 1)[1:]
        return counts

    def describe_index(self) -> dict[str, Any]:
        """Shape of the bucket grid and how many buckets of each kind it has (for tuning)."""
        state = self._state
        complex_ = state <= -2 - self._n_lines
        return {
            "cells": len(self.codes),
            "grid": (int(self._ny), int(self._nx)),
            "bucket_size": (float(self._dx), float(self._dy)),
            "free": int(np.count_nonzero(state >= -1)),
            "single_line": int(np.count_nonzero((state <= -2) & ~complex_)),
            "star": int(np.count_nonzero(self._star_of_row >= 0)),
            "complex": int(np.count_nonzero(complex_) - np.count_nonzero(self._star_of_row >= 0)),
        }

    # --- lookup -------------------------------------------------------------------------------
    #
    # The state of a bucket (an int32) is its cell (>= 0) or -1 for a free bucket; for the others
    # it is -2 - r, with r < n_lines the line of a single-line bucket and r - n_lines the row of a
    # star or complex bucket in the candidate table (which lists the lines' cells first).

    def _chunks(self, size: int) -> Iterator[tuple[int, int]]:
        for start in range(0, size, self._chunk_size):
            yield start, min(start + self._chunk_size, size)

    def _locate_chunk(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        # Points beyond the grid (and NaN, which fmax/fmin drop) land in its outer ring of empty buckets;
        # huge coordinates (1e308) overflow to ±inf on the way, which the clamping handles the same.
        with np.errstate(over="ignore", invalid="ignore"):
            col = x - self._x0
            col *= self._sx
            row = y - self._y0
            row *= self._sy
        np.fmax(col, 0, out=col)
        np.fmin(col, self._nx - 1, out=col)
        np.fmax(row, 0, out=row)
        np.fmin(row, self._ny - 1, out=row)
        bucket = row.astype(np.int64)
        bucket *= self._nx
        bucket += col.astype(np.int64)
        found = np.take(self._state, bucket)  # final in free buckets; the others are settled below

        special = np.flatnonzero(found < -1)
        if special.size:
            table_row = -2 - found[special]
            single = table_row < self._n_lines
            on_line, line = special[single], table_row[single]
            label, line_certain = self._side_of_line(line, x[on_line], y[on_line])
            found[on_line[line_certain]] = label[line_certain]

            others, other_row = special[~single], table_row[~single]
            star = self._star_of_row[other_row - self._n_lines]
            at_star = star >= 0
            at_corner = others[at_star]
            label, star_certain = self._sector_of_star(star[at_star], x[at_corner], y[at_corner])
            found[at_corner[star_certain]] = label[star_certain]

            exact = np.concatenate([on_line[~line_certain], at_corner[~star_certain], others[~at_star]])
            if exact.size:
                rows = np.concatenate([line[~line_certain], other_row[at_star][~star_certain], other_row[~at_star]])
                found[exact] = self._first_covering(rows, x[exact], y[exact])
        return found

    def _side_of_line(self, line: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The cell on each point's side of its line, and whether the side is certain."""
        # orient2d(a, b, p) = (ax - x)(by - y) - (ay - y)(bx - x), in place: this is the hot loop.
        det = np.take(self._line_ax, line)
        det -= x
        term = np.take(self._line_by, line)
        term -= y
        det *= term
        other = np.take(self._line_ay, line)
        other -= y
        np.take(self._line_bx, line, out=term)
        term -= x
        other *= term
        det -= other
        label = np.take(self._line_sides, 2 * line + (det > 0))
        np.abs(det, out=det)
        return label, det > np.take(self._line_slack, line)

    def _sector_of_star(self, star: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The cell of the sector (around each star's corner) holding each point, and whether that is certain."""
        to_corner_x = np.take(self._star_vx, star)
        to_corner_x -= x
        to_corner_y = np.take(self._star_vy, star)
        to_corner_y -= y
        certain = np.ones(star.size, dtype=bool)
        left_of, right_of = [], []
        for k in range(MAX_STAR_EDGES):
            det = np.take(self._star_ey[k], star)
            det -= y
            det *= to_corner_x
            term = np.take(self._star_ex[k], star)
            term -= x
            term *= to_corner_y
            det -= term
            left_of.append(det > 0)
            right_of.append(det < 0)
            np.abs(det, out=det)
            certain &= det > np.take(self._star_slack[k], star)
        # Sector k runs counter-clockwise from edge k to edge k + 1: left of the one, right of the other.
        within = []
        for k in range(MAX_STAR_EDGES):
            after, before = left_of[k], right_of[(k + 1) % MAX_STAR_EDGES]
            within.append(np.where(np.take(self._star_reflex[k], star), after | before, after & before))
        cells = [np.take(self._star_cell[k], star) for k in range(MAX_STAR_EDGES)]
        return np.select(within, cells, -1), certain

    def _first_covering(self, table_row: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Exact answer: the first candidate (in code order) of each point's table row that covers it."""
        out = np.full(x.size, -1, dtype=np.int64)
        start = self._cand_ptr[table_row]
        count = self._cand_ptr[table_row + 1] - start
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

    # --- index construction -------------------------------------------------------------------

    def _build(self, bucket_size: float | tuple[float, float] | None) -> None:
        if len(self.codes) == 0:
            self._build_empty()
            return
        self._choose_grid(shapely.bounds(self.geometries), bucket_size)
        self._store_lines(distinct_lines(self.geometries, self._rank))

        line_bucket, line_id = self._rasterise_lines()
        n_buckets = self._nx * self._ny
        lines_in = np.bincount(line_bucket, minlength=n_buckets)
        free = lines_in == 0
        single = np.flatnonzero((lines_in == 1) & ~self._vertex_buckets())
        del lines_in
        line_of = np.empty(n_buckets, dtype=np.int32)
        line_of[line_bucket] = line_id  # read only where exactly one line was registered
        line = line_of[single]
        clean = ~self._line_dirty[line]
        single, line = single[clean], line[clean]
        del line_of

        special = ~free  # star or complex
        special[single] = False
        hidden_bucket, hidden_cell = self._hidden_cells(line_bucket, line_id)
        special[hidden_bucket] = True
        clean = ~special[single]
        single, line = single[clean], line[clean]
        special_buckets = np.flatnonzero(special)
        if self._n_lines + special_buckets.size >= np.iinfo(np.int32).max - 2:
            raise InvalidInput("too many cell edges for one index; use larger buckets")
        state = np.empty(n_buckets, dtype=np.int32)
        state[single] = -2 - line
        state[special_buckets] = -2 - self._n_lines - np.arange(special_buckets.size, dtype=np.int32)

        row_of_bucket = np.empty(n_buckets, dtype=np.int32)
        row_of_bucket[special_buckets] = np.arange(special_buckets.size, dtype=np.int32)
        in_special = special[line_bucket]
        pair_row = row_of_bucket[line_bucket[in_special]].astype(np.int64)
        pair_line = line_id[in_special]
        hidden_row = row_of_bucket[hidden_bucket].astype(np.int64)
        del row_of_bucket, in_special
        self._store_candidates(pair_row, pair_line, special_buckets.size, hidden_row, hidden_cell)
        self._store_stars(special_buckets, pair_row, pair_line, hidden_row)
        state[free] = self._label_free_buckets(free, state)
        self._state = state

    def _build_empty(self) -> None:
        self._x0 = self._y0 = 0.0
        self._nx = self._ny = 1
        self._dx = self._dy = self._sx = self._sy = 1.0
        self._state = np.full(1, -1, dtype=np.int32)
        self._n_lines = 0
        self._star_of_row = np.zeros(0, dtype=np.int32)

    def _choose_grid(self, bounds: np.ndarray, bucket_size: float | tuple[float, float] | None) -> None:
        self._x0, self._y0 = float(bounds[:, 0].min()), float(bounds[:, 1].min())
        span_x = float(bounds[:, 2].max()) - self._x0
        span_y = float(bounds[:, 3].max()) - self._y0
        if bucket_size is None:
            size_x = float(np.median(bounds[:, 2] - bounds[:, 0])) / BUCKETS_PER_CELL
            size_y = float(np.median(bounds[:, 3] - bounds[:, 1])) / BUCKETS_PER_CELL
        else:
            sizes = np.broadcast_to(np.asarray(bucket_size, dtype=float), (2,))  # one size or (x, y)
            size_x, size_y = float(sizes[0]), float(sizes[1])
            if not (size_x > 0 and size_y > 0):
                raise InvalidInput(f"bucket_size must be positive, got {bucket_size!r}")
        nx = max(1, int(np.ceil(span_x / size_x))) if size_x > 0 else 1
        ny = max(1, int(np.ceil(span_y / size_y))) if size_y > 0 else 1
        if (nx + 4) * (ny + 4) > MAX_BUCKETS:
            shrink = np.sqrt(MAX_BUCKETS / ((nx + 4) * (ny + 4)))
            nx, ny = max(1, int(nx * shrink)), max(1, int(ny * shrink))
        # A degenerate span (all cells on one line) still needs a positive bucket size.
        self._dx = span_x / nx if span_x > 0 else 1.0
        self._dy = span_y / ny if span_y > 0 else 1.0
        self._sx, self._sy = 1.0 / self._dx, 1.0 / self._dy
        # Two rings of buckets around the bounds: the outer one is empty, and points beyond the
        # grid are clamped into it, so lookups need no bounds test.
        self._x0 -= 2 * self._dx
        self._y0 -= 2 * self._dy
        self._nx, self._ny = nx + 4, ny + 4

    def _store_lines(self, lines: dict[str, np.ndarray]) -> None:
        self._n_lines = len(lines["ax"])
        self._line_ax, self._line_ay = lines["ax"], lines["ay"]
        self._line_bx, self._line_by = lines["bx"], lines["by"]
        self._line_left, self._line_right = lines["left"], lines["right"]
        self._line_sides = np.stack([lines["right"], lines["left"]], axis=1).ravel()  # indexed by 2 * line + left
        self._line_dirty = lines["dirty"]
        self._line_slack = self._slack(self._line_bx - self._line_ax, self._line_by - self._line_ay)
        self._owner_ptr, self._owner_rank = lines["owner_ptr"], lines["owner_rank"]

    def _slack(self, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """Rounding bound of the orientation test of an edge (dx, dy) for points at most 1.5 buckets beyond it.

        It is twice Shewchuk's orient2d filter bound for the largest terms such points can give.
        """
        reach_x = np.abs(dx) + 3 * self._dx
        reach_y = np.abs(dy) + 3 * self._dy
        return 4 * ORIENT_ERRBOUND * reach_x * reach_y

    def _rasterise_lines(self) -> tuple[np.ndarray, np.ndarray]:
        """(bucket, line) for every bucket that a line passes within MARGIN of."""
        u0 = (self._line_ax - self._x0) * self._sx
        v0 = (self._line_ay - self._y0) * self._sy
        u1 = (self._line_bx - self._x0) * self._sx
        v1 = (self._line_by - self._y0) * self._sy
        is_flat = np.abs(u1 - u0) >= np.abs(v1 - v0)
        # Walk the longer axis so that each step meets at most three buckets across.
        flat, steep = np.flatnonzero(is_flat), np.flatnonzero(~is_flat)
        bucket_a, line_a = supercover(u0[flat], v0[flat], u1[flat], v1[flat], (self._nx, 1), (self._ny, self._nx))
        bucket_b, line_b = supercover(v0[steep], u0[steep], v1[steep], u1[steep], (self._ny, self._nx), (self._nx, 1))
        return np.concatenate([bucket_a, bucket_b]), np.concatenate([flat[line_a], steep[line_b]])

    def _vertex_buckets(self) -> np.ndarray:
        """Mask of the buckets that a line end lies within MARGIN of."""
        u = (np.concatenate([self._line_ax, self._line_bx]) - self._x0) * self._sx
        v = (np.concatenate([self._line_ay, self._line_by]) - self._y0) * self._sy
        mask = np.zeros(self._nx * self._ny, dtype=bool)
        for du in (-MARGIN, MARGIN):
            col = np.minimum((u + du).astype(np.int64), self._nx - 1)  # truncation: -MARGIN..0 gives 0
            for dv in (-MARGIN, MARGIN):
                mask[np.minimum((v + dv).astype(np.int64), self._ny - 1) * self._nx + col] = True
        return mask

    def _near(self, x: np.ndarray, y: np.ndarray, col: np.ndarray, row: np.ndarray) -> np.ndarray:
        """Whether each point lies within MARGIN of its bucket (col, row)."""
        u = (x - self._x0) * self._sx - col
        v = (y - self._y0) * self._sy - row
        return (u >= -MARGIN) & (u <= 1 + MARGIN) & (v >= -MARGIN) & (v <= 1 + MARGIN)

    def _hidden_cells(self, line_bucket: np.ndarray, line_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(bucket, cell) where a cell contains a whole bucket that edges of other cells cross.

        That takes overlapping cells, and thin overlaps pass layer validation: there the side of
        an edge that has no cell of its own (an edge along the outer boundary, or along a
        neighbour whose vertices differ) may lie inside a cell whose edges run just outside the
        bucket. So the buckets crossed by such an edge are checked, at their centre.
        """
        n = len(self.codes)
        open_line = (self._line_left < 0) | (self._line_right < 0)
        risky = np.zeros(self._nx * self._ny, dtype=bool)
        risky[line_bucket[open_line[line_id]]] = True
        buckets = np.flatnonzero(risky)
        if buckets.size == 0:
            return buckets, buckets
        cx, cy = self._bucket_centres(buckets)
        point, cell = shapely.STRtree(self.geometries).query(shapely.points(cx, cy))  # bounding boxes only
        bucket = buckets[point]
        # Cells with an edge registered in the bucket are among its candidates already.
        in_risky = risky[line_bucket]
        known = self._owner_keys(line_bucket[in_risky], line_id[in_risky])
        keys = bucket * n + self._rank[cell]
        at = np.minimum(np.searchsorted(known, keys), known.size - 1)
        unknown = np.flatnonzero(known[at] != keys)
        hidden = unknown[shapely.intersects_xy(self.geometries[cell[unknown]], cx[point[unknown]], cy[point[unknown]])]
        return bucket[hidden], cell[hidden]

    def _owner_keys(self, row: np.ndarray, line: np.ndarray) -> np.ndarray:
        """Sorted unique row * n_cells + rank for every cell of every (row, line) pair."""
        per_line = self._owner_ptr[line + 1] - self._owner_ptr[line]
        rank = self._owner_rank[ranges(self._owner_ptr[line], per_line)]
        return sorted_unique(np.repeat(row, per_line) * len(self.codes) + rank)

    def _store_candidates(
        self, pair_row: np.ndarray, pair_line: np.ndarray, n_rows: int, hidden_row: np.ndarray, hidden_cell: np.ndarray
    ) -> None:
        """Candidate table: a row per line (its cells), then one per star or complex bucket (its lines' cells)."""
        n = len(self.codes)
        keys = self._owner_keys(pair_row, pair_line)
        if hidden_row.size:
            keys = sorted_unique(np.concatenate([keys, hidden_row * n + self._rank[hidden_cell]]))
        counts = np.concatenate([np.diff(self._owner_ptr), np.bincount(keys // n, minlength=n_rows)])
        self._cand_ptr = np.zeros(counts.size + 1, dtype=np.int64)
        np.cumsum(counts, out=self._cand_ptr[1:])
        self._cand = self._by_rank[np.concatenate([self._owner_rank, keys % n])]

    def _store_stars(
        self, special_buckets: np.ndarray, pair_row: np.ndarray, pair_line: np.ndarray, hidden_row: np.ndarray
    ) -> None:
        """Find the star buckets among the special ones (not those hiding a cell) and tabulate their sectors."""
        n_rows = special_buckets.size
        row, line = pair_row, pair_line
        count = np.bincount(row, minlength=n_rows)
        bucket_row, bucket_col = np.divmod(special_buckets[row], self._nx)
        ax, ay, bx, by = self._line_ax[line], self._line_ay[line], self._line_bx[line], self._line_by[line]
        near_a = self._near(ax, ay, bucket_col, bucket_row)
        near_b = self._near(bx, by, bucket_col, bucket_row)
        # Each edge runs from the corner V to its far end E; seen that way, a line leaving from
        # its start keeps its left cell on the left.
        vx, vy = np.where(near_a, ax, bx), np.where(near_a, ay, by)
        ex, ey = np.where(near_a, bx, ax), np.where(near_a, by, ay)
        left = np.where(near_a, self._line_left[line], self._line_right[line])
        right = np.where(near_a, self._line_right[line], self._line_left[line])
        # Every edge of a star ends at the same corner: compare with the corner one of them wrote.
        corner_x, corner_y = np.empty(n_rows), np.empty(n_rows)
        corner_x[row], corner_y[row] = vx, vy
        fits = (near_a != near_b) & ~self._line_dirty[line] & (vx == corner_x[row]) & (vy == corner_y[row])
        is_star = (count >= 2) & (count <= MAX_STAR_EDGES) & (np.bincount(row[~fits], minlength=n_rows) == 0)
        is_star[hidden_row] = False

        # Sort each corner's edges counter-clockwise (rows stay apart in the key; a wrong order
        # from rounding shows up as a negative turn below) and check that the sectors are sound.
        angle = np.arctan2(ey - vy, ex - vx)
        order = np.argsort(row + (angle + np.pi) / (2 * np.pi + 1e-6))
        order = order[is_star[row[order]]]
        row, vx, vy, ex, ey, left, right, angle = (
            np.take(a, order) for a in (row, vx, vy, ex, ey, left, right, angle)
        )
        edges = count[row]
        starts = group_starts(row)
        k = ranges(np.zeros(starts.size, dtype=np.int64), edges[starts])  # position around the corner
        first = np.arange(row.size) - k
        last = k + 1 == edges
        following = np.where(last, first, np.arange(row.size) + 1)
        turn = angle[following] - angle + np.where(last, 2 * np.pi, 0.0)
        cross, certain = orient(vx, vy, ex, ey, ex[following], ey[following])
        reflex = cross < 0
        fine = (turn > _MIN_ANGLE) & certain & (left == right[following])
        is_star[row[~fine]] = False
        is_star &= np.bincount(row[reflex], minlength=n_rows) <= 1  # at most one sector wider than 180°

        keep = is_star[row]
        star_rows = np.flatnonzero(is_star)
        self._star_of_row = np.full(n_rows, -1, dtype=np.int32)
        self._star_of_row[star_rows] = np.arange(star_rows.size, dtype=np.int32)
        star, k = self._star_of_row[row[keep]], k[keep]
        self._star_vx = np.empty(star_rows.size)
        self._star_vy = np.empty(star_rows.size)
        self._star_vx[star] = vx[keep]
        self._star_vy[star] = vy[keep]
        # Tables of MAX_STAR_EDGES rows: a star with fewer edges repeats its first edge, which
        # adds empty sectors only, so sector k always ends at edge k + 1.
        shape = (MAX_STAR_EDGES, star_rows.size)
        self._star_ex, self._star_ey = np.empty(shape), np.empty(shape)
        self._star_slack, self._star_cell = np.empty(shape), np.empty(shape, dtype=np.int64)
        self._star_reflex = np.zeros(shape, dtype=bool)
        slack = self._slack(ex - vx, ey - vy)
        first_edge = k == 0
        for table, values in (
            (self._star_ex, ex), (self._star_ey, ey), (self._star_slack, slack), (self._star_cell, left)
        ):
            values = values[keep]
            table[:] = values[first_edge]  # stars are numbered in row order, like their first edges
            table[k, star] = values
        self._star_reflex[k, star] = reflex[keep]

    def _label_free_buckets(self, free: np.ndarray, state: np.ndarray) -> np.ndarray:
        """Cell of each free bucket: a run of them in a row lies in one cell, known from a neighbour."""
        grid = free.reshape(self._ny, self._nx)
        run_start = grid.copy()
        run_start[:, 1:] &= ~grid[:, :-1]
        run_end = grid.copy()
        run_end[:, :-1] &= ~grid[:, 1:]
        starts = np.flatnonzero(run_start)
        ends = np.flatnonzero(run_end)
        label = np.full(starts.size, -1, dtype=np.int64)
        row = starts // self._nx
        todo = ~(  # a run in the outer ring of the grid is outside every cell
            (starts % self._nx == 0) | (ends % self._nx == self._nx - 1) | (row == 0) | (row == self._ny - 1)
        )
        # A line near a free bucket never crosses it, so the bucket lies wholly on one side of it.
        for bucket, neighbour in ((starts, starts - 1), (ends, ends + 1)):
            usable = np.flatnonzero(todo)
            line = -2 - state[neighbour[usable]].astype(np.int64)
            is_single = line < self._n_lines
            usable, line = usable[is_single], line[is_single]
            side, certain = self._side_of_line(line, *self._bucket_centres(bucket[usable]))
            label[usable[certain]] = side[certain]
            todo[usable[certain]] = False
        # Otherwise a cell containing the run has an edge near its neighbour: test those cells.
        rest = np.flatnonzero(todo)
        if rest.size:
            table_row = -2 - state[starts[rest] - 1].astype(np.int64)
            label[rest] = self._first_covering(table_row, *self._bucket_centres(starts[rest]))
        return np.repeat(label, ends - starts + 1)

    def _bucket_centres(self, bucket: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        row, col = np.divmod(bucket, self._nx)
        return self._x0 + (col + 0.5) * self._dx, self._y0 + (row + 0.5) * self._dy


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
