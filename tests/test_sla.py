"""Deadlines: the holiday calendar, the four time-limit kinds, elapsed working time, SLA state.

Calendar facts used below (State Council notices for 2025 and 2026):
- 2025-09-26 Fri (work), 09-27 Sat (off), 09-28 Sun (make-up workday), 09-29 Mon, 09-30 Tue (work),
  10-01 Wed … 10-08 Wed (National Day + Mid-Autumn, off), 10-09 Thu (work), 10-11 Sat (make-up).
- 2025-04-25 Fri (work), 04-26 Sat (off), 04-27 Sun (make-up), 05-01 Thu … 05-05 Mon (Labour Day, off).
- 2025-01-01 Wed (New Year's Day, off).
- 2026-02-13 Fri (work), 02-14 Sat (make-up), 02-15 Sun … 02-23 Mon (Spring Festival, off).
- 2025-03-03 is an ordinary Monday.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from gridmap.errors import InvalidInput
from gridmap.issues.sla import (
    BUNDLED_HOLIDAYS,
    TimeLimitKind,
    WorkingCalendar,
    deadline,
    parse_time_limit_kind,
    sla_state,
    working_time_between,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    """A Beijing-time moment from 'YYYY-MM-DD HH:MM'."""
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    return WorkingCalendar.load()


# ---------------------------------------------------------------------------------------------
# The bundled holiday calendar

# The State Council notices, as published: (first day off, last day off) blocks and make-up workdays.
NOTICES = {
    # 国务院办公厅关于2025年部分节假日安排的通知 (国办发明电〔2024〕12号, 2024-11-12)
    2025: (
        [("2025-01-01", "2025-01-01"), ("2025-01-28", "2025-02-04"), ("2025-04-04", "2025-04-06"),
         ("2025-05-01", "2025-05-05"), ("2025-05-31", "2025-06-02"), ("2025-10-01", "2025-10-08")],
        ["2025-01-26", "2025-02-08", "2025-04-27", "2025-09-28", "2025-10-11"],
    ),
    # 国务院办公厅关于2026年部分节假日安排的通知 (2025-11-04)
    2026: (
        [("2026-01-01", "2026-01-03"), ("2026-02-15", "2026-02-23"), ("2026-04-04", "2026-04-06"),
         ("2026-05-01", "2026-05-05"), ("2026-06-19", "2026-06-21"), ("2026-09-25", "2026-09-27"),
         ("2026-10-01", "2026-10-07")],
        ["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"],
    ),
    # No notice yet: the 13 statutory days of 《全国年节及纪念日放假办法》 (2024 amendment) only.
    # 除夕 2027-02-05, 正月初一–初三 02-06…08; 清明 04-05; 端午 06-09; 中秋 09-15.
    2027: (
        [("2027-01-01", "2027-01-01"), ("2027-02-05", "2027-02-08"), ("2027-04-05", "2027-04-05"),
         ("2027-05-01", "2027-05-02"), ("2027-06-09", "2027-06-09"), ("2027-09-15", "2027-09-15"),
         ("2027-10-01", "2027-10-03")],
        [],
    ),
}


@pytest.mark.parametrize("year", sorted(NOTICES))
def test_bundled_calendar_matches_the_notice(calendar: WorkingCalendar, year: int) -> None:
    blocks, makeups = NOTICES[year]
    expected_off = set()
    for first, last in blocks:
        day = date.fromisoformat(first)
        while day <= date.fromisoformat(last):
            expected_off.add(day)
            day += timedelta(days=1)
    assert {d for d in calendar.holidays if d.year == year} == expected_off
    assert {d for d in calendar.workdays if d.year == year} == {date.fromisoformat(d) for d in makeups}


def test_2027_is_marked_provisional(calendar: WorkingCalendar) -> None:
    assert calendar.years == {2025, 2026, 2027}
    assert calendar.provisional_years == {2027}
    assert all("provisional" in name for day, name in calendar.holidays.items() if day.year == 2027)
    assert sum(1 for day in calendar.holidays if day.year == 2027) == 13  # 13 statutory days since 2025


def test_bundled_calendar_opens_in_excel() -> None:
    assert BUNDLED_HOLIDAYS.read_bytes().startswith(b"\xef\xbb\xbf")


@pytest.mark.parametrize(
    ("day", "working"),
    [
        ("2025-09-26", True),  # Friday
        ("2025-09-27", False),  # Saturday
        ("2025-09-28", True),  # Sunday, make-up workday for National Day
        ("2025-10-01", False),  # National Day, a Wednesday
        ("2025-10-06", False),  # Mid-Autumn (merged into the National Day block), a Monday
        ("2025-10-09", True),  # Thursday after the block
        ("2025-10-11", True),  # Saturday, make-up workday
        ("2025-10-12", False),  # Sunday
        ("2026-01-04", True),  # Sunday, make-up workday for New Year
        ("2026-02-23", False),  # Monday, last day of Spring Festival
        ("2026-09-20", True),  # Sunday, make-up workday for National Day
        ("2027-02-08", False),  # Monday, 正月初三 (provisional)
        ("2027-02-09", True),  # Tuesday (provisional: the notice may still move it)
    ],
)
def test_is_working_day(calendar: WorkingCalendar, day: str, working: bool) -> None:
    assert calendar.is_working_day(date.fromisoformat(day)) is working


def test_is_working_day_of_an_aware_datetime_uses_local_date(calendar: WorkingCalendar) -> None:
    # 2025-09-27 17:00 UTC is Sunday 2025-09-28 01:00 in Beijing: a make-up workday.
    assert calendar.is_working_day(datetime(2025, 9, 27, 17, tzinfo=UTC)) is True


def test_year_not_covered_is_refused(calendar: WorkingCalendar) -> None:
    with pytest.raises(InvalidInput) as caught:
        calendar.is_working_day(date(2030, 3, 4))
    message = caught.value.message
    assert "has no entries for 2030 (years covered: 2025, 2026, 2027)" in message
    assert str(BUNDLED_HOLIDAYS) in message  # where to add them
    assert "国务院办公厅关于2030年部分节假日安排的通知" in message  # what to add


# ---------------------------------------------------------------------------------------------
# Deadlines, one table per kind; each expectation worked out by hand in its comment.


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        # Mon 08:00 + 4 h = 08–12 → ends exactly at the end of the morning: stays at 12:00
        ("2025-03-03 08:00", 4, "2025-03-03 12:00"),
        # Mon 08:00 + 8 h = 08–12 (4) + 14–18 (4) → 18:00 the same day
        ("2025-03-03 08:00", 8, "2025-03-03 18:00"),
        # Mon 11:00 + 2 h = 11–12 (1) + 14–15 (1) → 15:00
        ("2025-03-03 11:00", 2, "2025-03-03 15:00"),
        # start in the lunch break: counting starts at 14:00 → 15:00
        ("2025-03-03 12:30", 1, "2025-03-03 15:00"),
        # start exactly at 12:00: the afternoon period is next → 14:00 + 1 → 15:00
        ("2025-03-03 12:00", 1, "2025-03-03 15:00"),
        # start before work: counting starts at 08:00 → 09:30
        ("2025-03-03 06:15", 1.5, "2025-03-03 09:30"),
        # start in the evening: next morning 08:00 + 0.5 → Tue 08:30
        ("2025-03-03 19:00", 0.5, "2025-03-04 08:30"),
        # fractional: 11:30–12:00 (0.5) + 14:00–14:45 (0.75) → 14:45
        ("2025-03-03 11:30", 1.25, "2025-03-03 14:45"),
        # weekend: Fri 17–18 (1), Sat and Sun off, Mon 08–09 (1) → Mon 09:00
        ("2025-03-07 17:00", 2, "2025-03-10 09:00"),
        # make-up workday: Fri 16–18 (2), Sat 27 off, Sun 28 (调休) 08–12 (4) → Sun 12:00
        ("2025-09-26 16:00", 6, "2025-09-28 12:00"),
        # National Day block: Tue 30 16–18 (2), Oct 1–8 off, Thu Oct 9 08–10 (2) → Oct 9 10:00
        ("2025-09-30 16:00", 4, "2025-10-09 10:00"),
        # public holiday on a weekday: New Year's Day Wed is off, Thu 08–11 (3) → Thu 11:00
        ("2025-01-01 09:00", 3, "2025-01-02 11:00"),
    ],
)
def test_working_hours(calendar: WorkingCalendar, start: str, hours: float, due: str) -> None:
    assert deadline(at(start), TimeLimitKind.working_hours, hours, calendar) == at(due)


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        # 1 working day = 8 h: Mon 15–18 (3), Tue 08–12 (7), 14–15 (8) → Tue 15:00
        ("2025-03-03 15:00", 1, "2025-03-04 15:00"),
        # half a day = 4 h from Mon 08:00 → 12:00 (end of period stays)
        ("2025-03-03 08:00", 0.5, "2025-03-03 12:00"),
        # weekend, 16 h: Fri 10–12, 14–18 (6), Mon (14), Tue 08–10 (16) → Tue 10:00
        ("2025-03-07 10:00", 2, "2025-03-11 10:00"),
        # make-up workday, 8 h: Fri 14–18 (4), Sat off, Sun 27 (调休) 08–12 (8) → Sun 12:00
        ("2025-04-25 14:00", 1, "2025-04-27 12:00"),
        # Labour Day block, 40 h (labour dispute): Wed 30 Apr 09–12, 14–18 (7), May 1–5 off,
        # Tue 6 (15), Wed 7 (23), Thu 8 (31), Fri 9 (39), weekend, Mon 12 08–09 (40) → Mon 09:00
        ("2025-04-30 09:00", 5, "2025-05-12 09:00"),
        # National Day, 24 h from make-up Sun 28 08:00: Sun (8), Mon (16), Tue (24) → Tue 18:00
        ("2025-09-28 08:00", 3, "2025-09-30 18:00"),
        # National Day, 16 h: Tue 30 08–18 (8), Oct 1–8 off, Thu 9 (16) → Thu 18:00
        ("2025-09-30 08:00", 2, "2025-10-09 18:00"),
        # Spring Festival 2026, 16 h: Fri 13 14–18 (4), Sat 14 (调休) (12), Feb 15–23 off,
        # Tue 24 08–12 (16) → Tue 12:00
        ("2026-02-13 14:00", 2, "2026-02-24 12:00"),
    ],
)
def test_working_days(calendar: WorkingCalendar, start: str, days: float, due: str) -> None:
    assert deadline(at(start), TimeLimitKind.working_days, days, calendar) == at(due)


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        # 24×7: Fri 17:00 + 2 h → 19:00, after working hours
        ("2025-09-26 17:00", 2, "2025-09-26 19:00"),
        # weekend is no different: Sat 23:30 + 1.5 h → Sun 01:00
        ("2025-09-27 23:30", 1.5, "2025-09-28 01:00"),
        # nor a holiday: Tue 23:00 + 2 h → National Day 01:00
        ("2025-09-30 23:00", 2, "2025-10-01 01:00"),
        # a year the holiday calendar does not cover needs no calendar
        ("2030-01-01 10:00", 24, "2030-01-02 10:00"),
    ],
)
def test_continuous_hours(calendar: WorkingCalendar, start: str, hours: float, due: str) -> None:
    assert deadline(at(start), TimeLimitKind.continuous_hours, hours, calendar) == at(due)


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        # Fri + 3 days, same clock time, weekend counted → Mon 10:00
        ("2025-09-26 10:00", 3, "2025-09-29 10:00"),
        # make-up workday is just a day: Sat + 1 → Sun
        ("2025-09-27 09:00", 1, "2025-09-28 09:00"),
        # into the holiday block: Tue 30 Sep + 7 → Tue 7 Oct, a day off but still the deadline
        ("2025-09-30 09:00", 7, "2025-10-07 09:00"),
        # half a day is 12 hours
        ("2025-09-30 09:00", 0.5, "2025-09-30 21:00"),
        # 15 days for a petition, through Spring Festival 2026
        ("2026-02-13 16:00", 15, "2026-02-28 16:00"),
        # a year the holiday calendar does not cover needs no calendar
        ("2031-05-01 08:00", 10, "2031-05-11 08:00"),
    ],
)
def test_calendar_days(calendar: WorkingCalendar, start: str, days: float, due: str) -> None:
    assert deadline(at(start), TimeLimitKind.calendar_days, days, calendar) == at(due)


@pytest.mark.parametrize(
    ("kind", "value", "due_utc"),
    [
        # 00:00 UTC = Mon 08:00 Beijing; + 4 working hours = 12:00 Beijing = 04:00 UTC
        ("working_hours", 4, "2025-03-03 04:00"),
        # + 1 working day = 8 h = Mon 18:00 Beijing (the end of the day stays) = 10:00 UTC
        ("working_days", 1, "2025-03-03 10:00"),
        # + 30 h round the clock = Tue 06:00 UTC
        ("continuous_hours", 30, "2025-03-04 06:00"),
        # + 2 days, same clock time = Wed 00:00 UTC (Wed 08:00 Beijing)
        ("calendar_days", 2, "2025-03-05 00:00"),
    ],
)
def test_result_is_in_the_zone_of_the_start(calendar: WorkingCalendar, kind: str, value: float, due_utc: str) -> None:
    start = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)
    due = deadline(start, kind, value, calendar)
    assert due.tzinfo is UTC
    assert due == datetime.fromisoformat(due_utc).replace(tzinfo=UTC)


def test_default_calendar_is_the_bundled_one() -> None:
    assert deadline(at("2025-09-26 16:00"), "working_hours", 6) == at("2025-09-28 12:00")


def test_naive_start_is_refused(calendar: WorkingCalendar) -> None:
    with pytest.raises(InvalidInput, match=r"start 2025-03-03T08:00:00 has no time zone: give a timezone-aware "
                                           r"datetime, e.g. 2025-03-03T08:00:00\+08:00"):
        deadline(datetime(2025, 3, 3, 8), TimeLimitKind.calendar_days, 1, calendar)


@pytest.mark.parametrize("kind", ["working_hours", "working_days"])
def test_working_time_in_a_year_not_covered_is_refused(calendar: WorkingCalendar, kind: str) -> None:
    with pytest.raises(InvalidInput, match=r"has no entries for 2030 .* add 2030's holidays and make-up workdays"):
        deadline(at("2030-03-04 08:00"), kind, 1, calendar)


def test_counting_into_a_year_not_covered_is_refused(calendar: WorkingCalendar) -> None:
    # 2027-12-31 is a Friday: 16 working hours run into 2028.
    with pytest.raises(InvalidInput, match="has no entries for 2028"):
        deadline(at("2027-12-31 08:00"), TimeLimitKind.working_hours, 16, calendar)


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("working_hours", 0, "time limit must be a positive number, got 0"),  # zero
        ("working_hours", -1, "time limit must be a positive number, got -1"),  # negative
        ("working_hours", float("nan"), "time limit must be a positive number"),  # not a number
        ("working_hours", "two", "time limit 'two' is not a number"),  # text
        ("continuous_hours", 1e300, "is out of range"),  # absurdly long
        ("work_hours",
         1, "unknown time-limit kind 'work_hours': use one of continuous_hours, working_hours, working_days, "
            "calendar_days"),
    ],
)
def test_bad_time_limits_are_refused(calendar: WorkingCalendar, kind: str, value: float, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        deadline(at("2025-03-03 08:00"), kind, value, calendar)


def test_time_limit_kinds() -> None:
    assert parse_time_limit_kind(" working_days ") is TimeLimitKind.working_days
    assert [k.needs_calendar for k in TimeLimitKind] == [False, True, True, False]


# ---------------------------------------------------------------------------------------------
# Working time elapsed


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        ("2025-09-26 16:00", "2025-09-28 12:00", 6),  # Fri 16–18 + make-up Sun 08–12
        ("2025-03-03 12:10", "2025-03-03 13:50", 0),  # inside the lunch break
        ("2025-03-03 11:00", "2025-03-03 15:30", 2.5),  # across the lunch break
        ("2025-09-30 17:00", "2025-10-09 09:00", 2),  # across National Day: Tue 17–18 + Thu 08–09
        ("2025-03-03 10:00", "2025-03-03 10:00", 0),  # no time at all
        ("2025-03-03 15:30", "2025-03-03 11:00", -2.5),  # backwards: negative
    ],
)
def test_working_time_between(calendar: WorkingCalendar, start: str, end: str, hours: float) -> None:
    assert working_time_between(at(start), at(end), calendar) == timedelta(hours=hours)


def test_working_time_between_undoes_deadline(calendar: WorkingCalendar) -> None:
    start = at("2025-09-24 06:00")
    for step in range(0, 14 * 24 * 60, 97):  # a fortnight around National Day, odd minutes
        moment = start + timedelta(minutes=step)
        for hours in (0.25, 3, 11.5):
            due = deadline(moment, TimeLimitKind.working_hours, hours, calendar)
            assert working_time_between(moment, due, calendar) == timedelta(hours=hours), moment


def test_working_time_between_refuses_naive_times(calendar: WorkingCalendar) -> None:
    with pytest.raises(InvalidInput, match="has no time zone"):
        working_time_between(at("2025-03-03 08:00"), datetime(2025, 3, 3, 9), calendar)


# ---------------------------------------------------------------------------------------------
# SLA state


@pytest.mark.parametrize(
    ("now", "warn_share", "state"),
    [
        # started Mon 08:00, due Mon 18:00: 10 h of wall time; 80% is 16:00
        ("2025-03-03 15:59", 0.8, "ok"),  # 79.8% gone
        ("2025-03-03 16:00", 0.8, "warning"),  # 80% gone
        ("2025-03-03 18:00", 0.8, "warning"),  # at the deadline: still in time
        ("2025-03-03 18:01", 0.8, "overdue"),  # after the deadline
        ("2025-03-03 13:00", 0.5, "warning"),  # half gone, warning at half
        ("2025-03-03 07:00", 0.8, "ok"),  # before the start
    ],
)
def test_sla_state(now: str, warn_share: float, state: str) -> None:
    assert sla_state(at(now), at("2025-03-03 18:00"), at("2025-03-03 08:00"), warn_share) == state


def test_sla_state_counts_wall_time() -> None:
    # started Fri 16:00, due Sun 12:00 (6 working hours, 44 h wall); 80% of 44 h = 35 h 12 min → Sun 03:12
    started, due = at("2025-09-26 16:00"), at("2025-09-28 12:00")
    assert sla_state(at("2025-09-28 03:11"), due, started) == "ok"
    assert sla_state(at("2025-09-28 03:12"), due, started) == "warning"


def test_sla_state_mixes_zones() -> None:
    # now 09:00 UTC = 17:00 Beijing: 90% of 08:00–18:00
    assert sla_state(datetime(2025, 3, 3, 9, tzinfo=UTC), at("2025-03-03 18:00"), at("2025-03-03 08:00")) == "warning"


@pytest.mark.parametrize(
    ("due", "warn_share", "message"),
    [
        ("2025-03-03 08:00", 0.8, "deadline 2025-03-03T08:00:00\\+08:00 is not after the start"),  # empty allowance
        ("2025-03-03 18:00", 0, "warn_share must be in \\(0, 1\\]"),  # no warning share
        ("2025-03-03 18:00", 1.5, "warn_share must be in \\(0, 1\\]"),  # more than the whole
    ],
)
def test_sla_state_refuses_nonsense(due: str, warn_share: float, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        sla_state(at("2025-03-03 09:00"), at(due), at("2025-03-03 08:00"), warn_share)


# ---------------------------------------------------------------------------------------------
# An operator's calendar


def write_holidays(folder: Path, *rows: str, encoding: str = "utf-8") -> Path:
    """A holidays CSV in ``folder``: the header (line 1) and ``rows`` (from line 2)."""
    path = folder / "holidays.csv"
    path.write_bytes(("\n".join(("date,kind,name", *rows)) + "\n").encode(encoding))
    return path


def test_an_operator_calendar_loads(tmp_path: Path) -> None:
    path = write_holidays(tmp_path, "2028-01-01,holiday,元旦", "2028/1/8,workday,调休上班 (as Excel re-saves dates)")
    calendar = WorkingCalendar.load(path)
    assert calendar.years == {2028}
    assert calendar.provisional_years == frozenset()
    assert not calendar.is_working_day(date(2028, 1, 1))  # listed holiday (a Saturday anyway)
    assert calendar.is_working_day(date(2028, 1, 8))  # Saturday make-up workday


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("2028-02-30,holiday,x",
         "line 3, column date (A): '2028-02-30' is not a date; write it as YYYY-MM-DD"),  # no such day
        ("01/01/2028,holiday,x", "line 3, column date (A): '01/01/2028' is not a date"),  # day-first form
        ("2028-01-01,holiday,again",
         "line 3, column date (A): 2028-01-01 is listed twice (first on line 2)"),  # duplicate
        ("2028-01-03,off,x", "line 3, column kind (B): unknown kind 'off'; use holiday"),  # unknown kind
        ("2028-01-03,workday,x",
         "line 3, column kind (B): 2028-01-03 is a Monday, a working day anyway"),  # weekday make-up
    ],
)
def test_operator_calendar_validation(tmp_path: Path, row: str, message: str) -> None:
    path = write_holidays(tmp_path, "2028-01-01,holiday,元旦", row)
    with pytest.raises(InvalidInput, match="problem") as caught:
        WorkingCalendar.load(path)
    assert message in caught.value.message
    assert str(path) in caught.value.message


def test_operator_calendar_saved_as_gbk_is_refused(tmp_path: Path) -> None:
    path = write_holidays(tmp_path, "2028-01-01,holiday,元旦", encoding="gbk")
    with pytest.raises(InvalidInput, match="not UTF-8 \\(line 2: .*save the file as UTF-8"):
        WorkingCalendar.load(path)


def test_operator_calendar_without_a_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "holidays.csv"
    path.write_text("date,kind\n2028-01-01,holiday\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="line 1: the header lacks column\\(s\\) name"):
        WorkingCalendar.load(path)


def test_custom_working_periods_and_zone(tmp_path: Path) -> None:
    # Urumqi offices keep local hours 10:00–14:00 and 15:30–19:30 (still Beijing time, UTC+8).
    calendar = WorkingCalendar(
        years=[2025], working_periods=[("15:30", "19:30"), ("10:00", "14:00")], timezone="Asia/Urumqi"
    )
    assert calendar.working_periods == ((time(10), time(14)), (time(15, 30), time(19, 30)))
    assert calendar.working_day_length == timedelta(hours=8)
    urumqi = ZoneInfo("Asia/Urumqi")  # UTC+6
    start = datetime(2025, 3, 3, 13, tzinfo=urumqi)
    # 13–14 (1) + 15:30–17:00 (1.5) → 17:00 Urumqi time
    assert deadline(start, "working_hours", 2.5, calendar) == datetime(2025, 3, 3, 17, tzinfo=urumqi)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"working_periods": [("12:00", "08:00")]}, "working period 12:00–08:00 ends before it starts"),  # reversed
        ({"working_periods": [("08:00", "12:00"), ("11:00", "13:00")]}, "working periods overlap at 11:00"),  # overlap
        ({"working_periods": []}, "needs at least one working period"),  # none
        ({"working_periods": [("8h", "12:00")]}, "working period bound '8h' is not a clock time"),  # bad clock
        ({"timezone": "Beijing"}, "unknown time zone 'Beijing': give an IANA name such as Asia/Shanghai"),  # bad zone
        ({"holidays": [date(2025, 1, 4)], "workdays": [date(2025, 1, 4)]}, "2025-01-04 is listed both"),  # both kinds
    ],
)
def test_calendar_settings_are_checked(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        WorkingCalendar(**kwargs)
