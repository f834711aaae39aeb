"""Reports of videos and comments, the admins' decisions on them, and the audit log."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

import marshmallow as ma
from flask import Response, stream_with_context
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, Schema
from api.fields import String
from api.pagination import Page, PageArgsSchema, page_schema, paginate
from api.runtime import db_session
from api.schemas import attributes
from fieldcast.audit import AuditAction
from fieldcast.models.conversation import Comment
from fieldcast.models.moderation import AuditEntry, Report, ReportReason, ReportStatus
from fieldcast.models.videos import Video
from fieldcast.moderation import audit_log, reports
from fieldcast.moderation.audit_log import AuditFilters, ExportFormat

reports_blp = Blueprint(
    "reports",
    __name__,
    url_prefix="/api/v1/reports",
    description=(
        "Ask the admins to look at a video or a comment you can see (spam, harassment, "
        "confidential customer data, ...). Admins read the reports, hide the content (its "
        "author is told why, with an inbox item and a `content.hidden` push) or keep it. A "
        "hidden video is seen only by its author and admins; a hidden comment stays in its "
        "thread as a tombstone."
    ),
)
moderation_blp = Blueprint(
    "moderation",
    __name__,
    url_prefix="/api/v1/moderation",
    description="Admins show hidden videos and comments again.",
)
audit_blp = Blueprint(
    "audit_log",
    __name__,
    url_prefix="/api/v1/audit-log",
    description=(
        "What admins changed about people, teams, permissions, integrations and content, "
        "newest first (admins). Entries hold ids, roles and the names of the fields changed; "
        "never a secret (no password, token or webhook URL) nor a person's email or name."
    ),
)


# -- reports --------------------------------------------------------------------------------------


class ReportSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    reporter_id = ma.fields.UUID(dump_only=True)
    video_id = ma.fields.UUID(
        dump_only=True,
        metadata={"description": "The reported video, or the video the reported comment is on"},
    )
    comment_id = ma.fields.UUID(
        dump_only=True,
        allow_none=True,
        metadata={"description": "The reported comment; null when the video itself is"},
    )
    reason = ma.fields.Enum(ReportReason, by_value=True, dump_only=True)
    details = ma.fields.String(dump_only=True)
    status = ma.fields.Enum(
        ReportStatus,
        by_value=True,
        dump_only=True,
        metadata={
            "description": "`open` until an admin decides: `hidden` (the content was hidden) "
            "or `dismissed` (it was kept)"
        },
    )
    created_at = ma.fields.DateTime(dump_only=True)
    resolved_at = ma.fields.DateTime(dump_only=True, allow_none=True)
    resolved_by_id = ma.fields.UUID(dump_only=True, allow_none=True)
    resolution_note = ma.fields.String(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "When hidden, the reason the author was told; when dismissed, "
            "the admin's note, if any"
        },
    )


_ONE_OBJECT = "Name the comment or the video you report: one of them."


class ReportCreateSchema(Schema):
    video_id = ma.fields.UUID(metadata={"description": "Report this video (or `comment_id`)"})
    comment_id = ma.fields.UUID(metadata={"description": "Report this comment (or `video_id`)"})
    reason = ma.fields.Enum(ReportReason, by_value=True, required=True)
    details = String(
        load_default="",
        column=Report.details,
        metadata={"description": "What the admins should know, in your words"},
    )

    # What `names_one_object` enforces, in the OpenAPI document.
    openapi_extra: ClassVar[dict[str, Any]] = {
        "oneOf": [
            {"required": ["video_id"], "not": {"required": ["comment_id"]}},
            {"required": ["comment_id"], "not": {"required": ["video_id"]}},
        ]
    }

    @ma.validates_schema
    def names_one_object(self, data: dict[str, Any], **kwargs: Any) -> None:
        if ("video_id" in data) == ("comment_id" in data):
            raise ma.ValidationError({"video_id": [_ONE_OBJECT], "comment_id": [_ONE_OBJECT]})


class ReportListArgsSchema(PageArgsSchema):
    status = ma.fields.Enum(
        ReportStatus,
        by_value=True,
        load_default=None,
        metadata={"description": "Only the reports in this state (the queue: `open`)"},
    )


class HideSchema(Schema):
    reason = String(
        required=True,
        min_length=1,
        column=Video.hidden_reason,
        metadata={"description": "Why: the author is told these words"},
    )


class DismissSchema(Schema):
    note = String(
        load_default=None,
        allow_none=True,
        column=Report.resolution_note,
        metadata={"description": "Why the content stays, for the other admins"},
    )


@reports_blp.route("")
class Reports(MethodView):
    @reports_blp.arguments(ReportListArgsSchema, location="query")
    @reports_blp.response(200, page_schema(ReportSchema))
    @reports_blp.problems(403)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List reports, newest first (admins)"""
        stmt = reports.listed(current_principal(), status=args.pop("status"))
        page: Page[Report] = paginate(
            db_session(), stmt, order_by=[Report.id], args=args, descending=True
        )
        return {
            "items": [attributes(report, ReportSchema) for report in page.items],
            "next_cursor": page.next_cursor,
        }

    @reports_blp.arguments(ReportCreateSchema)
    @reports_blp.response(201, ReportSchema, description="Reported")
    @reports_blp.alt_response(
        200,
        schema=ReportSchema,
        description="You had reported it already: your open report, unchanged",
        success=True,
    )
    @reports_blp.problems(404)
    def post(self, body: dict[str, Any]) -> Any:
        """Report a video or a comment you can see

        Name exactly one of `video_id` and `comment_id`. Reporting something again while
        your report of it is open answers that report with 200 and adds nothing. Something
        you cannot see is 404, as if it did not exist; your own video or comment is 422
        `cannot_report_own_content` (edit or delete it instead).
        """
        filed = reports.file_report(db_session(), current_principal(), **body)
        return attributes(filed.report, ReportSchema), 201 if filed.created else 200


