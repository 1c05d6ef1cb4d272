"""Issues and their workflow: ``issues import|transition|assign|suggest``, ``sla tick``, ``workers``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from gridmap.cli.common import EXIT_PROBLEMS, GridmapGroup, core, parse_at, report_import
from gridmap.errors import GridmapError


@click.group(cls=GridmapGroup)
def issues() -> None:
    """Import and manage issues."""


@issues.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--crs", default=None, help="CRS of lon/lat (EPSG code, gcj02, bd09; default WGS84).")
@click.option("--encoding", default=None, help="Text encoding of a CSV (default: UTF-8, else GB18030/GBK).")
@click.option("--skip-bad-rows", is_flag=True,
              help="Import the good rows and list the bad ones (default: all or nothing).")
@click.option("--dry-run", is_flag=True, help="Check every row and report, writing nothing.")
def issues_import(file: Path, crs: str | None, encoding: str | None, skip_bad_rows: bool, dry_run: bool) -> None:
    """Import issues from CSV, XLSX or GeoJSON points (columns lon, lat, category, description, reported_at)."""
    from tqdm import tqdm

    from gridmap.issues.record_files import iter_issue_file
    from gridmap.security.access import cli_principal

    gm = core()
    gm.db.migrate()
    batch_rows = int(gm.settings["import_batch_rows"])
    batches = iter_issue_file(file, encoding=encoding, batch_rows=batch_rows)
    with tqdm(desc="importing", unit="row", file=sys.stderr, disable=not sys.stderr.isatty()) as bar:
        report = gm.intake.import_batches(gm.db, batches, crs=crs, skip_bad_rows=skip_bad_rows,
                                          access=cli_principal().access, dry_run=dry_run, batch_rows=batch_rows,
                                          actor=f"import:{file.name}", on_progress=bar.update)
    report_import(file.name, report, skip_bad_rows, dry_run)


@issues.command("transition")
@click.argument("issue_id", type=int)
@click.argument("action")
@click.option("--actor", default="cli", show_default=True, help="Who performs the action.")
@click.option("--comment", default=None,
              help="The reason (required for reject, rework, return, extend, suspend, reopen).")
@click.option("--at", default=None, help="When (ISO 8601; local time without an offset; default now).")
@click.option("--department", default=None, help="dispatch: the department.")
@click.option("--assignee", default=None, help="dispatch: the person.")
@click.option("--satisfaction", type=int, default=None, help="revisit: the citizen's score, 1-5.")
@click.option("--approver", default=None, help="extend: who approved the extension.")
@click.option("--original", type=int, default=None, help="merge: the id of the issue this one duplicates.")
def issues_transition(issue_id: int, action: str, actor: str, comment: str | None, at: str | None, **params) -> None:
    """Apply a workflow ACTION to an issue (exit 2 naming the allowed actions when refused)."""
    from gridmap.issues.workflow import apply_action, load_issue

    gm = core()
    with gm.db.session() as session:
        issue = load_issue(session, issue_id)
        transition = apply_action(session, issue, action, actor=actor, comment=comment, at=parse_at(gm, at),
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

    gm = core()
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

    gm = core()
    with gm.db.sessions() as session:
        issue = load_issue(session, issue_id, for_update=False)
        suggestions = suggest_assignees(session, issue, layers=gm.areas.layers, routing=gm.routing,
                                        workload_m=gm.settings["suggestion_workload_m"], limit=limit)
    click.echo(json.dumps([s.as_dict() for s in suggestions], ensure_ascii=False, indent=1))


@click.group(cls=GridmapGroup)
def sla() -> None:
    """Deadlines: warning, overdue and escalation."""


@sla.command("tick")
@click.option("--at", default=None, help="Evaluate at this time instead of now (ISO 8601).")
def sla_tick_command(at: str | None) -> None:
    """Update every open issue's SLA state and write due escalations (idempotent; run it from cron).

    Exit 1 when some issues could not be evaluated (listed; the others are updated).
    """
    from gridmap.issues.escalation import sla_tick

    gm = core()
    with gm.db.session() as session:
        report = sla_tick(session, gm.workflow_rules, parse_at(gm, at))
    states = ", ".join(f"{count} {state}" for state, count in report.states.items())
    click.echo(f"sla tick at {report.at.isoformat()}: {report.checked} open issue(s): {states}; "
               f"{report.escalations} new escalation(s)")
    for problem in report.problems:
        click.echo(f"gridmap: {problem}", err=True)
    if report.problems:
        sys.exit(EXIT_PROBLEMS)


@click.group(cls=GridmapGroup)
def workers() -> None:
    """Grid workers (网格员) and the cells they are responsible for."""


@workers.command("load")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def workers_load(file: Path) -> None:
    """Replace the grid workers by those of a CSV file (columns name, phone, areas)."""
    from gridmap.issues.dispatch import read_workers, store_workers

    gm = core()
    gm.db.migrate()
    found = read_workers(file, gm.areas.layers)
    with gm.db.session() as session:
        count = store_workers(session, found)
    click.echo(f"loaded {count} grid worker(s) responsible for {sum(len(w.cells) for w in found)} cell(s)")


@workers.command("generate")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write (default: stdout).")
@click.option("--cells-per-worker", type=int, default=20, show_default=True)
def workers_generate(out: Path | None, cells_per_worker: int) -> None:
    """Write synthetic demo grid workers of the active layer set as CSV."""
    from gridmap.demo.people import demo_workers
    from gridmap.issues.dispatch import workers_csv

    gm = core()
    if cells_per_worker < 1:
        raise GridmapError("--cells-per-worker must be at least 1")
    text = workers_csv(demo_workers(gm.areas.layers, cells_per_worker), gm.areas.layers)
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        click.echo(f"wrote {text.count(chr(10)) - 1} grid worker(s) to {out}")
