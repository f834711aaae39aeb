"""Invitations: admins invite people by email; the link in the email makes their account.

An invitation is open until it is accepted, revoked or past `expires_at`. Its email is sent
by an outbox task (`accounts.invitation_email`) after the request commits; the link carries a
single-use token (see `fieldcast.accounts.linktokens`). Resending gives the invitation a new
token and a new expiry, so only the latest email's link works.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fieldcast import audit, events

# `emails` registers the outbox tasks that the functions here record.
from fieldcast.accounts import emails, linktokens  # noqa: F401
from fieldcast.accounts.services import (
    clean_name,
    conflict_from,
    hash_password,
    normalise_email,
    normalise_handle,
)
from fieldcast.audit import AuditAction
from fieldcast.db import utcnow, uuid7
from fieldcast.errors import Conflict, ErrorCode, Gone, InvalidInput, NotFound
from fieldcast.models.accounts import (
    Invitation,
    Organisation,
    Role,
    Team,
    TeamMembership,
    User,
)
from fieldcast.outbox import services as outbox
from fieldcast.outbox.names import TaskName
from fieldcast.policy import Principal, authorize, get_scoped, scoped

PURPOSE = linktokens.INVITATION
MAX_TEAMS = 50


class InvitationStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REVOKED = "revoked"
    EXPIRED = "expired"


def status_of(invitation: Invitation, now: datetime | None = None) -> InvitationStatus:
    if invitation.accepted_at is not None:
        return InvitationStatus.ACCEPTED
    if invitation.revoked_at is not None:
        return InvitationStatus.REVOKED
    if invitation.expires_at <= (now or utcnow()):
        return InvitationStatus.EXPIRED
    return InvitationStatus.PENDING


def token_for(secret_key: str, invitation: Invitation) -> str:
    """The token of the invitation's current link."""
    return linktokens.derive(secret_key, PURPOSE, invitation.id, invitation.nonce)


def _new_link(invitation: Invitation, secret_key: str, ttl: timedelta) -> None:
    now = utcnow()
    invitation.nonce = linktokens.new_nonce()
    invitation.token_hash = linktokens.digest(token_for(secret_key, invitation))
    invitation.sent_at = now
    invitation.expires_at = now + ttl


def _record_email(session: Session, invitation: Invitation) -> None:
    # The nonce names which link the email carries: a send that a later resend superseded
    # writes nothing, and a retried send writes the same link again.
    outbox.record(
        session,
        TaskName.ACCOUNTS_INVITATION_EMAIL,
        {"invitation_id": str(invitation.id), "nonce": invitation.nonce},
        org_id=invitation.org_id,
        dedup_key=f"invitation-email:{invitation.id}:{invitation.nonce}",
    )


def _check_teams(
    session: Session, principal: Principal, team_ids: Sequence[uuid.UUID]
) -> list[uuid.UUID]:
    wanted = list(dict.fromkeys(team_ids))
    if len(wanted) > MAX_TEAMS:
        raise InvalidInput(errors={"team_ids": [f"At most {MAX_TEAMS} teams."]})
    if not wanted:
        return []
    found = set(
        session.scalars(select(Team.id).where(Team.org_id == principal.org_id, Team.id.in_(wanted)))
    )
    missing = [str(team_id) for team_id in wanted if team_id not in found]
    if missing:
        raise InvalidInput(errors={"team_ids": [f"No such team: {', '.join(missing)}."]})
    return wanted


