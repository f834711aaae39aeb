"""Uploads as phones really send them: the length sent once the export ends, the policy read
before the first byte, a non-video refused at its first chunk, and the upload URL carrying on
in a background transfer after the access token expired. Over real HTTP, with tuspy where it
speaks the extension."""

from __future__ import annotations

import base64
import dataclasses
import time
import uuid
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import av
import pytest
import requests
from redis import Redis
from sqlalchemy import select, update
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError

from fieldcast.context import AppContext, build_context
from fieldcast.db import Database, utcnow
from fieldcast.errors import ErrorCode
from fieldcast.models.uploads import Upload
from fieldcast.models.videos import Video, VideoStatus
from fieldcast.settings import Limits, Settings
from media import sniff
from media.probe import MediaRejected, probe
from media.storage import LocalStorage, S3Storage
from tests import factories
from tests.live_server import LiveServer, committed_factories, serve
from tests.media_samples import ffmpeg

TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_TYPE = "application/offset+octet-stream"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"

pytestmark = pytest.mark.timeout(180, method="thread")


def _metadata(video_id: Any, **extra: str) -> str:
    pairs = {"video_id": str(video_id), **extra}
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())


# -- real files of every kind ----------------------------------------------------------------------

PICTURE = ["-f", "lavfi", "-i", "testsrc2=size=176x144:rate=15"]
SOUND = ["-f", "lavfi", "-i", "sine=frequency=440"]

# name -> ffmpeg arguments after the inputs; each makes one second of video in one container.
VIDEOS = {
    "clip.mp4": ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac"],
    "hevc.mp4": ["-c:v", "libx265", "-preset", "ultrafast", "-tag:v", "hvc1", "-an"],
    "clip.mov": ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac"],
    "clip.m4v": ["-f", "ipod", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
    "clip.3gp": ["-c:v", "h263", "-c:a", "aac", "-ar", "8000", "-ac", "1"],
    "clip.webm": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-c:a", "libopus"],
    "vp8.webm": ["-c:v", "libvpx", "-deadline", "realtime", "-an"],
    "clip.mkv": ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "flac"],
    "clip.avi": ["-c:v", "mpeg4", "-c:a", "libmp3lame"],
    "clip.ts": ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac"],
    "clip.mpg": ["-c:v", "mpeg2video", "-c:a", "mp2"],
    "clip.flv": ["-c:v", "flv", "-an"],
    "clip.ogv": ["-c:v", "libtheora", "-c:a", "libvorbis"],
}
# name -> ffmpeg arguments after the inputs (sound only, or one picture).
SOUNDS = {
    "song.mp3": ["-c:a", "libmp3lame"],
    "memo.wav": ["-c:a", "pcm_s16le"],
    "memo.flac": ["-c:a", "flac"],
    "memo.aac": ["-f", "adts", "-c:a", "aac"],
}
PICTURES = {"photo.png": [], "photo.jpg": ["-q:v", "5"]}


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("sniff")
    made: dict[str, Path] = {}
    for name, args in VIDEOS.items():
        made[name] = directory / name
        ffmpeg(*PICTURE, *SOUND, "-t", "1", *args, "-shortest", str(made[name]))
    for name, args in SOUNDS.items():
        made[name] = directory / name
        ffmpeg(*SOUND, "-t", "1", *args, str(made[name]))
    for name, args in PICTURES.items():
        made[name] = directory / name
        ffmpeg(*PICTURE, "-frames:v", "1", *args, str(made[name]))
    made["slides.pdf"] = directory / "slides.pdf"
    made["slides.pdf"].write_bytes(PDF)
    made["deck.zip"] = directory / "deck.zip"
    with zipfile.ZipFile(made["deck.zip"], "w") as archive:
        archive.writestr("notes.txt", "Pricing objection: lead with the pilot.")
    made["notes.txt"] = directory / "notes.txt"
    made["notes.txt"].write_text("Pricing objection: lead with the pilot, then the ROI sheet.\n")
    made["empty.mp4"] = directory / "empty.mp4"
    made["empty.mp4"].write_bytes(b"")
    return made


