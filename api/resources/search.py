"""Search: videos and the moments in them that match a query, among what you may see."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, ClassVar

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import select

from api.auth import current_principal
from api.extensions import Blueprint, PatchSchema, Schema
from api.fields import String
from api.pagination import offset_cursor, offset_of
from api.resources.playback import playback_urls
from api.runtime import context, db_session
from fieldcast import links
from fieldcast.conversation import questions
from fieldcast.models.accounts import Organisation, User
from fieldcast.models.search import SavedSearch
from fieldcast.models.videos import VideoKind, VideoStatus
from fieldcast.search import engine, indexing, ranking, recommendations, saved
from fieldcast.search.language import LANGUAGES
from fieldcast.videos import services as videos

blp = Blueprint(
    "search",
    __name__,
    url_prefix="/api/v1/search",
    description=(
        "Full-text search over the videos you may see: titles, descriptions, deal attributes, "
        "authors, attachments' text, transcripts and comments. Each result says why it matched "
        "and carries its matching moments (a transcript line or a comment at a time) as deep "
        'links. Query syntax: words (all must match), "a phrase", -word (must not), '
        "`a or b`; the last word is a prefix while typing; accents and case are ignored."
    ),
)

MAX_ATTRIBUTE_FILTERS = 10
MAX_VALUES = 10


def _attribute_filter(value: str) -> engine.AttributeFilter:
    negated = value.startswith("-")
    name, sep, values = value.removeprefix("-").partition(":")
    parts = tuple(v.strip() for v in values.split("|") if v.strip())
    if not sep or not name.strip() or not parts or len(parts) > MAX_VALUES:
        raise ma.ValidationError(
            f"Write name:value, name:a|b (either) or -name:value (not), with 1-{MAX_VALUES} values."
        )
    return engine.AttributeFilter(name.strip(), parts, negated)


def _ms(seconds: int | None) -> int | None:
    return None if seconds is None else seconds * 1000


class FiltersSchema(Schema):
    attr = ma.fields.List(
        String(max_length=300),
        load_default=list,
        validate=ma.validate.Length(max=MAX_ATTRIBUTE_FILTERS),
        metadata={
            "description": "Deal attribute filters, repeatable: `industry:retail`, "
            "`competitors:acme|globex` (either), `-stage:closed` (not)"
        },
    )
    attr_match = String(
        max_length=8,
        load_default="all",
        validate=ma.validate.OneOf(["all", "any"]),
        metadata={"description": "`all`: every `attr` filter holds (and); `any`: one does (or)"},
    )
    attr_time = String(
        max_length=8,
        load_default="then",
        validate=ma.validate.OneOf(["then", "now"]),
        metadata={
            "description": "`then`: the attributes a video was recorded with (its deal's stage "
            "then); `now`: its deal's current attributes (a video naming no deal keeps its own)"
        },
    )
    deal = ma.fields.UUID(load_default=None, metadata={"description": "Videos about this deal"})
    author = ma.fields.UUID(load_default=None, metadata={"description": "Videos by this person"})
    team = ma.fields.UUID(
        load_default=None, metadata={"description": "Videos by members of this team"}
    )
    since = ma.fields.AwareDateTime(load_default=None, metadata={"description": "Made since"})
    until = ma.fields.AwareDateTime(load_default=None, metadata={"description": "Made before"})
    min_duration_s = ma.fields.Integer(
        load_default=None, validate=ma.validate.Range(min=0, max=86_400)
    )
    max_duration_s = ma.fields.Integer(
        load_default=None, validate=ma.validate.Range(min=0, max=86_400)
    )
    question = String(
        max_length=8,
        load_default=None,
        validate=ma.validate.OneOf(["any", "open", "answered"]),
        metadata={"description": "Only questions to the peers: `any`, `open` or `answered`"},
    )

    @ma.post_load
    def _filters(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        try:
            attributes = tuple(_attribute_filter(v) for v in data["attr"])
        except ma.ValidationError as exc:
            raise ma.ValidationError({"attr": exc.messages}) from None
        data["filters"] = engine.Filters(
            attributes=attributes,
            attribute_match=data["attr_match"],
            attribute_time=data["attr_time"],
            deal_id=data["deal"],
            author_id=data["author"],
            team_id=data["team"],
            since=data["since"],
            until=data["until"],
            min_duration_ms=_ms(data["min_duration_s"]),
            max_duration_ms=_ms(data["max_duration_s"]),
            question=data["question"],
        )
        return data


class SearchArgsSchema(FiltersSchema):
    q = String(
        load_default="",
        column=SavedSearch.query,
        metadata={"description": "The query; empty lists what the filters select"},
    )
    prefix = ma.fields.Boolean(
        load_default=True,
        metadata={"description": "Whether the last word is also a prefix (search as you type)"},
    )


class SearchPageArgsSchema(SearchArgsSchema):
    limit = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=50))
    cursor = String(
        load_default=None, max_length=64, metadata={"description": "`next_cursor` of the last page"}
    )


class HighlightSchema(Schema):
    text = ma.fields.String()
    marks = ma.fields.List(
        ma.fields.List(ma.fields.Integer()),
        metadata={"description": "[start, end) character ranges of `text` that match"},
    )


class SearchMomentSchema(Schema):
    kind = ma.fields.String(metadata={"enum": ["transcript", "comment"]})
    at_ms = ma.fields.Integer(
        allow_none=True, metadata={"description": "Null for a comment on the whole video"}
    )
    end_ms = ma.fields.Integer(allow_none=True)
    comment_id = ma.fields.UUID(allow_none=True)
    snippet = ma.fields.Nested(HighlightSchema)
    link = ma.fields.String(metadata={"description": "Opens the player at the moment"})


class SearchReasonSchema(Schema):
    kind = ma.fields.String(
        metadata={
            "enum": [
                "title",
                "description",
                "attribute",
                "author",
                "attachment",
                "transcript",
                "comment",
            ]
        }
    )
    detail = ma.fields.String(
        allow_none=True, metadata={"description": "The attribute's name, the attachment's title"}
    )
    at_ms = ma.fields.Integer(allow_none=True)
    similar = ma.fields.Boolean(
        metadata={"description": "A close match of a misspelt word, not the word as written"}
    )


class SearchAuthorSchema(Schema):
    id = ma.fields.UUID()
    handle = ma.fields.String()
    display_name = ma.fields.String()


class SearchVideoSchema(Schema):
    id = ma.fields.UUID()
    title = ma.fields.String()
    status = ma.fields.Enum(VideoStatus, by_value=True)
    kind = ma.fields.Enum(VideoKind, by_value=True)
    question_state = ma.fields.String(allow_none=True)
    duration_ms = ma.fields.Integer(allow_none=True)
    created_at = ma.fields.DateTime()
    author = ma.fields.Nested(SearchAuthorSchema)
    deal_attributes = ma.fields.Dict()
    poster_url = ma.fields.String(allow_none=True)
    link = ma.fields.String()


class SearchHitSchema(Schema):
    video = ma.fields.Nested(SearchVideoSchema)
    score = ma.fields.Float(metadata={"description": "Higher first; see README, Search"})
    reasons = ma.fields.List(ma.fields.Nested(SearchReasonSchema))
    moments = ma.fields.List(ma.fields.Nested(SearchMomentSchema))


class SearchPageSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(SearchHitSchema), required=True)
    next_cursor = ma.fields.String(allow_none=True, required=True)


class FacetValueSchema(Schema):
    value = ma.fields.String()
    count = ma.fields.Integer()
    label = ma.fields.String(allow_none=True)


class FacetsSchema(Schema):
    total = ma.fields.Integer(metadata={"description": "Matches, counted up to the cap"})
    total_text = ma.fields.String(metadata={"description": "`1,000+` beyond the cap"})
    capped = ma.fields.Boolean(
        metadata={"description": "More matched than the cap: counts are of the first ones"}
    )
    attributes = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.List(ma.fields.Nested(FacetValueSchema))
    )
    authors = ma.fields.List(ma.fields.Nested(FacetValueSchema))
    question = ma.fields.List(ma.fields.Nested(FacetValueSchema))
    duration = ma.fields.List(ma.fields.Nested(FacetValueSchema))
    created = ma.fields.List(ma.fields.Nested(FacetValueSchema))


def _marks(h: engine.Highlighted) -> dict[str, Any]:
    return {"text": h.text, "marks": [list(m) for m in h.marks]}


def present_hits(hits: list[engine.Hit]) -> list[dict[str, Any]]:
    session = db_session()
    settings = context().settings
    page_videos = [hit.video for hit in hits]
    renditions = videos.renditions_of(session, page_videos)
    authors = {
        u.id: u
        for u in session.scalars(select(User).where(User.id.in_({v.owner_id for v in page_videos})))
    }
    out = []
    for hit in hits:
        video = hit.video
        author = authors.get(video.owner_id)
        out.append(
            {
                "video": {
                    "id": video.id,
                    "title": video.title,
                    "status": video.status,
                    "kind": video.kind,
                    "question_state": questions.state(video),
                    "duration_ms": video.duration_ms,
                    "created_at": video.created_at,
                    "author": {
                        "id": video.owner_id,
                        "handle": author.handle if author else "",
                        "display_name": author.display_name if author else "",
                    },
                    "deal_attributes": video.deal_attributes,
                    "poster_url": playback_urls(video, renditions.get(video.id, []))["poster_url"],
                    "link": links.video_link(settings, video.id),
                },
                "score": round(hit.score, 4),
                "reasons": [
                    {"kind": r.kind, "detail": r.detail, "at_ms": r.at_ms, "similar": r.similar}
                    for r in hit.reasons
                ],
                "moments": [
                    {
                        "kind": m.kind,
                        "at_ms": m.at_ms,
                        "end_ms": m.end_ms,
                        "comment_id": m.comment_id,
                        "snippet": _marks(m.snippet),
                        "link": links.video_link(
                            settings, video.id, comment_id=m.comment_id, at_ms=m.at_ms
                        ),
                    }
                    for m in hit.moments
                ],
            }
        )
    return out


@blp.route("")
class Search(MethodView):
    @blp.arguments(SearchPageArgsSchema, location="query")
    @blp.response(200, SearchPageSchema)
    @blp.problems(422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Search the videos you may see

        Results are ranked by relevance, engagement and freshness (README, "Search"). At most
        the 300 best-ranked matches are ordered and paged; refine the query to reach others.
        """
        offset = offset_of(args["cursor"], below=ranking.CANDIDATES)
        limit = min(args["limit"], ranking.CANDIDATES - offset)
        results = engine.search(
            db_session(),
            current_principal(),
            args["q"],
            args["filters"],
            prefix=args["prefix"],
            offset=offset,
            limit=limit,
        )
        return {
            "items": present_hits(results.hits),
            "next_cursor": offset_cursor(offset + limit) if results.has_more else None,
        }


