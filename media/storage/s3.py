"""Storage in an S3 bucket (or any S3-compatible store), under an optional key prefix."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from typing import IO, Any

from media.storage.base import (
    _CHUNK,
    _UPLOADS_DIR,
    ObjectNotFound,
    StorageError,
    _check_state,
    content_disposition,
    validate_key,
    validate_upload_id,
)

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's minimum for every part but the last
MAX_PART_SIZE = 5 * 1024 * 1024 * 1024
DEFAULT_PART_SIZE = 8 * 1024 * 1024
MAX_PARTS = 10_000


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

    def delete_prefix(self, prefix: str) -> int:
        from botocore.exceptions import ClientError

        folder = self.object_key(prefix.rstrip("/")) + "/"
        deleted = 0
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=folder
            )
            for page in pages:  # at most 1,000 keys a page: one DeleteObjects request each
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if not keys:
                    continue
                answer = self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True}
                )
                if errors := answer.get("Errors"):
                    raise StorageError(
                        f"could not delete {len(errors)} objects under {prefix!r}: "
                        f"{errors[0].get('Code')}"
                    )
                deleted += len(keys)
            # Parts of multipart uploads are no objects until completed, and are billed.
            uploads = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=folder
            )
            for page in uploads:
                for upload in page.get("Uploads", []):
                    self._abort_multipart(upload["Key"], upload["UploadId"])
        except ClientError as exc:
            raise StorageError(str(exc)) from exc
        return deleted

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
    # overwrites it with the same bytes; only the last part of a finished upload may be shorter
    # (`ends`). Bytes that do not fill a part yet wait in a tail object
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
        self,
        state: dict[str, Any],
        offset: int,
        stream: IO[bytes],
        *,
        limit: int,
        ends: bool = False,
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
            if tail and ends and remaining == 0:
                # The upload's last bytes: its last part at once, not a tail that completing
                # would read back and send again.
                number = len(parts) + 1
                etag = self._upload_part(state["multipart_id"], object_key, number, buffer)
                parts.append([number, etag, tail])
                start += tail
                tail = 0
            elif tail:
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
