"""The organisation's SCIM token: the bearer credential of its identity provider.

One live token per organisation. Making one replaces (revokes) the live one, so rotating is
making a new one; the secret is shown once and only its SHA-256 hash is stored. The directory
acts with the rights of the admin who made the live token: if they stop being an active admin,
the token stops working until another admin makes a new one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fieldcast import audit
from fieldcast.audit import AuditAction
from fieldcast.db import new_token, utcnow
from fieldcast.errors import AuthenticationFailed, Conflict, ErrorCode, NotFound
from fieldcast.models.accounts import Role, User
from fieldcast.models.directory import ScimToken
from fieldcast.policy import Principal, authorize

SCIM_TOKEN_PREFIX = "fcs_"  # noqa: S105 - a marker, not a secret
# A token's use is recorded at most this often: provisioning runs in bursts of requests.
_USE_RECORDED_EVERY = timedelta(minutes=1)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class NewScimToken:
    token: ScimToken
    secret: str


def live_token(session: Session, principal: Principal) -> ScimToken:
    """The organisation's live SCIM token (admins), or NotFound."""
    authorize(principal, "scim_token.manage")
    token = session.scalar(
        select(ScimToken).where(
            ScimToken.org_id == principal.org_id, ScimToken.revoked_at.is_(None)
        )
    )
    if token is None:
        raise NotFound("The organisation has no SCIM token.")
    return token


def _revoke_live(session: Session, principal: Principal) -> list[ScimToken]:
    revoked = list(
        session.scalars(
            update(ScimToken)
            .where(ScimToken.org_id == principal.org_id, ScimToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .returning(ScimToken)
        )
    )
    for token in revoked:
        audit.record(session, principal, AuditAction.SCIM_TOKEN_REVOKED, "scim_token", token.id)
    return revoked


def create_token(session: Session, principal: Principal) -> NewScimToken:
    """Make the organisation's SCIM token, revoking the live one (a rotation) if any."""
    authorize(principal, "scim_token.manage")
    # The UPDATE locks the live row: a concurrent rotation waits, then finds it revoked.
    _revoke_live(session, principal)
    session.flush()
    secret = SCIM_TOKEN_PREFIX + new_token(32)
    token = ScimToken(
        org_id=principal.org_id,
        prefix=secret[: len(SCIM_TOKEN_PREFIX) + 6],
        token_hash=_digest(secret),
        created_by_id=principal.user_id,
    )
    session.add(token)
    try:
        session.flush()
    except IntegrityError:
        # Another admin made one at the same moment (one live token per organisation).
        session.rollback()
        raise Conflict(
            "A SCIM token was just made by someone else; read it or try again."
        ) from None
    audit.record(session, principal, AuditAction.SCIM_TOKEN_CREATED, "scim_token", token.id)
    return NewScimToken(token, secret)


def revoke_token(session: Session, principal: Principal) -> None:
    """Revoke the organisation's live SCIM token: provisioning stops at once."""
    authorize(principal, "scim_token.manage")
    if not _revoke_live(session, principal):
        raise NotFound("The organisation has no SCIM token.")
    session.flush()


def authenticate(session: Session, bearer: str) -> Principal:
    """The principal a SCIM request acts as: the admin who made the organisation's live token.

    Raises AuthenticationFailed for an unknown or revoked token, and for one whose maker is no
    longer an active admin of the organisation.
    """
    row = (
        session.execute(
            select(ScimToken, User)
            .join(
                User,
                (User.id == ScimToken.created_by_id) & (User.org_id == ScimToken.org_id),
            )
            .where(ScimToken.token_hash == _digest(bearer), ScimToken.revoked_at.is_(None))
        ).one_or_none()
        if bearer.startswith(SCIM_TOKEN_PREFIX)
        else None
    )
    if row is None:
        raise AuthenticationFailed("The SCIM token is not valid.", code=ErrorCode.INVALID_TOKEN)
    token, maker = row.ScimToken, row.User
    if not maker.is_active or maker.deleted_at is not None or maker.role is not Role.ADMIN:
        raise AuthenticationFailed(
            "The admin who made this SCIM token is no longer an admin; make a new token.",
            code=ErrorCode.INVALID_TOKEN,
        )
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > _USE_RECORDED_EVERY:
        session.execute(update(ScimToken).where(ScimToken.id == token.id).values(last_used_at=now))
        session.flush()
    return Principal(user=maker)
