"""Bad input, table-driven: every entry point answers a clear 4xx or CLI error, never a
500, with a message that says what to fix, and writes nothing — no row in any table, no file.

Entry points: the issues API (JSON), Open311 POST (form), the coverage uploads (households,
visits, patrol tracks), and the CLI (`issues import`, `ledger import`, `coverage households
import`, `geodata validate`, `grid build`).
"""

from __future__ import annotations

import importlib
import io
import json
import pkgutil
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyproj
import pytest
from click.testing import CliRunner
from openpyxl import Workbook
from sqlalchemy import func, select

import gridmap.storage
from conftest import UTM, X0, Y0
from gridmap.cli import main
from gridmap.coverage.households import HouseholdRegistry
from gridmap.interop.open311 import add_api_key
from gridmap.storage.models import Base

_TO_WGS84 = pyproj.Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
#: A point well inside the mini district's first cell (125 m from its south-west corner), and its UTM metres.
UTM_X, UTM_Y = X0 + 125, Y0 + 125
LON, LAT = (round(v, 7) for v in _TO_WGS84.transform(UTM_X, UTM_Y))
SEA = (108.0, 18.0)  # in the sea west of Sanya: outside every cell
HOUSEHOLD = "H-BAD-1"  # registered before every case, so that visits have someone to visit


# --- what is stored -----------------------------------------------------------------------------


def table_counts(gm) -> dict[str, int]:
    """Rows in every table of the schema (every storage module registers its tables on Base.metadata)."""
    for module in pkgutil.iter_modules(gridmap.storage.__path__):
        importlib.import_module(f"gridmap.storage.{module.name}")
    with gm.db.sessions() as session:
        return {table.name: session.scalar(select(func.count()).select_from(table))
                for table in Base.metadata.sorted_tables}


