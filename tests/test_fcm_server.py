"""The FCM stand-in driven by the real firebase-admin library, credentials flow included."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import firebase_admin
import pytest
import requests
from firebase_admin import _http_client, credentials, exceptions, messaging
from google.auth import crypt, jwt

from tests.fcm_server import (
    DEFAULT_PROJECT_ID,
    FcmEndpoint,
    FcmServer,
    FcmServerProcess,
    TokenRule,
    new_service_account,
    point_messaging_at,
    write_service_account,
)

# firebase-admin 7.7 deprecates Message.token for Message.fid; FCM v1 still takes `token`.
pytestmark = pytest.mark.filterwarnings("ignore:Message.token is deprecated:DeprecationWarning")


@pytest.fixture
def fcm() -> Iterator[FcmServer]:
    with FcmServer() as server:
        yield server


def initialise_app(service_account: Path, endpoint: FcmEndpoint) -> firebase_admin.App:
    """A uniquely named firebase-admin app on the generated credentials, sending to `endpoint`."""
    app = firebase_admin.initialize_app(
        credentials.Certificate(str(service_account)), name=f"fcm-test-{uuid.uuid4().hex}"
    )
    point_messaging_at(app, endpoint)
    return app


@pytest.fixture
def app(fcm: FcmServer, tmp_path: Path) -> Iterator[firebase_admin.App]:
    app = initialise_app(write_service_account(tmp_path / "service-account.json", fcm), fcm)
    yield app
    firebase_admin.delete_app(app)


def push(token: str, notification_id: str = "n-1") -> messaging.Message:
    return messaging.Message(
        token=token,
        notification=messaging.Notification(title="New moment", body="Ana shared a moment"),
        data={"notification_id": notification_id, "moment_id": "m-42"},
        android=messaging.AndroidConfig(priority="high", collapse_key="moment-m-42"),
        apns=messaging.APNSConfig(
            headers={"apns-priority": "10", "apns-collapse-id": "moment-m-42"},
            payload=messaging.APNSPayload(aps=messaging.Aps(badge=3, sound="default")),
        ),
    )


def test_send_each_reports_each_tokens_fate(fcm: FcmServer, app: firebase_admin.App) -> None:
    fcm.set_rule("device-gone", TokenRule.unregistered())
    fcm.set_rule("device-bad", TokenRule.invalid_argument())
    fcm.set_rule("device-throttled", TokenRule.quota_exceeded(times=None, retry_after=30))
    fcm.set_rule("device-flaky", TokenRule.unavailable(times=1))
    # urllib3 would otherwise honour Retry-After: 30 four times before giving up; see
    # test_default_retries_absorb_one_503_and_wait_out_retry_after for that default.
    point_messaging_at(
        app, fcm, retries=_http_client.DEFAULT_RETRY_CONFIG.new(respect_retry_after_header=False)
    )
    tokens = ["device-ok", "device-gone", "device-bad", "device-throttled", "device-flaky"]

    batch = messaging.send_each([push(token) for token in tokens], app=app)

    ok, gone, bad, throttled, flaky = batch.responses
    assert (batch.success_count, batch.failure_count) == (2, 3)
    assert ok.success
    assert ok.message_id.startswith(f"projects/{DEFAULT_PROJECT_ID}/messages/0:")
    assert isinstance(gone.exception, messaging.UnregisteredError)
    assert isinstance(bad.exception, exceptions.InvalidArgumentError)
    assert "not a valid FCM registration token" in str(bad.exception)
    assert isinstance(throttled.exception, messaging.QuotaExceededError)
    assert throttled.exception.http_response.headers["Retry-After"] == "30"
    # firebase-admin's own retry absorbed the single 503: the caller sees a success.
    assert flaky.success
    assert [m.status for m in fcm.messages(token="device-flaky")] == [503, 200]
    assert len(fcm.messages(token="device-throttled")) == 1
    assert fcm.token_requests >= 1
    assert fcm.stats()["access_tokens"] >= 1

    (received,) = fcm.messages(token="device-ok")
    assert received.status == 200
    assert received.validate_only is False
    assert received.message["notification"] == {
        "title": "New moment",
        "body": "Ana shared a moment",
    }
    assert received.data == {"notification_id": "n-1", "moment_id": "m-42"}
    assert received.message["android"] == {"priority": "high", "collapse_key": "moment-m-42"}
    assert received.message["apns"]["headers"] == {
        "apns-priority": "10",
        "apns-collapse-id": "moment-m-42",
    }
    assert received.message["apns"]["payload"]["aps"] == {"badge": 3, "sound": "default"}


def test_default_retries_absorb_one_503_and_wait_out_retry_after(
    fcm: FcmServer, app: firebase_admin.App
) -> None:
    """urllib3 retries 503 by firebase-admin's config, and 429 because it has Retry-After."""
    fcm.set_rule("device-flaky", TokenRule.unavailable(times=1))
    fcm.set_rule("device-throttled", TokenRule.quota_exceeded(times=1, retry_after=1))
    started = time.monotonic()

    batch = messaging.send_each([push("device-flaky"), push("device-throttled")], app=app)

    assert batch.success_count == 2
    assert time.monotonic() - started >= 1.0
    assert [m.status for m in fcm.messages(token="device-flaky")] == [503, 200]
    assert [m.status for m in fcm.messages(token="device-throttled")] == [429, 200]


