"""Uploads: resumable (tus) through the API, or straight to S3 in parts.

An upload belongs to one draft video and its author. Bytes go to storage as they arrive
(`Storage.append_upload`); PostgreSQL records how many are stored, so a phone can resume from
the server's offset after any failure, from any API process. Should the machine go down before
its page cache reached the disk, the store reports fewer bytes than recorded and the offset
moves back to them (`Storage.held_upload_bytes`). When the last byte is stored,
the object becomes the video's source and processing is recorded in the same transaction;
an upload of zero bytes is complete, and processed, from its creation.

No database transaction stays open while bytes stream: the row is read, the bytes are stored,
then the new offset is written with a check that nobody else moved it.
"""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import IO, cast

from redis import Redis, RedisError
from redis.lock import Lock
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from fieldcast.accounts.authz import Principal, authorize
from fieldcast.db import Database, EarlyCommit, commit_early, on_commit, utcnow
from fieldcast.errors import Conflict, DomainError, InvalidInput, NotFound
from fieldcast.uploads.models import Upload, UploadProtocol
from fieldcast.videos import processing
from fieldcast.videos.models import Video, VideoStatus
from fieldcast.videos.services import get_video
from media.storage import Storage, StorageError

log = logging.getLogger(__name__)

LOCK_TTL_S = 60
DIRECT_PART_SIZE = 8 * 1024 * 1024
MAX_PARTS = 10_000
# Presigned part URLs are handed out in batches; a client asks again for the ones that expired.
MAX_PART_URLS = 1000


class OffsetMismatch(Conflict):
    code = "upload_offset_mismatch"
    title = "Upload-Offset does not match the bytes received"


class UploadExpired(DomainError):
    status = 410
    code = "upload_expired"
    title = "The upload expired; start a new one"


class UploadTooLarge(DomainError):
    status = 413
    code = "upload_too_large"
    title = "The upload is larger than allowed"


class UploadLocked(DomainError):
    status = 423
    code = "upload_locked"
    title = "Another request is writing to this upload"


class ChecksumMismatch(DomainError):
    status = 460
    code = "checksum_mismatch"
    title = "The chunk does not match its Upload-Checksum"


class UploadCompleted(Conflict):
    code = "upload_completed"
    title = "The upload is complete"


# A draft can receive a file before its first upload completes, or again after it failed.
_ACCEPTS_UPLOADS = {VideoStatus.AWAITING_UPLOAD, VideoStatus.UPLOADING, VideoStatus.FAILED}


def _source_key(video: Video, upload_id: uuid.UUID) -> str:
    # One key per upload: a new file for a failed video never overwrites the one being read.
    return f"org/{video.org_id}/videos/{video.id}/source/{upload_id}"


def _uploadable_video(session: Session, principal: Principal, video_id: uuid.UUID) -> Video:
    video = get_video(session, principal, video_id)
    authorize(principal, "video.upload", video)
    if video.status not in _ACCEPTS_UPLOADS:
        raise Conflict(
            f"The video already has its file (status {video.status.value}).",
            code="video_already_uploaded",
        )
    return video


def _open_uploads(session: Session, video: Video) -> list[Upload]:
    return list(
        session.scalars(
            select(Upload).where(
                Upload.org_id == video.org_id,
                Upload.video_id == video.id,
                Upload.completed_at.is_(None),
            )
        )
    )


def create_upload(
    session: Session,
    principal: Principal,
    storage: Storage,
    *,
    video_id: uuid.UUID,
    length: int,
    max_size: int,
    expires_in: timedelta,
    filename: str | None = None,
    filetype: str | None = None,
    protocol: UploadProtocol = UploadProtocol.TUS,
) -> Upload:
    """Start an upload of `length` bytes for a draft. An unfinished earlier one is replaced:
    a phone that lost its upload URL (reinstalled app, cleared cache) simply starts again."""
    video = _uploadable_video(session, principal, video_id)
    if length < 0:
        raise InvalidInput("Upload-Length must not be negative.")
    if length > max_size:
        raise UploadTooLarge(f"The file is {length} bytes; the limit is {max_size} bytes.")
    replaced = _open_uploads(session, video)
    upload_id = uuid.uuid4()
    key = _source_key(video, upload_id)
    if protocol is UploadProtocol.TUS:
        state = storage.begin_upload(str(upload_id), key, content_type=filetype)
    else:
        try:
            state = {"upload_id": storage.begin_direct_upload(key, content_type=filetype)}
        except StorageError:
            session.rollback()
            raise Conflict(
                "Direct uploads need S3 storage; use the tus endpoint /api/v1/uploads.",
                code="direct_uploads_unavailable",
            ) from None
    upload = Upload(
        id=upload_id,
        org_id=video.org_id,
        video_id=video.id,
        owner_id=principal.user_id,
        protocol=protocol,
        length=length,
        offset=0,
        storage_key=key,
        state=state,
        filename=(filename or "")[:255] or None,
        filetype=(filetype or "")[:127] or None,
        expires_at=utcnow() + expires_in,
    )
    session.add(upload)
    for old in replaced:
        session.delete(old)
    video.status = VideoStatus.UPLOADING
    video.progress = 0
    video.failure_code = None
    video.failure_detail = None
    if length == 0 and protocol is UploadProtocol.TUS:
        # Complete the moment it exists: no chunk will ever finish it, so processing is
        # recorded now, in this transaction (and fails the empty file at once).
        session.flush()
        finish(session, storage, upload)
    else:
        session.flush()
    for old in replaced:
        on_commit(session, partial(_discard, storage, old))
    return upload


