"""Top lists: the videos and clips an organisation engages with most, lately, ranked by a
worker and read as a small indexed read.

A worker (the `top-clips` periodic job) recomputes each organisation's boards; the API reads a
board's rows by primary key and keeps those the reader may see. Nothing is computed when read.

**Candidates.** Whole videos that play (`playable` or `ready`, not deleted, hidden or
archived), and clips of them: the ranges of the items of published collections (for teams or
the organisation) and of featured clips, and the ranges (`at_ms`..`end_ms`) of top-level
comments written or answered in the window that gathered a like, a reply or a reaction inside
their range (at most `MOMENTS_PER_VIDEO` of one video: the most liked and answered). A point
comment makes no clip (it has no range).

**Signals**, over the last `WINDOW` (90 days), each person counting once per kind of act on a
candidate (at their latest such act), and the video's author never for their own video
(curation excepted):

- viewers and completions: people whose progress moved in the window; completed, for a whole
  video, at the organisation's threshold (`video_progress.completed_at`); for a clip, when
  what they played of the video covers that share of the clip's range
  (`played * int4multirange(int4range(start, end))`); a viewer of a clip played some of it;
- reactions (inside a clip's range), comments and replies (at a time inside it), votes (likes
  of those comments, votes for the video as an answer to a question), accepted answers (the
  reply video the asker accepted; on a question, the comment answer the asker accepted,
  counted as its writer's act), shares (not recalled; whole videos only: a share has no
  range), curation (an item of a published collection or a feature naming exactly this video
  or clip).

**Score.**

    E     = sum over those acts of  WEIGHT[kind] x 0.5 ^ (age / HALF_LIFE)
    L     = Wilson lower bound (95 %, z = 1.96) of completions / viewers  (0 without viewers)
    score = (QUALITY_FLOOR + (1 - QUALITY_FLOOR) x L) x log2(1 + E)

Weights: completion 1, reaction 1, comment 2, vote 2, share 2, accepted answer 5, curation 5.
`HALF_LIFE` is 14 days: an act two weeks old counts half, four weeks old a quarter. The lower
bound makes small counts rank low (one viewer who finished: L = 0.21; 12 of 15: L = 0.55) and
a video people start and leave rank below one they finish, without silencing a video nobody
finished but many talk about (QUALITY_FLOOR = 0.25). `log2` keeps a hundred reactions from
being worth a hundred times one, as in Reddit's and PeerTube's "hot".

**Boards.** `organisation`; `team:<id>` for each team: the candidates whose video was recorded
by a member of the team or of its sub-teams, ranked by the organisation's engagement (a team's
own engagement would be too few acts to rank); `attribute:<name>=<value>` for the
`MAX_ATTRIBUTE_BOARDS` values (strings, and items of lists: choices, texts) that the most
ranked videos carry in their `deal_attributes` (numbers and dates make no boards: a value of
its own would hold one deal). Each board keeps its
`TOP_N` best with a score above 0, at most `PER_VIDEO` entries of one video. Every entry's
`reasons` holds the terms: the counts, `completion_lower_bound`, `engagement` (E) and `decay`
(E over the same acts undecayed: 1 is all fresh).

An organisation's boards are replaced in one transaction (its old rows deleted, the new ones
inserted), so a reader sees the last complete computation, never half of one; two
computations of one organisation at once do not happen (an advisory lock; the second skips).
The counting is done by PostgreSQL in one statement (grouped, never row by row in Python).
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, select, text
from sqlalchemy.orm import Session

from fieldcast.db import Database, EarlyCommit, commit_early, utcnow
from fieldcast.deals import catalogue
from fieldcast.errors import InvalidInput, NotFound
from fieldcast.models.accounts import Organisation, Team
from fieldcast.models.curation import TopEntry
from fieldcast.models.videos import Video
from fieldcast.policy import Principal, authorize

log = logging.getLogger(__name__)

WINDOW = timedelta(days=90)
HALF_LIFE = timedelta(days=14)
# z of the Wilson lower bound: 95 % two-sided.
WILSON_Z = 1.96
QUALITY_FLOOR = 0.25
WEIGHTS: dict[str, float] = {
    "completion": 1.0,
    "reaction": 1.0,
    "comment": 2.0,
    "vote": 2.0,
    "share": 2.0,
    "accepted": 5.0,
    "curation": 5.0,
}
TOP_N = 50
PER_VIDEO = 3
# Commented ranges of one video that are candidates: the most liked and answered.
MOMENTS_PER_VIDEO = 5
MAX_ATTRIBUTE_BOARDS = 200
# The longest board name the column holds (`top_entries.board`).
BOARD_MAX = 300

ORGANISATION = "organisation"
WORK_MEM = "128MB"
# Advisory lock namespace (with the organisation's hash): one computation per organisation.
_LOCK_NAMESPACE = 7_413_191


def team_board(team_id: uuid.UUID) -> str:
    return f"team:{team_id}"


def attribute_board(name: str, value: str) -> str:
    return f"attribute:{name}={value}"


def wilson_lower_bound(successes: int, trials: int, z: float = WILSON_Z) -> float:
    """The lower end of Wilson's score interval for `successes` of `trials` (0 without
    trials): the completion rate a candidate has at least, with 95 % confidence."""
    if trials <= 0:
        return 0.0
    p = successes / trials
    z2 = z * z
    centre = p + z2 / (2 * trials)
    spread = z * math.sqrt((p * (1 - p) + z2 / (4 * trials)) / trials)
    return (centre - spread) / (1 + z2 / trials)


def score_of(lower_bound: float, engagement: float) -> float:
    """The module's formula, from its two terms (the SQL below computes the same)."""
    return (QUALITY_FLOOR + (1 - QUALITY_FLOOR) * lower_bound) * math.log2(1 + engagement)


