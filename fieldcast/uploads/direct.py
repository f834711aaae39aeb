"""Direct uploads: clients send the file straight to S3 in parts, through presigned URLs.

The API hands out part URLs, then assembles the parts the client names and finishes the upload
as the tus path does. Only S3 storage offers this; local storage answers
`direct_uploads_unavailable`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from fieldcast.errors import Conflict, ErrorCode, InvalidInput, NotFound
from fieldcast.models.uploads import Upload, UploadProtocol
from fieldcast.models.videos import Video
from fieldcast.policy import Principal
from fieldcast.uploads.services import (
    UploadCompleted,
    check_open,
    create_upload,
    finish,
    get_upload,
    refuse_file,
    remove_upload,
)
from media.sniff import SNIFF_BYTES, sniff
from media.storage import Storage, StorageError

DIRECT_PART_SIZE = 8 * 1024 * 1024
MAX_PARTS = 10_000
# Presigned part URLs are handed out in batches; a client asks again for the ones that expired.
MAX_PART_URLS = 1000


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
    check_open(upload)
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
    assert upload.length is not None  # a direct upload announces its size
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
    assert upload.length is not None  # a direct upload announces its size
    count = part_count(upload.length)
    if sorted(number for number, _ in parts) != list(range(1, count + 1)):
        raise InvalidInput(errors={"parts": [f"Name every part from 1 to {count} once."]})
    try:
        size = storage.complete_direct_upload(upload.storage_key, upload.state["upload_id"], parts)
    except StorageError as exc:
        raise Conflict(
            f"S3 did not accept the parts: {exc}", code=ErrorCode.UPLOAD_PARTS_REJECTED
        ) from None
    if size != upload.length:
        storage.delete(upload.storage_key)
        raise Conflict(
            f"The file is {size} bytes, not the {upload.length} announced.",
            code=ErrorCode.UPLOAD_SIZE_MISMATCH,
        )
    # The bytes never passed through the API: the first ones are read back to judge the file.
    verdict = sniff(_first_bytes(storage, upload.storage_key), whole_file=size <= SNIFF_BYTES)
    if verdict.refusal is not None:
        raise refuse_file(session, storage, upload, code=verdict.refusal, assembled=True)
    finish(session, storage, upload)
    return session.get_one(Video, upload.video_id)


def _first_bytes(storage: Storage, key: str) -> bytes:
    head = b""
    for chunk in storage.open(key):
        head += chunk
        if len(head) >= SNIFF_BYTES:
            break
    return head[:SNIFF_BYTES]


def abort_direct_upload(
    session: Session, principal: Principal, storage: Storage, upload_id: uuid.UUID
) -> None:
    upload = get_upload(session, principal, upload_id)
    if upload.protocol is not UploadProtocol.S3_MULTIPART:
        raise NotFound(f"No direct upload with id {upload_id}.")
    if upload.completed_at is not None:
        raise UploadCompleted()
    remove_upload(session, storage, upload)
