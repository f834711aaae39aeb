"""A bad day on the embedded default: back up while `fieldcast serve` runs, restore into a
fresh data directory, start the product from it, and play the restored video."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from tusclient.client import TusClient

from tests.media_samples import ffmpeg
from tests.test_embedded import (
    _fieldcast,
    _free_port,
    _get,
    _leftovers,
    _start,
    _stop,
    _wait_healthy,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420, method="thread")]

PASSWORD = "demo-password-1"


def _call(
    method: str, url: str, token: str | None = None, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers=headers,
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _token(base: str) -> str:
    status, tokens = _call(
        "POST",
        f"{base}/api/v1/auth/token",
        body={"email": "riley@demo.example.com", "password": PASSWORD},
    )
    assert status == 200, tokens
    return str(tokens["access_token"])


def _wait_ready(base: str, token: str, video_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    body: Any = None
    while time.monotonic() < deadline:
        status, body = _call("GET", f"{base}/api/v1/videos/{video_id}", token)
        assert status == 200, body
        assert body["status"] != "failed", body
        if body["status"] == "ready":
            return dict(body)
        time.sleep(0.5)
    pytest.fail(f"the video did not become ready: {body}")


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=15) as response:
        assert response.status == 200, url
        return bytes(response.read())


def _uris(playlist: str) -> list[str]:
    """The URIs of an HLS playlist: the init section (EXT-X-MAP) first, then the others."""
    lines = playlist.splitlines()
    maps = [line.split('URI="', 1)[1].split('"', 1)[0] for line in lines if 'URI="' in line]
    return maps + [line for line in lines if line and not line.startswith("#")]


def _play(hls_url: str, into: Path) -> int:
    """Fetch the master playlist, its first variant, the init section and every segment, and
    decode them; returns the number of video frames decoded."""
    variants = _uris(_fetch(hls_url).decode())
    assert variants and all("sig=" in uri for uri in variants)
    parts = _uris(_fetch(variants[0]).decode())
    assert len(parts) >= 2
    with into.open("wb") as out:
        for uri in parts:
            out.write(_fetch(uri))
    frames = 0
    with av.open(str(into)) as container:
        for frame in container.decode(video=0):
            assert frame.width > 0
            frames += 1
    return frames


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A directory of this test's own: pytest's shared base directory is made private again
    by every pytest run that starts meanwhile, and the embedded PostgreSQL (running as its own
    user when the tests run as root) must reach its data directory until it is stopped."""
    directory = Path(tempfile.mkdtemp(prefix="fieldcast-backup-test-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_backup_while_serving_then_restore_into_a_fresh_data_dir_and_play(
    tmp_path: Path,
) -> None:
    clip = tmp_path / "call-notes.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=15",
        "-f", "lavfi", "-i", "sine=frequency=440",
        "-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-shortest", "-movflags", "+faststart", str(clip),
    )  # fmt: skip
    before, after = tmp_path / "var", tmp_path / "restored-var"
    archive = tmp_path / "backups" / "fieldcast.tar"

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    process = _start(before, port)
    try:
        _wait_healthy(process, base)
        demo = _fieldcast(before, "load-demo", "--password", PASSWORD, "--no-videos")
        assert demo.returncode == 0, demo.stderr
        token = _token(base)
        status, video = _call("POST", f"{base}/api/v1/videos", token, {"title": "Renewal call"})
        assert status == 201, video
        TusClient(f"{base}/api/v1/uploads", headers={"Authorization": f"Bearer {token}"}).uploader(
            file_path=str(clip), chunk_size=64 * 1024, metadata={"video_id": video["id"]}
        ).upload()
        ready = _wait_ready(base, token, video["id"])
        old_hls_url = ready["playback"]["hls_url"]

        made = _fieldcast(before, "backup", str(archive))
        assert made.returncode == 0, made.stderr
        assert archive.stat().st_mode & 0o077 == 0

        # Written after the backup: not in the restored data.
        status, later = _call("POST", f"{base}/api/v1/videos", token, {"title": "After backup"})
        assert status == 201, later
    finally:
        _stop(process)
    assert _leftovers(before) == []

    restored = _fieldcast(after, "restore", str(archive))
    assert restored.returncode == 0, restored.stderr + restored.stdout
    assert (after / "secret_key").read_text() == (before / "secret_key").read_text()
    assert not list(after.glob(".restore-*"))

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    process = _start(after, port)
    try:
        _wait_healthy(process, base)
        # The data directory's key came back: a token issued before the backup still works.
        status, body = _call("GET", f"{base}/api/v1/videos/{video['id']}", token)
        assert status == 200, body
        assert body["status"] == "ready"
        status, listing = _call("GET", f"{base}/api/v1/videos", _token(base))
        assert status == 200, listing
        titles = [item["title"] for item in listing["items"]]
        assert "Renewal call" in titles and "After backup" not in titles

        frames = _play(body["playback"]["hls_url"], tmp_path / "restored.mp4")
        assert frames >= 25  # two seconds at 15 fps, give or take the encoder's edges
        # A signed link handed out before the backup plays on the restored product too.
        old_path = old_hls_url.split("/", 3)[3]
        assert _get(f"{base}/{old_path}")[0] == 200
    finally:
        _stop(process)
    assert _leftovers(after) == []
