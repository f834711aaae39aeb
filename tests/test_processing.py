"""From an uploaded file to a playable, then ready, video: real uploads, real RQ workers, real
ffmpeg; hostile files; signed playback; a worker killed mid-transcode."""

from __future__ import annotations

import dataclasses
import itertools
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import av
import psutil
import pytest
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import delete, func, select, update

from fieldcast.context import AppContext
from fieldcast.db import Database
from fieldcast.models.inbox import Notification
from fieldcast.models.outbox import OutboxJob, OutboxStatus
from fieldcast.models.videos import Rendition, Video, VideoStatus
from fieldcast.outbox import services as outbox
from fieldcast.settings import Settings
from fieldcast.videos import playback, processing
from media.ffmpeg import ffmpeg_binary
from media.thumbnails import measure_luma
from tests import factories
from tests.live_server import committed_factories
from tests.media_samples import colr, ffmpeg, make_samples
from tests.worker_support import install_worker_context, run_burst, upload_file

# Its fixtures are made once per module: the module's tests share one worker.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(240, method="thread"),
    pytest.mark.xdist_group("test_processing"),
]


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    made = make_samples(tmp_path_factory.mktemp("processing-samples"))
    # Between the 360p and 540p rungs, untagged (so BT.601, as players guess): encoded first.
    made["between"] = made["landscape"].with_name("between.mp4")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=854x480:rate=30", "-t", "1", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(made["between"]))  # fmt: skip
    return made


@dataclasses.dataclass
class Pipeline:
    ctx: AppContext
    rep: Any
    work_root: Path

    def upload(self, path: Path, title: str = "Pricing objection") -> uuid.UUID:
        return upload_file(self.ctx, self.rep, path, title=title)

    def video(self, video_id: uuid.UUID) -> Video:
        with self.ctx.db.session() as session:
            return session.get_one(Video, video_id)

    def renditions(self, video_id: uuid.UUID) -> dict[str, Rendition]:
        with self.ctx.db.session() as session:
            rows = session.scalars(select(Rendition).where(Rendition.video_id == video_id)).all()
        names = [row.name for row in rows]
        assert len(names) == len(set(names)), names
        return {row.name: row for row in rows}

    def notifications(self, video_id: uuid.UUID) -> list[str]:
        with self.ctx.db.session() as session:
            return [
                n.type
                for n in session.scalars(
                    select(Notification).where(
                        Notification.data["video_id"].astext == str(video_id)
                    )
                )
            ]

    def jobs(self, task: str) -> list[OutboxJob]:
        with self.ctx.db.session() as session:
            return list(session.scalars(select(OutboxJob).where(OutboxJob.task == task)))

    def left_in_work_dir(self) -> list[Path]:
        return list(self.work_root.iterdir()) if self.work_root.exists() else []


def _pipeline(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    db: Database,
    redis: Redis,
    work_root: Path,
    **changes: Any,
) -> Iterator[Pipeline]:
    settings = dataclasses.replace(settings, media_work_dir=work_root, **changes)
    ctx = install_worker_context(monkeypatch, settings, db, redis)
    with committed_factories(db) as session:
        rep = factories.UserFactory(org=factories.OrganisationFactory())
        session.commit()
    yield Pipeline(ctx, rep, work_root)


@pytest.fixture
def pipeline(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    committed_db: Database,
    redis: Redis,
    tmp_path: Path,
) -> Iterator[Pipeline]:
    yield from _pipeline(monkeypatch, settings, committed_db, redis, tmp_path / "work")


def _client(ctx: AppContext) -> FlaskClient:
    from api.app import create_app

    return create_app(ctx.settings, context=ctx).test_client()


def _login(client: FlaskClient, user: Any) -> dict[str, str]:
    response = client.post(
        "/api/v1/auth/token", json={"email": user.email, "password": factories.PASSWORD}
    )
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def _path(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.path}?{parsed.query}"


def _uris(playlist: str) -> list[str]:
    uris = [line for line in playlist.splitlines() if line and not line.startswith("#")]
    uris += [
        line.split('URI="', 1)[1].split('"', 1)[0]
        for line in playlist.splitlines()
        if 'URI="' in line
    ]
    return uris


# -- the whole way --------------------------------------------------------------------------------


