"""The OpenAPI 3 document of /api/v1, merged from the API modules' own path tables.

Convention: every blueprint module mounted under ``/api/v1`` may expose

- ``OPENAPI_PATHS``: a dict of OpenAPI path items keyed by path relative to ``/api/v1``
  (``"/issues/{issue_id}"``), and
- ``OPENAPI_COMPONENTS`` (optional): a dict of component sections (``schemas``, ``responses``…)
  its paths refer to.

:func:`openapi_document` finds them through the app's registered blueprints, so a new API module
documents itself by defining those two names — no edit here. A path or component defined twice
is a programming error (ValueError).
"""

from __future__ import annotations

import copy
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify

from gridmap.web.auth import public

blueprint = Blueprint("openapi", __name__)

_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "example": "invalid_input"},
                "message": {"type": "string", "description": "What is wrong and how to fix it."},
                "details": {"description": "Machine-readable particulars, when there are any."},
            },
        }
    },
}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


#: Components shared by every module: the error body and the usual error responses.
BASE_COMPONENTS: dict[str, Any] = {
    "securitySchemes": {
        "bearerAuth": {"type": "http", "scheme": "bearer",
                       "description": "An API token made with `gridmap tokens add NAME --role ROLE`."},
        "session": {"type": "apiKey", "in": "cookie", "name": "session",
                    "description": "A login session from /login; POSTs also need the X-CSRF-Token header."},
    },
    "schemas": {"Error": _ERROR_SCHEMA},
    "responses": {
        "BadRequest": _error_response("Bad input: the message says what to fix."),
        "NotFound": _error_response("No such thing."),
        "Unauthenticated": _error_response("No login session or API token, or a revoked one."),
        "Forbidden": _error_response("The role or the area scope does not allow this."),
        "Conflict": _error_response("Not allowed in the current state (e.g. an illegal transition: the message names "
                                    "the allowed actions)."),
        "OutsideCells": _error_response("The point lies outside every grid cell."),
    },
}

#: This module's own path: the document itself.
OPENAPI_PATHS: dict[str, Any] = {
    "/openapi.json": {
        "get": {
            "summary": "This OpenAPI 3 document",
            "tags": ["meta"],
            "responses": {"200": {"description": "The document",
                                  "content": {"application/json": {"schema": {"type": "object"}}}}},
        }
    }
}


def _package_version() -> str:
    try:
        return version("gridmap")
    except PackageNotFoundError:  # running from a checkout that is not installed
        return "0"


def _api_modules(app: Flask) -> list[Any]:
    """The modules of the blueprints mounted under /api/v1, in registration order."""
    prefixes: dict[str, str] = {}
    for rule in app.url_map.iter_rules():
        name = rule.endpoint.rpartition(".")[0]
        if name and rule.rule.startswith("/api/v1/"):
            prefixes.setdefault(name, rule.rule)
    modules = []
    for name, bp in app.blueprints.items():
        module = sys.modules.get(bp.import_name)
        if name in prefixes and module is not None and module not in modules:
            modules.append(module)
    return modules


def openapi_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.0 document of the app's /api/v1 endpoints."""
    paths: dict[str, Any] = {}
    components: dict[str, dict[str, Any]] = {section: dict(items) for section, items in BASE_COMPONENTS.items()}
    for module in _api_modules(app):
        for path, item in getattr(module, "OPENAPI_PATHS", {}).items():
            if path in paths:
                raise ValueError(f"OpenAPI path {path} is defined twice (again in {module.__name__})")
            paths[path] = copy.deepcopy(item)  # the responses below are added to the copy
        for section, items in getattr(module, "OPENAPI_COMPONENTS", {}).items():
            merged = components.setdefault(section, {})
            for key, value in items.items():
                if key in merged and merged[key] != value:
                    raise ValueError(f"OpenAPI component {section}/{key} is defined twice (again in {module.__name__})")
                merged[key] = value
    for path, item in paths.items():  # every operation needs a principal, except this document
        for operation in item.values():
            if path != "/openapi.json" and isinstance(operation, dict) and "responses" in operation:
                operation["responses"].setdefault("401", {"$ref": "#/components/responses/Unauthenticated"})
                operation["responses"].setdefault("403", {"$ref": "#/components/responses/Forbidden"})
    paths["/openapi.json"]["get"]["security"] = []
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "gridmap API",
            "version": _package_version(),
            "description": "Grid-based governance (网格化服务管理): issues, workflow, deadlines, statistics. "
                           "Errors are JSON {\"error\": {\"code\", \"message\"}} with a 4xx status.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}, {"session": []}],
        "paths": dict(sorted(paths.items())),
        "components": components,
    }


@blueprint.get("/openapi.json")
@public
def openapi_json():
    """The OpenAPI 3 document."""
    return jsonify(openapi_document(current_app))
