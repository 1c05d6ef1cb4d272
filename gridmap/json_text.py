"""Reading JSON that a person sent: every way it can be unreadable becomes an InvalidInput that says where."""

from __future__ import annotations

import json
from typing import Any

from gridmap.errors import InvalidInput


def parse_json(data: str | bytes, what: str, *, kind: str = "JSON") -> Any:
    """``data`` decoded as JSON; ``what`` names it in the message (a path, "mapping file …"), ``kind`` the format."""
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{what}: broken JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"{what}: not UTF-8; {kind} must be UTF-8") from None
    except (ValueError, RecursionError) as exc:  # a number of thousands of digits, arrays nested thousands deep
        raise InvalidInput(f"{what}: not usable JSON: {str(exc)[:100]}") from None
