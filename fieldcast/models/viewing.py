"""Viewing: what each person actually played of a video, view by view, and their progress."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import INT4MULTIRANGE
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

# The most segments one report may carry, and events.
MAX_SEGMENTS = 200
MAX_EVENTS = 200
# The most events kept of one view: past it a report's events are dropped (its segments still
# count), so a player stuck in a loop of seeks cannot grow the table without end.
MAX_VIEW_EVENTS = 5000
# The most views one person may start of one video in a day (a session started again is the
# same view and does not count).
MAX_VIEWS_PER_DAY = 100
# Played this long in one view, or in all of a person's views of the video together (or the
# whole range, if shorter), shares of the video to the person count as watched.
WATCHED_MS = 3_000


class View(TenantMixin, Base):
    """One sitting with a video (or a clip of it): the played segments reported by the player,
    merged as a union of [start, end) milliseconds, so a retried or reordered report never
    counts twice. `session_id` is the app's: starting the same session again is the same
    view, which lets an offline player report a view the server has not seen yet."""

    __tablename__ = "views"
    __table_args__ = (
        UniqueConstraint("org_id", "id"),
        UniqueConstraint("user_id", "session_id"),
        CheckConstraint("start_ms >= 0 AND end_ms > start_ms", name="range"),
        tenant_fk("views", "video_id", "videos", ondelete="CASCADE"),
        tenant_fk("views", "user_id", "users", ondelete="CASCADE"),
        Index("ix_views_video_id_user_id", "video_id", "user_id"),
        # The views an organisation's retention deletes, oldest first.
        Index("ix_views_org_id_started_at", "org_id", "started_at"),
    )

    id: Mapped[UUIDPK]
    video_id: Mapped[uuid.UUID]
    user_id: Mapped[uuid.UUID]
    session_id: Mapped[uuid.UUID]
    # The range this view is of: the whole video ([0, duration)) or a clip's.
    start_ms: Mapped[int] = mapped_column(default=0, server_default="0")
    end_ms: Mapped[int]
    played: Mapped[Any] = mapped_column(INT4MULTIRANGE, server_default=text("'{}'"))
    played_ms: Mapped[int] = mapped_column(default=0, server_default="0")
    position_ms: Mapped[int] = mapped_column(default=0, server_default="0")
    # The highest report number seen: a report numbered below it does not move the position.
    last_seq: Mapped[int] = mapped_column(default=-1, server_default="-1")
    reports: Mapped[int] = mapped_column(default=0, server_default="0")
    started_at: Mapped[CreatedAt]
    # The device's clock, as the app sent it: when it started, last reported and completed
    # (the `device_at` of the report that reached the threshold), beside the server's own
    # times; a view played offline is reported later, and a learning record wants when it
    # really happened.
    device_started_at: Mapped[datetime | None]
    device_last_at: Mapped[datetime | None]
    device_completed_at: Mapped[datetime | None]
    last_reported_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    # The BI export's change marks (see fieldcast/exports/cursor.py).
    change_seq: Mapped[ChangeSeq]
    change_xid: Mapped[ChangeXid]


class ViewEventKind(enum.StrEnum):
    PLAY = "play"
    PAUSE = "pause"
    SEEK = "seek"
    COMPLETE = "complete"


class ViewEvent(TenantMixin, Base):
    """What the player did (play, pause, seek, complete), as it reported it: a report's
    events are kept once however often the report is sent (`seq`, `n`)."""

    __tablename__ = "view_events"
    __table_args__ = (tenant_fk("view_events", "view_id", "views", ondelete="CASCADE"),)

    view_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    # The report's number in its view (the app counts them) and the event's place in it.
    seq: Mapped[int] = mapped_column(primary_key=True)
    n: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ViewEventKind] = mapped_column(
        str_enum(ViewEventKind, "view_event_kind", length=16)
    )
    position_ms: Mapped[int]
    device_at: Mapped[datetime | None]
    received_at: Mapped[CreatedAt]


class VideoProgress(TenantMixin, Base):
    """A person's progress on a video: the union of what all their views played of it, over
    its duration; completed once that reaches the organisation's threshold."""

    __tablename__ = "video_progress"
    __table_args__ = (
        tenant_fk("video_progress", "video_id", "videos", ondelete="CASCADE"),
        tenant_fk("video_progress", "user_id", "users", ondelete="CASCADE"),
        Index("ix_video_progress_video_id", "video_id"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    video_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    played: Mapped[Any] = mapped_column(INT4MULTIRANGE, server_default=text("'{}'"))
    played_ms: Mapped[int] = mapped_column(default=0, server_default="0")
    duration_ms: Mapped[int]
    first_played_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    updated_at: Mapped[UpdatedAt]
    # The BI export's change marks (see fieldcast/exports/cursor.py).
    change_seq: Mapped[ChangeSeq]
    change_xid: Mapped[ChangeXid]
