"""The emails of accounts: invitations and password resets, written and sent by outbox tasks.

Each task loads the row it names, writes the message (plain text and HTML) with the link of
`fieldcast.links.app_link`, and hands it to the process's email channel (SMTP, or files in the
embedded default). A row that is no longer open (accepted, revoked, used, expired, or given a
new link since) sends nothing. A server that is down or busy makes the task retry with the
outbox's backoff; one that refuses the address fails the task for good. Links are never
logged.
"""

from __future__ import annotations

import html
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fieldcast.accounts import linktokens
from fieldcast.context import current
from fieldcast.db import utcnow
from fieldcast.links import app_link
from fieldcast.models.accounts import Invitation, Organisation, PasswordReset, User
from fieldcast.outbox.names import TaskName
from fieldcast.outbox.services import TransientError, tasks
from fieldcast.settings import Settings
from notifications.email import Email, EmailRejected, EmailSender, EmailTransientError

log = logging.getLogger(__name__)

QUEUE = "default"


@dataclass(frozen=True)
class Paragraphs:
    """A message as a greeting, paragraphs and one call to action, for both bodies."""

    greeting: str
    lines: tuple[str, ...]
    action: str
    link: str
    footer: str

    def text(self) -> str:
        body = "\n\n".join(self.lines)
        return f"{self.greeting}\n\n{body}\n\n{self.action}:\n{self.link}\n\n{self.footer}\n"

    def html(self) -> str:
        e = html.escape
        paragraphs = "".join(f"<p>{e(line)}</p>" for line in self.lines)
        return (
            '<!doctype html><html><body style="font-family: sans-serif; line-height: 1.5">'
            f"<p>{e(self.greeting)}</p>{paragraphs}"
            f'<p><a href="{e(self.link, quote=True)}" '
            'style="display: inline-block; padding: 10px 16px; background: #1a56db; '
            f'color: #ffffff; text-decoration: none; border-radius: 6px">{e(self.action)}</a></p>'
            f'<p style="color: #6b7280; font-size: 13px">{e(self.footer)}</p>'
            "</body></html>"
        )


def _secret_key(settings: Settings) -> str:
    if not settings.secret_key:
        # The links are derived from it: a worker without it cannot write them.
        raise RuntimeError("SECRET_KEY is not set in this worker; it is needed to write links")
    return settings.secret_key


def _send(sender: EmailSender | None, message: Email) -> None:
    if sender is None:
        raise RuntimeError("no email channel is configured in this process")
    try:
        sender.send(message)
    except EmailTransientError as exc:
        raise TransientError(str(exc)) from None
    except EmailRejected:
        log.error("the mail server refused the email to %s: %s", message.to, message.subject)
        raise


def invitation_email(
    settings: Settings, invitation: Invitation, organisation: Organisation, inviter: str | None
) -> Email:
    token = linktokens.derive(
        _secret_key(settings), linktokens.INVITATION, invitation.id, invitation.nonce
    )
    link = app_link(settings, "/invitations/accept", token=token)
    days = max(1, round((invitation.expires_at - utcnow()).total_seconds() / 86400))
    who = inviter or "An admin"
    content = Paragraphs(
        greeting=f"Hello{' ' + invitation.display_name if invitation.display_name else ''},",
        lines=(
            f"{who} invited you to join {organisation.name} on Fieldcast, where your team "
            "shares short videos of what works in the field.",
            f"The link below works once and for {days} day{'s' if days != 1 else ''}.",
        ),
        action="Accept the invitation",
        link=link,
        footer="If you did not expect this invitation, you can ignore this email.",
    )
    return Email(
        to=invitation.email,
        # One line whatever the name holds: a header cannot carry a line break.
        subject=f"Join {' '.join(organisation.name.split())} on Fieldcast",
        text=content.text(),
        html=content.html(),
        message_id=f"invitation.{invitation.id}.{invitation.nonce[:8]}",
    )


def password_reset_email(settings: Settings, reset: PasswordReset, user: User) -> Email:
    token = linktokens.derive(
        _secret_key(settings), linktokens.PASSWORD_RESET, reset.id, reset.nonce
    )
    link = app_link(settings, "/password-reset", token=token)
    minutes = max(1, round((reset.expires_at - utcnow()).total_seconds() / 60))
    content = Paragraphs(
        greeting=f"Hello {user.display_name},",
        lines=(
            "Someone asked to reset the password of your Fieldcast account.",
            f"The link below works once and for {minutes} minutes. Setting a new password "
            "signs you out on every device.",
        ),
        action="Choose a new password",
        link=link,
        footer="If you did not ask for this, ignore this email: your password stays the same.",
    )
    return Email(
        to=user.email,
        subject="Reset your Fieldcast password",
        text=content.text(),
        html=content.html(),
        message_id=f"password-reset.{reset.id}",
    )


@tasks.register(TaskName.ACCOUNTS_INVITATION_EMAIL, queue=QUEUE, max_attempts=8)
def send_invitation(session: Session, payload: dict[str, Any]) -> None:
    row = session.execute(
        select(Invitation, Organisation)
        .join(Organisation, Organisation.id == Invitation.org_id)
        .where(Invitation.id == uuid.UUID(payload["invitation_id"]))
    ).one_or_none()
    if row is None:
        return
    invitation, organisation = row
    if (
        invitation.accepted_at is not None
        or invitation.revoked_at is not None
        or invitation.expires_at <= utcnow()
        or invitation.nonce != payload["nonce"]
    ):
        log.info("invitation %s is no longer open with this link; not sent", invitation.id)
        return
    inviter = None
    if invitation.invited_by_id is not None:
        inviter = session.scalar(
            select(User.display_name).where(
                User.id == invitation.invited_by_id, User.deleted_at.is_(None)
            )
        )
    context = current()
    _send(context.email, invitation_email(context.settings, invitation, organisation, inviter))


@tasks.register(TaskName.ACCOUNTS_PASSWORD_RESET_EMAIL, queue=QUEUE, max_attempts=8)
def send_password_reset(session: Session, payload: dict[str, Any]) -> None:
    row = session.execute(
        select(PasswordReset, User)
        .join(User, (User.id == PasswordReset.user_id) & (User.org_id == PasswordReset.org_id))
        .where(PasswordReset.id == uuid.UUID(payload["reset_id"]))
    ).one_or_none()
    if row is None:
        return
    reset, user = row
    if reset.used_at is not None or reset.expires_at <= utcnow() or not user.is_active:
        log.info("password reset %s is no longer open; not sent", reset.id)
        return
    context = current()
    _send(context.email, password_reset_email(context.settings, reset, user))
