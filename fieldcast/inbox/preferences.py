"""How each user wants pushes: notification types they muted, videos they muted, and quiet
hours in their own time zone.

Preferences only ever hold pushes back. Muted or quiet, the inbox item is still made; a quiet
period defers the push to its end, it is not dropped. The push worker reads preferences for
hundreds of users at a time, so its loaders answer for all of them in one query each.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldcast.db import utcnow
from fieldcast.errors import ErrorCode, InvalidInput
from fieldcast.inbox.types import NotificationType
from fieldcast.models.inbox import NotificationPreference, VideoMute
from fieldcast.models.videos import Video
from fieldcast.policy import Principal, load_video, mine

# The push types a user can mute: all of them. Inbox items of every type are made regardless.
NOTIFICATION_TYPES: tuple[str, ...] = tuple(kind.value for kind in NotificationType)

DeliveryPreferences = tuple[tuple[str, ...], time | None, time | None]


@dataclass(frozen=True)
class Preferences:
    """A user's push preferences, with the time zone their quiet hours are read in.

    The time zone belongs to the profile (`users.time_zone`); it is here because quiet hours
    mean nothing without it.
    """

    muted_types: tuple[str, ...] = ()
    quiet_start: time | None = None
    quiet_end: time | None = None
    time_zone: str = "UTC"


# -- quiet hours -------------------------------------------------------------------------------


def _zone(name: str) -> tzinfo:
    """The named IANA zone, or UTC: a stale or mistyped zone must not stop pushes."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def _instant(day: date, wall: time, zone: tzinfo) -> datetime:
    """The UTC instant at which the local clock in `zone` shows `wall` on `day`.

    An ambiguous wall time (the repeated hour when clocks go back) is its first occurrence
    (fold=0). A wall time that does not exist (skipped when clocks go forward) becomes the
    first valid instant after it: the moment the clocks jump.
    """
    local = datetime.combine(day, wall.replace(tzinfo=None, fold=0))
    first = local.replace(tzinfo=zone).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == local:
        return first
    # In a gap, fold=0 reads the wall time with the offset from before the jump (an instant
    # after it) and fold=1 with the offset from after (an instant before it). The jump lies
    # between; find the first whole second whose local time is past the wall time.
    before = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low = math.floor(before.timestamp())
    high = math.ceil(first.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        shown = datetime.fromtimestamp(middle, UTC).astimezone(zone).replace(tzinfo=None)
        if shown > local:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def quiet_until(
    quiet_start: time | None, quiet_end: time | None, time_zone: str, now: datetime
) -> datetime | None:
    """When the user's current quiet period ends (aware, UTC), or None if `now` is not in one.

    Quiet hours are local wall-clock times in the user's `time_zone` (an unknown name reads as
    UTC) and may cross midnight (22:00-07:00). The start is inclusive, the end exclusive, so a
    push deferred to the returned instant goes out then. Start equal to end, or either missing,
    means no quiet hours. Each period is the instants between its start and its end on the right
    local dates, so clock changes inside it shorten or lengthen it as the user lives it.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if quiet_start is None or quiet_end is None or quiet_start == quiet_end:
        return None
    zone = _zone(time_zone)
    today = now.astimezone(zone).date()
    crosses_midnight = quiet_start > quiet_end
    # A period that started yesterday evening may still be running; at a clock change around
    # midnight, the local date alone does not settle which period `now` is in.
    for offset in (-1, 0, 1):
        start_day = today + timedelta(days=offset)
        end_day = start_day + timedelta(days=1) if crosses_midnight else start_day
        start = _instant(start_day, quiet_start, zone)
        end = _instant(end_day, quiet_end, zone)
        if start <= now < end:
            return end
    return None


# -- a user's own preferences ------------------------------------------------------------------


def get_preferences(session: Session, principal: Principal) -> Preferences:
    """The principal's preferences; nothing muted and no quiet hours until they set some."""
    muted_types, quiet_start, quiet_end = load_for_delivery(session, [principal.user_id]).get(
        principal.user_id, ((), None, None)
    )
    return Preferences(
        muted_types=muted_types,
        quiet_start=quiet_start,
        quiet_end=quiet_end,
        time_zone=principal.user.time_zone,
    )


def _clean_muted_types(muted_types: Sequence[str]) -> tuple[str, ...]:
    unknown = sorted({name for name in muted_types if name not in NOTIFICATION_TYPES})
    if unknown:
        raise InvalidInput(
            "Some of these are not notification types that can be muted.",
            code=ErrorCode.UNKNOWN_NOTIFICATION_TYPE,
            errors={
                "muted_types": [
                    f"Unknown notification type {name!r}; one of: {', '.join(NOTIFICATION_TYPES)}."
                    for name in unknown
                ]
            },
        )
    chosen = set(muted_types)
    # Stored in a fixed order, so the same choice always reads back the same.
    return tuple(name for name in NOTIFICATION_TYPES if name in chosen)


def _check_quiet_hours(quiet_start: time | None, quiet_end: time | None) -> None:
    if (quiet_start is None) != (quiet_end is None):
        raise InvalidInput(errors={"quiet_hours": ["Give both a start and an end, or neither."]})
    if quiet_start is not None and quiet_start == quiet_end:
        # 22:00-22:00 could mean all day or never; neither is what anyone sets on purpose.
        raise InvalidInput(errors={"quiet_hours": ["The start and the end must differ."]})


def set_preferences(
    session: Session,
    principal: Principal,
    *,
    muted_types: Sequence[str],
    quiet_start: time | None,
    quiet_end: time | None,
) -> Preferences:
    """Replace the principal's preferences and commit.

    An upsert, so two phones saving at once leave one of the two choices, never an error.
    """
    types = _clean_muted_types(muted_types)
    _check_quiet_hours(quiet_start, quiet_end)
    time_zone = principal.user.time_zone
    values = {"muted_types": list(types), "quiet_start": quiet_start, "quiet_end": quiet_end}
    stmt = insert(NotificationPreference).values(
        org_id=principal.org_id, user_id=principal.user_id, **values
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[NotificationPreference.user_id],
            set_={**values, "updated_at": utcnow()},
        )
    )
    session.flush()
    return Preferences(
        muted_types=types, quiet_start=quiet_start, quiet_end=quiet_end, time_zone=time_zone
    )


