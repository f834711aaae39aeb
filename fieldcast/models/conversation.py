"""Conversation at the timeline: comments and their threads, likes, reactions at a moment,
votes on the answers to a question, and where a person's comment pushes stand."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Computed,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from fieldcast.db import (
    UUIDPK,
    Base,
    ChangeSeq,
    ChangeXid,
    CreatedAt,
    TenantMixin,
    UpdatedAt,
    tenant_fk,
)

# The longest comment body, in characters.
BODY_MAX = 5000


class Comment(TenantMixin, Base):
    """A comment on a video: on the whole video, at a point (`at_ms`) or over a range
    (`at_ms`..`end_ms`), or a reply in a thread (`parent_id`, one level deep). A reply carries
    its thread's time, so the timeline counts it where its thread is.

    `body` is the text as written, and `mentions` the people and teams it names, by id, with
    the span of each `@handle` in it: the text is rendered with the current handles when read,
    so a rename neither breaks nor redirects a mention.

    Deleted or hidden by a moderator, a comment stays as a tombstone (no body for readers), so
    its thread's replies keep their place.
    """

    __tablename__ = "comments"
    __table_args__ = (
        UniqueConstraint("org_id", "id"),
        tenant_fk("comments", "video_id", "videos", ondelete="CASCADE"),
        tenant_fk("comments", "author_id", "users", ondelete="CASCADE"),
        tenant_fk("comments", "parent_id", "comments", ondelete="CASCADE"),
        tenant_fk("comments", "deal_id", "deals", ondelete="SET NULL (deal_id)"),
        CheckConstraint("at_ms IS NULL OR at_ms >= 0", name="at_ms_not_negative"),
        CheckConstraint(
            "end_ms IS NULL OR (at_ms IS NOT NULL AND end_ms > at_ms)", name="range_in_order"
        ),
        CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
        # A video's threads by timeline (whole-video comments first) and newest first.
        Index(
            "ix_comments_threads_timeline",
            "video_id",
            "timeline_ms",
            "id",
            postgresql_where="parent_id IS NULL",
        ),
        Index("ix_comments_threads_newest", "video_id", "id", postgresql_where="parent_id IS NULL"),
        # A thread's replies, oldest first.
        Index("ix_comments_parent_id_id", "parent_id", "id"),
        # The moments of a video: every comment and reply by its time.
        Index("ix_comments_video_id_at_ms", "video_id", "at_ms"),
        Index("ix_comments_org_id_change_seq", "org_id", "change_seq"),
        Index("ix_comments_org_id_change_xid", "org_id", "change_xid"),
    )

    id: Mapped[UUIDPK]
    video_id: Mapped[uuid.UUID]
    author_id: Mapped[uuid.UUID]
    parent_id: Mapped[uuid.UUID | None]
    # The deal the comment is about, if its author named one.
    deal_id: Mapped[uuid.UUID | None]
    at_ms: Mapped[int | None]
    end_ms: Mapped[int | None]
    # The timeline's sort key: whole-video comments (no time) before the first second.
    timeline_ms: Mapped[int] = mapped_column(
        Integer, Computed("COALESCE(at_ms, -1)", persisted=True)
    )
    body: Mapped[str] = mapped_column(Text, info={"max_length": BODY_MAX})
    # [{"user_id" | "team_id": "...", "start": 0, "end": 4}]: spans of `body`, by id.
    mentions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list, server_default="[]")
    reply_count: Mapped[int] = mapped_column(default=0, server_default="0")
    like_count: Mapped[int] = mapped_column(default=0, server_default="0")
    last_reply_at: Mapped[datetime | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
    edited_at: Mapped[datetime | None]
    # Its words stemmed in the organisation's search language, kept by a trigger (migration
    # 0025): search finds a video's matching comments without parsing them. Not loaded
    # with the comment.
    search_tsv: Mapped[Any | None] = mapped_column(TSVECTOR, deferred=True)
    deleted_at: Mapped[datetime | None]
    deleted_by_id: Mapped[uuid.UUID | None]
    # A thread (a top-level comment) resolved, and by whom.
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[uuid.UUID | None]
    # Hidden by an admin acting on a report, with the reason its author is told.
    hidden_at: Mapped[datetime | None]
    hidden_reason: Mapped[str | None] = mapped_column(String(500))
    change_seq: Mapped[ChangeSeq]
    change_xid: Mapped[ChangeXid]


class CommentLike(TenantMixin, Base):
    """One person likes one comment (on a question's answer, the like is the person's vote)."""

    __tablename__ = "comment_likes"
    __table_args__ = (
        tenant_fk("comment_likes", "comment_id", "comments", ondelete="CASCADE"),
        tenant_fk("comment_likes", "user_id", "users", ondelete="CASCADE"),
    )

    comment_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, index=True)
    created_at: Mapped[CreatedAt]


class Reaction(TenantMixin, Base):
    """An emoji one person put at a point of a video's timeline."""

    __tablename__ = "reactions"
    __table_args__ = (
        UniqueConstraint("org_id", "id"),
        tenant_fk("reactions", "video_id", "videos", ondelete="CASCADE"),
        tenant_fk("reactions", "user_id", "users", ondelete="CASCADE"),
        # The same emoji at the same instant twice is one reaction.
        UniqueConstraint("video_id", "user_id", "emoji", "at_ms"),
        CheckConstraint("at_ms >= 0", name="at_ms_not_negative"),
        Index("ix_reactions_video_id_at_ms", "video_id", "at_ms"),
    )

    id: Mapped[UUIDPK]
    video_id: Mapped[uuid.UUID]
    user_id: Mapped[uuid.UUID]
    emoji: Mapped[str] = mapped_column(String(16))
    at_ms: Mapped[int]
    created_at: Mapped[CreatedAt]
    # The BI export's change marks (see fieldcast/exports/cursor.py).
    change_seq: Mapped[ChangeSeq]
    change_xid: Mapped[ChangeXid]


