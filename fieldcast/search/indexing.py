"""Search documents: built by a worker from a video's texts, never inside the request.

A change to a text search reads (`VideoTextChanged`) marks the video's document as asked for
(`requested_at`) in the publisher's transaction and, unless a build is already waiting,
records one `search.index` job: a burst of comments on one video is one build. The build reads
the video, its comments, its transcript and its attachments' text, cuts each part to a size
limit, and computes the weighted `tsvector` inside PostgreSQL in one statement. A build that
finds it was asked for again while it ran records itself once more, so the last change is never
left out; a periodic sweep builds what a lost job left stale.

Engagement (comments, reactions, likes and votes, accepted answers, shares, `watched`) moves
`rank_key` (see `ranking`); it is counted again by every build and by a periodic job for the
documents whose count is oldest.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldcast import events
from fieldcast.db import Database, utcnow
from fieldcast.models.search import SearchDocument
from fieldcast.models.videos import Video
from fieldcast.outbox import services as outbox
from fieldcast.outbox.names import TaskName
from fieldcast.search import ranking
from fieldcast.search.language import CONFIG_PREFIX, FALLBACK, LANGUAGES

log = logging.getLogger(__name__)

QUEUE = "search"
# Characters of each long part that are indexed: a transcript, the comments, the attachments'
# text. Past them a video is still found by its other parts.
PART_CHARS = 100_000
# The newest comments read for one document (the rest are beyond PART_CHARS anyway).
COMMENTS_READ = 2_000

# One statement builds a document: the video's texts, each cut to its limit, weighted, with
# the engagement counts beside them. Parts read tables by the video's id only.
_BUILD = text(
    """
    WITH v AS (
        SELECT v.id, v.org_id, v.owner_id, v.title, v.description, v.deal_attributes,
               v.created_at, v.accepted_comment_id, v.accepted_video_id,
               coalesce(o.search_language, 'en') AS language, u.display_name AS author
        FROM videos v
        JOIN organisations o ON o.id = v.org_id
        LEFT JOIN users u ON u.org_id = v.org_id AND u.id = v.owner_id
        WHERE v.id = :video_id AND v.deleted_at IS NULL
    ),
    live AS (
        SELECT c.body, c.like_count
        FROM comments c
        WHERE c.video_id = :video_id AND c.deleted_at IS NULL AND c.hidden_at IS NULL
        ORDER BY c.created_at DESC
        LIMIT :comments_read
    ),
    counts AS (
        SELECT
            (SELECT count(*) FROM live) AS comments,
            (SELECT coalesce(sum(like_count), 0) FROM live) AS likes,
            (SELECT coalesce(sum(m.reactions), 0) FROM moment_counts m
              WHERE m.video_id = :video_id) AS reactions,
            (SELECT count(*) FROM answer_votes a WHERE a.video_id = :video_id) AS votes,
            (SELECT count(*) FROM shares s
              WHERE s.video_id = :video_id AND s.recalled_at IS NULL) AS shares,
            (SELECT count(*) FROM shares s
              JOIN share_recipients r ON r.share_id = s.id AND r.state = 'watched'
              WHERE s.video_id = :video_id AND s.recalled_at IS NULL) AS watched
    ),
    parts AS (
        SELECT v.*, cfg.config,
            (SELECT left(string_agg(body, ' '), :part_chars) FROM live) AS comments_text
        FROM v, LATERAL (SELECT split_part(lower(v.language), '-', 1) AS code) l,
             LATERAL (SELECT :config_prefix || CASE WHEN l.code = ANY(:languages)
                                THEN l.code ELSE :fallback END AS config) cfg
    )
    SELECT p.org_id, p.owner_id, p.title, p.deal_attributes, p.config, p.created_at,
        setweight(to_tsvector(p.config::regconfig, p.title), 'A')
        || setweight(to_tsvector(p.config::regconfig,
               p.description || ' ' || coalesce(p.author, '')), 'B')
        || setweight(jsonb_to_tsvector(p.config::regconfig, p.deal_attributes,
               '["string", "numeric"]'), 'B')
        || setweight(to_tsvector(p.config::regconfig, coalesce(p.comments_text, '')), 'D')
        AS tsv,
        c.comments + c.reactions + :w_vote * (c.likes + c.votes)
        + :w_accepted * ((p.accepted_comment_id IS NOT NULL OR p.accepted_video_id IS NOT NULL)::int
                         + (SELECT count(*) FROM videos q WHERE q.org_id = p.org_id
                              AND q.accepted_video_id = p.id))
        + :w_share * c.shares + :w_watched * c.watched AS engagement
    FROM parts p, counts c
    """
)


def _build_params(video_id: uuid.UUID) -> dict[str, Any]:
    return {
        "video_id": video_id,
        "comments_read": COMMENTS_READ,
        "part_chars": PART_CHARS,
        "config_prefix": CONFIG_PREFIX,
        "languages": sorted(LANGUAGES),
        "fallback": FALLBACK,
        "w_vote": ranking.WEIGHT_VOTE,
        "w_accepted": ranking.WEIGHT_ACCEPTED,
        "w_share": ranking.WEIGHT_SHARE,
        "w_watched": ranking.WEIGHT_WATCHED,
    }


def request(session: Session, org_id: uuid.UUID, video_id: uuid.UUID) -> None:
    """Ask for the video's document to be built again once this transaction commits: one job,
    unless a build asked for earlier has not run yet (it will read this change too)."""
    previous = session.execute(
        select(SearchDocument.requested_at, SearchDocument.indexed_at)
        .where(SearchDocument.video_id == video_id)
        .with_for_update()
    ).one_or_none()
    waiting = (
        previous is not None
        and previous.indexed_at is not None
        and previous.requested_at > previous.indexed_at
    )
    now = utcnow()
    owner = select(Video.owner_id).where(Video.id == video_id).scalar_subquery()
    session.execute(
        insert(SearchDocument)
        .values(org_id=org_id, video_id=video_id, owner_id=owner, requested_at=now)
        .on_conflict_do_update(index_elements=[SearchDocument.video_id], set_={"requested_at": now})
    )
    if not waiting:
        outbox.record(session, TaskName.SEARCH_INDEX, {"video_id": str(video_id)}, org_id=org_id)


@events.subscribe(events.VideoTextChanged)
def _text_changed(session: Session, event: events.VideoTextChanged) -> None:
    request(session, event.org_id, event.video_id)


def build(session: Session, video_id: uuid.UUID) -> bool:
    """Build one document now, in the caller's transaction. False when the video is gone."""
    doc = session.execute(
        select(SearchDocument).where(SearchDocument.video_id == video_id).with_for_update()
    ).scalar_one_or_none()
    row = session.execute(_BUILD, _build_params(video_id)).one_or_none()
    if row is None:
        return False
    asked = doc.requested_at if doc is not None else utcnow()
    values = {
        "owner_id": row.owner_id,
        "title": row.title,
        "attrs": row.deal_attributes,
        "tsv": row.tsv,
        "config": row.config,
        "engagement": row.engagement,
        "rank_key": ranking.rank_key(row.engagement, row.created_at),
        "indexed_at": asked,
        "engagement_at": utcnow(),
    }
    session.execute(
        insert(SearchDocument)
        .values(org_id=row.org_id, video_id=video_id, requested_at=asked, **values)
        .on_conflict_do_update(index_elements=[SearchDocument.video_id], set_=values)
    )
    return True


def _index(session: Session, payload: dict[str, Any]) -> None:
    build(session, uuid.UUID(payload["video_id"]))


outbox.tasks.register(TaskName.SEARCH_INDEX, queue=QUEUE, max_attempts=8)(_index)


def sweep(db: Database, *, limit: int = 200) -> int:
    """Build the documents left stale (a lost job, the migration's backfill). Returns how many."""
    built = 0
    with db.unit_of_work() as session:
        ids = session.scalars(
            select(SearchDocument.video_id)
            .where(
                SearchDocument.indexed_at.is_(None)
                | (SearchDocument.requested_at > SearchDocument.indexed_at)
            )
            .order_by(SearchDocument.requested_at)
            .limit(limit)
        ).all()
        for video_id in ids:
            if build(session, video_id):
                built += 1
            else:
                session.execute(
                    update(SearchDocument)
                    .where(SearchDocument.video_id == video_id)
                    .values(indexed_at=SearchDocument.requested_at)
                )
    return built
