"""From an uploaded file to a playable, then ready, video.

Two outbox tasks, recorded in the transaction that made their input:
- `video.process` (queue media-fast): probe and validate, then the first playable rendition:
  a remux when the phone's file is already 8-bit H.264 SDR BT.709, else one rung up to 540p
  encoded fast. An HEVC file (an iPhone's, HDR or not) is first copied as it is into an HLS
  rendition with a master playlist, committed once its first seconds are stored and while the
  rest is (`progressive`): clients that decode HEVC play it while the video is still
  `processing`; then the lowest H.264 SDR rung is encoded fast and joins that master. The
  poster is made beside the first H.264 rendition, from the best key frame of the first
  seconds. The video becomes `playable` (for every client) and its author
  is told.
- `video.ladder` (queue media): a poster that replaces the first unless it looks worse, the
  full ladder from one decode (beside an HEVC source's copy in one master playlist), the
  offline MP4 made from the best rung up to 720p without re-encoding, the storyboard. The
  video is `ready`.
  Each of these may fail without costing the others; the video is then `ready` all the same,
  with what could not be made named in `missing`: a video that plays always ends `ready`.

Both steps probe the file and hold it to the same limits (`media_limits`) before they make
anything: nothing outside them becomes playable, whichever way the file came.

Every output has a deterministic storage key under the source version and one `Rendition` row
keyed by (video, name), upserted: a step that runs twice (a worker killed mid-transcode and the
work handed to another) overwrites the same objects and rows, never duplicates them. Hostile
files fail the video with the probe's code and are not retried; storage or database outages
are retried; a step that fails for good fails the video instead of leaving it processing, or,
once it plays, makes it `ready` with what is missing.
"""

from __future__ import annotations

import errno
import io
import logging
import math
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from fieldcast import events
from fieldcast.context import AppContext, current
from fieldcast.db import Database, EarlyCommit, commit_apart, commit_early, utcnow
from fieldcast.models.outbox import OutboxJob, OutboxStatus
from fieldcast.models.videos import Rendition, RenditionKind, Video, VideoStatus
from fieldcast.outbox import services as outbox
from fieldcast.outbox.names import TaskName
from fieldcast.settings import Settings
from fieldcast.videos.playback import content_type
from fieldcast.videos.progressive import STORE_THREADS, GrowingRendition
from media import ffmpeg
from media.codecs import Codecs, file_codecs
from media.codecs import video_range as range_of
from media.keyframes import longest_keyframe_gap_s
from media.limits import MediaLimits
from media.probe import MediaInfo, MediaRejected, check_size, probe, validate
from media.renditions import (
    SEGMENT_SECONDS,
    Variant,
    fast_start_command,
    first_rung,
    h264_after_hevc_rung,
    hevc_copy_command,
    ladder_command,
    ladder_for,
    master_playlist,
    offline_rung,
    output_fps,
    output_size,
    parse_master,
    playlist_bitrates,
    remux_command,
)
from media.storage import LocalStorage, ObjectNotFound, Storage, StorageError
from media.thumbnails import (
    PosterResult,
    make_early_poster,
    make_poster,
    make_storyboard,
    measure_luma,
)

log = logging.getLogger(__name__)

PROCESS_TASK = TaskName.VIDEO_PROCESS
LADDER_TASK = TaskName.VIDEO_LADDER
# ffmpeg's share of each queue's hard time limit (workers.queues), leaving time to store outputs.
FAST_LIMIT = timedelta(minutes=12)
LADDER_LIMIT = timedelta(minutes=50)
# How long a playable video may go without any ladder work for its file before it is settled:
# the ladder is recorded with the playable status, so only a deleted row leaves none.
LADDER_GRACE = timedelta(minutes=15)

# Overall progress: probing, then the first playable rendition, then the ladder and the rest.
_PROBED = 5
_PLAYABLE = 25
_LADDER_DONE = 85
_MP4_DONE = 90
_STORYBOARD_DONE = 97

# What the ladder step makes beside the first rendition, by the name `missing` gives each, and
# the rendition whose row says it was made.
LATER_OUTPUTS: dict[str, str] = {
    "poster": "poster",
    "ladder": "master",
    "mp4": "mp4",
    "storyboard": "storyboard",
}


def media_limits(settings: Settings) -> MediaLimits:
    limits = settings.limits
    return MediaLimits(
        max_bytes=limits.max_upload_bytes,
        max_duration_s=limits.max_duration_s,
        max_pixels=limits.max_frame_pixels,
        max_side=limits.max_frame_side,
        max_pixel_rate=limits.max_pixel_rate,
    )


def start(session: Session, video: Video) -> None:
    """Record processing of the video's current source, in the caller's transaction."""
    _record_step(session, video, PROCESS_TASK)


def _step_key(task: str, video_id: Any, version: Any) -> list[Any]:
    """The parts of a step's outbox key, joined in Python to record it and in SQL to find it.

    The name goes in as a plain string: SQL would not know the type of an enum member."""
    return [str(task), ":", video_id, ":", version]


def _record_step(session: Session, video: Video, task: str) -> None:
    # Keyed by (video, source version, step): recording a step twice records it once.
    outbox.record(
        session,
        task,
        {"video_id": str(video.id), "version": video.source_version},
        org_id=video.org_id,
        dedup_key="".join(str(part) for part in _step_key(task, video.id, video.source_version)),
    )


