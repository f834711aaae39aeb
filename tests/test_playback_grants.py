"""Playback that survives a pause: URLs held by a player (or a download resumed with Range) keep
working past the short media URL lifetime, until the viewer's grant expires or their access is
revoked, which stops new fetches within PLAYBACK_REVOCATION_S."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
import requests
from flask.testing import FlaskClient
from redis import Redis
from requests.structures import CaseInsensitiveDict
from sqlalchemy import delete
from sqlalchemy.orm import Session

from api.app import create_app
from fieldcast.context import build_context
from fieldcast.db import Database
from fieldcast.models.sharing import RecipientState, Share, ShareRecipient
from fieldcast.models.videos import Rendition, RenditionKind, Video, VideoStatus
from fieldcast.settings import Settings
from fieldcast.videos import playback
from fieldcast.videos.playback import Access, AccessCache, AccessDecision, Grant
from media.storage import Storage, storage_from_url
from tests import factories
from tests.conftest import SECRET_KEY, QueryCounter, bearer
from tests.media_samples import ffmpeg

# Its fixtures are made once per module: the module's tests share one worker.
pytestmark = [
    pytest.mark.timeout(120, method="thread"),
    pytest.mark.xdist_group("test_playback_grants"),
]

SHORT_URL_TTL_S = 2  # the media URL lifetime the pauses below outlast
REVOCATION_S = 1


@pytest.fixture(scope="module")
def media_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A six-second HLS rendition in one-second fMP4 segments, an MP4 and a poster."""
    out = tmp_path_factory.mktemp("playback-media")
    (out / "360p").mkdir()
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "6",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "30",
           "-movflags", "+faststart", str(out / "video.mp4"))  # fmt: skip
    ffmpeg("-i", str(out / "video.mp4"), "-c", "copy", "-f", "hls", "-hls_time", "1",
           "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4",
           "-hls_fmp4_init_filename", "init.mp4",
           "-hls_segment_filename", str(out / "360p" / "seg-%05d.m4s"),
           str(out / "360p" / "index.m3u8"))  # fmt: skip
    ffmpeg("-i", str(out / "video.mp4"), "-frames:v", "1", str(out / "poster.jpg"))
    (out / "master.m3u8").write_text(
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=400000,RESOLUTION=320x240\n360p/index.m3u8\n"
    )
    return {str(path.relative_to(out)): path for path in out.rglob("*") if path.is_file()}


RENDITIONS = {
    "master": (RenditionKind.MASTER, "master.m3u8"),
    "360p": (RenditionKind.HLS, "360p/index.m3u8"),
    "mp4": (RenditionKind.MP4, "video.mp4"),
    "poster": (RenditionKind.POSTER, "poster.jpg"),
}


def publish(session: Session, storage: Storage, owner: Any, files: dict[str, Path]) -> Video:
    """A ready video of `owner` whose renditions are in `storage`, as processing leaves them."""
    video = Video(
        org_id=owner.org_id,
        owner_id=owner.id,
        title="Pricing objection",
        status=VideoStatus.READY,
        progress=100,
        source_version=1,
        duration_ms=6000,
    )
    session.add(video)
    session.flush()
    for name, path in files.items():
        storage.put_bytes(f"{video.media_prefix}/{name}", path.read_bytes())
    for name, (kind, file) in RENDITIONS.items():
        session.add(
            Rendition(
                org_id=video.org_id,
                video_id=video.id,
                name=name,
                kind=kind,
                source_version=video.source_version,
                storage_key=f"{video.media_prefix}/{file}",
            )
        )
    session.flush()
    return video


def share_with(session: Session, video: Video, recipient: Any) -> None:
    share = Share(org_id=video.org_id, video_id=video.id, sender_id=video.owner_id, audience={})
    session.add(share)
    session.flush()
    session.add(
        ShareRecipient(
            org_id=video.org_id,
            share_id=share.id,
            user_id=recipient.id,
            video_id=video.id,
            state=RecipientState.DELIVERED,
        )
    )
    session.flush()


