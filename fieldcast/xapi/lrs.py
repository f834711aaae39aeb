"""The LRS's Statement API, as much of it as sending needs: POST a batch of statements.

xAPI 1.0.3: `POST <endpoint>/statements` with a JSON array, `X-Experience-API-Version`,
Basic authentication with the LRS's key and secret. A statement the LRS already holds with the
same id is no new statement: an LRS drops an identical one silently, and answers 409 for one
that differs (it was written out again after, say, a video's title changed); either way it is
delivered. The secret never appears in an error or a log line.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests

XAPI_VERSION = "1.0.3"
TIMEOUT = (5.0, 30.0)  # connect, read

_local = threading.local()


@dataclass(frozen=True)
class Outcome:
    """What the LRS answered a batch: `delivered` (stored, or identical ones already there),
    `conflict` (409: some statement of the batch is there already, written otherwise; an LRS
    may then have refused the whole batch), `refused` (400: a statement it will never take;
    401/403: the credentials), or `failed` (worth retrying later: a 5xx, a 429, a timeout,
    nobody listening)."""

    status: str
    detail: str
    http_status: int | None = None
    retry_after: float | None = None


def post_statements(
    endpoint: str, key: str, secret: str, statements: Sequence[dict[str, Any]]
) -> Outcome:
    """POST the statements as one array; one keep-alive HTTP session per worker thread."""
    url = endpoint.rstrip("/") + "/statements"
    try:
        response = _session().post(
            url,
            json=list(statements),
            auth=(key, secret),
            headers={"X-Experience-API-Version": XAPI_VERSION},
            timeout=TIMEOUT,
            # A redirect is answered as the LRS's own status: never followed elsewhere (an
            # intranet address) with the statements or as a GET.
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        return Outcome("failed", f"cannot reach the LRS: {type(exc).__name__}")
    status = response.status_code
    if status in (200, 204):
        return Outcome("delivered", f"HTTP {status}", status)
    if status == 409:
        return Outcome("conflict", f"HTTP 409: {_excerpt(response)}", status)
    detail = f"HTTP {status}: {_excerpt(response)}"
    if status in (401, 403):
        return Outcome("refused", f"the LRS refused the key and secret ({detail})", status)
    if status in (400, 413) or (400 <= status < 500 and status not in (408, 429)):
        return Outcome("refused", detail, status)
    return Outcome("failed", detail, status, _retry_after(response))


def _session() -> requests.Session:
    session: requests.Session | None = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        _local.session = session
    return session


def _excerpt(response: requests.Response) -> str:
    """The start of an LRS's error body, shown to the admin. Only a JSON one: an endpoint that
    is not an LRS (an intranet page) tells the admin its status, not its content."""
    if "json" not in response.headers.get("Content-Type", ""):
        return "(not an xAPI answer)"
    return " ".join(response.text.split())[:300]


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