# -- Running a step -------------------------------------------------------------------------------


class _Superseded(Exception):
    """The video was deleted, re-uploaded or already moved past this step."""


def _load(session: Session, payload: dict[str, Any], *expected: VideoStatus) -> Video:
    """The video as it is now (locked until commit), if this step is still its next one."""
    video = session.get(
        Video, uuid.UUID(payload["video_id"]), populate_existing=True, with_for_update=True
    )
    if video is None or video.source_version != payload["version"]:
        raise _Superseded()
    # Deleted: nobody may see it, and its media waits for the purge; a restore runs the step
    # again (`resume`).
    if video.deleted_at is not None or video.status not in expected:
        raise _Superseded()
    return video


@contextmanager
def _work_dir(ctx: AppContext) -> Iterator[Path]:
    """A scratch directory for one step, removed whatever happens. Directories left by a
    worker that was killed are removed by the next step that runs on the machine."""
    root = ctx.settings.media_work_dir or Path(tempfile.gettempdir()) / "fieldcast-media"
    root.mkdir(parents=True, exist_ok=True)
    _sweep_abandoned(root)
    path = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=root))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _sweep_abandoned(root: Path) -> None:
    for entry in root.iterdir():
        pid, _, _ = entry.name.partition("-")
        if pid.isdigit() and not ffmpeg.pid_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)


def _source_file(storage: Storage, key: str, work: Path) -> Path:
    if isinstance(storage, LocalStorage):
        return storage.path(key)  # read in place: no copy of a large file
    target = work / "source"
    with target.open("wb") as out:
        for chunk in storage.open(key):
            out.write(chunk)
    return target


def _checked_source(ctx: AppContext, video: Video, work: Path) -> tuple[Path, MediaInfo]:
    """The video's file, probed and held to the limits. Raises MediaRejected."""
    assert video.source_key is not None
    limits = media_limits(ctx.settings)
    if video.source_bytes is not None:
        check_size(video.source_bytes, limits)  # before fetching gigabytes from storage
    source = _source_file(ctx.storage, video.source_key, work)
    info = probe(source)
    validate(info, limits)
    return source, info


# How much of an HEVC source's copy is stored before HEVC clients are offered it: three
# segments, so a player has its buffer's worth while the rest is stored (much faster than it
# plays).
HEVC_START_S = 3 * SEGMENT_SECONDS
# How often the copy's output is looked at for new segments to store.
_POLL_S = 0.01


def _store_dir(storage: Storage, directory: Path, prefix: str, *, move: bool = False) -> int:
    """Store every file of an output directory under `prefix`; returns the bytes stored.
    Segments are stored at once; playlists go last, so a reader never finds a playlist naming a
    segment not yet stored. With `move`, local storage takes the files by a rename instead of a
    copy (the directory is left without them)."""
    files = [p for p in directory.rglob("*") if p.is_file()]
    segments = [p for p in files if p.suffix != ".m3u8"]
    playlists = [p for p in files if p.suffix == ".m3u8"]

    def store(path: Path) -> int:
        key = f"{prefix}/{path.relative_to(directory).as_posix()}"
        return _store_file(storage, path, key, move=move)

    with ThreadPoolExecutor(STORE_THREADS) as pool:
        total = sum(pool.map(store, segments))
    return total + sum(store(path) for path in playlists)


def _store_file(storage: Storage, path: Path, key: str, *, move: bool = False) -> int:
    if move and isinstance(storage, LocalStorage):
        moved = _move_in(storage, path, key)
        if moved is not None:
            return moved
    with path.open("rb") as handle:
        return storage.put(key, handle, content_type=content_type(path.name))


def _move_in(storage: LocalStorage, path: Path, key: str) -> int | None:
    """Rename a finished output onto its key: whole at once, as `LocalStorage.put` leaves its
    objects, without copying it. None when the work directory is on another filesystem."""
    target = storage.path(key)
    size = path.stat().st_size
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            return None
        raise StorageError(f"cannot store {key!r}: {exc}") from exc
    return size


def _save_rendition(
    session: Session,
    video: Video,
    name: str,
    kind: RenditionKind,
    key: str,
    *,
    size: tuple[int, int] | None = None,
    bitrate_kbps: int | None = None,
    size_bytes: int | None = None,
    codec: str | None = None,
    video_range: str | None = None,
) -> None:
    values = {
        "kind": kind,
        "source_version": video.source_version,
        "storage_key": key,
        "width": size[0] if size else None,
        "height": size[1] if size else None,
        "bitrate_kbps": bitrate_kbps,
        "size_bytes": size_bytes,
        "codec": codec,
        "video_range": video_range,
        "updated_at": utcnow(),
    }
    session.execute(
        insert(Rendition)
        .values(id=uuid.uuid4(), org_id=video.org_id, video_id=video.id, name=name, **values)
        .on_conflict_do_update(index_elements=["video_id", "name"], set_=values)
    )


