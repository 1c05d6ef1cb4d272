"""Households, visits and patrols: ``coverage households|visits|patrols import``, ``summary``, ``export``,
``worklist``."""

from __future__ import annotations

import json
import sys
from datetime import UTC
from pathlib import Path

import click

from gridmap.cli.common import EXIT_BAD_INPUT, GridmapGroup, core, import_options, report_import
from gridmap.errors import GridmapError


@click.group(cls=GridmapGroup)
def coverage() -> None:
    """Households, visits and patrols: imports, coverage figures, work lists."""


@coverage.group("households", cls=GridmapGroup)
def coverage_households() -> None:
    """The household registry."""


@coverage.group("visits", cls=GridmapGroup)
def coverage_visits() -> None:
    """Home visits (入户走访)."""


@coverage.group("patrols", cls=GridmapGroup)
def coverage_patrols() -> None:
    """Patrol GPS tracks."""


@coverage_households.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--encoding", default=None, help="Text encoding of a CSV (default: UTF-8, else GB18030/GBK).")
@import_options
def coverage_households_import(file: Path, encoding: str | None, crs: str | None, skip_bad_rows: bool,
                               dry_run: bool) -> None:
    """Import households from CSV, XLSX or GeoJSON points (address, kind, lon/lat or cell, members…)."""
    from gridmap.coverage.households import HOUSEHOLD_REQUIRED, HouseholdRegistry
    from gridmap.issues.record_files import read_record_file

    gm = core()
    gm.db.migrate()
    records, numbers = read_record_file(file, encoding=encoding, required=HOUSEHOLD_REQUIRED)
    report = HouseholdRegistry.for_core(gm).import_households(records, numbers, crs=crs, skip_bad_rows=skip_bad_rows,
                                                               dry_run=dry_run)
    report_import(file.name, report, skip_bad_rows, dry_run)


@coverage_visits.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--encoding", default=None, help="Text encoding of a CSV (default: UTF-8, else GB18030/GBK).")
@import_options
def coverage_visits_import(file: Path, encoding: str | None, crs: str | None, skip_bad_rows: bool,
                           dry_run: bool) -> None:
    """Import visits from CSV or XLSX (household, visitor, visited_at, notes, issues raised)."""
    from gridmap.coverage.households import HouseholdRegistry
    from gridmap.coverage.visits import VISIT_REQUIRED
    from gridmap.issues.record_files import read_record_file

    gm = core()
    gm.db.migrate()
    records, numbers = read_record_file(file, encoding=encoding, required=VISIT_REQUIRED)
    report = HouseholdRegistry.for_core(gm).import_visits(records, numbers, crs=crs, skip_bad_rows=skip_bad_rows,
                                                           dry_run=dry_run, actor=f"import:{file.name}")
    report_import(file.name, report, skip_bad_rows, dry_run)


@coverage_patrols.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--worker", default=None,
              help="The grid worker of the tracks (default: the file's author / worker property).")
@import_options
def coverage_patrols_import(files: tuple[Path, ...], worker: str | None, crs: str | None, skip_bad_rows: bool,
                            dry_run: bool) -> None:
    """Import GPS patrol tracks from GPX or GeoJSON files; parts outside the district are reported."""
    from gridmap.coverage.patrols import import_tracks
    from gridmap.coverage.track_files import read_track_file

    gm = core()
    gm.db.migrate()
    failed = False
    for file in files:
        tracks = read_track_file(file, timezone_name=gm.timezone)
        report = import_tracks(gm.db, gm.areas, tracks, worker=worker, crs=crs, timezone_name=gm.timezone,
                               source=file.name, skip_bad_rows=skip_bad_rows, dry_run=dry_run)
        try:
            report_import(file.name, report, skip_bad_rows, dry_run, what="track(s)")
        except SystemExit:
            failed = True
    if failed:
        sys.exit(EXIT_BAD_INPUT)


def _coverage_dates(gm, date_from: str | None, date_to: str | None, as_of: str | None):
    from datetime import date, datetime
    from zoneinfo import ZoneInfo

    from gridmap.dates import parse_day

    today = datetime.now(UTC).astimezone(ZoneInfo(gm.timezone)).date()
    end = parse_day(date_to, "--to") or today
    start = parse_day(date_from, "--from") or date(end.year, 1, 1)
    if start > end:
        raise GridmapError(f"--from ({start}) is after --to ({end}); swap them")
    return start, end, parse_day(as_of, "--as-of") or min(end, today)


