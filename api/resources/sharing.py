"""Sharing: distribution lists, shares of a video, and each recipient's state."""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, PatchSchema, Schema
from api.fields import String
from api.pagination import Page, PageArgsSchema, page_schema, paginate
from api.resources.feed import FeedEntrySchema, present_entries
from api.runtime import db_session
from api.schemas import attributes
from fieldcast import policy
from fieldcast.accounts import services as accounts
from fieldcast.models.sharing import (
    DistributionList,
    ListVisibility,
    RecipientState,
    Share,
    ShareRecipient,
)
from fieldcast.sharing import feed, lists, shares, tracking

lists_blp = Blueprint(
    "distribution_lists",
    __name__,
    url_prefix="/api/v1/distribution-lists",
    description=(
        "Named audiences of people and teams. A team counts with whoever is in it (and in its "
        "sub-teams) when a share is sent. Managers, enablement and admins create lists; a "
        "`private` list is its owner's (and admins'), an `organisation` list everyone may see "
        "and share to. Its owner and admins change it."
    ),
)
shares_blp = Blueprint(
    "shares",
    __name__,
    url_prefix="/api/v1",
    description=(
        "Share a video with people, teams and lists. The share returns at once; recipients "
        "can see the video from then on, and their phones are notified by workers (when the "
        "video is playable). The sender, their managers and admins follow each recipient from "
        "`queued` to `sent`, `delivered`, `opened` and `watched` (or `failed`, with a reason)."
    ),
)

_LIST_USERS = ma.validate.Length(max=lists.MAX_LIST_USERS)


class ListSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    owner_id = ma.fields.UUID(dump_only=True)
    name = String(required=True, min_length=1, column=DistributionList.name)
    description = String(load_default="", column=DistributionList.description)
    visibility = ma.fields.Enum(ListVisibility, by_value=True, load_default=ListVisibility.PRIVATE)
    user_ids = ma.fields.List(ma.fields.UUID(), load_default=list, validate=_LIST_USERS)
    team_ids = ma.fields.List(
        ma.fields.UUID(), load_default=list, validate=ma.validate.Length(max=lists.MAX_LIST_TEAMS)
    )
    recipient_count = ma.fields.Integer(
        dump_only=True, metadata={"description": "Active people the list reaches now"}
    )
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class ListUpdateSchema(PatchSchema):
    name = String(min_length=1, column=DistributionList.name)
    description = String(column=DistributionList.description)
    visibility = ma.fields.Enum(ListVisibility, by_value=True)
    user_ids = ma.fields.List(
        ma.fields.UUID(),
        metadata={"description": "Replaces the people of the list"},
        validate=_LIST_USERS,
    )
    team_ids = ma.fields.List(
        ma.fields.UUID(),
        validate=ma.validate.Length(max=lists.MAX_LIST_TEAMS),
        metadata={"description": "Replaces the teams of the list"},
    )


class ListSummarySchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    owner_id = ma.fields.UUID(dump_only=True)
    name = ma.fields.String(dump_only=True)
    description = ma.fields.String(dump_only=True)
    visibility = ma.fields.Enum(ListVisibility, by_value=True, dump_only=True)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


def _present_list(dl: DistributionList) -> dict[str, Any]:
    members = lists.members(db_session(), dl)
    return {
        **attributes(dl, ListSummarySchema),
        "user_ids": members.user_ids,
        "team_ids": members.team_ids,
        "recipient_count": members.recipient_count,
    }


@lists_blp.route("")
class Lists(MethodView):
    @lists_blp.arguments(PageArgsSchema, location="query")
    @lists_blp.response(200, page_schema(ListSummarySchema))
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Lists you may share to"""
        page: Page[DistributionList] = paginate(
            db_session(),
            policy.lists.select(current_principal()),
            order_by=[DistributionList.id],
            args=args,
        )
        return {
            "items": [attributes(dl, ListSummarySchema) for dl in page.items],
            "next_cursor": page.next_cursor,
        }

    @lists_blp.arguments(ListSchema)
    @lists_blp.response(201, ListSchema)
    @lists_blp.problems(403, 422)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a list (managers, enablement, admins)"""
        dl = lists.create_list(db_session(), current_principal(), **body)
        return _present_list(dl)


