"""Open311 GeoReport v2: services from the category tree, service requests from the issues.

The web layer (gridmap/web/open311_api.py) only picks the format from the URL's extension and
hands the query or form values here.  Everything the specification decides lives in this module:

- services are the leaf categories (service_code = category code, ``group`` = its major class);
  component (部件) services take the attribute ``COMPONENT_ID`` (the 16-digit CJ/T 214 id);
- ``status`` is ``open`` for issues still being worked on and ``closed`` for closed, revisited
  and rejected (不予立案) ones; ``status_notes`` carries the Chinese status name;
- GET requests: ``service_request_id`` (comma list) overrides every other filter; otherwise the
  window is ``start_date``–``end_date`` on requested_datetime, at most 90 days (the most recent
  90 days when neither is given, 90 days from/to the one given), newest first, at most 1,000
  per page (``page``, ``page_size``);
- POST: ``api_key`` (query or body) must be a key made with ``gridmap keys add``; ``lat``/``long``
  (WGS84) are required: ``address_string``/``address_id`` alone cannot be located (no geocoder
  runs offline) and are answered 400; the request goes through the normal intake (located,
  routed, deadline, duplicate check) with source ``open311``; a point outside every cell is a 400;
- empty parameters count as absent; errors are the spec's error list (code, description);
- no personal data is ever answered: reporter name, phone, e-mail and the assignee stay inside.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridmap.errors import Forbidden, GridmapError, InvalidInput, NotFound, OutsideCells, UnknownCategory
from gridmap.issues.categories import Category, CategoryKind, CategoryTree
from gridmap.issues.idempotency import RetryKey, request_hash
from gridmap.issues.intake import parse_datetime
from gridmap.issues.params import parse_integer
from gridmap.issues.states import OPEN_STATUSES, STATUS_LABELS
from gridmap.security.access import UNLIMITED
from gridmap.storage.interop import ApiKey, Open311Token
from gridmap.storage.models import MAX_ROW_ID, Issue

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
#: When this interface last changed (discovery's ``changeset``).
CHANGESET = "2026-11-22T00:00:00+08:00"
FORMATS = ("xml", "json")
MEDIA_TYPES = {"xml": "text/xml; charset=utf-8", "json": "application/json; charset=utf-8"}
MAX_WINDOW = timedelta(days=90)
MAX_PAGE_SIZE = 1000
MAX_DESCRIPTION = 4000
#: Largest request id the databases can hold (a 32-bit INTEGER on PostgreSQL); larger ones cannot exist.
MAX_ID = MAX_ROW_ID
COMPONENT_ID = re.compile(r"\d{16}")


# --- API keys --------------------------------------------------------------------------------


def hash_key(key: str) -> str:
    """The stored form of an API key: its SHA-256 hex digest."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def add_api_key(session: Session, name: str) -> str:
    """Create a key for the client ``name`` and return it; only its hash is stored."""
    name = (name or "").strip()
    if not name:
        raise InvalidInput("the key needs a name (the client it is for)")
    if len(name) > 100:
        raise InvalidInput("the key name is longer than 100 characters")
    if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise InvalidInput(f"a key named {name!r} exists already; choose another name")
    key = secrets.token_urlsafe(24)
    session.add(ApiKey(name=name, key_hash=hash_key(key), created_at=datetime.now(UTC)))
    session.flush()
    return key


def check_api_key(session: Session, key: str | None) -> ApiKey:
    """The ApiKey row of a valid key; Forbidden (403) when it is missing, unknown or revoked."""
    if not key:
        raise Forbidden("api_key is required to post a service request")
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    if row is None or row.revoked_at is not None:
        raise Forbidden("api_key is not valid")
    return row


# --- parameters ------------------------------------------------------------------------------


def param(values: Mapping[str, Any], name: str) -> str | None:
    """A parameter's text, or None when it is absent or empty (the spec treats both alike)."""
    value = values.get(name)
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _moment(values: Mapping[str, Any], name: str, tz: ZoneInfo) -> datetime | None:
    text = param(values, name)
    if text is None:
        return None
    text = re.sub(r"(T[\d:.]+) (\d\d:?\d\d)$", r"\1+\2", text)  # an unencoded "+" arrives as a space
    try:
        return parse_datetime(text, tz)
    except ValueError:
        raise InvalidInput(f"{name} {text!r} is not a date-time; use ISO 8601 such as "
                           "2026-06-01T08:30:00+08:00") from None


def _int(values: Mapping[str, Any], name: str, default: int, low: int, high: int | None) -> int:
    return parse_integer(param(values, name), name, default, low, high)


# --- services --------------------------------------------------------------------------------


