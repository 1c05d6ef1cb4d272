"""Idempotent intake: a client that retries a POST with the same key gets the issue made the first time.

The key comes from an ``Idempotency-Key`` header or a ``client_request_id`` field. It is stored in
the transaction that stores the issue, under a primary key of (principal, key), so two concurrent
retries cannot both create an issue: the loser's transaction fails and it answers with the winner's.
:meth:`gridmap.issues.intake.Intake.submit` uses these steps; every source of single reports shares them.
Reusing a key for a different request body is refused (409), since that is a client bug.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

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


@dataclass(frozen=True)
class RetryKey:
    """A client's retry key: whose it is, the key, and the fingerprint of the request it came with."""

    principal: str
    key: str
    fingerprint: str

    @classmethod
    def of(cls, principal: str, key: str | None, body: Mapping[str, Any]) -> RetryKey | None:
        """The retry key of a request (None without a key); InvalidInput when the key is unusable."""
        key = check_key(key)
        return None if key is None else cls(principal, key, request_hash(body))


def find_replay(db: Database, retry: RetryKey) -> int | None:
    """The issue made the first time this key was used, None if it is new; Conflict if used for another request."""
    with db.sessions() as session:
        found = session.scalar(select(IdempotencyKey).where(IdempotencyKey.principal == retry.principal,
                                                            IdempotencyKey.key == retry.key))
    if found is None:
        return None
    if found.request_hash != retry.fingerprint:
        raise Conflict(f"the idempotency key {retry.key!r} was used before for a different request: "
                       "use a new key for a new issue")
    return found.issue_id


def remember(session: Session, retry: RetryKey, issue_id: int) -> None:
    """Store the key in the transaction that stores the issue (a concurrent twin fails on the primary key)."""
    session.add(IdempotencyKey(principal=retry.principal, key=retry.key, request_hash=retry.fingerprint,
                               issue_id=issue_id, created_at=datetime.now(UTC)))
    session.flush()
