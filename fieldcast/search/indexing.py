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
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldcast import events
from fieldcast.db import Database, utcnow
from fieldcast.errors import InvalidInput
from fieldcast.models.accounts import Organisation
from fieldcast.models.search import SearchDocument
from fieldcast.models.videos import Video
from fieldcast.outbox import services as outbox
from fieldcast.outbox.names import TaskName
from fieldcast.policy import Principal, authorize
from fieldcast.search import engine, ranking
from fieldcast.search.language import CONFIG_PREFIX, FALLBACK, LANGUAGES

log = logging.getLogger(__name__)

QUEUE = "search"
# Characters of each long part that are indexed: a transcript, the comments, the attachments'
# text. Past them a video is still found by its other parts.
PART_CHARS = 100_000
# The newest comments read for one document (the rest are beyond PART_CHARS anyway).
COMMENTS_READ = 2_000

# One statement builds the documents of many videos: each video's texts, each cut to its
# limit, weighted, with the engagement counts beside them, written over the old documents. The
# parts read other tables by the video's id only. A video that is gone (deleted) keeps its old
# document, which search no longer shows (it asks the video policy), until the purge.
_BUILD = text(
    """
    INSERT INTO search_documents AS d (
        org_id, video_id, owner_id, title, attrs, tsv, config, engagement, rank_key,
        requested_at, indexed_at, engagement_at)
    SELECT v.org_id, v.id, v.owner_id, v.title, v.deal_attributes,
        setweight(to_tsvector(cfg.config, v.title), 'A')
        || setweight(to_tsvector(cfg.config, v.description || ' ' || coalesce(u.display_name, '')),
                     'B')
        || setweight(jsonb_to_tsvector(cfg.config, v.deal_attributes, '["string", "numeric"]'),
                     'B')
        || setweight(to_tsvector(cfg.config, coalesce(tr.text, '')), 'C')
        || setweight(to_tsvector(cfg.config, coalesce(cm.text, '') || ' ' || coalesce(at.text, '')),
                     'D'),
        cfg.config::text,
        e.engagement,
        log(1 + e.engagement) + extract(epoch FROM v.created_at) / :freshness_s,
        now(), now(), now()
    FROM videos v
    JOIN organisations o ON o.id = v.org_id
    LEFT JOIN users u ON u.org_id = v.org_id AND u.id = v.owner_id
    CROSS JOIN LATERAL (
        SELECT CAST(:config_prefix || CASE WHEN split_part(lower(o.search_language), '-', 1)
                                            = ANY(:languages)
                                       THEN split_part(lower(o.search_language), '-', 1)
                                       ELSE :fallback END AS regconfig) AS config
    ) cfg
    CROSS JOIN LATERAL (
        SELECT left(string_agg(s.text, ' ' ORDER BY s.start_ms), :part_chars) AS text
        FROM transcript_segments s WHERE s.video_id = v.id
    ) tr
    CROSS JOIN LATERAL (
        SELECT left(string_agg(concat_ws(' ', a.title, a.body, left(a.text, :part_chars)), ' '),
                    :part_chars) AS text
        FROM attachments a WHERE a.video_id = v.id
    ) at
    CROSS JOIN LATERAL (
        SELECT count(*) AS n, coalesce(sum(x.like_count), 0) AS likes,
               left(string_agg(x.body, ' '), :part_chars) AS text
        FROM (SELECT c.body, c.like_count FROM comments c
              WHERE c.video_id = v.id AND c.deleted_at IS NULL AND c.hidden_at IS NULL
              ORDER BY c.created_at DESC LIMIT :comments_read) x
    ) cm
    CROSS JOIN LATERAL (
        SELECT cm.n
            + (SELECT coalesce(sum(m.reactions), 0) FROM moment_counts m WHERE m.video_id = v.id)
            + :w_vote * (cm.likes + (SELECT count(*) FROM answer_votes a WHERE a.video_id = v.id))
            + :w_accepted * ((v.accepted_comment_id IS NOT NULL
                              OR v.accepted_video_id IS NOT NULL)::int
                             + (SELECT count(*) FROM videos q
                                WHERE q.org_id = v.org_id AND q.id = v.answers_video_id
                                  AND q.accepted_video_id = v.id))
            + :w_share * (SELECT count(*) FROM shares s
                          WHERE s.video_id = v.id AND s.recalled_at IS NULL)
            + :w_watched * (SELECT count(*) FROM shares s
                            JOIN share_recipients r ON r.share_id = s.id AND r.state = 'watched'
                            WHERE s.video_id = v.id AND s.recalled_at IS NULL) AS engagement
        OFFSET 0
    ) e
    WHERE v.id = ANY(:ids) AND v.deleted_at IS NULL
    ON CONFLICT (video_id) DO UPDATE SET
        owner_id = excluded.owner_id, title = excluded.title, attrs = excluded.attrs,
        tsv = excluded.tsv, config = excluded.config, engagement = excluded.engagement,
        rank_key = excluded.rank_key, engagement_at = excluded.engagement_at,
        indexed_at = d.requested_at
    RETURNING d.video_id
    """
)


