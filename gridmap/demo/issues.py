"""The demo's synthetic year of issues: when, from where, about what and where they are reported.

One draw from a (day, source, category) intensity table: the Spring Festival dip, seasons
(rains and typhoons May–October, the tourist season November–March), typhoon landfalls and
each source's affinity for categories; then a place (:mod:`gridmap.demo.places`), a course
through the workflow (:mod:`gridmap.demo.course`), people (:mod:`gridmap.demo.people`) and text
(:mod:`gridmap.demo.texts`). The same seed gives the same issues.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from gridmap.demo.course import Draws, demo_calendar, hold_the_newest, plan_course, stall_a_few, state_at
from gridmap.demo.people import pick, reporter, staff_of
from gridmap.demo.places import HOTSPOTS, Places, place_points
from gridmap.demo.texts import SOCIAL_CATEGORIES, description, place_text
from gridmap.errors import InvalidInput
from gridmap.geo.layers import LayerSet
from gridmap.issues.categories import Category, CategoryTree
from gridmap.issues.sla import WorkingCalendar

TIMEZONE = "Asia/Shanghai"
DEFAULT_ISSUE_SEED = 20261121
DEFAULT_ISSUE_COUNT = 12000

#: Lunar New Year's Day (春节), around which reports dip.
SPRING_FESTIVALS: tuple[date, ...] = tuple(
    date.fromisoformat(day)
    for day in (
        "2020-01-25", "2021-02-12", "2022-02-01", "2023-01-22", "2024-02-10", "2025-01-29", "2026-02-17",
        "2027-02-06", "2028-01-26", "2029-02-13", "2030-02-03", "2031-01-23", "2032-02-11", "2033-01-31",
        "2034-02-19", "2035-02-08",
    )
)

# Where reports come from: overall share, and the share kept on days off (weekends, holidays):
# grid workers patrol and visit on working days; the 12345 hotline and the web never close.
_SOURCES: dict[str, tuple[float, float]] = {
    "patrol": (0.46, 0.12),
    "hotline": (0.32, 0.55),
    "web": (0.08, 0.75),
    "visit": (0.07, 0.08),
    "open311": (0.03, 0.80),
    "import": (0.04, 0.0),
}

# Relative yearly frequency of each category; unknown codes (another tree) get 1.
_CATEGORY_WEIGHTS: dict[str, float] = {
    "C0101": 1.0, "C0102": 1.2, "C0103": 1.2, "C0104": 1.5, "C0118": 4.0, "C0201": 0.5, "C0205": 0.3,
    "C0214": 1.0, "C0301": 1.2, "C0305": 2.5, "C0307": 1.5, "C0401": 0.2, "C0402": 2.5, "C0405": 1.5,
    "C0501": 0.6, "C06": 0.8,
    "E0102": 9.0, "E0103": 4.0, "E0201": 5.0, "E0204": 1.5, "E0301": 2.5, "E0302": 2.0, "E0304": 1.5,
    "E0401": 0.6, "E0403": 0.1, "E0501": 6.0, "E0504": 6.0, "E0505": 8.0, "E0506": 4.0, "E0507": 3.5,
    "E06": 1.0, "E0701": 1.5, "E0702": 1.5, "E0703": 0.5, "E0704": 1.5, "E0705": 2.0, "E0706": 2.0,
    "E0707": 0.8, "E0708": 0.8, "E0709": 0.4, "E0710": 1.0,
}

# Monthly factors (January … December). Sanya's rainy and typhoon season is roughly May–October
# (wettest July–October); the tourist high season, with its vendors and parking, November–March.
_RAINY = (0.5, 0.4, 0.5, 0.6, 0.9, 1.2, 2.4, 2.8, 3.0, 2.4, 1.0, 0.6)
_TYPHOON = (0.6, 0.6, 0.6, 0.7, 0.9, 1.0, 1.6, 2.2, 2.4, 2.0, 1.0, 0.7)
_TOURIST = (1.4, 1.5, 1.3, 1.0, 0.8, 0.7, 0.8, 0.8, 0.7, 0.9, 1.2, 1.4)
_DRY = (1.3, 1.4, 1.4, 1.3, 1.0, 0.7, 0.6, 0.6, 0.6, 0.8, 1.1, 1.2)
_WAGES = (1.8, 1.3, 0.9, 0.8, 0.8, 0.8, 0.9, 0.9, 0.9, 0.9, 1.2, 2.0)  # wage claims before Spring Festival
_SEASONS: dict[str, tuple[float, ...]] = {
    "E0401": _RAINY, "C0101": _RAINY, "C0102": _RAINY, "C0103": _RAINY, "C0104": _RAINY, "E06": _RAINY,
    "C0402": _TYPHOON, "C0401": _TYPHOON, "C0307": _TYPHOON, "E0710": _TYPHOON,
    "E0501": _TOURIST, "E0504": _TOURIST, "E0505": _TOURIST, "E0506": _TOURIST, "E0201": _TOURIST, "E0204": _TOURIST,
    "E0302": _DRY, "E0304": _DRY, "E0702": _DRY,
    "E0701": _WAGES,
}
#: Categories that surge in the days after a typhoon makes landfall.
_TYPHOON_SURGE = {
    "C0402": 6.0, "C0401": 4.0, "E0401": 3.0, "C0103": 2.5, "C0104": 3.0, "E0103": 2.0, "C0307": 3.0, "E0710": 3.0,
    "C0118": 1.5,
}

# How much more (or less) likely each source is to bring a category.
_AFFINITY: dict[str, dict[str, float]] = {
    "patrol": {"component": 1.4, "E0301": 0.3, "E0706": 0.3, "E0701": 0.2, "E0707": 0.05, "E0708": 0.1, "E0709": 0.02},
    "hotline": {"component": 0.6, "E0301": 3.0, "E0701": 2.5, "E0706": 1.5, "E0707": 2.0, "E0708": 2.0, "E0709": 2.5,
                "E0505": 1.2},
    "web": {"E0301": 2.0, "E0709": 1.5},
    "visit": {"component": 0.15, **dict.fromkeys(SOCIAL_CATEGORIES, 4.0), "E0704": 3.0, "E0702": 2.0, "street": 0.2},
    "open311": {"E0301": 2.0, "E0505": 1.5},
    "import": {"component": 0.6, "E0301": 2.0, "E0701": 2.0, "E0709": 2.0},
}
_STREET_ORDER = ("E0501", "E0504", "E0505", "E0506", "E0507", "E0201", "E0204")

# How strongly a category follows where people live (exponent on the population surface):
# vending and parking crowd into the centre, illegal building and muck are village matters.
_CONCENTRATION: dict[str, float] = {
    "E0501": 1.5, "E0504": 1.5, "E0505": 1.5, "E0506": 1.5, "E0201": 1.3, "E0204": 1.5, "E0301": 1.2,
    "C0214": 1.5, "C0205": 1.5, "C0201": 1.3,
    "E0705": 0.4, "E0103": 0.6, "E0302": 0.7, "E0304": 0.7, "C0401": 0.5, "C0405": 0.8,
}
_TYPHOONS_PER_YEAR = 3


def _leaves(categories: CategoryTree | Iterable[Category]) -> list[Category]:
    if hasattr(categories, "leaves"):
        leaves = categories.leaves()
    else:
        leaves = [c for c in categories if getattr(c, "is_leaf", True)]
    return [c for c in leaves if c.time_limit_kind and c.time_limit_value]


def _affinity(source: str, code: str, is_component: bool) -> float:
    table = _AFFINITY[source]
    if code in table:
        return table[code]
    if is_component:
        return table.get("component", 1.0)
    if code in _STREET_ORDER:
        return table.get("street", 1.0)
    return 1.0


def _day_factors(days: list[date], rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """Overall activity per day (Spring Festival dip, slow growth) and the indices of typhoon landfalls."""
    factor = np.linspace(0.9, 1.1, len(days))  # the service gets better known over the year
    for index, day in enumerate(days):
        if any(-3 <= (day - festival).days <= 6 for festival in SPRING_FESTIVALS):
            factor[index] *= 0.45
        elif day.month == 10 and day.day <= 7:
            factor[index] *= 0.8  # National Day golden week
    season = [i for i, day in enumerate(days) if 7 <= day.month <= 10]
    landfalls = sorted(int(i) for i in rng.choice(season, size=min(_TYPHOONS_PER_YEAR, len(season)), replace=False))
    return factor, landfalls


def _hours_of_day(sources: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Local time of day (hours) of each report, by source: patrols in working hours, calls all day."""
    n = len(sources)
    morning = rng.uniform(8.5, 11.75, n)
    afternoon = rng.uniform(14.5, 17.75, n)
    working = np.where(rng.random(n) < 0.5, morning, afternoon)
    mixture = rng.random(n)
    calls = np.where(
        mixture < 0.40, rng.normal(10.0, 1.5, n),
        np.where(mixture < 0.75, rng.normal(15.5, 1.8, n),
                 np.where(mixture < 0.95, rng.normal(20.5, 1.5, n), rng.uniform(0, 24, n))),
    )
    online = np.where(mixture < 0.5, rng.normal(11.0, 3.0, n),
                      np.where(mixture < 0.9, rng.normal(21.0, 2.0, n), rng.uniform(0, 24, n)))
    office = rng.uniform(9.0, 17.0, n)
    hours = np.select(
        [np.isin(sources, ["patrol", "visit"]), sources == "hotline", np.isin(sources, ["web", "open311"])],
        [working, calls, online],
        office,
    )
    return np.clip(hours, 0.0, 23.99)


