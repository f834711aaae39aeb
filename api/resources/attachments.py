"""Attachments of a video: slides and documents, links and text notes."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, TypeVar, cast

import marshmallow as ma
from flask import request
from flask.views import MethodView
from flask_smorest.fields import Upload
from werkzeug.datastructures import CombinedMultiDict, FileStorage
from werkzeug.exceptions import RequestEntityTooLarge

from api.auth import current_principal
from api.extensions import ArgumentsParser, Blueprint, Schema
from api.fields import String
from api.resources.playback import sign_media_key
from api.runtime import context, db_session
from api.schemas import attributes
from fieldcast.attachments import services as attachments
from fieldcast.models.attachments import Attachment, AttachmentKind, TextStatus

F = TypeVar("F", bound=Callable[..., Any])

# Room for the multipart envelope (boundaries, part headers, the title) around the file.
MULTIPART_OVERHEAD = 64 * 1024


class _MultipartParser(ArgumentsParser):
    """Loads the form fields of a multipart body along with its files, so that one schema
    describes (and documents, as one requestBody) the whole upload."""

    def load_files(self, req: Any, schema: ma.Schema) -> Any:
        return self._makeproxy(CombinedMultiDict([req.files, req.form]), schema)


class _AttachmentsBlueprint(Blueprint):
    ARGUMENTS_PARSER = _MultipartParser()


blp = _AttachmentsBlueprint(
    "attachments",
    __name__,
    url_prefix="/api/v1/videos/<uuid:video_id>/attachments",
    description=(
        "Slides, documents, links and text notes that go with a video. Everyone who may see "
        "the video sees them; only its author adds or removes them (at most "
        f"{attachments.MAX_ATTACHMENTS_PER_VIDEO} per video). Files are downloaded through "
        "`download_url`, a signed URL that expires after a few minutes: read the list again for "
        "a fresh one."
    ),
)


class AttachmentSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    video_id = ma.fields.UUID(dump_only=True)
    kind = ma.fields.Enum(AttachmentKind, by_value=True, dump_only=True)
    title = ma.fields.String(dump_only=True)
    url = ma.fields.String(dump_only=True, allow_none=True, metadata={"description": "Links"})
    body = ma.fields.String(dump_only=True, allow_none=True, metadata={"description": "Notes"})
    filename = ma.fields.String(dump_only=True, allow_none=True, metadata={"description": "Files"})
    content_type = ma.fields.String(dump_only=True, allow_none=True)
    size_bytes = ma.fields.Integer(dump_only=True, allow_none=True)
    download_url = ma.fields.String(
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "Files: a short-lived signed URL that downloads the file under its "
            "name (HTTP Range requests work)"
        },
    )
    text_status = ma.fields.Enum(
        TextStatus,
        by_value=True,
        dump_only=True,
        allow_none=True,
        metadata={
            "description": "Files: where reading the document's text for search stands: "
            "`pending`, `done`, `failed` (see `text_failure_detail`), `unsupported` (a kind "
            "whose text is not read, such as an image); null for links and notes"
        },
    )
    text_failure_detail = ma.fields.String(
        dump_only=True,
        allow_none=True,
        metadata={"description": "Why the text could not be read (password-protected, damaged)"},
    )
    created_by_id = ma.fields.UUID(dump_only=True)
    created_at = ma.fields.DateTime(dump_only=True)


class AttachmentListSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(AttachmentSchema), dump_only=True)


class AttachmentCreateSchema(Schema):
    kind = String(
        required=True,
        max_length=4,
        validate=ma.validate.OneOf(
            ["link", "note"], error="Must be `link` or `note`; send files to …/attachments/files."
        ),
    )
    title = String(
        min_length=1,
        column=Attachment.title,
        metadata={"description": "Defaults to the link's host or the note's first line"},
    )
    url = String(
        min_length=1,
        column=Attachment.url,
        metadata={"description": "For `link`: an http(s) URL", "example": "https://example.com"},
    )
    body = String(
        min_length=1,
        column=Attachment.body,
        metadata={"description": "For `note`: the text"},
    )

    # What `content_matches_kind` enforces, in the OpenAPI document.
    openapi_extra: ClassVar[dict[str, Any]] = {
        "oneOf": [
            {
                "properties": {"kind": {"enum": ["link"]}},
                "required": ["url"],
                "not": {"required": ["body"]},
            },
            {
                "properties": {"kind": {"enum": ["note"]}},
                "required": ["body"],
                "not": {"required": ["url"]},
            },
        ]
    }

    @ma.validates_schema
    def content_matches_kind(self, data: dict[str, Any], **kwargs: Any) -> None:
        needed, other = ("url", "body") if data.get("kind") == "link" else ("body", "url")
        if "kind" not in data:
            return
        errors: dict[str, list[str]] = {}
        if needed not in data:
            errors[needed] = [f"Required for a {data['kind']}."]
        if other in data:
            errors[other] = [f"Not part of a {data['kind']}."]
        if errors:
            raise ma.ValidationError(errors)


class _File(Upload):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, FileStorage):
            raise ma.ValidationError("Send the file as a file part.")
        return value


class AttachmentFileSchema(Schema):
    file = _File(
        required=True,
        metadata={
            "description": "The file: pdf, ppt(x), key, doc(x), xls(x), numbers, pages, txt, csv, "
            "md, png, jpg, gif, webp or heic. Its name is kept for downloads."
        },
    )
    title = String(
        min_length=1,
        column=Attachment.title,
        metadata={"description": "Defaults to the file's name"},
    )


def present_attachments(items: Iterable[Attachment]) -> list[dict[str, Any]]:
    """Attachments as `AttachmentSchema` names them, with fresh download URLs for files.

    Not yet serialised: nest `AttachmentSchema` in the response schema to dump them.
    """
    ttl = context().settings.playback_url_ttl_s
    presented = []
    for item in items:
        data = attributes(item, AttachmentSchema, exclude={"download_url"})
        data["download_url"] = (
            sign_media_key(item.storage_key, ttl=ttl, download_name=item.filename)
            if item.kind is AttachmentKind.FILE and item.storage_key
            else None
        )
        presented.append(data)
    return presented


def _accepts_attachment_body(func: F) -> F:
    """Raise the request size limit for this view, before anything reads the body."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        max_bytes = context().settings.limits.max_attachment_bytes
        request.max_content_length = max_bytes + MULTIPART_OVERHEAD
        try:
            return func(*args, **kwargs)
        except RequestEntityTooLarge:
            raise attachments.AttachmentTooLarge(
                f"Attachments are at most {max_bytes} bytes."
            ) from None

    return cast(F, wrapper)


