"""Transcripts: real speech (spoken by espeak-ng) transcribed by the real PocketSphinx engine,
the worker path from a ready video to its segments, captions as WebVTT and in the HLS master
playlist, and corrections by the video's author only."""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session

from fieldcast import events
from fieldcast.context import AppContext
from fieldcast.db import Database
from fieldcast.models.outbox import OutboxJob, OutboxStatus
from fieldcast.models.transcripts import Transcript, TranscriptSegment, TranscriptStatus
from fieldcast.models.videos import Video, VideoStatus
from fieldcast.settings import Settings
from fieldcast.transcripts import services as transcripts
from fieldcast.transcripts import transcribe
from fieldcast.transcripts.services import SegmentInput
from media import captions
from media.ffmpeg import ffmpeg_binary
from media.transcription import PocketsphinxEngine, Segment, Word, clean_word, group_words
from tests import factories
from tests.api_support import share_video
from tests.live_server import committed_factories
from tests.media_samples import ffmpeg
from tests.worker_support import install_worker_context, run_burst, upload_file

SENTENCE = "the price is too high. we need a better price for this customer."
KNOWN_WORDS = {"price", "high", "need", "better", "customer", "too"}


def require_espeak() -> str:
    """espeak-ng, which `.ci/run` installs: outside CI a machine without it skips these tests,
    under CI its absence fails them."""
    found = shutil.which("espeak-ng")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("espeak-ng is not installed; .ci/run installs it")
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    return found


