"""What players report: views, played segments merged once however they arrive, progress and
completion, and shares that become `watched` from real playback."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.app import create_app
from fieldcast.context import AppContext
from fieldcast.models.accounts import Organisation
from fieldcast.models.sharing import ShareRecipient
from fieldcast.models.videos import Video, VideoStatus
from fieldcast.models.viewing import View, ViewEvent
from fieldcast.viewing import progress
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


# -- batches, offline viewing and limits ------------------------------------------------------


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _errors(client: FlaskClient, headers: dict[str, str], body: dict[str, Any]) -> Any:
    return client.post("/api/v1/views/reports", json=body, headers=headers).get_json()["errors"]


def _batch(client: FlaskClient, headers: dict[str, str], *reports: dict[str, Any]) -> Any:
    response = client.post(
        "/api/v1/views/reports", json={"reports": list(reports)}, headers=headers
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["results"]


def test_a_batch_answers_each_report_alone_and_a_bad_one_loses_none_of_the_others(
    client: FlaskClient, session: Session, context: AppContext, world: dict[str, Any]
) -> None:
    sam, ana = bearer(client, world["sam"]), bearer(client, world["ana"])
    video = world["video"]
    # A view of another video, whose share is then recalled: its reports no longer count.
    recalled = Video(
        org_id=video.org_id,
        owner_id=world["ana"].id,
        title="Recalled",
        status=VideoStatus.PLAYABLE,
        duration_ms=MINUTE,
    )
    # Sam's own video, still processing: nothing to view yet.
    processing = Video(
        org_id=video.org_id, owner_id=world["sam"].id, title="Draft", status=VideoStatus.PROCESSING
    )
    session.add_all([recalled, processing])
    session.flush()
    share_id = share_video(client, ana, recalled, world["sam"])
    drain(context)
    gone = _start(client, sam, recalled).get_json()
    assert client.post(f"/api/v1/shares/{share_id}/recall", headers=ana).status_code == 200
    online = _start(client, sam, video).get_json()
    offline = "0190b5a2-7d3c-7c1e-9b11-2f1c6f0e0b02"
    broken = "0190b5a2-7d3c-7c1e-9b11-2f1c6f0e0b03"
    play = {"kind": "play", "position_ms": 0, "device_at": "2026-12-01T09:00:00+01:00"}
    reports = [
        {"view_id": online["id"], "seq": 1, "segments": [[0, 10_000]]},
        {"session_id": offline, "video_id": str(video.id), "seq": 1, "segments": [[0, 5_000]]},
        {"view_id": gone["id"], "seq": 1, "segments": [[0, 30_000]]},
        {"session_id": str(uuid.uuid4()), "video_id": str(processing.id), "seq": 1},
        # A bad segment, in a view that would be started by this report: nothing of it stays.
        {
            "session_id": broken,
            "video_id": str(video.id),
            "seq": 1,
            "segments": [[5_000, 1_000]],
            "events": [play],
        },
        {"session_id": offline, "video_id": str(video.id), "seq": 2, "segments": [[5_000, 20_000]]},
    ]
    results = _batch(client, sam, *reports)
    assert [r["status"] for r in results] == [200, 200, 404, 409, 422, 200]
    problems = [r["problem"] and r["problem"]["code"] for r in results]
    assert problems == [None, None, "not_found", "video_not_playable", "validation_failed", None]
    assert all(r["progress"] is None for r in results if r["problem"])
    assert results[4]["problem"]["errors"] == {
        "segments": ["[start_ms, end_ms), 0 <= start_ms <= end_ms"]
    }
    assert results[2]["view_id"] == gone["id"] and results[4]["view_id"] is None
    # The offline view was started by its first report and found by its second.
    assert results[1]["view_id"] == results[5]["view_id"] != online["id"]
    assert results[5]["progress"]["view"]["played_ms"] == 20_000
    assert results[0]["view_id"] == online["id"]
    assert results[0]["progress"]["view"]["played_ms"] == 10_000
    # Progress is the union of both views: [0, 20 s).
    assert results[5]["progress"]["played_ms"] == 20_000
    assert not session.scalars(select(View).where(View.session_id == uuid.UUID(broken))).all()
    assert session.scalars(select(ViewEvent)).all() == []
    row = session.get(View, gone["id"])
    assert row is not None and row.played_ms == 0
    # The same batch again (a retry after a lost answer) counts nothing twice.
    again = _batch(client, sam, *reports)
    assert [r["status"] for r in again] == [r["status"] for r in results]
    assert again[5]["progress"]["played_ms"] == 20_000
    assert again[1]["view_id"] == results[1]["view_id"]
    # What the document refuses refuses the whole body, naming the report by its index; no
    # report of it is kept.
    first = {"view_id": online["id"], "seq": 9, "segments": [[50_000, 60_000]]}
    bodies: list[dict[str, Any]] = [
        {"reports": [first, {"view_id": online["id"], "seq": 2, "segments": [[-1, 10]]}]},
        {"reports": [first, {"view_id": online["id"], "session_id": offline, "seq": 3}]},
        {"reports": [first, {"seq": 3}]},
        {"reports": []},
        {"reports": [first] * 101},
        {"reports": "all"},
        {},
    ]
    for bad in bodies:
        response = client.post("/api/v1/views/reports", json=bad, headers=sam)
        assert response.status_code == 422, bad
        assert response.mimetype == "application/problem+json"
    assert "segments" in _errors(client, sam, bodies[0])["reports"]["1"]
    assert "session_id" in _errors(client, sam, bodies[1])["reports"]["1"]
    assert "view_id" in _errors(client, sam, bodies[2])["reports"]["1"]
    row = session.get(View, online["id"])
    assert row is not None and row.played_ms == 10_000 and row.last_seq == 1


def test_an_offline_view_keeps_the_devices_times(
    client: FlaskClient, session: Session, world: dict[str, Any]
) -> None:
    sam = bearer(client, world["sam"])
    video, offline = world["video"], "0190b5a2-7d3c-7c1e-9b11-2f1c6f0e0c01"
    sitting = {"session_id": offline, "video_id": str(video.id)}
    results = _batch(
        client,
        sam,
        {**sitting, "device_started_at": "2026-12-01T08:59:58+01:00", "seq": 1,
         "segments": [[0, 30_000]], "device_at": "2026-12-01T09:00:30+01:00"},
        # Crosses the 90 % threshold: completed then, by the device's clock.
        {**sitting, "seq": 2, "segments": [[30_000, 55_000]],
         "device_at": "2026-12-01T09:00:55+01:00"},
        {**sitting, "seq": 3, "segments": [[55_000, 60_000]],
         "device_at": "2026-12-01T09:01:00+01:00"},
    )  # fmt: skip
    assert [r["status"] for r in results] == [200, 200, 200]
    assert not results[0]["progress"]["completed"] and results[1]["progress"]["completed"]
    # Starting the session again shows the view as a learning record needs it.
    view = _start(client, sam, video, session_id=offline).get_json()
    assert view["id"] == results[0]["view_id"]
    assert _at(view["device_started_at"]) == datetime(2026, 12, 1, 7, 59, 58, tzinfo=UTC)
    assert _at(view["device_last_at"]) == datetime(2026, 12, 1, 8, 1, tzinfo=UTC)
    assert _at(view["device_completed_at"]) == datetime(2026, 12, 1, 8, 0, 55, tzinfo=UTC)
    assert view["completed_at"] is not None and view["played_ms"] == MINUTE
    # A report without `device_at` that completes a view: its last event's time is taken.
    other = _start(client, sam, video).get_json()
    events = [
        {"kind": "play", "position_ms": 0, "device_at": "2026-12-02T10:00:00Z"},
        {"kind": "complete", "position_ms": MINUTE, "device_at": "2026-12-02T10:01:00Z"},
    ]
    _report(client, sam, other["id"], seq=1, segments=[[0, MINUTE]], events=events)
    row = session.get(View, other["id"])
    assert row is not None and row.device_completed_at is not None
    assert row.device_completed_at == datetime(2026, 12, 2, 10, 1, tzinfo=UTC)


def test_reports_are_rate_limited_per_person_each_report_of_a_batch_counting(
    settings: Any, context: AppContext, session: Session, world: dict[str, Any]
) -> None:
    limited = dataclasses.replace(settings, view_reports_per_minute=3)
    context.settings = limited
    client = create_app(limited, context=context).test_client()
    sam = bearer(client, world["sam"])
    view = _start(client, sam, world["video"]).get_json()
    _report(client, sam, view["id"], seq=1, segments=[[0, 1_000]])
    one = {"view_id": view["id"], "seq": 2, "segments": [[1_000, 2_000]]}
    assert len(_batch(client, sam, one, {**one, "seq": 3})) == 2
    refused = [
        client.post(f"/api/v1/views/{view['id']}/reports", json={"seq": 4}, headers=sam),
        client.post("/api/v1/views/reports", json={"reports": [{**one, "seq": 5}]}, headers=sam),
    ]
    for response in refused:
        assert response.status_code == 429 and response.get_json()["code"] == "rate_limited"
        assert int(response.headers["Retry-After"]) >= 1
    row = session.get(View, view["id"])
    assert row is not None and row.reports == 3 and row.last_seq == 3
    # Someone else is not held back.
    kim_share = share_video(client, bearer(client, world["ana"]), world["video"], world["kim"])
    assert kim_share
    kim = bearer(client, world["kim"])
    theirs = _start(client, kim, world["video"]).get_json()
    _report(client, kim, theirs["id"], seq=1, segments=[[0, 1_000]])


def test_views_started_a_day_and_events_kept_a_view_are_bounded(
    client: FlaskClient, session: Session, world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(progress, "MAX_VIEWS_PER_DAY", 2)
    monkeypatch.setattr(progress, "MAX_VIEW_EVENTS", 3)
    sam, video = bearer(client, world["sam"]), world["video"]
    first = _start(client, sam, video, session_id=str(uuid.uuid4())).get_json()
    _start(client, sam, video)
    third = client.post(f"/api/v1/videos/{video.id}/views", json={}, headers=sam)
    assert third.status_code == 429 and third.get_json()["code"] == "rate_limited"
    assert 0 < int(third.headers["Retry-After"]) <= 24 * 3600
    # A session started already is the same view: not one more.
    assert _start(client, sam, video, session_id=first["session_id"]).status_code == 200
    offline = {"session_id": str(uuid.uuid4()), "video_id": str(video.id), "seq": 1}
    assert _batch(client, sam, offline)[0]["problem"]["code"] == "rate_limited"
    # Past MAX_VIEW_EVENTS kept of a view, events are dropped; the segments still count.
    events = [{"kind": "play", "position_ms": 0}, {"kind": "pause", "position_ms": 2_000}]
    _report(client, sam, first["id"], seq=1, segments=[[0, 2_000]], events=events)
    done = _report(client, sam, first["id"], seq=2, segments=[[2_000, 9_000]], events=events)
    assert done["view"]["played_ms"] == 9_000
    kept = session.scalars(
        select(ViewEvent.seq).where(ViewEvent.view_id == first["id"]).order_by(ViewEvent.seq)
    ).all()
    assert kept == [1, 1, 2]


def test_the_database_keeps_the_threshold_from_1_to_100_and_sums_a_multirange(
    session: Session, org: Any
) -> None:
    for pct in (0, 101):
        with pytest.raises(IntegrityError), session.begin_nested():
            session.execute(
                update(Organisation)
                .where(Organisation.id == org.id)
                .values(completion_threshold_pct=pct)
            )
    assert session.scalar(text("SELECT multirange_ms('{[0,10), [20,25)}')")) == 15
    assert session.scalar(text("SELECT multirange_ms('{}')")) == 0
    # IMMUTABLE, so the planner may inline and fold it.
    volatility = session.scalar(
        text("SELECT provolatile FROM pg_proc WHERE proname = 'multirange_ms'")
    )
    assert volatility == "i"


def test_shares_made_after_the_person_played_are_watched_at_once(
    client: FlaskClient, session: Session, context: AppContext, world: dict[str, Any]
) -> None:
    ana, sam, kim = (bearer(client, world[k]) for k in ("ana", "sam", "kim"))
    video = world["video"]
    share_video(client, ana, video, world["kim"])
    drain(context)
    # Sam played 10 s; Kim only 1 s (not enough to count as watched).
    for headers, played in ((sam, 10_000), (kim, 1_000)):
        view = _start(client, headers, video).get_json()
        _report(client, headers, view["id"], seq=1, segments=[[0, played]])
    later = share_video(client, ana, video, world["sam"], world["kim"])
    drain(context)
    rows = {
        row.user_id: row
        for row in session.scalars(
            select(ShareRecipient).where(ShareRecipient.share_id == uuid.UUID(later))
        )
    }
    assert rows[world["sam"].id].state.value == "watched"
    assert rows[world["sam"].id].watched_at is not None
    assert rows[world["kim"].id].state.value != "watched"
    assert rows[world["kim"].id].watched_at is None