@pytest.fixture
def make_client(
    settings: Settings, db: Database, redis: Redis
) -> Callable[..., tuple[FlaskClient, Storage]]:
    def make(storage: Storage | None = None, **overrides: Any) -> tuple[FlaskClient, Storage]:
        changed = dataclasses.replace(settings, **overrides)
        ctx = build_context(changed, db=db, redis=redis, storage=storage)
        app = create_app(changed, context=ctx)
        app.config["TESTING"] = True
        return app.test_client(), ctx.storage

    return make


@pytest.fixture
def s3_storage(s3_endpoint: str) -> Iterator[Storage]:
    import boto3

    bucket = f"fieldcast-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    yield storage_from_url(f"s3://{bucket}/media/", s3_endpoint_url=s3_endpoint)


def local(url: str) -> str:
    """The path and query of a URL the API handed out, for the test client."""
    parts = urlparse(url)
    return f"{parts.path}?{parts.query}"


def uris(playlist: str) -> list[str]:
    found = []
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-MAP:"):
            found.append(line.split('URI="', 1)[1].split('"', 1)[0])
        elif line and not line.startswith("#"):
            found.append(line)
    return found


def fetch(client: FlaskClient, url: str, **headers: str) -> tuple[int, bytes, Mapping[str, str]]:
    """GET a playback URL as a player does: following the API's redirect to storage."""
    response = client.get(local(url), headers=headers)
    if response.status_code == 302:
        assert response.headers["Cache-Control"] == "no-store"
        stored = requests.get(response.headers["Location"], headers=headers, timeout=10)
        return stored.status_code, stored.content, stored.headers
    return response.status_code, response.get_data(), CaseInsensitiveDict(response.headers)


def problem_code(client: FlaskClient, url: str) -> tuple[int, str]:
    response = client.get(local(url))
    assert response.mimetype == "application/problem+json", response.status_code
    return response.status_code, response.get_json()["code"]


@dataclasses.dataclass
class Held:
    """What a player holds after starting: the playback object and the media playlist."""

    playback: dict[str, Any]
    segments: list[str]  # the init file, then the segments


