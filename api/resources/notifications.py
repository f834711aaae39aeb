"""The inbox: every push has an inbox item; the app lists them and marks them read."""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask import request
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, Schema, public
from api.fields import String
from api.pagination import Page, paginate
from api.runtime import context, db_session
from api.schemas import attributes
from api.sync import DELETED, SYNC_TOKEN, SyncPageArgsSchema, begin, envelope, split_delta
from fieldcast.errors import DomainError
from fieldcast.inbox import services as notifications
from fieldcast.inbox.types import NotificationType
from fieldcast.models.inbox import Notification
from fieldcast.models.sync import TombstoneKind
from fieldcast.ratelimit import RateLimiter, Window
from fieldcast.sync.tokens import SyncScope

# Refused receipt tokens per address: a phone retrying one stale token stays far below it; a
# client guessing tokens is stopped (an office behind one NAT address shares it).
RECEIPT_FAILURES = Window(limit=100, seconds=600)

blp = Blueprint(
    "notifications",
    __name__,
    url_prefix="/api/v1/notifications",
    description="Your inbox, newest first, with the unread count for the app's badge.",
)


class NotificationSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    type = ma.fields.String(
        dump_only=True,
        metadata={
            "description": "What the item is about; known types: "
            + ", ".join(f"`{kind}`" for kind in NotificationType)
            + ". New types will come: show an unknown one from its title and body.",
            "example": NotificationType.VIDEO_PLAYABLE.value,
        },
    )
    title = ma.fields.String(dump_only=True)
    body = ma.fields.String(dump_only=True)
    data = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        dump_only=True,
        metadata={"description": "Ids to deep-link into, e.g. `video_id`"},
    )
    video_state = ma.fields.String(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "For an item about a video: `available` when you may open it, "
            "`removed` when it was deleted (it becomes `available` again if restored) or is no "
            "longer yours to see. Null for an item about no video.",
            "example": "available",
        },
    )
    created_at = ma.fields.DateTime(dump_only=True)
    read_at = ma.fields.DateTime(dump_only=True, allow_none=True)
    delivered_at = ma.fields.DateTime(dump_only=True, allow_none=True)
    opened_at = ma.fields.DateTime(dump_only=True, allow_none=True)


def _present(items: list[Notification]) -> list[dict[str, Any]]:
    states = notifications.video_states(db_session(), current_principal(), items)
    return [
        {
            **attributes(item, NotificationSchema, exclude={"video_state"}),
            "video_state": states[item.id],
        }
        for item in items
    ]


class InboxArgsSchema(SyncPageArgsSchema):
    unread_only = ma.fields.Boolean(load_default=False)


class InboxSchema(Schema):
    items = ma.fields.List(
        ma.fields.Nested(NotificationSchema),
        required=True,
        metadata={"description": "With `updated_since`: the items added or changed"},
    )
    next_cursor = ma.fields.String(allow_none=True, required=True)
    unread_count = ma.fields.Integer(required=True)
    sync_token = SYNC_TOKEN
    deleted = DELETED


class ReadAllSchema(Schema):
    marked = ma.fields.Integer(metadata={"description": "How many items were unread"})
    unread_count = ma.fields.Integer()


