"""The one parser of each kind of query parameter (gridmap.issues.params, gridmap.dates.parse_period)."""

from __future__ import annotations

from datetime import date

import pytest

from gridmap.dates import parse_period
from gridmap.errors import InvalidInput
from gridmap.issues.params import (
    AREA_COLUMNS,
    LEVEL_COLUMNS,
    parse_bbox,
    parse_page,
    parse_paging,
    parse_statuses,
)


def test_bbox_is_west_south_east_north_edges_may_meet_and_the_globe_clips():
    assert parse_bbox(None) is None and parse_bbox("") is None
    assert parse_bbox("109.4,18.2,109.5,18.3") == (109.4, 18.2, 109.5, 18.3)
    assert parse_bbox("109.4,18.2,109.4,18.3") == (109.4, 18.2, 109.4, 18.3)  # a line
    assert parse_bbox("109.4,18.2,0,109.5,18.3,100") == (109.4, 18.2, 109.5, 18.3)  # 3D: heights ignored
    assert parse_bbox("-200,-95,200,95") == (-180.0, -90.0, 180.0, 90.0)  # a view wider than the world
    for bad, message in [("1,2,3", "four numbers"), ("a,b,c,d", "four numbers"), ("1,2,nan,4", "four numbers"),
                         ("3,2,1,4", "west < east"), ("1,4,3,2", "south < north")]:
        with pytest.raises(InvalidInput, match=message):
            parse_bbox(bad)


def test_paging_bounds():
    assert parse_paging(None, None, default_limit=50, max_limit=1000) == (50, 0)
    assert parse_paging("7", " 14 ", default_limit=50, max_limit=1000) == (7, 14)
    with pytest.raises(InvalidInput, match="limit must be from 1 to 1000"):
        parse_paging("0", None, default_limit=50, max_limit=1000)
    with pytest.raises(InvalidInput, match="offset must be from 0 to 2147483647"):
        parse_paging(None, "-1", default_limit=50, max_limit=1000)
    assert parse_page("3", "10", max_size=1000) == (10, 20)  # page 3 of 10: skip 20


def test_one_period_rule():
    assert parse_period(None, None) == (None, None)  # a filter: open at both ends
    today = date(2026, 6, 30)
    assert parse_period(None, None, today=today) == (date(2026, 6, 1), today)  # the last 30 days
    assert parse_period(None, "2026-03-31", today=today, default_start="year") == (date(2026, 1, 1), date(2026, 3, 31))
    for today_or_none in (None, today):
        with pytest.raises(InvalidInput, match="swap them"):
            parse_period("2026-06-05", "2026-06-01", today=today_or_none)


def test_status_groups_and_levels_have_one_definition():
    assert set(parse_statuses("open")) == {"reported", "registered", "dispatched", "in_progress", "handled",
                                           "checked", "suspended"}
    assert set(parse_statuses("closed")) == {"closed", "revisited"}
    assert parse_statuses("reported,reported") == ("reported",)
    assert list(LEVEL_COLUMNS) == ["districts", "streets", "communities", "cells"]
    assert {length: column.key for length, column in AREA_COLUMNS.items()} == {
        6: "district_code", 9: "street_code", 12: "community_code", 15: "cell_code"}
