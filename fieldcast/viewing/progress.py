"""What people actually played: views, their reports, and progress.

A player starts a view (`start`) and then reports, at most every few seconds or in a batch
when it comes back online, the segments it played, its position and its events (`report`).
Segments are merged in PostgreSQL as a union of [start, end) milliseconds (an int4multirange),
so a report sent twice, or after a later one, changes nothing the second time; events are
kept once per (view, report number, place in the report). A person's progress on a video is
the union over all their views of it; it is completed once that covers the organisation's
`completion_threshold_pct` of the video. Shares of the video to the person become `watched`
once they really played some of it (`WATCHED_MS`, or the whole range if shorter, in one view or
in all their views of the video together).

An app that played offline sends its reports later, many at once (`report_batch`), each with
the device's timestamps; a view the server has not seen yet is started from its first report
by the app's `session_id`. Each report of a batch stands alone: one that fails rolls back by
itself and the others count.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Uuid, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, defer, load_only

from fieldcast.db import plan_once, utcnow
from fieldcast.errors import Conflict, DomainError, ErrorCode, InvalidInput, NotFound, RateLimited
from fieldcast.events import (
    CompletionThresholdChanged,
    ProgressMade,
    VideoCompleted,
    ViewReported,
    ViewStarted,
    publish,
)
from fieldcast.models.accounts import Organisation
from fieldcast.models.videos import Video
from fieldcast.models.viewing import (
    MAX_VIEW_EVENTS,
    MAX_VIEWS_PER_DAY,
    WATCHED_MS,
    VideoProgress,
    View,
    ViewEvent,
    ViewEventKind,
)
from fieldcast.policy import (
    Principal,
    authorize,
    load_video,
    shared_with_viewer,
    videos,
    viewer_params,
)
from fieldcast.sharing import tracking

# A report merged into its view: its segments' union; where the player is, from the report with
# the highest `seq` (a retried or late report does not move it back); completed at the
# organisation's threshold, by the server's clock and by the device's (this report's, or its
# last event's). The row's own values (locked by the UPDATE) are merged, so reports at once both
# count; what it had played before (`before_ms`, as the statement found it) tells whether this
# report crossed a line.
MERGE_VIEW = text(
    """
    WITH old AS (SELECT played_ms FROM views WHERE org_id = :org_id AND id = :id),
         org AS (SELECT completion_threshold_pct AS pct FROM organisations WHERE id = :org_id)
    UPDATE views SET
        played = played + CAST(:union AS int4multirange),
        played_ms = multirange_ms(played + CAST(:union AS int4multirange)),
        position_ms = CASE
            WHEN CAST(:position AS integer) IS NOT NULL AND :seq >= last_seq
            THEN CAST(:position AS integer) ELSE position_ms END,
        last_seq = greatest(last_seq, :seq),
        device_last_at = greatest(device_last_at, CAST(:device_at AS timestamptz)),
        last_reported_at = now(),
        reports = reports + 1,
        completed_at = CASE WHEN completed_at IS NULL AND (
                CAST(multirange_ms(played + CAST(:union AS int4multirange)) AS bigint)
                * 100 >= CAST((SELECT pct FROM org) AS bigint) * (end_ms - start_ms))
            THEN now() ELSE completed_at END,
        device_completed_at = CASE WHEN completed_at IS NULL AND (
                CAST(multirange_ms(played + CAST(:union AS int4multirange)) AS bigint)
                * 100 >= CAST((SELECT pct FROM org) AS bigint) * (end_ms - start_ms))
            THEN CAST(:device_done AS timestamptz) ELSE device_completed_at END
    WHERE org_id = :org_id AND id = :id
    RETURNING played_ms, end_ms - start_ms AS length_ms, completed_at,
        (SELECT played_ms FROM old) AS before_ms, (SELECT pct FROM org) AS threshold,
        (SELECT d.duration_ms FROM videos d
         WHERE d.org_id = views.org_id AND d.id = views.video_id) AS duration_ms
    """
)

# The same segments merged into the person's progress on the video (all their views).
MERGE_PROGRESS = text(
    """
    WITH old AS (
        SELECT played_ms FROM video_progress WHERE user_id = :user_id AND video_id = :video_id
    )
    INSERT INTO video_progress AS p
        (org_id, user_id, video_id, played, played_ms, duration_ms, first_played_at,
         updated_at)
    VALUES (:org_id, :user_id, :video_id, CAST(:union AS int4multirange),
            multirange_ms(CAST(:union AS int4multirange)),
            :duration,
            CASE WHEN CAST(:union AS int4multirange) = '{}' THEN NULL ELSE now() END,
            now())
    ON CONFLICT (user_id, video_id) DO UPDATE SET
        played = p.played + excluded.played,
        played_ms = multirange_ms(p.played + excluded.played),
        duration_ms = greatest(excluded.duration_ms, 1),
        first_played_at = coalesce(p.first_played_at, excluded.first_played_at),
        updated_at = now()
    RETURNING played_ms, duration_ms, completed_at, (SELECT played_ms FROM old) AS before_ms
    """
)


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


@dataclass(frozen=True)
class Sitting:
    """A view the app started while offline, by its own `session_id`: the server starts it
    (or finds it, when it has already) with the first of its reports that arrives."""

    video_id: uuid.UUID
    session_id: uuid.UUID
    start_ms: int | None = None
    end_ms: int | None = None
    device_started_at: datetime | None = None


@dataclass(frozen=True)
class Report:
    """One report of a batch: of the view `view_id`, or of the view of `sitting`."""

    seq: int
    segments: list[tuple[int, int]] = field(default_factory=list)
    position_ms: int | None = None
    events: list[Event] = field(default_factory=list)
    device_at: datetime | None = None
    view_id: uuid.UUID | None = None
    sitting: Sitting | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of one report of a batch: merged into its view (`reported`), or refused
    (`error`), and nothing of it kept."""

    view_id: uuid.UUID | None
    reported: Reported | None = None
    error: DomainError | None = None


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
    _check_views_today(session, principal, video.id)
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
    publish(
        session,
        ViewStarted(
            org_id=view.org_id,
            user_id=view.user_id,
            video_id=view.video_id,
            view_id=view.id,
            session_id=view.session_id,
            length_ms=high - low,
            device_at=device_started_at,
        ),
    )
    return view, True


