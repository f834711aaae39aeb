"""Receipts from a push's own token: a Notification Service Extension, with no access token,
marks its push delivered or opened, and nothing else."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fieldcast.context import AppContext, set_current
from fieldcast.db import utcnow
from fieldcast.inbox import receipts
from fieldcast.inbox.services import notify
from fieldcast.inbox.types import NotificationType
from fieldcast.models.inbox import Notification
from fieldcast.models.videos import Video, VideoStatus
from fieldcast.settings import Settings
from notifications.push import LogSink
from tests import factories
from tests.api_support import share_video
from tests.fcm_server import FcmServer
from tests.test_push_fcm import _states, fcm  # noqa: F401 - the fixture
from tests.test_sharing import _device, _video
from tests.worker_support import drain_outbox as drain

URL = "/api/v1/receipts"


def _post(client: FlaskClient, token: str, receipt: str, address: str | None = None) -> Any:
    return client.post(
        URL,
        json={"token": token, "receipt": receipt},
        environ_base={"REMOTE_ADDR": address or f"192.0.2.{uuid.uuid4().int % 250 + 1}"},
    )


def _item(session: Session, user: Any, n: int = 0) -> Notification:
    # About a real video: a push about a video that is gone is withdrawn, not sent.
    video = Video(
        org_id=user.org_id, owner_id=user.id, title=f"Video {n}", status=VideoStatus.PLAYABLE
    )
    session.add(video)
    session.flush()
    nid = notify(
        session,
        org_id=user.org_id,
        user_id=user.id,
        type=NotificationType.VIDEO_PLAYABLE,
        title=f"Video {n} is ready",
        data={"video_id": str(video.id)},
        dedup_key=f"receipt-test:{user.id}:{n}",
    )
    assert nid is not None
    session.flush()
    return session.get(Notification, nid)  # type: ignore[return-value]


def _token(settings: Settings, item: Notification, **kwargs: Any) -> str:
    assert settings.secret_key is not None
    return receipts.issue(
        kwargs.pop("secret", settings.secret_key),
        kwargs.pop("notification_id", item.id),
        kwargs.pop("user_id", item.user_id),
        ttl_s=kwargs.pop("ttl_s", settings.receipt_token_ttl_s),
        now=kwargs.pop("now", utcnow()),
    )


def test_a_push_receipt_token_moves_its_share_recipient_without_a_bearer_token(
    client: FlaskClient,
    session: Session,
    org: Any,
    rep: Any,
    auth: Any,
    context: AppContext,
    settings: Settings,
    fcm: FcmServer,  # noqa: F811 - the fixture
) -> None:
    peer = factories.UserFactory(org=org)
    _device(session, peer, token="peer-phone")
    video = _video(session, rep)
    session.commit()
    share_id = share_video(client, auth(rep), video, peer, message="Great opener")
    drain(context)

    data = next(m for m in fcm.messages() if m.token == "peer-phone").message["data"]
    assert data["receipt_url"] == settings.public_base_url + URL
    token = data["receipt_token"]
    assert _states(client, auth, rep, share_id)[str(peer.id)] == ("sent", None)

    # No Authorization header: the token alone is the credential.
    delivered = _post(client, token, "delivered")
    assert delivered.status_code == 204, delivered.get_json()
    assert _states(client, auth, rep, share_id)[str(peer.id)] == ("delivered", None)
    assert _post(client, token, "opened").status_code == 204
    assert _states(client, auth, rep, share_id)[str(peer.id)] == ("opened", None)
    # Again, or an older receipt after a newer one: nothing moves back.
    assert _post(client, token, "delivered").status_code == 204
    assert _post(client, token, "opened").status_code == 204
    assert _states(client, auth, rep, share_id)[str(peer.id)] == ("opened", None)

    item = client.get("/api/v1/notifications", headers=auth(peer)).get_json()["items"][0]
    assert item["id"] == data["notification_id"]
    assert item["delivered_at"] and item["opened_at"] and item["read_at"]


def test_a_token_marks_only_its_own_notification(
    client: FlaskClient, session: Session, org: Any, rep: Any, settings: Settings
) -> None:
    mine, other = _item(session, rep, 1), _item(session, rep, 2)
    someone = factories.UserFactory(org=org)
    theirs = _item(session, someone, 3)

    assert _post(client, _token(settings, mine), "opened").status_code == 204
    session.expire_all()
    assert mine.opened_at is not None and mine.read_at is not None
    assert other.delivered_at is None and other.read_at is None
    assert theirs.delivered_at is None

    # A genuine token of one user naming another's notification marks nothing.
    crossed = _token(settings, theirs, user_id=rep.id)
    response = _post(client, crossed, "delivered")
    assert response.status_code == 404 and response.get_json()["code"] == "not_found"
    session.expire_all()
    assert theirs.delivered_at is None


def test_an_expired_token_is_refused_with_410(
    client: FlaskClient, session: Session, rep: Any, settings: Settings
) -> None:
    item = _item(session, rep)
    sent = utcnow() - timedelta(seconds=settings.receipt_token_ttl_s + 5)
    response = _post(client, _token(settings, item, now=sent), "delivered")
    assert response.status_code == 410
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "receipt_token_expired"
    session.expire_all()
    assert item.delivered_at is None
    # Until the last second of RECEIPT_TOKEN_TTL_S it still counts.
    almost = utcnow() - timedelta(seconds=settings.receipt_token_ttl_s - 30)
    assert _post(client, _token(settings, item, now=almost), "delivered").status_code == 204


def test_altered_or_foreign_tokens_are_refused_with_403(
    client: FlaskClient, session: Session, rep: Any, settings: Settings
) -> None:
    item = _item(session, rep)
    token = _token(settings, item)
    flipped = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]
    # An expired token stretched to a later expiry is no longer genuine either.
    stretched = _token(settings, item, now=utcnow() - timedelta(days=30))
    stretched = stretched[:44] + token[44:48] + stretched[48:]
    foreign = _token(settings, item, secret="another-deployment-secret-key-0123456789")
    for bad in (flipped, stretched, foreign, token + "A", token[:-2], "not-a-token", "%%%%"):
        response = _post(client, bad, "delivered")
        assert response.status_code == 403, bad
        assert response.get_json()["code"] == "receipt_token_invalid"
    session.expire_all()
    assert item.delivered_at is None
    assert _post(client, token, "shown").status_code == 422


def test_refused_tokens_are_limited_per_address(
    client: FlaskClient, session: Session, rep: Any, settings: Settings, context: AppContext
) -> None:
    item = _item(session, rep)
    address = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
    limiter_keys = context.redis.keys("fieldcast:rl:receipt-address:*")
    try:
        for _ in range(100):
            assert _post(client, "bad-token", "delivered", address).status_code == 403
        limited = _post(client, _token(settings, item), "delivered", address)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
        # Another address is not affected.
        assert _post(client, _token(settings, item), "delivered").status_code == 204
    finally:
        for key in set(context.redis.keys("fieldcast:rl:receipt-address:*")) - set(limiter_keys):
            context.redis.delete(key)


def test_the_local_sink_never_logs_a_receipt_token(
    session: Session, rep: Any, context: AppContext, caplog: pytest.LogCaptureFixture
) -> None:
    from fieldcast.inbox import delivery

    _device(session, rep, token="logged-phone")
    item = _item(session, rep)
    context.push = LogSink()
    set_current(context)
    try:
        with caplog.at_level(logging.INFO, logger="fieldcast.push"):
            delivery.deliver(session, [item.id])
    finally:
        set_current(None)
    records = [r for r in caplog.records if r.name == "fieldcast.push"]
    assert len(records) == 1
    logged: dict[str, Any] = records[0].push  # type: ignore[attr-defined]
    assert logged["data"]["receipt_token"] == "[redacted]"
    assert logged["data"]["receipt_url"].endswith(URL)
    assert session.scalars(select(Notification.id).where(Notification.id == item.id)).one()
