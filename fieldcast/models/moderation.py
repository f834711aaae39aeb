"""Reports of comments and videos, and the audit log of what admins did."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from fieldcast.db import UUIDPK, Base, CreatedAt, TenantMixin, str_enum, tenant_fk


class ReportReason(enum.StrEnum):
    SPAM = "spam"
    HARASSMENT = "harassment"
    INAPPROPRIATE = "inappropriate"
    CONFIDENTIAL = "confidential"  # customer data, pricing that must not circulate
    MISLEADING = "misleading"
    OTHER = "other"


class ReportStatus(enum.StrEnum):
    OPEN = "open"
    HIDDEN = "hidden"  # an admin hid the content
    DISMISSED = "dismissed"  # an admin kept it


class Report(TenantMixin, Base):
    """Someone asks the admins to look at a comment or a video. Every report names its video;
    a report of a comment names the comment too (`comment_id`), a report of the video itself
    does not."""

    __tablename__ = "reports"
    __table_args__ = (
        tenant_fk("reports", "reporter_id", "users", ondelete="CASCADE"),
        tenant_fk("reports", "comment_id", "comments", ondelete="CASCADE"),
        tenant_fk("reports", "video_id", "videos", ondelete="CASCADE"),
        tenant_fk("reports", "resolved_by_id", "users", ondelete="SET NULL (resolved_by_id)"),
        # One open report per person and object: reporting again changes nothing.
        Index(
            "uq_reports_open_comment",
            "reporter_id",
            "comment_id",
            unique=True,
            postgresql_where=text("status = 'open' AND comment_id IS NOT NULL"),
        ),
        Index(
            "uq_reports_open_video",
            "reporter_id",
            "video_id",
            unique=True,
            postgresql_where=text("status = 'open' AND comment_id IS NULL"),
        ),
        Index("ix_reports_org_id_status_id", "org_id", "status", "id"),
        Index("ix_reports_comment_id", "comment_id"),
        Index("ix_reports_video_id", "video_id"),
    )

    id: Mapped[UUIDPK]
    reporter_id: Mapped[uuid.UUID]
    # The reported video, or the video a reported comment is on: lists show both.
    video_id: Mapped[uuid.UUID]
    comment_id: Mapped[uuid.UUID | None]
    reason: Mapped[ReportReason] = mapped_column(str_enum(ReportReason, "report_reason"))
    details: Mapped[str] = mapped_column(String(1000), default="", server_default="")
    status: Mapped[ReportStatus] = mapped_column(
        str_enum(ReportStatus, "report_status", length=16), default=ReportStatus.OPEN
    )
    created_at: Mapped[CreatedAt]
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[uuid.UUID | None]
    # What the admin wrote: the reason the author is told when the content is hidden.
    resolution_note: Mapped[str | None] = mapped_column(String(500))


class AuditEntry(TenantMixin, Base):
    """One thing an admin (or a moderator's decision) changed: kept for the organisation to
    read and export. `actor_id` is who did it; `details` what changed, never a secret."""

    __tablename__ = "audit_log"
    __table_args__ = (
        tenant_fk("audit_log", "actor_id", "users", ondelete="SET NULL (actor_id)"),
        Index("ix_audit_log_org_id_id", "org_id", "id"),
    )

    id: Mapped[UUIDPK]
    actor_id: Mapped[uuid.UUID | None]
    # "report.hide", "user.role_changed", ...: a stable name clients may filter on.
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[uuid.UUID | None]
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    created_at: Mapped[CreatedAt]
