"""The README's first command: the whole product on the embedded default, from nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

from fieldcast.embedded import EmbeddedPostgres

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(data_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "STORAGE_URL", "SECRET_KEY"}
    }
    env["FIELDCAST_DATA_DIR"] = str(data_dir)
    return env


def _fieldcast(
    data_dir: Path, *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """`fieldcast ARGS` on the embedded default of `data_dir`, as a person runs it beside serve."""
    return subprocess.run(
        [sys.executable, "-m", "fieldcast", *args],
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _post_json(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "fieldcast", "serve", "--port", str(port), "--web-workers", "1"],
        env=_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait_healthy(process: subprocess.Popen[bytes], base: str, timeout: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            output = process.stdout.read().decode() if process.stdout else ""
            pytest.fail(f"serve exited early ({process.returncode}):\n{output[-4000:]}")
        try:
            if _get(f"{base}/healthz")[0] == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.25)
    process.send_signal(signal.SIGINT)
    pytest.fail("the API did not answer /healthz within 60 s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    process.wait(timeout=90)


def _leftovers(data_dir: Path) -> list[str]:
    found = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            environ = proc.info["environ"] or {}
        except (psutil.Error, TypeError):
            continue
        if str(data_dir) in cmdline or environ.get("FIELDCAST_DATA_DIR") == str(data_dir):
            found.append(f"{proc.pid}: {cmdline}")
    return found


def test_serve_starts_everything_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    process = _start(data_dir, port)
    try:
        elapsed = _wait_healthy(process, base)
        assert elapsed < 60
        status, body = _get(f"{base}/readyz")
        assert status == 200, body
        assert _get(f"{base}/docs")[0] == 200

        demo = _fieldcast(
            data_dir, "load-demo", "--password", "demo-password-1", "--no-videos", timeout=60
        )
        assert demo.returncode == 0, demo.stderr
        assert "riley@demo.example.com" in demo.stdout
        assert f"{base}/api/v1/auth/token" in demo.stdout  # where it really listens

        status, tokens = _post_json(
            f"{base}/api/v1/auth/token",
            {"email": "riley@demo.example.com", "password": "demo-password-1"},
        )
        assert status == 200, tokens
        status, me = _get(
            f"{base}/api/v1/me", {"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert status == 200
        assert json.loads(me)["handle"] == "riley"
    finally:
        _stop(process)
    assert process.returncode == 0
    assert _leftovers(data_dir) == []

    # A second run reuses the same data: the demo users are still there.
    process = _start(data_dir, port)
    try:
        _wait_healthy(process, base)
        status, tokens = _post_json(
            f"{base}/api/v1/auth/token",
            {"email": "riley@demo.example.com", "password": "demo-password-1"},
        )
        assert status == 200, tokens
    finally:
        _stop(process)
    assert _leftovers(data_dir) == []


def test_a_postgres_left_running_on_a_data_directory_with_spaces_is_stopped() -> None:
    """A serve killed before its PostgreSQL died with it leaves the data directory locked;
    the next start must recognise that server as its own, spaces in the path or not."""
    # Outside pytest's private base directory: as root, PostgreSQL runs as a user of its own.
    directory = Path(tempfile.mkdtemp(prefix="fc leftover "))
    data_dir = directory / "field data"
    leftover = EmbeddedPostgres(data_dir)
    again = EmbeddedPostgres(data_dir)
    try:
        leftover.start()
        url = again.start()
        assert leftover.process is not None and leftover.process.poll() is not None
        assert again.process is not None and again.process.poll() is None
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        again.stop()
        leftover.kill()
        shutil.rmtree(directory, ignore_errors=True)
