"""Uploads: what the two ways of sending a file share.

A file reaches a draft video either resumably through the API (`tus`) or straight to S3 in
parts (`direct`). Both create an `Upload` here, and both end in `finish`: when the last byte is
stored, the object becomes the video's source and processing is recorded in the same
transaction. Expired or abandoned uploads are cleaned up by `expire`.

An upload belongs to one draft video and its author; anybody else's does not exist for them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from datetime import timedelta
from functools import partial

from sqlalchemy import select, update
from sqlalchemy.orm import Session, object_session

from fieldcast.db import Database, EarlyCommit, commit_early, on_commit, utcnow
from fieldcast.errors import Conflict, DomainError, ErrorCode, InvalidInput, NotFound
from fieldcast.models.accounts import User
from fieldcast.models.uploads import Upload, UploadProtocol
from fieldcast.models.videos import Video, VideoStatus
from fieldcast.policy import Principal, load_upload, load_video
from fieldcast.tenancy import storage as quotas
from fieldcast.videos import processing
from media.storage import Storage, StorageError

log = logging.getLogger(__name__)


class UploadExpired(DomainError):
    status = 410
    code = ErrorCode.UPLOAD_EXPIRED
    title = "The upload expired; start a new one"


class UploadTooLarge(DomainError):
    status = 413
    code = ErrorCode.UPLOAD_TOO_LARGE
    title = "The upload is larger than allowed"


class UploadCompleted(Conflict):
    code = ErrorCode.UPLOAD_COMPLETED
    title = "The upload is complete"


class FileRefused(DomainError):
    """The first bytes show the file cannot be a video; `code` is the one the video fails
    with, as it would after processing the whole file."""

    status = 422
    code = ErrorCode.NOT_A_VIDEO
    title = "The file is not a video"


# A draft can receive a file before its first upload completes, or again after it failed.
_ACCEPTS_UPLOADS = {VideoStatus.AWAITING_UPLOAD, VideoStatus.UPLOADING, VideoStatus.FAILED}


def _source_key(video: Video, upload_id: uuid.UUID) -> str:
    # One key per upload: a new file for a failed video never overwrites the one being read.
    return f"org/{video.org_id}/videos/{video.id}/source/{upload_id}"


def _uploadable_video(session: Session, principal: Principal, video_id: uuid.UUID) -> Video:
    video = load_video(session, principal, video_id, "video.upload")
    if video.status not in _ACCEPTS_UPLOADS:
        raise Conflict(
            f"The video already has its file (status {video.status.value}).",
            code=ErrorCode.VIDEO_ALREADY_UPLOADED,
        )
    return video


def _open_uploads(session: Session, video: Video) -> list[Upload]:
    return list(
        session.scalars(
            select(Upload).where(
                Upload.org_id == video.org_id,
                Upload.video_id == video.id,
                Upload.completed_at.is_(None),
                Upload.cancelled_at.is_(None),
            )
        )
    )


def create_upload(
    session: Session,
    principal: Principal,
    storage: Storage,
    *,
    video_id: uuid.UUID,
    length: int | None,
    max_size: int,
    expires_in: timedelta,
    filename: str | None = None,
    filetype: str | None = None,
    protocol: UploadProtocol = UploadProtocol.TUS,
) -> Upload:
    """Start an upload of `length` bytes for a draft (None: a tus client sends the length
    later, while the phone still exports the file). An unfinished earlier one is replaced:
    a phone that lost its upload URL (reinstalled app, cleared cache) simply starts again."""
    video = _uploadable_video(session, principal, video_id)
    if length is None:
        if protocol is not UploadProtocol.TUS:
            raise InvalidInput("Only tus uploads may send their length later.")
    elif length < 0:
        raise InvalidInput("Upload-Length must not be negative.")
    elif length > max_size:
        raise UploadTooLarge(f"The file is {length} bytes; the limit is {max_size} bytes.")
    replaced = _open_uploads(session, video)
    if length is not None:
        # (What the uploads this one replaces reserved is theirs until they go: counted.)
        quotas.check_room(session, video.org_id, length)
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
                code=ErrorCode.DIRECT_UPLOADS_UNAVAILABLE,
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


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_capability(upload: Upload) -> str:
    """A secret (256 random bits) for the upload's URL: with it, the uploader's background
    transfer carries on after the access token expired, for this upload only and while the
    upload lasts. Only its digest is stored; a new one replaces the old."""
    secret = secrets.token_urlsafe(32)
    upload.capability_digest = _digest(secret)
    return secret


def capability_holder(session: Session, upload_id: uuid.UUID, secret: str) -> Principal:
    """The uploader, acting through the secret of an upload URL, for that upload alone.

    A wrong secret, or another upload's, finds nothing; an expired one is gone (410), as
    the upload is; an uploader who no longer has an account finds nothing either.
    """
    upload = session.get(Upload, upload_id)
    if (
        upload is None
        or upload.cancelled_at is not None
        or upload.capability_digest is None
        or not hmac.compare_digest(upload.capability_digest, _digest(secret))
    ):
        raise NotFound("No such upload.")
    if upload.expires_at <= utcnow():
        raise UploadExpired("The upload URL has expired; start a new upload.")
    owner = session.scalars(
        select(User).where(User.org_id == upload.org_id, User.id == upload.owner_id)
    ).one_or_none()
    if owner is None or not owner.is_active:
        raise NotFound("No such upload.")
    return Principal(user=owner)


def _delete_object(storage: Storage, key: str) -> None:
    try:
        storage.delete(key)
    except StorageError:
        log.warning("could not delete the refused file %s", key, exc_info=True)


def get_upload(session: Session, principal: Principal, upload_id: uuid.UUID) -> Upload:
    """The principal's own upload. Anybody else's does not exist for them."""
    return load_upload(session, principal, upload_id)


def check_open(upload: Upload) -> None:
    if upload.completed_at is None and upload.expires_at <= utcnow():
        raise UploadExpired()


def recover_lost_bytes(session: Session, storage: Storage, upload: Upload) -> None:
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
    # Committed at once: the request that found the loss usually answers 409, which rolls its
    # unit of work back, and the client resumes from the offset the next HEAD reads.
    commit_early(session, EarlyCommit.TUS_OFFSET)
    session.refresh(upload)


def finish(session: Session, storage: Storage, upload: Upload) -> bool:
    """The last byte is stored: make the object, point the video at it, record processing.
    False when the store turns out to hold fewer bytes (the client sends the rest).

    Safe to call again: completing storage is idempotent and a finished upload is left alone.
    """
    if upload.completed_at is not None:
        return True
    if upload.protocol is UploadProtocol.TUS:
        recover_lost_bytes(session, storage, upload)
        if upload.length is None or upload.offset < upload.length:
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
    if upload.length is not None:
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


def set_length(upload: Upload, length: int, *, max_size: int) -> None:
    """The length a client deferred at creation, sent once (tus creation-defer-length)."""
    if upload.length is not None:
        if length != upload.length:
            raise InvalidInput(f"Upload-Length is {upload.length} already; it cannot change.")
        return
    if length < upload.offset:
        raise InvalidInput(f"Upload-Length is less than the {upload.offset} bytes received.")
    if length > max_size:
        raise UploadTooLarge(f"The file is {length} bytes; the limit is {max_size} bytes.")
    session = object_session(upload)
    assert session is not None
    quotas.check_room(session, upload.org_id, length)
    upload.length = length


# What the author reads when the first bytes refuse a file: the probe's words for the same codes.
_REFUSALS = {
    "not_a_video": "This file is not a video we can read.",
    "audio_only": "The file has sound but no picture.",
    "empty_file": "The uploaded file is empty.",
}


def refuse_file(
    session: Session, storage: Storage, upload: Upload, *, code: str, assembled: bool = False
) -> FileRefused:
    """The file's first bytes show it cannot be a video: the video fails as it would after
    processing, the upload and its stored bytes go, and the draft takes a new upload.
    `assembled`: the bytes are a stored object already (a direct upload S3 put together).
    Committed here, since the request answers with the returned error."""
    detail = _REFUSALS.get(code, _REFUSALS["not_a_video"])
    video = session.scalars(
        select(Video)
        .where(Video.org_id == upload.org_id, Video.id == upload.video_id)
        .with_for_update()
    ).one()
    session.delete(upload)
    processing.mark_failed(session, video, code, detail)
    session.flush()
    if assembled:
        on_commit(session, partial(_delete_object, storage, upload.storage_key))
    else:
        on_commit(session, partial(_discard, storage, upload))
    commit_early(session, EarlyCommit.UPLOAD_REFUSED)
    log.info("upload %s refused for video %s: %s", upload.id, video.id, code)
    return FileRefused(detail, code=ErrorCode(code))


def remove_upload(session: Session, storage: Storage, upload: Upload) -> None:
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
    # Uploads cancelled with their video are the purge's (`videos.purge`).
    stale = [
        Upload.completed_at.is_(None),
        Upload.cancelled_at.is_(None),
        Upload.expires_at < utcnow(),
    ]
    cut_short = [
        Upload.completed_at.is_(None),
        Upload.cancelled_at.is_(None),
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
                    remove_upload(session, storage, upload)
                    handled = True
                else:
                    # False when bytes were lost: the offset moved back, the client resumes.
                    handled = finish(session, storage, upload)
                commit_early(session, EarlyCommit.BATCH_ITEM)
                if handled:
                    counts[name] += 1
    return counts
