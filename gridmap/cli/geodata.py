"""Layer sets: ``grid build``, ``geodata validate``, ``locate``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from gridmap.cli.common import EXIT_PROBLEMS, GridmapGroup, core, print_problems
from gridmap.errors import GridmapError


@click.group(cls=GridmapGroup)
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
    from gridmap.geo.crs import parse_crs
    from gridmap.geo.gridbuild import DEFAULT_SLIVER_SHARE, build_cells
    from gridmap.geo.layers import read_layer_set, write_layer_set
    from gridmap.geo.validate import validate_layer_set

    input_crs = parse_crs(crs)
    out_dir = out_dir or areas_dir
    if not input_crs.is_wgs84 and out_dir.resolve() == areas_dir.resolve():
        raise GridmapError(f"the input is in {input_crs.name} and would be overwritten by WGS84 files; give --out DIR")
    layers, problems = read_layer_set(areas_dir, input_crs, with_cells=False)
    problems += [p for p in validate_layer_set(layers) if not p.message.endswith("has no cells")]
    if problems:
        print_problems(problems)
        raise GridmapError(f"{areas_dir} has {len(problems)} problem(s); fix them before building cells")
    show = sys.stderr.isatty() if progress is None else progress
    layers.cells = build_cells(layers.communities, cell_size,
                               sliver_share=DEFAULT_SLIVER_SHARE if sliver_share is None else sliver_share,
                               progress=show)
    problems = validate_layer_set(layers)
    if problems:
        print_problems(problems)
        raise GridmapError("the built cells do not pass validation; nothing was written")
    write_layer_set(layers, out_dir)
    click.echo(f"wrote {len(layers.cells)} cells in {len(layers.communities)} communities to {out_dir}")


@click.group(cls=GridmapGroup)
def geodata() -> None:
    """Check layer sets."""


@geodata.command("validate")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--crs", default=None, help="CRS of the files if not WGS84 (EPSG code, gcj02, bd09).")
def geodata_validate(folder: Path, crs: str | None) -> None:
    """Check a layer set; exit 0 when valid, 1 listing every problem otherwise."""
    from gridmap.geo.layers import read_layer_set
    from gridmap.geo.validate import SLIVER_TOLERANCE_M, validate_layer_set

    layers, problems = read_layer_set(folder, crs)
    problems += validate_layer_set(layers)
    if problems:
        print_problems(problems)
        click.echo(f"{folder}: {len(problems)} problem(s)", err=True)
        sys.exit(EXIT_PROBLEMS)
    levels = ("districts", "streets", "communities", "cells")
    counts = ", ".join(f"{len(layers.level(level))} {level}" for level in levels)
    click.echo(f"{folder}: valid ({counts}; gaps and overlaps narrower than {2 * SLIVER_TOLERANCE_M:g} m ignored)")


@click.command()
@click.argument("lon", type=float)
@click.argument("lat", type=float)
@click.option("--crs", default=None, help="CRS of the coordinates (EPSG code, gcj02, bd09; default WGS84).")
def locate(lon: float, lat: float, crs: str | None) -> None:
    """Print the cell, community, street and district of a point as JSON (exit 3 when outside).

    Negative coordinates: put -- before them (gridmap locate -- -73.9 40.7).
    """
    location = core().areas.locate(lon, lat, crs)
    click.echo(json.dumps(location.as_dict(), ensure_ascii=False))
