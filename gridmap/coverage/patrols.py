"""Patrols (巡查): GPS tracks per worker and day, the cells they pass through and the time spent in each.

Reading GPX and GeoJSON track files: :mod:`gridmap.coverage.track_files`.

Splitting (:class:`TrackSplitter`): each stretch between two consecutive points is cut where it
crosses a cell boundary, in the layer set's UTM zone (metres); every piece is put in a cell by
locating its midpoint with the layer set's locator (so the edge rule decides a piece running
along a boundary) and given the time interpolated linearly along the stretch. Consecutive
pieces in the same cell make one **segment** (entered, left, seconds, metres). Rules:

- a stretch longer than ``max_gap`` in time (default 15 minutes: GPS off, phone in a pocket) or
  joining two ``<trkseg>`` parts is a break: no cell is credited with its time or length;
- pieces outside every cell (the worker left the district) are not dropped: their time and
  length are added up on the track (``outside_seconds``, ``outside_length_m``), the points
  outside are counted (``outside_points``) and the import report lists them; a track entirely
  outside is refused;
- a segment belongs to the local day it was entered (a patrol over midnight credits each day
  with its own part); the track's day is the day it started.

Scopes: an import by a principal limited to some areas is refused whole (Forbidden) when a
track has a segment in a cell outside them; a stored track is visible to such a principal when
one of its segments lies in its areas, and then lists only those segments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyproj
import shapely
from sqlalchemy import insert, select, tuple_
from sqlalchemy.orm import Session

from gridmap.coverage.metrics import refuse_outside
from gridmap.coverage.track_files import TrackInput
from gridmap.errors import NotFound
from gridmap.geo.crs import WGS84, InputCRS, metric_crs_for, parse_crs, to_wgs84
from gridmap.issues.intake import RowError
from gridmap.security.access import UNLIMITED, AccessScope
from gridmap.storage.coverage import PatrolSegment, PatrolTrack

if TYPE_CHECKING:
    from gridmap.geo.areas import AreaIndex
    from gridmap.storage.db import Database

MAX_GAP_SECONDS = 15 * 60
#: Pieces shorter than this fraction of their stretch are rounding noise at a boundary.
_EPS = 1e-9


# --- splitting ------------------------------------------------------------------------------------------


@dataclass
class TrackResult:
    """A track split into cells: what gets stored, and what the import report says about it."""

    number: int
    worker: str
    started_at: datetime
    ended_at: datetime
    day: date
    points: list[list[float]]  # [lon, lat, unix seconds]
    outside_points: int
    length_m: float
    outside_length_m: float
    outside_seconds: float
    segments: list[dict[str, Any]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """What the import report says about this track."""
        return {
            "track": self.number, "worker": self.worker, "day": self.day.isoformat(),
            "started_at": self.started_at.isoformat(), "ended_at": self.ended_at.isoformat(),
            "points": len(self.points), "outside_points": self.outside_points, "length_m": round(self.length_m, 1),
            "outside_length_m": round(self.outside_length_m, 1), "outside_seconds": round(self.outside_seconds, 1),
            "cells": sorted({s["cell_code"] for s in self.segments}),
            "seconds": round(sum(s["seconds"] for s in self.segments), 1),
        }


class TrackSplitter:
    """Splits tracks at the cell boundaries of one layer set (vectorised over many tracks at once)."""

    def __init__(self, areas: AreaIndex) -> None:
        self.areas = areas
        cells = areas.layers.cells
        minx, miny, maxx, maxy = cells.total_bounds
        self.metric_crs = metric_crs_for((minx + maxx) / 2, (miny + maxy) / 2)
        self._forward = pyproj.Transformer.from_crs(WGS84, self.metric_crs, always_xy=True)
        self._backward = pyproj.Transformer.from_crs(self.metric_crs, WGS84, always_xy=True)
        geometries = np.asarray(cells.geometry.values, dtype=object)
        metric = shapely.transform(geometries, lambda xy: np.column_stack(self._forward.transform(xy[:, 0], xy[:, 1])))
        # Every edge of every cell boundary (shared edges twice), for exact crossings in numpy.
        rings = shapely.get_parts(shapely.boundary(metric))
        coords, ring = shapely.get_coordinates(rings, return_index=True)
        same = ring[1:] == ring[:-1]
        self.edge_start = coords[:-1][same]
        self.edge_end = coords[1:][same]
        edges = shapely.linestrings(np.stack([self.edge_start, self.edge_end], axis=1))
        self.tree = shapely.STRtree(edges)

    def split(self, tracks: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], *,
              tz: tzinfo, max_gap: float = MAX_GAP_SECONDS) -> list[dict[str, Any]]:
        """For tracks given as (lon, lat, unix seconds, part id) arrays in WGS84: segments and outside totals.

        Returns per track: ``segments`` (cell_code, day, entered_at, left_at, seconds, length_m),
        ``outside_points``, ``outside_seconds``, ``outside_length_m``, ``length_m``.
        """
        if not tracks:
            return []
        sizes = np.array([len(t[0]) for t in tracks])
        track_of_point = np.repeat(np.arange(len(tracks)), sizes)
        lon = np.concatenate([t[0] for t in tracks]).astype(float)
        lat = np.concatenate([t[1] for t in tracks]).astype(float)
        when = np.concatenate([t[2] for t in tracks]).astype(float)
        part = np.concatenate([t[3] for t in tracks])
        inside = self.areas.locator.locate_indices(lon, lat) >= 0
        outside_points = np.bincount(track_of_point, weights=(~inside).astype(float), minlength=len(tracks)).astype(int)
        x, y = (np.asarray(v, dtype=float) for v in self._forward.transform(lon, lat))

        # Stretches between consecutive points of the same part that are not breaks.
        first = np.arange(len(lon) - 1)
        keep = (track_of_point[1:] == track_of_point[:-1]) & (part[1:] == part[:-1])
        keep &= (when[1:] - when[:-1]) <= max_gap
        # A point a quarter of the globe away from the district has no place in its UTM zone (inf): no stretch to it
        # counts.
        measurable = np.isfinite(x) & np.isfinite(y)
        keep &= measurable[1:] & measurable[:-1]
        first = first[keep]
        x0, y0, x1, y1 = x[first], y[first], x[first + 1], y[first + 1]
        t0, t1 = when[first], when[first + 1]
        stretch_track = track_of_point[first]
        dx, dy = x1 - x0, y1 - y0
        length = np.hypot(dx, dy)
        n = len(first)

        # Where each stretch crosses a cell boundary, as a fraction s of its length.
        moving = np.flatnonzero(length > 0)
        lines = shapely.linestrings(
            np.column_stack([np.column_stack([x0[moving], x1[moving]]).ravel(),
                             np.column_stack([y0[moving], y1[moving]]).ravel()]),
            indices=np.repeat(np.arange(len(moving)), 2),
        ) if len(moving) else np.empty(0, dtype=object)
        cut_stretch = [np.arange(n), np.arange(n)]
        cut_s = [np.zeros(n), np.ones(n)]
        if len(moving):
            line_index, edge = self.tree.query(lines)  # candidates whose bounding boxes meet
            stretch = moving[line_index]
            cuts = _crossings(x0[stretch], y0[stretch], dx[stretch], dy[stretch], self.edge_start[edge],
                              self.edge_end[edge])
            for which, s in cuts:
                cut_stretch.append(stretch[which])
                cut_s.append(np.clip(s, 0.0, 1.0))
        cut_stretch = np.concatenate(cut_stretch)
        cut_s = np.concatenate(cut_s)
        order = np.lexsort((cut_s, cut_stretch))
        cut_stretch, cut_s = cut_stretch[order], cut_s[order]
        same = cut_stretch[1:] == cut_stretch[:-1]
        piece_stretch = cut_stretch[:-1][same]
        sa, sb = cut_s[:-1][same], cut_s[1:][same]
        real = sb - sa > _EPS  # a standing-still stretch has only the cuts 0 and 1: one piece
        piece_stretch, sa, sb = piece_stretch[real], sa[real], sb[real]

        # Which cell each piece is in: its midpoint, by the locator's edge rule.
        mid = (sa + sb) / 2
        mx = x0[piece_stretch] + mid * dx[piece_stretch]
        my = y0[piece_stretch] + mid * dy[piece_stretch]
        mlon, mlat = self._backward.transform(mx, my)
        cell = self.areas.locator.locate_indices(np.asarray(mlon), np.asarray(mlat))
        duration = t1[piece_stretch] - t0[piece_stretch]
        piece_seconds = (sb - sa) * duration
        piece_length = (sb - sa) * length[piece_stretch]
        entered = t0[piece_stretch] + sa * duration
        left = t0[piece_stretch] + sb * duration
        piece_track = stretch_track[piece_stretch]

        # Runs of pieces in the same cell, without a break between them, are segments.
        if len(piece_stretch):
            start = np.ones(len(piece_stretch), dtype=bool)
            start[1:] = ((cell[1:] != cell[:-1]) | (piece_track[1:] != piece_track[:-1])
                         | (first[piece_stretch[1:]] - first[piece_stretch[:-1]] > 1))
            starts = np.flatnonzero(start)
            run_cell = cell[starts]
            run_track = piece_track[starts]
            run_seconds = np.add.reduceat(piece_seconds, starts)
            run_length = np.add.reduceat(piece_length, starts)
            run_entered = entered[starts]
            run_left = left[np.append(starts[1:], len(piece_stretch)) - 1]
        else:
            run_cell = run_track = np.empty(0, dtype=int)
            run_seconds = run_length = run_entered = run_left = np.empty(0)
        entered_utc = pd.to_datetime(run_entered, unit="s", utc=True)
        days = entered_utc.tz_convert(tz).date if len(run_entered) else []
        entered_at = entered_utc.to_pydatetime() if len(run_entered) else []
        left_at = pd.to_datetime(run_left, unit="s", utc=True).to_pydatetime() if len(run_left) else []

        results = [{"segments": [], "outside_points": int(outside_points[i]), "outside_seconds": 0.0,
                    "outside_length_m": 0.0, "length_m": 0.0} for i in range(len(tracks))]
        total_length = np.bincount(stretch_track, weights=length, minlength=len(tracks))
        for i, value in enumerate(total_length):
            results[i]["length_m"] = float(value)
        codes = self.areas.cell_codes
        columns = zip(run_track.tolist(), run_cell.tolist(), run_seconds.tolist(), run_length.tolist(), days,
                      entered_at, left_at)
        for track, cell, seconds, metres, day, entered_moment, left_moment in columns:
            result = results[track]
            if cell < 0:
                result["outside_seconds"] += seconds
                result["outside_length_m"] += metres
                continue
            result["segments"].append({"cell_code": codes[cell], "day": day, "entered_at": entered_moment,
                                       "left_at": left_moment, "seconds": seconds, "length_m": metres})
        return results


def _crossings(px: np.ndarray, py: np.ndarray, rx: np.ndarray, ry: np.ndarray, start: np.ndarray, end: np.ndarray
               ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Where stretches P + s·r meet edges start→end: (candidate indices, s) for crossings and collinear overlaps."""
    qx, qy = start[:, 0], start[:, 1]
    sx, sy = end[:, 0] - qx, end[:, 1] - qy
    wx, wy = qx - px, qy - py
    denom = rx * sy - ry * sx
    scale = np.hypot(rx, ry) * np.hypot(sx, sy)
    parallel = np.abs(denom) <= 1e-12 * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (wx * sy - wy * sx) / denom
        u = (wx * ry - wy * rx) / denom
    tol = 1e-9
    crossing = ~parallel & (s >= -tol) & (s <= 1 + tol) & (u >= -tol) & (u <= 1 + tol)
    found = [(np.flatnonzero(crossing), s[crossing])]
    # An edge lying along the stretch: cut where its end points fall on the stretch.
    r2 = rx * rx + ry * ry
    collinear = parallel & (np.abs(wx * ry - wy * rx) <= 1e-9 * np.maximum(scale, 1.0) + 1e-6 * np.sqrt(r2))
    if collinear.any():
        index = np.flatnonzero(collinear)
        for ex, ey in ((qx, qy), (end[:, 0], end[:, 1])):
            t = ((ex[index] - px[index]) * rx[index] + (ey[index] - py[index]) * ry[index]) / r2[index]
            inside = (t >= 0) & (t <= 1)
            found.append((index[inside], t[inside]))
    return found