def test_a_phone_video_becomes_playable_then_ready_and_plays_through_signed_urls(
    pipeline: Pipeline, samples: dict[str, Path]
) -> None:
    video_id = pipeline.upload(samples["landscape"])
    assert pipeline.video(video_id).status is VideoStatus.PROCESSING

    run_burst(["media-fast", "notify"])
    video = pipeline.video(video_id)
    assert video.status is VideoStatus.PLAYABLE
    assert (video.width, video.height) == (320, 240)
    assert 3900 <= (video.duration_ms or 0) <= 4100
    assert video.playable_at is not None
    first = pipeline.renditions(video_id)
    # H.264 SDR from a phone: remuxed, not re-encoded, so the first rendition is the source;
    # the poster comes with it.
    assert set(first) == {"first", "source_mp4", "poster"}
    assert pipeline.notifications(video_id) == ["video.playable"]

    run_burst()
    video = pipeline.video(video_id)
    assert video.status is VideoStatus.READY
    assert video.progress == 100
    made = pipeline.renditions(video_id)
    assert set(made) == {"first", "source_mp4", "poster", "240p", "master", "mp4", "storyboard"}
    assert (made["240p"].width, made["240p"].height) == (320, 240)
    for rendition in made.values():
        assert pipeline.ctx.storage.exists(rendition.storage_key), rendition.name
    assert pipeline.left_in_work_dir() == []
    assert pipeline.notifications(video_id) == ["video.playable"]  # told once, not per step

    client = _client(pipeline.ctx)
    body = client.get(f"/api/v1/videos/{video_id}", headers=_login(client, pipeline.rep)).get_json()
    assert body["status"] == "ready" and body["progress"] == 100
    urls = body["playback"]
    assert all(urls[name] for name in ("hls_url", "mp4_url", "poster_url", "storyboard_url"))

    master = client.get(_path(urls["hls_url"]))
    assert master.status_code == 200
    assert master.mimetype == "application/vnd.apple.mpegurl"
    assert "private" in master.headers["Cache-Control"]
    variants = _uris(master.get_data(as_text=True))
    assert len(variants) == 1 and "sig=" in variants[0]
    media = client.get(_path(variants[0])).get_data(as_text=True)
    segments = _uris(media)
    assert segments and all("sig=" in uri and "exp=" in uri for uri in segments)
    for uri in segments:
        assert client.get(_path(uri)).status_code == 200

    whole = client.get(_path(urls["mp4_url"]))
    assert whole.status_code == 200
    assert whole.headers["Content-Disposition"].startswith("attachment")
    ranged = client.get(_path(urls["mp4_url"]), headers={"Range": "bytes=100-199"})
    assert ranged.status_code == 206
    assert ranged.get_data() == whole.get_data()[100:200]
    offline = pipeline.work_root.parent / "offline.mp4"
    offline.write_bytes(whole.get_data())
    with av.open(str(offline)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert container.streams.audio

    storyboard = client.get(_path(urls["storyboard_url"]))
    assert storyboard.status_code == 200 and storyboard.mimetype == "text/vtt"
    sprite_uri = next(
        line for line in storyboard.get_data(as_text=True).splitlines() if "#xywh=" in line
    )
    assert client.get(_path(sprite_uri.split("#", 1)[0])).status_code == 200
    poster = pipeline.work_root.parent / "poster.jpg"
    poster.write_bytes(client.get(_path(urls["poster_url"])).get_data())
    assert measure_luma(poster).mean > 0.1


def test_signed_urls_give_nothing_when_tampered_expired_or_guessed(
    pipeline: Pipeline, samples: dict[str, Path]
) -> None:
    video_id = pipeline.upload(samples["faststart"])
    run_burst()
    client = _client(pipeline.ctx)
    owner = _login(client, pipeline.rep)
    urls = client.get(f"/api/v1/videos/{video_id}", headers=owner).get_json()["playback"]
    mp4 = urlparse(urls["mp4_url"])
    secret = pipeline.ctx.settings.secret_key
    assert secret is not None

    tampered = client.get(f"{mp4.path}?{mp4.query.replace('sig=', 'sig=x')}")
    assert tampered.status_code == 403 and tampered.get_json()["code"] == "invalid_signature"
    unsigned = client.get(mp4.path)
    assert unsigned.status_code == 403
    past = int(time.time()) - 10
    expired = client.get(playback.signed_path(secret, mp4.path, past))
    assert expired.status_code == 403 and expired.get_json()["code"] == "link_expired"
    # A signature for one object does not open another, even of the same video.
    poster_key_path = urlparse(urls["poster_url"]).path
    moved = client.get(f"{poster_key_path}?{mp4.query}")
    assert moved.status_code == 403
    # Nor does a playlist signature open another video's playlist.
    other = client.get(f"/play/{uuid.uuid4()}/master.m3u8?{urlparse(urls['hls_url']).query}")
    assert other.status_code == 403

    # Someone who may not see the video gets no URLs at all.
    with committed_factories(pipeline.ctx.db) as session:
        peer = factories.UserFactory(org_id=pipeline.rep.org_id)
        outsider = factories.UserFactory(org=factories.OrganisationFactory())
        session.commit()
    for user in (peer, outsider):
        response = client.get(f"/api/v1/videos/{video_id}", headers=_login(client, user))
        assert response.status_code == 404
        assert "playback" not in response.get_json()


@pytest.mark.parametrize(
    ("sample", "code"),
    [
        ("empty", "empty_file"),
        ("not_a_video", "not_a_video"),
        ("truncated", "truncated"),
        ("truncated_faststart", "truncated"),
        ("audio_only", "audio_only"),
    ],
)
def test_hostile_files_fail_the_video_with_a_reason_once(
    pipeline: Pipeline, samples: dict[str, Path], sample: str, code: str
) -> None:
    video_id = pipeline.upload(samples[sample])
    run_burst()
    video = pipeline.video(video_id)
    assert video.status is VideoStatus.FAILED
    assert video.failure_code == code
    assert video.failure_detail
    [job] = pipeline.jobs("video.process")
    assert (job.status, job.attempts) == (OutboxStatus.DONE, 1)  # not retried in vain
    assert pipeline.renditions(video_id) == {}
    assert pipeline.notifications(video_id) == ["video.failed"]
    assert pipeline.left_in_work_dir() == []

    client = _client(pipeline.ctx)
    body = client.get(f"/api/v1/videos/{video_id}", headers=_login(client, pipeline.rep)).get_json()
    assert body["status"] == "failed"
    assert body["failure"]["code"] == code
    assert body["playback"]["hls_url"] is None


def test_too_long_and_absurd_frames_fail_with_their_codes(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    committed_db: Database,
    redis: Redis,
    tmp_path: Path,
    samples: dict[str, Path],
) -> None:
    limits = dataclasses.replace(settings.limits, max_duration_s=2)
    pipeline = next(
        _pipeline(monkeypatch, settings, committed_db, redis, tmp_path / "work", limits=limits)
    )
    video_id = pipeline.upload(samples["landscape"])
    huge = tmp_path / "huge.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=size=8200x16:rate=1", "-t", "1", "-c:v", "libx264",
           "-preset", "ultrafast", str(huge))  # fmt: skip
    huge_id = pipeline.upload(huge)
    run_burst()
    assert pipeline.video(video_id).failure_code == "too_long"
    assert pipeline.video(huge_id).failure_code == "frame_too_large"


