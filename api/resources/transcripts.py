"""Transcripts: what a video says, as timed segments; read by its viewers, corrected by its
author."""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, Schema
from api.fields import String
from api.runtime import db_session
from fieldcast.models.transcripts import Transcript, TranscriptSegment, TranscriptStatus
from fieldcast.transcripts import services as transcripts
from fieldcast.transcripts.services import SegmentInput, TranscriptView

blp = Blueprint(
    "transcripts",
    __name__,
    url_prefix="/api/v1/videos/<uuid:video_id>/transcript",
    description=(
        "What a video says, as timed segments of a few seconds each. A worker transcribes a "
        "video once it is `ready` (offline, English by default: good enough to find a video by "
        "its words, not a verbatim record); its author (or an admin) may correct or replace the "
        "segments, and the engine never overwrites their words for the same file. A new file "
        "(a re-upload) is transcribed again. The same segments are the video's captions: "
        "`playback.captions_url` (WebVTT) and a subtitles track in `playback.hls_url`."
    ),
)

_MS = ma.validate.Range(min=0, max=2**31 - 1)


class SegmentSchema(Schema):
    start_ms = ma.fields.Integer(required=True, validate=_MS)
    end_ms = ma.fields.Integer(
        required=True, validate=_MS, metadata={"description": "After `start_ms`"}
    )
    text = String(
        required=True,
        min_length=1,
        column=TranscriptSegment.text,
        metadata={"description": "Plain text; line breaks become spaces"},
    )


class TranscriptSchema(Schema):
    video_id = ma.fields.UUID(dump_only=True)
    status = ma.fields.Enum(
        TranscriptStatus,
        by_value=True,
        dump_only=True,
        metadata={
            "description": "`pending` (not transcribed yet: the video is not `ready`, or the "
            "worker has not come to it), `done`, `no_speech` (nothing was said), `skipped` (no "
            "sound track, or transcription is turned off), `failed` (`failure_detail` says why)"
        },
    )
    language = ma.fields.String(
        dump_only=True, allow_none=True, metadata={"description": "The language spoken (`en`)"}
    )
    engine = ma.fields.String(
        dump_only=True,
        allow_none=True,
        metadata={"description": "What made the segments (`pocketsphinx`); null if a person did"},
    )
    failure_detail = ma.fields.String(dump_only=True, allow_none=True)
    edited_at = ma.fields.DateTime(
        dump_only=True,
        allow_none=True,
        metadata={"description": "When a person last replaced the segments"},
    )
    edited_by_id = ma.fields.UUID(dump_only=True, allow_none=True)
    updated_at = ma.fields.DateTime(dump_only=True, allow_none=True)
    segments = ma.fields.List(
        ma.fields.Nested(SegmentSchema),
        dump_only=True,
        metadata={"description": "In timeline order, not overlapping"},
    )


class TranscriptUpdateSchema(Schema):
    segments = ma.fields.List(
        ma.fields.Nested(SegmentSchema),
        required=True,
        validate=ma.validate.Length(max=transcripts.MAX_SEGMENTS),
        metadata={
            "description": "The whole transcript, in timeline order, not overlapping, within "
            f"the video's duration, at most {transcripts.MAX_SEGMENTS} segments. [] clears it."
        },
    )
    language = String(
        column=Transcript.language,
        min_length=2,
        validate=ma.validate.Regexp(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})?$"),
        metadata={"description": "The language spoken (BCP 47, `en`); kept if left out"},
    )


def _present(view: TranscriptView) -> dict[str, Any]:
    return {
        "video_id": view.video_id,
        "status": view.status,
        "language": view.language,
        "engine": None if view.edited_at is not None else view.engine,
        "failure_detail": view.failure_detail,
        "edited_at": view.edited_at,
        "edited_by_id": view.edited_by_id,
        "updated_at": view.updated_at,
        "segments": [
            {"start_ms": s.start_ms, "end_ms": s.end_ms, "text": s.text} for s in view.segments
        ],
    }


@blp.route("")
class TranscriptOfVideo(MethodView):
    @blp.etag
    @blp.response(200, TranscriptSchema)
    @blp.problems(404)
    def get(self, video_id: uuid.UUID) -> dict[str, Any]:
        """Read a video's transcript (whoever sees the video)"""
        return _present(transcripts.get_transcript(db_session(), current_principal(), video_id))

    @blp.arguments(TranscriptUpdateSchema)
    @blp.response(200, TranscriptSchema)
    @blp.problems(403, 404)
    def put(self, body: dict[str, Any], video_id: uuid.UUID) -> dict[str, Any]:
        """Replace a video's transcript (its author, admins)

        Corrects what the engine heard, or writes a transcript it could not make. 422
        `transcript_time_out_of_range` names a segment out of order, overlapping or past the
        video's end; `timeline_unavailable` while the video's duration is not known yet. The
        engine does not overwrite these segments; a new file of the video is transcribed anew.
        """
        segments = [
            SegmentInput(item["start_ms"], item["end_ms"], item["text"])
            for item in body["segments"]
        ]
        view = transcripts.replace_transcript(
            db_session(),
            current_principal(),
            video_id,
            segments,
            language=body.get("language"),
        )
        return _present(view)
