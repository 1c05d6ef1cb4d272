"""Patrol track files: GPX 1.0/1.1 or GeoJSON read into tracks of (x, y, time) points.

GPX is parsed with ``gpxpy``; every ``<trk>`` is a track, its ``<trkseg>``s are parts; the worker
is the file's ``<metadata><author><name>`` unless given. GeoJSON: a LineString/MultiLineString
feature with ``properties.times``, one ISO 8601 time per coordinate, and optionally
``properties.worker``; or Point features with ``properties.time`` and ``worker``, grouped into one
track per worker and local day. Times without an offset are local. Splitting and storing the
tracks is :mod:`gridmap.coverage.patrols`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from gridmap.errors import InvalidInput
from gridmap.issues.intake import parse_datetime
from gridmap.json_text import parse_json

# --- reading ---------------------------------------------------------------------------------------------


@dataclass
class TrackInput:
    """A track as read from a file: its number there (for messages), worker, and parts of (x, y, time) points."""

    number: int
    worker: str | None
    parts: list[list[tuple[float, float, datetime]]]
    name: str | None = None
    error: str | None = None  # the reader found this track unusable


def read_track_file(path: Path | str, *, timezone_name: str = "Asia/Shanghai") -> list[TrackInput]:
    """Tracks from a GPX or GeoJSON file; InvalidInput if the file as a whole cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInput(f"{path}: file not found")
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == ".gpx":
        return read_gpx(data, timezone_name=timezone_name, what=path.name)
    if suffix in (".geojson", ".json"):
        return read_geojson_tracks(data, timezone_name=timezone_name, what=path.name)
    raise InvalidInput(f"{path}: unknown file type {suffix!r}; give a .gpx or .geojson track file")


def read_track_data(data: bytes, *, filename: str, timezone_name: str = "Asia/Shanghai") -> list[TrackInput]:
    """Tracks from uploaded bytes, the format told by the file name (or sniffed: GPX is XML)."""
    suffix = Path(filename or "").suffix.lower()
    if suffix == ".gpx" or (suffix not in (".geojson", ".json") and data.lstrip()[:1] == b"<"):
        return read_gpx(data, timezone_name=timezone_name, what=filename or "upload")
    return read_geojson_tracks(data, timezone_name=timezone_name, what=filename or "upload")


def read_gpx(data: bytes | str, *, timezone_name: str = "Asia/Shanghai", what: str = "GPX") -> list[TrackInput]:
    """Tracks of a GPX document: one per ``<trk>``, its ``<trkseg>``s as parts."""
    import gpxpy
    import gpxpy.gpx

    tz = ZoneInfo(timezone_name)
    text = data.decode("utf-8-sig", errors="replace") if isinstance(data, bytes) else data
    try:
        gpx = gpxpy.parse(text)
    except (gpxpy.gpx.GPXException, ValueError) as exc:
        raise InvalidInput(f"{what}: not a readable GPX file ({exc})") from None
    if not gpx.tracks:
        raise InvalidInput(f"{what}: the GPX file has no track (<trk>); routes and waypoints carry no patrol times")
    worker = (gpx.author_name or "").strip() or None
    tracks = []
    for number, track in enumerate(gpx.tracks, start=1):
        parts, error = [], None
        for segment in track.segments:
            part = []
            for index, point in enumerate(segment.points, start=1):
                if point.time is None:
                    error = f"point {index} of segment {len(parts) + 1} has no time"
                    break
                moment = point.time if point.time.tzinfo else point.time.replace(tzinfo=tz)
                part.append((float(point.longitude), float(point.latitude), moment))
            if error:
                break
            if part:
                parts.append(part)
        tracks.append(TrackInput(number, worker, parts, name=(track.name or None), error=error))
    return tracks


def read_geojson_tracks(data: bytes | str | Mapping[str, Any], *, timezone_name: str = "Asia/Shanghai",
                        what: str = "GeoJSON") -> list[TrackInput]:
    """Tracks of a GeoJSON FeatureCollection: LineStrings with ``times``, or timed Points grouped by worker and day."""
    tz = ZoneInfo(timezone_name)
    if isinstance(data, Mapping):
        collection = data
    else:
        collection = parse_json(data, what, kind="GeoJSON")
    if isinstance(collection, Mapping) and collection.get("type") == "Feature":
        collection = {"type": "FeatureCollection", "features": [collection]}
    if not isinstance(collection, Mapping) or collection.get("type") != "FeatureCollection":
        raise InvalidInput(f"{what}: not a GeoJSON FeatureCollection")
    if not isinstance(collection.get("features"), list) or not collection["features"]:
        raise InvalidInput(f"{what}: \"features\" must list the tracks: LineStrings with properties.times, or timed "
                           "Points")
    tracks: list[TrackInput] = []
    groups: dict[tuple[str | None, date], TrackInput] = {}
    for number, feature in enumerate(collection.get("features") or [], start=1):
        feature = feature if isinstance(feature, Mapping) else {}
        geometry = feature.get("geometry") or {}
        properties = feature.get("properties") or {}
        worker = str(properties["worker"]).strip() or None if properties.get("worker") is not None else None
        kind = geometry.get("type")
        try:
            if kind == "Point":
                x, y = _xy(geometry.get("coordinates"))
                moment = _time(properties.get("time"), tz, "time")
                key = (worker, moment.astimezone(tz).date())
                if key not in groups:
                    groups[key] = TrackInput(number, worker, [[]], name=properties.get("name"))
                    tracks.append(groups[key])
                groups[key].parts[0].append((x, y, moment))
                continue
            if kind == "LineString":
                lines, times = [geometry.get("coordinates")], [properties.get("times")]
            elif kind == "MultiLineString":
                lines, times = geometry.get("coordinates") or [], properties.get("times")
                if not isinstance(times, list) or len(times) != len(lines):
                    raise ValueError("a MultiLineString needs properties.times with one list of times per line")
            else:
                raise ValueError(f"a {kind or 'feature without geometry'} is no track; "
                                 "give a LineString with properties.times, or timed Points")
            parts = []
            for line, line_times in zip(lines, times):
                if not isinstance(line, list) or not isinstance(line_times, list) or len(line) != len(line_times):
                    raise ValueError("properties.times must list one time per coordinate of the line")
                parts.append([(*_xy(xy), _time(t, tz, f"time {i}"))
                              for i, (xy, t) in enumerate(zip(line, line_times), start=1)])
            tracks.append(TrackInput(number, worker, parts, name=properties.get("name")))
        except ValueError as exc:
            tracks.append(TrackInput(number, worker, [], error=f"feature {number}: {exc}"))
    for track in groups.values():
        track.parts[0].sort(key=lambda point: point[2])
    return tracks


def _xy(coordinates: Any) -> tuple[float, float]:
    if not isinstance(coordinates, (list, tuple)) or len(coordinates) < 2:
        raise ValueError("coordinates must be [lon, lat]")
    try:
        x, y = float(coordinates[0]), float(coordinates[1])
    except (TypeError, ValueError):
        raise ValueError(f"coordinates {coordinates!r} are not numbers") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError("coordinates must be finite numbers")
    return x, y


def _time(value: Any, tz: tzinfo, name: str) -> datetime:
    if value in (None, ""):
        raise ValueError(f"{name} is missing: every point needs a time")
    try:
        return parse_datetime(value, tz)
    except ValueError as exc:
        raise ValueError(f"{name} {exc}") from None


