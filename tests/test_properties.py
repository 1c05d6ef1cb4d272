"""Property tests: no sequence of workflow actions reaches an invalid state, and no geometry
input — valid, self-intersecting, degenerate, holed, huge, NaN/inf or projected — gets past the
checks invalid or causes anything but a GridmapError / 4xx.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyproj
import pytest
import shapely
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, shape
from sqlalchemy import func, select

from conftest import UTM, X0, Y0
from gridmap.errors import GridmapError, InvalidInput, NotFound
from gridmap.geo.layers import LEVELS, read_layer_set
from gridmap.geo.validate import validate_layer_set
from gridmap.interop.open311 import add_api_key
from gridmap.issues.states import ACTION_PARAMS, ACTIONS, CLOSED_STATUSES, MAX_EXTENSIONS, STATUSES, TRANSITIONS
from gridmap.issues.workflow import IllegalTransition, allowed_actions, apply_action, load_issue
from gridmap.storage.coverage import PatrolTrack
from gridmap.storage.models import Issue, IssueTransition

BEIJING = ZoneInfo("Asia/Shanghai")
_TO_WGS84 = pyproj.Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
LON, LAT = (round(v, 7) for v in _TO_WGS84.transform(X0 + 125, Y0 + 125))  # inside the mini district's first cell
REPORTED = datetime(2026, 3, 2, 9, 0, tzinfo=BEIJING)  # a Monday; the steps stay months before today
#: Function-scoped fixtures (one database per test) are shared by the examples on purpose: each example makes its own
#: issue.
SHARED_DB = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
#: GRIDMAP_PROPERTY_SCALE=10 searches ten times longer (the suite's default keeps each test well under 30 s).
SCALE = float(os.environ.get("GRIDMAP_PROPERTY_SCALE", "1"))
#: Each example works on the database: no shrinking, so that a failure is reported in seconds, not minutes.
NO_SHRINK = (Phase.explicit, Phase.generate)


def examples(count: int) -> int:
    """How many examples a test runs: ``count`` times GRIDMAP_PROPERTY_SCALE."""
    return max(1, round(count * SCALE))


# --- workflow: the invariants -------------------------------------------------------------------------

STAGES = ("registered_at", "dispatched_at", "handled_at", "checked_at", "closed_at", "revisited_at")
#: Stage times set in each status an issue can rest in (suspended: those of the status it was suspended from).
STAGES_SET: dict[str, set[str]] = {
    "reported": set(),
    "rejected": set(),
    "registered": {"registered_at"},
    "dispatched": {"registered_at", "dispatched_at"},
    "in_progress": {"registered_at", "dispatched_at"},
    "handled": {"registered_at", "dispatched_at", "handled_at"},
    "checked": {"registered_at", "dispatched_at", "handled_at", "checked_at"},
}


def issue_state(issue: Issue) -> dict[str, Any]:
    """Every column of an issue, to tell whether a refused action changed it."""
    return {column.key: getattr(issue, column.key) for column in Issue.__table__.columns}


def check_invariants(gm, issue_id: int) -> None:
    """The stored issue is in a known state that its own history explains, with consistent times and counters."""
    with gm.db.sessions() as session:
        issue = session.get(Issue, issue_id)
        history = session.scalars(select(IssueTransition).where(IssueTransition.issue_id == issue_id)
                                  .order_by(IssueTransition.id)).all()
        assert issue.status in STATUSES
        assert 0 <= issue.extension_count <= MAX_EXTENSIONS

        # The history replays from the report to the current status, each step allowed where it was taken.
        first, *steps = history
        assert (first.action, first.from_status, first.to_status) == ("report", None, "reported")
        status, suspended_from, extensions, reworks, last_at = "reported", None, 0, 0, first.at
        for step in steps:
            assert step.from_status == status and status in TRANSITIONS[step.action], (step.action, status)
            assert step.at >= last_at, "the history is in time order"
            expected = suspended_from if step.action == "resume" else TRANSITIONS[step.action][status]
            assert step.to_status == expected, (step.action, status, step.to_status)
            suspended_from = status if step.action == "suspend" else suspended_from
            extensions = 0 if step.action == "reopen" else extensions + (step.action == "extend")
            reworks += step.action == "rework"
            assert extensions <= MAX_EXTENSIONS
            status, last_at = step.to_status, step.at
        assert status == issue.status
        assert issue.rework_count == reworks
        assert issue.extension_count == extensions

        # Times agree with the status: closed_at iff closed, suspended_at iff suspended, stages reached and no more.
        stamped = {stage for stage in STAGES if getattr(issue, stage) is not None}
        assert (issue.closed_at is not None) == (issue.status in CLOSED_STATUSES)
        assert (issue.revisited_at is not None) == (issue.status == "revisited")
        assert (issue.suspended_at is not None) == (issue.status == "suspended") == (issue.suspended_from is not None)
        resting = issue.suspended_from if issue.status == "suspended" else issue.status
        if resting in STAGES_SET:
            assert stamped == STAGES_SET[resting], (issue.status, resting, stamped)
        if issue.status == "suspended":
            assert issue.sla_state in ("paused", None)
        if issue.status in CLOSED_STATUSES | {"rejected"}:
            assert issue.sla_state is None
        for stage in stamped:
            assert getattr(issue, stage) >= issue.reported_at


# --- workflow: the actions ------------------------------------------------------------------------------

#: The closed loop without side paths.
MAIN_LINE = ("register", "dispatch", "start", "feedback", "check", "close", "revisit")
_REASONS = st.sampled_from(["现场核实后处理"] * 6 + [None, "", "   "])
_PARAMS: dict[str, st.SearchStrategy] = {
    "dispatch": st.fixed_dictionaries(
        {},
        optional={
            "department": st.sampled_from(["环卫所", "城管中队", "", None]),
            "assignee": st.sampled_from(["李网格", None, ""]),
        },
    ),
    "revisit": st.fixed_dictionaries(
        {}, optional={"satisfaction": st.sampled_from([1, 2, 3, 4, 5, 5, 0, 6, -1, "5", True, 4.0])}
    ),
    "extend": st.fixed_dictionaries({}, optional={"approver": st.sampled_from(["王主任", "王主任", "", None])}),
    "merge": st.fixed_dictionaries(
        {},
        optional={"original": st.sampled_from(["original", "original", "itself", "rejected", "missing", "text", True])},
    ),
}
_STRAY = st.sampled_from([{}, {}, {}, {}, {"satisfaction": 5}, {"department": "环卫所"}, {"approver": "王主任"}])


def _resolve(params: dict[str, Any], ids: dict[str, int], issue_id: int) -> dict[str, Any]:
    """Placeholders of ``merge``'s original replaced by real ids (or by values that are no id)."""
    if "original" in params and isinstance(params["original"], str):
        params["original"] = {"original": ids["original"], "itself": issue_id, "rejected": ids["rejected"],
                              "missing": 2**31 - 2, "text": str(ids["original"])}[params["original"]]
    return params


