"""HTML pages of coverage: the summary per community, the visit form, a household, grid workers' work lists.

Like the API, every page reads and writes inside the caller's scope and masks households' names
and phones for roles without ``personal:read``.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import Blueprint, redirect, render_template, request, url_for
from sqlalchemy import select

from gridmap.coverage.households import household_detail
from gridmap.coverage.metrics import area_coverage, format_share, worklists
from gridmap.errors import GridmapError, InvalidInput
from gridmap.storage.models import Area
from gridmap.web.auth import requires, scope
from gridmap.web.coverage_api import core, int_arg, period_from_request, personal, personal_worklists, registry, today

blueprint = Blueprint("coverage_pages", __name__)

VISIT_FORM_FIELDS = ("household", "visitor", "visited_at", "notes", "issue_category", "issue_description")


@blueprint.app_template_filter("share")
def share_filter(part: int, whole: int) -> str:
    """``{{ visited|share(households) }}``: a percentage that reads 100% only when it is."""
    return format_share(part, whole)


@blueprint.app_template_filter("local_time")
def local_time_filter(value: str) -> str:
    """An ISO 8601 UTC time as local ``YYYY-MM-DD HH:MM`` in the service's time zone."""
    moment = datetime.fromisoformat(value)
    return moment.astimezone(ZoneInfo(core().timezone)).strftime("%Y-%m-%d %H:%M")


def _names(session, level: str) -> dict[str, str]:
    """Names of the areas of a level that the caller's scope shows."""
    access = scope()
    return {code: name for code, name in session.execute(select(Area.code, Area.name).where(Area.level == level))
            if access.shows_area(code)}


@blueprint.get("/coverage/")
@requires("coverage:read")
def summary():
    """Coverage per community for a period, with the district's ledger line."""
    gm = core()
    date_from, date_to, as_of = period_from_request()
    stale_days = int_arg("stale_days", gm.settings["patrol_stale_days"], minimum=1)
    minutes = gm.settings["patrol_min_minutes"]
    with gm.db.sessions() as session:
        rows = area_coverage(session, "communities", date_from, date_to, access=scope(), as_of=as_of,
                             min_patrol_minutes=minutes, stale_days=stale_days)
        districts = area_coverage(session, "districts", date_from, date_to, access=scope(), as_of=as_of,
                                  min_patrol_minutes=minutes, stale_days=stale_days)
        streets = _names(session, "streets")
    period = {"from": date_from.isoformat(), "to": date_to.isoformat(), "as_of": as_of.isoformat()}
    export = url_for("coverage_api.export_xlsx", **period, stale_days=stale_days)
    return render_template("coverage/index.html", rows=rows, districts=districts, streets=streets, period=period,
                           export_url=export, stale_days=stale_days, minutes=minutes)


@blueprint.route("/coverage/visits/new", methods=["GET", "POST"])
@requires("visits:write")
def visit_form():
    """The visit form: a household, who visited when, notes, and an issue raised at the visit."""
    gm = core()
    values = {name: request.values.get(name, "") for name in VISIT_FORM_FIELDS}
    if request.method == "GET":
        return render_template("coverage/visit_form.html", values=values, error=None,
                               categories=gm.categories.leaves())
    record = {key: values[key] for key in ("household", "visitor", "visited_at", "notes")}
    if values["issue_category"] or values["issue_description"].strip():
        record["issues"] = [{"category": values["issue_category"], "description": values["issue_description"]}]
    try:
        visit = registry().record_visit(record, source="form", actor=f"visit:{values['visitor'][:80]}", access=scope())
    except GridmapError as exc:
        return render_template("coverage/visit_form.html", values=values, error=exc.message,
                               categories=gm.categories.leaves()), exc.status
    return redirect(url_for("coverage_pages.household", household_id=visit["household_id"], visit=visit["id"]))


@blueprint.get("/coverage/households/<id:household_id>")
@requires("households:read")
def household(household_id: int):
    """A household: kind, address history, visits and the issues raised at them."""
    with core().db.sessions() as session:
        detail = personal(household_detail(session, household_id, as_of=today(), access=scope()))
    recorded = request.args.get("visit", type=int)
    return render_template("coverage/household.html", household=detail, recorded=recorded)


@blueprint.get("/coverage/worklists")
@requires("households:read")
def worklist_index():
    """The grid workers with how many households are due and cells stale."""
    gm = core()
    as_of = _as_of()
    with gm.db.sessions() as session:
        lists = worklists(session, as_of=as_of, access=scope(),
                          stale_days=int_arg("stale_days", gm.settings["patrol_stale_days"], minimum=1),
                          min_patrol_minutes=gm.settings["patrol_min_minutes"])
    return render_template("coverage/worklists.html", lists=personal_worklists(lists), as_of=as_of.isoformat())


@blueprint.get("/coverage/worklists/<path:worker>")
@requires("households:read")
def worklist(worker: str):
    """One grid worker's work list: households due this month, cells not patrolled lately."""
    gm = core()
    as_of = _as_of()
    stale_days = int_arg("stale_days", gm.settings["patrol_stale_days"], minimum=1)
    with gm.db.sessions() as session:
        (entry,) = personal_worklists(worklists(session, as_of=as_of, access=scope(), worker=worker,
                                                stale_days=stale_days,
                                                min_patrol_minutes=gm.settings["patrol_min_minutes"]))
        cells = _names(session, "cells")
    return render_template("coverage/worklist.html", entry=entry, cell_names=cells, stale_days=stale_days)


def _as_of() -> date:
    value = request.args.get("as_of")
    if not value:
        return today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"`as_of` must be a date like 2026-06-01, got {value!r}") from None
