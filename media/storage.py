"""Object storage behind one small interface: local disk (the embedded default) or S3.

Keys are relative, `/`-separated paths such as `org/<org_id>/videos/<video_id>/source`.
Nothing here knows about the database or who may read what.

Resumable uploads (the tus endpoint) go through `begin_upload` / `append_upload` /
`complete_upload` / `abort_upload`. Between requests the caller keeps the persisted offset and
the backend's state (a JSON-serialisable dict) together in its database; every append starts
from that recorded pair, so bytes written by a request that died before its result was recorded
are simply written again.
"""

from __future__ import annotations

import ctypes
import io
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol, cast
from urllib.parse import quote, unquote, urlparse

_CHUNK = 1024 * 1024
MIN_PART_SIZE = 5 * 1024 * 1024  # S3's minimum for every part but the last
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
DEFAULT_PART_SIZE = 8 * 1024 * 1024
MAX_PARTS = 10_000

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


def _copy_limited(stream: IO[bytes], out: IO[bytes], limit: int) -> int:
    """Copy at most `limit` bytes until EOF in 1 MiB reads; returns the count copied."""
    copied = 0
    while copied < limit:
        chunk = stream.read(min(_CHUNK, limit - copied))
        if not chunk:
            break
        out.write(chunk)
        copied += len(chunk)
    return copied


def _receive_into(out: IO[bytes], stream: IO[bytes], limit: int, *, writeback_from: int) -> int:
    """Copy at most `limit` bytes of `stream` into `out` until EOF; returns the count copied.

    A helper thread writes each 1 MiB block (and starts its writeback) while the next one is
    received, so a chunk costs the longer of receiving and writing, not their sum. At most two
    blocks are held at a time.
    """
    raw = out.fileno()

    def write(block: bytes) -> None:
        view = memoryview(block)
        while view:
            view = view[os.write(raw, view) :]
        _start_writeback(raw, writeback_from)

    out.flush()
    copied = 0
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="upload-write") as writer:
        pending: Future[None] | None = None
        while copied < limit:
            block = stream.read(min(_CHUNK, limit - copied))
            if not block:
                break
            if pending is not None:
                pending.result()
            pending = writer.submit(write, block)
            copied += len(block)
        if pending is not None:
            pending.result()
    return copied


_SYNC_FILE_RANGE_WRITE = 2


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
    function.restype = ctypes.c_int
    return cast(Callable[[int, int, int, int], int], function)


_sync_range = _sync_file_range()


def _start_writeback(fd: int, start: int) -> None:
    """Ask the kernel to start writing what was added after `start` (Linux), without waiting:
    the bytes reach the disk while the rest arrives, and little is left to lose or to sync."""
    if _sync_range is not None:
        _sync_range(fd, start, 0, _SYNC_FILE_RANGE_WRITE)


