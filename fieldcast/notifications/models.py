"""Inbox items: what a user is told about, in the app and (as a push) on their phones."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from fieldcast.db import UUIDPK, Base, CreatedAt, TenantMixin, tenant_fk


class Notification(TenantMixin, Base):
    __tablename__ = "notifications"
    __table_args__ = (
        tenant_fk("notifications", "user_id", "users", ondelete="CASCADE"),
        # The inbox, newest first, and its unread count.
        Index("ix_notifications_user_id_id", "user_id", "id"),
        Index(
            "ix_notifications_unread",
            "user_id",
            postgresql_where=text("read_at IS NULL"),
        ),
    )

    id: Mapped[UUIDPK]
    user_id: Mapped[uuid.UUID]
    # e.g. "video.playable", "video.failed"; clients switch on it.
    type: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(String(1000), default="")
    # Ids to deep-link into (video_id, share_id, ...), all strings.
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # The same event never makes two inbox items, however often its job runs.
    dedup_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[CreatedAt]
    read_at: Mapped[datetime | None]
