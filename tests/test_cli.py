"""The `gridmap` command line: locate, init, and exit codes that scripts can rely on."""

from __future__ import annotations

import json

from click.testing import CliRunner
from sqlalchemy import func, select

from gridmap.cli import EXIT_BAD_INPUT, EXIT_OUTSIDE, main
from gridmap.core import Gridmap
from gridmap.geo.crs import wgs84_to_gcj02
from gridmap.storage.models import Area
from helpers import cell_point


def run(*args):
    return CliRunner().invoke(main, list(map(str, args)))


def test_locate_prints_the_codes_as_json(cli_env, mini_geodata):
    lon, lat = cell_point(mini_geodata, "460204101002001")
    result = run("locate", lon, lat)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "lon": lon, "lat": lat, "cell": "460204101002001", "community": "460204101002",
        "street": "460204101", "district": "460204",
    }


def test_locate_converts_gcj02(cli_env, mini_geodata):
    lon, lat = cell_point(mini_geodata, "460204001001001")
    g_lon, g_lat = wgs84_to_gcj02(lon, lat)
    result = run("locate", float(g_lon), float(g_lat), "--crs", "gcj02")
    assert json.loads(result.output)["cell"] == "460204001001001"


def test_locate_outside_every_cell_exits_3(cli_env):
    result = run("locate", 108.0, 18.0)
    assert result.exit_code == EXIT_OUTSIDE
    assert "outside every grid cell" in result.output


def test_locate_with_projected_coordinates_explains_the_crs(cli_env):
    result = run("locate", 420000, 2015000)
    assert result.exit_code == EXIT_BAD_INPUT
    assert "looks like projected coordinates" in result.output


def test_init_creates_the_database_and_loads_the_layer_set(cli_env, settings):
    result = run("init")
    assert result.exit_code == 0, result.output
    assert "81 areas loaded" in result.output
    gm = Gridmap(settings)
    with gm.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Area)) == 81
    gm.close()


def test_an_invalid_layer_set_stops_init_with_the_problems(cli_env, monkeypatch, tmp_path):
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("GRIDMAP_GEODATA", str(tmp_path / "empty"))
    result = run("init")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "districts.geojson: file not found" in result.output


def test_serve_refuses_an_uninitialised_database_with_a_hint(cli_env, monkeypatch, tmp_path):
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    result = run("serve", "--port", 0)
    assert result.exit_code == EXIT_BAD_INPUT
    assert "run `gridmap init` first" in result.output


def test_every_command_area_is_on_the_command_line():
    assert sorted(main.commands) == ["backup", "coverage", "demo", "geodata", "grid", "init", "issues",
                                     "keys", "ledger",
                                     "locate", "restore", "rollup", "serve", "sla", "tokens", "users", "workers"]
    assert sorted(main.commands["coverage"].commands) == ["export", "households", "patrols", "summary", "visits",
                                                          "worklist"]
    assert sorted(main.commands["issues"].commands) == ["assign", "import", "suggest", "transition"]


def test_the_audit_log_records_the_command_line_as_typed(cli_env):
    from gridmap.storage.security import AuditEntry

    assert run("init").exit_code == 0
    result = CliRunner().invoke(main, ["users", "add", "王 五", "--role", "manager", "--scope", "460204001001"],
                                input="a long passphrase\n")
    assert result.exit_code == 0, result.output
    gm = Gridmap()
    try:
        with gm.db.sessions() as session:
            entry = session.scalars(select(AuditEntry).where(AuditEntry.entity == "users")).one()
    finally:
        gm.close()
    assert entry.actor.startswith("cli:")
    # the words after the program name, as given (the password came from stdin and is nowhere)
    assert entry.context == "gridmap users add 王 五 --role manager --scope 460204001001"