class SearchSettingsSchema(Schema):
    language = String(
        required=True,
        column=Organisation.search_language,
        metadata={
            "description": "The language words are stemmed in: "
            + ", ".join(f"`{code}` ({name})" for code, name in sorted(LANGUAGES.items()))
            + "; `simple` matches words as written (accents and case aside)"
        },
    )
    languages = ma.fields.List(ma.fields.String(), dump_only=True)


@blp.route("/settings")
class SearchSettings(MethodView):
    @blp.response(200, SearchSettingsSchema)
    def get(self) -> dict[str, Any]:
        """The organisation's search language"""
        org = db_session().get(Organisation, current_principal().org_id)
        return {"language": org.search_language if org else "en", "languages": _LANGUAGES}

    @blp.arguments(SearchSettingsSchema)
    @blp.response(200, SearchSettingsSchema)
    @blp.problems(403, 422)
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Set the organisation's search language (admins)

        Every video's search document is built again in the new language by the indexing
        worker, a batch at a time; until then, each matches in the language it was built in.
        """
        code = indexing.set_language(db_session(), current_principal(), body["language"])
        return {"language": code, "languages": _LANGUAGES}


_LANGUAGES = sorted([*LANGUAGES, "simple"])


@blp.route("/facets")
class SearchFacets(MethodView):
    @blp.arguments(SearchArgsSchema, location="query")
    @blp.response(200, FacetsSchema)
    @blp.problems(422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Counts of a search's matches by attribute value, author, question state, duration
        and age

        Exact up to 1,000 matches; beyond, `capped` is true, `total_text` reads "1,000+" and
        the counts are of the first 1,000 in rank order.
        """
        found = engine.facets(
            db_session(), current_principal(), args["q"], args["filters"], prefix=args["prefix"]
        )

        def values(items: list[engine.FacetValue]) -> list[dict[str, Any]]:
            return [{"value": v.value, "count": v.count, "label": v.label} for v in items]

        return {
            "total": found.total,
            "total_text": f"{found.total:,}" + ("+" if found.capped else ""),
            "capped": found.capped,
            "attributes": {name: values(items) for name, items in found.attributes.items()},
            "authors": values(found.authors),
            "question": values(found.question),
            "duration": values(found.duration),
            "created": values(found.created),
        }


