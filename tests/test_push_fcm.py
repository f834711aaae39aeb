"""Pushes through the real firebase-admin client to a local FCM HTTP v1 server.

The service account is generated for the test; its `token_uri` points at the local server, so
the real OAuth flow (signed JWT assertion, access token) runs before every send.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from firebase_admin import messaging
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fieldcast.context import AppContext, set_current
from fieldcast.db import utcnow
from fieldcast.models.devices import Device
from fieldcast.models.outbox import OutboxJob, OutboxStatus
from fieldcast.sharing import services as sharing
from notifications.fcm import FcmSink
from notifications.push import PushMessage
from tests import factories
from tests.fcm_server import FcmServer, TokenRule, write_service_account
from tests.test_sharing import _device, _video, drain


@pytest.fixture
def fcm(tmp_path: Path, context: AppContext) -> Iterator[FcmServer]:
    with FcmServer() as server:
        account = write_service_account(tmp_path / "service-account.json", server)
        sink = FcmSink(str(account), endpoint=server.base_url)
        context.push = sink
        set_current(context)
        try:
            yield server
        finally:
            set_current(None)
            sink.close()


def _share(client: FlaskClient, auth: Any, sender: Any, video: Any, users: list[Any]) -> str:
    response = client.post(
        f"/api/v1/videos/{video.id}/shares",
        json={"user_ids": [str(u.id) for u in users], "message": "Great opener"},
        headers=auth(sender),
    )
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def _states(client: FlaskClient, auth: Any, sender: Any, share_id: str) -> dict[str, Any]:
    items = client.get(f"/api/v1/shares/{share_id}/recipients", headers=auth(sender)).get_json()
    return {r["user"]["id"]: (r["state"], r["failure_reason"]) for r in items["items"]}


def test_token_hygiene_and_recipient_states(
    client: FlaskClient,
    session: Session,
    org: Any,
    rep: Any,
    auth: Any,
    context: AppContext,
    fcm: FcmServer,
) -> None:
    fine, mixed, gone = (factories.UserFactory(org=org) for _ in range(3))
    _device(session, fine, token="fine-1")
    _device(session, mixed, token="mixed-ok")
    _device(session, mixed, token="mixed-unregistered")
    _device(session, gone, token="gone-unregistered")
    _device(session, gone, token="gone-invalid")
    video = _video(session, rep)
    session.commit()
    fcm.set_rule("mixed-unregistered", TokenRule.unregistered())
    fcm.set_rule("gone-unregistered", TokenRule.unregistered())
    fcm.set_rule("gone-invalid", TokenRule.invalid_argument())

    share_id = _share(client, auth, rep, video, [fine, mixed, gone])
    drain(context)

    assert fcm.token_requests >= 1  # the real credential flow ran
    states = _states(client, auth, rep, share_id)
    assert states[str(fine.id)] == ("sent", None)
    assert states[str(mixed.id)] == ("sent", None)  # one device of theirs took it
    assert states[str(gone.id)][0] == "failed"
    assert states[str(gone.id)][1] in {"unregistered", "invalid_token"}
    # Dead tokens are forgotten; live ones stay.
    tokens = set(session.scalars(select(Device.token)).all())
    assert tokens == {"fine-1", "mixed-ok"}

    message = next(m for m in fcm.messages() if m.token == "fine-1")
    body = message.message
    assert body["notification"]["body"] == "Great opener"
    assert body["data"]["share_id"] == share_id and body["data"]["video_id"] == str(video.id)
    assert body["data"]["type"] == "share.received"
    collapse = body["data"]["notification_id"]
    assert body["android"]["priority"] == "high" and body["android"]["collapse_key"] == collapse
    assert body["apns"]["headers"]["apns-collapse-id"] == collapse
    assert body["apns"]["payload"]["aps"]["badge"] == 1
    assert fcm.duplicates() == 0


@pytest.mark.parametrize("rule", [TokenRule.quota_exceeded(times=1, retry_after=7),
                                  TokenRule.unavailable(times=1, retry_after=5)])  # fmt: skip
def test_throttled_and_unavailable_pushes_are_retried_after_the_wait(
    client: FlaskClient,
    session: Session,
    org: Any,
    rep: Any,
    auth: Any,
    context: AppContext,
    fcm: FcmServer,
    rule: TokenRule,
) -> None:
    busy, calm = factories.UserFactory(org=org), factories.UserFactory(org=org)
    _device(session, busy, token="busy")
    _device(session, calm, token="calm")
    video = _video(session, rep)
    session.commit()
    fcm.set_rule("busy", rule)
    share_id = _share(client, auth, rep, video, [busy, calm])
    before = utcnow()
    drain(context)

    states = _states(client, auth, rep, share_id)
    assert states[str(calm.id)] == ("sent", None)
    assert states[str(busy.id)] == ("queued", None)  # not failed: it will be tried again
    job = session.scalars(select(OutboxJob).where(OutboxJob.task == sharing.SLICE_TASK)).one()
    session.refresh(job)
    assert job.status is OutboxStatus.PENDING
    assert job.run_after >= before + timedelta(seconds=rule.retry_after or 0)

    # Once the wait is over, only the message that did not go out is sent again.
    # (The test's transaction fixes the database's now(): due means before it started.)
    past = utcnow() - timedelta(hours=1)
    session.execute(update(OutboxJob).where(OutboxJob.id == job.id).values(run_after=past))
    session.commit()
    drain(context)
    assert _states(client, auth, rep, share_id)[str(busy.id)] == ("sent", None)
    assert [m.token for m in fcm.messages() if m.status == 200].count("calm") == 1
    assert fcm.duplicates() == 0


def test_a_job_run_twice_sends_nothing_twice(
    client: FlaskClient,
    session: Session,
    org: Any,
    rep: Any,
    auth: Any,
    context: AppContext,
    fcm: FcmServer,
) -> None:
    peers = [factories.UserFactory(org=org) for _ in range(4)]
    for i, peer in enumerate(peers):
        _device(session, peer, token=f"peer-{i}")
    video = _video(session, rep)
    session.commit()
    _share(client, auth, rep, video, peers)
    drain(context)
    session.execute(
        update(OutboxJob)
        .where(OutboxJob.task == sharing.SLICE_TASK)
        .values(status=OutboxStatus.PENDING, run_after=utcnow() - timedelta(hours=1))
    )
    session.commit()
    drain(context)
    assert len(fcm.messages()) == 4
    assert fcm.duplicates() == 0


def test_a_sink_prepared_before_a_fork_sends_from_each_child(tmp_path: Path) -> None:
    """What a worker does: set the sink up once, then fork a process per job. Each process
    sends on connections of its own, even when the parent has sent before."""
    with FcmServer() as server:
        account = write_service_account(tmp_path / "service-account.json", server)
        sink = FcmSink(str(account), endpoint=server.base_url)
        sink.prepare()
        prepared = sink._app
        assert prepared is not None and server.token_requests == 0  # nothing sent yet

        def message(n: int) -> PushMessage:
            return PushMessage(
                notification_id=uuid.uuid4(),
                user_id=uuid.uuid4(),
                type="share",
                title="Maya shared a video",
                body="Tap to watch.",
                token=f"forked-{n}",
            )

        def pool() -> Any:
            session = messaging._get_messaging_service(prepared)._client.session
            return session.get_adapter(server.base_url)

        assert sink.send_each([message(0)])[0].accepted  # the parent's pool holds a connection
        parents = pool()
        for n in (1, 2):
            pid = os.fork()
            if pid == 0:  # the job's process: the parent's app, a pool of its own
                try:
                    results = sink.send_each([message(n)])
                    ok = sink._app is prepared and pool() is not parents and results[0].accepted
                    os._exit(0 if ok else 1)
                finally:
                    os._exit(2)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
        assert pool() is parents
        assert sink.send_each([message(3)])[0].accepted
        assert sorted(m.token for m in server.messages(status=200)) == [
            f"forked-{n}" for n in range(4)
        ]
        sink.close()
