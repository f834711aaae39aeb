"""For this deal: the videos and comment moments most useful to the rep working it.

A video is a candidate when the attributes it was recorded with share a value with the deal's
current ones on the attributes that say most about a sales situation. Each shared value adds
its weight:

    competitors 3, industry 2, stage 2, deal_size (the same band) 1.5, products 1.5, region 1

and a video whose own deal was won counts 1.5 times (0.75 times when lost), so what worked
comes first: the deal's outcome now when the caller may read that deal, else as the video
recorded it (a deal the caller may not read tells them nothing new). Ties and near-ties are
broken by engagement and freshness (the documents' `rank_key`, see `ranking`):
score = weight x (1 + 0.1 x rank_key relative to the newest).

Work is bounded: the candidates are the `CANDIDATES` best-ranked visible documents holding any
of the deal's values (the attributes' GIN index finds them); they are scored in Python. The
moments are the most liked and discussed timed comments of the videos recommended.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, text
from sqlalchemy.orm import Session

from fieldcast import policy
from fieldcast.deals import catalogue
from fieldcast.models.deals import AttributeType, Deal, DealOutcome
from fieldcast.models.search import SearchDocument
from fieldcast.models.videos import Video
from fieldcast.policy import Principal
from fieldcast.search import engine

WEIGHTS: dict[str, float] = {
    "competitors": 3.0,
    "industry": 2.0,
    "stage": 2.0,
    "deal_size": 1.5,
    "products": 1.5,
    "region": 1.0,
}
WON = 1.5
LOST = 0.75
CANDIDATES = 300
VIDEOS = 10
MOMENTS = 10

D = SearchDocument


@dataclass(frozen=True)
class Why:
    kind: str  # "attribute" (a shared value) or "won_deal" / "lost_deal"
    attribute: str | None = None
    value: str | None = None


@dataclass
class Recommended:
    video: Video
    score: float
    why: list[Why] = field(default_factory=list)


@dataclass(frozen=True)
class RecommendedMoment:
    video_id: uuid.UUID
    comment_id: uuid.UUID
    at_ms: int
    end_ms: int | None
    body: str
    likes: int
    replies: int
    why: tuple[Why, ...]


@dataclass(frozen=True)
class Recommendations:
    deal: Deal
    videos: list[Recommended]
    moments: list[RecommendedMoment]


def _values(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def recommend(session: Session, principal: Principal, deal_id: uuid.UUID) -> Recommendations:
    deal = policy.load_deal(session, principal, deal_id)
    known = catalogue.Catalogue.load(session, principal.org_id)
    wanted: dict[str, set[str]] = {}
    conditions = []
    for name in WEIGHTS:
        value = (deal.attributes or {}).get(name)
        if value is None:
            continue
        if known.type_of(name) is AttributeType.NUMBER:
            band = catalogue.band_label(known.bands_of(name), value)
            if band is not None:
                wanted[name] = {band}
                conditions.append(D.attrs.has_key(name))
            continue
        wanted[name] = set(_values(value))
        for v in wanted[name]:
            conditions.append(D.attrs.contains({name: v}))
            conditions.append(D.attrs.contains({name: [v]}))
    if not conditions:
        return Recommendations(deal, [], [])
    # The documents search would find for this person with no words, holding a deal value.
    rows = session.execute(
        engine.matching(principal, None, engine.Filters())
        .with_only_columns(D.video_id, D.attrs, D.rank_key, Deal.outcome)
        .outerjoin(Deal, engine.readable_deal(principal))
        .where(or_(*conditions))
        .limit(CANDIDATES)
    ).all()
    if not rows:
        return Recommendations(deal, [], [])
    top_rank = max(row.rank_key for row in rows)
    scored: list[tuple[float, uuid.UUID, list[Why]]] = []
    for row in rows:
        why: list[Why] = []
        weight = 0.0
        for name, values in wanted.items():
            held = (row.attrs or {}).get(name)
            if held is None:
                continue
            if known.type_of(name) is AttributeType.NUMBER:
                have = {catalogue.band_label(known.bands_of(name), held)}
            else:
                have = set(_values(held))
            for shared in sorted(values & have - {None}):
                weight += WEIGHTS[name]
                why.append(Why("attribute", name, shared))
        if weight == 0:
            continue
        # The deal's outcome now when the caller may read the deal, else as the video recorded it.
        outcome = row.outcome if row.outcome is not None else (row.attrs or {}).get("outcome")
        if outcome == DealOutcome.WON:
            weight *= WON
            why.append(Why("won_deal"))
        elif outcome == DealOutcome.LOST:
            weight *= LOST
            why.append(Why("lost_deal"))
        # Within about one order of magnitude of engagement or 30 days, weight decides.
        score = weight * (1 + 0.1 * (row.rank_key - top_rank))
        scored.append((score, row.video_id, why))
    scored.sort(key=lambda s: (-s[0], s[1]))
    best = scored[:VIDEOS]
    by_id = engine.videos_by_id(session, [b[1] for b in best])
    videos = [Recommended(by_id[vid], score, why) for score, vid, why in best if vid in by_id]
    return Recommendations(deal, videos, _moments(session, principal, videos))


def _moments(
    session: Session, principal: Principal, videos: list[Recommended]
) -> list[RecommendedMoment]:
    """The timed comments people liked and answered most on the recommended videos: one or
    two a video, best first."""
    if not videos:
        return []
    why = {r.video.id: tuple(w for w in r.why if w.kind == "attribute") for r in videos}
    rows = session.execute(
        text(
            """
            SELECT c.video_id, c.id, c.timeline_ms, c.end_ms, c.body, c.like_count,
                   c.reply_count
            FROM unnest(CAST(:ids AS uuid[])) AS v(id),
                 LATERAL (
                     SELECT * FROM comments c
                     WHERE c.org_id = :org_id AND c.video_id = v.id AND c.parent_id IS NULL
                       AND c.at_ms IS NOT NULL AND c.deleted_at IS NULL AND c.hidden_at IS NULL
                       AND c.like_count + c.reply_count > 0
                     ORDER BY c.like_count + c.reply_count DESC, c.id
                     LIMIT 2
                 ) c
            ORDER BY c.like_count + c.reply_count DESC, c.id
            LIMIT :limit
            """
        ),
        {"ids": [r.video.id for r in videos], "org_id": principal.org_id, "limit": MOMENTS},
    ).all()
    return [
        RecommendedMoment(
            row.video_id,
            row.id,
            row.timeline_ms,
            row.end_ms,
            row.body,
            row.like_count,
            row.reply_count,
            why[row.video_id],
        )
        for row in rows
    ]