_SPLITTERS: WeakKeyDictionary = WeakKeyDictionary()


def splitter_for(areas: AreaIndex) -> TrackSplitter:
    """The (cached) splitter of a layer set index."""
    if areas not in _SPLITTERS:
        _SPLITTERS[areas] = TrackSplitter(areas)
    return _SPLITTERS[areas]


# --- importing -----------------------------------------------------------------------------------------


@dataclass
class PatrolImportReport:
    """What a patrol import did: tracks read, taken, the bad ones by number, warnings, per-track summaries."""

    rows: int
    imported: int
    errors: list[RowError] = field(default_factory=list)
    warnings: list[RowError] = field(default_factory=list)
    tracks: list[dict[str, Any]] = field(default_factory=list)
    dry_run: bool = False
    ids: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "rows": self.rows, "imported": self.imported, "dry_run": self.dry_run,
            "errors": [{"row": e.row, "message": e.message} for e in self.errors],
            "warnings": [{"row": w.row, "message": w.message} for w in self.warnings],
            "tracks": self.tracks,
        }


def prepare_tracks(
    areas: AreaIndex,
    tracks: Sequence[TrackInput],
    *,
    worker: str | None = None,
    crs: InputCRS | str | None = None,
    timezone_name: str = "Asia/Shanghai",
    max_gap: float = MAX_GAP_SECONDS,
) -> tuple[list[TrackResult], list[RowError], list[RowError]]:
    """Validate tracks and split them into cells; (results, errors, warnings) with track numbers."""
    crs = crs if isinstance(crs, InputCRS) else parse_crs(crs)
    tz = ZoneInfo(timezone_name)
    errors: list[RowError] = []
    checked: list[tuple[TrackInput, str, list[tuple[float, float, datetime]]]] = []
    for track in tracks:
        name = worker or track.worker
        points = [point for part in track.parts for point in part]
        if track.error:
            errors.append(RowError(track.number, track.error))
        elif not name:
            errors.append(RowError(track.number, "no worker: give --worker (worker=) or a worker in the file"))
        elif len(name) > 100:
            errors.append(RowError(track.number, "the worker's name is longer than 100 characters"))
        elif len(points) < 2:
            errors.append(RowError(track.number, f"a track needs at least 2 timed points, got {len(points)}"))
        else:
            checked.append((track, name, points))
    if not checked:
        errors.sort(key=lambda e: e.row)
        return [], errors, []

    # Every point of every track in flat arrays: one CRS conversion, vectorised checks.
    sizes = np.array([len(points) for _, _, points in checked])
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    flat = [point for _, _, points in checked for point in points]
    times = np.array([point[2].timestamp() for point in flat])
    lon, lat = to_wgs84(np.array([point[0] for point in flat], dtype=float),
                        np.array([point[1] for point in flat], dtype=float), crs)
    part_ids = np.concatenate([np.repeat(np.arange(len(t.parts)), [len(part) for part in t.parts])
                               for t, _, _ in checked])
    owner = np.repeat(np.arange(len(checked)), sizes)
    backwards = np.flatnonzero((np.diff(times) < 0) & (owner[1:] == owner[:-1]))
    first_backwards = {}
    for index in backwards[::-1]:
        first_backwards[int(owner[index])] = int(index) + 1
    bad_range = ~(np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90))
    out_of_range = set(owner[bad_range].tolist())
    keep = []
    for k, (track, _, points) in enumerate(checked):
        if k in first_backwards:
            point = first_backwards[k] - offsets[k]
            errors.append(RowError(track.number,
                                   f"time goes backwards at point {point + 1} ({points[point][2].isoformat()})"))
        elif k in out_of_range:
            errors.append(RowError(track.number, "coordinates out of range; check their order (lon, lat) and the CRS"))
        else:
            keep.append(k)
    split = splitter_for(areas).split(
        [(lon[offsets[k]:offsets[k + 1]], lat[offsets[k]:offsets[k + 1]], times[offsets[k]:offsets[k + 1]],
          part_ids[offsets[k]:offsets[k + 1]]) for k in keep], tz=tz, max_gap=max_gap)
    stored_points = np.column_stack([np.round(lon, 7), np.round(lat, 7), np.round(times, 3)]).tolist()
    results: list[TrackResult] = []
    warnings: list[RowError] = []
    for k, parts in zip(keep, split):
        track, name, _ = checked[k]
        count = int(sizes[k])
        if parts["outside_points"] == count and not parts["segments"]:
            errors.append(RowError(track.number, "the track lies entirely outside every grid cell of the district; "
                                                 "check the coordinates and the CRS"))
            continue
        started = datetime.fromtimestamp(float(times[offsets[k]]), UTC)
        result = TrackResult(
            number=track.number, worker=name, started_at=started,
            ended_at=datetime.fromtimestamp(float(times[offsets[k + 1] - 1]), UTC),
            day=started.astimezone(tz).date(), points=stored_points[offsets[k]:offsets[k + 1]],
            outside_points=parts["outside_points"], length_m=parts["length_m"],
            outside_length_m=parts["outside_length_m"], outside_seconds=parts["outside_seconds"],
            segments=parts["segments"],
        )
        if result.outside_points or result.outside_seconds > 0:
            warnings.append(RowError(track.number, (
                f"{result.outside_points} of {count} points lie outside every grid cell "
                f"({result.outside_seconds / 60:.1f} min, {result.outside_length_m:.0f} m outside the district); "
                "that part counts for no cell")))
        results.append(result)
    errors.sort(key=lambda e: e.row)
    return results, errors, warnings


