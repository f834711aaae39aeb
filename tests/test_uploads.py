"""Uploads as phones send them: tus through the official Python client over real HTTP, broken
connections, protocol errors, expiry, and S3 (multipart through tus, and direct) against moto."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import requests
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select, text, update
from tusclient.client import TusClient

from fieldcast.context import AppContext, build_context
from fieldcast.db import Database
from fieldcast.models.outbox import OutboxJob
from fieldcast.models.uploads import Upload
from fieldcast.models.videos import Video, VideoStatus
from fieldcast.settings import Settings
from fieldcast.uploads import services as uploads
from media.storage import LocalStorage, S3Storage
from tests import factories
from tests.live_server import LiveServer, committed_factories, serve

TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_TYPE = "application/offset+octet-stream"

pytestmark = pytest.mark.timeout(120, method="thread")


def metadata(video_id: Any, **extra: str) -> str:
    pairs = {"video_id": str(video_id), **extra}
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())


# The first bytes of an MP4 (its `ftyp` box): a file starting so is not refused at once.
MP4_HEAD = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"


def _upload_id(location: str) -> uuid.UUID:
    """The upload's id in its URL (`/api/v1/uploads/{id}/{secret}`)."""
    return uuid.UUID(urlparse(location).path.split("/")[4])


def _file(tmp_path: Path, size: int, name: str = "clip.mp4") -> Path:
    path = tmp_path / name
    # Not repeating, so a chunk stored at the wrong offset cannot go unnoticed.
    block = hashlib.sha256(b"fieldcast").digest()
    with path.open("wb") as handle:
        handle.write(MP4_HEAD[:size])
        written = min(size, len(MP4_HEAD))
        counter = 0
        while written < size:
            chunk = hashlib.sha256(block + counter.to_bytes(8, "big")).digest() * 128
            handle.write(chunk[: size - written])
            written += len(chunk[: size - written])
            counter += 1
    return path


def _source_bytes(ctx: AppContext, video_id: uuid.UUID) -> bytes:
    with ctx.db.session() as session:
        video = session.get_one(Video, video_id)
        assert video.source_key is not None
        return b"".join(ctx.storage.open(video.source_key))


# -- over real HTTP, with tuspy ------------------------------------------------------------------


@dataclasses.dataclass
class Live:
    server: LiveServer
    ctx: AppContext
    rep: Any
    peer: Any
    admin: Any

    def draft(self, user: Any | None = None) -> uuid.UUID:
        with self.server.app.test_client() as client:
            response = client.post(
                "/api/v1/videos",
                json={"title": "Competitor pricing"},
                headers=self.server.login(user or self.rep),
            )
        assert response.status_code == 201
        return uuid.UUID(response.get_json()["id"])

    def video(self, video_id: uuid.UUID) -> Video:
        with self.ctx.db.session() as session:
            return session.get_one(Video, video_id)

    def tus(self, user: Any | None = None) -> TusClient:
        return TusClient(
            f"{self.server.url}/api/v1/uploads", headers=self.server.login(user or self.rep)
        )


def _live(settings: Settings, db: Database, redis: Redis, storage: Any) -> Iterator[Live]:
    ctx = build_context(settings, db=db, redis=redis, storage=storage)
    with committed_factories(db) as session:
        org = factories.OrganisationFactory()
        rep = factories.UserFactory(org=org)
        peer = factories.UserFactory(org=org)
        admin = factories.UserFactory(org=org, admin=True)
        session.commit()
    with serve(ctx) as server:
        yield Live(server, ctx, rep, peer, admin)


@pytest.fixture
def live(settings: Settings, committed_db: Database, redis: Redis) -> Iterator[Live]:
    yield from _live(settings, committed_db, redis, None)


