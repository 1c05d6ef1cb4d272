"""The dispatcher's page (调度台): the queue with a small map, and the workflow actions as forms.

``GET /dispatch`` shows the queue (:mod:`gridmap.issues.queue`) filtered by ``area``,
``category``, ``status`` and ``source`` in the URL. Each issue carries a form per allowed action;
``POST /dispatch/issues/<id>`` applies it with :func:`gridmap.issues.workflow.apply_action` and
redirects back to the queue (303), or shows the queue again with the error and its 4xx status,
nothing changed.

The actor of every action is the logged-in user; every action form carries the session's CSRF
token (the ``action_form`` macro of ``templates/dispatcher/queue.html``), checked before any
view runs (:mod:`gridmap.web.auth`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import select

from gridmap.errors import Forbidden, GridmapError, InvalidInput, NotFound
from gridmap.issues.dispatch import suggest_assignees
from gridmap.issues.params import parse_integer
from gridmap.issues.query import IssueQuery
from gridmap.issues.queue import DEFAULT_LIMIT, REASONS, Queue, dispatch_queue
from gridmap.issues.states import (
    ACTION_PARAMS,
    ACTIONS,
    CLOCK_STOPPED_STATUSES,
    OPEN_STATUSES,
    REASON_REQUIRED,
    SOURCES,
    STATUSES,
)
from gridmap.issues.workflow import allowed_actions, apply_action, load_issue
from gridmap.labels import N_, SOURCE_LABELS, STATUS_LABELS
from gridmap.maps.dispatch import REASON_COLOURS, queue_map
from gridmap.maps.tiles import display_shift, tile_sources
from gridmap.storage.models import Area
from gridmap.web.api import core
from gridmap.web.auth import principal, requires, scope
from gridmap.web.headers import csp_nonce

blueprint = Blueprint("dispatcher", __name__)

#: The URL filters of the queue.
FILTERS = ("area", "category", "status", "source")
#: Button texts of the actions (the same Chinese names as gridmap.issues.states.ACTION_LABELS).
ACTION_TEXTS = {
    "register": N_("立案"), "reject": N_("不予立案"), "dispatch": N_("派遣"), "start": N_("签收处置"),
    "feedback": N_("处置反馈"), "check": N_("核查通过"), "rework": N_("返工"), "close": N_("结案"),
    "revisit": N_("回访"), "return": N_("退回"), "extend": N_("延期"), "suspend": N_("挂账"),
    "resume": N_("恢复"), "reopen": N_("重启"), "merge": N_("合并"),
}
REASON_TEXTS = {"overdue": N_("已超期"), "warning": N_("即将超期"), "to_dispatch": N_("待派遣"),
                "to_register": N_("待立案")}
SUGGESTIONS_SHOWN = 5


def _filters(source: Any) -> dict[str, str]:
    """The queue filters present in a mapping of request values."""
    return {name: str(source.get(name)).strip() for name in FILTERS if str(source.get(name) or "").strip()}


def _query(filters: dict[str, str]) -> IssueQuery:
    gm = core()
    return IssueQuery.parse(filters, categories=gm.categories, timezone_name=gm.timezone, access=scope())


def _english() -> bool:
    return str(get_locale() or "") == "en"


@blueprint.get("/dispatch")
@requires("issues:assign")
def queue():
    """The queue: unregistered, undispatched, due-soon and overdue issues by deadline, with a map."""
    filters = _filters(request.args)
    limit = parse_integer(request.args.get("limit"), "limit", DEFAULT_LIMIT, 1, 1000)
    done = _done_message(request.args.get("done"), request.args.get("action"))
    return _render_queue(filters, limit=limit, notice=done)


@blueprint.post("/dispatch/issues/<id:issue_id>")
@requires("issues:assign")
def act(issue_id: int):
    """Apply one workflow action from a queue form; back to the queue, or the queue with the error."""
    gm = core()
    form = request.form
    filters = _filters(dict(parse_qsl(form.get("filters", ""))))
    action = (form.get("action") or "").strip()
    try:
        if action not in ACTIONS:
            raise InvalidInput(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
        if not principal().may_take(action):
            raise Forbidden(f"role {principal().role} may not {action} issues")
        params = _action_params(action, form)
        with gm.db.session() as session:  # rolled back when the workflow refuses
            issue = load_issue(session, issue_id)
            if not scope().covers_issue(issue):
                raise NotFound(f"no issue has the id {issue_id} in your areas")
            apply_action(session, issue, action, actor=principal().label,
                         comment=form.get("comment"), rules=gm.workflow_rules, **params)
    except GridmapError as error:
        return _render_queue(filters, error=error, error_issue=issue_id), error.status
    return redirect(url_for("dispatcher.queue", **filters, done=issue_id, action=action), code=303)


def _action_params(action: str, form: Any) -> dict[str, Any]:
    """The action's parameters from the form (texts stripped, numbers parsed)."""
    accepted = ACTION_PARAMS.get(action, ())
    params: dict[str, Any] = {}
    if action == "dispatch":
        kind, _sep, name = (form.get("pick") or "").partition(":")
        if kind in ("department", "assignee") and name.strip():
            params[kind] = name.strip()
    for name in accepted:
        value = (form.get(name) or "").strip()
        if value:
            params[name] = value  # a typed name wins over the picked suggestion
    for name in ("satisfaction", "original"):
        if name in params:
            try:
                params[name] = int(params[name])
            except ValueError:
                raise InvalidInput(f"{name} must be a whole number, got {params[name]!r}") from None
    return params


