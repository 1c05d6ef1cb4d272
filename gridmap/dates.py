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


#: The length of the period a figure over a closed period covers when ``from`` is not given.
DEFAULT_PERIOD_DAYS = 30


def parse_period(date_from: str | date | None, date_to: str | date | None, *, today: date | None = None,
                 default_start: str | None = None) -> tuple[date | None, date | None]:
    """The period ``[from, to]`` in whole local days, both included; the one rule for every ``from``/``to``.

    ``from`` after ``to`` is refused (InvalidInput: "swap them"). Without ``today`` the ends may stay
    open (None: since the first issue, up to now). With ``today`` (a figure over a closed period) a
    missing ``to`` is today and a missing ``from`` is ``default_start``: ``"days"`` (the default,
    DEFAULT_PERIOD_DAYS days up to ``to``) or ``"year"`` (1 January of ``to``'s year).
    """
    start = parse_day(date_from, "from")
    end = parse_day(date_to, "to")
    if today is not None:
        end = end or today
        if start is None:
            if (default_start or "days") == "year":
                start = date(end.year, 1, 1)
            else:
                start = max(end - timedelta(days=DEFAULT_PERIOD_DAYS - 1), EARLIEST_DAY)
    if start and end and start > end:
        raise InvalidInput(f"from ({start}) is after to ({end}); swap them")
    return start, end