# -- saved searches --------------------------------------------------------------------------------

saved_blp = Blueprint(
    "saved_searches",
    __name__,
    url_prefix="/api/v1/saved-searches",
    description=(
        "Searches you follow: videos and comment moments that newly match one reach you as one "
        "inbox item and push (`search.matches`) per round of the saved-search worker (every "
        "few minutes), never one per video. Each person's own; at most 50."
    ),
)


class SavedSearchCreateSchema(Schema):
    name = String(
        column=SavedSearch.name,
        load_default="",
        metadata={"description": "Shown in pushes; the query when empty"},
    )
    q = String(column=SavedSearch.query, load_default="")
    filters = ma.fields.Nested(
        FiltersSchema,
        load_default=dict,
        metadata={"description": "As `GET /api/v1/search` takes them"},
    )
    notify = ma.fields.Boolean(
        load_default=True, metadata={"description": "Push and inbox item on new matches"}
    )

    # A saved search names a query or a filter (`saved_search_empty` otherwise).
    openapi_extra: ClassVar[dict[str, Any]] = {
        "anyOf": [{"required": ["q"]}, {"required": ["filters"]}]
    }


class SavedSearchUpdateSchema(PatchSchema):
    name = String(column=SavedSearch.name)
    q = String(column=SavedSearch.query)
    filters = ma.fields.Nested(FiltersSchema)
    notify = ma.fields.Boolean()