def test_tuspy_uploads_in_chunks_and_the_video_goes_to_processing(
    live: Live, tmp_path: Path
) -> None:
    video_id = live.draft()
    path = _file(tmp_path, 700_000)
    uploader = live.tus().uploader(
        file_path=str(path),
        chunk_size=64 * 1024,
        metadata={"video_id": str(video_id), "filename": "clip.mp4", "filetype": "video/mp4"},
    )
    uploader.upload()

    assert _source_bytes(live.ctx, video_id) == path.read_bytes()
    video = live.video(video_id)
    assert video.status is VideoStatus.PROCESSING
    assert video.source_bytes == 700_000
    assert video.source_version == 1
    with live.ctx.db.session() as session:
        jobs = session.scalars(select(OutboxJob).where(OutboxJob.task == "video.process")).all()
        assert [job.payload for job in jobs] == [{"video_id": str(video_id), "version": 1}]
        upload = session.scalars(select(Upload).where(Upload.video_id == video_id)).one()
        assert (upload.filename, upload.filetype) == ("clip.mp4", "video/mp4")
    # The partial file is gone: the bytes live only under the video's source key.
    assert isinstance(live.ctx.storage, LocalStorage)
    assert not (live.ctx.storage.root / ".uploads" / str(upload.id)).exists()


def test_an_interrupted_upload_resumes_from_the_server_offset_in_a_new_process(
    live: Live, tmp_path: Path
) -> None:
    video_id = live.draft()
    path = _file(tmp_path, 500_000)
    first = live.tus().uploader(
        file_path=str(path), chunk_size=100_000, metadata={"video_id": str(video_id)}
    )
    first.upload(stop_at=200_000)  # the app is killed here
    assert first.url is not None
    assert live.video(video_id).status is VideoStatus.UPLOADING

    # A new client knows only the upload URL, as an app restored from its own storage.
    second = live.tus().uploader(file_path=str(path), url=first.url, chunk_size=150_000)
    assert second.get_offset() == 200_000
    second.upload()
    assert _source_bytes(live.ctx, video_id) == path.read_bytes()
    assert live.video(video_id).status is VideoStatus.PROCESSING


def test_a_connection_lost_mid_chunk_keeps_what_arrived(live: Live, tmp_path: Path) -> None:
    video_id = live.draft()
    path = _file(tmp_path, 300_000)
    uploader = live.tus().uploader(
        file_path=str(path), chunk_size=300_000, metadata={"video_id": str(video_id)}
    )
    uploader.set_url(uploader.create_url())
    assert uploader.url is not None
    target = urlparse(uploader.url)
    headers = live.server.login(live.rep)
    # A PATCH announcing 300,000 bytes whose connection drops after 120,000.
    sent = path.read_bytes()[:120_000]
    with socket.create_connection((target.hostname, target.port)) as sock:
        head = (
            f"PATCH {target.path} HTTP/1.1\r\nHost: {target.netloc}\r\n"
            f"Authorization: {headers['Authorization']}\r\nTus-Resumable: 1.0.0\r\n"
            f"Upload-Offset: 0\r\nContent-Type: {OFFSET_TYPE}\r\nContent-Length: 300000\r\n\r\n"
        )
        sock.sendall(head.encode() + sent)
        sock.shutdown(socket.SHUT_WR)
        sock.recv(1024)

    offset = requests.head(uploader.url, headers={**headers, **TUS}, timeout=10)
    assert offset.status_code == 200
    assert int(offset.headers["Upload-Offset"]) == 120_000
    resumed = live.tus().uploader(file_path=str(path), url=uploader.url, chunk_size=64 * 1024)
    resumed.upload()
    assert _source_bytes(live.ctx, video_id) == path.read_bytes()