def _make_issue(gm, reported: datetime = REPORTED, category: str = "E0102") -> int:
    return gm.intake.create(gm.db, {"category": category, "description": "路边暴露垃圾", "lon": LON, "lat": LAT,
                                    "reported_at": reported}).id


@pytest.fixture
def fixed_issues(gm) -> dict[str, int]:
    """An original to merge duplicates into, and a rejected report (merging into it is refused)."""
    original, rejected = _make_issue(gm), _make_issue(gm)
    with gm.db.session() as session:
        apply_action(session, load_issue(session, rejected), "reject", actor="p", comment="不属实",
                     at=REPORTED + timedelta(minutes=1), rules=gm.workflow_rules)
    return {"original": original, "rejected": rejected}


@settings(max_examples=examples(80), deadline=None, database=None, suppress_health_check=SHARED_DB, phases=NO_SHRINK)
@given(data=st.data(), category=st.sampled_from(["E0102", "C0101", "E0709"]))
def test_no_sequence_of_actions_reaches_an_invalid_state(gm, fixed_issues, data, category):
    # E0102 counts working hours, C0101 continuous hours, E0709 calendar days.
    issue_id = _make_issue(gm, category=category)
    last_step = REPORTED
    for _ in range(data.draw(st.integers(1, 30), label="steps")):
        with gm.db.session() as session:
            issue = load_issue(session, issue_id)
            allowed = allowed_actions(issue)
            # Half the time the main line's next action (to get deep into the workflow), mostly an allowed
            # one, sometimes any action at all.
            pick = data.draw(st.integers(0, 9), label="pick")
            forward = [a for a in MAIN_LINE if a in allowed]
            pool = list(ACTIONS) if pick == 0 or not allowed else forward if pick <= 5 and forward else allowed
            action = data.draw(st.sampled_from(pool), label="action")
            params = data.draw(_PARAMS.get(action, st.just({})), label="params") | data.draw(_STRAY, label="stray")
            params = _resolve(dict(params), fixed_issues, issue_id)
            at = last_step + timedelta(minutes=data.draw(st.integers(-120, 3 * 24 * 60), label="minutes later"))
            before, steps_before = issue_state(issue), _steps(session, issue_id)
            try:
                apply_action(session, issue, action, actor="属性测试", comment=data.draw(_REASONS, label="comment"),
                             at=at, rules=gm.workflow_rules, **params)
            except (IllegalTransition, InvalidInput, NotFound) as refused:
                # Refused: nothing changed, not even in the session (apply_to_issues relies on that).
                assert issue_state(issue) == before, f"{action} was refused ({refused.message}) but changed the issue"
                assert _steps(session, issue_id) == steps_before
                session.rollback()
            else:
                assert action in allowed, f"{action} succeeded from {before['status']}; allowed: {allowed}"
                assert at >= last_step and _steps(session, issue_id) == steps_before + 1
                last_step = at
        check_invariants(gm, issue_id)


