"""Trends: issue counts and indicators per week or month, by category class or area, and chart geometry.

Buckets are calendar weeks (Monday–Sunday) or calendar months in the service's time zone, clipped
to the requested period, so the first and last bucket may be partial. Counts are issues *reported*
in a bucket; indicators per bucket follow gridmap.analytics.indicators with the bucket as the period.
Charts are drawn server-side as inline SVG: :func:`line_chart` turns series into coordinates and
the template draws them (labels stay autoescaped). Like the indicators, every count takes the
asking principal's ``access`` and counts only the issues inside it.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridmap.analytics.indicators import AREA_LEVELS, DEFAULT_DUE_RULE, INDICATORS, RATES, Period, load_issues, tally
from gridmap.errors import InvalidInput
from gridmap.issues.categories import CategoryTree, load_categories
from gridmap.issues.counts import IssueFilter
from gridmap.issues.params import parse_choice
from gridmap.security.access import AccessScope
from gridmap.storage.models import Area, Issue
from gridmap.storage.rollup import issue_rollup, rollup_timezone

INTERVALS: tuple[str, ...] = ("week", "month")
BY: tuple[str, ...] = ("category", "area")
#: Indicators drawn by default on the trend chart.
TREND_INDICATORS: tuple[str, ...] = ("closure_rate", "on_time_rate", "rework_rate", "satisfaction_rate")
#: At most this many buckets (about ten years of months).
MAX_BUCKETS = 160


def buckets(period: Period, interval: str) -> list[tuple[str, Period]]:
    """The week or month buckets covering the period, as (label, sub-period), clipped to it."""
    parse_choice(interval, INTERVALS, "interval", interval)
    result = []
    start = period.date_from
    while start <= period.date_to:
        if interval == "week":
            end = start + timedelta(days=6 - start.weekday())
            year, week, _ = start.isocalendar()
            label = f"{year}-W{week:02d}"
        else:
            end = _month_end(start)
            label = f"{start.year}-{start.month:02d}"
        end = min(end, period.date_to)
        result.append((label, Period(start, end, period.timezone)))
        if len(result) > MAX_BUCKETS:
            raise InvalidInput(f"more than {MAX_BUCKETS} {interval}s; shorten the period or use month")
        start = end + timedelta(days=1)
    return result


def _month_end(day: date) -> date:
    following = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return following - timedelta(days=1)


def trend_counts(session: Session, period: Period, interval: str = "week", *, access: AccessScope,
                 by: str = "category", level: str = "districts", top: int = 8, categories: CategoryTree | None = None,
                 category: str | None = None) -> dict[str, Any]:
    """Issues in ``access`` reported per bucket by category class (``E05``) or area,
    the ``top`` largest series first."""
    parse_choice(by, BY, "by", by)
    parse_choice(level, AREA_LEVELS, "level", level)
    parts = buckets(period, interval)
    per_bucket = _per_bucket(session, period, parts, by, level, category, access)
    totals = sum(per_bucket, Counter())
    keys = [key for key, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]
    names = _names(session, by, level, categories)
    return {
        "period": period.as_dict(), "interval": interval, "by": by,
        "buckets": [label for label, _ in parts],
        "series": [{"key": key, "name": names.get(key, key), "values": [c[key] for c in per_bucket]} for key in keys],
        "total": [sum(c.values()) for c in per_bucket],
    }


def _per_bucket(session: Session, period: Period, parts: list[tuple[str, Period]], by: str, level: str,
                category: str | None, access: AccessScope) -> list[Counter]:
    """Issues per bucket and series key: from the rollup's days when it is built for the period's zone,
    else raw rows."""
    column = Issue.category if by == "category" else AREA_LEVELS[level]
    per_bucket: list[Counter] = [Counter() for _ in parts]
    issue_filter = IssueFilter(period.date_from, period.date_to, category or None, period.timezone, access)
    if rollup_timezone(session.connection()) == period.timezone:
        key_column = issue_rollup.c[column.key]
        statement = (select(issue_rollup.c.day, key_column, func.sum(issue_rollup.c.issues))
                     .where(*issue_filter.conditions(issue_rollup.c)).group_by(issue_rollup.c.day, key_column))
        firsts = [part.date_from for _, part in parts]
        for day, key, count in session.execute(statement).all():
            index = bisect.bisect_right(firsts, day) - 1
            per_bucket[index][key[:3] if by == "category" else key] += int(count)
        return per_bucket
    for reported_at, key in session.execute(select(Issue.reported_at, column).where(*issue_filter.conditions())).all():
        key = key[:3] if by == "category" else key
        for index, (_, part) in enumerate(parts):
            if part.contains(reported_at):
                per_bucket[index][key] += 1
                break
    return per_bucket


def _names(session: Session, by: str, level: str, categories: CategoryTree | None) -> dict[str, str]:
    if by == "area":
        return dict(session.execute(select(Area.code, Area.name).where(Area.level == level)).all())
    return {c.code: c.name_zh for c in (categories or load_categories()).majors()}


def trend_indicators(session: Session, period: Period, interval: str = "month", *, access: AccessScope,
                     names: tuple[str, ...] = TREND_INDICATORS, due_rule: str = DEFAULT_DUE_RULE,
                     category: str | None = None) -> dict[str, Any]:
    """Indicators (rates and counts of gridmap.analytics.indicators) per bucket over the issues in ``access``."""
    unknown = [name for name in names if name not in INDICATORS]
    if unknown:
        raise InvalidInput(f"unknown indicator(s) {', '.join(unknown)}; use some of {', '.join(INDICATORS)}")
    parts = buckets(period, interval)
    issues = load_issues(session, period, category, access=access)
    rows = [tally([i for i in issues if _touches(i, part)], part, due_rule).as_dict() for _, part in parts]
    return {
        "period": period.as_dict(), "interval": interval, "due": due_rule,
        "buckets": [label for label, _ in parts],
        "series": [{"key": name, "name": INDICATORS[name][0], "values": [row[name] for row in rows]} for name in names],
    }


def _touches(issue: Any, part: Period) -> bool:
    return part.contains(issue.reported_at) or part.contains(issue.deadline) or part.contains(issue.closed_at)


PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f")


def line_chart(labels: list[str], series: list[dict[str, Any]], *, percent: bool = False, width: int = 640,
               height: int = 260) -> dict[str, Any]:
    """SVG geometry of a line chart: plot box, y ticks, x labels and one polyline per series (None = gap)."""
    left, right, top, bottom = 48, 36, 12, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in series for v in s["values"] if v is not None]
    peak = max([1.0, *values]) if percent else _nice_peak(max([4, *values]))  # at least 0–4: whole ticks
    step = max(1, len(labels) - 1)

    def x_at(index: int) -> float:
        return round(left + plot_w * index / step, 1) if len(labels) > 1 else left + plot_w / 2

    def y_at(value: float) -> float:
        return round(top + plot_h * (1 - value / peak), 1)

    lines = []
    for number, item in enumerate(series):
        segments, current = [], []
        for index, value in enumerate(item["values"]):
            if value is None:
                if current:
                    segments.append(current)
                current = []
                continue
            current.append((x_at(index), y_at(value), value))
        if current:
            segments.append(current)
        lines.append({
            "name": item["name"], "color": PALETTE[number % len(PALETTE)],
            "segments": [" ".join(f"{x},{y}" for x, y, _ in seg) for seg in segments],
            "points": [{"x": x, "y": y, "title": f"{item['name']}: {_fmt(v, percent)}"}
                       for seg in segments for x, y, v in seg],
        })
    ticks = [{"y": y_at(peak * k / 4), "label": _fmt(peak * k / 4, percent)} for k in range(5)]
    every = max(1, len(labels) // 8)
    x_labels = [{"x": x_at(i), "label": label} for i, label in enumerate(labels) if i % every == 0]
    return {"width": width, "height": height, "left": left, "top": top, "plot_w": plot_w, "plot_h": plot_h,
            "bottom_y": top + plot_h, "ticks": ticks, "x_labels": x_labels, "lines": lines}


def _nice_peak(value: float) -> float:
    """The smallest 4 × (1, 2, 2.5 or 5 × 10^k) at least ``value``, so the five ticks read round."""
    step = value / 4
    magnitude = 10 ** math.floor(math.log10(step))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * magnitude >= step:
            return 4 * factor * magnitude
    return 4 * 10 * magnitude


def _fmt(value: float, percent: bool) -> str:
    if percent:
        return f"{value * 100:.0f}%" if value in (0, 0.25, 0.5, 0.75, 1) else f"{value * 100:.1f}%"
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def is_rate(name: str) -> bool:
    """Whether an indicator is a rate (charted as a percentage)."""
    return name in RATES


__all__ = ["BY", "INTERVALS", "buckets", "line_chart", "trend_counts", "trend_indicators"]
