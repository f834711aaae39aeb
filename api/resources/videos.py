"""Videos: create a draft, follow its processing, edit its details."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, PatchSchema, Schema
from api.fields import String
from api.pagination import Page, PageArgsSchema, page_schema, paginate
from api.resources.attachments import AttachmentSchema, present_attachments
from api.resources.deals import MAX_NAME, DealSummarySchema, deal_summary
from api.resources.playback import playback_urls
from api.runtime import context, db_session
from api.schemas import attributes
from api.sync import SyncPageArgsSchema, begin, envelope, split_delta, sync_page_schema
from fieldcast import policy
from fieldcast.attachments.services import attachments_of
from fieldcast.conversation import questions
from fieldcast.deals import deals
from fieldcast.deals.catalogue import MAX_VALUE, Catalogue
from fieldcast.models.deals import Deal
from fieldcast.models.sync import TombstoneKind
from fieldcast.models.videos import Rendition, Video, VideoKind, VideoStatus
from fieldcast.sync.tokens import SyncScope
from fieldcast.transcripts import services as transcripts
from fieldcast.videos import listing
from fieldcast.videos import services as videos
from fieldcast.videos.listing import Scope

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
    keys=String(min_length=1, max_length=MAX_NAME),
    values=ma.fields.Raw(),
    metadata={
        "description": "Deal context, by the organisation's attribute catalogue "
        "(`GET /api/v1/attributes`), e.g. "
        '{"industry": "retail", "stage": "negotiation", "competitors": ["Acme"]}. Stored '
        "normalised: a choice in the catalogue's spelling, a multiple choice as a sorted list, "
        "a number as a number, a date as YYYY-MM-DD. With `deal_id`: the deal's attributes "
        "when the video was recorded, the values given here over them.",
        "example": {"industry": "retail", "competitors": ["Acme"]},
    },
)
DEAL_ID = ma.fields.UUID(
    allow_none=True,
    metadata={
        "description": "The deal the video is about (one you can see): `deal_attributes` "
        "becomes a snapshot of the deal's attributes now, with any given over them"
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
            "as its HEVC copy plays (see `playable_for`): offered once its first seconds are "
            "stored, its media playlist is then an HLS EVENT playlist that grows (served "
            "`no-cache`) until `#EXT-X-ENDLIST`, which players reload as they play. The "
            "variants state CODECS and VIDEO-RANGE, so players pick what they decode. Every "
            "URI inside is signed too."
        },
    )
    mp4_url = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "MP4 for offline viewing (at most 720p). Downloads resume with "
            "`Range` (and `If-Range`) on this same URL until `expires_at`; on S3 it redirects "
            "to a short-lived storage URL: resume from this URL, not the redirected one."
        },
    )
    poster_url = ma.fields.String(allow_none=True)
    storyboard_url = ma.fields.String(
        allow_none=True, metadata={"description": "WebVTT thumbnail track for scrubbing"}
    )
    captions_url = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "The video's captions as WebVTT, from its transcript (see `GET "
            "/api/v1/videos/{id}/transcript`), for players that take a side-loaded text track; "
            "`hls_url`'s master playlist lists the same captions as a subtitles rendition "
            '(`GROUP-ID="subs"`, not shown by default). Null until the video\'s current file '
            "has a transcript with words in it."
        },
    )
    expires_at = ma.fields.Integer(
        metadata={
            "description": "Unix time after which these URLs stop working (the viewer's "
            "playback grant, PLAYBACK_GRANT_TTL_S after the video was read); read the video "
            "again for fresh ones. They stop earlier, within PLAYBACK_REVOCATION_S, with 403 "
            "`playback_revoked` once you may no longer see the video."
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


class QuestionStateSchema(Schema):
    state = ma.fields.String(dump_only=True, metadata={"enum": ["open", "answered"]})
    accepted_comment_id = ma.fields.UUID(dump_only=True, allow_none=True)
    accepted_video_id = ma.fields.UUID(dump_only=True, allow_none=True)
    answered_at = ma.fields.DateTime(dump_only=True, allow_none=True)


class VideoSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    owner_id = ma.fields.UUID(dump_only=True)
    title = String(required=True, min_length=1, column=Video.title)
    description = String(load_default="", column=Video.description)
    deal_attributes = DEAL_ATTRIBUTES
    deal_id = DEAL_ID
    deal = ma.fields.Nested(
        DealSummarySchema,
        dump_only=True,
        allow_none=True,
        metadata={"description": "The deal it is about, now; null when none or not yours to see"},
    )
    kind = ma.fields.Enum(
        VideoKind,
        by_value=True,
        load_default=VideoKind.VIDEO,
        metadata={
            "description": "`question`: asking the peers for advice; they answer with comments "
            "and reply videos, vote answers up, and the asker accepts one"
        },
    )
    needed_by = ma.fields.AwareDateTime(
        load_default=None,
        allow_none=True,
        metadata={"description": "A question: when the asker needs the advice by"},
    )
    answers_video_id = ma.fields.UUID(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "A reply video: the question it answers (one you can see). Its asker "
            "sees it and is told when it plays"
        },
    )
    question = ma.fields.Nested(
        QuestionStateSchema,
        dump_only=True,
        allow_none=True,
        metadata={"description": "A question's state; null for other videos"},
    )
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
    archived_at = ma.fields.DateTime(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "When its author (or an admin) archived it: left out of lists and "
            "feeds, still reachable by its id. Null when not archived."
        },
    )
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class DeletedVideoSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    owner_id = ma.fields.UUID(dump_only=True)
    title = ma.fields.String(dump_only=True)
    status = ma.fields.Enum(VideoStatus, by_value=True, dump_only=True)
    duration_ms = ma.fields.Integer(dump_only=True, allow_none=True)
    created_at = ma.fields.DateTime(dump_only=True)
    deleted_at = ma.fields.DateTime(dump_only=True, metadata={"description": "When it was deleted"})
    purge_after = ma.fields.DateTime(
        dump_only=True,
        metadata={
            "description": "Until when it can be restored; soon after, its media and its "
            "record are removed for good"
        },
    )


class VideoUpdateSchema(PatchSchema):
    title = String(min_length=1, column=Video.title)
    description = String(column=Video.description)
    deal_attributes = DEAL_ATTRIBUTES
    deal_id = DEAL_ID
    needed_by = ma.fields.AwareDateTime(allow_none=True)


def _present(
    video: Video,
    renditions: Sequence[Rendition] | None = None,
    about: dict[uuid.UUID, Deal] | None = None,
    captioned: set[uuid.UUID] | None = None,
) -> dict[str, Any]:
    data = attributes(
        video, VideoSchema, exclude={"failure", "playback", "attachments", "question", "deal"}
    )
    if about is None:
        about = deals.readable(db_session(), current_principal(), [video.deal_id])
    deal = about.get(video.deal_id) if video.deal_id else None
    data["deal"] = deal_summary(deal) if deal is not None else None
    state = questions.state(video)
    data["question"] = (
        {
            "state": state,
            "accepted_comment_id": video.accepted_comment_id,
            "accepted_video_id": video.accepted_video_id,
            "answered_at": video.answered_at,
        }
        if state is not None
        else None
    )
    data["failure"] = (
        {"code": video.failure_code, "detail": video.failure_detail}
        if video.status is VideoStatus.FAILED
        else None
    )
    if renditions is None:
        renditions = videos.renditions_of(db_session(), [video])[video.id]
    if captioned is None:
        captioned = transcripts.captioned(db_session(), [video])
    data["playback"] = playback_urls(video, renditions, captioned=video.id in captioned)
    return data


def _present_one(video: Video) -> dict[str, Any]:
    data = _present(video)
    data["attachments"] = present_attachments(attachments_of(db_session(), video))
    return data


class VideoListArgsSchema(SyncPageArgsSchema):
    scope = ma.fields.Enum(
        Scope,
        by_value=True,
        load_default=Scope.ALL_VISIBLE,
        metadata={
            "description": "`mine`: videos you recorded; `shared_with_me`: videos a share "
            "brought you; `all_visible` (default): every video you may see. Archived videos "
            "are never listed (they open by id)."
        },
    )
    status = ma.fields.List(
        ma.fields.Enum(VideoStatus, by_value=True),
        load_default=list,
        validate=ma.validate.Length(max=len(VideoStatus)),
        metadata={"description": "Only videos in one of these statuses (repeat the parameter)"},
    )
    deal = ma.fields.List(
        String(max_length=MAX_NAME + 1 + MAX_VALUE),
        load_default=list,
        validate=ma.validate.Length(max=listing.MAX_DEAL_FILTERS),
        metadata={
            "description": "Deal-attribute equality, `name:value` (e.g. `stage:negotiation`); "
            f"repeat for several, all must hold (at most {listing.MAX_DEAL_FILTERS}). Read by "
            "the catalogue as stored values are: names and choices in any case, numbers as "
            "numbers; a multiple-choice attribute (`competitors:Acme`) matches when its list "
            "holds the value. Matches the videos' snapshots (the deal as it was then).",
            "example": ["stage:negotiation"],
        },
    )
    kind = ma.fields.Enum(
        VideoKind,
        by_value=True,
        load_default=None,
        metadata={"description": "Only videos, or only questions"},
    )
    question_state = String(
        max_length=16,
        load_default=None,
        validate=ma.validate.OneOf(["open", "answered"]),
        metadata={"description": "Only questions still `open`, or `answered` ones"},
    )


@blp.route("")
class Videos(MethodView):
    @blp.etag
    @blp.arguments(VideoListArgsSchema, location="query")
    @blp.response(200, sync_page_schema(VideoSchema))
    @blp.problems(410, 422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List the videos you may see, newest first

        Filtered by `scope`, `status` and `deal`. With `updated_since`: the videos added or
        changed since and, in `deleted`, the ids gone from this listing for you (deleted,
        archived, no longer matching the filters, no longer shared with you).
        """
        session, principal = db_session(), current_principal()
        policy.authorize(principal, "video.list")
        filters = listing.VideoFilters.parse(
            args["scope"],
            args["status"],
            args["deal"],
            args["kind"],
            args["question_state"],
            catalogue=Catalogue.load(session, principal.org_id) if args["deal"] else None,
        )
        request = begin(args, SyncScope("videos", principal.user_id, filters.spelling()))
        if request.since is None:
            stmt = listing.listing(principal, filters)
        else:
            stmt = listing.changes(principal, request.since)
        page: Page[Video] = paginate(
            session, stmt, order_by=[Video.id], args=request.page_args, descending=True
        )
        items, deleted = split_delta(
            request,
            page.items,
            lambda video: video.id,
            lambda ids: listing.matching_ids(session, principal, filters, ids),
            TombstoneKind.VIDEO,
        )
        renditions = videos.renditions_of(session, items)
        about = deals.readable(session, principal, [v.deal_id for v in items])
        captioned = transcripts.captioned(session, items)
        return envelope(
            request,
            [_present(v, renditions[v.id], about, captioned) for v in items],
            page.next_cursor,
            deleted,
        )

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

    @blp.response(204)
    @blp.problems(403, 404)
    def delete(self, video_id: uuid.UUID) -> None:
        """Delete a video (its author, admins)

        It is gone at once for everyone: reads answer 404, lists and feeds leave it out, pushes
        about it not yet sent are dropped, inbox items about it show `video_state: removed`,
        and uploads in progress for it end. Until `purge_after` (`VIDEO_PURGE_GRACE_S` later)
        it is listed in `GET /api/v1/videos/deleted` and can be restored; then its media and
        its record are removed for good. Deleting it again answers 204 and changes nothing.
        """
        videos.delete_video(
            db_session(),
            current_principal(),
            context().storage,
            video_id,
            grace=timedelta(seconds=context().settings.video_purge_grace_s),
        )


