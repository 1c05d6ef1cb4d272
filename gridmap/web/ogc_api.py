"""OGC API – Features (Part 1: Core) under /ogc, with its own OpenAPI 3 document at /ogc/api.

Errors are JSON ``{"code", "description"}`` with the HTTP status (4xx), as OGC APIs answer them.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from werkzeug.exceptions import HTTPException

from gridmap.core import Gridmap
from gridmap.errors import GridmapError, NotFound
from gridmap.interop import ogc
from gridmap.issues.states import STATUSES
from gridmap.web.auth import public, scope

blueprint = Blueprint("ogc_api", __name__)
OPENAPI_MEDIA_TYPE = "application/vnd.oai.openapi+json;version=3.0"


def core() -> Gridmap:
    return current_app.extensions["gridmap"]


def base_url() -> str:
    """The absolute URL of /ogc on the host the client used."""
    return request.host_url.rstrip("/") + "/ogc"


def _json(body: Any, content_type: str = "application/json", status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, content_type=content_type)


def _wants_html() -> bool:
    fmt = request.args.get("f")
    if fmt:
        return fmt == "html"
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html" and request.accept_mimetypes["text/html"] > request.accept_mimetypes["application/json"]


@blueprint.errorhandler(GridmapError)
def ogc_error(error: GridmapError):
    """A GridmapError as an OGC exception document."""
    return _json({"code": error.code, "description": error.message}, status=error.status)


@blueprint.errorhandler(HTTPException)
def ogc_http_error(error: HTTPException):
    """Werkzeug's errors (405, 413…) as OGC exception documents."""
    return _json({"code": error.name.lower().replace(" ", "_"), "description": error.description or error.name},
                 status=error.code or 500)


@blueprint.get("/")
@public
def landing_page():
    """The landing page: JSON for clients, HTML for browsers."""
    page = ogc.landing_page(base_url())
    if _wants_html():
        return render_template("ogc_landing.html", page=page,
                               collections=[(name, ogc.TITLES[name]) for name in ogc.COLLECTIONS])
    return _json(page)


@blueprint.get("/conformance")
@public
def conformance():
    """The conformance classes implemented."""
    return _json(ogc.conformance())


@blueprint.get("/api")
@public
def api_document():
    """The OpenAPI 3 document of /ogc."""
    return _json(openapi_document(base_url()), OPENAPI_MEDIA_TYPE)


@blueprint.get("/collections")
@public
def collections():
    """Every collection with its extent."""
    return _json(ogc.collections(core(), base_url()))


@blueprint.get("/collections/<name>")
@public
def collection(name: str):
    """One collection."""
    return _json(ogc.collection(core(), base_url(), name))


@blueprint.get("/collections/<name>/items")
@public
def items(name: str):
    """A page of features (GeoJSON)."""
    return _json(ogc.items(core(), base_url(), name, request.args.to_dict(), access=scope()), ogc.GEOJSON)


@blueprint.get("/collections/<name>/items/<feature_id>")
@public
def item(name: str, feature_id: str):
    """One feature (GeoJSON), or 404."""
    return _json(ogc.item(core(), base_url(), name, feature_id, access=scope()), ogc.GEOJSON)


@blueprint.route("/<path:anything>", methods=["GET", "POST"])
@public
def unknown(anything: str):
    """Any other path under /ogc: 404 as an OGC exception."""
    raise NotFound(f"no resource at {request.path}; start at /ogc/")


# --- the OpenAPI document --------------------------------------------------------------------


def _response(description: str, media_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": schema}}}


_EXCEPTION = {"$ref": "#/components/responses/Exception"}
_LINK = {"type": "object", "required": ["href", "rel"], "properties": {
    "href": {"type": "string"}, "rel": {"type": "string"}, "type": {"type": "string"}, "title": {"type": "string"}}}


def _parameters(name: str) -> list[dict[str, Any]]:
    parameters = [
        {"name": "bbox", "in": "query", "required": False, "style": "form", "explode": False,
         "description": "minx,miny,maxx,maxy in WGS84 (CRS84); features intersecting it",
         "schema": {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}}},
        {"name": "datetime", "in": "query", "required": False, "style": "form", "explode": False,
         "description": "An RFC 3339 instant or interval (a/b, ../b, a/..); on reported_at for issues, ignored by "
                        "areas",
         "schema": {"type": "string"}},
        {"name": "limit", "in": "query", "required": False, "style": "form", "explode": False,
         "schema": {"type": "integer", "minimum": 1, "maximum": ogc.MAX_LIMIT, "default": ogc.DEFAULT_LIMIT}},
        {"name": "offset", "in": "query", "required": False, "style": "form", "explode": False,
         "description": "How many features to skip (the next link carries it)",
         "schema": {"type": "integer", "minimum": 0, "default": 0}},
    ]
    if name == "issues":
        parameters += [
            {"name": "status", "in": "query", "required": False, "style": "form", "explode": False,
             "description": "Workflow status(es), comma-separated, or open / closed",
             "schema": {"type": "string", "example": "open"}},
            {"name": "category", "in": "query", "required": False, "style": "form", "explode": False,
             "description": "Category item (E0505) or class (E05) code",
             "schema": {"type": "string", "example": "E05"}},
            {"name": "after", "in": "query", "required": False, "style": "form", "explode": False,
             "description": "The page starts after this issue id (the next link carries it; not with offset)",
             "schema": {"type": "integer", "minimum": 0}},
        ]
    return parameters


