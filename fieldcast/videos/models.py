"""Videos: what a rep records, from draft to a playable, ready rendition set."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from fieldcast.db import UUIDPK, Base, CreatedAt, TenantMixin, UpdatedAt, str_enum, tenant_fk


class VideoStatus(enum.StrEnum):
    AWAITING_UPLOAD = "awaiting_upload"
    UPLOADING = "uploading"
    PROCESSING = "processing"
    PLAYABLE = "playable"  # a first rendition plays; the ladder is still being made
    READY = "ready"
    FAILED = "failed"


class Video(TenantMixin, Base):
    __tablename__ = "videos"
    __table_args__ = (
        tenant_fk("videos", "owner_id", "users", ondelete="CASCADE"),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress_percent"),
        # "My videos", newest first.
        Index("ix_videos_owner_id_id", "owner_id", "id"),
    )

    id: Mapped[UUIDPK]
    owner_id: Mapped[uuid.UUID]
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    deal_attributes: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default="{}"
    )
    status: Mapped[VideoStatus] = mapped_column(
        str_enum(VideoStatus, "video_status"), default=VideoStatus.AWAITING_UPLOAD
    )
    progress: Mapped[int] = mapped_column(default=0, server_default="0")
    duration_ms: Mapped[int | None]
    width: Mapped[int | None]
    height: Mapped[int | None]
    source_bytes: Mapped[int | None] = mapped_column(BigInteger)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_detail: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
    ready_at: Mapped[datetime | None]
