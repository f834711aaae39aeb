"""Viewing: views of a video, the played segments players report, and progress."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

import marshmallow as ma
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, Schema
from api.problems import ProblemSchema, problem_body
from api.runtime import context, db_session
from fieldcast.models.viewing import (
    MAX_EVENTS,
    MAX_SEGMENTS,
    MAX_VIEW_EVENTS,
    MAX_VIEWS_PER_DAY,
    View,
    ViewEventKind,
)
from fieldcast.ratelimit import RateLimiter, Window
from fieldcast.viewing import progress

# The most reports one batch carries.
MAX_BATCH = 100

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
        "its duration; it is completed at the organisation's threshold.\n\n"
        "Offline, keep the reports (with the device's `device_at`) and send them when back "
        f"online, up to {MAX_BATCH} at once, to `POST /views/reports`: a view the server has "
        "not seen yet is named by its `session_id` and `video_id` and started from its first "
        "report; each report is answered on its own, so one that fails loses none of the "
        "others.\n\n"
        "Limits: at most VIEW_REPORTS_PER_MINUTE reports a minute per person (600 unless the "
        "operator sets another; each report of a batch counts), past it 429 with "
        f"`Retry-After` and nothing stored; {MAX_SEGMENTS} segments and {MAX_EVENTS} events a "
        f"report; {MAX_VIEW_EVENTS} events kept a view (later events are dropped, their "
        f"segments still count); {MAX_VIEWS_PER_DAY} views of one video started a day per "
        "person (429; a session started again is the same view and does not count)."
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
    device_started_at = ma.fields.DateTime(
        allow_none=True, metadata={"description": "When it started, by the device's clock"}
    )
    device_last_at = ma.fields.DateTime(
        allow_none=True, metadata={"description": "Its latest report's `device_at`"}
    )
    device_completed_at = ma.fields.DateTime(
        allow_none=True,
        metadata={
            "description": "When it completed by the device's clock: the `device_at` of the "
            "report that reached the threshold (or of its last event)"
        },
    )


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


# What names a view started offline, instead of its `view_id`.
_OFFLINE = ("session_id", "video_id", "start_ms", "end_ms", "device_started_at")
_ONE_VIEW = "view_id, or session_id and video_id (with start_ms, end_ms, device_started_at)"


class ViewReportBatchItemSchema(ViewReportSchema):
    """A report as `POST /views/{view_id}/reports` takes it, naming its view."""

    view_id = ma.fields.UUID(metadata={"description": "The view, as the server started it"})
    session_id = ma.fields.UUID(
        metadata={"description": "Or a view started offline: the app's id for the sitting"}
    )
    video_id = ma.fields.UUID(metadata={"description": "With `session_id`: the video viewed"})
    start_ms = ma.fields.Integer(
        validate=_ms, metadata={"description": "With `session_id`: a clip's start"}
    )
    end_ms = ma.fields.Integer(
        validate=_ms, metadata={"description": "With `session_id`: a clip's end"}
    )
    device_started_at = ma.fields.AwareDateTime(
        metadata={"description": "With `session_id`: when it started, by the device's clock"}
    )

    # What `names_one_view` enforces, in the OpenAPI document.
    openapi_extra: ClassVar[dict[str, Any]] = {
        "oneOf": [
            {
                "required": ["view_id"],
                "not": {"anyOf": [{"required": [name]} for name in _OFFLINE]},
            },
            {"required": ["session_id", "video_id"], "not": {"required": ["view_id"]}},
        ]
    }

    @ma.validates_schema
    def names_one_view(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "view_id" in data:
            wrong = [name for name in _OFFLINE if name in data]
        elif "session_id" in data and "video_id" in data:
            wrong = []
        else:
            wrong = ["view_id", *(name for name in ("session_id", "video_id") if name not in data)]
        if wrong:
            raise ma.ValidationError({name: [_ONE_VIEW] for name in wrong})


class ViewReportBatchSchema(Schema):
    # A report the document refuses (a negative number, a segment of three numbers, no view
    # named) refuses the whole body, `errors` naming it by its index, as any body: it is the
    # app's to fix, and nothing else of the request is kept either. What only the server can
    # tell (a view no longer yours to report on, a video not playable, a segment ending before
    # it starts) is answered per report.
    reports = ma.fields.List(
        ma.fields.Nested(ViewReportBatchItemSchema),
        required=True,
        validate=ma.validate.Length(min=1, max=MAX_BATCH),
        metadata={
            "description": f"At most {MAX_BATCH}, in the order they were made; each is "
            "answered in `results`, at its index"
        },
    )


class ViewReportBatchResultSchema(Schema):
    status = ma.fields.Integer(
        metadata={"description": "200 when it was merged; otherwise its problem's `status`"}
    )
    view_id = ma.fields.UUID(
        allow_none=True,
        metadata={
            "description": "The view it was merged into (for a view started offline, the "
            "server's id of it from now on); null when refused before its view was known"
        },
    )
    progress = ma.fields.Nested(
        ReportedSchema,
        allow_none=True,
        metadata={"description": "As a single report answers; null when refused"},
    )
    problem = ma.fields.Nested(
        ProblemSchema,
        allow_none=True,
        metadata={
            "description": "Why it was refused (`code` as a request's problem: `not_found`, "
            "`video_not_playable`, `validation_failed`, `rate_limited`, ...); nothing of it "
            "was kept. Null when merged"
        },
    )


class ViewReportBatchResultsSchema(Schema):
    results = ma.fields.List(
        ma.fields.Nested(ViewReportBatchResultSchema),
        metadata={"description": "One per report, in the order of `reports`"},
    )


def _limit_reports(count: int) -> None:
    """Count `count` reports for the caller: past VIEW_REPORTS_PER_MINUTE, 429 with
    Retry-After, and nothing of the request is kept (send it again then)."""
    limiter = RateLimiter(context().redis)
    window = Window(context().settings.view_reports_per_minute, 60)
    subject = str(current_principal().user_id)
    limiter.take("view_reports", subject, window, count)


def _reported(found: progress.Reported) -> dict[str, Any]:
    return {**_progress(found.video), "view": _progress(found.view)}


def _report_of(item: dict[str, Any]) -> progress.Report:
    sitting = None
    if "session_id" in item:
        sitting = progress.Sitting(
            video_id=item["video_id"],
            session_id=item["session_id"],
            start_ms=item.get("start_ms"),
            end_ms=item.get("end_ms"),
            device_started_at=item.get("device_started_at"),
        )
    return progress.Report(
        seq=item["seq"],
        segments=[(low, high) for low, high in item["segments"]],
        position_ms=item["position_ms"],
        events=[progress.Event(**event) for event in item["events"]],
        device_at=item["device_at"],
        view_id=item.get("view_id"),
        sitting=sitting,
    )


def _outcome(outcome: progress.Outcome) -> dict[str, Any]:
    if outcome.error is not None:
        error = outcome.error
        problem = problem_body(
            error.status, error.code, title=error.title, detail=error.detail, errors=error.errors
        )
        return {
            "status": error.status,
            "view_id": outcome.view_id,
            "progress": None,
            "problem": problem,
        }
    assert outcome.reported is not None
    return {
        "status": 200,
        "view_id": outcome.view_id,
        "progress": _reported(outcome.reported),
        "problem": None,
    }


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
    @blp.problems(404, 409, 422, 429)
    def post(self, body: dict[str, Any], video_id: uuid.UUID) -> Any:
        """Start a view of a video you may see (or of a clip of it)"""
        view, created = progress.start(db_session(), current_principal(), video_id, **body)
        return _view(view), 201 if created else 200


@blp.route("/views/<uuid:view_id>/reports")
class ViewReports(MethodView):
    @blp.arguments(ViewReportSchema)
    @blp.response(200, ReportedSchema)
    @blp.problems(404, 422, 429)
    def post(self, body: dict[str, Any], view_id: uuid.UUID) -> dict[str, Any]:
        """Report what one of your views played: segments, position, events"""
        _limit_reports(1)
        found = progress.report_view(
            db_session(), current_principal(), _report_of({**body, "view_id": view_id})
        )
        return _reported(found)


@blp.route("/views/reports")
class ViewReportBatches(MethodView):
    @blp.arguments(ViewReportBatchSchema)
    @blp.response(200, ViewReportBatchResultsSchema)
    @blp.problems(422, 429)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Report many views' plays at once (offline viewing): each report answered alone"""
        _limit_reports(len(body["reports"]))
        outcomes = progress.report_batch(
            db_session(), current_principal(), [_report_of(item) for item in body["reports"]]
        )
        return {"results": [_outcome(outcome) for outcome in outcomes]}


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
        """Set the organisation's completion threshold (admins)

        Progress already completed stays completed; assignments without a threshold of their
        own have their people counted again by a worker about 30 seconds later."""
        pct = progress.set_threshold(
            db_session(), current_principal(), body["completion_threshold_pct"]
        )
        return {"completion_threshold_pct": pct}
