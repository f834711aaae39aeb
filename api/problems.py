"""Errors as `application/problem+json` (RFC 9457) with a stable `code` a client can switch on."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import marshmallow as ma
from flask import Response, json
from werkzeug.exceptions import HTTPException

from fieldcast.errors import DomainError
from fieldcast.observability import request_id_var
from fieldcast.outages import RETRY_AFTER_S, is_outage

log = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"

# Codes for the statuses the framework raises on its own (routing, parsing, method checks).
_HTTP_CODES = {
    400: "bad_request",
    401: "authentication_required",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    428: "precondition_required",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


def problem_type(code: str) -> str:
    return f"urn:fieldcast:problem:{code}"


class ProblemSchema(ma.Schema):
    """An error (RFC 9457). Switch on `code`; `errors` maps field names to messages."""

    type = ma.fields.String(
        metadata={
            "description": "URI naming the kind of problem",
            "example": problem_type("not_found"),
        }
    )
    title = ma.fields.String(metadata={"description": "Short summary of the kind of problem"})
    status = ma.fields.Integer(metadata={"description": "HTTP status code"})
    detail = ma.fields.String(metadata={"description": "What went wrong this time"})
    code = ma.fields.String(metadata={"description": "Stable machine-readable code"})
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Raw(),
        metadata={"description": "Field errors: field name to a list of messages"},
    )
    request_id = ma.fields.String(metadata={"description": "Quote this when reporting the problem"})


def problem_body(
    status: int,
    code: str,
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
    code: str,
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
    code = data.get("code") or _HTTP_CODES.get(status, "error")
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
        "service_unavailable",
        detail="A service the API depends on is unavailable for a moment; retry after a while.",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def from_unexpected(error: Exception) -> Response:
    if is_outage(error):
        return from_outage(error)
    log.exception("unhandled error")
    return problem_response(
        500,
        "internal_error",
        detail="Something went wrong on our side. It has been logged; quote the request id.",
    )
