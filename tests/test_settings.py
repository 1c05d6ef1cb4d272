"""Settings are declared once and every one is documented in the README."""

from pathlib import Path

from gridmap.settings import SETTINGS, database_url, load_settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_every_setting_is_documented_in_the_readme():
    readme = README.read_text(encoding="utf-8")
    for setting in SETTINGS:
        assert f"| `{setting.name}` | `{setting.env_var}` |" in readme, setting.name


def test_environment_then_overrides():
    values = load_settings({"tiles": "osm"}, environ={"GRIDMAP_TIMEZONE": "Asia/Urumqi", "GRIDMAP_TILES": "none"})
    assert values["timezone"] == "Asia/Urumqi"
    assert values["tiles"] == "osm"


def test_default_database_is_sqlite_in_the_instance_folder(tmp_path):
    values = load_settings({"instance": str(tmp_path)}, environ={})
    assert database_url(values) == f"sqlite:///{tmp_path / 'gridmap.sqlite3'}"


def test_overrides_pass_through_the_same_parsers_as_the_environment():
    from_env = load_settings(environ={"GRIDMAP_PATROL_STALE_DAYS": "9", "GRIDMAP_SESSION_HOURS": "2.5",
                                      "GRIDMAP_MAX_UPLOAD_BYTES": "1000"})
    from_text = load_settings({"patrol_stale_days": "9", "session_hours": "2.5", "max_upload_bytes": "1000"},
                              environ={})
    from_values = load_settings({"patrol_stale_days": 9, "GRIDMAP_SESSION_HOURS": 2.5, "max_upload_bytes": 1000},
                                environ={})
    for values in (from_env, from_text, from_values):
        assert (values["patrol_stale_days"], values["session_hours"], values["max_upload_bytes"]) == (9, 2.5, 1000)
        assert type(values["patrol_stale_days"]) is int and type(values["session_hours"]) is float
    assert type(load_settings({"duplicate_hours": 3}, environ={})["duplicate_hours"]) is float


def test_a_value_that_does_not_parse_is_a_setting_error_naming_the_setting():
    import pytest

    from gridmap.errors import GridmapError, SettingError

    assert issubclass(SettingError, GridmapError)
    with pytest.raises(SettingError, match="patrol_stale_days .*whole number"):
        load_settings({"patrol_stale_days": "seven"}, environ={})
    with pytest.raises(SettingError, match="GRIDMAP_SESSION_HOURS"):
        load_settings(environ={"GRIDMAP_SESSION_HOURS": "long"})
    with pytest.raises(SettingError, match="session_hours"):
        load_settings({"session_hours": float("nan")}, environ={})


def test_an_unknown_override_name_is_an_error_flask_options_are_left_to_the_app():
    import pytest

    from gridmap.errors import SettingError

    with pytest.raises(SettingError, match="unknown setting 'timezon'"):
        load_settings({"timezon": "Asia/Urumqi"}, environ={})
    with pytest.raises(SettingError, match="unknown setting 'GRIDMAP_TILE'"):
        load_settings({"GRIDMAP_TILE": "osm"}, environ={})
    assert load_settings({"TESTING": True, "GRIDMAP_TILES": "osm"}, environ={})["tiles"] == "osm"


def test_create_app_refuses_an_unknown_override(tmp_path):
    import pytest

    from gridmap.errors import SettingError
    from gridmap.web import create_app

    with pytest.raises(SettingError, match="unknown setting 'map_max_cell'"):
        create_app({"instance": str(tmp_path), "map_max_cell": 10, "TESTING": True})
