"""Sync tokens: a `SyncPoint` for one person's view of one list, signed with SECRET_KEY.

A token is opaque to clients. It names the list (`videos`, `feed`, `inbox`), the person and a
digest of the list's filters, so a token is only ever used for the listing it came from: a
token of another list, person or filter set is refused (422 `invalid_sync_token`) rather than
answering with a delta that would be wrong. A token older than SYNC_TOMBSTONE_DAYS is refused
with 410 `sync_token_expired`: the tombstones of what was removed since are gone, so the app
lists again from scratch.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from fieldcast.errors import ErrorCode, Gone, InvalidInput
from fieldcast.sync.changes import SyncPoint

_VERSION = 1
_MAC_BYTES = 16


@dataclass(frozen=True)
class SyncScope:
    """Whose listing of what a token belongs to."""

    list_name: str  # "videos", "feed", "inbox"
    user_id: uuid.UUID
    filters: str = ""  # a canonical spelling of the listing's filters

    @property
    def digest(self) -> str:
        raw = f"{self.list_name}\n{self.user_id}\n{self.filters}".encode()
        return hashlib.sha256(raw).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, payload: str) -> str:
    digest = hmac.new(secret.encode(), b"sync\n" + payload.encode(), hashlib.sha256).digest()
    return _b64(digest[:_MAC_BYTES])


def sign(secret: str, payload: dict[str, Any]) -> str:
    """Any JSON payload, signed (sync tokens, and the cursors that carry one)."""
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_mac(secret, body)}"


def verify(secret: str, token: str, *, field: str) -> dict[str, Any]:
    """The payload of a token this server signed; 422 on anything else."""
    try:
        body, mac = token.split(".")
        if not hmac.compare_digest(_mac(secret, body), mac):
            raise ValueError("signature")
        payload = json.loads(_unb64(body))
        if not isinstance(payload, dict):
            raise ValueError("shape")
        return payload
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise _invalid(field) from None


def _invalid(field: str) -> InvalidInput:
    return InvalidInput(
        f"The {field} is not one this list handed out; list again without it.",
        code=ErrorCode.INVALID_SYNC_TOKEN,
        errors={field: ["Not a token of this list."]},
    )


def issue(secret: str, scope: SyncScope, point: SyncPoint) -> str:
    return sign(secret, {"v": _VERSION, "l": scope.digest, **point.to_json()})


def read(
    secret: str,
    token: str,
    scope: SyncScope,
    *,
    max_age_s: int,
    field: str = "updated_since",
    now: float | None = None,
) -> SyncPoint:
    """The point a token of this scope holds, or 422 `invalid_sync_token`, or 410
    `sync_token_expired` when it is older than the tombstones are kept."""
    payload = verify(secret, token, field=field)
    if payload.get("v") != _VERSION or payload.get("l") != scope.digest:
        raise _invalid(field)
    try:
        point = SyncPoint.from_json(payload)
    except (KeyError, ValueError, TypeError):
        raise _invalid(field) from None
    if (time.time() if now is None else now) - point.issued_at > max_age_s:
        raise expired()
    return point


def expired(detail: str | None = None) -> Gone:
    return Gone(
        detail or "The sync token is older than the server keeps removals; list again without it.",
        code=ErrorCode.SYNC_TOKEN_EXPIRED,
    )