def _judge(path: Path) -> sniff.Verdict:
    data = path.read_bytes()
    return sniff.sniff(data[: sniff.SNIFF_BYTES], whole_file=len(data) <= sniff.SNIFF_BYTES)


@pytest.mark.parametrize("name", sorted(VIDEOS))
def test_videos_in_every_accepted_container_pass_the_sniff_and_the_probe(
    samples: dict[str, Path], name: str
) -> None:
    verdict = _judge(samples[name])
    assert verdict.refusal is None
    assert verdict.container is not None
    assert name.rsplit(".", 1)[1] in verdict.container.extensions
    info = probe(samples[name])  # the pipeline reads it: the policy does not promise too much
    assert info.video.codec in sniff.VIDEO_CODECS
    # (PyAV names a decoder: `mp3float` decodes mp3.)
    assert info.audio is None or info.audio.codec.removesuffix("float") in sniff.AUDIO_CODECS


@pytest.mark.parametrize(
    "name", [*sorted(SOUNDS), "slides.pdf", "deck.zip", "notes.txt", "empty.mp4"]
)
def test_a_non_video_is_refused_with_the_code_the_probe_gives_the_whole_file(
    samples: dict[str, Path], name: str
) -> None:
    verdict = _judge(samples[name])
    assert verdict.container is None
    assert verdict.refusal is not None
    with pytest.raises(MediaRejected) as rejected:
        probe(samples[name])
    assert rejected.value.code == verdict.refusal
    assert ErrorCode(verdict.refusal).description  # a registered problem code


@pytest.mark.parametrize("name", sorted(PICTURES))
def test_a_photo_is_refused_as_not_a_video(samples: dict[str, Path], name: str) -> None:
    """ffmpeg would read a still picture as a one-frame clip; the product refuses it."""
    assert _judge(samples[name]).refusal == "not_a_video"


def test_too_few_bytes_decide_nothing_until_the_file_ends(samples: dict[str, Path]) -> None:
    png = samples["photo.png"].read_bytes()
    assert not sniff.sniff(png[:5]).decided
    assert sniff.sniff(png[:5], whole_file=True).refusal == "not_a_video"
    assert sniff.sniff(png[:12]).refusal == "not_a_video"
    ts = samples["clip.ts"].read_bytes()
    assert not sniff.sniff(ts[:100]).decided  # a TS packet's sync byte shows at 188 again
    assert sniff.sniff(ts[: sniff.SNIFF_BYTES]).container is sniff.MPEG_TS
    # Text that starts with a TS sync byte is no TS file.
    assert sniff.sniff(b"Good call notes" * 20).refusal == "not_a_video"


def test_every_codec_the_policy_names_is_decoded() -> None:
    for name in (*sniff.VIDEO_CODECS, *sniff.AUDIO_CODECS):
        assert av.codec.Codec(name, "r").type in ("video", "audio"), name


# -- over real HTTP --------------------------------------------------------------------------------


