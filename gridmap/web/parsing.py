"""Request parsing shared by the JSON API blueprints."""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, request

from gridmap.errors import InvalidInput, PayloadTooLarge


def check_body_size() -> None:
    """PayloadTooLarge naming the limit when the request announces a body over max_upload_bytes."""
    limit, length = current_app.config.get("MAX_CONTENT_LENGTH"), request.content_length
    if limit is not None and length is not None and length > limit:
        raise PayloadTooLarge(f"the request body has {length} bytes, more than the limit of {limit} bytes "
                              "(setting max_upload_bytes); send a smaller file, or split it")


#: Largest JSON object body: API objects are small, and parsing 20 MB of ``[{},{},…]`` takes ~0.5 GB.
MAX_JSON_BYTES = 1024 * 1024


def json_body(fields: tuple[str, ...]) -> dict[str, Any]:
    """The request body as a JSON object with only the known ``fields``; InvalidInput otherwise."""
    check_body_size()
    if (request.content_length or 0) > MAX_JSON_BYTES:
        raise PayloadTooLarge(_json_too_large(request.content_length))
    raw = request.get_data(cache=False)
    if len(raw) > MAX_JSON_BYTES:
        raise PayloadTooLarge(_json_too_large(len(raw)))
    if not raw.strip():
        raise InvalidInput("the request body is empty: send a JSON object")
    try:
        body = json.loads(raw)
    except UnicodeDecodeError:
        raise InvalidInput("the request body is not UTF-8 JSON") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc.msg} at line {exc.lineno} column "
                           f"{exc.colno}") from None
    except (ValueError, RecursionError) as exc:  # a number of thousands of digits, arrays nested thousands deep
        raise InvalidInput(f"the request body is not usable JSON: {str(exc)[:100]}") from None
    if not isinstance(body, dict):
        raise InvalidInput(f"the request body must be a JSON object, got a JSON {type(body).__name__}")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise InvalidInput(f"unknown field(s) {', '.join(unknown)}; the fields are {', '.join(fields)}")
    return body


def _json_too_large(size: int) -> str:
    return f"the JSON body has {size} bytes, more than the {MAX_JSON_BYTES} bytes a JSON object of this API may have"