def _set_progress(ctx: AppContext, video_id: uuid.UUID, value: int) -> None:
    """Move progress forward (never back), outside the step's transaction, so readers see it
    while the step runs."""
    with commit_apart(ctx.db.engine, EarlyCommit.JOB_PROGRESS) as connection:
        connection.execute(
            update(Video)
            .where(Video.id == video_id)
            .values(progress=func.greatest(Video.progress, value))
        )


class _Progress:
    """ffmpeg's percent done, mapped onto a span of the overall progress, written at most once
    a second."""

    def __init__(self, ctx: AppContext, video_id: uuid.UUID, start: int, end: int) -> None:
        self.ctx = ctx
        self.video_id = video_id
        self.start = start
        self.end = end
        self.last_write = 0.0

    def __call__(self, percent: int) -> None:
        now = time.monotonic()
        if now - self.last_write < 1.0 and percent < 100:
            return
        self.last_write = now
        _set_progress(
            self.ctx, self.video_id, self.start + (self.end - self.start) * percent // 100
        )


class _Stopwatch:
    """Seconds spent in each part of a step, logged with the line that closes it: where the
    time to playable goes, per video, in the worker's own logs."""

    def __init__(self) -> None:
        self.started_at = time.time()
        self.last = time.monotonic()
        self.parts: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.parts[name] = self.parts.get(name, 0.0) + now - self.last
        self.last = now

    def fields(self) -> dict[str, float]:
        return {
            "step_started_at": round(self.started_at, 3),
            **{f"{name}_s": round(seconds, 3) for name, seconds in self.parts.items()},
        }


def _run_ffmpeg(args: list[str], info: MediaInfo, progress: _Progress, *, limit: timedelta) -> None:
    ffmpeg.run(
        args,
        duration_s=info.duration_s,
        on_progress=progress,
        # Inside the queue's hard limit, so a step that runs too long ends with a reason.
        timeout_s=min(max(120.0, info.duration_s * 20), limit.total_seconds()),
    )


def _step(
    session: Session, payload: dict[str, Any], body: Callable[[AppContext, Path], None]
) -> None:
    ctx = current()
    try:
        with _work_dir(ctx) as work:
            body(ctx, work)
    except _Superseded:
        session.rollback()
        log.info("video %s: step skipped, the video moved on", payload.get("video_id"))
    except MediaRejected as exc:
        session.rollback()
        _fail(session, payload, exc.code, exc.detail)
    except ffmpeg.FFmpegFailed as exc:
        session.rollback()
        log.warning("ffmpeg failed for video %s: %s", payload.get("video_id"), exc.tail)
        _fail(session, payload, "unprocessable", "The video could not be converted.")
    except TimeoutError:
        session.rollback()
        _fail(session, payload, "processing_timeout", "Converting the video took too long.")
    except (StorageError, OperationalError, OSError) as exc:
        # Storage or database trouble passes; the outbox retries with backoff.
        raise outbox.TransientError(f"{type(exc).__name__}: {exc}") from exc


def _fail(session: Session, payload: dict[str, Any], code: str, detail: str) -> None:
    """The video cannot be processed: say why, and tell its author. A video that plays already
    is not taken away: it becomes `ready` with what it goes without."""
    video = session.get(
        Video, uuid.UUID(payload["video_id"]), populate_existing=True, with_for_update=True
    )
    if video is None or video.source_version != payload["version"]:
        return
    if video.deleted_at is not None:
        return
    if video.status in (VideoStatus.READY, VideoStatus.FAILED):
        return
    if video.status is VideoStatus.PLAYABLE:
        _become_ready(session, video, cause=code)
        return
    mark_failed(session, video, code, detail)


def mark_failed(session: Session, video: Video, code: str, detail: str) -> None:
    """The video's current file cannot become a video: `failed` with a code the app switches
    on and words for its author, who is told (VideoFailed). A new upload may follow."""
    video.status = VideoStatus.FAILED
    video.progress = 0
    video.failure_code = code
    video.failure_detail = detail[:500]
    events.publish(
        session,
        events.VideoFailed(
            org_id=video.org_id,
            video_id=video.id,
            owner_id=video.owner_id,
            title=video.title,
            source_version=video.source_version,
            detail=detail,
        ),
    )
    log.info("video %s failed: %s", video.id, code)


def _give_up(session: Session, payload: dict[str, Any], reason: str) -> None:
    # The outbox commits what this does, once its savepoint is released.
    _fail(session, payload, "processing_failed", "Processing the video failed; try again later.")


def _missing_outputs(session: Session, video: Video) -> list[str]:
    """The later outputs of the video's current file that have no rendition."""
    made = set(
        session.scalars(
            select(Rendition.name).where(
                Rendition.org_id == video.org_id,
                Rendition.video_id == video.id,
                Rendition.source_version == video.source_version,
            )
        )
    )
    return [name for name, rendition in LATER_OUTPUTS.items() if rendition not in made]


def _become_ready(session: Session, video: Video, *, cause: str | None = None) -> None:
    """The final state of a video that plays: `ready`, naming any output it goes without.

    The author is not told separately: the video plays and was announced when it became
    playable; apps read `missing` (a poster placeholder, no scrubbing thumbnails). Packages
    that work on a finished video hear of it (VideoBecameReady): its speech is transcribed.
    """
    missing = _missing_outputs(session, video)
    video.status = VideoStatus.READY
    video.ready_at = utcnow()
    video.progress = 100
    video.missing = missing
    events.publish(
        session,
        events.VideoBecameReady(
            org_id=video.org_id,
            video_id=video.id,
            owner_id=video.owner_id,
            source_version=video.source_version,
        ),
    )
    if missing:
        log.error(
            "video %s ready without %s%s",
            video.id,
            ", ".join(missing),
            f" ({cause})" if cause else "",
        )