def start(client: FlaskClient, viewer: Any, video: Video) -> Held:
    response = client.get(f"/api/v1/videos/{video.id}", headers=bearer(client, viewer))
    assert response.status_code == 200, response.get_json()
    urls = response.get_json()["playback"]
    master = client.get(local(urls["hls_url"]))
    assert master.status_code == 200
    assert master.headers["Cache-Control"].startswith("private")
    [variant] = uris(master.get_data(as_text=True))
    media = client.get(local(variant))
    assert media.status_code == 200
    segments = uris(media.get_data(as_text=True))
    assert len(segments) == 7  # the init file and six one-second segments
    return Held(urls, segments)


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_a_paused_player_and_a_resumed_download_keep_playing_past_the_url_lifetime(
    session: Session,
    make_client: Callable[..., tuple[FlaskClient, Storage]],
    media_files: dict[str, Path],
    rep: Any,
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    storage = request.getfixturevalue("s3_storage") if backend == "s3" else None
    client, storage = make_client(storage, playback_url_ttl_s=SHORT_URL_TTL_S)
    video = publish(session, storage, rep, media_files)
    held = start(client, rep, video)
    assert held.playback["expires_at"] > time.time() + 23 * 3600

    for url in held.segments[:2]:
        status, body, _ = fetch(client, url)
        assert status == 200 and body
    status, first_bytes, headers = fetch(client, held.playback["mp4_url"], Range="bytes=0-999")
    assert status == 206 and len(first_bytes) == 1000
    etag = headers["ETag"]
    if backend == "s3":
        # What the redirect points at is short-lived (moto does not enforce presigned expiry,
        # so the lifetime is read from the URL itself).
        redirected = client.get(local(held.segments[2])).headers["Location"]
        assert parse_qs(urlparse(redirected).query)["X-Amz-Expires"] == [str(SHORT_URL_TTL_S)]

    time.sleep(SHORT_URL_TTL_S + 1.5)  # the pause

    if backend == "s3":
        # After the pause the same held URL redirects to a URL presigned now.
        again = client.get(local(held.segments[2])).headers["Location"]
        signed_at = parse_qs(urlparse(again).query)["X-Amz-Date"][0]
        assert signed_at > parse_qs(urlparse(redirected).query)["X-Amz-Date"][0]
    for url in held.segments[2:]:
        status, body, _ = fetch(client, url)
        assert status == 200 and body == storage_bytes(storage, video, url)
    # The download resumes where it stopped, hours later as seconds later: same URL, Range.
    status, rest, headers = fetch(
        client, held.playback["mp4_url"], Range="bytes=1000-", **{"If-Range": etag}
    )
    assert status == 206
    assert headers["Content-Range"].startswith("bytes 1000-")
    assert first_bytes + rest == media_files["video.mp4"].read_bytes()
    assert "attachment" in headers["Content-Disposition"]
    if backend == "local":
        assert headers["Accept-Ranges"] == "bytes"
        # The file changed under the same URL (If-Range does not match): the whole file.
        status, whole, _ = fetch(
            client, held.playback["mp4_url"], Range="bytes=1000-", **{"If-Range": '"other"'}
        )
        assert status == 200 and whole == media_files["video.mp4"].read_bytes()
    # The poster, fetched late as well.
    status, poster, _ = fetch(client, held.playback["poster_url"])
    assert status == 200 and poster == media_files["poster.jpg"].read_bytes()


def storage_bytes(storage: Storage, video: Video, url: str) -> bytes:
    key = urlparse(url).path.removeprefix("/media/")
    assert key.startswith(video.media_prefix + "/")
    return b"".join(storage.open(key))


def test_the_grant_expiry_ends_playback(
    session: Session,
    make_client: Callable[..., tuple[FlaskClient, Storage]],
    media_files: dict[str, Path],
    rep: Any,
) -> None:
    client, storage = make_client(playback_url_ttl_s=SHORT_URL_TTL_S, playback_grant_ttl_s=3)
    video = publish(session, storage, rep, media_files)
    held = start(client, rep, video)
    assert fetch(client, held.segments[0])[0] == 200
    time.sleep(max(0.0, held.playback["expires_at"] - time.time()) + 1.1)
    for url in (held.segments[1], held.playback["mp4_url"], held.playback["hls_url"]):
        assert problem_code(client, url) == (403, "link_expired")
    # Reading the video again gives a new grant, and playback goes on.
    again = start(client, rep, video)
    assert fetch(client, again.segments[1])[0] == 200


def _deactivate(session: Session, video: Video, viewer: Any) -> None:
    viewer.is_active = False


def _delete_video(session: Session, video: Video, viewer: Any) -> None:
    video.deleted_at = datetime.now(UTC)


def _remove_access(session: Session, video: Video, viewer: Any) -> None:
    session.execute(delete(ShareRecipient).where(ShareRecipient.user_id == viewer.id))


@pytest.mark.parametrize("backend", ["local", "s3"])
@pytest.mark.parametrize(
    "revoke",
    [_deactivate, _delete_video, _remove_access],
    ids=["viewer deactivated", "video deleted", "share removed"],
)
def test_revoking_access_stops_new_fetches_within_the_bound(
    session: Session,
    make_client: Callable[..., tuple[FlaskClient, Storage]],
    media_files: dict[str, Path],
    org: Any,
    rep: Any,
    count_queries: QueryCounter,
    revoke: Callable[[Session, Video, Any], None],
    backend: str,
    request: pytest.FixtureRequest,
) -> None:
    storage = request.getfixturevalue("s3_storage") if backend == "s3" else None
    client, storage = make_client(storage, playback_revocation_s=REVOCATION_S)
    video = publish(session, storage, rep, media_files)
    viewer = factories.UserFactory(org=org)
    share_with(session, video, viewer)
    held = start(client, viewer, video)
    assert fetch(client, held.segments[0])[0] == 200

    # Within the bound, a segment fetch asks nothing of the database.
    before = count_queries.count
    response = client.get(local(held.segments[1]))
    assert response.status_code in (200, 302)
    assert count_queries.count == before

    revoke(session, video, viewer)
    session.flush()
    time.sleep(REVOCATION_S + 0.2)
    for url in (held.segments[2], held.playback["mp4_url"], held.playback["hls_url"]):
        assert problem_code(client, url) == (403, "playback_revoked")


def test_new_media_ends_the_urls_of_the_old(
    session: Session,
    make_client: Callable[..., tuple[FlaskClient, Storage]],
    media_files: dict[str, Path],
    rep: Any,
) -> None:
    client, storage = make_client(playback_revocation_s=0)
    video = publish(session, storage, rep, media_files)
    held = start(client, rep, video)
    video.source_version += 1
    session.flush()
    assert problem_code(client, held.segments[1]) == (403, "link_expired")


def test_a_grant_opens_only_its_own_video_for_its_own_viewer(
    session: Session,
    make_client: Callable[..., tuple[FlaskClient, Storage]],
    media_files: dict[str, Path],
    org: Any,
    rep: Any,
) -> None:
    client, storage = make_client()
    video = publish(session, storage, rep, media_files)
    other_video = publish(session, storage, rep, media_files)
    viewer = factories.UserFactory(org=org)
    share_with(session, video, viewer)
    held = start(client, viewer, video)
    segment = urlparse(held.segments[1])
    query = {k: v[0] for k, v in parse_qs(segment.query).items()}
    hls = urlparse(held.playback["hls_url"])

    def with_query(path: str, **changes: str) -> str:
        return f"{path}?{urlencode({**query, **changes})}"

    # The same grant on another video's segment or playlist.
    for path in (
        segment.path.replace(str(video.id), str(other_video.id)),
        hls.path.replace(str(video.id), str(other_video.id)),
    ):
        assert problem_code(client, with_query(path)) == (403, "invalid_signature")
    # Another viewer (the author, who may see it) named in the grant, or a later expiry.
    theirs = Grant(video.id, rep.id, video.source_version, int(query["exp"]))
    mine = Grant(video.id, viewer.id, video.source_version, int(query["exp"]))
    assert query["g"] == mine.token
    for changed in (
        with_query(segment.path, g=theirs.token),
        with_query(segment.path, exp=str(int(query["exp"]) + 86400)),
        with_query(segment.path, sig=query["sig"][:-2] + "AA"),
        with_query(segment.path, name="other.mp4"),
    ):
        assert problem_code(client, changed) == (403, "invalid_signature")
    # A grant signed for another secret does not pass; neither does a plain signed path.
    forged = playback.granted_path("x" * 40, segment.path, mine)
    assert problem_code(client, forged) == (403, "invalid_signature")
    plain = playback.signed_path(SECRET_KEY, hls.path, int(query["exp"]))
    assert problem_code(client, plain) == (403, "invalid_signature")
    # The untouched URL plays.
    assert fetch(client, held.segments[1])[0] == 200


def test_grant_tokens_round_trip_and_refuse_garbage() -> None:
    grant = Grant(uuid.uuid4(), uuid.uuid4(), 7, 1_800_000_000)
    assert Grant.parse(grant.token, str(grant.expires)) == grant
    garbage = [("", "1"), ("!!", "1"), ("é", "1"), (grant.token[:-4], "1"), (grant.token, "x")]
    for token, expires in [*garbage, (grant.token, "²"), (grant.token, "1" * 40)]:
        assert Grant.parse(token, expires) is None
    assert playback.verify(SECRET_KEY, "/media/a", "²", "sig", now=0) == "invalid"


def test_access_decisions_are_reused_for_at_most_the_bound() -> None:
    now = [1000.0]
    cache = AccessCache(30, clock=lambda: now[0])
    grant = Grant(uuid.uuid4(), uuid.uuid4(), 1, 0)
    answers = iter([AccessDecision(Access.ALLOWED, "p"), AccessDecision(Access.REVOKED)])
    asked: list[Grant] = []

    def ask(held: Grant) -> AccessDecision:
        asked.append(held)
        return next(answers)

    assert cache.decide(grant, ask).access is Access.ALLOWED
    now[0] += 29.9
    assert cache.decide(grant, ask).access is Access.ALLOWED
    now[0] += 0.1
    assert cache.decide(grant, ask).access is Access.REVOKED
    assert len(asked) == 2


def test_short_lifetimes_are_not_rounded_past_themselves() -> None:
    assert playback.expiry(2, now=100.2) <= 103
    assert playback.expiry(900, now=100.0) == 1020  # long ones round to the minute