def services(categories: CategoryTree) -> list[dict[str, Any]]:
    """GET services: one service per leaf category, in file order."""
    answer = []
    for category in categories:
        if not category.is_leaf:
            continue
        group = categories.get(category.parent_code).name_zh if category.parent_code else category.name_zh
        answer.append({
            "service_code": category.code,
            "service_name": category.name_zh,
            "description": category.description or category.name_en,
            "metadata": bool(attributes_of(category)),
            "type": "realtime",
            "keywords": ", ".join(k for k in (category.name_en, category.kind.value, category.standard) if k),
            "group": group,
        })
    return answer


def attributes_of(category: Category) -> list[dict[str, Any]]:
    """The extra attributes a service takes (``attribute[CODE]`` when posting)."""
    if category.kind is not CategoryKind.component:
        return []
    return [{
        "variable": True,
        "code": "COMPONENT_ID",
        "datatype": "string",
        "required": False,
        "datatype_description": "16 digits: district (6) + major (2) + minor (2) + serial (6), CJ/T 214",
        "order": 1,
        "description": "部件编号 (the component's identifier, if it carries a plate)",
        "values": [],
    }]


def service_definition(categories: CategoryTree, service_code: str) -> dict[str, Any]:
    """GET service definition: the service's attributes; NotFound for an unknown code."""
    category = _service(categories, service_code, NotFound)
    return {"service_code": category.code, "attributes": attributes_of(category)}


def _service(categories: CategoryTree, code: str | None, error: type[GridmapError]) -> Category:
    if not code or code not in categories or not categories.get(code).is_leaf:
        raise error(f"service_code {code!r} not found; GET services lists the service codes")
    return categories.get(code)


# --- requests: reading -----------------------------------------------------------------------


@dataclass(frozen=True)
class RequestSearch:
    """A GET requests query, as the specification reads it."""

    ids: tuple[int, ...] = ()
    service_codes: tuple[str, ...] = ()
    start: datetime | None = None
    end: datetime | None = None
    status: str | None = None
    page: int = 1
    page_size: int = MAX_PAGE_SIZE

    @classmethod
    def parse(cls, values: Mapping[str, Any], *, categories: CategoryTree, tz: ZoneInfo,
              now: datetime | None = None) -> RequestSearch:
        """Validate query values; the 90-day window is filled in when dates are missing."""
        page = _int(values, "page", 1, 1, MAX_ROW_ID // MAX_PAGE_SIZE)
        page_size = _int(values, "page_size", MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE)
        ids_text = param(values, "service_request_id")
        if ids_text is not None:
            ids = []
            for part in ids_text.split(","):
                part = part.strip()
                if not part:
                    continue
                if not part.isdigit():
                    raise InvalidInput(f"service_request_id {part!r} is not a request id")
                ids.append(int(part))
            if len(ids) > MAX_PAGE_SIZE:
                raise InvalidInput(f"at most {MAX_PAGE_SIZE} service_request_id values at once")
            # ids beyond the largest possible id match nothing; 0 stands in so the list is never empty
            ids = [i if i <= MAX_ID else 0 for i in ids] or [0]
            return cls(ids=tuple(dict.fromkeys(ids)), page=page, page_size=page_size)
        codes = []
        for code in (param(values, "service_code") or "").split(","):
            if code.strip():
                codes.append(_service(categories, code.strip(), InvalidInput).code)
        status = param(values, "status")
        if status is not None:
            status = status.lower()
            if status not in ("open", "closed"):
                raise InvalidInput(f"status {status!r} is not open or closed")
        start, end = _moment(values, "start_date", tz), _moment(values, "end_date", tz)
        if start and end:
            if start > end:
                raise InvalidInput("start_date is after end_date")
            if end - start > MAX_WINDOW:
                raise InvalidInput("start_date and end_date may not span more than 90 days")
        elif start:
            end = start + MAX_WINDOW
        elif end:
            start = end - MAX_WINDOW
        else:
            end = now or datetime.now(UTC)
            start = end - MAX_WINDOW
        return cls(service_codes=tuple(codes), start=start, end=end, status=status, page=page, page_size=page_size)

    def conditions(self) -> list[Any]:
        """SQL conditions on the issues table."""
        if self.ids:
            return [Issue.id.in_(self.ids)]
        conditions = [Issue.reported_at >= self.start, Issue.reported_at <= self.end]
        if self.service_codes:
            conditions.append(Issue.category.in_(self.service_codes))
        if self.status == "open":
            conditions.append(Issue.status.in_(sorted(OPEN_STATUSES)))
        elif self.status == "closed":
            conditions.append(Issue.status.not_in(sorted(OPEN_STATUSES)))
        return conditions

    def run(self, session: Session) -> list[Issue]:
        """The issues of the requested page, newest first."""
        statement = (select(Issue).where(*self.conditions()).order_by(Issue.reported_at.desc(), Issue.id.desc())
                     .limit(self.page_size).offset((self.page - 1) * self.page_size))
        return list(session.scalars(statement))


def get_request(session: Session, request_id: str) -> Issue:
    """GET a request by id; NotFound for an unknown or malformed id."""
    issue = session.get(Issue, int(request_id)) if request_id.isdigit() and int(request_id) <= MAX_ID else None
    if issue is None:
        raise NotFound(f"service_request_id {request_id!r} not found")
    return issue


def _w3c(moment: datetime | None, tz: ZoneInfo) -> str | None:
    return None if moment is None else moment.astimezone(tz).isoformat(timespec="seconds")


def request_as_dict(issue: Issue, categories: CategoryTree, tz: ZoneInfo) -> dict[str, Any]:
    """One service request as the spec shows it, with no personal data."""
    category = categories.get(issue.category) if issue.category in categories else None
    stamps = [issue.reported_at, issue.registered_at, issue.dispatched_at, issue.handled_at, issue.checked_at,
              issue.closed_at, issue.revisited_at, issue.suspended_at]
    return {
        "service_request_id": str(issue.id),
        "status": "open" if issue.status in OPEN_STATUSES else "closed",
        "status_notes": STATUS_LABELS.get(issue.status, issue.status),
        "service_name": category.name_zh if category else issue.category,
        "service_code": issue.category,
        "description": issue.description,
        "agency_responsible": issue.department,
        "service_notice": None,
        "requested_datetime": _w3c(issue.reported_at, tz),
        "updated_datetime": _w3c(max(s for s in stamps if s is not None), tz),
        "expected_datetime": _w3c(issue.deadline, tz),
        "address": issue.address,
        "address_id": None,
        "zipcode": None,
        "lat": issue.lat,
        "long": issue.lon,
        "media_url": (issue.photos or [None])[0],
    }


def token_lookup(session: Session, token: str) -> dict[str, Any]:
    """GET tokens/{token}: the request id the token stands for; NotFound otherwise."""
    row = session.get(Open311Token, token) if len(token) <= 32 else None
    if row is None:
        raise NotFound(f"token {token!r} not found")
    return {"service_request_id": str(row.issue_id), "token": row.token}


# --- requests: posting -----------------------------------------------------------------------


def _coordinate(values: Mapping[str, Any], name: str, low: float, high: float) -> float:
    text = param(values, name)
    try:
        number = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} {text!r} is not a number (WGS84 decimal degrees)") from None
    if not math.isfinite(number) or not low <= number <= high:
        projected = math.isfinite(number) and abs(number) > 1000  # metres of a projected CRS, not degrees
        hint = "; it looks like projected metres (e.g. UTM): send WGS84 decimal degrees" if projected else ""
        raise InvalidInput(f"{name} {text} is out of range ({low:g} to {high:g}){hint}")
    return number