@contextmanager
def _optional(session: Session, video_id: uuid.UUID, output: str) -> Iterator[None]:
    """One output of the ladder step: if ffmpeg cannot make it, the others are still made.
    Storage and database errors pass through, to be retried."""
    try:
        yield
    except (ffmpeg.FFmpegFailed, TimeoutError) as exc:
        session.rollback()
        detail = exc.tail[-300:] if isinstance(exc, ffmpeg.FFmpegFailed) else str(exc)
        log.warning("video %s: no %s: %s: %s", video_id, output, type(exc).__name__, detail)


# -- video.process --------------------------------------------------------------------------------


def process(session: Session, payload: dict[str, Any]) -> None:
    def body(ctx: AppContext, work: Path) -> None:
        watch = _Stopwatch()
        video = _load(session, payload, VideoStatus.PROCESSING)
        commit_early(session, EarlyCommit.BEFORE_LONG_WORK)
        watch.lap("load")
        settings = ctx.settings
        source, info = _checked_source(ctx, video, work)
        video.duration_ms = round(info.duration_s * 1000)
        video.width = info.video.display_width
        video.height = info.video.display_height
        video.progress = max(video.progress, _PROBED)
        commit_early(session, EarlyCommit.JOB_PROGRESS)
        watch.lap("probe")

        progress = _Progress(ctx, video.id, _PROBED, _PLAYABLE)
        prefix = video.media_prefix
        binary = ffmpeg.ffmpeg_binary(settings.ffmpeg_binary)
        hevc = None
        if info.can_copy_hevc:
            # First and alone, so nothing competes with the copy: the poster is made beside the
            # H.264 encode that follows it, and comes at `playable`.
            hevc = _hevc_first(ctx, session, payload, video, source, info, work, watch)
            watch.lap("hevc")
        with ThreadPoolExecutor(1) as beside:
            # The poster is made while the first rendition is: both are there when it plays.
            poster = beside.submit(_early_poster, binary, source, info, work, video.id)
            if info.can_remux:
                _remux_first(ctx, session, video, source, info, work, progress, watch)
            else:
                _encode_first(ctx, session, video, source, info, work, progress, watch, hevc=hevc)
            _save_early_poster(ctx, session, video, poster.result())
        watch.lap("poster")
        video = _load(session, payload, VideoStatus.PROCESSING)
        video.status = VideoStatus.PLAYABLE
        video.playable_at = utcnow()
        video.progress = max(video.progress, _PLAYABLE)
        events.publish(
            session,
            events.VideoBecamePlayable(
                org_id=video.org_id,
                video_id=video.id,
                owner_id=video.owner_id,
                title=video.title,
                source_version=video.source_version,
            ),
        )
        _record_step(session, video, LADDER_TASK)
        commit_early(session, EarlyCommit.MEDIA_OUTPUT)
        watch.lap("commit")
        first = "remux" if info.can_remux else "hevc_copy" if info.can_copy_hevc else "encode"
        log.info(
            "video %s playable (%s)",
            video.id,
            first,
            extra={"video_id": str(video.id), "first": first, **watch.fields()},
        )
        if info.can_remux:
            _fast_start_copy(ctx, session, payload, source, info, work, prefix=prefix)

    _step(session, payload, body)


def _remux_first(
    ctx: AppContext,
    session: Session,
    video: Video,
    source: Path,
    info: MediaInfo,
    work: Path,
    progress: _Progress,
    watch: _Stopwatch,
) -> None:
    """The first rendition of an 8-bit H.264 SDR source: the source itself, copied into HLS."""
    out = work / "first"
    out.mkdir()
    prefix = f"{video.media_prefix}/first"
    binary = ffmpeg.ffmpeg_binary(ctx.settings.ffmpeg_binary)
    _run_ffmpeg(remux_command(binary, source, out, info), info, progress, limit=FAST_LIMIT)
    watch.lap("ffmpeg")
    stored = _store_dir(ctx.storage, out, prefix, move=True)
    watch.lap("store")
    _save_rendition(
        session,
        video,
        "first",
        RenditionKind.HLS,
        f"{prefix}/index.m3u8",
        size=(info.video.display_width, info.video.display_height),
        bitrate_kbps=round(info.size_bytes * 8 / 1000 / max(info.duration_s, 0.001)),
        size_bytes=stored,
        codec=_source_codecs(info),
        video_range="sdr",
    )