def generate_demo_issues(
    layers: LayerSet,
    categories: CategoryTree | Iterable[Category],
    *,
    seed: int = DEFAULT_ISSUE_SEED,
    end: datetime | None = None,
    count: int = DEFAULT_ISSUE_COUNT,
    calendar: WorkingCalendar | None = None,
) -> list[dict[str, Any]]:
    """A synthetic year of issues up to ``end`` (aware; default now) in the layer set's cells; same seed, same year."""
    tz = ZoneInfo(TIMEZONE)
    if end is None:
        end = datetime.now(tz)
    elif end.tzinfo is None or end.utcoffset() is None:
        raise InvalidInput(
            f"end {end.isoformat()} has no time zone: give an aware datetime, e.g. {end.isoformat()}+08:00"
        )
    end = end.astimezone(tz)
    if count < 0:
        raise InvalidInput(f"count must not be negative, got {count}")
    leaves = _leaves(categories)
    if not leaves:
        raise InvalidInput("the category tree has no category with a time limit to file issues under")
    if layers.cells.empty:
        raise InvalidInput("the layer set has no cells to put issues in")
    if count == 0:
        return []
    rng = np.random.default_rng(seed)
    calendar = demo_calendar(calendar, end)
    places = Places(layers, seed)

    # When, from where, about what: one draw from the (day, source, category) intensity table.
    days = [end.date() - timedelta(days=364 - i) for i in range(365)]
    months = np.array([day.month - 1 for day in days])
    working = np.array([calendar.is_working_day(day) for day in days])
    overall, landfalls = _day_factors(days, rng)
    overall[-1] *= max((end - datetime.combine(end.date(), time(0), tz)) / timedelta(days=1), 0.01)
    since_landfall = np.full(len(days), np.inf)
    for landfall in landfalls:
        since_landfall[landfall:] = np.minimum(since_landfall[landfall:], np.arange(len(days) - landfall))
    sources = list(_SOURCES)
    codes = [c.code for c in leaves]
    components = [str(getattr(c.kind, "value", c.kind)) == "component" for c in leaves]
    source_day = np.array([np.where(working, share, share * off_days) for share, off_days in _SOURCES.values()])
    category_day = np.array(
        [
            _CATEGORY_WEIGHTS.get(code, 1.0)
            * np.asarray(_SEASONS.get(code, (1.0,) * 12))[months]
            * (1 + _TYPHOON_SURGE.get(code, 0.0) * np.exp(-since_landfall / 1.5))
            for code in codes
        ]
    )
    affinity = np.array([[_affinity(s, code, comp) for code, comp in zip(codes, components)] for s in sources])
    intensity = overall[:, None, None] * source_day.T[:, :, None] * category_day.T[:, None, :] * affinity[None]
    flat = rng.choice(intensity.size, size=count, p=(intensity / intensity.sum()).ravel())
    day_index, source_index, category_index = np.unravel_index(flat, intensity.shape)
    issue_sources = np.array(sources, dtype=object)[source_index]

    # Where: near a hotspot for some categories, else in a cell drawn by population.
    hotspot_ok = [places.locate(np.array([h.lon]), np.array([h.lat]))[0] >= 0 for h in HOTSPOTS]
    hotspot = np.full(count, -1)
    target = np.zeros(count, dtype=int)
    for j, code in enumerate(codes):
        members = np.flatnonzero(category_index == j)
        if not len(members):
            continue
        shares = np.array([h.shares.get(code, 0.0) if ok else 0.0 for h, ok in zip(HOTSPOTS, hotspot_ok)])
        choice = rng.choice(len(HOTSPOTS) + 1, size=len(members), p=np.append(shares, 1 - shares.sum()))
        hotspot[members] = np.where(choice < len(HOTSPOTS), choice, -1)
        weights = places.weights(_CONCENTRATION.get(code, 1.0))
        target[members] = rng.choice(len(places.codes), size=len(members), p=weights)
    lon, lat, cell = place_points(places, target, hotspot, rng)

    # The case's course through the workflow, then cut at ``end``.
    hours = _hours_of_day(issue_sources, rng)
    hours_today = (end - datetime.combine(end.date(), time(0), tz)) / timedelta(hours=1)
    for _ in range(20):  # today's reports come before ``end``
        late = np.flatnonzero((day_index == len(days) - 1) & (hours >= hours_today))
        hours[late] = _hours_of_day(issue_sources[late], rng)
    day_index[(day_index == len(days) - 1) & (hours >= hours_today)] -= 1  # e.g. patrols before 08:30
    draws = Draws.draw(rng, count, issue_sources, [leaves[j] for j in category_index])
    issues = []
    for i in range(count):
        category = leaves[category_index[i]]
        reported = datetime.combine(days[day_index[i]], time(0), tz) + timedelta(hours=float(hours[i]))
        reported = reported.replace(microsecond=0)
        course = plan_course(draws, i, category, issue_sources[i], reported, calendar)
        issues.append(
            {"i": i, "category": category, "source": issue_sources[i], "reported_at": reported, "cell": cell[i],
             "lon": lon[i], "lat": lat[i], "hotspot": hotspot[i], "typhoon": since_landfall[day_index[i]] <= 4,
             **course}
        )
    stall_a_few(issues, end, rng)
    hold_the_newest(issues)
    issues.sort(key=lambda issue: (issue["reported_at"], issue["i"]))
    return [_record(issue, end, places, draws, rng) for issue in issues]


def _record(
    issue: dict[str, Any], end: datetime, places: Places, draws: Draws, rng: np.random.Generator
) -> dict[str, Any]:
    """The issue as the intake takes it: stages reached by ``end``, status, text and people."""
    category, source = issue["category"], issue["source"]
    stages, status, satisfaction = state_at(issue, end, draws)
    cell_code = places.codes[issue["cell"]]
    place, address = place_text(issue, cell_code, places, rng)
    name, phone = reporter(source, cell_code, rng)
    department = category.department
    return {
        "category": category.code,
        "description": description(category, place, source, issue["typhoon"], rng),
        "source": source,
        "reporter_name": name,
        "reporter_phone": phone,
        "lon": float(issue["lon"]),
        "lat": float(issue["lat"]),
        "address": address,
        "reported_at": issue["reported_at"],
        "status": status,
        **stages,
        "satisfaction": satisfaction,
        "department": department,
        "assignee": pick(staff_of(department), rng) if stages["dispatched_at"] is not None else None,
    }