# One statement ranks an organisation's candidates and writes its boards. Its parts:
# `live`: the videos that may rank; `candidates`: them whole, and the clips of curation and
# of comment ranges, each with a key `k`; `plays`: each person's viewing of each candidate;
# `acts`: every act of the window on a video, with its time on the timeline (null: the whole
# video) and who did it; `hits`: the acts that fall on each candidate, once per person and
# kind; `summed` .. `scored`: the formula; `kept`: each video's best PER_VIDEO, numbered in
# the organisation's order (`g`); then the boards, each kept to TOP_N, and their rows.
# Measured on a 2-core machine with an organisation of 10,000 people, 100,000 videos and
# about a million acts in the window: 10-15 s, its time spread over every part.
_COMPUTE = text(
    """
    WITH RECURSIVE
    weights(kind, w) AS (
        VALUES ('completion', CAST(:w_completion AS float8)), ('reaction', :w_reaction),
               ('comment', :w_comment), ('vote', :w_vote), ('share', :w_share),
               ('accepted', :w_accepted), ('curation', :w_curation)
    ),
    org AS (SELECT completion_threshold_pct AS pct FROM organisations WHERE id = :org_id),
    live AS (
        SELECT v.id, v.owner_id
        FROM videos v
        WHERE v.org_id = :org_id AND v.status IN ('playable', 'ready')
          AND v.deleted_at IS NULL AND v.hidden_at IS NULL AND v.archived_at IS NULL
    ),
    curated AS (
        SELECT i.video_id, i.start_ms, i.end_ms, coalesce(i.added_by, i.id) AS actor,
               greatest(i.created_at, c.published_at) AS at
        FROM collection_items i
        JOIN collections c ON c.org_id = i.org_id AND c.id = i.collection_id
        WHERE i.org_id = :org_id AND c.published_at IS NOT NULL AND c.deleted_at IS NULL
          AND c.visibility <> 'private'
        UNION ALL
        SELECT f.video_id, f.start_ms, f.end_ms, coalesce(f.featured_by, f.id), f.created_at
        FROM features f
        WHERE f.org_id = :org_id AND f.video_id IS NOT NULL
    ),
    moments AS (
        SELECT c.video_id, c.at_ms AS start_ms, c.end_ms,
               row_number() OVER (PARTITION BY c.video_id
                                  ORDER BY c.like_count + c.reply_count DESC, c.created_at DESC,
                                           c.id) AS nth
        FROM comments c
        WHERE c.org_id = :org_id AND c.parent_id IS NULL AND c.end_ms IS NOT NULL
          AND c.deleted_at IS NULL AND c.hidden_at IS NULL
          AND greatest(c.created_at, c.last_reply_at) >= :since
          AND (c.like_count > 0 OR c.reply_count > 0 OR EXISTS (
                SELECT 1 FROM reactions r
                WHERE r.video_id = c.video_id AND r.at_ms >= c.at_ms AND r.at_ms < c.end_ms))
    ),
    ranges AS (
        SELECT video_id, start_ms, end_ms FROM curated WHERE start_ms IS NOT NULL
        UNION
        SELECT video_id, start_ms, end_ms FROM moments WHERE nth <= :moments_per_video
    ),
    candidates AS MATERIALIZED (
        SELECT row_number() OVER () AS k, x.*
        FROM (
            SELECT v.id AS video_id, CAST(NULL AS int) AS start_ms, CAST(NULL AS int) AS end_ms,
                   v.owner_id
            FROM live v
            UNION ALL
            SELECT v.id, r.start_ms, r.end_ms, v.owner_id
            FROM ranges r JOIN live v ON v.id = r.video_id
        ) x
    ),
    plays AS MATERIALIZED (
        SELECT c.k, p.user_id,
               p.completed_at IS NOT NULL AS done,
               p.completed_at AS at
        FROM candidates c
        JOIN video_progress p ON p.org_id = :org_id AND p.video_id = c.video_id
        WHERE c.start_ms IS NULL AND p.updated_at >= :since AND p.played_ms > 0
          AND p.user_id <> c.owner_id
        UNION ALL
        SELECT c.k, p.user_id,
               (SELECT coalesce(sum(upper(s) - lower(s)), 0)
                FROM unnest(p.played * int4multirange(int4range(c.start_ms, c.end_ms))) s)
                   * 100 >= (SELECT pct FROM org) * (c.end_ms - c.start_ms),
               p.updated_at
        FROM candidates c
        JOIN video_progress p ON p.org_id = :org_id AND p.video_id = c.video_id
        WHERE c.start_ms IS NOT NULL AND p.updated_at >= :since
          AND p.played && int4range(c.start_ms, c.end_ms) AND p.user_id <> c.owner_id
    ),
    acts AS (
        SELECT r.video_id, r.at_ms, 'reaction' AS kind, r.user_id AS actor, r.created_at AS at
        FROM reactions r WHERE r.org_id = :org_id AND r.created_at >= :since
        UNION ALL
        SELECT c.video_id, c.at_ms, 'comment', c.author_id, c.created_at
        FROM comments c
        WHERE c.org_id = :org_id AND c.created_at >= :since
          AND c.deleted_at IS NULL AND c.hidden_at IS NULL
        UNION ALL
        SELECT c.video_id, c.at_ms, 'vote', l.user_id, l.created_at
        FROM comment_likes l JOIN comments c ON c.org_id = l.org_id AND c.id = l.comment_id
        WHERE l.org_id = :org_id AND l.created_at >= :since
          AND c.deleted_at IS NULL AND c.hidden_at IS NULL
        UNION ALL
        SELECT a.video_id, NULL, 'vote', a.user_id, a.created_at
        FROM answer_votes a WHERE a.org_id = :org_id AND a.created_at >= :since
        UNION ALL
        SELECT q.accepted_video_id, NULL, 'accepted', q.owner_id, q.answered_at
        FROM videos q
        WHERE q.org_id = :org_id AND q.accepted_video_id IS NOT NULL AND q.answered_at >= :since
        UNION ALL
        -- A comment answer is on the question, the asker's own video: it counts as its
        -- writer's, so that an asker accepting their own comment adds nothing.
        SELECT c.video_id, c.at_ms, 'accepted', c.author_id, q.answered_at
        FROM videos q JOIN comments c ON c.org_id = q.org_id AND c.id = q.accepted_comment_id
        WHERE q.org_id = :org_id AND q.answered_at >= :since
          AND c.deleted_at IS NULL AND c.hidden_at IS NULL
        UNION ALL
        SELECT s.video_id, NULL, 'share', s.sender_id, s.created_at
        FROM shares s
        WHERE s.org_id = :org_id AND s.created_at >= :since AND s.recalled_at IS NULL
    ),
    hits AS (
        SELECT c.k, a.kind, a.actor, max(a.at) AS at
        FROM acts a
        JOIN candidates c ON c.video_id = a.video_id AND c.start_ms IS NULL
        WHERE a.actor <> c.owner_id
        GROUP BY c.k, a.kind, a.actor
        UNION ALL
        SELECT c.k, a.kind, a.actor, max(a.at)
        FROM acts a
        JOIN candidates c ON c.video_id = a.video_id AND c.start_ms IS NOT NULL
         AND a.at_ms >= c.start_ms AND a.at_ms < c.end_ms
        WHERE a.actor <> c.owner_id
        GROUP BY c.k, a.kind, a.actor
        UNION ALL
        SELECT c.k, 'curation', u.actor, max(u.at)
        FROM candidates c
        JOIN curated u ON u.video_id = c.video_id
         AND u.start_ms IS NOT DISTINCT FROM c.start_ms AND u.end_ms IS NOT DISTINCT FROM c.end_ms
        WHERE u.at >= :since
        GROUP BY c.k, u.actor
        UNION ALL
        SELECT k, 'completion', user_id, at FROM plays WHERE done AND at >= :since
    ),
    summed AS (
        SELECT h.k,
               sum(w.w) AS plain,
               sum(w.w * power(0.5, date_part('epoch', :now - h.at) / :half_life_s))
                   AS engagement,
               count(*) FILTER (WHERE h.kind = 'reaction') AS reactions,
               count(*) FILTER (WHERE h.kind = 'comment') AS comments,
               count(*) FILTER (WHERE h.kind = 'vote') AS votes,
               count(*) FILTER (WHERE h.kind = 'accepted') AS accepted_answers,
               count(*) FILTER (WHERE h.kind = 'share') AS shares,
               count(*) FILTER (WHERE h.kind = 'curation') AS curation
        FROM hits h JOIN weights w ON w.kind = h.kind
        GROUP BY h.k
    ),
    watching AS (
        SELECT k, count(*) AS viewers, count(*) FILTER (WHERE done) AS completions
        FROM plays GROUP BY k
    ),
    terms AS (
        SELECT c.k, c.video_id, c.start_ms, c.end_ms, c.owner_id,
               coalesce(w.viewers, 0) AS viewers, coalesce(w.completions, 0) AS completions,
               t.engagement, t.plain, t.reactions, t.comments, t.votes, t.accepted_answers,
               t.shares, t.curation
        FROM summed t
        JOIN candidates c ON c.k = t.k
        LEFT JOIN watching w ON w.k = t.k
        WHERE t.engagement > 0
    ),
    bounded AS (
        SELECT t.*,
               CASE WHEN t.viewers = 0 THEN 0.0 ELSE
                   (t.completions::float8 / t.viewers + :z2 / (2 * t.viewers)
                    - :z * sqrt((t.completions::float8 / t.viewers
                                 * (1 - t.completions::float8 / t.viewers)
                                 + :z2 / (4 * t.viewers)) / t.viewers))
                   / (1 + :z2 / t.viewers)
               END AS lower_bound
        FROM terms t
    ),
    scored AS MATERIALIZED (
        SELECT b.*,
               (:floor + (1 - :floor) * b.lower_bound) * ln(1 + b.engagement) / ln(2) AS score
        FROM bounded b
    ),
    -- A video's candidates share its author and attributes, so they are in the same boards:
    -- its best PER_VIDEO are the only ones any board may take.
    kept AS MATERIALIZED (
        SELECT k, video_id, owner_id,
               row_number() OVER (ORDER BY score DESC, video_id, start_ms NULLS FIRST, end_ms)
                   AS g
        FROM (SELECT s.*, row_number() OVER (PARTITION BY s.video_id
                                             ORDER BY s.score DESC, s.k) AS nth
              FROM scored s) x
        WHERE nth <= :per_video
    ),
    tree(team_id, member_team_id) AS (
        SELECT id, id FROM teams WHERE org_id = :org_id
        UNION
        SELECT tree.team_id, t.id
        FROM tree JOIN teams t ON t.org_id = :org_id AND t.parent_id = tree.member_team_id
    ),
    team_authors AS (
        SELECT DISTINCT tree.team_id, m.user_id
        FROM tree
        JOIN team_memberships m ON m.org_id = :org_id AND m.team_id = tree.member_team_id
    ),
    attribute_values AS (
        SELECT v.id AS video_id, a.key AS name, x.value
        FROM videos v
        CROSS JOIN LATERAL jsonb_each(v.deal_attributes) a
        CROSS JOIN LATERAL jsonb_array_elements_text(
            CASE jsonb_typeof(a.value) WHEN 'array' THEN a.value
                                       WHEN 'string' THEN jsonb_build_array(a.value)
                                       ELSE '[]' END) x(value)
        WHERE v.org_id = :org_id AND v.id IN (SELECT video_id FROM kept)
          AND x.value <> '' AND length(a.key) + length(x.value) <= :value_max
          AND NOT EXISTS (
            SELECT 1 FROM attribute_definitions d
            WHERE d.org_id = :org_id AND d.name = a.key AND d.type IN ('number', 'date'))
    ),
    most_used AS (
        SELECT name, value, row_number() OVER (ORDER BY uses DESC, name, value) AS n
        FROM (SELECT name, value, count(*) AS uses
              FROM attribute_values GROUP BY name, value) x
        ORDER BY uses DESC, name, value
        LIMIT :max_attribute_boards
    ),
    -- Boards are keyed by the team's id or the value's number while they are ranked, and
    -- their entries by their rank in the organisation (`g`): short keys sort fast. A board is
    -- named only for the rows written.
    boards AS (
        SELECT CAST(NULL AS uuid) AS team_id, CAST(NULL AS bigint) AS value_n, s.k, s.g AS rank
        FROM kept s
        WHERE s.g <= :top_n
        UNION ALL
        SELECT team_id, value_n, k, rank
        FROM (SELECT b.*, row_number() OVER (PARTITION BY b.team_id, b.value_n
                                             ORDER BY b.g) AS rank
              FROM (SELECT ta.team_id, CAST(NULL AS bigint) AS value_n, s.k, s.g
                    FROM kept s JOIN team_authors ta ON ta.user_id = s.owner_id
                    UNION ALL
                    SELECT NULL, mu.n, s.k, s.g
                    FROM attribute_values av
                    JOIN most_used mu ON mu.name = av.name AND mu.value = av.value
                    JOIN kept s ON s.video_id = av.video_id) b) r
        WHERE rank <= :top_n
    ),
    written AS (
        INSERT INTO top_entries
            (org_id, board, rank, video_id, start_ms, end_ms, score, reasons, computed_at)
        SELECT :org_id,
               CASE WHEN r.team_id IS NOT NULL THEN 'team:' || r.team_id
                    WHEN r.value_n IS NOT NULL THEN 'attribute:' || mu.name || '=' || mu.value
                    ELSE CAST(:organisation AS text) END,
               r.rank, s.video_id, s.start_ms, s.end_ms, s.score,
               jsonb_build_object(
                   'viewers', s.viewers,
                   'completions', s.completions,
                   'completion_lower_bound', round(CAST(s.lower_bound AS numeric), 3),
                   'reactions', s.reactions,
                   'comments', s.comments,
                   'votes', s.votes,
                   'accepted_answers', s.accepted_answers,
                   'shares', s.shares,
                   'curation', s.curation,
                   'engagement', round(CAST(s.engagement AS numeric), 3),
                   'decay', round(CAST(s.engagement / s.plain AS numeric), 3)
               ),
               :now
        FROM boards r
        JOIN scored s ON s.k = r.k
        LEFT JOIN most_used mu ON mu.n = r.value_n
        RETURNING board
    )
    SELECT count(*) AS entries, count(DISTINCT board) AS boards FROM written
    """
)

