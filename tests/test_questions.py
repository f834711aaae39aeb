"""Asking the peers: a question, its answers (comments and reply videos), votes, acceptance."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from fieldcast import events
from fieldcast.context import AppContext
from fieldcast.models.videos import Video, VideoStatus
from tests import factories
from tests.api_support import share_video
from tests.push_support import RecordingSink
from tests.worker_support import drain_outbox as drain


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_json()
    return response.get_json()


def _playable(session: Session, video_id: str) -> Video:
    video = session.get(Video, video_id)
    assert video is not None
    video.status, video.duration_ms = VideoStatus.PLAYABLE, 30_000
    session.flush()
    return video


def test_a_question_is_answered_voted_and_accepted(
    client: FlaskClient,
    session: Session,
    org: Any,
    auth: Any,
    context: AppContext,
    sink: RecordingSink,
) -> None:
    asker = factories.UserFactory(org=org, display_name="Ana")
    peers = [factories.UserFactory(org=org, display_name=f"Peer {n}") for n in range(3)]
    for user in (asker, *peers):
        factories.DeviceFactory(user=user)
    session.commit()
    mine = auth(asker)
    question = _ok(
        client.post(
            "/api/v1/videos",
            json={
                "title": "Customer wants 30% off, what now?",
                "kind": "question",
                "needed_by": "2030-01-01T09:00:00+00:00",
            },
            headers=mine,
        ),
        201,
    )
    assert question["kind"] == "question" and question["question"]["state"] == "open"
    assert question["needed_by"].startswith("2030-01-01T09:00:00")
    video = _playable(session, question["id"])
    session.commit()
    share_video(client, mine, video, *peers)
    drain(context)
    sink.sent.clear()

    # A comment answer: the asker is told it is an answer.
    first = _ok(
        client.post(
            f"/api/v1/videos/{video.id}/comments",
            json={"body": "Trade the discount for a longer term"},
            headers=auth(peers[0]),
        ),
        201,
    )
    drain(context)
    assert [(m.user_id, m.type) for m in sink.sent] == [(asker.id, "question.answer")]

    # A reply video by a peer the video was never shared back to the asker with: the asker sees it.
    reply = _ok(
        client.post(
            "/api/v1/videos",
            json={"title": "How I did it last quarter", "answers_video_id": str(video.id)},
            headers=auth(peers[1]),
        ),
        201,
    )
    assert reply["answers_video_id"] == str(video.id)
    _ok(client.get(f"/api/v1/videos/{reply['id']}", headers=mine))
    assert client.get(f"/api/v1/videos/{reply['id']}", headers=auth(peers[2])).status_code == 404
    reply_video = _playable(session, reply["id"])
    events.publish(
        session,
        events.VideoBecamePlayable(
            org_id=reply_video.org_id,
            video_id=reply_video.id,
            owner_id=reply_video.owner_id,
            title=reply_video.title,
            source_version=0,
        ),
    )
    session.commit()
    sink.sent.clear()
    drain(context)
    answered = [m for m in sink.sent if m.type == "question.answer"]
    assert [m.user_id for m in answered] == [asker.id]
    assert answered[0].data["video_id"] == reply["id"]

    # Votes: a like on an answer comment, a vote on a reply video (by those who see it).
    share_video(client, auth(peers[1]), reply_video, peers[0], peers[2])
    drain(context)
    for peer in (peers[0], peers[2], peers[2]):
        _ok(client.put(f"/api/v1/videos/{reply['id']}/vote", headers=auth(peer)))
    _ok(client.put(f"/api/v1/comments/{first['id']}/like", headers=auth(peers[2])))
    listing = _ok(client.get(f"/api/v1/videos/{video.id}/answers", headers=mine))
    assert listing["state"] == "open"
    assert [(a["kind"], a["votes"]) for a in listing["items"]] == [("video", 2), ("comment", 1)]
    vote_on_question = client.put(f"/api/v1/videos/{video.id}/vote", headers=auth(peers[0]))
    assert vote_on_question.status_code == 409
    assert vote_on_question.get_json()["code"] == "not_an_answer"

    # Only the asker accepts; the answer's author is told; the accepted answer comes first.
    url = f"/api/v1/videos/{video.id}/accepted-answer"
    body = {"comment_id": first["id"]}
    assert client.put(url, json=body, headers=auth(peers[1])).status_code == 403
    sink.sent.clear()
    accepted = _ok(client.put(url, json=body, headers=mine))
    assert accepted["state"] == "answered" and accepted["accepted_comment_id"] == first["id"]
    drain(context)
    assert [(m.user_id, m.type) for m in sink.sent] == [(peers[0].id, "answer.accepted")]
    listing = _ok(client.get(f"/api/v1/videos/{video.id}/answers", headers=auth(peers[2])))
    assert listing["items"][0]["comment"]["id"] == first["id"] and listing["items"][0]["accepted"]

    # Lists and the feed say open or answered.
    questions = _ok(
        client.get("/api/v1/videos?kind=question&question_state=answered", headers=mine)
    )
    assert [v["id"] for v in questions["items"]] == [str(video.id)]
    assert _ok(client.get("/api/v1/videos?question_state=open", headers=mine))["items"] == []
    feed = _ok(client.get("/api/v1/feed", headers=auth(peers[2])))["items"]
    entry = next(e for e in feed if e["video"]["id"] == str(video.id))
    assert entry["video"]["kind"] == "question"
    assert entry["video"]["question_state"] == "answered"
    reopened = _ok(client.delete(url, headers=mine))
    assert reopened["state"] == "open" and reopened["accepted_comment_id"] is None


def test_what_is_not_a_question_is_refused(
    client: FlaskClient, session: Session, org: Any, auth: Any
) -> None:
    rep = factories.UserFactory(org=org)
    session.commit()
    headers = auth(rep)
    plain = _ok(client.post("/api/v1/videos", json={"title": "A tip"}, headers=headers), 201)
    assert plain["kind"] == "video" and plain["question"] is None
    problem = client.post(
        "/api/v1/videos",
        json={"title": "Answer", "answers_video_id": plain["id"]},
        headers=headers,
    ).get_json()
    assert problem["code"] == "not_a_question"
    problem = client.post(
        "/api/v1/videos",
        json={"title": "x", "needed_by": "2030-01-01T00:00:00+00:00"},
        headers=headers,
    ).get_json()
    assert problem["status"] == 422 and "needed_by" in problem["errors"]
    answers = client.get(f"/api/v1/videos/{plain['id']}/answers", headers=headers)
    assert answers.status_code == 422 and answers.get_json()["code"] == "not_a_question"