def import_tracks(
    db: Database,
    areas: AreaIndex,
    tracks: Sequence[TrackInput],
    *,
    worker: str | None = None,
    crs: InputCRS | str | None = None,
    timezone_name: str = "Asia/Shanghai",
    source: str | None = None,
    skip_bad_rows: bool = False,
    dry_run: bool = False,
    max_gap: float = MAX_GAP_SECONDS,
    access: AccessScope = UNLIMITED,
) -> PatrolImportReport:
    """Split and store tracks in one transaction: all of them, or (``skip_bad_rows``) the good ones.

    A segment in a cell outside ``access`` refuses the whole import (Forbidden), ``skip_bad_rows`` or not.
    """
    results, errors, warnings = prepare_tracks(areas, tracks, worker=worker, crs=crs, timezone_name=timezone_name,
                                               max_gap=max_gap)
    refuse_outside(access, [(f"track {result.number}", cell) for result in results
                            for cell in sorted({segment["cell_code"] for segment in result.segments})],
                   "patrol tracks pass through cells")
    report = PatrolImportReport(rows=len(tracks), imported=0, errors=errors, warnings=warnings, dry_run=dry_run)
    seen: dict[tuple[str, datetime], int] = {}
    unique = []
    for result in results:
        key = (result.worker, result.started_at)
        if key in seen:
            report.errors.append(RowError(result.number, f"same worker and start time as track {seen[key]}"))
            continue
        seen[key] = result.number
        unique.append(result)
    with db.session() as session:
        stored = _already_stored(session, list(seen))
        results = []
        for result in unique:
            if (result.worker, result.started_at) in stored:
                report.errors.append(RowError(result.number, (
                    f"already imported: {result.worker}'s track starting {result.started_at.isoformat()}")))
            else:
                results.append(result)
        report.errors.sort(key=lambda e: e.row)
        report.tracks = [result.summary() for result in results]
        if report.errors and not skip_bad_rows:
            report.tracks = []
            return report
        report.imported = len(results)
        if dry_run:
            return report
        report.ids = write_tracks(session, results, source=source)
    return report


