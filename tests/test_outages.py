"""PostgreSQL or Redis going down and coming back, under one running API: requests answer 503
`service_unavailable` with `Retry-After` meanwhile, and the first one after the service is
back works, without a restart. Both servers are the test's own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import text
from sqlalchemy.engine import Engine

from fieldcast.context import build_context
from fieldcast.db import Database
from fieldcast.settings import Settings
from tests import factories
from tests.conftest import SECRET_KEY
from tests.fault_servers import PostgresServer, RedisServer
from tests.live_server import LiveServer, committed_factories, serve
from tests.test_uploads import MP4_HEAD, TUS, metadata

# Its fixtures are made once per module: the module's tests share one worker.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(180, method="thread"),
    pytest.mark.xdist_group("test_outages"),
]

OFFSET_TYPE = "application/offset+octet-stream"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        url = server.start()
        from migrations.config import upgrade

        upgrade(url)
        yield server
    finally:
        server.remove()


class Api:
    def __init__(self, server: LiveServer, user: Any) -> None:
        self.server = server
        self.user = user
        self.headers = server.login(user)

    def login(self) -> requests.Response:
        return requests.post(
            f"{self.server.url}/api/v1/auth/token",
            json={"email": self.user.email, "password": factories.PASSWORD},
            timeout=30,
        )

    def me(self) -> requests.Response:
        return requests.get(f"{self.server.url}/api/v1/me", headers=self.headers, timeout=30)

    def create_upload(self, length: int) -> str:
        draft = requests.post(
            f"{self.server.url}/api/v1/videos",
            json={"title": "Pricing objection"},
            headers=self.headers,
            timeout=30,
        )
        assert draft.status_code == 201, draft.text
        created = requests.post(
            f"{self.server.url}/api/v1/uploads",
            headers={
                **self.headers,
                **TUS,
                "Upload-Length": str(length),
                "Upload-Metadata": metadata(draft.json()["id"]),
            },
            timeout=30,
        )
        assert created.status_code == 201, created.text
        return str(created.headers["Location"])

    def head(self, url: str) -> requests.Response:
        return requests.head(url, headers={**self.headers, **TUS}, timeout=30)

    def patch(self, url: str, offset: int, data: bytes) -> requests.Response:
        return requests.patch(
            url,
            data=data,
            headers={
                **self.headers,
                **TUS,
                "Upload-Offset": str(offset),
                "Content-Type": OFFSET_TYPE,
            },
            timeout=30,
        )


def _unavailable(response: requests.Response, *, body: bool = True) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    if body:
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert response.json()["code"] == "service_unavailable"


@pytest.fixture
def api(postgres: PostgresServer, redis_server: RedisServer, tmp_path: Path) -> Iterator[Api]:
    url = postgres.start()
    settings = Settings.from_env(
        {
            "DATABASE_URL": url,
            "REDIS_URL": redis_server.url,
            "SECRET_KEY": SECRET_KEY,
            "STORAGE_URL": (tmp_path / "media").as_uri(),
            "FIELDCAST_DATA_DIR": str(tmp_path / "var"),
            "LOG_JSON": "false",
            "LOG_LEVEL": "WARNING",
        }
    )
    db = Database(url, pool_size=2)
    ctx = build_context(settings, db=db)
    with committed_factories(db) as session:
        user = factories.UserFactory(org=factories.OrganisationFactory())
        session.commit()
    try:
        with serve(ctx) as server:
            yield Api(server, user)
    finally:
        postgres.start()  # for the next test, whatever this one left
        db.dispose()
        ctx.redis.close()


def test_a_database_outage_answers_503_and_the_next_request_after_it_works(
    api: Api, postgres: PostgresServer
) -> None:
    upload = api.create_upload(10)  # the first bytes of an MP4: a file that may be a video
    assert api.patch(upload, 0, MP4_HEAD[:5]).status_code == 204
    # Every pooled connection has been used, so each one is dead after the restart.
    assert api.me().status_code == 200

    postgres.stop()
    _unavailable(api.login())
    _unavailable(api.me())
    _unavailable(api.patch(upload, 5, MP4_HEAD[5:10]))
    _unavailable(api.head(upload), body=False)

    postgres.start()
    # The same API process: the first request after the outage already works.
    assert api.me().status_code == 200
    assert api.head(upload).headers["Upload-Offset"] == "5"
    finished = api.patch(upload, 5, MP4_HEAD[5:10])
    assert finished.status_code == 204, finished.text
    assert finished.headers["Upload-Offset"] == "10"
    assert api.login().status_code == 200


def test_a_redis_outage_answers_503_where_redis_is_needed(
    api: Api, redis_server: RedisServer
) -> None:
    upload = api.create_upload(10)

    redis_server.kill()
    # Logins are rate-limited in Redis; chunks are written under a lock kept in Redis.
    _unavailable(api.login())
    _unavailable(api.patch(upload, 0, b"01234"))
    # What needs only PostgreSQL goes on working.
    assert api.me().status_code == 200
    assert api.head(upload).headers["Upload-Offset"] == "0"

    redis_server.start()
    assert api.login().status_code == 200
    stored = api.patch(upload, 0, b"01234")
    assert stored.status_code == 204, stored.text
    assert stored.headers["Upload-Offset"] == "5"


def test_every_operation_documents_503(api: Api) -> None:
    spec = requests.get(f"{api.server.url}/openapi.json", timeout=30).json()
    operations = [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in {"get", "put", "post", "patch", "delete", "head"}
    ]
    assert operations
    for path, method, operation in operations:
        assert operation["responses"].get("503") == {
            "$ref": "#/components/responses/SERVICE_UNAVAILABLE"
        }, (method, path)
    documented = spec["components"]["responses"]["SERVICE_UNAVAILABLE"]
    assert "Retry-After" in documented["headers"]
    assert documented["content"]["application/problem+json"]


def test_a_sql_error_is_still_a_500(api: Api) -> None:
    """A defect is not an outage: clients must not retry it forever."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from fieldcast.outages import is_outage

    with api.server.context.db.session() as session:
        with pytest.raises(ProgrammingError) as bad_sql:
            session.execute(text("SELECT no_such_column FROM organisations"))
        assert not is_outage(bad_sql.value)
        session.rollback()
        with pytest.raises(OperationalError) as cancelled:
            session.execute(text("SET LOCAL statement_timeout = 1; SELECT pg_sleep(1)"))
        assert not is_outage(cancelled.value)