def request_record(values: Mapping[str, Any], categories: CategoryTree, *,
                   now: datetime) -> tuple[dict[str, Any], str | None]:
    """The intake record of a POST requests form (and the e-mail, which is not stored); InvalidInput if bad."""
    category = _service(categories, param(values, "service_code"), UnknownCategory)
    has_lat, has_long = param(values, "lat") is not None, param(values, "long") is not None
    if not (has_lat or has_long):
        if param(values, "address_string") or param(values, "address_id"):
            raise InvalidInput("address_string/address_id cannot be located: this server has no geocoder; "
                               "send lat and long (WGS84)")
        raise InvalidInput("a location is required: send lat and long (WGS84)")
    if has_lat != has_long:
        raise InvalidInput("lat and long must be sent together")
    lon = _coordinate(values, "long", -180, 180)
    try:
        lat = _coordinate(values, "lat", -90, 90)
    except InvalidInput as exc:
        try:
            number = float(param(values, "lat") or "nan")
        except ValueError:
            raise exc from None
        if abs(lon) <= 90 and 90 < abs(number) <= 180:
            raise InvalidInput(f"{exc.message}; lat and long look swapped (lat is the one from -90 to 90)") from None
        raise
    description = param(values, "description") or category.name_zh
    if len(description) > MAX_DESCRIPTION:
        raise InvalidInput(f"description is longer than {MAX_DESCRIPTION} characters")
    attributes = {key[len("attribute["):-1]: value for key, value in values.items()
                  if key.startswith("attribute[") and key.endswith("]") and str(value).strip()}
    known = {a["code"]: a for a in attributes_of(category)}
    record: dict[str, Any] = {}
    for code, value in attributes.items():
        if code not in known:
            names = ", ".join(known) or "none"
            raise InvalidInput(f"attribute[{code}] is not an attribute of service {category.code} (its attributes: "
                               f"{names})")
        value = str(value).strip()
        if code == "COMPONENT_ID" and not COMPONENT_ID.fullmatch(value):
            raise InvalidInput(f"attribute[COMPONENT_ID] must be 16 digits, got {value!r}")
        record[f"attribute_{code.lower()}"] = value
    name = " ".join(p for p in (param(values, "first_name"), param(values, "last_name")) if p) or None
    media = param(values, "media_url")
    record.update({
        "category": category.code,
        "description": description,
        "lon": lon,
        "lat": lat,
        "address": (param(values, "address_string") or "")[:300] or None,
        "source": "open311",
        "reporter_name": name[:100] if name else None,
        "reporter_phone": (param(values, "phone") or "")[:40] or None,
        "photos": [media] if media else [],
        "reported_at": now,
    })
    return record, param(values, "email")