def _check_views_today(session: Session, principal: Principal, video_id: uuid.UUID) -> None:
    """At most MAX_VIEWS_PER_DAY views of one video a person starts in a day: a player that
    starts a view at every frame is refused (429) before it fills the table."""
    count, oldest = session.execute(
        select(func.count(), func.min(View.started_at)).where(
            View.org_id == principal.org_id,
            View.video_id == video_id,
            View.user_id == principal.user_id,
            View.started_at > func.now() - timedelta(days=1),
        )
    ).one()
    if count >= MAX_VIEWS_PER_DAY:
        wait = oldest + timedelta(days=1) - utcnow()
        raise RateLimited(
            f"At most {MAX_VIEWS_PER_DAY} views of a video a day; report on a view started "
            "already (its `session_id`) instead.",
            retry_after=int(wait.total_seconds()) + 1,
        )


# A person's view with what `VideoPolicy.can_see` reads of its video, and whether it was
# shared with them: read by every report, built once. (Neither what the view played nor the
# video's other columns: the merge statements read those themselves.)
_VIEW_AND_VIDEO = (
    select(View, Video, shared_with_viewer(Video.id).label("shared"))
    .join(Video, (Video.org_id == View.org_id) & (Video.id == View.video_id))
    .where(
        View.id == bindparam("view_id", type_=Uuid()),
        # (The viewer's own: the same values as `shared_with_viewer`'s.)
        View.org_id == bindparam("viewer_org", type_=Uuid()),
        View.user_id == bindparam("viewer", type_=Uuid()),
    )
    .options(
        defer(View.played),
        load_only(
            Video.id,
            Video.org_id,
            Video.owner_id,
            Video.deleted_at,
            Video.hidden_at,
            Video.answers_video_id,
        ),
    )
)


def load_view(session: Session, principal: Principal, view_id: uuid.UUID) -> View:
    """One of the principal's own views, of a video they still see; anything else is not
    found (a recalled share, a deleted video: nothing more is counted)."""
    row = session.execute(
        _VIEW_AND_VIDEO, {"view_id": view_id, **viewer_params(principal)}
    ).one_or_none()
    if row is None or not videos.can_see(session, principal, row.Video, shared=row.shared):
        raise NotFound(f"No view with id {view_id}.")
    view: View = row.View
    return view


def report_view(session: Session, principal: Principal, item: Report) -> Reported:
    """`report` into one of the principal's views (`item.view_id`, `load_view`). Players
    send these every few seconds: the transaction's statements are planned once
    (`plan_once`)."""
    assert item.view_id is not None
    plan_once(session)
    return report(session, load_view(session, principal, item.view_id), item)


