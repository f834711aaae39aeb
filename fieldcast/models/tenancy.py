"""What one deployment keeps for each of its organisations: a storage quota and retention."""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from fieldcast.db import Base, UpdatedAt


class OrganisationPolicy(Base):
    """An organisation's storage quota (set by the operator: `fieldcast quota`) and retention
    policy (set by its admins). No row, or a null: the deployment's default
    (STORAGE_QUOTA_BYTES, VIDEO_PURGE_GRACE_S), and nothing purged for age."""

    __tablename__ = "organisation_policies"
    __table_args__ = (
        CheckConstraint("storage_quota_bytes >= 0", name="storage_quota_bytes"),
        CheckConstraint("video_retention_days >= 1", name="video_retention_days"),
        CheckConstraint("view_retention_days >= 1", name="view_retention_days"),
        CheckConstraint("deleted_retention_days >= 0", name="deleted_retention_days"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    storage_quota_bytes: Mapped[int | None] = mapped_column(BigInteger)
    # Videos are deleted this long after they were made (then purged after the grace below),
    # unless a standing assignment or a published collection holds them.
    video_retention_days: Mapped[int | None]
    # Who watched what, view by view (views and their events), is deleted this long after
    # the view started; each person's progress on a video stays.
    view_retention_days: Mapped[int | None]
    # A deleted video can be restored for this long before its media and row are purged.
    deleted_retention_days: Mapped[int | None]
    updated_at: Mapped[UpdatedAt]