def _build_params(video_ids: Sequence[uuid.UUID]) -> dict[str, Any]:
    return {
        "ids": list(video_ids),
        "comments_read": COMMENTS_READ,
        "part_chars": PART_CHARS,
        "config_prefix": CONFIG_PREFIX,
        "languages": sorted(LANGUAGES),
        "fallback": FALLBACK,
        "freshness_s": ranking.FRESHNESS_S,
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


@events.subscribe(events.PersonRenamed)
def _person_renamed(session: Session, event: events.PersonRenamed) -> None:
    # However many videos they made: marked unbuilt, for the sweep to build a batch at a time.
    session.execute(
        update(SearchDocument)
        .where(
            SearchDocument.org_id == event.org_id,
            SearchDocument.video_id.in_(
                select(Video.id).where(
                    Video.org_id == event.org_id, Video.owner_id == event.user_id
                )
            ),
        )
        .values(indexed_at=None)
        .execution_options(synchronize_session=False)
    )


def build(session: Session, video_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """Build these videos' documents now, in the caller's transaction; returns the ids built
    (a deleted video is not). The documents are locked first, so the texts read are at least
    as new as every request they answer (`indexed_at` takes their `requested_at`)."""
    ids = sorted(set(video_ids))
    session.execute(
        select(SearchDocument.video_id)
        .where(SearchDocument.video_id.in_(ids))
        .order_by(SearchDocument.video_id)
        .with_for_update()
    ).all()
    return set(session.scalars(_BUILD, _build_params(ids)))


def _index(session: Session, payload: dict[str, Any]) -> None:
    build(session, [uuid.UUID(payload["video_id"])])


outbox.tasks.register(TaskName.SEARCH_INDEX, queue=QUEUE, max_attempts=8)(_index)


def sweep(db: Database, *, batch: int = 500) -> int:
    """Build, a batch at a time, the documents left stale (a lost job, the migration's backfill,
    a change of the organisation's language). Returns how many were looked at. Documents a
    job is building are left to it."""
    with db.unit_of_work() as session:
        ids = session.scalars(
            select(SearchDocument.video_id)
            .where(
                SearchDocument.indexed_at.is_(None)
                | (SearchDocument.requested_at > SearchDocument.indexed_at)
            )
            .order_by(SearchDocument.requested_at)
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        built = build(session, ids)
        # A deleted video's document is not built again until the video is restored.
        gone = [i for i in ids if i not in built]
        if gone:
            session.execute(
                update(SearchDocument)
                .where(SearchDocument.video_id.in_(gone))
                .values(indexed_at=SearchDocument.requested_at, engagement_at=utcnow())
            )
    return len(ids)


def refresh_engagement(db: Database, *, older_than: timedelta, limit: int = 2_000) -> int:
    """Mark for building again the documents whose engagement was counted longest ago
    (reactions, likes, shares and `watched` do not ask by themselves); the sweep builds them.
    They are marked unbuilt (`indexed_at` null) rather than asked for, so a change meanwhile
    still records its own job (`request` sees no job waiting)."""
    with db.unit_of_work() as session:
        stale = (
            select(SearchDocument.video_id)
            .where(SearchDocument.engagement_at < utcnow() - older_than)
            .order_by(SearchDocument.engagement_at)
            .limit(limit)
            .scalar_subquery()
        )
        result = session.execute(
            update(SearchDocument)
            .where(SearchDocument.video_id.in_(stale))
            .values(indexed_at=None)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def set_language(session: Session, principal: Principal, language: str) -> str:
    """An admin sets the language the organisation searches in; every document is marked
    unbuilt and the sweep builds them anew, a batch at a time (until then, a document built in
    the old language matches only words stemmed alike). Returns the language code kept."""
    authorize(principal, "search.configure")
    code = language.split("-")[0].lower()
    if code not in LANGUAGES and code != FALLBACK:
        raise InvalidInput(
            errors={"language": [f"One of: {', '.join(sorted([*LANGUAGES, FALLBACK]))}."]}
        )
    org = session.get(Organisation, principal.org_id)
    assert org is not None
    if org.search_language != code:
        org.search_language = code
        engine.forget_config(org.id)
        outbox.record(session, TaskName.SEARCH_RESTEM, {"org_id": str(org.id)}, org_id=org.id)
        session.execute(
            update(SearchDocument)
            .where(SearchDocument.org_id == principal.org_id)
            .values(indexed_at=None)
            .execution_options(synchronize_session=False)
        )
    session.flush()
    return code


RESTEM_BATCH = 5_000


def _restem(session: Session, payload: dict[str, Any]) -> None:
    """Stem the next batch of an organisation's comments in its search language (after a
    change of language); records itself again until none is left."""
    rows: list[uuid.UUID] = list(
        session.execute(
            text(
                """
            UPDATE comments c SET search_tsv = to_tsvector(search_config(c.org_id), c.body)
            WHERE c.id IN (SELECT id FROM comments
                           WHERE org_id = :org_id AND id > :after ORDER BY id LIMIT :batch)
            RETURNING c.id
            """
            ),
            {
                "org_id": payload["org_id"],
                "after": payload.get("after", "00000000-0000-0000-0000-000000000000"),
                "batch": RESTEM_BATCH,
            },
        ).scalars()
    )
    if len(rows) == RESTEM_BATCH:
        outbox.record(
            session,
            TaskName.SEARCH_RESTEM,
            {"org_id": payload["org_id"], "after": str(max(rows))},
            org_id=uuid.UUID(payload["org_id"]),
        )


outbox.tasks.register(TaskName.SEARCH_RESTEM, queue=QUEUE, max_attempts=8)(_restem)