def invite(
    session: Session,
    principal: Principal,
    *,
    secret_key: str,
    ttl: timedelta,
    email: str,
    role: Role = Role.REP,
    team_ids: Sequence[uuid.UUID] = (),
    display_name: str | None = None,
) -> Invitation:
    """Invite someone by email; the email goes out once the caller's transaction commits."""
    authorize(principal, "invitation.create")
    address = normalise_email(email)
    if session.scalar(select(User.id).where(User.email == address)) is not None:
        raise Conflict(
            "A user with this email already exists.",
            code=ErrorCode.EMAIL_TAKEN,
            errors={"email": ["Already in use."]},
        )
    open_one = session.scalars(
        scoped(principal, Invitation)
        .where(
            Invitation.email == address,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .with_for_update()
    ).one_or_none()
    now = utcnow()
    if open_one is not None:
        if open_one.expires_at > now:
            raise Conflict(
                "An open invitation for this email exists; resend or revoke it.",
                code=ErrorCode.INVITATION_PENDING,
                errors={"email": ["Already invited."]},
            )
        # An expired invitation gives way to the new one.
        open_one.revoked_at = now
        session.flush()
    invitation = Invitation(
        id=uuid7(),
        org_id=principal.org_id,
        email=address,
        role=role,
        display_name=clean_name(display_name, "display_name") if display_name else None,
        team_ids=_check_teams(session, principal, team_ids),
        invited_by_id=principal.user_id,
    )
    _new_link(invitation, secret_key, ttl)
    session.add(invitation)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise Conflict(
            "An open invitation for this email exists; resend or revoke it.",
            code=ErrorCode.INVITATION_PENDING,
            errors={"email": ["Already invited."]},
        ) from None
    _record_email(session, invitation)
    # The invitation's id, role and teams; not the address (personal data stays out of the log).
    audit.record(
        session,
        principal,
        AuditAction.INVITATION_CREATED,
        "invitation",
        invitation.id,
        {"role": invitation.role, "team_ids": invitation.team_ids},
    )
    return invitation


def listed(principal: Principal, *, status: InvitationStatus | None = None) -> Select[Any]:
    """The organisation's invitations, for a page (admins)."""
    authorize(principal, "invitation.list")
    stmt = scoped(principal, Invitation)
    now = utcnow()
    if status is InvitationStatus.ACCEPTED:
        stmt = stmt.where(Invitation.accepted_at.is_not(None))
    elif status is InvitationStatus.REVOKED:
        stmt = stmt.where(Invitation.accepted_at.is_(None), Invitation.revoked_at.is_not(None))
    elif status is not None:
        open_ = and_(Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None))
        if status is InvitationStatus.PENDING:
            stmt = stmt.where(open_, Invitation.expires_at > now)
        else:
            stmt = stmt.where(open_, Invitation.expires_at <= now)
    return stmt


def _load_open(
    session: Session, principal: Principal, invitation_id: uuid.UUID, action: str
) -> Invitation:
    invitation = get_scoped(session, principal, Invitation, invitation_id)
    authorize(principal, action, invitation)
    if invitation.accepted_at is not None or invitation.revoked_at is not None:
        raise Conflict(
            "The invitation was accepted or revoked already.", code=ErrorCode.INVITATION_CLOSED
        )
    return invitation


def revoke(session: Session, principal: Principal, invitation_id: uuid.UUID) -> Invitation:
    """Withdraw an invitation: its link stops working at once."""
    invitation = get_scoped(session, principal, Invitation, invitation_id)
    authorize(principal, "invitation.revoke", invitation)
    if invitation.accepted_at is not None:
        raise Conflict(
            "The invitation was accepted; deactivate or delete the user instead.",
            code=ErrorCode.INVITATION_CLOSED,
        )
    if invitation.revoked_at is None:
        invitation.revoked_at = utcnow()
        audit.record(
            session, principal, AuditAction.INVITATION_REVOKED, "invitation", invitation.id
        )
    session.flush()
    return invitation


def resend(
    session: Session,
    principal: Principal,
    invitation_id: uuid.UUID,
    *,
    secret_key: str,
    ttl: timedelta,
) -> Invitation:
    """Email a new link (the previous one stops working) and start the expiry again."""
    invitation = _load_open(session, principal, invitation_id, "invitation.resend")
    _new_link(invitation, secret_key, ttl)
    session.flush()
    _record_email(session, invitation)
    audit.record(
        session,
        principal,
        AuditAction.INVITATION_RESENT,
        "invitation",
        invitation.id,
        {"expires_at": invitation.expires_at},
    )
    return invitation


