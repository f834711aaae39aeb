"""The gunicorn worker of the API: requests gunicorn refuses before the app sees them (a URI
too long, too many or too large headers, a malformed request line) are answered in the API's
own format, application/problem+json with a stable `code`, instead of gunicorn's HTML page.
Once the app is loaded, what it loaded is kept out of the garbage collector's way."""

from __future__ import annotations

import gc
import json
import socket
from http import HTTPStatus
from typing import Any

from gunicorn import util
from gunicorn.glogging import Logger
from gunicorn.http import errors
from gunicorn.workers.gthread import ThreadWorker

from api.log_masking import mask_secrets
from api.problems import PROBLEM_CONTENT_TYPE, problem_body
from fieldcast.errors import ErrorCode


def _classes(*names: str) -> tuple[type[BaseException], ...]:
    # Some names exist only in newer gunicorn releases.
    return tuple(getattr(errors, name) for name in names if hasattr(errors, name))


# (exception classes, status, code, detail), first match wins.
_CLIENT_ERRORS: tuple[tuple[tuple[type[BaseException], ...], int, ErrorCode, str], ...] = (
    (
        _classes("LimitRequestLine"),
        414,
        ErrorCode.URI_TOO_LONG,
        "The request line is too long: shorten the URI (move data to the body).",
    ),
    (
        _classes("LimitRequestHeaders"),
        431,
        ErrorCode.HEADERS_TOO_LARGE,
        "Too many request headers, or one of them is too large.",
    ),
    (
        _classes("UnsupportedTransferCoding"),
        501,
        ErrorCode.NOT_IMPLEMENTED,
        "This Transfer-Encoding is not supported.",
    ),
    (
        _classes("ExpectationFailed"),
        417,
        ErrorCode.EXPECTATION_FAILED,
        "Only `Expect: 100-continue`.",
    ),
    (_classes("ForbiddenProxyRequest"), 403, ErrorCode.PERMISSION_DENIED, "Request forbidden."),
    (
        _classes(
            "InvalidRequestLine",
            "InvalidRequestMethod",
            "InvalidHTTPVersion",
            "InvalidHeader",
            "InvalidHeaderName",
            "ObsoleteFolding",
            "InvalidProxyLine",
            "InvalidProxyHeader",
            "InvalidSchemeHeaders",
            "InvalidChunkSize",
            "ChunkMissingTerminator",
            "InvalidChunkExtension",
            "InvalidH2CPreface",
        ),
        400,
        ErrorCode.BAD_REQUEST,
        "The request is not valid HTTP/1.1.",
    ),
)


def problem_for(exc: BaseException) -> tuple[int, ErrorCode, str]:
    """Status, code and detail for an error gunicorn met while reading or answering a request."""
    for classes, status, code, detail in _CLIENT_ERRORS:
        if classes and isinstance(exc, classes):
            return status, code, detail
    return 500, ErrorCode.INTERNAL_ERROR, "Something went wrong on our side."


def problem_bytes(status: int, code: ErrorCode, detail: str) -> bytes:
    phrase = HTTPStatus(status).phrase
    body = json.dumps(problem_body(status, code, detail=detail)).encode()
    head = (
        f"HTTP/1.1 {status} {phrase}\r\n"
        "Connection: close\r\n"
        f"Content-Type: {PROBLEM_CONTENT_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class ProblemThreadWorker(ThreadWorker):
    """gunicorn's threaded worker (`gthread`), answering its own errors in problem+json."""

    def load_wsgi(self) -> None:
        super().load_wsgi()
        # The app's modules, routes, schemas and mappings (some 250,000 objects) live as long
        # as the process. A full collection walked them all: ~80 ms during which every request
        # in flight on this worker waited. Frozen, they are never walked again; what requests
        # allocate is collected as before. (What loading left as garbage goes first.)
        gc.collect()
        gc.freeze()

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        status, code, detail = problem_for(exc)
        peer = (addr or ("", -1))[0]
        if status >= 500:
            self.log.exception("Error handling request from %s", peer)
        else:
            self.log.warning("Invalid request from ip=%s: %s", peer, exc)
        try:
            util.write_nonblock(client, problem_bytes(status, code, detail))
        except Exception:
            self.log.debug("Failed to send error message.")


class AccessLogger(Logger):
    """gunicorn's logger, whose access log (GUNICORN_ACCESS_LOG) leaves the secrets of upload
    and playback URLs out (api.log_masking), as the API's own request log does."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        return {k: mask_secrets(v) if isinstance(v, str) else v for k, v in atoms.items()}
