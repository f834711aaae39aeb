"""The organisation's storage against its quota, and its retention policy (admins)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, Schema
from api.runtime import context, db_session
from fieldcast.retention import services as retention

blp = Blueprint(
    "organisation",
    __name__,
    url_prefix="/api/v1/organisation",
    description=(
        "What the organisation stores against its quota (set by the operator), and how long "
        "it keeps videos, deleted videos and views (admins)."
    ),
)


def _days(minimum: int, description: str) -> ma.fields.Integer:
    return ma.fields.Integer(
        required=True,
        allow_none=True,
        validate=ma.validate.Range(min=minimum, max=retention.MAX_DAYS),
        metadata={"description": description},
    )


class RetentionSchema(Schema):
    video_retention_days = _days(
        1,
        "Videos are deleted this long after they were made, unless a standing assignment or "
        "a published collection holds them; null keeps them",
    )
    view_retention_days = _days(
        1,
        "Views (who played what, when) are deleted this long after they started; each "
        "person's progress stays. Null keeps them",
    )
    deleted_retention_days = _days(
        0,
        "A deleted video is purged this long after its deletion; null: the deployment's "
        "VIDEO_PURGE_GRACE_S",
    )


class StorageSchema(Schema):
    quota_bytes = ma.fields.Integer(allow_none=True, metadata={"description": "Null: no limit"})
    used_bytes = ma.fields.Integer()
    sources_bytes = ma.fields.Integer()
    renditions_bytes = ma.fields.Integer()
    attachments_bytes = ma.fields.Integer()
    uploading_bytes = ma.fields.Integer(
        metadata={"description": "Reserved by uploads in progress (their declared length)"}
    )


class PolicySchema(RetentionSchema):
    deleted_grace_days_default = ma.fields.Float(dump_only=True)


class PurgeScheduleSchema(Schema):
    due = ma.fields.Integer(metadata={"description": "Past keeping now: the next run takes them"})
    within_lookahead = ma.fields.Integer()
    next_at = ma.fields.DateTime(allow_none=True)


class UpcomingSchema(Schema):
    lookahead_days = ma.fields.Integer()
    deleted_videos_purged = ma.fields.Nested(PurgeScheduleSchema)
    videos_deleted = ma.fields.Nested(PurgeScheduleSchema, allow_none=True)
    views_deleted = ma.fields.Nested(PurgeScheduleSchema, allow_none=True)


class OverviewSchema(Schema):
    storage = ma.fields.Nested(StorageSchema)
    policy = ma.fields.Nested(PolicySchema)
    upcoming = ma.fields.Nested(
        UpcomingSchema,
        metadata={"description": "What will be deleted or purged within the lookahead"},
    )


def _overview() -> dict[str, Any]:
    grace = timedelta(seconds=context().settings.video_purge_grace_s)
    return retention.overview(db_session(), current_principal(), grace)


@blp.route("/storage")
class Storage(MethodView):
    @blp.response(200, OverviewSchema)
    @blp.problems(403)
    def get(self) -> dict[str, Any]:
        """The organisation's storage, quota and retention, and what goes when (admins)

        Uploads and attachments that would take the organisation past its quota are refused
        with 413 `storage_quota_exceeded` before any byte is stored.
        """
        return _overview()


@blp.route("/retention")
class Retention(MethodView):
    @blp.arguments(RetentionSchema)
    @blp.response(200, OverviewSchema)
    @blp.problems(403, 422)
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Set the organisation's retention policy (admins)

        Answers the overview with what the new policy will delete and when: a policy that
        makes videos due now deletes them at the next hourly run, not at once.
        """
        retention.set_policy(db_session(), current_principal(), retention.Policy(**body))
        return _overview()
