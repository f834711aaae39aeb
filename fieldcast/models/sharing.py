"""Sharing: distribution lists, shares of a video, and what became of each recipient."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, UniqueConstraint, Uuid, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
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


class ListVisibility(enum.StrEnum):
    PRIVATE = "private"  # its owner (and admins) see and use it
    ORGANISATION = "organisation"  # every member sees and uses it; its owner and admins edit it


class DistributionList(TenantMixin, Base):
    __tablename__ = "distribution_lists"
    __table_args__ = (
        UniqueConstraint("org_id", "id"),
        tenant_fk("distribution_lists", "owner_id", "users", ondelete="CASCADE"),
        Index("ix_distribution_lists_owner_id", "owner_id"),
    )

    id: Mapped[UUIDPK]
    owner_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(String(2000), default="", server_default="")
    visibility: Mapped[ListVisibility] = mapped_column(
        str_enum(ListVisibility, "list_visibility", length=16), default=ListVisibility.PRIVATE
    )
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class DistributionListUser(TenantMixin, Base):
    __tablename__ = "distribution_list_users"
    __table_args__ = (
        tenant_fk("distribution_list_users", "list_id", "distribution_lists", ondelete="CASCADE"),
        tenant_fk("distribution_list_users", "user_id", "users", ondelete="CASCADE"),
        Index("ix_distribution_list_users_user_id", "user_id"),
    )

    list_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)


class DistributionListTeam(TenantMixin, Base):
    """A team in a list stands for whoever is in it (or its sub-teams) when a share is sent."""

    __tablename__ = "distribution_list_teams"
    __table_args__ = (
        tenant_fk("distribution_list_teams", "list_id", "distribution_lists", ondelete="CASCADE"),
        tenant_fk("distribution_list_teams", "team_id", "teams", ondelete="CASCADE"),
        Index("ix_distribution_list_teams_team_id", "team_id"),
    )

    list_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    team_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)


class Share(TenantMixin, Base):
    __tablename__ = "shares"
    __table_args__ = (
        UniqueConstraint("org_id", "id"),
        tenant_fk("shares", "video_id", "videos", ondelete="CASCADE"),
        tenant_fk("shares", "sender_id", "users", ondelete="CASCADE"),
        Index("ix_shares_video_id", "video_id"),
        Index("ix_shares_sender_id_id", "sender_id", "id"),
        # The few recalled shares, which a recipient row of theirs grants nothing for: what a
        # person received is their rows less these (VideoPolicy), never a walk of every share.
        Index("ix_shares_recalled_id", "id", postgresql_where=text("recalled_at IS NOT NULL")),
    )

    id: Mapped[UUIDPK]
    video_id: Mapped[uuid.UUID]
    sender_id: Mapped[uuid.UUID]
    message: Mapped[str] = mapped_column(String(1000), default="", server_default="")
    # What the sender asked for: {"user_ids": [...], "team_ids": [...], "list_ids": [...]}.
    audience: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    recipient_count: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[CreatedAt]
    # When the fan-out was recorded: at once for a playable video, else when it becomes one.
    released_at: Mapped[datetime | None]
    # Recalled by its sender or an admin: it grants nothing any more.
    recalled_at: Mapped[datetime | None]
    change_seq: Mapped[ChangeSeq]
    change_xid: Mapped[ChangeXid]


class ShareAudience(Base):
    """Who a share reached, in blocks of up to `AUDIENCE_BLOCK` user ids, until a worker has
    made each person's `ShareRecipient` row from them.

    Written in the share's own request, and what gives the recipients access to the video until
    their rows exist: a share to 10,000 people is ten rows, so the request stays fast whatever
    the audience. The worker deletes a share's blocks in the transaction that makes its rows, so
    this table holds only the shares of the last moments (or of a backlog), and the access check
    reads it by organisation without a per-person index, which would cost the request one entry
    per recipient.
    """

    __tablename__ = "share_audiences"
    __table_args__ = (
        tenant_fk("share_audiences", "share_id", "shares", ondelete="CASCADE"),
        Index("ix_share_audiences_org_id", "org_id"),
    )

    org_id: Mapped[uuid.UUID]
    share_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    block: Mapped[int] = mapped_column(primary_key=True)
    video_id: Mapped[uuid.UUID]
    user_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid()))


AUDIENCE_BLOCK = 1000


class RecipientState(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"  # a device of theirs accepted the push
    DELIVERED = "delivered"  # the app received it
    OPENED = "opened"  # they tapped it
    WATCHED = "watched"  # they started the video
    FAILED = "failed"  # no device could take it (see failure_reason)


# States only move forward; `failed` is overtaken by any sign of life from the app.
STATE_RANK = {
    RecipientState.QUEUED: 0,
    RecipientState.FAILED: 1,
    RecipientState.SENT: 2,
    RecipientState.DELIVERED: 3,
    RecipientState.OPENED: 4,
    RecipientState.WATCHED: 5,
}


class ShareRecipient(Base):
    """One person a share reached, and how far the share got with them.

    Made by a worker from the share's audience blocks, thousands at a time, so the table carries
    only what that needs: the tenant reference to its share (which also ties `org_id` to the
    share's organisation and deletes the rows with it), the key, and the index receipts use.
    `user_id` and `notification_id` come from organisation-scoped queries and are not checked
    row by row; users are deactivated, not deleted.
    """

    __tablename__ = "share_recipients"
    __table_args__ = (
        tenant_fk("share_recipients", "share_id", "shares", ondelete="CASCADE"),
        # "Which videos were shared with this user?" (access) and "every share of this video to
        # this user" (watched receipts).
        Index("ix_share_recipients_user_id_video_id", "user_id", "video_id"),
        # The feed: a person's shares, newest first, a page at a time.
        Index("ix_share_recipients_user_id_share_id", "user_id", "share_id"),
    )

    org_id: Mapped[uuid.UUID]
    share_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # Denormalised from the share, for the access check.
    video_id: Mapped[uuid.UUID]
    state: Mapped[RecipientState] = mapped_column(
        str_enum(RecipientState, "recipient_state", length=16), default=RecipientState.QUEUED
    )
    failure_reason: Mapped[str | None] = mapped_column(String(64))
    notification_id: Mapped[uuid.UUID | None]
    queued_at: Mapped[CreatedAt]
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    opened_at: Mapped[datetime | None]
    watched_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    change_seq: Mapped[ChangeSeq]
    change_xid: Mapped[ChangeXid]
