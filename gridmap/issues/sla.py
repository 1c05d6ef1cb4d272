"""Deadlines (SLA): time-limit kinds, the working calendar, deadline and elapsed-time arithmetic.

Four kinds of time limit (DOMAIN.md, "Time-limit kinds"):

- ``continuous_hours`` (紧急工作时): a 24×7 clock; ``start + value`` hours of elapsed time.
- ``calendar_days`` (自然日): ``start + value`` days, same local clock time.
- ``working_hours`` (工作时): only the working periods (default 08:00–12:00 and 14:00–18:00,
  local time) of working days count. A start outside working time starts counting at the next
  working period; a deadline that falls exactly on the end of a period stays there (4 working
  hours from Monday 08:00 end at Monday 12:00, not 14:00).
- ``working_days`` (工作日): counted as working time too: N working days = N × the length of a
  working day (8 working hours with the default periods), so a case registered on Monday at
  15:00 with 1 working day is due on Tuesday at 15:00 — the same rule as "working days of
  8 working hours" in DOMAIN.md, and it keeps suspensions and extensions exact to the minute.

Only the working kinds need the holiday calendar; continuous hours and calendar days never
look at it.

The holiday calendar
--------------------
``gridmap/data/holidays.csv`` (UTF-8; opens in Excel/WPS) has one row per special date::

    date,kind,name
    2026-02-14,workday,春节调休上班 make-up workday
    2026-02-15,holiday,春节 Spring Festival

``kind`` is ``holiday`` (a day off: list every day of a holiday block, weekend days included)
or ``workday`` (调休: a Saturday or Sunday that is a working day). Other days follow the week:
Monday–Friday work, Saturday and Sunday off. Dates may be written ``2026-02-14`` or, as Excel
re-saves them, ``2026/2/14``.

A year counts as covered once the file has at least one row for it; counting working time on a
day of a year that is not covered is refused (InvalidInput) rather than guessed.

To add a year, when the State Council publishes 《国务院办公厅关于YYYY年部分节假日安排的通知》
(usually in November of the year before): add one ``holiday`` row for every day of each
放假调休 block it lists, and one ``workday`` row for every weekend day it lists as 上班; if
the year had provisional rows (see below), delete them first. Restart the service (or wait for
the file's modification time to change: the file is re-read when it changes).

Provisional years: before the notice is out, a year may carry only the statutory holidays of
《全国年节及纪念日放假办法》 (as amended in 2024: New Year's Day 1 day, Spring Festival 4 days
from the lunar New Year's Eve, Qingming 1, Labour Day 2 (1–2 May), Dragon Boat 1, Mid-Autumn 1,
National Day 3 (1–3 October)), each ``name`` marked "provisional". The bundled 2027 rows are such:
the bridging days off and make-up workdays of 2027 are not known yet, so deadlines in 2027 may
move when the notice replaces them. :attr:`WorkingCalendar.provisional_years` lists such years.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gridmap.errors import InvalidInput
from gridmap.resources import resource

#: The holiday calendar shipped with gridmap.
BUNDLED_HOLIDAYS = resource("data/holidays.csv")
#: Local working periods of a working day: 08:00–12:00 and 14:00–18:00.
DEFAULT_WORKING_PERIODS: tuple[tuple[time, time], ...] = ((time(8), time(12)), (time(14), time(18)))
DEFAULT_TIMEZONE = "Asia/Shanghai"
#: Rows whose name contains this word belong to a year not yet fixed by the State Council notice.
PROVISIONAL_MARK = "provisional"

SlaState = Literal["ok", "warning", "overdue"]


class TimeLimitKind(StrEnum):
    """How a time limit is counted."""

    continuous_hours = "continuous_hours"  # 紧急工作时, 24×7
    working_hours = "working_hours"  # 工作时
    working_days = "working_days"  # 工作日
    calendar_days = "calendar_days"  # 自然日

    @property
    def needs_calendar(self) -> bool:
        """True for the kinds counted in working time (they need the holiday calendar)."""
        return self in (TimeLimitKind.working_hours, TimeLimitKind.working_days)


def parse_time_limit_kind(value: str | TimeLimitKind) -> TimeLimitKind:
    """The TimeLimitKind named ``value``; raise InvalidInput listing the known kinds otherwise."""
    try:
        return TimeLimitKind(str(value).strip())
    except ValueError:
        known = ", ".join(kind.value for kind in TimeLimitKind)
        raise InvalidInput(f"unknown time-limit kind {value!r}: use one of {known}") from None


# --------------------------------------------------------------------------------------------
# Reading the operator's CSV files (shared with gridmap.issues.categories)


def read_csv_records(
    path: Path, *, required: Sequence[str], what: str
) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and (line number, row) pairs of a UTF-8 CSV file; blank rows are skipped.

    Cells are stripped; a UTF-8 byte-order mark (Excel's "CSV UTF-8") is accepted. Raises
    InvalidInput when the file is missing, not UTF-8 or lacks one of the ``required`` columns.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"{what} {path} does not exist") from None
    except OSError as exc:
        raise InvalidInput(f"{what} {path} cannot be read: {exc.strerror}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InvalidInput(
            f"{what} {path} is not UTF-8 (line {line}: byte 0x{raw[exc.start]:02x} cannot be "
            "decoded; a file saved as GBK/ANSI looks like this): save the file as UTF-8 "
            "(Excel: 'CSV UTF-8 (逗号分隔)'; WPS: choose UTF-8 encoding)",
            details={"path": str(path), "line": line},
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    records: list[tuple[int, dict[str, str]]] = []
    for cells in reader:
        cells = [cell.strip() for cell in cells]
        if header is None:
            if not any(cells):
                continue
            header = [cell.lower() for cell in cells]
            missing = [name for name in required if name not in header]
            if missing:
                raise InvalidInput(
                    f"{what} {path}, line {reader.line_num}: the header lacks column(s) "
                    f"{', '.join(missing)}; the first row must name the columns "
                    f"{', '.join(required)}",
                    details={"path": str(path), "line": reader.line_num, "missing": missing},
                )
            continue
        if not any(cells):
            continue
        cells += [""] * (len(header) - len(cells))
        records.append((reader.line_num, dict(zip(header, cells))))
    if header is None:
        raise InvalidInput(f"{what} {path} is empty: the first row must name the columns {', '.join(required)}")
    return header, records


def excel_column(header: Sequence[str], name: str) -> str:
    """``name (H)``: a column name with the spreadsheet letter it has in ``header``."""
    index = header.index(name)
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return f"{name} ({letters})"


# --------------------------------------------------------------------------------------------
# The working calendar

_DATE_FORMS = (re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$"), re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$"))
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _parse_date(text: str) -> date | None:
    for form in _DATE_FORMS:
        match = form.match(text)
        if match:
            try:
                return date(*(int(part) for part in match.groups()))
            except ValueError:
                return None
    return None


def _parse_clock(value: time | str) -> time:
    if isinstance(value, time):
        return value
    try:
        return time.fromisoformat(str(value).strip())
    except ValueError:
        raise InvalidInput(
            f"working period bound {value!r} is not a clock time: write it as HH:MM, e.g. 08:00"
        ) from None


def _parse_periods(periods: Iterable[Sequence[time | str]]) -> tuple[tuple[time, time], ...]:
    parsed: list[tuple[time, time]] = []
    for period in periods:
        if len(period) != 2:
            raise InvalidInput(f"working period {period!r} must be a (start, end) pair such as ('08:00', '12:00')")
        start, end = _parse_clock(period[0]), _parse_clock(period[1])
        if start >= end:
            raise InvalidInput(
                f"working period {start:%H:%M}–{end:%H:%M} ends before it starts; periods lie within one day"
            )
        parsed.append((start, end))
    if not parsed:
        raise InvalidInput("a working calendar needs at least one working period, e.g. ('08:00', '12:00')")
    parsed.sort()
    for (_, end), (start, _) in zip(parsed, parsed[1:]):
        if start < end:
            raise InvalidInput(f"working periods overlap at {start:%H:%M}: give non-overlapping periods")
    return tuple(parsed)


def _parse_timezone(value: str | tzinfo) -> tzinfo:
    if isinstance(value, tzinfo):
        return value
    try:
        return ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"unknown time zone {value!r}: give an IANA name such as Asia/Shanghai") from None


_NamedDays = tuple[tuple[date, str], ...]


def _named_days(days: Mapping[date, str] | Iterable[date]) -> dict[date, str]:
    return dict(days) if isinstance(days, Mapping) else dict.fromkeys(days, "")


def _minutes(moment: time) -> float:
    return moment.hour * 60 + moment.minute + moment.second / 60 + moment.microsecond / 60e6


class WorkingCalendar:
    """Working days (weekdays, holidays, make-up workdays) and the working periods of a day."""

    def __init__(
        self,
        holidays: Mapping[date, str] | Iterable[date] = (),
        workdays: Mapping[date, str] | Iterable[date] = (),
        *,
        years: Iterable[int] | None = None,
        working_periods: Iterable[Sequence[time | str]] = DEFAULT_WORKING_PERIODS,
        timezone: str | tzinfo = DEFAULT_TIMEZONE,
        source: str = "the holiday calendar",
    ) -> None:
        self.holidays: dict[date, str] = _named_days(holidays)
        self.workdays: dict[date, str] = _named_days(workdays)
        both = sorted(set(self.holidays) & set(self.workdays))
        if both:
            raise InvalidInput(f"{both[0]} is listed both as a holiday and as a make-up workday: keep one")
        covered = {day.year for day in (*self.holidays, *self.workdays)}
        self.years: frozenset[int] = frozenset(covered if years is None else years)
        self.working_periods = _parse_periods(working_periods)
        self.tz = _parse_timezone(timezone)
        self.source = source

    @classmethod
    def load(
        cls,
        path: str | Path | None = None,
        *,
        working_periods: Iterable[Sequence[time | str]] = DEFAULT_WORKING_PERIODS,
        timezone: str | tzinfo = DEFAULT_TIMEZONE,
    ) -> WorkingCalendar:
        """The calendar of a holidays CSV file (None: the bundled one); InvalidInput if malformed."""
        resolved = Path(BUNDLED_HOLIDAYS if path is None else path).resolve()
        try:
            stat = resolved.stat()
        except OSError:
            raise InvalidInput(f"holiday calendar {resolved} does not exist") from None
        holidays, workdays = _read_holidays(str(resolved), stat.st_mtime_ns, stat.st_size)
        return cls(
            dict(holidays), dict(workdays), working_periods=working_periods, timezone=timezone, source=str(resolved)
        )

    @property
    def provisional_years(self) -> frozenset[int]:
        """Years whose rows are statutory days only, to be replaced by the State Council notice."""
        return frozenset(
            day.year
            for day, name in (*self.holidays.items(), *self.workdays.items())
            if PROVISIONAL_MARK in name.lower()
        )

    @property
    def working_day_length(self) -> timedelta:
        """The working time of one working day (8 hours with the default periods)."""
        minutes = sum(_minutes(end) - _minutes(start) for start, end in self.working_periods)
        return timedelta(minutes=minutes)

    def is_working_day(self, day: date) -> bool:
        """True on weekdays that are not holidays, and on make-up workdays (调休)."""
        if isinstance(day, datetime):
            day = self.local(day).date()
        if day.year not in self.years:
            covered = ", ".join(str(year) for year in sorted(self.years)) or "none"
            raise InvalidInput(
                f"the holiday calendar {self.source} has no entries for {day.year} (years covered: "
                f"{covered}), so working time on {day.isoformat()} cannot be counted: add {day.year}'s "
                f"holidays and make-up workdays from the State Council notice (国务院办公厅关于{day.year}年"
                "部分节假日安排的通知) as 'date,kind,name' rows to that file",
                details={"year": day.year, "calendar": self.source},
            )
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def local(self, moment: datetime) -> datetime:
        """``moment`` (timezone-aware) in the calendar's time zone; InvalidInput if naive."""
        _require_aware(moment, "time")
        return moment.astimezone(self.tz)

    def _periods_on(self, day: date) -> list[tuple[datetime, datetime]]:
        if not self.is_working_day(day):
            return []
        return [
            (datetime.combine(day, start, tzinfo=self.tz), datetime.combine(day, end, tzinfo=self.tz))
            for start, end in self.working_periods
        ]

    def add_working_time(self, start: datetime, amount: timedelta) -> datetime:
        """The moment ``amount`` of working time after ``start``, in ``start``'s time zone."""
        if amount < timedelta(0):
            raise InvalidInput(f"working time to add must not be negative, got {amount}")
        moment = self.local(start)
        remaining = amount
        day = moment.date()
        while True:
            for period_start, period_end in self._periods_on(day):
                begin = max(moment, period_start)
                if begin >= period_end:
                    continue
                available = period_end - begin
                if remaining <= available:
                    return (begin + remaining).astimezone(start.tzinfo)
                remaining -= available
            day += timedelta(days=1)

    def earliest_within(self, end: datetime, amount: timedelta) -> datetime:
        """The earliest moment from which at most ``amount`` of working time is left until ``end``.

        The mirror of :meth:`add_working_time`: a moment in a break or a night just before the
        working time counted is included (the working time left does not change there).
        """
        if amount < timedelta(0):
            raise InvalidInput(f"working time to subtract must not be negative, got {amount}")
        moment = self.local(end)
        remaining = amount
        day = moment.date()
        while True:
            for period_start, period_end in reversed(self._periods_on(day)):
                finish = min(moment, period_end)
                if finish <= period_start:
                    continue
                available = finish - period_start
                if remaining < available:
                    return (finish - remaining).astimezone(end.tzinfo)
                remaining -= available
                moment = period_start
            day -= timedelta(days=1)

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time from ``start`` to ``end``; negative when ``end`` is before ``start``."""
        first, last = self.local(start), self.local(end)
        if last < first:
            return -self.working_time_between(end, start)
        total = timedelta(0)
        day = first.date()
        while day <= last.date():
            for period_start, period_end in self._periods_on(day):
                begin, finish = max(first, period_start), min(last, period_end)
                if finish > begin:
                    total += finish - begin
            day += timedelta(days=1)
        return total

    def __repr__(self) -> str:
        years = ", ".join(str(year) for year in sorted(self.years))
        return f"WorkingCalendar(source={self.source!r}, years=[{years}], tz={self.tz})"


@lru_cache(maxsize=16)
def _read_holidays(path: str, mtime_ns: int, size: int) -> tuple[_NamedDays, _NamedDays]:
    """Holidays and make-up workdays of a calendar file (cached until the file changes)."""
    file = Path(path)
    header, records = read_csv_records(file, required=("date", "kind", "name"), what="holiday calendar")
    holidays: dict[date, str] = {}
    workdays: dict[date, str] = {}
    first_line: dict[date, int] = {}
    problems: list[str] = []
    for line, row in records:
        where = f"line {line}"
        day = _parse_date(row["date"])
        if day is None:
            problems.append(
                f"{where}, column {excel_column(header, 'date')}: {row['date']!r} is not a date; "
                "write it as YYYY-MM-DD, e.g. 2026-02-15"
            )
            continue
        if day in first_line:
            problems.append(
                f"{where}, column {excel_column(header, 'date')}: {day} is listed twice "
                f"(first on line {first_line[day]}); keep one row per date"
            )
            continue
        first_line[day] = line
        kind = row["kind"].lower()
        if kind == "holiday":
            holidays[day] = row["name"]
        elif kind == "workday":
            if day.weekday() < 5:
                problems.append(
                    f"{where}, column {excel_column(header, 'kind')}: {day} is a {_WEEKDAYS[day.weekday()]}, "
                    "a working day anyway; make-up workdays (调休上班) are Saturdays or Sundays"
                )
                continue
            workdays[day] = row["name"]
        else:
            problems.append(
                f"{where}, column {excel_column(header, 'kind')}: unknown kind {row['kind']!r}; use "
                "holiday (a day off) or workday (a weekend day worked, 调休)"
            )
    if problems:
        raise InvalidInput(
            f"holiday calendar {file} has {len(problems)} problem(s):\n" + "\n".join(problems),
            details={"path": str(file), "problems": problems},
        )
    return tuple(sorted(holidays.items())), tuple(sorted(workdays.items()))


# --------------------------------------------------------------------------------------------
# Deadlines


def _require_aware(moment: datetime, name: str) -> None:
    if not isinstance(moment, datetime):
        raise InvalidInput(f"{name} must be a datetime, got {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidInput(
            f"{name} {moment.isoformat()} has no time zone: give a timezone-aware datetime, "
            f"e.g. {moment.isoformat()}+08:00 for {DEFAULT_TIMEZONE}"
        )


def _positive_amount(value: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"time limit {value!r} is not a number") from None
    if not math.isfinite(number) or number <= 0:
        raise InvalidInput(f"time limit must be a positive number, got {value!r}")
    return number


def deadline(
    start: datetime,
    kind: TimeLimitKind | str,
    value: float,
    calendar: WorkingCalendar | None = None,
) -> datetime:
    """The deadline of a time limit of ``value`` ``kind`` units from ``start`` (aware, same zone)."""
    _require_aware(start, "start")
    kind = parse_time_limit_kind(kind)
    amount = _positive_amount(value)
    try:
        if kind is TimeLimitKind.continuous_hours:
            return (start.astimezone(UTC) + timedelta(hours=amount)).astimezone(start.tzinfo)
        calendar = calendar if calendar is not None else WorkingCalendar.load()
        if kind is TimeLimitKind.calendar_days:
            wall = start.astimezone(calendar.tz).replace(tzinfo=None) + timedelta(days=amount)
            return wall.replace(tzinfo=calendar.tz).astimezone(start.tzinfo)
        if kind is TimeLimitKind.working_hours:
            return calendar.add_working_time(start, timedelta(hours=amount))
        return calendar.add_working_time(start, calendar.working_day_length * amount)
    except OverflowError:
        raise InvalidInput(f"time limit {value!r} {kind.value} from {start.isoformat()} is out of range") from None


def working_time_between(start: datetime, end: datetime, calendar: WorkingCalendar | None = None) -> timedelta:
    """Working time elapsed from ``start`` to ``end`` (negative if ``end`` comes first)."""
    calendar = calendar if calendar is not None else WorkingCalendar.load()
    return calendar.working_time_between(start, end)


def sla_state(now: datetime, deadline: datetime, started: datetime, warn_share: float = 0.8) -> SlaState:
    """``overdue`` after the deadline, ``warning`` once ``warn_share`` of the allowed time has passed, else ``ok``."""
    for moment, name in ((now, "now"), (deadline, "deadline"), (started, "started")):
        _require_aware(moment, name)
    if not 0 < warn_share <= 1:
        raise InvalidInput(
            f"warn_share must be in (0, 1], e.g. 0.8 for a warning at 80% of the time limit; got {warn_share!r}"
        )
    now_utc, due_utc, start_utc = (m.astimezone(UTC) for m in (now, deadline, started))
    if due_utc <= start_utc:
        raise InvalidInput(f"deadline {deadline.isoformat()} is not after the start {started.isoformat()}")
    if now_utc > due_utc:
        return "overdue"
    if now_utc >= start_utc + (due_utc - start_utc) * warn_share:
        return "warning"
    return "ok"
