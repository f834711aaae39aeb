"""The inbox as the app shows it: newest first, the unread badge, marking read."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fieldcast.inbox import services
from fieldcast.inbox.services import notify
from fieldcast.inbox.types import NotificationType
from fieldcast.models.inbox import Notification
from tests import factories


def _notify(session: Session, user: Any, n: int) -> None:
    notify(
        session,
        org_id=user.org_id,
        user_id=user.id,
        type=NotificationType.VIDEO_PLAYABLE,
        title=f"Video {n} is ready to watch",
        data={"video_id": f"v{n}"},
        dedup_key=f"test:{user.id}:{n}",
    )
    session.flush()


def test_inbox_newest_first_with_unread_count_and_pages(
    client: FlaskClient, session: Session, rep: Any, auth: Any
) -> None:
    for n in range(5):
        _notify(session, rep, n)
    _notify(session, rep, 4)  # the same event again makes no second item
    headers = auth(rep)
    first = client.get("/api/v1/notifications?limit=3", headers=headers).get_json()
    assert [item["data"]["video_id"] for item in first["items"]] == ["v4", "v3", "v2"]
    assert first["unread_count"] == 5
    assert first["items"][0]["type"] == "video.playable"
    rest = client.get(
        f"/api/v1/notifications?limit=3&cursor={first['next_cursor']}", headers=headers
    ).get_json()
    assert [item["data"]["video_id"] for item in rest["items"]] == ["v1", "v0"]
    assert rest["next_cursor"] is None


def test_marking_read_one_and_all(
    client: FlaskClient, session: Session, org: Any, rep: Any, auth: Any
) -> None:
    for n in range(3):
        _notify(session, rep, n)
    headers = auth(rep)
    items = client.get("/api/v1/notifications", headers=headers).get_json()["items"]
    read = client.post(f"/api/v1/notifications/{items[0]['id']}/read", headers=headers)
    assert read.status_code == 200 and read.get_json()["read_at"] is not None
    again = client.post(f"/api/v1/notifications/{items[0]['id']}/read", headers=headers)
    assert again.get_json()["read_at"] == read.get_json()["read_at"]
    unread = client.get("/api/v1/notifications?unread_only=true", headers=headers).get_json()
    assert unread["unread_count"] == 2 and len(unread["items"]) == 2

    colleague = factories.UserFactory(org=org)
    _notify(session, colleague, 9)
    response = client.post(f"/api/v1/notifications/{items[1]['id']}/read", headers=auth(colleague))
    assert response.status_code == 404
    everything = client.post("/api/v1/notifications/read-all", headers=headers).get_json()
    assert everything == {"marked": 2, "unread_count": 0}
    assert client.get("/api/v1/notifications", headers=headers).get_json()["unread_count"] == 0
    # Someone else's inbox is untouched.
    theirs = client.get("/api/v1/notifications", headers=auth(colleague)).get_json()
    assert theirs["unread_count"] == 1


def test_read_all_counts_what_arrived_after_the_marking(
    client: FlaskClient, session: Session, rep: Any, auth: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The badge `read-all` returns is counted in the database, so an item that lands between
    the marking and the answer is still unread, in the answer and in the inbox."""
    for n in range(2):
        _notify(session, rep, n)
    headers = auth(rep)
    mark_all_read = services.mark_all_read

    def marked_then_one_arrives(request_session: Session, principal: Any) -> int:
        marked = mark_all_read(request_session, principal)
        _notify(session, rep, 7)  # written by another session, as a share fan-out would
        return marked

    monkeypatch.setattr(services, "mark_all_read", marked_then_one_arrives)
    response = client.post("/api/v1/notifications/read-all", headers=headers)
    assert response.status_code == 200
    assert response.get_json() == {"marked": 2, "unread_count": 1}
    inbox = client.get("/api/v1/notifications?unread_only=true", headers=headers).get_json()
    assert inbox["unread_count"] == 1
    assert [item["data"]["video_id"] for item in inbox["items"]] == ["v7"]


def test_an_unregistered_notification_type_is_never_written(session: Session, rep: Any) -> None:
    with pytest.raises(ValueError, match=r"share\.recieved"):
        notify(
            session,
            org_id=rep.org_id,
            user_id=rep.id,
            type="share.recieved",  # type: ignore[arg-type]
            title="A typo in a type",
            dedup_key=f"test:{rep.id}:typo",
        )
    assert session.scalars(select(Notification).where(Notification.user_id == rep.id)).all() == []
