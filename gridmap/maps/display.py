"""Area geometry for display: simplified, quantised, delta-encoded, ready to serve as compact JSON.

Stored geometry has 6 decimals (≈ 0.1 m); a map needs far less. For display each polygon is

1. shifted to GCJ-02 when the basemap is AMap's (its tiles are drawn in GCJ-02; the data stays
   WGS84 everywhere else),
2. simplified with a tolerance of ``SIMPLIFY_TOLERANCE`` degrees (≈ 1.1 m; topology kept),
3. quantised to ``DISPLAY_DECIMALS`` = 5 decimals (1e-5° ≈ 1.1 m north–south, ≈ 1.05 m east–west
   at 18° N), so a vertex is drawn at most ≈ 2 m from where it is stored,
4. delta-encoded: each ring is a flat list of integers ``[x0, y0, dx1, dy1, …]`` in units of
   1e-5°, the first vertex absolute, then the step to each next vertex; the closing vertex is
   left out. Most steps are two or three digits, which is what makes a 13,000-cell layer small.

A feature is ``{"code", "name", "p": [dx, dy], "g": [polygon, …]}``: a polygon is a list of rings
(exterior first); ``p`` is a point inside the area (where its heatmap weight is drawn), as the
step from the first vertex of the first ring.
Decoding: ``x = x0; lon = x / 1e5``, then ``x += dx`` for each next vertex (same for y / lat).
Neighbouring cells are simplified one by one, so a shared edge may differ by up to the
tolerance between them: invisible at display scale, and the stored data is never touched.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import threading
from collections.abc import Iterable

import numpy as np
import shapely

from gridmap.errors import InvalidInput
from gridmap.geo.crs import wgs84_to_gcj02
from gridmap.geo.layers import LEVELS, LayerSet

DISPLAY_DECIMALS = 5
SIMPLIFY_TOLERANCE = 1e-5
SCALE = 10 ** DISPLAY_DECIMALS
SHIFTS = ("none", "gcj02")


def shift_geometries(geometries: np.ndarray, shift: str) -> np.ndarray:
    """Geometries moved for display on a basemap in another datum: ``none`` or ``gcj02``."""
    if shift == "none":
        return geometries
    if shift == "gcj02":
        return shapely.transform(geometries, lambda xy: np.column_stack(wgs84_to_gcj02(xy[:, 0], xy[:, 1])))
    raise InvalidInput(f"unknown display shift {shift!r}; use one of {', '.join(SHIFTS)}")


def shift_points(lon, lat, shift: str) -> tuple[np.ndarray, np.ndarray]:
    """Point coordinates moved for display like :func:`shift_geometries`."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    if shift == "none":
        return lon, lat
    if shift == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    raise InvalidInput(f"unknown display shift {shift!r}; use one of {', '.join(SHIFTS)}")


def encode_ring(coords: np.ndarray) -> list[int] | None:
    """A closed ring's lon/lat vertices as ``[x0, y0, dx1, dy1, …]`` in 1e-5°; None if it collapses."""
    q = np.round(np.asarray(coords, dtype=float)[:, :2] * SCALE).astype(np.int64)
    if len(q) > 1 and (q[0] == q[-1]).all():
        q = q[:-1]
    if len(q) > 1:
        keep = np.ones(len(q), dtype=bool)
        keep[1:] = (np.diff(q, axis=0) != 0).any(axis=1)
        q = q[keep]
    if len(q) < 3:
        return None
    deltas = np.empty_like(q)
    deltas[0] = q[0]
    deltas[1:] = np.diff(q, axis=0)
    return deltas.ravel().tolist()


def decode_ring(encoded: list[int]) -> np.ndarray:
    """The lon/lat vertices (closing vertex left out) of an encoded ring."""
    steps = np.asarray(encoded, dtype=np.int64).reshape(-1, 2)
    return np.cumsum(steps, axis=0) / SCALE


def encode_geometry(geometry: shapely.Geometry, *, simplified: shapely.Geometry | None = None) -> list[list[list[int]]]:
    """A (Multi)Polygon as a list of polygons, each a list of encoded rings (exterior first).

    ``simplified`` is drawn when it survives quantisation; a part that collapses (a sliver or an
    island smaller than the display precision) falls back to the unsimplified part, so no area
    disappears from the map.
    """
    result = []
    source = simplified if simplified is not None and not simplified.is_empty else geometry
    for part, original in _paired_parts(source, geometry):
        rings = []
        exterior = encode_ring(shapely.get_coordinates(part.exterior))
        if exterior is None and original is not None:
            exterior = encode_ring(shapely.get_coordinates(original.exterior))
        if exterior is None:
            continue
        rings.append(exterior)
        for interior in part.interiors:
            ring = encode_ring(shapely.get_coordinates(interior))
            if ring is not None:
                rings.append(ring)
        result.append(rings)
    if not result:  # smaller than the display precision: draw its bounding box
        minx, miny, maxx, maxy = geometry.bounds
        step = 1 / SCALE
        box = shapely.box(minx, miny, max(maxx, minx + step), max(maxy, miny + step))
        result.append([encode_ring(shapely.get_coordinates(box.exterior)) or []])
    return result