@pytest.fixture(scope="module")
def speech_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-5 s H.264/AAC clip whose sound is the sentence, spoken slowly."""
    espeak = require_espeak()
    directory = tmp_path_factory.mktemp("speech")
    wav = directory / "speech.wav"
    subprocess.run([espeak, "-v", "en-us", "-s", "120", "-w", str(wav), SENTENCE], check=True)
    clip = directory / "speech.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-i", str(wav),
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           "-c:a", "aac", "-shortest", str(clip))  # fmt: skip
    return clip


def _words(segments: list[Any]) -> set[str]:
    return {word.lower().strip(".,") for s in segments for word in s.text.split()}


# -- the engine ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_pocketsphinx_hears_the_spoken_words_with_their_times(speech_video: Path) -> None:
    segments = PocketsphinxEngine(ffmpeg_binary()).transcribe(speech_video, "en")
    heard = _words(segments)
    assert "price" in heard, segments
    assert len(heard & KNOWN_WORDS) >= 3, segments
    assert segments[0].start_ms < 1500
    for before, after in itertools.pairwise(segments):
        assert before.end_ms <= after.start_ms
    assert all(0 <= s.start_ms < s.end_ms <= 6000 for s in segments)
    assert not any(token in s.text for s in segments for token in ("<sil>", "[NOISE]", "(2)"))


def test_fillers_and_alternates_are_not_words() -> None:
    tokens = ("<s>", "<sil>", "[NOISE]", "++BREATH++", "price(2)", "high")
    assert [clean_word(t) for t in tokens] == [None, None, None, None, "price", "high"]


def test_words_group_into_segments_at_pauses_and_at_most_eight_seconds() -> None:
    words = [Word(0, 400, "the"), Word(450, 900, "price"), Word(2000, 2400, "is")]
    assert group_words(words) == [Segment(0, 900, "the price"), Segment(2000, 2400, "is")]
    steady = [Word(i * 500, i * 500 + 450, f"w{i}") for i in range(40)]
    grouped = group_words(steady)
    assert all(s.end_ms - s.start_ms <= 8000 for s in grouped)
    assert " ".join(s.text for s in grouped) == " ".join(w.text for w in steady)


# -- WebVTT and HLS -----------------------------------------------------------------------------


def test_webvtt_times_and_escaping() -> None:
    text = captions.webvtt(
        [
            captions.Cue(0, 1500, "Price <b>& terms</b>"),
            captions.Cue(3_723_004, 3_725_000, "a --> b"),
        ]
    )
    assert text.startswith("WEBVTT\n\n1\n00:00:00.000 --> 00:00:01.500\n")
    assert "Price &lt;b&gt;&amp; terms&lt;/b&gt;" in text
    assert "01:02:03.004 --> 01:02:05.000\na --&gt; b" in text


def test_the_master_playlist_gains_a_subtitles_group_every_variant_names() -> None:
    master = (
        "#EXTM3U\n#EXT-X-VERSION:7\n\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS="avc1.64001f"\n360p/index.m3u8\n'
        '#EXT-X-STREAM-INF:BANDWIDTH=2,CODECS="avc1.64001f"\n720p/index.m3u8\n'
    )
    out = captions.with_subtitles(master, uri="captions/index.m3u8", name="English", language="en")
    lines = out.splitlines()
    media = [line for line in lines if line.startswith("#EXT-X-MEDIA:")]
    assert media == [
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",'
        'AUTOSELECT=YES,DEFAULT=NO,FORCED=NO,URI="captions/index.m3u8"'
    ]
    assert lines.index(media[0]) < min(i for i, x in enumerate(lines) if "STREAM-INF" in x)
    assert all(x.endswith(',SUBTITLES="subs"') for x in lines if x.startswith("#EXT-X-STREAM-INF"))
    playlist = captions.subtitles_playlist("captions.vtt?sig=x", 4321)
    assert "#EXT-X-TARGETDURATION:5" in playlist and "#EXTINF:4.321," in playlist
    assert playlist.rstrip().endswith("captions.vtt?sig=x\n#EXT-X-ENDLIST".rstrip())


# -- the worker, end to end ---------------------------------------------------------------------


@dataclasses.dataclass
class World:
    ctx: AppContext
    rep: Any
    client: FlaskClient


@pytest.fixture
def world(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    committed_db: Database,
    redis: Redis,
    tmp_path: Path,
) -> Iterator[World]:
    from api.app import create_app

    changed = dataclasses.replace(
        settings, media_work_dir=tmp_path / "work", transcription_engine="pocketsphinx"
    )
    ctx = install_worker_context(monkeypatch, changed, committed_db, redis)
    with committed_factories(committed_db) as session:
        rep = factories.UserFactory(org=factories.OrganisationFactory())
        session.commit()
    yield World(ctx, rep, create_app(ctx.settings, context=ctx).test_client())


def _get(client: FlaskClient, url: str, **kwargs: Any) -> Any:
    parsed = urlparse(url)
    return client.get(f"{parsed.path}?{parsed.query}", **kwargs)


def _uri(line: str) -> str:
    return line.split('URI="', 1)[1].split('"', 1)[0]


@pytest.mark.slow
@pytest.mark.timeout(300, method="thread")
def test_a_ready_video_is_transcribed_and_captioned_and_its_author_corrects_it(
    world: World, speech_video: Path
) -> None:
    video_id = upload_file(world.ctx, world.rep, speech_video, title="Pricing objection")
    run_burst()
    with world.ctx.db.session() as session:
        video = session.get_one(Video, video_id)
        assert video.status is VideoStatus.READY
        job = session.scalars(
            select(OutboxJob).where(OutboxJob.task == transcribe.TRANSCRIBE_TASK)
        ).one()
        assert (job.queue, job.status) == ("transcribe", OutboxStatus.DONE)
        assert job.dedup_key == transcripts.transcribe_key(video_id, video.source_version)

    headers = _login(world)
    answer = world.client.get(f"/api/v1/videos/{video_id}/transcript", headers=headers)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert (body["status"], body["engine"], body["language"]) == ("done", "pocketsphinx", "en")
    assert "price" in _words([_Text(s["text"]) for s in body["segments"]])
    with world.ctx.db.session() as session:
        assert "price" in transcripts.transcript_text(session, world.rep.org_id, video_id)

    playback = world.client.get(f"/api/v1/videos/{video_id}", headers=headers).get_json()[
        "playback"
    ]
    vtt = _get(world.client, playback["captions_url"])
    assert vtt.status_code == 200 and vtt.mimetype == "text/vtt"
    assert vtt.get_data(as_text=True).startswith("WEBVTT") and "price" in vtt.get_data(as_text=True)

    master = _get(world.client, playback["hls_url"]).get_data(as_text=True)
    media = [line for line in master.splitlines() if line.startswith("#EXT-X-MEDIA:")]
    assert len(media) == 1 and "TYPE=SUBTITLES" in media[0] and 'LANGUAGE="en"' in media[0]
    assert all('SUBTITLES="subs"' in x for x in master.splitlines() if "STREAM-INF" in x)
    subtitles = _get(world.client, _uri(media[0]))
    assert subtitles.status_code == 200
    segment_url = [x for x in subtitles.get_data(as_text=True).splitlines() if x.startswith("http")]
    assert _get(world.client, segment_url[0]).get_data(as_text=True) == vtt.get_data(as_text=True)

    edited = world.client.put(
        f"/api/v1/videos/{video_id}/transcript",
        json={"segments": [{"start_ms": 0, "end_ms": 3000, "text": "The price is too high"}]},
        headers=headers,
    )
    assert edited.status_code == 200, edited.get_json()
    assert edited.get_json()["edited_at"] is not None
    # The engine running again for the same file keeps the author's words.
    with world.ctx.db.unit_of_work() as session:
        version = session.get_one(Video, video_id).source_version
        transcribe.transcribe(session, {"video_id": str(video_id), "version": version})
    again = world.client.get(f"/api/v1/videos/{video_id}/transcript", headers=headers).get_json()
    assert [s["text"] for s in again["segments"]] == ["The price is too high"]


@dataclasses.dataclass
class _Text:
    text: str


def _login(world: World) -> dict[str, str]:
    response = world.client.post(
        "/api/v1/auth/token", json={"email": world.rep.email, "password": factories.PASSWORD}
    )
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


# -- reading and editing, inside one transaction -------------------------------------------------


def _ready_video(session: Session, owner: Any, *, duration_ms: int = 60_000) -> Video:
    video = Video(
        org_id=owner.org_id,
        owner_id=owner.id,
        title="Discount talk",
        status=VideoStatus.READY,
        duration_ms=duration_ms,
        source_version=1,
        source_key=f"org/{owner.org_id}/videos/x/source",
    )
    session.add(video)
    session.flush()
    return video


def _transcribed(session: Session, video: Video, *texts: str) -> None:
    events.publish(
        session,
        events.VideoBecameReady(
            org_id=video.org_id, video_id=video.id, owner_id=video.owner_id, source_version=1
        ),
    )
    segments = [SegmentInput(i * 2000, i * 2000 + 1500, text) for i, text in enumerate(texts)]
    assert transcripts.store_result(
        session, video, 1, status=TranscriptStatus.DONE, engine="pocketsphinx", language="en",
        segments=segments,
    )  # fmt: skip


@pytest.fixture
def text_changes() -> Iterator[list[uuid.UUID]]:
    seen: list[uuid.UUID] = []

    def record(session: Session, event: events.VideoTextChanged) -> None:
        seen.append(event.video_id)

    events.subscribe(events.VideoTextChanged)(record)
    try:
        yield seen
    finally:
        events._handlers[events.VideoTextChanged].remove(record)


def test_ready_records_one_transcription_per_file_and_a_new_file_starts_over(
    session: Session, rep: Any, text_changes: list[uuid.UUID]
) -> None:
    video = _ready_video(session, rep)
    _transcribed(session, video, "the price")
    ready = events.VideoBecameReady(
        org_id=video.org_id, video_id=video.id, owner_id=rep.id, source_version=1
    )
    events.publish(session, ready)  # again: nothing more is recorded
    jobs = session.scalars(
        select(OutboxJob.dedup_key).where(OutboxJob.task == transcribe.TRANSCRIBE_TASK)
    ).all()
    assert jobs == [transcripts.transcribe_key(video.id, 1)]

    assert text_changes == [video.id]  # the engine's words were stored
    video.source_version = 2
    events.publish(session, dataclasses.replace(ready, source_version=2))
    assert text_changes == [video.id, video.id]  # the old file's words are gone
    transcript = session.scalars(select(Transcript).where(Transcript.video_id == video.id)).one()
    assert (transcript.status, transcript.source_version) == (TranscriptStatus.PENDING, 2)
    assert (
        session.scalars(
            select(TranscriptSegment).where(TranscriptSegment.video_id == video.id)
        ).all()
        == []
    )
    assert (
        transcripts.transcribe_key(video.id, 2)
        in session.scalars(
            select(OutboxJob.dedup_key).where(OutboxJob.task == transcribe.TRANSCRIBE_TASK)
        ).all()
    )


def test_viewers_read_the_transcript_and_only_its_author_or_an_admin_replaces_it(
    client: FlaskClient,
    session: Session,
    auth: Any,
    org: Any,
    rep: Any,
    admin: Any,
    outsider: Any,
    text_changes: list[uuid.UUID],
) -> None:
    video = _ready_video(session, rep)
    _transcribed(session, video, "the price is too high", "we need a discount")
    assert text_changes == [video.id]
    peer = factories.UserFactory(org=org)
    stranger = factories.UserFactory(org=org)
    session.flush()
    share_video(client, auth(rep), video, peer)
    url = f"/api/v1/videos/{video.id}/transcript"

    read = client.get(url, headers=auth(peer))
    assert read.status_code == 200
    assert [s["text"] for s in read.get_json()["segments"]] == [
        "the price is too high", "we need a discount",
    ]  # fmt: skip
    assert client.get(url, headers=auth(stranger)).status_code == 404
    assert client.get(url, headers=auth(outsider)).status_code == 404

    body = {"segments": [{"start_ms": 0, "end_ms": 1000, "text": "Price <too> high"}]}
    refused = client.put(url, json=body, headers=auth(peer))
    assert refused.status_code == 403 and refused.get_json()["code"] == "permission_denied"
    assert client.put(url, json=body, headers=auth(stranger)).status_code == 404
    assert client.put(url, json=body, headers=auth(outsider)).status_code == 404

    by_admin = client.put(url, json=body, headers=auth(admin))
    assert by_admin.status_code == 200
    assert by_admin.get_json()["edited_by_id"] == str(admin.id)
    assert text_changes == [video.id, video.id]
    assert transcripts.transcript_text(session, org.id, video.id) == "Price <too> high"


@pytest.mark.parametrize(
    ("segments", "code"),
    [
        ([{"start_ms": 2000, "end_ms": 1000, "text": "backwards"}], "transcript_time_out_of_range"),
        (
            [
                {"start_ms": 0, "end_ms": 2000, "text": "a"},
                {"start_ms": 1500, "end_ms": 3000, "text": "overlaps"},
            ],
            "transcript_time_out_of_range",
        ),
        (
            [{"start_ms": 59_000, "end_ms": 61_000, "text": "past the end"}],
            "transcript_time_out_of_range",
        ),
        ([{"start_ms": 0, "end_ms": 1000, "text": "   "}], "invalid_text"),
        ([{"start_ms": 0, "end_ms": 1000, "text": "x" * 1001}], "validation_failed"),
    ],
)
def test_a_transcript_that_does_not_fit_the_video_is_refused(
    client: FlaskClient,
    session: Session,
    auth: Any,
    rep: Any,
    segments: list[dict[str, Any]],
    code: str,
) -> None:
    video = _ready_video(session, rep)
    answer = client.put(
        f"/api/v1/videos/{video.id}/transcript", json={"segments": segments}, headers=auth(rep)
    )
    assert answer.status_code == 422, answer.get_json()
    assert answer.get_json()["code"] == code


def test_captions_appear_in_playback_only_for_the_current_file_with_words(
    client: FlaskClient, session: Session, auth: Any, rep: Any
) -> None:
    video = _ready_video(session, rep)
    listed = client.get(f"/api/v1/videos/{video.id}", headers=auth(rep)).get_json()
    assert listed["playback"]["captions_url"] is None
    _transcribed(session, video, "the price")
    assert transcripts.captioned(session, [video]) == {video.id}
    video.source_version = 2  # a new file, not transcribed yet
    session.flush()
    assert transcripts.captioned(session, [video]) == set()
    assert (
        client.get(f"/api/v1/videos/{video.id}/transcript", headers=auth(rep)).get_json()["status"]
        == "pending"
    )