def test_bytes_lost_in_a_machine_crash_are_sent_again(live: Live, tmp_path: Path) -> None:
    """Local storage syncs an upload once, when it completes. If the machine goes down before
    the page cache reached the disk, the partial file is shorter than the recorded offset: the
    server reports what it holds and the client resends the rest."""
    video_id = live.draft()
    path = _file(tmp_path, 400_000)
    first = live.tus().uploader(
        file_path=str(path), chunk_size=100_000, metadata={"video_id": str(video_id)}
    )
    first.upload(stop_at=300_000)
    assert first.url is not None
    upload_id = str(_upload_id(first.url))
    assert isinstance(live.ctx.storage, LocalStorage)
    with (live.ctx.storage.root / ".uploads" / upload_id).open("r+b") as partial:
        partial.truncate(130_000)  # what reached the disk before the crash

    headers = {**live.server.login(live.rep), **TUS}
    stale = requests.patch(
        first.url,
        data=path.read_bytes()[300_000:],
        headers={**headers, "Upload-Offset": "300000", "Content-Type": OFFSET_TYPE},
        timeout=10,
    )
    assert stale.status_code == 409
    assert stale.headers["Upload-Offset"] == "130000"
    assert requests.head(first.url, headers=headers, timeout=10).headers["Upload-Offset"] == (
        "130000"
    )
    resumed = live.tus().uploader(file_path=str(path), url=first.url, chunk_size=100_000)
    resumed.upload()
    assert _source_bytes(live.ctx, video_id) == path.read_bytes()
    assert live.video(video_id).status is VideoStatus.PROCESSING


def test_tuspy_with_checksums(live: Live, tmp_path: Path) -> None:
    video_id = live.draft()
    path = _file(tmp_path, 200_000)
    live.tus().uploader(
        file_path=str(path),
        chunk_size=50_000,
        metadata={"video_id": str(video_id)},
        upload_checksum=True,
    ).upload()
    assert _source_bytes(live.ctx, video_id) == path.read_bytes()


def _process_jobs(ctx: AppContext, video_id: uuid.UUID) -> list[dict[str, Any]]:
    with ctx.db.session() as session:
        return [
            job.payload
            for job in session.scalars(select(OutboxJob).where(OutboxJob.task == "video.process"))
            if job.payload["video_id"] == str(video_id)
        ]


# -- every way an upload completes records its processing at once ------------------------------


def test_an_empty_file_is_complete_when_its_upload_is_created(live: Live, tmp_path: Path) -> None:
    """tus clients send no PATCH for an empty file: the creation itself completes it."""
    video_id = live.draft()
    uploader = live.tus().uploader(
        file_path=str(_file(tmp_path, 0)), chunk_size=1024, metadata={"video_id": str(video_id)}
    )
    uploader.upload()
    assert uploader.url is not None

    assert live.video(video_id).status is VideoStatus.PROCESSING
    assert _process_jobs(live.ctx, video_id) == [{"video_id": str(video_id), "version": 1}]
    head = requests.head(uploader.url, headers={**live.server.login(live.rep), **TUS}, timeout=10)
    assert (head.status_code, head.headers["Upload-Offset"]) == (200, "0")
    assert "Upload-Expires" not in head.headers  # complete: it no longer expires


def test_creation_with_upload_of_the_whole_file_is_processed_at_once(
    live: Live, tmp_path: Path
) -> None:
    video_id = live.draft()
    data = _file(tmp_path, 50_000).read_bytes()
    created = requests.post(
        f"{live.server.url}/api/v1/uploads",
        data=data,
        headers={
            **live.server.login(live.rep),
            **TUS,
            "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(video_id),
            "Content-Type": OFFSET_TYPE,
        },
        timeout=10,
    )
    assert created.status_code == 201, created.text
    assert created.headers["Upload-Offset"] == str(len(data))
    assert live.video(video_id).status is VideoStatus.PROCESSING
    assert _process_jobs(live.ctx, video_id) == [{"video_id": str(video_id), "version": 1}]
    assert _source_bytes(live.ctx, video_id) == data