@blp.route("/deleted")
class DeletedVideos(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_schema(DeletedVideoSchema))
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Deleted videos you can still restore (yours; all of the organisation's for admins),
        newest first"""
        page: Page[Video] = paginate(
            db_session(),
            videos.deleted_videos(current_principal()),
            order_by=[Video.id],
            args=args,
            descending=True,
        )
        return {
            "items": [attributes(v, DeletedVideoSchema) for v in page.items],
            "next_cursor": page.next_cursor,
        }


@blp.route("/<uuid:video_id>/restore")
class VideoRestore(MethodView):
    @blp.response(200, VideoSchema)
    @blp.problems(403, 404)
    def post(self, video_id: uuid.UUID) -> dict[str, Any]:
        """Restore a deleted video before its purge (its author, admins)

        Everyone who could see it sees it again, and its inbox items show it available. 404
        once it is purged. Restoring a video that is not deleted returns it unchanged.
        """
        return _present_one(videos.restore_video(db_session(), current_principal(), video_id))


@blp.route("/<uuid:video_id>/archive")
class VideoArchive(MethodView):
    @blp.response(200, VideoSchema)
    @blp.problems(403, 404)
    def post(self, video_id: uuid.UUID) -> dict[str, Any]:
        """Archive a video (its author, admins): left out of lists and feeds, still reachable
        by its id for whoever may see it. Again is harmless."""
        return _present_one(videos.archive_video(db_session(), current_principal(), video_id))


@blp.route("/<uuid:video_id>/unarchive")
class VideoUnarchive(MethodView):
    @blp.response(200, VideoSchema)
    @blp.problems(403, 404)
    def post(self, video_id: uuid.UUID) -> dict[str, Any]:
        """Bring an archived video back into lists and feeds (its author, admins)"""
        return _present_one(
            videos.archive_video(db_session(), current_principal(), video_id, archived=False)
        )
