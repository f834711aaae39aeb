"""A real learning record store for the xAPI tests: ralph (PyPI `ralph-malph`), with its
filesystem backend and a Basic-auth credentials file, served by uvicorn on a loopback port.

Ralph runs in a virtual environment of its own (its pinned FastAPI, pydantic and uvicorn would
clash with the product's), made once under the cache directory:
`$FIELDCAST_RALPH_VENV`, else `${XDG_CACHE_HOME:-~/.cache}/fieldcast/ralph-venv`. CI makes it
before the tests (`python -m tests.lrs_server`, in .ci/run); a test that finds none tries to make
it, and when that fails it is skipped, naming why.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests

# ralph 5.1's `auth` command imports its OpenID Connect module, which needs requests, though
# no extra names it.
PACKAGES = ("ralph-malph[cli,lrs]==5.1.0", "requests>=2.31")
USERNAME = "fieldcast"
# A throwaway credential of a loopback test server.
PASSWORD = "lrs-test-secret"
XAPI_HEADERS = {"X-Experience-API-Version": "1.0.3"}


# Serves ralph's API with uvicorn. Ralph 5.1's filesystem backend writes each POST's
# statements with its default operation, CREATE, which refuses a file that exists: its LRS would
# take one batch and answer 500 to every later one. Here it appends to its file, as a
# file-backed store must; everything else is ralph as released.
_SERVE = """
import sys
import uvicorn
from ralph.backends.data.base import BaseOperationType
from ralph.backends.lrs.fs import FSLRSBackend

FSLRSBackend.default_operation_type = BaseOperationType.APPEND
uvicorn.run("ralph.api:app", host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def venv_dir() -> Path:
    explicit = os.environ.get("FIELDCAST_RALPH_VENV")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "fieldcast" / "ralph-venv"


def _ready(venv: Path) -> bool:
    return (venv / "bin" / "uvicorn").exists() and (venv / ".fieldcast-ready").exists()


def ensure_venv() -> Path:
    """Ralph's virtual environment, made (once) when missing. Raises RuntimeError, saying
    why, when it cannot be made (no network, no index, a broken Python)."""
    venv = venv_dir()
    if _ready(venv):
        return venv
    try:
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(venv)],
            check=True,
            capture_output=True,
            timeout=300,
        )
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *PACKAGES],
            check=True,
            capture_output=True,
            timeout=900,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        output = getattr(exc, "stderr", b"") or b""
        tail = output.decode(errors="replace").strip().splitlines()[-3:]
        raise RuntimeError(
            f"cannot make ralph's virtual environment at {venv} "
            f"(pip install {' '.join(PACKAGES)}): {exc}; {' | '.join(tail)}"
        ) from exc
    (venv / ".fieldcast-ready").write_text(" ".join(PACKAGES) + "\n")
    return venv


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RalphLRS:
    """Ralph's LRS on 127.0.0.1:<port>, its statements in a directory of the test's own; stopped
    and started again, it keeps its statements and its address."""

    def __init__(self, venv: Path) -> None:
        self.venv = venv
        self.directory = Path(tempfile.mkdtemp(prefix="fc-ralph-"))
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}/xAPI"
        self.process: subprocess.Popen[bytes] | None = None
        self.env = {
            **os.environ,
            "RALPH_APP_DIR": str(self.directory / "app"),
            "RALPH_AUTH_FILE": str(self.directory / "auth.json"),
            "RALPH_RUNSERVER_BACKEND": "fs",
            "RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH": str(self.directory / "data"),
        }
        (self.directory / "data").mkdir()
        subprocess.run(
            [
                str(venv / "bin" / "ralph"),
                "auth",
                "--username",
                USERNAME,
                "--password",
                PASSWORD,
                "--scope",
                "all",
                "--agent-ifi-mbox",
                "mailto:lrs@example.com",
                "--write-to-disk",
            ],
            env=self.env,
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(self.venv / "bin" / "python"), "-c", _SERVE, str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=(self.directory / "server.log").open("ab"),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ralph exited: {self.log()}")
            try:
                if requests.get(self.base + "/__heartbeat__", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"ralph did not answer within 60 s: {self.log()}")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def log(self) -> str:
        path = self.directory / "server.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def statements(self, **query: str) -> list[dict[str, Any]]:
        """Every statement the LRS holds (matching `query`), through its Statement API,
        following its `more` links."""
        found: list[dict[str, Any]] = []
        url: str | None = self.endpoint + "/statements"
        params: dict[str, str] | None = {"limit": "100", **query}
        while url:
            response = requests.get(
                url, params=params, auth=(USERNAME, PASSWORD), headers=XAPI_HEADERS, timeout=30
            )
            response.raise_for_status()
            body = response.json()
            found.extend(body["statements"])
            more = body.get("more")
            url = self.base + more if more else None
            params = None
        return found

    def validate(self, statements: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
        """Ralph's own models judge the statements (`ralph validate --format xapi`): each must be
        one of the statements it knows (the Video Profile's among them), valid as such."""
        return subprocess.run(
            [str(self.venv / "bin" / "ralph"), "validate", "--format", "xapi", "--fail-on-unknown"],
            input="".join(json.dumps(statement) + "\n" for statement in statements),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )


def running(venv: Path) -> Iterator[RalphLRS]:
    lrs = RalphLRS(venv)
    try:
        lrs.start()
        yield lrs
    finally:
        lrs.close()


if __name__ == "__main__":
    # CI: make the virtual environment before the tests run.
    print(ensure_venv())
