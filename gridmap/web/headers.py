"""Security headers on every response, set in one place, and the per-request nonce of inline scripts.

The Content-Security-Policy allows scripts only from the app itself and inline ``<script>``
elements that carry this request's nonce. The nonce is put on an inline script only where the
server writes it: the templates (``{{ csp_nonce() }}``) and the folium map renderers
(``script_nonce=``), never by rewriting a finished response, so markup that slips into a page
through data can never carry it. Every JS/CSS file is vendored (gridmap/static/vendor), none
needs ``eval``; styles may be inline because Leaflet and folium write style attributes and
``<style>`` blocks. Images may also come from the configured basemap's tile servers.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from flask import Flask, Response, current_app, g

from gridmap.errors import GridmapError
from gridmap.maps.tiles import tile_origins, tile_sources

#: Random bytes in a nonce (base64url: 22 characters).
NONCE_BYTES = 16
#: Browser features no page uses; geolocation stays allowed for the app's own pages.
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(self), payment=(), usb=()"

STATIC_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # The origin only, to other hosts: Tianditu browser keys are checked against the Referer's domain.
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "SAMEORIGIN",
    "Permissions-Policy": PERMISSIONS_POLICY,
    "Cross-Origin-Opener-Policy": "same-origin",
}


def content_security_policy(nonce: str | None, image_origins: Sequence[str] = ()) -> str:
    """The CSP header value: own assets, inline scripts with ``nonce``, images also from ``image_origins``."""
    script_src = "'self'" + (f" 'nonce-{nonce}'" if nonce else "")
    return "; ".join((
        "default-src 'self'",
        f"script-src {script_src}",
        "style-src 'self' 'unsafe-inline'",
        " ".join(("img-src 'self' data: blob:", *image_origins)),
        "connect-src 'self'",
        "frame-ancestors 'self'",
        "form-action 'self'",
        "base-uri 'self'",
        "object-src 'none'",
    ))


def csp_nonce() -> str:
    """This request's CSP nonce (made on first use): put it on every inline ``<script>`` the server writes."""
    nonce = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(NONCE_BYTES)
    return nonce


def set_response_header(name: str, value: str) -> None:
    """Send ``name: value`` with this request's response, whichever view or error handler makes it."""
    g.setdefault("response_headers", {})[name] = value


def install_security_headers(app: Flask) -> None:
    """Add the security headers to every response and ``csp_nonce()`` to the templates."""
    settings = app.extensions["gridmap"].settings
    try:
        origins = tile_origins(tile_sources(settings.get("tiles"), settings.get("tianditu_key")))
    except GridmapError:
        origins = ()  # a bad tiles setting: the map pages say what is wrong, no tiles are drawn
    hsts_max_age = settings["hsts_max_age"]
    app.extensions["gridmap_image_origins"] = origins
    app.jinja_env.globals["csp_nonce"] = csp_nonce

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        headers = response.headers
        headers["Content-Security-Policy"] = content_security_policy(
            g.get("csp_nonce"), current_app.extensions["gridmap_image_origins"])
        headers.update(STATIC_HEADERS)
        if hsts_max_age > 0:
            headers["Strict-Transport-Security"] = f"max-age={hsts_max_age}"
        headers.update(g.pop("response_headers", {}))
        return response