def report(session: Session, view: View, item: Report) -> Reported:
    """Merge one report into its view and the person's progress; idempotent."""
    seq, events, device_at = item.seq, item.events, item.device_at
    ranges = _clipped(view, item.segments)
    kept = _events_kept(session, view, events)
    if kept:
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
                    for n, event in enumerate(kept)
                ]
            )
            .on_conflict_do_nothing()
        )
    union = _multirange(ranges)
    played = session.execute(
        MERGE_VIEW,
        {
            "union": union,
            "position": item.position_ms,
            "seq": seq,
            "device_at": device_at,
            "device_done": device_at or _last_device_at(events),
            "org_id": view.org_id,
            "id": view.id,
        },
    ).one()
    progress, before_ms = _merge_progress(
        session, view, union, played.threshold, played.duration_ms or view.end_ms
    )
    if progress.played_ms != (before_ms or 0):
        # The person's assignments of the video follow (`programs`); a report that added
        # nothing (sent again, or of what was played already) changes none of them.
        publish(
            session,
            ProgressMade(org_id=view.org_id, user_id=view.user_id, video_id=view.video_id),
        )
    # Really played, in this view or in all the person's views of the video: their shares of
    # it count as watched (not recalled ones). `fanout` applies the same rule to recipient
    # rows made later.
    if _crossed(played.before_ms, played.played_ms, played.length_ms) or _crossed(
        before_ms, progress.played_ms, progress.duration_ms
    ):
        tracking.watched(session, view.org_id, view.user_id, view.video_id)
    publish(
        session,
        ViewReported(
            org_id=view.org_id,
            user_id=view.user_id,
            video_id=view.video_id,
            view_id=view.id,
            session_id=view.session_id,
            seq=seq,
            events=tuple(
                (event.kind.value, event.position_ms, event.device_at, n)
                for n, event in enumerate(kept)
            ),
            segments=tuple(ranges),
            before_ms=played.before_ms or 0,
            played_ms=played.played_ms,
            length_ms=played.length_ms,
            threshold_pct=played.threshold,
            position_ms=item.position_ms,
            device_at=device_at,
        ),
    )
    video_id = view.video_id
    session.expire(view)  # (its row changed underneath: read again when next used)
    return Reported(
        video=progress,
        view=Progress(video_id, played.played_ms, played.length_ms, played.completed_at),
    )


def report_batch(
    session: Session, principal: Principal, reports: Sequence[Report]
) -> list[Outcome]:
    """Each report merged as `report` merges it, in order, each in a SAVEPOINT of its own: one
    that fails (a view of a video no longer seen, a video not playable, a bad segment) rolls
    back alone and answers its error, and the others count. Planned once, as `report_view`."""
    plan_once(session)
    outcomes: list[Outcome] = []
    for item in reports:
        try:
            with session.begin_nested():
                view = _view_of(session, principal, item)
                view_id = view.id
                reported = report(session, view, item)
        except DomainError as error:
            outcomes.append(Outcome(item.view_id, error=error))
        else:
            outcomes.append(Outcome(view_id, reported=reported))
    return outcomes


def _view_of(session: Session, principal: Principal, item: Report) -> View:
    if item.view_id is not None:
        return load_view(session, principal, item.view_id)
    sitting = item.sitting
    if sitting is None:
        raise InvalidInput(
            "Name the view: `view_id`, or `session_id` and `video_id`.",
            errors={"view_id": ["view_id, or session_id and video_id"]},
        )
    view, _ = start(
        session,
        principal,
        sitting.video_id,
        session_id=sitting.session_id,
        start_ms=sitting.start_ms,
        end_ms=sitting.end_ms,
        device_started_at=sitting.device_started_at,
    )
    return view


def _events_kept(session: Session, view: View, events: list[Event]) -> list[Event]:
    """The report's events that fit under MAX_VIEW_EVENTS kept of its view; past it they are
    dropped (the segments still count)."""
    if not events:
        return []
    stored = session.scalar(
        select(func.count())
        .select_from(ViewEvent)
        .where(ViewEvent.org_id == view.org_id, ViewEvent.view_id == view.id)
    )
    return events[: max(0, MAX_VIEW_EVENTS - (stored or 0))]


def _last_device_at(events: list[Event]) -> datetime | None:
    return max((event.device_at for event in events if event.device_at), default=None)


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


def _crossed(before_ms: int | None, after_ms: int, length_ms: int) -> bool:
    """This report took what was played past `WATCHED_MS` (or the whole range, if shorter)."""
    line = min(WATCHED_MS, length_ms)
    return (before_ms or 0) < line <= after_ms


def _merge_progress(
    session: Session, view: View, union: str, threshold: int, duration: int
) -> tuple[Progress, int | None]:
    """The person's progress on the video: their views' segments, in one upsert."""
    row = session.execute(
        MERGE_PROGRESS,
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
        # Its author earns points (`points`), once per person whatever the reports.
        publish(
            session,
            VideoCompleted(org_id=view.org_id, user_id=view.user_id, video_id=view.video_id),
        )
    return Progress(view.video_id, row.played_ms, row.duration_ms, completed_at), row.before_ms


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
    if org.completion_threshold_pct != pct:
        org.completion_threshold_pct = pct
        session.flush()
        publish(session, CompletionThresholdChanged(org_id=org.id))
    return pct


def threshold_of(session: Session, principal: Principal) -> int:
    return _threshold(session, principal.org_id)


def _threshold(session: Session, org_id: uuid.UUID) -> int:
    found = session.scalar(
        select(Organisation.completion_threshold_pct).where(Organisation.id == org_id)
    )
    return found if found is not None else 100
