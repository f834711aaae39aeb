"""The OpenAPI document is good enough to generate a client that works.

openapi-python-client (the generator of the Python ecosystem, as swift-openapi-generator and
openapi-generator's Kotlin target are of the mobile ones) turns `/openapi.json` into a typed
client; the test then drives the main flow of the product through that client only, against a
live server: log in, create a video, upload its file (with tuspy, the resumable upload being
tus rather than an OpenAPI operation), share it, and the recipient reads their feed and inbox.
A generator warning fails the test: what this generator skips, the Swift and Kotlin ones
mostly skip too.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from redis import Redis
from tusclient.client import TusClient

from fieldcast.context import build_context, set_current
from fieldcast.db import Database
from fieldcast.settings import Settings
from tests import factories
from tests.live_server import committed_factories, serve
from tests.media_samples import H264, TONE, VIDEO, ffmpeg
from tests.worker_support import drain_outbox

pytestmark = pytest.mark.timeout(300, method="thread")

PACKAGE = "fieldcast_client"


def _generate(spec: str, directory: Path) -> Any:
    (directory / "openapi.json").write_text(spec)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(directory / "openapi.json"),
            "--output-path",
            str(directory / PACKAGE),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Warning" not in output, output
    sys.path.insert(0, str(directory))
    return importlib.import_module(PACKAGE)


@pytest.fixture
def generated(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    sys.path[:] = [p for p in sys.path if p != str(tmp_path)]
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def test_a_client_generated_from_the_openapi_document_drives_the_main_flow(
    settings: Settings, committed_db: Database, redis: Redis, generated: Path
) -> None:
    ctx = build_context(settings, db=committed_db, redis=redis)
    set_current(ctx)
    with committed_factories(committed_db) as session:
        org = factories.OrganisationFactory()
        rep = factories.UserFactory(org=org)
        peer = factories.UserFactory(org=org)
        session.commit()
        rep_email, peer_email, peer_id = rep.email, peer.email, peer.id
    clip = generated / "clip.mp4"
    ffmpeg(*VIDEO, *TONE, "-t", "1", *H264, "-c:a", "aac", "-shortest", str(clip))

    try:
        with serve(ctx) as server:
            spec = requests.get(f"{server.url}/openapi.json", timeout=10).text
            package = _generate(spec, generated)
            api = f"{PACKAGE}.api"
            models = importlib.import_module(f"{PACKAGE}.models")
            post_token = importlib.import_module(f"{api}.auth.post_token")
            post_videos = importlib.import_module(f"{api}.videos.post_videos")
            get_video = importlib.import_module(f"{api}.videos.get_video_by_id")
            post_shares = importlib.import_module(f"{api}.shares.post_video_shares")
            get_inbox = importlib.import_module(f"{api}.notifications.get_inbox")
            get_feed = importlib.import_module(f"{api}.feed.get_feed")
            get_share = importlib.import_module(f"{api}.shares.get_share_by_id")
            recall = importlib.import_module(f"{api}.shares.post_share_recall")

            def log_in(email: str) -> Any:
                token = post_token.sync(
                    client=package.Client(base_url=server.url),
                    body=models.TokenRequest(email=email, password=factories.PASSWORD),
                )
                assert isinstance(token, models.Token), token
                return package.AuthenticatedClient(base_url=server.url, token=token.access_token)

            rep_client = log_in(rep_email)
            draft = post_videos.sync(
                client=rep_client, body=models.Video(title="Handling the pricing objection")
            )
            assert isinstance(draft, models.Video), draft
            assert draft.status == models.VideoStatus.AWAITING_UPLOAD

            TusClient(
                f"{server.url}/api/v1/uploads",
                headers={"Authorization": f"Bearer {rep_client.token}"},
            ).uploader(
                file_path=str(clip), metadata={"video_id": str(draft.id)}, chunk_size=1 << 20
            ).upload()
            drain_outbox(ctx)
            video = get_video.sync(draft.id, client=rep_client)
            assert isinstance(video, models.Video), video
            assert video.status in (models.VideoStatus.PLAYABLE, models.VideoStatus.READY)
            assert video.playback.hls_url

            share = post_shares.sync(
                draft.id,
                client=rep_client,
                body=models.ShareRequest(user_ids=[peer_id], message="Watch 0:12"),
                idempotency_key=str(uuid.uuid4()),
            )
            assert isinstance(share, models.Share), share
            drain_outbox(ctx)

            peer_client = log_in(peer_email)
            feed = get_feed.sync(client=peer_client)
            assert isinstance(feed, models.FeedEntrySyncPage), feed
            [entry] = feed.items
            assert (entry.share_id, entry.video.id, entry.message) == (
                share.id,
                draft.id,
                "Watch 0:12",
            )
            assert entry.my_state == models.FeedEntryMyState.UNSEEN
            # The push carried the share's id: the recipient reads the share by it.
            received = get_share.sync(share.id, client=peer_client)
            assert isinstance(received, models.Share), received
            assert received.received.video.id == draft.id

            inbox = get_inbox.sync(client=peer_client)
            assert isinstance(inbox, models.Inbox), inbox
            assert inbox.unread_count == 1
            [item] = inbox.items
            assert item.data.to_dict()["share_id"] == str(share.id)

            # Back after a while: the sender recalled the share; one small request says so.
            recalled = recall.sync(share.id, client=rep_client, idempotency_key=str(uuid.uuid4()))
            assert isinstance(recalled, models.Share), recalled
            delta = get_feed.sync(client=peer_client, updated_since=feed.sync_token)
            assert isinstance(delta, models.FeedEntrySyncPage), delta
            assert (delta.items, delta.deleted) == ([], [share.id])
    finally:
        set_current(None)
