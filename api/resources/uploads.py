"""tus 1.0 resumable uploads (core, creation, creation-defer-length, creation-with-upload,
termination, checksum, expiration), direct-to-S3 multipart uploads, and the upload policy.

A standard tus client works unchanged: create with `POST /api/v1/uploads` (Upload-Length, or
`Upload-Defer-Length: 1` while the phone still exports the file; Upload-Metadata naming
`video_id`), then PATCH chunks to the returned Location; after a broken connection, HEAD gives
the offset to resume from. Errors keep the tus status codes and carry a problem+json body with
a stable `code`.

The Location carries a secret: with it, HEAD, PATCH and DELETE on that upload work without an
access token (a background transfer outlives the token it started with); with a token, the
token's rules apply as well.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import IO, Any

import marshmallow as ma
from flask import Flask, Response, g, request
from flask.views import MethodView
from werkzeug.exceptions import ClientDisconnected

from api.auth import current_principal, token_config
from api.extensions import Blueprint, Schema, public
from api.fields import String, is_storable
from api.problems import PROBLEM_CONTENT_TYPE, ProblemSchema, problem_response
from api.runtime import context, db_session
from fieldcast import links
from fieldcast.accounts.tokens import authenticate
from fieldcast.errors import AuthenticationFailed, ErrorCode
from fieldcast.models.uploads import Upload
from fieldcast.uploads import direct, tus
from fieldcast.uploads import services as uploads
from media import sniff
from media.storage import S3Storage

blp = Blueprint(
    "uploads",
    __name__,
    url_prefix="/api/v1/uploads",
    description=(
        "Resumable uploads with the tus 1.0 protocol (https://tus.io/protocols/resumable-upload)."
        " Extensions: creation, creation-defer-length, creation-with-upload, termination,"
        " checksum (sha1), expiration. `Upload-Metadata` must carry `video_id` (a draft of"
        " yours); `filename` and `filetype` are kept. Use any tus client (tus-js-client,"
        " TUSKit, tus-android-client, tuspy). The upload URL (`Location`) works without an"
        " access token for that upload until it expires: give it to a background transfer"
        " (iOS background URLSession, Android WorkManager). A file whose first bytes show it is"
        " not a video is refused at once (422, the code the video fails with)."
    ),
)
direct_blp = Blueprint(
    "direct_uploads",
    __name__,
    url_prefix="/api/v1/direct-uploads",
    description=(
        "Direct-to-S3 multipart uploads (S3 deployments): the API hands out presigned part URLs "
        "and the phone PUTs the parts to S3, so no video byte passes through the API. "
        "Complete with the ETag of every part; the video is then processed as after a tus upload."
    ),
)

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = (
    "creation,creation-defer-length,creation-with-upload,termination,checksum,expiration"
)
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
TUS_REQUEST_HEADERS = [
    "Tus-Resumable",
    "Upload-Length",
    "Upload-Offset",
    "Upload-Metadata",
    "Upload-Checksum",
    "Upload-Defer-Length",
    "Upload-Concat",
    "X-HTTP-Method-Override",
    "X-Requested-With",
]
TUS_RESPONSE_HEADERS = [
    "Location",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Tus-Checksum-Algorithm",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Defer-Length",
    "Upload-Expires",
    "Upload-Metadata",
]
_COPY_CHUNK = 1024 * 1024

TUS_HEADERS_DOC = {
    "parameters": [
        {
            "name": "Tus-Resumable",
            "in": "header",
            "required": True,
            "schema": {"type": "string", "enum": [TUS_VERSION]},
        }
    ]
}


def _tus_error(status: int, code: ErrorCode, detail: str, **headers: str) -> Response:
    return problem_response(status, code, detail=detail, headers=headers or None)


class _TusProtocolError(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def _http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


_MISSING_HEADER_CODES = {
    "Upload-Length": ErrorCode.UPLOAD_LENGTH_REQUIRED,
    "Upload-Offset": ErrorCode.UPLOAD_OFFSET_REQUIRED,
}


def _int_header(name: str) -> int:
    raw = request.headers.get(name)
    if raw is None:
        raise _TusProtocolError(_tus_error(400, _MISSING_HEADER_CODES[name], f"Send {name}."))
    if not raw.strip().isdigit():
        raise _TusProtocolError(
            _tus_error(400, ErrorCode.INVALID_TUS_HEADER, f"{name} must be a non-negative integer.")
        )
    return int(raw.strip())


def parse_metadata(raw: str | None) -> dict[str, str]:
    """`Upload-Metadata: key base64value,key2` into a dict of decoded values."""
    metadata: dict[str, str] = {}
    if not raw or not raw.strip():
        return metadata
    if len(raw) > 4096:
        raise ValueError("Upload-Metadata is longer than 4096 characters.")
    for pair in raw.split(","):
        parts = pair.strip().split(" ")
        key = parts[0]
        if not key or len(parts) > 2 or key in metadata:
            raise ValueError("Upload-Metadata must be comma-separated `key base64value` pairs.")
        try:
            value = base64.b64decode(parts[1], validate=True).decode() if len(parts) == 2 else ""
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError(f"Upload-Metadata value of {key!r} is not base64 UTF-8.") from None
        if not is_storable(key) or not is_storable(value):
            raise ValueError(f"Upload-Metadata value of {key!r} contains a NUL character.")
        metadata[key] = value
    return metadata


def encode_metadata(upload: Upload) -> str:
    pairs = {
        "video_id": str(upload.video_id),
        "filename": upload.filename,
        "filetype": upload.filetype,
    }
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}"
        for key, value in pairs.items()
        if value
    )


class _ClientBody:
    """The request body, where a client that goes away mid-chunk reads as the end of it:
    the bytes that did arrive are kept and the next HEAD reports them."""

    def __init__(self, stream: IO[bytes], length: int | None) -> None:
        self.stream = stream
        self.remaining = length  # None: the stream ends by itself
        self.disconnected = False

    def read(self, size: int = -1) -> bytes:
        if self.disconnected or self.remaining == 0:
            return b""
        if self.remaining is not None:
            size = self.remaining if size < 0 else min(size, self.remaining)
        try:
            data = self.stream.read(size)
        except (ClientDisconnected, OSError):
            data = b""
        if not data:
            self.disconnected = self.remaining is not None
            return b""
        if self.remaining is not None:
            self.remaining -= len(data)
        return data


def _request_body(max_bytes: int) -> _ClientBody:
    """The raw body, bounded by Content-Length. Read straight from the server's input: the
    framework's wrapper would copy every megabyte twice more."""
    length = request.content_length
    if length is None:  # chunked transfer encoding: the framework de-chunks it
        request.max_content_length = max_bytes
        return _ClientBody(request.stream, None)
    if length > max_bytes:
        raise _TusProtocolError(
            _tus_error(
                413, ErrorCode.UPLOAD_TOO_LARGE, f"A chunk may be at most {max_bytes} bytes."
            )
        )
    return _ClientBody(request.environ["wsgi.input"], length)