_WORK_MEM = text("SELECT set_config('work_mem', :work_mem, true)")
_DELETE = text("DELETE FROM top_entries WHERE org_id = :org_id")
_LOCK = text("SELECT pg_try_advisory_xact_lock(:namespace, hashtext(CAST(:org_id AS text)))")


@dataclass(frozen=True)
class Computed:
    org_id: uuid.UUID
    boards: int
    entries: int
    seconds: float
    # False when another computation of the organisation was under way (nothing written).
    done: bool = True


def compute(session: Session, org_id: uuid.UUID, *, now: datetime | None = None) -> Computed:
    """Rank the organisation's candidates and replace its boards, in the session's
    transaction (the caller commits)."""
    started = time.monotonic()
    now = now or utcnow()
    if not session.scalar(_LOCK, {"namespace": _LOCK_NAMESPACE, "org_id": org_id}):
        log.info("top lists of organisation %s are being computed elsewhere; skipped", org_id)
        return Computed(org_id, 0, 0, time.monotonic() - started, done=False)
    # The statement sorts and groups a few million rows in a large organisation: in memory.
    session.execute(_WORK_MEM, {"work_mem": WORK_MEM})
    session.execute(_DELETE, {"org_id": org_id})
    row = session.execute(
        _COMPUTE,
        {
            "org_id": org_id,
            "now": now,
            "since": now - WINDOW,
            "half_life_s": HALF_LIFE.total_seconds(),
            "z": WILSON_Z,
            "z2": WILSON_Z * WILSON_Z,
            "floor": QUALITY_FLOOR,
            "top_n": TOP_N,
            "per_video": PER_VIDEO,
            "moments_per_video": MOMENTS_PER_VIDEO,
            "max_attribute_boards": MAX_ATTRIBUTE_BOARDS,
            "value_max": BOARD_MAX - len(attribute_board("", "")),
            "organisation": ORGANISATION,
            **{f"w_{kind}": weight for kind, weight in WEIGHTS.items()},
        },
    ).one()
    computed = Computed(org_id, int(row.boards), int(row.entries), time.monotonic() - started)
    log.info(
        "top lists of organisation %s: %d boards, %d entries in %.2f s",
        org_id,
        computed.boards,
        computed.entries,
        computed.seconds,
    )
    return computed


