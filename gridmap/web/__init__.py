"""The Flask layer: parses requests, calls the core, serialises answers. Built by create_app."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from sqlite3 import SQLITE_BUSY
from typing import Any

from flask import Flask, jsonify, make_response, render_template, request
from flask_babel import Babel
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from gridmap.core import Gridmap
from gridmap.errors import GridmapError
from gridmap.resources import resource
from gridmap.storage.models import MAX_ROW_ID

TEMPLATES = resource("templates")
STATIC = resource("static")
TRANSLATIONS = resource("translations")
LANGUAGES = ("zh_CN", "en")


#: Largest row id (PostgreSQL's INTEGER): larger ids in a URL are a plain 404, never a database error.
MAX_ID = MAX_ROW_ID


class IdConverter(IntegerConverter):
    """``<id:name>``: a database row id, 1 … MAX_ID; anything else does not match (404)."""

    def __init__(self, url_map) -> None:
        super().__init__(url_map, min=1, max=MAX_ID)


def select_locale() -> str:
    """``?lang=`` first, then the ``lang`` cookie, then zh_CN (the default for every user)."""
    for candidate in (request.args.get("lang"), request.cookies.get("lang")):
        if candidate:
            candidate = candidate.replace("-", "_")
            if candidate in LANGUAGES:
                return candidate
    return LANGUAGES[0]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the application; ``config`` holds setting overrides (by name) and Flask options."""
    config = dict(config or {})
    app = Flask(__name__, template_folder=str(TEMPLATES), static_folder=str(STATIC), instance_relative_config=False)
    app.url_map.converters["id"] = IdConverter
    core = Gridmap(config)
    try:
        _configure(app, core, config)
    except Exception:
        core.close()  # a half-built app leaves no database connection open
        raise
    return app


def _configure(app: Flask, core: Gridmap, config: dict[str, Any]) -> None:
    """Settings, extensions, access control and every blueprint of the app."""
    app.config.update({k: v for k, v in config.items() if k.isupper()})
    app.config["MAX_CONTENT_LENGTH"] = core.settings["max_upload_bytes"]
    app.json.sort_keys = False  # keep fields in the documented order
    app.extensions["gridmap"] = core
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    app.config["BABEL_DEFAULT_LOCALE"] = LANGUAGES[0]
    Babel(app, locale_selector=select_locale)
    app.secret_key = core.secret_key()
    app.permanent_session_lifetime = timedelta(hours=core.settings["session_hours"])
    from gridmap.web.auth import check_every_view_declares_access, install_auth
    from gridmap.web.limits import install_limits

    # The first before_request hook: an over-large body is refused before login and CSRF checks.
    install_limits(app)  # intake rate limits (checked here, at start-up) and refused bodies
    install_auth(app)  # who is asking, and may they: before every view

    from gridmap.web import api, pages

    app.register_blueprint(api.blueprint, url_prefix="/api/v1")
    app.register_blueprint(pages.blueprint)
    from gridmap.web import maps_api

    app.register_blueprint(maps_api.blueprint, url_prefix="/api/v1")  # map layers (cacheable, gzip)
    from gridmap.web import ledger_api

    app.register_blueprint(ledger_api.blueprint, url_prefix="/api/v1")  # ledger (台账) downloads
    from gridmap.web import dispatcher

    app.register_blueprint(dispatcher.blueprint)  # the dispatcher's page /dispatch
    from gridmap.web import issues_api, openapi

    app.register_blueprint(issues_api.blueprint, url_prefix="/api/v1")  # issues and workflow
    # /api/v1/openapi.json from every module's OPENAPI_PATHS
    app.register_blueprint(openapi.blueprint, url_prefix="/api/v1")
    from gridmap.web import coverage_api, coverage_pages

    app.register_blueprint(coverage_api.blueprint, url_prefix="/api/v1")  # households, visits, patrols
    app.register_blueprint(coverage_pages.blueprint)  # /coverage/ pages: summary, visit form, work lists
    from gridmap.web import analytics_api, planner

    app.register_blueprint(analytics_api.blueprint, url_prefix="/api/v1")  # indicators, hotspots, trends
    app.register_blueprint(planner.blueprint)  # the planner's page /planner/
    from gridmap.web import export_api, ogc_api, open311_api

    app.register_blueprint(open311_api.blueprint, url_prefix="/open311/v2")  # Open311 GeoReport v2
    app.register_blueprint(ogc_api.blueprint, url_prefix="/ogc")  # OGC API - Features
    app.register_blueprint(export_api.blueprint, url_prefix="/api/v1")  # GeoJSON exports
    from gridmap.web import admin

    app.register_blueprint(admin.blueprint)  # audit log for admins
    from gridmap.web.headers import install_security_headers

    install_security_headers(app)  # CSP with a per-request nonce, nosniff, frame and referrer rules on every response
    _register_error_handlers(app)
    check_every_view_declares_access(app)


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(GridmapError)
    def gridmap_error(error: GridmapError):
        if _wants_json():
            response = jsonify(error.to_dict())
        else:
            response = make_response(render_template("error.html", status=error.status, message=error.message))
        response.status_code = error.status
        if error.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="gridmap"'
        if getattr(error, "retry_after", None):
            response.headers["Retry-After"] = str(error.retry_after)
        return response

    @app.errorhandler(OperationalError)
    def database_busy(error: OperationalError):
        """SQLite answers "database is locked" when a long write (an import) outlasts busy_timeout: 503, retry."""
        if getattr(error.orig, "sqlite_errorcode", 0) & 0xFF != SQLITE_BUSY:  # the code, not the driver's words
            raise error
        busy = GridmapError("the database is busy with another write (an import or a restore): retry in a few "
                            "seconds (with the same Idempotency-Key, a retried POST makes no second issue)",
                            status=503, code="database_busy")
        busy.retry_after = 5
        return gridmap_error(busy)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        wrapped = GridmapError(error.description or error.name, status=error.code or 500,
                               code=error.name.lower().replace(" ", "_"))
        return gridmap_error(wrapped)