def _encode_first(
    ctx: AppContext,
    session: Session,
    video: Video,
    source: Path,
    info: MediaInfo,
    work: Path,
    progress: _Progress,
    watch: _Stopwatch,
    *,
    hevc: Variant | None = None,
) -> None:
    """The first H.264 SDR rendition encoded with the fastest preset (the ladder replaces it
    minutes later): one rung up to 540p, or, after an HEVC source's copy (`hevc`, its variant
    of the first master playlist), the lowest rung, as the players that decode HEVC already
    play the copy and the others wait for this one."""
    rung = h264_after_hevc_rung(info.video) if info.can_copy_hevc else first_rung(info.video)
    out = work / "first"
    out.mkdir()
    prefix = f"{video.media_prefix}/first"
    binary = ffmpeg.ffmpeg_binary(ctx.settings.ffmpeg_binary)
    args = ladder_command(binary, source, out, info, [rung], preset="ultrafast")
    _run_ffmpeg(args, info, progress, limit=FAST_LIMIT)
    watch.lap("ffmpeg")
    (out / "master.m3u8").unlink(missing_ok=True)
    rung_dir = out / rung.name
    average_bps, peak_bps = playlist_bitrates(rung_dir / "index.m3u8")
    made_codecs = _init_codecs(rung_dir)
    stored = _store_dir(ctx.storage, rung_dir, prefix, move=True)
    watch.lap("store")
    size = output_size(info.video, rung.short_side)
    _save_rendition(
        session,
        video,
        "first",
        RenditionKind.HLS,
        f"{prefix}/index.m3u8",
        size=size,
        bitrate_kbps=rung.video_kbps,
        size_bytes=stored,
        codec=made_codecs.attribute,
        video_range="sdr",
    )
    if hevc is not None:
        # Every player now finds a variant it decodes in the same master playlist.
        h264 = Variant(
            "first/index.m3u8",
            peak_bps,
            average_bps,
            *size,
            made_codecs.attribute,
            "SDR",
            output_fps(info.video),
        )
        _store_first_master(ctx, session, video, [hevc, h264])


def _hevc_first(
    ctx: AppContext,
    session: Session,
    payload: dict[str, Any],
    video: Video,
    source: Path,
    info: MediaInfo,
    work: Path,
    watch: _Stopwatch,
) -> Variant:
    """An HEVC source (an iPhone's, HDR or not) copied into HLS, tagged `hvc1`, and a master
    playlist over it: players that decode HEVC play it within seconds, HDR kept, while the
    H.264 SDR rendition for the others is encoded. The video stays `processing` (it does not
    play for every client yet); its `playback` lists the HEVC rendition. Returns the copy's
    variant of the master playlist.

    The copy is stored as ffmpeg makes it (`GrowingRendition`), and HEVC clients are offered it
    once its first HEVC_START_S are stored, while the rest is: a large file's copy plays
    before it is all stored."""
    out = work / "hevc"
    out.mkdir()
    prefix = f"{video.media_prefix}/hevc"
    binary = ffmpeg.ffmpeg_binary(ctx.settings.ffmpeg_binary)
    size = (info.video.display_width, info.video.display_height)
    codec = _source_codecs(info, audio_encoded=info.audio is not None and info.audio.codec != "aac")
    video_range = range_of(info.video.colour.transfer)

    def record(rendition: GrowingRendition) -> Variant:
        average_bps, peak_bps = rendition.bitrates()
        _save_rendition(
            session,
            video,
            "hevc",
            RenditionKind.HLS,
            rendition.playlist_key,
            size=size,
            bitrate_kbps=round(average_bps / 1000),
            size_bytes=rendition.stored_bytes,
            codec=codec,
            video_range=video_range.lower(),
        )
        fps = output_fps(info.video)
        variant = Variant("hevc/index.m3u8", peak_bps, average_bps, *size, codec, video_range, fps)
        _store_first_master(ctx, session, video, [variant])
        _load(session, payload, VideoStatus.PROCESSING)  # still this file's, locked until commit
        commit_early(session, EarlyCommit.MEDIA_OUTPUT)
        return variant

    # The target duration every version of the growing playlist declares: segments are cut at
    # the source's key frames, so none outlasts SEGMENT_SECONDS plus the longest gap between
    # two. A file whose index does not tell is published only whole.
    gap = longest_keyframe_gap_s(source)
    target_s = math.ceil(SEGMENT_SECONDS + gap) if gap is not None else SEGMENT_SECONDS
    # Run again after a storage error, the step may find the copy offered: players may hold its
    # playlist, so it is published again only whole, never shorter than they saw.
    partial = gap is not None and not _has_rendition(ctx, video, "hevc")
    offered = False
    stop = threading.Event()
    with (
        GrowingRendition(
            ctx.storage,
            out,
            prefix,
            lambda path, key: _store_file(ctx.storage, path, key, move=True),
            partial=partial,
            target_s=target_s,
            first_s=HEVC_START_S,
        ) as rendition,
        ThreadPoolExecutor(1) as runner,
    ):
        copying = runner.submit(
            ffmpeg.run,
            hevc_copy_command(binary, source, out, info),
            timeout_s=min(max(120.0, info.duration_s * 20), FAST_LIMIT.total_seconds()),
            cancel=stop,
        )
        try:
            while not wait([copying], timeout=_POLL_S).done:
                rendition.poll()
                if partial and not offered and rendition.stored_s >= HEVC_START_S:
                    rendition.publish_stored()  # all that the offer counted, named
                    record(rendition)
                    offered = True
                    watch.lap("hevc_offered")
                    _log_hevc_playable(video, video_range, rendition.stored_s)
            try:
                copying.result()
                rendition.finish()
            except (ffmpeg.FFmpegFailed, TimeoutError):
                rendition.end_here()  # the video fails; its playlist must not wait forever
                raise
        finally:
            stop.set()  # the step ends early (storage, database, the video deleted): so does ffmpeg
    variant = record(rendition)  # the whole copy's size and bit rates
    if not offered:
        _log_hevc_playable(video, video_range, rendition.stored_s)
    return variant