def find_by_token(session: Session, token: str, *, for_update: bool = False) -> Invitation:
    """The open invitation whose link carries `token`; 404 for an unknown token, 410 for one
    that was used, withdrawn or has expired."""
    stmt = select(Invitation).where(Invitation.token_hash == linktokens.digest(token))
    if for_update:
        stmt = stmt.with_for_update()
    invitation = session.scalars(stmt).one_or_none()
    if invitation is None:
        raise NotFound("No invitation has this token.", code=ErrorCode.INVITATION_NOT_FOUND)
    status = status_of(invitation)
    if status is InvitationStatus.ACCEPTED:
        raise Gone(
            "This invitation was accepted already; log in instead.",
            code=ErrorCode.INVITATION_USED,
        )
    if status is InvitationStatus.REVOKED:
        raise Gone("An admin withdrew this invitation.", code=ErrorCode.INVITATION_REVOKED)
    if status is InvitationStatus.EXPIRED:
        raise Gone(
            "This invitation has expired; ask an admin to send it again.",
            code=ErrorCode.INVITATION_EXPIRED,
        )
    return invitation


@dataclass(frozen=True)
class Preview:
    invitation: Invitation
    organisation: Organisation
    invited_by: str | None


def preview(session: Session, token: str) -> Preview:
    """What the open invitation with this token is for (nothing changes)."""
    invitation = find_by_token(session, token)
    organisation = session.get(Organisation, invitation.org_id)
    assert organisation is not None  # the invitation is deleted with its organisation
    invited_by = None
    if invitation.invited_by_id is not None:
        invited_by = session.scalar(
            select(User.display_name).where(
                User.org_id == invitation.org_id,
                User.id == invitation.invited_by_id,
                User.deleted_at.is_(None),
            )
        )
    return Preview(invitation, organisation, invited_by)


def accept(
    session: Session,
    *,
    token: str,
    password: str,
    handle: str,
    display_name: str | None = None,
) -> User:
    """Make the invited person's account from the invitation (once)."""
    invitation = find_by_token(session, token, for_update=True)
    name = display_name if display_name is not None else invitation.display_name
    if not name:
        raise InvalidInput(errors={"display_name": ["Required: the invitation names nobody."]})
    user = User(
        org_id=invitation.org_id,
        email=invitation.email,
        display_name=clean_name(name, "display_name"),
        handle=normalise_handle(handle),
        role=invitation.role,
        password_hash=hash_password(password),
    )
    session.add(user)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise conflict_from(exc) from None
    # Teams deleted since the invitation are skipped.
    teams = session.scalars(
        select(Team.id).where(Team.org_id == invitation.org_id, Team.id.in_(invitation.team_ids))
    ).all()
    session.add_all(
        TeamMembership(org_id=invitation.org_id, team_id=team_id, user_id=user.id)
        for team_id in teams
    )
    session.flush()
    events.publish(
        session, events.PersonTookRole(org_id=user.org_id, user_id=user.id, role=user.role)
    )
    if teams:
        events.publish(
            session,
            events.PersonJoinedTeams(org_id=user.org_id, user_id=user.id, team_ids=tuple(teams)),
        )
    invitation.accepted_at = utcnow()
    invitation.user_id = user.id
    # The new person made their account themselves, on an admin's invitation.
    audit.record(
        session,
        user.id,
        AuditAction.USER_CREATED,
        "user",
        user.id,
        {
            "role": user.role,
            "via": "invitation",
            "invitation_id": invitation.id,
            "invited_by_id": invitation.invited_by_id,
            "team_ids": list(teams),
        },
        org_id=invitation.org_id,
    )
    session.flush()
    return user


def get(session: Session, principal: Principal, invitation_id: uuid.UUID) -> Invitation:
    invitation = get_scoped(session, principal, Invitation, invitation_id)
    authorize(principal, "invitation.read", invitation)
    return invitation
