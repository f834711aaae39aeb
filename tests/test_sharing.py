"""Sharing as a manager and the recipients see it: lists, shares, the fan-out and receipts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fieldcast.context import AppContext
from fieldcast.db import utcnow
from fieldcast.models.accounts import Role
from fieldcast.models.devices import Device, Platform
from fieldcast.models.inbox import Notification, PushDelivery
from fieldcast.models.outbox import OutboxJob, OutboxStatus
from fieldcast.models.sharing import ListVisibility, ShareAudience, ShareRecipient
from fieldcast.models.videos import Video, VideoStatus
from fieldcast.sharing import fanout, lists, shares
from tests import factories
from tests.push_support import RecordingSink
from tests.worker_support import drain_outbox as drain

LEASE = timedelta(seconds=60)


def _video(session: Session, owner: Any, status: VideoStatus = VideoStatus.PLAYABLE) -> Video:
    video = Video(org_id=owner.org_id, owner_id=owner.id, title="Discovery call", status=status)
    session.add(video)
    session.flush()
    return video


def _device(session: Session, user: Any, n: int = 0, *, token: str | None = None) -> Device:
    device = Device(
        org_id=user.org_id,
        user_id=user.id,
        token=token or f"token-{user.id}-{n}",
        platform=Platform.IOS,
        last_registered_at=utcnow(),
    )
    session.add(device)
    session.flush()
    return device


def _team(session: Session, org: Any, members: Sequence[Any], **kwargs: Any) -> Any:
    team = factories.TeamFactory(org=org, **kwargs)
    for user in members:
        factories.MembershipFactory(team=team, user=user)
    session.flush()
    return team


# -- distribution lists ---------------------------------------------------------------------------


def test_lists_follow_roles_and_ownership(
    client: FlaskClient, session: Session, org: Any, rep: Any, auth: Any
) -> None:
    manager = factories.UserFactory(org=org, manager=True)
    other_manager = factories.UserFactory(org=org, manager=True)
    admin = factories.UserFactory(org=org, admin=True)
    people = [factories.UserFactory(org=org) for _ in range(3)]
    team = _team(session, org, people[1:])
    session.commit()

    denied = client.post("/api/v1/distribution-lists", json={"name": "x"}, headers=auth(rep))
    assert denied.status_code == 403

    created = client.post(
        "/api/v1/distribution-lists",
        json={"name": "West", "user_ids": [str(people[0].id)], "team_ids": [str(team.id)]},
        headers=auth(manager),
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["visibility"] == "private" and body["recipient_count"] == 3
    url = f"/api/v1/distribution-lists/{body['id']}"

    # A team counts with whoever is in it when read (or shared to), not when the list was made.
    newcomer = factories.UserFactory(org=org)
    factories.MembershipFactory(team=team, user=newcomer)
    session.commit()
    assert client.get(url, headers=auth(manager)).get_json()["recipient_count"] == 4

    # Private: its owner and admins see it; others do not know it exists.
    assert client.get(url, headers=auth(rep)).status_code == 404
    assert client.get(url, headers=auth(admin)).status_code == 200
    shared = client.patch(url, json={"visibility": "organisation"}, headers=auth(manager))
    assert shared.status_code == 200
    assert client.get(url, headers=auth(rep)).status_code == 200
    listed = client.get("/api/v1/distribution-lists", headers=auth(rep)).get_json()["items"]
    assert [item["id"] for item in listed] == [body["id"]]
    # Visible is not editable: only its owner and admins change it.
    assert client.patch(url, json={"name": "Mine"}, headers=auth(other_manager)).status_code == 403
    replaced = client.patch(url, json={"user_ids": [], "team_ids": []}, headers=auth(admin))
    assert replaced.get_json()["recipient_count"] == 0

    bad = client.patch(url, json={"user_ids": [str(uuid.uuid4())]}, headers=auth(manager))
    assert bad.status_code == 422
    assert bad.get_json()["code"] == "validation_failed"
    assert "user_ids" in bad.get_json()["errors"]
    assert client.delete(url, headers=auth(rep)).status_code == 403
    assert client.delete(url, headers=auth(manager)).status_code == 204
    assert client.get(url, headers=auth(manager)).status_code == 404


def test_lists_of_another_organisation_do_not_exist(
    client: FlaskClient, session: Session, org: Any, outsider: Any, auth: Any
) -> None:
    manager = factories.UserFactory(org=org, manager=True)
    dl = lists.create_list(
        session,
        sharing_principal(manager),
        name="All",
        visibility=ListVisibility.ORGANISATION,
    )
    outsider.role = Role.ADMIN
    session.commit()
    url = f"/api/v1/distribution-lists/{dl.id}"
    assert client.get(url, headers=auth(outsider)).status_code == 404
    foreign = client.post(
        "/api/v1/distribution-lists",
        json={"name": "Sneaky", "user_ids": [str(manager.id)]},
        headers=auth(outsider),
    )
    assert foreign.status_code == 422
    assert foreign.get_json()["code"] == "validation_failed"
    assert "user_ids" in foreign.get_json()["errors"]


def sharing_principal(user: Any) -> Any:
    from fieldcast.policy import Principal

    return Principal(user=user)


# -- shares ---------------------------------------------------------------------------------------


def test_a_share_resolves_its_audience_at_once(
    client: FlaskClient,
    session: Session,
    org: Any,
    auth: Any,
    context: AppContext,
    sink: RecordingSink,
) -> None:
    sender = factories.UserFactory(org=org, manager=True)
    alice, bob, carol, dave = (factories.UserFactory(org=org) for _ in range(4))
    gone = factories.UserFactory(org=org, inactive=True)
    parent = _team(session, org, [alice, sender, gone])
    _team(session, org, [bob], parent_id=parent.id)  # a sub-team counts with its parent
    dl = lists.create_list(
        session, sharing_principal(sender), name="Mixed", user_ids=[alice.id, carol.id]
    )
    video = _video(session, sender)
    session.commit()

    response = client.post(
        f"/api/v1/videos/{video.id}/shares",
        json={
            "user_ids": [str(alice.id), str(sender.id)],
            "team_ids": [str(parent.id)],
            "list_ids": [str(dl.id)],
            "message": "Listen to how she handles pricing",
        },
        headers=auth(sender),
    )
    assert response.status_code == 201, response.get_json()
    share = response.get_json()
    # alice (three times), bob (sub-team), carol (list); not the sender, not the inactive.
    assert share["recipient_count"] == 3
    assert share["status"] == "sending"
    assert share["counts"]["queued"] == 3

    # Recipients can see the video from now on; others still cannot.
    assert client.get(f"/api/v1/videos/{video.id}", headers=auth(bob)).status_code == 200
    assert client.get(f"/api/v1/videos/{video.id}", headers=auth(dave)).status_code == 404
    listed = client.get("/api/v1/videos", headers=auth(carol)).get_json()["items"]
    assert [item["id"] for item in listed] == [str(video.id)]

    # Once the worker has made a row per recipient, those give access and the blocks are gone.
    drain(context)
    share_id = uuid.UUID(share["id"])
    assert session.scalar(select(func.count()).where(ShareAudience.share_id == share_id)) == 0
    assert set(
        session.scalars(select(ShareRecipient.user_id).where(ShareRecipient.share_id == share_id))
    ) == {alice.id, bob.id, carol.id}
    assert client.get(f"/api/v1/videos/{video.id}", headers=auth(bob)).status_code == 200
    assert client.get(f"/api/v1/videos/{video.id}", headers=auth(dave)).status_code == 404
    listed = client.get("/api/v1/videos", headers=auth(carol)).get_json()["items"]
    assert [item["id"] for item in listed] == [str(video.id)]


def test_housekeeping_removes_the_blocks_an_earlier_fan_out_left(
    client: FlaskClient,
    session: Session,
    org: Any,
    rep: Any,
    auth: Any,
    context: AppContext,
    sink: RecordingSink,
) -> None:
    peer = factories.UserFactory(org=org)
    video = _video(session, rep)
    session.commit()
    url = f"/api/v1/videos/{video.id}/shares"
    done = uuid.UUID(
        client.post(url, json={"user_ids": [str(peer.id)]}, headers=auth(rep)).get_json()["id"]
    )
    drain(context)
    # What a fan-out of the earlier release leaves: the rows made, the blocks kept.
    session.add(
        ShareAudience(org_id=org.id, share_id=done, block=0, video_id=video.id, user_ids=[peer.id])
    )
    session.commit()
    waiting = uuid.UUID(
        client.post(url, json={"user_ids": [str(peer.id)]}, headers=auth(rep)).get_json()["id"]
    )

    assert fanout.prune_audiences(context.db) == 1
    # The share whose rows are not made yet keeps its blocks.
    assert session.scalars(select(ShareAudience.share_id)).all() == [waiting]
    assert client.get(f"/api/v1/videos/{video.id}", headers=auth(peer)).status_code == 200


def test_share_validation(
    client: FlaskClient, session: Session, org: Any, rep: Any, auth: Any
) -> None:
    peer = factories.UserFactory(org=org)
    video = _video(session, rep)
    draft = _video(session, rep, VideoStatus.AWAITING_UPLOAD)
    session.commit()
    headers = auth(rep)
    url = f"/api/v1/videos/{video.id}/shares"
    empty = client.post(url, json={}, headers=headers)
    assert empty.status_code == 422
    assert empty.get_json()["code"] == "validation_failed", empty.get_json()
    assert "user_ids" in empty.get_json()["errors"], empty.get_json()
    unknown = client.post(url, json={"team_ids": [str(uuid.uuid4())]}, headers=headers)
    assert unknown.status_code == 404 and "team_ids" in unknown.get_json()["errors"]
    too_many = client.post(
        url, json={"user_ids": [str(uuid.uuid4()) for _ in range(1001)]}, headers=headers
    )
    assert too_many.status_code == 422
    assert too_many.get_json()["code"] == "validation_failed", too_many.get_json()
    assert "user_ids" in too_many.get_json()["errors"], too_many.get_json()
    # A draft is shared now; its recipients hear of it once it is playable.
    not_yet = client.post(
        f"/api/v1/videos/{draft.id}/shares", json={"user_ids": [str(peer.id)]}, headers=headers
    )
    assert not_yet.status_code == 201 and not_yet.get_json()["status"] == "waiting_for_video"
    # A video you cannot see cannot be shared (and does not exist for you).
    theirs = _video(session, peer)
    session.commit()
    hidden = client.post(
        f"/api/v1/videos/{theirs.id}/shares", json={"user_ids": [str(peer.id)]}, headers=headers
    )
    assert hidden.status_code == 404


def test_a_share_naming_what_the_sender_may_not_see_is_not_found(
    client: FlaskClient, session: Session, org: Any, other_org: Any, rep: Any, auth: Any
) -> None:
    """People, teams and lists of another organisation, someone else's private list, and ids
    of nothing: each answers 404 like any object the sender cannot see, and shares nothing."""
    peer = factories.UserFactory(org=org)
    manager = factories.UserFactory(org=org, manager=True)
    admin = factories.UserFactory(org=org, admin=True)
    stranger = factories.UserFactory(org=other_org, manager=True)
    their_team = factories.TeamFactory(org=other_org)
    their_list = lists.create_list(
        session,
        sharing_principal(stranger),
        name="Theirs",
        visibility=ListVisibility.ORGANISATION,
        user_ids=[stranger.id],
    )
    private = lists.create_list(
        session, sharing_principal(manager), name="Mine", user_ids=[peer.id]
    )
    video = _video(session, rep)
    session.commit()
    url = f"/api/v1/videos/{video.id}/shares"
    headers = auth(rep)
    refused = {
        "user_ids": [stranger.id, uuid.uuid4()],
        "team_ids": [their_team.id, uuid.uuid4()],
        "list_ids": [their_list.id, private.id, uuid.uuid4()],
    }
    for field, ids in refused.items():
        for refused_id in ids:
            # Named beside someone the sender may share with: the whole share is refused.
            body = {"user_ids": [str(peer.id)], field: [str(refused_id)]}
            if field == "user_ids":
                body = {"user_ids": [str(peer.id), str(refused_id)]}
            response = client.post(url, json=body, headers=headers)
            assert response.status_code == 404, (field, response.get_json())
            problem = response.get_json()
            assert problem["code"] == "not_found"
            assert str(refused_id) in problem["errors"][field][0]
    assert (
        client.get(f"/api/v1/videos/{video.id}/shares", headers=headers).get_json()["items"] == []
    )
    # The list's owner and admins may use the private list.
    for user in (manager, admin):
        own_video = _video(session, user)
        session.commit()
        shared = client.post(
            f"/api/v1/videos/{own_video.id}/shares",
            json={"list_ids": [str(private.id)]},
            headers=auth(user),
        )
        assert shared.status_code == 201, shared.get_json()


def test_fan_out_pushes_each_device_once_and_counts_move(
    client: FlaskClient,
    session: Session,
    org: Any,
    auth: Any,
    context: AppContext,
    sink: RecordingSink,
) -> None:
    boss = factories.UserFactory(org=org, manager=True)
    sender = factories.UserFactory(org=org, manager=True, manager_id=boss.id)
    admin = factories.UserFactory(org=org, admin=True)
    peers = [factories.UserFactory(org=org) for _ in range(5)]
    for i, peer in enumerate(peers[:4]):
        _device(session, peer, 0)
        if i % 2 == 0:
            _device(session, peer, 1)
    team = _team(session, org, peers)
    video = _video(session, sender)
    session.commit()

    share = client.post(
        f"/api/v1/videos/{video.id}/shares",
        json={"team_ids": [str(team.id)]},
        headers=auth(sender),
    ).get_json()
    assert drain(context) >= 2  # the fan-out, then its slice
    # 4 people with 6 devices between them; the fifth has none.
    assert len(sink.sent) == 6
    assert len({(m.notification_id, m.device_id) for m in sink.sent}) == 6
    message = sink.sent[0]
    assert message.type == "share.received"
    assert message.data["share_id"] == share["id"] and message.data["video_id"] == str(video.id)
    assert message.data["notification_id"] == str(message.notification_id)
    assert message.badge == 1

    url = f"/api/v1/shares/{share['id']}"
    counts = client.get(url, headers=auth(sender)).get_json()["counts"]
    assert counts == {
        "queued": 0, "sent": 4, "delivered": 0, "opened": 0, "watched": 0, "failed": 1
    }  # fmt: skip
    failed = client.get(f"{url}/recipients?state=failed", headers=auth(sender)).get_json()
    assert [r["user"]["id"] for r in failed["items"]] == [str(peers[4].id)]
    assert failed["items"][0]["failure_reason"] == "no_devices"

    # Running the work again sends nothing twice.
    with context.db.session() as s:
        s.execute(
            update(OutboxJob)
            .where(OutboxJob.task == fanout.SLICE_TASK)
            .values(status=OutboxStatus.PENDING)
        )
        s.commit()
    drain(context)
    assert len(sink.sent) == 6
    assert session.scalar(select(func.count()).select_from(PushDelivery)) == 6

    # Receipts from the app move a recipient forward, never back.
    reader = peers[0]
    item = session.scalars(select(Notification).where(Notification.user_id == reader.id)).one()
    headers = auth(reader)
    assert (
        client.post(f"/api/v1/notifications/{item.id}/delivered", headers=headers).status_code
        == 200
    )
    opened = client.post(f"/api/v1/notifications/{item.id}/opened", headers=headers).get_json()
    assert opened["read_at"] is not None and opened["opened_at"] is not None
    watched = client.post(f"/api/v1/videos/{video.id}/playback-started", headers=headers)
    assert watched.status_code == 204
    client.post(f"/api/v1/notifications/{item.id}/delivered", headers=headers)
    row = client.get(f"{url}/recipients", headers=auth(sender)).get_json()["items"]
    mine = next(r for r in row if r["user"]["id"] == str(reader.id))
    assert mine["state"] == "watched"
    assert mine["sent_at"] and mine["delivered_at"] and mine["opened_at"] and mine["watched_at"]
    follow = client.get(url, headers=auth(sender)).get_json()
    assert follow["reached"] == {"sent": 4, "delivered": 1, "opened": 1, "watched": 1}

    # Someone else's receipt does nothing to it.
    other = peers[1]
    assert (
        client.post(f"/api/v1/notifications/{item.id}/opened", headers=auth(other)).status_code
        == 404
    )

    # Who follows the share: the sender, their managers up the chain, admins. Not peers: a
    # recipient reads the share as it reached them, never its audience or other recipients.
    assert client.get(url, headers=auth(boss)).status_code == 200
    assert client.get(url, headers=auth(admin)).status_code == 200
    as_recipient = client.get(url, headers=auth(other)).get_json()
    assert as_recipient["counts"] is None and as_recipient["audience"] is None
    assert as_recipient["received"]["sender"]["id"] == str(sender.id)
    assert client.get(f"{url}/recipients", headers=auth(other)).status_code == 404
    by_video = client.get(f"/api/v1/videos/{video.id}/shares", headers=auth(sender)).get_json()
    assert [s["id"] for s in by_video["items"]] == [share["id"]]


def test_a_share_of_a_processing_video_waits_until_it_is_playable(
    client: FlaskClient,
    session: Session,
    org: Any,
    rep: Any,
    auth: Any,
    context: AppContext,
    sink: RecordingSink,
) -> None:
    peer = factories.UserFactory(org=org)
    _device(session, peer)
    video = _video(session, rep, VideoStatus.PROCESSING)
    session.commit()
    share = client.post(
        f"/api/v1/videos/{video.id}/shares", json={"user_ids": [str(peer.id)]}, headers=auth(rep)
    ).get_json()
    assert share["status"] == "waiting_for_video" and share["recipient_count"] == 1
    # The recipient already sees it (processing) but nobody is pushed yet.
    assert client.get(f"/api/v1/videos/{video.id}", headers=auth(peer)).status_code == 200
    drain(context)
    assert sink.sent == []

    video.status = VideoStatus.PLAYABLE
    assert shares.release_waiting_shares(session, video) == 1
    session.commit()
    drain(context)
    assert [m.user_id for m in sink.sent] == [peer.id]
    assert (
        client.get(f"/api/v1/shares/{share['id']}", headers=auth(rep)).get_json()["status"]
        == "sending"
    )


def test_muted_and_quiet_recipients(
    client: FlaskClient,
    session: Session,
    org: Any,
    rep: Any,
    auth: Any,
    context: AppContext,
    sink: RecordingSink,
) -> None:
    from fieldcast.models.inbox import NotificationPreference, VideoMute

    muted_type, muted_video, quiet, awake = (factories.UserFactory(org=org) for _ in range(4))
    for user in (muted_type, muted_video, quiet, awake):
        _device(session, user)
    video = _video(session, rep)
    session.add(
        NotificationPreference(org_id=org.id, user_id=muted_type.id, muted_types=["share.received"])
    )
    session.add(VideoMute(org_id=org.id, user_id=muted_video.id, video_id=video.id))
    # Quiet all day but one minute, ending in about ten: whatever the time now, it is quiet.
    now = utcnow()
    quiet.time_zone = "UTC"
    session.add(
        NotificationPreference(
            org_id=org.id,
            user_id=quiet.id,
            quiet_start=(now + timedelta(minutes=11)).time().replace(second=0, microsecond=0),
            quiet_end=(now + timedelta(minutes=10)).time().replace(second=0, microsecond=0),
        )
    )
    session.commit()
    share = client.post(
        f"/api/v1/videos/{video.id}/shares",
        json={"user_ids": [str(u.id) for u in (muted_type, muted_video, quiet, awake)]},
        headers=auth(rep),
    ).get_json()
    drain(context)
    assert [m.user_id for m in sink.sent] == [awake.id]
    recipients = client.get(
        f"/api/v1/shares/{share['id']}/recipients", headers=auth(rep)
    ).get_json()["items"]
    states = {r["user"]["id"]: (r["state"], r["failure_reason"]) for r in recipients}
    assert states[str(muted_type.id)] == ("failed", "muted")
    assert states[str(muted_video.id)] == ("failed", "muted")
    assert states[str(quiet.id)] == ("queued", None)  # deferred, not dropped
    assert states[str(awake.id)] == ("sent", None)
    # Every recipient has the inbox item, muted or not.
    for user in (muted_type, muted_video, quiet):
        assert session.scalar(select(func.count()).where(Notification.user_id == user.id)) == 1
    deferred = session.scalars(
        select(OutboxJob).where(
            OutboxJob.task == "notifications.push", OutboxJob.status == OutboxStatus.PENDING
        )
    ).one()
    assert now + timedelta(minutes=8) < deferred.run_after < now + timedelta(minutes=11)