def _verified_body(max_bytes: int) -> IO[bytes] | _ClientBody:
    """The chunk to store. With Upload-Checksum it is spooled to disk and verified first,
    because a chunk that does not match must leave no trace."""
    body = _request_body(max_bytes)
    header = request.headers.get("Upload-Checksum")
    if header is None:
        return body
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm.lower() != "sha1":
        raise _TusProtocolError(
            _tus_error(
                400, ErrorCode.CHECKSUM_ALGORITHM_UNSUPPORTED, "Only sha1 checksums are supported."
            )
        )
    try:
        expected = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise _TusProtocolError(
            _tus_error(400, ErrorCode.INVALID_TUS_HEADER, "Upload-Checksum is not base64.")
        ) from None
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the caller, closed at teardown
    digest = hashlib.sha1()  # noqa: S324 - the tus checksum extension names sha1
    while chunk := body.read(_COPY_CHUNK):
        digest.update(chunk)
        spool.write(chunk)
    if body.disconnected or digest.digest() != expected:
        spool.close()
        raise tus.ChecksumMismatch()
    spool.seek(0)
    return spool


def _expires_in() -> timedelta:
    return timedelta(seconds=context().settings.upload_expiry_s)


def _append(
    upload_id: uuid.UUID, offset: int, content_length: int | None, length: int | None = None
) -> Upload:
    ctx = context()
    principal = current_principal()
    body = _verified_body(ctx.settings.limits.max_upload_bytes)
    try:
        return tus.append(
            db_session(),
            principal,
            ctx.storage,
            ctx.redis,
            upload_id,
            offset=offset,
            stream=body,  # type: ignore[arg-type]
            content_length=content_length,
            expires_in=_expires_in(),
            max_size=ctx.settings.limits.max_upload_bytes,
            length=length,
        )
    except uploads.FileRefused:
        _drain(body)
        raise
    finally:
        if not isinstance(body, _ClientBody):
            body.close()


