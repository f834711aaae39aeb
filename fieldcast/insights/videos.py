"""Viewer insights: how a video was watched, by whom and how far, for the people who answer
for it.

**Who reads them.** A video's insights are read by its author, the managers above the author
on the reporting line, enablement (the organisation's curators) and admins; to anyone else
the video's insights do not exist (404, as a video they may not see). A share's are read by
whoever follows the share (its sender, the managers above the sender, admins:
`SharePolicy`). A team's view of a video is read by whoever reads the video's insights, and
by the team's leads who see the video.

**Figures** (`docs/metrics.md` has them with examples). A *viewer* is a person who played
some of the video (their progress, the union of all their views, is not empty); a *view* is
one sitting that played some of it. *Average share watched* is the mean over viewers of
what they played over the duration (at most 1); the *completion rate* is viewers completed
(at the organisation's threshold) over viewers. The duration is cut in `POINTS` (100)
points, point p being the moment `p x duration / 100`:

- *retention[p]*: viewers whose union holds point p, over viewers;
- *drop_offs[p]*: viewers whose furthest played moment lies in [p, p + 1) per cent and who
  never played the last point (they left there);
- *rewatches[p]*: plays of point p beyond each viewer's first: by their other views (a view
  holding p, less one per viewer holding it) and, inside a view, by seeking back (a `seek`
  event to a position before the position of the view's event just before it replays the
  points from the target up to that position).

**Freshness.** Counting 10,000 viewers' segments per point costs far more than a read may,
so the figures are computed ahead (`compute`) into `video_insights` and read as one row; the
response says when (`computed_at`). They are computed on the first read; a video with at
most `LIVE_VIEWERS` viewers is computed again on the read after a change (cheap for so few);
a larger one by the `video-insights` periodic job (every minute), which recomputes the
figures read in the last `KEEP_FRESH` whose video's progress moved since: at most a couple of
minutes stale.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, exists, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldcast.db import Database, EarlyCommit, commit_early, utcnow
from fieldcast.errors import NotFound
from fieldcast.models.accounts import Role, Team, TeamMembership, TeamRole, User
from fieldcast.models.insights import POINTS, VideoInsight
from fieldcast.models.sharing import RecipientState, Share, ShareRecipient
from fieldcast.models.videos import Video
from fieldcast.models.viewing import VideoProgress, View
from fieldcast.policy import Principal, load_share, managers_of, videos

log = logging.getLogger(__name__)

# A video with at most this many viewers is recomputed on the read after a change.
LIVE_VIEWERS = 500
# Figures read within this long are kept fresh by the periodic job.
KEEP_FRESH = timedelta(days=7)
# At most this stale, for a video past LIVE_VIEWERS: a job run missed while it was counting,
# and the next one.
STALE_UP_TO_S = 130
# A change this close before `computed_at` may have been committed after the computation
# read its snapshot: it still makes the figures stale.
CLOCK_MARGIN = timedelta(seconds=10)
# `requested_at` is written at most this often (a read does not write each time).
REQUESTED_EVERY = timedelta(minutes=1)
# The most videos one run of the job recomputes (the oldest first; the next run goes on).
REFRESH_BATCH = 500

# Point p is the moment p x d / 100; a segment [lo, hi) holds the points from
# ceil(lo x 100 / d) to ceil(hi x 100 / d) - 1 (integer arithmetic: no rounding at the edges).
COMPUTE = text(
    """
    WITH p AS (
        SELECT user_id, played, played_ms, completed_at FROM video_progress
        WHERE org_id = :org_id AND video_id = :video_id AND played_ms > 0
    ),
    held AS (
        SELECT g AS pt, count(*) AS n
        FROM p, unnest(p.played) AS r,
             generate_series((CAST(lower(r) AS bigint) * 100 + :d - 1) / :d,
                             least(99, (CAST(upper(r) AS bigint) * 100 + :d - 1) / :d - 1)) g
        GROUP BY g
    ),
    viewed AS (
        SELECT g AS pt, count(*) AS n
        FROM views v, unnest(v.played) AS r,
             generate_series((CAST(lower(r) AS bigint) * 100 + :d - 1) / :d,
                             least(99, (CAST(upper(r) AS bigint) * 100 + :d - 1) / :d - 1)) g
        WHERE v.org_id = :org_id AND v.video_id = :video_id AND v.played_ms > 0
        GROUP BY g
    ),
    moves AS (
        SELECT e.kind, e.position_ms,
               lag(e.position_ms) OVER (PARTITION BY e.view_id ORDER BY e.seq, e.n) AS before_ms
        FROM view_events e JOIN views v ON v.org_id = e.org_id AND v.id = e.view_id
        WHERE v.org_id = :org_id AND v.video_id = :video_id
    ),
    sought AS (
        SELECT g AS pt, count(*) AS n
        FROM moves,
             generate_series((CAST(position_ms AS bigint) * 100 + :d - 1) / :d,
                             least(99, (CAST(before_ms AS bigint) * 100 + :d - 1) / :d - 1)) g
        WHERE kind = 'seek' AND position_ms < before_ms
        GROUP BY g
    ),
    left_at AS (
        SELECT least(99, (CAST(upper(played) AS bigint) - 1) * 100 / :d) AS pt, count(*) AS n
        FROM p
        WHERE NOT played @> CAST(99 * CAST(:d AS bigint) / 100 AS integer)
        GROUP BY 1
    ),
    points AS (SELECT generate_series(0, 99) AS pt)
    SELECT
        (SELECT count(*) FROM views
         WHERE org_id = :org_id AND video_id = :video_id AND played_ms > 0) AS views,
        (SELECT count(*) FROM p) AS viewers,
        (SELECT count(*) FROM p WHERE completed_at IS NOT NULL) AS completed,
        (SELECT coalesce(avg(least(1.0, played_ms::float8 / :d)), 0) FROM p) AS average_share,
        ARRAY(SELECT coalesce(h.n, 0) FROM points LEFT JOIN held h USING (pt) ORDER BY pt)
            AS retention,
        ARRAY(SELECT coalesce(l.n, 0) FROM points LEFT JOIN left_at l USING (pt) ORDER BY pt)
            AS drop_offs,
        ARRAY(SELECT coalesce(w.n, 0) - coalesce(h.n, 0) + coalesce(s.n, 0)
              FROM points LEFT JOIN held h USING (pt) LEFT JOIN viewed w USING (pt)
              LEFT JOIN sought s USING (pt) ORDER BY pt) AS rewatches
    """
)


# -- who reads them -------------------------------------------------------------------------------


def _reads_all(principal: Principal) -> bool:
    return principal.has_role(Role.ADMIN, Role.ENABLEMENT)


def may_read(session: Session, principal: Principal, video: Video) -> bool:
    """The video's author, the managers above the author, enablement, admins."""
    if video.org_id != principal.org_id or video.deleted_at is not None:
        return False
    if _reads_all(principal) or video.owner_id == principal.user_id:
        return True
    above = managers_of(video.org_id, video.owner_id).subquery()
    return bool(session.scalar(select(exists().where(above.c.id == principal.user_id))))


