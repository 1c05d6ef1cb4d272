"""Days given by users (query strings, CLI options, files): parsed once, kept within sane bounds."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from gridmap.errors import InvalidInput

#: The days a period may cover: far enough from datetime's limits for time zones and previous periods.
EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(2999, 12, 31)
#: How far ahead of this server's clock a reported time may lie (other clocks differ a little).
CLOCK_SKEW = timedelta(minutes=5)


def parse_day(value: str | date | None, name: str) -> date | None:
    """A date from ISO text (``2026-06-01``) or a date, None when empty; InvalidInput names the parameter."""
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    if isinstance(value, datetime):
        day = value.date()
    elif isinstance(value, date):
        day = value
    else:
        try:
            day = date.fromisoformat(str(value).strip())
        except ValueError:
            raise InvalidInput(f"`{name}` must be a date like 2026-06-01, got {value!r}") from None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise InvalidInput(f"`{name}` ({day}) must lie between {EARLIEST_DAY} and {LATEST_DAY}")
    return day
