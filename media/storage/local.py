"""Storage on the local disk: the embedded default, for tests and single-machine installs."""

from __future__ import annotations

import ctypes
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any, cast

from media.storage.base import (
    _CHUNK,
    _UPLOADS_DIR,
    ObjectNotFound,
    StorageError,
    _check_state,
    validate_key,
    validate_upload_id,
)


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

    def delete_prefix(self, prefix: str) -> int:
        folder = self.path(prefix.rstrip("/"))
        if not folder.is_dir():
            return 0
        # Counted as `keys` would list them: files being written (dot names) go too.
        deleted = sum(
            1 for _, _, files in os.walk(folder) for name in files if not name.startswith(".")
        )
        shutil.rmtree(folder, ignore_errors=True)
        if folder.exists():
            raise StorageError(f"could not delete every object under {prefix!r}")
        return deleted

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
        self,
        state: dict[str, Any],
        offset: int,
        stream: IO[bytes],
        *,
        limit: int,
        ends: bool = False,
    ) -> tuple[int, dict[str, Any]]:
        del ends  # the partial file is the object to be: nothing is kept aside
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
