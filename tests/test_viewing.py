"""What players report: views, played segments merged once however they arrive, progress and
completion, and shares that become `watched` from real playback."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fieldcast.context import AppContext
from fieldcast.models.sharing import ShareRecipient
from fieldcast.models.videos import Video, VideoStatus
from fieldcast.models.viewing import View, ViewEvent
from tests import factories
from tests.api_support import share_video
from tests.conftest import bearer
from tests.worker_support import drain_outbox as drain

pytestmark = pytest.mark.usefixtures("sink")

MINUTE = 60_000


@pytest.fixture
def world(session: Session, org: Any, client: FlaskClient, context: AppContext) -> dict[str, Any]:
    ana = factories.UserFactory(org=org)
    sam = factories.UserFactory(org=org)
    kim = factories.UserFactory(org=org)
    video = Video(
        org_id=org.id,
        owner_id=ana.id,
        title="Pricing objection",
        status=VideoStatus.PLAYABLE,
        duration_ms=MINUTE,
    )
    session.add(video)
    session.flush()
    share_video(client, bearer(client, ana), video, sam)
    drain(context)
    return {"ana": ana, "sam": sam, "kim": kim, "video": video}


def _start(client: FlaskClient, headers: dict[str, str], video: Any, **body: Any) -> Any:
    response = client.post(f"/api/v1/videos/{video.id}/views", json=body, headers=headers)
    assert response.status_code in (200, 201), response.get_json()
    return response


def _report(client: FlaskClient, headers: dict[str, str], view_id: str, **body: Any) -> Any:
    response = client.post(f"/api/v1/views/{view_id}/reports", json=body, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_segments_merge_once_whatever_the_order_and_progress_reaches_completion(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    sam = bearer(client, world["sam"])
    view = _start(client, sam, world["video"]).get_json()
    assert view["end_ms"] == MINUTE and view["played_ms"] == 0
    first = _report(client, sam, view["id"], seq=1, segments=[[0, 20_000]], position_ms=20_000)
    assert first["played_ms"] == 20_000 and not first["completed"]
    # The same report again, and an overlapping later one that arrives first: counted once.
    late = {"seq": 3, "segments": [[40_000, 50_000]], "position_ms": 50_000}
    _report(client, sam, view["id"], **late)
    _report(client, sam, view["id"], seq=1, segments=[[0, 20_000]], position_ms=20_000)
    middle = _report(client, sam, view["id"], seq=2, segments=[[10_000, 41_000]])
    assert middle["played_ms"] == 50_000
    assert middle["progress"] == pytest.approx(50 / 60, abs=1e-3)
    # 50 of 60 seconds is under the default 90 %; 54 s is enough.
    assert not middle["completed"]
    done = _report(client, sam, view["id"], seq=4, segments=[[50_000, 54_000]])
    assert done["completed"] and done["completed_at"]
    # A second view adds to the same progress; what was played already is not counted again.
    again = _start(client, sam, world["video"]).get_json()
    assert again["id"] != view["id"]
    mine = _report(client, sam, again["id"], seq=1, segments=[[0, 60_000]])
    assert mine["played_ms"] == MINUTE and mine["progress"] == 1.0
    got = client.get(f"/api/v1/videos/{world['video'].id}/progress", headers=sam).get_json()
    assert got["played_ms"] == MINUTE and got["completed_at"] == done["completed_at"]
    # The position is the latest report's by number: seq 1 sent again did not move it back.
    row = session.get(View, view["id"])
    assert row is not None and row.position_ms == 50_000 and row.completed_at is not None


def test_a_session_started_again_is_the_same_view_and_events_are_kept_once(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    sam = bearer(client, world["sam"])
    body = {"session_id": "0190b5a2-7d3c-7c1e-9b11-2f1c6f0e0a01"}
    first = _start(client, sam, world["video"], **body)
    second = _start(client, sam, world["video"], **body)
    assert first.status_code == 201 and second.status_code == 200
    assert first.get_json()["id"] == second.get_json()["id"]
    report = {
        "seq": 7,
        "segments": [[0, 5_000]],
        "events": [
            {"kind": "play", "position_ms": 0, "device_at": "2026-12-01T09:00:00+01:00"},
            {"kind": "pause", "position_ms": 5_000, "device_at": "2026-12-01T09:00:05+01:00"},
        ],
        "device_at": "2026-12-01T09:00:06+01:00",
    }
    view_id = first.get_json()["id"]
    _report(client, sam, view_id, **report)
    _report(client, sam, view_id, **report)
    kinds = session.scalars(
        select(ViewEvent.kind).where(ViewEvent.view_id == view_id).order_by(ViewEvent.n)
    ).all()
    assert [k.value for k in kinds] == ["play", "pause"]


def test_a_clip_counts_its_range_only(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    sam = bearer(client, world["sam"])
    clip = _start(client, sam, world["video"], start_ms=10_000, end_ms=20_000).get_json()
    assert (clip["start_ms"], clip["end_ms"]) == (10_000, 20_000)
    _report(client, sam, clip["id"], seq=1, segments=[[0, 15_000]])
    view = client.post(
        f"/api/v1/views/{clip['id']}/reports", json={"seq": 2, "segments": []}, headers=sam
    )
    assert view.status_code == 200
    # Only [10 s, 15 s) of what was reported lies in the clip: half the clip, a twelfth of
    # the video.
    assert view.get_json()["view"]["played_ms"] == 5_000
    assert view.get_json()["view"]["progress"] == 0.5
    assert view.get_json()["played_ms"] == 5_000
    assert view.get_json()["progress"] == pytest.approx(5 / 60, abs=1e-3)
    done = _report(client, sam, clip["id"], seq=3, segments=[[15_000, 20_000]])
    assert done["view"]["completed"] and not done["completed"]


def test_shares_become_watched_from_real_playback(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    sam = bearer(client, world["sam"])
    row = session.scalars(
        select(ShareRecipient).where(ShareRecipient.user_id == world["sam"].id)
    ).one()
    view = _start(client, sam, world["video"]).get_json()
    _report(client, sam, view["id"], seq=1, segments=[[0, 1_000]])
    session.refresh(row)
    assert row.state.value != "watched"
    _report(client, sam, view["id"], seq=2, segments=[[1_000, 3_000]])
    session.refresh(row)
    assert row.state.value == "watched" and row.watched_at is not None


def test_a_recalled_share_is_not_watched_and_reports_stop_with_access(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    sam, ana = bearer(client, world["sam"]), bearer(client, world["ana"])
    view = _start(client, sam, world["video"]).get_json()
    row = session.scalars(
        select(ShareRecipient).where(ShareRecipient.user_id == world["sam"].id)
    ).one()
    assert client.post(f"/api/v1/shares/{row.share_id}/recall", headers=ana).status_code == 200
    late = client.post(
        f"/api/v1/views/{view['id']}/reports",
        json={"seq": 1, "segments": [[0, 30_000]]},
        headers=sam,
    )
    assert late.status_code == 404
    session.refresh(row)
    assert row.state.value != "watched"


def test_views_are_their_viewers_own_and_input_is_bounded(
    client: FlaskClient, world: dict[str, Any]
) -> None:
    sam, kim, ana = (bearer(client, world[k]) for k in ("sam", "kim", "ana"))
    video = world["video"]
    # Kim does not see the video: it does not exist for her.
    assert client.post(f"/api/v1/videos/{video.id}/views", json={}, headers=kim).status_code == 404
    view = _start(client, sam, video).get_json()
    # Nobody else reports on Sam's view, not even the video's owner.
    other = client.post(f"/api/v1/views/{view['id']}/reports", json={"seq": 1}, headers=ana)
    assert other.status_code == 404
    for bad in (
        {"seq": 1, "segments": [[5_000, 1_000]]},
        {"seq": 1, "segments": [[0, 1, 2]]},
        {"seq": 1, "segments": [[-1, 10]]},
        {"seq": 1, "segments": [[0, 10]] * 201},
        {"seq": -1},
        {"seq": 1, "events": [{"kind": "rewind", "position_ms": 0}]},
        {"segments": [[0, 10]]},
    ):
        response = client.post(f"/api/v1/views/{view['id']}/reports", json=bad, headers=sam)
        assert response.status_code == 422, bad
        assert response.mimetype == "application/problem+json"
    clip = client.post(
        f"/api/v1/videos/{video.id}/views", json={"start_ms": 20_000, "end_ms": 10_000}, headers=sam
    )
    assert clip.status_code == 422


def test_a_video_still_processing_has_no_view_yet(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    video = world["video"]
    video.status, video.duration_ms = VideoStatus.PROCESSING, None
    session.flush()
    response = client.post(
        f"/api/v1/videos/{video.id}/views", json={}, headers=bearer(client, world["ana"])
    )
    assert response.status_code == 409
    assert response.get_json()["code"] == "video_not_playable"


def test_an_admin_sets_the_completion_threshold(
    client: FlaskClient, session: Session, org: Any, world: dict[str, Any]
) -> None:
    admin = bearer(client, factories.UserFactory(org=org, admin=True))
    sam = bearer(client, world["sam"])
    url = "/api/v1/viewing/settings"
    assert client.get(url, headers=sam).get_json() == {"completion_threshold_pct": 90}
    refused = client.put(url, json={"completion_threshold_pct": 50}, headers=sam)
    assert refused.status_code == 403
    for bad in (0, 101, "50", 50.5):
        response = client.put(url, json={"completion_threshold_pct": bad}, headers=admin)
        assert response.status_code == 422, bad
    assert client.put(url, json={"completion_threshold_pct": 50}, headers=admin).status_code == 200
    view = _start(client, sam, world["video"]).get_json()
    half = _report(client, sam, view["id"], seq=1, segments=[[0, 30_000]])
    assert half["completed"] and half["progress"] == 0.5
