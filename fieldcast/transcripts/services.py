"""Transcripts: what is said in a video, as timed segments, read by whoever sees the video and
rewritten by its author.

A video that becomes ready (`VideoBecameReady`) gets a `pending` transcript of its current file
and a `video.transcribe` task (keyed by video and file, so recorded once per file), which a
worker on the `transcribe` queue runs (`fieldcast.transcripts.transcribe`). A new file
transcribes again; a person's edit of the current file's transcript is never overwritten by the
engine. Storing segments, by the worker or a person, publishes `VideoTextChanged` for search.

Search reads a video's words through `transcript_text` (this package) and
`fieldcast.attachments.text.attachment_texts`.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, exists, insert, select
from sqlalchemy.orm import Session

from fieldcast import events
from fieldcast.db import utcnow
from fieldcast.errors import ErrorCode, InvalidInput
from fieldcast.models.transcripts import (
    SEGMENT_TEXT_MAX,
    Transcript,
    TranscriptSegment,
    TranscriptStatus,
)
from fieldcast.models.videos import Video
from fieldcast.outbox import services as outbox
from fieldcast.outbox.names import TaskName
from fieldcast.policy import Principal, load_video

TRANSCRIBE_TASK = TaskName.VIDEO_TRANSCRIBE
# A transcript a person writes: at most this many segments (a caption every second of a
# 30-minute video), each of at most SEGMENT_TEXT_MAX characters.
MAX_SEGMENTS = 2000


@dataclass(frozen=True)
class SegmentInput:
    start_ms: int
    end_ms: int
    text: str


@dataclass(frozen=True)
class TranscriptView:
    """A video's transcript as its viewers see it: the current file's, or `pending`."""

    video_id: uuid.UUID
    status: TranscriptStatus
    language: str | None
    engine: str | None
    failure_detail: str | None
    edited_at: Any
    edited_by_id: uuid.UUID | None
    updated_at: Any
    segments: list[TranscriptSegment]


def transcribe_key(video_id: uuid.UUID, version: int) -> str:
    return f"{TRANSCRIBE_TASK}:{video_id}:{version}"


# -- a video becomes ready ----------------------------------------------------------------------


def _locked(session: Session, org_id: uuid.UUID, video_id: uuid.UUID) -> Transcript | None:
    return session.scalars(
        select(Transcript)
        .where(Transcript.org_id == org_id, Transcript.video_id == video_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()


def _replace_segments(
    session: Session, org_id: uuid.UUID, video_id: uuid.UUID, segments: Sequence[SegmentInput]
) -> None:
    session.execute(
        delete(TranscriptSegment).where(
            TranscriptSegment.org_id == org_id, TranscriptSegment.video_id == video_id
        )
    )
    if segments:
        session.execute(
            insert(TranscriptSegment),
            [
                {
                    "id": uuid.uuid4(),
                    "org_id": org_id,
                    "video_id": video_id,
                    "position": position,
                    "start_ms": segment.start_ms,
                    "end_ms": segment.end_ms,
                    "text": segment.text,
                }
                for position, segment in enumerate(segments)
            ],
        )


@events.subscribe(events.VideoBecameReady)
def _video_ready(session: Session, event: events.VideoBecameReady) -> None:
    """The video's file is processed: transcribe it, unless its author already wrote the
    transcript of this very file."""
    transcript = _locked(session, event.org_id, event.video_id)
    if transcript is None:
        session.add(
            Transcript(
                org_id=event.org_id,
                video_id=event.video_id,
                source_version=event.source_version,
                status=TranscriptStatus.PENDING,
            )
        )
    elif transcript.source_version != event.source_version:
        # A new file: the old one's words do not match it.
        _replace_segments(session, event.org_id, event.video_id, [])
        transcript.source_version = event.source_version
        transcript.status = TranscriptStatus.PENDING
        transcript.engine = None
        transcript.failure_detail = None
        transcript.edited_at = None
        transcript.edited_by_id = None
        events.publish(
            session, events.VideoTextChanged(org_id=event.org_id, video_id=event.video_id)
        )
    elif transcript.edited_at is not None:
        return
    session.flush()
    outbox.record(
        session,
        TRANSCRIBE_TASK,
        {"video_id": str(event.video_id), "version": event.source_version},
        org_id=event.org_id,
        dedup_key=transcribe_key(event.video_id, event.source_version),
    )


# -- the worker's result -------------------------------------------------------------------------


def store_result(
    session: Session,
    video: Video,
    version: int,
    *,
    status: TranscriptStatus,
    engine: str | None,
    language: str | None,
    segments: Sequence[SegmentInput] = (),
    detail: str | None = None,
) -> bool:
    """Store what the engine made of the video's file `version`, in the caller's transaction.
    Nothing is stored (False) when the video has another file by now, or a person wrote this
    file's transcript meanwhile."""
    transcript = _locked(session, video.org_id, video.id)
    if transcript is None or transcript.source_version != version:
        return False
    if video.source_version != version or transcript.edited_at is not None:
        return False
    transcript.status = status
    transcript.engine = engine
    transcript.language = language
    transcript.failure_detail = detail[:500] if detail else None
    _replace_segments(session, video.org_id, video.id, segments)
    session.flush()
    if status is TranscriptStatus.DONE:
        events.publish(session, events.VideoTextChanged(org_id=video.org_id, video_id=video.id))
    return True