def _has_rendition(ctx: AppContext, video: Video, name: str) -> bool:
    """Whether the video's current file has the rendition, read on a connection of its own:
    the step's session holds no transaction while ffmpeg runs."""
    with ctx.db.engine.connect() as connection:
        return bool(
            connection.scalar(
                select(
                    exists().where(
                        Rendition.org_id == video.org_id,
                        Rendition.video_id == video.id,
                        Rendition.name == name,
                        Rendition.source_version == video.source_version,
                    )
                )
            )
        )


def _log_hevc_playable(video: Video, video_range: str, stored_s: float) -> None:
    log.info(
        "video %s playable for HEVC (%s, %.0f s stored)",
        video.id,
        video_range,
        stored_s,
        extra={"video_id": str(video.id)},
    )


def _source_codecs(info: MediaInfo, *, audio_encoded: bool = False) -> str:
    audio = None
    if info.audio is not None:
        audio = "mp4a.40.2" if audio_encoded else info.audio.codec_string
    return Codecs(info.video.codec_string, audio).attribute


def _init_codecs(rung_dir: Path) -> Codecs:
    init = next(rung_dir.glob("init*.mp4"), None)
    if init is None:
        raise ffmpeg.FFmpegFailed(0, f"no init segment in {rung_dir.name}")
    return file_codecs(init)


FIRST_MASTER_NAME = "first_master"


def _store_first_master(
    ctx: AppContext, session: Session, video: Video, variants: list[Variant]
) -> None:
    """The master playlist over an HEVC source's first renditions, rewritten as they come."""
    key = f"{video.media_prefix}/first_master.m3u8"
    text = master_playlist(variants).encode()
    ctx.storage.put(key, io.BytesIO(text), content_type=content_type(key))
    _save_rendition(session, video, FIRST_MASTER_NAME, RenditionKind.MASTER, key)


def _hevc_variant(ctx: AppContext, video: Video) -> Variant:
    """The HEVC entry of the first master playlist, as it was written with the HEVC copy (read
    back by the ladder, a later job)."""
    key = f"{video.media_prefix}/first_master.m3u8"
    text = b"".join(ctx.storage.open(key)).decode()
    found = [variant for variant in parse_master(text) if variant.uri.startswith("hevc/")]
    if not found:
        raise StorageError(f"{key!r} lists no HEVC variant")
    return found[0]


@dataclass(frozen=True)
class _EarlyPoster:
    path: Path
    made: PosterResult


def _early_poster(
    binary: str, source: Path, info: MediaInfo, work: Path, video_id: uuid.UUID
) -> _EarlyPoster | None:
    """The poster at playable, or None when no picture could be taken (the ladder tries again)."""
    out = work / "poster-first.jpg"
    try:
        made = make_early_poster(binary, source, info, out)
    except (ffmpeg.FFmpegFailed, TimeoutError) as exc:
        detail = exc.tail[-300:] if isinstance(exc, ffmpeg.FFmpegFailed) else str(exc)
        log.warning("video %s: no poster at playable: %s", video_id, detail)
        return None
    return _EarlyPoster(out, made)


def _save_early_poster(
    ctx: AppContext, session: Session, video: Video, poster: _EarlyPoster | None
) -> None:
    """Store the poster at playable, under a key of its own: the ladder's poster, if better,
    replaces it under another key, so no cache keeps showing this one for the new URL."""
    if poster is None:
        return
    key = f"{video.media_prefix}/poster-first.jpg"
    stored = _store_file(ctx.storage, poster.path, key, move=True)
    _save_rendition(
        session,
        video,
        "poster",
        RenditionKind.POSTER,
        key,
        size=(poster.made.width, poster.made.height),
        size_bytes=stored,
    )


def _fast_start_copy(
    ctx: AppContext,
    session: Session,
    payload: dict[str, Any],
    source: Path,
    info: MediaInfo,
    work: Path,
    *,
    prefix: str,
) -> None:
    """The remuxed source as a fast-start MP4 (`source_mp4`), so it can be downloaded before the
    ladder's offline MP4 exists. Made after the video plays: nobody waits for it to watch. If
    ffmpeg cannot make it, the video goes without it until the ladder's MP4 is there; a file
    replaced meanwhile gets none from this step (`_load` says it moved on)."""
    key = f"{prefix}/source.mp4"
    target = work / "fast.mp4"
    binary = ffmpeg.ffmpeg_binary(ctx.settings.ffmpeg_binary)
    video_id = uuid.UUID(payload["video_id"])
    with _optional(session, video_id, "source_mp4"):
        ffmpeg.run(
            fast_start_command(binary, source, target, info),
            timeout_s=min(max(120.0, info.duration_s * 20), FAST_LIMIT.total_seconds()),
        )
        mp4_bytes = _store_file(ctx.storage, target, key, move=True)
        video = _load(session, payload, VideoStatus.PLAYABLE, VideoStatus.READY)
        _save_rendition(
            session,
            video,
            "source_mp4",
            RenditionKind.MP4,
            key,
            size=(info.video.display_width, info.video.display_height),
            size_bytes=mp4_bytes,
        )
        commit_early(session, EarlyCommit.MEDIA_OUTPUT)


