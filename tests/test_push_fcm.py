"""Pushes through the real firebase-admin client to a local FCM HTTP v1 server.

The service account is generated for the test; its `token_uri` points at the local server, so
the real OAuth flow (signed JWT assertion, access token) runs before every send.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fieldcast.context import AppContext, set_current
from fieldcast.db import utcnow
from fieldcast.models.devices import Device
from fieldcast.models.outbox import OutboxJob, OutboxStatus
from fieldcast.sharing import fanout
from notifications.fcm import FcmSink
from notifications.push import PushMessage
from tests import factories
from tests.api_support import share_video
from tests.fcm_server import FcmServer, TokenRule, write_service_account
from tests.test_sharing import _device, _video
from tests.worker_support import drain_outbox as drain


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

    share_id = share_video(client, auth(rep), video, fine, mixed, gone, message="Great opener")
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
    share_id = share_video(client, auth(rep), video, busy, calm, message="Great opener")
    before = utcnow()
    drain(context)

    states = _states(client, auth, rep, share_id)
    assert states[str(calm.id)] == ("sent", None)
    assert states[str(busy.id)] == ("queued", None)  # not failed: it will be tried again
    job = session.scalars(select(OutboxJob).where(OutboxJob.task == fanout.SLICE_TASK)).one()
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
    share_video(client, auth(rep), video, *peers, message="Great opener")
    drain(context)
    session.execute(
        update(OutboxJob)
        .where(OutboxJob.task == fanout.SLICE_TASK)
        .values(status=OutboxStatus.PENDING, run_after=utcnow() - timedelta(hours=1))
    )
    session.commit()
    drain(context)
    assert len(fcm.messages()) == 4
    assert fcm.duplicates() == 0


def _push(token: str) -> PushMessage:
    return PushMessage(
        notification_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        type="share",
        title="Maya shared a video",
        body="Tap to watch.",
        token=token,
    )


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[tuple[FcmServer, FcmSink]]:
    with FcmServer() as server:
        account = write_service_account(tmp_path / "service-account.json", server)
        sink = FcmSink(str(account), endpoint=server.base_url)
        try:
            yield server, sink
        finally:
            sink.close()


def test_each_answer_is_sorted_as_firebase_admin_would(
    sink: tuple[FcmServer, FcmSink],
) -> None:
    server, fcm = sink
    server.set_rule("gone", TokenRule.unregistered())
    server.set_rule("bad", TokenRule.invalid_argument())
    server.set_rule("throttled", TokenRule.quota_exceeded(times=None, retry_after=7))
    server.set_rule("down", TokenRule.unavailable(times=None, retry_after=3))
    server.set_rule("broken", TokenRule(error="internal"))
    tokens = ["ok", "gone", "bad", "throttled", "down", "broken"]
    results = dict(zip(tokens, fcm.send_each([_push(t) for t in tokens]), strict=True))

    assert results["ok"].accepted and results["ok"].message_id is not None
    assert results["ok"].message_id.startswith("projects/fieldcast-test/messages/")
    assert (results["gone"].error, results["gone"].drop_token) == ("unregistered", True)
    assert (results["bad"].error, results["bad"].drop_token) == ("invalid_token", True)
    throttled = results["throttled"]
    assert (throttled.error, throttled.transient, throttled.retry_after) == (
        "quota_exceeded",
        True,
        7,
    )
    assert (results["down"].error, results["down"].transient) == ("unavailable", True)
    assert results["down"].retry_after == 3
    assert (results["broken"].error, results["broken"].transient) == ("internal", True)
    assert not any(r.drop_token for t, r in results.items() if t not in {"gone", "bad"})
    # Nothing is retried in the sender: 429 and 5xx go back to the outbox.
    assert [m.status for m in server.messages(token="down")] == [503]
    assert [m.status for m in server.messages(token="throttled")] == [429]


def test_one_session_for_every_batch_with_a_hundred_requests_in_flight(
    sink: tuple[FcmServer, FcmSink],
) -> None:
    server, fcm = sink
    server.latency = 0.05
    assert all(r.accepted for r in fcm.send_each([_push(f"first-{n}") for n in range(500)]))
    client = fcm._client
    assert all(r.accepted for r in fcm.send_each([_push(f"second-{n}") for n in range(300)]))
    assert fcm._client is client  # the same loop, session and kept-alive connections
    assert server.stats()["max_in_flight"] == 100
    assert server.token_requests == 1  # one access token for both batches
    assert server.duplicates_received() == 0


def test_a_refused_access_token_is_fetched_again_and_the_message_sent_once_more(
    sink: tuple[FcmServer, FcmSink],
) -> None:
    server, fcm = sink
    assert fcm.send_each([_push("before")])[0].accepted
    server.expire_access_tokens()
    assert fcm.send_each([_push("after")])[0].accepted
    assert [m.status for m in server.messages()] == [200, 401, 200]
    assert server.token_requests == 2


def test_no_answer_before_the_deadline_is_a_timeout_to_retry(tmp_path: Path) -> None:
    with FcmServer() as server:
        account = write_service_account(tmp_path / "service-account.json", server)
        fcm = FcmSink(str(account), endpoint=server.base_url, batch_deadline_s=0.5)
        server.set_rule("held", TokenRule.held())
        try:
            held, quick = fcm.send_each([_push("held"), _push("quick")])
            assert (held.accepted, held.error, held.transient) == (False, "timeout", True)
            assert quick.accepted
            server.wait_until(lambda s: s.stats()["dropped"] == 1)  # the request was cancelled
        finally:
            server.release()
            fcm.close()


def test_an_endpoint_that_refuses_connections_is_unavailable_for_now(tmp_path: Path) -> None:
    with FcmServer() as server:
        account = write_service_account(tmp_path / "service-account.json", server)
        fcm = FcmSink(str(account), endpoint=server.base_url)
        fcm.send_each([_push("warm")])  # the access token, while the server is up
    # The server is gone; its port refuses connections.
    try:
        (result,) = fcm.send_each([_push("nobody")])
    finally:
        fcm.close()
    assert (result.accepted, result.error, result.transient) == (False, "unavailable", True)


def test_a_forked_child_sends_on_a_client_of_its_own(sink: tuple[FcmServer, FcmSink]) -> None:
    """A process that sends and then forks (a worker's horse for another queue): the child
    never touches the parent's loop or connections, and the parent's keep working."""
    server, fcm = sink
    fcm.prepare()
    assert fcm._client is None and server.token_requests == 0  # nothing opened yet
    assert fcm.send_each([_push("parent-0")])[0].accepted
    parents = fcm._client
    pid = os.fork()
    if pid == 0:  # the child
        try:
            ok = fcm.send_each([_push("child")])[0].accepted and fcm._client is not parents
            os._exit(0 if ok else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert fcm.send_each([_push("parent-1")])[0].accepted
    assert fcm._client is parents
    assert sorted(m.token for m in server.messages(status=200)) == [
        "child",
        "parent-0",
        "parent-1",
    ]


def test_a_job_stopped_at_its_time_limit_leaves_nothing_sending(
    sink: tuple[FcmServer, FcmSink],
) -> None:
    """RQ's death penalty (SIGALRM raising in the job's thread) while the job waits for FCM:
    the batch's requests in flight are cancelled, not left sending in the background."""
    server, fcm = sink
    server.set_rule("held", TokenRule.held())

    class TimeLimit(Exception):
        pass

    def penalty(signum: int, frame: Any) -> None:
        raise TimeLimit

    def alarm_once_held() -> None:
        server.wait_until(lambda s: s.held == 1, timeout=30)
        os.kill(os.getpid(), signal.SIGALRM)

    previous = signal.signal(signal.SIGALRM, penalty)
    alarm = threading.Thread(target=alarm_once_held, daemon=True)
    alarm.start()
    try:
        with pytest.raises(TimeLimit):
            fcm.send_each([_push("held")])
    finally:
        alarm.join(timeout=30)
        signal.signal(signal.SIGALRM, previous)
    server.wait_until(lambda s: s.stats()["dropped"] == 1)
    server.release()
    assert fcm.send_each([_push("after")])[0].accepted  # the session is still good
