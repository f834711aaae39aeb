"""Uploads: the bytes of a video on their way from a phone to storage."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, LargeBinary, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from fieldcast.db import UUIDPK, Base, CreatedAt, TenantMixin, UpdatedAt, str_enum, tenant_fk


class UploadProtocol(enum.StrEnum):
    TUS = "tus"  # through the API, resumable (tus 1.0)
    S3_MULTIPART = "s3_multipart"  # straight to S3 with presigned part URLs; the API moves no bytes


class Upload(TenantMixin, Base):
    __tablename__ = "uploads"
    __table_args__ = (
        tenant_fk("uploads", "video_id", "videos", ondelete="CASCADE"),
        tenant_fk("uploads", "owner_id", "users", ondelete="CASCADE"),
        CheckConstraint(
            '"offset" >= 0 AND (length IS NULL OR "offset" <= length)', name="offset_within_length"
        ),
        # The expiry sweep looks only at unfinished uploads.
        Index(
            "ix_uploads_open_expires_at",
            "expires_at",
            postgresql_where=text("completed_at IS NULL"),
        ),
        Index("ix_uploads_video_id", "video_id"),
    )

    id: Mapped[UUIDPK]
    video_id: Mapped[uuid.UUID]
    owner_id: Mapped[uuid.UUID]
    protocol: Mapped[UploadProtocol] = mapped_column(str_enum(UploadProtocol, "upload_protocol"))
    # None until a client that deferred it (tus Upload-Defer-Length) sends it.
    length: Mapped[int | None] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    storage_key: Mapped[str] = mapped_column(String(900))
    # What the storage backend needs to carry on (S3 upload id and parts, ...).
    state: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # The file's first bytes (up to media.sniff.SNIFF_BYTES): what they show decides, at the
    # first chunk, whether the file can be a video at all.
    head: Mapped[bytes | None] = mapped_column(LargeBinary)
    # SHA-256 (hex) of the secret in the upload URL that lets a background transfer carry on
    # without an access token; the secret itself is only ever in the URL.
    capability_digest: Mapped[str | None] = mapped_column(String(64))
    filename: Mapped[str | None] = mapped_column(String(255))
    filetype: Mapped[str | None] = mapped_column(String(127))
    expires_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    # Set when its video is deleted: the upload is gone for its sender (404), and the row stays
    # until the purge, which discards its stored parts (kept outside the video's folder).
    cancelled_at: Mapped[datetime | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