def test_a_persistent_503_surfaces_after_four_retries(
    fcm: FcmServer, app: firebase_admin.App
) -> None:
    # The default backoff between those retries (0, 1, 2, 4 s) is cut to keep the test fast.
    point_messaging_at(app, fcm, retries=_http_client.DEFAULT_RETRY_CONFIG.new(backoff_factor=0))
    fcm.set_rule("device-down", TokenRule.unavailable(times=None))

    (response,) = messaging.send_each([push("device-down")], app=app).responses

    assert isinstance(response.exception, exceptions.UnavailableError)
    assert [m.status for m in fcm.messages(token="device-down")] == [503] * 5


def test_an_expired_access_token_is_refreshed_and_the_send_retried(
    fcm: FcmServer, app: firebase_admin.App
) -> None:
    messaging.send(push("device-1"), app=app)
    fcm.expire_access_tokens()

    messaging.send(push("device-1", "n-2"), app=app)

    assert [m.status for m in fcm.messages()] == [200, 401, 200]
    assert fcm.token_requests == 2


def test_sends_need_an_issued_bearer_token(fcm: FcmServer) -> None:
    body = {"message": {"token": "device-1", "data": {"notification_id": "n-1"}}}

    response = requests.post(
        fcm.send_url(), json=body, headers={"Authorization": "Bearer made-up"}, timeout=5
    )

    assert response.status_code == 401
    assert response.json()["error"]["status"] == "UNAUTHENTICATED"
    assert fcm.messages()[0].status == 401
    assert fcm.duplicates_received() == 0


def test_the_token_endpoint_checks_signature_and_audience(fcm: FcmServer) -> None:
    account = fcm.add_service_account()
    second = fcm.add_service_account()
    untrusted, _ = new_service_account(fcm.token_url, DEFAULT_PROJECT_ID)
    now = int(time.time())
    claims = {
        "iss": account["client_email"],
        "aud": fcm.token_url,
        "scope": "https://www.googleapis.com/auth/firebase.messaging",
        "iat": now,
        "exp": now + 3600,
    }

    def exchange(info: dict[str, str], **changes: str) -> requests.Response:
        assertion = jwt.encode(crypt.RSASigner.from_service_account_info(info), claims | changes)
        form = {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": assertion.decode(),
        }
        return requests.post(fcm.token_url, data=form, timeout=5)

    granted = exchange(account)
    also_granted = exchange(second, aud="https://oauth2.googleapis.com/token")
    refused = [
        exchange(account, aud="https://example.com/token"),
        exchange(untrusted),
        # A trusted key id on a key the server does not know.
        exchange({**untrusted, "private_key_id": account["private_key_id"]}),
    ]

    assert granted.status_code == 200
    assert granted.json()["token_type"] == "Bearer"
    assert granted.json()["expires_in"] == 3600
    assert also_granted.status_code == 200
    assert [(r.status_code, r.json()["error"]) for r in refused] == [(400, "invalid_grant")] * 3
    assert fcm.token_requests == 5
    assert fcm.stats()["access_tokens"] == 2


def test_latency_delays_answers_without_serialising_them(
    fcm: FcmServer, app: firebase_admin.App
) -> None:
    fcm.latency = 0.2
    fcm.set_rule("device-slow", TokenRule.slow(0.3))
    messaging.send(push("device-warmup"), app=app)
    started = time.monotonic()

    batch = messaging.send_each([push(f"device-{i}") for i in range(20)], app=app)

    assert batch.success_count == 20
    assert 0.2 <= time.monotonic() - started < 1.0
    # send_each runs one thread per message, so all twenty were at the server at once.
    assert fcm.stats()["max_in_flight"] == 20

    (slow,) = messaging.send_each([push("device-slow")], app=app).responses
    assert slow.success
    (record,) = fcm.messages(token="device-slow")
    assert record.answered_at is not None
    assert record.answered_at - record.received_at >= 0.5


