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


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    import re

    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def log_in(client, name: str, password: str, next_url: str = ""):
    """Log a Flask test client in through the login form; return the answer."""
    page = client.get("/login")
    return client.post("/login", data={"name": name, "password": password, "next": next_url,
                                       "csrf_token": csrf_of(page.get_data(as_text=True))})


def explain(connection, statement) -> str:
    """The query plan the database chooses for a SQLAlchemy statement, as one text."""
    compiled = statement.compile(dialect=connection.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    if connection.dialect.name == "sqlite":
        positional = tuple(params[name] for name in compiled.positiontup or ())
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", positional)
        return "\n".join(str(row[-1]) for row in rows)
    rows = connection.exec_driver_sql(f"EXPLAIN {compiled}", params)
    return "\n".join(row[0] for row in rows)