def _mutable_video(session: Session, principal: Principal, video_id: uuid.UUID) -> Video:
    return load_video(session, principal, video_id, "video.mute")


def mute_video(session: Session, principal: Principal, video_id: uuid.UUID) -> None:
    """No more pushes about this video for the principal. Muting twice is muting once."""
    video = _mutable_video(session, principal, video_id)
    session.execute(
        insert(VideoMute)
        .values(org_id=principal.org_id, user_id=principal.user_id, video_id=video.id)
        .on_conflict_do_nothing(index_elements=[VideoMute.user_id, VideoMute.video_id])
    )
    session.flush()


def unmute_video(session: Session, principal: Principal, video_id: uuid.UUID) -> None:
    """Pushes about this video again. Unmuting a video that is not muted changes nothing."""
    video = _mutable_video(session, principal, video_id)
    session.execute(
        delete(VideoMute).where(mine(principal, VideoMute), VideoMute.video_id == video.id)
    )
    session.flush()


def muted_video_ids(session: Session, principal: Principal) -> list[uuid.UUID]:
    """The videos the principal muted, most recently muted first."""
    return list(
        session.scalars(
            select(VideoMute.video_id)
            .where(mine(principal, VideoMute))
            .order_by(VideoMute.created_at.desc(), VideoMute.video_id)
        )
    )


# -- for the push worker -----------------------------------------------------------------------


def load_for_delivery(
    session: Session, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, DeliveryPreferences]:
    """(muted_types, quiet_start, quiet_end) of each of these users who set preferences.

    Users without a row are left out: they have the defaults (nothing muted, no quiet hours).
    One query however many users.
    """
    if not user_ids:
        return {}
    rows = session.execute(
        select(
            NotificationPreference.user_id,
            NotificationPreference.muted_types,
            NotificationPreference.quiet_start,
            NotificationPreference.quiet_end,
        ).where(NotificationPreference.user_id.in_(list(dict.fromkeys(user_ids))))
    )
    return {
        user_id: (tuple(muted_types or ()), quiet_start, quiet_end)
        for user_id, muted_types, quiet_start, quiet_end in rows
    }


def muted_pairs(
    session: Session, pairs: Sequence[tuple[uuid.UUID, uuid.UUID]]
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """Which of these (user_id, video_id) pairs are muted. One query however many pairs."""
    if not pairs:
        return set()
    rows = session.execute(
        select(VideoMute.user_id, VideoMute.video_id).where(
            tuple_(VideoMute.user_id, VideoMute.video_id).in_(list(dict.fromkeys(pairs)))
        )
    )
    return {(user_id, video_id) for user_id, video_id in rows}
