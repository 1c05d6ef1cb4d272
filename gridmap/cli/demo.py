"""The demo data that ``init --demo`` and ``demo`` load (the only module besides gridmap.demo that uses it)."""

from __future__ import annotations

import click

from gridmap.errors import GridmapError


def load_demo_data(gm) -> None:
    """The demo year of issues, coverage and one login per role, each only into an empty database."""
    _load_demo(gm)
    _load_demo_coverage(gm)  # households, visits, patrols
    _load_demo_users(gm)


def _load_demo(gm) -> None:
    """The demo year of issues, then their workflow."""
    from sqlalchemy import func, select

    from gridmap.demo.issues import generate_demo_issues
    from gridmap.storage.models import Issue

    with gm.db.sessions() as session:
        existing = session.scalar(select(func.count()).select_from(Issue))
    if existing:
        click.echo(f"demo issues not loaded: the database already holds {existing} issues")
        return
    records = generate_demo_issues(gm.areas.layers, gm.categories)
    report = gm.intake.import_records(gm.db, records, actor="demo", default_source="patrol")
    if report.errors:
        raise GridmapError(f"demo data did not import cleanly: {report.errors[0]}")
    click.echo(f"loaded {report.imported} demo issues")
    _load_demo_workflow(gm)


def _load_demo_workflow(gm) -> None:
    """Demo grid workers, side paths (rework, extension, return, reopen…) and a first SLA tick."""
    from gridmap.demo.workflow import load_demo_workflow

    click.echo(load_demo_workflow(gm))


def _load_demo_users(gm) -> None:
    """One login per role, with the published demo password."""
    from gridmap.demo.users import DEMO_PASSWORD, create_demo_users

    made = create_demo_users(gm)
    if made:
        click.echo(
            f"demo logins (password {DEMO_PASSWORD!r}; demo only): "
            + ", ".join(
                f"{name} ({role}{': ' + ','.join(scopes[:2]) + ('…' if len(scopes) > 2 else '') if scopes else ''})"
                for name, role, scopes in made
            )
        )


def _load_demo_coverage(gm) -> None:
    """Demo households, a year of visits and patrols, into a database without households."""
    from gridmap.demo.coverage import demo_coverage_loaded, load_demo_coverage

    existing = demo_coverage_loaded(gm)
    if existing:
        click.echo(f"demo coverage not loaded: the database already holds {existing} households")
        return
    counts = load_demo_coverage(gm)
    click.echo(f"loaded {counts['households']} demo households, {counts['visits']} visits, "
               f"{counts['tracks']} patrol tracks")
