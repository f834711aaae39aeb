"""The media corpus: every kind of file a phone, a browser or a careless upload sends, made with
ffmpeg at test time, through the real `video.process` and `video.ladder` steps, each with the
outcome the author must see: `ready` with nothing missing (and the right display size, and a
first rendition that plays), or `failed` with a stable code.

Frames are tiny and clips short so the whole table runs in well under a minute; the limits are
the defaults, so a case here is what a deployment does.
"""

from __future__ import annotations

import base64
import dataclasses
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import av
import pytest
from redis import Redis
from sqlalchemy import select

import fieldcast.context
from fieldcast.context import AppContext, build_context
from fieldcast.db import Database
from fieldcast.models.outbox import OutboxJob, OutboxStatus
from fieldcast.models.videos import Rendition, Video, VideoStatus
from fieldcast.outbox import services as outbox
from fieldcast.settings import Settings
from fieldcast.videos import playback
from fieldcast.videos.processing import LADDER_TASK, PROCESS_TASK
from media.storage import S3Storage
from tests import factories
from tests.conftest import committed_database
from tests.live_server import committed_factories
from tests.media_samples import ffmpeg, recorder_webm
from tests.worker_support import install_worker_context, run_burst, upload_file

# Its fixtures are made once per module: the module's tests share one worker.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(120, method="thread"),
    pytest.mark.xdist_group("test_media_corpus"),
]

STEPS = (PROCESS_TASK, LADDER_TASK)
FAST_H264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
AAC = ["-c:a", "aac", "-b:a", "64k"]


def _testsrc(size: str = "160x120", rate: int = 30) -> list[str]:
    return ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}"]


def _tone(seconds: float) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}"]


# -- the files -----------------------------------------------------------------------------------


def single_frame(out: Path) -> None:
    # One picture shown for a second: the `thumbnail` filter has nothing to compare it with.
    ffmpeg(*_testsrc(rate=1), "-frames:v", "1", *FAST_H264, str(out))


def sub_second(out: Path) -> None:
    ffmpeg(*_testsrc(), *_tone(0.4), "-t", "0.4", *FAST_H264, *AAC, "-shortest", str(out))


def odd_size(out: Path) -> None:
    ffmpeg(*_testsrc(), "-t", "1", "-vf", "scale=161:121", "-c:v", "libx264", "-preset",
           "ultrafast", "-pix_fmt", "yuv444p", str(out))  # fmt: skip


def large_4k60(out: Path) -> None:
    # What a phone records at its best: 4K at 60 frames a second, H.264, remuxed as it is.
    ffmpeg("-f", "lavfi", "-i", "color=c=teal:size=3840x2160:rate=60", *_tone(0.1), "-t", "0.1",
           *FAST_H264, *AAC, "-shortest", str(out))  # fmt: skip


def frame_over_pixel_limit(out: Path) -> None:
    # Within 4096 a side, beyond the 4096x2304 picture of H.264 level 5.2.
    ffmpeg("-f", "lavfi", "-i", "color=c=teal:size=4096x2320:rate=30", "-frames:v", "2",
           *FAST_H264, str(out))  # fmt: skip


def frame_over_side_limit(out: Path) -> None:
    ffmpeg("-f", "lavfi", "-i", "color=c=teal:size=4160x64:rate=30", "-frames:v", "2",
           *FAST_H264, str(out))  # fmt: skip


def frame_rate_over_limit(out: Path) -> None:
    # 1080p at 300 frames a second: more pixels a second than any phone decoder takes.
    ffmpeg("-f", "lavfi", "-i", "color=c=teal:size=1920x1080:rate=300", "-frames:v", "30",
           *FAST_H264, str(out))  # fmt: skip


def too_long(out: Path) -> None:
    ffmpeg(*_testsrc("32x32", rate=1), "-t", "601", *FAST_H264, str(out))