# -- reading ---------------------------------------------------------------------------------------


def _view(session: Session, video: Video) -> TranscriptView:
    transcript = session.scalars(
        select(Transcript).where(Transcript.org_id == video.org_id, Transcript.video_id == video.id)
    ).one_or_none()
    if transcript is None or transcript.source_version != video.source_version:
        # Not transcribed yet, or of a file since replaced: it comes once this one is ready.
        return TranscriptView(video.id, TranscriptStatus.PENDING, None, None, None, None, None,
                              None, [])  # fmt: skip
    return TranscriptView(
        video_id=video.id,
        status=transcript.status,
        language=transcript.language,
        engine=transcript.engine,
        failure_detail=transcript.failure_detail,
        edited_at=transcript.edited_at,
        edited_by_id=transcript.edited_by_id,
        updated_at=transcript.updated_at,
        segments=segments_of(session, video),
    )


def segments_of(session: Session, video: Video) -> list[TranscriptSegment]:
    return list(
        session.scalars(
            select(TranscriptSegment)
            .where(
                TranscriptSegment.org_id == video.org_id,
                TranscriptSegment.video_id == video.id,
            )
            .order_by(TranscriptSegment.position)
        )
    )


def get_transcript(session: Session, principal: Principal, video_id: uuid.UUID) -> TranscriptView:
    return _view(session, load_video(session, principal, video_id))


def captioned(session: Session, videos: Iterable[Video]) -> set[uuid.UUID]:
    """Of these videos (already allowed to the caller), those whose current file has captions:
    a transcript of it with at least one segment. One query for a page of videos."""
    by_id = {video.id: video for video in videos}
    if not by_id:
        return set()
    org_ids = {video.org_id for video in by_id.values()}
    has_segments = exists().where(
        TranscriptSegment.org_id == Transcript.org_id,
        TranscriptSegment.video_id == Transcript.video_id,
    )
    rows = session.execute(
        select(Transcript.video_id, Transcript.source_version).where(
            Transcript.org_id.in_(org_ids),
            Transcript.video_id.in_(by_id),
            Transcript.status == TranscriptStatus.DONE,
            has_segments,
        )
    ).all()
    current = {video_id: video.source_version for video_id, video in by_id.items()}
    return {row.video_id for row in rows if current[row.video_id] == row.source_version}


def captions_of(session: Session, video: Video) -> tuple[str | None, list[TranscriptSegment]]:
    """The language and segments of the video's captions, for its current file; no segments
    when it has none. No principal: the playback routes check the viewer's signed grant."""
    view = _view(session, video)
    if view.status is not TranscriptStatus.DONE:
        return None, []
    return view.language, view.segments