def _find_video(session: Session, principal: Principal, video_id: uuid.UUID) -> Video:
    video = session.scalar(
        select(Video).where(
            Video.org_id == principal.org_id, Video.id == video_id, Video.deleted_at.is_(None)
        )
    )
    if video is None:
        raise NotFound(f"No video with id {video_id}.")
    return video


def load_video(session: Session, principal: Principal, video_id: uuid.UUID) -> Video:
    """A video whose insights the principal reads, else `NotFound` (as for a missing id)."""
    video = _find_video(session, principal, video_id)
    if not may_read(session, principal, video):
        raise NotFound(f"No video with id {video_id}.")
    return video


def load_team_view(
    session: Session, principal: Principal, video_id: uuid.UUID, team_id: uuid.UUID
) -> tuple[Video, Team]:
    """A video and a team of the organisation, for a team's view of the video: read by whoever
    reads the video's insights, and by the team's leads who see the video."""
    video = _find_video(session, principal, video_id)
    team = session.scalar(select(Team).where(Team.org_id == principal.org_id, Team.id == team_id))
    if team is None:
        raise NotFound(f"No team with id {team_id}.")
    if may_read(session, principal, video):
        return video, team
    lead = session.scalar(
        select(
            exists().where(
                TeamMembership.org_id == principal.org_id,
                TeamMembership.team_id == team_id,
                TeamMembership.user_id == principal.user_id,
                TeamMembership.role == TeamRole.LEAD,
            )
        )
    )
    if not lead or not videos.can_see(session, principal, video):
        raise NotFound(f"No video with id {video_id}.")
    return video, team


