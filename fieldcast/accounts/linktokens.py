"""The single-use tokens of the links emailed to people (invitations, password resets).

A token is never stored. The row stores a random `nonce` and the SHA-256 hash of the token;
the token itself is an HMAC of the row's id and nonce under the server's secret key. So the
request that makes the row can look it up later by hash, the worker that writes the email can
derive the same token again (a retried send carries the same link), and neither the table, the
outbox nor a database backup holds a usable link. Changing the nonce (a resend) makes a new
token and retires the old one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

from fieldcast.db import new_token

# What a token is for: part of what is signed, so one purpose's token is never another's.
INVITATION = "invitation"
PASSWORD_RESET = "password-reset"  # noqa: S105 - a purpose, not a secret


def new_nonce() -> str:
    return new_token(24)


def derive(secret_key: str, purpose: str, row_id: uuid.UUID, nonce: str) -> str:
    mac = hmac.new(
        secret_key.encode(), f"{purpose}:{row_id}:{nonce}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