def test_the_last_patch_records_processing(live: Live, tmp_path: Path) -> None:
    video_id = live.draft()
    path = _file(tmp_path, 30_000)
    uploader = live.tus().uploader(
        file_path=str(path), chunk_size=10_000, metadata={"video_id": str(video_id)}
    )
    uploader.upload(stop_at=20_000)
    assert _process_jobs(live.ctx, video_id) == []
    uploader.upload()
    assert live.video(video_id).status is VideoStatus.PROCESSING
    assert _process_jobs(live.ctx, video_id) == [{"video_id": str(video_id), "version": 1}]


def test_an_empty_file_fails_with_its_reason_without_waiting_for_housekeeping(
    live: Live,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    committed_db: Database,
    redis: Redis,
) -> None:
    from tests.worker_support import install_worker_context, run_burst

    install_worker_context(monkeypatch, settings, committed_db, redis)
    video_id = live.draft()
    live.tus().uploader(
        file_path=str(_file(tmp_path, 0)), chunk_size=1024, metadata={"video_id": str(video_id)}
    ).upload()

    # Only the media queues: the periodic upload housekeeping (queue default) plays no part.
    assert run_burst(["media-fast", "media"])
    video = live.video(video_id)
    assert (video.status, video.failure_code) == (VideoStatus.FAILED, "empty_file")


def test_only_the_author_uploads_to_a_draft(live: Live, tmp_path: Path) -> None:
    video_id = live.draft()
    path = _file(tmp_path, 10_000)
    for user, status in ((live.peer, 404), (live.admin, 403)):
        response = requests.post(
            f"{live.server.url}/api/v1/uploads",
            headers={
                **live.server.login(user),
                **TUS,
                "Upload-Length": "10000",
                "Upload-Metadata": metadata(video_id),
            },
            timeout=10,
        )
        assert response.status_code == status, response.text
        assert response.headers["Content-Type"] == "application/problem+json"
    uploader = live.tus().uploader(file_path=str(path), metadata={"video_id": str(video_id)})
    uploader.set_url(uploader.create_url())
    assert uploader.url is not None
    # Another member cannot see, resume or end the author's upload.
    peer = {**live.server.login(live.peer), **TUS}
    assert requests.head(uploader.url, headers=peer, timeout=10).status_code == 404
    assert requests.delete(uploader.url, headers=peer, timeout=10).status_code == 404
    assert live.video(video_id).status is VideoStatus.UPLOADING


# -- the protocol, through the test client --------------------------------------------------------