def team_people(org_id: uuid.UUID, team_id: uuid.UUID) -> Select[Any]:
    """`SELECT user_id`: the members of the team and of its sub-teams."""
    tree = (
        select(Team.id.label("id"))
        .where(Team.org_id == org_id, Team.id == team_id)
        .cte("team_tree", recursive=True)
    )
    # UNION (not ALL): a loop in the team tree ends the walk.
    tree = tree.union(select(Team.id).where(Team.org_id == org_id, Team.parent_id == tree.c.id))
    return select(TeamMembership.user_id).where(
        TeamMembership.org_id == org_id, TeamMembership.team_id.in_(select(tree.c.id))
    )


# -- the video's figures --------------------------------------------------------------------------


def _runs(counts: Sequence[int], n: int = 3) -> list[tuple[int, int, int]]:
    """The `n` highest runs of equal counts above 0 (first point, last point, count), highest
    first, earlier first on ties: the stretches where people leave or watch again."""
    runs: list[tuple[int, int, int]] = []
    for point, count in enumerate(counts):
        if count and runs and runs[-1][1] == point - 1 and runs[-1][2] == count:
            runs[-1] = (runs[-1][0], point, count)
        elif count:
            runs.append((point, point, count))
    return sorted(runs, key=lambda run: (-run[2], run[0]))[:n]


def compute(session: Session, video: Video) -> VideoInsight:
    """Count the video's figures now and store them (replacing the last computation)."""
    duration = max(video.duration_ms or 0, 0)
    values: dict[str, Any]
    if duration:
        row = session.execute(
            COMPUTE, {"org_id": video.org_id, "video_id": video.id, "d": duration}
        ).one()
        values = dict(row._mapping)
    else:
        zero = [0] * POINTS
        values = {
            "views": 0,
            "viewers": 0,
            "completed": 0,
            "average_share": 0.0,
            "retention": zero,
            "drop_offs": zero,
            "rewatches": zero,
        }
    values.update(
        org_id=video.org_id,
        video_id=video.id,
        duration_ms=duration,
        computed_at=func.now(),
        requested_at=func.now(),
    )
    stmt = insert(VideoInsight).values(**values)
    upsert = stmt.on_conflict_do_update(
        index_elements=[VideoInsight.video_id],
        set_={k: stmt.excluded[k] for k in values if k not in ("org_id", "video_id")},
    ).returning(VideoInsight)
    return session.scalars(upsert, execution_options={"populate_existing": True}).one()


def _changed_since(session: Session, video: Video, computed_at: datetime) -> bool:
    latest = session.scalar(
        select(func.max(VideoProgress.updated_at)).where(
            VideoProgress.org_id == video.org_id, VideoProgress.video_id == video.id
        )
    )
    return latest is not None and latest > computed_at - CLOCK_MARGIN


def figures(session: Session, principal: Principal, video_id: uuid.UUID) -> dict[str, Any]:
    """The video's insights as last computed (computed now when never yet, or when a small
    video's viewing changed since)."""
    video = load_video(session, principal, video_id)
    stored = session.get(VideoInsight, video.id)
    if (
        stored is None
        or stored.duration_ms != (video.duration_ms or 0)
        or (stored.viewers <= LIVE_VIEWERS and _changed_since(session, video, stored.computed_at))
    ):
        stored = compute(session, video)
    elif stored.requested_at < utcnow() - REQUESTED_EVERY:
        stored.requested_at = utcnow()
        session.flush()
    return present(stored)


def present(stored: VideoInsight) -> dict[str, Any]:
    viewers = stored.viewers
    retention = [round(n / viewers, 4) if viewers else 0.0 for n in stored.retention]
    return {
        "video_id": stored.video_id,
        "duration_ms": stored.duration_ms,
        "views": stored.views,
        "viewers": viewers,
        "completed": stored.completed,
        "completion_rate": round(stored.completed / viewers, 4) if viewers else 0.0,
        "average_share": round(stored.average_share, 4),
        "retention": retention,
        "drop_offs": list(stored.drop_offs),
        "rewatches": list(stored.rewatches),
        "top_drop_offs": _points(stored, stored.drop_offs),
        "top_rewatches": _points(stored, stored.rewatches),
        "computed_at": stored.computed_at,
        "stale_up_to_s": STALE_UP_TO_S,
    }