def _already_stored(session: Session, keys: list[tuple[str, datetime]]) -> set[tuple[str, datetime]]:
    found: set[tuple[str, datetime]] = set()
    for start in range(0, len(keys), 300):
        chunk = keys[start:start + 300]
        rows = session.execute(select(PatrolTrack.worker, PatrolTrack.started_at)
                               .where(tuple_(PatrolTrack.worker, PatrolTrack.started_at).in_(chunk)))
        found.update((worker, started) for worker, started in rows)
    return found


def write_tracks(session: Session, results: Sequence[TrackResult], *, source: str | None = None,
                 chunk: int = 2000) -> list[int]:
    """Insert split tracks and their segments in the caller's transaction; return the track ids."""
    now = datetime.now(UTC)
    tracks, segments = PatrolTrack.__table__, PatrolSegment.__table__  # Core inserts: many rows, no ORM objects
    ids: list[int] = []
    for start in range(0, len(results), chunk):
        batch = results[start:start + chunk]
        rows = [{"worker": r.worker, "day": r.day, "started_at": r.started_at, "ended_at": r.ended_at,
                 "points": r.points, "point_count": len(r.points), "outside_points": r.outside_points,
                 "length_m": r.length_m, "outside_length_m": r.outside_length_m, "outside_seconds": r.outside_seconds,
                 "source": (source or "")[:200] or None, "created_at": now} for r in batch]
        session.execute(insert(tracks), rows)
        # Ids by the unique (worker, started_at): one query instead of a RETURNING row by row on SQLite.
        stored = {}
        keys = [(r.worker, r.started_at) for r in batch]
        for offset in range(0, len(keys), 500):
            stored.update(((worker, started), track_id) for track_id, worker, started in session.execute(
                select(tracks.c.id, tracks.c.worker, tracks.c.started_at)
                .where(tuple_(tracks.c.worker, tracks.c.started_at).in_(keys[offset:offset + 500]))))
        new_ids = [stored[key] for key in keys]
        pieces = [{"track_id": track_id, **segment} for track_id, r in zip(new_ids, batch) for segment in r.segments]
        if pieces:
            session.execute(insert(segments), pieces)
        ids += new_ids
    return ids


