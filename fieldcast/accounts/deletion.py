"""Deleting an account: the person's own data goes, what they made for the team stays.

The policy (also in the README and the OpenAPI document):

- Deleted: login sessions and refresh tokens, API tokens acting as the person, phones (push
  tokens), inbox items, notification preferences and muted videos, stored idempotent
  responses, team and distribution-list memberships, private distribution lists, open
  password resets and the invitations naming their email; unfinished uploads expire at once
  (the expiry job removes their bytes).
- Anonymised: the user row stays so that references hold, with the email, name, handle,
  external id, directory fields, password, time zone and manager erased: it reads "Former
  member". Their direct reports no longer have a manager. The address is free for a new
  account at once.
- Kept, under the "Former member" author: their videos (with their attachments, shares and
  the receipts of who watched), so the team's learning is not lost, and organisation-wide
  distribution lists they made, which others use. Admins see such videos as they see every
  video of the organisation, and delete them through the video lifecycle; a person who wants
  their videos gone deletes them before deleting the account. Comments will follow the same
  rule.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from fieldcast import audit, events
from fieldcast.accounts.services import verify_password
from fieldcast.audit import AuditAction
from fieldcast.db import utcnow
from fieldcast.errors import (
    Conflict,
    ErrorCode,
    InvalidInput,
    PermissionDenied,
)
from fieldcast.models.accounts import (
    ApiToken,
    AuthSession,
    Invitation,
    PasswordReset,
    Role,
    TeamMembership,
    User,
)
from fieldcast.models.devices import Device
from fieldcast.models.idempotency import IdempotencyKey
from fieldcast.models.inbox import Notification, NotificationPreference, VideoMute
from fieldcast.models.sharing import DistributionList, DistributionListUser, ListVisibility
from fieldcast.models.uploads import Upload
from fieldcast.policy import Principal, authorize, get_scoped

FORMER_MEMBER = "Former member"
# Without a password (an account made for single sign-on), a login this recent confirms it.
RECENT_LOGIN = timedelta(minutes=5)


def delete_own_account(session: Session, principal: Principal, *, password: str | None) -> None:
    """The signed-in person deletes their account: confirmed by their password, or by a login
    session started in the last few minutes."""
    user = principal.user
    authorize(principal, "user.delete_own", user)
    if principal.session_id is None:
        raise InvalidInput(
            "An API token cannot delete its user's account; log in as the person.",
            code=ErrorCode.NOT_A_LOGIN_SESSION,
        )
    if password is not None:
        if not verify_password(user, password):
            raise PermissionDenied(
                "The password is not right.",
                code=ErrorCode.REAUTHENTICATION_REQUIRED,
                errors={"password": ["Wrong password."]},
            )
    else:
        started = session.scalar(
            select(AuthSession.created_at).where(AuthSession.id == principal.session_id)
        )
        if started is None or started < utcnow() - RECENT_LOGIN:
            raise PermissionDenied(
                "Confirm with your password, or log in again and delete within "
                f"{int(RECENT_LOGIN.total_seconds() // 60)} minutes.",
                code=ErrorCode.REAUTHENTICATION_REQUIRED,
            )
    erase(session, user)
    audit.record(
        session, principal, AuditAction.USER_DELETED, "user", user.id, {"own_account": True}
    )


def delete_user(session: Session, principal: Principal, user_id: uuid.UUID) -> None:
    """An admin deletes someone's account (the same policy as deleting one's own)."""
    authorize(principal, "user.delete")
    user = get_scoped(session, principal, User, user_id)
    authorize(principal, "user.delete", user)
    if user.id == principal.user_id:
        raise InvalidInput(
            "Delete your own account with DELETE /api/v1/me.", code=ErrorCode.OWN_ACCOUNT
        )
    if user.deleted_at is None:
        erase(session, user)
        audit.record(
            session, principal, AuditAction.USER_DELETED, "user", user.id, {"own_account": False}
        )


def _is_last_admin(session: Session, user: User) -> bool:
    if user.role is not Role.ADMIN:
        return False
    others = session.scalar(
        select(func.count()).where(
            User.org_id == user.org_id,
            User.id != user.id,
            User.role == Role.ADMIN,
            User.is_active.is_(True),
            User.deleted_at.is_(None),
        )
    )
    return not others


def erase(session: Session, user: User) -> None:
    """Delete and anonymise the person's data (see the module docstring)."""
    if _is_last_admin(session, user):
        raise Conflict(
            "The organisation's only admin cannot be deleted; make another admin first.",
            code=ErrorCode.LAST_ADMIN,
        )
    org_id, user_id, email = user.org_id, user.id, user.email
    now = utcnow()
    for model in (
        AuthSession,  # its refresh tokens go with it (ON DELETE CASCADE)
        ApiToken,
        Device,  # push deliveries to the phones go with them
        Notification,
        NotificationPreference,
        VideoMute,
        IdempotencyKey,
        TeamMembership,
        DistributionListUser,
        PasswordReset,
    ):
        session.execute(
            delete(model).where(
                model.org_id == org_id,
                model.user_id == user_id,
            )
        )
    session.execute(
        delete(DistributionList).where(
            DistributionList.org_id == org_id,
            DistributionList.owner_id == user_id,
            DistributionList.visibility == ListVisibility.PRIVATE,
        )
    )
    session.execute(
        delete(Invitation).where(
            Invitation.org_id == org_id,
            or_(Invitation.user_id == user_id, Invitation.email == email),
        )
    )
    session.execute(
        update(Upload)
        .where(
            Upload.org_id == org_id,
            Upload.owner_id == user_id,
            Upload.completed_at.is_(None),
        )
        .values(expires_at=now)
    )
    session.execute(
        update(User)
        .where(User.org_id == org_id, User.manager_id == user_id)
        .values(manager_id=None)
    )
    user.email = f"deleted-{user_id.hex}@deleted.invalid"
    user.display_name = FORMER_MEMBER
    user.handle = f"former_{user_id.hex[:24]}"
    user.password_hash = None
    user.external_id = None
    user.manager_id = None
    # What the directory said of them (fieldcast.directory).
    user.user_name = user.given_name = user.family_name = None
    user.department = user.employee_number = None
    user.time_zone = "UTC"
    user.last_login_at = None
    user.is_active = False
    user.deleted_at = now
    session.flush()
    events.publish(session, events.PersonRenamed(org_id=org_id, user_id=user_id))
