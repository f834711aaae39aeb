"""Resumable uploads through the API (the tus protocol).

Bytes go to storage as they arrive (`Storage.append_upload`); PostgreSQL records how many are
stored, so a phone can resume from the server's offset after any failure, from any API
process. Should the machine go down before its page cache reached the disk, the store reports
fewer bytes than recorded and the offset moves back to them (`Storage.held_upload_bytes`).
An upload of zero bytes is complete, and processed, from its creation.

A client may send the length later (tus creation-defer-length): until it does, the upload
takes no more than the size limit. The file's first bytes are kept (`Upload.head`) and judged
before they are stored (`media.sniff`): a file that cannot be a video is refused at once.

No database transaction stays open while bytes stream: the row is read, the bytes are stored,
then the new offset is written with a check that nobody else moved it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import IO, Any, cast

from redis import Redis, RedisError
from redis.lock import Lock
from sqlalchemy import text, update
from sqlalchemy.orm import Session

from fieldcast.db import EarlyCommit, commit_early, utcnow
from fieldcast.errors import Conflict, DomainError, ErrorCode
from fieldcast.models.uploads import Upload, UploadProtocol
from fieldcast.policy import Principal
from fieldcast.uploads.services import (
    UploadCompleted,
    UploadTooLarge,
    check_open,
    finish,
    get_upload,
    recover_lost_bytes,
    refuse_file,
    remove_upload,
    set_length,
)
from media.sniff import SNIFF_BYTES, sniff
from media.storage import Storage

log = logging.getLogger(__name__)

LOCK_TTL_S = 60


class OffsetMismatch(Conflict):
    code = ErrorCode.UPLOAD_OFFSET_MISMATCH
    title = "Upload-Offset does not match the bytes received"


class UploadLocked(DomainError):
    status = 423
    code = ErrorCode.UPLOAD_LOCKED
    title = "Another request is writing to this upload"


class ChecksumMismatch(DomainError):
    status = 460
    code = ErrorCode.CHECKSUM_MISMATCH
    title = "The chunk does not match its Upload-Checksum"


def status(
    session: Session, principal: Principal, storage: Storage, upload_id: uuid.UUID
) -> Upload:
    """For HEAD: the offset to resume from. Finishes an upload whose last write was cut short
    between storing its last byte and handing it to processing."""
    upload = get_upload(session, principal, upload_id)
    check_open(upload)
    recover_lost_bytes(session, storage, upload)
    if upload.offset == upload.length:
        finish(session, storage, upload)
    return upload


def _read_up_to(stream: IO[bytes], size: int) -> bytes:
    parts: list[bytes] = []
    while size > 0 and (data := stream.read(size)):
        parts.append(data)
        size -= len(data)
    return b"".join(parts)


class _Prefixed:
    """The bytes already read for the sniff, then the rest of the stream."""

    def __init__(self, prefix: bytes, stream: IO[bytes]) -> None:
        self.prefix = prefix
        self.stream = stream

    def read(self, size: int = -1) -> bytes:
        if self.prefix:
            data = self.prefix if size < 0 else self.prefix[:size]
            self.prefix = self.prefix[len(data) :]
            return data
        return self.stream.read(size)


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
    max_size: int,
    length: int | None = None,
) -> Upload:
    """Store a chunk that starts at `offset`. Returns the upload with its new offset.

    The stream may end early (the phone lost its network): what arrived is kept and the
    offset says so; the client resumes from there. One read before the bytes and one
    conditional update after them: a chunk costs few database round trips.

    `length` is the upload's length when the client deferred it and sends it now. While it is
    unknown, no more than `max_size` bytes are taken. The file's first bytes are judged
    before they are stored: one that cannot be a video is refused (`FileRefused`).
    """
    upload = get_upload(session, principal, upload_id)
    check_open(upload)
    if upload.completed_at is not None or upload.protocol is not UploadProtocol.TUS:
        if upload.completed_at is not None and offset == upload.length and not content_length:
            return upload
        raise UploadCompleted("The upload already has all its bytes.")
    recover_lost_bytes(session, storage, upload)
    if offset != upload.offset:
        raise OffsetMismatch(
            f"Upload-Offset is {offset}; the server has {upload.offset} bytes.",
            headers={"Upload-Offset": str(upload.offset)},
        )
    if length is not None:
        set_length(upload, length, max_size=max_size)  # committed below, before the bytes
    if upload.length is None:
        remaining = max_size - upload.offset
        if content_length is not None and content_length > remaining:
            raise UploadTooLarge(
                f"The chunk is {content_length} bytes; only {remaining} more are allowed."
            )
    else:
        remaining = upload.length - upload.offset
        if content_length is not None and content_length > remaining:
            raise UploadTooLarge(
                f"The chunk is {content_length} bytes; only {remaining} remain of Upload-Length."
            )
    commit_early(session, EarlyCommit.BEFORE_LONG_WORK)  # nothing stays open while the bytes stream

    with _write_lock(redis, upload_id) as lock:
        head = (upload.head or b"")[: upload.offset]
        # (An upload begun before first bytes were kept has no head: the probe judges it.)
        judged = upload.offset < SNIFF_BYTES and len(head) == upload.offset
        if judged:
            first = _read_up_to(stream, min(SNIFF_BYTES - upload.offset, remaining))
            whole_file = upload.length is not None and upload.offset + len(first) == upload.length
            verdict = sniff(head + first, whole_file=whole_file)
            if verdict.refusal is not None:
                raise refuse_file(session, storage, upload, code=verdict.refusal)
            stream = cast(IO[bytes], _Prefixed(first, stream))
            head += first
        new_offset, state = storage.append_upload(
            upload.state,
            upload.offset,
            cast(IO[bytes], _RenewingReader(stream, lock)),
            limit=remaining,
            ends=upload.length is not None,
        )
        values: dict[str, Any] = {
            "offset": new_offset,
            "state": state,
            "expires_at": utcnow() + expires_in,
        }
        if judged:
            values["head"] = head[:new_offset]
        # The new offset need not wait for PostgreSQL's WAL flush: should the database lose
        # it in a crash, the recorded offset is behind the stored bytes, the client resumes
        # from it, and the surplus is cut off by the next write. The last chunk's finish
        # commits normally.
        session.execute(text("SET LOCAL synchronous_commit = off"))
        moved = session.execute(
            update(Upload)
            .where(Upload.id == upload.id, Upload.offset == upload.offset)
            .values(**values)
            .returning(Upload)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()
        commit_early(session, EarlyCommit.TUS_OFFSET)
        if moved is None:
            raise OffsetMismatch("The upload moved on while this chunk was written.")
        if moved.offset == moved.length:
            finish(session, storage, moved)
    return moved


def terminate(
    session: Session, principal: Principal, storage: Storage, upload_id: uuid.UUID
) -> None:
    """Discard an unfinished upload (tus termination). The draft waits for a new one."""
    upload = get_upload(session, principal, upload_id)
    if upload.completed_at is not None:
        raise UploadCompleted("The upload is complete; its file belongs to the video now.")
    remove_upload(session, storage, upload)
