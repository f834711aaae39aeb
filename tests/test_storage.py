"""Object storage: local disk, and S3 against moto's standalone server."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from media.storage import (
    LocalStorage,
    ObjectNotFound,
    S3Storage,
    Storage,
    StorageError,
    storage_from_url,
    validate_key,
)

BAD_KEYS = [
    "",
    "../x",
    "a/../../x",
    "/abs",
    "/etc/passwd",
    "a//b",
    "a/",
    "./a",
    "a/./b",
    "..",
    "a\\b",
    "a\x00b",
    "x" * 901,
    # Dot components are internal: partial uploads, temporary files, the readiness probe.
    ".uploads/abc",
    "a/.hidden",
    ".readyz",
    "org/1/.tmp-x",
]


def read_all(storage: Storage, key: str) -> bytes:
    return b"".join(storage.open(key))


class _Exploding(io.RawIOBase):
    """A stream that fails halfway through, like a client disconnecting mid-upload."""

    def __init__(self) -> None:
        self.sent = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.sent:
            raise ConnectionResetError("client went away")
        self.sent = True
        buffer[:5] = b"hello"
        return 5


# -- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["a", "org/1/videos/2/source", "a.b/c-d_e", "x" * 900, "a/b.", "clip.mp4"]
)
def test_validate_key_accepts_relative_paths(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize("key", BAD_KEYS)
def test_validate_key_rejects_keys_that_escape_or_confuse(key: str) -> None:
    with pytest.raises(StorageError):
        validate_key(key)


# -- local disk ---------------------------------------------------------------------------------


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "media")


def test_local_put_open_size_exists_delete(local: LocalStorage) -> None:
    key = "org/1/videos/2/source"
    assert not local.exists(key)
    assert local.put(key, io.BytesIO(b"x" * 3000), content_type="video/mp4") == 3000
    assert local.exists(key)
    assert local.size(key) == 3000
    assert read_all(local, key) == b"x" * 3000
    assert local.path(key) == local.root / "org" / "1" / "videos" / "2" / "source"

    assert local.put_bytes(key, b"replaced") == 8
    assert read_all(local, key) == b"replaced"
    # Writes go through a temporary file beside the target, renamed into place.
    assert sorted(p.name for p in local.path(key).parent.iterdir()) == ["source"]

    local.delete(key)
    assert not local.exists(key)
    local.delete(key)  # deleting what is gone is fine


def test_local_open_streams_in_chunks(local: LocalStorage) -> None:
    data = os.urandom(2 * 1024 * 1024 + 17)
    local.put_bytes("big", data)
    chunks = list(local.open("big"))
    assert len(chunks) == 3
    assert b"".join(chunks) == data


def test_local_missing_objects(local: LocalStorage) -> None:
    with pytest.raises(ObjectNotFound):
        local.open("nope")
    with pytest.raises(ObjectNotFound):
        local.size("nope")
    assert local.exists("nope") is False


def test_local_failed_put_leaves_nothing_behind(local: LocalStorage) -> None:
    with pytest.raises(ConnectionResetError):
        local.put("a/b", io.BufferedReader(_Exploding()))
    assert not local.exists("a/b")
    assert list((local.root / "a").iterdir()) == []


def assert_rejects_on_every_operation(storage: Storage, key: str) -> None:
    with pytest.raises(StorageError):
        storage.put_bytes(key, b"x")
    with pytest.raises(StorageError):
        storage.open(key)
    with pytest.raises(StorageError):
        storage.size(key)
    with pytest.raises(StorageError):
        storage.exists(key)
    with pytest.raises(StorageError):
        storage.delete(key)


@pytest.mark.parametrize("key", BAD_KEYS)
def test_local_rejects_bad_keys_on_every_operation(local: LocalStorage, key: str) -> None:
    assert_rejects_on_every_operation(local, key)
    assert not (local.root.parent / "x").exists()


def test_local_rejects_keys_that_escape_through_a_symlink(
    local: LocalStorage, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    (local.root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(StorageError):
        local.open("link/secret")
    with pytest.raises(StorageError):
        local.put_bytes("link/planted", b"x")
    assert not (outside / "planted").exists()


def test_local_check(local: LocalStorage) -> None:
    local.check()
    assert list(local.root.iterdir()) == []


# -- local resumable uploads --------------------------------------------------------------------

MiB = 1024 * 1024


def send(
    storage: Storage, state: dict[str, Any], offset: int, data: bytes, *, limit: int | None = None
) -> tuple[int, dict[str, Any]]:
    """One PATCH request: append `data` from `offset`, as the caller recorded it."""
    return storage.append_upload(
        state, offset, io.BytesIO(data), limit=len(data) if limit is None else limit
    )


def send_in_chunks(
    storage: Storage, state: dict[str, Any], data: bytes, sizes: list[int]
) -> tuple[int, dict[str, Any]]:
    offset = 0
    for size in sizes:
        offset, state = send(storage, state, offset, data[offset : offset + size])
    offset, state = send(storage, state, offset, data[offset:])
    assert offset == len(data)
    return offset, state


class _DiesAfter(io.RawIOBase):
    """Yields `data` up to `cut` bytes, then fails like a client that dropped the connection."""

    def __init__(self, data: bytes, cut: int) -> None:
        self.data = memoryview(data)
        self.cut = cut
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.position >= self.cut:
            raise ConnectionResetError("client went away")
        n = min(len(buffer), self.cut - self.position)
        buffer[:n] = self.data[self.position : self.position + n]
        self.position += n
        return n


def test_local_resumable_upload_in_odd_chunks_round_trips(local: LocalStorage) -> None:
    data = os.urandom(3 * MiB + 5)
    key = "org/1/videos/2/source"
    state = local.begin_upload("up-1", key, content_type="video/mp4")
    assert state == {"backend": "local", "upload_id": "up-1", "key": key}
    json.dumps(state)  # the caller keeps it in the database

    offset, state = send(local, state, 0, data[:1])
    assert offset == 1
    offset, state = send(local, state, offset, data[1 : 1 + MiB + 3])
    assert offset == MiB + 4
    assert not local.exists(key)  # nothing is visible before completion
    offset, state = send(local, state, offset, data[offset:])
    assert offset == len(data)

    assert local.complete_upload(state) == len(data)
    assert read_all(local, key) == data
    assert list((local.root / ".uploads").iterdir()) == []
    # Completing again (a retried request) reports the same object.
    assert local.complete_upload(state) == len(data)
    assert read_all(local, key) == data


def test_local_append_respects_the_limit(local: LocalStorage) -> None:
    state = local.begin_upload("lim", "clip")
    offset, state = send(local, state, 0, b"0123456789", limit=4)
    assert offset == 4
    offset, state = send(local, state, offset, b"456789", limit=0)
    assert offset == 4
    assert local.complete_upload(state) == 4
    assert read_all(local, "clip") == b"0123"


def test_local_append_from_an_earlier_offset_drops_unrecorded_bytes(local: LocalStorage) -> None:
    data = os.urandom(5000)
    state = local.begin_upload("cut", "clip")
    # A request wrote 3000 bytes, but the caller only recorded 1200 before it was cut off.
    send(local, state, 0, data[:1200])
    send(local, state, 1200, b"\xff" * 1800)
    offset, state = send(local, state, 1200, data[1200:])
    assert offset == 5000
    assert local.complete_upload(state) == 5000
    assert read_all(local, "clip") == data


def test_local_interrupted_append_can_be_resumed(local: LocalStorage) -> None:
    data = os.urandom(2 * MiB + 300)
    state = local.begin_upload("flaky", "clip")
    offset, state = send(local, state, 0, data[:1000])
    with pytest.raises(ConnectionResetError):
        local.append_upload(
            state, offset, io.BufferedReader(_DiesAfter(data[offset:], MiB + 7)), limit=len(data)
        )
    # The recorded offset is still good: the client resends from there.
    offset, state = send(local, state, offset, data[offset:])
    assert local.complete_upload(state) == len(data)
    assert read_all(local, "clip") == data


def test_local_append_beyond_the_stored_bytes_is_refused(local: LocalStorage) -> None:
    state = local.begin_upload("gap", "clip")
    offset, state = send(local, state, 0, b"abc")
    with pytest.raises(StorageError):
        send(local, state, offset + 10, b"def")
    assert send(local, state, offset, b"def")[0] == 6


def test_local_abort_discards_the_partial_upload(local: LocalStorage) -> None:
    state = local.begin_upload("gone", "clip")
    send(local, state, 0, b"partial")
    local.abort_upload(state)
    local.abort_upload(state)  # aborting twice is fine
    assert list((local.root / ".uploads").iterdir()) == []
    assert not local.exists("clip")
    with pytest.raises(ObjectNotFound):
        local.complete_upload(state)
    assert not local.exists("clip")


def test_local_partial_uploads_are_not_reachable_through_keys(local: LocalStorage) -> None:
    state = local.begin_upload("secret", "clip")
    send(local, state, 0, b"half a video")
    with pytest.raises(StorageError):
        local.open(".uploads/secret")
    with pytest.raises(StorageError):
        local.delete(".uploads/secret")
    assert (local.root / ".uploads" / "secret").read_bytes() == b"half a video"


def test_local_complete_onto_a_key_under_an_object_fails_and_keeps_the_data(
    local: LocalStorage,
) -> None:
    local.put_bytes("a", b"object")
    state = local.begin_upload("clash", "a/b")
    _, state = send(local, state, 0, b"upload")
    with pytest.raises(StorageError):
        local.complete_upload(state)
    assert read_all(local, "a") == b"object"
    assert (local.root / ".uploads" / "clash").read_bytes() == b"upload"


def test_local_keys_list_every_object_and_no_unfinished_upload(local: LocalStorage) -> None:
    local.put_bytes("org/1/videos/2/source", b"a")
    local.put_bytes("org/1/videos/2/hls/master.m3u8", b"b")
    local.put_bytes("top", b"c")
    state = local.begin_upload("u1", "org/1/videos/3/source")
    local.append_upload(state, 0, io.BytesIO(b"partial"), limit=7)
    local.check()
    assert sorted(local.keys()) == [
        "org/1/videos/2/hls/master.m3u8",
        "org/1/videos/2/source",
        "top",
    ]


@pytest.mark.parametrize("upload_id", ["", "../x", "a/b", "a.b", "x" * 65, "é", "a b", ".."])
def test_local_rejects_bad_upload_ids(local: LocalStorage, upload_id: str) -> None:
    with pytest.raises(StorageError):
        local.begin_upload(upload_id, "clip")
    forged = {"backend": "local", "upload_id": upload_id, "key": "clip"}
    with pytest.raises(StorageError):
        send(local, forged, 0, b"x")
    with pytest.raises(StorageError):
        local.abort_upload(forged)
    assert not (local.root.parent / "x").exists()
    assert not (local.root / "x").exists()


def test_local_refuses_upload_state_of_another_backend(local: LocalStorage) -> None:
    with pytest.raises(StorageError):
        send(local, {"backend": "s3", "upload_id": "a", "key": "clip"}, 0, b"x")


def test_local_has_no_presigned_urls_nor_direct_uploads(local: LocalStorage) -> None:
    assert local.presigned_url("clip", expires_in=60, download_name="clip.mp4") is None
    with pytest.raises(StorageError):
        local.presigned_url("../clip", expires_in=60)
    with pytest.raises(StorageError, match="S3"):
        local.begin_direct_upload("clip")
    with pytest.raises(StorageError):
        local.presigned_part_urls("clip", "id", [1], expires_in=60)
    with pytest.raises(StorageError):
        local.complete_direct_upload("clip", "id", [(1, "etag")])
    with pytest.raises(StorageError):
        local.abort_direct_upload("clip", "id")


def test_storage_from_url_file(tmp_path: Path) -> None:
    root = tmp_path / "with space"
    storage = storage_from_url(root.as_uri())
    assert isinstance(storage, LocalStorage)
    assert storage.root == root.resolve()
    assert root.is_dir()


@pytest.mark.parametrize("url", ["http://example.com/x", "gs://bucket/x", "/plain/path"])
def test_storage_from_url_rejects_other_schemes(url: str) -> None:
    with pytest.raises(StorageError):
        storage_from_url(url)


# -- S3 (moto server) ---------------------------------------------------------------------------


@pytest.fixture
def s3_client(s3_endpoint: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")


@pytest.fixture
def bucket(s3_client: Any) -> str:
    name = f"fieldcast-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3(s3_endpoint: str, bucket: str) -> S3Storage:
    storage = storage_from_url(f"s3://{bucket}/media/", s3_endpoint_url=s3_endpoint)
    assert isinstance(storage, S3Storage)
    return storage


def test_s3_from_url(s3: S3Storage, bucket: str) -> None:
    assert s3.bucket == bucket
    assert s3.prefix == "media"
    assert s3.object_key("a/b") == "media/a/b"


def test_s3_put_open_size_exists_delete(s3: S3Storage, s3_client: Any, bucket: str) -> None:
    s3.check()
    key = "org/1/videos/2/source"
    assert not s3.exists(key)
    assert s3.put(key, io.BytesIO(b"x" * 3000), content_type="video/mp4") == 3000
    assert s3.exists(key)
    assert s3.size(key) == 3000
    assert read_all(s3, key) == b"x" * 3000
    head = s3_client.head_object(Bucket=bucket, Key=f"media/{key}")
    assert head["ContentType"] == "video/mp4"

    assert s3.put_bytes(key, b"replaced", content_type="text/plain") == 8
    assert read_all(s3, key) == b"replaced"
    assert s3.size(key) == 8

    s3.delete(key)
    assert not s3.exists(key)
    s3.delete(key)  # deleting what is gone is fine
    assert s3_client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


def test_s3_put_streams_large_objects_in_parts(s3: S3Storage) -> None:
    data = os.urandom(9 * 1024 * 1024)  # above boto3's 8 MiB multipart threshold
    assert s3.put("big", io.BytesIO(data)) == len(data)
    assert s3.size("big") == len(data)
    assert read_all(s3, "big") == data


def test_s3_missing_objects(s3: S3Storage) -> None:
    with pytest.raises(ObjectNotFound):
        read_all(s3, "nope")
    with pytest.raises(ObjectNotFound):
        s3.size("nope")
    assert s3.exists("nope") is False


@pytest.mark.parametrize("key", ["../x", "/abs", "a//b", ""])
def test_s3_rejects_bad_keys(s3: S3Storage, key: str) -> None:
    assert_rejects_on_every_operation(s3, key)


def test_s3_check_raises_when_the_bucket_is_missing(s3_endpoint: str) -> None:
    storage = storage_from_url("s3://no-such-bucket-fieldcast/x", s3_endpoint_url=s3_endpoint)
    with pytest.raises(ClientError):
        storage.check()


def test_s3_without_prefix(s3_endpoint: str, bucket: str, s3_client: Any) -> None:
    storage = storage_from_url(f"s3://{bucket}", s3_endpoint_url=s3_endpoint)
    assert storage.put_bytes("top", b"1") == 1
    assert s3_client.get_object(Bucket=bucket, Key="top")["Body"].read() == b"1"


# -- S3 resumable uploads -----------------------------------------------------------------------


@pytest.fixture
def s3_small_parts(s3_endpoint: str, bucket: str) -> S3Storage:
    return S3Storage(bucket, "media", endpoint_url=s3_endpoint, part_size=5 * MiB)


def stored_keys(s3_client: Any, bucket: str) -> list[str]:
    listing = s3_client.list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def open_multipart_uploads(s3_client: Any, bucket: str) -> list[str]:
    listing = s3_client.list_multipart_uploads(Bucket=bucket)
    return [u["Key"] for u in listing.get("Uploads", [])]


def test_s3_keys_list_objects_under_the_prefix_only(
    s3_small_parts: S3Storage, s3_client: Any, bucket: str
) -> None:
    s3 = s3_small_parts
    s3.put_bytes("org/1/videos/2/source", b"a")
    s3.put_bytes("org/1/videos/2/hls/master.m3u8", b"b")
    s3_client.put_object(Bucket=bucket, Key="elsewhere/x", Body=b"not ours")
    state = s3.begin_upload("u1", "org/1/videos/3/source")
    s3.append_upload(state, 0, io.BytesIO(b"tail bytes"), limit=10)
    assert sorted(s3.keys()) == ["org/1/videos/2/hls/master.m3u8", "org/1/videos/2/source"]


def test_s3_part_size_has_s3s_minimum(s3_endpoint: str, bucket: str) -> None:
    with pytest.raises(StorageError):
        S3Storage(bucket, endpoint_url=s3_endpoint, part_size=5 * MiB - 1)


def test_s3_resumable_upload_in_irregular_chunks_round_trips(
    s3_small_parts: S3Storage, s3_client: Any, bucket: str
) -> None:
    s3 = s3_small_parts
    data = os.urandom(11 * MiB + 12345)
    key = "org/1/videos/2/source"
    state = s3.begin_upload("tus-1", key, content_type="video/mp4")
    json.dumps(state)  # the caller keeps it in the database

    offset, state = send(s3, state, 0, data[: 100 * 1024])
    assert (offset, state["parts"], state["tail"]) == (100 * 1024, [], 100 * 1024)
    offset, state = send(s3, state, offset, data[offset : offset + 3 * MiB])
    assert len(state["parts"]) == 0
    offset, state = send(s3, state, offset, data[offset : offset + 6 * MiB])
    assert [size for _, _, size in state["parts"]] == [5 * MiB]
    assert offset == 9 * MiB + 100 * 1024 == 5 * MiB + state["tail"]
    assert not s3.exists(key)  # nothing is visible before completion
    offset, state = send(s3, state, offset, data[offset:])
    assert offset == len(data)
    assert [size for _, _, size in state["parts"]] == [5 * MiB, 5 * MiB]
    json.loads(json.dumps(state))

    assert s3.complete_upload(state) == len(data)
    assert read_all(s3, key) == data
    assert s3_client.head_object(Bucket=bucket, Key=f"media/{key}")["ContentType"] == "video/mp4"
    # The tail objects are gone and no multipart upload is left open.
    assert stored_keys(s3_client, bucket) == [f"media/{key}"]
    assert open_multipart_uploads(s3_client, bucket) == []
    # Completing again (a retried request) reports the same object.
    assert s3.complete_upload(state) == len(data)
    assert read_all(s3, key) == data


def test_s3_upload_smaller_than_a_part(s3: S3Storage, s3_client: Any, bucket: str) -> None:
    data = os.urandom(3000)
    state = s3.begin_upload("small", "clip")
    _, state = send_in_chunks(s3, state, data, [1, 999])
    assert state["parts"] == [] and state["tail"] == 3000
    assert s3.complete_upload(state) == 3000
    assert read_all(s3, "clip") == data
    assert stored_keys(s3_client, bucket) == ["media/clip"]
    assert open_multipart_uploads(s3_client, bucket) == []


def test_s3_empty_upload(s3: S3Storage, s3_client: Any, bucket: str) -> None:
    state = s3.begin_upload("empty", "clip", content_type="video/mp4")
    offset, state = send(s3, state, 0, b"")
    assert offset == 0
    assert s3.complete_upload(state) == 0
    assert s3.size("clip") == 0
    assert s3_client.head_object(Bucket=bucket, Key="media/clip")["ContentType"] == "video/mp4"
    assert open_multipart_uploads(s3_client, bucket) == []
    assert s3.complete_upload(state) == 0


def test_s3_append_respects_the_limit(s3_small_parts: S3Storage) -> None:
    s3 = s3_small_parts
    data = os.urandom(6 * MiB)
    state = s3.begin_upload("lim", "clip")
    offset, state = send(s3, state, 0, data, limit=5 * MiB + 10)
    assert offset == 5 * MiB + 10
    assert s3.complete_upload(state) == 5 * MiB + 10
    assert read_all(s3, "clip") == data[: 5 * MiB + 10]


def test_s3_upload_of_whole_parts_completes_twice(s3_small_parts: S3Storage) -> None:
    s3 = s3_small_parts
    data = os.urandom(10 * MiB)
    state = s3.begin_upload("whole", "clip")
    _, state = send_in_chunks(s3, state, data, [2 * MiB, 4 * MiB])
    assert len(state["parts"]) == 2 and state["tail"] == 0
    assert s3.complete_upload(state) == len(data)
    assert s3.complete_upload(state) == len(data)
    assert read_all(s3, "clip") == data


def test_s3_interrupted_append_can_be_resumed(
    s3_small_parts: S3Storage, s3_client: Any, bucket: str
) -> None:
    s3 = s3_small_parts
    data = os.urandom(13 * MiB + 77)
    state = s3.begin_upload("flaky", "clip")
    offset, state = send(s3, state, 0, data[: 2 * MiB])
    # Dies after a whole part went out and part of the next one was buffered.
    with pytest.raises(ConnectionResetError):
        s3.append_upload(
            state,
            offset,
            io.BufferedReader(_DiesAfter(data[offset:], 7 * MiB)),
            limit=len(data),
        )
    offset, state = send(s3, state, offset, data[offset:])
    assert s3.complete_upload(state) == len(data)
    assert read_all(s3, "clip") == data
    assert stored_keys(s3_client, bucket) == ["media/clip"]


def test_s3_append_whose_result_was_never_recorded_is_sent_again(
    s3_small_parts: S3Storage, s3_client: Any, bucket: str
) -> None:
    s3 = s3_small_parts
    data = os.urandom(12 * MiB)
    state = s3.begin_upload("lost", "clip")
    offset, state = send(s3, state, 0, data[: 4 * MiB])
    # These requests succeed, but the caller fails to record their results (say its commit
    # fails), so the client resends from the last recorded offset, in other chunk sizes.
    send(s3, state, offset, data[offset : offset + 3 * MiB])
    send(s3, state, offset, data[offset : offset + 100])
    offset, state = send(s3, state, offset, data[offset : offset + 2 * MiB])
    offset, state = send(s3, state, offset, data[offset:])
    assert s3.complete_upload(state) == len(data)
    assert read_all(s3, "clip") == data
    assert stored_keys(s3_client, bucket) == ["media/clip"]


def test_s3_the_bytes_that_end_an_upload_go_up_as_its_last_part(
    s3_small_parts: S3Storage, s3_client: Any, bucket: str
) -> None:
    s3 = s3_small_parts
    data = os.urandom(12 * MiB + 333)
    state = s3.begin_upload("ends", "clip")
    offset, state = send(s3, state, 0, data[: 7 * MiB])
    assert state["tail"] == 2 * MiB
    # The last request falls short: what came stays a tail, to resume from.
    with pytest.raises(ConnectionResetError):
        s3.append_upload(
            state,
            offset,
            io.BufferedReader(_DiesAfter(data[offset:], 4 * MiB)),
            limit=len(data) - offset,
            ends=True,
        )
    offset, state = s3.append_upload(
        state, offset, io.BytesIO(data[offset : offset + MiB]), limit=len(data) - offset, ends=True
    )
    assert state["tail"] == 3 * MiB and len(state["parts"]) == 1
    # All of it: the short remainder is the last part at once, no tail object is left.
    offset, state = s3.append_upload(
        state, offset, io.BytesIO(data[offset:]), limit=len(data) - offset, ends=True
    )
    assert offset == len(data) and state["tail"] == 0
    assert [size for _, _, size in state["parts"]] == [5 * MiB, 5 * MiB, 2 * MiB + 333]
    assert s3.complete_upload(state) == len(data)
    assert read_all(s3, "clip") == data
    assert stored_keys(s3_client, bucket) == ["media/clip"]
    assert s3.complete_upload(state) == len(data)


def test_s3_append_at_the_wrong_offset_is_refused(s3: S3Storage) -> None:
    state = s3.begin_upload("gap", "clip")
    offset, state = send(s3, state, 0, b"abc")
    with pytest.raises(StorageError):
        send(s3, state, offset - 1, b"cdef")
    with pytest.raises(StorageError):
        send(s3, state, offset + 1, b"def")
    assert send(s3, state, offset, b"def")[0] == 6


def test_s3_abort_leaves_nothing_behind(
    s3_small_parts: S3Storage, s3_client: Any, bucket: str
) -> None:
    s3 = s3_small_parts
    state = s3.begin_upload("gone", "clip")
    _, state = send(s3, state, 0, os.urandom(6 * MiB))
    assert len(state["parts"]) == 1 and state["tail"] == MiB
    assert open_multipart_uploads(s3_client, bucket) == ["media/clip"]
    assert stored_keys(s3_client, bucket) != []

    s3.abort_upload(state)
    s3.abort_upload(state)  # aborting twice is fine
    assert open_multipart_uploads(s3_client, bucket) == []
    assert stored_keys(s3_client, bucket) == []
    with pytest.raises(StorageError):
        s3.complete_upload(state)
    assert not s3.exists("clip")


@pytest.mark.parametrize("upload_id", ["", "../x", "a/b", "x" * 65])
def test_s3_rejects_bad_upload_ids(
    s3: S3Storage, s3_client: Any, bucket: str, upload_id: str
) -> None:
    with pytest.raises(StorageError):
        s3.begin_upload(upload_id, "clip")
    assert open_multipart_uploads(s3_client, bucket) == []


def test_s3_upload_tails_are_not_reachable_through_keys(s3: S3Storage) -> None:
    state = s3.begin_upload("secret", "clip")
    send(s3, state, 0, b"half a video")
    with pytest.raises(StorageError):
        read_all(s3, ".uploads/secret/tail-0")


_MEMORY_PROBE = """
import hashlib, json, os, sys, tracemalloc
from media.storage import S3Storage

