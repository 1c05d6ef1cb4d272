"""Limits: the rate of anonymous intake (Open311 POST) per client IP and ``api_key``; refused bodies.

Signed-in users and bearer tokens are not limited (they are accountable). The limits come from
the settings ``intake_rate_limit`` and ``intake_key_rate_limit``; a refused request is a 429 with
a ``Retry-After`` header, in the format of the blueprint that raised it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g, request

from gridmap.errors import PayloadTooLarge, TooManyRequests
from gridmap.ops.server import BODY_TOO_LARGE
from gridmap.security.ratelimit import Rate, RateLimiter, retry_after_seconds
from gridmap.web.headers import set_response_header

EXTENSION = "gridmap_intake_limits"


@dataclass
class IntakeLimits:
    """The limiters of anonymous intake; None where a limit is off."""

    per_ip: RateLimiter | None
    per_key: RateLimiter | None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, clock: Callable[[], float] = time.monotonic) -> IntakeLimits:
        """The limiters of the settings ``intake_rate_limit`` and ``intake_key_rate_limit``."""
        ip_rate = Rate.parse(settings.get("intake_rate_limit"))
        key_rate = Rate.parse(settings.get("intake_key_rate_limit"))
        return cls(RateLimiter(ip_rate, clock=clock) if ip_rate else None,
                   RateLimiter(key_rate, clock=clock) if key_rate else None)

    def check(self, client_ip: str, api_key: str | None) -> None:
        """Count one request; TooManyRequests (with ``retry_after``) when a limit is exhausted."""
        if self.per_ip is not None:
            wait = self.per_ip.hit(client_ip)
            if wait:
                raise TooManyRequests(
                    f"too many requests from {client_ip}: at most {self.per_ip.rate} "
                    f"(setting intake_rate_limit); try again in {retry_after_seconds(wait)} s",
                    retry_after=retry_after_seconds(wait))
        if self.per_key is not None and api_key:
            key = hashlib.sha256(api_key.encode("utf-8")).hexdigest()  # no secrets kept in memory
            wait = self.per_key.hit(key)
            if wait:
                if self.per_ip is not None:
                    self.per_ip.refund(client_ip)
                raise TooManyRequests(
                    f"too many requests with this api_key: at most {self.per_key.rate} "
                    f"(setting intake_key_rate_limit); try again in {retry_after_seconds(wait)} s",
                    retry_after=retry_after_seconds(wait))


def install_limits(app: Flask) -> None:
    """Make the app's intake limiters from its settings (InvalidInput for a bad rate); answer refused bodies.

    Call it before any other ``before_request`` hook is registered: Flask runs them in the order
    they were registered, and the body check must come first (like a proxy's body limit it holds
    whoever asks, and the CSRF check would otherwise look for its token in the emptied body).
    """
    app.extensions[EXTENSION] = IntakeLimits.from_settings(app.extensions["gridmap"].settings)
    app.before_request(refuse_body_too_large)


def refuse_body_too_large() -> None:
    """413 for a request whose body the server refused as too large (see gridmap.ops.server)."""
    if request.environ.get(BODY_TOO_LARGE):
        raise PayloadTooLarge("the request body is larger than the limit of "
                              f"{current_app.config['MAX_CONTENT_LENGTH']} "
                              "bytes (setting max_upload_bytes); send a smaller file, or split it")


def _authenticated() -> bool:
    """Whether a signed-in user or a bearer token makes this request."""
    who = g.get("principal")
    return bool(who is not None and who.authenticated)


def limit_anonymous_intake(api_key: str | None) -> None:
    """Count this anonymous intake request against the limits; 429 with Retry-After beyond them."""
    if _authenticated():
        return
    try:
        current_app.extensions[EXTENSION].check(request.remote_addr or "unknown", api_key)
    except TooManyRequests as exc:
        set_response_header("Retry-After", str(exc.retry_after))
        raise