def _points(stored: VideoInsight, counts: Sequence[int]) -> list[dict[str, int]]:
    d = stored.duration_ms
    return [
        {
            "from_point": first,
            "to_point": last,
            "start_ms": first * d // POINTS,
            "end_ms": (last + 1) * d // POINTS,
            "count": count,
        }
        for first, last, count in _runs(counts)
    ]


def refresh_stale(db: Database, *, batch: int = REFRESH_BATCH) -> dict[str, int]:
    """Recompute the figures read lately whose video's progress moved since they were counted,
    oldest first, one video per transaction (an error in one leaves the others done)."""
    report = {"refreshed": 0, "failed": 0}
    with db.session() as session:
        moved = exists().where(
            VideoProgress.org_id == VideoInsight.org_id,
            VideoProgress.video_id == VideoInsight.video_id,
            VideoProgress.updated_at > VideoInsight.computed_at - CLOCK_MARGIN,
        )
        stale = list(
            session.execute(
                select(VideoInsight.org_id, VideoInsight.video_id)
                .where(VideoInsight.requested_at > func.now() - KEEP_FRESH, moved)
                .order_by(VideoInsight.computed_at)
                .limit(batch)
            ).all()
        )
        session.rollback()
        for org_id, video_id in stale:
            try:
                video = session.scalar(
                    select(Video).where(Video.org_id == org_id, Video.id == video_id)
                )
                if video is not None:
                    compute(session, video)
                commit_early(session, EarlyCommit.BATCH_ITEM)
            except Exception:
                session.rollback()
                report["failed"] += 1
                log.exception("insights of video %s failed", video_id)
                continue
            report["refreshed"] += 1
    return report


# -- who watched how much -------------------------------------------------------------------------


def viewers(video: Video, *, team_id: uuid.UUID | None = None) -> Select[Any]:
    """The video's viewers' progress, for a page (most played first); of a team's people
    (with its sub-teams') with `team_id`."""
    stmt = select(VideoProgress).where(
        VideoProgress.org_id == video.org_id,
        VideoProgress.video_id == video.id,
        VideoProgress.played_ms > 0,
    )
    if team_id is not None:
        stmt = stmt.where(VideoProgress.user_id.in_(team_people(video.org_id, team_id)))
    return stmt


def check_team(session: Session, principal: Principal, team_id: uuid.UUID) -> None:
    if session.scalar(select(Team.id).where(Team.org_id == principal.org_id, Team.id == team_id)):
        return
    raise NotFound(f"No team with id {team_id}.")


@dataclass(frozen=True)
class Watching:
    """A person's progress on a video, for a list."""

    user_id: uuid.UUID
    display_name: str
    played_ms: int
    duration_ms: int
    views: int
    first_played_at: datetime | None
    last_played_at: datetime | None
    completed_at: datetime | None

    @property
    def share(self) -> float:
        if not self.duration_ms:
            return 0.0
        return round(min(1.0, self.played_ms / self.duration_ms), 4)


def watching(
    session: Session, video: Video, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Watching]:
    """Of these people, their names, progress on the video and views of it (three queries
    for a page, whatever its size)."""
    if not user_ids:
        return {}
    names = dict(
        session.execute(
            select(User.id, User.display_name).where(
                User.org_id == video.org_id, User.id.in_(user_ids)
            )
        ).all()
    )
    progress = {
        p.user_id: p
        for p in session.scalars(
            select(VideoProgress).where(
                VideoProgress.org_id == video.org_id,
                VideoProgress.video_id == video.id,
                VideoProgress.user_id.in_(user_ids),
            )
        )
    }
    counts = dict(
        session.execute(
            select(View.user_id, func.count())
            .where(
                View.org_id == video.org_id,
                View.video_id == video.id,
                View.user_id.in_(user_ids),
                View.played_ms > 0,
            )
            .group_by(View.user_id)
        ).all()
    )
    duration = video.duration_ms or 0
    out: dict[uuid.UUID, Watching] = {}
    for user_id in user_ids:
        p = progress.get(user_id)
        out[user_id] = Watching(
            user_id=user_id,
            display_name=names.get(user_id, ""),
            played_ms=min(p.played_ms, duration) if p else 0,
            duration_ms=duration,
            views=counts.get(user_id, 0),
            first_played_at=p.first_played_at if p else None,
            last_played_at=p.updated_at if p and p.played_ms else None,
            completed_at=p.completed_at if p else None,
        )
    return out