def track_detail(session: Session, track_id: int, *, access: AccessScope) -> dict[str, Any]:
    """A stored track with a segment in ``access``, with its segments there, for the API."""
    statement = select(PatrolTrack).where(PatrolTrack.id == track_id)
    if access.areas is not None:
        statement = statement.where(select(PatrolSegment.id).where(
            PatrolSegment.track_id == PatrolTrack.id, access.cell_condition(PatrolSegment.cell_code)).exists())
    track = session.scalar(statement)
    if track is None:
        raise NotFound(f"no patrol track with id {track_id}")
    return {
        "id": track.id, "worker": track.worker, "day": track.day.isoformat(),
        "started_at": track.started_at.isoformat(), "ended_at": track.ended_at.isoformat(),
        "point_count": track.point_count, "outside_points": track.outside_points, "length_m": round(track.length_m, 1),
        "outside_length_m": round(track.outside_length_m, 1), "outside_seconds": round(track.outside_seconds, 1),
        "source": track.source,
        "segments": [{"cell_code": s.cell_code, "day": s.day.isoformat(), "entered_at": s.entered_at.isoformat(),
                      "left_at": s.left_at.isoformat(), "seconds": round(s.seconds, 1),
                      "length_m": round(s.length_m, 1)}
                     for s in track.segments if access.covers_cell(s.cell_code)],
        "geometry": {"type": "LineString", "coordinates": [[p[0], p[1]] for p in track.points]},
        "times": [datetime.fromtimestamp(p[2], UTC).isoformat() for p in track.points],
    }