@lists_blp.route("/<uuid:list_id>")
class ListById(MethodView):
    @lists_blp.response(200, ListSchema)
    @lists_blp.problems(404)
    def get(self, list_id: uuid.UUID) -> dict[str, Any]:
        """A list with its members and how many people it reaches now"""
        return _present_list(policy.load_list(db_session(), current_principal(), list_id))

    @lists_blp.arguments(ListUpdateSchema)
    @lists_blp.response(200, ListSchema)
    @lists_blp.problems(403, 404, 422)
    def patch(self, body: dict[str, Any], list_id: uuid.UUID) -> dict[str, Any]:
        """Change a list (its owner or an admin)"""
        user_ids = body.pop("user_ids", None)
        team_ids = body.pop("team_ids", None)
        dl = lists.update_list(
            db_session(),
            current_principal(),
            list_id,
            changes=body,
            user_ids=user_ids,
            team_ids=team_ids,
        )
        return _present_list(dl)

    @lists_blp.response(204)
    @lists_blp.problems(403, 404)
    def delete(self, list_id: uuid.UUID) -> None:
        """Delete a list (its owner or an admin); shares sent to it keep their recipients"""
        lists.delete_list(db_session(), current_principal(), list_id)


# -- shares ---------------------------------------------------------------------------------------


class ShareRequestSchema(Schema):
    user_ids = ma.fields.List(
        ma.fields.UUID(),
        load_default=list,
        validate=ma.validate.Length(max=shares.MAX_SHARE_USERS),
    )
    team_ids = ma.fields.List(
        ma.fields.UUID(),
        load_default=list,
        validate=ma.validate.Length(max=shares.MAX_SHARE_TEAMS),
    )
    list_ids = ma.fields.List(
        ma.fields.UUID(),
        load_default=list,
        validate=ma.validate.Length(max=shares.MAX_SHARE_LISTS),
    )
    message = String(load_default="", column=Share.message)


class CountsSchema(Schema):
    queued = ma.fields.Integer()
    sent = ma.fields.Integer()
    delivered = ma.fields.Integer()
    opened = ma.fields.Integer()
    watched = ma.fields.Integer()
    failed = ma.fields.Integer()


class ReachedSchema(Schema):
    sent = ma.fields.Integer()
    delivered = ma.fields.Integer()
    opened = ma.fields.Integer()
    watched = ma.fields.Integer()


_TRACKING = (
    " Null when you read the share only as one of its recipients (you see neither its "
    "audience nor the other recipients)."
)


class ShareSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    video_id = ma.fields.UUID(dump_only=True)
    sender_id = ma.fields.UUID(dump_only=True)
    message = ma.fields.String(dump_only=True)
    audience = ma.fields.Dict(
        dump_only=True,
        allow_none=True,
        metadata={"description": "The user, team and list ids as sent." + _TRACKING},
    )
    recipient_count = ma.fields.Integer(
        dump_only=True, allow_none=True, metadata={"description": "People reached." + _TRACKING}
    )
    status = ma.fields.String(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "`waiting_for_video` until the video is playable, then `sending`; "
            "`recalled` once its sender or an admin took it back." + _TRACKING
        },
    )
    created_at = ma.fields.DateTime(dump_only=True)
    released_at = ma.fields.DateTime(dump_only=True, allow_none=True)
    recalled_at = ma.fields.DateTime(
        dump_only=True,
        allow_none=True,
        metadata={"description": "When it was recalled: it grants nobody the video any more"},
    )
    counts = ma.fields.Nested(
        CountsSchema,
        dump_only=True,
        allow_none=True,
        metadata={"description": "Recipients in each state now." + _TRACKING},
    )
    reached = ma.fields.Nested(
        ReachedSchema,
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "Recipients who got at least this far (sent ⊇ delivered ⊇ ...)."
            + _TRACKING
        },
    )
    received = ma.fields.Nested(
        FeedEntrySchema,
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "The share as it reached you, when you are one of its recipients "
            "(reading it by the `share_id` a push carried): sender, message, video and your "
            "own state, as in the feed. Null otherwise."
        },
    )


class RecipientUserSchema(Schema):
    id = ma.fields.UUID()
    handle = ma.fields.String()
    display_name = ma.fields.String()


class RecipientSchema(Schema):
    user = ma.fields.Nested(RecipientUserSchema)
    state = ma.fields.Enum(RecipientState, by_value=True)
    failure_reason = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "When failed: muted, no_devices, unregistered, invalid_token, ..."
        },
    )
    queued_at = ma.fields.DateTime()
    sent_at = ma.fields.DateTime(allow_none=True)
    delivered_at = ma.fields.DateTime(allow_none=True)
    opened_at = ma.fields.DateTime(allow_none=True)
    watched_at = ma.fields.DateTime(allow_none=True)
    failed_at = ma.fields.DateTime(allow_none=True)


class RecipientArgsSchema(PageArgsSchema):
    state = ma.fields.Enum(RecipientState, by_value=True, load_default=None)


def _present_share(share: Share) -> dict[str, Any]:
    by_state = tracking.counts(db_session(), share)
    return {
        **attributes(share, ShareSchema, exclude=("status", "counts", "reached", "received")),
        "status": (
            "recalled"
            if share.recalled_at
            else "sending"
            if share.released_at
            else "waiting_for_video"
        ),
        "counts": by_state,
        "reached": tracking.reached(by_state),
        "received": None,
    }


