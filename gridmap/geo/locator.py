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

if TYPE_CHECKING:
    import geopandas as gpd

# Buckets per median cell extent (per axis), and the cap on their number (an index keeps 4 bytes
# per bucket; building it peaks at about 22).
BUCKETS_PER_CELL = 8
MAX_BUCKETS = 4_000_000
# An edge passing within this fraction of a bucket of it is registered in it.
MARGIN = 1e-3
# Corners with more edges than this stay complex buckets.
MAX_STAR_EDGES = 4
# Points are processed in chunks of this size: it bounds memory and keeps arrays in cache.
CHUNK_SIZE = 131_072
# Shewchuk's ccwerrboundA: |det| >= this * (|detleft| + |detright|) certifies the sign of orient2d.
_ORIENT_ERRBOUND = (3.0 + 16.0 * 2.0**-53) * 2.0**-53
# Star edges closer in angle than this (radians) might be sorted wrongly: such corners stay complex.
_MIN_ANGLE = 1e-9

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
        self._store_lines(_lines(self.geometries, self._rank))

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
            size_x, size_y = (bucket_size, bucket_size) if np.ndim(bucket_size) == 0 else bucket_size
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
        return 4 * _ORIENT_ERRBOUND * reach_x * reach_y

    def _rasterise_lines(self) -> tuple[np.ndarray, np.ndarray]:
        """(bucket, line) for every bucket that a line passes within MARGIN of."""
        u0 = (self._line_ax - self._x0) * self._sx
        v0 = (self._line_ay - self._y0) * self._sy
        u1 = (self._line_bx - self._x0) * self._sx
        v1 = (self._line_by - self._y0) * self._sy
        flat = np.abs(u1 - u0) >= np.abs(v1 - v0)
        # Walk the longer axis so that each step meets at most three buckets across.
        flat, steep = np.flatnonzero(flat), np.flatnonzero(~flat)
        bucket_a, line_a = _supercover(u0[flat], v0[flat], u1[flat], v1[flat], (self._nx, 1), (self._ny, self._nx))
        bucket_b, line_b = _supercover(v0[steep], u0[steep], v1[steep], u1[steep], (self._ny, self._nx), (self._nx, 1))
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
        rank = self._owner_rank[_ranges(self._owner_ptr[line], per_line)]
        return _sorted_unique(np.repeat(row, per_line) * len(self.codes) + rank)

    def _store_candidates(
        self, pair_row: np.ndarray, pair_line: np.ndarray, n_rows: int, hidden_row: np.ndarray, hidden_cell: np.ndarray
    ) -> None:
        """Candidate table: a row per line (its cells), then one per star or complex bucket (its lines' cells)."""
        n = len(self.codes)
        keys = self._owner_keys(pair_row, pair_line)
        if hidden_row.size:
            keys = _sorted_unique(np.concatenate([keys, hidden_row * n + self._rank[hidden_cell]]))
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
        starts = _group_starts(row)
        k = _ranges(np.zeros(starts.size, dtype=np.int64), edges[starts])  # position around the corner
        first = np.arange(row.size) - k
        last = k + 1 == edges
        following = np.where(last, first, np.arange(row.size) + 1)
        turn = angle[following] - angle + np.where(last, 2 * np.pi, 0.0)
        cross, certain = _orient(vx, vy, ex, ey, ex[following], ey[following])
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


