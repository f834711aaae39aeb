"""Errors as `application/problem+json` (RFC 9457) with a stable `code` a client can switch on."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import marshmallow as ma
from flask import Response, json
from werkzeug.exceptions import HTTPException

from fieldcast.errors import DomainError, ErrorCode
from fieldcast.observability import request_id_var
from fieldcast.outages import RETRY_AFTER_S, is_outage

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"

# Codes for the statuses the framework raises on its own (routing, parsing, method checks).
_HTTP_CODES: dict[int, ErrorCode] = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.AUTHENTICATION_REQUIRED,
    403: ErrorCode.PERMISSION_DENIED,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    406: ErrorCode.NOT_ACCEPTABLE,
    409: ErrorCode.CONFLICT,
    412: ErrorCode.PRECONDITION_FAILED,
    413: ErrorCode.REQUEST_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    422: ErrorCode.VALIDATION_FAILED,
    428: ErrorCode.PRECONDITION_REQUIRED,
    429: ErrorCode.RATE_LIMITED,
    500: ErrorCode.INTERNAL_ERROR,
    503: ErrorCode.SERVICE_UNAVAILABLE,
}


def problem_type(code: ErrorCode) -> str:
    return f"urn:fieldcast:problem:{code}"


CODE_DESCRIPTION = (
    "Stable machine-readable code: switch on it. The list below is open, not closed: new codes "
    "will come, and a client must treat a code it does not know as its HTTP `status` "
    "(e.g. an unknown code with status 409 is a conflict). Known codes:\n\n"
    + "\n".join(f"- `{code}`: {code.description}" for code in ErrorCode)
)


def _registered(value: Any) -> ErrorCode | None:
    """`value` as a registered code, or None: only registered codes reach a client."""
    try:
        return ErrorCode(value) if value else None
    except ValueError:
        return None


class ProblemSchema(ma.Schema):
    """An error (RFC 9457). Switch on `code`; `errors` maps field names to messages."""

    type = ma.fields.String(
        metadata={
            "description": "URI naming the kind of problem",
            "example": problem_type(ErrorCode.NOT_FOUND),
        }
    )
    title = ma.fields.String(metadata={"description": "Short summary of the kind of problem"})
    status = ma.fields.Integer(metadata={"description": "HTTP status code"})
    detail = ma.fields.String(metadata={"description": "What went wrong this time"})
    code = ma.fields.String(
        metadata={
            "description": CODE_DESCRIPTION,
            "example": ErrorCode.NOT_FOUND.value,
            # An open list, deliberately not an `enum`: generated clients reject enum values
            # they do not know, and new codes will come.
            "x-known-values": [code.value for code in ErrorCode],
        }
    )
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Raw(),
        metadata={"description": "Field errors: field name to a list of messages"},
    )
    request_id = ma.fields.String(metadata={"description": "Quote this when reporting the problem"})


def problem_body(
    status: int,
    code: ErrorCode,
    *,
    title: str | None = None,
    detail: str | None = None,
    errors: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The RFC 9457 document: `type`, `title`, `status`, `detail`, the stable `code`, field
    `errors` when there are any, and the `request_id` of the request being answered, if any."""
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    body: dict[str, Any] = {
        "type": problem_type(code),
        "title": title or phrase,
        "status": status,
        "detail": detail or title or phrase,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    request_id = request_id_var.get()
    if request_id:
        body["request_id"] = request_id
    return body


def problem_response(
    status: int,
    code: ErrorCode,
    *,
    title: str | None = None,
    detail: str | None = None,
    errors: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = problem_body(status, code, title=title, detail=detail, errors=errors)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_CONTENT_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _flatten_webargs(messages: Any) -> dict[str, Any]:
    """webargs nests errors by location ({"json": {...}, "query": {...}}); clients want fields."""
    if not isinstance(messages, dict):
        return {"_request": messages}
    flat: dict[str, Any] = {}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            for name, value in fields.items():
                flat[name] = value
        else:
            flat[location] = fields
    return flat


def from_http_exception(error: HTTPException) -> Response:
    # An error in an after-request hook reaches here wrapped in a 500.
    original = getattr(error, "original_exception", None)
    if original is not None and is_outage(original):
        return from_outage(original)
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    errors = None
    if "errors" in data:
        errors = data["errors"]
    elif "messages" in data:
        errors = _flatten_webargs(data["messages"])
    code = _registered(data.get("code")) or _HTTP_CODES.get(status, ErrorCode.ERROR)
    detail = data.get("message") or error.description
    if status == 422 and errors:
        detail = "Some fields are not valid; see `errors`."
    headers = dict(data.get("headers") or {})
    if status == 405 and hasattr(error, "valid_methods") and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
    return problem_response(
        status,
        code,
        title=HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else None,
        detail=detail,
        errors=errors,
        headers=headers,
    )


def from_domain_error(error: DomainError) -> Response:
    return problem_response(
        error.status,
        error.code,
        title=error.title,
        detail=error.detail,
        errors=error.errors,
        headers=error.headers,
    )


def from_outage(error: BaseException) -> Response:
    """PostgreSQL or Redis is unreachable: the client backs off and retries."""
    log.warning("a dependency is unavailable: %s: %s", type(error).__name__, error)
    return problem_response(
        503,
        ErrorCode.SERVICE_UNAVAILABLE,
        detail="A service the API depends on is unavailable for a moment; retry after a while.",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def from_unexpected(error: Exception) -> Response:
    if is_outage(error):
        return from_outage(error)
    log.exception("unhandled error")
    return problem_response(
        500,
        ErrorCode.INTERNAL_ERROR,
        detail="Something went wrong on our side. It has been logged; quote the request id.",
    )
