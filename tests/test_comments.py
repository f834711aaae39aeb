"""Conversation at the timeline, as the apps use it: comments, threads, mentions, likes,
reactions, moments, and who is told."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.app import create_app
from fieldcast.context import AppContext
from fieldcast.conversation import notify as conversation_notify
from fieldcast.db import utcnow
from fieldcast.inbox import coalescing
from fieldcast.models.accounts import Organisation
from fieldcast.models.outbox import OutboxJob, OutboxStatus
from fieldcast.models.videos import Video, VideoStatus
from tests import factories
from tests.api_support import share_video
from tests.conftest import bearer
from tests.push_support import RecordingSink
from tests.worker_support import drain_outbox as drain

PROBLEM = "application/problem+json"


def _video(session: Session, owner: Any, *, duration_ms: int | None = 60_000) -> Video:
    video = Video(
        org_id=owner.org_id,
        owner_id=owner.id,
        title="Pricing objection",
        status=VideoStatus.PLAYABLE,
        duration_ms=duration_ms,
    )
    session.add(video)
    session.flush()
    return video


def _team(session: Session, org: Any, members: Sequence[Any], **kwargs: Any) -> Any:
    team = factories.TeamFactory(org=org, **kwargs)
    for user in members:
        factories.MembershipFactory(team=team, user=user)
    session.flush()
    return team


def _post(client: FlaskClient, headers: dict[str, str], video: Any, **body: Any) -> Any:
    return client.post(f"/api/v1/videos/{video.id}/comments", json=body, headers=headers)


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_json()
    return response.get_json()


@pytest.fixture
def people(session: Session, org: Any) -> dict[str, Any]:
    boss = factories.UserFactory(org=org, manager=True, handle="boss")
    author = factories.UserFactory(org=org, handle="ana", display_name="Ana", manager_id=boss.id)
    sam = factories.UserFactory(org=org, handle="sam", display_name="Sam")
    kim = factories.UserFactory(org=org, handle="kim", display_name="Kim")
    stranger = factories.UserFactory(org=org, handle="stranger")
    admin = factories.UserFactory(org=org, admin=True, handle="root")
    for user in (boss, author, sam, kim, stranger, admin):
        factories.DeviceFactory(user=user)  # everyone's phone: a test reads whose pushes went out
    session.flush()
    return {
        "boss": boss,
        "author": author,
        "sam": sam,
        "kim": kim,
        "stranger": stranger,
        "admin": admin,
    }


@pytest.fixture
def shared(
    client: FlaskClient,
    session: Session,
    people: dict[str, Any],
    auth: Any,
    context: AppContext,
    sink: RecordingSink,
) -> Video:
    """Ana's video, shared with Sam and Kim (not with the stranger); the share's pushes are
    sent already."""
    video = _video(session, people["author"])
    session.commit()
    share_video(client, auth(people["author"]), video, people["sam"], people["kim"])
    drain(context)
    sink.sent.clear()
    return video


# -- writing --------------------------------------------------------------------------------------


def test_comments_at_a_point_over_a_range_and_on_the_whole_video(
    client: FlaskClient, shared: Video, people: dict[str, Any], auth: Any
) -> None:
    sam = auth(people["sam"])
    point = _ok(_post(client, sam, shared, body="Nice opener", at_ms=1_200), 201)
    assert point["at_ms"] == 1_200 and point["end_ms"] is None and point["state"] == "visible"
    assert point["author"] == {"id": str(people["sam"].id), "handle": "sam", "display_name": "Sam"}
    ranged = _ok(
        _post(client, sam, shared, body="The pricing part", at_ms=5_000, end_ms=9_000), 201
    )
    assert (ranged["at_ms"], ranged["end_ms"]) == (5_000, 9_000)
    whole = _ok(_post(client, sam, shared, body="Great video overall"), 201)
    assert whole["at_ms"] is None

    listing = _ok(client.get(f"/api/v1/videos/{shared.id}/comments", headers=sam))
    assert [c["body"] for c in listing["items"]] == [
        "Great video overall",
        "Nice opener",
        "The pricing part",
    ]
    newest = _ok(client.get(f"/api/v1/videos/{shared.id}/comments?order=newest", headers=sam))
    assert [c["id"] for c in newest["items"]] == [whole["id"], ranged["id"], point["id"]]


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"body": "x", "at_ms": 60_001}, "comment_time_out_of_range", "at_ms"),
        ({"body": "x", "at_ms": 5_000, "end_ms": 4_000}, "comment_time_out_of_range", "end_ms"),
        ({"body": "x", "at_ms": 5_000, "end_ms": 61_000}, "comment_time_out_of_range", "end_ms"),
        ({"body": "x", "end_ms": 4_000}, "comment_time_out_of_range", "at_ms"),
        ({"body": "x", "at_ms": -1}, "validation_failed", "at_ms"),
        ({"body": "bell \x07 here"}, "invalid_text", "body"),
        ({"body": "evil \u202e override"}, "invalid_text", "body"),
        ({"body": "   \n  "}, "invalid_text", "body"),
        ({"body": "x" * 5001}, "validation_failed", "body"),
        ({"body": "x", "colour": "red"}, "validation_failed", "colour"),
    ],
)
def test_bad_comments_get_a_clear_422(
    client: FlaskClient,
    shared: Video,
    people: dict[str, Any],
    auth: Any,
    body: dict[str, Any],
    code: str,
    field: str,
) -> None:
    response = _post(client, auth(people["sam"]), shared, **body)
    assert response.status_code == 422 and response.mimetype == PROBLEM
    problem = response.get_json()
    assert problem["code"] == code and field in problem["errors"], problem


def test_a_video_without_a_timeline_takes_whole_video_comments_only(
    client: FlaskClient, session: Session, people: dict[str, Any], auth: Any
) -> None:
    video = _video(session, people["author"], duration_ms=None)
    session.commit()
    headers = auth(people["author"])
    problem = _post(client, headers, video, body="here", at_ms=10).get_json()
    assert problem["code"] == "timeline_unavailable"
    _ok(_post(client, headers, video, body="whole"), 201)


def test_invalid_utf8_and_html_are_never_rendered(
    client: FlaskClient, shared: Video, people: dict[str, Any], auth: Any
) -> None:
    headers = {**auth(people["sam"]), "Content-Type": "application/json"}
    response = client.post(
        f"/api/v1/videos/{shared.id}/comments", data=b'{"body": "\xff\xfe"}', headers=headers
    )
    assert response.status_code == 400 and response.mimetype == PROBLEM
    markup = "<script>alert(1)</script> & <b>bold</b>"
    made = _ok(_post(client, auth(people["sam"]), shared, body=markup), 201)
    assert made["body"] == markup  # text, as written: apps show it as text
    response = client.get(f"/api/v1/comments/{made['id']}", headers=auth(people["kim"]))
    assert response.mimetype == "application/json" and response.get_json()["body"] == markup


def test_replies_join_one_level_threads_and_take_their_time(
    client: FlaskClient, shared: Video, people: dict[str, Any], auth: Any
) -> None:
    sam, kim = auth(people["sam"]), auth(people["kim"])
    thread = _ok(_post(client, sam, shared, body="At this point", at_ms=3_000, end_ms=4_000), 201)
    first = _ok(_post(client, kim, shared, body="Agreed", parent_id=thread["id"]), 201)
    assert (first["at_ms"], first["end_ms"], first["parent_id"]) == (3_000, 4_000, thread["id"])
    # A reply to a reply joins the thread.
    second = _ok(_post(client, sam, shared, body="Thanks", parent_id=first["id"]), 201)
    assert second["parent_id"] == thread["id"]
    for n in range(3):
        _ok(_post(client, kim, shared, body=f"more {n}", parent_id=thread["id"]), 201)
    problem = _post(client, sam, shared, body="x", parent_id=thread["id"], at_ms=1).get_json()
    assert problem["code"] == "reply_has_own_time"

    listing = _ok(client.get(f"/api/v1/videos/{shared.id}/comments", headers=sam))
    (item,) = listing["items"]
    assert item["reply_count"] == 5
    assert [r["body"] for r in item["replies"]] == ["Agreed", "Thanks", "more 0"]
    page = _ok(client.get(f"/api/v1/comments/{thread['id']}/replies?limit=4", headers=sam))
    assert len(page["items"]) == 4 and page["next_cursor"]
    rest = _ok(
        client.get(
            f"/api/v1/comments/{thread['id']}/replies?cursor={page['next_cursor']}", headers=sam
        )
    )
    assert [r["body"] for r in rest["items"]] == ["more 2"]


def test_pages_of_threads_by_timeline(
    client: FlaskClient, shared: Video, people: dict[str, Any], auth: Any
) -> None:
    sam = auth(people["sam"])
    for at in (9_000, 1_000, 5_000, 1_000):
        _ok(_post(client, sam, shared, body=f"at {at}", at_ms=at), 201)
    url = f"/api/v1/videos/{shared.id}/comments?limit=3"
    first = _ok(client.get(url, headers=sam))
    assert [c["at_ms"] for c in first["items"]] == [1_000, 1_000, 5_000]
    second = _ok(client.get(f"{url}&cursor={first['next_cursor']}", headers=sam))
    assert [c["at_ms"] for c in second["items"]] == [9_000] and second["next_cursor"] is None


# -- who sees them --------------------------------------------------------------------------------


def test_nobody_who_cannot_see_the_video_learns_its_comments_exist(
    client: FlaskClient,
    shared: Video,
    people: dict[str, Any],
    auth: Any,
    outsider: Any,
) -> None:
    comment = _ok(_post(client, auth(people["sam"]), shared, body="Hi", at_ms=10), 201)
    for user in (people["stranger"], outsider):
        headers = auth(user)
        for response in (
            client.get(f"/api/v1/videos/{shared.id}/comments", headers=headers),
            _post(client, headers, shared, body="let me in"),
            client.get(f"/api/v1/comments/{comment['id']}", headers=headers),
            client.get(f"/api/v1/comments/{comment['id']}/replies", headers=headers),
            client.put(f"/api/v1/comments/{comment['id']}/like", headers=headers),
            client.post(f"/api/v1/comments/{comment['id']}/resolve", headers=headers),
            client.delete(f"/api/v1/comments/{comment['id']}", headers=headers),
            client.get(f"/api/v1/videos/{shared.id}/moments", headers=headers),
            client.get(f"/api/v1/videos/{shared.id}/mentionable?q=s", headers=headers),
        ):
            assert response.status_code == 404, response.get_json()
    # The admin of the organisation sees them.
    _ok(client.get(f"/api/v1/comments/{comment['id']}", headers=auth(people["admin"])))


def test_losing_the_video_takes_its_comments_with_it(
    client: FlaskClient, shared: Video, people: dict[str, Any], auth: Any
) -> None:
    comment = _ok(_post(client, auth(people["sam"]), shared, body="Hi"), 201)
    author = auth(people["author"])
    shares = _ok(client.get(f"/api/v1/videos/{shared.id}/shares", headers=author))["items"]
    _ok(client.post(f"/api/v1/shares/{shares[0]['id']}/recall", headers=author))
    assert (
        client.get(f"/api/v1/comments/{comment['id']}", headers=auth(people["sam"])).status_code
        == 404
    )
    assert client.delete(f"/api/v1/videos/{shared.id}", headers=author).status_code == 204
    assert client.get(f"/api/v1/comments/{comment['id']}", headers=author).status_code == 404


# -- mentions -------------------------------------------------------------------------------------


def test_mentions_are_stored_by_id_and_survive_renames(
    client: FlaskClient, session: Session, shared: Video, people: dict[str, Any], auth: Any
) -> None:
    kim = auth(people["kim"])
    made = _ok(
        _post(client, kim, shared, body="🎯 @Sam this is your deal, cc @nobody", at_ms=1), 201
    )
    assert made["body"] == "🎯 @sam this is your deal, cc @nobody"
    (mention,) = made["mentions"]
    # UTF-16 offsets: the emoji before it counts two units.
    assert mention == {
        "user_id": str(people["sam"].id),
        "team_id": None,
        "handle": "sam",
        "display_name": "Sam",
        "start": 3,
        "end": 7,
    }
    # Sam renames; someone else takes the old handle: the mention still names Sam.
    admin = auth(people["admin"])
    _ok(client.patch(f"/api/v1/users/{people['sam'].id}", json={"handle": "samuel"}, headers=admin))
    _ok(
        client.patch(
            f"/api/v1/users/{people['stranger'].id}", json={"handle": "sam"}, headers=admin
        )
    )
    read = _ok(client.get(f"/api/v1/comments/{made['id']}", headers=kim))
    assert read["body"] == "🎯 @samuel this is your deal, cc @nobody"
    assert read["mentions"][0]["user_id"] == str(people["sam"].id)
    assert (read["mentions"][0]["start"], read["mentions"][0]["end"]) == (3, 10)


def test_handles_are_one_namespace_for_people_and_teams(
    client: FlaskClient, people: dict[str, Any], auth: Any
) -> None:
    admin = auth(people["admin"])
    team = _ok(client.post("/api/v1/teams", json={"name": "Sales West"}, headers=admin), 201)
    assert team["handle"] == "sales-west"
    again = _ok(
        client.post(
            "/api/v1/teams", json={"name": "Sales  West!", "parent_id": team["id"]}, headers=admin
        ),
        201,
    )
    assert again["handle"] == "sales-west-2"
    taken = client.post(
        "/api/v1/teams", json={"name": "Sam's team", "handle": "sam"}, headers=admin
    )
    assert taken.status_code == 409 and taken.get_json()["code"] == "handle_taken"
    person = client.patch(
        f"/api/v1/users/{people['kim'].id}", json={"handle": "sales-west"}, headers=admin
    )
    assert person.status_code == 409 and person.get_json()["code"] == "handle_taken"


def test_a_mention_of_someone_who_cannot_see_the_video_is_refused_or_shared(
    client: FlaskClient,
    session: Session,
    shared: Video,
    people: dict[str, Any],
    auth: Any,
    context: AppContext,
    sink: RecordingSink,
) -> None:
    sam = auth(people["sam"])
    refused = _post(client, sam, shared, body="@stranger look at this", at_ms=5)
    assert refused.status_code == 422
    problem = refused.get_json()
    assert problem["code"] == "mention_without_access"
    assert problem["errors"]["mentions_without_access"][0]["user_id"] == str(people["stranger"].id)
    assert "@stranger" in problem["detail"]
    stranger = auth(people["stranger"])
    assert client.get(f"/api/v1/videos/{shared.id}", headers=stranger).status_code == 404

    made = _ok(
        _post(
            client, sam, shared, body="@stranger look at this", at_ms=5, share_with_mentioned=True
        ),
        201,
    )
    drain(context)
    _ok(client.get(f"/api/v1/videos/{shared.id}", headers=stranger))
    types = {m.type for m in sink.sent if m.user_id == people["stranger"].id}
    assert types == {"share.received", "comment.mention"}
    mention = next(m for m in sink.sent if m.type == "comment.mention")
    assert mention.data["comment_id"] == made["id"] and mention.data["at_ms"] == "5"


def test_a_team_mention_reaches_its_members_who_can_see_it(
    client: FlaskClient,
    session: Session,
    shared: Video,
    people: dict[str, Any],
    auth: Any,
    context: AppContext,
    sink: RecordingSink,
) -> None:
    team = _team(
        session, _org(session, people), [people["kim"], people["stranger"]], handle="sales-west"
    )
    session.commit()
    sam = auth(people["sam"])
    problem = _post(client, sam, shared, body="@sales-west listen").get_json()
    assert problem["code"] == "mention_without_access"
    assert problem["errors"]["mentions_without_access"][0]["team_id"] == str(team.id)
    assert problem["errors"]["mentions_without_access"][0]["people_without_access"] == 1
    made = _ok(
        _post(client, sam, shared, body="@sales-west listen", share_with_mentioned=True), 201
    )
    assert made["mentions"][0]["team_id"] == str(team.id)
    drain(context)
    told = {m.user_id for m in sink.sent if m.type == "comment.mention"}
    assert told == {people["kim"].id, people["stranger"].id}


def _org(session: Session, people: dict[str, Any]) -> Any:
    return session.get(Organisation, people["sam"].org_id)


def test_mentionable_lists_who_can_see_the_video_first(
    client: FlaskClient, session: Session, shared: Video, people: dict[str, Any], auth: Any
) -> None:
    factories.UserFactory(org=_org(session, people), handle="sandra")
    session.commit()
    found = _ok(
        client.get(f"/api/v1/videos/{shared.id}/mentionable?q=@s", headers=auth(people["kim"]))
    )
    handles = [(m["handle"], m["can_see_video"]) for m in found["items"]]
    assert handles[0] == ("sam", True)
    assert ("sandra", False) in handles and ("stranger", False) in handles


# -- who is told ----------------------------------------------------------------------------------


def test_the_people_a_comment_concerns_are_told_once_and_never_the_actor(
    client: FlaskClient,
    session: Session,
    shared: Video,
    people: dict[str, Any],
    auth: Any,
    context: AppContext,
    sink: RecordingSink,
) -> None:
    sam, kim = auth(people["sam"]), auth(people["kim"])
    thread = _ok(_post(client, sam, shared, body="@kim see 0:12", at_ms=12_000), 201)
    drain(context)
    pushed = {(m.user_id, m.type) for m in sink.sent}
    assert pushed == {
        (people["kim"].id, "comment.mention"),
        (people["author"].id, "comment.new"),
    }
    push = next(m for m in sink.sent if m.type == "comment.mention")
    assert push.data["video_id"] == str(shared.id) and push.data["comment_id"] == thread["id"]
    assert push.data["at_ms"] == "12000"
    assert push.data["link"].endswith(f"/videos/{shared.id}?comment={thread['id']}&t=12000"), (
        push.data["link"]
    )
    assert push.body == "@kim see 0:12"

    sink.sent.clear()
    reply = _ok(_post(client, kim, shared, body="On it @sam", parent_id=thread["id"]), 201)
    drain(context)
    kinds = {(m.user_id, m.type) for m in sink.sent}
    assert (people["kim"].id, "comment.reply") not in kinds  # never the actor
    # Sam is told once, as mentioned (the most specific reason), though also in the thread.
    assert [m.type for m in sink.sent if m.user_id == people["sam"].id] == ["comment.mention"]
    inbox = _ok(client.get("/api/v1/notifications", headers=sam))["items"]
    about = {(n["type"], n["data"]["comment_id"]) for n in inbox if "comment_id" in n["data"]}
    assert about == {("comment.mention", reply["id"])}


def test_pushes_about_a_busy_conversation_fold_into_one_summary(
    client: FlaskClient,
    session: Session,
    shared: Video,
    people: dict[str, Any],
    auth: Any,
    context: AppContext,
    sink: RecordingSink,
) -> None:
    _ok(_post(client, auth(people["sam"]), shared, body="First!"), 201)
    drain(context)
    assert [m.type for m in sink.sent] == ["comment.new"]
    for user, text in ((people["kim"], "Second"), (people["sam"], "Third")):
        _ok(_post(client, auth(user), shared, body=text), 201)
    regret = _ok(_post(client, auth(people["kim"]), shared, body="Oops"), 201)
    drain(context)
    assert len(sink.sent) == 1  # folded: no push yet
    items = _ok(client.get("/api/v1/notifications", headers=auth(people["author"])))["items"]
    assert len(items) == 4  # every event keeps its own inbox item
    # A folded comment deleted before the window ends is not in its summary.
    assert (
        client.delete(f"/api/v1/comments/{regret['id']}", headers=auth(people["kim"])).status_code
        == 204
    )

    # While the window lasts, the periodic job leaves it alone; once over, one summary push.
    assert coalescing.send_summaries(context.db, window_s=60) == 0
    later = utcnow() + timedelta(minutes=2)
    assert coalescing.send_summaries(context.db, window_s=60, now=later) == 1
    drain(context)
    assert len(sink.sent) == 2
    summary = sink.sent[1]
    assert summary.title == "2 new comments on “Pricing objection”"
    assert summary.body == "From Sam, Kim."
    assert summary.data["summary_count"] == "2"


def test_pushes_about_a_comment_deleted_before_sending_are_dropped(
    client: FlaskClient,
    session: Session,
    shared: Video,
    people: dict[str, Any],
    auth: Any,
    context: AppContext,
    sink: RecordingSink,
) -> None:
    sam = auth(people["sam"])
    made = _ok(_post(client, sam, shared, body="@kim the price is 40k"), 201)
    # The inbox items are made and their pushes recorded with the comment; then it goes.
    with context.db.session() as s:
        pending = select(OutboxJob.task).where(OutboxJob.status == OutboxStatus.PENDING)
        assert sorted(s.scalars(pending).all()) == ["notifications.push", "search.index"]
    assert client.delete(f"/api/v1/comments/{made['id']}", headers=sam).status_code == 204
    drain(context)
    assert sink.sent == []
    # The items stay, and no longer quote it.
    for user in (people["kim"], people["author"]):
        items = _ok(client.get("/api/v1/notifications", headers=auth(user)))["items"]
        told = [n for n in items if n["data"].get("comment_id") == made["id"]]
        assert len(told) == 1 and told[0]["body"] == "The comment was removed.", told


# -- editing, deleting, resolving, liking ---------------------------------------------------------


def test_edit_is_the_authors_and_tells_only_the_newly_mentioned(
    client: FlaskClient,
    session: Session,
    shared: Video,
    people: dict[str, Any],
    auth: Any,
    context: AppContext,
    sink: RecordingSink,
) -> None:
    author = auth(people["author"])
    made = _ok(_post(client, author, shared, body="@sam thoughts?"), 201)
    drain(context)
    other = client.patch(
        f"/api/v1/comments/{made['id']}", json={"body": "hijack"}, headers=auth(people["sam"])
    )
    assert other.status_code == 403
    edited = _ok(
        client.patch(
            f"/api/v1/comments/{made['id']}",
            json={"body": "@sam and @kim thoughts?"},
            headers=author,
        )
    )
    assert edited["edited_at"] is not None and edited["body"] == "@sam and @kim thoughts?"
    drain(context)
    mentions = [m.user_id for m in sink.sent if m.type == "comment.mention"]
    assert sorted(map(str, mentions)) == sorted([str(people["sam"].id), str(people["kim"].id)])


def test_deleting_leaves_a_tombstone_that_keeps_the_replies(
    client: FlaskClient, shared: Video, people: dict[str, Any], auth: Any
) -> None:
    sam, kim = auth(people["sam"]), auth(people["kim"])
    thread = _ok(_post(client, sam, shared, body="Thread"), 201)
    reply = _ok(_post(client, kim, shared, body="Reply", parent_id=thread["id"]), 201)
    lonely = _ok(_post(client, kim, shared, body="Alone"), 201)
    assert client.delete(f"/api/v1/comments/{thread['id']}", headers=kim).status_code == 403
    assert client.delete(f"/api/v1/comments/{thread['id']}", headers=sam).status_code == 204
    # The video's author may delete anyone's comment on it.
    author = auth(people["author"])
    assert client.delete(f"/api/v1/comments/{lonely['id']}", headers=author).status_code == 204
    listing = _ok(client.get(f"/api/v1/videos/{shared.id}/comments", headers=kim))
    (item,) = listing["items"]
    assert item["id"] == thread["id"] and item["state"] == "deleted" and item["body"] == ""
    assert [r["id"] for r in item["replies"]] == [reply["id"]]
    edit = client.patch(f"/api/v1/comments/{thread['id']}", json={"body": "back"}, headers=sam)
    assert edit.status_code == 409 and edit.get_json()["code"] == "comment_deleted"
    # The last reply gone, the tombstone goes too.
    assert client.delete(f"/api/v1/comments/{reply['id']}", headers=kim).status_code == 204
    assert _ok(client.get(f"/api/v1/videos/{shared.id}/comments", headers=kim))["items"] == []


def test_who_resolves_a_thread(
    client: FlaskClient, session: Session, shared: Video, people: dict[str, Any], auth: Any
) -> None:
    # Ana (the author) reports to the boss; the boss does not see the video until shared.
    share_video(client, auth(people["author"]), shared, people["boss"])
    thread = _ok(_post(client, auth(people["author"]), shared, body="Mine"), 201)
    by_kim = _ok(_post(client, auth(people["kim"]), shared, body="Kim's"), 201)
    url = "/api/v1/comments/{}/{}"
    assert (
        client.post(url.format(thread["id"], "resolve"), headers=auth(people["kim"])).status_code
        == 403
    )
    resolved = _ok(client.post(url.format(thread["id"], "resolve"), headers=auth(people["boss"])))
    assert resolved["resolved_by_id"] == str(people["boss"].id)
    again = _ok(client.post(url.format(thread["id"], "resolve"), headers=auth(people["author"])))
    assert again["resolved_at"] == resolved["resolved_at"]
    _ok(client.post(url.format(thread["id"], "reopen"), headers=auth(people["admin"])))
    # The video's author resolves anyone's thread on it; the boss is not above Kim.
    _ok(client.post(url.format(by_kim["id"], "resolve"), headers=auth(people["author"])))
    assert (
        client.post(url.format(by_kim["id"], "reopen"), headers=auth(people["boss"])).status_code
        == 403
    )
    reply = _ok(_post(client, auth(people["kim"]), shared, body="r", parent_id=by_kim["id"]), 201)
    problem = client.post(url.format(reply["id"], "resolve"), headers=auth(people["kim"]))
    assert problem.status_code == 409 and problem.get_json()["code"] == "not_a_thread"


def test_likes_count_once_per_person(
    client: FlaskClient, shared: Video, people: dict[str, Any], auth: Any
) -> None:
    made = _ok(_post(client, auth(people["sam"]), shared, body="Like me"), 201)
    url = f"/api/v1/comments/{made['id']}/like"
    kim = auth(people["kim"])
    _ok(client.put(url, headers=kim))
    liked = _ok(client.put(url, headers=kim))
    assert liked["like_count"] == 1 and liked["liked_by_me"] is True
    other = _ok(client.put(url, headers=auth(people["author"])))
    assert other["like_count"] == 2
    assert (
        _ok(client.get(f"/api/v1/comments/{made['id']}", headers=auth(people["sam"])))[
            "liked_by_me"
        ]
        is False
    )
    assert _ok(client.delete(url, headers=kim))["like_count"] == 1
    assert _ok(client.delete(url, headers=kim))["like_count"] == 1


# -- sync, caching, limits ------------------------------------------------------------------------


def test_comments_join_delta_sync(
    client: FlaskClient, shared: Video, people: dict[str, Any], auth: Any
) -> None:
    sam, kim = auth(people["sam"]), auth(people["kim"])
    kept = _ok(_post(client, sam, shared, body="kept"), 201)
    gone = _ok(_post(client, sam, shared, body="gone"), 201)
    url = f"/api/v1/videos/{shared.id}/comments"
    token = _ok(client.get(url, headers=kim))["sync_token"]
    _ok(client.put(f"/api/v1/comments/{kept['id']}/like", headers=sam))
    reply = _ok(_post(client, kim, shared, body="new reply", parent_id=kept["id"]), 201)
    assert client.delete(f"/api/v1/comments/{gone['id']}", headers=sam).status_code == 204
    delta = _ok(client.get(url, query_string={"updated_since": token}, headers=kim))
    assert {c["id"] for c in delta["items"]} == {kept["id"], reply["id"]}
    assert delta["deleted"] == [gone["id"]]
    quiet = _ok(client.get(url, query_string={"updated_since": delta["sync_token"]}, headers=kim))
    assert quiet["items"] == [] and quiet["deleted"] == []


def test_an_unchanged_listing_answers_304(
    client: FlaskClient, shared: Video, people: dict[str, Any], auth: Any
) -> None:
    sam = auth(people["sam"])
    _ok(_post(client, sam, shared, body="one"), 201)
    url = f"/api/v1/videos/{shared.id}/comments"
    first = client.get(url, headers=sam)
    etag = first.headers["ETag"]
    assert client.get(url, headers={**sam, "If-None-Match": etag}).status_code == 304
    _ok(_post(client, sam, shared, body="two"), 201)
    assert client.get(url, headers={**sam, "If-None-Match": etag}).status_code == 200
    # A first page with more after it answers 304 too: its signed cursor, which changes with
    # every answer, is not in the tag.
    paged = f"{url}?limit=1"
    first = client.get(paged, headers=sam)
    assert first.get_json()["next_cursor"]
    assert (
        client.get(paged, headers={**sam, "If-None-Match": first.headers["ETag"]}).status_code
        == 304
    )


def test_comments_and_reactions_are_rate_limited_per_person(
    settings: Any, context: AppContext, session: Session, people: dict[str, Any]
) -> None:
    video = _video(session, people["author"])
    session.commit()
    limited = dataclasses.replace(settings, comments_per_minute=2, reactions_per_minute=2)
    context.settings = limited
    app = create_app(limited, context=context)
    client = app.test_client()
    headers = bearer(client, people["author"])
    for n in range(2):
        _ok(_post(client, headers, video, body=f"c{n}"), 201)
        _ok(
            client.post(
                f"/api/v1/videos/{video.id}/reactions",
                json={"emoji": "🔥", "at_ms": n},
                headers=headers,
            ),
            201,
        )
    for response in (
        _post(client, headers, video, body="too many"),
        client.post(
            f"/api/v1/videos/{video.id}/reactions",
            json={"emoji": "🔥", "at_ms": 9},
            headers=headers,
        ),
    ):
        assert response.status_code == 429 and response.get_json()["code"] == "rate_limited"
        assert int(response.headers["Retry-After"]) >= 1
    # Someone else is not held back.
    other = bearer(client, people["admin"])
    _ok(_post(client, other, video, body="mine"), 201)


# -- reactions and moments ------------------------------------------------------------------------


def test_reactions_from_the_fixed_set(
    client: FlaskClient, shared: Video, people: dict[str, Any], auth: Any
) -> None:
    sam = auth(people["sam"])
    emoji = _ok(client.get("/api/v1/reactions", headers=sam))["items"]
    assert {"emoji": "❤️", "name": "heart"} in emoji
    url = f"/api/v1/videos/{shared.id}/reactions"
    made = _ok(client.post(url, json={"emoji": "❤", "at_ms": 1_500}, headers=sam), 201)
    assert made["emoji"] == "❤️" and made["name"] == "heart" and made["mine"] is True
    same = client.post(url, json={"emoji": "heart", "at_ms": 1_500}, headers=sam)
    assert same.status_code == 200 and same.get_json()["id"] == made["id"]
    for bad in ({"emoji": "🦄", "at_ms": 1}, {"emoji": "👍", "at_ms": 60_001}):
        problem = client.post(url, json=bad, headers=sam).get_json()
        assert problem["code"] in {"unknown_emoji", "comment_time_out_of_range"}
        assert problem["status"] == 422
    listing = _ok(client.get(url, headers=auth(people["kim"])))
    assert [(r["id"], r["mine"]) for r in listing["items"]] == [(made["id"], False)]
    # Only your own are yours to take back.
    assert client.delete(f"{url}/{made['id']}", headers=auth(people["kim"])).status_code == 404
    assert client.delete(f"{url}/{made['id']}", headers=sam).status_code == 204
    assert _ok(client.get(url, headers=sam))["items"] == []


def test_moments_count_the_timeline_and_lead_with_the_most_liked(
    client: FlaskClient, shared: Video, people: dict[str, Any], auth: Any
) -> None:
    sam, kim = auth(people["sam"]), auth(people["kim"])
    quiet = _ok(_post(client, sam, shared, body="quiet one", at_ms=30_100), 201)
    loved = _ok(_post(client, kim, shared, body="the moment", at_ms=30_500), 201)
    _ok(client.put(f"/api/v1/comments/{loved['id']}/like", headers=sam))
    _ok(_post(client, sam, shared, body="reply", parent_id=quiet["id"]), 201)
    _ok(_post(client, sam, shared, body="whole video"), 201)
    gone = _ok(_post(client, sam, shared, body="deleted", at_ms=59_999), 201)
    client.delete(f"/api/v1/comments/{gone['id']}", headers=sam)
    for at in (0, 59_999, 60_000):
        _ok(
            client.post(
                f"/api/v1/videos/{shared.id}/reactions",
                json={"emoji": "🔥", "at_ms": at},
                headers=kim,
            ),
            201,
        )

    found = _ok(client.get(f"/api/v1/videos/{shared.id}/moments?buckets=10", headers=kim))
    assert found["duration_ms"] == 60_000 and len(found["buckets"]) == 10
    bucket = found["buckets"][5]
    assert (bucket["start_ms"], bucket["end_ms"]) == (30_000, 36_000)
    assert (bucket["comments"], bucket["replies"], bucket["reactions"]) == (2, 1, 0)
    assert found["buckets"][0]["reactions"] == 1 and found["buckets"][9]["reactions"] == 2
    assert found["buckets"][9]["comments"] == 0  # the deleted comment left the count
    assert sum(b["comments"] for b in found["buckets"]) == 2
    top = found["top"][0]
    assert top["activity"] == 3 and top["comment"]["id"] == loved["id"]
    assert top["comment"]["body"] == "the moment"
    assert found["top"][1]["comment"] is None  # reactions only

    # At the edge of two slices: each comment counts, and leads, in the slice it starts in.
    edge = _ok(_post(client, sam, shared, body="last instant", at_ms=35_999), 201)
    after = _ok(_post(client, sam, shared, body="next slice", at_ms=36_000), 201)
    for comment in (edge, after):
        for peer in (kim, auth(people["author"]), auth(people["admin"])):
            _ok(client.put(f"/api/v1/comments/{comment['id']}/like", headers=peer))
    found = _ok(client.get(f"/api/v1/videos/{shared.id}/moments?buckets=10", headers=kim))
    assert [b["comments"] for b in found["buckets"][5:7]] == [3, 1]
    leads = {(t["start_ms"], t["comment"]["id"]) for t in found["top"] if t["comment"]}
    assert (30_000, edge["id"]) in leads and (36_000, after["id"]) in leads


def test_reading_a_page_takes_a_fixed_number_of_queries(
    client: FlaskClient,
    session: Session,
    shared: Video,
    people: dict[str, Any],
    auth: Any,
    count_queries: Any,
) -> None:
    sam = auth(people["sam"])
    url = f"/api/v1/videos/{shared.id}/comments"

    def grow(n: int) -> int:
        for i in range(n):
            thread = _ok(_post(client, sam, shared, body=f"@kim {i}", at_ms=i), 201)
            _ok(_post(client, sam, shared, body="r", parent_id=thread["id"]), 201)
        before = count_queries.count
        _ok(client.get(url, headers=sam))
        return int(count_queries.count - before)

    assert grow(2) == grow(8)


def test_a_hidden_comments_pushes_stop_but_its_author_is_told_why(
    client: FlaskClient,
    session: Session,
    shared: Video,
    people: dict[str, Any],
    auth: Any,
    context: AppContext,
    sink: RecordingSink,
) -> None:
    made = _ok(_post(client, auth(people["sam"]), shared, body="@kim call the customer now"), 201)
    report = _ok(
        client.post(
            "/api/v1/reports",
            json={"comment_id": made["id"], "reason": "confidential"},
            headers=auth(people["kim"]),
        ),
        201,
    )
    _ok(
        client.post(
            f"/api/v1/reports/{report['id']}/hide",
            json={"reason": "Customer names stay out of comments."},
            headers=auth(people["admin"]),
        )
    )
    drain(context)
    # The mention's push is withdrawn; the moderation notice reaches the author.
    assert [(m.user_id, m.type) for m in sink.sent] == [(people["sam"].id, "content.hidden")]
    assert sink.sent[0].body == "Customer names stay out of comments."
    as_kim = _ok(client.get(f"/api/v1/comments/{made['id']}", headers=auth(people["kim"])))
    assert as_kim["state"] == "hidden" and as_kim["body"] == "" and as_kim["hidden_reason"] is None
    as_author = _ok(client.get(f"/api/v1/comments/{made['id']}", headers=auth(people["sam"])))
    assert as_author["body"] == "@kim call the customer now"
    assert as_author["hidden_reason"] == "Customer names stay out of comments."


def test_a_mention_of_a_big_team_is_told_by_a_worker(
    client: FlaskClient,
    session: Session,
    shared: Video,
    people: dict[str, Any],
    auth: Any,
    context: AppContext,
    sink: RecordingSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(conversation_notify, "INLINE_PEOPLE", 1)
    _team(session, _org(session, people), [people["kim"], people["author"]], handle="closers")
    session.commit()
    made = _ok(_post(client, auth(people["sam"]), shared, body="@closers this one"), 201)
    with context.db.session() as s:
        pending = select(OutboxJob.task).where(OutboxJob.status == OutboxStatus.PENDING)
        assert sorted(s.scalars(pending).all()) == ["conversation.notify", "search.index"]
    drain(context)
    told = {(m.user_id, m.type) for m in sink.sent}
    assert told == {(people["kim"].id, "comment.mention"), (people["author"].id, "comment.mention")}
    assert {m.data["comment_id"] for m in sink.sent} == {made["id"]}


def test_a_summary_whose_newest_comment_went_leaves_the_others_for_the_next(
    client: FlaskClient,
    session: Session,
    shared: Video,
    people: dict[str, Any],
    auth: Any,
    context: AppContext,
    sink: RecordingSink,
) -> None:
    _ok(_post(client, auth(people["sam"]), shared, body="First!"), 201)
    drain(context)
    kept = _ok(_post(client, auth(people["kim"]), shared, body="Second"), 201)
    gone = _ok(_post(client, auth(people["sam"]), shared, body="Third"), 201)
    later = utcnow() + timedelta(minutes=2)
    assert coalescing.send_summaries(context.db, window_s=60, now=later) == 1
    # The summary rides on "Third", deleted before it is sent: nothing goes now...
    assert (
        client.delete(f"/api/v1/comments/{gone['id']}", headers=auth(people["sam"])).status_code
        == 204
    )
    sink.sent.clear()
    drain(context)
    assert sink.sent == []
    # ...and "Second" goes with the next summary, as itself.
    assert coalescing.send_summaries(context.db, window_s=60, now=later + timedelta(minutes=2)) == 1
    drain(context)
    assert [(m.user_id, m.data["comment_id"]) for m in sink.sent] == [
        (people["author"].id, kept["id"])
    ]