@pytest.mark.parametrize(
    ("sample", "size", "rung"),
    [
        ("portrait", (240, 320), "240p"),  # rotation applied: portrait stays portrait
        ("hlg", (320, 240), "240p"),  # HDR: encoded first, tone-mapped
        ("odd_size", (320, 240), "240p"),  # 4:4:4 odd-sized: encoded, even sizes
        # Between two rungs: first, rung and offline MP4 at its own size, not 640x360.
        ("between", (854, 480), "480p"),
    ],
)
def test_phone_video_kinds(
    pipeline: Pipeline, samples: dict[str, Path], sample: str, size: tuple[int, int], rung: str
) -> None:
    video_id = pipeline.upload(samples[sample])
    run_burst()
    video = pipeline.video(video_id)
    assert video.status is VideoStatus.READY, video.failure_detail
    made = pipeline.renditions(video_id)
    assert (made[rung].width, made[rung].height) == size
    assert (made["first"].width, made["first"].height) == size
    path = pipeline.work_root.parent / f"{sample}.mp4"
    path.write_bytes(b"".join(pipeline.ctx.storage.open(made["mp4"].storage_key)))
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frame = next(container.decode(stream))
        assert (frame.width, frame.height) == size
        assert stream.codec_context.pix_fmt == "yuv420p"
        # SDR BT.709 at limited range, in the H.264 stream and in the MP4 container.
        tags = (frame.color_primaries, frame.color_trc, frame.colorspace, frame.color_range)
        assert tags == (1, 1, 1, 1)
    assert colr(path) == (1, 1, 1, 0)


# -- a worker killed mid-transcode -----------------------------------------------------------------


def _horse_and_ffmpeg() -> tuple[psutil.Process, psutil.Process] | None:
    for child in psutil.Process(os.getpid()).children():
        for grandchild in child.children():
            if "ffmpeg" in grandchild.name():
                return child, grandchild
    return None


