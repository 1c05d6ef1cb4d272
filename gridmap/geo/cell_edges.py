"""The cells' edges for the cell locator: rings split into distinct straight lines, and the buckets each passes.

An edge shared by two cells becomes one line with a cell on each side; the locator's index is
built from these lines (see :mod:`gridmap.geo.locator` for the edge rule and the bucket kinds).
Every function works on whole arrays of edges at once.
"""

from __future__ import annotations

import numpy as np
import shapely

# An edge passing within this fraction of a bucket of it is registered in it.
MARGIN = 1e-3
# Shewchuk's ccwerrboundA: |det| >= this * (|detleft| + |detright|) certifies the sign of orient2d.
ORIENT_ERRBOUND = (3.0 + 16.0 * 2.0**-53) * 2.0**-53
# shapely's type ids of the geometries cells may have.
POLYGON, MULTIPOLYGON = 3, 6


def orient(
    ax: np.ndarray, ay: np.ndarray, bx: np.ndarray, by: np.ndarray, px: np.ndarray, py: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """orient2d(a, b, p) in floats (> 0: p left of a→b) and whether its sign is certified exact."""
    left = (ax - px) * (by - py)
    right = (ay - py) * (bx - px)
    det = left - right
    certain = np.abs(det) >= ORIENT_ERRBOUND * (np.abs(left) + np.abs(right))
    return det, certain


def ranges(first: np.ndarray, count: np.ndarray) -> np.ndarray:
    """The ranges first[i], first[i] + 1, ..., first[i] + count[i] - 1, one after another."""
    return np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count - first, count)


def group_starts(sorted_values: np.ndarray) -> np.ndarray:
    """Index of the first element of each run of equal values."""
    starts = np.ones(sorted_values.size, dtype=bool)
    starts[1:] = sorted_values[1:] != sorted_values[:-1]
    return np.flatnonzero(starts)


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique for int arrays, by sorting (much faster than numpy 2's hash-based unique here)."""
    values = np.sort(values)
    return values[group_starts(values)] if values.size else values


def polygons(geometries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The polygons of all cells (MultiPolygons split) and the cell of each."""
    multi = np.flatnonzero(shapely.get_type_id(geometries) == MULTIPOLYGON)
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


def ring_edges(geometries: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every ring edge (ax, ay, bx, by, cell, flip): its cell lies on its left, or on its right where flip."""
    parts, part_cell = polygons(geometries)
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
    start = ranges(first_coord, ring_size - 1)
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


def distinct_lines(geometries: np.ndarray, rank: np.ndarray) -> dict[str, np.ndarray]:
    """Distinct straight edges of all cells, each with the cell on its left and on its right.

    An edge shared by two cells is one line with a cell on each side. A line with two cells on
    one side (overlapping cells) is marked dirty.
    """
    ax, ay, bx, by, owner, flip = ring_edges(geometries)
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
    keys = sorted_unique(line * n + rank[owner])
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


def supercover(
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
    iu = ranges(first, steps)
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
