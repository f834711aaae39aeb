"""Notification preferences: muted types, quiet hours and muted videos of the signed-in user."""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, Schema
from api.fields import String
from api.runtime import db_session
from fieldcast.inbox import preferences
from fieldcast.inbox.preferences import NOTIFICATION_TYPES, Preferences
from fieldcast.models.inbox import NotificationPreference

blp = Blueprint(
    "preferences",
    __name__,
    url_prefix="/api/v1",
    description=(
        "How you want pushes: notification types you muted, quiet hours, videos you muted. "
        "Preferences only hold pushes back: muted or quiet, the inbox item is still made. "
        "A quiet period defers the push to its end; it is not dropped."
    ),
)

HH_MM = "%H:%M"


class QuietHoursSchema(Schema):
    start = ma.fields.Time(
        format=HH_MM,
        required=True,
        metadata={"description": "Local time, HH:MM, inclusive", "example": "22:00"},
    )
    end = ma.fields.Time(
        format=HH_MM,
        required=True,
        metadata={
            "description": "Local time, HH:MM, exclusive; earlier than start crosses midnight",
            "example": "07:00",
        },
    )


class NotificationPreferencesSchema(Schema):
    muted_types = ma.fields.List(
        String(
            min_length=1,
            column=NotificationPreference.muted_types,
            metadata={"enum": list(NOTIFICATION_TYPES)},
        ),
        required=True,
        validate=ma.validate.Length(max=100),
        metadata={
            "description": (
                "Notification types that send no push (their inbox items are still made). "
                "An unknown type is refused with `unknown_notification_type`."
            )
        },
    )
    quiet_hours = ma.fields.Nested(
        QuietHoursSchema,
        required=True,
        allow_none=True,
        metadata={
            "description": (
                "Local times in `time_zone` when pushes wait: a push due inside the period "
                "goes out when it ends. null for none."
            )
        },
    )
    time_zone = ma.fields.String(
        dump_only=True,
        metadata={
            "description": (
                "Read-only here: the IANA time zone of your profile, which quiet hours are read "
                "in. Change it with `PATCH /api/v1/me`."
            ),
            "example": "Europe/Berlin",
        },
    )


class MutedVideosSchema(Schema):
    video_ids = ma.fields.List(
        ma.fields.UUID(),
        dump_only=True,
        metadata={"description": "Most recently muted first"},
    )


def _dump(prefs: Preferences) -> dict[str, Any]:
    quiet_hours = None
    if prefs.quiet_start is not None and prefs.quiet_end is not None:
        quiet_hours = {"start": prefs.quiet_start, "end": prefs.quiet_end}
    return {
        "muted_types": list(prefs.muted_types),
        "quiet_hours": quiet_hours,
        "time_zone": prefs.time_zone,
    }


@blp.route("/me/notification-preferences")
class NotificationPreferences(MethodView):
    @blp.etag
    @blp.response(200, NotificationPreferencesSchema)
    def get(self) -> dict[str, Any]:
        """Your notification preferences

        Nothing muted and no quiet hours until you set them.
        """
        return _dump(preferences.get_preferences(db_session(), current_principal()))

    @blp.arguments(NotificationPreferencesSchema)
    @blp.response(200, NotificationPreferencesSchema)
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Replace your notification preferences

        Send `muted_types` and `quiet_hours` (null for none). `time_zone` is read-only here;
        change it on your profile (`PATCH /api/v1/me`). Muted or quiet, the inbox item is
        still made; a push due in quiet hours is sent when they end, not dropped.
        """
        quiet_hours = body["quiet_hours"] or {}
        prefs = preferences.set_preferences(
            db_session(),
            current_principal(),
            muted_types=body["muted_types"],
            quiet_start=quiet_hours.get("start"),
            quiet_end=quiet_hours.get("end"),
        )
        return _dump(prefs)


@blp.route("/videos/<uuid:video_id>/mute")
class MuteVideo(MethodView):
    @blp.response(204)
    @blp.problems(404)
    def put(self, video_id: uuid.UUID) -> None:
        """Mute a video: no more pushes about it

        New shares of it and comments on it still reach your inbox. Muting again changes
        nothing.
        """
        preferences.mute_video(db_session(), current_principal(), video_id)

    @blp.response(204)
    @blp.problems(404)
    def delete(self, video_id: uuid.UUID) -> None:
        """Unmute a video: pushes about it again

        Unmuting a video that is not muted changes nothing.
        """
        preferences.unmute_video(db_session(), current_principal(), video_id)


@blp.route("/me/muted-videos")
class MutedVideos(MethodView):
    @blp.etag
    @blp.response(200, MutedVideosSchema)
    def get(self) -> dict[str, Any]:
        """The videos you muted"""
        return {"video_ids": preferences.muted_video_ids(db_session(), current_principal())}
