"""One unit of work per request and per job: a crash at each boundary of a request with an
Idempotency-Key leaves either nothing done and the key free, or the change committed with its
response stored for the retry to replay. Nothing acts twice and no key stays "in progress"."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from api import unit_of_work
from fieldcast.context import AppContext
from fieldcast.db import EarlyCommit, commit_early, utcnow
from fieldcast.idempotency import services as idempotency
from fieldcast.models.idempotency import IdempotencyKey
from fieldcast.models.outbox import OutboxJob, OutboxStatus
from fieldcast.models.sharing import Share
from fieldcast.models.videos import Video, VideoStatus
from fieldcast.outbox import services as outbox
from fieldcast.sharing import fanout
from fieldcast.videos import services as videos
from tests import factories
from tests.fault_servers import PostgresServer
from tests.test_outages import Api, postgres  # noqa: F401 - the fixture
from tests.test_outages import api as outage_api  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[1]


class Crash(Exception):
    """The injected crash."""


def _count(session: Session, model: Any, *where: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _keys(session: Session, key: str) -> list[IdempotencyKey]:
    session.expire_all()
    return list(session.scalars(select(IdempotencyKey).where(IdempotencyKey.key == key)))


def _videos(session: Session, owner: Any) -> int:
    return _count(session, Video, Video.owner_id == owner.id)


def _once(target: Callable[..., Any]) -> tuple[Callable[..., Any], list[int]]:
    """`target`, except that its first call raises `Crash`."""
    calls = [0]

    def crashing(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise Crash("injected")
        return target(*args, **kwargs)

    return crashing, calls


@pytest.fixture
def production_errors(app: Flask) -> Flask:
    """Errors raised after the view become a 500 as in production, not a test exception."""
    app.config["PROPAGATE_EXCEPTIONS"] = False
    return app


# -- the source: no commit outside the one place -----------------------------------------------


_COMMIT = re.compile(r"\.commit\(\)|engine\.begin\(\)")


def test_no_commit_outside_the_unit_of_work() -> None:
    """Services flush; a request or job commits once. The named early commits go through
    `commit_early` / `commit_apart`; only fieldcast/db.py calls `.commit()` itself."""
    allowed = {ROOT / "fieldcast" / "db.py"}
    stray = []
    for package in ("fieldcast", "api", "workers"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path in allowed:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                code = line.split("#", 1)[0]
                if _COMMIT.search(code):
                    stray.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert stray == []


def test_every_early_commit_is_used_and_documented() -> None:
    db_source = (ROOT / "fieldcast" / "db.py").read_text()
    sources = "\n".join(
        path.read_text()
        for package in ("fieldcast", "api", "workers")
        for path in (ROOT / package).rglob("*.py")
        if path.name != "db.py"
    )
    for member in EarlyCommit:
        assert f"EarlyCommit.{member.name}" in sources, member
        assert re.search(rf"#: .*\n(?:\s+#: .*\n)*\s+{member.name} = ", db_source), member


def test_the_source_grep_finds_a_stray_commit(tmp_path: Path) -> None:
    """The pattern above matches what it must, so the test above can fail."""
    assert _COMMIT.search("    session.commit()")
    assert _COMMIT.search("    with ctx.db.engine.begin() as connection:")
    assert not _COMMIT.search("    commit_early(session, EarlyCommit.TUS_OFFSET)")
    assert not _COMMIT.search("    session.flush()")


# -- (a) after the change, before the response is stored ------------------------------------------


def test_a_crash_before_the_response_is_stored_leaves_nothing_done_and_the_key_free(
    client: FlaskClient,
    production_errors: Flask,
    session: Session,
    rep: Any,
    auth: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    headers = {**auth(rep), "Idempotency-Key": "draft-a"}
    crashing, calls = _once(idempotency.complete)
    monkeypatch.setattr(idempotency, "complete", crashing)

    first = client.post("/api/v1/videos", json={"title": "Pricing call"}, headers=headers)
    assert first.status_code == 500, first.get_json()
    assert first.get_json()["code"] == "internal_error"
    assert calls[0] == 1  # the change was made and flushed; storing its response crashed
    assert _videos(session, rep) == 0
    assert _keys(session, "draft-a") == []

    retried = client.post("/api/v1/videos", json={"title": "Pricing call"}, headers=headers)
    assert retried.status_code == 201, retried.get_json()
    assert "Idempotent-Replayed" not in retried.headers
    assert _videos(session, rep) == 1
    [key] = _keys(session, "draft-a")
    assert key.response_status == 201


def test_a_failed_commit_leaves_nothing_done_and_the_key_free(
    client: FlaskClient,
    production_errors: Flask,
    session: Session,
    rep: Any,
    auth: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The connection dies at the commit: 503, the change and the key are rolled back."""
    headers = {**auth(rep), "Idempotency-Key": "draft-commit"}
    real = unit_of_work.commit_unit
    calls = [0]

    def dying_commit(db_session: Session) -> None:
        calls[0] += 1
        if calls[0] == 1:
            raise OperationalError(
                "COMMIT", {}, psycopg.OperationalError("server closed the connection")
            )
        real(db_session)

    monkeypatch.setattr(unit_of_work, "commit_unit", dying_commit)
    first = client.post("/api/v1/videos", json={"title": "Pricing call"}, headers=headers)
    assert first.status_code == 503, first.get_json()
    assert first.get_json()["code"] == "service_unavailable"
    assert _videos(session, rep) == 0
    assert _keys(session, "draft-commit") == []

    retried = client.post("/api/v1/videos", json={"title": "Pricing call"}, headers=headers)
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert _videos(session, rep) == 1


