"""Videos: create a draft, follow its processing, edit its details."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, PatchSchema, Schema
from api.fields import String
from api.pagination import Page, PageArgsSchema, page_schema, paginate
from api.resources.attachments import AttachmentSchema, present_attachments
from api.resources.playback import playback_urls
from api.runtime import db_session
from api.schemas import attributes
from fieldcast import policy
from fieldcast.attachments.services import attachments_of
from fieldcast.models.videos import Rendition, Video, VideoStatus
from fieldcast.videos import services as videos

blp = Blueprint(
    "videos",
    __name__,
    url_prefix="/api/v1/videos",
    description=(
        "A video starts as a draft (`awaiting_upload`), receives its file through an upload, "
        "becomes `playable` seconds after the last byte and `ready` when every rendition is made."
    ),
)

DEAL_ATTRIBUTES = ma.fields.Dict(
    keys=String(min_length=1, max_length=videos.MAX_ATTRIBUTE_NAME),
    values=ma.fields.Raw(),
    metadata={
        "description": 'Deal context, e.g. {"industry": "retail", "stage": "negotiation"}',
        "example": {"industry": "retail", "competitor": "Acme"},
    },
)


class FailureSchema(Schema):
    code = ma.fields.String(
        metadata={
            "description": (
                "Stable reason: `empty_file`, `not_a_video`, `audio_only`, `truncated`, "
                "`too_long`, `too_big`, `frame_too_large`, `frame_too_small`, "
                "`frame_rate_too_high` (too many pixels a second), `unprocessable`, "
                "`processing_timeout`, `processing_failed`"
            )
        }
    )
    detail = ma.fields.String(metadata={"description": "A sentence for the author"})


class RenditionSchema(Schema):
    name = ma.fields.String(
        metadata={
            "description": "`hevc` (an HEVC source's own stream), `first` (the first H.264 "
            "rendition), a ladder rung (`360p`..`1080p`), `mp4` or `source_mp4`",
            "example": "hevc",
        }
    )
    kind = ma.fields.String(
        metadata={"description": "`hls` (a variant of `hls_url`) or `mp4` (`mp4_url`)"}
    )
    codec = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "RFC 6381 codecs, video then audio, as in the HLS CODECS attribute",
            "example": "hvc1.2.4.L123.B0,mp4a.40.2",
        },
    )
    width = ma.fields.Integer(allow_none=True)
    height = ma.fields.Integer(allow_none=True)
    bitrate_kbps = ma.fields.Integer(allow_none=True, metadata={"description": "Average"})
    hdr = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "`hlg` or `pq` for an HDR rendition (an HEVC copy of an HDR "
            "recording); null for SDR (every H.264 rendition is SDR, HDR tone-mapped)"
        },
    )


class PlaybackSchema(Schema):
    hls_url = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "HLS master playlist: the full ladder once `ready`, the first "
            "rendition while `playable`. For an HEVC source, also while `processing` as soon "
            "as its HEVC copy plays (see `playable_for`); its variants state CODECS and "
            "VIDEO-RANGE, so players pick what they decode. Every URI inside is signed too."
        },
    )
    mp4_url = ma.fields.String(
        allow_none=True, metadata={"description": "MP4 for offline viewing (at most 720p)"}
    )
    poster_url = ma.fields.String(allow_none=True)
    storyboard_url = ma.fields.String(
        allow_none=True, metadata={"description": "WebVTT thumbnail track for scrubbing"}
    )
    expires_at = ma.fields.Integer(
        metadata={
            "description": "Unix time after which these URLs stop working; read the video "
            "again for fresh ones"
        }
    )
    playable_for = ma.fields.List(
        ma.fields.String(),
        metadata={
            "description": "Codecs of which a client must decode one to play `hls_url` now: "
            '`hevc`, `h264`. `["hevc"]` while a video from an HEVC source is `processing` '
            "and only its HEVC copy plays; `status` becomes `playable` (and peers are told) "
            "once an H.264 rendition plays for every client. Empty when nothing plays.",
            "example": ["h264", "hevc"],
        },
    )
    renditions = ma.fields.List(
        ma.fields.Nested(RenditionSchema),
        metadata={"description": "The renditions `hls_url` and `mp4_url` offer now"},
    )


class VideoSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    owner_id = ma.fields.UUID(dump_only=True)
    title = String(required=True, min_length=1, column=Video.title)
    description = String(load_default="", column=Video.description)
    deal_attributes = DEAL_ATTRIBUTES
    status = ma.fields.Enum(VideoStatus, by_value=True, dump_only=True)
    progress = ma.fields.Integer(dump_only=True, metadata={"description": "Processing, 0-100"})
    duration_ms = ma.fields.Integer(dump_only=True, allow_none=True)
    width = ma.fields.Integer(
        dump_only=True, allow_none=True, metadata={"description": "Display width, after rotation"}
    )
    height = ma.fields.Integer(dump_only=True, allow_none=True)
    failure = ma.fields.Nested(FailureSchema, dump_only=True, allow_none=True)
    missing = ma.fields.List(
        ma.fields.String(),
        dump_only=True,
        metadata={
            "description": "Outputs a `ready` video goes without because they could not be "
            "made: `poster`, `storyboard`, `ladder` (it plays in its first rendition only), "
            "`mp4` (no offline MP4 beyond the source's own, if any). Empty when all were made.",
            "example": [],
        },
    )
    playback = ma.fields.Nested(PlaybackSchema, dump_only=True)
    attachments = ma.fields.List(
        ma.fields.Nested(AttachmentSchema),
        dump_only=True,
        metadata={"description": "Slides, documents, links and notes (reading one video only)"},
    )
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class VideoUpdateSchema(PatchSchema):
    title = String(min_length=1, column=Video.title)
    description = String(column=Video.description)
    deal_attributes = DEAL_ATTRIBUTES


def _present(video: Video, renditions: Sequence[Rendition] | None = None) -> dict[str, Any]:
    data = attributes(video, VideoSchema, exclude={"failure", "playback", "attachments"})
    data["failure"] = (
        {"code": video.failure_code, "detail": video.failure_detail}
        if video.status is VideoStatus.FAILED
        else None
    )
    if renditions is None:
        renditions = videos.renditions_of(db_session(), [video])[video.id]
    data["playback"] = playback_urls(video, renditions)
    return data


def _present_one(video: Video) -> dict[str, Any]:
    data = _present(video)
    data["attachments"] = present_attachments(attachments_of(db_session(), video))
    return data


@blp.route("")
class Videos(MethodView):
    @blp.etag
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_schema(VideoSchema))
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List the videos you may see, newest first"""
        principal = current_principal()
        policy.authorize(principal, "video.list")
        page: Page[Video] = paginate(
            db_session(),
            policy.videos.select(principal),
            order_by=[Video.id],
            args=args,
            descending=True,
        )
        renditions = videos.renditions_of(db_session(), page.items)
        return {
            "items": [_present(v, renditions[v.id]) for v in page.items],
            "next_cursor": page.next_cursor,
        }

    @blp.arguments(VideoSchema)
    @blp.response(201, VideoSchema)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a draft video

        The response carries the `id` to name in the upload (`Upload-Metadata: video_id`).
        """
        video = videos.create_video(db_session(), current_principal(), **body)
        return _present_one(video)


@blp.route("/<uuid:video_id>")
class VideoById(MethodView):
    @blp.etag
    @blp.response(200, VideoSchema)
    @blp.problems(404)
    def get(self, video_id: uuid.UUID) -> dict[str, Any]:
        """Read a video: status, progress and playback URLs as they become available"""
        return _present_one(policy.load_video(db_session(), current_principal(), video_id))

    @blp.arguments(VideoUpdateSchema)
    @blp.response(200, VideoSchema)
    @blp.problems(403, 404)
    def patch(self, body: dict[str, Any], video_id: uuid.UUID) -> dict[str, Any]:
        """Edit a video's title, description or deal attributes (its author)"""
        return _present_one(videos.update_video(db_session(), current_principal(), video_id, body))