def test_a_pooled_connection_is_pinged_only_after_idling_and_a_dropped_one_is_replaced(
    database_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from fieldcast import db as db_module
    from fieldcast.outages import is_outage

    database = Database(database_url, pool_size=1)
    pings: list[object] = []
    ping = database.engine.dialect.do_ping

    def counted_ping(dbapi_connection: Any) -> bool:
        pings.append(dbapi_connection)
        return bool(ping(dbapi_connection))

    monkeypatch.setattr(database.engine.dialect, "do_ping", counted_ping)

    def backend() -> int:
        with database.session() as session:
            return int(session.scalar(text("SELECT pg_backend_pid()")))

    def drop(pid: int) -> None:
        with engine.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            gone = text("SELECT 1 FROM pg_stat_activity WHERE pid = :pid")
            while admin.execute(gone, {"pid": pid}).first():
                time.sleep(0.01)

    try:
        # In use again at once: handed out as it is, no round trip first.
        first = backend()
        assert backend() == first and pings == []
        # Dropped while hot: its next request fails as an outage (503), and the next works.
        drop(first)
        with pytest.raises(OperationalError) as lost:
            backend()
        assert is_outage(lost.value)
        second = backend()
        assert second != first
        # Idle past PING_IDLE_S: pinged before use, and replaced unseen when it was dropped.
        monkeypatch.setattr(db_module, "PING_IDLE_S", 0.05)
        time.sleep(0.1)
        assert backend() == second and len(pings) == 1
        drop(second)
        time.sleep(0.1)
        third = backend()
        assert third not in (first, second) and len(pings) == 2
    finally:
        database.dispose()