def _steps(session, issue_id: int) -> int:
    return session.scalar(select(func.count()).select_from(IssueTransition).where(IssueTransition.issue_id == issue_id))


_JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=True),
                         st.text(max_size=12), st.lists(st.integers(), max_size=2))
_TIMES = st.sampled_from(["2026-03-02T10:00:00+08:00", "2026-03-03 09:00", "2026-02-30T10:00:00", "2999-01-01T00:00:00",
                          "0001-01-01T00:00:00", "yesterday", "", None])
_JUNK_BODY = st.fixed_dictionaries(
    {"action": st.one_of(st.sampled_from(ACTIONS), st.sampled_from(["", "REGISTER", "report", "teleport"]),
                         _JSON_VALUES)},
    optional={"comment": st.one_of(st.just("现场核实"), _JSON_VALUES), "at": st.one_of(_TIMES, _JSON_VALUES),
              "actor": _JSON_VALUES, **{name: _JSON_VALUES for params in ACTION_PARAMS.values() for name in params}},
)
_SENSIBLE_PARAMS = {"dispatch": {"department": "环卫所"}, "extend": {"approver": "王主任"},
                    "revisit": {"satisfaction": 4}}
#: Mostly what a client would send (an action of the main line or a side path, with its reason and parameters).
_TRANSITION_BODY = st.one_of(
    st.sampled_from([{"action": action, "comment": "现场核实", **_SENSIBLE_PARAMS.get(action, {})}
                     for action in (*MAIN_LINE, *MAIN_LINE, *ACTIONS)]),
    st.sampled_from([{"action": action, "comment": "现场核实",
                      **_SENSIBLE_PARAMS.get(action, {})} for action in MAIN_LINE]),
    _JUNK_BODY,
)


@settings(max_examples=examples(60), deadline=None, database=None, suppress_health_check=SHARED_DB, phases=NO_SHRINK)
@given(bodies=st.lists(_TRANSITION_BODY, min_size=1, max_size=10))
def test_the_transitions_api_never_answers_a_server_error(client, gm, bodies):
    issue_id = _make_issue(gm)
    for body in bodies:
        response = client.post(f"/api/v1/issues/{issue_id}/transitions", data=json.dumps(body),
                               content_type="application/json")
        assert response.status_code in (201, 400, 404,
                                        409), (body, response.status_code, response.get_data(as_text=True))
        event(f"status {response.status_code}")
        if response.status_code >= 400:
            assert response.get_json()["error"]["message"]
        check_invariants(gm, issue_id)


# --- geometry: strategies ----------------------------------------------------------------------------

_FINITE = st.floats(allow_nan=False, allow_infinity=False)
_WEIRD = st.sampled_from([math.nan, math.inf, -math.inf, 1e300, -1e300, 1e-300, 0.0, 180.0, -180.0, 90.0, -90.0,
                          180.0000001, 420000.0, 2015000.0])


@st.composite
def rectangles(draw, projected: bool = False) -> list[list[float]]:
    """A closed rectangle ring: lon/lat degrees anywhere (or UTM metres), a millimetre to several degrees across."""
    if projected:
        x, y, size = draw(st.floats(166000, 834000)), draw(st.floats(0, 9_300_000)), draw(st.floats(1, 50_000))
    else:
        x, y = draw(st.floats(-180, 179.9)), draw(st.floats(-90, 89.9))
        size = draw(st.floats(1e-8, min(10.0, 180 - x, 90 - y)))
    w, h = size, size * draw(st.floats(0.2, 5))
    return [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]