class SavedSearchSchema(Schema):
    id = ma.fields.UUID()
    name = ma.fields.String()
    q = ma.fields.String()
    filters = ma.fields.Dict(metadata={"description": "As `GET /api/v1/search` takes them"})
    notify = ma.fields.Boolean()
    created_at = ma.fields.DateTime()
    last_notified_at = ma.fields.DateTime(allow_none=True)


class SavedSearchListSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(SavedSearchSchema), required=True)


def _present_saved(saved: SavedSearch) -> dict[str, Any]:
    return {
        "id": saved.id,
        "name": saved.name,
        "q": saved.query,
        "filters": saved.filters,
        "notify": saved.notify,
        "created_at": saved.created_at,
        "last_notified_at": saved.last_notified_at,
    }


def _filters_of(body: dict[str, Any]) -> engine.Filters:
    loaded = body.get("filters") or {}
    filters = loaded.get("filters")
    return filters if isinstance(filters, engine.Filters) else engine.Filters()


@saved_blp.route("")
class SavedSearches(MethodView):
    @saved_blp.response(200, SavedSearchListSchema)
    def get(self) -> dict[str, Any]:
        """Your saved searches"""
        found = db_session().scalars(saved.mine(current_principal())).all()
        return {"items": [_present_saved(s) for s in found]}

    @saved_blp.arguments(SavedSearchCreateSchema)
    @saved_blp.response(201, SavedSearchSchema)
    @saved_blp.problems(422)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Follow a search"""
        made = saved.create(
            db_session(),
            current_principal(),
            name=body["name"],
            query=body["q"],
            filters=_filters_of(body),
            notify=body["notify"],
        )
        return _present_saved(made)


@saved_blp.route("/<uuid:saved_id>")
class SavedSearchItem(MethodView):
    @saved_blp.response(200, SavedSearchSchema)
    @saved_blp.problems(404)
    def get(self, saved_id: uuid.UUID) -> dict[str, Any]:
        """One of your saved searches"""
        return _present_saved(saved.get(db_session(), current_principal(), saved_id))

    @saved_blp.arguments(SavedSearchUpdateSchema)
    @saved_blp.response(200, SavedSearchSchema)
    @saved_blp.problems(404, 422)
    def patch(self, body: dict[str, Any], saved_id: uuid.UUID) -> dict[str, Any]:
        """Rename a saved search, change its query or filters, or stop its pushes"""
        changes: dict[str, Any] = {k: body[k] for k in ("name", "notify") if k in body}
        if "q" in body:
            changes["query"] = body["q"]
        if "filters" in body:
            changes["filters"] = _filters_of(body)
        found = saved.update(db_session(), current_principal(), saved_id, changes)
        return _present_saved(found)

    @saved_blp.response(204)
    @saved_blp.problems(404)
    def delete(self, saved_id: uuid.UUID) -> None:
        """Stop following a search"""
        saved.delete(db_session(), current_principal(), saved_id)


# -- for this deal ---------------------------------------------------------------------------------

recommendations_blp = Blueprint(
    "recommendations",
    __name__,
    url_prefix="/api/v1/deals",
    description=(
        "For the deal in hand: the videos and comment moments most useful to it, each with "
        'why (README, "For this deal").'
    ),
)


class WhySchema(Schema):
    kind = ma.fields.String(metadata={"enum": ["attribute", "won_deal", "lost_deal"]})
    attribute = ma.fields.String(allow_none=True)
    value = ma.fields.String(allow_none=True)


class RecommendedVideoSchema(Schema):
    video = ma.fields.Nested(SearchVideoSchema)
    score = ma.fields.Float()
    why = ma.fields.List(ma.fields.Nested(WhySchema))


class RecommendedMomentSchema(Schema):
    video_id = ma.fields.UUID()
    comment_id = ma.fields.UUID()
    at_ms = ma.fields.Integer()
    end_ms = ma.fields.Integer(allow_none=True)
    body = ma.fields.String()
    likes = ma.fields.Integer()
    replies = ma.fields.Integer()
    link = ma.fields.String(metadata={"description": "Opens the player at the moment"})
    why = ma.fields.List(ma.fields.Nested(WhySchema))


class RecommendationsSchema(Schema):
    deal_id = ma.fields.UUID()
    videos = ma.fields.List(ma.fields.Nested(RecommendedVideoSchema))
    moments = ma.fields.List(ma.fields.Nested(RecommendedMomentSchema))


def _why(items: Sequence[recommendations.Why]) -> list[dict[str, Any]]:
    return [{"kind": w.kind, "attribute": w.attribute, "value": w.value} for w in items]


@recommendations_blp.route("/<uuid:deal_id>/recommendations")
class DealRecommendations(MethodView):
    @recommendations_blp.response(200, RecommendationsSchema)
    @recommendations_blp.problems(404)
    def get(self, deal_id: uuid.UUID) -> dict[str, Any]:
        """What helps with this deal

        Videos you may see recorded in a like situation (the same competitor, industry,
        stage, size band, products or region; won deals first), and the most discussed
        moments in them, each with why.
        """
        found = recommendations.recommend(db_session(), current_principal(), deal_id)
        settings = context().settings
        hits = [engine.Hit(r.video, r.score) for r in found.videos]
        presented = present_hits(hits)
        return {
            "deal_id": found.deal.id,
            "videos": [
                {"video": p["video"], "score": round(r.score, 4), "why": _why(r.why)}
                for p, r in zip(presented, found.videos, strict=True)
            ],
            "moments": [
                {
                    "video_id": m.video_id,
                    "comment_id": m.comment_id,
                    "at_ms": m.at_ms,
                    "end_ms": m.end_ms,
                    "body": m.body,
                    "likes": m.likes,
                    "replies": m.replies,
                    "link": links.video_link(
                        settings, m.video_id, comment_id=m.comment_id, at_ms=m.at_ms
                    ),
                    "why": _why(m.why),
                }
                for m in found.moments
            ],
        }
