"""Shared with me: the feed of the shares that reached you, newest first."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import marshmallow as ma
from flask.views import MethodView
from sqlalchemy import select

from api.auth import current_principal
from api.extensions import Blueprint, Schema
from api.pagination import Page, paginate
from api.resources.playback import playback_urls
from api.runtime import db_session
from api.sync import SyncPageArgsSchema, begin, envelope, split_delta, sync_page_schema
from fieldcast.accounts import services as accounts
from fieldcast.conversation import questions
from fieldcast.models.sharing import RecipientState, Share
from fieldcast.models.sync import TombstoneKind
from fieldcast.models.videos import Video, VideoKind, VideoStatus
from fieldcast.policy import Principal
from fieldcast.sharing import feed
from fieldcast.sharing.feed import SeenState
from fieldcast.sync.tokens import SyncScope
from fieldcast.videos import services as videos

blp = Blueprint(
    "feed",
    __name__,
    url_prefix="/api/v1/feed",
    description=(
        "Shared with me: one entry per share that reached you (a video shared with you twice "
        "is two entries, each with its sender and message), newest first. Recalled shares and "
        "deleted or archived videos are left out. Supports delta sync (`updated_since`). The "
        "first page may hold a few more entries than `limit`: shares of the last seconds."
    ),
)


class ShareSenderSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    handle = ma.fields.String(dump_only=True)
    display_name = ma.fields.String(dump_only=True)


class VideoSummarySchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    title = ma.fields.String(dump_only=True)
    status = ma.fields.Enum(VideoStatus, by_value=True, dump_only=True)
    kind = ma.fields.Enum(VideoKind, by_value=True, dump_only=True)
    question_state = ma.fields.String(
        dump_only=True,
        allow_none=True,
        metadata={"description": "A question's `open` or `answered`; null for other videos"},
    )
    duration_ms = ma.fields.Integer(dump_only=True, allow_none=True)
    poster_url = ma.fields.String(
        dump_only=True,
        allow_none=True,
        metadata={"description": "Signed like the video's playback URLs; null until made"},
    )


class FeedEntrySchema(Schema):
    share_id = ma.fields.UUID(
        dump_only=True, metadata={"description": "The `share_id` the push carried"}
    )
    shared_at = ma.fields.DateTime(dump_only=True)
    sender = ma.fields.Nested(ShareSenderSchema, dump_only=True)
    message = ma.fields.String(dump_only=True)
    my_state = ma.fields.Enum(
        SeenState,
        by_value=True,
        dump_only=True,
        metadata={
            "description": "`unseen` (queued, sent, delivered, or failed) until you open "
            "its push, then `opened`, and `watched` once you start the video"
        },
    )
    state = ma.fields.Enum(
        RecipientState,
        by_value=True,
        dump_only=True,
        metadata={"description": "Your recipient state as the sender sees it"},
    )
    video = ma.fields.Nested(VideoSummarySchema, dump_only=True)


def present_entries(
    principal: Principal, shares: Sequence[Share], states: dict[uuid.UUID, RecipientState]
) -> list[dict[str, Any]]:
    """Feed entries for shares that reached the principal, in a fixed number of queries."""
    session = db_session()
    if not shares:
        return []
    senders = accounts.users_by_id(session, principal.org_id, [s.sender_id for s in shares])
    found = session.scalars(
        select(Video).where(
            Video.org_id == principal.org_id, Video.id.in_({s.video_id for s in shares})
        )
    ).all()
    by_id = {video.id: video for video in found}
    renditions = videos.renditions_of(session, found)
    entries = []
    for share in shares:
        video, sender = by_id.get(share.video_id), senders.get(share.sender_id)
        if video is None or sender is None:
            continue
        state = states.get(share.id, RecipientState.QUEUED)
        entries.append(
            {
                "share_id": share.id,
                "shared_at": share.created_at,
                "sender": sender,
                "message": share.message,
                "my_state": feed.seen(state),
                "state": state,
                "video": {
                    "id": video.id,
                    "title": video.title,
                    "status": video.status,
                    "kind": video.kind,
                    "question_state": questions.state(video),
                    "duration_ms": video.duration_ms,
                    "poster_url": playback_urls(video, renditions[video.id])["poster_url"],
                },
            }
        )
    return entries


@blp.route("")
class Feed(MethodView):
    @blp.arguments(SyncPageArgsSchema, location="query")
    @blp.response(200, sync_page_schema(FeedEntrySchema))
    @blp.problems(410, 422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The videos shared with you, newest first

        With `updated_since`: the entries added or changed since (your state, the video's
        title, status or poster) and, in `deleted`, the `share_id`s gone from your feed.
        """
        session, principal = db_session(), current_principal()
        request = begin(args, SyncScope("feed", principal.user_id))
        if request.since is None:
            stmt, position = feed.feed(principal)
        else:
            stmt, position = feed.changes(principal, request.since)
        page: Page[Share] = paginate(
            session,
            stmt,
            order_by=[position],
            args=request.page_args,
            key=lambda share: [share.id],
            descending=True,
        )
        shares = page.items
        if request.since is None and request.first_page:
            # The shares of the last moments, whose recipient rows a worker is making: on the
            # first page, where the newest are (it may then hold a few more than `limit`).
            fresh = [s for s in session.scalars(feed.pending(principal)) if s not in shares]
            shares = sorted([*fresh, *shares], key=lambda share: share.id, reverse=True)
        shares, deleted = split_delta(
            request,
            shares,
            lambda share: share.id,
            lambda ids: feed.in_feed_ids(session, principal, ids),
            TombstoneKind.SHARE,
        )
        states = feed.states(session, principal, [s.id for s in shares])
        return envelope(
            request, present_entries(principal, shares, states), page.next_cursor, deleted
        )