@st.composite
def geometries(draw) -> Any:
    """A GeoJSON geometry of one of the kinds users send, or raw junk where the coordinates should be."""
    kind = draw(st.sampled_from(["valid", "valid", "holed", "bow-tie", "degenerate", "spike", "huge", "nan",
                                 "projected", "multi", "junk", "short"]))
    ring = draw(rectangles(projected=kind == "projected"))
    if kind in ("valid", "projected"):
        return {"type": "Polygon", "coordinates": [ring]}
    if kind == "holed":
        (x0, y0), (x1, _), (_, y1) = ring[0], ring[1], ring[2]
        inset = draw(st.floats(-0.5, 0.45))  # negative: the hole sticks out of the shell
        hx0, hx1 = x0 + (x1 - x0) * inset, x1 - (x1 - x0) * inset
        hy0, hy1 = y0 + (y1 - y0) * inset, y1 - (y1 - y0) * inset
        return {"type": "Polygon", "coordinates": [ring, [[hx0, hy0], [hx0, hy1], [hx1, hy1], [hx1, hy0], [hx0, hy0]]]}
    if kind == "bow-tie":
        ring[1], ring[2] = ring[2], ring[1]
        return {"type": "Polygon", "coordinates": [ring]}
    if kind == "degenerate":  # every vertex on one line, or one point repeated
        x, y = ring[0]
        line = [[x, y], [x + 1e-3, y + 1e-3], [x + 2e-3, y + 2e-3], [x, y]] if draw(st.booleans()) else [[x, y]] * 4
        return {"type": "Polygon", "coordinates": [line]}
    if kind == "spike":  # a ring that runs out and back along the same line
        (x0, y0), (x1, _) = ring[0], ring[1]
        return {"type": "Polygon",
                "coordinates": [[[x0, y0], [x1, y0], [x0 + (x1 - x0) * 2, y0], [x1, y0], [x1, y0 + 1e-3], [x0, y0]]]}
    if kind in ("huge", "nan"):
        index = draw(st.integers(0, 3))
        ring[index] = [draw(_WEIRD), draw(_WEIRD)] if kind == "huge" else [math.nan, ring[index][1]]
        ring[-1] = ring[0]
        return {"type": "Polygon", "coordinates": [ring]}
    if kind == "multi":
        return {"type": "MultiPolygon", "coordinates": [[ring], [draw(rectangles())]]}
    if kind == "short":
        return {"type": "Polygon", "coordinates": [ring[:draw(st.integers(0, 3))]]}
    return {"type": draw(st.sampled_from(["Polygon", "MultiPolygon", "LineString", "Point", "Nonsense"])),
            "coordinates": draw(st.recursive(st.one_of(_FINITE, _WEIRD, st.text(max_size=3)),
                                             lambda inner: st.lists(inner, max_size=4), max_leaves=12))}


def _collection(level: str, geometry: Any) -> dict:
    codes = {"districts": "460204", "streets": "460204001", "communities": "460204001001", "cells": "460204001001001"}
    properties = {"code": codes[level], "name": level}
    if level != "districts":
        properties["parent_code"] = codes[level][:-3] if level != "streets" else "460204"
    return {"type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": properties, "geometry": geometry}]}


# --- geometry: layer files ---------------------------------------------------------------------------


@settings(max_examples=examples(150), deadline=None, database=None,
          suppress_health_check=SHARED_DB)  # no database: shrinks
@given(geometry=geometries())
def test_layer_validation_accepts_only_valid_polygons(tmp_path, geometry):
    # One polygon as district, street, community and cell: a layer set whose only question is the geometry.
    folder = tmp_path / "layers"
    folder.mkdir(exist_ok=True)
    for level in LEVELS:
        (folder / f"{level}.geojson").write_text(json.dumps(_collection(level, geometry)), encoding="utf-8")
    try:
        layers, problems = read_layer_set(folder)
        problems += validate_layer_set(layers)
    except GridmapError:
        event("refused as a whole")
        return  # refused as a whole, with a message
    event("valid" if not problems else "problems listed")
    assert all(p.message for p in problems)
    if not problems:
        for level in LEVELS:
            (polygon,) = layers.level(level).geometry.values
            assert polygon.is_valid and not polygon.is_empty, shapely.is_valid_reason(polygon)
            minx, miny, maxx, maxy = polygon.bounds
            assert -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90


# --- geometry: the APIs ----------------------------------------------------------------------------------