def _paired_parts(
    source: shapely.Geometry, original: shapely.Geometry
) -> Iterable[tuple[shapely.Geometry, shapely.Geometry | None]]:
    parts = [p for p in shapely.get_parts(source) if p.geom_type == "Polygon" and not p.is_empty]
    originals = [p for p in shapely.get_parts(original) if p.geom_type == "Polygon"]
    if len(parts) == len(originals):
        return zip(parts, originals)
    return ((p, None) for p in parts)


class DisplayLevel:
    """One level of a layer set encoded for display: a JSON fragment per feature, in code order."""

    def __init__(self, level: str, codes: list[str], names: list[str], geometries: np.ndarray, shift: str) -> None:
        self.level = level
        order = np.argsort(np.asarray(codes, dtype=object), kind="stable")
        self.codes = [str(codes[i]) for i in order]
        geometries = shift_geometries(np.asarray(geometries, dtype=object)[order], shift)
        simplified = shapely.simplify(geometries, SIMPLIFY_TOLERANCE, preserve_topology=True)
        inside = shapely.point_on_surface(geometries)
        points = np.round(np.column_stack([shapely.get_x(inside), shapely.get_y(inside)]) * SCALE).astype(np.int64)
        self.fragments: list[str] = []
        for position, (code, i) in enumerate(zip(self.codes, order)):
            encoded = encode_geometry(geometries[position], simplified=simplified[position])
            first = encoded[0][0][:2]
            inside_point = [int(points[position][0] - first[0]), int(points[position][1] - first[1])]
            self.fragments.append(json.dumps(
                {"code": code, "name": str(names[i]), "p": inside_point, "g": encoded},
                ensure_ascii=False, separators=(",", ":"),
            ))

    def select(self, prefixes: Iterable[str] | None) -> list[str]:
        """The fragments of the features whose codes start with one of ``prefixes`` (None: all)."""
        if prefixes is None:
            return self.fragments
        chosen: set[int] = set()
        for prefix in prefixes:
            start = bisect.bisect_left(self.codes, prefix)
            end = bisect.bisect_left(self.codes, prefix + "\x7f")
            chosen.update(range(start, end))
        return [self.fragments[i] for i in sorted(chosen)]


class DisplayGeometry:
    """The display encoding of every level of a layer set, built on first use and kept."""

    def __init__(self, layers: LayerSet, shift: str = "none") -> None:
        if shift not in SHIFTS:
            raise InvalidInput(f"unknown display shift {shift!r}; use one of {', '.join(SHIFTS)}")
        self.layers = layers
        self.shift = shift
        self._levels: dict[str, DisplayLevel] = {}
        self._lock = threading.Lock()

    def level(self, level: str) -> DisplayLevel:
        """The encoded features of one level (``districts`` … ``cells``)."""
        if level not in LEVELS:
            raise InvalidInput(f"unknown level {level!r}; use one of {', '.join(LEVELS)}")
        with self._lock:
            if level not in self._levels:
                frame = self.layers.level(level)
                self._levels[level] = DisplayLevel(
                    level,
                    list(frame["code"]),
                    list(frame["name"]),
                    np.asarray(frame.geometry.values, dtype=object),
                    self.shift,
                )
            return self._levels[level]

    @property
    def version(self) -> str:
        """A fingerprint of the layer set's codes and geometry and of the display encoding."""
        with self._lock:
            if "_version" not in self.__dict__:
                digest = hashlib.sha1(f"v2 {DISPLAY_DECIMALS} {SIMPLIFY_TOLERANCE} {self.shift}".encode())
                for level in LEVELS:
                    frame = self.layers.level(level)
                    digest.update(level.encode())
                    for code, name, wkb in zip(frame["code"], frame["name"], shapely.to_wkb(frame.geometry.values)):
                        digest.update(f"{code}\t{name}\t".encode())
                        digest.update(wkb)
                self.__dict__["_version"] = digest.hexdigest()[:16]
            return self.__dict__["_version"]

    def payload(self, level: str, prefixes: Iterable[str] | None = None) -> str:
        """The features of ``level`` inside the areas ``prefixes`` (None: all) as a JSON document."""
        fragments = self.level(level).select(prefixes)
        header = json.dumps({"level": level, "version": self.version, "precision": DISPLAY_DECIMALS,
                             "shift": self.shift}, separators=(",", ":"))[:-1]
        return header + ',"features":[' + ",".join(fragments) + "]}"

    def features(self, level: str, prefixes: Iterable[str] | None = None) -> list[dict]:
        """The features of :meth:`payload` as Python objects."""
        return [json.loads(fragment) for fragment in self.level(level).select(prefixes)]

    def features_json(self, level: str, prefixes: Iterable[str] | None = None) -> str:
        """The features of :meth:`payload` as a JSON array (to embed in a page without re-encoding)."""
        return "[" + ",".join(self.level(level).select(prefixes)) + "]"
