#!/usr/bin/env python3
"""Regenerate the bundled demo layer set in geodata/ from the GCJ-02 outline of 三亚市天涯区.

    python scripts/make-demo-geodata.py [--outline PATH] [--out DIR] [--cell-size METRES]

The streets and communities are synthetic and seeded (gridmap.demo.district.GEODATA_SEED), so the same
outline and cell size always give the same files.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gridmap.demo.district import DEFAULT_CELL_SIZE, SOURCE_OUTLINE, build_demo_geodata
from gridmap.errors import GridmapError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTLINE = SOURCE_OUTLINE  # geodata/source/: the published GCJ-02 outline and its licence


def main(argv: list[str] | None = None) -> int:
    """Build, write and validate the demo layer set; print what was written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--outline", type=Path, default=DEFAULT_OUTLINE, help=f"GCJ-02 district outline (default {DEFAULT_OUTLINE})"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "geodata", help="folder to write the four GeoJSON files into"
    )
    parser.add_argument("--cell-size", type=float, default=DEFAULT_CELL_SIZE, help="grid cell size in metres")
    args = parser.parse_args(argv)
    try:
        layers = build_demo_geodata(args.outline, args.out, args.cell_size)
    except GridmapError as exc:
        print(f"make-demo-geodata: {exc.message}", file=sys.stderr)
        return 1
    levels = ("districts", "streets", "communities", "cells")
    counts = ", ".join(f"{len(layers.level(level))} {level}" for level in levels)
    print(f"wrote {counts} to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