# -- video.ladder ---------------------------------------------------------------------------------


def _offline_mp4(binary: str, rung_dir: Path, out: Path) -> None:
    """The offline MP4 from a rung's fMP4 segments: its init file and segments concatenated
    form a fragmented MP4, remuxed (not re-encoded) into a fast-start one."""
    fragmented = out.with_suffix(".frag.mp4")
    init = next(rung_dir.glob("init*.mp4"), None)
    if init is None:
        raise ffmpeg.FFmpegFailed(0, f"no init segment in {rung_dir.name}")
    with fragmented.open("wb") as target:
        for part in [init, *sorted(rung_dir.glob("seg-*.m4s"))]:
            with part.open("rb") as handle:
                shutil.copyfileobj(handle, target)
    ffmpeg.run(
        [binary, "-hide_banner", "-nostdin", "-y", "-i", str(fragmented),
         "-c", "copy", "-movflags", "+faststart+write_colr", str(out)],
        timeout_s=300,
    )  # fmt: skip
    fragmented.unlink()


def ladder(session: Session, payload: dict[str, Any]) -> None:
    def body(ctx: AppContext, work: Path) -> None:
        video = _load(session, payload, VideoStatus.PLAYABLE)
        video_id = video.id
        prefix = video.media_prefix
        commit_early(session, EarlyCommit.BEFORE_LONG_WORK)
        # A file outside the limits now ends in `_step`'s MediaRejected: a video that plays
        # already becomes ready from its first rendition, and nothing more is made.
        source, info = _checked_source(ctx, video, work)
        settings = ctx.settings
        binary = ffmpeg.ffmpeg_binary(settings.ffmpeg_binary)

        with _optional(session, video_id, "poster"):
            poster = make_poster(binary, source, info, work / "poster.jpg")
            if _improves_poster(ctx, video, poster, work):
                poster_bytes = _store_file(ctx.storage, work / "poster.jpg", f"{prefix}/poster.jpg")
                _save_rendition(
                    session,
                    video,
                    "poster",
                    RenditionKind.POSTER,
                    f"{prefix}/poster.jpg",
                    size=(poster.width, poster.height),
                    size_bytes=poster_bytes,
                )
                commit_early(session, EarlyCommit.MEDIA_OUTPUT)

        rungs = ladder_for(info.video)
        out = work / "hls"
        out.mkdir()
        laddered = False
        with _optional(session, video_id, "ladder"):
            args = ladder_command(binary, source, out, info, rungs, preset=settings.media_preset)
            progress = _Progress(ctx, video_id, _PLAYABLE, _LADDER_DONE)
            _run_ffmpeg(args, info, progress, limit=LADDER_LIMIT)
            hevc = _current(session, video, "hevc")
            variants = [_hevc_variant(ctx, video)] if hevc is not None else []
            for rung in rungs:
                rung_dir = out / rung.name
                rung_codecs = _init_codecs(rung_dir)
                size = output_size(info.video, rung.short_side)
                if hevc is not None:
                    average_bps, peak_bps = playlist_bitrates(rung_dir / "index.m3u8")
                    variants.append(
                        Variant(
                            f"{rung.name}/index.m3u8",
                            peak_bps,
                            average_bps,
                            *size,
                            rung_codecs.attribute,
                            "SDR",
                            output_fps(info.video),
                        )
                    )
                stored = _store_dir(ctx.storage, rung_dir, f"{prefix}/hls/{rung.name}")
                _save_rendition(
                    session,
                    video,
                    rung.name,
                    RenditionKind.HLS,
                    f"{prefix}/hls/{rung.name}/index.m3u8",
                    size=size,
                    bitrate_kbps=rung.video_kbps,
                    size_bytes=stored,
                    codec=rung_codecs.attribute,
                    video_range="sdr",
                )
            if hevc is not None:
                # HEVC first, for the players that decode it, then the H.264 SDR rungs.
                (out / "master.m3u8").write_text(master_playlist(variants), encoding="utf-8")
            _store_file(ctx.storage, out / "master.m3u8", f"{prefix}/hls/master.m3u8")
            _save_rendition(
                session, video, "master", RenditionKind.MASTER, f"{prefix}/hls/master.m3u8"
            )
            commit_early(session, EarlyCommit.MEDIA_OUTPUT)
            laddered = True

        if laddered:  # the offline MP4 is the ladder's own rung, not a second encode
            with _optional(session, video_id, "mp4"):
                offline = offline_rung(rungs)
                offline_codecs = _init_codecs(out / offline.name)
                _offline_mp4(binary, out / offline.name, work / "offline.mp4")
                mp4_bytes = _store_file(ctx.storage, work / "offline.mp4", f"{prefix}/offline.mp4")
                _save_rendition(
                    session,
                    video,
                    "mp4",
                    RenditionKind.MP4,
                    f"{prefix}/offline.mp4",
                    size=output_size(info.video, offline.short_side),
                    bitrate_kbps=offline.video_kbps,
                    size_bytes=mp4_bytes,
                    codec=offline_codecs.attribute,
                    video_range="sdr",
                )
                commit_early(session, EarlyCommit.MEDIA_OUTPUT)
        _set_progress(ctx, video_id, _MP4_DONE)

        with _optional(session, video_id, "storyboard"):
            (work / "storyboard").mkdir()
            storyboard = make_storyboard(binary, source, info, work / "storyboard")
            _store_file(ctx.storage, storyboard.sprite_path, f"{prefix}/storyboard/sprite.jpg")
            _store_file(ctx.storage, storyboard.vtt_path, f"{prefix}/storyboard/storyboard.vtt")
            _save_rendition(
                session,
                video,
                "storyboard",
                RenditionKind.STORYBOARD,
                f"{prefix}/storyboard/storyboard.vtt",
                size=(storyboard.tile_width, storyboard.tile_height),
            )
            commit_early(session, EarlyCommit.MEDIA_OUTPUT)
        _set_progress(ctx, video_id, _STORYBOARD_DONE)

        video = _load(session, payload, VideoStatus.PLAYABLE)
        _become_ready(session, video)
        session.flush()  # the outbox commits the step with its completion
        log.info("video %s ready: %s", video_id, ", ".join(rung.name for rung in rungs))

    _step(session, payload, body)