# A refused chunk is read to its end (up to this much) before the answer, so that a client
# still sending it reads the 422 instead of a reset connection.
_DRAIN_LIMIT = 64 * 1024 * 1024


def _drain(body: IO[bytes] | _ClientBody) -> None:
    drained = 0
    while drained < _DRAIN_LIMIT and (data := body.read(_COPY_CHUNK)):
        drained += len(data)


def _length_headers(upload: Upload) -> dict[str, str]:
    if upload.length is None:
        return {"Upload-Defer-Length": "1"}
    return {"Upload-Length": str(upload.length)}


def _offset_headers(upload: Upload) -> dict[str, str]:
    headers = {"Upload-Offset": str(upload.offset)}
    if upload.completed_at is None:
        headers["Upload-Expires"] = _http_date(upload.expires_at)
    return headers


def _tus(view: Callable[..., Response]) -> Callable[..., Response]:
    """tus protocol checks around a view, and tus status codes for protocol errors."""

    def wrapper(*args: Any, **kwargs: Any) -> Response:
        if request.headers.get("Tus-Resumable") != TUS_VERSION:
            return _tus_error(
                412,
                ErrorCode.TUS_VERSION_UNSUPPORTED,
                f"Send `Tus-Resumable: {TUS_VERSION}`.",
                **{"Tus-Version": TUS_VERSION},
            )
        try:
            return view(*args, **kwargs)
        except _TusProtocolError as exc:
            return exc.response

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    wrapper.__dict__.update(view.__dict__)
    return wrapper


@blp.route("")
class Uploads(MethodView):
    @blp.doc(**TUS_HEADERS_DOC)
    @blp.alt_response(201, description="Created; `Location` is the upload URL")
    @blp.problems(400, 403, 404, 412, 413, 422)
    @_tus
    def post(self) -> Response:
        """Create an upload (tus creation; with a body, creation-with-upload)

        Headers: `Upload-Length` (bytes), or `Upload-Defer-Length: 1` to send the length with a
        later PATCH (tus creation-defer-length); `Upload-Metadata` with `video_id` (base64, as
        tus encodes every value). With `Content-Type: application/offset+octet-stream` the body
        is the first chunk. `Location` is the upload URL, usable without an access token for
        this upload until `Upload-Expires`: keep it as secret as a password.
        """
        deferred = request.headers.get("Upload-Defer-Length")
        length: int | None
        if deferred is not None:
            if deferred.strip() != "1" or request.headers.get("Upload-Length") is not None:
                return _tus_error(
                    400,
                    ErrorCode.INVALID_TUS_HEADER,
                    "Send either Upload-Length or `Upload-Defer-Length: 1`, not both.",
                )
            length = None
        else:
            length = _int_header("Upload-Length")
        try:
            metadata = parse_metadata(request.headers.get("Upload-Metadata"))
        except ValueError as exc:
            return _tus_error(400, ErrorCode.INVALID_UPLOAD_METADATA, str(exc))
        try:
            video_id = uuid.UUID(metadata.get("video_id", ""))
        except ValueError:
            return _tus_error(
                400, ErrorCode.VIDEO_ID_REQUIRED, "Upload-Metadata must name the draft's video_id."
            )
        ctx = context()
        upload = uploads.create_upload(
            db_session(),
            current_principal(),
            ctx.storage,
            video_id=video_id,
            length=length,
            max_size=ctx.settings.limits.max_upload_bytes,
            expires_in=_expires_in(),
            filename=metadata.get("filename") or metadata.get("name"),
            filetype=metadata.get("filetype") or metadata.get("type"),
        )
        secret = uploads.issue_capability(upload)
        location = links.api_url(ctx.settings, f"{blp.url_prefix}/{upload.id}/{secret}")
        has_body = request.mimetype == OFFSET_CONTENT_TYPE and (request.content_length or 0) > 0
        if has_body:
            upload = _append(upload.id, 0, request.content_length)
        response = Response(status=201)
        response.headers["Location"] = location
        response.headers.update(_offset_headers(upload))
        return response


