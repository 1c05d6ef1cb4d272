"""Settings, declared once as a table of (name, default, help) and read from the environment.

Every setting is documented in the README (a test checks that); environment variables are
named ``GRIDMAP_<NAME>``.  ``create_app(config)`` and the CLI accept overrides by name.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridmap.errors import SettingError
from gridmap.resources import resource

#: Folder of the bundled layer set (the Tianya demo district).
BUNDLED_GEODATA = resource("geodata")


def _text(value: Any) -> str:
    return str(value)


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("a whole number, not true/false")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return int(str(value).strip())


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("a number, not true/false")
    number = float(value) if isinstance(value, (int, float)) else float(str(value).strip())
    if not math.isfinite(number):
        raise ValueError("a finite number")
    return number


def _bytes(value: Any) -> int:
    return _integer(value)


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    parse: Callable[[Any], Any] = _text

    @property
    def env_var(self) -> str:
        return "GRIDMAP_" + self.name.upper()

    def read(self, value: Any, source: str) -> Any:
        """``value`` (text from the environment or an override of any type) parsed; SettingError naming the source."""
        if value is None or (isinstance(value, str) and value.strip() == "" and self.parse is not _text):
            return self.default
        try:
            return self.parse(value)
        except (TypeError, ValueError):
            kinds: dict[Callable[[Any], Any], str] = {
                _integer: "a whole number", _bytes: "a whole number of bytes", _number: "a number"}
            kind = kinds.get(self.parse, "a valid value")
            raise SettingError(f"setting {self.name} ({source}) must be {kind}, got {value!r}") from None


SETTINGS: tuple[Setting, ...] = (
    Setting("instance", "./instance", "Instance folder: the SQLite database and uploads live here."),
    Setting(
        "database_url",
        None,
        "SQLAlchemy URL of the database; default SQLite (WAL) at INSTANCE/gridmap.sqlite3. "
        "Use postgresql+psycopg://user:pass@host/db for production.",
    ),
    Setting(
        "geodata",
        str(BUNDLED_GEODATA),
        "Folder of the active layer set (districts/streets/communities/cells.geojson).",
    ),
    Setting("categories", None, "CSV file of the category tree; default the bundled gridmap/data/categories.csv."),
    Setting(
        "holidays",
        None,
        "CSV holiday calendar (holidays and make-up workdays); default the bundled gridmap/data/holidays.csv.",
    ),
    Setting("timezone", "Asia/Shanghai", "Local time zone: dates without an offset are read in it, pages show it."),
    Setting(
        "secret_key",
        None,
        "Key that signs login session cookies; default a random key made once and kept in the database.",
    ),
    Setting("session_hours", 12.0, "A login session ends after this many hours.", _number),
    Setting("max_upload_bytes", 20 * 1024 * 1024, "Largest accepted request or upload body, in bytes.", _bytes),
    Setting(
        "tiles",
        "none",
        "Basemap tiles: 'none' (boundaries and data only; works offline), 'osm' (OpenStreetMap), "
        "'tianditu' (天地图, needs tianditu_key) or 'amap' (高德, overlays shifted to GCJ-02); "
        "the tile servers must be reachable from the browser.",
    ),
    # Map UI
    Setting("tianditu_key", None, "Tianditu (天地图) browser key (tk) for tiles=tianditu."),
    Setting(
        "map_max_cells",
        20000,
        "Most cells one map view draws; an area with more is coloured by community until you drill down.",
        _integer,
    ),
    Setting("map_tile_cells", 20000,
            "A map view with more cells than this draws them from vector tiles (/api/v1/maps/tiles/…); 0: never.",
            _integer),
    # Coverage: households, visits, patrols
    Setting(
        "household_kinds",
        None,
        "CSV of household kinds and their visit intervals; "
        "default the bundled gridmap/data/household_kinds.csv.",
    ),
    Setting(
        "patrol_min_minutes",
        10.0,
        "A cell counts as patrolled on a day when patrol tracks spent at least this many minutes in it.",
        _number,
    ),
    Setting(
        "patrol_stale_days",
        7,
        "Cells not patrolled for this many days are listed as stale (work lists, coverage).",
        _integer,
    ),
    # Workflow, deadlines and dispatch
    Setting(
        "routing",
        None,
        "CSV routing rules (category → department, per-street overrides); "
        "default the bundled gridmap/data/routing.csv.",
    ),
    Setting(
        "sla_warning_share",
        0.8,
        "Share of the time limit after which an open issue is in the warning state (0 < share ≤ 1).",
        _number,
    ),
    Setting(
        "duplicate_distance_m",
        50.0,
        "Likely duplicate at intake: same category within this many metres…",
        _number,
    ),
    Setting("duplicate_hours", 24.0, "…and reported within this many hours after the other issue.", _number),
    Setting(
        "suggestion_workload_m",
        500.0,
        "Assignment suggestions: one open issue in hand weighs like this many metres of distance.",
        _number,
    ),
    Setting("import_batch_rows", 5000, "Imports read, check and write this many rows at a time (memory grows with it, "
            "not with the file).", _integer),
    # Abuse: rate limit and security headers
    Setting(
        "intake_rate_limit",
        "30/minute",
        "Anonymous intake (Open311 POST) per client IP: COUNT/PERIOD (second, minute, hour, day) or off.",
    ),
    Setting(
        "intake_key_rate_limit",
        "600/minute",
        "Anonymous intake (Open311 POST) per api_key, over all its clients: COUNT/PERIOD or off.",
    ),
    Setting(
        "hsts_max_age",
        0,
        "Strict-Transport-Security max-age in seconds; 0 (the default, for plain-HTTP intranets) sends none.",
        _integer,
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def setting_name(name: str) -> str | None:
    """The setting an override names (``tiles``, ``GRIDMAP_TILES``); None for a Flask option (``TESTING``).

    Upper-case names other than ``GRIDMAP_…`` are Flask options that create_app passes to Flask;
    any other name must be a setting.
    """
    key = name.lower()
    if key.startswith("gridmap_"):
        key = key[len("gridmap_"):]
    elif name.isupper():
        return None
    if key not in _BY_NAME:
        raise SettingError(f"unknown setting {name!r}; the settings are {', '.join(_BY_NAME)}")
    return key


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Settings from defaults, then the environment, then ``overrides`` (by setting name), each through its parser."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.env_var)
        values[setting.name] = setting.default if raw in (None, "") else setting.read(raw, setting.env_var)
    for name, value in (overrides or {}).items():
        key = setting_name(name)
        if key is not None:
            values[key] = _BY_NAME[key].read(value, f"override {name}")
    return values


def database_url(settings: Mapping[str, Any]) -> str:
    """The database URL to use: the configured one, else SQLite in the instance folder."""
    if settings.get("database_url"):
        return settings["database_url"]
    instance = Path(settings["instance"]).resolve()
    return f"sqlite:///{instance / 'gridmap.sqlite3'}"
