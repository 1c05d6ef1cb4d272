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
