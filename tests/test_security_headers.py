"""Security headers on every response; the CSP nonce goes only on the inline scripts the server writes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gridmap.web.headers import content_security_policy
from helpers import cell_point

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
STATIC = ROOT / "gridmap" / "static"

POLICY_WITHOUT_NONCE = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                        "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'self'; form-action 'self'; "
                        "base-uri 'self'; object-src 'none'")
FIXED = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "SAMEORIGIN",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(self), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")([^>]*)>")
NONCE = re.compile(r"'nonce-([A-Za-z0-9_-]{22})'")


def nonce_of(response) -> str | None:
    match = NONCE.search(response.headers["Content-Security-Policy"])
    return match and match.group(1)


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/", 200),  # the overview page (inline map script: a nonce)
    ("GET", "/planner/", 200),  # a page without inline scripts
    ("GET", "/api/v1/stats/cells", 200),  # JSON
    ("GET", "/api/v1/issues/999", 404),  # a JSON error
    ("GET", "/no/such/page", 404),  # the HTML error page
    ("GET", "/open311/v2/services.xml", 200),  # Open311 XML
    ("POST", "/open311/v2/requests.json", 403),  # an Open311 error (no api_key)
    ("GET", "/ogc/collections", 200),  # OGC API
    ("GET", "/static/vendor/leaflet/leaflet.js", 200),  # a vendored asset
    ("GET", "/login", 200),  # the login page
])
def test_every_kind_of_response_has_the_security_headers(client, method, path, status):
    with client.open(path, method=method) as response:
        response.get_data()
    assert response.status_code == status
    for name, value in FIXED.items():
        assert response.headers[name] == value, name
    assert "Strict-Transport-Security" not in response.headers  # off by default: intranets serve plain HTTP
    assert response.headers["Content-Security-Policy"] == content_security_policy(nonce_of(response))


def test_anonymous_answers_and_redirects_have_them_too(anon_client):
    for response in (anon_client.get("/"), anon_client.get("/api/v1/stats/cells")):  # login redirect, 401
        assert response.status_code in (302, 401)
        assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
        assert response.headers["Content-Security-Policy"] == POLICY_WITHOUT_NONCE


def test_without_inline_scripts_a_page_gets_no_nonce(client):
    assert client.get("/planner/").headers["Content-Security-Policy"] == POLICY_WITHOUT_NONCE


@pytest.mark.parametrize("path, scripts", [
    ("/", 2),  # folium's header switches, the map script
    ("/manager?area=460204001001", 2),
    ("/dispatch", 2),
])
def test_every_inline_script_of_a_map_page_carries_this_responses_nonce(client, path, scripts):
    first, second = client.get(path), client.get(path)
    nonce = nonce_of(first)
    assert nonce and nonce != nonce_of(second)  # a fresh one for every response
    html = first.get_data(as_text=True)
    inline = INLINE_SCRIPT.findall(html)
    assert inline == [f' nonce="{nonce}"'] * scripts


def test_markup_in_user_text_never_becomes_a_script_with_the_nonce(client, gm, mini_geodata):
    lon, lat = cell_point(mini_geodata, "460204001001001")
    attack = '</script><script>alert(1)</script><img src=x onerror="alert(2)">'
    gm.intake.import_records(gm.db, [{"lon": lon, "lat": lat, "category": "E0505", "description": attack,
                                      "reported_at": "2025-05-01 08:00"}])
    for path in ("/dispatch", "/manager?area=460204001001", "/"):
        response = client.get(path)
        html = response.get_data(as_text=True)
        assert "<script>alert(1)" not in html and 'onerror="alert' not in html, path
        assert INLINE_SCRIPT.findall(html) == [f' nonce="{nonce_of(response)}"'] * 2, path


@pytest.mark.parametrize("tiles, key, origins", [
    ("none", None, ""),  # the default: no basemap, no other host
    ("osm", None, " https://tile.openstreetmap.org"),
    ("tianditu", "abc123", "".join(f" https://t{n}.tianditu.gov.cn" for n in range(8))),
    ("amap", None, "".join(f" https://webrd0{n}.is.autonavi.com" for n in range(1, 5))),
    ("tianditu", None, ""),  # no key: the map page says so, no tiles are fetched
])
def test_images_may_come_from_the_configured_basemap_only(settings, gm, tiles, key, origins):
    from gridmap.web import create_app

    app = create_app({**settings, "TESTING": True, "tiles": tiles, "tianditu_key": key})
    try:
        policy = app.test_client().get("/login").headers["Content-Security-Policy"]
        assert f"img-src 'self' data: blob:{origins}; " in policy
        assert policy.replace(origins, "") == POLICY_WITHOUT_NONCE
    finally:
        app.extensions["gridmap"].close()


def test_hsts_is_sent_when_configured(settings, gm):
    from gridmap.web import create_app

    app = create_app({**settings, "TESTING": True, "hsts_max_age": 31536000})
    try:
        assert app.test_client().get("/login").headers["Strict-Transport-Security"] == "max-age=31536000"
    finally:
        app.extensions["gridmap"].close()


# --- the sources themselves ----------------------------------------------------------------------


def test_every_inline_script_of_the_templates_carries_the_nonce():
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        for attributes in INLINE_SCRIPT.findall(text):
            assert attributes.strip() == 'nonce="{{ csp_nonce() }}"', (
                f"{template.relative_to(ROOT)}: <script{attributes}>"
            )


def test_no_inline_event_handlers_in_templates_or_scripts():
    handler = re.compile(r"""<[a-z][^>]*\son[a-z]+\s*=|\.setAttribute\(\s*["']on[a-z]+|javascript:""", re.IGNORECASE)
    files = [*TEMPLATES.rglob("*.html"), *STATIC.glob("*.js")]
    assert files
    for path in files:
        assert not handler.search(path.read_text(encoding="utf-8")), path.relative_to(ROOT)


def test_a_nonce_must_be_base64():
    from gridmap.maps.overview import render_map

    with pytest.raises(ValueError, match="a CSP nonce is base64 characters"):
        render_map((109.4, 18.2, 109.5, 18.3), static_url=lambda p: "/static/" + p, script_nonce='x"><script>')
