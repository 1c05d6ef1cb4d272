"""Likely duplicates flagged at intake (same category, within 50 m and 24 h) and the merge action."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pyproj import Geod
from sqlalchemy import select

from gridmap.core import Gridmap
from gridmap.errors import InvalidInput, NotFound
from gridmap.issues.workflow import IllegalTransition, allowed_actions, apply_action, load_issue
from gridmap.storage.models import Issue, IssueTransition
from helpers import cell_point

BEIJING = ZoneInfo("Asia/Shanghai")
FIRST_REPORT = datetime(2025, 6, 2, 9, 30, tzinfo=BEIJING)
GEOD = Geod(ellps="WGS84")


@pytest.fixture
def origin(mini_geodata):
    return cell_point(mini_geodata, "460204001001006")


def east_of(point, metres: float) -> tuple[float, float]:
    lon, lat, _ = GEOD.fwd(point[0], point[1], 90, metres)
    return lon, lat


def report(gm, point, *, hours: float = 0, category: str = "E0102") -> Issue:
    record = {"lon": point[0], "lat": point[1], "category": category, "description": "暴露垃圾",
              "reported_at": FIRST_REPORT + timedelta(hours=hours)}
    return gm.intake.create(gm.db, record)


def act(gm, issue_id, action, *, when=FIRST_REPORT + timedelta(days=2), **params):
    with gm.db.session() as session:
        issue = load_issue(session, issue_id)
        apply_action(session, issue, action, actor="张调度", at=when, rules=gm.workflow_rules, **params)
    with gm.db.sessions() as session:
        return session.get(Issue, issue_id)


@pytest.mark.parametrize(
    "metres, hours, category, first_status, flagged",
    [
        (30, 2, "E0102", "reported", True),  # the textbook case
        (49, 23.5, "E0102", "reported", True),  # just inside both limits
        (30, 0, "E0102", "reported", True),  # the same moment: the later id is the duplicate
        (55, 2, "E0102", "reported", False),  # too far
        (30, 24.5, "E0102", "reported", False),  # too late
        (30, -1, "E0102", "reported", False),  # reported before the other: that one is the later report
        (30, 2, "E0103", "reported", False),  # another category
        (30, 2, "E0102", "rejected", False),  # the other was not registered as a case
        (30, 2, "E0102", "closed", True),  # a closed case reported again is still worth a look
    ],
)
def test_a_likely_duplicate_is_flagged_at_intake(gm, origin, metres, hours, category, first_status, flagged):
    first = report(gm, origin)
    if first_status != "reported":
        with gm.db.session() as session:
            session.get(Issue, first.id).status = first_status
    second = report(gm, east_of(origin, metres), hours=hours, category=category)
    assert second.possible_duplicate_of == (first.id if flagged else None)
    with gm.db.sessions() as session:
        assert session.get(Issue, first.id).possible_duplicate_of is None


def test_the_candidate_is_an_original_then_the_nearest(gm, origin):
    far = report(gm, east_of(origin, 40))
    near = report(gm, east_of(origin, 10), hours=1)  # flagged as a duplicate of `far` (30 m apart)
    assert near.possible_duplicate_of == far.id
    third = report(gm, origin, hours=2)  # 10 m from `near`, 40 m from `far`: `far` is the original
    assert third.possible_duplicate_of == far.id
    with gm.db.session() as session:
        session.get(Issue, far.id).status = "rejected"
    fourth = report(gm, origin, hours=3)  # no original left: the nearest flagged one
    assert fourth.possible_duplicate_of == third.id


def test_distance_and_window_are_settings(settings, gm, origin):
    wide = Gridmap({**settings, "duplicate_distance_m": 100, "duplicate_hours": 48})
    try:
        first = wide.intake.create(wide.db, {"lon": origin[0], "lat": origin[1], "category": "E0102",
                                             "description": "x", "reported_at": FIRST_REPORT})
        point = east_of(origin, 80)
        second = wide.intake.create(wide.db, {"lon": point[0], "lat": point[1], "category": "E0102", "description": "x",
                                              "reported_at": FIRST_REPORT + timedelta(hours=40)})
        assert second.possible_duplicate_of == first.id
    finally:
        wide.close()
    off = Gridmap({**settings, "duplicate_distance_m": 0})
    try:
        third = off.intake.create(off.db, {"lon": origin[0], "lat": origin[1], "category": "E0102", "description": "x",
                                           "reported_at": FIRST_REPORT})
        assert third.possible_duplicate_of is None  # 0 m switches the check off
    finally:
        off.close()


def test_duplicates_within_one_import_are_flagged(gm, origin):
    point = east_of(origin, 20)
    records = [
        {"lon": origin[0], "lat": origin[1], "category": "E0102", "description": "x",
         "reported_at": "2025-06-02 09:30"},
        {"lon": point[0], "lat": point[1], "category": "E0102", "description": "x", "reported_at": "2025-06-02 10:30"},
        {"lon": point[0], "lat": point[1], "category": "E0505", "description": "x", "reported_at": "2025-06-02 10:30"},
    ]
    ids = gm.intake.import_records(gm.db, records).issue_ids
    with gm.db.sessions() as session:
        assert [session.get(Issue, i).possible_duplicate_of for i in ids] == [None, ids[0], None]


def test_merge_closes_the_duplicate_into_the_original(gm, origin):
    original = report(gm, origin)
    duplicate = report(gm, east_of(origin, 20), hours=1)
    act(gm, original.id, "register")
    merged = act(gm, duplicate.id, "merge", comment="重复上报", original=original.id)
    assert (merged.status, merged.duplicate_of,
            merged.closed_at) == ("closed", original.id, FIRST_REPORT + timedelta(days=2))
    assert allowed_actions(merged) == ["revisit", "reopen"]
    with gm.db.sessions() as session:
        record = session.scalars(select(IssueTransition).where(IssueTransition.issue_id == duplicate.id)
                                 .order_by(IssueTransition.id.desc())).first()
    assert (record.action, record.from_status, record.to_status,
            record.details) == ("merge", "reported", "closed", {"original": original.id})
    # a merged issue is never again a duplicate candidate; its original is
    later = report(gm, east_of(origin, 20), hours=2)
    assert later.possible_duplicate_of == original.id
    # merging into a merged issue merges into its original
    again = act(gm, later.id, "merge", comment="重复", original=duplicate.id)
    assert again.duplicate_of == original.id


@pytest.mark.parametrize(
    "target, error, message",
    [
        ("self", InvalidInput, "cannot merge issue {dup} into itself"),
        ("unknown", NotFound, "no issue has the id 999"),
        ("rejected", IllegalTransition, "was rejected; merge into a registered case instead"),
        ("one", InvalidInput, "original must be an issue id"),  # a string is not an id
    ],
)
def test_merge_refusals(gm, origin, target, error, message):
    original = report(gm, origin)
    duplicate = report(gm, east_of(origin, 20), hours=1)
    if target == "rejected":
        act(gm, original.id, "reject", comment="不属实")
    into = {"self": duplicate.id, "unknown": 999, "rejected": original.id, "one": "one"}[target]
    with pytest.raises(error) as refused:
        act(gm, duplicate.id, "merge", comment="重复", original=into)
    assert message.format(dup=duplicate.id) in refused.value.message
    with gm.db.sessions() as session:
        assert session.get(Issue, duplicate.id).status == "reported"


def test_a_handled_case_is_not_merged(gm, origin):
    original = report(gm, origin)
    duplicate = report(gm, east_of(origin, 20), hours=1)
    with gm.db.session() as session:
        session.get(Issue, duplicate.id).status = "handled"
    with pytest.raises(IllegalTransition, match="allowed actions from handled: check, rework, suspend"):
        act(gm, duplicate.id, "merge", comment="重复", original=original.id)
