"""What every command module of the command line shares: exit codes, error handling, the core."""

from __future__ import annotations

import sys
from typing import Any

import click

from gridmap.errors import GridmapError, OutsideCells

EXIT_PROBLEMS = 1
EXIT_BAD_INPUT = 2
EXIT_OUTSIDE = 3
#: Where the root command keeps the words it was called with (for the audit log).
COMMAND_LINE = "gridmap.command_line"


class GridmapGroup(click.Group):
    """Turns GridmapError into a message on stderr and a non-zero exit code."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        """The context of this group; the root one remembers its arguments before click parses them."""
        words = list(args)
        ctx = super().make_context(info_name, args, parent=parent, **extra)
        if parent is None:
            ctx.meta[COMMAND_LINE] = words
        return ctx

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a GridmapError becomes its message and exit code 2 (3 for a point outside every cell)."""
        try:
            return super().invoke(ctx)
        except OutsideCells as exc:
            click.echo(f"gridmap: {exc.message}", err=True)
            sys.exit(EXIT_OUTSIDE)
        except GridmapError as exc:
            click.echo(f"gridmap: error: {exc.message}", err=True)
            sys.exit(EXIT_BAD_INPUT)


def core(**overrides: Any):
    """The configured core for this command; its database connections close when the command ends."""
    from gridmap.core import Gridmap

    gm = Gridmap({k: v for k, v in overrides.items() if v is not None})
    click.get_current_context().call_on_close(gm.close)
    return gm


def print_problems(problems) -> None:
    """Each problem of a check on its own line of stderr."""
    for problem in problems:
        click.echo(str(problem), err=True)


def parse_at(gm, at: str | None):
    """The --at option as an aware datetime (local time when it has no offset), or None for now."""
    if at is None:
        return None
    from zoneinfo import ZoneInfo

    from gridmap.issues.intake import parse_datetime

    try:
        return parse_datetime(at, ZoneInfo(gm.timezone))
    except ValueError as exc:
        raise GridmapError(f"--at {exc}") from None


IMPORT_OPTIONS = (
    click.option("--crs", default=None, help="CRS of lon/lat (EPSG code, gcj02, bd09; default WGS84)."),
    click.option("--skip-bad-rows", is_flag=True,
                 help="Import the good rows and list the bad ones (default: all or nothing)."),
    click.option("--dry-run", is_flag=True, help="Check every row and report, writing nothing."),
)


def import_options(function):
    """The options every import command has: --crs, --skip-bad-rows, --dry-run."""
    for option in reversed(IMPORT_OPTIONS):
        function = option(function)
    return function


def report_import(name: str, report, skip_bad_rows: bool, dry_run: bool, what: str = "row(s)") -> None:
    """Print an import's warnings, errors and summary; exit 2 when bad rows stopped it."""
    for warning in getattr(report, "warnings", []):
        click.echo(f"{name}: warning: {warning}", err=True)
    for error in report.errors:
        click.echo(f"{name}: {error}", err=True)
    if report.errors and not skip_bad_rows:
        click.echo(f"{name}: {len(report.errors)} bad {what} of {report.rows}; nothing imported "
                   "(fix them, or pass --skip-bad-rows to import the rest)", err=True)
        sys.exit(EXIT_BAD_INPUT)
    verb = "would import" if dry_run else "imported"
    skipped = f", skipped {len(report.errors)} bad {what}" if report.errors else ""
    moved = f" ({report.moved} moved)" if getattr(report, "moved", 0) else ""
    issues = f", {report.issues_created} issue(s) raised" if getattr(report, "issues_created", 0) else ""
    click.echo(f"{name}: {verb} {report.imported} of {report.rows} {what}{moved}{issues}{skipped}")


def initialised_core():
    """The core, refusing a database that `gridmap init` has not made or brought up to date."""
    gm = core()
    gm.db.require_current_schema()
    return gm
