"""Open311 GeoReport v2 under /open311/v2: the format comes from the extension (.json or .xml).

Errors inside this blueprint are answered as the spec's error list in the requested format
(XML when the format cannot be told), never as gridmap's own JSON error body.
"""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import HTTPException

from gridmap.core import Gridmap
from gridmap.errors import GridmapError, NotFound
from gridmap.interop import open311
from gridmap.issues.idempotency import check_key
from gridmap.web.auth import public
from gridmap.web.limits import limit_anonymous_intake
from gridmap.web.parsing import check_body_size

blueprint = Blueprint("open311_api", __name__)


def core() -> Gridmap:
    return current_app.extensions["gridmap"]


def _format() -> str:
    """The format named by the URL's extension (xml when there is none)."""
    fmt = (request.view_args or {}).get("fmt") or request.path.rpartition(".")[2]
    return fmt if fmt in open311.FORMATS else "xml"


def answer(kind: str, body: Any, fmt: str, status: int = 200) -> Response:
    """Serialise ``body`` as JSON or as the spec's XML."""
    if fmt == "json":
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    else:
        data = open311.to_xml(kind, body)
    return Response(data, status=status, content_type=open311.MEDIA_TYPES[fmt])


def _check_format(fmt: str) -> None:
    if fmt not in open311.FORMATS:
        raise NotFound(f"unknown format {fmt!r}: use .xml or .json")


@blueprint.errorhandler(GridmapError)
def open311_error(error: GridmapError):
    """A GridmapError as the spec's error list."""
    return answer("errors", open311.error_list(error.status, error.message), _format(), error.status)


@blueprint.errorhandler(HTTPException)
def open311_http_error(error: HTTPException):
    """Werkzeug's errors (405, 413…) as the spec's error list."""
    status = error.code or 500
    return answer("errors", open311.error_list(status, error.description or error.name), _format(), status)


def _values() -> dict[str, str]:
    """Query string and form values (form wins); files are ignored."""
    check_body_size()
    values = dict(request.args.items())
    values.update(request.form.items())
    return values


@blueprint.get("/discovery.<fmt>")
@public
def discovery(fmt: str):
    """Service discovery: where the endpoint is and which formats it speaks."""
    _check_format(fmt)
    return answer("discovery", open311.discovery(request.host_url.rstrip("/") + "/open311/v2"), fmt)


@blueprint.get("/services.<fmt>")
@public
def services(fmt: str):
    """GET services: the leaf categories."""
    _check_format(fmt)
    return answer("services", open311.services(core().categories), fmt)


@blueprint.get("/services/<code>.<fmt>")
@public
def service_definition(code: str, fmt: str):
    """GET service definition: the attributes of one service."""
    _check_format(fmt)
    return answer("service_definition", open311.service_definition(core().categories, code), fmt)


@blueprint.get("/requests.<fmt>")
@public
def get_requests(fmt: str):
    """GET requests: search by ids, service, dates and status."""
    _check_format(fmt)
    gm = core()
    tz = ZoneInfo(gm.timezone)
    search = open311.RequestSearch.parse(request.args, categories=gm.categories, tz=tz)
    with gm.db.sessions() as session:
        body = [open311.request_as_dict(issue, gm.categories, tz) for issue in search.run(session)]
    return answer("requests", body, fmt)


@blueprint.post("/requests.<fmt>")
@public
def post_request(fmt: str):
    """POST requests: a new service request through the normal intake."""
    _check_format(fmt)
    values = _values()
    limit_anonymous_intake(values.get("api_key"))  # 429 + Retry-After beyond the intake rate limits
    body = open311.post_request(core(), values, idempotency_key=check_key(request.headers.get("Idempotency-Key")))
    return answer("requests", [body], fmt, 201)


@blueprint.get("/requests/<request_id>.<fmt>")
@public
def get_request(request_id: str, fmt: str):
    """GET a request: an array of one."""
    _check_format(fmt)
    gm = core()
    with gm.db.sessions() as session:
        body = [open311.request_as_dict(open311.get_request(session, request_id), gm.categories, ZoneInfo(gm.timezone))]
    return answer("requests", body, fmt)


@blueprint.get("/tokens/<token>.<fmt>")
@public
def get_token(token: str, fmt: str):
    """GET a token: the service request id it stands for."""
    _check_format(fmt)
    with core().db.sessions() as session:
        body = [open311.token_lookup(session, token)]
    return answer("requests", body, fmt)


@blueprint.route("/<path:anything>", methods=["GET", "POST"])
@public
def unknown(anything: str):
    """Any other path under /open311/v2: 404 as the spec's error list."""
    raise NotFound(f"no Open311 resource at {request.path}; see discovery.xml")
