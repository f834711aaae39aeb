"""Learning metrics: a small organisation assigned, watched, declined and sold through the API;
each metric checked against the figures worked out by hand, and who may read them.

The steps happen now, in one transaction (whose clock stands still), so their times are then
set, by hand, to a calendar starting on Monday 1 June 2026 (`T0`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from fieldcast.context import AppContext
from fieldcast.models.curation import Collection, CollectionItem
from fieldcast.models.deals import Deal
from fieldcast.models.programs import Assignee, AssigneeState, Assignment, AssignmentRequest
from fieldcast.models.videos import Video, VideoStatus
from tests import factories
from tests.conftest import bearer
from tests.worker_support import drain_outbox as drain

pytestmark = pytest.mark.usefixtures("sink")

MINUTE = 60_000
T0 = datetime(2026, 6, 1, tzinfo=UTC)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
PERIOD = {"from": T0.isoformat(), "to": (T0 + 30 * DAY).isoformat()}


def _video(session: Session, org: Any, owner: Any, title: str, created: datetime) -> Video:
    video = Video(
        org_id=org.id,
        owner_id=owner.id,
        title=title,
        status=VideoStatus.PLAYABLE,
        duration_ms=MINUTE,
        created_at=created,
    )
    session.add(video)
    session.flush()
    return video


def _assign(client: FlaskClient, curator: Any, people: list[Any], **subject: Any) -> uuid.UUID:
    body = {**{k: str(v) for k, v in subject.items()}, "user_ids": [str(p.id) for p in people]}
    response = client.post("/api/v1/assignments", json=body, headers=bearer(client, curator))
    assert response.status_code == 201, response.get_json()
    return uuid.UUID(response.get_json()["id"])


def _watch(client: FlaskClient, user: Any, video: Video) -> None:
    headers = bearer(client, user)
    view = client.post(f"/api/v1/videos/{video.id}/views", json={}, headers=headers)
    assert view.status_code == 201, view.get_json()
    report = {"seq": 1, "segments": [[0, MINUTE]], "position_ms": MINUTE}
    sent = client.post(
        f"/api/v1/views/{view.get_json()['id']}/reports", json=report, headers=headers
    )
    assert sent.status_code == 200, sent.get_json()


def _request(client: FlaskClient, user: Any, assignment_id: uuid.UUID, **body: Any) -> None:
    response = client.post(
        f"/api/v1/assignments/{assignment_id}/requests", json=body, headers=bearer(client, user)
    )
    assert response.status_code == 201, response.get_json()


def _deal(client: FlaskClient, admin: Any, key: str, owner: Any, outcome: str) -> uuid.UUID:
    response = client.put(
        f"/api/v1/deals/by-source/salesforce/{key}",
        json={"name": key, "owner_id": str(owner.id), "outcome": outcome},
        headers=bearer(client, admin),
    )
    assert response.status_code in (200, 201), response.get_json()
    return uuid.UUID(response.get_json()["id"])


@pytest.fixture
def world(session: Session, org: Any, client: FlaskClient, context: AppContext) -> dict[str, Any]:
    """Cora (enablement) records V1 at T0 (playable 2 h later) and V2 at T0 + 1 h (playable
    4 h later); she assigns V1 to Ana and Ben (A1, reaching them a day later) and the
    collection of both to Ana (A2, three days later), and V2 to Ben and Cal (A3). Ana
    completes A1 on day 2 and A2 on day 5; Ben completes A1 on day 4, asks for more time on
    A3 (no time, day 2); Cal declines A3 (not relevant, day 9). Ana, Ben and Cal are a team
    and report to Max."""
    admin = factories.UserFactory(org=org, admin=True)
    cora = factories.UserFactory(org=org, enablement=True)
    max_ = factories.UserFactory(org=org, manager=True)
    ana, ben, cal = (factories.UserFactory(org=org, manager_id=max_.id) for _ in range(3))
    team = factories.TeamFactory(org=org)
    for person in (ana, ben, cal):
        factories.MembershipFactory(team=team, user=person)
    v1 = _video(session, org, cora, "Discovery questions", T0)
    v2 = _video(session, org, cora, "Pricing", T0 + HOUR)
    collection = Collection(org_id=org.id, owner_id=cora.id, title="First quarter")
    session.add(collection)
    session.flush()
    session.add_all(
        CollectionItem(org_id=org.id, collection_id=collection.id, position=i, video_id=v.id)
        for i, v in enumerate((v1, v2))
    )
    session.flush()
    a1 = _assign(client, cora, [ana, ben], video_id=v1.id)
    a2 = _assign(client, cora, [ana], collection_id=collection.id)
    a3 = _assign(client, cora, [ben, cal], video_id=v2.id)
    drain(context)
    _watch(client, ana, v1)
    _watch(client, ana, v2)
    _watch(client, ben, v1)
    drain(context)
    later = (datetime.now(UTC) + 30 * DAY).isoformat()
    _request(client, ben, a3, kind="more_time", reason="no_time", wanted_due_at=later)
    _request(client, cal, a3, kind="decline", reason="not_relevant")

    # The calendar.
    session.execute(update(Video).where(Video.id == v1.id).values(playable_at=T0 + 2 * HOUR))
    session.execute(update(Video).where(Video.id == v2.id).values(playable_at=T0 + HOUR + 4 * HOUR))
    for assignment_id, published in ((a1, T0 + DAY), (a2, T0 + 3 * DAY), (a3, T0 + 3 * DAY)):
        session.execute(
            update(Assignment).where(Assignment.id == assignment_id).values(published_at=published)
        )
        session.execute(
            update(Assignee)
            .where(Assignee.assignment_id == assignment_id)
            .values(assigned_at=published)
        )
    for assignment_id, person, done in (
        (a1, ana, T0 + 2 * DAY),
        (a1, ben, T0 + 4 * DAY),
        (a2, ana, T0 + 5 * DAY),
    ):
        changed = session.execute(
            update(Assignee)
            .where(
                Assignee.assignment_id == assignment_id,
                Assignee.user_id == person.id,
                Assignee.state == AssigneeState.COMPLETED,
            )
            .values(completed_at=done)
        )
        assert changed.rowcount == 1  # type: ignore[attr-defined]
    for person, at in ((ben, T0 + 2 * DAY), (cal, T0 + 9 * DAY)):
        session.execute(
            update(AssignmentRequest)
            .where(AssignmentRequest.user_id == person.id)
            .values(created_at=at)
        )
    session.flush()
    return {
        "admin": admin,
        "cora": cora,
        "max": max_,
        "ana": ana,
        "ben": ben,
        "cal": cal,
        "team": team,
        "collection": collection,
        "a1": a1,
    }


def _metric(client: FlaskClient, user: Any, name: str, **args: Any) -> Any:
    query = {**PERIOD, **{k: str(v) for k, v in args.items()}}
    return client.get(f"/api/v1/metrics/{name}", query_string=query, headers=bearer(client, user))


def test_learning_cycle_medians_and_90th_percentiles(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    body = _metric(client, world["cora"], "learning-cycle").get_json()
    # Publication: 2 h and 4 h.
    assert body["to_publication"] == {"count": 2, "median_s": 10_800.0, "p90_s": 13_680.0}
    # Assignment: A1 a day after V1; A2 three days after its newest video (V2, T0 + 1 h);
    # A3 three days after V2 likewise.
    assert body["to_assignment"] == {"count": 3, "median_s": 255_600.0, "p90_s": 255_600.0}
    # Completion: Ana A1 2 days, Ben A1 4 days, Ana A2 5 days less an hour.
    assert body["to_completion"] == {"count": 3, "median_s": 345_600.0, "p90_s": 411_840.0}
    assert body["period"] == PERIOD

    one = _metric(client, world["cora"], "learning-cycle", assignment_id=world["a1"]).get_json()
    assert one["to_publication"] == {"count": 1, "median_s": 7_200.0, "p90_s": 7_200.0}
    assert one["to_assignment"] == {"count": 1, "median_s": 86_400.0, "p90_s": 86_400.0}
    assert one["to_completion"] == {"count": 2, "median_s": 259_200.0, "p90_s": 328_320.0}

    program = _metric(
        client, world["cora"], "learning-cycle", collection_id=world["collection"].id
    ).get_json()
    assert program["to_publication"]["count"] == 2
    assert program["to_assignment"] == {"count": 1, "median_s": 255_600.0, "p90_s": 255_600.0}
    assert program["to_completion"] == {"count": 1, "median_s": 428_400.0, "p90_s": 428_400.0}

    before = _metric(
        client, world["cora"], "learning-cycle", to=(T0 + 3 * DAY).isoformat()
    ).get_json()
    # Only A1 reached its people, and only Ana's A1 completion happened, before day 3.
    assert before["to_assignment"]["count"] == 1
    assert before["to_completion"] == {"count": 1, "median_s": 172_800.0, "p90_s": 172_800.0}


def test_assignment_and_completion_average_and_the_golden_ratio(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    body = _metric(client, world["cora"], "completion-average", team_id=world["team"].id)
    body = body.get_json()
    # Ana: A1, A2 (both done); Ben: A1 (done), A3; Cal: A3.
    assert {k: body[k] for k in ("people", "people_assigned", "assigned", "completed")} == {
        "people": 3,
        "people_assigned": 3,
        "assigned": 5,
        "completed": 3,
    }
    assert body["assigned_per_person"] == pytest.approx(5 / 3, abs=1e-4)
    assert body["completed_per_person"] == 1.0
    assert body["golden_ratio"] == 0.6
    program = _metric(
        client,
        world["cora"],
        "completion-average",
        team_id=world["team"].id,
        assignment_id=world["a1"],
    ).get_json()
    assert (program["assigned"], program["completed"], program["golden_ratio"]) == (2, 2, 1.0)
    # Nothing was assigned in May: no ratio rather than a made-up one.
    may = _metric(
        client,
        world["cora"],
        "completion-average",
        **{"from": "2026-05-01T00:00:00+00:00", "to": "2026-06-01T00:00:00+00:00"},
    ).get_json()
    assert (may["assigned"], may["golden_ratio"]) == (0, None)


def test_non_completion_reasons_counted_and_trended_by_week(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    body = _metric(
        client,
        world["cora"],
        "non-completion-reasons",
        to=(T0 + 14 * DAY).isoformat(),
        bucket="week",
    ).get_json()
    assert body["total"] == {"decline": 1, "more_time": 1}
    assert body["decline"]["not_relevant"] == 1 and body["more_time"]["no_time"] == 1
    assert [b["start"] for b in body["trend"]] == [
        "2026-06-01T00:00:00+00:00",
        "2026-06-08T00:00:00+00:00",
    ]
    first, second = body["trend"]
    assert first["more_time"]["no_time"] == 1 and sum(first["decline"].values()) == 0
    assert second["decline"]["not_relevant"] == 1 and sum(second["more_time"].values()) == 0


def test_deal_conversion_with_the_counts_behind_it(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    admin, ana, ben, cal = (world[n] for n in ("admin", "ana", "ben", "cal"))
    deals = {
        # (owner, outcome, created, closed)
        "D1": (ana, "won", T0, T0 + 10 * DAY),  # after Ana completed A1 (day 2)
        "D2": (ana, "lost", T0, T0 + DAY),  # before she completed anything
        "D3": (cal, "won", T0 + 2 * DAY, T0 + 6 * DAY),
        "D4": (cal, "lost", T0, T0 + 8 * DAY),
        "D5": (ben, "open", T0, None),
    }
    for key, (owner, outcome, created, closed) in deals.items():
        deal_id = _deal(client, admin, key, owner, outcome)
        session.execute(
            update(Deal).where(Deal.id == deal_id).values(created_at=created, closed_at=closed)
        )
    session.flush()
    body = _metric(client, world["cora"], "deal-conversion").get_json()
    assert body["completed"] == {
        "people": 1,
        "deals": 1,
        "won": 1,
        "lost": 0,
        "win_rate": 1.0,
        "win_rate_interval": [0.2065, 1.0],
        "cycle_days": {"count": 1, "median": 10.0, "p90": 10.0},
    }
    assert body["not_completed"] == {
        "people": 2,
        "deals": 3,
        "won": 1,
        "lost": 2,
        "win_rate": 0.3333,
        "win_rate_interval": [0.0615, 0.7923],
        "cycle_days": {"count": 3, "median": 4.0, "p90": 7.2},
    }
    # Against the collection's program: Ana completed A2 on day 5, before D1 closed.
    program = _metric(
        client, world["cora"], "deal-conversion", collection_id=world["collection"].id
    ).get_json()
    assert (program["completed"]["deals"], program["not_completed"]["deals"]) == (1, 3)


def test_who_reads_learning_metrics(
    client: FlaskClient, world: dict[str, Any], org: Any, outsider: Any
) -> None:
    names = ("learning-cycle", "completion-average", "non-completion-reasons", "deal-conversion")
    for name in names:
        refused = _metric(client, world["ana"], name)
        assert refused.status_code == 403 and refused.get_json()["code"] == "permission_denied"
        assert _metric(client, world["admin"], name).status_code == 200
        # Another organisation's team or program does not exist for this one.
        other = _metric(client, outsider, name, team_id=world["team"].id)
        assert other.status_code == 404
        assert _metric(client, outsider, name, assignment_id=world["a1"]).status_code == 404
    # Max reads his people: Ana, Ben and Cal; a manager of nobody reads nothing.
    mine = _metric(client, world["max"], "completion-average").get_json()
    assert (mine["people"], mine["assigned"], mine["completed"]) == (3, 5, 3)
    nobody = factories.UserFactory(org=org, manager=True)
    empty = _metric(client, nobody, "completion-average").get_json()
    assert (empty["people"], empty["assigned"], empty["golden_ratio"]) == (0, 0, None)


def test_a_period_must_be_the_right_way_round_and_not_too_long(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    upside_down = {"from": PERIOD["to"], "to": PERIOD["from"]}
    response = _metric(client, world["cora"], "learning-cycle", **upside_down)
    assert response.status_code == 422
    too_long = {"from": "2020-01-01T00:00:00+00:00"}
    assert _metric(client, world["cora"], "completion-average", **too_long).status_code == 422


def test_the_same_question_is_answered_from_the_last_minutes_computation(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    """A dashboard refreshed, or opened by many, costs one computation a minute: the answer
    says when it was computed; another question (or another reader's scope) is computed anew."""
    team = {"team_id": world["team"].id}
    first = _metric(client, world["cora"], "completion-average", **team).get_json()
    assert first["completed"] == 3
    session.execute(
        update(Assignee)
        .where(Assignee.user_id == world["cal"].id)
        .values(state=AssigneeState.COMPLETED, completed_at=T0 + 6 * DAY)
    )
    session.flush()
    again = _metric(client, world["admin"], "completion-average", **team).get_json()
    assert again == first
    # Max's scope is his people's: a question of its own, computed now.
    mine = _metric(client, world["max"], "completion-average", **team).get_json()
    assert (mine["completed"], mine["golden_ratio"]) == (4, 0.8)
    assert mine["computed_at"] > first["computed_at"]