def _done_message(issue: str | None, action: str | None) -> str | None:
    if not (issue and issue.isdigit() and action in ACTION_TEXTS):
        return None
    return _("案件 #%(id)s：%(action)s 已完成", id=issue, action=_(ACTION_TEXTS[action]))


def _render_queue(filters: dict[str, str], *, limit: int = DEFAULT_LIMIT, notice: str | None = None,
                  error: GridmapError | None = None, error_issue: int | None = None) -> str:
    gm = core()
    rules = gm.workflow_rules
    try:
        query = _query(filters)
    except GridmapError:
        if error is None:
            raise
        filters, query = {}, _query({})  # showing an action's error matters more than its filters
    now = datetime.now(UTC)
    with gm.db.sessions() as session:
        result: Queue = dispatch_queue(session, query, rules, now=now, limit=limit)
        for entry in result.entries:
            if "dispatch" in allowed_actions(entry.issue):
                entry.suggestions = suggest_assignees(
                    session, entry.issue, layers=gm.areas.layers, routing=gm.routing,
                    workload_m=gm.settings["suggestion_workload_m"], limit=SUGGESTIONS_SHOWN)
        names = dict(session.execute(select(Area.code, Area.name)).all())
    english = _english()
    categories = gm.categories

    def category_name(code: str) -> str:
        if code not in categories:
            return code
        category = categories.get(code)
        return (category.name_en or category.name_zh) if english else category.name_zh

    tz = ZoneInfo(gm.timezone)
    map_parts = queue_map(
        result.entries, gm.areas.layers, static_url=lambda path: url_for("static", filename=path),
        tiles=tile_sources(gm.settings.get("tiles"), gm.settings.get("tianditu_key")),
        shift=display_shift(gm.settings.get("tiles")),
        label=lambda e: f"#{e.issue.id} {category_name(e.issue.category)} · {_(REASON_TEXTS[e.reason])}",
        translate=_, script_nonce=csp_nonce(),
    )
    layers = gm.areas.layers
    streets = [(row.code, row.name,
                [(c.code, c.name) for c in layers.communities.itertuples() if c.parent_code == row.code])
               for row in layers.streets.sort_values("code").itertuples()]
    return render_template(
        "dispatcher/queue.html",
        queue=result,
        map=map_parts,
        filters=filters,
        filters_param=urlencode(filters),
        limit=limit,
        notice=notice,
        error=error,
        error_issue=error_issue,
        now=now,
        local=lambda moment: moment.astimezone(tz).strftime("%m-%d %H:%M") if moment else "—",
        remaining=lambda moment: _remaining(moment, now),
        area_name=lambda code: names.get(code, code),
        category_name=category_name,
        status_name=lambda status: _(STATUS_LABELS[status]) if status in STATUS_LABELS else status,
        source_name=lambda source: _(SOURCE_LABELS[source]) if source in SOURCE_LABELS else source,
        reason_name=lambda reason: _(REASON_TEXTS[reason]),
        reason_colours=REASON_COLOURS,
        reasons=REASONS,
        action_name=lambda action: _(ACTION_TEXTS.get(action, action)),
        actions_of=allowed_actions,
        reason_required=REASON_REQUIRED,
        district=layers.districts.iloc[0],
        streets=streets,
        category_groups=[(major, categories.children(major.code)) for major in categories.majors()],
        statuses=[s for s in STATUSES if s in OPEN_STATUSES - CLOCK_STOPPED_STATUSES],
        sources=SOURCES,
    )


def _remaining(deadline: datetime | None, now: datetime) -> str:
    """Time left before the deadline, or how late, in the largest sensible unit."""
    if deadline is None:
        return ""
    seconds = (deadline - now).total_seconds()
    amount = abs(seconds)
    if amount >= 86400:
        text = _("%(n)d 天", n=int(amount // 86400))
    elif amount >= 3600:
        text = _("%(n)d 小时", n=int(amount // 3600))
    else:
        text = _("%(n)d 分钟", n=max(1, int(amount // 60)))
    return _("超期 %(t)s", t=text) if seconds < 0 else _("剩余 %(t)s", t=text)
