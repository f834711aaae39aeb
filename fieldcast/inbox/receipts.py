"""Receipt tokens: a push says it arrived or was tapped without the user's credentials.

An iOS Notification Service Extension or an Android app woken in the background has no fresh
access token. Each push's data therefore carries a receipt token: an HMAC, under a key derived
from SECRET_KEY for this purpose only, over the notification's id, its user's id and an expiry
(RECEIPT_TOKEN_TTL_S after the push is sent, 7 days by default). Presented to
`POST /api/v1/receipts`, it marks that one notification `delivered` or `opened` and nothing
else: it names no other object, cannot be stretched past its expiry, and a changed byte makes it
worthless. The token travels in the request body, never in a URL, so access logs never hold it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import uuid
from dataclasses import dataclass
from datetime import datetime

from fieldcast.errors import ErrorCode, Gone, PermissionDenied

_VERSION = 1
# version, notification id, user id, expiry (seconds since the epoch, unsigned 32 bits)
_LAYOUT = struct.Struct(">B16s16sI")
_MAC_BYTES = 16
# The key of these tokens is SECRET_KEY's, derived for this use alone: a receipt token can never
# pass for an access token or a signed media link, nor one of those for it.
_KEY_CONTEXT = b"fieldcast push receipt token v1"


@dataclass(frozen=True)
class ReceiptClaim:
    notification_id: uuid.UUID
    user_id: uuid.UUID
    expires_at: int


class ReceiptTokenInvalid(PermissionDenied):
    code = ErrorCode.RECEIPT_TOKEN_INVALID
    title = "Receipt token not valid"


class ReceiptTokenExpired(Gone):
    code = ErrorCode.RECEIPT_TOKEN_EXPIRED
    title = "Receipt token expired"


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _KEY_CONTEXT, hashlib.sha256).digest()


def _mac(secret: str, payload: bytes) -> bytes:
    return hmac.new(_key(secret), payload, hashlib.sha256).digest()[:_MAC_BYTES]


def issue(
    secret: str,
    notification_id: uuid.UUID,
    user_id: uuid.UUID,
    *,
    ttl_s: int,
    now: datetime,
) -> str:
    """A token for this notification of this user, good for `ttl_s` seconds from `now`."""
    expires = int(now.timestamp()) + ttl_s
    payload = _LAYOUT.pack(_VERSION, notification_id.bytes, user_id.bytes, expires)
    return _encode(payload + _mac(secret, payload))


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def verify(secret: str, token: str, *, now: datetime) -> ReceiptClaim:
    """What the token names, when it is one this server made and has not expired.

    Raises ReceiptTokenInvalid (403) for anything altered or malformed, ReceiptTokenExpired
    (410) past its expiry. The signature is checked first: an expired token is only said to be
    expired when it is genuine."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise ReceiptTokenInvalid("This receipt token is not valid.") from None
    if len(raw) != _LAYOUT.size + _MAC_BYTES or _encode(raw) != token:
        raise ReceiptTokenInvalid("This receipt token is not valid.")
    payload, mac = raw[: _LAYOUT.size], raw[_LAYOUT.size :]
    if not hmac.compare_digest(_mac(secret, payload), mac):
        raise ReceiptTokenInvalid("This receipt token is not valid.")
    version, notification, user, expires = _LAYOUT.unpack(payload)
    if version != _VERSION:
        raise ReceiptTokenInvalid("This receipt token is not valid.")
    if expires < now.timestamp():
        raise ReceiptTokenExpired(
            "This receipt token has expired; send the receipt with a bearer token instead."
        )
    return ReceiptClaim(uuid.UUID(bytes=notification), uuid.UUID(bytes=user), expires)
