"""Points and badges: each award through the API and the real events, nothing for oneself,
daily caps, once only, switched off, and the boards by period and team, per organisation."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fieldcast import events
from fieldcast.context import AppContext
from fieldcast.db import utcnow
from fieldcast.models.points import PointAward, PointKind, PointTotal
from fieldcast.models.programs import Assignee
from fieldcast.models.videos import Video, VideoKind, VideoStatus
from fieldcast.points import awards
from fieldcast.points.rules import RULES
from tests import factories
from tests.api_support import share_video
from tests.worker_support import drain_outbox as drain

pytestmark = pytest.mark.usefixtures("sink")

MINUTE = 60_000
COMPLETED = RULES[PointKind.VIDEO_COMPLETED].points
ACCEPTED = RULES[PointKind.ANSWER_ACCEPTED].points
LIKED = RULES[PointKind.COMMENT_LIKED].points
ON_TIME = RULES[PointKind.ASSIGNMENT_ON_TIME].points


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_json()
    return response.get_json()


def _video(session: Session, owner: Any, title: str = "Pricing objection", **more: Any) -> Video:
    video = Video(
        org_id=owner.org_id,
        owner_id=owner.id,
        title=title,
        status=VideoStatus.PLAYABLE,
        duration_ms=MINUTE,
        **more,
    )
    session.add(video)
    session.flush()
    return video


def _watch(
    client: FlaskClient, headers: dict[str, str], video: Video, end_ms: int = MINUTE
) -> None:
    view = _ok(client.post(f"/api/v1/videos/{video.id}/views", json={}, headers=headers), 201)
    _ok(
        client.post(
            f"/api/v1/views/{view['id']}/reports",
            json={"seq": 1, "segments": [[0, end_ms]]},
            headers=headers,
        )
    )


def _points(client: FlaskClient, headers: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = _ok(client.get("/api/v1/me/points", headers=headers))
    return body


def _comment(client: FlaskClient, headers: dict[str, str], video: Video, body: str) -> str:
    made = _ok(
        client.post(f"/api/v1/videos/{video.id}/comments", json={"body": body}, headers=headers),
        201,
    )
    comment_id: str = made["id"]
    return comment_id


def _awards(session: Session, user: Any) -> list[PointAward]:
    return list(session.scalars(select(PointAward).where(PointAward.user_id == user.id)))


def test_a_video_completed_by_others_earns_its_author_points_once_per_person(
    client: FlaskClient, session: Session, org: Any, auth: Any
) -> None:
    author = factories.UserFactory(org=org)
    peers = [factories.UserFactory(org=org) for _ in range(2)]
    video = _video(session, author)
    share_video(client, auth(author), video, *peers)
    # The author completing their own video earns nothing; half of it earns nobody anything.
    _watch(client, auth(author), video)
    _watch(client, auth(peers[0]), video, end_ms=MINUTE // 2)
    assert _points(client, auth(author))["totals"]["all"] == 0
    # Completed: points; completed again in another view, or reported again: nothing more.
    _watch(client, auth(peers[0]), video)
    _watch(client, auth(peers[0]), video)
    _watch(client, auth(peers[1]), video)
    mine = _points(client, auth(author))
    assert mine["enabled"] is True
    assert mine["totals"] == dict.fromkeys(("week", "month", "quarter", "all"), 2 * COMPLETED)
    assert mine["by_kind"]["video_completed"] == 2 * COMPLETED
    assert {a.actor_id for a in _awards(session, author)} == {peers[0].id, peers[1].id}
    # Viewers earn nothing for watching.
    assert _points(client, auth(peers[0]))["totals"]["all"] == 0


def test_a_liked_comment_earns_points_once_and_a_like_taken_back_takes_them_back(
    client: FlaskClient, session: Session, org: Any, auth: Any
) -> None:
    author, peer = factories.UserFactory(org=org), factories.UserFactory(org=org)
    video = _video(session, author)
    share_video(client, auth(author), video, peer)
    comment = _comment(client, auth(author), video, "Lead with the ROI slide")
    url = f"/api/v1/comments/{comment}/like"
    # Liking one's own comment earns nothing.
    _ok(client.put(url, headers=auth(author)))
    assert _points(client, auth(author))["totals"]["all"] == 0
    _ok(client.put(url, headers=auth(peer)))
    _ok(client.put(url, headers=auth(peer)))  # again: counts once
    assert _points(client, auth(author))["by_kind"]["comment_liked"] == LIKED
    _ok(client.delete(url, headers=auth(peer)))
    assert _points(client, auth(author))["totals"]["week"] == 0
    _ok(client.put(url, headers=auth(peer)))
    assert _points(client, auth(author))["totals"]["all"] == LIKED
    # One row of the ledger for the like, whatever happened to it.
    [row] = _awards(session, author)
    assert row.kind is PointKind.COMMENT_LIKED and row.revoked_at is None


def test_an_accepted_answer_earns_points_that_follow_the_acceptance_and_a_kept_badge(
    client: FlaskClient, session: Session, org: Any, auth: Any
) -> None:
    asker = factories.UserFactory(org=org)
    ana, ben = factories.UserFactory(org=org), factories.UserFactory(org=org)
    question = _video(session, asker, "Customer wants 30% off?", kind=VideoKind.QUESTION)
    share_video(client, auth(asker), question, ana, ben)
    by_ana = _comment(client, auth(ana), question, "Trade it for a longer term")
    by_ben = _comment(client, auth(ben), question, "Offer a pilot")
    by_asker = _comment(client, auth(asker), question, "Answering myself")
    url = f"/api/v1/videos/{question.id}/accepted-answer"
    # Accepting one's own answer earns nothing.
    _ok(client.put(url, json={"comment_id": by_asker}, headers=auth(asker)))
    assert _points(client, auth(asker))["totals"]["all"] == 0

    _ok(client.put(url, json={"comment_id": by_ana}, headers=auth(asker)))
    mine = _points(client, auth(ana))
    assert mine["by_kind"]["answer_accepted"] == ACCEPTED
    assert [b["name"] for b in mine["badges"]] == ["first_accepted_answer"]
    # Moved to Ben's answer: Ana's points go to Ben; Ana keeps her badge.
    _ok(client.put(url, json={"comment_id": by_ben}, headers=auth(asker)))
    assert _points(client, auth(ana))["totals"]["all"] == 0
    assert _points(client, auth(ben))["totals"]["all"] == ACCEPTED
    badges = _ok(client.get(f"/api/v1/users/{ana.id}/badges", headers=auth(ben)))
    assert badges["enabled"] and [b["name"] for b in badges["items"]] == ["first_accepted_answer"]
    # Withdrawn, then accepted again: counted once.
    _ok(client.delete(url, headers=auth(asker)))
    assert _points(client, auth(ben))["totals"]["all"] == 0
    _ok(client.put(url, json={"comment_id": by_ben}, headers=auth(asker)))
    _ok(client.put(url, json={"comment_id": by_ben}, headers=auth(asker)))
    assert _points(client, auth(ben))["totals"]["all"] == ACCEPTED
    assert len(_awards(session, ben)) == 1


def test_assignments_completed_on_time_earn_points_and_five_in_a_row_a_badge(
    client: FlaskClient, session: Session, context: AppContext, org: Any, auth: Any
) -> None:
    curator = factories.UserFactory(org=org, enablement=True)
    ana = factories.UserFactory(org=org)
    due = (utcnow() + timedelta(days=7)).isoformat()
    videos = [_video(session, curator, f"Lesson {n}") for n in range(7)]
    made = [
        _ok(
            client.post(
                "/api/v1/assignments",
                json={"video_id": str(v.id), "user_ids": [str(ana.id)], "due_at": due},
                headers=auth(curator),
            ),
            201,
        )
        for v in videos[:6]
    ]
    # The curator assigns the last one to themselves: completing it earns them nothing.
    _ok(
        client.post(
            "/api/v1/assignments",
            json={"video_id": str(videos[6].id), "user_ids": [str(curator.id)]},
            headers=auth(curator),
        ),
        201,
    )
    drain(context)
    # The first one is completed late (its due date moved into the past): no points.
    session.execute(
        update(Assignee)
        .where(Assignee.assignment_id == made[0]["id"])
        .values(due_at=utcnow() - timedelta(hours=1))
    )
    session.commit()
    _watch(client, auth(ana), videos[0])
    assert _points(client, auth(ana))["totals"]["all"] == 0
    # (Every statement of a test shares one transaction time: the late one is put earlier.)
    session.execute(
        update(Assignee)
        .where(Assignee.assignment_id == made[0]["id"])
        .values(due_at=utcnow() - timedelta(days=2), completed_at=utcnow() - timedelta(days=1))
    )
    session.commit()
    _watch(client, auth(curator), videos[6])
    assert _points(client, auth(curator))["by_kind"]["assignment_on_time"] == 0
    for n in range(1, 5):
        _watch(client, auth(ana), videos[n])
    mine = _points(client, auth(ana))
    assert mine["by_kind"]["assignment_on_time"] == 4 * ON_TIME
    assert mine["badges"] == []  # four in a row after a late one: no streak yet
    _watch(client, auth(ana), videos[5])
    mine = _points(client, auth(ana))
    assert mine["by_kind"]["assignment_on_time"] == 5 * ON_TIME
    assert [b["name"] for b in mine["badges"]] == ["on_time_streak"]
    # The author of the videos earns for Ana's completions, not for their own.
    assert _points(client, auth(curator))["by_kind"]["video_completed"] == 6 * COMPLETED


def test_daily_caps_stop_points_per_person_and_kind(
    client: FlaskClient, session: Session, org: Any, auth: Any
) -> None:
    rule = RULES[PointKind.COMMENT_LIKED]
    author = factories.UserFactory(org=org)
    peers = [factories.UserFactory(org=org) for _ in range(rule.daily_cap + 1)]
    video = _video(session, author)
    share_video(client, auth(author), video, *peers)
    comment = _comment(client, auth(author), video, "Ask about their renewal date first")
    url = f"/api/v1/comments/{comment}/like"
    for peer in peers[:-1]:
        _ok(client.put(url, headers=auth(peer)))
    assert _points(client, auth(author))["totals"]["all"] == rule.daily_cap * rule.points
    # Past the cap, a like earns nothing; one taken back does not make room under it.
    _ok(client.delete(url, headers=auth(peers[0])))
    _ok(client.put(url, headers=auth(peers[-1])))
    assert _points(client, auth(author))["totals"]["all"] == (rule.daily_cap - 1) * rule.points
    # The cap is per kind: a completion still counts today.
    _watch(client, auth(peers[1]), video)
    assert _points(client, auth(author))["by_kind"]["video_completed"] == COMPLETED
    # Tomorrow's likes count again (the day's awards moved to yesterday).
    session.execute(
        update(PointAward)
        .where(PointAward.user_id == author.id)
        .values(occurred_at=PointAward.occurred_at - timedelta(days=1))
    )
    session.commit()
    _ok(client.delete(url, headers=auth(peers[-1])))
    _ok(client.put(url, headers=auth(peers[-1])))
    live = session.scalar(
        select(func.count())
        .select_from(PointAward)
        .where(
            PointAward.user_id == author.id,
            PointAward.kind == PointKind.COMMENT_LIKED,
            PointAward.revoked_at.is_(None),
        )
    )
    assert live == rule.daily_cap


def test_switched_off_nothing_is_awarded_or_shown_until_switched_on_again(
    client: FlaskClient, session: Session, org: Any, admin: Any, auth: Any
) -> None:
    author, peer = factories.UserFactory(org=org), factories.UserFactory(org=org)
    video = _video(session, author)
    share_video(client, auth(author), video, peer)
    first = _comment(client, auth(author), video, "Mention the case study")
    second = _comment(client, auth(author), video, "And the pilot")
    _ok(client.put(f"/api/v1/comments/{first}/like", headers=auth(peer)))
    assert _points(client, auth(author))["totals"]["all"] == LIKED

    refused = client.put("/api/v1/points/settings", json={"enabled": False}, headers=auth(peer))
    assert refused.status_code == 403 and refused.get_json()["code"] == "permission_denied"
    assert (
        _ok(client.put("/api/v1/points/settings", json={"enabled": False}, headers=auth(admin)))[
            "enabled"
        ]
        is False
    )
    assert _ok(client.get("/api/v1/points/settings", headers=auth(peer))) == {"enabled": False}
    assert _points(client, auth(author)) == {"enabled": False}
    board = _ok(client.get("/api/v1/leaderboards?period=all", headers=auth(peer)))
    assert board["enabled"] is False and board["items"] == [] and board["me"] is None
    badges = _ok(client.get(f"/api/v1/users/{author.id}/badges", headers=auth(peer)))
    assert badges == {"enabled": False, "items": []}
    # Off: a like earns nothing, a like taken back takes nothing back.
    _ok(client.put(f"/api/v1/comments/{second}/like", headers=auth(peer)))
    _ok(client.delete(f"/api/v1/comments/{first}/like", headers=auth(peer)))
    assert len(_awards(session, author)) == 1

    _ok(client.put("/api/v1/points/settings", json={"enabled": True}, headers=auth(admin)))
    assert _points(client, auth(author))["totals"]["all"] == LIKED
    board = _ok(client.get("/api/v1/leaderboards?period=all", headers=auth(peer)))
    assert [(s["user_id"], s["points"]) for s in board["items"]] == [(str(author.id), LIKED)]


def test_boards_rank_by_period_and_team_and_page(
    client: FlaskClient, session: Session, org: Any, auth: Any
) -> None:
    ana, ben, cleo = (
        factories.UserFactory(org=org, display_name=n) for n in ("Ana", "Ben", "Cleo")
    )
    peers = [factories.UserFactory(org=org) for _ in range(3)]
    team = factories.TeamFactory(org=org)
    factories.MembershipFactory(team=team, user=ben)
    factories.MembershipFactory(team=team, user=cleo)
    # Ana: 3 completions; Ben: 2; Cleo: 2 (tied with Ben).
    for author, count in ((ana, 3), (ben, 2), (cleo, 2)):
        video = _video(session, author)
        share_video(client, auth(author), video, *peers)
        for peer in peers[:count]:
            _watch(client, auth(peer), video)
    board = _ok(client.get("/api/v1/leaderboards", headers=auth(ben)))
    assert board["enabled"] and board["period"] == "week" and board["total"] == 3
    assert [(s["display_name"], s["rank"], s["points"]) for s in board["items"]] == [
        ("Ana", 1, 3 * COMPLETED),
        ("Ben", 2, 2 * COMPLETED),
        ("Cleo", 2, 2 * COMPLETED),
    ]
    assert board["me"]["rank"] == 2 and board["me"]["display_name"] == "Ben"
    # Paged: one at a time, the same order.
    seen, cursor = [], None
    while True:
        query: dict[str, Any] = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = _ok(client.get("/api/v1/leaderboards", query_string=query, headers=auth(ana)))
        seen += [s["display_name"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["Ana", "Ben", "Cleo"]
    # A team's board: its members only, ranked among themselves; Ana sees it too.
    team_board = _ok(client.get(f"/api/v1/leaderboards?team_id={team.id}", headers=auth(ana)))
    assert [(s["display_name"], s["rank"]) for s in team_board["items"]] == [
        ("Ben", 1),
        ("Cleo", 1),
    ]
    assert team_board["me"] is None
    # Ana's points were earned last year: gone from this week, month and quarter, kept in all.
    session.execute(
        update(PointAward)
        .where(PointAward.user_id == ana.id)
        .values(occurred_at=PointAward.occurred_at - timedelta(days=400))
    )
    awards.recount(session, org.id)
    session.commit()
    for period in ("week", "month", "quarter"):
        found = _ok(client.get(f"/api/v1/leaderboards?period={period}", headers=auth(ana)))
        assert [s["display_name"] for s in found["items"]] == ["Ben", "Cleo"], period
        assert found["me"] is None
    everything = _ok(client.get("/api/v1/leaderboards?period=all", headers=auth(ana)))
    assert [s["display_name"] for s in everything["items"]] == ["Ana", "Ben", "Cleo"]
    mine = _points(client, auth(ana))
    assert mine["totals"] == {"week": 0, "month": 0, "quarter": 0, "all": 3 * COMPLETED}


def test_the_totals_kept_with_each_award_match_the_ledger(
    client: FlaskClient, session: Session, org: Any, auth: Any
) -> None:
    author, peers = (
        factories.UserFactory(org=org),
        [factories.UserFactory(org=org) for _ in range(3)],
    )
    video = _video(session, author)
    share_video(client, auth(author), video, *peers)
    comment = _comment(client, auth(author), video, "Bring the CFO in early")
    for peer in peers:
        _watch(client, auth(peer), video)
        _ok(client.put(f"/api/v1/comments/{comment}/like", headers=auth(peer)))
    _ok(client.delete(f"/api/v1/comments/{comment}/like", headers=auth(peers[0])))

    def totals() -> list[Any]:
        return sorted(
            session.execute(
                select(
                    PointTotal.user_id, PointTotal.period, PointTotal.starts_on, PointTotal.points
                ).where(PointTotal.org_id == org.id, PointTotal.points != 0)
            ).all()
        )

    kept = totals()
    assert {row.points for row in kept} == {3 * COMPLETED + 2 * LIKED}
    awards.recount(session, org.id)
    assert totals() == kept


def test_another_organisation_sees_nothing_of_the_points(
    client: FlaskClient, session: Session, org: Any, outsider: Any, auth: Any
) -> None:
    author, peer = factories.UserFactory(org=org), factories.UserFactory(org=org)
    team = factories.TeamFactory(org=org)
    video = _video(session, author)
    share_video(client, auth(author), video, peer)
    _watch(client, auth(peer), video)
    theirs = auth(outsider)
    board = _ok(client.get("/api/v1/leaderboards?period=all", headers=theirs))
    assert board["items"] == [] and board["total"] == 0
    assert client.get(f"/api/v1/leaderboards?team_id={team.id}", headers=theirs).status_code == 404
    assert client.get(f"/api/v1/users/{author.id}/badges", headers=theirs).status_code == 404
    # Their switch is theirs: switching off there leaves this organisation's points on.
    _ok(client.put("/api/v1/points/settings", json={"enabled": False}, headers=theirs))
    assert _points(client, auth(author))["totals"]["all"] == COMPLETED


def test_an_event_handled_again_awards_nothing_more(
    client: FlaskClient, session: Session, org: Any, auth: Any
) -> None:
    """A replayed event (a retried job, a handler run twice) finds the ledger's row."""
    author, peer = factories.UserFactory(org=org), factories.UserFactory(org=org)
    video = _video(session, author)
    share_video(client, auth(author), video, peer)
    comment = _comment(client, auth(author), video, "Quote the renewal clause")
    _ok(client.put(f"/api/v1/comments/{comment}/like", headers=auth(peer)))
    _watch(client, auth(peer), video)
    before = _points(client, auth(author))
    assert before["totals"]["all"] == LIKED + COMPLETED
    for _ in range(2):
        events.publish(
            session,
            events.CommentLikeChanged(
                org_id=org.id,
                comment_id=uuid.UUID(comment),
                author_id=author.id,
                user_id=peer.id,
                liked=True,
            ),
        )
        events.publish(
            session, events.VideoCompleted(org_id=org.id, user_id=peer.id, video_id=video.id)
        )
    session.commit()
    assert _points(client, auth(author)) == before
    assert len(_awards(session, author)) == 2
