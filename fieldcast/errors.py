"""Domain errors. Each carries a stable `code` a client can switch on.

The API turns them into `application/problem+json`; workers record them as failure reasons.
`status` is the HTTP status the API answers with, kept here so the mapping lives in one place.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
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
    code = "validation_failed"
    title = "The request is not valid"


class AuthenticationFailed(DomainError):
    status = 401
    code = "authentication_failed"
    title = "Authentication failed"


class PermissionDenied(DomainError):
    status = 403
    code = "permission_denied"
    title = "You may not do this"


class NotFound(DomainError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(DomainError):
    status = 409
    code = "conflict"
    title = "Conflict with the current state"


class RateLimited(DomainError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))}, **kwargs)
        self.retry_after = retry_after