def _share_setup(session: Session, org: Any) -> tuple[Any, Any, Video]:
    sender = factories.UserFactory(org=org, manager=True)
    peer = factories.UserFactory(org=org)
    video = Video(
        org_id=org.id, owner_id=sender.id, title="Discovery call", status=VideoStatus.PLAYABLE
    )
    session.add(video)
    session.commit()
    return sender, peer, video


def _fan_outs(session: Session) -> int:
    return _count(session, OutboxJob, OutboxJob.task == fanout.FAN_OUT_TASK)


def test_a_share_that_crashes_before_its_response_is_stored_is_made_once(
    client: FlaskClient,
    production_errors: Flask,
    session: Session,
    org: Any,
    auth: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sender, peer, video = _share_setup(session, org)
    headers = {**auth(sender), "Idempotency-Key": "share-a"}
    body = {"user_ids": [str(peer.id)], "message": "Listen to the pricing part"}
    crashing, calls = _once(idempotency.complete)
    monkeypatch.setattr(idempotency, "complete", crashing)

    first = client.post(f"/api/v1/videos/{video.id}/shares", json=body, headers=headers)
    assert first.status_code == 500
    assert calls[0] == 1
    assert _count(session, Share, Share.video_id == video.id) == 0
    assert _fan_outs(session) == 0  # the outbox row rolled back with the share
    assert _keys(session, "share-a") == []

    retried = client.post(f"/api/v1/videos/{video.id}/shares", json=body, headers=headers)
    assert retried.status_code == 201, retried.get_json()
    assert "Idempotent-Replayed" not in retried.headers
    assert _count(session, Share, Share.video_id == video.id) == 1
    assert _fan_outs(session) == 1


# -- (b) after the commit, before the response is sent ----------------------------------------


def test_a_crash_after_the_commit_is_replayed_not_done_again(
    client: FlaskClient,
    production_errors: Flask,
    session: Session,
    rep: Any,
    auth: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A later after-request step raises: the client gets a 500 for a request that did commit;
    its retry gets the stored 201 replayed and makes no second video."""
    from api import health

    headers = {**auth(rep), "Idempotency-Key": "draft-b"}
    crashing, calls = _once(health.observe)
    monkeypatch.setattr(health, "observe", crashing)

    lost = client.post("/api/v1/videos", json={"title": "Pricing call"}, headers=headers)
    assert calls[0] >= 1  # and again for the 500 that followed
    assert lost.status_code == 500  # what the client sees, if anything reaches it
    assert _videos(session, rep) == 1
    [key] = _keys(session, "draft-b")
    assert key.response_status == 201

    retried = client.post("/api/v1/videos", json={"title": "Pricing call"}, headers=headers)
    assert retried.status_code == 201
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert retried.get_json()["title"] == "Pricing call"
    assert _videos(session, rep) == 1
    assert retried.get_json()["id"] == str(
        session.scalar(select(Video.id).where(Video.owner_id == rep.id))
    )


def test_a_share_whose_response_was_lost_is_replayed_not_sent_again(
    client: FlaskClient,
    production_errors: Flask,
    session: Session,
    org: Any,
    auth: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from api import health

    sender, peer, video = _share_setup(session, org)
    headers = {**auth(sender), "Idempotency-Key": "share-b"}
    body = {"user_ids": [str(peer.id)]}
    crashing, _ = _once(health.observe)
    monkeypatch.setattr(health, "observe", crashing)

    lost = client.post(f"/api/v1/videos/{video.id}/shares", json=body, headers=headers)
    assert lost.status_code == 500
    assert _count(session, Share, Share.video_id == video.id) == 1

    retried = client.post(f"/api/v1/videos/{video.id}/shares", json=body, headers=headers)
    assert retried.status_code == 201
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert _count(session, Share, Share.video_id == video.id) == 1
    assert _fan_outs(session) == 1
    share_id = session.scalar(select(Share.id).where(Share.video_id == video.id))
    assert retried.get_json()["id"] == str(share_id)


# -- failures that keep nothing ---------------------------------------------------------------


def test_a_refused_request_frees_its_key(
    client: FlaskClient, session: Session, rep: Any, auth: Any
) -> None:
    headers = {**auth(rep), "Idempotency-Key": "draft-refused"}
    refused = client.post("/api/v1/videos", json={"title": ""}, headers=headers)
    assert refused.status_code == 422
    assert _keys(session, "draft-refused") == []
    created = client.post("/api/v1/videos", json={"title": "Pricing call"}, headers=headers)
    assert created.status_code == 201
    assert "Idempotent-Replayed" not in created.headers


def test_a_request_failing_after_an_early_commit_frees_its_key(
    client: FlaskClient,
    production_errors: Flask,
    session: Session,
    rep: Any,
    auth: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The early commit carried the key insert; the failure after it must not leave the key
    "in progress" for its TTL."""
    real = videos.create_video
    calls = [0]

    def commits_early_then_fails(db_session: Session, *args: Any, **kwargs: Any) -> Video:
        calls[0] += 1
        video = real(db_session, *args, **kwargs)
        if calls[0] == 1:
            commit_early(db_session, EarlyCommit.BEFORE_LONG_WORK)
            raise Crash("after the early commit")
        return video

    monkeypatch.setattr(videos, "create_video", commits_early_then_fails)
    headers = {**auth(rep), "Idempotency-Key": "draft-early"}
    failed = client.post("/api/v1/videos", json={"title": "Pricing call"}, headers=headers)
    assert failed.status_code == 500
    assert _keys(session, "draft-early") == []

    retried = client.post("/api/v1/videos", json={"title": "Pricing call"}, headers=headers)
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers


@pytest.mark.parametrize(("age", "status"), [(timedelta(minutes=11), 201), (timedelta(0), 409)])
def test_a_key_left_in_progress_by_a_dead_process_is_free_after_the_bound(
    client: FlaskClient, session: Session, rep: Any, auth: Any, age: timedelta, status: int
) -> None:
    """A process killed after an early commit never stores or frees its key: past
    `ABANDONED_AFTER` the key is free again, not stuck until its TTL; before it, it is still
    "in progress"."""
    assert timedelta(minutes=10) == idempotency.ABANDONED_AFTER
    body = b'{"title": "Pricing call"}'
    session.add(
        IdempotencyKey(
            org_id=rep.org_id,
            user_id=rep.id,
            key="draft-orphan",
            fingerprint=hashlib.sha256(b"POST\0/api/v1/videos?\0" + body).hexdigest(),
            created_at=utcnow() - age,
            expires_at=utcnow() + timedelta(hours=24),
        )
    )
    session.commit()
    headers = {**auth(rep), "Idempotency-Key": "draft-orphan"}
    answer = client.post(
        "/api/v1/videos", data=body, content_type="application/json", headers=headers
    )
    assert answer.status_code == status
    if status == 409:
        assert answer.get_json()["code"] == "idempotency_request_in_progress"
    else:
        assert _videos(session, rep) == 1
        [stored] = _keys(session, "draft-orphan")
        assert stored.response_status == 201


def test_a_replay_commits_nothing(
    client: FlaskClient, session: Session, rep: Any, auth: Any
) -> None:
    headers = {**auth(rep), "Idempotency-Key": "draft-replay"}
    first = client.post("/api/v1/videos", json={"title": "Pricing call"}, headers=headers)
    assert first.status_code == 201
    for _ in range(2):
        again = client.post("/api/v1/videos", json={"title": "Pricing call"}, headers=headers)
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.get_json() == first.get_json()
    assert _videos(session, rep) == 1


# -- (c) a database outage in the middle of a request -----------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(180, method="thread")
def test_a_database_outage_mid_request_leaves_no_stuck_key(
    outage_api: Api,  # noqa: F811 - the fixture
    postgres: PostgresServer,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL stops after the draft is made and before the request commits: 503, and once
    it is back the retry with the same key acts (once), instead of finding its key stuck."""
    real = videos.create_video
    calls = [0]

    def then_the_database_stops(db_session: Session, *args: Any, **kwargs: Any) -> Video:
        calls[0] += 1
        video = real(db_session, *args, **kwargs)
        if calls[0] == 1:
            postgres.stop()
        return video

    monkeypatch.setattr(videos, "create_video", then_the_database_stops)
    url = f"{outage_api.server.url}/api/v1/videos"
    headers = {**outage_api.headers, "Idempotency-Key": "draft-outage"}
    first = requests.post(url, json={"title": "Pricing call"}, headers=headers, timeout=30)
    assert first.status_code == 503, first.text
    assert first.json()["code"] == "service_unavailable"

    postgres.start()
    retried = requests.post(url, json={"title": "Pricing call"}, headers=headers, timeout=30)
    assert retried.status_code == 201, retried.text
    assert "Idempotent-Replayed" not in retried.headers
    replayed = requests.post(url, json={"title": "Pricing call"}, headers=headers, timeout=30)
    assert replayed.headers["Idempotent-Replayed"] == "true"
    with outage_api.server.context.db.session() as check:
        assert _count(check, Video, Video.owner_id == outage_api.user.id) == 1
        assert len(list(check.scalars(select(IdempotencyKey)))) == 1


# -- one unit of work per outbox job ----------------------------------------------------------


@pytest.fixture
def registry() -> Iterator[outbox.TaskRegistry]:
    yield outbox.TaskRegistry()


def test_an_outbox_task_commits_once_with_its_completion(
    context: AppContext, session: Session, org: Any, rep: Any, registry: outbox.TaskRegistry
) -> None:
    """A task's flushed change commits with its `done`; a task that fails after flushing one
    leaves nothing of it, only its `failed`."""

    def rename(db_session: Session, payload: dict[str, Any]) -> None:
        video = db_session.get(Video, uuid.UUID(payload["video_id"]))
        assert video is not None
        video.title = payload["title"]
        db_session.flush()
        if payload.get("crash"):
            raise Crash("after the flush")

    registry.register("test.rename", queue="default", max_attempts=1)(rename)
    video = Video(org_id=org.id, owner_id=rep.id, title="Before")
    session.add(video)
    session.commit()

    def run(payload: dict[str, Any]) -> OutboxStatus | None:
        job = OutboxJob(
            id=uuid.uuid4(), task="test.rename", queue="default", payload=payload, max_attempts=1
        )
        session.add(job)
        session.commit()
        return outbox.execute(context.db, job.id, lease=timedelta(seconds=30), registry=registry)

    assert run({"video_id": str(video.id), "title": "Crashed", "crash": True}) is (
        OutboxStatus.FAILED
    )
    session.expire_all()
    assert session.get(Video, video.id).title == "Before"  # type: ignore[union-attr]
    assert run({"video_id": str(video.id), "title": "After"}) is OutboxStatus.DONE
    session.expire_all()
    assert session.get(Video, video.id).title == "After"  # type: ignore[union-attr]