def portrait(out: Path) -> None:
    # A phone held upright: landscape pixels and a display matrix turning them 90° clockwise.
    landscape = out.with_name("landscape-" + out.name)
    ffmpeg(*_testsrc(), *_tone(1), "-t", "1", *FAST_H264, *AAC, str(landscape))
    ffmpeg("-display_rotation", "-90", "-i", str(landscape), "-c", "copy", str(out))


def _hevc(out: Path, pix_fmt: str, tags: list[str]) -> None:
    ffmpeg(*_testsrc(), *_tone(1), "-t", "1", "-c:v", "libx265", "-preset", "ultrafast",
           "-x265-params", "log-level=error", "-pix_fmt", pix_fmt, *tags, "-tag:v", "hvc1",
           *AAC, str(out))  # fmt: skip


BT709 = ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709"]
HLG = ["-color_primaries", "bt2020", "-color_trc", "arib-std-b67", "-colorspace", "bt2020nc"]


def hevc_8bit_tagged(out: Path) -> None:
    _hevc(out, "yuv420p", BT709)


def hevc_8bit_untagged(out: Path) -> None:
    _hevc(out, "yuv420p", [])


def hevc_10bit_hlg(out: Path) -> None:
    _hevc(out, "yuv420p10le", HLG)


def hevc_10bit_partly_tagged(out: Path) -> None:
    _hevc(out, "yuv420p10le", ["-color_primaries", "bt2020"])


def hevc_10bit_untagged(out: Path) -> None:
    _hevc(out, "yuv420p10le", [])


def variable_frame_rate(out: Path) -> None:
    # 30 fps for a second, then every third frame: timestamps no constant rate describes.
    ffmpeg(*_testsrc(), *_tone(2), "-t", "2", "-vf", r"select='lt(n\,30)+not(mod(n\,3))'",
           "-fps_mode", "vfr", *FAST_H264, *AAC, "-shortest", str(out))  # fmt: skip


def no_audio(out: Path) -> None:
    ffmpeg(*_testsrc(), "-t", "2", *FAST_H264, str(out))


def audio_only(out: Path) -> None:
    ffmpeg(*_tone(1), *AAC, str(out))


def audio_longer_than_video(out: Path) -> None:
    ffmpeg(*_testsrc(), *_tone(3), "-t", "3", "-map", "0:v", "-map", "1:a", "-frames:v", "30",
           *FAST_H264, *AAC, str(out))  # fmt: skip


def index_at_end(out: Path) -> None:
    ffmpeg(*_testsrc(), *_tone(2), "-t", "2", *FAST_H264, *AAC, str(out))
    data = out.read_bytes()
    assert data.find(b"moov") > data.find(b"mdat") > 0, "the index should follow the media"


