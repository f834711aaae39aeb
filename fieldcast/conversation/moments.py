"""Moments: where on a video's timeline peers talked and reacted, for a heat strip over the
scrub bar and a list of the moments to jump to.

The counts come from `moment_counts` (100 ms slots kept by triggers), so a video with tens of
thousands of comments and reactions answers from a few hundred rows. A bucket holds the slots
that start in it; the top moments are the busiest buckets, each with its leading comment: the
most liked live thread starting in it (then the most replied, then the first).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, and_, cast, func, literal, or_, select
from sqlalchemy.orm import Session

from fieldcast.models.conversation import SLOT_MS, Comment, MomentCount
from fieldcast.models.videos import Video

MAX_BUCKETS = 500
DEFAULT_BUCKETS = 100
TOP_MOMENTS = 5


@dataclass(frozen=True)
class Bucket:
    index: int
    count: int  # buckets on the timeline
    start_ms: int
    end_ms: int
    comments: int = 0
    replies: int = 0
    reactions: int = 0

    @property
    def activity(self) -> int:
        return self.comments + self.replies + self.reactions


@dataclass(frozen=True)
class Moments:
    duration_ms: int | None
    buckets: list[Bucket]
    top: list[tuple[Bucket, Comment | None]]


def _bounds(duration_ms: int, count: int, index: int) -> tuple[int, int]:
    return duration_ms * index // count, duration_ms * (index + 1) // count


def _slots(duration_ms: int, bucket: Bucket) -> tuple[int, int | None]:
    """The first slot of a bucket and the first slot past it (None for the last bucket): slot
    `s` is in bucket `i` when i <= s * SLOT_MS * count / duration < i + 1."""
    count = bucket.count
    low = -(-(bucket.index * duration_ms) // (count * SLOT_MS))
    if bucket.index == count - 1:
        return low, None
    return low, -(-((bucket.index + 1) * duration_ms) // (count * SLOT_MS))


def moments(session: Session, video: Video, count: int) -> Moments:
    """The video's timeline in `count` buckets with their counts, and its top moments."""
    duration = video.duration_ms
    if not duration:
        return Moments(duration, [], [])
    # A slot belongs to the bucket its start falls in; the end of the video is in the last.
    index = func.least(
        # In 64 bits: slot x 100 x 500 buckets passes 2**31 past 71 minutes of video.
        (cast(MomentCount.slot, BigInteger) * SLOT_MS * count) // literal(duration),
        literal(count - 1),
    ).label("bucket")
    rows = session.execute(
        select(
            index,
            func.sum(MomentCount.comments),
            func.sum(MomentCount.replies),
            func.sum(MomentCount.reactions),
        )
        .where(MomentCount.org_id == video.org_id, MomentCount.video_id == video.id)
        .group_by(index)
    ).all()
    counts = {int(row[0]): (int(row[1]), int(row[2]), int(row[3])) for row in rows}
    buckets = []
    for i in range(count):
        start, end = _bounds(duration, count, i)
        c, r, x = counts.get(i, (0, 0, 0))
        buckets.append(Bucket(i, count, start, end, max(c, 0), max(r, 0), max(x, 0)))
    busiest = sorted((b for b in buckets if b.activity > 0), key=lambda b: (-b.activity, b.index))[
        :TOP_MOMENTS
    ]
    return Moments(duration, buckets, _leads(session, video, busiest))


def _leads(
    session: Session, video: Video, busiest: list[Bucket]
) -> list[tuple[Bucket, Comment | None]]:
    """Each bucket with its leading comment, in one query."""
    if not busiest:
        return []
    duration, count = video.duration_ms or 0, busiest[0].count
    ranges = []
    for bucket in busiest:
        # The bucket's comments are those of the slots counted in it (see `moments`).
        low, high = _slots(duration, bucket)
        ranges.append(
            and_(
                Comment.at_ms >= low * SLOT_MS,
                *((Comment.at_ms < high * SLOT_MS,) if high is not None else ()),
            )
        )
    index = func.least(
        ((cast(Comment.at_ms, BigInteger) // SLOT_MS) * SLOT_MS * count) // literal(duration),
        literal(count - 1),
    ).label("bucket")
    # The most liked thread of each bucket (then the most replied, then the first), in one
    # query that reads only the busiest buckets' comments.
    rank = (
        func.row_number()
        .over(
            partition_by=index,
            order_by=(Comment.like_count.desc(), Comment.reply_count.desc(), Comment.id),
        )
        .label("rank")
    )
    ranked = (
        select(Comment.id, index, rank)
        .where(
            Comment.org_id == video.org_id,
            Comment.video_id == video.id,
            Comment.parent_id.is_(None),
            Comment.deleted_at.is_(None),
            Comment.hidden_at.is_(None),
            or_(*ranges),
        )
        .subquery()
    )
    rows = session.execute(
        select(Comment, ranked.c.bucket)
        .join(ranked, ranked.c.id == Comment.id)
        .where(ranked.c.rank == 1)
    ).all()
    leads = {int(row.bucket): row[0] for row in rows}
    return [(bucket, leads.get(bucket.index)) for bucket in busiest]
