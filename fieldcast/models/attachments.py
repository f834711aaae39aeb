"""Attachments: slides, documents, links and notes that go with a video."""

from __future__ import annotations

import enum
import uuid

from sqlalchemy import BigInteger, CheckConstraint, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from fieldcast.db import UUIDPK, Base, CreatedAt, TenantMixin, UpdatedAt, str_enum, tenant_fk


class AttachmentKind(enum.StrEnum):
    FILE = "file"
    LINK = "link"
    NOTE = "note"


class TextStatus(enum.StrEnum):
    """Where reading a file attachment's text stands (links and notes have none to read)."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"  # `text_failure_detail` says why
    UNSUPPORTED = "unsupported"  # a kind of file whose text is not read (images, ...)


class Attachment(TenantMixin, Base):
    __tablename__ = "attachments"
    __table_args__ = (
        tenant_fk("attachments", "video_id", "videos", ondelete="CASCADE"),
        tenant_fk("attachments", "created_by_id", "users", ondelete="CASCADE"),
        CheckConstraint(
            "(kind = 'file' AND storage_key IS NOT NULL)"
            " OR (kind = 'link' AND url IS NOT NULL)"
            " OR (kind = 'note' AND body IS NOT NULL)",
            name="kind_has_content",
        ),
        Index("ix_attachments_video_id_id", "video_id", "id"),
    )

    id: Mapped[UUIDPK]
    video_id: Mapped[uuid.UUID]
    created_by_id: Mapped[uuid.UUID]
    kind: Mapped[AttachmentKind] = mapped_column(str_enum(AttachmentKind, "attachment_kind"))
    title: Mapped[str] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(String(2000))
    # TEXT has no length of its own: the limit every input of it observes.
    body: Mapped[str | None] = mapped_column(Text, info={"max_length": 10_000})
    filename: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(127))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    storage_key: Mapped[str | None] = mapped_column(String(900))
    # A file's text, read by a worker for search (`attachments.text`), cut at TEXT_MAX.
    text: Mapped[str | None] = mapped_column(Text, info={"max_length": 200_000})
    text_status: Mapped[TextStatus | None] = mapped_column(
        str_enum(TextStatus, "attachment_text_status", length=16)
    )
    text_failure_detail: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
