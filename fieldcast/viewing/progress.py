"""What people actually played: views, their reports, and progress.

A player starts a view (`start`) and then reports, at most every few seconds or in a batch
when it comes back online, the segments it played, its position and its events (`report`).
Segments are merged in PostgreSQL as a union of [start, end) milliseconds (an int4multirange),
so a report sent twice, or after a later one, changes nothing the second time; events are
kept once per (view, report number, place in the report). A person's progress on a video is
the union over all their views of it; it is completed once that covers the organisation's
`completion_threshold_pct` of the video. Shares of the video to the person become `watched`
once they really played some of it (`WATCHED_MS`, or the whole video if shorter).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldcast.errors import Conflict, ErrorCode, InvalidInput, NotFound
from fieldcast.models.accounts import Organisation
from fieldcast.models.sharing import RecipientState, Share, ShareRecipient
from fieldcast.models.videos import Video
from fieldcast.models.viewing import VideoProgress, View, ViewEvent, ViewEventKind
from fieldcast.policy import Principal, authorize, load_video, mine
from fieldcast.sharing import tracking

# Played this long (or the whole video, if shorter), a share of it counts as watched.
WATCHED_MS = 3_000


class NotPlayable(Conflict):
    code = ErrorCode.VIDEO_NOT_PLAYABLE
    title = "The video cannot be played yet"


@dataclass(frozen=True)
class Event:
    kind: ViewEventKind
    position_ms: int
    device_at: datetime | None = None


@dataclass(frozen=True)
class Progress:
    video_id: uuid.UUID
    played_ms: int
    duration_ms: int
    completed_at: datetime | None

    @property
    def fraction(self) -> float:
        return min(1.0, self.played_ms / self.duration_ms) if self.duration_ms else 0.0


@dataclass(frozen=True)
class Reported:
    """After a report: the person's progress on the video, and this view's on its range (the
    clip's, for a view of a clip)."""

    video: Progress
    view: Progress


def start(
    session: Session,
    principal: Principal,
    video_id: uuid.UUID,
    *,
    session_id: uuid.UUID | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    device_started_at: datetime | None = None,
) -> tuple[View, bool]:
    """A view of the video (or of its [start_ms, end_ms) clip) by the principal; the same
    `session_id` again is the same view (created: False)."""
    video = load_video(session, principal, video_id)
    if session_id is not None:
        found = session.scalar(
            select(View).where(View.user_id == principal.user_id, View.session_id == session_id)
        )
        if found is not None:
            if found.video_id != video.id:
                raise InvalidInput(
                    "This session_id is a view of another video.",
                    errors={"session_id": ["a view of another video"]},
                )
            return found, False
    duration = video.duration_ms or 0
    if not duration:
        # (Its duration is known once a first rendition plays; a file being replaced keeps
        # the old one's.)
        raise NotPlayable("Start a view once the video is playable (its `status`).")
    low = start_ms or 0
    high = min(end_ms if end_ms is not None else duration, duration)
    if high <= low:
        raise InvalidInput(
            "The clip must end after it starts, within the video.",
            errors={"end_ms": ["after start_ms, within the video"]},
        )
    # Two starts of one session at once (a retry on a flaky network) make one view.
    made = session.scalar(
        insert(View)
        .values(
            org_id=principal.org_id,
            video_id=video.id,
            user_id=principal.user_id,
            session_id=session_id or uuid.uuid4(),
            start_ms=low,
            end_ms=high,
            device_started_at=device_started_at,
        )
        .on_conflict_do_nothing(index_elements=["user_id", "session_id"])
        .returning(View.id)
    )
    if made is None:
        return start(session, principal, video_id, session_id=session_id)
    view = session.get(View, made)
    assert view is not None
    return view, True


def load_view(session: Session, principal: Principal, view_id: uuid.UUID) -> View:
    """One of the principal's own views, of a video they still see; anything else is not
    found (a recalled share, a deleted video: nothing more is counted)."""
    view = session.scalar(select(View).where(View.id == view_id, mine(principal, View)))
    if view is None:
        raise NotFound(f"No view with id {view_id}.")
    load_video(session, principal, view.video_id)
    return view


def report(
    session: Session,
    view: View,
    *,
    seq: int,
    segments: list[tuple[int, int]],
    position_ms: int | None = None,
    events: list[Event] | None = None,
    device_at: datetime | None = None,
) -> Reported:
    """Merge one report into its view and the person's progress; idempotent."""
    ranges = _clipped(view, segments)
    if events:
        session.execute(
            insert(ViewEvent)
            .values(
                [
                    {
                        "org_id": view.org_id,
                        "view_id": view.id,
                        "seq": seq,
                        "n": n,
                        "kind": event.kind,
                        "position_ms": event.position_ms,
                        "device_at": event.device_at,
                    }
                    for n, event in enumerate(events)
                ]
            )
            .on_conflict_do_nothing()
        )
    union = _multirange(ranges)
    threshold = _threshold(session, view.org_id)
    # The view: its segments' union; where the player is, from the report with the highest
    # `seq` (a retried or late report does not move it back); completed at the threshold.
    played = session.execute(
        text(
            """
            UPDATE views SET
                played = played + CAST(:union AS int4multirange),
                played_ms = sums.played_ms,
                position_ms = CASE
                    WHEN CAST(:position AS integer) IS NOT NULL AND :seq >= last_seq
                    THEN CAST(:position AS integer) ELSE position_ms END,
                last_seq = greatest(last_seq, :seq),
                device_last_at = greatest(device_last_at, CAST(:device_at AS timestamptz)),
                last_reported_at = now(),
                reports = reports + 1,
                completed_at = CASE
                    WHEN completed_at IS NULL AND CAST(sums.played_ms AS bigint) * 100
                         >= CAST(:threshold AS bigint) * (end_ms - start_ms)
                    THEN now() ELSE completed_at END
            FROM (SELECT coalesce(sum(upper(r) - lower(r)), 0) AS played_ms
                  FROM views v, unnest(v.played + CAST(:union AS int4multirange)) AS r
                  WHERE v.org_id = :org_id AND v.id = :id) AS sums
            WHERE org_id = :org_id AND id = :id
            RETURNING views.played_ms, end_ms - start_ms AS length_ms, completed_at
            """
        ),
        {
            "union": union,
            "position": position_ms,
            "seq": seq,
            "device_at": device_at,
            "threshold": threshold,
            "org_id": view.org_id,
            "id": view.id,
        },
    ).one()
    progress = _merge_progress(session, view, union, threshold)
    # Really played in this view: its shares to the person count as watched (not recalled).
    if played.played_ms >= min(WATCHED_MS, played.length_ms):
        tracking.advance(
            session,
            RecipientState.WATCHED,
            ShareRecipient.org_id == view.org_id,
            ShareRecipient.user_id == view.user_id,
            ShareRecipient.video_id == view.video_id,
            ShareRecipient.share_id.in_(
                select(Share.id).where(
                    Share.org_id == view.org_id,
                    Share.video_id == view.video_id,
                    Share.recalled_at.is_(None),
                )
            ),
        )
    session.expire(view)
    return Reported(
        video=progress,
        view=Progress(view.video_id, played.played_ms, played.length_ms, played.completed_at),
    )


def _clipped(view: View, segments: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The segments within the view's range; a segment that ends before it starts is refused."""
    out = []
    for low, high in segments:
        if high < low or low < 0:
            raise InvalidInput(
                "A segment is [start_ms, end_ms), 0 <= start_ms <= end_ms.",
                errors={"segments": ["[start_ms, end_ms), 0 <= start_ms <= end_ms"]},
            )
        low, high = max(low, view.start_ms), min(high, view.end_ms)
        if high > low:
            out.append((low, high))
    return out


def _multirange(ranges: list[tuple[int, int]]) -> str:
    return "{" + ",".join(f"[{low},{high})" for low, high in ranges) + "}"


def _merge_progress(session: Session, view: View, union: str, threshold: int) -> Progress:
    """The person's progress on the video: their views' segments, in one upsert."""
    # (Loaded already, when the view was: `load_view` checks the video is still seen.)
    video = session.get(Video, view.video_id)
    duration = (video.duration_ms if video is not None else None) or view.end_ms
    row = session.execute(
        text(
            """
            INSERT INTO video_progress AS p
                (org_id, user_id, video_id, played, played_ms, duration_ms, first_played_at,
                 updated_at)
            VALUES (:org_id, :user_id, :video_id, CAST(:union AS int4multirange),
                    (SELECT coalesce(sum(upper(r) - lower(r)), 0)
                     FROM unnest(CAST(:union AS int4multirange)) AS r),
                    :duration,
                    CASE WHEN CAST(:union AS int4multirange) = '{}' THEN NULL ELSE now() END,
                    now())
            ON CONFLICT (user_id, video_id) DO UPDATE SET
                played = p.played + excluded.played,
                played_ms = (SELECT coalesce(sum(upper(r) - lower(r)), 0)
                             FROM unnest(p.played + excluded.played) AS r),
                duration_ms = greatest(excluded.duration_ms, 1),
                first_played_at = coalesce(p.first_played_at, excluded.first_played_at),
                updated_at = now()
            RETURNING played_ms, duration_ms, completed_at
            """
        ),
        {
            "org_id": view.org_id,
            "user_id": view.user_id,
            "video_id": view.video_id,
            "union": union,
            "duration": duration,
        },
    ).one()
    completed_at = row.completed_at
    if (
        completed_at is None
        and row.duration_ms
        and row.played_ms * 100 >= threshold * row.duration_ms
    ):
        completed_at = session.scalar(
            text(
                "UPDATE video_progress SET completed_at = coalesce(completed_at, now()) "
                "WHERE user_id = :user_id AND video_id = :video_id RETURNING completed_at"
            ),
            {"user_id": view.user_id, "video_id": view.video_id},
        )
    return Progress(view.video_id, row.played_ms, row.duration_ms, completed_at)


def progress_of(session: Session, principal: Principal, video_id: uuid.UUID) -> Progress:
    """The principal's progress on a video they may see (nothing played yet: zero)."""
    video = load_video(session, principal, video_id)
    found = session.get(VideoProgress, (principal.user_id, video.id))
    if found is None:
        return Progress(video.id, 0, video.duration_ms or 0, None)
    return Progress(video.id, found.played_ms, found.duration_ms, found.completed_at)


def set_threshold(session: Session, principal: Principal, pct: int) -> int:
    """An admin sets the share of a video that counts as completed (1-100 %); progress already
    completed stays completed."""
    authorize(principal, "viewing.configure")
    if not 1 <= pct <= 100:
        raise InvalidInput(errors={"completion_threshold_pct": ["From 1 to 100."]})
    org = session.get(Organisation, principal.org_id)
    assert org is not None
    org.completion_threshold_pct = pct
    session.flush()
    return pct


def threshold_of(session: Session, principal: Principal) -> int:
    return _threshold(session, principal.org_id)


def _threshold(session: Session, org_id: uuid.UUID) -> int:
    found = session.scalar(
        select(Organisation.completion_threshold_pct).where(Organisation.id == org_id)
    )
    return found if found is not None else 100