def transcript_text(session: Session, org_id: uuid.UUID, video_id: uuid.UUID) -> str:
    """What is said in the video's current file, as one text (segments joined by line breaks),
    '' when nothing is transcribed: what search indexes. No principal: search filters what it
    returns with `policy.videos.visible`."""
    video = session.get(Video, video_id)
    if video is None or video.org_id != org_id:
        return ""
    view = _view(session, video)
    return "\n".join(segment.text for segment in view.segments)


# -- editing ---------------------------------------------------------------------------------------


def _clean_text(text: str, index: int) -> str:
    cleaned = " ".join(text.replace("\r", " ").replace("\n", " ").split())
    if any(unicodedata.category(c) == "Cc" for c in cleaned):
        raise InvalidInput(
            "A segment's text holds control characters.",
            code=ErrorCode.INVALID_TEXT,
            errors={"segments": {str(index): {"text": ["Control characters are refused."]}}},
        )
    if not cleaned:
        raise InvalidInput(
            "A segment's text is blank.",
            code=ErrorCode.INVALID_TEXT,
            errors={"segments": {str(index): {"text": ["Must not be blank."]}}},
        )
    if len(cleaned) > SEGMENT_TEXT_MAX:
        raise InvalidInput(
            errors={"segments": {str(index): {"text": [f"At most {SEGMENT_TEXT_MAX} characters."]}}}
        )
    return cleaned


def check_segments(video: Video, segments: Sequence[SegmentInput]) -> list[SegmentInput]:
    """Segments a person wrote, held to the video's timeline: in order, not overlapping, within
    its duration, at most MAX_SEGMENTS, each with a text."""
    if video.duration_ms is None:
        raise InvalidInput(
            "The video's duration is not known yet.",
            code=ErrorCode.TIMELINE_UNAVAILABLE,
            errors={"segments": ["The video has no timeline yet."]},
        )
    if len(segments) > MAX_SEGMENTS:
        raise InvalidInput(errors={"segments": [f"At most {MAX_SEGMENTS} segments."]})
    cleaned: list[SegmentInput] = []
    previous_end = 0
    for index, segment in enumerate(segments):
        problems: list[str] = []
        if not 0 <= segment.start_ms < segment.end_ms:
            problems.append("end_ms must come after start_ms, both at least 0.")
        elif segment.end_ms > video.duration_ms:
            problems.append(f"Must end within the video: at most {video.duration_ms} ms.")
        elif segment.start_ms < previous_end:
            problems.append("Segments are in order and do not overlap.")
        if problems:
            raise InvalidInput(
                "A segment's time is outside the video or out of order.",
                code=ErrorCode.TRANSCRIPT_TIME_OUT_OF_RANGE,
                errors={"segments": {str(index): {"start_ms": problems}}},
            )
        previous_end = segment.end_ms
        text = _clean_text(segment.text, index)
        cleaned.append(SegmentInput(segment.start_ms, segment.end_ms, text))
    return cleaned


def replace_transcript(
    session: Session,
    principal: Principal,
    video_id: uuid.UUID,
    segments: Sequence[SegmentInput],
    *,
    language: str | None,
) -> TranscriptView:
    """The video's author (or an admin) replaces its transcript: the engine's run of this file,
    pending or later, keeps their words."""
    video = load_video(session, principal, video_id, "video.edit_transcript")
    cleaned = check_segments(video, segments)
    transcript = _locked(session, video.org_id, video.id)
    if transcript is None:
        transcript = Transcript(org_id=video.org_id, video_id=video.id)
        session.add(transcript)
    transcript.source_version = video.source_version
    transcript.status = TranscriptStatus.DONE
    transcript.failure_detail = None
    transcript.language = language or transcript.language
    transcript.edited_at = utcnow()
    transcript.edited_by_id = principal.user_id
    session.flush()
    _replace_segments(session, video.org_id, video.id, cleaned)
    session.flush()
    events.publish(session, events.VideoTextChanged(org_id=video.org_id, video_id=video.id))
    session.refresh(transcript)
    return _view(session, video)
