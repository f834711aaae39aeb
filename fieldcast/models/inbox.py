"""Inbox items: what a user is told about, in the app and (as a push) on their phones; which
device got which push; and how each user wants to be told."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, time
from typing import Any

from sqlalchemy import ARRAY, ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from fieldcast.db import (
    UUIDPK,
    Base,
    ChangeSeq,
    ChangeXid,
    CreatedAt,
    TenantMixin,
    UpdatedAt,
    str_enum,
    tenant_fk,
)


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
        # The items waiting for their push window's summary (`inbox.coalescing`).
        Index("ix_notifications_folded", "user_id", "id", postgresql_where=text("folded")),
        # The items about one comment, redacted when it is deleted or hidden.
        Index(
            "ix_notifications_comment_id",
            text("(data ->> 'comment_id')"),
            postgresql_where=text("data ? 'comment_id'"),
        ),
    )

    id: Mapped[UUIDPK]
    user_id: Mapped[uuid.UUID]
    # A `NotificationType` value, e.g. "video.playable"; clients switch on it.
    type: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(String(1000), default="")
    # Ids to deep-link into (video_id, share_id, ...), all strings.
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # The values of the type's wording (sender, video, ...: see `inbox.wording`), all strings:
    # each push is worded again in its phone's language from them.
    args: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    # The same event never makes two inbox items, however often its job runs.
    dedup_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[CreatedAt]
    read_at: Mapped[datetime | None]
    # Receipts from the app: the push arrived; the user tapped it.
    delivered_at: Mapped[datetime | None]
    opened_at: Mapped[datetime | None]
    # Its push was folded into its push window's summary, which has not gone out yet.
    folded: Mapped[bool] = mapped_column(default=False, server_default="false")
    change_seq: Mapped[ChangeSeq]
    change_xid: Mapped[ChangeXid]


class DeliveryStatus(enum.StrEnum):
    SENDING = "sending"  # claimed by a worker; its outcome is not recorded yet
    RETRY = "retry"  # FCM asked to try again later (429, 5xx)
    ACCEPTED = "accepted"
    FAILED = "failed"


class PushDelivery(Base):
    """One push of one notification to one device: the key that keeps it to one send.

    A worker claims the row (committed) before it calls FCM; a second run of the same job finds
    it claimed and sends nothing. Only a claim whose worker died (older than the lease) is sent
    again, with the same collapse id, so the phone shows it once.
    """

    __tablename__ = "push_deliveries"

    notification_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    status: Mapped[DeliveryStatus] = mapped_column(
        str_enum(DeliveryStatus, "delivery_status", length=16)
    )
    attempts: Mapped[int] = mapped_column(default=1, server_default="1")
    claimed_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    # FCM's message name when accepted; the error code otherwise.
    message_id: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(String(64))


class NotificationPreference(TenantMixin, Base):
    """How a user wants pushes: types they muted, and quiet hours in their own time zone
    (users.time_zone). Muted or quiet, the inbox item is still made."""

    __tablename__ = "notification_preferences"
    __table_args__ = (
        tenant_fk("notification_preferences", "user_id", "users", ondelete="CASCADE"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    muted_types: Mapped[list[str]] = mapped_column(
        ARRAY(String(64)), default=list, server_default="{}"
    )
    quiet_start: Mapped[time | None]
    quiet_end: Mapped[time | None]
    updated_at: Mapped[UpdatedAt]


class VideoMute(TenantMixin, Base):
    """No pushes about this video (new shares of it, comments on it) for this user."""

    __tablename__ = "video_mutes"
    __table_args__ = (
        tenant_fk("video_mutes", "user_id", "users", ondelete="CASCADE"),
        tenant_fk("video_mutes", "video_id", "videos", ondelete="CASCADE"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    video_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    created_at: Mapped[CreatedAt]
