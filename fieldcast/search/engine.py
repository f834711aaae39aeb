"""Search: the videos a person may see that match a query and filters, with why each matched.

How much work a query does is bounded by the page, not by how many rows match:

1. Candidates: the matching documents the caller may see, in `rank_key` order (engagement and
   freshness, see `ranking`), at most `ranking.CANDIDATES`. For an admin, who sees everything,
   the `rank_key` index is walked until the limit is reached when the words are common, and
   the matches are read from the text index and sorted when they are fewer (`walk_pays`
   decides from the planner's estimate); for a rep, the videos they may see are few and each
   is checked. Filters narrow the same walk.
2. Ranking: the candidates ordered by score (relevance, engagement, freshness).
3. Reasons and moments: only for the page's videos, which parts matched (title, description,
   attribute, author, attachment, transcript, comment) and the transcript segments and
   comments that match, each a moment with its time and a deep link.

Facets count the first `FACET_CAP` matches in the same order, in PostgreSQL (a row per value
counted comes back): exact up to the cap, "1,000+" beyond it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnElement,
    Float,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    not_,
    or_,
    select,
    text,
    true,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, REAL, REGCONFIG
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

from fieldcast import policy
from fieldcast.deals import catalogue
from fieldcast.errors import InvalidInput
from fieldcast.models.accounts import Organisation, TeamMembership, User
from fieldcast.models.deals import AttributeType, Deal
from fieldcast.models.search import SearchDocument
from fieldcast.models.videos import Video, VideoKind, VideoStatus
from fieldcast.policy import Principal
from fieldcast.search import ranking
from fieldcast.search.language import config_for
from fieldcast.search.query import Query, parse

FACET_CAP = 1_000
MOMENTS_PER_VIDEO = 3
# The newest comments of a video looked at for its moments.
COMMENTS_SCANNED = 500
SNIPPET = "MaxWords=18, MinWords=6, ShortWord=2, MaxFragments=1, StartSel=\x02, StopSel=\x03"

D = SearchDocument
T = TypeVar("T")


@dataclass(frozen=True)
class AttributeFilter:
    """`name` has one of `values` (or, with `negated`, none of them)."""

    name: str
    values: tuple[str, ...]
    negated: bool = False
    # A number attribute's values are band labels: these are their [min, max) ranges.
    ranges: tuple[tuple[float | None, float | None], ...] = ()


@dataclass(frozen=True)
class Filters:
    attributes: tuple[AttributeFilter, ...] = ()
    # "then": the attributes a video was recorded with; "now": its deal's current ones (a
    # video naming no deal keeps its own).
    attribute_time: str = "then"
    # "all": every attribute filter holds; "any": at least one does.
    attribute_match: str = "all"
    deal_id: uuid.UUID | None = None
    author_id: uuid.UUID | None = None
    team_id: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    min_duration_ms: int | None = None
    max_duration_ms: int | None = None
    # "open", "answered", or "any" (every question); None: questions and videos alike.
    question: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Filters:
        """The filters `to_json` wrote (a saved search's)."""

        def attribute(text: str) -> AttributeFilter:
            negated = text.startswith("-")
            name, _, values = text.removeprefix("-").partition(":")
            return AttributeFilter(name, tuple(values.split("|")), negated)

        def moment(key: str) -> datetime | None:
            return datetime.fromisoformat(data[key]) if data.get(key) else None

        def ms(key: str) -> int | None:
            return int(data[key]) * 1000 if data.get(key) is not None else None

        def ident(key: str) -> uuid.UUID | None:
            return uuid.UUID(data[key]) if data.get(key) else None

        return cls(
            attributes=tuple(attribute(a) for a in data.get("attr", [])),
            attribute_match=data.get("attr_match", "all"),
            attribute_time=data.get("attr_time", "then"),
            deal_id=ident("deal"),
            author_id=ident("author"),
            team_id=ident("team"),
            since=moment("since"),
            until=moment("until"),
            min_duration_ms=ms("min_duration_s"),
            max_duration_ms=ms("max_duration_s"),
            question=data.get("question"),
        )

    @property
    def narrows(self) -> bool:
        """Whether these filters leave anything out: whether they say anything when saved
        (how to read attributes is said only beside attributes)."""
        return bool(self.to_json())

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.attributes:
            out["attr"] = [
                ("-" if f.negated else "") + f.name + ":" + "|".join(f.values)
                for f in self.attributes
            ]
            out["attr_match"] = self.attribute_match
            if self.attribute_time != "then":
                out["attr_time"] = self.attribute_time
        for key in ("deal_id", "author_id", "team_id"):
            value = getattr(self, key)
            if value is not None:
                out[key.removesuffix("_id")] = str(value)
        for key in ("since", "until"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value.isoformat()
        for key in ("min_duration_ms", "max_duration_ms"):
            value = getattr(self, key)
            if value is not None:
                out[key.replace("_ms", "_s")] = value // 1000
        if self.question is not None:
            out["question"] = self.question
        return out


@dataclass(frozen=True)
class Highlighted:
    text: str
    # [start, end) character ranges of `text` that matched the query.
    marks: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Moment:
    kind: str  # "transcript" or "comment"
    at_ms: int | None  # None: a comment on the whole video
    snippet: Highlighted
    comment_id: uuid.UUID | None = None
    end_ms: int | None = None


@dataclass(frozen=True)
class Reason:
    kind: str  # title, description, attribute, author, deal, attachment, transcript, comment
    detail: str | None = None  # the attribute's name, the attachment's title
    at_ms: int | None = None
    similar: bool = False  # a close match (a typo), not the words as written


@dataclass
class Hit:
    video: Video
    score: float
    reasons: list[Reason] = field(default_factory=list)
    moments: list[Moment] = field(default_factory=list)


@dataclass(frozen=True)
class Results:
    hits: list[Hit]
    has_more: bool
    query: Query


class _PerOrganisation(Generic[T]):
    """A value per organisation that each process keeps for `CONFIG_TTL_S`."""

    def __init__(self) -> None:
        self._kept: dict[uuid.UUID, tuple[float, T]] = {}

    def get(self, org_id: uuid.UUID, load: Callable[[], T]) -> T:
        kept = self._kept.get(org_id)
        now = time.monotonic()
        if kept is not None and now - kept[0] < CONFIG_TTL_S:
            return kept[1]
        value = load()
        self._kept[org_id] = (now, value)
        return value

    def forget(self, org_id: uuid.UUID | None = None) -> None:
        """One organisation's value, or every one's."""
        if org_id is None:
            self._kept.clear()
        else:
            self._kept.pop(org_id, None)


# An organisation's search configuration, kept by each process for a minute: a change of
# language reaches every process within CONFIG_TTL_S (and its documents are built again anyway).
CONFIG_TTL_S = 60.0
_configs: _PerOrganisation[str] = _PerOrganisation()


def config_of(session: Session, org_id: uuid.UUID) -> str:
    return _configs.get(
        org_id,
        lambda: config_for(
            session.scalar(select(Organisation.search_language).where(Organisation.id == org_id))
        ),
    )


def forget_config(org_id: uuid.UUID) -> None:
    _configs.forget(org_id)


def regconfig(config: str) -> ColumnElement[Any]:
    return cast(literal(config), REGCONFIG)


def tsquery(config: str, query_text: str) -> ColumnElement[Any]:
    return func.to_tsquery(regconfig(config), literal(query_text))


def _attribute_condition(f: AttributeFilter, attrs: Any) -> ColumnElement[bool]:
    if f.ranges:
        value = attrs[f.name]
        number = case((func.jsonb_typeof(value) == "number", value.as_float()), else_=None)
        held = or_(
            *(
                and_(
                    number >= low if low is not None else true(),
                    number < high if high is not None else true(),
                )
                for low, high in f.ranges
            )
        )
    else:
        # A value is stored as a string (a choice, text, a date) or in a list (choices).
        held = or_(
            *(attrs.contains({f.name: v}) for v in f.values),
            *(attrs.contains({f.name: [v]}) for v in f.values),
        )
    return not_(func.coalesce(held, False)) if f.negated else held


def readable_deal(principal: Principal) -> ColumnElement[bool]:
    """The join from a video to its deal, when the principal may read the deal: a deal they may
    not read is no deal to them (its current attributes and outcome stay unknown; the video's
    own snapshot stands in)."""
    return and_(
        Deal.org_id == Video.org_id, Deal.id == Video.deal_id, policy.deals.visible(principal)
    )


def resolve(session: Session, org_id: uuid.UUID, filters: Filters) -> Filters:
    """Attribute filters in the catalogue's terms: a name as its slug, a choice in the
    catalogue's spelling (any case finds it), a number attribute's band labels as ranges. An
    unknown name or value stays as written and matches nothing."""
    if not filters.attributes:
        return filters
    found = catalogue.Catalogue.load(session, org_id)
    resolved = []
    for f in filters.attributes:
        name = catalogue.slug(f.name) or f.name
        if found.type_of(name) is AttributeType.NUMBER:
            wanted = {v.casefold() for v in f.values}
            ranges = tuple(
                (band.get("min"), band.get("max"))
                for band in found.bands_of(name)
                if str(band.get("label", "")).casefold() in wanted
            )
            resolved.append(replace(f, name=name, ranges=ranges or ((1.0, 0.0),)))
            continue
        values = []
        for value in f.values:
            try:
                held = found.normalise({name: value}, learn=False).get(name, value)
            except InvalidInput:
                held = value
            values.extend(held if isinstance(held, list) else [held])
        resolved.append(replace(f, name=name, values=tuple(str(v) for v in values)))
    return replace(filters, attributes=tuple(resolved))


def _filters(principal: Principal, filters: Filters) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if filters.attributes:
        attrs = (
            func.coalesce(Deal.attributes, D.attrs) if filters.attribute_time == "now" else D.attrs
        )
        each = [_attribute_condition(f, attrs) for f in filters.attributes]
        conditions.append(and_(*each) if filters.attribute_match == "all" else or_(*each))
    if filters.deal_id is not None:
        conditions.append(Video.deal_id == filters.deal_id)
    if filters.author_id is not None:
        conditions.append(Video.owner_id == filters.author_id)
    if filters.team_id is not None:
        conditions.append(
            Video.owner_id.in_(
                select(TeamMembership.user_id).where(
                    TeamMembership.org_id == principal.org_id,
                    TeamMembership.team_id == filters.team_id,
                )
            )
        )
    if filters.since is not None:
        conditions.append(Video.created_at >= filters.since)
    if filters.until is not None:
        conditions.append(Video.created_at < filters.until)
    if filters.min_duration_ms is not None:
        conditions.append(Video.duration_ms >= filters.min_duration_ms)
    if filters.max_duration_ms is not None:
        conditions.append(Video.duration_ms <= filters.max_duration_ms)
    if filters.question is not None:
        conditions.append(Video.kind == VideoKind.QUESTION)
        if filters.question == "open":
            conditions.append(Video.answered_at.is_(None))
        elif filters.question == "answered":
            conditions.append(Video.answered_at.is_not(None))
    return conditions


def matching(
    principal: Principal,
    text_query: ColumnElement[Any] | None,
    filters: Filters,
    *,
    walk: bool = True,
) -> Select[Any]:
    """The documents the principal may see that match, in rank order (no limit yet). Without
    `walk`, the order is not taken from the `rank_key` index (see `walk_pays`)."""
    stmt = (
        select(D.video_id, D.rank_key, D.tsv)
        .join(Video, and_(Video.org_id == D.org_id, Video.id == D.video_id))
        .where(
            D.org_id == principal.org_id,
            # Built at least once (a document marked for building again still serves).
            D.tsv.is_not(None),
            policy.videos.listed_by_ids(principal),
            Video.status.in_((VideoStatus.PLAYABLE, VideoStatus.READY)),
            *_filters(principal, filters),
        )
        # `rank_key + 0` is the same order, but one no index gives: the matches are found
        # first (the text index) and then sorted.
        .order_by(D.rank_key.desc() if walk else (D.rank_key + 0).desc())
    )
    if filters.attributes and filters.attribute_time == "now":
        stmt = stmt.outerjoin(Deal, readable_deal(principal))
    if text_query is not None:
        stmt = stmt.where(D.tsv.op("@@")(text_query))
    return stmt


# How the first `wanted` matches in rank order are best found. Walking the `rank_key` index reads
# documents from the best-ranked down, testing each, until `wanted` match: about
# wanted x n / m of them when m of the organisation's n documents match, each read with its
# words (TOAST). Reading the m matches from the text index and sorting them costs less per
# match. Measured at 100,000 documents (40,000 in one organisation): ~9 us a document walked,
# ~2.6 us a match sorted, so the walk pays when m^2 > 3.4 x wanted x n (about 6,000 matches of
# 40,000 for a page of candidates). PostgreSQL's planner estimates m well but costs the test
# of a document's words as if they were at hand, so it walks from ~2,000 matches on, up to
# three times slower there.
WALK_COST_RATIO = 3.4


def walk_pays(
    session: Session, principal: Principal, text_query: ColumnElement[Any] | None, wanted: int
) -> bool:
    """Whether walking the rank index finds the first `wanted` matches of a text query sooner
    than sorting them, by the planner's estimate of the organisation's documents that hold the
    words (EXPLAIN, not run). Filters only make the matches fewer and the walk longer: where
    the words alone are too few for the walk, the matches are sorted; where they are many, the
    planner weighs the filters itself. Without words, and for a person who is no admin (who
    sees a few per cent of the videos, gathered by id whichever the order), the planner
    decides alone."""
    if text_query is None or not principal.is_admin:
        return True
    matches = estimated_rows(
        session,
        select(D.video_id).where(D.org_id == principal.org_id, D.tsv.op("@@")(text_query)),
    )
    documents = _documents_of(session, principal.org_id)
    return matches * matches > WALK_COST_RATIO * wanted * documents


class Explain(Executable, ClauseElement):
    """`EXPLAIN (FORMAT JSON)` of a statement, its parameters bound as the statement's own."""

    inherit_cache = False

    def __init__(self, stmt: Select[Any]) -> None:
        self.stmt = stmt


@compiles(Explain, "postgresql")
def _compile_explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    sql = compiler.process(element.stmt, **kw)
    # What comes back is the plan, not the statement's columns: read as it is, by position.
    compiler._result_columns = []
    return "EXPLAIN (FORMAT JSON) " + sql


def estimated_rows(session: Session, stmt: Select[Any]) -> float:
    """The planner's estimate of how many rows `stmt` returns: planned, not run."""
    plan: Any = session.execute(Explain(stmt)).scalar_one()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return float(plan[0]["Plan"]["Plan Rows"])


# An organisation's number of documents (an estimate), kept by each process for CONFIG_TTL_S.
_documents: _PerOrganisation[float] = _PerOrganisation()


def _documents_of(session: Session, org_id: uuid.UUID) -> float:
    return _documents.get(
        org_id, lambda: estimated_rows(session, select(D.video_id).where(D.org_id == org_id))
    )


def videos_by_id(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Video]:
    """The videos of a page of results, in one query, by id."""
    return {v.id: v for v in session.scalars(select(Video).where(Video.id.in_(ids)))}


def search(
    session: Session,
    principal: Principal,
    raw_query: str,
    filters: Filters,
    *,
    prefix: bool = True,
    offset: int = 0,
    limit: int = 20,
) -> Results:
    query = parse(raw_query, prefix=prefix)
    config = config_of(session, principal.org_id)
    filters = resolve(session, principal.org_id, filters)
    tsq = None if query.empty else tsquery(config, query.tsquery())
    walk = walk_pays(session, principal, tsq, ranking.CANDIDATES)
    candidates = matching(principal, tsq, filters, walk=walk).limit(ranking.CANDIDATES).subquery()
    relevance = (
        func.ts_rank_cd(
            cast(literal(ranking.TEXT_WEIGHTS), ARRAY(REAL)),
            candidates.c.tsv,
            tsq,
            ranking.NORMALISATION,
        )
        if tsq is not None and not query.negative_only
        else literal(0.0)
    )
    score = (ranking.RELEVANCE * relevance + candidates.c.rank_key).label("score")
    rows = session.execute(
        select(candidates.c.video_id, score)
        .order_by(score.desc(), candidates.c.video_id)
        .offset(offset)
        .limit(limit + 1)
    ).all()
    has_more = len(rows) > limit and offset + limit < ranking.CANDIDATES
    rows = rows[:limit]
    ids = [row.video_id for row in rows]
    by_id = videos_by_id(session, ids)
    hits = [Hit(by_id[row.video_id], float(row.score)) for row in rows if row.video_id in by_id]
    if hits and not query.empty and not query.negative_only:
        _explain(session, principal, config, query, hits)
    if (
        not hits
        and offset == 0
        and query.words
        and not any(t.negated for g in query.groups for t in g)
    ):
        hits = _similar(session, principal, query, filters, limit)
    return Results(hits, has_more, query)


def _similar(
    session: Session,
    principal: Principal,
    query: Query,
    filters: Filters,
    limit: int,
) -> list[Hit]:
    """Typo tolerance: when the words as written find nothing, the videos whose title, or whose
    author's name, holds words close to them (pg_trgm's word similarity, at least 0.6)."""
    words = " ".join(query.words)
    close_title = literal(words).op("<%")(D.title)
    close_author = Video.owner_id.in_(
        select(User.id).where(
            User.org_id == principal.org_id, literal(words).op("<%")(User.display_name)
        )
    )
    rows = session.execute(
        matching(principal, None, filters)
        .add_columns(close_title.label("title"))
        .where(or_(close_title, close_author))
        .limit(limit)
    ).all()
    by_id = videos_by_id(session, [r.video_id for r in rows])
    return [
        Hit(
            by_id[row.video_id],
            float(row.rank_key),
            reasons=[Reason("title" if row.title else "author", similar=True)],
        )
        for row in rows
        if row.video_id in by_id
    ]


# What jsonb_to_tsvector reads of deal attributes: their string and number values.
_JSON_TEXT = text("""'["string", "numeric"]'::jsonb""")


def _weighted(tsv: Any, weight: str) -> ColumnElement[Any]:
    """The lexemes of one weight of a document: "a" its title, "c" its transcript, ..."""
    return func.ts_filter(tsv, text(f"""'{{{weight}}}'::"char"[]"""))


def _explain(
    session: Session, principal: Principal, config: str, query: Query, hits: list[Hit]
) -> None:
    """Reasons and moments of the page's videos: which of their parts speak of the query."""
    any_query = tsquery(config, query.any_tsquery())
    config_expr = regconfig(config)
    ids = [hit.video.id for hit in hits]
    parts = session.execute(
        select(
            D.video_id,
            _weighted(D.tsv, "a").op("@@")(any_query).label("title"),
            func.to_tsvector(config_expr, Video.description)
            .op("@@")(any_query)
            .label("description"),
            func.jsonb_to_tsvector(config_expr, Video.deal_attributes, _JSON_TEXT)
            .op("@@")(any_query)
            .label("attribute"),
            func.to_tsvector(config_expr, func.coalesce(User.display_name, ""))
            .op("@@")(any_query)
            .label("author"),
            _weighted(D.tsv, "c").op("@@")(any_query).label("transcript"),
            _weighted(D.tsv, "d").op("@@")(any_query).label("discussion"),
        )
        .join(Video, and_(Video.org_id == D.org_id, Video.id == D.video_id))
        .outerjoin(User, and_(User.org_id == Video.org_id, User.id == Video.owner_id))
        .where(D.org_id == principal.org_id, D.video_id.in_(ids))
    ).all()
    by_id = {hit.video.id: hit for hit in hits}
    discussed: list[uuid.UUID] = []
    transcribed: list[uuid.UUID] = []
    for row in parts:
        hit = by_id[row.video_id]
        for kind in ("title", "description", "author"):
            if getattr(row, kind):
                hit.reasons.append(Reason(kind))
        if row.attribute:
            hit.reasons.extend(_attribute_reasons(hit.video, query))
        if row.transcript:
            transcribed.append(row.video_id)
        if row.discussion:
            discussed.append(row.video_id)
    found: list[tuple[uuid.UUID, Moment]] = []
    if transcribed or discussed:
        found, attachments = _moments(session, principal, config, query, transcribed, discussed)
        for video_id, title in attachments:
            by_id[video_id].reasons.append(Reason("attachment", detail=title))
    for moment_video, moment in found:
        hit = by_id[moment_video]
        if len(hit.moments) < MOMENTS_PER_VIDEO:
            hit.moments.append(moment)
            hit.reasons.append(Reason(moment.kind, at_ms=moment.at_ms))


def _attribute_reasons(video: Video, query: Query) -> list[Reason]:
    words = {w.lower() for w in query.words}
    found = []
    for name, value in (video.deal_attributes or {}).items():
        values = value if isinstance(value, list) else [value]
        if any(str(v).lower() in words or set(str(v).lower().split()) & words for v in values):
            found.append(Reason("attribute", detail=name))
    return found or [Reason("attribute")]


def _highlight(marked: str) -> Highlighted:
    out: list[str] = []
    marks: list[tuple[int, int]] = []
    start = 0
    length = 0
    for ch in marked:
        if ch == "\x02":
            start = length
        elif ch == "\x03":
            marks.append((start, length))
        else:
            out.append(ch)
            length += 1
    return Highlighted("".join(out), tuple(marks))


# Characters of an attachment's text looked at to say it matched (the document read more).
ATTACHMENT_CHARS = 20_000

# In one statement, for the page's videos: the transcript segments of those whose transcript
# matched and the comments (the newest COMMENTS_SCANNED, by their stored words) that match, the
# first MOMENTS_PER_VIDEO of each video in time order, with their snippets (made for those
# alone: a snippet costs a parse of its text); and the attachments of those whose comments or
# attachments matched.
_MOMENTS = text(
    """
    WITH q AS (SELECT to_tsquery(CAST(:config AS regconfig), :query) AS q),
    found AS (
        SELECT 'transcript' AS kind, s.video_id, NULL::uuid AS id, s.start_ms AS at_ms, s.end_ms,
               s.text AS body
        FROM transcript_segments s, q
        WHERE s.org_id = :org_id AND s.video_id = ANY(CAST(:transcribed AS uuid[]))
          AND to_tsvector(CAST(:config AS regconfig), s.text) @@ q.q
        UNION ALL
        SELECT 'comment', m.video_id, m.id, m.at_ms, m.end_ms, m.body
        FROM unnest(CAST(:discussed AS uuid[])) AS v(id),
             LATERAL (
                 SELECT c.video_id, c.id, c.at_ms, c.end_ms, c.body, c.search_tsv
                 FROM comments c
                 WHERE c.org_id = :org_id AND c.video_id = v.id
                   AND c.deleted_at IS NULL AND c.hidden_at IS NULL
                 ORDER BY c.created_at DESC
                 LIMIT :scanned
             ) m, q
        WHERE m.search_tsv @@ q.q
    ),
    first AS (
        SELECT found.*,
               row_number() OVER (PARTITION BY video_id ORDER BY at_ms, kind, id) AS n
        FROM found
    )
    SELECT kind, video_id, id, at_ms, end_ms,
           ts_headline(CAST(:config AS regconfig), body, q.q, :snippet) AS snippet,
           NULL AS title
    FROM first, q
    WHERE n <= :per_video
    UNION ALL
    SELECT 'attachment', a.video_id, a.id, NULL, NULL, NULL, a.title
    FROM attachments a, q
    WHERE a.org_id = :org_id AND a.video_id = ANY(CAST(:discussed AS uuid[]))
      AND to_tsvector(CAST(:config AS regconfig),
                      concat_ws(' ', a.title, a.body, left(a.text, :chars))) @@ q.q
    ORDER BY 2, 4, 1, 3
    """
)


def _moments(
    session: Session,
    principal: Principal,
    config: str,
    query: Query,
    transcribed: list[uuid.UUID],
    discussed: list[uuid.UUID],
) -> tuple[list[tuple[uuid.UUID, Moment]], list[tuple[uuid.UUID, str]]]:
    """The transcript segments and comments of these videos that speak of the query, in time
    order (the moments), and their attachments that do."""
    rows = session.execute(
        _MOMENTS,
        {
            "config": config,
            "query": query.any_tsquery(),
            "snippet": SNIPPET,
            "org_id": principal.org_id,
            "transcribed": transcribed,
            "discussed": discussed,
            "scanned": COMMENTS_SCANNED,
            "per_video": MOMENTS_PER_VIDEO,
            "chars": ATTACHMENT_CHARS,
        },
    ).all()
    moments = [
        (
            row.video_id,
            Moment(
                row.kind,
                at_ms=row.at_ms,
                end_ms=row.end_ms,
                comment_id=row.id if row.kind == "comment" else None,
                snippet=_highlight(row.snippet),
            ),
        )
        for row in rows
        if row.kind != "attachment"
    ]
    attachments = [(row.video_id, row.title) for row in rows if row.kind == "attachment"]
    return moments, attachments


@dataclass(frozen=True)
class FacetValue:
    value: str
    count: int
    label: str | None = None


@dataclass(frozen=True)
class Facets:
    total: int
    capped: bool
    attributes: dict[str, list[FacetValue]]
    authors: list[FacetValue]
    question: list[FacetValue]
    duration: list[FacetValue]
    created: list[FacetValue]


_DURATIONS = (
    ("under_1_min", 0, 60_000),
    ("1_to_3_min", 60_000, 180_000),
    ("3_to_10_min", 180_000, 600_000),
    ("over_10_min", 600_000, None),
)


def facets(
    session: Session, principal: Principal, raw_query: str, filters: Filters, *, prefix: bool = True
) -> Facets:
    """Counts of the matches by attribute value, author, question state, duration and age:
    of every match up to `FACET_CAP`, of the first `FACET_CAP` in rank order beyond it. The
    counting is done by PostgreSQL, in the statement that finds the matches: what comes back is
    a row per value counted, not a row per match."""
    query = parse(raw_query, prefix=prefix)
    config = config_of(session, principal.org_id)
    filters = resolve(session, principal.org_id, filters)
    tsq = None if query.empty else tsquery(config, query.tsquery())
    walk = walk_pays(session, principal, tsq, FACET_CAP + 1)
    # Counted by the attributes the filters read: with `attr_time=now`, the deal's current
    # ones where the caller may read the deal.
    now_attributes = filters.attribute_time == "now"
    stmt = (
        matching(principal, tsq, filters, walk=walk)
        .with_only_columns(
            (func.coalesce(Deal.attributes, D.attrs) if now_attributes else D.attrs).label("attrs"),
            D.rank_key,
            Video.owner_id,
            Video.kind,
            Video.answered_at,
            Video.duration_ms,
            Video.created_at,
        )
        .limit(FACET_CAP + 1)
    )
    if now_attributes and not filters.attributes:
        # (`matching` joins the deal itself when attribute filters read it now.)
        stmt = stmt.outerjoin(Deal, readable_deal(principal))
    found = stmt.cte("found")
    counted = select(found).order_by(found.c.rank_key.desc()).limit(FACET_CAP).cte("counted")
    rows = session.execute(_facet_counts(found, counted)).all()
    totals = {row.facet: row.n for row in rows if row.value is None and row.best is None}
    known = catalogue.Catalogue.load(session, principal.org_id)
    attributes: dict[str, _Tally] = {}
    tallies: dict[str, _Tally] = {"author": _Tally(), "question": _Tally(), "duration": _Tally()}
    for row in rows:
        if row.facet == "attribute":
            name, value = row.value
            tally = attributes.setdefault(name, _Tally())
            if value is None:
                # (An empty list, or null: the attribute is there, with no value to count.)
                continue
            if known.type_of(name) is AttributeType.NUMBER:
                band = catalogue.band_label(known.bands_of(name), value)
                if band is not None:
                    tally.add(band, row.n, row.best)
                continue
            tally.add(str(value), row.n, row.best)
        elif row.facet in tallies:
            tallies[row.facet].add(row.value, row.n, row.best)
    authors = [(uuid.UUID(a), n) for a, n in tallies["author"].most_common(10)]
    names: dict[uuid.UUID, str] = dict(
        session.execute(
            select(User.id, User.display_name).where(
                User.org_id == principal.org_id, User.id.in_([a for a, _ in authors])
            )
        ).all()
    )
    duration = dict(tallies["duration"].most_common())
    return Facets(
        total=totals.get("total", 0),
        capped=totals.get("found", 0) > FACET_CAP,
        attributes={
            name: [FacetValue(v, n) for v, n in tally.most_common(20)]
            for name, tally in sorted(attributes.items())
        },
        authors=[FacetValue(str(a), n, names.get(a)) for a, n in authors],
        question=[FacetValue(v, n) for v, n in tallies["question"].most_common()],
        duration=[
            FacetValue(name, duration[name]) for name, _, _ in _DURATIONS if duration.get(name)
        ],
        created=[FacetValue(name, totals[name]) for name, _ in _AGES if totals.get(name)],
    )


@dataclass
class _Tally:
    """Counts of a facet's values; the most common first and, among equals, the one found in
    the best-ranked match (as the matches are listed)."""

    counts: Counter[str] = field(default_factory=Counter)
    best: dict[str, float] = field(default_factory=dict)

    def add(self, value: str, n: int, best: float) -> None:
        self.counts[value] += n
        self.best[value] = max(best, self.best.get(value, best))

    def most_common(self, limit: int | None = None) -> list[tuple[str, int]]:
        ordered = sorted(self.counts.items(), key=lambda item: (-item[1], -self.best[item[0]]))
        return ordered[:limit]


_AGES = (("last_7_days", 7), ("last_30_days", 30), ("last_90_days", 90))
# Grouped by the second column (the value counted): its expression holds bound constants,
# which PostgreSQL would not match with a GROUP BY written out again.
_SECOND = text("2")


def _facet_counts(found: Any, counted: Any) -> Any:
    """One statement: rows (facet, value, n) counting the matches `found` (up to the cap and
    one more, to say it was passed) and the first `FACET_CAP` of them, `counted`."""

    null = cast(literal(None), JSONB)
    none = cast(literal(None), Float)
    best = func.max(counted.c.rank_key).label("best")

    def facet(name: str, value: Any, *, grouped: bool = True) -> Select[Any]:
        """Rows (facet, value, n, best): `best` the rank of the best-ranked match counted."""
        return select(
            literal(name).label("facet"),
            value.label("value"),
            func.count().label("n"),
            best if grouped else none.label("best"),
        )

    totals = [
        facet("found", null, grouped=False).select_from(found),
        facet("total", null, grouped=False).select_from(counted),
    ]
    authors = facet("author", func.to_jsonb(counted.c.owner_id)).group_by(_SECOND)
    state = func.to_jsonb(case((counted.c.answered_at.is_(None), "open"), else_="answered"))
    question = (
        facet("question", state).where(counted.c.kind == VideoKind.QUESTION).group_by(_SECOND)
    )
    band = case(
        *(
            (
                and_(
                    counted.c.duration_ms >= low,
                    counted.c.duration_ms < high if high is not None else true(),
                ),
                name,
            )
            for name, low, high in _DURATIONS
        ),
        else_=None,
    )
    duration = facet("duration", func.to_jsonb(band)).where(band.is_not(None)).group_by(_SECOND)
    # (Each age is counted by itself: a video of the last 7 days is also of the last 30.)
    # (Days of 24 hours, as a video's age is told elsewhere, whatever the time zone.)
    ages = [
        facet(name, null, grouped=False).where(
            counted.c.created_at > func.now() - func.make_interval(0, 0, 0, 0, days * 24)
        )
        for name, days in _AGES
    ]
    # Attributes are an object of names; anything else stored there counts as none.
    attrs = case(
        (func.jsonb_typeof(counted.c.attrs) == "object", counted.c.attrs),
        else_=cast(literal("{}"), JSONB),
    )
    each = func.jsonb_each(attrs).table_valued("key", "value").render_derived("e")
    listed = case(
        (func.jsonb_typeof(each.c.value) == "array", each.c.value),
        else_=func.jsonb_build_array(each.c.value),
    )
    value = func.jsonb_array_elements(listed).table_valued("value").render_derived("v")
    # An empty list still names its attribute: joined outer, its value is null.
    pair = func.jsonb_build_array(each.c.key, value.c.value)
    attributes = (
        facet("attribute", pair)
        .select_from(counted)
        .join(each, true())
        .join(value, true(), isouter=True)
        .group_by(_SECOND)
    )
    return union_all(*totals, authors, question, duration, *ages, attributes)