@pytest.fixture
def open311_key(gm) -> str:
    with gm.db.session() as session:
        return add_api_key(session, "properties")


#: Points over the mini district (4 km × 1.5 km) and around it, in WGS84.
_DISTRICT_POINT = st.tuples(st.floats(-0.003, 0.04).map(lambda d: LON + d),
                            st.floats(-0.003, 0.014).map(lambda d: LAT + d))
_COORDINATE = st.one_of(st.floats(-180, 180), st.floats(), _WEIRD,
                        st.floats(-0.01, 0.01).map(lambda d: LON + d), st.floats(-0.01, 0.01).map(lambda d: LAT + d))


@st.composite
def track_points(draw) -> list[list[float]]:
    """A patrol track's coordinates: mostly a walk near the district, sometimes swapped, projected, huge or NaN."""
    kind = draw(st.sampled_from(["walk", "walk", "swapped", "projected", "random", "crossing"]))
    n = draw(st.integers(0, 8))
    if kind == "random":
        return [[draw(_COORDINATE), draw(_COORDINATE)] for _ in range(n)]
    steps = [(draw(st.floats(-0.003, 0.003)), draw(st.floats(-0.003, 0.003))) for _ in range(n)]
    points = [[LON + sum(dx for dx, _ in steps[:i + 1]), LAT + sum(dy for _, dy in steps[:i + 1])] for i in range(n)]
    if kind == "crossing":  # back and forth over itself
        points = points + points[::-1] + points
    if kind == "swapped":
        points = [[y, x] for x, y in points]
    if kind == "projected":
        to_utm = pyproj.Transformer.from_crs("EPSG:4326", UTM, always_xy=True)
        points = [list(to_utm.transform(x, y)) for x, y in points]
    return points


_WORKERS = itertools.count(1)


@settings(max_examples=examples(80), deadline=None, database=None, suppress_health_check=SHARED_DB, phases=NO_SHRINK)
@given(points=track_points(), as_points=st.booleans(), crs=st.sampled_from([None, None, "EPSG:32649", "gcj02", "bd09"]))
@example(points=[[LON, LAT], [21.0, 0.0], [LON + 0.001, LAT]], as_points=False,
         crs=None)  # 90° from the zone: inf metres
@example(points=[[LON, LAT], [0.0, 0.0], [LON + 0.001, LAT]], as_points=False, crs=None)  # a GPS fix at null island
def test_patrol_tracks_of_any_shape_are_stored_valid_or_refused(client, gm, points, as_points, crs):
    start = datetime(2026, 6, 3, 9, 0, tzinfo=BEIJING)
    worker = f"网格员{next(_WORKERS)}"  # a worker of its own: examples do not collide as duplicates of each other
    times = [(start + timedelta(minutes=i)).isoformat() for i in range(len(points))]
    if as_points:  # timed Points, one track per worker and day
        features = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": xy},
                     "properties": {"worker": worker, "time": t}} for xy, t in zip(points, times)]
    else:
        features = [{"type": "Feature", "geometry": {"type": "LineString", "coordinates": points},
                     "properties": {"worker": worker, "times": times}}]
    with gm.db.sessions() as session:
        stored_before = session.scalar(select(func.count()).select_from(PatrolTrack))
    response = client.post("/api/v1/coverage/patrols",
                           query_string={"filename": "track.geojson", **({"crs": crs} if crs else {})},
                           data=json.dumps({"type": "FeatureCollection", "features": features}),
                           content_type="application/json")
    assert response.status_code in (200, 400), response.get_data(as_text=True)[:500]
    event(f"status {response.status_code}")
    with gm.db.sessions() as session:
        tracks = session.scalars(select(PatrolTrack).order_by(PatrolTrack.id).offset(stored_before)).all()
    if response.status_code == 400:
        assert response.get_json()["error"]["message"]
        assert not tracks, "a refused upload stored tracks"
        return
    assert tracks, "an accepted upload stored no track"
    for stored in tracks:  # accepted: lon/lat in range; a valid line unless the worker stood still
        assert all(-180 <= x <= 180 and -90 <= y <= 90 for x, y, _ in stored.points)
        distinct = list(dict.fromkeys((x, y) for x, y, _ in stored.points))
        assert len(distinct) < 2 or LineString(distinct).is_valid


