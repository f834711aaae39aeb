"""The organisation's learning record store (xAPI): its set-up and how delivery goes."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, Schema
from api.fields import String
from api.runtime import db_session
from fieldcast.models.xapi import ActorFormat, LearningRecordStore
from fieldcast.xapi import config

blp = Blueprint(
    "xapi",
    __name__,
    url_prefix="/api/v1/xapi",
    description=(
        "The organisation's learning record store (LRS). Once one is set up and on, views, "
        "what people played, paused and seeked, their progress steps and completions "
        "(xAPI Video Profile), assignments and comments become xAPI statements, sent by "
        "workers in batches to `<endpoint>/statements` with Basic authentication (xAPI "
        "1.0.3); docs/xapi.md lists every statement. With none, or one switched off, nothing "
        "is recorded. Admins only. The secret is a credential: never returned."
    ),
)


class LrsInputSchema(Schema):
    endpoint = String(
        required=True,
        min_length=1,
        column=LearningRecordStore.endpoint,
        metadata={
            "description": "The LRS's xAPI base URL (statements go to `<endpoint>/statements`)",
            "example": "https://lrs.example.com/xAPI",
        },
    )
    key = String(
        required=True,
        min_length=1,
        column=LearningRecordStore.key,
        metadata={"description": "The Basic authentication user (the LRS's key)"},
    )
    secret = String(
        load_only=True,
        load_default=None,
        min_length=1,
        column=LearningRecordStore.secret,
        metadata={
            "description": "The Basic authentication password; required to set up, left out "
            "to keep the stored one. Never returned."
        },
    )
    enabled = ma.fields.Boolean(
        load_default=True,
        metadata={"description": "Off: nothing more is recorded, and nothing is sent"},
    )
    actor_format = ma.fields.Enum(
        ActorFormat,
        by_value=True,
        load_default=ActorFormat.ACCOUNT,
        metadata={
            "description": "How people are named: `account` (their id in the product under "
            "`account_home_page`; no email leaves) or `mbox_sha1sum` (SHA-1 of their mailbox)"
        },
    )
    account_home_page = String(
        load_default=None,
        allow_none=True,
        column=LearningRecordStore.account_home_page,
        metadata={"description": "The `homePage` of people's accounts; PUBLIC_BASE_URL if none"},
    )


class LrsSchema(Schema):
    configured = ma.fields.Boolean(metadata={"description": "Whether an LRS is set up"})
    endpoint = ma.fields.String(allow_none=True)
    key = ma.fields.String(allow_none=True)
    enabled = ma.fields.Boolean()
    actor_format = ma.fields.Enum(ActorFormat, by_value=True, allow_none=True)
    account_home_page = ma.fields.String(allow_none=True)
    backlog = ma.fields.Integer(metadata={"description": "Statements recorded, not yet sent"})
    oldest_waiting_at = ma.fields.DateTime(
        allow_none=True, metadata={"description": "When the oldest of them was recorded"}
    )
    set_aside = ma.fields.Integer(
        metadata={"description": "Statements the LRS refused one by one (not sent again)"}
    )
    delivered = ma.fields.Integer(metadata={"description": "Statements delivered so far"})
    failures = ma.fields.Integer(metadata={"description": "Delivery failures in a row"})
    next_attempt_at = ma.fields.DateTime(
        allow_none=True, metadata={"description": "After failures: when delivery tries again"}
    )
    last_error = ma.fields.String(allow_none=True)
    last_error_at = ma.fields.DateTime(allow_none=True)
    last_delivered_at = ma.fields.DateTime(allow_none=True)


def present(found: config.Status) -> dict[str, Any]:
    store = found.store
    body: dict[str, Any] = {
        "configured": store is not None,
        "backlog": found.backlog,
        "oldest_waiting_at": found.oldest_waiting_at,
        "set_aside": found.set_aside,
        "enabled": bool(store and store.enabled),
        "delivered": store.delivered if store else 0,
        "failures": store.failures if store else 0,
    }
    for name in (
        "endpoint",
        "key",
        "actor_format",
        "account_home_page",
        "next_attempt_at",
        "last_error",
        "last_error_at",
        "last_delivered_at",
    ):
        body[name] = getattr(store, name) if store else None
    return body


@blp.route("/lrs")
class Lrs(MethodView):
    @blp.response(200, LrsSchema)
    @blp.problems(403)
    def get(self) -> dict[str, Any]:
        """The organisation's LRS and how delivery goes: backlog, failures, last error (admins)"""
        return present(config.status(db_session(), current_principal()))

    @blp.arguments(LrsInputSchema)
    @blp.response(200, LrsSchema)
    @blp.problems(403, 422)
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Set up, change, or switch off (`enabled: false`) the organisation's LRS (admins)

        Statements are recorded from now on (nothing that happened before is sent). A change
        clears the delivery's backoff: the next round, within seconds, tries at once."""
        session, principal = db_session(), current_principal()
        config.configure(session, principal, **body)
        return present(config.status(session, principal))

    @blp.response(204)
    @blp.problems(403)
    def delete(self) -> None:
        """Remove the organisation's LRS and the statements waiting for it (admins)"""
        config.remove(db_session(), current_principal())