def test_held_requests_are_answered_on_release(fcm: FcmServer, app: firebase_admin.App) -> None:
    fcm.hold()
    batches: list[messaging.BatchResponse] = []
    sender = threading.Thread(
        target=lambda: batches.append(
            messaging.send_each([push("device-1"), push("device-2")], app=app)
        )
    )
    sender.start()

    held = fcm.wait_for_messages(2)
    assert fcm.held == 2
    assert [m.status for m in held] == [None, None]
    assert all(m.held for m in held)
    assert sender.is_alive()

    fcm.release()
    sender.join(timeout=5)

    assert batches[0].success_count == 2
    assert fcm.held == 0
    assert [m.status for m in fcm.messages()] == [200, 200]


def test_a_held_request_whose_client_dies_is_recorded_as_dropped(
    fcm: FcmServer, app: firebase_admin.App
) -> None:
    access_token = app.credential.get_access_token().access_token
    fcm.set_rule("device-1", TokenRule.held())
    body = json.dumps({"message": {"token": "device-1", "data": {"notification_id": "n-7"}}})
    path = fcm.send_url().removeprefix(fcm.base_url)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {fcm.host}:{fcm.port}\r\n"
        f"Authorization: Bearer {access_token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    )

    with socket.create_connection((fcm.host, fcm.port), timeout=5) as worker:
        worker.sendall(request.encode())
        fcm.wait_until(lambda server: server.held == 1)

    fcm.wait_until(lambda server: server.stats()["dropped"] == 1)
    (record,) = fcm.messages(token="device-1")
    assert (record.status, record.dropped) == (None, True)
    assert fcm.counts(answered_only=False)[("device-1", "n-7")] == 1
    assert fcm.counts()[("device-1", "n-7")] == 0


def test_messages_addressed_by_installation_id_are_recorded_alike(
    fcm: FcmServer, app: firebase_admin.App
) -> None:
    fcm.set_rule("installation-gone", TokenRule.unregistered())

    with pytest.raises(messaging.UnregisteredError):
        messaging.send(messaging.Message(fid="installation-gone"), app=app)
    messaging.send(
        messaging.Message(fid="installation-1", data={"notification_id": "n-1"}), app=app
    )

    assert [(m.token, m.status) for m in fcm.messages()] == [
        ("installation-gone", 404),
        ("installation-1", 200),
    ]
    assert fcm.messages()[1].message == {
        "fid": "installation-1",
        "data": {"notification_id": "n-1"},
    }


def test_duplicates_count_pairs_answered_more_than_once(
    fcm: FcmServer, app: firebase_admin.App
) -> None:
    fcm.set_prefix_rule("gone-", TokenRule.unregistered())
    fcm.set_rule("gone-but-back", TokenRule())
    messages = [
        push("device-1", "n-1"),
        push("device-1", "n-1"),
        push("device-1", "n-2"),
        push("device-2", "n-1"),
        push("gone-1", "n-1"),
        push("gone-1", "n-1"),
        push("gone-but-back", "n-1"),
    ]

    batch = messaging.send_each(messages, app=app)

    assert batch.success_count == 5
    assert fcm.counts()[("device-1", "n-1")] == 2
    assert fcm.duplicates() == 1
    assert fcm.duplicates_received() == 2
    assert fcm.stats()["duplicates"] == 1


def test_the_server_runs_as_a_process_with_a_control_api(tmp_path: Path) -> None:
    service_account = tmp_path / "service-account.json"
    process = FcmServerProcess(latency_ms=5, service_account=service_account).start()
    try:
        assert json.loads(service_account.read_text())["token_uri"] == process.token_url
        app = initialise_app(service_account, process)
        try:
            process.set_rules(tokens={"device-gone": TokenRule.unregistered()})
            batch = messaging.send_each([push("device-1"), push("device-gone")], app=app)
        finally:
            firebase_admin.delete_app(app)

        assert batch.success_count == 1
        stats = process.stats()
        assert stats["received"] == 2
        assert stats["answered"] == {"200": 1, "404": 1}
        assert stats["token_requests"] >= 1
        assert stats["duplicates"] == 0
        (record,) = process.messages(token="device-1")
        assert record["message"]["data"]["notification_id"] == "n-1"
        assert process.configure(latency_ms=20, hold=True) == {"latency_ms": 20, "hold": True}
        assert process.release() == {"released": True}
        assert process.reset()["received"] == 0
    finally:
        assert process.stop() == 0