def files_under(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` with its content."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- building bad files -------------------------------------------------------------------------


def csv_bytes(text: str, encoding: str = "utf-8") -> bytes:
    return text.encode(encoding)


def issue_csv(encoding: str = "utf-8", **values: Any) -> bytes:
    """A one-row issues CSV: a good row with ``values`` replacing its fields."""
    row = {"lon": LON, "lat": LAT, "category": "E0102", "description": "路边暴露垃圾",
           "reported_at": "2026-06-02 09:30",
           **values}
    return ("\n".join([",".join(row), ",".join(str(v) for v in row.values())]) + "\n").encode(encoding)


def household_csv(encoding: str = "utf-8", **values: Any) -> bytes:
    """A one-row households CSV: a good row with ``values`` replacing its fields."""
    row = {"external_id": "H-NEW", "address": "春园路9号", "kind": "ordinary", "lon": LON, "lat": LAT,
           "registered_on": "2026-01-05", **values}
    return ("\n".join([",".join(row), ",".join(str(v) for v in row.values())]) + "\n").encode(encoding)


def visit_csv(**values: Any) -> bytes:
    """A one-row visits CSV for the household registered before each case."""
    row = {"household": HOUSEHOLD, "visitor": "王网格", "visited_at": "2026-06-03 10:00", "notes": "入户走访", **values}
    return ("\n".join([",".join(row), ",".join(str(v) for v in row.values())]) + "\n").encode()


def xlsx_bytes(rows: list[list[Any]]) -> bytes:
    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def zip_bytes() -> bytes:
    """A valid zip archive that is not a workbook (no [Content_Types].xml, no xl/)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "not a workbook")
    return out.getvalue()


PNG_JUNK = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00\x1f\xf3\xffa"


def track(coordinates: list[list[float]], times: list[str] | None = None, worker: str = "王网格") -> bytes:
    """A GeoJSON patrol track: one LineString with a time per point."""
    times = times or [f"2026-06-03T09:{10 + 5 * i:02d}:00+08:00" for i in range(len(coordinates))]
    return json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": {"type": "LineString", "coordinates": coordinates},
        "properties": {"worker": worker, "times": times}}]}).encode()


def near(dx: float, dy: float) -> list[float]:
    """lon/lat of a point dx, dy metres from the first cell's good point."""
    return [round(v, 7) for v in _TO_WGS84.transform(UTM_X + dx, UTM_Y + dy)]


GOOD_TRACK = [near(0, 0), near(50, 0), near(100, 0)]
BOW_TIE = [[[LON, LAT], [LON + 0.01, LAT + 0.01], [LON + 0.01, LAT], [LON, LAT + 0.01], [LON, LAT]]]


# --- breaking a layer set -----------------------------------------------------------------------


def _edit_first_feature(folder: Path, level: str, change: Callable[[dict], None]) -> None:
    path = folder / f"{level}.geojson"
    collection = json.loads(path.read_text(encoding="utf-8"))
    change(collection["features"][0])
    path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")


def _set_geometry(geometry: dict | None) -> Callable[[dict], None]:
    def change(feature: dict) -> None:
        feature["geometry"] = geometry
    return change


def _swap_coordinates(feature: dict) -> None:
    feature["geometry"]["coordinates"] = [[[y, x] for x, y in ring] for ring in feature["geometry"]["coordinates"]]


def _to_utm_metres(feature: dict) -> None:
    to_utm = pyproj.Transformer.from_crs("EPSG:4326", UTM, always_xy=True)
    feature["geometry"]["coordinates"] = [[list(to_utm.transform(x, y)) for x, y in ring]
                                          for ring in feature["geometry"]["coordinates"]]


def break_layer(level: str, how: str) -> Callable[[Path], None]:
    """A function that breaks ``level``'s file of a copied layer set in the way named by ``how``."""
    def apply(folder: Path) -> None:
        path = folder / f"{level}.geojson"
        if how == "syntax":
            path.write_text(path.read_text(encoding="utf-8")[:-40], encoding="utf-8")  # cut off: unbalanced
        elif how == "not-a-collection":
            path.write_text(json.dumps({"type": "GeometryCollection", "geometries": []}), encoding="utf-8")
        elif how == "gbk":
            path.write_bytes(path.read_text(encoding="utf-8").encode("gbk"))
        elif how == "no-geometry":
            _edit_first_feature(folder, level, _set_geometry(None))
        elif how == "point":
            _edit_first_feature(folder, level, _set_geometry({"type": "Point", "coordinates": [LON, LAT]}))
        elif how == "bow-tie":
            _edit_first_feature(folder, level, _set_geometry({"type": "Polygon", "coordinates": BOW_TIE}))
        elif how == "swapped":
            _edit_first_feature(folder, level, _swap_coordinates)
        elif how == "utm":
            _edit_first_feature(folder, level, _to_utm_metres)
        else:
            raise AssertionError(how)
    return apply


# --- the entry points ---------------------------------------------------------------------------


@dataclass
class World:
    """What a case runs against: the app's client, the core, a scratch folder, the layer set, an Open311 key."""

    client: Any
    gm: Any
    tmp_path: Path
    geodata: Path
    api_key: str
    issue_id: int

    @property
    def limit(self) -> int:
        return int(self.client.application.config["MAX_CONTENT_LENGTH"])


def _json_message(response) -> str:
    body = response.get_json(silent=True)
    assert isinstance(body, dict) and "error" in body, response.get_data(as_text=True)[:500]
    error = body["error"]
    return error["message"] + " " + json.dumps(error.get("details"), ensure_ascii=False)


GOOD_ISSUE = {"category": "E0102", "description": "路边暴露垃圾", "lon": LON, "lat": LAT}


def post_issue(world: World, body: dict | bytes | Callable[[World], bytes]) -> tuple[int, str]:
    """POST /api/v1/issues with the good issue changed by ``body`` (or with ``body`` as the raw request)."""
    if callable(body):
        body = body(world)
    data = body if isinstance(body, bytes) else json.dumps({**GOOD_ISSUE, **body})
    response = world.client.post("/api/v1/issues", data=data, content_type="application/json")
    return response.status_code, _json_message(response)


def post_open311(world: World, form: dict | Callable[[World], dict]) -> tuple[int, str]:
    """POST /open311/v2/requests.json with the good request changed by ``form`` (None drops a field)."""
    if callable(form):
        form = form(world)
    values = {"api_key": world.api_key, "service_code": "E0102", "lat": LAT, "long": LON, "description": "路边暴露垃圾",
              **form}
    response = world.client.post("/open311/v2/requests.json", data={k: v for k, v in values.items() if v is not None})
    errors = response.get_json(silent=True)
    assert isinstance(errors, list), response.get_data(as_text=True)[:500]
    return response.status_code, " ".join(error["description"] for error in errors)


def json_poster(path: str, good: dict) -> Callable[[World, dict], tuple[int, str]]:
    """POST ``good`` changed by the case's fields as JSON to ``path`` (``{issue}`` is the world's issue)."""
    def post(world: World, changes: dict) -> tuple[int, str]:
        response = world.client.post(path.format(issue=world.issue_id), json={**good, **changes})
        return response.status_code, _json_message(response)
    return post


def uploader(path: str) -> Callable[[World, tuple], tuple[int, str]]:
    """Upload (file name, bytes[, form fields]) as the multipart field ``file`` to ``path``."""
    def upload(world: World, spec: tuple) -> tuple[int, str]:
        filename, data, *form = spec
        data = data(world) if callable(data) else data
        fields = {"file": (io.BytesIO(data), filename), **(form[0] if form else {})}
        response = world.client.post(path, data=fields, content_type="multipart/form-data")
        return response.status_code, _json_message(response)
    return upload


def raw_uploader(path: str) -> Callable[[World, tuple], tuple[int, str]]:
    """Upload (file name, bytes) as the raw request body with ?filename= (how a large file is streamed)."""
    def upload(world: World, spec: tuple) -> tuple[int, str]:
        filename, data = spec
        data = data(world) if callable(data) else data
        response = world.client.post(path, query_string={"filename": filename}, data=data,
                                     content_type="application/octet-stream")
        return response.status_code, _json_message(response)
    return upload


def _cli(world: World, args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"the command crashed: {result.exception!r}\n{result.output}")
    return result.exit_code, result.output


def cli_file(*command: str) -> Callable[[World, tuple], tuple[int, str]]:
    """Run ``gridmap COMMAND FILE [ARGS]`` on (file name, bytes[, extra args]) written to a scratch folder."""
    def run(world: World, spec: tuple) -> tuple[int, str]:
        filename, data, *extra = spec
        path = world.tmp_path / "input" / filename
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        return _cli(world, [*command, str(path), *(extra[0] if extra else [])])
    return run


def cli_layers(*command: str) -> Callable[[World, tuple], tuple[int, str]]:
    """Run ``gridmap COMMAND DIR [ARGS]`` on a copy of the mini layer set broken by a function; no file may change."""
    def run(world: World, spec: tuple) -> tuple[int, str]:
        breaker, *extra = spec
        folder = world.tmp_path / "layers"
        shutil.copytree(world.geodata, folder)
        if command[0] == "grid":  # building starts from the areas without cells
            (folder / "cells.geojson").unlink()
        breaker(folder)
        before = files_under(world.tmp_path)
        out = world.tmp_path / "built"
        code, output = _cli(world, [*command, str(folder), *(extra[0] if extra else []),
                                    *(["--out", str(out)] if command[0] == "grid" else [])])
        assert files_under(world.tmp_path) == before, "a refused command wrote or changed files"
        return code, output
    return run


API = post_issue
TRANSITION = json_poster("/api/v1/issues/{issue}/transitions", {"action": "register"})
NEW_HOUSEHOLD = json_poster("/api/v1/coverage/households",
                            {"address": "春园路9号", "kind": "ordinary", "lon": LON, "lat": LAT})
NEW_VISIT = json_poster("/api/v1/coverage/visits", {"household": HOUSEHOLD, "visitor": "王网格",
                                                    "visited_at": "2026-06-03T10:00:00+08:00"})
OPEN311 = post_open311
HOUSEHOLDS = uploader("/api/v1/coverage/households/import")
HOUSEHOLDS_RAW = raw_uploader("/api/v1/coverage/households/import")
VISITS = uploader("/api/v1/coverage/visits/import")
PATROLS = raw_uploader("/api/v1/coverage/patrols")
ISSUES_IMPORT = cli_file("issues", "import")
LEDGER_IMPORT = cli_file("ledger", "import")
HOUSEHOLDS_IMPORT = cli_file("coverage", "households", "import")
VALIDATE = cli_layers("geodata", "validate")
BUILD = cli_layers("grid", "build")


def oversized_json(world: World) -> bytes:
    """A well-formed issue whose description makes the body one byte longer than the limit."""
    body = json.dumps({**GOOD_ISSUE, "description": ""})
    return body.replace('"description": ""', '"description": "' + "x" * (world.limit + 1 - len(body)) + '"').encode()


def huge_geojson(world: World) -> bytes:
    """A well-formed patrol FeatureCollection padded beyond the limit."""
    head, tail = track(GOOD_TRACK)[:-2], b"]}"
    return head + b" " * (world.limit + 1 - len(head) - len(tail)) + tail


def huge_csv(world: World) -> bytes:
    """A households CSV of many good rows, over the limit."""
    line = f"春园路1号,ordinary,{LON},{LAT}\n".encode()
    return b"address,kind,lon,lat\n" + line * (world.limit // len(line) + 1)


# --- the table ------------------------------------------------------------------------------------

CASES = [
    # --- coordinates out of range, swapped, projected, outside every cell -------------------------
    pytest.param(API, {"lat": 95.0}, 400, "out of range (lon -180..180, lat -90..90)",
                 id="api-latitude-beyond-the-pole"),  # |lat| > 90
    pytest.param(API, {"lon": 181.0}, 400, "out of range", id="api-longitude-beyond-180"),  # |lon| > 180
    pytest.param(API, b'{"category": "E0102", "description": "x", "lon": NaN, "lat": 18.2}', 400,
                 "lon must be a finite number", id="api-nan-longitude"),  # Python's JSON reader accepts NaN
    pytest.param(API, b'{"category": "E0102", "description": "x", "lon": 1' + b"0" * 400 + b', "lat": 18.2}', 400,
                 "lon must be a finite number", id="api-400-digit-longitude"),  # too large for a float
    pytest.param(API, {"lon": LAT, "lat": LON}, 400, "swapped", id="api-lon-lat-swapped"),  # (18.2, 109.5)
    pytest.param(API, {"lon": UTM_X, "lat": UTM_Y}, 400, "projected coordinates",
                 id="api-utm-metres-as-lon-lat"),  # metres of EPSG:32649 sent without crs
    pytest.param(API, {"crs": "EPSG:999999"}, 400, "unknown CRS", id="api-unknown-crs"),  # no such EPSG code
    pytest.param(API, {"lon": SEA[0], "lat": SEA[1]}, 422, "outside every grid cell", id="api-outside-every-cell"),
    pytest.param(NEW_HOUSEHOLD, {"lon": UTM_X, "lat": UTM_Y}, 400, "projected coordinates",
                 id="household-json-utm-metres-as-lon-lat"),
    pytest.param(NEW_VISIT, {"issues": [{"category": "E0102", "description": "x", "lon": LAT, "lat": LON}]}, 400,
                 "look swapped",
                 id="visit-json-raised-issue-lon-lat-swapped"),  # neither the visit nor the issue is kept
    pytest.param(OPEN311, {"lat": 95}, 400, "lat 95 is out of range (-90 to 90)",
                 id="open311-latitude-beyond-the-pole"),
    pytest.param(OPEN311, {"lat": LON, "long": LAT}, 400, "lat and long look swapped", id="open311-lat-long-swapped"),
    pytest.param(OPEN311, {"lat": UTM_Y, "long": UTM_X}, 400,
                 "long 420125.0 is out of range (-180 to 180); it looks like projected metres",
                 id="open311-utm-metres-as-lat-long"),  # the spec takes WGS84 only
    pytest.param(OPEN311, {"lat": SEA[1], "long": SEA[0]}, 400, "outside every grid cell",
                 id="open311-outside-every-cell"),  # 400: the spec knows no 422
    pytest.param(HOUSEHOLDS, ("households.csv", household_csv(lon=200)), 400, '"row": 2',
                 id="households-longitude-beyond-180"),  # listed by row number in details
    pytest.param(HOUSEHOLDS, ("households.csv", household_csv(lon=LAT, lat=LON)), 400, "look swapped",
                 id="households-lon-lat-swapped"),
    pytest.param(HOUSEHOLDS, ("households.csv", household_csv(lon=SEA[0], lat=SEA[1])), 400,
                 "outside every grid cell", id="households-outside-every-cell"),
    pytest.param(PATROLS, ("track.geojson", track([[y, x] for x, y in GOOD_TRACK])), 400,
                 "check their order (lon, lat)",
                 id="patrols-lon-lat-swapped"),
    pytest.param(PATROLS, ("track.geojson", track([[UTM_X + 50 * i, UTM_Y] for i in range(3)])), 400,
                 "coordinates out of range", id="patrols-utm-metres-as-lon-lat"),
    pytest.param(PATROLS, ("track.geojson", track([[SEA[0] + 0.001 * i, SEA[1]] for i in range(3)])), 400,
                 "entirely outside every grid cell", id="patrols-outside-every-cell"),
    pytest.param(ISSUES_IMPORT, ("issues.csv", issue_csv(lon=200)), 2, "row 2: coordinates: (200, ",
                 id="cli-issues-longitude-beyond-180"),
    pytest.param(ISSUES_IMPORT, ("issues.csv", issue_csv(lon=LAT, lat=LON)), 2, "look swapped",
                 id="cli-issues-lon-lat-swapped"),
    pytest.param(ISSUES_IMPORT, ("issues.csv", issue_csv(lon=UTM_X, lat=UTM_Y)), 2, "--crs EPSG:",
                 id="cli-issues-utm-metres-as-lon-lat"),  # the message names the option to use
    pytest.param(ISSUES_IMPORT, ("issues.csv", issue_csv(lon=SEA[0], lat=SEA[1])), 2, "row 2: (108, 18) lies outside",
                 id="cli-issues-outside-every-cell"),
    pytest.param(ISSUES_IMPORT, ("issues.csv", issue_csv(), ["--crs", "EPSG:999999"]), 2, "unknown CRS",
                 id="cli-issues-unknown-crs"),
    # --- layer files: broken or huge GeoJSON, bow-ties, projected or swapped coordinates -------------
    pytest.param(VALIDATE, (break_layer("cells", "syntax"),), 2, "cells.geojson: broken JSON at line",
                 id="validate-json-syntax-error"),
    pytest.param(VALIDATE, (break_layer("streets", "not-a-collection"),), 2, "not a GeoJSON FeatureCollection",
                 id="validate-wrong-geojson-type"),  # a GeometryCollection
    pytest.param(VALIDATE, (break_layer("communities", "gbk"),), 2, "not UTF-8",
                 id="validate-gbk-encoded-geojson"),  # RFC 7946 says UTF-8
    pytest.param(VALIDATE, (break_layer("cells", "no-geometry"),), 1, "has no geometry",
                 id="validate-feature-without-geometry"),  # exit 1: problems found, listed by feature
    pytest.param(VALIDATE, (break_layer("cells", "point"),), 1, "areas must be Polygon or MultiPolygon",
                 id="validate-point-as-area"),
    pytest.param(VALIDATE, (break_layer("cells", "bow-tie"),), 1, "invalid geometry: Self-intersection",
                 id="validate-bow-tie-cell"),
    pytest.param(VALIDATE, (break_layer("communities", "utm"),), 1, "projected coordinates given as lon/lat",
                 id="validate-utm-metres-as-lon-lat"),
    pytest.param(VALIDATE, (break_layer("streets", "swapped"),), 1, "look swapped", id="validate-lon-lat-swapped"),
    pytest.param(BUILD, (break_layer("communities", "bow-tie"), ["--cell-size", "250"]), 2,
                 "Self-intersection", id="build-bow-tie-community"),  # the problems listed, then refused
    pytest.param(BUILD, (break_layer("communities", "utm"), ["--cell-size", "250"]), 2, "projected coordinates",
                 id="build-utm-metres-as-lon-lat"),
    pytest.param(BUILD, (break_layer("streets", "syntax"), ["--cell-size", "250"]), 2, "broken JSON",
                 id="build-json-syntax-error"),
    pytest.param(BUILD, (lambda folder: None, ["--cell-size", "0"]), 2, "cell size must be a positive number",
                 id="build-zero-cell-size"),
    pytest.param(BUILD, (lambda folder: None, ["--cell-size", "nan"]), 2, "cell size must be a positive number",
                 id="build-nan-cell-size"),
    pytest.param(PATROLS, ("track.geojson", b'{"type": "FeatureCollection", "features": ['), 400,
                 "track.geojson: broken JSON at line 1", id="patrols-json-syntax-error"),
    pytest.param(PATROLS, ("track.geojson", b'{"type": "Topology", "objects": {}}'), 400,
                 "not a GeoJSON FeatureCollection", id="patrols-wrong-geojson-type"),  # TopoJSON
    pytest.param(PATROLS, ("track.geojson", b'{"type": "FeatureCollection", "features": [{"type": "Feature", '
                                            b'"properties": {"worker": "x"}}]}'), 400,
                 "feature 1: a feature without geometry is no track", id="patrols-feature-without-geometry"),
    pytest.param(PATROLS, ("track.geojson", json.dumps({
                     "type": "Feature", "properties": {"worker": "x"},
                     "geometry": {"type": "Polygon", "coordinates": BOW_TIE}}).encode()),
                 400, "a Polygon is no track", id="patrols-bow-tie-polygon"),
    pytest.param(PATROLS, ("track.geojson", b'{"type": "FeatureCollection", "features": [' + b"[" * 100000), 400,
                 "not usable JSON", id="patrols-json-nested-100000-deep"),  # RecursionError in the parser
    pytest.param(PATROLS, ("track.geojson", huge_geojson), 413, "max_upload_bytes",
                 id="patrols-huge-geojson"),  # one byte over the configured limit
    pytest.param(PATROLS, ("track.gpx", b"<gpx><trk><trkseg><trkpt lat='x'"), 400, "not a readable GPX file",
                 id="patrols-broken-gpx"),
    pytest.param(HOUSEHOLDS, ("households.geojson", b'{"type": "FeatureCollection", "features": [}'), 400,
                 "households.geojson: broken JSON",
                 id="households-json-syntax-error"),  # named by upload, not temp file
    pytest.param(HOUSEHOLDS, ("households.geojson", b'{"type": "FeatureCollection", "features": [{"type": "Feature", '
                                                    b'"properties": {"address": "a", "kind": "ordinary"}}]}'), 400,
                 "feature 1 is not a Point", id="households-feature-without-geometry"),
    pytest.param(ISSUES_IMPORT, ("issues.geojson", b'{"type": "FeatureCollection", "features": [{"type": "Feature", '
                                                   b'"geometry": null, "properties": {}}]}'), 2,
                 "row 1: feature 1 is not a Point", id="cli-issues-feature-without-geometry"),
    pytest.param(ISSUES_IMPORT, ("issues.geojson", b'{"type": "Feature"}'), 2, "not a GeoJSON FeatureCollection",
                 id="cli-issues-wrong-geojson-type"),
    pytest.param(ISSUES_IMPORT, ("issues.geojson", b'{"features": [1, 2'), 2, "broken JSON at line 1",
                 id="cli-issues-json-syntax-error"),
    # --- unknown categories (and kinds) ---------------------------------------------------------------
    pytest.param(API, {"category": "E9999"}, 400, "no category has the code or name 'E9999'",
                 id="api-unknown-category"),
    pytest.param(API, {"category": "E01"}, 400, "is a class; give one of its items", id="api-category-class"),
    pytest.param(OPEN311, {"service_code": "E9999"}, 400, "service_code 'E9999' not found",
                 id="open311-unknown-service"),
    pytest.param(OPEN311, {"api_key": None}, 403, "api_key is required", id="open311-without-api-key"),
    pytest.param(ISSUES_IMPORT, ("issues.csv", issue_csv(category="飞碟")), 2,
                 "row 2: no category has the code or name '飞碟'",
                 id="cli-issues-unknown-category"),
    pytest.param(LEDGER_IMPORT, ("hotline.csv", csv_bytes("经度,纬度,类别编码,问题描述,上报时间\n"
                                                          f"{LON},{LAT},E9999,井盖缺失,2026-06-02 09:30\n")), 2,
                 "row 2, column 类别编码", id="cli-ledger-unknown-category"),
    pytest.param(VISITS, ("visits.csv", visit_csv(issue_category="E9999", issue_description="楼道堆物")), 400,
                 "E9999",
                 id="visits-unknown-category-of-raised-issue"),  # the visit is checked, then its issue: all or nothing
    pytest.param(HOUSEHOLDS, ("households.csv", household_csv(kind="富裕户")), 400, "unknown household kind '富裕户'",
                 id="households-unknown-kind"),
    # --- bad dates ------------------------------------------------------------------------------------
    pytest.param(API, {"reported_at": "2026-02-30T10:00:00"}, 400,
                 "reported_at '2026-02-30T10:00:00' is not a date-time",
                 id="api-february-30"),
    pytest.param(API, {"reported_at": "next Tuesday"}, 400, "reported_at 'next Tuesday'", id="api-garbage-date"),
    pytest.param(API, {"reported_at": "2999-01-01T00:00:00+08:00", "category": "C0101"}, 400, "is in the future",
                 id="api-far-future"),  # C0101 counts continuous hours: no calendar year needed
    pytest.param(API, {"reported_at": "0001-01-01T00:00:00", "category": "E0709"}, 400,
                 "give a time between 1900-01-01 and 2999-12-31", id="api-year-1"),  # was a 500 (overflow)
    pytest.param(API, {"reported_at": 20260602}, 400, "reported_at must be a string", id="api-date-as-number"),
    pytest.param(TRANSITION, {"at": "2999-01-01T08:00:00+08:00"}, 400, "is in the future",
                 id="transition-far-future"),  # would block every later step (none may come before it)
    pytest.param(TRANSITION, {"at": "2026-02-30T08:00:00"}, 400, "at '2026-02-30T08:00:00' is not a date-time",
                 id="transition-february-30"),
    pytest.param(TRANSITION, {"at": "1066-10-14T09:00:00"}, 400, "give a time between 1900-01-01",
                 id="transition-far-past"),
    pytest.param(TRANSITION, {"action": "teleport"}, 400, "unknown action 'teleport'", id="transition-unknown-action"),
    pytest.param(NEW_VISIT, {"visited_at": "0001-01-01T00:00:00"}, 400, "give a time between 1900-01-01",
                 id="visit-json-year-1"),
    pytest.param(ISSUES_IMPORT, ("issues.csv", issue_csv(reported_at="2026-02-30 09:30")), 2,
                 "row 2: reported_at '2026-02-30 09:30' is not a date-time", id="cli-issues-february-30"),
    pytest.param(ISSUES_IMPORT, ("issues.csv", issue_csv(reported_at="9999-12-31T23:59:59-12:00")), 2,
                 "row 2: reported_at 9999-12-31T23:59:59-12:00 is out of range", id="cli-issues-year-9999"),
    pytest.param(ISSUES_IMPORT, ("issues.csv", issue_csv(reported_at="2026-06-02 09:30", closed_at="2026-06-01 10:00",
                                                         status="closed")), 2,
                 "row 2: closed_at 2026-06-01T10:00:00+08:00 is earlier than the stage before it",
                 id="cli-issues-stages-out-of-order"),
    pytest.param(HOUSEHOLDS, ("households.csv", household_csv(registered_on="2026-02-30")), 400,
                 "registered_on '2026-02-30' is not a date", id="households-february-30"),
    pytest.param(VISITS, ("visits.csv", visit_csv(visited_at="2999-06-03 10:00")), 400, "is in the future",
                 id="visits-far-future"),
    pytest.param(VISITS, ("visits.csv", visit_csv(visited_at="1899-12-31 10:00")), 400,
                 "give a time between 1900-01-01",
                 id="visits-far-past"),
    pytest.param(PATROLS, ("track.geojson", track(GOOD_TRACK, times=["2026-02-30T09:00:00", "2026-02-30T09:05:00",
                                                                     "2026-02-30T09:10:00"])), 400,
                 "feature 1: time 1 '2026-02-30T09:00:00' is not a date-time", id="patrols-february-30"),
    pytest.param(PATROLS, ("track.geojson", track(GOOD_TRACK, times=["0001-01-01T00:00:00", "0001-01-01T00:05:00",
                                                                     "0001-01-01T00:10:00"])), 400,
                 "give a time between 1900-01-01", id="patrols-year-1"),
    # --- oversized uploads (the configured limit → 413) --------------------------------------------------
    pytest.param(API, oversized_json, 413, "max_upload_bytes", id="api-body-over-the-limit"),
    pytest.param(OPEN311, lambda world: {"description": "x" * world.limit}, 413, "max_upload_bytes",
                 id="open311-body-over-the-limit"),  # in the spec's error format
    pytest.param(HOUSEHOLDS_RAW, ("households.csv", huge_csv), 413, "max_upload_bytes",
                 id="households-upload-over-the-limit"),
    # --- malformed CSV and XLSX -----------------------------------------------------------------------
    pytest.param(ISSUES_IMPORT,
                 ("issues.csv",
                  csv_bytes(f"x,y,category,description,reported_at\n{LON},{LAT},E0102,垃圾,2026-06-02\n")),
                 2, "missing column(s) lon, lat", id="cli-issues-wrong-columns"),
    pytest.param(ISSUES_IMPORT, ("issues.csv", issue_csv() + b"1,2,3,4,5,6,7\n"), 2,
                 "line 3 has more fields than the header",
                 id="cli-issues-row-longer-than-header"),
    pytest.param(ISSUES_IMPORT, ("issues.csv", issue_csv() + f"{LON},{LAT},E0102\n".encode()), 2,
                 "row 3: has 3 fields, the header 5", id="cli-issues-row-shorter-than-header"),
    pytest.param(ISSUES_IMPORT, ("issues.csv", PNG_JUNK), 2, "issues.csv", id="cli-issues-binary-junk"),
    pytest.param(ISSUES_IMPORT, ("issues.csv", b"lon,lat,category,description,reported_at\n" + b"\x00" * 64 + b"\n"), 2,
                 "row 2", id="cli-issues-nul-bytes"),
    pytest.param(ISSUES_IMPORT, ("issues.xlsx", b"lon,lat,category\n1,2,3\n"), 2, "not a readable XLSX workbook",
                 id="cli-issues-text-renamed-xlsx"),
    pytest.param(ISSUES_IMPORT, ("issues.xlsx", zip_bytes()), 2, "not a readable XLSX workbook",
                 id="cli-issues-zip-that-is-no-workbook"),
    pytest.param(ISSUES_IMPORT, ("issues.xlsx", xlsx_bytes([["lon", "lat", "category", "description", "reported_at"],
                                                            [LON, LAT, "E0102", "垃圾", "2026-02-30 10:00"]])), 2,
                 "row 2: reported_at '2026-02-30 10:00'", id="cli-issues-xlsx-bad-date"),
    pytest.param(ISSUES_IMPORT, ("issues.pdf", b"%PDF-1.4"), 2, "unknown file type '.pdf'",
                 id="cli-issues-unknown-file-type"),
    pytest.param(LEDGER_IMPORT, ("ledger.xlsx", b"not a workbook"), 2, "not a readable XLSX workbook",
                 id="cli-ledger-text-renamed-xlsx"),
    pytest.param(HOUSEHOLDS_IMPORT, ("households.xlsx", zip_bytes()), 2, "not a readable XLSX workbook",
                 id="cli-households-zip-that-is-no-workbook"),
    pytest.param(HOUSEHOLDS, ("households.csv", csv_bytes("address,lon,lat\n春园路9号,1,2\n")), 400,
                 "missing column(s) kind", id="households-wrong-columns"),
    pytest.param(HOUSEHOLDS, ("households.csv", PNG_JUNK), 400, "households.csv", id="households-binary-junk"),
    pytest.param(HOUSEHOLDS, ("households.xlsx", b"address,kind\n"), 400,
                 "households.xlsx: not a readable XLSX workbook",
                 id="households-text-renamed-xlsx"),
    pytest.param(HOUSEHOLDS, ("households.xlsx", zip_bytes()), 400, "not a readable XLSX workbook",
                 id="households-zip-that-is-no-workbook"),
    pytest.param(HOUSEHOLDS, ("households.pdf", b"%PDF-1.4"), 400, "unknown file type '.pdf'",
                 id="households-unknown-file-type"),
    pytest.param(VISITS, ("visits.csv", visit_csv() + f"{HOUSEHOLD},王网格\n".encode()), 400,
                 "has 2 fields, the header 4", id="visits-row-shorter-than-header"),
    # --- wrong encodings: GBK as 12345 hotline systems export it ------------------------------------------
    pytest.param(ISSUES_IMPORT, ("hotline.csv", issue_csv("gbk", category="飞碟")), 2,
                 "no category has the code or name '飞碟'",
                 id="cli-issues-gbk-detected"),  # read as GB18030: the bad value is quoted correctly
    pytest.param(ISSUES_IMPORT, ("hotline.csv", issue_csv("gbk", description="井盖缺失"), ["--encoding", "utf-8"]), 2,
                 "cannot be read as utf-8", id="cli-issues-gbk-read-as-utf8"),  # and says to give --encoding
    pytest.param(ISSUES_IMPORT, ("hotline.csv", issue_csv(), ["--encoding", "klingon"]), 2, "cannot be read as klingon",
                 id="cli-issues-unknown-encoding"),
    pytest.param(ISSUES_IMPORT, ("hotline.csv", issue_csv("utf-16", category="飞碟")), 2, "--encoding",
                 id="cli-issues-utf16"),  # neither UTF-8 nor GB18030: refused, naming the option
    pytest.param(LEDGER_IMPORT, ("hotline.csv", csv_bytes("经度,纬度,类别编码,问题描述,上报时间\n"
                                                          f"{LON},{LAT},飞碟,井盖缺失,2026-06-02 09:30\n", "gbk")), 2,
                 "'飞碟'", id="cli-ledger-gbk-detected"),
    pytest.param(HOUSEHOLDS, ("households.csv", household_csv("gbk", kind="富裕户")), 400, "'富裕户'",
                 id="households-gbk-detected"),
    pytest.param(HOUSEHOLDS, ("households.csv", household_csv("gbk", address="春园路9号"), {"encoding": "utf-8"}), 400,
                 "the `encoding` field", id="households-gbk-read-as-utf8"),
    pytest.param(API, json.dumps(GOOD_ISSUE, ensure_ascii=False).encode("gbk"), 400, "not UTF-8 JSON",
                 id="api-gbk-json-body"),
]


@pytest.fixture
def world(client, gm, tmp_path, mini_geodata, cli_env) -> World:
    """The app and the CLI on one database holding an Open311 key, one household and one reported issue."""
    with gm.db.session() as session:
        key = add_api_key(session, "bad-input-test")
    HouseholdRegistry.for_core(gm).create_household(
        {"external_id": HOUSEHOLD, "address": "春园路1号", "kind": "ordinary", "lon": LON, "lat": LAT,
         "registered_on": "2026-01-05"})
    issue = gm.intake.create(gm.db, {**GOOD_ISSUE, "reported_at": "2026-06-01T08:00:00+08:00"})
    return World(client, gm, tmp_path, Path(mini_geodata), key, issue.id)


@pytest.mark.parametrize("entry, given, status, fragment", CASES)
def test_bad_input_is_refused_with_a_message_and_nothing_is_written(world, entry, given, status, fragment):
    before = table_counts(world.gm)
    code, message = entry(world, given)
    assert code == status, message
    assert fragment in message
    assert table_counts(world.gm) == before, "a refused input wrote rows"