def _head(upload_id: uuid.UUID) -> Response:
    upload = tus.status(db_session(), current_principal(), context().storage, upload_id)
    response = Response(status=200)
    response.headers.update(_offset_headers(upload))
    response.headers.update(_length_headers(upload))
    response.headers["Upload-Metadata"] = encode_metadata(upload)
    response.headers["Cache-Control"] = "no-store"
    return response


def _patch(upload_id: uuid.UUID) -> Response:
    if request.mimetype != OFFSET_CONTENT_TYPE:
        return _tus_error(
            415, ErrorCode.UNSUPPORTED_MEDIA_TYPE, f"Send Content-Type: {OFFSET_CONTENT_TYPE}."
        )
    offset = _int_header("Upload-Offset")
    length = _int_header("Upload-Length") if "Upload-Length" in request.headers else None
    upload = _append(upload_id, offset, request.content_length, length)
    response = Response(status=204)
    response.headers.update(_offset_headers(upload))
    return response


def _delete(upload_id: uuid.UUID) -> Response:
    tus.terminate(db_session(), current_principal(), context().storage, upload_id)
    return Response(status=204)


@blp.route("/<uuid:upload_id>")
class UploadById(MethodView):
    @blp.doc(**TUS_HEADERS_DOC)
    @blp.alt_response(200, description="`Upload-Offset` and `Upload-Length` in the headers")
    @blp.problems(404, 410, 412)
    @_tus
    def head(self, upload_id: uuid.UUID) -> Response:
        """The offset to resume from (tus HEAD)

        `Upload-Length`, or `Upload-Defer-Length: 1` while the client has not sent it.
        """
        return _head(upload_id)

    @blp.doc(**TUS_HEADERS_DOC)
    @blp.alt_response(204, description="Stored; `Upload-Offset` is the new offset")
    @blp.problems(400, 404, 409, 410, 412, 413, 415, 422, 423)
    @blp.alt_response(
        460,
        description="Checksum Mismatch (tus): the chunk was not stored",
        schema=ProblemSchema,
        content_type=PROBLEM_CONTENT_TYPE,
    )
    @_tus
    def patch(self, upload_id: uuid.UUID) -> Response:
        """Send a chunk at `Upload-Offset` (tus PATCH; `Upload-Checksum: sha1 <base64>` optional)

        A deferred length is sent once, with `Upload-Length` on a PATCH. When the last byte
        arrives the video is processed and soon `playable`. A file whose first bytes are not a
        video's is refused with 422 and the code the video now fails with (`not_a_video`,
        `audio_only`, `empty_file`); the upload is gone and the draft takes a new one.
        """
        return _patch(upload_id)

    @blp.doc(**TUS_HEADERS_DOC)
    @blp.alt_response(204, description="Terminated")
    @blp.problems(404, 409, 412)
    @_tus
    def delete(self, upload_id: uuid.UUID) -> Response:
        """Discard an unfinished upload (tus termination)"""
        return _delete(upload_id)


def _act_through_capability(upload_id: uuid.UUID, secret: str) -> None:
    """The upload URL's secret, always checked; then who acts: the bearer of a valid access
    token under its own rules, or else the uploader (for this upload, in this request only).
    An expired or invalid token does not stop a background transfer."""
    holder = uploads.capability_holder(db_session(), upload_id, secret)
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        try:
            g.principal = authenticate(db_session(), token_config(), credentials.strip())
            return
        except AuthenticationFailed:
            pass
    g.principal = holder


