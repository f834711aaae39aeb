"""Chat integrations: a team's Slack or Microsoft Teams channel, reached by incoming webhook."""

from __future__ import annotations

import enum
import uuid

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fieldcast.db import UUIDPK, Base, CreatedAt, TenantMixin, str_enum, tenant_fk


class WebhookKind(enum.StrEnum):
    SLACK = "slack"
    TEAMS = "teams"


class TeamWebhook(TenantMixin, Base):
    """A share to the team also posts a card with a link to this incoming webhook.

    The URL is a credential: it is never returned whole or logged.
    """

    __tablename__ = "team_webhooks"
    __table_args__ = (
        tenant_fk("team_webhooks", "team_id", "teams", ondelete="CASCADE"),
        UniqueConstraint("team_id", "url"),
        Index("ix_team_webhooks_team_id", "team_id"),
    )

    id: Mapped[UUIDPK]
    team_id: Mapped[uuid.UUID]
    kind: Mapped[WebhookKind] = mapped_column(str_enum(WebhookKind, "webhook_kind", length=16))
    url: Mapped[str] = mapped_column(String(2048))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[CreatedAt]
