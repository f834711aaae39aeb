"""Domain errors. Each carries a stable `code` a client can switch on.

The API turns them into `application/problem+json`; workers record them as failure reasons.
`status` is the HTTP status the API answers with, kept here so the mapping lives in one place.

Every code is registered in `ErrorCode`, with one line saying what it means: the OpenAPI
document publishes that list on the problem schema, as an open list (clients treat a code they
do not know as its HTTP status, so new codes can come without breaking them). A code's value
never changes once released.
"""

from __future__ import annotations

import enum
from typing import Any


class ErrorCode(enum.StrEnum):
    """The registry of problem codes, each with its one-line meaning (`description`)."""

    description: str

    def __new__(cls, value: str, description: str = "") -> ErrorCode:
        member = str.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member

    BAD_REQUEST = "bad_request", "The request is malformed."
    VALIDATION_FAILED = "validation_failed", "Some input is not valid; `errors` names the fields."
    AUTHENTICATION_REQUIRED = (
        "authentication_required",
        "The request carries no credentials; send a bearer token.",
    )
    AUTHENTICATION_FAILED = "authentication_failed", "The credentials were refused."
    PERMISSION_DENIED = "permission_denied", "You may not do this."
    NOT_FOUND = "not_found", "No such resource, or not one you may see."
    METHOD_NOT_ALLOWED = (
        "method_not_allowed",
        "The resource does not answer this HTTP method; see `Allow`.",
    )
    NOT_ACCEPTABLE = "not_acceptable", "The resource cannot answer in the media type asked for."
    CONFLICT = "conflict", "The request conflicts with the resource's current state."
    PRECONDITION_FAILED = (
        "precondition_failed",
        "`If-Match` names an ETag the resource no longer has; read it again.",
    )
    PRECONDITION_REQUIRED = (
        "precondition_required",
        "This change needs `If-Match` with the resource's ETag.",
    )
    REQUEST_TOO_LARGE = "request_too_large", "The request body is larger than allowed."
    UNSUPPORTED_MEDIA_TYPE = (
        "unsupported_media_type",
        "The body's Content-Type is not one this endpoint takes.",
    )
    RATE_LIMITED = "rate_limited", "Too many requests; retry after `Retry-After` seconds."
    INTERNAL_ERROR = "internal_error", "Something went wrong on the server; quote the request id."
    SERVICE_UNAVAILABLE = (
        "service_unavailable",
        "A service the API depends on is down for a moment; retry after `Retry-After`.",
    )
    ERROR = "error", "A failure with no more specific code; act on the HTTP status."
    URI_TOO_LONG = "uri_too_long", "The request line is too long; move data to the body."
    HEADERS_TOO_LARGE = "headers_too_large", "Too many request headers, or one is too large."
    NOT_IMPLEMENTED = "not_implemented", "The request uses an HTTP feature the server lacks."
    EXPECTATION_FAILED = "expectation_failed", "Only `Expect: 100-continue` is supported."
    EMPTY_PATCH = "empty_patch", "A PATCH body that names no field."
    INVALID_CURSOR = "invalid_cursor", "The page cursor is not one this list handed out."
    UNKNOWN_NOTIFICATION_TYPE = (
        "unknown_notification_type",
        "A muted type that is not a notification type.",
    )
    INVALID_CREDENTIALS = "invalid_credentials", "Wrong email or password."
    INVALID_TOKEN = "invalid_token", "The access or API token is not valid."
    TOKEN_EXPIRED = "token_expired", "The access token has expired; refresh it."
    INVALID_REFRESH_TOKEN = "invalid_refresh_token", "The refresh token is unknown."
    REFRESH_TOKEN_REUSED = (
        "refresh_token_reused",
        "A used refresh token was presented again; its login session is revoked.",
    )
    SESSION_ENDED = "session_ended", "The login session has ended; log in again."
    NOT_A_LOGIN_SESSION = (
        "not_a_login_session",
        "Only a login session can do this, not an API token.",
    )
    CSRF_FAILED = (
        "csrf_failed",
        "A change sent with the session cookie lacks its `X-CSRF-Token`, or comes from an "
        "origin the API does not serve.",
    )
    APP_VERSION_UNSUPPORTED = (
        "app_version_unsupported",
        "This app version is older than the oldest the API answers; `minimum_version` names it "
        "and `upgrade_url`, when present, where to update.",
    )
    INVALID_APP_VERSION = (
        "invalid_app_version",
        "`X-App-Version` is not a version such as 2.4.1.",
    )
    EMAIL_TAKEN = "email_taken", "Another user has this email."
    HANDLE_TAKEN = "handle_taken", "Another user has this handle."
    EXTERNAL_ID_TAKEN = "external_id_taken", "Another user has this external id."
    SLUG_TAKEN = "slug_taken", "Another organisation has this slug."
    TEAM_NAME_TAKEN = "team_name_taken", "A sibling team has this name."
    CANNOT_CHANGE_OWN_ADMIN = (
        "cannot_change_own_admin",
        "Admins cannot take away their own admin role or deactivate themselves.",
    )
    TEAM_HAS_SUBTEAMS = "team_has_subteams", "A team with sub-teams cannot be deleted."
    USER_NOT_FOUND = "user_not_found", "No such user in your organisation."
    MEMBERSHIP_NOT_FOUND = "membership_not_found", "The user is not a member of the team."
    DEMO_EXISTS = "demo_exists", "The demo organisation exists already."
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key", "The Idempotency-Key header is not valid."
    IDEMPOTENCY_KEY_REUSED = (
        "idempotency_key_reused",
        "The Idempotency-Key was used for a different request.",
    )
    IDEMPOTENCY_REQUEST_IN_PROGRESS = (
        "idempotency_request_in_progress",
        "A request with this Idempotency-Key is still running; retry later.",
    )
    VIDEO_ALREADY_UPLOADED = "video_already_uploaded", "The video has its file already."
    UPLOAD_TOO_LARGE = "upload_too_large", "The upload or chunk is larger than allowed."
    UPLOAD_EXPIRED = "upload_expired", "The upload expired; start a new one."
    UPLOAD_COMPLETED = "upload_completed", "The upload is complete; it takes no more bytes."
    UPLOAD_LOCKED = "upload_locked", "Another request is writing to this upload; retry shortly."
    UPLOAD_OFFSET_MISMATCH = (
        "upload_offset_mismatch",
        "Upload-Offset is not the server's offset; resume from `Upload-Offset`.",
    )
    CHECKSUM_MISMATCH = (
        "checksum_mismatch",
        "The chunk does not match its Upload-Checksum; send it again.",
    )
    CHECKSUM_ALGORITHM_UNSUPPORTED = (
        "checksum_algorithm_unsupported",
        "The Upload-Checksum algorithm is not sha1.",
    )
    TUS_VERSION_UNSUPPORTED = (
        "tus_version_unsupported",
        "Tus-Resumable is not a tus version the server speaks.",
    )
    INVALID_TUS_HEADER = "invalid_tus_header", "A tus header is not valid."
    UPLOAD_LENGTH_REQUIRED = (
        "upload_length_required",
        "Upload-Length is missing; send it, or `Upload-Defer-Length: 1` to send it later.",
    )
    NOT_A_VIDEO = (
        "not_a_video",
        "The file is not a video (refused at its first bytes; a video fails with it too).",
    )
    AUDIO_ONLY = "audio_only", "The file has sound but no picture."
    EMPTY_FILE = "empty_file", "The uploaded file is empty."
    UPLOAD_OFFSET_REQUIRED = "upload_offset_required", "Upload-Offset is missing."
    INVALID_UPLOAD_METADATA = "invalid_upload_metadata", "Upload-Metadata is not valid."
    VIDEO_ID_REQUIRED = "video_id_required", "Upload-Metadata does not name the draft's video_id."
    DIRECT_UPLOADS_UNAVAILABLE = (
        "direct_uploads_unavailable",
        "Direct uploads need S3 storage; use tus.",
    )
    UPLOAD_PARTS_REJECTED = (
        "upload_parts_rejected",
        "S3 did not accept the parts of a direct upload.",
    )
    UPLOAD_SIZE_MISMATCH = "upload_size_mismatch", "The uploaded file is not the size announced."
    LINK_EXPIRED = (
        "link_expired",
        "The signed media link has expired; read the video again for fresh links.",
    )
    INVALID_SIGNATURE = "invalid_signature", "The signed media link is not valid."
    PLAYBACK_REVOKED = (
        "playback_revoked",
        "The viewer may no longer see this video (removed, share recalled, or account "
        "deactivated): its media links no longer play.",
    )
    ATTACHMENT_EMPTY = "attachment_empty", "The attached file is empty."
    ATTACHMENT_TOO_LARGE = "attachment_too_large", "The attached file is larger than allowed."
    ATTACHMENT_TYPE_NOT_ALLOWED = (
        "attachment_type_not_allowed",
        "This kind of file cannot be attached.",
    )
    TOO_MANY_ATTACHMENTS = "too_many_attachments", "The video has as many attachments as allowed."
    AUDIENCE_TOO_LARGE = "audience_too_large", "The share would reach more people than allowed."
    WEBHOOK_EXISTS = "webhook_exists", "The team has a webhook of this kind with this URL already."
    TOO_MANY_WEBHOOKS = "too_many_webhooks", "The team has as many webhooks as allowed."
    TOO_MANY_SAVED_SEARCHES = (
        "too_many_saved_searches",
        "You follow as many searches as allowed; delete one first.",
    )
    SAVED_SEARCH_EMPTY = (
        "saved_search_empty",
        "A saved search names a query or a filter: following everything is the feed.",
    )
    VIDEO_NOT_PLAYABLE = (
        "video_not_playable",
        "The video cannot be played yet (it is still processing): there is nothing to view.",
    )
    WEBHOOK_URL_INVALID = "webhook_url_invalid", "The webhook URL is not valid."
    WEBHOOK_URL_NOT_HTTPS = "webhook_url_not_https", "The webhook URL is not HTTPS."
    WEBHOOK_HOST_NOT_ALLOWED = (
        "webhook_host_not_allowed",
        "The webhook URL's host is not one this kind of webhook may post to.",
    )
    INVALID_SYNC_TOKEN = (
        "invalid_sync_token",
        "`updated_since` (or the cursor) is not a sync token of this list; list without it.",
    )
    SYNC_TOKEN_EXPIRED = (
        "sync_token_expired",
        "The sync token is older than removals are kept; list again without it.",
    )
    INVITATION_NOT_FOUND = "invitation_not_found", "No invitation has this token."
    INVITATION_EXPIRED = (
        "invitation_expired",
        "The invitation has expired; ask an admin to send it again.",
    )
    INVITATION_USED = "invitation_used", "The invitation was accepted already; log in instead."
    INVITATION_REVOKED = "invitation_revoked", "An admin withdrew the invitation."
    INVITATION_PENDING = (
        "invitation_pending",
        "An open invitation for this email exists; resend or revoke it.",
    )
    INVITATION_CLOSED = (
        "invitation_closed",
        "The invitation was accepted or revoked; it cannot be changed.",
    )
    PASSWORD_RESET_NOT_FOUND = "password_reset_not_found", "No password reset has this token."
    PASSWORD_RESET_EXPIRED = (
        "password_reset_expired",
        "The password reset link has expired; ask for a new one.",
    )
    PASSWORD_RESET_USED = (
        "password_reset_used",
        "The password reset link was used already; ask for a new one.",
    )
    REAUTHENTICATION_REQUIRED = (
        "reauthentication_required",
        "Confirm with the current password (or log in again first) to do this.",
    )
    LAST_ADMIN = (
        "last_admin",
        "The organisation's only admin cannot be deleted; make another admin first.",
    )
    OWN_ACCOUNT = "own_account", "Delete your own account with DELETE /api/v1/me."
    ACCOUNT_DELETED = "account_deleted", "The account was deleted; it cannot be changed."
    WEBHOOK_KIND_MISMATCH = (
        "webhook_kind_mismatch",
        "The webhook URL does not belong to the chat service of its kind.",
    )
    RECEIPT_TOKEN_INVALID = (
        "receipt_token_invalid",
        "The push's receipt token is not valid (altered, or not one this server made).",
    )
    RECEIPT_TOKEN_EXPIRED = (
        "receipt_token_expired",
        "The push's receipt token has expired; send the receipt with a bearer token instead.",
    )
    CANNOT_REPORT_OWN_CONTENT = (
        "cannot_report_own_content",
        "You cannot report your own video or comment; edit or delete it instead.",
    )
    REPORT_RESOLVED = (
        "report_resolved",
        "The content was hidden on this report; show it again (unhide) instead of dismissing.",
    )
    EXPORT_TOO_LARGE = (
        "export_too_large",
        "More entries match than one export holds; narrow it with `since` and `until`.",
    )

    MENTION_WITHOUT_ACCESS = (
        "mention_without_access",
        "The comment mentions people who cannot see the video (`errors.mentions_without_access` "
        "names them); send it again with `share_with_mentioned: true` to share it with them.",
    )
    COMMENT_TIME_OUT_OF_RANGE = (
        "comment_time_out_of_range",
        "`at_ms`/`end_ms` do not lie within the video's duration, or end before they start.",
    )
    TIMELINE_UNAVAILABLE = (
        "timeline_unavailable",
        "The video's duration is not known yet (no file, or still being probed): comment on "
        "the whole video, or at a moment once it plays.",
    )
    TRANSCRIPT_TIME_OUT_OF_RANGE = (
        "transcript_time_out_of_range",
        "A transcript segment ends before it starts, overlaps the one before it, or lies beyond "
        "the video's end (`errors.segments` names it by its index).",
    )
    REPLY_HAS_OWN_TIME = (
        "reply_has_own_time",
        "A reply takes its thread's time; leave out `at_ms` and `end_ms`.",
    )
    COMMENT_DELETED = "comment_deleted", "The comment was deleted; it cannot be changed."
    COMMENT_HIDDEN = (
        "comment_hidden",
        "An admin hid the comment; it cannot be changed, liked or accepted.",
    )
    NOT_A_THREAD = "not_a_thread", "Only a thread (a top-level comment) is resolved or reopened."
    INVALID_TEXT = (
        "invalid_text",
        "The text holds control characters (other than line breaks and tabs) or is blank.",
    )
    UNKNOWN_EMOJI = "unknown_emoji", "The emoji is not one of the reaction set (`GET /reactions`)."
    NOT_A_QUESTION = "not_a_question", "The video is not a question."
    NOT_AN_ANSWER = "not_an_answer", "The comment or video does not answer this question."
    UNKNOWN_ATTRIBUTE = (
        "unknown_attribute",
        "An attribute name the organisation's strict catalogue does not have "
        "(`GET /api/v1/attributes`); `errors` names it.",
    )
    ATTRIBUTE_VALUE_NOT_ALLOWED = (
        "attribute_value_not_allowed",
        "A value that is not one of the attribute's choices in a strict catalogue; `errors` "
        "names the attribute.",
    )
    ATTRIBUTE_TYPE_MISMATCH = (
        "attribute_type_mismatch",
        "A value of the wrong type for its attribute (a word for a number, a date that is not "
        "YYYY-MM-DD); `errors` names the attribute.",
    )
    COLLECTION_FULL = "collection_full", "The collection holds as many items as allowed."
    NOT_PUBLISHABLE = (
        "not_publishable",
        "Only a collection for teams (naming at least one) or for the organisation is published.",
    )
    NOT_IN_COLLECTION = "not_in_collection", "An item named is not one of this collection's."
    CLIP_OUT_OF_RANGE = (
        "clip_out_of_range",
        "The clip does not fit in its video: 0 <= start_ms < end_ms <= the video's duration.",
    )
    ASSIGNMENT_WITHDRAWN = "assignment_withdrawn", "The assignment was withdrawn."
    REQUEST_DECIDED = "request_decided", "The request was answered already."
    REQUEST_PENDING = "request_pending", "A request of this kind waits for an answer already."
    DEAL_OWNER_UNKNOWN = (
        "deal_owner_unknown",
        "The deal's owner is no active person of the organisation (by id, email or external id).",
    )
    INVALID_SIGN_IN_CODE = (
        "invalid_sign_in_code",
        "The sign-in code is unknown, used or expired, or the `code_verifier` does not match "
        "its `code_challenge`: sign in with the identity provider again.",
    )
    NO_IDENTITY_PROVIDER = (
        "no_identity_provider",
        "The organisation has no identity provider to sign in with (or it is switched off).",
    )
    STORAGE_QUOTA_EXCEEDED = (
        "storage_quota_exceeded",
        "The organisation's storage quota has no room for this file; nothing was stored.",
    )
    IDENTITY_PROVIDER_UNREACHABLE = (
        "identity_provider_unreachable",
        "The identity provider did not answer as an OpenID provider does; `detail` says how.",
    )


class DomainError(Exception):
    status: int = 400
    code: ErrorCode = ErrorCode.BAD_REQUEST
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: ErrorCode | None = None,
        errors: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code is not None:
            self.code = code
        self.errors = errors
        self.headers = headers or {}


class InvalidInput(DomainError):
    status = 422
    code = ErrorCode.VALIDATION_FAILED
    title = "The request is not valid"


class AuthenticationFailed(DomainError):
    status = 401
    code = ErrorCode.AUTHENTICATION_FAILED
    title = "Authentication failed"


class PermissionDenied(DomainError):
    status = 403
    code = ErrorCode.PERMISSION_DENIED
    title = "You may not do this"


class NotFound(DomainError):
    status = 404
    code = ErrorCode.NOT_FOUND
    title = "Not found"


class Conflict(DomainError):
    status = 409
    code = ErrorCode.CONFLICT
    title = "Conflict with the current state"


class Gone(DomainError):
    status = 410
    code = ErrorCode.ERROR
    title = "No longer available"


class RateLimited(DomainError):
    status = 429
    code = ErrorCode.RATE_LIMITED
    title = "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))}, **kwargs)
        self.retry_after = retry_after