class AnswerVote(TenantMixin, Base):
    """One person votes up one reply video to a question (answers that are comments are voted
    by liking them)."""

    __tablename__ = "answer_votes"
    __table_args__ = (
        tenant_fk("answer_votes", "video_id", "videos", ondelete="CASCADE"),
        tenant_fk("answer_votes", "user_id", "users", ondelete="CASCADE"),
    )

    video_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, index=True)
    created_at: Mapped[CreatedAt]


class PushWindow(TenantMixin, Base):
    """When a person was last pushed about the conversation on one video: pushes within
    `COMMENT_PUSH_WINDOW_S` of it fold into one summary push at the window's end."""

    __tablename__ = "push_windows"
    __table_args__ = (
        tenant_fk("push_windows", "user_id", "users", ondelete="CASCADE"),
        tenant_fk("push_windows", "video_id", "videos", ondelete="CASCADE"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    video_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, index=True)
    opened_at: Mapped[datetime]
    # The inbox item pushed when the window opened; the items folded since are marked on
    # themselves (`Notification.folded`), so folding writes nothing here.
    notification_id: Mapped[uuid.UUID]
    updated_at: Mapped[UpdatedAt]


# The timeline's resolution for moments: comments and reactions are counted per slot of this
# many milliseconds, and a moments bucket adds up its slots.
SLOT_MS = 100


class MomentCount(TenantMixin, Base):
    """How many live comments, replies and reactions sit in one slot (SLOT_MS) of a video's
    timeline: kept by triggers on `comments` and `reactions` (migration 0021), whatever path
    writes them, so drawing a heat strip reads a few hundred rows, not every comment."""

    __tablename__ = "moment_counts"
    __table_args__ = (tenant_fk("moment_counts", "video_id", "videos", ondelete="CASCADE"),)

    video_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    slot: Mapped[int] = mapped_column(primary_key=True)
    comments: Mapped[int] = mapped_column(default=0, server_default="0")
    replies: Mapped[int] = mapped_column(default=0, server_default="0")
    reactions: Mapped[int] = mapped_column(default=0, server_default="0")
