"""The ledger (台账) of issues with their histories: ``ledger export|import``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gridmap.cli.common import EXIT_BAD_INPUT, GridmapGroup, core


@click.group(cls=GridmapGroup)
def ledger() -> None:
    """Export and import the ledger (台账) of issues with their histories."""


@ledger.command("export")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx"]), default=None,
              help="File format (default: from FILE's suffix, else csv).")
@click.option("--lang", default="zh", show_default=True, help="Column headers: zh (Chinese) or en (English).")
@click.option("--area", default=None, help="Area code of any level: district, street, community or cell.")
@click.option("--from", "date_from", default=None, help="First local day reported, e.g. 2025-06-01.")
@click.option("--to", "date_to", default=None, help="Last local day reported (included).")
@click.option("--status", default=None, help="Status code(s), comma-separated, or open / closed.")
@click.option("--category", default=None, help="Category item (E0505) or class (E05) code.")
@click.option("--source", default=None,
              help="Source(s), comma-separated: patrol, hotline, web, visit, open311, import.")
def ledger_export(file: Path, fmt: str | None, lang: str, area: str | None, date_from: str | None,
                  date_to: str | None, status: str | None, category: str | None, source: str | None) -> None:
    """Write the ledger (one row per issue, plus the transition history) to FILE."""
    from gridmap.interop.ledger_export import export_ledger
    from gridmap.interop.ledger_format import LedgerFilter
    from gridmap.security.access import UNLIMITED

    gm = core()
    ledger_filter = LedgerFilter.parse(area=area, date_from=date_from, date_to=date_to, status=status,
                                       category=category, source=source, categories=gm.categories,
                                       timezone_name=gm.timezone, access=UNLIMITED)
    count = export_ledger(gm, file, ledger_filter, fmt=fmt, lang=lang)
    click.echo(f"wrote {count} issue(s) to {file}")


@ledger.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--mapping", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON object or two-column CSV: the file's header -> our field (default: our own headers).")
@click.option("--crs", default=None, help="CRS of lon/lat (EPSG code, gcj02, bd09; default WGS84).")
@click.option("--encoding", default=None, help="Text encoding of a CSV (default: UTF-8, else GB18030/GBK).")
@click.option("--dry-run", is_flag=True, help="Check every row and report, writing nothing.")
@click.option("--skip-bad-rows", is_flag=True,
              help="Import the good rows and list the bad ones (default: all or nothing).")
@click.option("--keep-ids", is_flag=True, help="Keep the file's 编号 as the issue ids (refused if one is taken).")
def ledger_import(file: Path, mapping: Path | None, crs: str | None, encoding: str | None, dry_run: bool,
                  skip_bad_rows: bool, keep_ids: bool) -> None:
    """Import a ledger or a hotline system's CSV/XLSX export (one transaction)."""
    from tqdm import tqdm

    from gridmap.interop.ledger_files import load_mapping
    from gridmap.interop.ledger_import import import_ledger
    from gridmap.security.access import cli_principal

    gm = core()
    gm.db.migrate()
    columns = load_mapping(mapping) if mapping else None
    with tqdm(desc="importing", unit="row", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:
        report = import_ledger(gm, file, mapping=columns, crs=crs, encoding=encoding, dry_run=dry_run,
                               skip_bad_rows=skip_bad_rows, keep_ids=keep_ids, access=cli_principal().access,
                               on_start=lambda total: bar.reset(total=total), on_progress=bar.update)
    for error in report.errors:
        click.echo(f"{file.name}: {error}", err=True)
    for warning in report.warnings:
        click.echo(f"{file.name}: warning: {warning}", err=True)
    if report.errors and not skip_bad_rows:
        click.echo(f"{file.name}: {len(report.errors)} problem(s) in {len({e.row for e in report.errors})} of "
                   f"{report.rows} row(s); nothing imported (fix them, or pass --skip-bad-rows to import the rest)",
                   err=True)
        sys.exit(EXIT_BAD_INPUT)
    verb = "would import" if dry_run else "imported"
    bad = len({e.row for e in report.errors})
    skipped = f", skipped {bad} bad row(s)" if bad else ""
    click.echo(f"{file.name}: {verb} {report.imported} of {report.rows} row(s){skipped}")
