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
        if ctx.parent is None:  # remembered for the audit log before click consumes the arguments
            ctx.meta["gridmap.command_line"] = [*getattr(ctx, "_protected_args", ()), *ctx.args]
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
    from gridmap.core import Gridmap

    gm = Gridmap({k: v for k, v in overrides.items() if v is not None})
    click.get_current_context().call_on_close(gm.close)
    return gm


@click.group(cls=GridmapGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gridmap")
@click.pass_context
def main(ctx: click.Context) -> None:
    """gridmap: grid-based governance (网格化服务管理) on a map."""
    from gridmap.security.audit import acting_as
    from gridmap.security.access import cli_principal

    # Every change a command makes is audited as the operator's (#8); the web server audits per request.
    words = ctx.meta.get("gridmap.command_line", [])  # the subcommand and its arguments
    ctx.with_resource(acting_as(cli_principal().label, " ".join(["gridmap", *words])[:500]))


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
    from gridmap.geo.layers import read_layer_set
    from gridmap.geo.validate import SLIVER_TOLERANCE_M, validate_layer_set

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
        _load_demo_coverage(gm)  # households, visits, patrols (#5)
        _load_demo_users(gm)


def _load_demo(gm) -> None:
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
    """Demo grid workers, side paths (rework, extension, return, reopen…) and a first SLA tick (#3)."""
    from gridmap.demo.workflow import load_demo_workflow

    click.echo(load_demo_workflow(gm))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
def serve(host: str, port: int, threads: int) -> None:
    """Serve the web app with the waitress production WSGI server."""
    _serve(host, port, threads)


def _serve(host: str, port: int, threads: int) -> None:
    from gridmap.ops.server import serve as serve_app
    from gridmap.web import create_app

    app = create_app()
    core = app.extensions["gridmap"]
    core.db.require_current_schema()
    core.areas  # load and validate the layer set before taking requests
    click.echo(f"gridmap serving on http://{host}:{port}/  (Ctrl+C to stop)")
    # waitress, with a body over the limit answered by the app (JSON 413) and drained, not reset: gridmap.ops.server
    serve_app(app, host=host, port=port, threads=threads, max_body_bytes=app.config["MAX_CONTENT_LENGTH"])


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def demo(host: str, port: int) -> None:
    """Initialise with the Tianya demo data, then serve at http://HOST:PORT/."""
    gm = _core()
    gm.init_database()
    _load_demo(gm)
    _load_demo_coverage(gm)  # households, visits, patrols (#5)
    _load_demo_users(gm)
    gm.close()
    _serve(host, port, 8)


def _load_demo_users(gm) -> None:
    """One login per role (#8), with the published demo password."""
    from gridmap.demo.users import DEMO_PASSWORD, create_demo_users

    made = create_demo_users(gm)
    if made:
        click.echo(f"demo logins (password {DEMO_PASSWORD!r}; demo only): " +
                   ", ".join(f"{name} ({role}{': ' + ','.join(scopes[:2]) + ('…' if len(scopes) > 2 else '') if scopes else ''})"
                             for name, role, scopes in made))


# --- backup and restore (#8) -------------------------------------------------------------------


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup(file: Path) -> None:
    """Write a consistent copy of the whole database to FILE (a SQLite file) while the server runs."""
    from gridmap.ops.backup import backup_database

    report = backup_database(_core().db, file)
    click.echo(report.summary("backup"))


@main.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Replace the data of a database that holds some without asking.")
def restore(file: Path, yes: bool) -> None:
    """Replace every row of the database by those of FILE (from `gridmap backup`), in one transaction."""
    from gridmap.ops.backup import restore_database

    def confirm(existing: dict[str, int]) -> bool:
        if yes:
            return True
        others = sum(count for name, count in existing.items() if name not in ("issues", "areas", "meta"))
        message = (f"the database holds {existing.get('issues', 0)} issue(s) and {others} other row(s); "
                   f"restoring {file} replaces them all")
        if not sys.stdin.isatty():
            raise GridmapError(f"{message}: pass --yes to go ahead")
        return click.confirm(f"{message}. Go ahead?", default=False, err=True)

    report = restore_database(_core().db, file, confirm=confirm)
    click.echo(report.summary("restored"))


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

    from gridmap.issues.record_files import read_issue_file
    from gridmap.security.access import cli_principal

    gm = _core()
    gm.db.migrate()
    records, numbers = read_issue_file(file, encoding=encoding)
    with tqdm(total=len(records), desc="importing", unit="row", disable=not sys.stderr.isatty()) as bar:
        report = gm.intake.import_records(gm.db, records, numbers, crs=crs, skip_bad_rows=skip_bad_rows,
                                          access=cli_principal().access, dry_run=dry_run, actor=f"import:{file.name}", on_progress=bar.update)
    for error in report.errors:
        click.echo(f"{file.name}: {error}", err=True)
    if report.errors and not skip_bad_rows:
        click.echo(f"{file.name}: {len(report.errors)} bad row(s) of {report.rows}; nothing imported "
                   "(fix them, or pass --skip-bad-rows to import the rest)", err=True)
        sys.exit(EXIT_BAD_INPUT)
    verb = "would import" if dry_run else "imported"
    skipped = f", skipped {len(report.errors)} bad row(s)" if report.errors else ""
    click.echo(f"{file.name}: {verb} {report.imported} of {report.rows} row(s){skipped}")


# --- ledger (台账) ----------------------------------------------------------------------------------


@main.group(cls=GridmapGroup)
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
@click.option("--source", default=None, help="Source(s), comma-separated: patrol, hotline, web, visit, open311, import.")
def ledger_export(file: Path, fmt: str | None, lang: str, area: str | None, date_from: str | None,
                  date_to: str | None, status: str | None, category: str | None, source: str | None) -> None:
    """Write the ledger (one row per issue, plus the transition history) to FILE."""
    from gridmap.security.access import UNLIMITED
    from gridmap.interop.ledger_export import export_ledger
    from gridmap.interop.ledger_format import LedgerFilter

    gm = _core()
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
@click.option("--skip-bad-rows", is_flag=True, help="Import the good rows and list the bad ones (default: all or nothing).")
@click.option("--keep-ids", is_flag=True, help="Keep the file's 编号 as the issue ids (refused if one is taken).")
def ledger_import(file: Path, mapping: Path | None, crs: str | None, encoding: str | None, dry_run: bool,
                  skip_bad_rows: bool, keep_ids: bool) -> None:
    """Import a ledger or a hotline system's CSV/XLSX export (one transaction)."""
    from tqdm import tqdm

    from gridmap.interop.ledger_files import load_mapping
    from gridmap.interop.ledger_import import import_ledger
    from gridmap.security.access import cli_principal

    gm = _core()
    gm.db.migrate()
    columns = load_mapping(mapping) if mapping else None
    with tqdm(desc="importing", unit="row", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:
        report = import_ledger(gm, file, mapping=columns, crs=crs, encoding=encoding, dry_run=dry_run,
                               skip_bad_rows=skip_bad_rows, keep_ids=keep_ids, access=cli_principal().access,
                               on_start=lambda total: setattr(bar, "total", total), on_progress=bar.update)
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


# --- workflow, deadlines and dispatch (#3) ------------------------------------------------------


def _parse_at(gm, at: str | None):
    """The --at option as an aware datetime (local time when it has no offset), or None for now."""
    if at is None:
        return None
    from zoneinfo import ZoneInfo

    from gridmap.issues.intake import parse_datetime

    try:
        return parse_datetime(at, ZoneInfo(gm.timezone))
    except ValueError as exc:
        raise GridmapError(f"--at {exc}") from None


@issues.command("transition")
@click.argument("issue_id", type=int)
@click.argument("action")
@click.option("--actor", default="cli", show_default=True, help="Who performs the action.")
@click.option("--comment", default=None, help="The reason (required for reject, rework, return, extend, suspend, reopen).")
@click.option("--at", default=None, help="When (ISO 8601; local time without an offset; default now).")
@click.option("--department", default=None, help="dispatch: the department.")
@click.option("--assignee", default=None, help="dispatch: the person.")
@click.option("--satisfaction", type=int, default=None, help="revisit: the citizen's score, 1-5.")
@click.option("--approver", default=None, help="extend: who approved the extension.")
@click.option("--original", type=int, default=None, help="merge: the id of the issue this one duplicates.")
def issues_transition(issue_id: int, action: str, actor: str, comment: str | None, at: str | None, **params) -> None:
    """Apply a workflow ACTION to an issue (exit 2 naming the allowed actions when refused)."""
    from gridmap.issues.workflow import apply_action, load_issue

    gm = _core()
    with gm.db.session() as session:
        issue = load_issue(session, issue_id)
        transition = apply_action(session, issue, action, actor=actor, comment=comment, at=_parse_at(gm, at),
                                  rules=gm.workflow_rules, **params)
        click.echo(f"issue {issue_id}: {transition.action} {transition.from_status} → {transition.to_status}")


@issues.command("assign")
@click.argument("issue_ids", type=int, nargs=-1, required=True)
@click.option("--department", default=None, help="The department to dispatch to.")
@click.option("--assignee", default=None, help="The person to dispatch to.")
@click.option("--actor", default="cli", show_default=True, help="Who dispatches.")
@click.option("--comment", default=None, help="A note on the dispatch.")
def issues_assign(issue_ids: tuple[int, ...], department: str | None, assignee: str | None, actor: str,
                  comment: str | None) -> None:
    """Dispatch registered issues to a department and/or person, all or nothing."""
    from gridmap.issues.workflow import apply_to_issues

    gm = _core()
    with gm.db.session() as session:
        transitions = apply_to_issues(session, list(issue_ids), "dispatch", actor=actor, comment=comment,
                                      rules=gm.workflow_rules, department=department, assignee=assignee)
    click.echo(f"dispatched {len(transitions)} issue(s)")


@issues.command("suggest")
@click.argument("issue_id", type=int)
@click.option("--limit", type=int, default=10, show_default=True)
def issues_suggest(issue_id: int, limit: int) -> None:
    """Print assignment suggestions for an issue as JSON, best first."""
    from gridmap.issues.dispatch import suggest_assignees
    from gridmap.issues.workflow import load_issue

    gm = _core()
    with gm.db.sessions() as session:
        issue = load_issue(session, issue_id, for_update=False)
        suggestions = suggest_assignees(session, issue, layers=gm.areas.layers, routing=gm.routing,
                                        workload_m=float(gm.settings["suggestion_workload_m"]), limit=limit)
    click.echo(json.dumps([s.as_dict() for s in suggestions], ensure_ascii=False, indent=1))


@main.group(cls=GridmapGroup)
def sla() -> None:
    """Deadlines: warning, overdue and escalation."""


@sla.command("tick")
@click.option("--at", default=None, help="Evaluate at this time instead of now (ISO 8601).")
def sla_tick_command(at: str | None) -> None:
    """Update every open issue's SLA state and write due escalations (idempotent; run it from cron).

    Exit 1 when some issues could not be evaluated (listed; the others are updated).
    """
    from gridmap.issues.escalation import sla_tick

    gm = _core()
    with gm.db.session() as session:
        report = sla_tick(session, gm.workflow_rules, _parse_at(gm, at))
    states = ", ".join(f"{count} {state}" for state, count in report.states.items())
    click.echo(f"sla tick at {report.at.isoformat()}: {report.checked} open issue(s): {states}; "
               f"{report.escalations} new escalation(s)")
    for problem in report.problems:
        click.echo(f"gridmap: {problem}", err=True)
    if report.problems:
        sys.exit(EXIT_PROBLEMS)


@main.group(cls=GridmapGroup)
def workers() -> None:
    """Grid workers (网格员) and the cells they are responsible for."""


@workers.command("load")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def workers_load(file: Path) -> None:
    """Replace the grid workers by those of a CSV file (columns name, phone, areas)."""
    from gridmap.issues.dispatch import read_workers, store_workers

    gm = _core()
    gm.db.migrate()
    found = read_workers(file, gm.areas.layers)
    with gm.db.session() as session:
        count = store_workers(session, found)
    click.echo(f"loaded {count} grid worker(s) responsible for {sum(len(w.cells) for w in found)} cell(s)")


@workers.command("generate")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="File to write (default: stdout).")
@click.option("--cells-per-worker", type=int, default=20, show_default=True)
def workers_generate(out: Path | None, cells_per_worker: int) -> None:
    """Write synthetic demo grid workers of the active layer set as CSV."""
    from gridmap.demo.people import demo_workers
    from gridmap.issues.dispatch import workers_csv

    gm = _core()
    if cells_per_worker < 1:
        raise GridmapError("--cells-per-worker must be at least 1")
    text = workers_csv(demo_workers(gm.areas.layers, cells_per_worker), gm.areas.layers)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {text.count(chr(10)) - 1} grid worker(s) to {out}")


# --- coverage: households, visits, patrols (#5) ----------------------------------------------------


@main.group(cls=GridmapGroup)
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


_IMPORT_OPTIONS = (
    click.option("--crs", default=None, help="CRS of lon/lat (EPSG code, gcj02, bd09; default WGS84)."),
    click.option("--skip-bad-rows", is_flag=True, help="Import the good rows and list the bad ones (default: all or nothing)."),
    click.option("--dry-run", is_flag=True, help="Check every row and report, writing nothing."),
)


def _import_options(function):
    for option in reversed(_IMPORT_OPTIONS):
        function = option(function)
    return function


def _report_import(name: str, report, skip_bad_rows: bool, dry_run: bool, what: str = "row(s)") -> None:
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


@coverage_households.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--encoding", default=None, help="Text encoding of a CSV (default: UTF-8, else GB18030/GBK).")
@_import_options
def coverage_households_import(file: Path, encoding: str | None, crs: str | None, skip_bad_rows: bool, dry_run: bool) -> None:
    """Import households from CSV, XLSX or GeoJSON points (address, kind, lon/lat or cell, members…)."""
    from gridmap.coverage.households import HOUSEHOLD_REQUIRED, HouseholdRegistry
    from gridmap.issues.record_files import read_record_file

    gm = _core()
    gm.db.migrate()
    records, numbers = read_record_file(file, encoding=encoding, required=HOUSEHOLD_REQUIRED)
    report = HouseholdRegistry.for_core(gm).import_households(records, numbers, crs=crs, skip_bad_rows=skip_bad_rows,
                                                               dry_run=dry_run)
    _report_import(file.name, report, skip_bad_rows, dry_run)


@coverage_visits.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--encoding", default=None, help="Text encoding of a CSV (default: UTF-8, else GB18030/GBK).")
@_import_options
def coverage_visits_import(file: Path, encoding: str | None, crs: str | None, skip_bad_rows: bool, dry_run: bool) -> None:
    """Import visits from CSV or XLSX (household, visitor, visited_at, notes, issues raised)."""
    from gridmap.coverage.households import HouseholdRegistry
    from gridmap.coverage.visits import VISIT_REQUIRED
    from gridmap.issues.record_files import read_record_file

    gm = _core()
    gm.db.migrate()
    records, numbers = read_record_file(file, encoding=encoding, required=VISIT_REQUIRED)
    report = HouseholdRegistry.for_core(gm).import_visits(records, numbers, crs=crs, skip_bad_rows=skip_bad_rows,
                                                           dry_run=dry_run, actor=f"import:{file.name}")
    _report_import(file.name, report, skip_bad_rows, dry_run)


@coverage_patrols.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--worker", default=None, help="The grid worker of the tracks (default: the file's author / worker property).")
@_import_options
def coverage_patrols_import(files: tuple[Path, ...], worker: str | None, crs: str | None, skip_bad_rows: bool,
                            dry_run: bool) -> None:
    """Import GPS patrol tracks from GPX or GeoJSON files; parts outside the district are reported."""
    from gridmap.coverage.patrols import import_tracks
    from gridmap.coverage.track_files import read_track_file

    gm = _core()
    gm.db.migrate()
    failed = False
    for file in files:
        tracks = read_track_file(file, timezone_name=gm.timezone)
        report = import_tracks(gm.db, gm.areas, tracks, worker=worker, crs=crs, timezone_name=gm.timezone,
                               source=file.name, skip_bad_rows=skip_bad_rows, dry_run=dry_run)
        try:
            _report_import(file.name, report, skip_bad_rows, dry_run, what="track(s)")
        except SystemExit:
            failed = True
    if failed:
        sys.exit(EXIT_BAD_INPUT)


def _coverage_dates(gm, date_from: str | None, date_to: str | None, as_of: str | None):
    from datetime import date, datetime, timezone
    from zoneinfo import ZoneInfo

    from gridmap.dates import parse_day

    today = datetime.now(timezone.utc).astimezone(ZoneInfo(gm.timezone)).date()
    end = parse_day(date_to, "--to") or today
    start = parse_day(date_from, "--from") or date(end.year, 1, 1)
    if start > end:
        raise GridmapError(f"--from ({start}) is after --to ({end}); swap them")
    return start, end, parse_day(as_of, "--as-of") or min(end, today)


_PERIOD_OPTIONS = (
    click.option("--from", "date_from", default=None, help="First day of the period (default 1 January)."),
    click.option("--to", "date_to", default=None, help="Last day of the period, included (default today)."),
    click.option("--as-of", default=None, help="Day of the overdue/stale figures (default min(to, today))."),
    click.option("--stale-days", type=int, default=None, help="Cells not patrolled for this many days are stale (default setting)."),
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
    from gridmap.security.access import UNLIMITED
    from gridmap.coverage.metrics import area_coverage, format_share, ledger_line

    gm = _core()
    start, end, as_of_day = _coverage_dates(gm, date_from, date_to, as_of)
    with gm.db.sessions() as session:
        rows = area_coverage(session, level, start, end, access=UNLIMITED, as_of=as_of_day,
                             min_patrol_minutes=float(gm.settings["patrol_min_minutes"]),
                             stale_days=stale_days or int(gm.settings["patrol_stale_days"]))
    click.echo(f"coverage {start} – {end} (as of {as_of_day})")
    for row in rows:
        if area and not row["code"].startswith(area):
            continue
        click.echo(f"{row['code']} {row.get('name') or ''}: {ledger_line(row)}, {row['overdue_households']} overdue, "
                   f"patrolled {format_share(row['patrol_days'], row['days'])}")


@coverage.command("export")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@_period_options
def coverage_export(out: Path, date_from: str | None, date_to: str | None, as_of: str | None, stale_days: int | None) -> None:
    """Write coverage per district, street, community and cell as XLSX."""
    from gridmap.security.access import UNLIMITED
    from gridmap.coverage.export import write_coverage_xlsx

    gm = _core()
    start, end, as_of_day = _coverage_dates(gm, date_from, date_to, as_of)
    with gm.db.sessions() as session:
        write_coverage_xlsx(session, out, start, end, access=UNLIMITED, as_of=as_of_day,
                            min_patrol_minutes=float(gm.settings["patrol_min_minutes"]),
                            stale_days=stale_days or int(gm.settings["patrol_stale_days"]))
    click.echo(f"wrote coverage {start} – {end} to {out}")


@coverage.command("worklist")
@click.option("--worker", default=None, help="One grid worker (default: all).")
@click.option("--as-of", default=None, help="Day (default today).")
@click.option("--stale-days", type=int, default=None, help="Cells not patrolled for this many days (default setting).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def coverage_worklist(worker: str | None, as_of: str | None, stale_days: int | None, as_json: bool) -> None:
    """Per grid worker: households due this month and cells not patrolled lately."""
    from gridmap.security.access import UNLIMITED
    from gridmap.coverage.metrics import worklists

    gm = _core()
    _, _, day = _coverage_dates(gm, None, as_of, as_of)
    with gm.db.sessions() as session:
        lists = worklists(session, as_of=day, access=UNLIMITED, worker=worker, stale_days=stale_days or int(gm.settings["patrol_stale_days"]),
                          min_patrol_minutes=float(gm.settings["patrol_min_minutes"]))
    if as_json:
        click.echo(json.dumps(lists, ensure_ascii=False, indent=1))
        return
    for entry in lists:
        overdue = sum(1 for h in entry["households_due"] if h["overdue"])
        click.echo(f"{entry['worker']}: {len(entry['cells'])} cell(s), {len(entry['households_due'])} household(s) due by "
                   f"{entry['due_by']} ({overdue} overdue), {len(entry['stale_cells'])} cell(s) not patrolled lately")
        if worker:
            for h in entry["households_due"]:
                flag = " OVERDUE" if h["overdue"] else ""
                click.echo(f"  due {h['due']}{flag}  {h['external_id'] or h['id']}  {h['kind_name']}  {h['address']}  ({h['cell_code']})")
            for c in entry["stale_cells"]:
                click.echo(f"  stale {c['code']}  last patrol {c['last_patrol'] or 'never'}")


def _load_demo_coverage(gm) -> None:
    """Demo households, a year of visits and patrols (#5), into a database without households."""
    from gridmap.demo.coverage import demo_coverage_loaded, load_demo_coverage

    existing = demo_coverage_loaded(gm)
    if existing:
        click.echo(f"demo coverage not loaded: the database already holds {existing} households")
        return
    counts = load_demo_coverage(gm)
    click.echo(f"loaded {counts['households']} demo households, {counts['visits']} visits, "
               f"{counts['tracks']} patrol tracks")


# --- Open311 API keys (#7) ---------------------------------------------------------------------


@main.group(cls=GridmapGroup)
def keys() -> None:
    """Open311 API keys (only their hashes are stored)."""


@keys.command("add")
@click.argument("name")
def keys_add(name: str) -> None:
    """Create a key for the client NAME and print it once (it cannot be shown again)."""
    from gridmap.interop.open311 import add_api_key

    gm = _core()
    gm.db.migrate()
    with gm.db.session() as session:
        key = add_api_key(session, name)
    click.echo(key)
    click.echo(f"API key for {name!r} created; it is shown only now: store it safely", err=True)


# --- users and API tokens (#8) ---------------------------------------------------------------


def _initialised_core():
    """The core, refusing a database that `gridmap init` has not made or brought up to date."""
    gm = _core()
    gm.db.require_current_schema()
    return gm


def _checked_role_and_scopes(gm, role: str, scopes: tuple[str, ...]) -> tuple[str, ...]:
    from gridmap.security.access import check_role_and_scopes

    codes = [code for level in ("streets", "communities", "cells") for code in gm.areas.layers.level(level)["code"]]
    return check_role_and_scopes(role, scopes, area_codes=codes, departments=gm.routing.departments())


ROLE_HELP = "admin, dispatcher, manager (streets/communities), worker (cells), handler (departments) or planner."
SCOPE_HELP = "An area code (manager: street or community; worker: cell) or department name (handler); repeat for more."


@main.group(cls=GridmapGroup)
def users() -> None:
    """People who log in to the web pages."""


def _read_password() -> str:
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, help=ROLE_HELP)
@click.option("--scope", "scopes", multiple=True, help=SCOPE_HELP)
def users_add(name: str, role: str, scopes: tuple[str, ...]) -> None:
    """Create user NAME; the password is read from standard input (asked twice on a terminal)."""
    from gridmap.security.access import add_user

    gm = _initialised_core()
    checked = _checked_role_and_scopes(gm, role, scopes)
    password = _read_password()
    with gm.db.session() as session:
        add_user(session, name, role, checked, password)
    click.echo(f"user {name!r} created: role {role}" + (f", scope {', '.join(checked)}" if checked else ""), err=True)


@users.command("password")
@click.argument("name")
def users_password(name: str) -> None:
    """Set a new password for NAME (read from standard input)."""
    from gridmap.security.access import set_password

    gm = _initialised_core()
    password = _read_password()
    with gm.db.session() as session:
        set_password(session, name, password)
    click.echo(f"password of {name!r} changed", err=True)


@users.command("disable")
@click.argument("name")
def users_disable(name: str) -> None:
    """Disable NAME: their sessions end at the next request; the audit log keeps their name."""
    from gridmap.security.access import disable_user

    gm = _initialised_core()
    with gm.db.session() as session:
        disable_user(session, name)
    click.echo(f"user {name!r} disabled", err=True)


@users.command("list")
def users_list() -> None:
    """Users with their roles and scopes."""
    from gridmap.security.access import list_users

    gm = _initialised_core()
    with gm.db.sessions() as session:
        for row in list_users(session):
            click.echo("\t".join([row["name"], row["role"], ",".join(row["scopes"]), row["state"]]))


@main.group(cls=GridmapGroup)
def tokens() -> None:
    """API tokens for programs (sent as Authorization: Bearer TOKEN)."""


@tokens.command("add")
@click.argument("name")
@click.option("--role", required=True, help=ROLE_HELP)
@click.option("--scope", "scopes", multiple=True, help=SCOPE_HELP)
def tokens_add(name: str, role: str, scopes: tuple[str, ...]) -> None:
    """Create a token NAME and print it once (only its hash is stored)."""
    from gridmap.security.access import add_token

    gm = _initialised_core()
    checked = _checked_role_and_scopes(gm, role, scopes)
    with gm.db.session() as session:
        secret = add_token(session, name, role, checked)
    click.echo(secret)
    click.echo(f"token {name!r} created (role {role}); it is shown only now: store it safely", err=True)


@tokens.command("revoke")
@click.argument("name")
def tokens_revoke(name: str) -> None:
    """Revoke token NAME: it stops working at once."""
    from gridmap.security.access import revoke_token

    gm = _initialised_core()
    with gm.db.session() as session:
        revoke_token(session, name)
    click.echo(f"token {name!r} revoked", err=True)
