"""Transcripts: what is said in a video, as timed segments, made by a worker and editable."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fieldcast.db import UUIDPK, Base, CreatedAt, TenantMixin, UpdatedAt, str_enum, tenant_fk


class TranscriptStatus(enum.StrEnum):
    PENDING = "pending"  # the video's current file waits for (or is in) transcription
    DONE = "done"  # segments are stored (made by the engine, or written by a person)
    FAILED = "failed"  # the engine could not read the sound; `failure_detail` says why
    NO_SPEECH = "no_speech"  # the sound was read and nothing was said
    SKIPPED = "skipped"  # not transcribed: no sound track, or transcription is off


class Transcript(TenantMixin, Base):
    """A video's transcript, one per video, of the file `source_version` names."""

    __tablename__ = "transcripts"
    __table_args__ = (
        tenant_fk("transcripts", "video_id", "videos", ondelete="CASCADE"),
        tenant_fk("transcripts", "edited_by_id", "users", ondelete="SET NULL (edited_by_id)"),
        UniqueConstraint("video_id"),
    )

    id: Mapped[UUIDPK]
    video_id: Mapped[uuid.UUID]
    source_version: Mapped[int]
    status: Mapped[TranscriptStatus] = mapped_column(
        str_enum(TranscriptStatus, "transcript_status", length=16)
    )
    # The engine that made the segments (`pocketsphinx`, `faster-whisper`); None before it ran.
    engine: Mapped[str | None] = mapped_column(String(32))
    # The language spoken (`en`), as the engine was told or the author wrote; None before either.
    language: Mapped[str | None] = mapped_column(String(16))
    failure_detail: Mapped[str | None] = mapped_column(String(500))
    # A person replaced the segments: a later automatic run of the same file keeps theirs.
    edited_at: Mapped[datetime | None]
    edited_by_id: Mapped[uuid.UUID | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


SEGMENT_TEXT_MAX = 1000


class TranscriptSegment(TenantMixin, Base):
    """A few seconds of a transcript: the caption shown from `start_ms` to `end_ms`."""

    __tablename__ = "transcript_segments"
    __table_args__ = (
        tenant_fk("transcript_segments", "video_id", "videos", ondelete="CASCADE"),
        UniqueConstraint("video_id", "position"),
        CheckConstraint("start_ms >= 0 AND end_ms > start_ms", name="times_in_order"),
        Index("ix_transcript_segments_video_id_start_ms", "video_id", "start_ms"),
    )

    id: Mapped[UUIDPK]
    video_id: Mapped[uuid.UUID]
    position: Mapped[int]
    start_ms: Mapped[int]
    end_ms: Mapped[int]
    text: Mapped[str] = mapped_column(String(SEGMENT_TEXT_MAX))