@blp.route("")
class Attachments(MethodView):
    @blp.etag
    @blp.response(200, AttachmentListSchema)
    @blp.problems(404)
    def get(self, video_id: uuid.UUID) -> dict[str, Any]:
        """List a video's attachments, oldest first"""
        found = attachments.list_attachments(db_session(), current_principal(), video_id)
        return {"items": present_attachments(found)}

    @blp.arguments(AttachmentCreateSchema)
    @blp.response(201, AttachmentSchema)
    @blp.problems(403, 404)
    def post(self, body: dict[str, Any], video_id: uuid.UUID) -> dict[str, Any]:
        """Attach a link or a text note (the video's author)

        `{"kind": "link", "url": ...}` or `{"kind": "note", "body": ...}`, with an optional
        `title`. Files go to `POST …/attachments/files`.
        """
        session, principal = db_session(), current_principal()
        if body["kind"] == "link":
            attachment = attachments.add_link(
                session, principal, video_id, url=body["url"], title=body.get("title")
            )
        else:
            attachment = attachments.add_note(
                session, principal, video_id, body=body["body"], title=body.get("title")
            )
        return present_attachments([attachment])[0]


@blp.route("/files")
class AttachmentFiles(MethodView):
    @_accepts_attachment_body
    @blp.arguments(AttachmentFileSchema, location="files", unknown=ma.RAISE)
    @blp.response(201, AttachmentSchema)
    @blp.problems(403, 404, 413)
    def post(self, form: dict[str, Any], video_id: uuid.UUID) -> dict[str, Any]:
        """Attach a file (the video's author)

        Send `multipart/form-data` with the file in the part `file` and an optional `title`.
        The type is checked by extension and content; the size limit is MAX_ATTACHMENT_BYTES
        (413 `attachment_too_large`).
        """
        upload: FileStorage = form["file"]
        attachment = attachments.add_file(
            db_session(),
            current_principal(),
            context().storage,
            video_id,
            stream=upload.stream,
            filename=upload.filename,
            content_type=upload.content_type,
            max_bytes=context().settings.limits.max_attachment_bytes,
            title=form.get("title"),
        )
        return present_attachments([attachment])[0]


@blp.route("/<uuid:attachment_id>")
class AttachmentById(MethodView):
    @blp.response(204)
    @blp.problems(403, 404)
    def delete(self, video_id: uuid.UUID, attachment_id: uuid.UUID) -> None:
        """Remove an attachment (the video's author); a file is deleted from storage too"""
        attachments.delete_attachment(
            db_session(), current_principal(), context().storage, video_id, attachment_id
        )
