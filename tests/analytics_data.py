"""Issue rows for analytics tests, written straight into the database (fast: thousands per test)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from gridmap.storage.models import Issue

BEIJING = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    """A Beijing-time moment from 'YYYY-MM-DD HH:MM' (or a date)."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=BEIJING)


def cell_codes(gm) -> list[str]:
    """The cell codes of the test's layer set, in layer order."""
    return [str(code) for code in gm.areas.layers.cells["code"]]


def issue_row(gm, *, cell: str | None = None, category: str = "E0102", status: str = "reported",
              reported: str = "2025-06-03 09:00", lon: float | None = None, lat: float | None = None,
              **columns: Any) -> Issue:
    """An Issue in ``cell`` (default the first) with stage times given as 'YYYY-MM-DD HH:MM' strings."""
    layers = gm.areas.layers
    cell = cell or cell_codes(gm)[0]
    codes = layers.ancestors(cell)
    if lon is None or lat is None:
        centre = layers.cells.set_index("code").geometry[cell].representative_point()
        lon, lat = centre.x, centre.y
    times = {key: at(value) if isinstance(value, str) else value for key, value in columns.items()
             if key.endswith("_at") or key == "deadline"}
    others = {key: value for key, value in columns.items() if key not in times}
    return Issue(category=category, description="测试问题", source="patrol", lon=lon, lat=lat, cell_code=cell,
                 community_code=codes["community"], street_code=codes["street"], district_code=codes["district"],
                 urgency="normal", status=status, reported_at=at(reported), created_at=at(reported), photos=[],
                 extra={}, rework_count=others.pop("rework_count", 0),
                 extension_count=others.pop("extension_count", 0), **times, **others)


def closed_case(gm, *, reported: str = "2025-06-03 09:00", deadline: str = "2025-06-10 18:00",
                closed: str | None = "2025-06-08 10:00", **columns: Any) -> Issue:
    """A registered and dispatched case, closed at ``closed`` (None: still in progress)."""
    status = "closed" if closed else "in_progress"
    stages = {"registered_at": reported, "dispatched_at": reported, "deadline": deadline}
    if closed:
        stages["closed_at"] = closed
    return issue_row(gm, status=status, reported=reported, **{**stages, **columns})


def add(gm, issues: list[Issue]) -> None:
    """Write the issues in one transaction."""
    with gm.db.session() as session:
        session.add_all(issues)


def shift(text: str, **delta: float) -> str:
    """'YYYY-MM-DD HH:MM' moved by a timedelta."""
    return (datetime.fromisoformat(text) + timedelta(**delta)).strftime("%Y-%m-%d %H:%M")