_TRACKED = ("audience", "recipient_count", "status", "counts", "reached")


def _present_received(share: Share, entry: dict[str, Any] | None) -> dict[str, Any]:
    """A share read by one of its recipients only: nothing of its audience."""
    return {
        **dict.fromkeys(_TRACKED),
        **attributes(share, ShareSchema, exclude=(*_TRACKED, "received")),
        "received": entry,
    }


@shares_blp.route("/videos/<uuid:video_id>/shares")
class VideoShares(MethodView):
    @shares_blp.arguments(ShareRequestSchema)
    @shares_blp.response(201, ShareSchema)
    @shares_blp.problems(404, 422)
    def post(self, body: dict[str, Any], video_id: uuid.UUID) -> dict[str, Any]:
        """Share a video you can see

        Returns at once, whatever the audience size, with `recipient_count`: the people
        reached (deduplicated, you left out). A video still processing is shared now and its
        pushes go out when it is playable.
        """
        share = shares.share_video(db_session(), current_principal(), video_id, **body)
        return _present_share(share)

    @shares_blp.arguments(PageArgsSchema, location="query")
    @shares_blp.response(200, page_schema(ShareSchema))
    @shares_blp.problems(404)
    def get(self, args: dict[str, Any], video_id: uuid.UUID) -> dict[str, Any]:
        """Shares of a video that you sent, that your reports sent, or (admins) all"""
        principal = current_principal()
        page: Page[Share] = paginate(
            db_session(),
            shares.shares_of_video(db_session(), principal, video_id),
            order_by=[Share.id],
            args=args,
            descending=True,
        )
        return {
            "items": [_present_share(share) for share in page.items],
            "next_cursor": page.next_cursor,
        }


@shares_blp.route("/shares/<uuid:share_id>")
class ShareById(MethodView):
    @shares_blp.response(200, ShareSchema)
    @shares_blp.problems(404)
    def get(self, share_id: uuid.UUID) -> dict[str, Any]:
        """A share: as it reached you (its recipients), and how far it got (its sender, their
        managers, admins)

        The app opens the `share_id` a push carried here. A recipient never sees the other
        recipients; a recalled share, or one whose video was deleted, is gone for them (404).
        """
        session, principal = db_session(), current_principal()
        access = policy.load_share_to_read(session, principal, share_id)
        entry = None
        if access.received:
            states = feed.states(session, principal, [access.share.id])
            entries = present_entries(principal, [access.share], states)
            entry = entries[0] if entries else None
        if not access.follows:
            return _present_received(access.share, entry)
        return {**_present_share(access.share), "received": entry}


@shares_blp.route("/shares/<uuid:share_id>/recall")
class ShareRecall(MethodView):
    @shares_blp.response(200, ShareSchema)
    @shares_blp.problems(403, 404)
    def post(self, share_id: uuid.UUID) -> dict[str, Any]:
        """Recall a share (its sender, admins)

        Its recipients lose the video unless another share, their authorship or their role
        still gives it to them; its pushes and chat cards not yet sent are dropped; recipients
        still `queued` end `failed` with `recalled`. The share stays in your record with
        `recalled_at`. Recalling it again returns it unchanged. Managers who follow the share
        may not recall it (403).
        """
        return _present_share(shares.recall_share(db_session(), current_principal(), share_id))


@shares_blp.route("/shares/<uuid:share_id>/recipients")
class ShareRecipients(MethodView):
    @shares_blp.arguments(RecipientArgsSchema, location="query")
    @shares_blp.response(200, page_schema(RecipientSchema))
    @shares_blp.problems(404)
    def get(self, args: dict[str, Any], share_id: uuid.UUID) -> dict[str, Any]:
        """Each recipient's state and when they got there"""
        session = db_session()
        share = policy.load_share(session, current_principal(), share_id)
        state = args.pop("state")
        page: Page[ShareRecipient] = paginate(
            session,
            tracking.recipients(share, state=state),
            order_by=[ShareRecipient.user_id],
            args=args,
        )
        users = accounts.users_by_id(session, share.org_id, [r.user_id for r in page.items])
        return {
            "items": [
                {
                    **attributes(r, RecipientSchema, exclude=("user",)),
                    "user": attributes(users[r.user_id], RecipientUserSchema),
                }
                for r in page.items
                if r.user_id in users
            ],
            "next_cursor": page.next_cursor,
        }


@shares_blp.route("/videos/<uuid:video_id>/playback-started")
class PlaybackStarted(MethodView):
    @shares_blp.response(204)
    @shares_blp.problems(404)
    def post(self, video_id: uuid.UUID) -> None:
        """Tell the sender you started watching: every share of this video to you is `watched`"""
        tracking.playback_started(db_session(), current_principal(), video_id)