@reports_blp.route("/<uuid:report_id>")
class ReportById(MethodView):
    @reports_blp.response(200, ReportSchema)
    @reports_blp.problems(403, 404)
    def get(self, report_id: uuid.UUID) -> dict[str, Any]:
        """Read a report (admins)"""
        return attributes(
            reports.get_report(db_session(), current_principal(), report_id), ReportSchema
        )


@reports_blp.route("/<uuid:report_id>/hide")
class ReportHide(MethodView):
    @reports_blp.arguments(HideSchema)
    @reports_blp.response(200, ReportSchema)
    @reports_blp.problems(403, 404)
    def post(self, body: dict[str, Any], report_id: uuid.UUID) -> dict[str, Any]:
        """Hide the reported video or comment (admins)

        Every open report of the same video or comment is closed as `hidden` with this one.
        The author gets an inbox item and a `content.hidden` push whose body is `reason`.
        Hiding again answers the report as it is and tells nobody twice.
        """
        report = reports.hide(db_session(), current_principal(), report_id, reason=body["reason"])
        return attributes(report, ReportSchema)


@reports_blp.route("/<uuid:report_id>/dismiss")
class ReportDismiss(MethodView):
    # The body is optional: without one the report is dismissed with no note.
    @reports_blp.arguments(DismissSchema, required=False)
    @reports_blp.response(200, ReportSchema)
    @reports_blp.problems(403, 404)
    def post(self, body: dict[str, Any], report_id: uuid.UUID) -> dict[str, Any]:
        """Keep the reported content and close this report (admins)

        Other open reports of the same content stay open. Dismissing again answers the
        report as it is; a report the content was hidden on answers 409 `report_resolved`.
        """
        report = reports.dismiss(
            db_session(), current_principal(), report_id, note=body.get("note")
        )
        return attributes(report, ReportSchema)


# -- showing hidden content again -----------------------------------------------------------------


class ModeratedContentSchema(Schema):
    video_id = ma.fields.UUID(dump_only=True)
    comment_id = ma.fields.UUID(dump_only=True, allow_none=True)
    hidden_at = ma.fields.DateTime(
        dump_only=True, allow_none=True, metadata={"description": "Null: everyone sees it"}
    )
    hidden_reason = ma.fields.String(dump_only=True, allow_none=True)


def _moderated(content: Video | Comment) -> dict[str, Any]:
    is_comment = isinstance(content, Comment)
    return {
        "video_id": content.video_id if isinstance(content, Comment) else content.id,
        "comment_id": content.id if is_comment else None,
        "hidden_at": content.hidden_at,
        "hidden_reason": content.hidden_reason,
    }


@moderation_blp.route("/videos/<uuid:video_id>/unhide")
class VideoUnhide(MethodView):
    @moderation_blp.response(200, ModeratedContentSchema)
    @moderation_blp.problems(403, 404)
    def post(self, video_id: uuid.UUID) -> dict[str, Any]:
        """Show a hidden video again (admins)

        Everyone it was shared with sees it again. A video that is not hidden is answered as
        it is. Its reports keep the decision they got.
        """
        return _moderated(reports.unhide_video(db_session(), current_principal(), video_id))


@moderation_blp.route("/comments/<uuid:comment_id>/unhide")
class CommentUnhide(MethodView):
    @moderation_blp.response(200, ModeratedContentSchema)
    @moderation_blp.problems(403, 404)
    def post(self, comment_id: uuid.UUID) -> dict[str, Any]:
        """Show a hidden comment again (admins)

        A comment that is not hidden is answered as it is. Its reports keep the decision
        they got.
        """
        return _moderated(reports.unhide_comment(db_session(), current_principal(), comment_id))


# -- the audit log --------------------------------------------------------------------------------


