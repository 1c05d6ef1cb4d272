"""Small helpers shared by tests."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import shapely
from shapely.geometry import shape


def cell_point(geodata: Path, code: str) -> tuple[float, float]:
    """A lon/lat point well inside the named cell of a layer set folder."""
    for feature in json.loads((Path(geodata) / "cells.geojson").read_text())["features"]:
        if feature["properties"]["code"] == code:
            point = shapely.point_on_surface(shape(feature["geometry"]))
            return round(point.x, 7), round(point.y, 7)
    raise KeyError(code)


def write_csv(path: Path, rows: list[dict], encoding: str = "utf-8") -> Path:
    """Write dict rows as a CSV file; the header is every key that appears, in order."""
    fieldnames = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="", encoding=encoding) as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    return path