_PERIOD_OPTIONS = (
    click.option("--from", "date_from", default=None, help="First day of the period (default 1 January)."),
    click.option("--to", "date_to", default=None, help="Last day of the period, included (default today)."),
    click.option("--as-of", default=None, help="Day of the overdue/stale figures (default min(to, today))."),
    click.option("--stale-days", type=int, default=None,
                 help="Cells not patrolled for this many days are stale (default setting)."),
)


def _period_options(function):
    for option in reversed(_PERIOD_OPTIONS):
        function = option(function)
    return function


@coverage.command("summary")
@click.option("--level", type=click.Choice(["districts", "streets", "communities", "cells"]), default="districts",
              show_default=True)
@click.option("--area", default=None, help="Only areas under this code.")
@_period_options
def coverage_summary(level: str, area: str | None, date_from: str | None, date_to: str | None, as_of: str | None,
                     stale_days: int | None) -> None:
    """Print ledger lines ("N households, 100% visited") per area for a period."""
    from gridmap.coverage.metrics import area_coverage, format_share, ledger_line
    from gridmap.security.access import UNLIMITED

    gm = core()
    start, end, as_of_day = _coverage_dates(gm, date_from, date_to, as_of)
    with gm.db.sessions() as session:
        rows = area_coverage(session, level, start, end, access=UNLIMITED, as_of=as_of_day,
                             min_patrol_minutes=gm.settings["patrol_min_minutes"],
                             stale_days=stale_days or gm.settings["patrol_stale_days"])
    click.echo(f"coverage {start} – {end} (as of {as_of_day})")
    for row in rows:
        if area and not row["code"].startswith(area):
            continue
        click.echo(f"{row['code']} {row.get('name') or ''}: {ledger_line(row)}, {row['overdue_households']} overdue, "
                   f"patrolled {format_share(row['patrol_days'], row['days'])}")


@coverage.command("export")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@_period_options
def coverage_export(out: Path, date_from: str | None, date_to: str | None, as_of: str | None,
                    stale_days: int | None) -> None:
    """Write coverage per district, street, community and cell as XLSX."""
    from gridmap.coverage.export import write_coverage_xlsx
    from gridmap.security.access import UNLIMITED

    gm = core()
    start, end, as_of_day = _coverage_dates(gm, date_from, date_to, as_of)
    with gm.db.sessions() as session:
        write_coverage_xlsx(session, out, start, end, access=UNLIMITED, as_of=as_of_day,
                            min_patrol_minutes=gm.settings["patrol_min_minutes"],
                            stale_days=stale_days or gm.settings["patrol_stale_days"])
    click.echo(f"wrote coverage {start} – {end} to {out}")


@coverage.command("worklist")
@click.option("--worker", default=None, help="One grid worker (default: all).")
@click.option("--as-of", default=None, help="Day (default today).")
@click.option("--stale-days", type=int, default=None, help="Cells not patrolled for this many days (default setting).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def coverage_worklist(worker: str | None, as_of: str | None, stale_days: int | None, as_json: bool) -> None:
    """Per grid worker: households due this month and cells not patrolled lately."""
    from gridmap.coverage.metrics import worklists
    from gridmap.security.access import UNLIMITED

    gm = core()
    _, _, day = _coverage_dates(gm, None, as_of, as_of)
    with gm.db.sessions() as session:
        lists = worklists(session, as_of=day, access=UNLIMITED, worker=worker,
                          stale_days=stale_days or gm.settings["patrol_stale_days"],
                          min_patrol_minutes=gm.settings["patrol_min_minutes"])
    if as_json:
        click.echo(json.dumps(lists, ensure_ascii=False, indent=1))
        return
    for entry in lists:
        overdue = sum(1 for h in entry["households_due"] if h["overdue"])
        click.echo(f"{entry['worker']}: {len(entry['cells'])} cell(s), "
                   f"{len(entry['households_due'])} household(s) due by {entry['due_by']} ({overdue} overdue), "
                   f"{len(entry['stale_cells'])} cell(s) not patrolled lately")
        if worker:
            for h in entry["households_due"]:
                flag = " OVERDUE" if h["overdue"] else ""
                click.echo(f"  due {h['due']}{flag}  {h['external_id'] or h['id']}  {h['kind_name']}  {h['address']}  "
                           f"({h['cell_code']})")
            for c in entry["stale_cells"]:
                click.echo(f"  stale {c['code']}  last patrol {c['last_patrol'] or 'never'}")
