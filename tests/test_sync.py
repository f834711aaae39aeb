"""Delta sync: `updated_since` on the videos list, the feed and the inbox, its tombstones, and
sync tokens that never miss a change."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from fieldcast import events
from fieldcast.db import Database, utcnow, uuid7
from fieldcast.models.inbox import Notification
from fieldcast.models.sharing import Share, ShareAudience, ShareRecipient
from fieldcast.models.sync import SyncTombstone, TombstoneKind
from fieldcast.models.videos import Video, VideoStatus
from fieldcast.settings import Settings, SettingsError
from fieldcast.sharing import fanout
from fieldcast.sync import changes, tokens, tombstones
from fieldcast.sync.tokens import SyncScope
from tests import factories
from tests.api_support import share_video
from tests.conftest import SECRET_KEY


def _video(session: Session, owner: Any, title: str = "Call recap", **kwargs: Any) -> Video:
    video = Video(
        org_id=owner.org_id, owner_id=owner.id, title=title, status=VideoStatus.READY, **kwargs
    )
    session.add(video)
    session.flush()
    return video


def _get(client: FlaskClient, path: str, headers: dict[str, str], **query: Any) -> Any:
    return client.get(path, query_string=query, headers=headers)


def _ok(client: FlaskClient, path: str, headers: dict[str, str], **query: Any) -> dict[str, Any]:
    response = _get(client, path, headers, **query)
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def _ids(body: dict[str, Any], key: str = "id") -> set[str]:
    return {item[key] for item in body["items"]}


def test_the_videos_list_answers_only_what_changed_since_a_token(
    client: FlaskClient, session: Session, org: Any, auth: Any
) -> None:
    me = factories.UserFactory(org=org)
    headers = auth(me)
    kept, edited, archived = (_video(session, me, t) for t in ("Kept", "Edited", "Archived"))
    listing = _ok(client, "/api/v1/videos", headers)
    assert _ids(listing) == {str(kept.id), str(edited.id), str(archived.id)}
    assert listing["deleted"] == []
    token = listing["sync_token"]

    created = client.post("/api/v1/videos", json={"title": "New one"}, headers=headers)
    assert created.status_code == 201
    patched = client.patch(
        f"/api/v1/videos/{edited.id}", json={"title": "Edited again"}, headers=headers
    )
    assert patched.status_code == 200
    archived.archived_at = utcnow()
    session.flush()

    delta = _ok(client, "/api/v1/videos", headers, updated_since=token)
    assert _ids(delta) == {created.get_json()["id"], str(edited.id)}
    assert {v["title"] for v in delta["items"]} == {"New one", "Edited again"}
    assert delta["deleted"] == [str(archived.id)]
    assert delta["sync_token"] != token

    # Nothing changed since the new token: an empty answer.
    again = _ok(client, "/api/v1/videos", headers, updated_since=delta["sync_token"])
    assert again["items"] == [] and again["deleted"] == []


def test_a_video_that_leaves_a_filtered_listing_is_deleted_for_it(
    client: FlaskClient, session: Session, org: Any, auth: Any
) -> None:
    me = factories.UserFactory(org=org)
    headers = auth(me)
    video = _video(session, me, "Processing now")
    video.status = VideoStatus.PROCESSING
    session.flush()
    token = _ok(client, "/api/v1/videos", headers, status="processing")["sync_token"]
    video.status = VideoStatus.READY
    session.flush()
    delta = _ok(client, "/api/v1/videos", headers, status="processing", updated_since=token)
    assert delta["items"] == [] and delta["deleted"] == [str(video.id)]
    # The unfiltered listing's token is another listing's: refused, not misread.
    refused = _get(client, "/api/v1/videos", headers, updated_since=token)
    assert refused.status_code == 422
    assert refused.get_json()["code"] == "invalid_sync_token"


def test_removed_videos_and_recalled_shares_reach_the_apps_as_deletions(
    client: FlaskClient, session: Session, org: Any, auth: Any
) -> None:
    sender, me = factories.UserFactory(org=org), factories.UserFactory(org=org)
    removed, recalled, twice = (
        _video(session, sender, t) for t in ("Removed", "Recalled", "Twice")
    )
    share_ids: dict[str, str] = {}
    for name, video in (("removed", removed), ("recalled", recalled), ("twice", twice)):
        response = client.post(
            f"/api/v1/videos/{video.id}/shares",
            json={"user_ids": [str(me.id)]},
            headers=auth(sender),
        )
        share_ids[name] = response.get_json()["id"]
    again = client.post(
        f"/api/v1/videos/{twice.id}/shares", json={"user_ids": [str(me.id)]}, headers=auth(sender)
    ).get_json()["id"]
    headers = auth(me)
    videos_token = _ok(client, "/api/v1/videos", headers)["sync_token"]
    feed = _ok(client, "/api/v1/feed", headers)
    assert len(feed["items"]) == 4
    feed_token = feed["sync_token"]

    # The author deletes one video (as the lifecycle does: the row, then the event).
    removed.deleted_at = utcnow()
    session.flush()
    events.publish(
        session, events.VideoRemoved(org_id=org.id, video_id=removed.id, owner_id=sender.id)
    )
    # The sender recalls two shares; the recipients' access ends with them (their audience
    # blocks no longer count), but the second share of `twice` still shows that video.
    for name, video in (("recalled", recalled), ("twice", twice)):
        share_id = uuid.UUID(share_ids[name])
        session.execute(delete(ShareAudience).where(ShareAudience.share_id == share_id))
        share = session.get(Share, share_id)
        assert share is not None
        share.recalled_at = utcnow()
        session.flush()
        events.publish(
            session,
            events.ShareRecalled(
                org_id=org.id, share_id=share_id, video_id=video.id, recipient_ids=(me.id,)
            ),
        )

    delta = _ok(client, "/api/v1/videos", headers, updated_since=videos_token)
    assert set(delta["deleted"]) == {str(removed.id), str(recalled.id)}
    assert str(twice.id) not in delta["deleted"]

    feed_delta = _ok(client, "/api/v1/feed", headers, updated_since=feed_token)
    assert set(feed_delta["deleted"]) == {
        share_ids["removed"],
        share_ids["recalled"],
        share_ids["twice"],
    }
    assert again not in feed_delta["deleted"]
    assert [e["share_id"] for e in _ok(client, "/api/v1/feed", headers)["items"]] == [again]

    # Purged before the app came back: the tombstones still tell it.
    session.delete(removed)
    session.flush()
    feed_delta = _ok(client, "/api/v1/feed", headers, updated_since=feed_token)
    assert share_ids["removed"] in feed_delta["deleted"]


def test_the_feed_delta_carries_my_state_and_the_videos_changes(
    client: FlaskClient, session: Session, org: Any, auth: Any
) -> None:
    sender, me = factories.UserFactory(org=org), factories.UserFactory(org=org)
    quiet, retitled = _video(session, sender, "Quiet"), _video(session, sender, "Old title")
    for video in (quiet, retitled):
        client.post(
            f"/api/v1/videos/{video.id}/shares",
            json={"user_ids": [str(me.id)]},
            headers=auth(sender),
        )
    headers = auth(me)
    token = _ok(client, "/api/v1/feed", headers)["sync_token"]
    client.patch(f"/api/v1/videos/{retitled.id}", json={"title": "New title"}, headers=auth(sender))
    delta = _ok(client, "/api/v1/feed", headers, updated_since=token)
    assert [e["video"]["title"] for e in delta["items"]] == ["New title"]
    assert delta["deleted"] == []


def test_the_inbox_answers_changes_and_deletions(
    client: FlaskClient, session: Session, org: Any, auth: Any
) -> None:
    me = factories.UserFactory(org=org)
    headers = auth(me)

    def item(title: str) -> Notification:
        notification = Notification(
            org_id=org.id, user_id=me.id, type="video.playable", title=title, body="", data={}
        )
        session.add(notification)
        session.flush()
        return notification

    read, deleted, untouched = item("Read"), item("Deleted"), item("Untouched")
    listing = _ok(client, "/api/v1/notifications", headers)
    unread = _ok(client, "/api/v1/notifications", headers, unread_only="true")
    assert listing["unread_count"] == 3

    client.post(f"/api/v1/notifications/{read.id}/read", headers=headers)
    new = item("New")
    session.delete(deleted)  # any path that deletes an item leaves a tombstone
    session.flush()

    delta = _ok(client, "/api/v1/notifications", headers, updated_since=listing["sync_token"])
    assert _ids(delta) == {str(read.id), str(new.id)}
    assert delta["deleted"] == [str(deleted.id)]
    assert delta["unread_count"] == 2
    assert str(untouched.id) not in _ids(delta)

    # In the unread-only listing, an item read since is gone from it.
    delta = _ok(
        client,
        "/api/v1/notifications",
        headers,
        unread_only="true",
        updated_since=unread["sync_token"],
    )
    assert _ids(delta) == {str(new.id)}
    assert set(delta["deleted"]) == {str(read.id), str(deleted.id)}


def test_a_large_delta_comes_a_page_at_a_time_with_one_token(
    client: FlaskClient, session: Session, org: Any, auth: Any
) -> None:
    me = factories.UserFactory(org=org)
    headers = auth(me)
    token = _ok(client, "/api/v1/videos", headers)["sync_token"]
    made = {str(_video(session, me, f"Clip {n}").id) for n in range(5)}
    seen: list[str] = []
    tokens_seen: set[str] = set()
    cursor = None
    while True:
        query: dict[str, Any] = {"limit": 2, "updated_since": token}
        if cursor:
            query["cursor"] = cursor
        page = _ok(client, "/api/v1/videos", headers, **query)
        seen += [v["id"] for v in page["items"]]
        tokens_seen.add(page["sync_token"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 5
    assert len(tokens_seen) == 1  # keep it after the last page
    # A changed cursor is refused.
    first = _ok(client, "/api/v1/videos", headers, limit=2, updated_since=token)
    tampered = first["next_cursor"][:-2] + (
        "AA" if not first["next_cursor"].endswith("AA") else "BB"
    )
    refused = _get(client, "/api/v1/videos", headers, limit=2, cursor=tampered)
    assert refused.status_code == 422 and refused.get_json()["code"] == "invalid_sync_token"


def test_tokens_are_refused_when_forged_foreign_or_too_old(
    client: FlaskClient, session: Session, org: Any, auth: Any, settings: Settings
) -> None:
    me, other = factories.UserFactory(org=org), factories.UserFactory(org=org)
    headers = auth(me)
    mine = _ok(client, "/api/v1/videos", headers)["sync_token"]
    theirs = _ok(client, "/api/v1/videos", auth(other))["sync_token"]
    feed = _ok(client, "/api/v1/feed", headers)["sync_token"]
    for path, token in (
        ("/api/v1/videos", "not-a-token"),
        ("/api/v1/videos", mine[:-3] + "abc"),  # signature changed
        ("/api/v1/videos", theirs),  # another person's
        ("/api/v1/videos", feed),  # another list's
        ("/api/v1/notifications", mine),
    ):
        response = _get(client, path, headers, updated_since=token)
        assert response.status_code == 422, (path, token)
        assert response.get_json()["code"] == "invalid_sync_token"

    # Older than the tombstones are kept: 410, list again.
    point = changes.take(session)
    days = settings.sync_tombstone_days
    old = replace(point, issued_at=point.issued_at - days * 86400 - 60)
    stale = tokens.issue(SECRET_KEY, SyncScope("feed", me.id), old)
    response = _get(client, "/api/v1/feed", headers, updated_since=stale)
    assert response.status_code == 410
    assert response.get_json()["code"] == "sync_token_expired"
    recent = replace(point, issued_at=point.issued_at - days * 86400 + 3600)
    fresh = tokens.issue(SECRET_KEY, SyncScope("feed", me.id), recent)
    assert _get(client, "/api/v1/feed", headers, updated_since=fresh).status_code == 200


def test_more_removals_than_one_answer_carries_ask_for_a_new_listing(
    client: FlaskClient,
    session: Session,
    org: Any,
    auth: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    me = factories.UserFactory(org=org)
    headers = auth(me)
    token = _ok(client, "/api/v1/videos", headers)["sync_token"]
    monkeypatch.setattr(tombstones, "MAX_REMOVALS", 3)
    three = [uuid.uuid4() for _ in range(3)]
    tombstones.bury(session, org.id, TombstoneKind.VIDEO, three, user_ids=[me.id])
    # The admins' removals are not mine either.
    tombstones.bury(session, org.id, TombstoneKind.VIDEO, [uuid.uuid4()], user_ids=None)
    session.flush()
    assert len(_ok(client, "/api/v1/videos", headers, updated_since=token)["deleted"]) == 3
    tombstones.bury(session, org.id, TombstoneKind.VIDEO, [uuid.uuid4()], user_ids=[me.id])
    response = _get(client, "/api/v1/videos", headers, updated_since=token)
    assert response.status_code == 410 and response.get_json()["code"] == "sync_token_expired"
    # Someone else's removals are not mine.
    other = factories.UserFactory(org=org)
    other_token = _ok(client, "/api/v1/videos", auth(other))["sync_token"]
    tombstones.bury(session, org.id, TombstoneKind.VIDEO, [uuid.uuid4()], user_ids=[me.id])
    assert _ok(client, "/api/v1/videos", auth(other), updated_since=other_token)["deleted"] == []


def test_tombstones_older_than_the_setting_are_pruned(
    db: Database, session: Session, org: Any
) -> None:
    old, recent = uuid.uuid4(), uuid.uuid4()
    session.execute(
        insert(SyncTombstone),
        [
            {
                "id": uuid7(),
                "org_id": org.id,
                "kind": "video",
                "object_id": old,
                "created_at": utcnow() - timedelta(days=31),
            },
            {"id": uuid7(), "org_id": org.id, "kind": "video", "object_id": recent},
        ],
    )
    session.commit()
    assert tombstones.prune(db, days=30) == 1
    left = set(session.scalars(select(SyncTombstone.object_id)))
    assert left == {recent}


def test_the_tombstone_days_setting_is_validated() -> None:
    assert Settings.from_env({}).sync_tombstone_days == 30
    assert Settings.from_env({"SYNC_TOMBSTONE_DAYS": "7"}).sync_tombstone_days == 7
    for bad in ("0", "-1", "many"):
        with pytest.raises(SettingsError):
            Settings.from_env({"SYNC_TOMBSTONE_DAYS": bad})


def test_a_change_committed_after_the_token_is_not_missed(committed_db: Database) -> None:
    """A transaction draws its sequence value, another draws a higher one and commits, a
    client syncs, and only then the first commits: its change must still reach the client."""
    with committed_db.session() as s:
        factories.bind(s)
        owner = factories.UserFactory()
        org_id, owner_id = owner.org_id, owner.id
        s.commit()
        factories.bind(None)

    with committed_db.engine.connect() as slow:
        late = slow.begin()
        late_id = uuid7()
        slow.execute(
            insert(Video).values(id=late_id, org_id=org_id, owner_id=owner_id, title="Slow")
        )
        with committed_db.session() as s:
            early = Video(org_id=org_id, owner_id=owner_id, title="Quick")
            s.add(early)
            s.commit()
            early_id = early.id
        with committed_db.session() as s:
            point = changes.take(s)
            seen = set(s.scalars(select(Video.id).where(Video.org_id == org_id)))
        assert seen == {early_id}
        late.commit()

    with committed_db.session() as s:
        late_seq = s.scalar(select(Video.change_seq).where(Video.id == late_id))
        assert late_seq is not None and late_seq <= point.seq  # a sequence alone would miss it
        changed = set(
            s.scalars(
                select(Video.id).where(Video.org_id == org_id, changes.changed_since(point, Video))
            )
        )
    assert late_id in changed
    assert early_id not in changed  # already in the listing


def _make_rows(session: Session, share_id: str) -> None:
    """What the fan-out worker does first: the recipient rows, the audience blocks gone."""
    fanout._fan_out(session, {"share_id": share_id})
    session.flush()
    assert session.scalar(select(ShareRecipient.user_id).where(ShareRecipient.share_id == share_id))


def test_a_deleted_video_is_deleted_only_for_those_who_saw_it(
    client: FlaskClient, session: Session, org: Any, admin: Any, auth: Any
) -> None:
    author, reached, pending, bystander = (factories.UserFactory(org=org) for _ in range(4))
    video = _video(session, author, "Private draft")
    session.commit()
    reached_share = share_video(client, auth(author), video, reached)
    _make_rows(session, reached_share)
    pending_share = share_video(client, auth(author), video, pending)  # its rows not made yet
    people = (author, reached, pending, bystander, admin)
    tokens_of = {
        p.id: (
            _ok(client, "/api/v1/videos", auth(p))["sync_token"],
            _ok(client, "/api/v1/feed", auth(p))["sync_token"],
        )
        for p in people
    }

    assert client.delete(f"/api/v1/videos/{video.id}", headers=auth(author)).status_code == 204

    def deleted(person: Any) -> tuple[list[str], list[str]]:
        videos_token, feed_token = tokens_of[person.id]
        headers = auth(person)
        return (
            _ok(client, "/api/v1/videos", headers, updated_since=videos_token)["deleted"],
            _ok(client, "/api/v1/feed", headers, updated_since=feed_token)["deleted"],
        )

    # Someone who never saw it learns nothing of it, not even its id or its shares' ids.
    assert deleted(bystander) == ([], [])
    assert deleted(author) == ([str(video.id)], [])
    assert deleted(admin) == ([str(video.id)], [])
    assert deleted(reached) == ([str(video.id)], [reached_share])
    assert deleted(pending) == ([str(video.id)], [pending_share])
    # One row for those who saw the video, one for the admins, one per share.
    buried = session.scalars(select(SyncTombstone).where(SyncTombstone.object_id == video.id))
    assert sorted(len(t.user_ids or []) for t in buried) == [0, 3]
    assert (
        session.scalar(
            select(func.count())
            .select_from(SyncTombstone)
            .where(SyncTombstone.kind == TombstoneKind.SHARE.value, SyncTombstone.org_id == org.id)
        )
        == 2
    )


def test_a_video_newly_shared_with_me_reaches_my_videos_delta(
    client: FlaskClient, session: Session, org: Any, auth: Any
) -> None:
    sender, me = factories.UserFactory(org=org), factories.UserFactory(org=org)
    old = _video(session, sender, "Recorded last week")
    session.commit()
    headers = auth(me)
    scopes = ("all_visible", "shared_with_me")
    tokens_of = {}
    for scope in scopes:
        listing = _ok(client, "/api/v1/videos", headers, scope=scope)
        assert listing["items"] == []
        tokens_of[scope] = listing["sync_token"]

    first = share_video(client, auth(sender), old, me)
    for scope in scopes:
        # Shared (its rows not made yet), then again once the worker made them.
        delta = _ok(client, "/api/v1/videos", headers, scope=scope, updated_since=tokens_of[scope])
        assert _ids(delta) == {str(old.id)} and delta["deleted"] == []
    unmade = {s: _ok(client, "/api/v1/videos", headers, scope=s)["sync_token"] for s in scopes}
    _make_rows(session, first)
    for scope in scopes:
        delta = _ok(client, "/api/v1/videos", headers, scope=scope, updated_since=unmade[scope])
        assert _ids(delta) == {str(old.id)} and delta["deleted"] == []
        tokens_of[scope] = delta["sync_token"]

    # Shared a second time, then the first share recalled: still mine through the second.
    second = share_video(client, auth(sender), old, me)
    recalled = client.post(f"/api/v1/shares/{first}/recall", headers=auth(sender))
    assert recalled.status_code == 200
    for scope in scopes:
        delta = _ok(client, "/api/v1/videos", headers, scope=scope, updated_since=tokens_of[scope])
        assert str(old.id) not in delta["deleted"]
        tokens_of[scope] = delta["sync_token"]
    # The last grant recalled: gone from both listings.
    assert client.post(f"/api/v1/shares/{second}/recall", headers=auth(sender)).status_code == 200
    for scope in scopes:
        delta = _ok(client, "/api/v1/videos", headers, scope=scope, updated_since=tokens_of[scope])
        assert delta["items"] == [] and delta["deleted"] == [str(old.id)]
