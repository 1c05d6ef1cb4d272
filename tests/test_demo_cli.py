"""`gridmap init --demo`: the Tianya demo district with a year of issues, loaded once."""

from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import func, select

from gridmap.cli import main
from gridmap.core import Gridmap
from gridmap.issues.states import STATUSES
from gridmap.settings import BUNDLED_GEODATA
from gridmap.storage.models import Issue


def test_init_demo_loads_the_bundled_district_and_a_year_of_issues_once(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("GRIDMAP_DATABASE_URL", database_url)
    monkeypatch.setenv("GRIDMAP_GEODATA", str(BUNDLED_GEODATA))
    monkeypatch.setenv("GRIDMAP_INSTANCE", str(tmp_path))
    first = CliRunner().invoke(main, ["init", "--demo"])
    assert first.exit_code == 0, first.output
    assert "loaded 12000 demo issues" in first.output

    second = CliRunner().invoke(main, ["init", "--demo"])
    assert second.exit_code == 0, second.output
    assert "already holds" in second.output

    gm = Gridmap({"database_url": database_url, "geodata": str(BUNDLED_GEODATA)})
    with gm.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Issue)) == 12000
        statuses = set(session.scalars(select(Issue.status).distinct()))
        districts = set(session.scalars(select(Issue.district_code).distinct()))
    gm.close()
    assert districts == {"460204"}
    assert {"closed", "revisited", "rejected", "suspended"} <= statuses <= set(STATUSES)
    assert statuses & {"reported", "registered", "dispatched", "in_progress", "handled", "checked"}  # some still open
