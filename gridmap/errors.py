"""The one error type of gridmap: a message for the user plus the HTTP status it maps to."""

from __future__ import annotations

from typing import Any


class GridmapError(Exception):
    """An error the user can fix; carries an HTTP status, a machine code and optional details."""

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        body: dict[str, Any] = {"error": {"code": self.code, "message": self.message}}
        if self.details is not None:
            body["error"]["details"] = self.details
        return body


class InvalidInput(GridmapError):
    """Malformed or out-of-range input (400)."""

    status = 400
    code = "invalid_input"


class SettingError(GridmapError):
    """A setting override or environment value that names no setting or does not parse."""

    status = 400
    code = "invalid_setting"


class NotFound(GridmapError):
    """The named thing does not exist (404)."""

    status = 404
    code = "not_found"


class OutsideCells(GridmapError):
    """A point lies outside every grid cell of the active layer set (422)."""

    status = 422
    code = "outside_cells"


class Conflict(GridmapError):
    """The request conflicts with the current state (409)."""

    status = 409
    code = "conflict"


class PayloadTooLarge(GridmapError):
    """An upload exceeds the configured limit (413)."""

    status = 413
    code = "payload_too_large"


class Unauthenticated(GridmapError):
    """No valid credentials: log in or send an API token (401)."""

    status = 401
    code = "unauthenticated"


class Forbidden(GridmapError):
    """Valid credentials, but the role or scope does not allow this (403)."""

    status = 403
    code = "forbidden"


class TooManyRequests(GridmapError):
    """A rate limit was exceeded; ``retry_after`` says after how many seconds to try again (429)."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidField(InvalidInput):
    """One record's field (or a few) is wrong; ``fields`` names them so a report can point at the column (400)."""

    def __init__(self, message: str, *, fields: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.fields = tuple(fields)


class UnknownCategory(InvalidField):
    """The category names no item of the category tree: unknown, ambiguous, or a class (400)."""

    def __init__(self, message: str, *, fields: tuple[str, ...] = ("category",), **kwargs: Any) -> None:
        super().__init__(message, fields=fields, **kwargs)


class OutOfScope(Forbidden):
    """What would be written lies outside the caller's areas or departments; nothing was written (403)."""


class AlreadyRecorded(Conflict):
    """The same record (a visit of the same household at the same time) is stored already (409)."""
