"""Conversation at the timeline: comments and threads, @mentions, likes, reactions, moments."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

import marshmallow as ma
from flask import Response
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, PatchSchema, Schema
from api.fields import String
from api.pagination import Page, PageArgsSchema, page_schema, paginate
from api.resources.deals import DealSummarySchema, deal_summary
from api.runtime import context, db_session
from api.sync import SyncPageArgsSchema, begin, envelope, split_delta, sync_page_schema
from fieldcast import policy
from fieldcast.accounts import services as accounts
from fieldcast.conversation import comments, moments, questions, reactions
from fieldcast.conversation.mentions import Names, render
from fieldcast.deals import deals
from fieldcast.models.conversation import BODY_MAX, Comment, Reaction
from fieldcast.models.sync import TombstoneKind
from fieldcast.policy import Principal
from fieldcast.ratelimit import RateLimiter, Window
from fieldcast.sync.tokens import SyncScope

blp = Blueprint(
    "comments",
    __name__,
    url_prefix="/api/v1",
    description=(
        "Talk about a video at the moment that matters: comments on the whole video, at a point "
        "(`at_ms`) or over a range (`at_ms`..`end_ms`), threads one level deep, `@handle` "
        "mentions of people and teams, likes, resolved threads. Whoever can see a video can "
        "comment on it; nobody else learns its comments exist. Text is plain text: the API "
        "never renders it as HTML, and apps must not either."
    ),
)
reactions_blp = Blueprint(
    "reactions",
    __name__,
    url_prefix="/api/v1",
    description=(
        "Emoji reactions at points of a video's timeline, from a fixed set, and the video's "
        "moments: counts per slice of the timeline for a heat strip over the scrub bar, and the "
        "busiest moments with their leading comment."
    ),
)

_AT_MS = ma.validate.Range(min=0, max=2**31 - 1)


def _limit(scope: str, per_minute: int) -> None:
    """Count one write of `scope` for the caller: past `per_minute`, 429 with Retry-After."""
    limiter = RateLimiter(context().redis)
    window = Window(per_minute, 60)
    subject = str(current_principal().user_id)
    limiter.check(scope, subject, window)
    limiter.hit(scope, subject, window)


class PersonSchema(Schema):
    id = ma.fields.UUID()
    handle = ma.fields.String()
    display_name = ma.fields.String()


class MentionSchema(Schema):
    user_id = ma.fields.UUID(allow_none=True, metadata={"description": "A person mentioned"})
    team_id = ma.fields.UUID(allow_none=True, metadata={"description": "A team mentioned"})
    handle = ma.fields.String(metadata={"description": "Their handle now (without `@`)"})
    display_name = ma.fields.String()
    start = ma.fields.Integer(
        metadata={"description": "Where `@handle` starts in `body`, in UTF-16 code units"}
    )
    end = ma.fields.Integer(metadata={"description": "Where it ends (exclusive), in UTF-16 units"})


class ReplySchema(Schema):
    id = ma.fields.UUID()
    video_id = ma.fields.UUID()
    parent_id = ma.fields.UUID(
        allow_none=True, metadata={"description": "The thread of a reply; null for a thread"}
    )
    author = ma.fields.Nested(PersonSchema)
    at_ms = ma.fields.Integer(
        allow_none=True,
        metadata={"description": "The moment (a reply: its thread's); null: the whole video"},
    )
    end_ms = ma.fields.Integer(allow_none=True, metadata={"description": "A range's end"})
    state = ma.fields.String(
        metadata={
            "description": "`visible`; `deleted` or `hidden` (by a moderator): a tombstone kept "
            "for its replies, with an empty `body` (a hidden comment's author and admins still "
            "read it)",
            "enum": ["visible", "deleted", "hidden"],
        }
    )
    body = ma.fields.String(
        metadata={"description": "Plain text, with each mention written `@handle` as it is now"}
    )
    mentions = ma.fields.List(ma.fields.Nested(MentionSchema))
    deal = ma.fields.Nested(
        DealSummarySchema,
        allow_none=True,
        metadata={"description": "The deal it is about; null when none or not yours to see"},
    )
    hidden_reason = ma.fields.String(
        allow_none=True,
        metadata={"description": "Why a moderator hid it (to its author and admins only)"},
    )
    like_count = ma.fields.Integer()
    liked_by_me = ma.fields.Boolean()
    reply_count = ma.fields.Integer(metadata={"description": "Live replies of a thread"})
    resolved_at = ma.fields.DateTime(allow_none=True)
    resolved_by_id = ma.fields.UUID(allow_none=True)
    created_at = ma.fields.DateTime()
    edited_at = ma.fields.DateTime(
        allow_none=True, metadata={"description": "When its author last changed its text"}
    )
    updated_at = ma.fields.DateTime()


class CommentSchema(ReplySchema):
    replies = ma.fields.List(
        ma.fields.Nested(ReplySchema),
        metadata={
            "description": "A thread's first replies, oldest first (`replies` of the listing; "
            "the rest from /comments/{id}/replies). Empty for a reply and in a delta"
        },
    )


class CommentCreateSchema(Schema):
    body = String(
        required=True,
        min_length=1,
        column=Comment.body,
        metadata={
            "description": f"Plain text, at most {BODY_MAX} characters; `@handle` mentions a "
            "person or a team (resolved now, stored by id)"
        },
    )
    at_ms = ma.fields.Integer(
        load_default=None,
        allow_none=True,
        validate=_AT_MS,
        metadata={"description": "A point of the video; left out: the whole video"},
    )
    end_ms = ma.fields.Integer(
        load_default=None,
        allow_none=True,
        validate=_AT_MS,
        metadata={"description": "With `at_ms`: the end of a range"},
    )
    parent_id = ma.fields.UUID(
        load_default=None,
        allow_none=True,
        metadata={"description": "Reply in this comment's thread (it takes the thread's time)"},
    )
    share_with_mentioned = ma.fields.Boolean(
        load_default=False,
        metadata={
            "description": "Share the video with mentioned people (or teams' people) who cannot "
            "see it yet, through the normal share and its push; without it such a mention is "
            "refused (422 `mention_without_access`)"
        },
    )
    deal_id = ma.fields.UUID(
        load_default=None,
        allow_none=True,
        metadata={"description": "The deal the comment is about (one you can see)"},
    )


class CommentUpdateSchema(PatchSchema):
    body = String(min_length=1, column=Comment.body, metadata={"description": "The new text"})
    share_with_mentioned = ma.fields.Boolean(
        metadata={"description": "As when commenting, for the people the new text mentions"}
    )


class CommentListArgsSchema(SyncPageArgsSchema):
    order = String(
        max_length=16,
        load_default=comments.Order.TIMELINE,
        validate=ma.validate.OneOf([comments.Order.TIMELINE, comments.Order.NEWEST]),
        metadata={
            "description": "`timeline`: by moment, whole-video comments first; `newest`: the "
            "latest threads first"
        },
    )
    replies = ma.fields.Integer(
        load_default=comments.FIRST_REPLIES,
        validate=ma.validate.Range(min=0, max=comments.MAX_FIRST_REPLIES),
        metadata={"description": "How many first replies each thread carries"},
    )


class MentionableArgsSchema(Schema):
    q = String(load_default="", max_length=64, metadata={"description": "What follows the `@`"})
    limit = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=50))


class MentionableSchema(Schema):
    kind = ma.fields.String(metadata={"enum": ["user", "team"]})
    user_id = ma.fields.UUID(allow_none=True)
    team_id = ma.fields.UUID(allow_none=True)
    handle = ma.fields.String()
    display_name = ma.fields.String()
    can_see_video = ma.fields.Boolean(
        metadata={
            "description": "Whether they (for a team: all its people) can see the video; "
            "mentioning someone who cannot needs `share_with_mentioned`"
        }
    )
    people_without_access = ma.fields.Integer(
        metadata={"description": "For a team: how many of its people cannot see the video"}
    )


class MentionableListSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(MentionableSchema), required=True)


def _json(value: Any) -> str:
    return json.dumps(value, default=_json_value, separators=(",", ":"), ensure_ascii=False)


def _json_value(value: Any) -> str:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _person(user_id: uuid.UUID, users: dict[uuid.UUID, Any]) -> dict[str, Any]:
    """A person as comments and answers name them (an account deleted since has no handle)."""
    user = users.get(user_id)
    return {
        "id": user_id,
        "handle": user.handle if user else "",
        "display_name": user.display_name if user else "",
    }


def present(
    principal: Principal,
    items: list[Comment],
    *,
    replies: dict[uuid.UUID, list[Comment]] | None = None,
) -> list[dict[str, Any]]:
    """Comments as a reader sees them, with their authors, mentions and likes, in a fixed
    number of queries whatever their count."""
    session = db_session()
    replies = replies or {}
    every = items + [reply for thread in replies.values() for reply in thread]
    authors = accounts.users_by_id(session, principal.org_id, list({c.author_id for c in every}))
    names = Names.load(session, principal.org_id, [c.mentions for c in every if c.mentions])
    liked = comments.liked_by(session, principal, [c.id for c in every])
    about = deals.readable(session, principal, [c.deal_id for c in every])

    def one(comment: Comment) -> dict[str, Any]:
        state = "deleted" if comment.deleted_at else "hidden" if comment.hidden_at else "visible"
        readable = state == "visible" or (
            state == "hidden" and (principal.is_admin or comment.author_id == principal.user_id)
        )
        body, mentions = render(comment.body, comment.mentions, names) if readable else ("", [])
        return {
            "id": comment.id,
            "video_id": comment.video_id,
            "parent_id": comment.parent_id,
            "author": _person(comment.author_id, authors),
            "at_ms": comment.at_ms,
            "end_ms": comment.end_ms,
            "state": state,
            "body": body,
            "mentions": mentions,
            "deal": (deal_summary(about[comment.deal_id]) if comment.deal_id in about else None),
            "hidden_reason": comment.hidden_reason if readable and comment.hidden_at else None,
            "like_count": comment.like_count,
            "liked_by_me": comment.id in liked,
            "reply_count": comment.reply_count,
            "resolved_at": comment.resolved_at,
            "resolved_by_id": comment.resolved_by_id,
            "created_at": comment.created_at,
            "edited_at": comment.edited_at,
            "updated_at": comment.updated_at,
        }

    return [
        {**one(comment), "replies": [one(reply) for reply in replies.get(comment.id, [])]}
        for comment in items
    ]


def _present_one(comment: Comment) -> dict[str, Any]:
    principal = current_principal()
    first = (
        comments.first_replies(db_session(), principal, [comment.id], comments.FIRST_REPLIES)
        if comment.parent_id is None
        else {}
    )
    return present(principal, [comment], replies=first)[0]


@blp.route("/videos/<uuid:video_id>/comments")
class VideoComments(MethodView):
    @blp.etag
    @blp.arguments(CommentListArgsSchema, location="query")
    @blp.response(200, sync_page_schema(CommentSchema))
    @blp.problems(404, 410, 422)
    def get(self, args: dict[str, Any], video_id: uuid.UUID) -> Response:
        """A video's comments: threads with their first replies

        Ordered by `timeline` (whole-video comments, then by moment) or `newest`, a page at a
        time. A thread whose comment was deleted stays (as a tombstone) while it has replies.
        With `updated_since`: every comment (thread or reply) added or changed since, in `id`
        order, and in `deleted` those gone from the list. The ETag leaves `sync_token` out, so
        `If-None-Match` answers 304 while nothing changed.
        """
        session, principal = db_session(), current_principal()
        video = policy.load_video(session, principal, video_id)
        order = args.pop("order")
        count = args.pop("replies")
        request = begin(args, SyncScope("comments", principal.user_id, f"{video.id}:{order}"))
        page: Page[Comment]
        if request.since is not None:
            page = paginate(
                session,
                comments.changes(video, request.since),
                order_by=[Comment.id],
                args=request.page_args,
            )
        elif order == comments.Order.NEWEST:
            page = paginate(
                session,
                comments.threads(principal, video),
                order_by=[Comment.id],
                args=request.page_args,
                descending=True,
            )
        else:
            page = paginate(
                session,
                comments.threads(principal, video),
                order_by=[Comment.timeline_ms, Comment.id],
                args=request.page_args,
            )
        items, deleted = split_delta(
            request,
            page.items,
            lambda comment: comment.id,
            lambda ids: comments.matching_ids(session, principal, video, ids),
            TombstoneKind.COMMENT,
        )
        first = (
            comments.first_replies(session, principal, [c.id for c in items], count)
            if request.since is None
            else {}
        )
        presented = present(principal, items, replies=first)
        answer = envelope(request, presented, page.next_cursor, deleted)
        # The busiest read of a conversation: its comments are plain values already, written
        # as JSON once here rather than through the schema (the same fields, checked against
        # it by the contract and fuzz tests), and the ETag is of that text without the
        # sync token, so an unchanged list answers 304 whatever token it would carry.
        items_json = _json(answer.pop("items"))
        rest = _json({"next_cursor": answer["next_cursor"], "deleted": answer["deleted"]})
        # The page's own cursor, not the signed one (which carries the sync point's time).
        tag = _json({"next": page.next_cursor, "deleted": answer["deleted"]})
        blp.set_etag(hashlib.sha256(f"{items_json}{tag}".encode()).hexdigest())
        token = _json(answer["sync_token"])
        body = f'{{"items":{items_json},"sync_token":{token},{rest[1:]}'
        return Response(body, mimetype="application/json")

    @blp.arguments(CommentCreateSchema)
    @blp.response(201, CommentSchema)
    @blp.problems(404, 409, 422, 429)
    def post(self, body: dict[str, Any], video_id: uuid.UUID) -> dict[str, Any]:
        """Comment on a video, or reply in one of its threads

        Mentions are resolved now and stored by id, so a later rename never breaks or moves
        them. Mentioning someone who cannot see the video is refused (422
        `mention_without_access`, naming them) unless `share_with_mentioned` is true. The
        people it concerns are told by push (mentioned, in the thread, the video's author),
        never the author. At most COMMENTS_PER_MINUTE comments a minute per person (429).
        """
        settings = context().settings
        _limit("comments", settings.comments_per_minute)
        comment = comments.post_comment(
            db_session(),
            current_principal(),
            video_id,
            push_window_s=settings.comment_push_window_s,
            **body,
        )
        return _present_one(comment)


@blp.route("/comments/<uuid:comment_id>")
class CommentById(MethodView):
    @blp.etag
    @blp.response(200, CommentSchema)
    @blp.problems(404)
    def get(self, comment_id: uuid.UUID) -> dict[str, Any]:
        """A comment (a push's `comment_id`), with its first replies when it is a thread"""
        return _present_one(policy.load_comment(db_session(), current_principal(), comment_id))

    @blp.arguments(CommentUpdateSchema)
    @blp.response(200, CommentSchema)
    @blp.problems(403, 404, 409, 422)
    def patch(self, body: dict[str, Any], comment_id: uuid.UUID) -> dict[str, Any]:
        """Change a comment's text (its author); `edited_at` shows it was changed

        Its time and thread stay. People it newly mentions are told; others are not told again.
        """
        comment = comments.edit_comment(
            db_session(),
            current_principal(),
            comment_id,
            push_window_s=context().settings.comment_push_window_s,
            **body,
        )
        return _present_one(comment)

    @blp.response(204)
    @blp.problems(403, 404)
    def delete(self, comment_id: uuid.UUID) -> None:
        """Delete a comment (its author, the video's author, admins)

        A thread's replies stay: the thread shows as a tombstone while it has any.
        """
        comments.delete_comment(db_session(), current_principal(), comment_id)


@blp.route("/comments/<uuid:comment_id>/replies")
class CommentReplies(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_schema(ReplySchema))
    @blp.problems(404)
    def get(self, args: dict[str, Any], comment_id: uuid.UUID) -> dict[str, Any]:
        """A thread's replies, oldest first"""
        session, principal = db_session(), current_principal()
        thread = policy.load_comment(session, principal, comment_id)
        page: Page[Comment] = paginate(
            session, comments.replies(principal, thread), order_by=[Comment.id], args=args
        )
        items = [
            {key: value for key, value in item.items() if key != "replies"}
            for item in present(principal, page.items)
        ]
        return {"items": items, "next_cursor": page.next_cursor}


@blp.route("/comments/<uuid:comment_id>/resolve")
class CommentResolve(MethodView):
    @blp.response(200, CommentSchema)
    @blp.problems(403, 404, 409)
    def post(self, comment_id: uuid.UUID) -> dict[str, Any]:
        """Resolve a thread (the video's author, the thread's author, the managers above the
        thread's author, admins)"""
        principal = current_principal()
        comment = comments.set_resolved(db_session(), principal, comment_id, resolved=True)
        return _present_one(comment)


@blp.route("/comments/<uuid:comment_id>/reopen")
class CommentReopen(MethodView):
    @blp.response(200, CommentSchema)
    @blp.problems(403, 404, 409)
    def post(self, comment_id: uuid.UUID) -> dict[str, Any]:
        """Reopen a resolved thread (the same people who resolve it)"""
        principal = current_principal()
        comment = comments.set_resolved(db_session(), principal, comment_id, resolved=False)
        return _present_one(comment)


@blp.route("/comments/<uuid:comment_id>/like")
class CommentLike(MethodView):
    @blp.response(200, CommentSchema)
    @blp.problems(404, 409)
    def put(self, comment_id: uuid.UUID) -> dict[str, Any]:
        """Like a comment (again: still one like). On a question, liking an answer votes it up"""
        comment = comments.set_liked(db_session(), current_principal(), comment_id, liked=True)
        return _present_one(comment)

    @blp.response(200, CommentSchema)
    @blp.problems(404, 409)
    def delete(self, comment_id: uuid.UUID) -> dict[str, Any]:
        """Take your like back"""
        comment = comments.set_liked(db_session(), current_principal(), comment_id, liked=False)
        return _present_one(comment)


@blp.route("/videos/<uuid:video_id>/mentionable")
class Mentionable(MethodView):
    @blp.arguments(MentionableArgsSchema, location="query")
    @blp.response(200, MentionableListSchema)
    @blp.problems(404)
    def get(self, args: dict[str, Any], video_id: uuid.UUID) -> dict[str, Any]:
        """Autocomplete `@...` in a comment on this video

        People and teams whose handle or name starts with `q`; those who can see the video
        first, those who cannot marked `can_see_video: false`.
        """
        found = comments.mentionable(
            db_session(), current_principal(), video_id, args["q"], args["limit"]
        )
        return {
            "items": [
                {
                    "kind": "user" if m.user_id else "team",
                    "user_id": m.user_id,
                    "team_id": m.team_id,
                    "handle": m.handle,
                    "display_name": m.display_name,
                    "can_see_video": m.can_see_video,
                    "people_without_access": m.people_without_access,
                }
                for m in found
            ]
        }


# -- reactions and moments ------------------------------------------------------------------------


class EmojiSchema(Schema):
    emoji = ma.fields.String()
    name = ma.fields.String()


class EmojiSetSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(EmojiSchema), required=True)


class ReactionCreateSchema(Schema):
    emoji = String(
        required=True,
        max_length=32,
        metadata={
            "description": "One of the reaction set (GET /api/v1/reactions), as the emoji (with "
            "or without U+FE0F) or its name: "
            + ", ".join(f"{e.emoji} `{e.name}`" for e in reactions.EMOJI),
        },
    )
    at_ms = ma.fields.Integer(required=True, validate=_AT_MS)


class ReactionSchema(Schema):
    id = ma.fields.UUID()
    video_id = ma.fields.UUID()
    user_id = ma.fields.UUID()
    emoji = ma.fields.String()
    name = ma.fields.String()
    at_ms = ma.fields.Integer()
    mine = ma.fields.Boolean()
    created_at = ma.fields.DateTime()


class MomentsArgsSchema(Schema):
    buckets = ma.fields.Integer(
        load_default=moments.DEFAULT_BUCKETS,
        validate=ma.validate.Range(min=1, max=moments.MAX_BUCKETS),
        metadata={"description": "Slices of the timeline (for a heat strip, one per few pixels)"},
    )


class BucketSchema(Schema):
    start_ms = ma.fields.Integer()
    end_ms = ma.fields.Integer()
    comments = ma.fields.Integer(metadata={"description": "Threads starting in the slice"})
    replies = ma.fields.Integer(metadata={"description": "Replies in those threads"})
    reactions = ma.fields.Integer()


class LeadSchema(Schema):
    id = ma.fields.UUID()
    author = ma.fields.Nested(PersonSchema)
    at_ms = ma.fields.Integer()
    end_ms = ma.fields.Integer(allow_none=True)
    body = ma.fields.String()
    mentions = ma.fields.List(ma.fields.Nested(MentionSchema))
    like_count = ma.fields.Integer()
    reply_count = ma.fields.Integer()


class MomentSchema(BucketSchema):
    activity = ma.fields.Integer(metadata={"description": "Comments, replies and reactions"})
    comment = ma.fields.Nested(
        LeadSchema,
        allow_none=True,
        metadata={"description": "The slice's leading comment: most liked, then most replied"},
    )


class MomentsSchema(Schema):
    duration_ms = ma.fields.Integer(
        allow_none=True, metadata={"description": "Null until the video's file is probed"}
    )
    buckets = ma.fields.List(ma.fields.Nested(BucketSchema), required=True)
    top = ma.fields.List(
        ma.fields.Nested(MomentSchema),
        required=True,
        metadata={"description": "The busiest slices, busiest first"},
    )


def _present_reactions(principal: Principal, items: list[Reaction]) -> list[dict[str, Any]]:
    names = {e.emoji: e.name for e in reactions.EMOJI}
    return [
        {
            "id": r.id,
            "video_id": r.video_id,
            "user_id": r.user_id,
            "emoji": r.emoji,
            "name": names.get(r.emoji, ""),
            "at_ms": r.at_ms,
            "mine": r.user_id == principal.user_id,
            "created_at": r.created_at,
        }
        for r in items
    ]


@reactions_blp.route("/reactions")
class EmojiSet(MethodView):
    @reactions_blp.etag
    @reactions_blp.response(200, EmojiSetSchema)
    def get(self) -> dict[str, Any]:
        """The reaction set, in the order to show it"""
        return {"items": [{"emoji": e.emoji, "name": e.name} for e in reactions.EMOJI]}


@reactions_blp.route("/videos/<uuid:video_id>/reactions")
class VideoReactions(MethodView):
    @reactions_blp.arguments(PageArgsSchema, location="query")
    @reactions_blp.response(200, page_schema(ReactionSchema))
    @reactions_blp.problems(404)
    def get(self, args: dict[str, Any], video_id: uuid.UUID) -> dict[str, Any]:
        """A video's reactions by time, for markers on the scrub bar"""
        session, principal = db_session(), current_principal()
        video = policy.load_video(session, principal, video_id)
        page: Page[Reaction] = paginate(
            session, reactions.of_video(video), order_by=[Reaction.at_ms, Reaction.id], args=args
        )
        return {"items": _present_reactions(principal, page.items), "next_cursor": page.next_cursor}

    @reactions_blp.arguments(ReactionCreateSchema)
    @reactions_blp.response(201, ReactionSchema)
    @reactions_blp.alt_response(200, schema=ReactionSchema, description="The same reaction again")
    @reactions_blp.problems(404, 422, 429)
    def post(self, body: dict[str, Any], video_id: uuid.UUID) -> Any:
        """React at a moment of a video

        The same emoji at the same moment again returns the reaction already there (200).
        At most REACTIONS_PER_MINUTE a minute per person (429).
        """
        principal = current_principal()
        _limit("reactions", context().settings.reactions_per_minute)
        reaction, made = reactions.react(db_session(), principal, video_id, **body)
        return _present_reactions(principal, [reaction])[0], 201 if made else 200


@reactions_blp.route("/videos/<uuid:video_id>/reactions/<uuid:reaction_id>")
class VideoReaction(MethodView):
    @reactions_blp.response(204)
    @reactions_blp.problems(404)
    def delete(self, video_id: uuid.UUID, reaction_id: uuid.UUID) -> None:
        """Take back one of your reactions"""
        reactions.remove(db_session(), current_principal(), video_id, reaction_id)


@reactions_blp.route("/videos/<uuid:video_id>/moments")
class VideoMoments(MethodView):
    @reactions_blp.etag
    @reactions_blp.arguments(MomentsArgsSchema, location="query")
    @reactions_blp.response(200, MomentsSchema)
    @reactions_blp.problems(404)
    def get(self, args: dict[str, Any], video_id: uuid.UUID) -> Response:
        """Where peers talked and reacted on the timeline

        `buckets` slices of the timeline with their counts of comments, replies and reactions
        (from 100 ms slots), and the busiest slices with their leading comment, to jump to.
        """
        session, principal = db_session(), current_principal()
        video = policy.load_video(session, principal, video_id)
        found = moments.moments(session, video, args["buckets"])
        leads = [lead for _, lead in found.top if lead is not None]
        fields = list(LeadSchema._declared_fields)
        presented = {c["id"]: {name: c[name] for name in fields} for c in present(principal, leads)}
        # Read with every scrub of a busy video: written as JSON once, like the comments list.
        answer = {
            "duration_ms": found.duration_ms,
            "buckets": [
                {
                    "start_ms": b.start_ms,
                    "end_ms": b.end_ms,
                    "comments": b.comments,
                    "replies": b.replies,
                    "reactions": b.reactions,
                }
                for b in found.buckets
            ],
            "top": [
                {
                    "start_ms": b.start_ms,
                    "end_ms": b.end_ms,
                    "comments": b.comments,
                    "replies": b.replies,
                    "reactions": b.reactions,
                    "activity": b.activity,
                    "comment": presented.get(lead.id) if lead is not None else None,
                }
                for b, lead in found.top
            ],
        }
        body = _json(answer)
        reactions_blp.set_etag(hashlib.sha256(body.encode()).hexdigest())
        return Response(body, mimetype="application/json")


# -- asking the peers -----------------------------------------------------------------------------

questions_blp = Blueprint(
    "questions",
    __name__,
    url_prefix="/api/v1",
    description=(
        "A video posted as a question (`kind: question`) asks the peers for advice. Its answers "
        "are its threads and the reply videos that name it (`answers_video_id`); peers vote "
        "answers up (liking an answer comment, voting a reply video); the asker accepts one "
        "and the question is `answered`."
    ),
)


class AnswerVideoSchema(Schema):
    id = ma.fields.UUID()
    title = ma.fields.String()
    owner = ma.fields.Nested(PersonSchema)
    status = ma.fields.String()
    duration_ms = ma.fields.Integer(allow_none=True)
    created_at = ma.fields.DateTime()


class AnswerSchema(Schema):
    kind = ma.fields.String(metadata={"enum": ["comment", "video"]})
    comment = ma.fields.Nested(ReplySchema, allow_none=True)
    video = ma.fields.Nested(AnswerVideoSchema, allow_none=True)
    votes = ma.fields.Integer()
    voted_by_me = ma.fields.Boolean()
    accepted = ma.fields.Boolean()


class AnswerListSchema(Schema):
    state = ma.fields.String(metadata={"enum": ["open", "answered"]})
    items = ma.fields.List(
        ma.fields.Nested(AnswerSchema),
        required=True,
        metadata={"description": "The accepted answer first, then by votes, then the earliest"},
    )


class AcceptAnswerSchema(Schema):
    comment_id = ma.fields.UUID(load_default=None, allow_none=True)
    video_id = ma.fields.UUID(load_default=None, allow_none=True)


class AcceptedAnswerSchema(Schema):
    state = ma.fields.String(metadata={"enum": ["open", "answered"]})
    accepted_comment_id = ma.fields.UUID(allow_none=True)
    accepted_video_id = ma.fields.UUID(allow_none=True)
    answered_at = ma.fields.DateTime(allow_none=True)


class VoteSchema(Schema):
    video_id = ma.fields.UUID()
    votes = ma.fields.Integer()
    voted_by_me = ma.fields.Boolean()


def _accepted(question: Any) -> dict[str, Any]:
    return {
        "state": questions.state(question),
        "accepted_comment_id": question.accepted_comment_id,
        "accepted_video_id": question.accepted_video_id,
        "answered_at": question.answered_at,
    }


@questions_blp.route("/videos/<uuid:video_id>/answers")
class QuestionAnswers(MethodView):
    @questions_blp.response(200, AnswerListSchema)
    @questions_blp.problems(404, 422)
    def get(self, video_id: uuid.UUID) -> dict[str, Any]:
        """A question's answers: its threads and the reply videos you can see"""
        session, principal = db_session(), current_principal()
        question = questions.question_of(session, principal, video_id)
        found = questions.answers(session, principal, question)
        presented = {
            c["id"]: {k: v for k, v in c.items() if k != "replies"}
            for c in present(principal, [a.comment for a in found if a.comment is not None])
        }
        owners = accounts.users_by_id(
            session, principal.org_id, [a.video.owner_id for a in found if a.video is not None]
        )
        items = []
        for answer in found:
            video = None
            if answer.video is not None:
                video = {
                    "id": answer.video.id,
                    "title": answer.video.title,
                    "owner": _person(answer.video.owner_id, owners),
                    "status": answer.video.status.value,
                    "duration_ms": answer.video.duration_ms,
                    "created_at": answer.video.created_at,
                }
            items.append(
                {
                    "kind": "comment" if answer.comment is not None else "video",
                    "comment": presented.get(answer.comment.id) if answer.comment else None,
                    "video": video,
                    "votes": answer.votes,
                    "voted_by_me": answer.voted_by_me,
                    "accepted": answer.accepted,
                }
            )
        return {"state": questions.state(question), "items": items}


@questions_blp.route("/videos/<uuid:video_id>/accepted-answer")
class AcceptedAnswer(MethodView):
    @questions_blp.arguments(AcceptAnswerSchema)
    @questions_blp.response(200, AcceptedAnswerSchema)
    @questions_blp.problems(403, 404, 409, 422)
    def put(self, body: dict[str, Any], video_id: uuid.UUID) -> dict[str, Any]:
        """Accept an answer to your question (a thread of it, or a reply video); its author is
        told. Accepting another replaces it"""
        question = questions.accept(db_session(), current_principal(), video_id, **body)
        return _accepted(question)

    @questions_blp.response(200, AcceptedAnswerSchema)
    @questions_blp.problems(403, 404, 409)
    def delete(self, video_id: uuid.UUID) -> dict[str, Any]:
        """Take the acceptance back: the question is open again"""
        return _accepted(questions.reopen(db_session(), current_principal(), video_id))


@questions_blp.route("/videos/<uuid:answer_video_id>/vote")
class ReplyVideoVote(MethodView):
    @questions_blp.response(200, VoteSchema)
    @questions_blp.problems(404, 409)
    def put(self, answer_video_id: uuid.UUID) -> dict[str, Any]:
        """Vote a reply video (one answering a question) up; again: still one vote"""
        video, votes = questions.vote_video(
            db_session(), current_principal(), answer_video_id, up=True
        )
        return {"video_id": video.id, "votes": votes, "voted_by_me": True}

    @questions_blp.response(200, VoteSchema)
    @questions_blp.problems(404, 409)
    def delete(self, answer_video_id: uuid.UUID) -> dict[str, Any]:
        """Take your vote back"""
        video, votes = questions.vote_video(
            db_session(), current_principal(), answer_video_id, up=False
        )
        return {"video_id": video.id, "votes": votes, "voted_by_me": False}