def test_a_worker_killed_mid_transcode_leaves_the_video_to_another(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    committed_db: Database,
    redis: Redis,
    tmp_path: Path,
) -> None:
    pipeline = next(
        _pipeline(
            monkeypatch,
            settings,
            committed_db,
            redis,
            tmp_path / "work",
            outbox_lease_s=2,
            media_preset="medium",
        )
    )
    source = tmp_path / "long.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=960x540:rate=30", "-f", "lavfi", "-i",
           "sine=frequency=300", "-t", "12", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(source))  # fmt: skip
    video_id = pipeline.upload(source)
    run_burst(["media-fast", "notify"])
    assert pipeline.video(video_id).status is VideoStatus.PLAYABLE

    killed: dict[str, int] = {}

    def kill_mid_transcode() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = _horse_and_ffmpeg()
            if found and pipeline.video(video_id).progress >= 35:
                horse, encoder = found
                killed.update(horse=horse.pid, ffmpeg=encoder.pid)
                horse.send_signal(signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_mid_transcode)
    killer.start()
    run_burst(["media"])
    killer.join()
    assert killed, "the ladder finished before it could be interrupted"
    assert pipeline.video(video_id).status is VideoStatus.PLAYABLE  # still plays meanwhile

    # ffmpeg died with its worker rather than write on for nobody.
    deadline = time.monotonic() + 5
    while psutil.pid_exists(killed["ffmpeg"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not psutil.pid_exists(killed["ffmpeg"]) or (
        psutil.Process(killed["ffmpeg"]).status() == psutil.STATUS_ZOMBIE
    )

    time.sleep(2.5)  # the lease, no longer renewed, runs out
    report = outbox.relay(pipeline.ctx.db, pipeline.ctx.dispatcher)
    assert report.expired == 1 and report.requeued == 1
    run_burst(["media"])

    video = pipeline.video(video_id)
    assert video.status is VideoStatus.READY
    made = pipeline.renditions(video_id)  # asserts one row per name
    assert {"360p", "540p", "master", "mp4", "poster", "storyboard"} <= set(made)
    [job] = pipeline.jobs("video.ladder")
    assert (job.status, job.attempts) == (OutboxStatus.DONE, 2)
    assert pipeline.left_in_work_dir() == []
    master = b"".join(pipeline.ctx.storage.open(made["master"].storage_key)).decode()
    assert master.count("#EXT-X-STREAM-INF") == 2


# -- a video that plays always ends ready --------------------------------------------------------


def _ffmpeg_where(directory: Path, pattern: str, then: str) -> str:
    """ffmpeg as a script in `directory` that runs the shell command `then` first for the
    ffmpeg commands matching `pattern` (exec'ing the real ffmpeg there takes their place)."""
    real = ffmpeg_binary()
    script = directory / "ffmpeg"
    script.write_text(f'#!/bin/sh\ncase "$*" in *"{pattern}"*) {then};; esac\nexec "{real}" "$@"\n')
    script.chmod(0o755)
    return str(script)


def _failing_ffmpeg(directory: Path, pattern: str) -> str:
    """ffmpeg, except that the commands matching `pattern` fail as a broken build or a codec
    bug would make them fail."""
    return _ffmpeg_where(directory, pattern, 'echo "Conversion failed!" >&2; exit 1')


@pytest.mark.parametrize(
    ("pattern", "missing"),
    [
        ("tile=", ["storyboard"]),  # the storyboard
        ("-q:v 3", ["poster"]),  # every poster candidate
        (".frag.mp4", ["mp4"]),  # the offline MP4 from the ladder's rung
        ("-master_pl_name", ["ladder", "mp4"]),  # the ladder, and so the MP4 made from it
    ],
)
def test_an_output_that_cannot_be_made_leaves_the_video_ready_without_it(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    committed_db: Database,
    redis: Redis,
    tmp_path: Path,
    samples: dict[str, Path],
    pattern: str,
    missing: list[str],
) -> None:
    binary = _failing_ffmpeg(tmp_path, pattern)
    pipeline = next(
        _pipeline(
            monkeypatch, settings, committed_db, redis, tmp_path / "work", ffmpeg_binary=binary
        )
    )
    video_id = pipeline.upload(samples["landscape"])
    run_burst()

    video = pipeline.video(video_id)
    assert video.status is VideoStatus.READY
    assert video.missing == missing
    assert video.progress == 100 and video.ready_at is not None
    [job] = pipeline.jobs("video.ladder")
    assert job.status is OutboxStatus.DONE
    assert pipeline.left_in_work_dir() == []

    client = _client(pipeline.ctx)
    body = client.get(f"/api/v1/videos/{video_id}", headers=_login(client, pipeline.rep)).get_json()
    assert (body["status"], body["missing"]) == ("ready", missing)
    urls = body["playback"]
    assert urls["hls_url"] and urls["mp4_url"]  # it plays, from the first rendition at worst
    assert bool(urls["poster_url"]) == ("poster" not in missing)
    assert bool(urls["storyboard_url"]) == ("storyboard" not in missing)
    made = pipeline.renditions(video_id)
    assert ("master" in made) == ("ladder" not in missing)
    hls = client.get(_path(urls["hls_url"]))
    assert hls.status_code == 200


def test_the_fast_start_copy_comes_after_playable_and_may_fail_without_harm(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    committed_db: Database,
    redis: Redis,
    tmp_path: Path,
    samples: dict[str, Path],
) -> None:
    # The copy is the only ffmpeg command writing `+faststart` in the first step.
    binary = _failing_ffmpeg(tmp_path, "+faststart+write_colr")
    pipeline = next(
        _pipeline(
            monkeypatch, settings, committed_db, redis, tmp_path / "work", ffmpeg_binary=binary
        )
    )
    video_id = pipeline.upload(samples["landscape"])
    run_burst(["media-fast", "notify"])

    video = pipeline.video(video_id)
    assert video.status is VideoStatus.PLAYABLE
    assert set(pipeline.renditions(video_id)) == {"first", "poster"}
    assert pipeline.notifications(video_id) == ["video.playable"]
    [job] = pipeline.jobs("video.process")
    assert job.status is OutboxStatus.DONE
    assert pipeline.left_in_work_dir() == []


def test_a_ladder_given_up_after_its_attempts_leaves_the_video_ready(
    pipeline: Pipeline, samples: dict[str, Path]
) -> None:
    video_id = pipeline.upload(samples["faststart"])
    run_burst(["media-fast", "notify"])
    assert pipeline.video(video_id).status is VideoStatus.PLAYABLE
    # Every worker that took the ladder died with it (out of memory, past the hard time limit).
    [job] = pipeline.jobs("video.ladder")
    with pipeline.ctx.db.session() as session:
        session.execute(
            update(OutboxJob)
            .where(OutboxJob.id == job.id)
            .values(
                status=OutboxStatus.RUNNING,
                attempts=job.max_attempts,
                lease_until=func.now() - timedelta(seconds=1),
            )
        )
        session.commit()
    outbox.relay(pipeline.ctx.db, pipeline.ctx.dispatcher)

    video = pipeline.video(video_id)
    assert video.status is VideoStatus.READY
    assert video.missing == ["ladder", "mp4", "storyboard"]  # the poster came at playable
    [job] = pipeline.jobs("video.ladder")
    assert job.status is OutboxStatus.FAILED
    assert pipeline.notifications(video_id) == [
        "video.playable"
    ]  # no failure for a video that plays


def test_a_ladder_that_finds_the_file_outside_the_limits_makes_nothing_more(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    committed_db: Database,
    redis: Redis,
    tmp_path: Path,
    samples: dict[str, Path],
) -> None:
    pipeline = next(_pipeline(monkeypatch, settings, committed_db, redis, tmp_path / "work"))
    video_id = pipeline.upload(samples["landscape"])
    run_burst(["media-fast", "notify"])
    assert pipeline.video(video_id).status is VideoStatus.PLAYABLE
    # The limits were lowered (a new release, a changed setting) while the ladder waited.
    limits = dataclasses.replace(settings.limits, max_duration_s=2)
    pipeline = next(
        _pipeline(monkeypatch, settings, committed_db, redis, tmp_path / "work", limits=limits)
    )
    run_burst(["media"])

    video = pipeline.video(video_id)
    assert video.status is VideoStatus.READY
    assert video.missing == ["ladder", "mp4", "storyboard"]  # the poster came at playable
    assert set(pipeline.renditions(video_id)) == {"first", "source_mp4", "poster"}


# -- settling playable videos whose ladder ended -------------------------------------------------


def _playable(pipeline: Pipeline, samples: dict[str, Path]) -> tuple[uuid.UUID, OutboxJob]:
    video_id = pipeline.upload(samples["faststart"])
    run_burst(["media-fast", "notify"])
    assert pipeline.video(video_id).status is VideoStatus.PLAYABLE
    [job] = pipeline.jobs(processing.LADDER_TASK)
    assert job.status is OutboxStatus.PENDING
    return video_id, job


def _set_job(ctx: AppContext, job_id: uuid.UUID, **values: Any) -> None:
    with ctx.db.session() as session:
        session.execute(update(OutboxJob).where(OutboxJob.id == job_id).values(**values))
        session.commit()


def test_a_playable_video_whose_ladder_failed_and_whose_give_up_failed_is_settled(
    pipeline: Pipeline, samples: dict[str, Path]
) -> None:
    video_id, job = _playable(pipeline, samples)

    def crash(session: Any, payload: dict[str, Any], *reason: str) -> None:
        raise RuntimeError("the database went away")

    # The ladder's last attempt crashes, and so does its give-up: the outbox row ends failed
    # and the video is left playable.
    ladder = outbox.tasks.get(processing.LADDER_TASK)
    registry = outbox.TaskRegistry(
        {ladder.name: dataclasses.replace(ladder, func=crash, on_give_up=crash)}
    )
    status = outbox.execute(pipeline.ctx.db, job.id, lease=timedelta(minutes=1), registry=registry)
    assert status is OutboxStatus.FAILED
    assert pipeline.video(video_id).status is VideoStatus.PLAYABLE

    assert processing.settle_playable(pipeline.ctx.db) == 1
    video = pipeline.video(video_id)
    assert video.status is VideoStatus.READY
    assert video.missing == ["ladder", "mp4", "storyboard"]  # the poster came at playable
    assert video.progress == 100 and video.ready_at is not None
    assert processing.settle_playable(pipeline.ctx.db) == 0
    assert pipeline.notifications(video_id) == ["video.playable"]


def test_a_playable_video_with_no_ladder_left_is_settled_after_the_grace_period(
    pipeline: Pipeline, samples: dict[str, Path]
) -> None:
    video_id, job = _playable(pipeline, samples)
    # A finished row removed by retention, or by hand: nothing will run the ladder any more.
    with pipeline.ctx.db.session() as session:
        session.execute(delete(OutboxJob).where(OutboxJob.id == job.id))
        session.commit()
    assert processing.settle_playable(pipeline.ctx.db) == 0
    assert pipeline.video(video_id).status is VideoStatus.PLAYABLE

    with pipeline.ctx.db.session() as session:
        session.execute(
            update(Video)
            .where(Video.id == video_id)
            .values(playable_at=func.now() - processing.LADDER_GRACE - timedelta(seconds=1))
        )
        session.commit()
    assert processing.settle_playable(pipeline.ctx.db) == 1
    video = pipeline.video(video_id)
    assert (video.status, video.missing) == (VideoStatus.READY, ["ladder", "mp4", "storyboard"])


@pytest.mark.parametrize("status", [OutboxStatus.PENDING, OutboxStatus.RUNNING])
def test_a_playable_video_whose_ladder_is_still_due_is_left_to_it(
    pipeline: Pipeline, samples: dict[str, Path], status: OutboxStatus
) -> None:
    video_id, job = _playable(pipeline, samples)
    _set_job(pipeline.ctx, job.id, status=status)
    with pipeline.ctx.db.session() as session:
        session.execute(
            update(Video)
            .where(Video.id == video_id)
            .values(playable_at=func.now() - timedelta(days=1))
        )
        session.commit()
    assert processing.settle_playable(pipeline.ctx.db) == 0
    assert pipeline.video(video_id).status is VideoStatus.PLAYABLE

    # Once the ladder runs, the video is ready with everything, and nothing is left to settle.
    _set_job(pipeline.ctx, job.id, status=OutboxStatus.PENDING, lease_until=None)
    run_burst(["media"])
    video = pipeline.video(video_id)
    assert (video.status, video.missing) == (VideoStatus.READY, [])
    assert processing.settle_playable(pipeline.ctx.db) == 0


def test_settling_uses_the_ladder_of_the_current_file(
    pipeline: Pipeline, samples: dict[str, Path]
) -> None:
    video_id, job = _playable(pipeline, samples)
    # An older file's ladder failed; this file's ladder is still due.
    with pipeline.ctx.db.session() as session:
        version = session.get_one(Video, video_id).source_version
        outbox.record(
            session,
            processing.LADDER_TASK,
            {"video_id": str(video_id), "version": version - 1},
            dedup_key=f"{processing.LADDER_TASK}:{video_id}:{version - 1}",
        )
        session.execute(
            update(OutboxJob)
            .where(OutboxJob.dedup_key == f"{processing.LADDER_TASK}:{video_id}:{version - 1}")
            .values(status=OutboxStatus.FAILED)
        )
        session.commit()
    assert processing.settle_playable(pipeline.ctx.db) == 0
    assert pipeline.video(video_id).status is VideoStatus.PLAYABLE
    _set_job(pipeline.ctx, job.id, status=OutboxStatus.FAILED)
    assert processing.settle_playable(pipeline.ctx.db) == 1


# -- an iPhone's HEVC HDR video --------------------------------------------------------------------


def _hevc_hlg(out: Path, *, black_s: float = 1.5, seconds: float = 4) -> Path:
    """An iPhone-like recording: HEVC Main 10 HLG (BT.2020), `hvc1`, AAC, a key frame every half
    second, opening on `black_s` seconds of black (a hand over the lens)."""
    ffmpeg("-f", "lavfi", "-i", f"color=black:size=640x360:rate=30:d={black_s}",
           "-f", "lavfi", "-i", f"testsrc2=size=640x360:rate=30:d={seconds - black_s}",
           "-f", "lavfi", "-i", "sine=frequency=440", "-t", str(seconds),
           "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v];[v]format=yuv420p10le[o]",
           "-map", "[o]", "-map", "2:a", "-c:v", "libx265", "-preset", "ultrafast",
           "-x265-params", "keyint=15:colorprim=bt2020:transfer=arib-std-b67:"
           "colormatrix=bt2020nc:log-level=error",
           "-tag:v", "hvc1", "-color_primaries", "bt2020", "-color_trc", "arib-std-b67",
           "-colorspace", "bt2020nc", "-c:a", "aac", "-shortest", str(out))  # fmt: skip
    return out


def _gated_ffmpeg(directory: Path, pattern: str, gate: Path) -> str:
    """ffmpeg, except that the commands matching `pattern` wait (up to a minute) for `gate`."""
    return _ffmpeg_where(
        directory,
        pattern,
        f'i=0; while [ ! -e "{gate}" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done',
    )


def _stream_infs(master: str) -> dict[str, str]:
    """Each variant's rendition name -> its #EXT-X-STREAM-INF line, from a served master."""
    lines = master.splitlines()
    found = {}
    for tag, uri in itertools.pairwise(lines):
        if tag.startswith("#EXT-X-STREAM-INF:"):
            found[urlparse(uri).path.rsplit("/", 1)[1].removesuffix(".m3u8")] = tag
    return found


def _poster_luma(client: FlaskClient, url: str, where: Path) -> float:
    where.write_bytes(client.get(_path(url)).get_data())
    return measure_luma(where).mean


def test_an_hevc_hdr_source_plays_for_hevc_clients_first_then_h264_in_the_same_master(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    committed_db: Database,
    redis: Redis,
    tmp_path: Path,
) -> None:
    gate = tmp_path / "gate"
    # The H.264 encode waits until the HEVC-only state has been looked at.
    binary = _gated_ffmpeg(tmp_path, "libx264", gate)
    pipeline = next(
        _pipeline(
            monkeypatch, settings, committed_db, redis, tmp_path / "work", ffmpeg_binary=binary
        )
    )
    video_id = pipeline.upload(_hevc_hlg(tmp_path / "iphone.mov"))
    client = _client(pipeline.ctx)
    headers = _login(client, pipeline.rep)
    seen: dict[str, Any] = {}

    def look_while_only_hevc_plays() -> None:
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "hevc" not in pipeline.renditions(video_id):
                time.sleep(0.05)
            body = client.get(f"/api/v1/videos/{video_id}", headers=headers).get_json()
            seen["body"] = body
            if body["playback"]["hls_url"]:
                seen["master"] = client.get(_path(body["playback"]["hls_url"])).get_data(
                    as_text=True
                )
            seen["notifications"] = pipeline.notifications(video_id)
        finally:
            gate.touch()

    looker = threading.Thread(target=look_while_only_hevc_plays)
    looker.start()
    run_burst(["media-fast", "notify"])
    looker.join()

    # Within the first step, before any H.264: HEVC clients play it, HDR kept, with a poster.
    body = seen["body"]
    assert body["status"] == "processing"
    playback_now = body["playback"]
    assert playback_now["playable_for"] == ["hevc"]
    [hevc] = playback_now["renditions"]
    assert hevc["name"] == "hevc" and hevc["kind"] == "hls" and hevc["hdr"] == "hlg"
    assert hevc["codec"].startswith("hvc1.2.4.L") and hevc["codec"].endswith(",mp4a.40.2")
    assert (hevc["width"], hevc["height"]) == (640, 360)
    infs = _stream_infs(seen["master"])
    assert list(infs) == ["hevc"]
    assert f'CODECS="{hevc["codec"]}"' in infs["hevc"] and "VIDEO-RANGE=HLG" in infs["hevc"]
    assert seen["notifications"] == []  # peers are told once it plays for everyone
    variant = client.get(_path(_uris(seen["master"])[0])).get_data(as_text=True)
    assert 'URI="' in variant and all(
        client.get(_path(uri)).status_code == 200 for uri in _uris(variant)
    )
    init = tmp_path / "hevc-init.mp4"
    init_uri = variant.split('URI="', 1)[1].split('"', 1)[0]
    init.write_bytes(client.get(_path(init_uri)).get_data())
    with av.open(str(init)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "hevc" and stream.codec_tag == "hvc1"
    assert colr(init) == (9, 18, 9, 0)  # BT.2020 HLG, kept

    # Then the H.264 SDR rendition: playable for everyone, in the same master, told once.
    video = pipeline.video(video_id)
    assert video.status is VideoStatus.PLAYABLE
    assert pipeline.notifications(video_id) == ["video.playable"]
    body = client.get(f"/api/v1/videos/{video_id}", headers=headers).get_json()
    assert body["playback"]["playable_for"] == ["h264", "hevc"]
    # The poster is there once it plays: from a frame past the black opening, tone-mapped.
    early = _poster_luma(client, body["playback"]["poster_url"], tmp_path / "early.jpg")
    assert 0.1 < early < 0.8
    names = [r["name"] for r in body["playback"]["renditions"]]
    assert names == ["hevc", "first"]
    first = body["playback"]["renditions"][1]
    assert first["codec"].startswith("avc1.") and first["hdr"] is None
    assert (first["width"], first["height"]) == (640, 360)
    infs = _stream_infs(client.get(_path(body["playback"]["hls_url"])).get_data(as_text=True))
    assert list(infs) == ["hevc", "first"]
    assert f'CODECS="{first["codec"]}"' in infs["first"] and "VIDEO-RANGE=SDR" in infs["first"]
    assert "VIDEO-RANGE=HLG" in infs["hevc"]

    # The ladder: H.264 SDR rungs (tone-mapped) beside the HEVC copy in one master.
    run_burst()
    video = pipeline.video(video_id)
    assert video.status is VideoStatus.READY and video.missing == []
    body = client.get(f"/api/v1/videos/{video_id}", headers=headers).get_json()
    urls = body["playback"]
    infs = _stream_infs(client.get(_path(urls["hls_url"])).get_data(as_text=True))
    assert list(infs) == ["hevc", "360p"]
    rungs = {r["name"]: r for r in urls["renditions"]}
    assert set(rungs) == {"hevc", "360p", "mp4"}
    assert f'CODECS="{rungs["360p"]["codec"]}"' in infs["360p"]
    assert "VIDEO-RANGE=SDR" in infs["360p"] and "VIDEO-RANGE=HLG" in infs["hevc"]
    assert rungs["mp4"]["codec"].startswith("avc1.") and rungs["mp4"]["kind"] == "mp4"
    assert _poster_luma(client, urls["poster_url"], tmp_path / "poster.jpg") > 0.1
    assert pipeline.notifications(video_id) == ["video.playable"]


def _slowed_ffmpeg(directory: Path, pattern: str, rate: float) -> str:
    """ffmpeg, except that the commands matching `pattern` read their input at `rate` times
    its speed (`-readrate`), as a long file's copy would run."""
    return _ffmpeg_where(directory, pattern, f'exec "{ffmpeg_binary()}" -readrate {rate} "$@"')


def test_an_hevc_copy_is_offered_while_it_is_stored_and_its_playlist_only_grows(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    committed_db: Database,
    redis: Redis,
    tmp_path: Path,
) -> None:
    # The copy runs at four times real time, so a 16 s file takes it about 4 s; HEVC clients
    # are offered it once its first segment is stored.
    monkeypatch.setattr(processing, "HEVC_START_S", 4.0)
    binary = _slowed_ffmpeg(tmp_path, "hvc1", 4)
    pipeline = next(
        _pipeline(
            monkeypatch, settings, committed_db, redis, tmp_path / "work", ffmpeg_binary=binary
        )
    )
    video_id = pipeline.upload(_hevc_hlg(tmp_path / "long.mov", black_s=0.5, seconds=16))
    client = _client(pipeline.ctx)
    headers = _login(client, pipeline.rep)
    # Every version of the HEVC playlist a player got before the video played for everyone,
    # with its Cache-Control and what fetching each of its URIs answered.
    seen: list[tuple[str, str, list[int]]] = []
    errors: list[BaseException] = []

    def reload_like_a_player() -> None:
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                body = client.get(f"/api/v1/videos/{video_id}", headers=headers).get_json()
                if body["status"] != "processing":
                    return
                if body["playback"]["hls_url"]:
                    master = client.get(_path(body["playback"]["hls_url"])).get_data(as_text=True)
                    [variant] = [uri for uri in _uris(master) if "/hevc.m3u8" in uri]
                    answer = client.get(_path(variant))
                    text = answer.get_data(as_text=True)
                    statuses = [client.get(_path(uri)).status_code for uri in _uris(text)]
                    seen.append((text, answer.headers["Cache-Control"], statuses))
                time.sleep(0.02)
        except BaseException as exc:  # reported by the test's thread
            errors.append(exc)

    player = threading.Thread(target=reload_like_a_player)
    player.start()
    run_burst(["media-fast", "notify"])
    player.join()
    assert not errors, errors

    growing = [text for text, _, _ in seen if "#EXT-X-ENDLIST" not in text]
    assert growing, "the copy was offered only once it was stored whole"
    whole = [text for text, _, _ in seen if "#EXT-X-ENDLIST" in text]
    assert whole, "the finished playlist was never served while the H.264 rendition was made"
    final = whole[-1]
    assert final.count(".m4s") == 4  # 16 s in 4 s segments
    # Offered once its first segment (HEVC_START_S here) was stored, before the last one was.
    assert all(1 <= text.count(".m4s") < 4 for text in growing)
    for text, cache, statuses in seen:
        # Nothing named before it is stored; a growing playlist is not kept by the player.
        assert statuses and all(status == 200 for status in statuses), text
        assert "#EXT-X-PLAYLIST-TYPE:EVENT" in text and "#EXT-X-START:TIME-OFFSET=0" in text
        assert cache == ("private, max-age=60" if text in whole else "private, no-cache")

    def segments(text: str) -> list[str]:
        # Signatures differ per fetch; the segment names and durations are what must hold.
        lines = [urlparse(line).path if not line.startswith("#") else line
                 for line in text.splitlines()]  # fmt: skip
        return [line for line in lines if line.startswith("#EXTINF") or line.endswith(".m4s")]

    targets = {line for text, _, _ in seen for line in text.splitlines()
               if line.startswith("#EXT-X-TARGETDURATION")}  # fmt: skip
    assert len(targets) == 1  # never changes while it grows
    for before, after in itertools.pairwise(text for text, _, _ in seen):
        assert segments(after)[: len(segments(before))] == segments(before)

    video = pipeline.video(video_id)
    assert video.status is VideoStatus.PLAYABLE
    hevc = pipeline.renditions(video_id)["hevc"]
    stored = pipeline.ctx.storage
    assert hevc.size_bytes == sum(
        stored.size(f"{video.media_prefix}/hevc/{name}")
        for name in ["init.mp4", *(f"seg-{n:05d}.m4s" for n in range(4))]
    )


def test_the_poster_exists_at_playable_and_is_not_the_black_opening(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    source = tmp_path / "lens-cap.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=black:size=320x240:rate=30:d=1",
           "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:d=3",
           "-filter_complex", "[0:v][1:v]concat=n=2:v=1,setparams=color_primaries=bt709:"
           "color_trc=bt709:colorspace=bt709:range=tv[v]", "-map", "[v]", "-c:v", "libx264",
           "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "15", str(source))  # fmt: skip
    video_id = pipeline.upload(source)
    run_burst(["media-fast", "notify"])

    assert pipeline.video(video_id).status is VideoStatus.PLAYABLE
    made = pipeline.renditions(video_id)
    assert {"first", "poster"} <= set(made)
    early = tmp_path / "early.jpg"
    early.write_bytes(b"".join(pipeline.ctx.storage.open(made["poster"].storage_key)))
    luma = measure_luma(early)
    assert luma.looks_good and luma.mean > 0.1
    with av.open(str(early)) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (made["poster"].width, made["poster"].height)

    run_burst()
    assert pipeline.video(video_id).status is VideoStatus.READY
    poster = pipeline.renditions(video_id)["poster"]
    assert pipeline.ctx.storage.exists(poster.storage_key)
    late = tmp_path / "late.jpg"
    late.write_bytes(b"".join(pipeline.ctx.storage.open(poster.storage_key)))
    assert measure_luma(late).looks_good