def openapi_document(base: str) -> dict[str, Any]:
    """The OpenAPI 3.0 document of the OGC API, with absolute server URL ``base``."""
    paths: dict[str, Any] = {
        "/": {"get": {"summary": "Landing page", "operationId": "getLandingPage", "tags": ["Capabilities"],
                      "responses": {"200": _response("Links to the API", "application/json", {"type": "object"}),
                                    "400": _EXCEPTION}}},
        "/conformance": {"get": {"summary": "Conformance classes", "operationId": "getConformance",
                                 "tags": ["Capabilities"],
                                 "responses": {"200": _response("The conformance classes", "application/json", {
                                     "type": "object", "required": ["conformsTo"],
                                     "properties": {"conformsTo": {"type": "array", "items": {"type": "string"}}}})}}},
        "/api": {"get": {"summary": "This OpenAPI document", "operationId": "getAPI", "tags": ["Capabilities"],
                         "responses": {"200": _response("The document", OPENAPI_MEDIA_TYPE, {"type": "object"})}}},
        "/collections": {"get": {"summary": "The collections", "operationId": "getCollections",
                                 "tags": ["Capabilities"],
                                 "responses": {"200": _response("Collections", "application/json", {
                                     "type": "object", "required": ["links", "collections"],
                                     "properties": {"links": {"type": "array", "items": _LINK},
                                                    "collections": {"type": "array", "items": {"type": "object"}}}})}}},
    }
    for name in ogc.COLLECTIONS:
        title = ogc.TITLES[name][1]
        paths[f"/collections/{name}"] = {"get": {
            "summary": f"The collection {name}: {title}", "operationId": f"describe_{name}", "tags": [name],
            "responses": {"200": _response("The collection", "application/json", {"type": "object"})}}}
        paths[f"/collections/{name}/items"] = {"get": {
            "summary": f"Features of {name}", "operationId": f"getFeatures_{name}", "tags": [name],
            "parameters": _parameters(name),
            "responses": {"200": {"$ref": "#/components/responses/Features"}, "400": _EXCEPTION}}}
        id_schema = {"type": "integer", "minimum": 1} if name == "issues" else {"type": "string"}
        paths[f"/collections/{name}/items/{{featureId}}"] = {"get": {
            "summary": f"One feature of {name}", "operationId": f"getFeature_{name}", "tags": [name],
            "parameters": [{"name": "featureId", "in": "path", "required": True, "schema": id_schema,
                            "description": "Issue id" if name == "issues" else "Area code"}],
            "responses": {"200": {"$ref": "#/components/responses/Feature"}, "404": _EXCEPTION}}}
    feature = {"type": "object", "required": ["type", "geometry", "properties"], "properties": {
        "type": {"type": "string", "enum": ["Feature"]}, "geometry": {"type": "object", "nullable": True},
        "properties": {"type": "object", "nullable": True}, "id": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
        "links": {"type": "array", "items": _LINK}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "gridmap OGC API – Features", "version": "1.0.0",
                 "description": "Areas (district, streets, communities, grid cells) and issues as GeoJSON features. "
                                f"Issue statuses: {', '.join(STATUSES)} (or open / closed)."},
        "servers": [{"url": base}],
        "paths": paths,
        "components": {
            "schemas": {"Feature": feature, "Link": _LINK,
                        "Exception": {"type": "object", "required": ["code"], "properties": {
                            "code": {"type": "string"}, "description": {"type": "string"}}}},
            "responses": {
                "Features": _response("A page of features", ogc.GEOJSON, {
                    "type": "object", "required": ["type", "features"], "properties": {
                        "type": {"type": "string", "enum": ["FeatureCollection"]},
                        "features": {"type": "array", "items": {"$ref": "#/components/schemas/Feature"}},
                        "links": {"type": "array", "items": _LINK},
                        "timeStamp": {"type": "string", "format": "date-time"},
                        "numberMatched": {"type": "integer", "minimum": 0},
                        "numberReturned": {"type": "integer", "minimum": 0}}}),
                "Feature": _response("A feature", ogc.GEOJSON, {"$ref": "#/components/schemas/Feature"}),
                "Exception": _response("An error: the description says what to fix", "application/json",
                                       {"$ref": "#/components/schemas/Exception"}),
            },
        },
    }
