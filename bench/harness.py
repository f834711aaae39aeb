"""What the benchmarks share: scratch services, the product's own processes, a signed-in client.

A benchmark empties only what it made. PostgreSQL: a database with a name of its own is created
on the server of DATABASE_URL (else the PostgreSQL on 127.0.0.1) and dropped afterwards; no
other database is touched. Redis: a private Redis server (the product's embedded one, on a Unix
socket in the run's temporary directory), stopped and deleted afterwards. REDIS_URL instead
names a Redis database reserved for the run: it must be empty when the run starts (the run
refuses a database holding anything), and afterwards the keys that appeared in it during the
run are deleted by name, never with FLUSHDB.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

import psycopg
import requests
from redis import Redis

PASSWORD = "benchmark-password-1"  # noqa: S105 - a scratch account, dropped afterwards
DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/postgres"
# A worker of every queue but the media ones: pushes, search documents and the outbox's jobs,
# as the benchmarks that upload nothing run it.
NON_MEDIA_WORKER = ("worker", "--queue", "notify", "--queue", "search", "--queue", "default")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def scratch_environment(**extra: str) -> Iterator[dict[str, str]]:
    """Environment variables for the product's processes, on a database and a Redis made for
    this run and a temporary storage directory; all of them are removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix="fieldcast-bench-"))
    try:
        with scratch_database() as database_url, own_redis(directory) as redis_url:
            from migrations.config import upgrade

            upgrade(database_url)
            yield {
                **os.environ,
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "SECRET_KEY": secrets.token_urlsafe(48),
                "STORAGE_URL": (directory / "media").as_uri(),
                "FIELDCAST_DATA_DIR": str(directory / "var"),
                "MEDIA_WORK_DIR": str(directory / "work"),
                "LOG_LEVEL": "WARNING",
                **extra,
            }
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextmanager
def scratch_database() -> Iterator[str]:
    """A new database, named for this run, on the server of DATABASE_URL (else the local
    PostgreSQL); only that database is dropped afterwards."""
    base = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE
    admin_url = base.replace("postgresql+psycopg://", "postgresql://")
    name = f"fieldcast_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunparse(urlparse(admin_url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def own_redis(directory: Path) -> Iterator[str]:
    """A Redis of the run's own: a private server in `directory`, or the empty database
    REDIS_URL reserves for the run."""
    given = os.environ.get("REDIS_URL")
    if given:
        with reserved_redis_database(given) as url:
            yield url
        return
    from fieldcast.embedded import EmbeddedRedis

    server = EmbeddedRedis(directory / "redis-server")
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@contextmanager
def reserved_redis_database(url: str) -> Iterator[str]:
    """Use the Redis database at `url` only if it is empty, and afterwards delete, by name,
    the keys that appeared in it: a database someone else uses is refused, not emptied."""
    redis = Redis.from_url(url)
    try:
        held = redis.dbsize()
        if held:
            raise RuntimeError(
                f"REDIS_URL names a Redis database holding {held} keys; a benchmark runs only "
                "on an empty database reserved for it (or leave REDIS_URL unset for a private "
                "Redis server)"
            )
        try:
            yield url
        finally:
            made = list(redis.scan_iter(count=1000))
            for start in range(0, len(made), 1000):
                redis.unlink(*made[start : start + 1000])
    finally:
        redis.close()


@contextmanager
def running(env: dict[str, str], commands: Sequence[Sequence[str]]) -> Iterator[None]:
    """Start the product's processes (e.g. `fieldcast web`, `fieldcast worker`); stop them."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "fieldcast", *command],
            env=env,
            start_new_session=True,
        )
        for command in commands
    ]
    try:
        yield
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@dataclass
class Client:
    base: str
    headers: dict[str, str]

    def get(self, path: str) -> Any:
        response = requests.get(self.base + path, headers=self.headers, timeout=30)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        response = requests.post(self.base + path, json=body, headers=self.headers, timeout=30)
        response.raise_for_status()
        return response.json()


def wait_until_up(base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(base + "/healthz", timeout=10).status_code == 200:
                return
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the API at {base} did not come up")


def signed_in(env: dict[str, str], base: str) -> Client:
    """A new organisation's admin, signed in through the API."""
    from fieldcast.accounts.services import create_organisation
    from fieldcast.db import Database
    from fieldcast.settings import normalise_database_url

    database = Database(normalise_database_url(env["DATABASE_URL"]), pool_size=1)
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    with database.unit_of_work() as session:
        created = create_organisation(
            session,
            name="Benchmark",
            slug=slug,
            admin_email=f"rep@{slug}.example.com",
            admin_name="Bench Rep",
            admin_handle="bench_rep",
            admin_password=PASSWORD,
        )
        email = created.admin.email
    database.dispose()
    response = requests.post(
        base + "/api/v1/auth/token", json={"email": email, "password": PASSWORD}, timeout=30
    )
    response.raise_for_status()
    return Client(base, {"Authorization": f"Bearer {response.json()['access_token']}"})


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
