"""The ``gridmap`` command line.

Exit codes: 0 success; 1 a check found problems (``geodata validate``); 2 bad input or usage
(the message says what to fix); 3 ``locate``: the point lies outside every cell.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from gridmap.errors import GridmapError, OutsideCells

EXIT_PROBLEMS = 1
EXIT_BAD_INPUT = 2
EXIT_OUTSIDE = 3


class GridmapGroup(click.Group):
    """Turns GridmapError into a message on stderr and a non-zero exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OutsideCells as exc:
            click.echo(f"gridmap: {exc.message}", err=True)
            sys.exit(EXIT_OUTSIDE)
        except GridmapError as exc:
            click.echo(f"gridmap: error: {exc.message}", err=True)
            sys.exit(EXIT_BAD_INPUT)


def _core(**overrides: Any):
    """The configured core for this command; its database connections close when the command ends."""
    from gridmap.service import Gridmap

    gm = Gridmap({k: v for k, v in overrides.items() if v is not None})
    click.get_current_context().call_on_close(gm.close)
    return gm


@click.group(cls=GridmapGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gridmap")
def main() -> None:
    """gridmap: grid-based governance (网格化服务管理) on a map."""


# --- geodata ---------------------------------------------------------------------------------


@main.group(cls=GridmapGroup)
def grid() -> None:
    """Build grid cells."""


@grid.command("build")
@click.argument("areas_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--cell-size", type=float, required=True, help="Cell edge in metres, e.g. 100.")
@click.option("--crs", default=None, help="CRS of the input files: an EPSG code, gcj02 or bd09 (default WGS84).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the complete layer set (default: AREAS_DIR itself).")
@click.option("--sliver-share", type=float, default=None,
              help="Pieces smaller than this share of a full cell are merged into a neighbour (default 0.2).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
def grid_build(areas_dir: Path, cell_size: float, crs: str | None, out_dir: Path | None,
               sliver_share: float | None, progress: bool | None) -> None:
    """Build cells in AREAS_DIR's communities and write a complete layer set."""
    from gridmap.crs import parse_crs
    from gridmap.gridbuild import DEFAULT_SLIVER_SHARE, build_cells
    from gridmap.layers import read_layer_set, write_layer_set
    from gridmap.validate import validate_layer_set

    input_crs = parse_crs(crs)
    out_dir = out_dir or areas_dir
    if not input_crs.is_wgs84 and out_dir.resolve() == areas_dir.resolve():
        raise GridmapError(f"the input is in {input_crs.name} and would be overwritten by WGS84 files; give --out DIR")
    layers, problems = read_layer_set(areas_dir, input_crs, with_cells=False)
    problems += [p for p in validate_layer_set(layers) if not p.message.endswith("has no cells")]
    if problems:
        _print_problems(problems)
        raise GridmapError(f"{areas_dir} has {len(problems)} problem(s); fix them before building cells")
    show = sys.stderr.isatty() if progress is None else progress
    layers.cells = build_cells(layers.communities, cell_size,
                               sliver_share=DEFAULT_SLIVER_SHARE if sliver_share is None else sliver_share,
                               progress=show)
    problems = validate_layer_set(layers)
    if problems:
        _print_problems(problems)
        raise GridmapError("the built cells do not pass validation; nothing was written")
    write_layer_set(layers, out_dir)
    click.echo(f"wrote {len(layers.cells)} cells in {len(layers.communities)} communities to {out_dir}")


@main.group(cls=GridmapGroup)
def geodata() -> None:
    """Check layer sets."""


@geodata.command("validate")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--crs", default=None, help="CRS of the files if not WGS84 (EPSG code, gcj02, bd09).")
def geodata_validate(folder: Path, crs: str | None) -> None:
    """Check a layer set; exit 0 when valid, 1 listing every problem otherwise."""
    from gridmap.layers import read_layer_set
    from gridmap.validate import SLIVER_TOLERANCE_M, validate_layer_set

    layers, problems = read_layer_set(folder, crs)
    problems += validate_layer_set(layers)
    if problems:
        _print_problems(problems)
        click.echo(f"{folder}: {len(problems)} problem(s)", err=True)
        sys.exit(EXIT_PROBLEMS)
    counts = ", ".join(f"{len(layers.level(level))} {level}" for level in ("districts", "streets", "communities", "cells"))
    click.echo(f"{folder}: valid ({counts}; gaps and overlaps narrower than {2 * SLIVER_TOLERANCE_M:g} m ignored)")


def _print_problems(problems) -> None:
    for problem in problems:
        click.echo(str(problem), err=True)


@main.command()
@click.argument("lon", type=float)
@click.argument("lat", type=float)
@click.option("--crs", default=None, help="CRS of the coordinates (EPSG code, gcj02, bd09; default WGS84).")
def locate(lon: float, lat: float, crs: str | None) -> None:
    """Print the cell, community, street and district of a point as JSON (exit 3 when outside).

    Negative coordinates: put -- before them (gridmap locate -- -73.9 40.7).
    """
    location = _core().areas.locate(lon, lat, crs)
    click.echo(json.dumps(location.as_dict(), ensure_ascii=False))


# --- database and service --------------------------------------------------------------------


@main.command()
@click.option("--demo", is_flag=True, help="Also load the demo year of issues (only into an empty database).")
def init(demo: bool) -> None:
    """Create or migrate the database and load the active layer set."""
    gm = _core()
    areas = gm.init_database()
    click.echo(f"database ready at {gm.db.engine.url.render_as_string(hide_password=True)}; {areas} areas loaded from {gm.geodata}")
    if demo:
        _load_demo(gm)


def _load_demo(gm) -> None:
    from sqlalchemy import func, select

    from gridmap.demo import generate_demo_issues
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


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
def serve(host: str, port: int, threads: int) -> None:
    """Serve the web app with the waitress production WSGI server."""
    _serve(host, port, threads)


def _serve(host: str, port: int, threads: int) -> None:
    from waitress import serve as waitress_serve

    from gridmap.web import create_app

    app = create_app()
    app.extensions["gridmap"].areas  # load and validate the layer set before taking requests
    click.echo(f"gridmap serving on http://{host}:{port}/  (Ctrl+C to stop)")
    waitress_serve(app, host=host, port=port, threads=threads, max_request_body_size=app.config["MAX_CONTENT_LENGTH"])


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def demo(host: str, port: int) -> None:
    """Initialise with the Tianya demo data, then serve at http://HOST:PORT/."""
    gm = _core()
    gm.init_database()
    _load_demo(gm)
    gm.close()
    _serve(host, port, 8)


# --- issues ------------------------------------------------------------------------------------


@main.group(cls=GridmapGroup)
def issues() -> None:
    """Import and manage issues."""


@issues.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--crs", default=None, help="CRS of lon/lat (EPSG code, gcj02, bd09; default WGS84).")
@click.option("--encoding", default=None, help="Text encoding of a CSV (default: UTF-8, else GB18030/GBK).")
@click.option("--skip-bad-rows", is_flag=True, help="Import the good rows and list the bad ones (default: all or nothing).")
@click.option("--dry-run", is_flag=True, help="Check every row and report, writing nothing.")
def issues_import(file: Path, crs: str | None, encoding: str | None, skip_bad_rows: bool, dry_run: bool) -> None:
    """Import issues from CSV, XLSX or GeoJSON points (columns lon, lat, category, description, reported_at)."""
    from tqdm import tqdm

    from gridmap.intake import read_issue_file

    gm = _core()
    gm.db.migrate()
    records, numbers = read_issue_file(file, encoding=encoding)
    with tqdm(total=len(records), desc="importing", unit="row", disable=not sys.stderr.isatty()) as bar:
        report = gm.intake.import_records(gm.db, records, numbers, crs=crs, skip_bad_rows=skip_bad_rows,
                                          dry_run=dry_run, actor=f"import:{file.name}", on_progress=bar.update)
    for error in report.errors:
        click.echo(f"{file.name}: {error}", err=True)
    if report.errors and not skip_bad_rows:
        click.echo(f"{file.name}: {len(report.errors)} bad row(s) of {report.rows}; nothing imported "
                   "(fix them, or pass --skip-bad-rows to import the rest)", err=True)
        sys.exit(EXIT_BAD_INPUT)
    verb = "would import" if dry_run else "imported"
    skipped = f", skipped {len(report.errors)} bad row(s)" if report.errors else ""
    click.echo(f"{file.name}: {verb} {report.imported} of {report.rows} row(s){skipped}")
