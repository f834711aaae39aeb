"""Password reset by email: a single-use link that sets a new password and ends every login.

Asking for a reset answers the same whether or not the address has an account (no account
enumeration); the API limits how often one address or one network asks. The email is sent by
an outbox task (`accounts.password_reset_email`) after the request commits.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

# `emails` registers the outbox tasks that the functions here record.
from fieldcast.accounts import emails, linktokens  # noqa: F401
from fieldcast.accounts.services import hash_password, normalise_email, revoke_sessions
from fieldcast.db import utcnow, uuid7
from fieldcast.errors import ErrorCode, Gone, NotFound
from fieldcast.models.accounts import PasswordReset, User
from fieldcast.outbox import services as outbox
from fieldcast.outbox.names import TaskName

PURPOSE = linktokens.PASSWORD_RESET


def token_for(secret_key: str, reset: PasswordReset) -> str:
    return linktokens.derive(secret_key, PURPOSE, reset.id, reset.nonce)


def request_reset(
    session: Session, *, email: str, secret_key: str, ttl: timedelta
) -> PasswordReset | None:
    """Record a reset and its email for the active account with this email, if there is one.
    The caller answers the same either way."""
    user = session.scalars(
        select(User).where(
            User.email == normalise_email(email),
            User.is_active.is_(True),
            User.deleted_at.is_(None),
        )
    ).one_or_none()
    if user is None:
        return None
    reset = PasswordReset(
        id=uuid7(),
        org_id=user.org_id,
        user_id=user.id,
        nonce=linktokens.new_nonce(),
        expires_at=utcnow() + ttl,
    )
    reset.token_hash = linktokens.digest(token_for(secret_key, reset))
    session.add(reset)
    session.flush()
    outbox.record(
        session,
        TaskName.ACCOUNTS_PASSWORD_RESET_EMAIL,
        {"reset_id": str(reset.id)},
        org_id=user.org_id,
        dedup_key=f"password-reset-email:{reset.id}",
    )
    return reset


def reset_password(session: Session, *, token: str, password: str) -> User:
    """Set the new password, retire every reset link of the person and end all their login
    sessions (a stolen session does not outlive the reset)."""
    row = session.execute(
        select(PasswordReset, User)
        .join(User, (User.id == PasswordReset.user_id) & (User.org_id == PasswordReset.org_id))
        .where(PasswordReset.token_hash == linktokens.digest(token))
        .with_for_update(of=PasswordReset)
    ).one_or_none()
    if row is None or not row.User.is_active or row.User.deleted_at is not None:
        raise NotFound("No password reset has this token.", code=ErrorCode.PASSWORD_RESET_NOT_FOUND)
    reset, user = row
    now = utcnow()
    if reset.used_at is not None:
        raise Gone(
            "This link was used already; ask for a new one.",
            code=ErrorCode.PASSWORD_RESET_USED,
        )
    if reset.expires_at <= now:
        raise Gone(
            "This link has expired; ask for a new one.", code=ErrorCode.PASSWORD_RESET_EXPIRED
        )
    user.password_hash = hash_password(password)
    session.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=now)
    )
    revoke_sessions(session, user, reason="password_reset")
    session.flush()
    return user