_ACTIONS = ", ".join(f"`{action.value}`" for action in AuditAction)


class AuditFilterSchema(Schema):
    action = String(
        load_default=None,
        column=AuditEntry.action,
        metadata={"description": f"Only this action: {_ACTIONS} (an open list)"},
    )
    actor_id = ma.fields.UUID(load_default=None, metadata={"description": "Only by this person"})
    object_id = ma.fields.UUID(
        load_default=None, metadata={"description": "Only about this user, team, video, ..."}
    )
    since = ma.fields.AwareDateTime(
        load_default=None, metadata={"description": "From this moment on (included)"}
    )
    until = ma.fields.AwareDateTime(
        load_default=None, metadata={"description": "Before this moment (excluded)"}
    )

    @ma.validates_schema
    def in_order(self, data: dict[str, Any], **kwargs: Any) -> None:
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            raise ma.ValidationError({"until": ["Must not be before `since`."]})


class AuditLogArgsSchema(PageArgsSchema, AuditFilterSchema):
    pass


class AuditExportArgsSchema(AuditFilterSchema):
    format = ma.fields.Enum(
        ExportFormat,
        by_value=True,
        load_default=ExportFormat.CSV,
        metadata={"description": "`csv` (one row per entry, `details` as JSON) or `ndjson`"},
    )


class AuditEntrySchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    actor_id = ma.fields.UUID(
        dump_only=True,
        allow_none=True,
        metadata={"description": "Who did it; null for the system, or a person since erased"},
    )
    action = ma.fields.String(dump_only=True, metadata={"description": f"One of {_ACTIONS}"})
    object_type = ma.fields.String(
        dump_only=True,
        metadata={
            "description": "user, team, api_token, invitation, team_webhook, video, comment, "
            "report, audit_log"
        },
    )
    object_id = ma.fields.UUID(dump_only=True, allow_none=True)
    details = ma.fields.Dict(
        dump_only=True,
        metadata={
            "description": "What changed: ids, roles, states, the names of the fields changed "
            "(`fields`) and, for roles, managers, activation, team names and parents, their "
            "values `changes.<field>.from` / `.to`; `api_token_id` when done through one"
        },
    )
    created_at = ma.fields.DateTime(dump_only=True)


def _filters(args: dict[str, Any]) -> AuditFilters:
    return AuditFilters(
        action=args.pop("action"),
        actor_id=args.pop("actor_id"),
        object_id=args.pop("object_id"),
        since=args.pop("since"),
        until=args.pop("until"),
    )


@audit_blp.route("")
class AuditLog(MethodView):
    @audit_blp.arguments(AuditLogArgsSchema, location="query")
    @audit_blp.response(200, page_schema(AuditEntrySchema))
    @audit_blp.problems(403)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List the audit log, newest first (admins)"""
        stmt = audit_log.entries(current_principal(), _filters(args))
        page: Page[AuditEntry] = paginate(
            db_session(), stmt, order_by=[AuditEntry.id], args=args, descending=True
        )
        return {
            "items": [attributes(entry, AuditEntrySchema) for entry in page.items],
            "next_cursor": page.next_cursor,
        }


_TEXT = {"type": "string"}
_EXPORTED = (
    "The entries, newest first, streamed: CSV (`text/csv`), or NDJSON, one JSON object a line "
    "(`application/x-ndjson`), as `format` asks"
)
_DISPOSITION = {
    "Content-Disposition": {
        "description": '`attachment; filename="audit-log-<UTC time>.<csv|ndjson>"`',
        "schema": _TEXT,
    }
}


@audit_blp.route("/export")
class AuditLogExport(MethodView):
    @audit_blp.arguments(AuditExportArgsSchema, location="query")
    @audit_blp.response(
        200,
        _TEXT,
        content_type="text/csv",
        description=_EXPORTED,
        headers=_DISPOSITION,
    )
    @audit_blp.alt_response(
        200,
        schema=_TEXT,
        content_type="application/x-ndjson",
        description=_EXPORTED,
        headers=_DISPOSITION,
        success=True,
    )
    @audit_blp.problems(403)
    def get(self, args: dict[str, Any]) -> Response:
        """Export the audit log as CSV or NDJSON (admins)

        The same filters as the list. At most 100,000 entries: more matching answers 422
        `export_too_large` (export a shorter time with `since` and `until`). CSV columns:
        id, created_at, actor_id, actor_name (the person's name now), action, object_type,
        object_id, details (JSON); a cell that a spreadsheet would run as a formula starts
        with `'`. The export itself is recorded in the log.
        """
        fmt = args.pop("format")
        export = audit_log.export(db_session(), current_principal(), _filters(args), fmt)
        return Response(
            stream_with_context(export.chunks),
            mimetype=export.media_type,
            headers={
                "Content-Disposition": f'attachment; filename="{export.filename}"',
                "Cache-Control": "no-store",
            },
        )