def _orient(
    ax: np.ndarray, ay: np.ndarray, bx: np.ndarray, by: np.ndarray, px: np.ndarray, py: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """orient2d(a, b, p) in floats (> 0: p left of a→b) and whether its sign is certified exact."""
    left = (ax - px) * (by - py)
    right = (ay - py) * (bx - px)
    det = left - right
    certain = np.abs(det) >= _ORIENT_ERRBOUND * (np.abs(left) + np.abs(right))
    return det, certain


def _ranges(first: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The ranges first[i], first[i] + 1, ..., first[i] + count[i] - 1, one after another."""
    return np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count - first, count)


def _group_starts(sorted_values: np.ndarray) -> np.ndarray:
    """Index of the first element of each run of equal values."""
    starts = np.ones(sorted_values.size, dtype=bool)
    starts[1:] = sorted_values[1:] != sorted_values[:-1]
    return np.flatnonzero(starts)


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique for int arrays, by sorting (much faster than numpy 2's hash-based unique here)."""
    values = np.sort(values)
    return values[_group_starts(values)] if values.size else values


def _polygons(geometries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The polygons of all cells (MultiPolygons split) and the cell of each."""
    multi = np.flatnonzero(shapely.get_type_id(geometries) == _MULTIPOLYGON)
    if multi.size == 0:  # get_parts costs more than the rest of the index build: skip it if we can
        return geometries, np.arange(geometries.size)
    per_cell = np.ones(geometries.size, dtype=np.int64)
    per_cell[multi] = shapely.get_num_geometries(geometries[multi])
    first = np.cumsum(per_cell) - per_cell
    polygons = np.repeat(geometries, per_cell)
    pieces, piece_cell = shapely.get_parts(geometries[multi], return_index=True)
    within = np.arange(piece_cell.size) - np.searchsorted(piece_cell, piece_cell)
    polygons[first[multi][piece_cell] + within] = pieces
    return polygons, np.repeat(np.arange(geometries.size), per_cell)


def _edges(geometries: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every ring edge (ax, ay, bx, by, cell, flip): its cell lies on its left, or on its right where flip."""
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
    ring = np.repeat(np.arange(ring_size.size), ring_size - 1)
    first_coord = np.cumsum(ring_size) - ring_size
    start = _ranges(first_coord, ring_size - 1)
    x, y = coords[:, 0], coords[:, 1]
    ax, ay, bx, by = x[start], y[start], x[start + 1], y[start + 1]
    keep = (ax != bx) | (ay != by)
    if not keep.all():
        ax, ay, bx, by, ring = ax[keep], ay[keep], bx[keep], by[keep], ring[keep]

    # Exteriors must run counter-clockwise and holes clockwise (shoelace about each ring's start).
    ox, oy = x[first_coord][ring], y[first_coord][ring]
    term_a = (ax - ox) * (by - oy)
    term_b = (bx - ox) * (ay - oy)
    area2 = np.bincount(ring, weights=term_a - term_b, minlength=ring_size.size)
    scale = np.bincount(ring, weights=np.abs(term_a) + np.abs(term_b), minlength=ring_size.size)
    ccw = area2 > 0
    for r in np.flatnonzero(np.abs(area2) <= 1e-9 * scale):  # too thin to trust the sum: ask GEOS
        ccw[r] = shapely.is_ccw(shapely.linearrings(coords[first_coord[r] : first_coord[r] + ring_size[r]]))
    flip = (ccw != exterior)[ring]
    return ax, ay, bx, by, part_cell[ring_part[ring]], flip


def _lines(geometries: np.ndarray, rank: np.ndarray) -> dict[str, np.ndarray]:
    """Distinct straight edges of all cells, each with the cell on its left and on its right.

    An edge shared by two cells is one line with a cell on each side. A line with two cells on
    one side (overlapping cells) is marked dirty.
    """
    ax, ay, bx, by, owner, flip = _edges(geometries)
    # Write every edge lexicographically smaller end first; then its cell is on the right where
    # exactly one of the two (that order, the ring's orientation) reversed it.
    swap = (ax > bx) | ((ax == bx) & (ay > by))
    px, qx = np.where(swap, bx, ax), np.where(swap, ax, bx)
    py, qy = np.where(swap, by, ay), np.where(swap, ay, by)
    reverse = swap != flip
    # Group equal edges by sorting a hash of their coordinates. A collision can only split a group,
    # which leaves its buckets complex (tested exactly): slower, never wrong.
    bits = [np.ascontiguousarray(c).view(np.uint64) for c in (px, py, qx, qy)]
    digest = bits[0] * np.uint64(0x9E3779B97F4A7C15)
    for word, multiplier in zip(bits[1:], (0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x27D4EB2F165667C5)):
        digest ^= word * np.uint64(multiplier)
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
    n = len(rank)

    # Cells of each line in code order (usually one or two), for exact tests.
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
        "dirty": dirty,
        "owner_ptr": owner_ptr,
        "owner_rank": keys % n,
    }


def _supercover(
    u0: np.ndarray, v0: np.ndarray, u1: np.ndarray, v1: np.ndarray, u_axis: tuple[int, int], v_axis: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """(bucket, segment) for every bucket that a segment passes within MARGIN of.

    Coordinates are in bucket units; each axis is given as (number of buckets, index stride).
    Segments must be at least as long along u as along v, so each unit step in u meets at most
    three buckets in v.
    """
    (n_u, stride_u), (n_v, stride_v) = u_axis, v_axis
    swap = u0 > u1
    u0, u1 = np.where(swap, u1, u0), np.where(swap, u0, u1)
    v0, v1 = np.where(swap, v1, v0), np.where(swap, v0, v1)
    # Coordinates are >= 0, so truncation is floor here (and much faster than np.floor).
    first = np.minimum((u0 - MARGIN).astype(np.int64), n_u - 1)
    last = np.minimum((u1 + MARGIN).astype(np.int64), n_u - 1)
    steps = last - first + 1
    seg = np.repeat(np.arange(u0.size), steps)
    iu = _ranges(first, steps)
    # Along a segment v = c + slope * u, so over the column iu - MARGIN .. iu + 1 + MARGIN it spans
    # v_a .. v_b, cut to the segment's own v range. (A segment shorter than a float step is a point.)
    slope = np.divide(v1 - v0, u1 - u0, out=np.zeros(u0.size), where=u1 > u0)
    seg_slope = np.take(slope, seg)
    v_a = iu.astype(np.float64)
    v_a -= MARGIN
    v_a *= seg_slope
    v_a += np.take(v0 - u0 * slope, seg)
    v_b = seg_slope
    v_b *= 1 + 2 * MARGIN
    v_b += v_a
    low = np.minimum(v_a, v_b)
    high = np.maximum(v_a, v_b, out=v_b)
    np.maximum(low, np.take(np.minimum(v0, v1), seg), out=low)
    np.minimum(high, np.take(np.maximum(v0, v1), seg), out=high)
    low -= MARGIN
    high += MARGIN
    v_first = np.minimum(low.astype(np.int64), n_v - 1)
    v_last = np.minimum(high.astype(np.int64), n_v - 1)
    two = v_last > v_first
    three = v_last > v_first + 1
    bucket = iu
    bucket *= stride_u
    v_first *= stride_v
    bucket += v_first
    return (
        np.concatenate([bucket, bucket[two] + stride_v, bucket[three] + 2 * stride_v]),
        np.concatenate([seg, seg[two], seg[three]]),
    )