@blp.route("/<uuid:upload_id>/<string:capability>")
class UploadByCapability(MethodView):
    """The upload URL handed out in `Location`: no access token needed."""

    @public
    @blp.doc(**TUS_HEADERS_DOC)
    @blp.alt_response(200, description="`Upload-Offset` and `Upload-Length` in the headers")
    @blp.problems(404, 410, 412)
    @_tus
    def head(self, upload_id: uuid.UUID, capability: str) -> Response:
        """The offset to resume from, through the upload URL (tus HEAD; no token needed)"""
        _act_through_capability(upload_id, capability)
        return _head(upload_id)

    @public
    @blp.doc(**TUS_HEADERS_DOC)
    @blp.alt_response(204, description="Stored; `Upload-Offset` is the new offset")
    @blp.problems(400, 404, 409, 410, 412, 413, 415, 422, 423)
    @blp.alt_response(
        460,
        description="Checksum Mismatch (tus): the chunk was not stored",
        schema=ProblemSchema,
        content_type=PROBLEM_CONTENT_TYPE,
    )
    @_tus
    def patch(self, upload_id: uuid.UUID, capability: str) -> Response:
        """Send a chunk through the upload URL (tus PATCH; no token needed)

        As `PATCH /api/v1/uploads/{upload_id}`, for a background transfer whose access token
        may have expired.
        """
        _act_through_capability(upload_id, capability)
        return _patch(upload_id)

    @public
    @blp.doc(**TUS_HEADERS_DOC)
    @blp.alt_response(204, description="Terminated")
    @blp.problems(404, 409, 410, 412)
    @_tus
    def delete(self, upload_id: uuid.UUID, capability: str) -> Response:
        """Discard an unfinished upload through the upload URL (tus termination; no token)"""
        _act_through_capability(upload_id, capability)
        return _delete(upload_id)


def tus_headers(response: Response) -> Response:
    """Every tus response names the protocol version; OPTIONS describes the server."""
    if request.blueprint != blp.name:
        return response
    if request.method == "OPTIONS":
        settings = context().settings
        response.status_code = 204
        response.set_data(b"")
        response.headers["Tus-Version"] = TUS_VERSION
        response.headers["Tus-Extension"] = TUS_EXTENSIONS
        response.headers["Tus-Max-Size"] = str(settings.limits.max_upload_bytes)
        response.headers["Tus-Checksum-Algorithm"] = "sha1"
    response.headers["Tus-Resumable"] = TUS_VERSION
    return response


class MethodOverride:
    """WSGI: tus clients behind proxies that allow only GET and POST send
    `X-HTTP-Method-Override`; honour it for upload URLs only."""

    ALLOWED = {"PATCH", "DELETE", "HEAD"}

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        override = environ.get("HTTP_X_HTTP_METHOD_OVERRIDE", "").upper()
        if (
            override in self.ALLOWED
            and environ.get("REQUEST_METHOD") == "POST"
            and environ.get("PATH_INFO", "").startswith(blp.url_prefix + "/")
        ):
            environ["REQUEST_METHOD"] = override
        return self.app(environ, start_response)


def install(app: Flask) -> None:
    app.after_request(tus_headers)
    app.wsgi_app = MethodOverride(app.wsgi_app)  # type: ignore[method-assign]


# -- The upload policy ---------------------------------------------------------------------------

policy_blp = Blueprint(
    "upload_policy",
    __name__,
    url_prefix="/api/v1/upload-policy",
    description=(
        "What an upload may be, before a byte is sent: size and duration limits, the containers"
        " and codecs the pipeline reads, the tus version and extensions, a chunk size, and how"
        " long an upload URL lasts."
    ),
)

# A chunk size that suits both storages: a whole number of S3 parts (5 MiB at least), and
# small enough for a phone to resend after a dropped connection.
RECOMMENDED_CHUNK_BYTES = 8 * 1024 * 1024


class ContainerSchema(Schema):
    name = ma.fields.String(metadata={"description": "The container family"})
    extensions = ma.fields.List(ma.fields.String(), metadata={"description": "File extensions"})
    mime_types = ma.fields.List(ma.fields.String(), metadata={"description": "MIME types"})