def compute_all(db: Database) -> dict[str, int]:
    """Recompute every organisation's boards, one organisation per transaction (an error in
    one leaves the others' boards computed)."""
    report = {"organisations": 0, "boards": 0, "entries": 0, "failed": 0}
    with db.session() as session:
        org_ids = list(session.scalars(select(Organisation.id).order_by(Organisation.id)))
        session.rollback()
        for org_id in org_ids:
            try:
                computed = compute(session, org_id)
                commit_early(session, EarlyCommit.BATCH_ITEM)
            except Exception:
                session.rollback()
                report["failed"] += 1
                log.exception("top lists of organisation %s failed", org_id)
                continue
            report["organisations"] += int(computed.done)
            report["boards"] += computed.boards
            report["entries"] += computed.entries
    return report


def compute_organisation(db: Database, slug: str) -> Computed | None:
    """Recompute one organisation's boards now (an operator's command); None: no such
    organisation."""
    with db.unit_of_work() as session:
        org_id = session.scalar(select(Organisation.id).where(Organisation.slug == slug))
        return None if org_id is None else compute(session, org_id)


# -- reading --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Board:
    name: str
    computed_at: datetime | None
    entries: list[TopEntry]


def board_for(
    session: Session,
    principal: Principal,
    *,
    team_id: uuid.UUID | None = None,
    attribute: tuple[str, str] | None = None,
) -> str:
    """The board a reader asks for: the organisation's, a team's of their organisation
    (`NotFound` otherwise), or an attribute value's, in the catalogue's spelling."""
    if team_id is not None and attribute is not None:
        raise InvalidInput(errors={"attribute": ["Ask for a team's board or an attribute's."]})
    if team_id is not None:
        found = session.scalar(
            select(Team.id).where(Team.org_id == principal.org_id, Team.id == team_id)
        )
        if found is None:
            raise NotFound(f"No team with id {team_id}.")
        return team_board(team_id)
    if attribute is not None:
        name, value = attribute
        name = catalogue.slug(name) or name
        try:
            held = (
                catalogue.Catalogue.load(session, principal.org_id)
                .normalise({name: value}, learn=False)
                .get(name, value)
            )
        except InvalidInput:
            # A value of the wrong type (a word for a number) has no board: it matches nothing.
            held = value
        if isinstance(held, list):
            held = held[0] if held else value
        return attribute_board(name, str(held))
    return ORGANISATION


