"""Housekeeping for credentials."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, or_

from fieldcast.db import Database, utcnow
from fieldcast.models.accounts import AuthSession, RefreshToken

# Ended sessions are kept a while so that a replayed refresh token is still recognised as reuse.
_KEEP_ENDED = timedelta(days=30)


def prune_credentials(db: Database) -> int:
    now = utcnow()
    with db.unit_of_work() as session:
        tokens = session.execute(
            delete(RefreshToken).where(RefreshToken.expires_at < now - _KEEP_ENDED)
        )
        sessions = session.execute(
            delete(AuthSession).where(
                or_(
                    AuthSession.expires_at < now - _KEEP_ENDED,
                    AuthSession.revoked_at < now - _KEEP_ENDED,
                )
            )
        )
        return int((tokens.rowcount or 0) + (sessions.rowcount or 0))  # type: ignore[attr-defined]
