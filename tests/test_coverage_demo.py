"""The demo's households, visits and patrols: deterministic, loaded by `gridmap init --demo`, with realistic gaps."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from gridmap.cli import main
from gridmap.core import Gridmap
from gridmap.coverage.metrics import area_coverage, cell_coverage
from gridmap.demo.coverage import _Land, generate_households, load_demo_coverage
from gridmap.security.access import UNLIMITED
from gridmap.settings import BUNDLED_GEODATA
from gridmap.storage.coverage import Household, HouseholdLocation, PatrolTrack, Visit, VisitIssue

END = datetime(2026, 11, 20, 18, 0, tzinfo=timezone(timedelta(hours=8)))
YEAR = (date(2025, 11, 21), date(2026, 11, 20))


def test_the_same_seed_gives_the_same_households(gm):
    start, end = YEAR
    first = generate_households(gm.areas.layers, 50, np.random.default_rng(7), start=start, end=end,
                                land=_Land(gm.areas, np.random.default_rng(7)))
    again = generate_households(gm.areas.layers, 50, np.random.default_rng(7), start=start, end=end,
                                land=_Land(gm.areas, np.random.default_rng(7)))
    assert first == again and len(first) == 50


def test_init_demo_loads_coverage_once(cli_env, gm):
    first = CliRunner().invoke(main, ["init", "--demo"])
    assert first.exit_code == 0, first.output
    assert "demo households" in first.output and "patrol tracks" in first.output
    second = CliRunner().invoke(main, ["init", "--demo"])
    assert second.exit_code == 0 and "demo coverage not loaded: the database already holds" in second.output
    with gm.db.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Household)) > 0
        # Demo issues reported at visits are linked to a visit in their cell.
        assert session.scalar(select(func.count()).select_from(VisitIssue)) > 0


@pytest.fixture(scope="module")
def tianya(tmp_path_factory, request):
    """The bundled Tianya layer set with the demo coverage loaded (once for the module)."""
    from conftest import BACKEND

    if BACKEND == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('tianya') / 'gridmap.sqlite3'}"
    else:
        server = request.getfixturevalue("pg_server")
        name = "t_" + uuid.uuid4().hex[:12]
        url = server.create_database(name)
    gm = Gridmap({"database_url": url, "geodata": str(BUNDLED_GEODATA)})
    gm.init_database()
    counts = load_demo_coverage(gm, end=END)
    yield gm, counts
    gm.close()
    if BACKEND != "sqlite":
        server.drop_database(name)


def test_the_tianya_demo_has_a_year_of_data(tianya):
    gm, counts = tianya
    assert counts["households"] == 6000 and counts["moves"] > 50
    assert counts["visits"] > 15000 and counts["tracks"] > 10000
    with gm.db.sessions() as session:
        days = session.execute(select(func.min(PatrolTrack.day), func.max(PatrolTrack.day))).one()
        visits = session.execute(select(func.min(Visit.visited_on), func.max(Visit.visited_on))).one()
        moved = session.scalar(select(func.count(func.distinct(HouseholdLocation.household_id)))
                               .where(HouseholdLocation.valid_to.is_not(None)))
        outside = session.scalar(select(func.count()).select_from(PatrolTrack).where(PatrolTrack.outside_points > 0))
    assert days[0] <= YEAR[0] + timedelta(days=7) and days[1] >= YEAR[1] - timedelta(days=3)
    assert visits[0] <= YEAR[0] + timedelta(days=7) and visits[1] >= YEAR[1] - timedelta(days=7)
    assert moved == counts["moves"]
    assert outside > 0  # a few tracks stray out of the district


def test_the_tianya_demo_has_realistic_gaps(tianya):
    gm, counts = tianya
    with gm.db.sessions() as session:
        communities = area_coverage(session, "communities", *YEAR, access=UNLIMITED)
        cells = cell_coverage(session, date(2026, 11, 1), YEAR[1], access=UNLIMITED)
    inhabited = [row for row in communities if row["households"]]
    full = [row for row in inhabited if row["visited"] == row["households"]]
    behind = [row for row in inhabited if row["visit_coverage"] < 0.97]
    overdue = sum(row["overdue_households"] for row in communities)
    assert full and behind  # some communities at 100%, some lagging
    assert 0.01 * counts["households"] < overdue < 0.15 * counts["households"]
    with_people = [row for row in cells if row["households"] >= 5]
    patrolled = [row for row in with_people if not row["stale"]]
    assert len(patrolled) > len(with_people) / 2  # most inhabited cells were patrolled in the last week…
    assert len(patrolled) < len(with_people)  # …but not all
    assert any(row["last_patrol"] is None for row in cells)  # and some cells never
