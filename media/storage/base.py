"""What every storage backend shares: the `Storage` interface, key and upload-id rules, errors.

Keys are relative, `/`-separated paths such as `org/<org_id>/videos/<video_id>/source`.
Nothing here knows about the database or who may read what.

Resumable uploads (the tus endpoint) go through `begin_upload` / `append_upload` /
`complete_upload` / `abort_upload`. Between requests the caller keeps the persisted offset and
the backend's state (a JSON-serialisable dict) together in its database; every append starts
from that recorded pair, so bytes written by a request that died before its result was recorded
are simply written again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import PurePosixPath
from typing import IO, Any, Protocol
from urllib.parse import quote

_CHUNK = 1024 * 1024

_UPLOAD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Internal files (partial uploads, tails) live under this prefix; keys cannot reach it because
# `validate_key` rejects components starting with a dot.
_UPLOADS_DIR = ".uploads"


class StorageError(Exception):
    pass


class ObjectNotFound(StorageError):
    pass


def validate_key(key: str) -> str:
    """Reject keys that could escape the storage root, confuse S3, or reach internal files."""
    path = PurePosixPath(key)
    if (
        not key
        or key.startswith("/")
        or any(part == "" or part.startswith(".") for part in key.split("/"))
        or "\\" in key
        or "\x00" in key
        or len(key) > 900
        or path.is_absolute()
    ):
        raise StorageError(f"invalid storage key: {key!r}")
    return key


def validate_upload_id(upload_id: str) -> str:
    if not isinstance(upload_id, str) or not _UPLOAD_ID.fullmatch(upload_id):
        raise StorageError(f"invalid upload id: {upload_id!r}")
    return upload_id


def content_disposition(download_name: str) -> str:
    """An `attachment` header value that survives any file name (RFC 6266 / RFC 5987)."""
    fallback = "".join(
        c if 0x20 <= ord(c) < 0x7F and c not in '"\\%;' else "_" for c in download_name
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(download_name, safe='')}"


def _check_state(state: dict[str, Any], backend: str) -> None:
    if not isinstance(state, dict) or state.get("backend") != backend:
        raise StorageError(f"upload state does not belong to {backend} storage")


class Storage(Protocol):
    def put(self, key: str, stream: IO[bytes], *, content_type: str | None = None) -> int: ...

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> int: ...

    def open(self, key: str) -> Iterator[bytes]: ...

    def size(self, key: str) -> int: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under the folder `prefix` (keys starting with `prefix/`) and,
        on S3, abort every unfinished multipart upload there. Returns how many objects were
        deleted; running it again deletes nothing more."""
        ...

    def keys(self) -> Iterator[str]:
        """Every stored object's key, in no particular order; unfinished uploads excluded."""
        ...

    def check(self) -> None:
        """Raise if the backend is unreachable or not writable (used by /readyz)."""
        ...

    def begin_upload(
        self, upload_id: str, key: str, *, content_type: str | None = None
    ) -> dict[str, Any]:
        """Start a resumable upload that becomes the object `key` when completed.

        Returns the backend's state, to be stored by the caller with offset 0.
        """
        ...

    def append_upload(
        self,
        state: dict[str, Any],
        offset: int,
        stream: IO[bytes],
        *,
        limit: int,
        ends: bool = False,
    ) -> tuple[int, dict[str, Any]]:
        """Persist what `stream` yields (until EOF, at most `limit` bytes) after `offset` bytes.

        `offset` and `state` are the pair the caller last recorded. Returns the new pair. Reads
        in 1 MiB chunks and never holds a whole chunk of the upload in memory. If it fails
        midway, the recorded pair stays valid: retrying from it writes the same bytes again.
        Appends to one upload must not run concurrently. With `ends`, the upload ends once all
        `limit` bytes have come: what a backend keeps aside until more follows is stored as
        completing will need it.
        """
        ...

    def held_upload_bytes(self, state: dict[str, Any], offset: int) -> int:
        """How many of the `offset` bytes recorded for an unfinished upload the store still
        holds: `offset`, or fewer when the machine went down before its page cache reached the
        disk. The client resumes from the smaller figure."""
        ...

    def complete_upload(self, state: dict[str, Any]) -> int:
        """Make the object durable and visible at its key; returns its size. Idempotent after
        success."""
        ...

    def abort_upload(self, state: dict[str, Any]) -> None:
        """Discard everything of an unfinished upload. Idempotent."""
        ...

    def presigned_url(
        self,
        key: str,
        *,
        expires_in: int,
        download_name: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        """A time-limited GET URL for `key`, or None when the API must serve it itself."""
        ...

    def begin_direct_upload(self, key: str, *, content_type: str | None = None) -> str:
        """Start a multipart upload that clients send straight to the store; returns its id."""
        ...

    def presigned_part_urls(
        self, key: str, upload_id: str, part_numbers: Sequence[int], *, expires_in: int
    ) -> dict[int, str]: ...

    def complete_direct_upload(
        self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> int:
        """Assemble the (part number, ETag) parts into the object; returns its size."""
        ...

    def abort_direct_upload(self, key: str, upload_id: str) -> None: ...