@dataclasses.dataclass
class Live:
    server: LiveServer
    ctx: AppContext
    rep: Any
    peer: Any

    @property
    def uploads_url(self) -> str:
        return f"{self.server.url}/api/v1/uploads"

    def draft(self) -> uuid.UUID:
        response = requests.post(
            f"{self.server.url}/api/v1/videos",
            json={"title": "Competitor pricing"},
            headers=self.server.login(self.rep),
            timeout=10,
        )
        assert response.status_code == 201
        return uuid.UUID(response.json()["id"])

    def video(self, video_id: uuid.UUID) -> Video:
        with self.ctx.db.session() as session:
            return session.get_one(Video, video_id)

    def upload(self, upload_id: uuid.UUID) -> Upload | None:
        with self.ctx.db.session() as session:
            return session.get(Upload, upload_id)

    def uploads_of(self, video_id: uuid.UUID) -> list[Upload]:
        with self.ctx.db.session() as session:
            return list(session.scalars(select(Upload).where(Upload.video_id == video_id)))

    def tus(self, headers: dict[str, str] | None = None) -> TusClient:
        return TusClient(
            self.uploads_url, headers=self.server.login(self.rep) if headers is None else headers
        )

    def source(self, video_id: uuid.UUID) -> bytes:
        video = self.video(video_id)
        assert video.source_key is not None
        return b"".join(self.ctx.storage.open(video.source_key))

    def partial_exists(self, upload_id: uuid.UUID) -> bool:
        assert isinstance(self.ctx.storage, LocalStorage)
        return (self.ctx.storage.root / ".uploads" / str(upload_id)).exists()


def _serve(settings: Settings, db: Database, redis: Redis) -> Iterator[Live]:
    ctx = build_context(settings, db=db, redis=redis)
    with committed_factories(db) as session:
        org = factories.OrganisationFactory()
        rep = factories.UserFactory(org=org)
        peer = factories.UserFactory(org=org)
        session.commit()
    with serve(ctx) as server:
        yield Live(server, ctx, rep, peer)


@pytest.fixture
def live(settings: Settings, committed_db: Database, redis: Redis) -> Iterator[Live]:
    yield from _serve(settings, committed_db, redis)


def _upload_id(location: str) -> uuid.UUID:
    return uuid.UUID(urlparse(location).path.split("/")[4])


