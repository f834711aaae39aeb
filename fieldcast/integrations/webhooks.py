"""Team webhooks: a share to a team also posts a card to the team's Slack or Teams channel.

Admins register a channel's incoming webhook on a team. When a share's fan-out is released,
`record_share` records one `webhooks.post` outbox task per webhook of the teams the sender named,
in the share's own transaction. The task runs on the `default` queue, so a slow chat service
never holds up a push worker, and retries what may succeed later (429, 5xx, timeouts).

A webhook URL is a credential: whoever holds it can post to the channel. It is stored, but never
returned whole (`masked`), logged, or written into an error; logs name the webhook's id and host.
Webhooks may only point at the chat services' hosts (`Settings.webhook_allowed_hosts`), so an
admin cannot aim the workers at internal addresses.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from fieldcast.accounts.authz import Principal, authorize, get_scoped
from fieldcast.accounts.models import Team, User
from fieldcast.context import current
from fieldcast.errors import Conflict, InvalidInput, NotFound
from fieldcast.integrations.models import TeamWebhook, WebhookKind
from fieldcast.outbox import services as outbox
from fieldcast.sharing.models import Share
from fieldcast.videos.models import Video

log = logging.getLogger(__name__)

POST_TASK = "webhooks.post"
MAX_WEBHOOKS_PER_TEAM = 10
MAX_URL = 2048
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 10.0
# A remote asking for more than this is treated as asking for this: the job stays alive.
MAX_RETRY_AFTER_S = 3600.0
# http and non-default ports are accepted for these only, and only when listed explicitly.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})
# Slack refuses a section's text past 3000 characters.
SLACK_SECTION_MAX = 3000


class WebhookExists(Conflict):
    code = "webhook_exists"
    title = "The team already has this webhook"


class TooManyWebhooks(InvalidInput):
    code = "too_many_webhooks"
    title = "The team has as many webhooks as it may have"


class WebhookUrlInvalid(InvalidInput):
    code = "webhook_url_invalid"
    title = "This is not a webhook URL"


class WebhookUrlNotHttps(InvalidInput):
    code = "webhook_url_not_https"
    title = "Webhook URLs start with https://"


class WebhookHostNotAllowed(InvalidInput):
    code = "webhook_host_not_allowed"
    title = "Webhooks may only point at Slack or Microsoft Teams"


class WebhookKindMismatch(InvalidInput):
    code = "webhook_kind_mismatch"
    title = "The URL is not a webhook of this kind"


class WebhookRejected(Exception):
    """The chat service refused the post for good (a 4xx other than 429, a redirect)."""


# -- URLs --------------------------------------------------------------------------------------


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    """Whether `host` is one of `patterns`: an exact host, or `*.domain` for any subdomain of
    `domain` (not `domain` itself)."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def _is_slack_host(host: str) -> bool:
    return host == "slack.com" or host.endswith(".slack.com")


def clean_webhook_url(url: str, kind: WebhookKind, allowed_hosts: Sequence[str]) -> str:
    """The URL, stripped, if a webhook of `kind` may point at it; else InvalidInput naming `url`.

    https only, on a host of `allowed_hosts`, on the default port. http (and another port) is
    accepted only for loopback hosts listed explicitly, for local testing. A Slack URL must be
    of kind `slack` and a Teams URL of kind `teams`.
    """
    url = url.strip()
    if not url or len(url) > MAX_URL:
        raise WebhookUrlInvalid(errors={"url": [f"Webhook URLs are 1-{MAX_URL} characters."]})
    if not url.isascii() or not url.isprintable() or " " in url or "\\" in url:
        raise WebhookUrlInvalid(
            errors={"url": ["Paste the URL exactly as the chat service shows it."]}
        )
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        port = parts.port
    except ValueError:
        raise WebhookUrlInvalid(errors={"url": ["This is not a valid URL."]}) from None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"} or not host:
        raise WebhookUrlInvalid(errors={"url": ["Webhook URLs start with https:// and a host."]})
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlInvalid(errors={"url": ["Webhook URLs carry no user name or password."]})
    local = host in LOOPBACK_HOSTS and host in allowed_hosts
    if scheme != "https" and not local:
        raise WebhookUrlNotHttps(errors={"url": ["Webhook URLs start with https://."]})
    if not host_allowed(host, allowed_hosts):
        raise WebhookHostNotAllowed(
            errors={
                "url": [
                    f"{host} is not a Slack or Microsoft Teams webhook host "
                    f"(allowed: {', '.join(allowed_hosts)})."
                ]
            }
        )
    if port not in (None, 443) and not local:
        raise WebhookUrlInvalid(errors={"url": ["Webhook URLs use the default https port."]})
    slack = _is_slack_host(host)
    if not local and (kind == WebhookKind.SLACK) != slack:
        expected = "slack" if slack else "teams"
        raise WebhookKindMismatch(
            errors={"url": [f"This is a {expected} webhook URL; send kind `{expected}`."]}
        )
    return url


