"""GeoJSON exports under /api/v1/export: every layer of the layer set, and filtered issues."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from flask import Blueprint, Response, current_app, request

from gridmap.core import Gridmap
from gridmap.geo.layers import LEVELS, feature_collection
from gridmap.interop.ogc import issue_feature
from gridmap.issues.query import IssueQuery
from gridmap.web.auth import public, requires, scope

blueprint = Blueprint("export_api", __name__)
GEOJSON = "application/geo+json"
#: Issues read per batch by the streaming exports.
EXPORT_BATCH = 1000
ISSUE_FILTERS = ("area", "status", "category", "source", "bbox", "from", "to", "overdue", "department")


def core() -> Gridmap:
    return current_app.extensions["gridmap"]


def _download(body: dict[str, Any], filename: str) -> Response:
    response = Response(json.dumps(body, ensure_ascii=False), content_type=GEOJSON)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@blueprint.get("/export/<any(districts, streets, communities, cells):layer>.geojson")
@public
def export_layer(layer: str):
    """One level of the active layer set as RFC 7946 GeoJSON."""
    return _download(feature_collection(core().areas.layers.level(layer), layer), f"{layer}.geojson")


@blueprint.get("/export/issues.geojson")
@requires("issues:read")
def export_issues():
    """Every issue matching the filters (as /issues takes them), as points without personal data, streamed."""
    gm = core()
    args = {key: value for key, value in request.args.items() if key in ISSUE_FILTERS}
    query = IssueQuery.parse(args, categories=gm.categories, timezone_name=gm.timezone, access=scope())
    response = Response(iter_issues_geojson(gm, query), content_type=GEOJSON)
    response.headers["Content-Disposition"] = 'attachment; filename="issues.geojson"'
    return response


def iter_issues_geojson(gm: Gridmap, query: IssueQuery, *, batch_size: int = EXPORT_BATCH) -> Iterator[str]:
    """The issues of ``query`` as one GeoJSON FeatureCollection in text chunks, read ``batch_size`` at a time by id.

    Each batch starts after the last id of the one before (keyset), so memory stays flat however
    many issues match; the text is the same as ``json.dumps`` of the whole collection.
    """
    yield '{"type": "FeatureCollection", "features": ['
    first, after = True, None
    with gm.db.sessions() as session:
        while True:
            page = replace(query, limit=batch_size, offset=0, sort="id", after=after)
            issues = page.rows(session)
            for issue in issues:
                yield ("" if first else ", ") + json.dumps(issue_feature(issue, gm), ensure_ascii=False)
                first = False
            if len(issues) < batch_size:
                break
            after = (issues[-1].id,)
            session.expunge_all()
    yield "]}"


_FILTER_PARAMETERS = [
    {"name": "area", "in": "query", "schema": {"type": "string"}, "description": "Area code: 6, 9, 12 or 15 digits."},
    {"name": "status", "in": "query", "schema": {"type": "string"},
     "description": "Status(es), comma-separated, or open / closed."},
    {"name": "category", "in": "query", "schema": {"type": "string"}, "description": "Item (E0505) or class (E05)."},
    {"name": "source", "in": "query", "schema": {"type": "string"}, "description": "Source(s), comma-separated."},
    {"name": "bbox", "in": "query", "schema": {"type": "string"}, "description": "west,south,east,north (WGS84)."},
    {"name": "from", "in": "query", "schema": {"type": "string", "format": "date"},
     "description": "First local day reported."},
    {"name": "to", "in": "query", "schema": {"type": "string", "format": "date"},
     "description": "Last local day reported, included."},
    {"name": "overdue", "in": "query", "schema": {"type": "boolean"},
     "description": "Only overdue (true) or not overdue (false)."},
    {"name": "department", "in": "query", "schema": {"type": "string"}, "description": "Assigned department."},
]
_FEATURE_COLLECTION = {"type": "object", "required": ["type", "features"], "properties": {
    "type": {"type": "string", "enum": ["FeatureCollection"]},
    "features": {"type": "array", "items": {"type": "object"}}}}

#: Paths of this module for the OpenAPI document (see gridmap.web.openapi).
OPENAPI_PATHS: dict[str, Any] = {
    "/export/{layer}.geojson": {"get": {
        "summary": "One layer of the layer set as GeoJSON (RFC 7946, WGS84)", "tags": ["export"],
        "parameters": [{"name": "layer", "in": "path", "required": True,
                        "schema": {"type": "string", "enum": list(LEVELS)}}],
        "responses": {"200": {"description": "A FeatureCollection",
                              "content": {GEOJSON: {"schema": _FEATURE_COLLECTION}}},
                      "404": {"$ref": "#/components/responses/NotFound"}},
    }},
}
OPENAPI_PATHS["/export/issues.geojson"] = {"get": {
    "summary": "Issues matching the filters as GeoJSON points (no personal data)", "tags": ["export"],
    "parameters": _FILTER_PARAMETERS,
    "responses": {"200": {"description": "A FeatureCollection", "content": {GEOJSON: {"schema": _FEATURE_COLLECTION}}},
                  "400": {"$ref": "#/components/responses/BadRequest"}},
}}