def _create(live: Live, video_id: uuid.UUID, headers: dict[str, str], **extra: str) -> str:
    response = requests.post(
        live.uploads_url,
        headers={**headers, **TUS, "Upload-Metadata": _metadata(video_id), **extra},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return str(response.headers["Location"])


def _patch(url: str, offset: int, data: bytes, headers: dict[str, str], **extra: str) -> Any:
    return requests.patch(
        url,
        data=data,
        headers={
            **headers,
            **TUS,
            "Upload-Offset": str(offset),
            "Content-Type": OFFSET_TYPE,
            **extra,
        },
        timeout=30,
    )


# -- refused at the first chunk --------------------------------------------------------------------


def test_tuspy_sending_a_photo_is_refused_at_its_first_chunk_and_a_video_then_goes_through(
    live: Live, samples: dict[str, Path]
) -> None:
    video_id = live.draft()
    photo = samples["photo.png"]
    uploader = live.tus().uploader(
        file_path=str(photo), chunk_size=1024, metadata={"video_id": str(video_id)}
    )
    with pytest.raises(TusCommunicationError) as refused:
        uploader.upload()
    assert refused.value.status_code == 422
    assert uploader.url is not None
    upload_id = _upload_id(uploader.url)
    head = requests.head(uploader.url, headers=TUS, timeout=10)
    assert head.status_code == 404  # the upload is gone, its URL with it
    assert live.upload(upload_id) is None
    assert not live.partial_exists(upload_id)  # its stored bytes too
    video = live.video(video_id)
    assert (video.status, video.failure_code) == (VideoStatus.FAILED, "not_a_video")

    # The author picks the right file: the same draft takes it.
    clip = samples["clip.mp4"]
    live.tus().uploader(
        file_path=str(clip), chunk_size=4096, metadata={"video_id": str(video_id)}
    ).upload()
    video = live.video(video_id)
    assert video.status is VideoStatus.PROCESSING
    assert video.failure_code is None
    assert live.source(video_id) == clip.read_bytes()


def test_the_refusal_is_a_problem_with_the_videos_failure_code(
    live: Live, samples: dict[str, Path]
) -> None:
    headers = live.server.login(live.rep)
    for name, code in (("slides.pdf", "not_a_video"), ("song.mp3", "audio_only")):
        video_id = live.draft()
        data = samples[name].read_bytes()
        url = _create(live, video_id, headers, **{"Upload-Length": str(len(data))})
        response = _patch(url, 0, data, headers)
        assert response.status_code == 422
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.json()["code"] == code
        assert live.video(video_id).failure_code == code
        assert live.uploads_of(video_id) == []


def test_creation_with_upload_refuses_a_non_video_body(live: Live) -> None:
    video_id = live.draft()
    response = requests.post(
        live.uploads_url,
        data=PDF,
        headers={
            **live.server.login(live.rep),
            **TUS,
            "Upload-Length": str(len(PDF)),
            "Upload-Metadata": _metadata(video_id),
            "Content-Type": OFFSET_TYPE,
        },
        timeout=10,
    )
    assert response.status_code == 422
    assert response.json()["code"] == "not_a_video"
    video = live.video(video_id)
    assert (video.status, video.failure_code) == (VideoStatus.FAILED, "not_a_video")
    assert live.uploads_of(video_id) == []


def test_first_bytes_split_over_two_chunks_are_judged_together(
    live: Live, samples: dict[str, Path]
) -> None:
    headers = live.server.login(live.rep)
    zip_bytes = samples["deck.zip"].read_bytes()
    video_id = live.draft()
    url = _create(live, video_id, headers, **{"Upload-Length": str(len(zip_bytes))})
    assert _patch(url, 0, zip_bytes[:5], headers).status_code == 204  # too few to tell
    refused = _patch(url, 5, zip_bytes[5:], headers)
    assert refused.status_code == 422
    assert refused.json()["code"] == "not_a_video"
    assert live.video(video_id).status is VideoStatus.FAILED

    clip = samples["clip.webm"].read_bytes()
    url = _create(live, video_id, headers, **{"Upload-Length": str(len(clip))})
    assert _patch(url, 0, clip[:5], headers).status_code == 204
    assert _patch(url, 5, clip[5:], headers).status_code == 204
    assert live.video(video_id).status is VideoStatus.PROCESSING
    assert live.source(video_id) == clip


# -- the length, sent when the export ends ---------------------------------------------------------


def test_a_deferred_length_is_sent_with_a_later_patch(live: Live, samples: dict[str, Path]) -> None:
    headers = live.server.login(live.rep)
    data = samples["clip.mov"].read_bytes()
    video_id = live.draft()
    url = _create(live, video_id, headers, **{"Upload-Defer-Length": "1"})

    head = requests.head(url, headers={**headers, **TUS}, timeout=10)
    assert head.status_code == 200
    assert head.headers["Upload-Defer-Length"] == "1"
    assert "Upload-Length" not in head.headers
    assert head.headers["Upload-Offset"] == "0"

    half = len(data) // 2
    assert _patch(url, 0, data[:half], headers).status_code == 204
    assert live.video(video_id).status is VideoStatus.UPLOADING
    head = requests.head(url, headers={**headers, **TUS}, timeout=10)
    assert (head.headers["Upload-Offset"], head.headers["Upload-Defer-Length"]) == (str(half), "1")

    # The export ended: the last chunk says how long the file is, and completes it.
    last = _patch(url, half, data[half:], headers, **{"Upload-Length": str(len(data))})
    assert last.status_code == 204
    assert last.headers["Upload-Offset"] == str(len(data))
    assert live.video(video_id).status is VideoStatus.PROCESSING
    assert live.source(video_id) == data
    head = requests.head(url, headers={**headers, **TUS}, timeout=10)
    assert head.headers["Upload-Length"] == str(len(data))
    assert "Upload-Defer-Length" not in head.headers


def test_a_deferred_length_may_come_alone_once_and_never_changes(
    live: Live, samples: dict[str, Path]
) -> None:
    headers = live.server.login(live.rep)
    data = samples["clip.mp4"].read_bytes()
    video_id = live.draft()
    url = _create(live, video_id, headers, **{"Upload-Defer-Length": "1"})
    assert _patch(url, 0, data[:1000], headers).status_code == 204
    # The length with an empty chunk, then the rest.
    told = _patch(url, 1000, b"", headers, **{"Upload-Length": str(len(data))})
    assert told.status_code == 204
    head = requests.head(url, headers={**headers, **TUS}, timeout=10)
    assert head.headers["Upload-Length"] == str(len(data))
    changed = _patch(url, 1000, data[1000:], headers, **{"Upload-Length": str(len(data) + 1)})
    assert changed.status_code == 422
    assert changed.json()["code"] == "validation_failed"
    shorter = _patch(url, 1000, b"", headers, **{"Upload-Length": "999"})
    assert shorter.status_code == 422
    assert _patch(url, 1000, data[1000:], headers).status_code == 204
    assert live.video(video_id).status is VideoStatus.PROCESSING
    assert live.source(video_id) == data


def test_creation_headers_must_name_one_length(live: Live) -> None:
    headers = {**live.server.login(live.rep), **TUS}
    video_id = live.draft()
    for extra in (
        {"Upload-Defer-Length": "1", "Upload-Length": "10"},
        {"Upload-Defer-Length": "2"},
        {},
    ):
        response = requests.post(
            live.uploads_url,
            headers={**headers, "Upload-Metadata": _metadata(video_id), **extra},
            timeout=10,
        )
        assert response.status_code == 400, extra
        assert response.json()["code"] in ("invalid_tus_header", "upload_length_required")


@pytest.fixture
def small_live(settings: Settings, committed_db: Database, redis: Redis) -> Iterator[Live]:
    limits = dataclasses.replace(Limits(), max_upload_bytes=2000)
    yield from _serve(dataclasses.replace(settings, limits=limits), committed_db, redis)


def test_the_size_limit_holds_while_the_length_is_unknown(
    small_live: Live, samples: dict[str, Path]
) -> None:
    live = small_live
    headers = live.server.login(live.rep)
    data = samples["clip.mp4"].read_bytes()[:3000]
    video_id = live.draft()
    url = _create(live, video_id, headers, **{"Upload-Defer-Length": "1"})
    too_big = _patch(url, 0, data[:2001], headers)
    assert too_big.status_code == 413
    assert too_big.json()["code"] == "upload_too_large"
    assert _patch(url, 0, data[:1500], headers).status_code == 204
    assert _patch(url, 1500, data[1500:2001], headers).status_code == 413
    too_long = _patch(url, 1500, b"", headers, **{"Upload-Length": "2001"})
    assert too_long.status_code == 413
    upload = live.upload(_upload_id(url))
    assert upload is not None
    assert (upload.offset, upload.length) == (1500, None)
    assert _patch(url, 1500, data[1500:2000], headers).status_code == 204
    upload = live.upload(_upload_id(url))
    assert upload is not None and upload.offset == 2000  # never beyond the limit


# -- the upload URL as a capability ----------------------------------------------------------------


@pytest.fixture
def short_token_live(settings: Settings, committed_db: Database, redis: Redis) -> Iterator[Live]:
    yield from _serve(dataclasses.replace(settings, access_token_ttl_s=1), committed_db, redis)


def test_a_background_transfer_finishes_after_its_access_token_expired(
    short_token_live: Live, samples: dict[str, Path]
) -> None:
    live = short_token_live
    video_id = live.draft()
    headers = live.server.login(live.rep)
    clip = samples["clip.mp4"]
    uploader = live.tus(headers).uploader(
        file_path=str(clip), chunk_size=4096, metadata={"video_id": str(video_id)}
    )
    uploader.upload_chunk()
    assert uploader.url is not None
    time.sleep(2.1)
    expired = requests.get(
        f"{live.server.url}/api/v1/videos/{video_id}", headers=headers, timeout=10
    )
    assert expired.status_code == 401
    assert expired.json()["code"] == "token_expired"

    # The transfer goes on with its upload URL: still holding the stale token, or no token at all.
    stale = live.tus(headers).uploader(file_path=str(clip), url=uploader.url, chunk_size=4096)
    stale.upload_chunk()
    assert stale.offset == 8192
    bare = live.tus({}).uploader(file_path=str(clip), url=uploader.url, chunk_size=4096)
    bare.upload()
    assert live.video(video_id).status is VideoStatus.PROCESSING
    assert live.source(video_id) == clip.read_bytes()


def test_the_upload_url_opens_its_own_upload_only(live: Live, samples: dict[str, Path]) -> None:
    headers = live.server.login(live.rep)
    data = samples["clip.mp4"].read_bytes()
    first, second = live.draft(), live.draft()
    url_a = _create(live, first, headers, **{"Upload-Length": str(len(data))})
    url_b = _create(live, second, headers, **{"Upload-Length": str(len(data))})
    id_a, id_b = _upload_id(url_a), _upload_id(url_b)
    secret_a = urlparse(url_a).path.rsplit("/", 1)[1]
    assert len(secret_a) >= 43  # 256 random bits
    assert _patch(url_a, 0, data[:100], {}).status_code == 204

    a_on_b = f"{live.uploads_url}/{id_b}/{secret_a}"
    assert requests.head(a_on_b, headers=TUS, timeout=10).status_code == 404
    wrong = _patch(a_on_b, 0, data[:100], {})
    assert wrong.status_code == 404
    assert wrong.json()["code"] == "not_found"
    assert requests.delete(a_on_b, headers=TUS, timeout=10).status_code == 404
    tampered = url_a[:-1] + ("A" if url_a[-1] != "A" else "B")
    assert requests.head(tampered, headers=TUS, timeout=10).status_code == 404
    assert _patch(tampered, 100, data[100:200], {}).status_code == 404
    # The id alone, without a token, is no way in.
    bare = requests.head(f"{live.uploads_url}/{id_a}", headers=TUS, timeout=10)
    assert bare.status_code == 401
    # With someone else's valid token the token's rules apply: the upload is not theirs.
    peer = live.server.login(live.peer)
    assert requests.head(url_a, headers={**peer, **TUS}, timeout=10).status_code == 404
    assert _patch(url_a, 100, data[100:200], peer).status_code == 404

    upload_a, upload_b = live.upload(id_a), live.upload(id_b)
    assert upload_a is not None and upload_a.offset == 100
    assert upload_b is not None and upload_b.offset == 0
    with live.ctx.db.session() as session:
        stored = session.get_one(Upload, id_a).capability_digest
    assert stored is not None and secret_a not in stored  # only a digest is kept


def test_the_upload_url_expires_with_the_upload(live: Live, samples: dict[str, Path]) -> None:
    headers = live.server.login(live.rep)
    data = samples["clip.mp4"].read_bytes()
    video_id = live.draft()
    url = _create(live, video_id, headers, **{"Upload-Length": str(len(data))})
    first = _patch(url, 0, data[:100], {})
    assert first.status_code == 204
    assert "Upload-Expires" in first.headers
    with live.ctx.db.session() as session:
        session.execute(
            update(Upload)
            .where(Upload.id == _upload_id(url))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    gone = _patch(url, 100, data[100:], {})
    assert gone.status_code == 410
    assert gone.json()["code"] == "upload_expired"
    assert requests.head(url, headers=TUS, timeout=10).status_code == 410


def test_a_new_upload_to_the_draft_ends_the_old_upload_url(
    live: Live, samples: dict[str, Path]
) -> None:
    headers = live.server.login(live.rep)
    data = samples["clip.mp4"].read_bytes()
    video_id = live.draft()
    old = _create(live, video_id, headers, **{"Upload-Length": str(len(data))})
    assert _patch(old, 0, data[:100], {}).status_code == 204
    new = _create(live, video_id, headers, **{"Upload-Length": str(len(data))})
    assert requests.head(old, headers=TUS, timeout=10).status_code == 404
    assert _patch(new, 0, data, {}).status_code == 204
    assert requests.delete(new, headers=TUS, timeout=10).status_code == 409  # complete: kept


def test_termination_through_the_upload_url(live: Live, samples: dict[str, Path]) -> None:
    headers = live.server.login(live.rep)
    data = samples["clip.mp4"].read_bytes()
    video_id = live.draft()
    url = _create(live, video_id, headers, **{"Upload-Length": str(len(data))})
    assert _patch(url, 0, data[:100], {}).status_code == 204
    assert requests.delete(url, headers=TUS, timeout=10).status_code == 204
    assert live.upload(_upload_id(url)) is None
    assert live.video(video_id).status is VideoStatus.AWAITING_UPLOAD


# -- what an upload may be -------------------------------------------------------------------------


def test_the_upload_policy_says_what_an_upload_may_be(live: Live) -> None:
    settings = live.ctx.settings
    response = requests.get(
        f"{live.server.url}/api/v1/upload-policy", headers=live.server.login(live.rep), timeout=10
    )
    assert response.status_code == 200
    policy = response.json()
    assert policy["max_bytes"] == settings.limits.max_upload_bytes
    assert policy["max_duration_s"] == settings.limits.max_duration_s
    containers = {c["name"]: c for c in policy["containers"]}
    assert {"mp4", "mov", "m4v", "3gp"} <= set(containers["iso_bmff"]["extensions"])
    assert "video/webm" in containers["matroska"]["mime_types"]
    assert {"h264", "hevc"} <= set(policy["video_codecs"])
    assert "aac" in policy["audio_codecs"]
    assert policy["tus"]["endpoint"] == live.uploads_url
    assert policy["tus"]["version"] == "1.0.0"
    assert "creation-defer-length" in policy["tus"]["extensions"]
    assert policy["tus"]["checksum_algorithms"] == ["sha1"]
    assert policy["recommended_chunk_bytes"] >= 5 * 1024 * 1024  # S3's smallest part
    assert policy["upload_url_lifetime_s"] == settings.upload_expiry_s
    assert policy["direct_uploads"] is False  # local storage

    assert requests.get(f"{live.server.url}/api/v1/upload-policy", timeout=10).status_code == 401

    options = requests.options(live.uploads_url, timeout=10)
    assert options.status_code == 204
    assert options.headers["Tus-Max-Size"] == str(settings.limits.max_upload_bytes)
    assert "creation-defer-length" in options.headers["Tus-Extension"].split(",")


def test_the_refused_kinds_match_a_file_sent_whole(live: Live) -> None:
    """A file too short to judge early (it ends before the sniff could decide) is judged as a
    whole: seven bytes of text fail at once, like the probe would fail them."""
    headers = live.server.login(live.rep)
    video_id = live.draft()
    url = _create(live, video_id, headers, **{"Upload-Length": "7"})
    refused = _patch(url, 0, b"notes\r\n", headers)
    assert refused.status_code == 422
    assert refused.json()["code"] == "not_a_video"
    assert live.video(video_id).failure_code == "not_a_video"


# -- on S3 -----------------------------------------------------------------------------------------


@pytest.fixture
def s3_live(
    settings: Settings, committed_db: Database, redis: Redis, s3_endpoint: str
) -> Iterator[Live]:
    import boto3

    bucket = f"fieldcast-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    storage = S3Storage(bucket, "media", endpoint_url=s3_endpoint, part_size=5 * 1024 * 1024)
    ctx = build_context(settings, db=committed_db, redis=redis, storage=storage)
    with committed_factories(committed_db) as session:
        org = factories.OrganisationFactory()
        rep = factories.UserFactory(org=org)
        peer = factories.UserFactory(org=org)
        session.commit()
    with serve(ctx) as server:
        yield Live(server, ctx, rep, peer)


def _s3_state(storage: S3Storage) -> tuple[list[str], list[str]]:
    """Every object key, and the key of every multipart upload still open."""
    objects = storage.client.list_objects_v2(Bucket=storage.bucket).get("Contents", [])
    multipart = storage.client.list_multipart_uploads(Bucket=storage.bucket).get("Uploads", [])
    return [o["Key"] for o in objects], [u["Key"] for u in multipart]


def test_on_s3_a_refused_tus_upload_leaves_nothing_behind(
    s3_live: Live, samples: dict[str, Path]
) -> None:
    storage = s3_live.ctx.storage
    assert isinstance(storage, S3Storage)
    video_id = s3_live.draft()
    headers = s3_live.server.login(s3_live.rep)
    data = samples["song.mp3"].read_bytes()
    url = _create(s3_live, video_id, headers, **{"Upload-Length": str(len(data))})
    refused = _patch(url, 0, data, headers)
    assert refused.status_code == 422
    assert refused.json()["code"] == "audio_only"
    assert _s3_state(storage) == ([], [])
    assert s3_live.video(video_id).failure_code == "audio_only"


def test_a_direct_upload_of_a_photo_is_refused_when_completed(
    s3_live: Live, samples: dict[str, Path]
) -> None:
    storage = s3_live.ctx.storage
    assert isinstance(storage, S3Storage)
    headers = s3_live.server.login(s3_live.rep)
    api = s3_live.server.url + "/api/v1/direct-uploads"
    video_id = s3_live.draft()

    def send(path: Path) -> Any:
        data = path.read_bytes()
        created = requests.post(
            api, json={"video_id": str(video_id), "size": len(data)}, headers=headers, timeout=10
        )
        assert created.status_code == 201, created.text
        body = created.json()
        put = requests.put(body["parts"][0]["url"], data=data, timeout=30)
        assert put.status_code == 200
        parts = [{"number": 1, "etag": put.headers["ETag"]}]
        return requests.post(
            f"{api}/{body['id']}/complete", json={"parts": parts}, headers=headers, timeout=30
        )

    refused = send(samples["photo.jpg"])
    assert refused.status_code == 422
    assert refused.json()["code"] == "not_a_video"
    assert _s3_state(storage) == ([], [])
    video = s3_live.video(video_id)
    assert (video.status, video.failure_code) == (VideoStatus.FAILED, "not_a_video")

    assert send(samples["clip.mp4"]).status_code == 200
    assert s3_live.video(video_id).status is VideoStatus.PROCESSING
    assert s3_live.source(video_id) == samples["clip.mp4"].read_bytes()


def test_the_access_log_leaves_the_upload_urls_secret_out(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    headers = live.server.login(live.rep)
    url = _create(live, live.draft(), headers, **{"Upload-Length": "100"})
    secret = urlparse(url).path.rsplit("/", 1)[1]
    with caplog.at_level("INFO", logger="fieldcast"):
        assert requests.head(url, headers=TUS, timeout=10).status_code == 200
    ours = [r for r in caplog.records if r.name.startswith("fieldcast")]
    assert f"/api/v1/uploads/{_upload_id(url)}/<secret>" in [getattr(r, "path", "") for r in ours]
    assert not any(secret in r.getMessage() or secret in getattr(r, "path", "") for r in ours)


def test_a_deactivated_uploaders_upload_url_stops_working(
    live: Live, samples: dict[str, Path]
) -> None:
    from fieldcast.models.accounts import User

    headers = live.server.login(live.rep)
    data = samples["clip.mp4"].read_bytes()
    url = _create(live, live.draft(), headers, **{"Upload-Length": str(len(data))})
    assert _patch(url, 0, data[:100], {}).status_code == 204
    with live.ctx.db.session() as session:
        session.execute(update(User).where(User.id == live.rep.id).values(is_active=False))
        session.commit()
    assert requests.head(url, headers=TUS, timeout=10).status_code == 404
    assert _patch(url, 100, data[100:], {}).status_code == 404
