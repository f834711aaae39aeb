"""Object storage behind one small interface: local disk (the embedded default) or S3.

Keys are relative, `/`-separated paths such as `org/<org_id>/videos/<video_id>/source`.
Nothing here knows about the database or who may read what.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol
from urllib.parse import unquote, urlparse

_CHUNK = 1024 * 1024


class StorageError(Exception):
    pass


class ObjectNotFound(StorageError):
    pass


def validate_key(key: str) -> str:
    """Reject keys that could escape the storage root or confuse S3."""
    path = PurePosixPath(key)
    if (
        not key
        or key.startswith("/")
        or any(part in {"", ".", ".."} for part in key.split("/"))
        or "\\" in key
        or "\x00" in key
        or len(key) > 900
        or path.is_absolute()
    ):
        raise StorageError(f"invalid storage key: {key!r}")
    return key


class Storage(Protocol):
    def put(self, key: str, stream: IO[bytes], *, content_type: str | None = None) -> int: ...

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> int: ...

    def open(self, key: str) -> Iterator[bytes]: ...

    def size(self, key: str) -> int: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def check(self) -> None:
        """Raise if the backend is unreachable or not writable (used by /readyz)."""
        ...


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise StorageError(f"invalid storage key: {key!r}")
        return path

    def put(self, key: str, stream: IO[bytes], *, content_type: str | None = None) -> int:
        target = self.path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise StorageError(f"a prefix of {key!r} is itself an object") from None
        if target.is_dir():
            raise StorageError(f"{key!r} is a prefix of other objects")
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
        import io

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

    def check(self) -> None:
        probe = self.root / ".readyz"
        probe.write_bytes(b"ok")
        probe.unlink()


class S3Storage:
    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix.strip("/")
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
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404"}:
                raise ObjectNotFound(key) from None
            raise StorageError(str(exc)) from exc
        return iter(lambda: body.read(_CHUNK), b"")

    def size(self, key: str) -> int:
        from botocore.exceptions import ClientError

        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
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

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)


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