def _fsync_directory(path: Path) -> None:
    """Make a rename into `path` durable (POSIX: the directory entry lives in the directory)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except (OSError, AttributeError):
        return  # not a POSIX directory handle (Windows): nothing to sync
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        self, state: dict[str, Any], offset: int, stream: IO[bytes], *, limit: int
    ) -> tuple[int, dict[str, Any]]:
        """Persist what `stream` yields (until EOF, at most `limit` bytes) after `offset` bytes.

        `offset` and `state` are the pair the caller last recorded. Returns the new pair. Reads
        in 1 MiB chunks and never holds a whole chunk of the upload in memory. If it fails
        midway, the recorded pair stays valid: retrying from it writes the same bytes again.
        Appends to one upload must not run concurrently.
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


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise StorageError(f"invalid storage key: {key!r}")
        return path

    def _prepare_target(self, key: str) -> Path:
        target = self.path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise StorageError(f"a prefix of {key!r} is itself an object") from None
        if target.is_dir():
            raise StorageError(f"{key!r} is a prefix of other objects")
        return target

    def put(self, key: str, stream: IO[bytes], *, content_type: str | None = None) -> int:
        target = self._prepare_target(key)
        # Write beside the target and rename, so readers never see a half-written object.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(stream, out, _CHUNK)
                written = out.tell()
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return written

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> int:
        return self.put(key, io.BytesIO(data), content_type=content_type)

    def open(self, key: str) -> Iterator[bytes]:
        path = self.path(key)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

        def chunks() -> Iterator[bytes]:
            with handle:
                while chunk := handle.read(_CHUNK):
                    yield chunk

        return chunks()

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def keys(self) -> Iterator[str]:
        for directory, subdirs, files in os.walk(self.root):
            # Dot names are internal: partial uploads, files being written, the /readyz probe.
            subdirs[:] = [d for d in subdirs if not d.startswith(".")]
            relative = Path(directory).relative_to(self.root).as_posix()
            for name in files:
                if not name.startswith("."):
                    yield name if relative == "." else f"{relative}/{name}"

    def check(self) -> None:
        probe = self.root / ".readyz"
        probe.write_bytes(b"ok")
        probe.unlink()

    # -- resumable uploads: the partial object is a file under `.uploads/` ----------------------

    def partial_path(self, upload_id: str) -> Path:
        return self.root / _UPLOADS_DIR / validate_upload_id(upload_id)

    def begin_upload(
        self, upload_id: str, key: str, *, content_type: str | None = None
    ) -> dict[str, Any]:
        self.path(key)
        partial = self.partial_path(upload_id)
        partial.parent.mkdir(exist_ok=True)
        # Starting again under the same id starts from nothing.
        partial.write_bytes(b"")
        return {"backend": "local", "upload_id": upload_id, "key": key}

    def append_upload(
        self, state: dict[str, Any], offset: int, stream: IO[bytes], *, limit: int
    ) -> tuple[int, dict[str, Any]]:
        _check_state(state, "local")
        if offset < 0 or limit < 0:
            raise StorageError("offset and limit must not be negative")
        partial = self.partial_path(state["upload_id"])
        partial.parent.mkdir(exist_ok=True)
        fd = os.open(partial, os.O_RDWR | os.O_CREAT, 0o644)
        with os.fdopen(fd, "r+b") as out:
            have = os.fstat(out.fileno()).st_size
            if have < offset:
                raise StorageError(
                    f"upload {state['upload_id']} holds {have} bytes, fewer than offset {offset}"
                )
            # Bytes past the recorded offset came from a request cut off before its result was
            # recorded; the client sends them again.
            if have > offset:
                out.truncate(offset)
            out.seek(offset)
            # The chunk goes to the page cache, which outlives this process, and its writeback
            # starts as it arrives. No wait for the disk per chunk: after a machine crash the
            # file's own length says what reached the disk (held_upload_bytes), and the client
            # resumes from there. The finished object is synced once, in complete_upload.
            written = _receive_into(out, stream, limit, writeback_from=offset)
        return offset + written, dict(state)

    def held_upload_bytes(self, state: dict[str, Any], offset: int) -> int:
        _check_state(state, "local")
        try:
            have = self.partial_path(state["upload_id"]).stat().st_size
        except FileNotFoundError:
            have = 0
        return min(have, offset)

    def complete_upload(self, state: dict[str, Any]) -> int:
        _check_state(state, "local")
        partial = self.partial_path(state["upload_id"])
        target = self._prepare_target(state["key"])
        try:
            with partial.open("rb") as data:
                os.fsync(data.fileno())
            os.replace(partial, target)
        except FileNotFoundError:
            # Completed before: the partial was already moved onto the key.
            if target.is_file():
                return target.stat().st_size
            raise ObjectNotFound(f"upload {state['upload_id']} has no data") from None
        _fsync_directory(target.parent)
        return target.stat().st_size

    def abort_upload(self, state: dict[str, Any]) -> None:
        _check_state(state, "local")
        self.partial_path(state["upload_id"]).unlink(missing_ok=True)

    def presigned_url(
        self,
        key: str,
        *,
        expires_in: int,
        download_name: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        validate_key(key)
        return None

    # -- direct-to-store uploads exist only where clients can reach the store -------------------

    def begin_direct_upload(self, key: str, *, content_type: str | None = None) -> str:
        raise StorageError("direct uploads need S3 storage")

    def presigned_part_urls(
        self, key: str, upload_id: str, part_numbers: Sequence[int], *, expires_in: int
    ) -> dict[int, str]:
        raise StorageError("direct uploads need S3 storage")

    def complete_direct_upload(
        self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> int:
        raise StorageError("direct uploads need S3 storage")

    def abort_direct_upload(self, key: str, upload_id: str) -> None:
        raise StorageError("direct uploads need S3 storage")


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


class S3Storage:
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
    ) -> None:
        import boto3
        from botocore.config import Config

        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise StorageError(f"part_size must be between 5 MiB and 5 GiB, got {part_size}")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.part_size = part_size
        self.client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": "path" if endpoint_url else "auto"},
                retries={"max_attempts": 5, "mode": "standard"},
            ),
        )

    def object_key(self, key: str) -> str:
        key = validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, stream: IO[bytes], *, content_type: str | None = None) -> int:
        extra = {"ContentType": content_type} if content_type else {}
        counter = _CountingReader(stream)
        # upload_fileobj streams in parts; nothing is held whole in memory.
        self.client.upload_fileobj(counter, self.bucket, self.object_key(key), ExtraArgs=extra)
        return counter.count

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> int:
        extra = {"ContentType": content_type} if content_type else {}
        self.client.put_object(Bucket=self.bucket, Key=self.object_key(key), Body=data, **extra)
        return len(data)

    def open(self, key: str) -> Iterator[bytes]:
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))["Body"]
        except ClientError as exc:
            if _error_code(exc) in {"NoSuchKey", "404"}:
                raise ObjectNotFound(key) from None
            raise StorageError(str(exc)) from exc
        return iter(lambda: body.read(_CHUNK), b"")

    def size(self, key: str) -> int:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if _error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
                raise ObjectNotFound(key) from None
            raise StorageError(str(exc)) from exc
        return int(head["ContentLength"])

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except ObjectNotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def keys(self) -> Iterator[str]:
        start = f"{self.prefix}/" if self.prefix else ""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=start
        )
        for page in pages:
            for item in page.get("Contents", []):
                key = str(item["Key"])[len(start) :]
                # Tails of unfinished uploads live under a dot prefix no key can reach.
                if key and not any(part.startswith(".") for part in key.split("/")):
                    yield key

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)

    # -- resumable uploads ----------------------------------------------------------------------
    #
    # One upload is one S3 multipart upload on the target key. Every part is exactly
    # `part_size` bytes, so part N always holds the same byte range and a retried request
    # overwrites it with the same bytes. Bytes that do not fill a part yet wait in a tail object
    # under `<prefix>/.uploads/<upload_id>/`, named by the offset it starts at: a request that
    # dies after writing a new tail never overwrites the one the recorded state points to
    # (a same-start rewrite only extends it, and reads take just the recorded length).

    def uploads_prefix(self, upload_id: str) -> str:
        name = f"{_UPLOADS_DIR}/{validate_upload_id(upload_id)}/"
        return f"{self.prefix}/{name}" if self.prefix else name

    def tail_key(self, upload_id: str, start: int) -> str:
        return f"{self.uploads_prefix(upload_id)}tail-{start}"

    def begin_upload(
        self, upload_id: str, key: str, *, content_type: str | None = None
    ) -> dict[str, Any]:
        self.uploads_prefix(upload_id)
        extra = {"ContentType": content_type} if content_type else {}
        created = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=self.object_key(key), **extra
        )
        return {
            "backend": "s3",
            "upload_id": upload_id,
            "key": key,
            "multipart_id": created["UploadId"],
            "content_type": content_type,
            "part_size": self.part_size,
            "parts": [],
            "tail": 0,
        }

    def append_upload(
        self, state: dict[str, Any], offset: int, stream: IO[bytes], *, limit: int
    ) -> tuple[int, dict[str, Any]]:
        _check_state(state, "s3")
        if limit < 0:
            raise StorageError("limit must not be negative")
        part_size = int(state["part_size"])
        parts: list[list[Any]] = [list(p) for p in state["parts"]]
        tail = int(state["tail"])
        start = sum(int(p[2]) for p in parts)
        if offset != start + tail:
            raise StorageError(
                f"offset {offset} does not match the {start + tail} bytes stored for this upload"
            )
        # The first read decides whether there is anything to do; it must not cross the part
        # boundary either.
        first = stream.read(min(_CHUNK, limit, part_size - tail)) if limit else b""
        if not first:
            return offset, dict(state)

        self._discard_tails(state["upload_id"], keep=self.tail_key(state["upload_id"], start))
        object_key = self.object_key(state["key"])
        with tempfile.TemporaryFile() as buffer:
            if tail:
                self._read_tail(state["upload_id"], start, tail, buffer)
            remaining = limit
            chunk = first
            while chunk:
                buffer.write(chunk)
                remaining -= len(chunk)
                if buffer.tell() == part_size:
                    number = len(parts) + 1
                    etag = self._upload_part(state["multipart_id"], object_key, number, buffer)
                    parts.append([number, etag, part_size])
                    start += part_size
                    buffer.seek(0)
                    buffer.truncate()
                # Never read past a part boundary, so parts keep their fixed byte ranges.
                want = min(_CHUNK, remaining, part_size - buffer.tell())
                chunk = stream.read(want) if want else b""
            tail = buffer.tell()
            if tail:
                buffer.seek(0)
                self.client.put_object(
                    Bucket=self.bucket,
                    Key=self.tail_key(state["upload_id"], start),
                    Body=buffer,
                    ContentLength=tail,
                )
        return start + tail, {**state, "parts": parts, "tail": tail}

    def held_upload_bytes(self, state: dict[str, Any], offset: int) -> int:
        _check_state(state, "s3")
        return offset  # S3 acknowledged every part and tail the state records

    def complete_upload(self, state: dict[str, Any]) -> int:
        from botocore.exceptions import ClientError

        _check_state(state, "s3")
        parts: list[list[Any]] = [list(p) for p in state["parts"]]
        tail = int(state["tail"])
        start = sum(int(p[2]) for p in parts)
        total = start + tail
        object_key = self.object_key(state["key"])
        try:
            # Asked first because completing an unknown upload is not answered consistently
            # by S3-compatible stores.
            self.client.list_parts(
                Bucket=self.bucket, Key=object_key, UploadId=state["multipart_id"], MaxParts=1
            )
            if tail:
                with tempfile.TemporaryFile() as buffer:
                    self._read_tail(state["upload_id"], start, tail, buffer)
                    number = len(parts) + 1
                    etag = self._upload_part(state["multipart_id"], object_key, number, buffer)
                    parts.append([number, etag, tail])
            if parts:
                self.client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=object_key,
                    UploadId=state["multipart_id"],
                    MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e, _ in parts]},
                )
            else:
                # S3 will not complete a multipart upload without parts; an empty object is fine.
                extra = {"ContentType": state["content_type"]} if state.get("content_type") else {}
                self.client.put_object(Bucket=self.bucket, Key=object_key, Body=b"", **extra)
                self._abort_multipart(object_key, state["multipart_id"])
        except ClientError as exc:
            if _error_code(exc) != "NoSuchUpload":
                raise
            # Completed before (or aborted): fine if the object is there with the size this
            # state promises.
            try:
                size = self.size(state["key"])
            except ObjectNotFound:
                size = -1
            if size != total:
                raise ObjectNotFound(
                    f"upload {state['upload_id']} was aborted or lost; it cannot be completed"
                ) from exc
        self._discard_tails(state["upload_id"])
        return total

    def abort_upload(self, state: dict[str, Any]) -> None:
        _check_state(state, "s3")
        self._abort_multipart(self.object_key(state["key"]), state["multipart_id"])
        self._discard_tails(state["upload_id"])

    def _upload_part(self, multipart_id: str, object_key: str, number: int, body: IO[bytes]) -> str:
        if number > MAX_PARTS:
            raise StorageError(f"upload exceeds {MAX_PARTS} parts")
        size = body.tell()
        body.seek(0)
        response = self.client.upload_part(
            Bucket=self.bucket,
            Key=object_key,
            UploadId=multipart_id,
            PartNumber=number,
            Body=body,
            ContentLength=size,
        )
        return str(response["ETag"])

    def _read_tail(self, upload_id: str, start: int, length: int, out: IO[bytes]) -> None:
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(
                Bucket=self.bucket,
                Key=self.tail_key(upload_id, start),
                Range=f"bytes=0-{length - 1}",
            )["Body"]
        except ClientError as exc:
            if _error_code(exc) in {"NoSuchKey", "404", "InvalidRange"}:
                raise ObjectNotFound(f"upload {upload_id} lost its unsent bytes") from None
            raise
        copied = _copy_limited(body, out, length)
        if copied != length:
            raise StorageError(f"upload {upload_id} has {copied} unsent bytes, expected {length}")

    def _discard_tails(self, upload_id: str, *, keep: str | None = None) -> None:
        """Delete tail objects the upload no longer points to (all of them without `keep`)."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.uploads_prefix(upload_id)
        )
        for page in pages:
            stale = [{"Key": o["Key"]} for o in page.get("Contents", []) if o["Key"] != keep]
            if stale:
                self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": stale, "Quiet": True}
                )

    def _abort_multipart(self, object_key: str, multipart_id: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=object_key, UploadId=multipart_id
            )
        except ClientError as exc:
            if _error_code(exc) != "NoSuchUpload":
                raise

    # -- presigned URLs -------------------------------------------------------------------------

    def presigned_url(
        self,
        key: str,
        *,
        expires_in: int,
        download_name: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self.object_key(key)}
        if download_name:
            params["ResponseContentDisposition"] = content_disposition(download_name)
        if content_type:
            params["ResponseContentType"] = content_type
        return str(
            self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        )

    # -- direct uploads: clients PUT parts to presigned URLs ------------------------------------

    def begin_direct_upload(self, key: str, *, content_type: str | None = None) -> str:
        extra = {"ContentType": content_type} if content_type else {}
        created = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=self.object_key(key), **extra
        )
        return str(created["UploadId"])

    def presigned_part_urls(
        self, key: str, upload_id: str, part_numbers: Sequence[int], *, expires_in: int
    ) -> dict[int, str]:
        object_key = self.object_key(key)
        urls: dict[int, str] = {}
        for number in part_numbers:
            if not 1 <= number <= MAX_PARTS:
                raise StorageError(f"part numbers run from 1 to {MAX_PARTS}, got {number}")
            urls[number] = str(
                self.client.generate_presigned_url(
                    "upload_part",
                    Params={
                        "Bucket": self.bucket,
                        "Key": object_key,
                        "UploadId": upload_id,
                        "PartNumber": number,
                    },
                    ExpiresIn=expires_in,
                )
            )
        return urls

    def complete_direct_upload(
        self, key: str, upload_id: str, parts: Sequence[tuple[int, str]]
    ) -> int:
        from botocore.exceptions import ClientError

        if not parts:
            raise StorageError("a direct upload needs at least one part")
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.object_key(key),
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": n, "ETag": e} for n, e in sorted(parts)],
                },
            )
        except ClientError as exc:
            # Missing or wrong parts, parts too small, unknown upload: the client's to fix.
            if _error_code(exc) in {
                "InvalidPart",
                "InvalidPartOrder",
                "EntityTooSmall",
                "NoSuchUpload",
            }:
                raise StorageError(f"cannot complete upload of {key!r}: {exc}") from exc
            raise
        return self.size(key)

    def abort_direct_upload(self, key: str, upload_id: str) -> None:
        self._abort_multipart(self.object_key(key), upload_id)


class _CountingReader:
    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.count += len(data)
        return data


def storage_from_url(url: str, *, s3_endpoint_url: str | None = None) -> Storage:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalStorage(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        return S3Storage(parsed.netloc, unquote(parsed.path), endpoint_url=s3_endpoint_url)
    raise StorageError(f"unsupported storage URL: {url!r}")
