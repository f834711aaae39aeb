"""Assignments: fan-out to people with an inbox item and a push, access to what is assigned,
progress and completion from real playback at the assignment's threshold, overdue, reminders
and the managers' digest, requests with their reasons, and rules by team, role and schedule."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fieldcast.context import AppContext
from fieldcast.db import utcnow
from fieldcast.models.curation import (
    Collection,
    CollectionItem,
    CollectionTeam,
    CollectionVisibility,
)
from fieldcast.models.inbox import Notification
from fieldcast.models.outbox import OutboxJob, OutboxStatus
from fieldcast.models.programs import Assignee, Assignment, AssignmentRule
from fieldcast.models.videos import Video, VideoStatus
from fieldcast.outbox.names import TaskName
from fieldcast.programs import reminders, rules
from notifications.email import Email
from tests import factories
from tests.conftest import bearer
from tests.push_support import RecordingSink
from tests.worker_support import drain_outbox as drain

pytestmark = pytest.mark.usefixtures("sink")

MINUTE = 60_000


class RecordingEmail:
    def __init__(self) -> None:
        self.sent: list[Email] = []

    def send(self, message: Email) -> None:
        self.sent.append(message)


def _video(session: Session, org: Any, owner: Any, title: str) -> Video:
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
    manager = factories.UserFactory(org=org, manager=True)
    curator = factories.UserFactory(org=org, enablement=True)
    ana = factories.UserFactory(org=org, manager_id=manager.id)
    ben = factories.UserFactory(org=org, manager_id=manager.id)
    peer = factories.UserFactory(org=org)
    team = factories.TeamFactory(org=org)
    factories.MembershipFactory(team=team, user=ana)
    factories.MembershipFactory(team=team, user=ben)
    first = _video(session, org, curator, "Acme: the opener")
    second = _video(session, org, curator, "Acme: pricing")
    collection = Collection(org_id=org.id, owner_id=curator.id, title="Handling Acme")
    session.add(collection)
    session.flush()
    session.add_all(
        [
            CollectionItem(
                org_id=org.id, collection_id=collection.id, position=0, video_id=first.id
            ),
            # A 20-second clip of the second video.
            CollectionItem(
                org_id=org.id,
                collection_id=collection.id,
                position=1,
                video_id=second.id,
                start_ms=10_000,
                end_ms=30_000,
            ),
        ]
    )
    session.flush()
    return {
        "manager": manager,
        "curator": curator,
        "ana": ana,
        "ben": ben,
        "peer": peer,
        "team": team,
        "first": first,
        "second": second,
        "collection": collection,
    }


def _assign(client: FlaskClient, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/assignments", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    made: dict[str, Any] = response.get_json()
    return made


def _play(client: FlaskClient, headers: dict[str, str], video: Video, *segments: Any) -> None:
    view = client.post(f"/api/v1/videos/{video.id}/views", json={}, headers=headers)
    assert view.status_code == 201, view.get_json()
    report = client.post(
        f"/api/v1/views/{view.get_json()['id']}/reports",
        json={"seq": 1, "segments": [list(s) for s in segments]},
        headers=headers,
    )
    assert report.status_code == 200, report.get_json()


def _learning(client: FlaskClient, headers: dict[str, str], state: str = "open") -> list[Any]:
    response = client.get(f"/api/v1/me/learning?state={state}", headers=headers)
    assert response.status_code == 200, response.get_json()
    items: list[Any] = response.get_json()["items"]
    return items


def test_a_collection_assigned_to_a_team_reaches_each_person_grants_its_videos_and_completes(
    client: FlaskClient,
    session: Session,
    context: AppContext,
    sink: RecordingSink,
    world: dict[str, Any],
) -> None:
    curator, ana = bearer(client, world["curator"]), bearer(client, world["ana"])
    peer = bearer(client, world["peer"])
    factories.DeviceFactory(user=world["ana"])
    due = (utcnow() + timedelta(days=7)).isoformat()
    made = _assign(
        client,
        curator,
        collection_id=str(world["collection"].id),
        team_ids=[str(world["team"].id)],
        due_at=due,
        threshold_pct=75,
        message="Before your first Acme call",
    )
    assert made["person_count"] == 2 and made["collection"]["title"] == "Handling Acme"
    # The people are reached by the workers: then each has their row, an item and a push.
    assert _learning(client, ana) == []
    drain(context)
    items = _learning(client, ana)
    assert len(items) == 1
    item = items[0]
    assert item["state"] == "not_started" and not item["overdue"] and item["progress"] == 0
    assert item["threshold_pct"] == 75 and item["total_ms"] == MINUTE + 20_000
    assert item["collection"]["item_count"] == 2 and item["notified_at"]
    inbox = session.scalars(
        select(Notification).where(
            Notification.user_id == world["ana"].id, Notification.type == "assignment.received"
        )
    ).all()
    assert len(inbox) == 1 and inbox[0].body == "Before your first Acme call"
    assert [m.data["assignment_id"] for m in sink.sent] == [made["id"]]
    # The assignment lets them see the (private) collection and its videos; not the peer.
    assert client.get(f"/api/v1/videos/{world['second'].id}", headers=ana).status_code == 200
    collection = client.get(f"/api/v1/collections/{world['collection'].id}", headers=ana)
    assert collection.status_code == 200
    assert client.get(f"/api/v1/videos/{world['second'].id}", headers=peer).status_code == 404
    # Playing outside the clip does not count; inside it does.
    _play(client, ana, world["second"], (0, 10_000), (40_000, 60_000))
    assert _learning(client, ana)[0]["played_ms"] == 0
    _play(client, ana, world["second"], (10_000, 30_000))
    item = _learning(client, ana)[0]
    assert item["state"] == "in_progress" and item["played_ms"] == 20_000 and item["started_at"]
    # 20 + 45 of 80 seconds is 81 %: past the assignment's 75 % (the organisation's is 90 %).
    _play(client, ana, world["first"], (0, 45_000))
    assert _learning(client, ana) == []
    done = _learning(client, ana, "completed")[0]
    assert done["state"] == "completed" and done["completed_at"] and done["progress"] == 0.8125
    summary = client.get(f"/api/v1/assignments/{made['id']}", headers=curator).get_json()
    assert summary["counts"]["completed"] == 1 and summary["counts"]["not_started"] == 1
    assert summary["published_at"]
    people = client.get(
        f"/api/v1/assignments/{made['id']}/people?state=completed", headers=curator
    ).get_json()["items"]
    assert [p["user_id"] for p in people] == [str(world["ana"].id)]
    # Others do not find the assignment.
    assert client.get(f"/api/v1/assignments/{made['id']}", headers=ana).status_code == 404


def test_progress_made_before_the_assignment_counts_and_withdrawing_takes_access_back(
    client: FlaskClient, session: Session, context: AppContext, world: dict[str, Any]
) -> None:
    curator, ana = bearer(client, world["curator"]), bearer(client, world["ana"])
    first = world["first"]
    made = _assign(client, curator, video_id=str(first.id), user_ids=[str(world["ana"].id)])
    drain(context)
    _play(client, ana, first, (0, 60_000))
    # A second assignment of the same video, made after she watched it: completed at once.
    again = _assign(client, curator, video_id=str(first.id), user_ids=[str(world["ana"].id)])
    drain(context)
    states = {i["assignment_id"]: i["state"] for i in _learning(client, ana, "all")}
    assert states == {made["id"]: "completed", again["id"]: "completed"}
    # A clip assignment: its range only.
    clip = _assign(
        client,
        curator,
        video_id=str(world["second"].id),
        start_ms=0,
        end_ms=10_000,
        user_ids=[str(world["ana"].id)],
    )
    drain(context)
    item = next(i for i in _learning(client, ana) if i["assignment_id"] == clip["id"])
    assert item["total_ms"] == 10_000 and item["clip"]["end_ms"] == 10_000
    assert "end=10000" in item["clip"]["link"]
    # A video hidden by an admin (or deleted) is unavailable in the list, never an error.
    world["second"].hidden_at = utcnow()
    session.flush()
    item = next(i for i in _learning(client, ana) if i["assignment_id"] == clip["id"])
    assert item["clip"] == {
        "available": False,
        "video": None,
        "start_ms": 0,
        "end_ms": 10_000,
        "link": None,
    }
    world["second"].hidden_at = None
    session.flush()
    withdrawn = client.post(f"/api/v1/assignments/{clip['id']}/withdraw", headers=curator)
    assert withdrawn.status_code == 200 and withdrawn.get_json()["withdrawn_at"]
    assert client.get(f"/api/v1/videos/{world['second'].id}", headers=ana).status_code == 404
    assert all(i["assignment_id"] != clip["id"] for i in _learning(client, ana, "all"))


def test_overdue_reminders_and_the_managers_weekly_digest(
    client: FlaskClient, session: Session, context: AppContext, world: dict[str, Any]
) -> None:
    curator, ana = bearer(client, world["curator"]), bearer(client, world["ana"])
    emails = RecordingEmail()
    context.email = emails
    soon = _assign(
        client,
        curator,
        video_id=str(world["first"].id),
        user_ids=[str(world["ana"].id), str(world["ben"].id)],
        due_at=(utcnow() + timedelta(hours=5)).isoformat(),
    )
    drain(context)
    assert reminders.remind(context.db) == {"due": 2, "overdue": 0}
    assert reminders.remind(context.db) == {"due": 0, "overdue": 0}
    due_items = session.scalars(
        select(Notification.title).where(Notification.type == "assignment.due")
    ).all()
    assert len(due_items) == 2 and "Acme: the opener" in due_items[0]
    # Past the due date: overdue, reminded once; a completed person is not reminded.
    session.execute(
        update(Assignee)
        .where(Assignee.assignment_id == soon["id"])
        .values(due_at=utcnow() - timedelta(days=2))
    )
    session.flush()
    _play(client, bearer(client, world["ben"]), world["first"], (0, MINUTE))
    assert reminders.remind(context.db) == {"due": 0, "overdue": 1}
    assert [i["overdue"] for i in _learning(client, ana, "overdue")] == [True]
    # The manager's people: ana's overdue item; and her learning, which a peer may not read.
    manager = bearer(client, world["manager"])
    team = client.get("/api/v1/me/team-learning", headers=manager).get_json()["items"]
    assert [(i["user_id"], i["overdue"]) for i in team] == [(str(world["ana"].id), True)]
    url = f"/api/v1/users/{world['ana'].id}/learning?state=all"
    assert len(client.get(url, headers=manager).get_json()["items"]) == 1
    assert client.get(url, headers=bearer(client, world["peer"])).status_code == 403
    # The weekly digest: one inbox item and one email to the manager, once a week.
    assert reminders.digest(context.db) == {"managers": 1}
    assert reminders.digest(context.db) == {"managers": 0}
    drain(context)
    assert len(emails.sent) == 1
    assert emails.sent[0].to == world["manager"].email
    assert world["ana"].display_name in emails.sent[0].text
    assert world["ben"].display_name not in emails.sent[0].text


def test_declining_and_asking_for_more_time_keep_their_reasons(
    client: FlaskClient, session: Session, context: AppContext, world: dict[str, Any], org: Any
) -> None:
    curator, ana = bearer(client, world["curator"]), bearer(client, world["ana"])
    ben = bearer(client, world["ben"])
    due = utcnow() + timedelta(days=2)
    made = _assign(
        client,
        curator,
        video_id=str(world["first"].id),
        team_ids=[str(world["team"].id)],
        due_at=due.isoformat(),
    )
    drain(context)
    url = f"/api/v1/assignments/{made['id']}/requests"
    vague = client.post(url, json={"kind": "decline", "reason": "other"}, headers=ana)
    assert vague.status_code == 422
    declined = client.post(
        url, json={"kind": "decline", "reason": "already_know", "text": "I ran Acme"}, headers=ana
    )
    assert declined.status_code == 201, declined.get_json()
    later = (due + timedelta(days=5)).isoformat()
    asked = client.post(
        url,
        json={"kind": "more_time", "reason": "no_time", "wanted_due_at": later},
        headers=ben,
    )
    assert asked.status_code == 201
    # Someone not assigned cannot ask.
    peer = bearer(client, world["peer"])
    assert (
        client.post(url, json={"kind": "decline", "reason": "no_time"}, headers=peer).status_code
        == 404
    )
    listed = client.get(url, headers=curator).get_json()["items"]
    assert {r["reason"] for r in listed} == {"already_know", "no_time"}
    # The assigner is told of each, in their inbox and on their phone, with the person's words.
    asking = session.scalars(
        select(Notification)
        .where(Notification.type == "assignment.requested")
        .order_by(Notification.created_at)
    ).all()
    assert {n.user_id for n in asking} == {world["curator"].id}
    assert {(n.data["kind"], n.data["reason"]) for n in asking} == {
        ("decline", "already_know"),
        ("more_time", "no_time"),
    }
    assert "I ran Acme" in {n.body for n in asking}
    summary = client.get(f"/api/v1/assignments/{made['id']}", headers=curator).get_json()
    assert summary["reasons"]["decline"]["already_know"] == 1
    assert summary["reasons"]["more_time"]["no_time"] == 1
    # Their manager answers: the decline excuses ana; ben's due date moves.
    manager = bearer(client, world["manager"])
    answer = f"/api/v1/assignment-requests/{declined.get_json()['id']}/decision"
    assert client.post(answer, json={"granted": True}, headers=manager).status_code == 200
    assert client.post(answer, json={"granted": True}, headers=manager).status_code == 409
    more = f"/api/v1/assignment-requests/{asked.get_json()['id']}/decision"
    # (A peer may not answer.)
    assert client.post(more, json={"granted": True}, headers=peer).status_code == 404
    assert (
        client.post(more, json={"granted": True, "note": "OK"}, headers=manager).status_code == 200
    )
    assert _learning(client, ana, "excused")[0]["excused_at"]
    mine = _learning(client, ben)[0]
    assert mine["due_at"][:10] == later[:10]
    told = session.scalars(
        select(Notification).where(Notification.type == "assignment.answered")
    ).all()
    assert {n.user_id for n in told} == {world["ana"].id, world["ben"].id}
    # The organisation's report of reasons (admins).
    admin = factories.UserFactory(org=org, admin=True)
    report = client.get("/api/v1/learning/reasons", headers=bearer(client, admin)).get_json()
    assert report["by_kind"]["decline"]["already_know"] == 1
    assert client.get("/api/v1/learning/reasons", headers=curator).status_code == 403
    # An assigner whose account is no longer active is told nothing.
    world["curator"].is_active = False
    session.flush()
    again = (due + timedelta(days=30)).isoformat()
    asked_again = client.post(
        url, json={"kind": "more_time", "reason": "no_time", "wanted_due_at": again}, headers=ben
    )
    assert asked_again.status_code == 201, asked_again.get_json()
    told_assigner = select(func.count()).where(Notification.type == "assignment.requested")
    assert session.scalar(told_assigner) == 2


def test_rules_assign_on_joining_a_team_taking_a_role_and_every_round(
    client: FlaskClient, session: Session, context: AppContext, world: dict[str, Any], org: Any
) -> None:
    curator = bearer(client, world["curator"])
    admin = bearer(client, factories.UserFactory(org=org, admin=True))
    newcomer = factories.UserFactory(org=org)
    sub_team = factories.TeamFactory(org=org, parent_id=world["team"].id)
    session.flush()
    team_rule = client.post(
        "/api/v1/assignment-rules",
        json={
            "name": "Acme for the team",
            "team_id": str(world["team"].id),
            "collection_id": str(world["collection"].id),
            "due_days": 7,
        },
        headers=curator,
    )
    assert team_rule.status_code == 201, team_rule.get_json()
    # Joining a sub-team of the rule's team: assigned, due a week later.
    joined = client.put(f"/api/v1/teams/{sub_team.id}/members/{newcomer.id}", headers=admin)
    assert joined.status_code == 200, joined.get_json()
    drain(context)
    mine = _learning(client, bearer(client, newcomer))
    assert len(mine) == 1 and mine[0]["collection"]["title"] == "Handling Acme"
    # Joining again (another team under it) does not assign twice.
    other_sub = factories.TeamFactory(org=org, parent_id=world["team"].id)
    session.flush()
    client.put(f"/api/v1/teams/{other_sub.id}/members/{newcomer.id}", headers=admin)
    drain(context)
    assert len(_learning(client, bearer(client, newcomer))) == 1
    # Taking a role.
    role_rule = client.post(
        "/api/v1/assignment-rules",
        json={"name": "Managers' basics", "role": "manager", "video_id": str(world["first"].id)},
        headers=curator,
    )
    assert role_rule.status_code == 201
    promoted = client.patch(
        f"/api/v1/users/{world['peer'].id}", json={"role": "manager"}, headers=admin
    )
    assert promoted.status_code == 200, promoted.get_json()
    drain(context)
    got = _learning(client, bearer(client, world["peer"]))
    assert [i["clip"]["video"]["title"] for i in got] == ["Acme: the opener"]
    # A refresher for every rep, every six months: each round an assignment of its own.
    recurring = client.post(
        "/api/v1/assignment-rules",
        json={
            "name": "Pricing refresher",
            "role": "rep",
            "video_id": str(world["second"].id),
            "every_months": 6,
        },
        headers=curator,
    )
    assert recurring.status_code == 201
    rule_id = recurring.get_json()["id"]
    assert rules.run_rounds(context.db) == 1
    assert rules.run_rounds(context.db) == 0
    later = utcnow() + timedelta(days=190)
    assert rules.run_rounds(context.db, now=later) == 1
    rounds = session.execute(
        select(Assignment.round, Assignment.person_count).where(Assignment.rule_id == rule_id)
    ).all()
    assert sorted(r.round for r in rounds) == [1, 2]
    assert all(r.person_count >= 3 for r in rounds)  # ana, ben, newcomer at least
    after = client.get(f"/api/v1/assignment-rules/{rule_id}", headers=curator).get_json()
    assert after["rounds"] == 2 and after["next_round_at"] > later.isoformat()[:10]
    # Reps may not make rules.
    refused = client.post(
        "/api/v1/assignment-rules",
        json={"name": "x", "role": "rep", "video_id": str(world["first"].id)},
        headers=bearer(client, world["ana"]),
    )
    assert refused.status_code == 403


def test_add_months_keeps_the_day_or_takes_the_months_last() -> None:
    start = utcnow().replace(year=2026, month=8, day=31)
    assert rules.add_months(start, 6).date().isoformat() == "2027-02-28"
    assert rules.add_months(start, 12).date().isoformat() == "2027-08-31"


def test_a_collection_is_assigned_by_who_may_change_it_and_a_deleted_one_grants_nothing(
    client: FlaskClient, session: Session, context: AppContext, world: dict[str, Any], org: Any
) -> None:
    curator, ana = bearer(client, world["curator"]), bearer(client, world["ana"])
    collection = world["collection"]
    # Published for a team the manager is in: they see it, but assigning it to others would
    # widen who sees it (and all it will hold): refused; its owner may.
    collection.visibility = CollectionVisibility.TEAMS
    collection.published_at = utcnow()
    session.add(
        CollectionTeam(org_id=org.id, collection_id=collection.id, team_id=world["team"].id)
    )
    factories.MembershipFactory(team=world["team"], user=world["manager"])
    session.flush()
    manager = bearer(client, world["manager"])
    body = {"collection_id": str(collection.id), "user_ids": [str(world["peer"].id)]}
    refused = client.post("/api/v1/assignments", json=body, headers=manager)
    assert refused.status_code == 403, refused.get_json()
    _assign(client, curator, collection_id=str(collection.id), user_ids=[str(world["peer"].id)])
    drain(context)
    peer = bearer(client, world["peer"])
    assert client.get(f"/api/v1/videos/{world['first'].id}", headers=peer).status_code == 200
    assert _learning(client, peer)[0]["collection"]["available"] is True
    # Deleted, the collection takes back what its assignment granted.
    assert client.delete(f"/api/v1/collections/{collection.id}", headers=curator).status_code == 204
    assert client.get(f"/api/v1/videos/{world['first'].id}", headers=peer).status_code == 404
    # Their learning still lists the assignment, its collection unavailable.
    assert _learning(client, peer, "all")[0]["collection"] == {
        "available": False,
        "id": None,
        "title": None,
        "item_count": None,
    }
    # (and what its publication for the team granted)
    assert client.get(f"/api/v1/videos/{world['first'].id}", headers=ana).status_code == 404


def test_one_waiting_request_of_a_kind_and_managers_find_their_peoples_requests(
    client: FlaskClient, context: AppContext, world: dict[str, Any]
) -> None:
    curator, ana = bearer(client, world["curator"]), bearer(client, world["ana"])
    made = _assign(
        client, curator, video_id=str(world["first"].id), user_ids=[str(world["ana"].id)]
    )
    drain(context)
    url = f"/api/v1/assignments/{made['id']}/requests"
    first = client.post(url, json={"kind": "decline", "reason": "no_time"}, headers=ana)
    assert first.status_code == 201
    again = client.post(url, json={"kind": "decline", "reason": "no_time"}, headers=ana)
    assert again.status_code == 409 and again.get_json()["code"] == "request_pending"
    manager = bearer(client, world["manager"])
    waiting = client.get("/api/v1/assignment-requests", headers=manager).get_json()["items"]
    assert [r["id"] for r in waiting] == [first.get_json()["id"]]
    peer = bearer(client, world["peer"])
    assert client.get("/api/v1/assignment-requests", headers=peer).get_json()["items"] == []
    mine = client.get("/api/v1/assignment-requests", headers=ana).get_json()["items"]
    assert [r["id"] for r in mine] == [first.get_json()["id"]]


def test_a_rule_is_changed_by_who_made_it_and_its_rounds_keep_their_day(
    client: FlaskClient, session: Session, context: AppContext, world: dict[str, Any], org: Any
) -> None:
    curator = bearer(client, world["curator"])
    made = client.post(
        "/api/v1/assignment-rules",
        json={
            "name": "Monthly",
            "role": "rep",
            "video_id": str(world["first"].id),
            "every_months": 1,
            "first_round_at": "2026-01-31T09:00:00+00:00",
        },
        headers=curator,
    ).get_json()
    other = bearer(client, factories.UserFactory(org=org, enablement=True))
    url = f"/api/v1/assignment-rules/{made['id']}"
    assert client.patch(url, json={"active": False}, headers=other).status_code == 403
    assert client.delete(url, headers=other).status_code == 403
    # Rounds on the 31st: February's last day, then March 31st again (no drift).
    rule = session.get(AssignmentRule, made["id"])
    assert rule is not None
    for now, expected in (
        ("2026-01-31T10:00:00+00:00", "2026-02-28"),
        ("2026-03-01T10:00:00+00:00", "2026-03-31"),
    ):
        assert rules.run_rounds(context.db, now=datetime.fromisoformat(now)) == 1
        session.refresh(rule)
        assert rule.next_round_at is not None
        assert rule.next_round_at.date().isoformat() == expected


def _recounted(session: Session, context: AppContext) -> None:
    """The recounts recorded so far, run now, as once RECOUNT_AFTER has passed."""
    session.execute(
        update(OutboxJob)
        .where(
            OutboxJob.task == TaskName.ASSIGNMENTS_RECOUNT,
            OutboxJob.status == OutboxStatus.PENDING,
        )
        .values(run_after=func.now())
    )
    session.flush()
    assert drain(context) >= 1


def test_what_an_assignment_holds_changing_counts_its_people_again(
    client: FlaskClient, session: Session, context: AppContext, world: dict[str, Any], org: Any
) -> None:
    curator, ana = bearer(client, world["curator"]), bearer(client, world["ana"])
    admin = bearer(client, factories.UserFactory(org=org, admin=True))
    settings = client.put(
        "/api/v1/viewing/settings", json={"completion_threshold_pct": 90}, headers=admin
    )
    assert settings.status_code == 200
    first, second, cid = world["first"], world["second"], world["collection"].id
    made = _assign(client, curator, collection_id=str(cid), user_ids=[str(world["ana"].id)])
    drain(context)
    # All of the first video: 60 of 80 seconds.
    _play(client, ana, first, (0, MINUTE))
    item = _learning(client, ana)[0]
    assert (item["state"], item["played_ms"], item["total_ms"]) == ("in_progress", MINUTE, 80_000)
    # The clip of the second video removed: what she played is all of it.
    clip = session.scalar(select(CollectionItem.id).where(CollectionItem.video_id == second.id))
    removed = client.delete(f"/api/v1/collections/{cid}/items/{clip}", headers=curator)
    assert removed.status_code == 204
    assert _learning(client, ana)[0]["total_ms"] == 80_000  # until a worker counts again
    _recounted(session, context)
    done = _learning(client, ana, "completed")
    assert [(i["assignment_id"], i["total_ms"]) for i in done] == [(made["id"], MINUTE)]
    # A new item makes it longer; what was completed stays completed.
    added = client.post(
        f"/api/v1/collections/{cid}/items",
        json={"items": [{"video_id": str(second.id)}]},
        headers=curator,
    )
    assert added.status_code in (200, 201), added.get_json()
    _recounted(session, context)
    item = _learning(client, ana, "completed")[0]
    assert (item["state"], item["total_ms"]) == ("completed", 2 * MINUTE)

    # A video of its own, half played: in progress under the organisation's 90 %...
    alone = _assign(client, curator, video_id=str(second.id), user_ids=[str(world["ana"].id)])
    drain(context)
    _play(client, ana, second, (0, MINUTE // 2))
    states = {i["assignment_id"]: i["state"] for i in _learning(client, ana, "all")}
    assert states[alone["id"]] == "in_progress"
    # ... completed once the organisation counts half as completed.
    lowered = client.put(
        "/api/v1/viewing/settings", json={"completion_threshold_pct": 50}, headers=admin
    )
    assert lowered.status_code == 200
    _recounted(session, context)
    states = {i["assignment_id"]: i["state"] for i in _learning(client, ana, "all")}
    assert states[alone["id"]] == "completed"

    # Deleting a video of an assigned collection takes its length out; restoring puts it back.
    again = _assign(client, curator, collection_id=str(cid), user_ids=[str(world["ben"].id)])
    drain(context)
    ben = bearer(client, world["ben"])
    assert _learning(client, ben)[0]["total_ms"] == 2 * MINUTE
    assert client.delete(f"/api/v1/videos/{second.id}", headers=curator).status_code == 204
    _recounted(session, context)
    assert _learning(client, ben)[0]["total_ms"] == MINUTE
    restored = client.post(f"/api/v1/videos/{second.id}/restore", headers=curator)
    assert restored.status_code == 200, restored.get_json()
    _recounted(session, context)
    item = _learning(client, ben)[0]
    assert (item["assignment_id"], item["total_ms"]) == (again["id"], 2 * MINUTE)