@blp.route("")
class Inbox(MethodView):
    @blp.arguments(InboxArgsSchema, location="query")
    @blp.response(200, InboxSchema)
    @blp.problems(410, 422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Your inbox, newest first

        With `updated_since`: the items added or changed since (read, delivered, opened) and,
        in `deleted`, the ids gone from it (deleted, or read when `unread_only`).
        """
        session, principal = db_session(), current_principal()
        unread_only = args.pop("unread_only")
        request = begin(args, SyncScope("inbox", principal.user_id, f"unread_only={unread_only}"))
        if request.since is None:
            stmt = notifications.inbox(principal, unread_only=unread_only)
        else:
            stmt = notifications.inbox_changes(principal, request.since)
        page: Page[Notification] = paginate(
            session, stmt, order_by=[Notification.id], args=request.page_args, descending=True
        )
        items, deleted = split_delta(
            request,
            page.items,
            lambda item: item.id,
            lambda ids: notifications.matching_ids(
                session, principal, ids, unread_only=unread_only
            ),
            TombstoneKind.NOTIFICATION,
        )
        return {
            **envelope(
                request,
                _present(items),
                page.next_cursor,
                deleted,
            ),
            "unread_count": notifications.unread_count(session, principal),
        }


@blp.route("/<uuid:notification_id>/read")
class NotificationRead(MethodView):
    @blp.response(200, NotificationSchema)
    @blp.problems(404)
    def post(self, notification_id: uuid.UUID) -> dict[str, Any]:
        """Mark one item read"""
        item = notifications.mark_read(db_session(), current_principal(), notification_id)
        return _present([item])[0]


@blp.route("/<uuid:notification_id>/delivered")
class NotificationDelivered(MethodView):
    @blp.response(200, NotificationSchema)
    @blp.problems(404)
    def post(self, notification_id: uuid.UUID) -> dict[str, Any]:
        """Receipt: the app received this push (its sender sees `delivered`)"""
        item = notifications.receipt(
            db_session(), current_principal(), notification_id, "delivered"
        )
        return _present([item])[0]


@blp.route("/<uuid:notification_id>/opened")
class NotificationOpened(MethodView):
    @blp.response(200, NotificationSchema)
    @blp.problems(404)
    def post(self, notification_id: uuid.UUID) -> dict[str, Any]:
        """Receipt: the user tapped this push (`opened`; the item is read too)"""
        principal = current_principal()
        item = notifications.receipt(db_session(), principal, notification_id, "opened")
        return _present([item])[0]


@blp.route("/read-all")
class NotificationsReadAll(MethodView):
    @blp.response(200, ReadAllSchema)
    def post(self) -> dict[str, Any]:
        """Mark every item read"""
        session, principal = db_session(), current_principal()
        marked = notifications.mark_all_read(session, principal)
        # Counted, not assumed: an item that arrives after the marking is still unread.
        return {"marked": marked, "unread_count": notifications.unread_count(session, principal)}


receipts_blp = Blueprint(
    "receipts",
    __name__,
    url_prefix="/api/v1/receipts",
    description=(
        "Receipts from a push's own token, for code that has no access token: an iOS "
        "Notification Service Extension, an Android app woken in the background. Every push's "
        "data carries `receipt_token` and `receipt_url` (this route)."
    ),
)


class ReceiptSchema(Schema):
    token = String(
        required=True,
        load_only=True,
        min_length=1,
        max_length=256,
        metadata={"description": "The push's `receipt_token`, as it came in the push's data"},
    )
    receipt = String(
        required=True,
        max_length=16,
        validate=ma.validate.OneOf(["delivered", "opened"]),
        metadata={
            "description": "`delivered`: the push reached the phone; `opened`: the user tapped "
            "it (the inbox item is read too). Sending one again, or `delivered` after "
            "`opened`, changes nothing.",
            "example": "delivered",
        },
    )


@receipts_blp.route("")
class ReceiptByToken(MethodView):
    @public
    @receipts_blp.arguments(ReceiptSchema)
    @receipts_blp.response(204)
    @receipts_blp.problems(403, 404, 410, 429)
    def post(self, body: dict[str, Any]) -> None:
        """Receipt for one push, with its receipt token instead of a bearer token

        The token marks only its own notification, for RECEIPT_TOKEN_TTL_S (7 days by default)
        after the push was sent: 403 `receipt_token_invalid` when it was altered, 410
        `receipt_token_expired` after that (send the receipt with a bearer token to
        /notifications/{id}/delivered or /opened instead). Refused tokens are limited per
        address; past the limit the answer is 429 with `Retry-After`.
        """
        settings = context().settings
        limiter = RateLimiter(context().redis)
        address = request.remote_addr or "unknown"
        limiter.check("receipt-address", address, RECEIPT_FAILURES)
        assert settings.secret_key is not None
        try:
            notifications.receipt_by_token(
                db_session(), settings.secret_key, body["token"], body["receipt"]
            )
        except DomainError:
            limiter.hit("receipt-address", address, RECEIPT_FAILURES)
            raise