_BBOX_NUMBER = st.one_of(st.floats(-200, 200), _WEIRD, st.integers(-400, 400))
_BBOX = st.one_of(
    st.tuples(st.floats(-180, 180), st.floats(-180, 180), st.floats(-90, 90), st.floats(-90, 90)).map(
        lambda v: f"{min(v[:2])},{min(v[2:])},{max(v[:2])},{max(v[2:])}"),  # well-formed, anywhere
    st.tuples(st.floats(0, 0.04), st.floats(0, 0.04), st.floats(-0.005, 0.015), st.floats(-0.005, 0.015)).map(
        lambda v: f"{LON + min(v[:2])},{LAT + min(v[2:])},{LON + max(v[:2])},{LAT + max(v[2:])}"),  # over the district
    st.lists(_BBOX_NUMBER, min_size=4, max_size=4).map(lambda v: ",".join(map(str, v))),
    st.lists(_BBOX_NUMBER, min_size=0, max_size=7).map(lambda v: ",".join(map(str, v))),
    st.text(max_size=20),
)
BBOX_ENDPOINTS = ["/ogc/collections/cells/items", "/ogc/collections/issues/items", "/api/v1/maps/issues",
                  "/api/v1/issues", "/api/v1/export/issues.geojson"]


@settings(max_examples=examples(120), deadline=None, database=None, suppress_health_check=SHARED_DB, phases=NO_SHRINK)
@given(path=st.sampled_from(BBOX_ENDPOINTS), bbox=_BBOX)
def test_bbox_parameters_are_answered_or_refused_never_a_server_error(client, gm, path, bbox):
    response = client.get(path, query_string={"bbox": bbox})
    assert response.status_code in (200, 400), (path, bbox, response.status_code, response.get_data(as_text=True)[:300])
    event(f"status {response.status_code}")
    if response.status_code == 400:
        assert response.get_json()["code" if path.startswith("/ogc") else "error"]
    elif path == "/ogc/collections/cells/items" and len(bbox.split(",")) == 4:  # what is answered lies in the box
        box = shapely.box(*map(float, bbox.split(",")))
        for feature in response.get_json()["features"]:
            geometry = shape(feature["geometry"])
            assert geometry.is_valid and geometry.intersects(box)


@settings(max_examples=examples(120), deadline=None, database=None, suppress_health_check=SHARED_DB, phases=NO_SHRINK)
@given(point=st.one_of(_DISTRICT_POINT, _DISTRICT_POINT, st.tuples(_COORDINATE, _COORDINATE)),
       crs=st.sampled_from([None, None, "EPSG:32649", "EPSG:3857", "gcj02", "bd09", "4490"]),
       endpoint=st.sampled_from(["issues", "households", "open311"]))
def test_points_anywhere_are_stored_in_a_cell_or_refused(client, gm, open311_key, point, crs, endpoint):
    lon, lat = point
    with gm.db.sessions() as session:
        issues_before = session.scalar(select(func.count()).select_from(Issue))
    if endpoint == "issues":
        body = {"category": "E0102", "description": "x", "lon": lon, "lat": lat, **({"crs": crs} if crs else {})}
        response = client.post("/api/v1/issues", data=json.dumps(body), content_type="application/json")
        assert response.status_code in (201, 400, 422), response.get_data(as_text=True)[:300]
    elif endpoint == "households":
        body = {"address": "春园路1号", "kind": "ordinary", "lon": lon, "lat": lat, **({"crs": crs} if crs else {})}
        response = client.post("/api/v1/coverage/households", data=json.dumps(body), content_type="application/json")
        assert response.status_code in (201, 400, 422), response.get_data(as_text=True)[:300]
    else:
        response = client.post("/open311/v2/requests.json", data={"api_key": open311_key, "service_code": "E0102",
                                                                  "lat": repr(lat), "long": repr(lon)})
        assert response.status_code in (201, 400), response.get_data(as_text=True)[:300]
    event(f"{endpoint}: status {response.status_code}")
    if response.status_code == 201 and endpoint != "households":
        with gm.db.sessions() as session:
            issue = session.scalars(select(Issue).order_by(Issue.id.desc())).first()
            assert issue.cell_code and -180 <= issue.lon <= 180 and -90 <= issue.lat <= 90
            cells = gm.areas.layers.cells
            (cell,) = cells.geometry.values[cells["code"].to_numpy() == issue.cell_code]
            assert cell.distance(shapely.Point(issue.lon, issue.lat)) < 1e-6  # stored to 7 decimals, ~1 cm
    elif response.status_code >= 400:
        with gm.db.sessions() as session:
            assert session.scalar(select(func.count()).select_from(Issue)) == issues_before