def read(session: Session, principal: Principal, board: str) -> Board:
    """The board's entries in rank order (at most TOP_N, one read by primary key), less those
    whose video was deleted or archived since it was ranked.

    Not yet narrowed to what the principal may see: the caller presents them through one
    query that asks `policy.videos.visible` of them all (the API's `present_clips`) and
    skips those it finds unavailable. A second query, only when the board has no entries,
    says when the boards were computed."""
    authorize(principal, "top.list")
    entries = list(
        session.scalars(
            select(TopEntry)
            .join(Video, and_(Video.org_id == TopEntry.org_id, Video.id == TopEntry.video_id))
            .where(
                TopEntry.org_id == principal.org_id,
                TopEntry.board == board,
                Video.deleted_at.is_(None),
                Video.archived_at.is_(None),
            )
            .order_by(TopEntry.rank)
        )
    )
    if entries:
        computed_at: datetime | None = entries[0].computed_at
    else:
        # An organisation's boards are written together, at one time: any of its rows says
        # when (a board left empty, for a team nobody engages with, has none of its own).
        computed_at = session.scalar(
            select(TopEntry.computed_at).where(TopEntry.org_id == principal.org_id).limit(1)
        )
    return Board(board, computed_at, entries)


def reasons_of(entry: TopEntry) -> dict[str, Any]:
    """The entry's reasons with every term present (rows written before a term was added
    read it as 0)."""
    keys = (
        "viewers",
        "completions",
        "completion_lower_bound",
        "reactions",
        "comments",
        "votes",
        "accepted_answers",
        "shares",
        "curation",
        "engagement",
        "decay",
    )
    return {key: entry.reasons.get(key, 0) for key in keys}
