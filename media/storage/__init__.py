"""Object storage behind one small interface: local disk (the embedded default) or S3.

`base` holds the `Storage` interface, the key rules and the errors; `local` and `s3` the two
backends. Callers import from here: `from media.storage import Storage, storage_from_url`.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from media.storage.base import (
    ObjectNotFound,
    Storage,
    StorageError,
    content_disposition,
    validate_key,
    validate_upload_id,
)
from media.storage.local import LocalStorage
from media.storage.s3 import (
    DEFAULT_PART_SIZE,
    MAX_PART_SIZE,
    MAX_PARTS,
    MIN_PART_SIZE,
    S3Storage,
)

__all__ = [
    "DEFAULT_PART_SIZE",
    "MAX_PARTS",
    "MAX_PART_SIZE",
    "MIN_PART_SIZE",
    "LocalStorage",
    "ObjectNotFound",
    "S3Storage",
    "Storage",
    "StorageError",
    "content_disposition",
    "readable_file",
    "storage_from_url",
    "validate_key",
    "validate_upload_id",
]


def storage_from_url(url: str, *, s3_endpoint_url: str | None = None) -> Storage:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalStorage(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        return S3Storage(parsed.netloc, unquote(parsed.path), endpoint_url=s3_endpoint_url)
    raise StorageError(f"unsupported storage URL: {url!r}")


def readable_file(
    storage: Storage, key: str, directory: Path, *, max_bytes: int | None = None
) -> Path:
    """A file on this machine holding the object: local storage's own file, read in place, or a
    copy downloaded into `directory`. Past `max_bytes`, StorageError (nothing more is read)."""
    if isinstance(storage, LocalStorage):
        path = storage.path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise StorageError(f"{key!r} is larger than {max_bytes} bytes")
        return path
    target = directory / Path(key).name
    written = 0
    with target.open("wb") as out:
        for chunk in storage.open(key):
            written += len(chunk)
            if max_bytes is not None and written > max_bytes:
                raise StorageError(f"{key!r} is larger than {max_bytes} bytes")
            out.write(chunk)
    return target
