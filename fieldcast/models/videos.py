"""Videos: what a rep records, from draft to a playable, ready rendition set."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, String, Text, UniqueConstraint, text
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


class VideoStatus(enum.StrEnum):
    AWAITING_UPLOAD = "awaiting_upload"
    UPLOADING = "uploading"
    PROCESSING = "processing"
    PLAYABLE = "playable"  # a first rendition plays; the ladder is still being made
    READY = "ready"
    FAILED = "failed"


class VideoKind(enum.StrEnum):
    VIDEO = "video"
    QUESTION = "question"  # a rep asks the peers for advice; answers are comments or videos


class Video(TenantMixin, Base):
    __tablename__ = "videos"
    __table_args__ = (
        tenant_fk("videos", "owner_id", "users", ondelete="CASCADE"),
        tenant_fk("videos", "answers_video_id", "videos", ondelete="SET NULL (answers_video_id)"),
        tenant_fk(
            "videos",
            "accepted_video_id",
            "videos",
            ondelete="SET NULL (accepted_video_id)",
        ),
        tenant_fk(
            "videos",
            "accepted_comment_id",
            "comments",
            ondelete="SET NULL (accepted_comment_id)",
            use_alter=True,
        ),
        tenant_fk("videos", "deal_id", "deals", ondelete="SET NULL (deal_id)"),
        CheckConstraint(
            "accepted_video_id IS NULL OR accepted_comment_id IS NULL", name="one_accepted_answer"
        ),
        # The videos about a deal.
        Index("ix_videos_deal_id", "deal_id", postgresql_where=text("deal_id IS NOT NULL")),
        # The reply videos of a question.
        Index(
            "ix_videos_answers_video_id",
            "answers_video_id",
            postgresql_where=text("answers_video_id IS NOT NULL"),
        ),
        # Rows of other tables reference (org_id, id), so they stay inside the organisation.
        UniqueConstraint("org_id", "id"),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress_percent"),
        # "My videos", newest first.
        Index("ix_videos_owner_id_id", "owner_id", "id"),
        # The purge worker's scan: only deleted videos are in the index.
        Index(
            "ix_videos_purge_after",
            "purge_after",
            postgresql_where=text("deleted_at IS NOT NULL"),
        ),
        # Listings filtered by deal attributes (JSONB containment, `@>`).
        Index(
            "ix_videos_deal_attributes",
            "deal_attributes",
            postgresql_using="gin",
            postgresql_ops={"deal_attributes": "jsonb_path_ops"},
        ),
        # Delta sync: an organisation's videos changed since a token.
        Index("ix_videos_org_id_change_seq", "org_id", "change_seq"),
        Index("ix_videos_org_id_change_xid", "org_id", "change_xid"),
    )

    id: Mapped[UUIDPK]
    owner_id: Mapped[uuid.UUID]
    title: Mapped[str] = mapped_column(String(200))
    # TEXT has no length of its own: the limit every input of it observes.
    description: Mapped[str] = mapped_column(
        Text, default="", server_default="", info={"max_length": 5000}
    )
    # The deal's attributes when the video was recorded (catalogue values, see
    # fieldcast.deals.catalogue); the deal's attributes now are `deals.attributes`.
    deal_attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default="{}"
    )
    deal_id: Mapped[uuid.UUID | None]
    status: Mapped[VideoStatus] = mapped_column(
        str_enum(VideoStatus, "video_status"), default=VideoStatus.AWAITING_UPLOAD
    )
    progress: Mapped[int] = mapped_column(default=0, server_default="0")
    duration_ms: Mapped[int | None]
    width: Mapped[int | None]
    height: Mapped[int | None]
    source_bytes: Mapped[int | None] = mapped_column(BigInteger)
    source_key: Mapped[str | None] = mapped_column(String(900))
    # Bumped by every completed upload; processing of an older file stops when it sees a newer.
    source_version: Mapped[int] = mapped_column(default=0, server_default="0")
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_detail: Mapped[str | None] = mapped_column(String(500))
    # Outputs a `ready` video goes without because making them failed ("poster", "storyboard",
    # "ladder", "mp4"): it plays, and says so instead of staying `playable`.
    missing: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list, server_default="{}")
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
    playable_at: Mapped[datetime | None]
    ready_at: Mapped[datetime | None]
    # Deleted: gone for everyone at once, restorable until `purge_after`, when a worker
    # removes its media and the row.
    deleted_at: Mapped[datetime | None]
    purge_after: Mapped[datetime | None]
    # Archived: left out of feeds and lists, still reachable by direct link.
    archived_at: Mapped[datetime | None]
    # Asking the peers: a question, when the asker needs advice by, the question a reply
    # video answers, and the answer the asker accepted (a comment or a reply video).
    kind: Mapped[VideoKind] = mapped_column(
        str_enum(VideoKind, "video_kind", length=16),
        default=VideoKind.VIDEO,
        server_default=VideoKind.VIDEO.value,
    )
    needed_by: Mapped[datetime | None]
    answers_video_id: Mapped[uuid.UUID | None]
    accepted_comment_id: Mapped[uuid.UUID | None]
    accepted_video_id: Mapped[uuid.UUID | None]
    answered_at: Mapped[datetime | None]
    # Hidden by an admin acting on a report: only its author and admins still see it.
    hidden_at: Mapped[datetime | None]
    hidden_reason: Mapped[str | None] = mapped_column(String(500))
    change_seq: Mapped[ChangeSeq]
    change_xid: Mapped[ChangeXid]

    @property
    def media_prefix(self) -> str:
        """Where the outputs of the current source live; the version keeps a new file from
        mixing with the outputs of one that failed."""
        return f"org/{self.org_id}/videos/{self.id}/v{self.source_version}"


class RenditionKind(enum.StrEnum):
    HLS = "hls"  # a media playlist with its init file and segments
    MASTER = "master"  # the multi-variant playlist over the HLS rungs
    MP4 = "mp4"
    POSTER = "poster"
    STORYBOARD = "storyboard"  # a WebVTT track whose cues point into a sprite


class Rendition(TenantMixin, Base):
    """One made output of a video, keyed by (video, name): making it again replaces it."""

    __tablename__ = "renditions"
    __table_args__ = (
        tenant_fk("renditions", "video_id", "videos", ondelete="CASCADE"),
        UniqueConstraint("video_id", "name"),
    )

    id: Mapped[UUIDPK]
    video_id: Mapped[uuid.UUID]
    # "first" (the fast playable one), "hevc" (an HEVC source's copy), "360p".."1080p",
    # "first_master" (over "hevc" and "first"), "master", "mp4", "poster", "storyboard"
    name: Mapped[str] = mapped_column(String(32))
    kind: Mapped[RenditionKind] = mapped_column(str_enum(RenditionKind, "rendition_kind"))
    source_version: Mapped[int]
    # The playlist, MP4, image or WebVTT file; segments sit beside it under the same prefix.
    storage_key: Mapped[str] = mapped_column(String(900))
    width: Mapped[int | None]
    height: Mapped[int | None]
    bitrate_kbps: Mapped[int | None]
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # RFC 6381 codecs of a video rendition, video then audio ("hvc1.2.4.L153.B0,mp4a.40.2"),
    # and what its pixels need: "sdr", "hlg" or "pq". None for images, tracks and playlists.
    codec: Mapped[str | None] = mapped_column(String(80))
    video_range: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