def _current(session: Session, video: Video, name: str) -> Rendition | None:
    return session.scalars(
        select(Rendition).where(
            Rendition.org_id == video.org_id,
            Rendition.video_id == video.id,
            Rendition.name == name,
            Rendition.source_version == video.source_version,
        )
    ).one_or_none()


def _improves_poster(ctx: AppContext, video: Video, poster: PosterResult, work: Path) -> bool:
    """Whether the ladder's poster (a typical frame a third of the way in, past intros) replaces
    the one made at playable (from the first seconds' key frames): unless it looks worse, as
    when the early one is a good picture and this one is black or flat."""
    if poster.luma is None or poster.luma.looks_good:
        return True
    early_key = f"{video.media_prefix}/poster-first.jpg"
    early = work / "poster-first.jpg"
    try:
        with early.open("wb") as target:
            for chunk in ctx.storage.open(early_key):
                target.write(chunk)
        early_luma = measure_luma(early)
    except (ObjectNotFound, ffmpeg.FFmpegFailed):
        return True
    return not early_luma.looks_good and poster.luma.score >= early_luma.score


# -- Settling videos whose ladder ended ------------------------------------------------------------


def settle_playable(db: Database, *, grace: timedelta = LADDER_GRACE, batch: int = 100) -> int:
    """Make `ready` the playable videos whose ladder work has ended without doing so: its outbox
    row failed (and its give-up did not take), or none is pending or running for the current
    file `grace` after it became playable (the row was deleted). They get the same `missing`
    list as from the ladder. Returns how many were settled.

    Each video is claimed (FOR UPDATE SKIP LOCKED) in the transaction that settles it.
    """
    ladder_key = func.concat(*_step_key(LADDER_TASK, Video.id, Video.source_version))
    ladder_job = and_(OutboxJob.dedup_key == ladder_key, OutboxJob.task == LADDER_TASK)
    in_flight = exists().where(
        ladder_job, OutboxJob.status.in_([OutboxStatus.PENDING, OutboxStatus.RUNNING])
    )
    failed = exists().where(ladder_job, OutboxJob.status == OutboxStatus.FAILED)
    settled = 0
    with db.session() as session:
        while settled < batch:
            video = session.scalars(
                select(Video)
                .where(
                    Video.status == VideoStatus.PLAYABLE,
                    # A deleted video's ladder resumes if it is restored (`resume`).
                    Video.deleted_at.is_(None),
                    ~in_flight,
                    failed
                    | (func.coalesce(Video.playable_at, Video.updated_at) < func.now() - grace),
                )
                .order_by(Video.playable_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            ).one_or_none()
            if video is None:
                session.rollback()
                break
            _become_ready(session, video, cause="ladder_ended")
            commit_early(session, EarlyCommit.BATCH_ITEM)
            settled += 1
    return settled


# -- A restored video ----------------------------------------------------------------------------


def resume(session: Session, video: Video, *, deleted_at: datetime) -> bool:
    """The video was just restored: the step its processing was at runs again if it stood
    down while the video was deleted (`_load`). Returns whether one was put back."""
    step = {VideoStatus.PROCESSING: PROCESS_TASK, VideoStatus.PLAYABLE: LADDER_TASK}.get(
        video.status
    )
    if step is None:
        return False
    key = "".join(str(part) for part in _step_key(step, video.id, video.source_version))
    return outbox.run_again(session, key, finished_since=deleted_at)


# Fair-shared: one organisation's bulk upload waits behind its own share, not everyone's.
outbox.tasks.register(
    PROCESS_TASK, queue="media-fast", max_attempts=3, on_give_up=_give_up, fair_share=True
)(process)
outbox.tasks.register(
    LADDER_TASK, queue="media", max_attempts=3, on_give_up=_give_up, fair_share=True
)(ladder)