def post_request(gm: Any, values: Mapping[str, Any], *, now: datetime | None = None,
                 idempotency_key: str | None = None) -> dict[str, Any]:
    """POST requests: check the key, take the issue through the one intake path, answer id, token and notice.

    With an ``idempotency_key`` (the Idempotency-Key header), a retry of the same request by the same
    client answers with the request made the first time instead of making another.
    """
    now = now or datetime.now(UTC)
    with gm.db.sessions() as session:
        key = check_api_key(session, param(values, "api_key"))
        key_id, key_name = key.id, key.name
    record, _email = request_record(values, gm.categories, now=now)  # e-mail: personal data, not kept
    client = f"open311:{key_name}"
    retry = None if idempotency_key is None else RetryKey(
        client, idempotency_key, request_hash({k: v for k, v in values.items() if k != "api_key"}))
    token = secrets.token_hex(16)

    def keep_token(session: Session, issue_id: int) -> None:  # the issue, its token and the retry key in one go
        session.add(Open311Token(token=token, issue_id=issue_id, api_key_id=key_id, created_at=now))
        session.flush()

    try:
        done = gm.intake.submit(gm.db, record, access=UNLIMITED, actor=client, default_source="open311",
                                retry=retry, also=keep_token)
    except OutsideCells as exc:  # the spec knows 400, not 422, for a point outside every cell
        raise InvalidInput(exc.message) from None
    issue_id = done.issue_id
    if done.replayed:
        with gm.db.sessions() as session:
            first = session.scalar(select(Open311Token.token).where(Open311Token.issue_id == issue_id))
        return {"service_request_id": str(issue_id), "token": first, "service_notice": None, "account_id": None}
    tz = ZoneInfo(gm.timezone)
    notices = []
    if done.issue.deadline is not None:
        notices.append(f"处理时限 {_w3c(done.issue.deadline, tz)}")
    if done.issue.possible_duplicate_of is not None:
        notices.append(f"可能与诉求 {done.issue.possible_duplicate_of} 重复")
    return {"service_request_id": str(issue_id), "token": token,
            "service_notice": "；".join(notices) or None, "account_id": None}


# --- serialisation ---------------------------------------------------------------------------


def discovery(base_url: str) -> dict[str, Any]:
    """The service discovery document for the endpoint at ``base_url``."""
    return {
        "changeset": CHANGESET,
        "contact": "网格化服务管理中心 (the operator of this gridmap)",
        "key_service": "API keys are issued by the operator (gridmap keys add NAME)",
        "endpoints": [{
            "specification": SPECIFICATION,
            "url": base_url,
            "changeset": CHANGESET,
            "type": "production",
            "formats": ["text/xml", "application/json"],
        }],
    }


def error_list(status: int, description: str) -> list[dict[str, Any]]:
    """The spec's error answer: a list of (code, description)."""
    return [{"code": status, "description": description}]


#: XML root and item element names per answer kind.
XML_NAMES = {
    "services": ("services", "service"),
    "requests": ("service_requests", "request"),
    "errors": ("errors", "error"),
}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _element(name: str, value: Any) -> ET.Element:
    element = ET.Element(name)
    if isinstance(value, dict):
        for key, item in value.items():
            element.append(_element(key, item))
    elif isinstance(value, list):
        child = {"endpoints": "endpoint", "formats": "format", "attributes": "attribute", "values": "value"}[name]
        for item in value:
            element.append(_element(child, item))
    else:
        element.text = _text(value)
    return element


def to_xml(kind: str, body: Any) -> bytes:
    """XML as the spec shows it: UTF-8 declared, no namespace, one element per field."""
    if kind in XML_NAMES:
        root_name, item_name = XML_NAMES[kind]
        root = ET.Element(root_name)
        for item in body:
            root.append(_element(item_name, item))
    else:  # "discovery", "service_definition"
        root = _element(kind, body)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode").encode("utf-8")
