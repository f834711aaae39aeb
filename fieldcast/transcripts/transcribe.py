"""The `video.transcribe` task (queue `transcribe`): a ready video's speech as timed segments.

It reads the video's current file (in place on local storage, else a copy in the work
directory), asks the configured engine (`media.transcription`, TRANSCRIPTION_ENGINE) for the
first TRANSCRIPTION_MAX_S seconds of its sound, and stores the segments with the transcript's
status: `done`, `no_speech`, `skipped` (no sound track, or transcription off) or `failed` with
a sentence saying why. A file replaced meanwhile, or a transcript its author wrote meanwhile,
keeps what it has (`services.store_result`). Storage and database outages are retried; a task
that fails for good marks the transcript `failed` instead of leaving it pending.

The transaction ends before the engine runs (`EarlyCommit.BEFORE_LONG_WORK`): nothing is held
open for the minutes a long video takes.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from fieldcast.context import AppContext, current
from fieldcast.db import EarlyCommit, commit_early
from fieldcast.models.transcripts import TranscriptStatus
from fieldcast.models.videos import Video
from fieldcast.outbox import services as outbox
from fieldcast.transcripts.services import TRANSCRIBE_TASK, SegmentInput, store_result
from media import ffmpeg
from media.probe import MediaRejected, probe
from media.storage import ObjectNotFound, StorageError, readable_file
from media.transcription import Engine, TranscriptionUnavailable, engine_for

log = logging.getLogger(__name__)

# The engine's share of the queue's hard limit (workers.queues, 40 minutes).
ENGINE_TIMEOUT_S = 35 * 60


def configured_engine(ctx: AppContext) -> Engine | None:
    settings = ctx.settings
    return engine_for(
        settings.transcription_engine,
        ffmpeg_binary=ffmpeg.ffmpeg_binary(settings.ffmpeg_binary),
        model_dir=settings.transcription_model_dir,
        max_s=settings.transcription_max_s,
        timeout_s=ENGINE_TIMEOUT_S,
        work_dir=_work_root(ctx),
    )


def _work_root(ctx: AppContext) -> Path:
    # Beside video processing's scratch space, named by this process's id like its directories,
    # so one left by a killed worker is swept by the next processing step on the machine.
    return ctx.settings.media_work_dir or Path(tempfile.gettempdir()) / "fieldcast-media"


def transcribe(session: Session, payload: dict[str, Any]) -> None:
    ctx = current()
    video_id = uuid.UUID(payload["video_id"])
    version = int(payload["version"])
    video = session.get(Video, video_id, populate_existing=True)
    if video is None or video.source_version != version or video.source_key is None:
        log.info("video %s: transcription skipped, the video moved on", video_id)
        return
    language = ctx.settings.transcription_language
    try:
        engine = configured_engine(ctx)
    except TranscriptionUnavailable as exc:
        log.error("video %s: no transcription: %s", video_id, exc)
        store_result(session, video, version, status=TranscriptStatus.FAILED, engine=None,
                     language=language, detail="Transcription is not available.")  # fmt: skip
        return
    if engine is None:
        store_result(session, video, version, status=TranscriptStatus.SKIPPED, engine=None,
                     language=None, detail="Transcription is turned off.")  # fmt: skip
        return
    source_key = video.source_key
    commit_early(session, EarlyCommit.BEFORE_LONG_WORK)

    started = time.monotonic()
    status, detail = TranscriptStatus.DONE, None
    segments: list[SegmentInput] = []
    root = _work_root(ctx)
    root.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix=f"{os.getpid()}-transcribe-", dir=root) as work:
            source = readable_file(ctx.storage, source_key, Path(work))
            if probe(source).audio is None:
                status, detail = TranscriptStatus.SKIPPED, "The video has no sound."
            else:
                found = engine.transcribe(source, language)
                segments = [SegmentInput(s.start_ms, s.end_ms, s.text) for s in found]
                if not segments:
                    status = TranscriptStatus.NO_SPEECH
    except ObjectNotFound:
        log.info("video %s: its file is gone (purged or replaced)", video_id)
        return
    except MediaRejected as exc:
        status, detail = TranscriptStatus.FAILED, exc.detail
    except ffmpeg.FFmpegFailed as exc:
        log.warning("video %s: the sound could not be read: %s", video_id, exc.tail[-300:])
        status, detail = TranscriptStatus.FAILED, "The video's sound could not be read."
    except TimeoutError:
        status, detail = TranscriptStatus.FAILED, "Transcribing the video took too long."
    except TranscriptionUnavailable as exc:
        log.error("video %s: no transcription: %s", video_id, exc)
        status, detail = TranscriptStatus.FAILED, "Transcription is not available."
    except (StorageError, OperationalError, OSError) as exc:
        raise outbox.TransientError(f"{type(exc).__name__}: {exc}") from exc

    video = session.get(Video, video_id, populate_existing=True)
    if video is None:
        return
    stored = store_result(
        session, video, version, status=status, engine=engine.name, language=language,
        segments=segments, detail=detail,
    )  # fmt: skip
    log.info(
        "video %s transcribed: %s, %d segment(s) in %.1f s%s",
        video_id,
        status.value,
        len(segments),
        time.monotonic() - started,
        "" if stored else " (not stored: the video or its transcript changed meanwhile)",
        extra={"video_id": str(video_id)},
    )


def _give_up(session: Session, payload: dict[str, Any], reason: str) -> None:
    video = session.get(Video, uuid.UUID(payload["video_id"]))
    if video is None:
        return
    store_result(
        session, video, int(payload["version"]), status=TranscriptStatus.FAILED, engine=None,
        language=None, detail="Transcribing the video failed; it will not be tried again.",
    )  # fmt: skip


outbox.tasks.register(TRANSCRIBE_TASK, queue="transcribe", max_attempts=3, on_give_up=_give_up)(
    transcribe
)
