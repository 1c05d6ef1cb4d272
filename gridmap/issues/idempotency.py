"""Idempotent intake (#8): a client that retries a POST with the same key gets the issue made the first time.

The key comes from an ``Idempotency-Key`` header or a ``client_request_id`` field. It is stored in
the transaction that stores the issue, under a primary key of (principal, key), so two concurrent
retries cannot both create an issue: the loser's transaction fails and it answers with the winner's.
Reusing a key for a different request body is refused (409), since that is a client bug.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any, Callable, Mapping

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gridmap.errors import Conflict, InvalidInput
from gridmap.storage.db import Database
from gridmap.storage.security import IdempotencyKey

MAX_KEY_LENGTH = 200


def check_key(key: str | None) -> str | None:
    """The key trimmed, None when absent; InvalidInput when it is unusable."""
    if key is None:
        return None
    if not isinstance(key, str):
        raise InvalidInput("client_request_id must be a string (a UUID, say)")
    key = key.strip()
    if not key:
        return None
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(f"Idempotency-Key / client_request_id: at most {MAX_KEY_LENGTH} printable characters")
    return key


def request_hash(body: Mapping[str, Any]) -> str:
    """A fingerprint of the request body (key order does not matter)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def _existing(db: Database, principal: str, key: str, fingerprint: str) -> int | None:
    with db.sessions() as session:
        found = session.scalar(select(IdempotencyKey).where(IdempotencyKey.principal == principal,
                                                            IdempotencyKey.key == key))
    if found is None:
        return None
    if found.request_hash != fingerprint:
        raise Conflict(f"the idempotency key {key!r} was used before for a different request: "
                       "use a new key for a new issue")
    return found.issue_id


def create_once(db: Database, create: Callable[..., Any], *, principal: str, key: str | None,
                body: Mapping[str, Any]) -> tuple[int, bool]:
    """Run ``create(also=…)`` at most once per (principal, key); return (issue id, whether it was replayed)."""
    if key is None:
        return create(also=None).id, False
    fingerprint = request_hash(body)
    known = _existing(db, principal, key, fingerprint)
    if known is not None:
        return known, True

    def remember(session, issue_id: int) -> None:
        session.add(IdempotencyKey(principal=principal, key=key, request_hash=fingerprint, issue_id=issue_id,
                                   created_at=datetime.now(timezone.utc)))
        session.flush()

    try:
        return create(also=remember).id, False
    except IntegrityError:  # a concurrent retry stored the key first; its issue is the one
        known = _existing(db, principal, key, fingerprint)
        if known is None:
            raise
        return known, True