def masked(url: str) -> str:
    """What may be shown of a webhook URL: its scheme, host and last 4 characters."""
    try:
        parts = urlsplit(url)
        default = {"https": 443, "http": 80}.get(parts.scheme)
        port = f":{parts.port}" if parts.port not in (None, default) else ""
    except ValueError:
        return "…"
    return f"{parts.scheme}://{parts.hostname or ''}{port}/…{url[-4:]}"


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or "?"
    except ValueError:
        return "?"


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
    log.info(
        "webhook %s (%s, %s) added to team %s by %s",
        webhook.id,
        kind.value,
        _host(url),
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


# -- the messages ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShareCard:
    """What a channel is told about a share."""

    sender: str
    title: str
    message: str
    link: str


def mrkdwn_escape(text: str) -> str:
    """User text for Slack's mrkdwn: `&`, `<` and `>` are control characters there."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _quote(text: str, budget: int) -> str:
    """`text` escaped and quoted line by line, cut (with …) to at most `budget` characters."""
    quoted = "\n".join(f">{mrkdwn_escape(line)}" for line in text.splitlines())
    if len(quoted) <= budget:
        return quoted
    cut = quoted[: max(0, budget - 1)]
    # Never leave half an entity (`&am`) behind.
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def slack_message(card: ShareCard) -> dict[str, Any]:
    """A Slack incoming-webhook message: a fallback `text` (notifications, old clients) and
    blocks with the sender, title and message, and a Watch button."""
    headline = f"*{mrkdwn_escape(card.sender)}* shared *{mrkdwn_escape(card.title)}*"
    text = headline
    if card.message.strip():
        text += "\n" + _quote(card.message.strip(), SLACK_SECTION_MAX - len(headline) - 1)
    return {
        "text": f"{mrkdwn_escape(card.sender)} shared {mrkdwn_escape(card.title)}: {card.link}",
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Watch"},
                        "url": card.link,
                        "style": "primary",
                    }
                ],
            },
        ],
    }


def _text_run(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextRun", "text": text, **style}


def teams_message(card: ShareCard) -> dict[str, Any]:
    """An Adaptive Card message, as Teams Workflows and classic incoming webhooks take it.

    User text goes into TextRuns, which Teams shows as written (TextBlocks would render it as
    Markdown, links included).
    """
    body: list[dict[str, Any]] = [
        {
            "type": "RichTextBlock",
            "inlines": [_text_run(card.sender, weight="Bolder"), _text_run(" shared a video")],
        },
        {
            "type": "RichTextBlock",
            "inlines": [_text_run(card.title, size="Large", weight="Bolder")],
        },
    ]
    if card.message.strip():
        body.append({"type": "RichTextBlock", "inlines": [_text_run(card.message.strip())]})
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "body": body,
                    "actions": [{"type": "Action.OpenUrl", "title": "Watch", "url": card.link}],
                },
            }
        ],
    }


MESSAGE_BUILDERS = {WebhookKind.SLACK: slack_message, WebhookKind.TEAMS: teams_message}


# -- posting -----------------------------------------------------------------------------------


def _retry_after(response: requests.Response) -> float | None:
    """The remote's Retry-After in seconds, capped."""
    seconds = outbox.retry_after_seconds(response.headers.get("Retry-After"))
    return None if seconds is None else min(seconds, MAX_RETRY_AFTER_S)


def _secrets_of(url: str) -> list[str]:
    """The parts of a webhook URL that must not appear in an error: the URL, its path and
    query, and every path segment or query value long enough to be a token."""
    parts = urlsplit(url)
    pieces = [url, parts.path, parts.query]
    pieces += [segment for segment in parts.path.split("/") if len(segment) >= 8]
    pieces += [value for _, value in parse_qsl(parts.query) if len(value) >= 8]
    return sorted({p for p in pieces if p}, key=len, reverse=True)


def _excerpt(response: requests.Response, url: str) -> str:
    """The start of the remote's answer (Slack says why: `channel_not_found`), without any
    piece of the URL."""
    try:
        text = " ".join(response.text[:300].split())[:200]
    except Exception:
        return ""
    for secret in _secrets_of(url):
        text = text.replace(secret, "…")
    return f" ({text})" if text else ""


_HINTS = {
    400: "the chat service refused the message",
    401: "the webhook no longer accepts posts",
    403: "the webhook no longer accepts posts (a disabled app or an archived channel)",
    404: "the channel or its webhook is gone; an admin should replace the webhook",
    410: "the channel or its webhook is gone; an admin should replace the webhook",
}


def deliver(webhook_id: uuid.UUID, url: str, message: dict[str, Any]) -> None:
    """POST `message` to a webhook. Returns on 2xx; raises TransientError when trying again may
    succeed (429, 5xx, timeouts, connection errors) and WebhookRejected otherwise.

    Errors name the webhook's id and host, never its URL; the exceptions of `requests`, whose
    text does contain the URL, are not chained.
    """
    where = f"webhook {webhook_id} ({_host(url)})"
    try:
        response = requests.post(
            url,
            json=message,
            timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
            allow_redirects=False,
            headers={"User-Agent": "Fieldcast"},
        )
    except requests.Timeout:
        raise outbox.TransientError(f"{where} timed out") from None
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
        raise outbox.TransientError(f"{where}: the connection failed") from None
    except (requests.RequestException, ValueError) as exc:
        raise WebhookRejected(f"{where}: the request failed ({type(exc).__name__})") from None
    with response:
        status = response.status_code
        if 200 <= status < 300:
            return
        answer = f"{where} answered {status}{_excerpt(response, url)}"
        if status == 429 or status >= 500:
            raise outbox.TransientError(answer, retry_after=_retry_after(response))
        if 300 <= status < 400:
            raise WebhookRejected(f"{answer}: redirects are not followed")
        raise WebhookRejected(f"{answer}: {_HINTS.get(status, 'the chat service refused it')}")


def _load(session: Session, payload: dict[str, Any]) -> tuple[TeamWebhook, ShareCard] | None:
    share = session.scalars(
        select(Share).where(Share.id == uuid.UUID(payload["share_id"]))
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
        select(Video).where(Video.org_id == share.org_id, Video.id == share.video_id)
    ).one_or_none()
    sender = session.scalars(
        select(User).where(User.org_id == share.org_id, User.id == share.sender_id)
    ).one_or_none()
    if webhook is None or video is None or sender is None:
        return None
    link = f"{current().settings.public_base_url}/videos/{video.id}"
    return webhook, ShareCard(
        sender=sender.display_name, title=video.title, message=share.message, link=link
    )


def post_share(session: Session, payload: dict[str, Any]) -> None:
    """The `webhooks.post` task: post a share's card to one webhook.

    Nothing is posted when the webhook, the share, its video or its sender is gone: the
    webhook was removed, or the share went with what it belonged to.
    """
    loaded = _load(session, payload)
    if loaded is None:
        log.info(
            "webhook %s: share %s, its video, its sender or the webhook is gone; nothing posted",
            payload["webhook_id"],
            payload["share_id"],
        )
        return
    webhook, card = loaded
    host = _host(webhook.url)
    # Checked again at sending: the allowed hosts may have narrowed since the webhook was added.
    try:
        clean_webhook_url(webhook.url, webhook.kind, current().settings.webhook_allowed_hosts)
    except InvalidInput:
        raise WebhookRejected(
            f"webhook {webhook.id} ({host}): the host is no longer allowed (WEBHOOK_ALLOWED_HOSTS)"
        ) from None
    deliver(webhook.id, webhook.url, MESSAGE_BUILDERS[webhook.kind](card))
    log.info("webhook %s (%s) posted share %s", webhook.id, host, payload["share_id"])


outbox.tasks.register(POST_TASK, queue="default", max_attempts=8)(post_share)
