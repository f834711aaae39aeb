"""Team webhooks: a share to a team also posts a card to the team's Slack or Teams channel.

The policy half of chat webhooks; `notifications.chat` is the transport and `cards` builds the
messages. Admins register a channel's incoming webhook on a team (`team.manage_webhooks`). When
a share is released, one `webhooks.post` outbox task is
recorded per webhook of the teams the sender named, in the share's own transaction. The task
runs on the `default` queue, so a slow chat service never holds up a push worker, and retries
what may succeed later (429, 5xx, timeouts).

A webhook URL is a credential: whoever holds it can post to the channel. It is stored, but never
returned whole (`notifications.chat.masked`), logged, or written into an error; logs name the
webhook's id and host. Webhooks may only point at the chat services' hosts
(`Settings.webhook_allowed_hosts`), so an admin cannot aim the workers at internal addresses.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fieldcast import audit, events, links
from fieldcast.audit import AuditAction
from fieldcast.context import current
from fieldcast.errors import Conflict, ErrorCode, InvalidInput, NotFound
from fieldcast.integrations.cards import MESSAGE_BUILDERS, ShareCard
from fieldcast.models.accounts import Team, User
from fieldcast.models.integrations import TeamWebhook, WebhookKind
from fieldcast.models.outbox import OutboxJob
from fieldcast.models.sharing import Share
from fieldcast.models.videos import Video
from fieldcast.outbox import services as outbox
from fieldcast.outbox.names import TaskName
from fieldcast.policy import Principal, authorize, get_scoped
from notifications import chat

log = logging.getLogger(__name__)

POST_TASK = TaskName.WEBHOOKS_POST
MAX_WEBHOOKS_PER_TEAM = 10


class WebhookExists(Conflict):
    code = ErrorCode.WEBHOOK_EXISTS
    title = "The team already has this webhook"


class TooManyWebhooks(InvalidInput):
    code = ErrorCode.TOO_MANY_WEBHOOKS
    title = "The team has as many webhooks as it may have"


class WebhookUrlInvalid(InvalidInput):
    code = ErrorCode.WEBHOOK_URL_INVALID
    title = "This is not a webhook URL"


class WebhookUrlNotHttps(InvalidInput):
    code = ErrorCode.WEBHOOK_URL_NOT_HTTPS
    title = "Webhook URLs start with https://"


class WebhookHostNotAllowed(InvalidInput):
    code = ErrorCode.WEBHOOK_HOST_NOT_ALLOWED
    title = "Webhooks may only point at Slack or Microsoft Teams"


class WebhookKindMismatch(InvalidInput):
    code = ErrorCode.WEBHOOK_KIND_MISMATCH
    title = "The URL is not a webhook of this kind"


# The domain error for each rule of `notifications.chat.check_url`.
_URL_ERRORS: dict[str, type[InvalidInput]] = {
    "invalid": WebhookUrlInvalid,
    "not_https": WebhookUrlNotHttps,
    "host_not_allowed": WebhookHostNotAllowed,
    "kind_mismatch": WebhookKindMismatch,
}


def clean_webhook_url(url: str, kind: WebhookKind, allowed_hosts: Sequence[str]) -> str:
    """The URL, stripped, if a webhook of `kind` may point at it; else InvalidInput naming `url`
    (see `notifications.chat.check_url` for the rules)."""
    try:
        return chat.check_url(url, slack=kind == WebhookKind.SLACK, allowed_hosts=allowed_hosts)
    except chat.UrlRefused as refused:
        raise _URL_ERRORS[refused.reason](errors={"url": [refused.message]}) from None


# -- managing a team's webhooks ------------------------------------------------------------------


def _managed_team(session: Session, principal: Principal, team_id: uuid.UUID) -> Team:
    team = get_scoped(session, principal, Team, team_id)
    authorize(principal, "team.manage_webhooks", team)
    return team


def list_webhooks(session: Session, principal: Principal, team_id: uuid.UUID) -> list[TeamWebhook]:
    """The team's webhooks, oldest first (admins)."""
    team = _managed_team(session, principal, team_id)
    return list(
        session.scalars(
            select(TeamWebhook)
            .where(TeamWebhook.org_id == team.org_id, TeamWebhook.team_id == team.id)
            .order_by(TeamWebhook.id)
        )
    )


