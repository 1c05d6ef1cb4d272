"""OGC API – Features, Part 1: Core — collections of areas and issues as GeoJSON features.

No web framework here: every function takes the core, the absolute base URL of the API and the
query values, and returns the JSON-ready document.  Collections: ``districts``, ``streets``,
``communities``, ``cells`` (with current issue counts and this month's coverage as properties)
and ``issues`` (points, no personal data: reporter, phone and assignee are never shown).

``items`` takes ``bbox`` (minx,miny,maxx,maxy in WGS84, features intersecting it), ``datetime``
(an instant or an interval ``a/b`` with ``..`` for an open end; on ``reported_at`` for issues,
areas have no time and are not filtered by it), ``limit`` (1–10,000, default 10) and ``offset``;
issues also take ``status`` (a status, ``open`` or ``closed``; comma list) and ``category`` (an
item or class code).  Unknown parameters are refused (400), as the standard asks.  Issues are
paged by id: their ``next`` link carries ``after`` (the last id shown) instead of an offset, so
pages stay stable while issues arrive; ``offset`` still works.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from shapely.geometry import box, mapping
from sqlalchemy import func, select

from gridmap.errors import InvalidInput, NotFound
from gridmap.geo.layers import LEVELS
from gridmap.issues.counts import IssueFilter, area_counts
from gridmap.issues.params import bbox_conditions, parse_bbox, parse_integer, parse_paging, parse_statuses
from gridmap.issues.states import STATUS_LABELS
from gridmap.security.access import AccessScope
from gridmap.storage.models import MAX_ROW_ID, Issue

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GEOJSON = "application/geo+json"
DEFAULT_LIMIT = 10
MAX_LIMIT = 10000
COMMON_PARAMETERS = ("bbox", "datetime", "limit", "offset", "f")
ISSUE_PARAMETERS = ("status", "category", "after")
TITLES = {
    "districts": ("区", "Districts"),
    "streets": ("街道/镇", "Streets and towns"),
    "communities": ("社区/村", "Communities and villages"),
    "cells": ("网格", "Grid cells, with current issue counts and this month's coverage"),
    "issues": ("诉求/案件", "Issues (citizens' problems), without personal data"),
}
COLLECTIONS = (*LEVELS, "issues")
#: Largest issue id the databases can hold (a 32-bit INTEGER on PostgreSQL); larger ones cannot exist.
MAX_ID = MAX_ROW_ID


def landing_page(base: str) -> dict[str, Any]:
    """The landing page with its required links."""
    return {
        "title": "gridmap OGC API – Features",
        "description": "网格化服务管理: areas (district, streets, communities, grid cells) and issues as features",
        "links": [
            {"href": f"{base}/", "rel": "self", "type": "application/json", "title": "This document"},
            {"href": f"{base}/?f=html", "rel": "alternate", "type": "text/html", "title": "This document as HTML"},
            {"href": f"{base}/api", "rel": "service-desc", "type": "application/vnd.oai.openapi+json;version=3.0",
             "title": "The API definition (OpenAPI 3.0)"},
            {"href": f"{base}/conformance", "rel": "conformance", "type": "application/json",
             "title": "Conformance classes"},
            {"href": f"{base}/collections", "rel": "data", "type": "application/json", "title": "The collections"},
        ],
    }


def conformance() -> dict[str, Any]:
    """The conformance declaration."""
    return {"conformsTo": CONFORMANCE}


def _issue_extent(gm: Any) -> tuple[list[float], list[str | None]]:
    with gm.db.sessions() as session:
        row = session.execute(select(func.min(Issue.lon), func.min(Issue.lat), func.max(Issue.lon), func.max(Issue.lat),
                                     func.min(Issue.reported_at), func.max(Issue.reported_at))).one()
    west, south, east, north, first, last = row
    bbox = [float(v) for v in (west, south, east, north)] if west is not None else _layer_bbox(gm, "districts")
    interval = [None if m is None else m.astimezone(UTC).isoformat().replace("+00:00", "Z") for m in (first, last)]
    return bbox, interval


def _layer_bbox(gm: Any, level: str) -> list[float]:
    return [round(float(v), 6) for v in gm.areas.layers.level(level).total_bounds]


def collection(gm: Any, base: str, name: str) -> dict[str, Any]:
    """One collection's description with its extent and links."""
    if name not in COLLECTIONS:
        raise NotFound(f"no collection {name!r}; the collections are {', '.join(COLLECTIONS)}")
    title, description = TITLES[name]
    if name == "issues":
        bbox, interval = _issue_extent(gm)
        extent: dict[str, Any] = {"spatial": {"bbox": [bbox], "crs": CRS84},
                                  "temporal": {"interval": [interval], "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}}
    else:
        extent = {"spatial": {"bbox": [_layer_bbox(gm, name)], "crs": CRS84}}
    href = f"{base}/collections/{name}"
    return {
        "id": name,
        "title": title,
        "description": description,
        "itemType": "feature",
        "crs": [CRS84],
        "extent": extent,
        "links": [
            {"href": href, "rel": "self", "type": "application/json", "title": title},
            {"href": f"{href}/items", "rel": "items", "type": GEOJSON, "title": f"{title} (GeoJSON)"},
        ],
    }


def collections(gm: Any, base: str) -> dict[str, Any]:
    """Every collection."""
    return {
        "links": [{"href": f"{base}/collections", "rel": "self", "type": "application/json",
                   "title": "The collections"}],
        "collections": [collection(gm, base, name) for name in COLLECTIONS],
    }


# --- query parameters ------------------------------------------------------------------------


def _instant(text: str, end: bool) -> datetime:
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day + timedelta(days=1) if end else day, time(), UTC)
            return moment - timedelta(microseconds=1) if end else moment
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"datetime {text!r} is not an RFC 3339 date-time (2026-06-01T08:00:00Z) or date") from None
    if moment.tzinfo is None:
        raise InvalidInput(f"datetime {text!r} needs a time zone (Z or +08:00)")
    return moment


