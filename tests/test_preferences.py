"""Notification preferences: quiet hours as users live them (across midnight and clock changes),
muted types and videos, the push worker's batch loaders, and the API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fieldcast.errors import InvalidInput, NotFound
from fieldcast.inbox.preferences import (
    NOTIFICATION_TYPES,
    Preferences,
    get_preferences,
    load_for_delivery,
    mute_video,
    muted_pairs,
    muted_video_ids,
    quiet_until,
    set_preferences,
    unmute_video,
)
from fieldcast.models.inbox import NotificationPreference, VideoMute
from fieldcast.models.sharing import Share, ShareAudience
from fieldcast.models.videos import Video
from fieldcast.policy import Principal
from tests import factories


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


NIGHT = (time(22, 0), time(7, 0))


# -- quiet_until: plain days -----------------------------------------------------------------


def test_inside_a_daytime_period_it_ends_at_its_end() -> None:
    lunch = (time(12, 0), time(13, 30))
    assert quiet_until(*lunch, "UTC", utc(2024, 6, 3, 12, 45)) == utc(2024, 6, 3, 13, 30)
    assert quiet_until(*lunch, "UTC", utc(2024, 6, 3, 11, 59)) is None
    assert quiet_until(*lunch, "UTC", utc(2024, 6, 3, 14, 0)) is None


def test_a_period_across_midnight_ends_on_the_right_day() -> None:
    # Berlin in winter is UTC+1: 22:00-07:00 local is 21:00-06:00 UTC.
    evening = utc(2024, 1, 15, 22, 30)  # 23:30 local
    assert quiet_until(*NIGHT, "Europe/Berlin", evening) == utc(2024, 1, 16, 6, 0)
    small_hours = utc(2024, 1, 16, 2, 0)  # 03:00 local
    assert quiet_until(*NIGHT, "Europe/Berlin", small_hours) == utc(2024, 1, 16, 6, 0)
    assert quiet_until(*NIGHT, "Europe/Berlin", utc(2024, 1, 16, 11, 0)) is None
    assert quiet_until(*NIGHT, "Europe/Berlin", utc(2024, 1, 16, 20, 59)) is None


def test_the_start_is_inside_and_the_end_is_not() -> None:
    assert quiet_until(*NIGHT, "UTC", utc(2024, 6, 3, 22, 0)) == utc(2024, 6, 4, 7, 0)
    assert quiet_until(*NIGHT, "UTC", utc(2024, 6, 4, 6, 59, 59)) == utc(2024, 6, 4, 7, 0)
    # A push deferred to the end goes out then, instead of being deferred again.
    assert quiet_until(*NIGHT, "UTC", utc(2024, 6, 4, 7, 0)) is None


@pytest.mark.parametrize(
    ("start", "end"),
    [(time(22, 0), time(22, 0)), (None, time(7, 0)), (time(22, 0), None), (None, None)],
)
def test_no_quiet_hours_without_a_real_period(start: time | None, end: time | None) -> None:
    for hour in range(24):
        assert quiet_until(start, end, "Europe/Berlin", utc(2024, 6, 3, hour, 0)) is None


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "../etc/passwd", "utc+2"])
def test_an_unknown_zone_reads_as_utc(zone: str) -> None:
    assert quiet_until(*NIGHT, zone, utc(2024, 6, 3, 23, 0)) == utc(2024, 6, 4, 7, 0)
    assert quiet_until(*NIGHT, zone, utc(2024, 6, 3, 21, 0)) is None


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="aware"):
        quiet_until(*NIGHT, "UTC", datetime(2024, 6, 3, 23, 0))


# -- quiet_until: clock changes --------------------------------------------------------------


def test_berlin_spring_forward_night_is_an_hour_shorter() -> None:
    # 2024-03-31 02:00 CET becomes 03:00 CEST (01:00 UTC).
    evening = utc(2024, 3, 30, 21, 30)  # 22:30 CET
    assert quiet_until(*NIGHT, "Europe/Berlin", evening) == utc(2024, 3, 31, 5, 0)  # 07:00 CEST
    assert quiet_until(*NIGHT, "Europe/Berlin", utc(2024, 3, 31, 4, 59)) == utc(2024, 3, 31, 5, 0)
    assert quiet_until(*NIGHT, "Europe/Berlin", utc(2024, 3, 31, 5, 0)) is None


def test_an_end_skipped_by_spring_forward_is_the_moment_the_clocks_jump() -> None:
    # 02:30 does not exist in Berlin on 2024-03-31; the first instant after it is 03:00 CEST.
    period = (time(0, 30), time(2, 30))
    before_jump = utc(2024, 3, 31, 0, 15)  # 01:15 CET
    assert quiet_until(*period, "Europe/Berlin", before_jump) == utc(2024, 3, 31, 1, 0)
    assert quiet_until(*period, "Europe/Berlin", utc(2024, 3, 31, 1, 0)) is None  # 03:00 CEST


def test_new_york_spring_forward() -> None:
    # 2024-03-10 02:00 EST becomes 03:00 EDT (07:00 UTC).
    evening = utc(2024, 3, 10, 4, 0)  # 23:00 EST on the 9th
    assert quiet_until(*NIGHT, "America/New_York", evening) == utc(2024, 3, 10, 11, 0)
    skipped_end = (time(1, 0), time(2, 30))
    at_1_45 = utc(2024, 3, 10, 6, 45)  # 01:45 EST
    assert quiet_until(*skipped_end, "America/New_York", at_1_45) == utc(2024, 3, 10, 7, 0)
    # A start inside the gap begins when the clocks jump.
    skipped_start = (time(2, 30), time(6, 0))
    assert quiet_until(*skipped_start, "America/New_York", utc(2024, 3, 10, 6, 59)) is None
    at_jump = utc(2024, 3, 10, 7, 0)  # 03:00 EDT
    assert quiet_until(*skipped_start, "America/New_York", at_jump) == utc(2024, 3, 10, 10, 0)


def test_berlin_fall_back_night_is_an_hour_longer() -> None:
    # 2024-10-27 03:00 CEST becomes 02:00 CET (01:00 UTC).
    evening = utc(2024, 10, 26, 21, 0)  # 23:00 CEST
    assert quiet_until(*NIGHT, "Europe/Berlin", evening) == utc(2024, 10, 27, 6, 0)  # 07:00 CET
    repeated_hour = utc(2024, 10, 27, 1, 30)  # the second 02:30
    assert quiet_until(*NIGHT, "Europe/Berlin", repeated_hour) == utc(2024, 10, 27, 6, 0)


def test_an_ambiguous_end_is_its_first_occurrence() -> None:
    period = (time(0, 0), time(2, 30))
    first_pass = utc(2024, 10, 27, 0, 10)  # 02:10 CEST
    assert quiet_until(*period, "Europe/Berlin", first_pass) == utc(2024, 10, 27, 0, 30)
    # Once the first 02:30 has passed, the period is over, though the clock shows 02:10 again.
    second_pass = utc(2024, 10, 27, 1, 10)  # 02:10 CET
    assert quiet_until(*period, "Europe/Berlin", second_pass) is None


def test_new_york_fall_back() -> None:
    # 2024-11-03 02:00 EDT becomes 01:00 EST (06:00 UTC).
    evening = utc(2024, 11, 3, 3, 0)  # 23:00 EDT on the 2nd
    assert quiet_until(*NIGHT, "America/New_York", evening) == utc(2024, 11, 3, 12, 0)
    period = (time(23, 0), time(1, 30))
    first_pass = utc(2024, 11, 3, 5, 10)  # 01:10 EDT
    assert quiet_until(*period, "America/New_York", first_pass) == utc(2024, 11, 3, 5, 30)
    second_pass = utc(2024, 11, 3, 6, 10)  # 01:10 EST
    assert quiet_until(*period, "America/New_York", second_pass) is None


def _sweep(start: datetime, hours: int) -> Iterator[datetime]:
    for step in range(hours * 4):
        yield start + timedelta(minutes=15 * step)


@pytest.mark.parametrize(
    ("zone", "day"),
    [
        ("Europe/Berlin", utc(2024, 3, 30)),
        ("Europe/Berlin", utc(2024, 10, 26)),
        ("America/New_York", utc(2024, 3, 9)),
        ("America/New_York", utc(2024, 11, 2)),
    ],
)
@pytest.mark.parametrize(
    "period",
    [NIGHT, (time(1, 0), time(2, 30)), (time(2, 30), time(3, 30)), (time(1, 30), time(0, 30))],
)
def test_a_deferred_push_always_goes_out_at_the_end(
    zone: str, day: datetime, period: tuple[time, time]
) -> None:
    """Whatever the clocks do, the end lies ahead and is itself outside quiet hours: a push
    deferred to it is sent then, never deferred forever."""
    for now in _sweep(day, 72):
        until = quiet_until(*period, zone, now)
        if until is not None:
            assert until > now
            assert until.utcoffset() == timedelta(0)
            assert until - now <= timedelta(hours=25)
            assert quiet_until(*period, zone, until) is None


# -- the user's own preferences --------------------------------------------------------------


def _member(org: Any) -> Any:
    return factories.UserFactory(org=org)


def _video(session: Session, owner: Any, title: str = "Handling the price objection") -> Video:
    video = Video(org_id=owner.org_id, owner_id=owner.id, title=title)
    session.add(video)
    session.flush()
    return video


def _share(session: Session, video: Video, recipient: Any) -> None:
    share = Share(org_id=video.org_id, video_id=video.id, sender_id=video.owner_id)
    session.add(share)
    session.flush()
    session.add(
        ShareAudience(
            org_id=video.org_id,
            share_id=share.id,
            block=0,
            video_id=video.id,
            user_ids=[recipient.id],
        )
    )
    session.flush()


def test_defaults_until_set(session: Session, rep: Any) -> None:
    rep.time_zone = "Europe/Berlin"
    assert get_preferences(session, Principal(rep)) == Preferences(
        muted_types=(), quiet_start=None, quiet_end=None, time_zone="Europe/Berlin"
    )


def test_setting_again_replaces_the_one_row(session: Session, org: Any, rep: Any) -> None:
    principal = Principal(rep)
    first = set_preferences(
        session,
        principal,
        muted_types=["comment.reply", "video.failed", "comment.reply"],
        quiet_start=time(22, 0),
        quiet_end=time(7, 0),
    )
    # Duplicates go; the order is the catalogue's, whatever order they came in.
    assert first.muted_types == ("video.failed", "comment.reply")
    assert get_preferences(session, principal) == first

    second = set_preferences(
        session, principal, muted_types=["share.received"], quiet_start=None, quiet_end=None
    )
    assert second == Preferences(("share.received",), None, None, "UTC")
    assert get_preferences(session, principal) == second
    rows = session.scalar(
        select(func.count())
        .select_from(NotificationPreference)
        .where(NotificationPreference.user_id == rep.id)
    )
    assert rows == 1
    # A colleague's preferences are their own.
    assert get_preferences(session, Principal(_member(org))) == Preferences()


def test_unknown_types_are_refused_with_a_stable_code(session: Session, rep: Any) -> None:
    principal = Principal(rep)
    with pytest.raises(InvalidInput) as refused:
        set_preferences(
            session,
            principal,
            muted_types=["video.playable", "video.exploded"],
            quiet_start=None,
            quiet_end=None,
        )
    assert refused.value.code == "unknown_notification_type"
    assert refused.value.errors is not None
    assert "video.exploded" in refused.value.errors["muted_types"][0]
    assert get_preferences(session, principal).muted_types == ()


@pytest.mark.parametrize(
    ("start", "end"),
    [(time(22, 0), None), (None, time(7, 0)), (time(22, 0), time(22, 0))],
)
def test_quiet_hours_need_a_start_and_a_different_end(
    session: Session, rep: Any, start: time | None, end: time | None
) -> None:
    with pytest.raises(InvalidInput) as refused:
        set_preferences(session, Principal(rep), muted_types=[], quiet_start=start, quiet_end=end)
    assert refused.value.errors is not None
    assert "quiet_hours" in refused.value.errors
    assert get_preferences(session, Principal(rep)).quiet_start is None


def test_muting_a_video_twice_is_muting_it_once(session: Session, rep: Any) -> None:
    principal = Principal(rep)
    older, newer = _video(session, rep, "Older"), _video(session, rep, "Newer")
    mute_video(session, principal, older.id)
    mute_video(session, principal, newer.id)
    mute_video(session, principal, older.id)
    assert set(muted_video_ids(session, principal)) == {older.id, newer.id}
    assert session.scalar(select(func.count()).select_from(VideoMute)) == 2

    unmute_video(session, principal, older.id)
    unmute_video(session, principal, older.id)
    assert muted_video_ids(session, principal) == [newer.id]


def test_a_video_shared_with_you_can_be_muted(session: Session, org: Any, rep: Any) -> None:
    colleague = _member(org)
    video = _video(session, colleague)
    _share(session, video, rep)
    mute_video(session, Principal(rep), video.id)
    assert muted_video_ids(session, Principal(rep)) == [video.id]
    assert muted_video_ids(session, Principal(colleague)) == []


def test_a_video_you_cannot_see_cannot_be_muted(
    session: Session, org: Any, rep: Any, outsider: Any
) -> None:
    video = _video(session, _member(org))
    for someone in (rep, outsider):
        with pytest.raises(NotFound):
            mute_video(session, Principal(someone), video.id)
        with pytest.raises(NotFound):
            unmute_video(session, Principal(someone), video.id)
    with pytest.raises(NotFound):
        mute_video(session, Principal(rep), uuid.uuid4())
    assert session.scalar(select(func.count()).select_from(VideoMute)) == 0


# -- the push worker's loaders ---------------------------------------------------------------


def test_load_for_delivery_answers_for_many_users_in_one_query(
    session: Session, org: Any, count_queries: Any
) -> None:
    users = [_member(org) for _ in range(6)]
    quiet, muting, both = users[0], users[1], users[2]
    set_preferences(
        session, Principal(quiet), muted_types=[], quiet_start=time(22), quiet_end=time(7)
    )
    set_preferences(
        session,
        Principal(muting),
        muted_types=["video.failed"],
        quiet_start=None,
        quiet_end=None,
    )
    set_preferences(
        session,
        Principal(both),
        muted_types=list(NOTIFICATION_TYPES),
        quiet_start=time(12),
        quiet_end=time(13),
    )
    ids = [user.id for user in users] + [uuid.uuid4()]

    count_queries.statements.clear()
    loaded = load_for_delivery(session, ids)
    assert count_queries.count == 1, count_queries.statements
    assert loaded == {
        quiet.id: ((), time(22), time(7)),
        muting.id: (("video.failed",), None, None),
        both.id: (NOTIFICATION_TYPES, time(12), time(13)),
    }

    count_queries.statements.clear()
    assert load_for_delivery(session, []) == {}
    assert count_queries.count == 0


def test_muted_pairs_answers_for_many_pairs_in_one_query(
    session: Session, org: Any, count_queries: Any
) -> None:
    users = [_member(org) for _ in range(3)]
    videos = [_video(session, user) for user in users]
    mute_video(session, Principal(users[0]), videos[0].id)
    mute_video(session, Principal(users[1]), videos[1].id)
    asked = [(user.id, video.id) for user in users for video in videos]

    count_queries.statements.clear()
    muted = muted_pairs(session, asked)
    assert count_queries.count == 1, count_queries.statements
    assert muted == {(users[0].id, videos[0].id), (users[1].id, videos[1].id)}

    count_queries.statements.clear()
    assert muted_pairs(session, []) == set()
    assert count_queries.count == 0


# -- the API ---------------------------------------------------------------------------------

PREFS = "/api/v1/me/notification-preferences"


@pytest.fixture
def api(app: Flask, client: FlaskClient) -> FlaskClient:
    if "preferences" not in app.blueprints:
        pytest.skip("the preferences blueprint is not registered in api/app.py yet")
    return client


def test_preferences_read_back_as_set(api: FlaskClient, rep: Any, auth: Any) -> None:
    headers = auth(rep)
    profile = api.patch("/api/v1/me", json={"time_zone": "Europe/Berlin"}, headers=headers)
    assert profile.status_code == 200
    fresh = api.get(PREFS, headers=headers)
    assert fresh.status_code == 200
    assert fresh.get_json() == {
        "muted_types": [],
        "quiet_hours": None,
        "time_zone": "Europe/Berlin",
    }
    body = {"muted_types": ["video.playable"], "quiet_hours": {"start": "22:00", "end": "07:00"}}
    saved = api.put(PREFS, json=body, headers=headers)
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json() == {**body, "time_zone": "Europe/Berlin"}
    assert api.get(PREFS, headers=headers).get_json() == saved.get_json()

    cleared = api.put(PREFS, json={"muted_types": [], "quiet_hours": None}, headers=headers)
    assert cleared.get_json() == {
        "muted_types": [],
        "quiet_hours": None,
        "time_zone": "Europe/Berlin",
    }


@pytest.mark.parametrize(
    ("body", "field", "code"),
    [
        ({"muted_types": ["video.exploded"], "quiet_hours": None}, "muted_types", None),
        (
            {"muted_types": [], "quiet_hours": None, "time_zone": "Asia/Tokyo"},
            "time_zone",
            "validation_failed",
        ),
        (
            {"muted_types": [], "quiet_hours": {"start": "25:00", "end": "07:00"}},
            "quiet_hours",
            "validation_failed",
        ),
        (
            {"muted_types": [], "quiet_hours": {"start": "22:00"}},
            "quiet_hours",
            "validation_failed",
        ),
        (
            {"muted_types": [], "quiet_hours": {"start": "22:00", "end": "22:00"}},
            "quiet_hours",
            "validation_failed",
        ),
        ({"quiet_hours": None}, "muted_types", "validation_failed"),
    ],
)
def test_bad_preferences_name_the_field(
    api: FlaskClient, rep: Any, auth: Any, body: dict[str, Any], field: str, code: str | None
) -> None:
    headers = auth(rep)
    response = api.put(PREFS, json=body, headers=headers)
    assert response.status_code == 422, response.get_json()
    problem = response.get_json()
    assert field in problem["errors"], problem
    assert problem["code"] == (code or "unknown_notification_type")
    assert api.get(PREFS, headers=headers).get_json()["quiet_hours"] is None


def test_muting_videos_through_the_api(
    api: FlaskClient, session: Session, org: Any, rep: Any, auth: Any
) -> None:
    headers = auth(rep)
    mine = _video(session, rep)
    shared = _video(session, _member(org))
    _share(session, shared, rep)
    hidden = _video(session, _member(org))

    for video in (mine, shared, shared):
        response = api.put(f"/api/v1/videos/{video.id}/mute", headers=headers)
        assert response.status_code == 204
        assert response.get_data() == b""
    listed = api.get("/api/v1/me/muted-videos", headers=headers).get_json()
    assert sorted(listed["video_ids"]) == sorted([str(mine.id), str(shared.id)])

    for video_id in (hidden.id, uuid.uuid4()):
        for method in ("PUT", "DELETE"):
            refused = api.open(f"/api/v1/videos/{video_id}/mute", method=method, headers=headers)
            assert refused.status_code == 404
            assert refused.get_json()["code"] == "not_found"

    assert api.delete(f"/api/v1/videos/{mine.id}/mute", headers=headers).status_code == 204
    assert api.delete(f"/api/v1/videos/{mine.id}/mute", headers=headers).status_code == 204
    listed = api.get("/api/v1/me/muted-videos", headers=headers).get_json()
    assert listed == {"video_ids": [str(shared.id)]}


def test_preferences_need_a_signed_in_user(api: FlaskClient) -> None:
    assert api.get(PREFS).status_code == 401
    assert api.get("/api/v1/me/muted-videos").status_code == 401
    assert api.put(f"/api/v1/videos/{uuid.uuid4()}/mute").status_code == 401
