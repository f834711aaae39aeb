"""Object storage: local disk, and S3 against moto's standalone server."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
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


@pytest.mark.parametrize("key", ["a", "org/1/videos/2/source", "a.b/c-d_e", "x" * 900])
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


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            patch.delenv(name, raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


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