def parse_datetime_filter(value: str | None) -> tuple[datetime | None, datetime | None] | None:
    """(start, end) of an instant or interval; None when absent; open ends are None."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    if "/" in text:
        first, _, second = text.partition("/")
        start = None if first in ("", "..") else _instant(first, False)
        end = None if second in ("", "..") else _instant(second, True)
        if start is None and end is None:
            raise InvalidInput("datetime '../..' leaves both ends open; give at least one")
        if start and end and start > end:
            raise InvalidInput(f"datetime {text!r}: the start is after the end; swap them")
        return start, end
    if text == "..":
        raise InvalidInput("datetime '..' is not an instant")
    return _instant(text, False), _instant(text, True) if len(text) == 10 else _instant(text, False)


def _check_parameters(name: str, values: Mapping[str, Any]) -> None:
    allowed = COMMON_PARAMETERS + (ISSUE_PARAMETERS if name == "issues" else ())
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise InvalidInput(f"unknown parameter(s) {', '.join(unknown)}; {name} items take {', '.join(allowed)}")
    fmt = values.get("f")
    if fmt not in (None, "", "json", "geojson"):
        raise InvalidInput(f"f={fmt!r}: items are available as f=json (GeoJSON) only")


# --- features --------------------------------------------------------------------------------


def _area_properties(gm: Any, name: str, session, access: AccessScope) -> dict[str, dict[str, Any]]:
    """Extra properties of the cells: issue counts now and coverage of the current month."""
    if name != "cells":
        return {}
    from gridmap.coverage.metrics import cell_coverage

    counts = {row["code"]: row for row in area_counts(session, "cells",
                                                      IssueFilter(timezone=gm.timezone, access=access))}
    today = datetime.now(ZoneInfo(gm.timezone)).date()
    coverage = {row["code"]: row for row in cell_coverage(
        session, today.replace(day=1), today, as_of=today, access=access,
        min_patrol_minutes=gm.settings["patrol_min_minutes"], stale_days=gm.settings["patrol_stale_days"])}
    extra = {}
    for code in gm.areas.layers.cells["code"]:
        count, cover = counts.get(code, {}), coverage.get(code, {})
        extra[code] = {
            "issues_total": count.get("total", 0), "issues_open": count.get("open", 0),
            "issues_overdue": count.get("overdue", 0), "issues_closed": count.get("closed", 0),
            "households": cover.get("households", 0), "visit_coverage": cover.get("visit_coverage"),
            "patrol_coverage": cover.get("patrol_coverage"), "last_patrol": cover.get("last_patrol"),
            "stale": cover.get("stale"),
        }
    return extra


def _area_feature(row: Mapping[str, Any], geometry: Any, name: str, extra: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = {"code": row["code"], "name": row["name"]}
    if name != "districts":
        properties["parent_code"] = row["parent_code"]
    properties["area_m2"] = round(float(row["area_m2"]), 1)
    properties.update(extra.get(row["code"], {}))
    return {"type": "Feature", "id": row["code"], "geometry": _rounded(mapping(geometry)), "properties": properties}


def _rounded(geometry: dict[str, Any]) -> dict[str, Any]:
    def walk(obj: Any) -> Any:
        if isinstance(obj, (list, tuple)):
            if obj and isinstance(obj[0], (int, float)):
                return [round(float(v), 6) for v in obj]
            return [walk(item) for item in obj]
        return obj

    return {"type": geometry["type"], "coordinates": walk(geometry["coordinates"])}


def issue_feature(issue: Issue, gm: Any) -> dict[str, Any]:
    """An issue as a GeoJSON Feature, without personal data."""
    tz = ZoneInfo(gm.timezone)
    category = gm.categories.get(issue.category) if issue.category in gm.categories else None

    def moment(value: datetime | None) -> str | None:
        return None if value is None else value.astimezone(tz).isoformat()

    return {
        "type": "Feature",
        "id": issue.id,
        "geometry": {"type": "Point", "coordinates": [issue.lon, issue.lat]},
        "properties": {
            "category": issue.category,
            "category_name": category.name_zh if category else None,
            "description": issue.description,
            "source": issue.source,
            "status": issue.status,
            "status_label": STATUS_LABELS.get(issue.status, issue.status),
            "urgency": issue.urgency,
            "address": issue.address,
            "cell": issue.cell_code,
            "community": issue.community_code,
            "street": issue.street_code,
            "district": issue.district_code,
            "department": issue.department,
            "reported_at": moment(issue.reported_at),
            "deadline": moment(issue.deadline),
            "closed_at": moment(issue.closed_at),
        },
    }


def _issue_conditions(gm: Any, values: Mapping[str, Any], bbox, period, access: AccessScope) -> list[Any]:
    conditions: list[Any] = list(access.issue_conditions())
    category = values.get("category")
    if category not in (None, ""):
        conditions += IssueFilter.parse(date_from=None, date_to=None, category=category, categories=gm.categories,
                                        timezone_name=gm.timezone, access=access).conditions()
    statuses = parse_statuses(values.get("status"))
    if statuses:
        conditions.append(Issue.status.in_(statuses))
    conditions += bbox_conditions(bbox)
    if period:
        start, end = period
        if start is not None:
            conditions.append(Issue.reported_at >= start)
        if end is not None:
            conditions.append(Issue.reported_at <= end)
    return conditions


def items(gm: Any, base: str, name: str, values: Mapping[str, Any], *, access: AccessScope,
          now: datetime | None = None) -> dict[str, Any]:
    """A page of a collection's features with numberMatched, numberReturned and next/prev links.

    ``access``: the issues the caller may see (anonymous callers see the public, unmasked-free view of all).
    """
    if name not in COLLECTIONS:
        raise NotFound(f"no collection {name!r}; the collections are {', '.join(COLLECTIONS)}")
    _check_parameters(name, values)
    bbox = parse_bbox(values.get("bbox"))
    period = parse_datetime_filter(values.get("datetime"))
    limit, offset = parse_paging(values.get("limit"), values.get("offset"), default_limit=DEFAULT_LIMIT,
                                 max_limit=MAX_LIMIT)
    given = values.get("after")
    after = None if given in (None, "") else parse_integer(given, "after", 0, 0, MAX_ROW_ID)
    if after is not None and offset:
        raise InvalidInput("give after or offset, not both: after (from the next link) says where the page starts")
    next_after = None
    with gm.db.sessions() as session:
        if name == "issues":
            conditions = _issue_conditions(gm, values, bbox, period, access)
            matched = int(session.scalar(select(func.count()).select_from(Issue).where(*conditions)) or 0)
            keyset = [] if after is None else [Issue.id > after]
            rows = session.scalars(select(Issue).where(*conditions, *keyset).order_by(Issue.id)
                                   .limit(limit + 1).offset(offset)).all()
            if len(rows) > limit:  # the next page starts after this page's last id (stable while issues arrive)
                rows, next_after = rows[:limit], rows[limit - 1].id
            features = [issue_feature(issue, gm) for issue in rows]
        else:
            frame = gm.areas.layers.level(name)
            geometries = np.asarray(frame.geometry.values, dtype=object)
            keep = np.arange(len(frame)) if bbox is None else np.flatnonzero(shapely.intersects(geometries, box(*bbox)))
            matched = len(keep)
            page = keep[offset:offset + limit]
            extra = _area_properties(gm, name, session, access) if len(page) else {}
            subset = frame.iloc[page]
            features = [_area_feature(row, geometry, name, extra)
                        for row, geometry in zip(subset.to_dict("records"), subset.geometry.values)]
    href = f"{base}/collections/{name}/items"
    query = {key: value for key, value in values.items()
             if key not in ("offset", "after", "f") and value not in (None, "")}
    here = {"offset": offset} if offset else {"after": after} if after is not None else {}
    links = [
        {"href": _url(href, {**query, **here}), "rel": "self", "type": GEOJSON, "title": "This page"},
        {"href": f"{base}/collections/{name}", "rel": "collection", "type": "application/json",
         "title": "The collection"},
    ]
    if name == "issues":
        if next_after is not None:
            links.append({"href": _url(href, {**query, "limit": limit, "after": next_after}), "rel": "next",
                          "type": GEOJSON, "title": "Next page"})
    elif offset + len(features) < matched:
        links.append({"href": _url(href, {**query, "limit": limit, "offset": offset + limit}), "rel": "next",
                      "type": GEOJSON, "title": "Next page"})
    if offset > 0:
        links.append({"href": _url(href, {**query, "limit": limit, "offset": max(offset - limit, 0)}), "rel": "prev",
                      "type": GEOJSON, "title": "Previous page"})
    return {
        "type": "FeatureCollection",
        "features": features,
        "timeStamp": (now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "numberMatched": matched,
        "numberReturned": len(features),
        "links": links,
    }


def item(gm: Any, base: str, name: str, feature_id: str, *, access: AccessScope) -> dict[str, Any]:
    """One feature by id, or NotFound (also for an issue outside ``access``)."""
    if name not in COLLECTIONS:
        raise NotFound(f"no collection {name!r}; the collections are {', '.join(COLLECTIONS)}")
    href = f"{base}/collections/{name}"
    if name == "issues":
        issue = None
        if feature_id.isdigit() and int(feature_id) <= MAX_ID:
            with gm.db.sessions() as session:
                issue = session.get(Issue, int(feature_id))
        if issue is None or not access.covers_issue(issue):
            raise NotFound(f"no issue has the id {feature_id!r}")
        feature = issue_feature(issue, gm)
    else:
        frame = gm.areas.layers.level(name)
        match = np.flatnonzero(frame["code"].to_numpy(dtype=object) == feature_id)
        if not len(match):
            raise NotFound(f"no feature {feature_id!r} in {name}")
        row = frame.iloc[int(match[0])]
        extra = {}
        if name == "cells":
            with gm.db.sessions() as session:
                extra = _area_properties(gm, name, session, access)
        feature = _area_feature(row.to_dict(), row.geometry, name, extra)
    feature["links"] = [
        {"href": f"{href}/items/{feature_id}", "rel": "self", "type": GEOJSON, "title": "This feature"},
        {"href": href, "rel": "collection", "type": "application/json", "title": "The collection"},
    ]
    return feature


def _url(href: str, query: Mapping[str, Any]) -> str:
    from urllib.parse import urlencode

    return f"{href}?{urlencode(query)}" if query else href
