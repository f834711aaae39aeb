"""Every URL the API hands out starts where configuration says, whatever Host a request names.

A request through a misconfigured proxy, or one that forges `Host` or `X-Forwarded-Host`, must
not make the API hand out links to somewhere else (a cached response would pass them on to
others). The test walks the whole flow of a video over real HTTP with a forged host on every
request and looks at every URL in every answer: JSON bodies, `Location` headers and the
playlists the player fetches.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from redis import Redis
from tusclient.client import TusClient

from fieldcast import links
from fieldcast.context import build_context, set_current
from fieldcast.db import Database
from fieldcast.settings import Settings, SettingsError
from tests import factories
from tests.live_server import committed_factories, serve
from tests.media_samples import H264, TONE, VIDEO, ffmpeg
from tests.worker_support import drain_outbox

pytestmark = pytest.mark.timeout(180, method="thread")

FORGED = {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "Forwarded": "host=evil"}
URL = re.compile(r"https?://[^\s\"'#]+")


def _urls(text: str) -> list[str]:
    return URL.findall(text)


def test_no_url_the_api_hands_out_follows_the_request_host(
    settings: Settings, committed_db: Database, redis: Redis, tmp_path: Path
) -> None:
    ctx = build_context(settings, db=committed_db, redis=redis)
    set_current(ctx)
    with committed_factories(committed_db) as session:
        rep = factories.UserFactory()
        session.commit()
        email = rep.email
    clip = tmp_path / "clip.mp4"
    ffmpeg(*VIDEO, *TONE, "-t", "1", *H264, "-c:a", "aac", "-shortest", str(clip))
    seen: list[str] = []
    try:
        with serve(ctx) as server:
            http = requests.Session()
            http.headers.update(FORGED)

            def call(method: str, path: str, **kwargs: Any) -> requests.Response:
                response = http.request(method, server.url + path, timeout=10, **kwargs)
                seen.extend(_urls(response.text))
                seen.extend(_urls(response.headers.get("Location", "")))
                return response

            token = call(
                "POST", "/api/v1/auth/token", json={"email": email, "password": factories.PASSWORD}
            ).json()["access_token"]
            bearer = {"Authorization": f"Bearer {token}"}
            http.headers.update(bearer)
            video_id = call("POST", "/api/v1/videos", json={"title": "Links"}).json()["id"]

            uploader = TusClient(
                f"{server.url}/api/v1/uploads", headers={**FORGED, **bearer}
            ).uploader(file_path=str(clip), metadata={"video_id": video_id}, chunk_size=1 << 20)
            uploader.upload()
            seen.append(uploader.url or "")
            drain_outbox(ctx)

            video = call("GET", f"/api/v1/videos/{video_id}").json()
            playback = video["playback"]
            assert playback["hls_url"] and playback["mp4_url"] and playback["poster_url"]
            # The player follows the master playlist to a variant, and the variant to media.
            master = call("GET", playback["hls_url"].removeprefix(server.url))
            assert master.status_code == 200
            variant = next(u for u in _urls(master.text) if ".m3u8" in u)
            media = call("GET", variant.removeprefix(server.url))
            assert media.status_code == 200
            assert any("/media/" in u for u in _urls(media.text))
            call("GET", "/api/v1/videos")
    finally:
        set_current(None)

    assert len(seen) > 5
    assert [url for url in seen if "evil" in url] == []
    # Local storage: every URL, media included, is the API's own (PUBLIC_BASE_URL).
    assert {url.split("/", 3)[2] for url in seen} == {server.url.split("/", 3)[2]}


def test_app_links_start_with_their_own_base() -> None:
    settings = Settings.from_env(
        {"PUBLIC_BASE_URL": "https://api.example.com/", "APP_LINK_BASE": "https://go.example.com"}
    )
    assert settings.public_base_url == "https://api.example.com"
    video = uuid.uuid4()
    assert links.video_link(settings, video) == f"https://go.example.com/videos/{video}"
    share = uuid.uuid4()
    assert links.video_link(settings, video, share_id=share) == (
        f"https://go.example.com/videos/{video}?share={share}"
    )
    assert links.api_url(settings, "/api/v1/feed") == "https://api.example.com/api/v1/feed"
    # Without APP_LINK_BASE, people's links go where the API answers.
    assert Settings.from_env({"PUBLIC_BASE_URL": "https://x.example"}).app_link_base == (
        "https://x.example"
    )


@pytest.mark.parametrize(
    "env",
    [
        {"PUBLIC_BASE_URL": "api.example.com"},
        {"PUBLIC_BASE_URL": "ftp://api.example.com"},
        {"APP_LINK_BASE": "fieldcast://open"},
        {"APP_LINK_BASE": "https://"},
    ],
)
def test_link_bases_must_be_http_urls(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match=next(iter(env))):
        Settings.from_env(env)