def _discard(storage: Storage, upload: Upload) -> None:
    try:
        if upload.protocol is UploadProtocol.TUS:
            storage.abort_upload(upload.state)
        else:
            storage.abort_direct_upload(upload.storage_key, upload.state["upload_id"])
    except StorageError:
        log.warning("could not discard the stored part of upload %s", upload.id, exc_info=True)


def get_upload(session: Session, principal: Principal, upload_id: uuid.UUID) -> Upload:
    """The principal's own upload. Anybody else's does not exist for them."""
    upload = session.scalars(
        select(Upload).where(
            Upload.id == upload_id,
            Upload.org_id == principal.org_id,
            Upload.owner_id == principal.user_id,
        )
    ).one_or_none()
    if upload is None:
        raise NotFound(f"No upload with id {upload_id}.")
    return upload


def _check_open(upload: Upload) -> None:
    if upload.completed_at is None and upload.expires_at <= utcnow():
        raise UploadExpired()


def status(
    session: Session, principal: Principal, storage: Storage, upload_id: uuid.UUID
) -> Upload:
    """For HEAD: the offset to resume from. Finishes an upload whose last write was cut short
    between storing its last byte and handing it to processing."""
    upload = get_upload(session, principal, upload_id)
    _check_open(upload)
    _recover_lost_bytes(session, storage, upload)
    if upload.offset == upload.length:
        finish(session, storage, upload)
    return upload


def _recover_lost_bytes(session: Session, storage: Storage, upload: Upload) -> None:
    """After a machine crash the store may hold fewer bytes than were acknowledged (local disk
    syncs each upload once, when it completes): move the offset back to what it holds, so the
    client resends the rest instead of leaving a hole."""
    if upload.completed_at is not None or upload.protocol is not UploadProtocol.TUS:
        return
    held = storage.held_upload_bytes(upload.state, upload.offset)
    if held >= upload.offset:
        return
    log.warning(
        "upload %s: storage holds %d of %d acknowledged bytes; resuming from %d",
        upload.id,
        held,
        upload.offset,
        held,
    )
    session.execute(
        update(Upload)
        .where(Upload.id == upload.id, Upload.offset == upload.offset)
        .values(offset=held)
        .execution_options(synchronize_session=False)
    )
    session.refresh(upload)


@contextmanager
def _write_lock(redis: Redis, upload_id: uuid.UUID) -> Iterator[Lock]:
    """A token lock that expires by itself if its holder dies; renewed while a chunk streams."""
    lock = redis.lock(
        f"fieldcast:upload-lock:{upload_id}",
        timeout=LOCK_TTL_S,
        blocking=False,
        thread_local=False,
        raise_on_release_error=False,
    )
    if not lock.acquire():
        raise UploadLocked()
    try:
        yield lock
    finally:
        try:
            lock.release()
        except RedisError:
            log.warning("could not release the lock of upload %s; it expires by itself", upload_id)


class _RenewingReader:
    """Reads the request body, renewing the write lock every few megabytes."""

    _EVERY = 16 * 1024 * 1024

    def __init__(self, stream: IO[bytes], lock: Lock) -> None:
        self.stream = stream
        self.lock = lock
        self.since_renewal = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.since_renewal += len(data)
        if self.since_renewal >= self._EVERY:
            self.since_renewal = 0
            self.lock.reacquire()
        return data


