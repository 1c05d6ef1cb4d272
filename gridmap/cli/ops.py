"""The database: ``init``, ``backup``, ``restore``, ``rollup check`` / ``rollup rebuild``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gridmap.cli.common import EXIT_PROBLEMS, core, initialised_core
from gridmap.errors import GridmapError


@click.command()
@click.option("--demo", is_flag=True, help="Also load the demo year of issues (only into an empty database).")
def init(demo: bool) -> None:
    """Create or migrate the database and load the active layer set."""
    gm = core()
    areas = gm.init_database()
    click.echo(f"database ready at {gm.db.engine.url.render_as_string(hide_password=True)}; {areas} areas loaded from "
               f"{gm.geodata}")
    if demo:
        from gridmap.cli.demo import load_demo_data

        load_demo_data(gm)


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup(file: Path) -> None:
    """Write a consistent copy of the whole database to FILE (a SQLite file) while the server runs."""
    from gridmap.ops.backup import backup_database

    report = backup_database(core().db, file)
    click.echo(report.summary("backup"))


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Replace the data of a database that holds some without asking.")
def restore(file: Path, yes: bool) -> None:
    """Replace every row of the database by those of FILE (from `gridmap backup`), in one transaction."""
    from gridmap.ops.backup import restore_database

    def confirm(existing: dict[str, int]) -> bool:
        """Whether to replace ``existing`` rows (table: count): --yes, else ask on a terminal, else refuse."""
        if yes:
            return True
        others = sum(count for name, count in existing.items() if name not in ("issues", "areas", "meta"))
        message = (f"the database holds {existing.get('issues', 0)} issue(s) and {others} other row(s); "
                   f"restoring {file} replaces them all")
        if not sys.stdin.isatty():
            raise GridmapError(f"{message}: pass --yes to go ahead")
        return click.confirm(f"{message}. Go ahead?", default=False, err=True)

    report = restore_database(core().db, file, confirm=confirm)
    click.echo(report.summary("restored"))


@click.group()
def rollup() -> None:
    """The issue rollup (counts per day, area, category, source, status, department): check or rebuild it."""


@rollup.command("check")
def rollup_check() -> None:
    """Compare the rollup with counts from the raw issues; exit 1 listing the differences."""
    from gridmap.storage.rollup import differences, rollup_timezone

    gm = initialised_core()
    with gm.db.session() as session:
        zone = rollup_timezone(session.connection())
        found = differences(session.connection())
    for entry in found:
        key = " ".join(f"{name}={entry[name] or '-'}" for name in entry if name not in ("raw", "rollup"))
        click.echo(f"{key}: raw rows {entry['raw']}, rollup {entry['rollup']}")
    if zone != gm.timezone:
        click.echo(f"the rollup counts days in {zone}, the service in {gm.timezone}: run `gridmap rollup rebuild`")
    if found or zone != gm.timezone:
        click.echo(f"rollup differs from the raw rows: {len(found)} key(s); `gridmap rollup rebuild` recomputes it")
        sys.exit(EXIT_PROBLEMS)
    click.echo("rollup matches the raw rows")


@rollup.command("rebuild")
def rollup_rebuild() -> None:
    """Recompute the rollup from the raw issues in one transaction (days in the service's time zone)."""
    from gridmap.storage.rollup import rebuild

    gm = initialised_core()
    with gm.db.session() as session:
        rows = rebuild(session.connection(), gm.timezone)
    click.echo(f"rollup rebuilt: {rows} row(s), days in {gm.timezone}")
