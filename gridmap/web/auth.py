"""Authentication and access control for every request: sessions, bearer tokens, CSRF, login pages.

Every view declares who may call it with :func:`requires` (a permission of
:data:`gridmap.security.access.ROLE_PERMISSIONS`) or :func:`public`; ``create_app`` refuses to start when a view
declares neither, so a new endpoint cannot be open by mistake.  The check runs before the view, in
one place (:func:`_authorise`), together with the CSRF check for cookie-authenticated form posts.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _

from gridmap.errors import Forbidden, NotFound, TooManyRequests, Unauthenticated
from gridmap.security.access import (
    ANONYMOUS,
    ROLE_LABELS,
    AccessScope,
    Principal,
    authenticate_password,
    authenticate_token,
    load_user,
    require,
)
from gridmap.security.audit import begin_acting, end_acting
from gridmap.security.ratelimit import Rate, RateLimiter, retry_after_seconds

blueprint = Blueprint("auth", __name__)

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSRF_FIELD = "csrf_token"
#: Failed logins allowed per address and user name: 10, then one more every 90 s (guessing is slow).
LOGIN_RATE = Rate(10, 900.0)
CSRF_HEADER = "X-CSRF-Token"
PUBLIC = "public"


def requires(permission: str) -> Callable:
    """Declare the permission a view needs (checked before it runs)."""
    def mark(view: Callable) -> Callable:
        view.access = permission  # type: ignore[attr-defined]
        return view
    return mark


def public(view: Callable) -> Callable:
    """Declare a view open to anonymous visitors (public Open311 / OGC reads, the login page, assets)."""
    view.access = PUBLIC  # type: ignore[attr-defined]
    return view


def principal() -> Principal:
    """Who makes the current request."""
    return g.get("principal", ANONYMOUS)


def scope() -> AccessScope:
    """The rows the current request may see."""
    return principal().access


def check_access(permission: str) -> Principal:
    """Require one more permission inside a view (e.g. personal data on request); return the principal."""
    who = principal()
    require(who, permission)
    return who


def check_issue_in_scope(issue) -> None:
    """404 for an issue outside the caller's scope (its existence is not revealed)."""
    if issue is None or not scope().covers_issue(issue):
        raise NotFound("no such issue (or not in your area)")


def csrf_token() -> str:
    """The session's CSRF token, made on first use (templates put it in every form)."""
    token = session.get(CSRF_FIELD)
    if not token:
        token = session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return token


def install_auth(app: Flask) -> None:
    """Resolve the principal and enforce access rules on every request."""
    app.before_request(_authorise)
    app.extensions["gridmap_login_attempts"] = RateLimiter(LOGIN_RATE)
    app.jinja_env.globals.update(csrf_token=csrf_token, current_principal=principal, role_labels=ROLE_LABELS)
    # Flask's defaults are HttpOnly only; no cross-site POST carries the cookie, and a site that asks
    # for HTTPS (hsts_max_age > 0) never sends it over plain HTTP.
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=app.extensions["gridmap"].settings["hsts_max_age"] > 0)
    app.register_blueprint(blueprint)


def check_every_view_declares_access(app: Flask) -> None:
    """Raise at start-up if a view has neither @requires nor @public."""
    missing = sorted(name for name, view in app.view_functions.items()
                     if name != "static" and not hasattr(view, "access"))
    if missing:
        raise RuntimeError(f"views without an access rule (@requires or @public): {', '.join(missing)}")


def _authenticate() -> tuple[Principal, bool]:
    """(principal, whether it came from the session cookie)."""
    gm = current_app.extensions["gridmap"]
    header = request.headers.get("Authorization", "")
    if header:
        kind, _sep, secret = header.partition(" ")
        if kind.lower() != "bearer" or not secret.strip():
            raise Unauthenticated("Authorization header: use 'Bearer <token>' (make one with `gridmap tokens add`)")
        with gm.db.sessions() as db_session:
            found = authenticate_token(db_session, secret.strip())
        if found is None:
            raise Unauthenticated("the API token is unknown or revoked")
        return found, False
    name = session.get("user")
    if name:
        with gm.db.sessions() as db_session:
            found = load_user(db_session, name)
        if found is not None:
            return found, True
        session.clear()  # the user was disabled or removed
    return ANONYMOUS, False


def _authorise():
    view = current_app.view_functions.get(request.endpoint or "")
    if request.endpoint == "static" or view is None:
        g.principal = ANONYMOUS
        return None
    who, from_cookie = _authenticate()
    g.principal = who
    # Cookie-authenticated posts need the form's token; so does the login form (no logging a
    # victim into someone else's account from another site: its post carries no session cookie).
    if (from_cookie or request.endpoint == "auth.login") and request.method in UNSAFE_METHODS:
        sent = request.form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER) or ""
        expected = session.get(CSRF_FIELD) or ""
        if not (sent and expected and hmac.compare_digest(sent, expected)):
            raise Forbidden("the form's CSRF token is missing or stale: reload the page and submit again")
    access = getattr(view, "access", None)
    if access != PUBLIC:
        if not who.authenticated and _is_page():
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        require(who, access)
    g.audit_token = begin_acting(who.label, f"{request.method} {request.path}")
    return None


def _is_page() -> bool:
    return request.method == "GET" and not request.path.startswith(("/api/", "/open311/", "/ogc/"))


@blueprint.teardown_app_request
def _end_audit(_error=None) -> None:
    token = g.pop("audit_token", None)
    if token is not None:
        end_acting(token)


def _safe_next(target: str | None) -> str:
    """Only local paths: never redirect off the site after login."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("pages.overview")


@blueprint.route("/login", methods=["GET", "POST"])
@public
def login():
    """The login form; a good name and password start a session."""
    error = None
    status = 200
    if request.method == "POST":
        gm = current_app.extensions["gridmap"]
        name = request.form.get("name", "")
        throttle_key = f"{request.remote_addr}|{name.strip()}"
        attempts = current_app.extensions["gridmap_login_attempts"]
        wait = attempts.hit(throttle_key)
        if wait > 0:
            raise TooManyRequests(f"too many failed logins for {name.strip()!r} from this address: "
                                  f"try again in {retry_after_seconds(wait)} s", retry_after=retry_after_seconds(wait))
        with gm.db.sessions() as db_session:
            found = authenticate_password(db_session, name, request.form.get("password", ""))
        if found is None:
            error, status = _("用户名或密码错误"), 401
        else:
            attempts.refund(throttle_key)  # only failures count
            session.clear()
            session["user"] = found.name
            session.permanent = True
            csrf_token()
            return redirect(_safe_next(request.form.get("next")))
    return render_template("login.html", error=error, next=request.values.get("next", "")), status


@blueprint.route("/logout", methods=["POST"])
@public
def logout():
    """End the session (a POST with the CSRF token, so no other site can log you out)."""
    session.clear()
    return redirect(url_for("auth.login"))