def add_webhook(
    session: Session,
    principal: Principal,
    team_id: uuid.UUID,
    *,
    kind: WebhookKind,
    url: str,
    allowed_hosts: Sequence[str],
) -> TeamWebhook:
    """Register a channel's incoming webhook on a team (admins); `allowed_hosts` is
    `Settings.webhook_allowed_hosts`."""
    team = _managed_team(session, principal, team_id)
    url = clean_webhook_url(url, kind, allowed_hosts)
    # Concurrent adds to one team queue here, so the cap and the duplicate check hold.
    session.execute(
        select(Team.id).where(Team.org_id == team.org_id, Team.id == team.id).with_for_update()
    )
    urls = set(
        session.scalars(
            select(TeamWebhook.url).where(
                TeamWebhook.org_id == team.org_id, TeamWebhook.team_id == team.id
            )
        )
    )
    if url in urls:
        raise WebhookExists("This webhook is already on the team.")
    if len(urls) >= MAX_WEBHOOKS_PER_TEAM:
        raise TooManyWebhooks(
            f"A team has at most {MAX_WEBHOOKS_PER_TEAM} webhooks; remove one first."
        )
    webhook = TeamWebhook(
        org_id=team.org_id,
        team_id=team.id,
        kind=kind,
        url=url,
        created_by_id=principal.user_id,
    )
    session.add(webhook)
    session.flush()
    # A webhook URL is a credential: the log keeps its kind and host only.
    audit.record(
        session,
        principal,
        AuditAction.WEBHOOK_CREATED,
        "team_webhook",
        webhook.id,
        {"team_id": team.id, "kind": kind, "host": chat.host_of(url)},
    )
    log.info(
        "webhook %s (%s, %s) added to team %s by %s",
        webhook.id,
        kind.value,
        chat.host_of(url),
        team.id,
        principal.user_id,
    )
    return webhook


def remove_webhook(
    session: Session, principal: Principal, team_id: uuid.UUID, webhook_id: uuid.UUID
) -> None:
    """Remove a webhook from a team (admins); cards not yet posted through it are dropped."""
    team = _managed_team(session, principal, team_id)
    webhook = session.scalars(
        select(TeamWebhook).where(
            TeamWebhook.org_id == team.org_id,
            TeamWebhook.team_id == team.id,
            TeamWebhook.id == webhook_id,
        )
    ).one_or_none()
    if webhook is None:
        raise NotFound(f"No webhook with id {webhook_id} on this team.")
    audit.record(
        session,
        principal,
        AuditAction.WEBHOOK_DELETED,
        "team_webhook",
        webhook.id,
        {"team_id": team.id, "kind": webhook.kind, "host": chat.host_of(webhook.url)},
    )
    session.delete(webhook)
    session.flush()
    log.info("webhook %s removed from team %s by %s", webhook_id, team.id, principal.user_id)


# -- recording a share's cards -----------------------------------------------------------------


def record_share(session: Session, share: Share, team_ids: Sequence[uuid.UUID]) -> int:
    """Record, in the caller's transaction, one post per webhook of these teams; returns how
    many were recorded.

    Teams that share one channel (the same URL) get one card. Recording the same share again
    records nothing more (dedup key per webhook and share).
    """
    if not team_ids:
        return 0
    rows = session.execute(
        select(TeamWebhook.id, TeamWebhook.url)
        .where(TeamWebhook.org_id == share.org_id, TeamWebhook.team_id.in_(set(team_ids)))
        .order_by(TeamWebhook.id)
    ).all()
    seen: set[str] = set()
    recorded = 0
    for webhook_id, url in rows:
        if url in seen:
            continue
        seen.add(url)
        job_id = outbox.record(
            session,
            POST_TASK,
            {"webhook_id": str(webhook_id), "share_id": str(share.id)},
            org_id=share.org_id,
            dedup_key=f"webhook:{webhook_id}:{share.id}",
        )
        if job_id is not None:
            recorded += 1
    return recorded


