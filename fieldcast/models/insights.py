"""Insights: the figures of a video's viewing, computed ahead of the reads that show them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Double, Index, Integer
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from fieldcast.db import Base, TenantMixin, tenant_fk

# The retention curve, drop-offs and rewatches have one point per percent of the duration.
POINTS = 100


class VideoInsight(TenantMixin, Base):
    """A video's viewing figures as last computed (`computed_at`): counted from its views and
    its viewers' progress by `fieldcast.insights.videos.compute`, so reading them is one row
    whatever the number of viewers. `requested_at` is when someone last read them: the
    refresh job keeps only the figures people read fresh."""

    __tablename__ = "video_insights"
    __table_args__ = (
        tenant_fk("video_insights", "video_id", "videos", ondelete="CASCADE"),
        Index("ix_video_insights_requested_at", "requested_at"),
    )

    video_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    duration_ms: Mapped[int]
    views: Mapped[int]
    viewers: Mapped[int]
    completed: Mapped[int]
    # The mean, over viewers, of the share of the video they played (0 to 1).
    average_share: Mapped[float] = mapped_column(Double)
    # Per percent point of the duration: viewers who played it; viewers whose furthest point
    # fell in it (and who left before the end); plays of it beyond each viewer's first.
    retention: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    drop_offs: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    rewatches: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    computed_at: Mapped[datetime]
    requested_at: Mapped[datetime]