class TusPolicySchema(Schema):
    endpoint = ma.fields.String(metadata={"description": "Where to create tus uploads"})
    version = ma.fields.String(metadata={"description": "`Tus-Resumable` to send"})
    extensions = ma.fields.List(ma.fields.String(), metadata={"description": "tus extensions"})
    checksum_algorithms = ma.fields.List(
        ma.fields.String(), metadata={"description": "For `Upload-Checksum`"}
    )


class UploadPolicySchema(Schema):
    max_bytes = ma.fields.Integer(metadata={"description": "The largest file accepted"})
    max_duration_s = ma.fields.Integer(metadata={"description": "The longest video accepted"})
    containers = ma.fields.List(
        ma.fields.Nested(ContainerSchema),
        metadata={"description": "Containers read; a file in any other is refused at once"},
    )
    video_codecs = ma.fields.List(
        ma.fields.String(), metadata={"description": "Video codecs decoded (ffmpeg names)"}
    )
    audio_codecs = ma.fields.List(
        ma.fields.String(), metadata={"description": "Audio codecs decoded (ffmpeg names)"}
    )
    tus = ma.fields.Nested(TusPolicySchema, metadata={"description": "The tus server"})
    recommended_chunk_bytes = ma.fields.Integer(
        metadata={"description": "A good PATCH size (and tus client chunk size)"}
    )
    upload_url_lifetime_s = ma.fields.Integer(
        metadata={
            "description": (
                "How long an upload URL (`Location`) works without an access token after its"
                " last chunk; the upload expires with it"
            )
        }
    )
    direct_uploads = ma.fields.Boolean(
        metadata={"description": "Whether direct-to-S3 multipart uploads are offered"}
    )


@policy_blp.route("")
class UploadPolicy(MethodView):
    @policy_blp.response(200, UploadPolicySchema)
    def get(self) -> dict[str, Any]:
        """What an upload may be: limits, formats, tus details, upload URL lifetime"""
        ctx = context()
        settings = ctx.settings
        return {
            "max_bytes": settings.limits.max_upload_bytes,
            "max_duration_s": settings.limits.max_duration_s,
            "containers": [
                {"name": c.name, "extensions": c.extensions, "mime_types": c.mime_types}
                for c in sniff.CONTAINERS
            ],
            "video_codecs": sniff.VIDEO_CODECS,
            "audio_codecs": sniff.AUDIO_CODECS,
            "tus": {
                "endpoint": links.api_url(settings, blp.url_prefix or ""),
                "version": TUS_VERSION,
                "extensions": TUS_EXTENSIONS.split(","),
                "checksum_algorithms": ["sha1"],
            },
            "recommended_chunk_bytes": RECOMMENDED_CHUNK_BYTES,
            "upload_url_lifetime_s": settings.upload_expiry_s,
            "direct_uploads": isinstance(ctx.storage, S3Storage),
        }


# -- Direct to S3 ---------------------------------------------------------------------------------


class DirectUploadCreateSchema(Schema):
    video_id = ma.fields.UUID(required=True)
    size = ma.fields.Integer(required=True, validate=ma.validate.Range(min=1))
    filename = String(column=Upload.filename)
    content_type = String(column=Upload.filetype)


class PartUrlSchema(Schema):
    number = ma.fields.Integer()
    url = ma.fields.String()


class DirectUploadSchema(Schema):
    id = ma.fields.UUID()
    video_id = ma.fields.UUID()
    part_size = ma.fields.Integer(metadata={"description": "Every part but the last has this size"})
    part_count = ma.fields.Integer()
    parts = ma.fields.List(
        ma.fields.Nested(PartUrlSchema),
        metadata={"description": "Presigned PUT URLs (the first 1000 parts; ask for more)"},
    )
    expires_at = ma.fields.DateTime()


class DirectUploadCompletedSchema(Schema):
    id = ma.fields.UUID()
    video_id = ma.fields.UUID(metadata={"description": "Now `processing`; poll or wait for a push"})


