"""Collections and features: clips of one video as often as wanted, clips made from comments
and moments, moves of a run of items, links that keep a clip's range, publishing that grants
(and unpublishing that takes back) the videos, unavailable items instead of errors."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fieldcast import policy
from fieldcast.db import utcnow
from fieldcast.models.accounts import User
from fieldcast.models.conversation import Comment
from fieldcast.models.videos import Video, VideoStatus
from tests import factories
from tests.conftest import bearer

MINUTE = 60_000


def _video(session: Session, org: Any, owner: Any, title: str = "Acme pricing") -> Video:
    video = Video(
        org_id=org.id,
        owner_id=owner.id,
        title=title,
        status=VideoStatus.PLAYABLE,
        duration_ms=MINUTE,
    )
    session.add(video)
    session.flush()
    return video


@pytest.fixture
def world(session: Session, org: Any) -> dict[str, Any]:
    curator = factories.UserFactory(org=org, enablement=True)
    rep = factories.UserFactory(org=org)
    newcomer = factories.UserFactory(org=org)
    outsider = factories.UserFactory(org=org)
    parent = factories.TeamFactory(org=org)
    child = factories.TeamFactory(org=org, parent_id=parent.id)
    factories.MembershipFactory(team=child, user=newcomer)
    session.flush()
    return {
        "curator": curator,
        "rep": rep,
        "newcomer": newcomer,
        "outsider": outsider,
        "parent": parent,
        "video": _video(session, org, curator),
        "other": _video(session, org, curator, "Discovery call"),
    }


def _create(client: FlaskClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/collections", json={"title": "Acme", **body}, headers=headers)
    assert response.status_code == 201, response.get_json()
    found: dict[str, Any] = response.get_json()
    return found


def _add(client: FlaskClient, headers: dict[str, str], cid: str, *items: Any, **kw: Any) -> Any:
    return client.post(
        f"/api/v1/collections/{cid}/items", json={"items": list(items), **kw}, headers=headers
    )


def _order(client: FlaskClient, headers: dict[str, str], cid: str) -> list[str]:
    got = client.get(f"/api/v1/collections/{cid}", headers=headers).get_json()
    return [item["id"] for item in got["items"]]


def test_clips_of_one_video_comments_and_moments_make_items_whose_links_keep_their_range(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    curator = bearer(client, world["curator"])
    video = world["video"]
    comment = Comment(
        org_id=video.org_id,
        video_id=video.id,
        author_id=world["curator"].id,
        body="This is the price objection",
        at_ms=12_000,
        end_ms=24_000,
    )
    point = Comment(
        org_id=video.org_id,
        video_id=video.id,
        author_id=world["curator"].id,
        body="Here",
        at_ms=58_000,
    )
    session.add_all([comment, point])
    session.flush()
    cid = _create(client, curator)["id"]
    added = _add(
        client,
        curator,
        cid,
        {"video_id": str(video.id), "start_ms": 0, "end_ms": 10_000, "note": "Opening"},
        {"video_id": str(video.id), "start_ms": 30_000, "end_ms": 40_000},
        {"comment_id": str(comment.id)},
        {"comment_id": str(point.id)},
        {"video_id": str(video.id), "at_ms": 2_000},
        {"video_id": str(world["other"].id)},
    )
    assert added.status_code == 201, added.get_json()
    items = added.get_json()["items"]
    ranges = [(i["start_ms"], i["end_ms"]) for i in items]
    # Two clips of one video; a comment's range; a point comment's moment (cut at the end of
    # the video); a moment near the start (not before 0); a whole video.
    assert ranges == [
        (0, 10_000),
        (30_000, 40_000),
        (12_000, 24_000),
        (53_000, MINUTE),
        (0, 30_000),
        (None, None),
    ]
    assert items[2]["comment_id"] == str(comment.id) and items[0]["note"] == "Opening"
    query = parse_qs(urlsplit(items[1]["link"]).query)
    assert query == {"t": ["30000"], "end": ["40000"]}
    assert "t=" not in items[5]["link"]
    # A clip that does not fit its video is refused, naming why.
    bad = _add(client, curator, cid, {"video_id": str(video.id), "start_ms": 0, "end_ms": 61_000})
    assert bad.status_code == 422 and bad.get_json()["code"] == "clip_out_of_range"
    bad = _add(client, curator, cid, {"video_id": str(video.id), "start_ms": 9, "end_ms": 9})
    assert bad.status_code == 422


def test_a_run_of_items_moves_in_one_call_and_adds_go_where_asked(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    curator = bearer(client, world["curator"])
    cid = _create(client, curator)["id"]
    vid = str(world["video"].id)
    items = _add(
        client,
        curator,
        cid,
        *({"video_id": vid, "start_ms": n * 1000, "end_ms": n * 1000 + 500} for n in range(6)),
    ).get_json()["items"]
    a, b, c, d, e, f = (item["id"] for item in items)
    moved = client.post(
        f"/api/v1/collections/{cid}/items/move",
        json={"item_ids": [e, b], "after_item_id": a},
        headers=curator,
    )
    assert moved.status_code == 200, moved.get_json()
    assert [i["id"] for i in moved.get_json()["items"]] == [a, e, b, c, d, f]
    assert [i["position"] for i in moved.get_json()["items"]] == [0, 1, 2, 3, 4, 5]
    to_start = client.post(
        f"/api/v1/collections/{cid}/items/move",
        json={"item_ids": [f], "after_item_id": None},
        headers=curator,
    )
    assert [i["id"] for i in to_start.get_json()["items"]] == [f, a, e, b, c, d]
    # An item of another collection, or the anchor among those moved, is refused.
    other = _create(client, curator)["id"]
    foreign = _add(client, curator, other, {"video_id": vid}).get_json()["items"][0]["id"]
    refused = client.post(
        f"/api/v1/collections/{cid}/items/move",
        json={"item_ids": [foreign], "after_item_id": None},
        headers=curator,
    )
    assert refused.status_code == 422 and refused.get_json()["code"] == "not_in_collection"
    # Added after an item, and at the start.
    g = _add(client, curator, cid, {"video_id": vid}, after_item_id=e).get_json()["items"][0]
    h = _add(client, curator, cid, {"video_id": vid}, at_start=True).get_json()["items"][0]
    assert _order(client, curator, cid) == [h["id"], f, a, e, g["id"], b, c, d]
    removed = client.delete(f"/api/v1/collections/{cid}/items/{a}", headers=curator)
    assert removed.status_code == 204
    got = client.get(f"/api/v1/collections/{cid}", headers=curator).get_json()
    assert [i["position"] for i in got["items"]] == list(range(7))
    patched = client.patch(
        f"/api/v1/collections/{cid}/items/{e}",
        json={"note": "Watch the pause", "start_ms": None, "end_ms": None},
        headers=curator,
    ).get_json()
    assert patched["note"] == "Watch the pause" and patched["start_ms"] is None


def test_publishing_grants_the_videos_to_its_audience_and_unpublishing_takes_them_back(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    curator = bearer(client, world["curator"])
    newcomer = bearer(client, world["newcomer"])
    outsider = bearer(client, world["outsider"])
    video = world["video"]
    made = _create(client, curator, visibility="teams", team_ids=[str(world["parent"].id)])
    cid = made["id"]
    _add(client, curator, cid, {"video_id": str(video.id), "start_ms": 0, "end_ms": 9_000})
    # Not yet published: nobody else sees it or its video.
    for headers in (newcomer, outsider):
        assert client.get(f"/api/v1/collections/{cid}", headers=headers).status_code == 404
        assert client.get(f"/api/v1/videos/{video.id}", headers=headers).status_code == 404
    published = client.post(f"/api/v1/collections/{cid}/publish", headers=curator)
    assert published.status_code == 200 and published.get_json()["published_at"]
    # The newcomer is in a sub-team of the collection's team: they see both; others do not.
    got = client.get(f"/api/v1/collections/{cid}", headers=newcomer)
    assert got.status_code == 200 and got.get_json()["items"][0]["available"]
    assert not got.get_json()["can_edit"]
    assert client.get(f"/api/v1/videos/{video.id}", headers=newcomer).status_code == 200
    assert client.get(f"/api/v1/videos/{video.id}", headers=outsider).status_code == 404
    listed = client.get("/api/v1/collections", headers=newcomer).get_json()["items"]
    assert [c["id"] for c in listed] == [cid]
    # The audience may read, not edit.
    assert (
        client.patch(f"/api/v1/collections/{cid}", json={"title": "x"}, headers=newcomer)
    ).status_code == 403
    viewers = policy.videos.viewers_among(
        session,
        video,
        select(User.id).where(User.org_id == video.org_id),
    )
    assert world["newcomer"].id in viewers and world["outsider"].id not in viewers
    unpublished = client.post(f"/api/v1/collections/{cid}/unpublish", headers=curator)
    assert unpublished.status_code == 200
    assert client.get(f"/api/v1/videos/{video.id}", headers=newcomer).status_code == 404
    assert client.get(f"/api/v1/collections/{cid}", headers=newcomer).status_code == 404
    # For the organisation: everyone.
    client.patch(f"/api/v1/collections/{cid}", json={"visibility": "organisation"}, headers=curator)
    client.post(f"/api/v1/collections/{cid}/publish", headers=curator)
    assert client.get(f"/api/v1/videos/{video.id}", headers=outsider).status_code == 200
    # A private collection is not published.
    private = _create(client, curator)["id"]
    refused = client.post(f"/api/v1/collections/{private}/publish", headers=curator)
    assert refused.status_code == 409 and refused.get_json()["code"] == "not_publishable"
    # Deleting it takes the grant away too.
    assert client.delete(f"/api/v1/collections/{cid}", headers=curator).status_code == 204
    assert client.get(f"/api/v1/videos/{video.id}", headers=outsider).status_code == 404


def test_who_curates_and_who_edits(client: FlaskClient, world: dict[str, Any]) -> None:
    rep = bearer(client, world["rep"])
    curator = bearer(client, world["curator"])
    refused = client.post("/api/v1/collections", json={"title": "Mine"}, headers=rep)
    assert refused.status_code == 403
    cid = _create(client, curator, editor_ids=[str(world["rep"].id)])["id"]
    # An editor the owner added changes items and the title, but not who edits.
    # (Only videos they see themselves: the curator's own is not found for them.)
    assert _add(client, rep, cid, {"video_id": str(world["video"].id)}).status_code == 404
    renamed = client.patch(f"/api/v1/collections/{cid}", json={"title": "Ours"}, headers=rep)
    assert renamed.status_code == 200 and renamed.get_json()["can_edit"]
    editors = client.patch(f"/api/v1/collections/{cid}", json={"editor_ids": []}, headers=rep)
    assert editors.status_code == 403
    assert client.delete(f"/api/v1/collections/{cid}", headers=rep).status_code == 403


def test_removed_and_unseen_videos_are_unavailable_items_not_errors(
    client: FlaskClient, session: Session, world: dict[str, Any], org: Any
) -> None:
    newcomer = bearer(client, world["newcomer"])
    # A video the curator sees, by someone else, which the newcomer does not see otherwise.
    hidden_later = _video(session, org, world["rep"], "Later hidden")
    mine = world["video"]
    admin = factories.UserFactory(org=org, admin=True)
    cid = _create(client, bearer(client, admin), visibility="organisation")["id"]
    admin_h = bearer(client, admin)
    _add(client, admin_h, cid, {"video_id": str(mine.id)}, {"video_id": str(hidden_later.id)})
    client.post(f"/api/v1/collections/{cid}/publish", headers=admin_h)
    mine.deleted_at = utcnow()
    hidden_later.hidden_at = utcnow()
    session.flush()
    got = client.get(f"/api/v1/collections/{cid}", headers=newcomer)
    assert got.status_code == 200
    items = got.get_json()["items"]
    assert [i["available"] for i in items] == [False, False]
    assert all(i["video"] is None and i["link"] is None for i in items)
    # The admin sees the hidden one (not the deleted one).
    by_admin = client.get(f"/api/v1/collections/{cid}", headers=admin_h).get_json()["items"]
    assert [i["available"] for i in by_admin] == [False, True]


def test_featured_for_the_organisation_and_a_team_shows_what_is_unavailable(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    curator = bearer(client, world["curator"])
    newcomer = bearer(client, world["newcomer"])
    rep = bearer(client, world["rep"])
    video = world["video"]
    cid = _create(client, curator, visibility="organisation")["id"]
    _add(client, curator, cid, {"video_id": str(video.id)})
    client.post(f"/api/v1/collections/{cid}/publish", headers=curator)
    team_clip = client.post(
        "/api/v1/featured",
        json={
            "team_id": str(world["parent"].id),
            "video_id": str(video.id),
            "start_ms": 1_000,
            "end_ms": 5_000,
            "note": "The best 4 seconds",
        },
        headers=curator,
    )
    assert team_clip.status_code == 201, team_clip.get_json()
    org_wide = client.post("/api/v1/featured", json={"collection_id": cid}, headers=curator)
    assert org_wide.status_code == 201
    assert (
        client.post("/api/v1/featured", json={"collection_id": cid}, headers=rep).status_code == 403
    )
    # The newcomer (a sub-team of the team) sees both; the rep only the organisation's.
    mine = client.get("/api/v1/featured", headers=newcomer).get_json()["items"]
    assert {bool(i["clip"]) for i in mine} == {True, False} and len(mine) == 2
    clip = next(i["clip"] for i in mine if i["clip"])
    assert clip["available"] and (clip["start_ms"], clip["end_ms"]) == (1_000, 5_000)
    theirs = client.get("/api/v1/featured", headers=rep).get_json()["items"]
    assert len(theirs) == 1 and theirs[0]["collection"]["available"]
    # The collection unpublished: still featured, shown as unavailable to the rep.
    client.post(f"/api/v1/collections/{cid}/unpublish", headers=curator)
    theirs = client.get("/api/v1/featured", headers=rep).get_json()["items"]
    assert theirs[0]["collection"] == {
        "available": False,
        "id": None,
        "title": None,
        "item_count": None,
    }
    gone = client.delete(f"/api/v1/featured/{org_wide.get_json()['id']}", headers=curator)
    assert gone.status_code == 204
    assert client.get("/api/v1/featured", headers=rep).get_json()["items"] == []


def test_publishing_vouches_for_every_video_and_inputs_are_checked(
    client: FlaskClient, session: Session, world: dict[str, Any], org: Any
) -> None:
    curator = bearer(client, world["curator"])
    rep = bearer(client, world["rep"])
    # An editor adds their own video, which the owner does not see: the owner cannot publish
    # the collection for the organisation (that would show it to everyone), the editor can.
    theirs = _video(session, org, world["rep"], "The rep's own")
    cid = _create(client, curator, visibility="organisation", editor_ids=[str(world["rep"].id)])[
        "id"
    ]
    added = _add(client, rep, cid, {"video_id": str(theirs.id)}).get_json()["items"][0]
    refused = client.post(f"/api/v1/collections/{cid}/publish", headers=curator)
    assert refused.status_code == 409 and refused.get_json()["errors"]["item_ids"] == [added["id"]]
    assert client.post(f"/api/v1/collections/{cid}/publish", headers=rep).status_code == 200
    # A deleted video does not stop an edit of the published collection.
    theirs.deleted_at = utcnow()
    session.flush()
    renamed = client.patch(f"/api/v1/collections/{cid}", json={"title": "New"}, headers=curator)
    assert renamed.status_code == 200
    vid = str(world["video"].id)
    for bad in (
        {"items": [{"video_id": vid}], "after_item_id": str(world["video"].id)},
        {"items": [{"video_id": vid}], "after_item_id": added["id"], "at_start": True},
        {"items": [{"video_id": vid, "at_ms": 1000, "start_ms": 0, "end_ms": 5000}]},
    ):
        response = client.post(f"/api/v1/collections/{cid}/items", json=bad, headers=curator)
        assert response.status_code == 422, (bad, response.get_json())