def _group_figures(session: Session, video: Video, people: Select[Any]) -> dict[str, Any]:
    """Viewers, completions and the average share watched (over the viewers) among `people`
    (a `SELECT user_id`)."""
    duration = video.duration_ms or 0
    watched = VideoProgress.played_ms > 0
    row = session.execute(
        select(
            func.count().filter(watched),
            func.count().filter(and_(watched, VideoProgress.completed_at.is_not(None))),
            func.avg(func.least(1.0, VideoProgress.played_ms * 1.0 / max(duration, 1))).filter(
                watched
            ),
        ).where(
            VideoProgress.org_id == video.org_id,
            VideoProgress.video_id == video.id,
            VideoProgress.user_id.in_(people),
        )
    ).one()
    viewers_, completed, average = int(row[0]), int(row[1]), row[2]
    return {
        "viewers": viewers_,
        "completed": completed,
        "completion_rate": round(completed / viewers_, 4) if viewers_ else 0.0,
        "average_share": round(float(average), 4) if duration and average is not None else 0.0,
    }


def team_figures(session: Session, video: Video, team: Team) -> dict[str, Any]:
    """A team's (with its sub-teams') view of a video: its active people, and of them how many
    watched and completed it, and how much they watched."""
    people = select(User.id).where(
        User.org_id == video.org_id,
        User.is_active.is_(True),
        User.deleted_at.is_(None),
        User.id.in_(team_people(video.org_id, team.id)),
    )
    members = session.scalar(select(func.count()).select_from(people.subquery())) or 0
    return {
        "video_id": video.id,
        "team_id": team.id,
        "people": members,
        **_group_figures(session, video, people),
        "computed_at": utcnow(),
    }


def team_members(video: Video, team: Team) -> Select[Any]:
    """The team's active people (with its sub-teams'), for a page by id."""
    return select(User).where(
        User.org_id == video.org_id,
        User.is_active.is_(True),
        User.deleted_at.is_(None),
        User.id.in_(team_people(video.org_id, team.id)),
    )


# -- a share's recipients -------------------------------------------------------------------------

# A recipient has reached a state once they are in it or further along (`watched` implies
# `opened`, ...); `failed` and `queued` reached nothing.
_REACHED = {
    "sent": (
        RecipientState.SENT,
        RecipientState.DELIVERED,
        RecipientState.OPENED,
        RecipientState.WATCHED,
    ),
    "delivered": (RecipientState.DELIVERED, RecipientState.OPENED, RecipientState.WATCHED),
    "opened": (RecipientState.OPENED, RecipientState.WATCHED),
    "watched": (RecipientState.WATCHED,),
}


def load_share_and_video(
    session: Session, principal: Principal, share_id: uuid.UUID
) -> tuple[Share, Video]:
    """A share its follower reads (sender, managers above the sender, admins), and its video."""
    share = load_share(session, principal, share_id)
    video = session.scalar(
        select(Video).where(Video.org_id == share.org_id, Video.id == share.video_id)
    )
    if video is None:
        raise NotFound(f"No share with id {share_id}.")
    return share, video


def share_figures(session: Session, share: Share, video: Video) -> dict[str, Any]:
    """How far the share got: its recipients, how many it reached in each state (or further),
    and of them how many watched the video, completed it, and how much they watched."""
    rows = dict(
        session.execute(
            select(ShareRecipient.state, func.count())
            .where(ShareRecipient.org_id == share.org_id, ShareRecipient.share_id == share.id)
            .group_by(ShareRecipient.state)
        ).all()
    )
    reached = {name: sum(rows.get(s, 0) for s in states) for name, states in _REACHED.items()}
    people = select(ShareRecipient.user_id).where(
        ShareRecipient.org_id == share.org_id, ShareRecipient.share_id == share.id
    )
    return {
        "share_id": share.id,
        "video_id": video.id,
        "recipients": sum(rows.values()),
        "failed": rows.get(RecipientState.FAILED, 0),
        **reached,
        **_group_figures(session, video, people),
        "computed_at": utcnow(),
    }


def recipients(share: Share) -> Select[Any]:
    """The share's recipient rows, for a page by person."""
    return select(ShareRecipient).where(
        ShareRecipient.org_id == share.org_id, ShareRecipient.share_id == share.id
    )