def cut_file(out: Path) -> None:
    whole = out.with_name("whole-" + out.name)
    ffmpeg(*_testsrc(), *_tone(3), "-t", "3", *FAST_H264, *AAC, str(whole))
    data = whole.read_bytes()
    out.write_bytes(data[: len(data) // 2])


def cut_file_index_first(out: Path) -> None:
    whole = out.with_name("whole-" + out.name)
    ffmpeg(*_testsrc(), *_tone(3), "-t", "3", *FAST_H264, *AAC, "-movflags", "+faststart",
           str(whole))  # fmt: skip
    data = whole.read_bytes()
    out.write_bytes(data[: len(data) // 2])


def notes_named_like_a_video(out: Path) -> None:
    out.write_bytes(b"Pricing objection notes\n" * 200)


def empty(out: Path) -> None:
    out.write_bytes(b"")


def _browser_recording(out: Path, codec: list[str]) -> None:
    # As MediaRecorder writes it: a live WebM whose header never learns the length.
    ffmpeg(*_testsrc(), *_tone(2), "-t", "2", *codec, "-c:a", "libopus", "-live", "1",
           "-f", "webm", str(out))  # fmt: skip
    with av.open(str(out)) as container:
        assert container.duration is None and container.streams.video[0].duration is None


def browser_webm_vp9(out: Path) -> None:
    _browser_recording(out, ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"])


def browser_webm_vp8(out: Path) -> None:
    _browser_recording(out, ["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8"])


def recorder_blocks_without_durations(out: Path) -> None:
    # As MediaRecorder writes it: no length in the header, no duration on any block.
    recorder_webm(out, frames=60)


def recorder_one_picture(out: Path) -> None:
    # A recording stopped as soon as it started: one picture, no duration anywhere.
    recorder_webm(out, frames=1)


# -- the table -----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    make: Callable[[Path], None]
    filename: str
    status: VideoStatus
    code: str | None = None  # the failure code, when failed
    size: tuple[int, int] | None = None  # display size, when ready
    through_worker: bool = False  # through a real RQ worker rather than the outbox executor

    @property
    def name(self) -> str:
        return self.make.__name__


READY = VideoStatus.READY
FAILED = VideoStatus.FAILED
CORPUS = [
    Case(single_frame, "frame.mp4", READY, size=(160, 120)),
    Case(sub_second, "blink.mp4", READY, size=(160, 120)),
    Case(odd_size, "odd.mp4", READY, size=(161, 121)),
    Case(large_4k60, "4k60.mp4", READY, size=(3840, 2160)),
    Case(frame_over_pixel_limit, "huge.mp4", FAILED, "frame_too_large"),
    Case(frame_over_side_limit, "strip.mp4", FAILED, "frame_too_large"),
    Case(frame_rate_over_limit, "fast.mp4", FAILED, "frame_rate_too_high"),
    Case(too_long, "long.mp4", FAILED, "too_long"),
    Case(portrait, "upright.mov", READY, size=(120, 160)),
    Case(hevc_8bit_tagged, "hevc8.mov", READY, size=(160, 120)),
    Case(hevc_8bit_untagged, "hevc8-untagged.mov", READY, size=(160, 120)),
    Case(hevc_10bit_hlg, "hlg.mov", READY, size=(160, 120)),
    Case(hevc_10bit_partly_tagged, "hevc10-partly.mov", READY, size=(160, 120)),
    Case(hevc_10bit_untagged, "hevc10-untagged.mov", READY, size=(160, 120)),
    Case(variable_frame_rate, "vfr.mp4", READY, size=(160, 120)),
    Case(no_audio, "silent.mp4", READY, size=(160, 120)),
    Case(audio_longer_than_video, "talk.mp4", READY, size=(160, 120)),
    Case(index_at_end, "moov-last.mp4", READY, size=(160, 120)),
    Case(audio_only, "voice.m4a", FAILED, "audio_only"),
    Case(cut_file, "cut.mp4", FAILED, "truncated"),
    Case(cut_file_index_first, "cut-faststart.mp4", FAILED, "truncated"),
    Case(notes_named_like_a_video, "notes.mp4", FAILED, "not_a_video"),
    Case(empty, "empty.mp4", FAILED, "empty_file"),
    Case(browser_webm_vp9, "recording.webm", READY, size=(160, 120), through_worker=True),
    Case(browser_webm_vp8, "recording-vp8.webm", READY, size=(160, 120)),
    Case(recorder_blocks_without_durations, "recorder.webm", READY, size=(160, 120)),
    Case(recorder_one_picture, "recorder-one.webm", READY, size=(160, 120)),
]


# -- running a case ------------------------------------------------------------------------------


@dataclasses.dataclass
class Corpus:
    ctx: AppContext
    rep: Any

    def upload(self, path: Path) -> uuid.UUID:
        return upload_file(self.ctx, self.rep, path, title=path.name, filename=path.name)

    def run_steps(self) -> None:
        """Run the recorded processing steps as a worker does, until none is left."""
        for _ in range(len(STEPS) + 1):
            with self.ctx.db.session() as session:
                due = session.scalars(
                    select(OutboxJob.id).where(
                        OutboxJob.task.in_(STEPS), OutboxJob.status == OutboxStatus.PENDING
                    )
                ).all()
            if not due:
                return
            for job_id in due:
                outbox.execute(self.ctx.db, job_id, lease=timedelta(minutes=1))

    def video(self, video_id: uuid.UUID) -> Video:
        with self.ctx.db.session() as session:
            return session.get_one(Video, video_id)

    def renditions(self, video_id: uuid.UUID) -> list[Rendition]:
        with self.ctx.db.session() as session:
            return list(session.scalars(select(Rendition).where(Rendition.video_id == video_id)))


@pytest.fixture(scope="module")
def corpus_db(database_url: str) -> Iterator[Database]:
    """Committed rows, as workers need; every case has an organisation of its own, so the
    tables are emptied once, after the last case."""
    with committed_database(database_url) as database:
        yield database


@pytest.fixture
def corpus(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    corpus_db: Database,
    redis: Redis,
    tmp_path: Path,
) -> Iterator[Corpus]:
    settings = dataclasses.replace(
        settings, media_work_dir=tmp_path / "work", media_preset="ultrafast"
    )
    ctx = install_worker_context(monkeypatch, settings, corpus_db, redis)
    with committed_factories(corpus_db) as session:
        rep = factories.UserFactory(org=factories.OrganisationFactory())
        session.commit()
    yield Corpus(ctx, rep)


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("corpus")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize("case", CORPUS, ids=lambda case: case.name)
def test_media_corpus(corpus: Corpus, media_dir: Path, case: Case) -> None:
    path = media_dir / case.filename
    case.make(path)
    video_id = corpus.upload(path)
    if case.through_worker:
        run_burst(["media-fast", "media"])
    else:
        corpus.run_steps()

    video = corpus.video(video_id)
    made = corpus.renditions(video_id)
    if case.status is FAILED:
        assert (video.status, video.failure_code) == (FAILED, case.code), video.failure_detail
        assert video.failure_detail
        assert made == []  # nothing of it was ever playable
        assert playback.choose(video, made).hls is None
        return

    assert video.status is READY, (video.status, video.failure_code, video.failure_detail)
    assert video.missing == []
    assert video.progress == 100
    assert (video.width, video.height) == case.size
    assert video.duration_ms
    names = {rendition.name for rendition in made}
    assert {"first", "master", "mp4", "poster", "storyboard"} <= names
    # It plays: the playlist a viewer is given, the first rendition's and the offline MP4 exist.
    chosen = playback.choose(video, made)
    assert chosen.hls is not None and chosen.hls.name == "master"
    first = next(rendition for rendition in made if rendition.name == "first")
    for rendition in (chosen.hls, first, chosen.mp4, chosen.poster, chosen.storyboard):
        assert rendition is not None
        assert corpus.ctx.storage.exists(rendition.storage_key), rendition.name
    playlist = b"".join(corpus.ctx.storage.open(first.storage_key)).decode()
    assert "#EXTINF" in playlist and "#EXT-X-ENDLIST" in playlist


# -- every way in --------------------------------------------------------------------------------


def _api(ctx: AppContext) -> Any:
    from api.app import create_app

    return create_app(ctx.settings, context=ctx).test_client()


def _draft(client: Any, headers: dict[str, str]) -> str:
    response = client.post("/api/v1/videos", json={"title": "Objections"}, headers=headers)
    assert response.status_code == 201
    return str(response.get_json()["id"])


def _login(client: Any, user: Any) -> dict[str, str]:
    response = client.post(
        "/api/v1/auth/token", json={"email": user.email, "password": factories.PASSWORD}
    )
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def _tus_create_with_upload(
    client: Any, headers: dict[str, str], video_id: str, data: bytes
) -> None:
    encoded = base64.b64encode(video_id.encode()).decode()
    response = client.post(
        "/api/v1/uploads",
        data=data,
        headers={
            **headers,
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(len(data)),
            "Upload-Metadata": f"video_id {encoded}",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.headers["Upload-Offset"] == str(len(data))


def test_tus_creation_with_upload_and_a_new_file_after_failure_meet_the_same_limits(
    corpus: Corpus, media_dir: Path
) -> None:
    client = _api(corpus.ctx)
    headers = _login(client, corpus.rep)
    video_id = _draft(client, headers)
    oversized = media_dir / "strip-tus.mp4"
    frame_over_side_limit(oversized)
    good = media_dir / "good-tus.mp4"
    no_audio(good)

    # Text is refused at its first bytes, with the code processing would have given it.
    notes = b"Pricing objection notes\n" * 50
    refused = client.post(
        "/api/v1/uploads",
        data=notes,
        headers={
            **headers,
            "Tus-Resumable": "1.0.0",
            "Upload-Length": str(len(notes)),
            "Upload-Metadata": f"video_id {base64.b64encode(video_id.encode()).decode()}",
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert (refused.status_code, refused.get_json()["code"]) == (422, "not_a_video")
    body = client.get(f"/api/v1/videos/{video_id}", headers=headers).get_json()
    assert (body["status"], body["failure"]["code"]) == ("failed", "not_a_video")

    # A new file for the failed video: held to the limits like the first.
    _tus_create_with_upload(client, headers, video_id, oversized.read_bytes())
    corpus.run_steps()
    body = client.get(f"/api/v1/videos/{video_id}", headers=headers).get_json()
    assert (body["status"], body["failure"]["code"]) == ("failed", "frame_too_large")
    assert body["playback"]["hls_url"] is None and body["playback"]["mp4_url"] is None
    assert corpus.renditions(uuid.UUID(video_id)) == []

    _tus_create_with_upload(client, headers, video_id, good.read_bytes())
    corpus.run_steps()
    body = client.get(f"/api/v1/videos/{video_id}", headers=headers).get_json()
    assert (body["status"], body["missing"], body["failure"]) == ("ready", [], None)
    assert body["playback"]["hls_url"]


def test_a_direct_s3_upload_meets_the_same_limits(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    corpus_db: Database,
    redis: Redis,
    s3_endpoint: str,
    tmp_path: Path,
    media_dir: Path,
) -> None:
    import boto3
    import requests

    bucket = f"fieldcast-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    storage = S3Storage(bucket, "media", endpoint_url=s3_endpoint, part_size=5 * 1024 * 1024)
    settings = dataclasses.replace(settings, media_work_dir=tmp_path / "work")
    ctx = build_context(settings, db=corpus_db, redis=redis, storage=storage)
    monkeypatch.setattr(fieldcast.context, "_current", ctx)
    with committed_factories(corpus_db) as session:
        rep = factories.UserFactory(org=factories.OrganisationFactory())
        session.commit()
    corpus = Corpus(ctx, rep)
    oversized = media_dir / "strip-s3.mp4"
    frame_over_side_limit(oversized)
    data = oversized.read_bytes()

    client = _api(ctx)
    headers = _login(client, rep)
    video_id = _draft(client, headers)
    created = client.post(
        "/api/v1/direct-uploads", json={"video_id": video_id, "size": len(data)}, headers=headers
    )
    assert created.status_code == 201, created.get_json()
    [part] = created.get_json()["parts"]
    put = requests.put(part["url"], data=data, timeout=30)
    assert put.status_code == 200
    done = client.post(
        f"/api/v1/direct-uploads/{created.get_json()['id']}/complete",
        json={"parts": [{"number": 1, "etag": put.headers["ETag"]}]},
        headers=headers,
    )
    assert done.status_code == 200, done.get_json()
    corpus.run_steps()

    body = client.get(f"/api/v1/videos/{video_id}", headers=headers).get_json()
    assert (body["status"], body["failure"]["code"]) == ("failed", "frame_too_large")
    assert body["playback"]["hls_url"] is None
    assert corpus.renditions(uuid.UUID(video_id)) == []