class Camera:
    # Produces the upload as it is read, as a socket would: nothing is kept.
    def __init__(self, total):
        self.left = total
        self.digest = hashlib.sha256()
    def read(self, size=-1):
        size = self.left if size < 0 else min(size, self.left)
        chunk = os.urandom(size)
        self.left -= size
        self.digest.update(chunk)
        return chunk

endpoint, bucket, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
storage = S3Storage(bucket, "media", endpoint_url=endpoint)
state = storage.begin_upload("memory", "big")
camera = Camera(total)
tracemalloc.start()
offset, state = storage.append_upload(state, 0, camera, limit=total)
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(json.dumps({"offset": offset, "state": state, "peak": peak,
                  "sha256": camera.digest.hexdigest()}))
"""


def test_s3_append_does_not_hold_the_request_in_memory(s3_endpoint: str, s3: S3Storage) -> None:
    # The client runs in its own process so that the in-process moto server's copies of the
    # parts do not count.
    total = 32 * MiB + 4321
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, s3_endpoint, s3.bucket, str(total)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=120,
    )
    probe = json.loads(result.stdout)
    assert probe["offset"] == total
    assert [size for _, _, size in probe["state"]["parts"]] == [8 * MiB] * 4
    # Below one 8 MiB part (about 4 MiB in practice): parts are buffered on disk, reads are
    # 1 MiB.
    assert probe["peak"] < 7 * MiB, probe["peak"]

    assert s3.complete_upload(probe["state"]) == total
    digest = hashlib.sha256()
    for chunk in s3.open("big"):
        digest.update(chunk)
    assert digest.hexdigest() == probe["sha256"]


# -- S3 presigned URLs and direct uploads -------------------------------------------------------


def test_s3_presigned_download(s3: S3Storage) -> None:
    data = os.urandom(4000)
    s3.put_bytes("org/1/videos/2/720p.mp4", data, content_type="video/mp4")

    url = s3.presigned_url("org/1/videos/2/720p.mp4", expires_in=300)
    assert url is not None and "X-Amz-Signature=" in url and "X-Amz-Expires=300" in url
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == data
    assert "attachment" not in response.headers.get("Content-Disposition", "")

    url = s3.presigned_url(
        "org/1/videos/2/720p.mp4",
        expires_in=300,
        download_name='Ladder "safety" \u2013 week 1.mp4',
        content_type="application/octet-stream",
    )
    assert url is not None
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.content == data
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="Ladder _safety_ _ week 1.mp4"')
    assert "filename*=UTF-8''Ladder%20%22safety%22%20%E2%80%93%20week%201.mp4" in disposition
    assert response.headers["Content-Type"] == "application/octet-stream"


def test_s3_direct_upload_with_presigned_parts(s3: S3Storage, s3_client: Any, bucket: str) -> None:
    data = os.urandom(5 * MiB + 1234)
    key = "org/1/videos/3/source"
    upload_id = s3.begin_direct_upload(key, content_type="video/mp4")
    urls = s3.presigned_part_urls(key, upload_id, [1, 2], expires_in=600)
    assert sorted(urls) == [1, 2]

    etags = {}
    for number, chunk in ((2, data[5 * MiB :]), (1, data[: 5 * MiB])):
        response = requests.put(urls[number], data=chunk, timeout=30)
        assert response.status_code == 200, response.text
        etags[number] = response.headers["ETag"]
    assert not s3.exists(key)

    assert s3.complete_direct_upload(key, upload_id, [(2, etags[2]), (1, etags[1])]) == len(data)
    assert read_all(s3, key) == data
    assert s3_client.head_object(Bucket=bucket, Key=f"media/{key}")["ContentType"] == "video/mp4"
    assert open_multipart_uploads(s3_client, bucket) == []


def test_s3_direct_upload_with_a_wrong_part_fails(s3: S3Storage) -> None:
    upload_id = s3.begin_direct_upload("clip")
    url = s3.presigned_part_urls("clip", upload_id, [1], expires_in=600)[1]
    assert requests.put(url, data=b"abc", timeout=10).status_code == 200
    with pytest.raises(StorageError):
        s3.complete_direct_upload("clip", upload_id, [(1, '"not-the-etag"')])
    with pytest.raises(StorageError):
        s3.complete_direct_upload("clip", upload_id, [])
    assert not s3.exists("clip")


def test_s3_abort_direct_upload(s3: S3Storage, s3_client: Any, bucket: str) -> None:
    upload_id = s3.begin_direct_upload("clip")
    url = s3.presigned_part_urls("clip", upload_id, [1], expires_in=600)[1]
    assert requests.put(url, data=b"abc", timeout=10).status_code == 200
    assert open_multipart_uploads(s3_client, bucket) == ["media/clip"]

    s3.abort_direct_upload("clip", upload_id)
    s3.abort_direct_upload("clip", upload_id)  # aborting twice is fine
    assert open_multipart_uploads(s3_client, bucket) == []
    assert not s3.exists("clip")


@pytest.mark.parametrize("number", [0, -1, 10_001])
def test_s3_presigned_part_numbers_are_checked(s3: S3Storage, number: int) -> None:
    with pytest.raises(StorageError):
        s3.presigned_part_urls("clip", "upload", [number], expires_in=60)
