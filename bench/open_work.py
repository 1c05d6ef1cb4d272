"""Benchmark: the SLA tick and the ledger export on a large store (open work read through indexes).

``build`` makes a SQLite database in INSTANCE with the bundled Tianya layer set and N issues: the
demo year (``gridmap.demo.issues``, imported with its stage times) copied again and again with new
ids, transitions included, until N rows are stored. ``tick`` times ``gridmap sla tick`` twice: the
first run after a build evaluates every open issue once (new rules fingerprint), the second reads
only the rows due. Peak memory of an export is measured from the shell::

    python bench/open_work.py build --instance /tmp/ow --issues 100000
    python bench/open_work.py tick --instance /tmp/ow
    GRIDMAP_INSTANCE=/tmp/ow /usr/bin/time -v gridmap ledger export /tmp/ow/ledger.csv
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sqlalchemy import func, insert, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gridmap.core import Gridmap  # noqa: E402
from gridmap.storage.models import Issue, IssueTransition  # noqa: E402


def build(instance: Path, issues: int) -> None:
    """A database of ``issues`` issues (the demo year, copied) in ``instance``."""
    from gridmap.demo.issues import generate_demo_issues

    gm = Gridmap({"instance": str(instance)})
    gm.init_database()
    records = generate_demo_issues(gm.areas.layers, gm.categories)
    report = gm.intake.import_records(gm.db, records, actor="bench")
    print(f"imported {report.imported:,} demo issues")
    issue_columns = [c.key for c in Issue.__table__.columns if c.key != "id"]
    transition_columns = [c.key for c in IssueTransition.__table__.columns if c.key not in ("id", "issue_id")]
    with gm.db.session() as session:
        base = session.scalar(select(func.max(Issue.id)))
        stored = session.scalar(select(func.count()).select_from(Issue))
        while stored < issues:
            shift = session.scalar(select(func.max(Issue.id)))
            take = min(base, issues - stored)
            source = select(Issue.id + shift, *[getattr(Issue, name) for name in issue_columns]).where(Issue.id <= take)
            session.execute(insert(Issue).from_select(["id", *issue_columns], source))
            copied = [getattr(IssueTransition, name) for name in transition_columns]
            history = select(IssueTransition.issue_id + shift, *copied)
            session.execute(insert(IssueTransition).from_select(
                ["issue_id", *transition_columns], history.where(IssueTransition.issue_id <= take)))
            stored += take
            print(f"{stored:,} issues", flush=True)
        session.execute(Issue.__table__.update().values(external_id=None).where(Issue.id > base))
    gm.close()


def tick(instance: Path) -> None:
    """Time two SLA ticks (the first one evaluates every open issue once)."""
    from gridmap.issues.escalation import sla_tick

    gm = Gridmap({"instance": str(instance)})
    for run in ("first (every open issue)", "second (the rows due)"):
        started = time.perf_counter()
        with gm.db.session() as session:
            report = sla_tick(session, gm.workflow_rules)
        print(f"sla tick, {run}: {time.perf_counter() - started:.2f} s; {report.checked:,} open, "
              f"{report.escalations:,} new escalations, {len(report.problems)} problems")
    gm.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("build", "tick"))
    parser.add_argument("--instance", type=Path, required=True)
    parser.add_argument("--issues", type=int, default=100_000)
    args = parser.parse_args()
    if args.step == "build":
        build(args.instance, args.issues)
    else:
        tick(args.instance)


if __name__ == "__main__":
    main()
