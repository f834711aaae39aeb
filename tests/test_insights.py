"""Viewer insights: figures counted from real views (reports with segments and seeks), checked
against the same figures worked out by hand, per video, share and team, and who reads them."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from fieldcast.context import AppContext
from fieldcast.db import Database
from fieldcast.insights import videos as insights
from fieldcast.models.accounts import TeamRole
from fieldcast.models.videos import Video, VideoStatus
from tests import factories
from tests.api_support import share_video
from tests.conftest import bearer
from tests.worker_support import drain_outbox as drain

pytestmark = pytest.mark.usefixtures("sink")

# Ten seconds: each of the 100 points is 100 ms apart.
DURATION = 10_000


def _view(client: FlaskClient, user: Any, video: Any, *reports: dict[str, Any]) -> str:
    headers = bearer(client, user)
    started = client.post(f"/api/v1/videos/{video.id}/views", json={}, headers=headers)
    assert started.status_code == 201, started.get_json()
    view_id: str = started.get_json()["id"]
    for seq, report in enumerate(reports, start=1):
        sent = client.post(
            f"/api/v1/views/{view_id}/reports", json={"seq": seq, **report}, headers=headers
        )
        assert sent.status_code == 200, sent.get_json()
    return view_id


@pytest.fixture
def world(session: Session, org: Any, client: FlaskClient, context: AppContext) -> dict[str, Any]:
    """Tom's video watched by Ana (all of it), Ben (the first half, then 2-5 s again in a second
    view), Cal (the first 3 s, seeking back from 3 s to 1 s) and Dee (a view that played
    nothing). Tom reports to Mia, who reports to Ned."""
    ned = factories.UserFactory(org=org, manager=True)
    mia = factories.UserFactory(org=org, manager=True, manager_id=ned.id)
    tom = factories.UserFactory(org=org, manager_id=mia.id)
    ana, ben, cal, dee = (factories.UserFactory(org=org) for _ in range(4))
    video = Video(
        org_id=org.id,
        owner_id=tom.id,
        title="Renewal call",
        status=VideoStatus.PLAYABLE,
        duration_ms=DURATION,
    )
    session.add(video)
    session.flush()
    share_id = share_video(client, bearer(client, tom), video, ana, ben, cal, dee)
    drain(context)
    _view(client, ana, video, {"segments": [[0, 10_000]], "position_ms": 10_000})
    _view(client, ben, video, {"segments": [[0, 5_000]], "position_ms": 5_000})
    _view(client, ben, video, {"segments": [[2_000, 5_000]], "position_ms": 5_000})
    seeks = [
        {"kind": "play", "position_ms": 0},
        {"kind": "pause", "position_ms": 3_000},
        {"kind": "seek", "position_ms": 1_000},
        {"kind": "play", "position_ms": 1_000},
    ]
    _view(client, cal, video, {"segments": [[0, 3_000]], "position_ms": 3_000, "events": seeks})
    _view(client, dee, video)
    team = factories.TeamFactory(org=org)
    sub = factories.TeamFactory(org=org, parent_id=team.id)
    lea = factories.UserFactory(org=org, manager=True)
    factories.MembershipFactory(team=team, user=ana)
    factories.MembershipFactory(team=team, user=ben)
    factories.MembershipFactory(team=sub, user=dee)
    factories.MembershipFactory(team=team, user=lea, role=TeamRole.LEAD)
    return {
        "video": video,
        "share_id": share_id,
        "team": team,
        "ned": ned,
        "mia": mia,
        "tom": tom,
        "lea": lea,
        "ana": ana,
        "ben": ben,
        "cal": cal,
        "dee": dee,
    }


def _get(client: FlaskClient, user: Any, path: str) -> Any:
    return client.get(path, headers=bearer(client, user))


def test_video_figures_match_the_hand_count(client: FlaskClient, world: dict[str, Any]) -> None:
    response = _get(client, world["tom"], f"/api/v1/videos/{world['video'].id}/insights")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    # Dee's view played nothing: neither a view nor a viewer.
    assert (body["views"], body["viewers"], body["completed"]) == (4, 3, 1)
    assert body["completion_rate"] == pytest.approx(1 / 3, abs=1e-4)
    # (1 + 0.5 + 0.3) / 3
    assert body["average_share"] == pytest.approx(0.6, abs=1e-4)
    third = pytest.approx(1 / 3, abs=1e-4)
    two_thirds = pytest.approx(2 / 3, abs=1e-4)
    assert body["retention"] == [1.0] * 30 + [two_thirds] * 20 + [third] * 50
    # Cal left after 3 s (point 29), Ben after 5 s (point 49); Ana played to the end.
    expected_drops = [0] * 100
    expected_drops[29] = expected_drops[49] = 1
    assert body["drop_offs"] == expected_drops
    assert body["top_drop_offs"] == [
        {"from_point": 29, "to_point": 29, "start_ms": 2_900, "end_ms": 3_000, "count": 1},
        {"from_point": 49, "to_point": 49, "start_ms": 4_900, "end_ms": 5_000, "count": 1},
    ]
    # Ben's second view plays 2-5 s again (points 20-49); Cal's seek back replays 1-3 s
    # (points 10-29).
    assert body["rewatches"] == [0] * 10 + [1] * 10 + [2] * 10 + [1] * 20 + [0] * 50
    stretches = [(p["start_ms"], p["end_ms"], p["count"]) for p in body["top_rewatches"]]
    assert stretches == [(2_000, 3_000, 2), (1_000, 2_000, 1), (3_000, 5_000, 1)]
    assert body["computed_at"] and body["stale_up_to_s"] == insights.STALE_UP_TO_S


def test_who_watched_how_much_is_a_page_most_played_first(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    path = f"/api/v1/videos/{world['video'].id}/insights/viewers"
    first = _get(client, world["tom"], f"{path}?limit=2").get_json()
    rest = _get(client, world["tom"], f"{path}?limit=2&cursor={first['next_cursor']}").get_json()
    rows = first["items"] + rest["items"]
    assert rest["next_cursor"] is None
    assert [r["user_id"] for r in rows] == [str(world[n].id) for n in ("ana", "ben", "cal")]
    assert [(r["played_ms"], r["share"], r["views"]) for r in rows] == [
        (10_000, 1.0, 1),
        (5_000, 0.5, 2),
        (3_000, 0.3, 1),
    ]
    assert rows[0]["completed_at"] is not None and rows[1]["completed_at"] is None
    assert rows[0]["display_name"] == world["ana"].display_name
    team = _get(client, world["tom"], f"{path}?team_id={world['team'].id}").get_json()
    assert [r["user_id"] for r in team["items"]] == [str(world["ana"].id), str(world["ben"].id)]


def test_a_video_figures_change_with_new_viewing(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    path = f"/api/v1/videos/{world['video'].id}/insights"
    assert _get(client, world["tom"], path).get_json()["viewers"] == 3
    _view(client, world["dee"], world["video"], {"segments": [[0, 9_500]]})
    body = _get(client, world["tom"], path).get_json()
    assert (body["viewers"], body["completed"], body["views"]) == (4, 2, 5)


def test_who_reads_a_videos_insights(
    client: FlaskClient, world: dict[str, Any], org: Any, outsider: Any
) -> None:
    path = f"/api/v1/videos/{world['video'].id}/insights"
    readers = [
        world["tom"],
        world["mia"],
        world["ned"],
        factories.UserFactory(org=org, enablement=True),
        factories.UserFactory(org=org, admin=True),
    ]
    for reader in readers:
        assert _get(client, reader, path).status_code == 200
    # A viewer, a manager elsewhere on the chart, another organisation's admin: no such video.
    for stranger in (world["ana"], world["lea"], outsider):
        for suffix in ("", "/viewers"):
            response = _get(client, stranger, path + suffix)
            assert response.status_code == 404
            assert response.get_json()["code"] == "not_found"


def test_a_share_shows_who_received_opened_and_watched_it(
    client: FlaskClient, world: dict[str, Any], org: Any
) -> None:
    path = f"/api/v1/shares/{world['share_id']}/insights"
    body = _get(client, world["tom"], path).get_json()
    assert body["recipients"] == 4
    # Ana, Ben and Cal played at least 3 s: their rows are `watched`; Dee's view played none.
    assert (body["opened"], body["watched"]) == (3, 3)
    assert (body["viewers"], body["completed"]) == (3, 1)
    assert body["average_share"] == pytest.approx(0.6, abs=1e-4)
    rows = _get(client, world["mia"], f"{path}/recipients?limit=10").get_json()["items"]
    by_user = {r["user_id"]: r for r in rows}
    assert by_user[str(world["ben"].id)]["state"] == "watched"
    assert by_user[str(world["ben"].id)]["played_ms"] == 5_000
    assert by_user[str(world["dee"].id)]["played_ms"] == 0
    assert by_user[str(world["dee"].id)]["state"] != "watched"
    for stranger in (world["ana"], factories.UserFactory(org=org, enablement=True)):
        assert _get(client, stranger, path).status_code == 404


def test_a_team_sees_which_of_its_people_watched(
    client: FlaskClient, context: AppContext, world: dict[str, Any], org: Any
) -> None:
    video, team = world["video"], world["team"]
    path = f"/api/v1/videos/{video.id}/insights/teams/{team.id}"
    # Lea leads the team but has not received the video: nothing to see yet.
    assert _get(client, world["lea"], path).status_code == 404
    share_video(client, bearer(client, world["tom"]), video, world["lea"])
    drain(context)
    body = _get(client, world["lea"], path).get_json()
    # Ana, Ben, Lea and (from the sub-team) Dee; Ana and Ben watched.
    assert (body["people"], body["viewers"], body["completed"]) == (4, 2, 1)
    assert body["average_share"] == pytest.approx(0.75, abs=1e-4)
    people = _get(client, world["lea"], f"{path}/people?limit=10").get_json()["items"]
    played = {r["user_id"]: r["played_ms"] for r in people}
    assert played == {
        str(world["ana"].id): 10_000,
        str(world["ben"].id): 5_000,
        str(world["dee"].id): 0,
        str(world["lea"].id): 0,
    }
    assert _get(client, world["cal"], path).status_code == 404


def test_a_large_audience_is_served_precomputed_and_refreshed_by_the_job(
    client: FlaskClient, session: Session, db: Database, world: dict[str, Any], org: Any
) -> None:
    """Past LIVE_VIEWERS a read serves the stored figures; the periodic job counts again."""
    video = world["video"]
    many = insights.LIVE_VIEWERS + 1
    # The many viewers each played the first second (as progress rows: the job reads only
    # those and the views).
    session.execute(
        text(
            """
            WITH people AS (
                INSERT INTO users (id, org_id, email, display_name, handle, role)
                SELECT gen_random_uuid(), :org, 'crowd' || g || '@example.com', 'Crowd ' || g,
                       'crowd' || g, 'rep'
                FROM generate_series(1, :n) g RETURNING id
            )
            INSERT INTO video_progress (org_id, user_id, video_id, played, played_ms,
                                        duration_ms, first_played_at, updated_at)
            SELECT :org, id, :video, '{[0,1000)}', 1000, :d, now(), now() FROM people
            """
        ),
        {"org": org.id, "video": video.id, "n": many, "d": DURATION},
    )
    path = f"/api/v1/videos/{video.id}/insights"
    before = _get(client, world["tom"], path).get_json()
    assert before["viewers"] == 3 + many
    _view(client, world["dee"], video, {"segments": [[0, 9_500]]})
    assert _get(client, world["tom"], path).get_json() == before
    assert insights.refresh_stale(db) == {"refreshed": 1, "failed": 0}
    after = _get(client, world["tom"], path).get_json()
    assert (after["viewers"], after["completed"]) == (4 + many, 2)
