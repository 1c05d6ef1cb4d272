"""Request parsing shared by the JSON API blueprints."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from gridmap.errors import InvalidInput


def json_body(fields: tuple[str, ...]) -> dict[str, Any]:
    """The request body as a JSON object with only the known ``fields``; InvalidInput otherwise."""
    raw = request.get_data(cache=False)
    if not raw.strip():
        raise InvalidInput("the request body is empty: send a JSON object")
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise InvalidInput("the request body is not UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(body, dict):
        raise InvalidInput(f"the request body must be a JSON object, got a JSON {type(body).__name__}")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise InvalidInput(f"unknown field(s) {', '.join(unknown)}; the fields are {', '.join(fields)}")
    return body
