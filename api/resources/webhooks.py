"""A team's Slack and Microsoft Teams webhooks: shares to the team post a card there."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, Schema
from api.fields import String
from api.runtime import context, db_session
from api.schemas import attributes
from fieldcast.integrations import webhooks
from fieldcast.models.integrations import TeamWebhook, WebhookKind
from notifications import chat

blp = Blueprint(
    "team_webhooks",
    __name__,
    url_prefix="/api/v1/teams/<uuid:team_id>/webhooks",
    description=(
        "Incoming webhooks of Slack or Microsoft Teams channels. A share to a team posts a card "
        "with the sender, the video's title, the message and a Watch link to each of the team's "
        f"webhooks (at most {webhooks.MAX_WEBHOOKS_PER_TEAM} per team). Admins only. A webhook "
        "URL is a credential: it is never returned whole, only masked."
    ),
)


class WebhookSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    team_id = ma.fields.UUID(dump_only=True)
    kind = ma.fields.Enum(WebhookKind, by_value=True, dump_only=True)
    url = ma.fields.String(
        dump_only=True,
        metadata={
            "description": "Masked: the scheme, the host and the last 4 characters",
            "example": "https://hooks.slack.com/…Xy3Z",
        },
    )
    created_by_id = ma.fields.UUID(dump_only=True, allow_none=True)
    created_at = ma.fields.DateTime(dump_only=True)


class WebhookListSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(WebhookSchema), dump_only=True)


class WebhookCreateSchema(Schema):
    kind = ma.fields.Enum(
        WebhookKind,
        by_value=True,
        required=True,
        metadata={"description": "`slack` for a Slack URL, `teams` for a Microsoft Teams one"},
    )
    url = String(
        required=True,
        min_length=1,
        column=TeamWebhook.url,
        metadata={
            "description": (
                "The channel's incoming-webhook URL: a Slack app's incoming webhook, a Teams "
                "Workflows webhook or a classic Teams incoming webhook (https, on a host the "
                "deployment allows: WEBHOOK_ALLOWED_HOSTS). Refused with "
                "`webhook_url_invalid`, `webhook_url_not_https`, `webhook_host_not_allowed` or "
                "`webhook_kind_mismatch`."
            ),
            "example": "https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX",
        },
    )


def present_webhooks(items: Iterable[TeamWebhook]) -> list[dict[str, Any]]:
    """Webhooks as `WebhookSchema` names them, with masked URLs; not yet serialised."""
    return [
        {**attributes(item, WebhookSchema, exclude={"url"}), "url": chat.masked(item.url)}
        for item in items
    ]


@blp.route("")
class TeamWebhooks(MethodView):
    @blp.etag
    @blp.response(200, WebhookListSchema)
    @blp.problems(403, 404)
    def get(self, team_id: uuid.UUID) -> dict[str, Any]:
        """List a team's webhooks, oldest first (admins)"""
        found = webhooks.list_webhooks(db_session(), current_principal(), team_id)
        return {"items": present_webhooks(found)}

    @blp.arguments(WebhookCreateSchema)
    @blp.response(201, WebhookSchema)
    @blp.problems(403, 404)
    def post(self, body: dict[str, Any], team_id: uuid.UUID) -> dict[str, Any]:
        """Add a Slack or Teams webhook to a team (admins)

        The same URL twice on one team is 409 `webhook_exists`; past the limit per team, 422
        `too_many_webhooks`.
        """
        webhook = webhooks.add_webhook(
            db_session(),
            current_principal(),
            team_id,
            kind=body["kind"],
            url=body["url"],
            allowed_hosts=context().settings.webhook_allowed_hosts,
        )
        return present_webhooks([webhook])[0]


@blp.route("/<uuid:webhook_id>")
class TeamWebhookById(MethodView):
    @blp.response(204)
    @blp.problems(403, 404)
    def delete(self, team_id: uuid.UUID, webhook_id: uuid.UUID) -> None:
        """Remove a webhook from a team (admins); cards not yet posted to it are dropped"""
        webhooks.remove_webhook(db_session(), current_principal(), team_id, webhook_id)