def append(
    session: Session,
    principal: Principal,
    storage: Storage,
    redis: Redis,
    upload_id: uuid.UUID,
    *,
    offset: int,
    stream: IO[bytes],
    content_length: int | None,
    expires_in: timedelta,
) -> Upload:
    """Store a chunk that starts at `offset`. Returns the upload with its new offset.

    The stream may end early (the phone lost its network): what arrived is kept and the
    offset says so; the client resumes from there. One read before the bytes and one
    conditional update after them: a chunk costs few database round trips.
    """
    upload = get_upload(session, principal, upload_id)
    _check_open(upload)
    if upload.completed_at is not None or upload.protocol is not UploadProtocol.TUS:
        if upload.completed_at is not None and offset == upload.length and not content_length:
            return upload
        raise UploadCompleted("The upload already has all its bytes.")
    _recover_lost_bytes(session, storage, upload)
    if offset != upload.offset:
        raise OffsetMismatch(
            f"Upload-Offset is {offset}; the server has {upload.offset} bytes.",
            headers={"Upload-Offset": str(upload.offset)},
        )
    remaining = upload.length - upload.offset
    if content_length is not None and content_length > remaining:
        raise UploadTooLarge(
            f"The chunk is {content_length} bytes; only {remaining} remain of Upload-Length."
        )
    commit_early(session, EarlyCommit.BEFORE_LONG_WORK)  # nothing stays open while the bytes stream

    with _write_lock(redis, upload_id) as lock:
        new_offset, state = storage.append_upload(
            upload.state,
            upload.offset,
            cast(IO[bytes], _RenewingReader(stream, lock)),
            limit=remaining,
        )
        # The new offset need not wait for PostgreSQL's WAL flush: should the database lose
        # it in a crash, the recorded offset is behind the stored bytes, the client resumes
        # from it, and the surplus is cut off by the next write. The last chunk's finish
        # commits normally.
        session.execute(text("SET LOCAL synchronous_commit = off"))
        moved = session.execute(
            update(Upload)
            .where(Upload.id == upload.id, Upload.offset == upload.offset)
            .values(offset=new_offset, state=state, expires_at=utcnow() + expires_in)
            .returning(Upload)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        commit_early(session, EarlyCommit.TUS_OFFSET)
        if moved is None:
            raise OffsetMismatch("The upload moved on while this chunk was written.")
        if moved.offset == moved.length:
            finish(session, storage, moved)
    return moved


def finish(session: Session, storage: Storage, upload: Upload) -> bool:
    """The last byte is stored: make the object, point the video at it, record processing.
    False when the store turns out to hold fewer bytes (the client sends the rest).

    Safe to call again: completing storage is idempotent and a finished upload is left alone.
    """
    if upload.completed_at is not None:
        return True
    if upload.protocol is UploadProtocol.TUS:
        _recover_lost_bytes(session, storage, upload)
        if upload.offset < upload.length:
            return False
        size = storage.complete_upload(upload.state)
    else:
        size = storage.size(upload.storage_key)
    video = session.scalars(
        select(Video)
        .where(Video.org_id == upload.org_id, Video.id == upload.video_id)
        .with_for_update()
    ).one()
    upload.completed_at = utcnow()
    upload.offset = upload.length
    video.source_key = upload.storage_key
    video.source_bytes = size
    video.source_version += 1
    video.status = VideoStatus.PROCESSING
    video.progress = 0
    video.failure_code = None
    video.failure_detail = None
    processing.start(session, video)
    session.flush()
    log.info(
        "upload %s complete: %d bytes for video %s (version %d)",
        upload.id,
        size,
        video.id,
        video.source_version,
    )
    return True


def terminate(
    session: Session, principal: Principal, storage: Storage, upload_id: uuid.UUID
) -> None:
    """Discard an unfinished upload (tus termination). The draft waits for a new one."""
    upload = get_upload(session, principal, upload_id)
    if upload.completed_at is not None:
        raise UploadCompleted("The upload is complete; its file belongs to the video now.")
    _remove(session, storage, upload)


def _remove(session: Session, storage: Storage, upload: Upload) -> None:
    video = session.scalars(
        select(Video)
        .where(Video.org_id == upload.org_id, Video.id == upload.video_id)
        .with_for_update()
    ).one()
    session.delete(upload)
    session.flush()
    if video.status is VideoStatus.UPLOADING and not _open_uploads(session, video):
        video.status = VideoStatus.FAILED if video.failure_code else VideoStatus.AWAITING_UPLOAD
    session.flush()
    on_commit(session, partial(_discard, storage, upload))


def expire(db: Database, storage: Storage, *, batch: int = 100) -> dict[str, int]:
    """Clean up unfinished uploads past their expiry, and finish ones whose last write was cut
    short before processing was recorded.

    Each upload is claimed (FOR UPDATE SKIP LOCKED) in the transaction that handles it, and
    committed on its own: a lock taken for the whole batch would not outlive the first.
    """
    stale = [Upload.completed_at.is_(None), Upload.expires_at < utcnow()]
    cut_short = [
        Upload.completed_at.is_(None),
        Upload.offset == Upload.length,
        Upload.protocol == UploadProtocol.TUS,
        Upload.updated_at < utcnow() - timedelta(minutes=1),
    ]
    counts = {"expired": 0, "finished": 0}
    with db.session() as session:
        for name, conditions in (("expired", stale), ("finished", cut_short)):
            while counts[name] < batch:
                upload = session.scalars(
                    select(Upload)
                    .where(*conditions)
                    .order_by(Upload.expires_at)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                ).one_or_none()
                if upload is None:
                    session.rollback()
                    break
                if name == "expired":
                    _remove(session, storage, upload)
                    handled = True
                else:
                    # False when bytes were lost: the offset moved back, the client resumes.
                    handled = finish(session, storage, upload)
                commit_early(session, EarlyCommit.BATCH_ITEM)
                if handled:
                    counts[name] += 1
    return counts


# -- Direct to S3 ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DirectUpload:
    upload: Upload
    part_size: int
    part_count: int
    part_urls: dict[int, str]


def part_count(length: int) -> int:
    return math.ceil(length / part_size_for(length))


def part_size_for(length: int) -> int:
    """8 MiB parts, larger when the file would need more parts than S3 allows."""
    return max(DIRECT_PART_SIZE, math.ceil(length / MAX_PARTS))


def create_direct_upload(
    session: Session,
    principal: Principal,
    storage: Storage,
    *,
    video_id: uuid.UUID,
    length: int,
    max_size: int,
    expires_in: timedelta,
    url_ttl: int,
    filename: str | None = None,
    filetype: str | None = None,
) -> DirectUpload:
    if length <= 0:
        raise InvalidInput("The file is empty.", errors={"length": ["Must be at least 1 byte."]})
    upload = create_upload(
        session,
        principal,
        storage,
        video_id=video_id,
        length=length,
        max_size=max_size,
        expires_in=expires_in,
        filename=filename,
        filetype=filetype,
        protocol=UploadProtocol.S3_MULTIPART,
    )
    count = part_count(length)
    first = list(range(1, min(count, MAX_PART_URLS) + 1))
    urls = storage.presigned_part_urls(
        upload.storage_key, upload.state["upload_id"], first, expires_in=url_ttl
    )
    return DirectUpload(upload, part_size_for(length), count, urls)


def _direct(session: Session, principal: Principal, upload_id: uuid.UUID) -> Upload:
    upload = get_upload(session, principal, upload_id)
    if upload.protocol is not UploadProtocol.S3_MULTIPART:
        raise NotFound(f"No direct upload with id {upload_id}.")
    if upload.completed_at is not None:
        raise UploadCompleted()
    _check_open(upload)
    return upload


def part_urls(
    session: Session,
    principal: Principal,
    storage: Storage,
    upload_id: uuid.UUID,
    numbers: Sequence[int],
    *,
    url_ttl: int,
) -> dict[int, str]:
    upload = _direct(session, principal, upload_id)
    count = part_count(upload.length)
    bad = [n for n in numbers if not 1 <= n <= count]
    if bad:
        raise InvalidInput(errors={"numbers": [f"Parts are numbered 1 to {count}."]})
    return storage.presigned_part_urls(
        upload.storage_key, upload.state["upload_id"], sorted(set(numbers)), expires_in=url_ttl
    )


def complete_direct_upload(
    session: Session,
    principal: Principal,
    storage: Storage,
    upload_id: uuid.UUID,
    parts: Sequence[tuple[int, str]],
) -> Video:
    upload = _direct(session, principal, upload_id)
    count = part_count(upload.length)
    if sorted(number for number, _ in parts) != list(range(1, count + 1)):
        raise InvalidInput(errors={"parts": [f"Name every part from 1 to {count} once."]})
    try:
        size = storage.complete_direct_upload(upload.storage_key, upload.state["upload_id"], parts)
    except StorageError as exc:
        raise Conflict(
            f"S3 did not accept the parts: {exc}", code="upload_parts_rejected"
        ) from None
    if size != upload.length:
        storage.delete(upload.storage_key)
        raise Conflict(
            f"The file is {size} bytes, not the {upload.length} announced.",
            code="upload_size_mismatch",
        )
    finish(session, storage, upload)
    return session.get_one(Video, upload.video_id)


def abort_direct_upload(
    session: Session, principal: Principal, storage: Storage, upload_id: uuid.UUID
) -> None:
    upload = get_upload(session, principal, upload_id)
    if upload.protocol is not UploadProtocol.S3_MULTIPART:
        raise NotFound(f"No direct upload with id {upload_id}.")
    if upload.completed_at is not None:
        raise UploadCompleted()
    _remove(session, storage, upload)
