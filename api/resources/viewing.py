"""Viewing: views of a video, the played segments players report, and progress."""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, Schema
from api.runtime import db_session
from fieldcast.models.viewing import MAX_EVENTS, MAX_SEGMENTS, View, ViewEventKind
from fieldcast.viewing import progress

blp = Blueprint(
    "viewing",
    __name__,
    url_prefix="/api/v1",
    description=(
        "What was actually played. Start a view when playback starts (`session_id` is the "
        "app's own id for the sitting: starting it again, for instance after coming back "
        "online, returns the same view), then report the segments played, the position and "
        "the player's events at most every few seconds, or all at once later. Reports are "
        "merged as a union of segments: sending one twice, or late, never counts twice. "
        "Progress is the union of what you played of the video (over all your views) over "
        "its duration; it is completed at the organisation's threshold."
    ),
)

MAX_MS = 2**31 - 1
_ms = ma.validate.Range(min=0, max=MAX_MS)


class ViewStartSchema(Schema):
    session_id = ma.fields.UUID(
        load_default=None,
        metadata={"description": "The app's id for this sitting; the same id is the same view"},
    )
    start_ms = ma.fields.Integer(
        load_default=None, validate=_ms, metadata={"description": "A clip's start (a view of it)"}
    )
    end_ms = ma.fields.Integer(
        load_default=None, validate=_ms, metadata={"description": "A clip's end"}
    )
    device_started_at = ma.fields.AwareDateTime(
        load_default=None, metadata={"description": "When it started, by the device's clock"}
    )


class ViewSchema(Schema):
    id = ma.fields.UUID()
    video_id = ma.fields.UUID()
    session_id = ma.fields.UUID()
    start_ms = ma.fields.Integer()
    end_ms = ma.fields.Integer()
    played_ms = ma.fields.Integer(metadata={"description": "Of this view, segments merged"})
    position_ms = ma.fields.Integer()
    started_at = ma.fields.DateTime()
    completed_at = ma.fields.DateTime(allow_none=True)


class ViewEventSchema(Schema):
    kind = ma.fields.Enum(ViewEventKind, by_value=True, required=True)
    position_ms = ma.fields.Integer(required=True, validate=_ms)
    device_at = ma.fields.AwareDateTime(load_default=None)


class ViewReportSchema(Schema):
    seq = ma.fields.Integer(
        required=True,
        validate=ma.validate.Range(min=0, max=MAX_MS),
        metadata={"description": "The report's number in its view, counted by the app"},
    )
    segments = ma.fields.List(
        ma.fields.List(ma.fields.Integer(validate=_ms), validate=ma.validate.Length(equal=2)),
        load_default=list,
        validate=ma.validate.Length(max=MAX_SEGMENTS),
        metadata={
            "description": "Played segments, `[start_ms, end_ms]` each (end excluded)",
            "example": [[0, 4000]],
        },
    )
    position_ms = ma.fields.Integer(load_default=None, validate=_ms)
    events = ma.fields.List(
        ma.fields.Nested(ViewEventSchema),
        load_default=list,
        validate=ma.validate.Length(max=MAX_EVENTS),
    )
    device_at = ma.fields.AwareDateTime(
        load_default=None, metadata={"description": "When it was sent, by the device's clock"}
    )


class VideoProgressSchema(Schema):
    video_id = ma.fields.UUID()
    played_ms = ma.fields.Integer(metadata={"description": "The union of what you played"})
    duration_ms = ma.fields.Integer()
    progress = ma.fields.Float(metadata={"description": "played_ms over duration_ms, 0 to 1"})
    completed = ma.fields.Boolean()
    completed_at = ma.fields.DateTime(allow_none=True)


class ViewProgressSchema(Schema):
    played_ms = ma.fields.Integer(metadata={"description": "What this view played of its range"})
    duration_ms = ma.fields.Integer(metadata={"description": "Its range: the clip's, or the video"})
    progress = ma.fields.Float()
    completed = ma.fields.Boolean()
    completed_at = ma.fields.DateTime(allow_none=True)


class ReportedSchema(VideoProgressSchema):
    view = ma.fields.Nested(
        ViewProgressSchema,
        metadata={"description": "This view's progress on its range (a clip's, for a clip)"},
    )


def _view(view: View) -> dict[str, Any]:
    return {key: getattr(view, key) for key in ViewSchema().fields}


def _progress(found: progress.Progress) -> dict[str, Any]:
    return {
        "video_id": found.video_id,
        "played_ms": found.played_ms,
        "duration_ms": found.duration_ms,
        "progress": round(found.fraction, 4),
        "completed": found.completed_at is not None,
        "completed_at": found.completed_at,
    }


@blp.route("/videos/<uuid:video_id>/views")
class VideoViews(MethodView):
    @blp.arguments(ViewStartSchema)
    @blp.response(201, ViewSchema)
    @blp.alt_response(200, schema=ViewSchema, description="This session's view, started before")
    @blp.problems(404, 409, 422)
    def post(self, body: dict[str, Any], video_id: uuid.UUID) -> Any:
        """Start a view of a video you may see (or of a clip of it)"""
        view, created = progress.start(db_session(), current_principal(), video_id, **body)
        return _view(view), 201 if created else 200


@blp.route("/views/<uuid:view_id>/reports")
class ViewReports(MethodView):
    @blp.arguments(ViewReportSchema)
    @blp.response(200, ReportedSchema)
    @blp.problems(404, 422)
    def post(self, body: dict[str, Any], view_id: uuid.UUID) -> dict[str, Any]:
        """Report what one of your views played: segments, position, events"""
        session = db_session()
        view = progress.load_view(session, current_principal(), view_id)
        found = progress.report(
            session,
            view,
            seq=body["seq"],
            segments=[(low, high) for low, high in body["segments"]],
            position_ms=body["position_ms"],
            events=[progress.Event(**event) for event in body["events"]],
            device_at=body["device_at"],
        )
        return {**_progress(found.video), "view": _progress(found.view)}


@blp.route("/videos/<uuid:video_id>/progress")
class MyVideoProgress(MethodView):
    @blp.response(200, VideoProgressSchema)
    @blp.problems(404)
    def get(self, video_id: uuid.UUID) -> dict[str, Any]:
        """Your progress on a video"""
        return _progress(progress.progress_of(db_session(), current_principal(), video_id))


class ViewingSettingsSchema(Schema):
    completion_threshold_pct = ma.fields.Integer(
        required=True,
        validate=ma.validate.Range(min=1, max=100),
        metadata={"description": "The share of a video played that counts as completed"},
    )


@blp.route("/viewing/settings")
class ViewingSettings(MethodView):
    @blp.response(200, ViewingSettingsSchema)
    def get(self) -> dict[str, Any]:
        """The organisation's completion threshold"""
        pct = progress.threshold_of(db_session(), current_principal())
        return {"completion_threshold_pct": pct}

    @blp.arguments(ViewingSettingsSchema)
    @blp.response(200, ViewingSettingsSchema)
    @blp.problems(403, 422)
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Set the organisation's completion threshold (admins)"""
        pct = progress.set_threshold(
            db_session(), current_principal(), body["completion_threshold_pct"]
        )
        return {"completion_threshold_pct": pct}