def _create(client: FlaskClient, headers: dict[str, str], video_id: Any, length: int) -> str:
    response = client.post(
        "/api/v1/uploads",
        headers={
            **headers,
            **TUS,
            "Upload-Length": str(length),
            "Upload-Metadata": metadata(video_id, filename="a.mp4"),
        },
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.headers["Tus-Resumable"] == "1.0.0"
    assert "Upload-Expires" in response.headers
    return urlparse(response.headers["Location"]).path


def _patch(
    client: FlaskClient, headers: dict[str, str], url: str, offset: int, data: bytes, **extra: str
) -> Any:
    return client.patch(
        url,
        data=data,
        headers={
            **headers,
            **TUS,
            "Upload-Offset": str(offset),
            "Content-Type": OFFSET_TYPE,
            **extra,
        },
    )


@pytest.fixture
def draft(client: FlaskClient, rep: Any, auth: Any) -> str:
    response = client.post("/api/v1/videos", json={"title": "Objection"}, headers=auth(rep))
    return str(response.get_json()["id"])


def test_options_describes_the_server(client: FlaskClient, settings: Settings) -> None:
    response = client.options("/api/v1/uploads")
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert set(response.headers["Tus-Extension"].split(",")) == {
        "creation",
        "creation-defer-length",
        "creation-with-upload",
        "termination",
        "checksum",
        "expiration",
    }
    assert response.headers["Tus-Max-Size"] == str(settings.limits.max_upload_bytes)
    assert response.headers["Tus-Checksum-Algorithm"] == "sha1"


def test_browsers_may_read_the_tus_headers(settings: Settings, context: AppContext) -> None:
    from api.app import create_app

    app = create_app(
        dataclasses.replace(settings, cors_origins=("https://app.example.com",)), context=context
    )
    client = app.test_client()
    origin = {"Origin": "https://app.example.com"}
    preflight = client.options(
        "/api/v1/uploads/" + str(uuid.uuid4()),
        headers={
            **origin,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization,tus-resumable,upload-offset,"
            "content-type,upload-checksum",
        },
    )
    assert preflight.status_code in (200, 204)
    assert "PATCH" in preflight.headers["Access-Control-Allow-Methods"]
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    for header in ("tus-resumable", "upload-offset", "upload-checksum"):
        assert header in allowed
    answer = client.options("/api/v1/uploads", headers=origin)
    exposed = {
        h.strip().lower() for h in answer.headers["Access-Control-Expose-Headers"].split(",")
    }
    assert {"location", "upload-offset", "upload-length", "tus-resumable", "upload-expires"} <= (
        exposed
    )


def test_creation_with_upload_and_head(
    client: FlaskClient, rep: Any, auth: Any, draft: str
) -> None:
    response = client.post(
        "/api/v1/uploads",
        data=MP4_HEAD + b"x" * 16,
        headers={
            **auth(rep),
            **TUS,
            "Upload-Length": "100",
            "Upload-Metadata": metadata(draft, filename="a.mp4", filetype="video/mp4"),
            "Content-Type": OFFSET_TYPE,
        },
    )
    assert response.status_code == 201
    assert response.headers["Upload-Offset"] == "40"
    url = urlparse(response.headers["Location"]).path
    head = client.head(url, headers={**auth(rep), **TUS})
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == "40"
    assert head.headers["Upload-Length"] == "100"
    assert head.headers["Cache-Control"] == "no-store"
    from api.resources.uploads import parse_metadata

    assert parse_metadata(head.headers["Upload-Metadata"]) == {
        "video_id": draft,
        "filename": "a.mp4",
        "filetype": "video/mp4",
    }


def test_protocol_errors_have_the_tus_status_codes(
    client: FlaskClient, rep: Any, auth: Any, draft: str, settings: Settings
) -> None:
    headers = auth(rep)
    url = _create(client, headers, draft, 100)

    no_version = client.head(url, headers=headers)
    assert no_version.status_code == 412
    assert no_version.headers["Tus-Version"] == "1.0.0"

    wrong_offset = _patch(client, headers, url, 10, b"abc")
    assert wrong_offset.status_code == 409
    assert wrong_offset.get_json()["code"] == "upload_offset_mismatch"
    assert wrong_offset.headers["Upload-Offset"] == "0"

    wrong_type = client.patch(url, data=b"abc", headers={**headers, **TUS, "Upload-Offset": "0"})
    assert wrong_type.status_code == 415

    beyond = _patch(client, headers, url, 0, b"x" * 101)
    assert beyond.status_code == 413
    assert beyond.get_json()["code"] == "upload_too_large"

    too_big = client.post(
        "/api/v1/uploads",
        headers={
            **headers,
            **TUS,
            "Upload-Length": str(settings.limits.max_upload_bytes + 1),
            "Upload-Metadata": metadata(draft),
        },
    )
    assert too_big.status_code == 413

    for bad in ({}, {"Upload-Length": "-1"}, {"Upload-Length": "ten"}):
        response = client.post(
            "/api/v1/uploads",
            headers={**headers, **TUS, "Upload-Metadata": metadata(draft), **bad},
        )
        assert response.status_code == 400, bad
    for bad_metadata in ("", "video_id not-base64!", metadata("not-a-uuid")):
        response = client.post(
            "/api/v1/uploads",
            headers={**headers, **TUS, "Upload-Length": "10", "Upload-Metadata": bad_metadata},
        )
        assert response.status_code == 400, bad_metadata
        assert response.mimetype == "application/problem+json"

    # Nothing of the refused chunks was kept.
    assert client.head(url, headers={**headers, **TUS}).headers["Upload-Offset"] == "0"


def test_a_chunk_that_fails_its_checksum_leaves_no_trace(
    client: FlaskClient, rep: Any, auth: Any, draft: str
) -> None:
    headers = auth(rep)
    url = _create(client, headers, draft, 6)
    wrong = base64.b64encode(hashlib.sha1(b"other").digest()).decode()  # noqa: S324
    response = _patch(client, headers, url, 0, b"abc", **{"Upload-Checksum": f"sha1 {wrong}"})
    assert response.status_code == 460
    assert response.get_json()["code"] == "checksum_mismatch"
    assert client.head(url, headers={**headers, **TUS}).headers["Upload-Offset"] == "0"
    unsupported = _patch(client, headers, url, 0, b"abc", **{"Upload-Checksum": "md5 AAAA"})
    assert unsupported.status_code == 400
    right = base64.b64encode(hashlib.sha1(b"abc").digest()).decode()  # noqa: S324
    ok = _patch(client, headers, url, 0, b"abc", **{"Upload-Checksum": f"sha1 {right}"})
    assert ok.status_code == 204
    assert ok.headers["Upload-Offset"] == "3"


def test_method_override_for_clients_behind_strict_proxies(
    client: FlaskClient, rep: Any, auth: Any, draft: str
) -> None:
    headers = auth(rep)
    url = _create(client, headers, draft, 10)
    response = client.post(
        url,
        data=b"12345",
        headers={
            **headers,
            **TUS,
            "X-HTTP-Method-Override": "PATCH",
            "Upload-Offset": "0",
            "Content-Type": OFFSET_TYPE,
        },
    )
    assert response.status_code == 204
    assert response.headers["Upload-Offset"] == "5"


def test_termination_frees_the_draft(
    client: FlaskClient, rep: Any, auth: Any, draft: str, context: AppContext
) -> None:
    headers = auth(rep)
    url = _create(client, headers, draft, 10)
    assert _patch(client, headers, url, 0, b"12345").status_code == 204
    assert client.get(f"/api/v1/videos/{draft}", headers=headers).get_json()["status"] == (
        "uploading"
    )
    assert client.delete(url, headers={**headers, **TUS}).status_code == 204
    assert client.head(url, headers={**headers, **TUS}).status_code == 404
    assert client.get(f"/api/v1/videos/{draft}", headers=headers).get_json()["status"] == (
        "awaiting_upload"
    )
    assert isinstance(context.storage, LocalStorage)
    assert not (context.storage.root / ".uploads" / url.rsplit("/", 1)[1]).exists()


def test_a_second_upload_replaces_an_unfinished_one(
    client: FlaskClient, rep: Any, auth: Any, draft: str
) -> None:
    headers = auth(rep)
    first = _create(client, headers, draft, 10)
    second = _create(client, headers, draft, 10)
    assert client.head(first, headers={**headers, **TUS}).status_code == 404
    assert client.head(second, headers={**headers, **TUS}).status_code == 200


def test_a_finished_video_takes_no_new_upload(
    client: FlaskClient, rep: Any, auth: Any, draft: str
) -> None:
    headers = auth(rep)
    url = _create(client, headers, draft, len(MP4_HEAD))
    assert _patch(client, headers, url, 0, MP4_HEAD).status_code == 204
    again = client.post(
        "/api/v1/uploads",
        headers={**headers, **TUS, "Upload-Length": "3", "Upload-Metadata": metadata(draft)},
    )
    assert again.status_code == 409
    assert again.get_json()["code"] == "video_already_uploaded"
    # Sending the last chunk again (the response was lost) is harmless.
    assert _patch(client, headers, url, len(MP4_HEAD), b"").status_code == 204


def test_unfinished_uploads_expire_and_are_cleaned_up(
    client: FlaskClient, rep: Any, auth: Any, draft: str, context: AppContext, session: Any
) -> None:
    headers = auth(rep)
    url = _create(client, headers, draft, 10)
    assert _patch(client, headers, url, 0, b"12345").status_code == 204
    upload_id = _upload_id(url)
    session.execute(
        update(Upload)
        .where(Upload.id == upload_id)
        .values(expires_at=Upload.created_at - timedelta(seconds=1))
    )
    session.commit()
    gone = _patch(client, headers, url, 5, b"67890")
    assert gone.status_code == 410
    assert gone.get_json()["code"] == "upload_expired"

    assert uploads.expire(context.db, context.storage) == {"expired": 1, "finished": 0}
    assert session.get(Upload, upload_id) is None
    assert isinstance(context.storage, LocalStorage)
    assert not (context.storage.root / ".uploads" / str(upload_id)).exists()
    video = client.get(f"/api/v1/videos/{draft}", headers=headers).get_json()
    assert video["status"] == "awaiting_upload"


def test_a_full_upload_whose_finish_was_cut_short_is_finished_later(
    client: FlaskClient, rep: Any, auth: Any, draft: str, context: AppContext, session: Any
) -> None:
    """The last byte was stored but the process died before processing was recorded."""
    headers = auth(rep)
    url = _create(client, headers, draft, 3)
    upload_id = _upload_id(url)
    upload = session.get_one(Upload, upload_id)
    offset, state = context.storage.append_upload(upload.state, 0, io.BytesIO(b"abc"), limit=3)
    session.execute(
        text("UPDATE uploads SET \"offset\" = :o, state = :s, updated_at = now() - interval "
             "'2 minutes' WHERE id = :id"),
        {"o": offset, "s": json.dumps(state), "id": upload_id},
    )  # fmt: skip
    session.commit()
    assert uploads.expire(context.db, context.storage) == {"expired": 0, "finished": 1}
    video = client.get(f"/api/v1/videos/{draft}", headers=headers).get_json()
    assert video["status"] == "processing"


def test_a_full_upload_that_lost_bytes_in_a_crash_waits_for_them(
    client: FlaskClient, rep: Any, auth: Any, draft: str, context: AppContext, session: Any
) -> None:
    """The offset says complete, but the machine went down before the last bytes reached the
    disk: the sweep does not finish a short file; the offset moves back for the client."""
    headers = auth(rep)
    url = _create(client, headers, draft, 6)
    upload_id = _upload_id(url)
    upload = session.get_one(Upload, upload_id)
    offset, state = context.storage.append_upload(upload.state, 0, io.BytesIO(b"abc"), limit=6)
    session.execute(
        text("UPDATE uploads SET \"offset\" = 6, state = :s, updated_at = now() - interval "
             "'2 minutes' WHERE id = :id"),
        {"s": json.dumps(state), "id": upload_id},
    )  # fmt: skip
    session.commit()
    assert offset == 3
    assert uploads.expire(context.db, context.storage) == {"expired": 0, "finished": 0}
    session.expire_all()
    assert session.get_one(Upload, upload_id).offset == 3
    assert _patch(client, headers, url, 3, b"def").status_code == 204
    video = client.get(f"/api/v1/videos/{draft}", headers=headers).get_json()
    assert video["status"] == "processing"


# -- S3 --------------------------------------------------------------------------------------------


@pytest.fixture
def s3_storage(s3_endpoint: str) -> S3Storage:
    import boto3

    bucket = f"fieldcast-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    return S3Storage(bucket, "media", endpoint_url=s3_endpoint, part_size=5 * 1024 * 1024)


@pytest.fixture
def s3_live(
    settings: Settings, committed_db: Database, redis: Redis, s3_storage: S3Storage
) -> Iterator[Live]:
    yield from _live(settings, committed_db, redis, s3_storage)


def test_tuspy_upload_to_s3_maps_to_a_multipart_upload(
    s3_live: Live, s3_storage: S3Storage, tmp_path: Path
) -> None:
    video_id = s3_live.draft()
    path = _file(tmp_path, 11 * 1024 * 1024 + 12345)
    uploader = s3_live.tus().uploader(
        file_path=str(path), chunk_size=3 * 1024 * 1024, metadata={"video_id": str(video_id)}
    )
    uploader.upload(stop_at=7 * 1024 * 1024)
    assert uploader.url is not None
    resumed = s3_live.tus().uploader(file_path=str(path), url=uploader.url, chunk_size=4_000_000)
    resumed.upload()
    assert _source_bytes(s3_live.ctx, video_id) == path.read_bytes()
    listing = s3_storage.client.list_multipart_uploads(Bucket=s3_storage.bucket)
    assert not listing.get("Uploads")
    keys = [
        o["Key"]
        for o in s3_storage.client.list_objects_v2(Bucket=s3_storage.bucket).get("Contents", [])
    ]
    assert len(keys) == 1 and keys[0].endswith("/source/" + str(_upload_id(uploader.url)))
    assert s3_live.video(video_id).status is VideoStatus.PROCESSING


def test_direct_to_s3_multipart_upload(s3_live: Live, tmp_path: Path) -> None:
    video_id = s3_live.draft()
    size = 9 * 1024 * 1024 + 7
    path = _file(tmp_path, size)
    headers = s3_live.server.login(s3_live.rep)
    api = s3_live.server.url + "/api/v1/direct-uploads"
    created = requests.post(
        api,
        json={"video_id": str(video_id), "size": size, "filename": "a.mp4"},
        headers=headers,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["part_count"] == 2 and body["part_size"] == 8 * 1024 * 1024
    data = path.read_bytes()
    etags = []
    for part in body["parts"]:
        start = (part["number"] - 1) * body["part_size"]
        put = requests.put(part["url"], data=data[start : start + body["part_size"]], timeout=30)
        assert put.status_code == 200
        etags.append({"number": part["number"], "etag": put.headers["ETag"]})

    fresh = requests.post(
        f"{api}/{body['id']}/part-urls", json={"numbers": [2]}, headers=headers, timeout=10
    )
    assert fresh.status_code == 200 and [p["number"] for p in fresh.json()["parts"]] == [2]
    missing = requests.post(
        f"{api}/{body['id']}/complete", json={"parts": etags[:1]}, headers=headers, timeout=10
    )
    assert missing.status_code == 422
    assert missing.json()["code"] == "validation_failed"
    assert "parts" in missing.json()["errors"]
    done = requests.post(
        f"{api}/{body['id']}/complete", json={"parts": etags}, headers=headers, timeout=30
    )
    assert done.status_code == 200, done.text
    assert _source_bytes(s3_live.ctx, video_id) == data
    assert s3_live.video(video_id).status is VideoStatus.PROCESSING
    assert _process_jobs(s3_live.ctx, video_id) == [{"video_id": str(video_id), "version": 1}]

    # Another member can neither complete nor abort it.
    peer = s3_live.server.login(s3_live.peer)
    assert requests.delete(f"{api}/{body['id']}", headers=peer, timeout=10).status_code == 404


def test_direct_uploads_need_s3(client: FlaskClient, rep: Any, auth: Any, draft: str) -> None:
    response = client.post(
        "/api/v1/direct-uploads", json={"video_id": draft, "size": 100}, headers=auth(rep)
    )
    assert response.status_code == 409
    assert response.get_json()["code"] == "direct_uploads_unavailable"
    video = client.get(f"/api/v1/videos/{draft}", headers=auth(rep)).get_json()
    assert video["status"] == "awaiting_upload"