@events.subscribe(events.ShareReleased)
def _share_released(session: Session, event: events.ShareReleased) -> None:
    """A released share's cards go to the channels of the teams its sender named."""
    share = session.get(Share, event.share_id)
    if share is not None:
        record_share(session, share, event.team_ids)


# -- posting -----------------------------------------------------------------------------------


def deliver(webhook_id: uuid.UUID, url: str, message: dict[str, Any]) -> None:
    """POST `message` to a webhook. Raises TransientError when trying again may succeed, and
    `notifications.chat.WebhookRejected` (the job fails for good) otherwise."""
    try:
        chat.post(url, message, label=f"webhook {webhook_id}")
    except chat.WebhookUnavailable as unavailable:
        raise outbox.TransientError(str(unavailable), retry_after=unavailable.retry_after) from None


def _load(session: Session, payload: dict[str, Any]) -> tuple[TeamWebhook, ShareCard] | None:
    # A recalled share, or a video deleted or hidden on a report, posts nothing (checked again
    # when posting).
    share = session.scalars(
        select(Share).where(Share.id == uuid.UUID(payload["share_id"]), Share.recalled_at.is_(None))
    ).one_or_none()
    if share is None:
        return None
    webhook = session.scalars(
        select(TeamWebhook).where(
            TeamWebhook.org_id == share.org_id,
            TeamWebhook.id == uuid.UUID(payload["webhook_id"]),
        )
    ).one_or_none()
    video = session.scalars(
        select(Video).where(
            Video.org_id == share.org_id,
            Video.id == share.video_id,
            Video.deleted_at.is_(None),
            Video.hidden_at.is_(None),
        )
    ).one_or_none()
    sender = session.scalars(
        select(User).where(User.org_id == share.org_id, User.id == share.sender_id)
    ).one_or_none()
    if webhook is None or video is None or sender is None:
        return None
    link = links.video_link(current().settings, video.id)
    return webhook, ShareCard(
        sender=sender.display_name, title=video.title, message=share.message, link=link
    )


def post_share(session: Session, payload: dict[str, Any]) -> None:
    """The `webhooks.post` task: post a share's card to one webhook.

    Nothing is posted when the webhook, the share, its video or its sender is gone: the
    webhook was removed, the share was recalled or went with what it belonged to, or its video
    was deleted or hidden by an admin.
    """
    loaded = _load(session, payload)
    if loaded is None:
        log.info(
            "webhook %s: share %s (recalled?), its video, its sender or the webhook is gone; "
            "nothing posted",
            payload["webhook_id"],
            payload["share_id"],
        )
        return
    webhook, card = loaded
    host = chat.host_of(webhook.url)
    # Checked again at sending: the allowed hosts may have narrowed since the webhook was added.
    try:
        clean_webhook_url(webhook.url, webhook.kind, current().settings.webhook_allowed_hosts)
    except InvalidInput:
        raise chat.WebhookRejected(
            f"webhook {webhook.id} ({host}): the host is no longer allowed (WEBHOOK_ALLOWED_HOSTS)"
        ) from None
    deliver(webhook.id, webhook.url, MESSAGE_BUILDERS[webhook.kind](card))
    log.info("webhook %s (%s) posted share %s", webhook.id, host, payload["share_id"])


def _drop_posts(session: Session, share_ids: Sequence[uuid.UUID], reason: str) -> int:
    if not share_ids:
        return 0
    return outbox.drop(
        session,
        POST_TASK,
        OutboxJob.payload["share_id"].astext.in_([str(s) for s in share_ids]),
        reason=reason,
    )


@events.subscribe(events.VideoRemoved)
def _video_removed(session: Session, event: events.VideoRemoved) -> None:
    """Cards about a deleted video not yet posted are dropped."""
    shares = session.scalars(
        select(Share.id).where(Share.org_id == event.org_id, Share.video_id == event.video_id)
    ).all()
    _drop_posts(session, list(shares), "video_removed")


@events.subscribe(events.ShareRecalled)
def _share_recalled(session: Session, event: events.ShareRecalled) -> None:
    """Cards of a recalled share not yet posted are dropped."""
    _drop_posts(session, [event.share_id], "share_recalled")


outbox.tasks.register(POST_TASK, queue="default", max_attempts=8)(post_share)