class PartNumbersSchema(Schema):
    numbers = ma.fields.List(
        ma.fields.Integer(), required=True, validate=ma.validate.Length(min=1, max=1000)
    )


class PartUrlsSchema(Schema):
    parts = ma.fields.List(ma.fields.Nested(PartUrlSchema))


class CompletedPartSchema(Schema):
    number = ma.fields.Integer(required=True, validate=ma.validate.Range(min=1, max=10_000))
    etag = String(required=True, min_length=1, max_length=200)


class CompleteSchema(Schema):
    parts = ma.fields.List(
        ma.fields.Nested(CompletedPartSchema),
        required=True,
        validate=ma.validate.Length(min=1, max=10_000),
    )


def _url_ttl() -> int:
    # Long enough for a slow phone to send a part, short enough to be worthless if leaked.
    return min(context().settings.upload_expiry_s, 6 * 3600)


def _part_list(urls: dict[int, str]) -> list[dict[str, Any]]:
    return [{"number": number, "url": url} for number, url in sorted(urls.items())]


@direct_blp.route("")
class DirectUploads(MethodView):
    @direct_blp.arguments(DirectUploadCreateSchema)
    @direct_blp.response(201, DirectUploadSchema)
    @direct_blp.problems(403, 404, 413)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Start a direct-to-S3 upload for a draft: presigned part URLs"""
        ctx = context()
        created = direct.create_direct_upload(
            db_session(),
            current_principal(),
            ctx.storage,
            video_id=body["video_id"],
            length=body["size"],
            max_size=ctx.settings.limits.max_upload_bytes,
            expires_in=_expires_in(),
            url_ttl=_url_ttl(),
            filename=body.get("filename"),
            filetype=body.get("content_type"),
        )
        return {
            "id": created.upload.id,
            "video_id": created.upload.video_id,
            "part_size": created.part_size,
            "part_count": created.part_count,
            "parts": _part_list(created.part_urls),
            "expires_at": created.upload.expires_at,
        }


@direct_blp.route("/<uuid:direct_upload_id>")
class DirectUploadById(MethodView):
    @direct_blp.response(204)
    @direct_blp.problems(404, 409)
    def delete(self, direct_upload_id: uuid.UUID) -> None:
        """Abort a direct upload: S3 discards the parts"""
        direct.abort_direct_upload(
            db_session(), current_principal(), context().storage, direct_upload_id
        )


@direct_blp.route("/<uuid:direct_upload_id>/part-urls")
class DirectUploadPartUrls(MethodView):
    @direct_blp.arguments(PartNumbersSchema)
    @direct_blp.response(200, PartUrlsSchema)
    @direct_blp.problems(404, 409, 410)
    def post(self, body: dict[str, Any], direct_upload_id: uuid.UUID) -> dict[str, Any]:
        """Fresh presigned URLs for some parts (to resume after they expired)"""
        urls = direct.part_urls(
            db_session(),
            current_principal(),
            context().storage,
            direct_upload_id,
            body["numbers"],
            url_ttl=_url_ttl(),
        )
        return {"parts": _part_list(urls)}


@direct_blp.route("/<uuid:direct_upload_id>/complete")
class DirectUploadComplete(MethodView):
    @direct_blp.arguments(CompleteSchema)
    @direct_blp.response(200, DirectUploadCompletedSchema)
    @direct_blp.problems(404, 409, 410, 422)
    def post(self, body: dict[str, Any], direct_upload_id: uuid.UUID) -> dict[str, Any]:
        """Complete a direct upload with every part's ETag; processing starts

        A file whose first bytes are not a video's is refused with 422 and the code the video
        now fails with (`not_a_video`, `audio_only`); the file is deleted and the draft takes a
        new upload. Direct uploads need the size up front (the parts are presigned from it): a
        phone still exporting its file uses tus with `Upload-Defer-Length`.
        """
        video = direct.complete_direct_upload(
            db_session(),
            current_principal(),
            context().storage,
            direct_upload_id,
            [(part["number"], part["etag"]) for part in body["parts"]],
        )
        return {"id": direct_upload_id, "video_id": video.id}
