"""Idempotency keys: the first request with a key acts, retries replay its response.

A request is one unit of work (api/unit_of_work.py), and its key lives and dies with it:

- `begin()` inserts the key in the request's transaction. A retry that arrives while the first
  request runs waits on the row, then finds it (and is told to retry shortly if the first is
  still going, or gets its response).
- On success, `complete()` stores the response in the same transaction, just before the one
  commit: the change and its stored response commit together or not at all. A client that
  never received the response (a crash after the commit, a lost connection) retries and gets
  the stored response replayed, with `Idempotent-Replayed: true`; nothing acts twice.
- On any error the transaction rolls back and the key with it: nothing was done and the key
  is free at once, so a retry acts. Only when the request made an early commit (which carried
  the key with it, see `fieldcast.db.EarlyCommit`) and then failed is the key deleted by
  `release()` in a transaction of its own.

No key is left "in progress" for its TTL by a crash at any of these points. Should the process
itself die after an early commit (killed, out of memory), nothing is left to release the key:
`begin()` then treats a key still "in progress" after `ABANDONED_AFTER` as free.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldcast.db import Database, utcnow
from fieldcast.errors import Conflict, ErrorCode, InvalidInput
from fieldcast.models.idempotency import IdempotencyKey

# A request still "in progress" after this long was abandoned: keyed requests are JSON bodies
# that finish in seconds (gunicorn's worker timeout is 120 s), so only a process that died
# after an early commit leaves one behind.
ABANDONED_AFTER = timedelta(minutes=10)

MAX_KEY_LENGTH = IdempotencyKey.key.property.columns[0].type.length or 255


@dataclass(frozen=True)
class Started:
    key_id: uuid.UUID


@dataclass(frozen=True)
class Replay:
    status: int
    body: bytes
    headers: dict[str, str]


def check_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(
            errors={"Idempotency-Key": [f"1-{MAX_KEY_LENGTH} printable characters."]},
            code=ErrorCode.INVALID_IDEMPOTENCY_KEY,
        )


def begin(
    session: Session,
    *,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    key: str,
    fingerprint: str,
    ttl: timedelta,
) -> Started | Replay:
    check_key(key)
    now = utcnow()
    # An expired key is free again, and so is one left "in progress" by a request whose process
    # died after an early commit (killed, out of memory) and so never stored or freed it.
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.key == key,
            or_(
                IdempotencyKey.expires_at <= now,
                and_(
                    IdempotencyKey.response_status.is_(None),
                    IdempotencyKey.created_at <= now - ABANDONED_AFTER,
                ),
            ),
        )
    )
    key_id = uuid.uuid4()
    inserted = session.execute(
        insert(IdempotencyKey)
        .values(
            id=key_id,
            org_id=org_id,
            user_id=user_id,
            key=key,
            fingerprint=fingerprint,
            expires_at=now + ttl,
        )
        .on_conflict_do_nothing(index_elements=["user_id", "key"])
        .returning(IdempotencyKey.id)
    ).scalar_one_or_none()
    if inserted is not None:
        return Started(key_id)
    existing = session.execute(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    ).scalar_one()
    session.rollback()
    if existing.fingerprint != fingerprint:
        raise InvalidInput(
            "This Idempotency-Key was used with a different request.",
            code=ErrorCode.IDEMPOTENCY_KEY_REUSED,
        )
    if existing.response_status is None or existing.response_body is None:
        raise Conflict(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            code=ErrorCode.IDEMPOTENCY_REQUEST_IN_PROGRESS,
            headers={"Retry-After": "1"},
        )
    return Replay(
        status=existing.response_status,
        body=existing.response_body,
        headers=dict(existing.response_headers or {}),
    )


def complete(
    db_session: Session, key_id: uuid.UUID, *, status: int, body: bytes, headers: dict[str, Any]
) -> None:
    db_session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == key_id)
        .values(response_status=status, response_body=body, response_headers=headers)
    )


def release(db_session: Session, key_id: uuid.UUID) -> None:
    """Forget a key whose request failed after an early commit, so that a retry runs again."""
    db_session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == key_id))


def prune(db: Database) -> int:
    with db.unit_of_work() as session:
        result = session.execute(
            delete(IdempotencyKey).where(IdempotencyKey.expires_at <= utcnow())
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
