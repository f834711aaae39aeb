"""A local stand-in for FCM's HTTP v1 send API and Google's OAuth2 token endpoint.

The real firebase-admin library talks to it over loopback: `write_service_account` makes a
service-account JSON whose `token_uri` is this server's `/token` (the server verifies the signed
JWT assertions with the account's public key), and `point_messaging_at` sends an app's messages
to `send_url(project_id)` instead of fcm.googleapis.com.

Each registration token gets a `TokenRule`: success by default, or an FCM error (UNREGISTERED,
INVALID_ARGUMENT, QUOTA_EXCEEDED with Retry-After, UNAVAILABLE, INTERNAL) always or for its first
N requests, an extra delay, or a hold (received and recorded, answered only on `release()` or
dropped with the connection). A global latency delays every send answer without blocking others.
Every send request is recorded as a `ReceivedMessage`, so tests assert on payloads and count
deliveries per (token, data["notification_id"]).

It runs on aiohttp in its own event loop: in a thread of the test process (`FcmServer`, a
context manager), or as a process for benchmarks:

    python -m tests.fcm_server --port 0 --latency-ms 20 --service-account /tmp/sa.json

which prints one JSON line when ready (`{"base_url": ..., "token_url": ..., "pid": ...,
"service_account": ...}`) and stops on SIGTERM or SIGINT. `FcmServerProcess` wraps that.

Control API, on the same port:

    GET  /_control/stats     counts as JSON: received, answered (by status), held, dropped,
                             rejected (no token), in_flight, max_in_flight, token_requests,
                             access_tokens, distinct_pairs (received), accepted_pairs
                             (answered 200), duplicates, duplicates_received
    GET  /_control/messages  the recorded messages (optional ?token=...)
    POST /_control/reset     forget messages, counters and rules (issued access tokens stay valid)
    POST /_control/rules     {"tokens": {token: rule}, "prefixes": {prefix: rule}}, where a rule
                             is {"error": "unregistered" | "invalid_argument" | "quota_exceeded" |
                             "unavailable" | "internal" | null, "times": N | null,
                             "retry_after": seconds | null, "delay_ms": ms, "hold": bool}
    POST /_control/config    {"latency_ms": ms, "hold": bool}, either key optional
    POST /_control/release   answer every held request

In a test:

    with FcmServer() as fcm:
        app = firebase_admin.initialize_app(
            credentials.Certificate(str(write_service_account(tmp_path / "sa.json", fcm))),
            name="push-test",
        )
        point_messaging_at(app, fcm)
        fcm.set_rule("device-gone", TokenRule.unregistered())
        ...
        assert fcm.duplicates() == 0

How firebase-admin 7.7 (with google-auth 2.62 and urllib3 2.8) behaves against it:
- its urllib3 retry config retries 500 and 503 up to 4 times (backoff 0, 1, 2, 4 s) and 429 too
  when a Retry-After header is present, sleeping that long first; the caller sees the error
  only once the retries are spent, and the server sees up to 5 requests per message;
- google-auth signs assertions for https://oauth2.googleapis.com/token whatever `token_uri`
  says, and refreshes without a lock, so a first `send_each` of N messages may fetch up to N
  access tokens; a 401 makes it fetch a new token and resend;
- after each token fetch google-auth looks up a "regional access boundary" at
  iamcredentials.googleapis.com in a background thread (it fails offline, harmlessly).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import json
import os
import secrets
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, get_args
from urllib.parse import quote

import requests
import requests.adapters
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import exceptions as google_auth_exceptions
from google.auth import jwt

if TYPE_CHECKING:
    import firebase_admin
    from urllib3.util.retry import Retry

DEFAULT_PROJECT_ID = "fieldcast-test"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# google-auth signs this audience whatever the account's token_uri says, as Google's endpoint
# expects; the server's own token URL is accepted too.
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
ACCESS_TOKEN_LIFETIME = 3600
FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
REPO_ROOT = Path(__file__).resolve().parents[1]

FcmError = Literal["unregistered", "invalid_argument", "quota_exceeded", "unavailable", "internal"]


@dataclasses.dataclass(frozen=True)
class _ErrorReply:
    code: int
    status: str
    error_code: str
    message: str


ERROR_REPLIES: dict[FcmError, _ErrorReply] = {
    "unregistered": _ErrorReply(
        404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found."
    ),
    "invalid_argument": _ErrorReply(
        400,
        "INVALID_ARGUMENT",
        "INVALID_ARGUMENT",
        "The registration token is not a valid FCM registration token",
    ),
    "quota_exceeded": _ErrorReply(
        429,
        "RESOURCE_EXHAUSTED",
        "QUOTA_EXCEEDED",
        "Message rate exceeded for this registration token.",
    ),
    "unavailable": _ErrorReply(
        503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable."
    ),
    "internal": _ErrorReply(500, "INTERNAL", "INTERNAL", "Internal error encountered."),
}


@dataclasses.dataclass(frozen=True)
class TokenRule:
    """How the server answers sends to one registration token (or tokens with a prefix).

    `error` is answered for the token's first `times` requests (every request when None), and
    success afterwards. `delay` (seconds) comes on top of the server's latency. A held request is
    answered only after `FcmServer.release()`.
    """

    error: FcmError | None = None
    times: int | None = None
    retry_after: int | None = None
    delay: float = 0.0
    hold: bool = False

    @classmethod
    def unregistered(cls) -> TokenRule:
        return cls(error="unregistered")

    @classmethod
    def invalid_argument(cls) -> TokenRule:
        return cls(error="invalid_argument")

    @classmethod
    def quota_exceeded(cls, times: int | None = 1, retry_after: int = 1) -> TokenRule:
        return cls(error="quota_exceeded", times=times, retry_after=retry_after)

    @classmethod
    def unavailable(cls, times: int | None = 1, retry_after: int | None = None) -> TokenRule:
        return cls(error="unavailable", times=times, retry_after=retry_after)

    @classmethod
    def slow(cls, seconds: float) -> TokenRule:
        return cls(delay=seconds)

    @classmethod
    def held(cls) -> TokenRule:
        return cls(hold=True)

    def fails(self, attempt: int) -> bool:
        """Whether the token's `attempt`-th request (1-based) gets the error."""
        return self.error is not None and (self.times is None or attempt <= self.times)

    def to_json(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "times": self.times,
            "retry_after": self.retry_after,
            "delay_ms": self.delay * 1000,
            "hold": self.hold,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TokenRule:
        error = data.get("error")
        if error is not None and error not in get_args(FcmError):
            raise ValueError(f"unknown error {error!r}; one of {get_args(FcmError)}")
        return cls(
            error=error,
            times=data.get("times"),
            retry_after=data.get("retry_after"),
            delay=float(data.get("delay_ms", 0)) / 1000,
            hold=bool(data.get("hold", False)),
        )


SUCCESS = TokenRule()


@dataclasses.dataclass
class ReceivedMessage:
    """One send request as the server saw it, and how it was answered.

    `token` is the message's registration token (or its `fid`). `status` is None while the
    request waits (held or delayed) and stays None if the client went away first (`dropped`).
    """

    token: str
    message: dict[str, Any]
    project_id: str
    validate_only: bool
    received_at: float
    held: bool = False
    status: int | None = None
    answered_at: float | None = None
    dropped: bool = False

    @property
    def data(self) -> dict[str, str]:
        data = self.message.get("data")
        return data if isinstance(data, dict) else {}

    @property
    def notification_id(self) -> str | None:
        return self.data.get("notification_id")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class _TrustedAccount:
    client_email: str
    public_key_pem: str


class FcmEndpoint:
    """The addresses of a running stand-in, in-process or not."""

    base_url: str

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    def send_url(self, project_id: str = DEFAULT_PROJECT_ID) -> str:
        return f"{self.base_url}/v1/projects/{project_id}/messages:send"


class FcmServer(FcmEndpoint):
    """The stand-in: state, rules and the aiohttp app, served from a background thread.

    Handlers run on the server's event loop; everything the test thread reads or changes goes
    through one lock, so the public methods are safe to call from any thread.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0) -> None:
        self.host = host
        self.port = port
        self.base_url = ""
        # Re-entrant, so `wait_until` predicates may call the reading methods.
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._latency = latency
        self._holding = False
        self._rules: dict[str, TokenRule] = {}
        self._prefix_rules: dict[str, TokenRule] = {}
        self._attempts: Counter[str] = Counter()
        self._records: list[ReceivedMessage] = []
        self._received_pairs: Counter[tuple[str, str]] = Counter()
        self._answered_pairs: Counter[tuple[str, str]] = Counter()
        self._statuses: Counter[int] = Counter()
        self._rejected = 0
        self._dropped = 0
        self._waiting_in_hold = 0
        self._in_flight = 0
        self._max_in_flight = 0
        self._token_requests = 0
        self._access_tokens: set[str] = set()
        self._accounts: dict[str, _TrustedAccount] = {}  # by private_key_id
        self._message_ids = itertools.count(1)
        self._release = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    # -- running ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Serve from a daemon thread with its own event loop; returns once listening."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._open())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._close())
            loop.close()

        self._thread = threading.Thread(target=run, name="fcm-server", daemon=True)
        self._thread.start()
        if not ready.wait(timeout=10):
            raise TimeoutError("the FCM stand-in did not start within 10 s")
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        """Answer anything still held, close the listener and end the thread."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def serve(self, on_ready: Callable[[], None]) -> None:
        """Serve on the running loop until SIGTERM or SIGINT (the command-line mode)."""
        await self._open()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        on_ready()
        await stopping.wait()
        await self._close()

    async def _open(self) -> None:
        self._loop = asyncio.get_running_loop()
        # Cancelling handlers when the client disconnects is what lets a held request be
        # recorded as dropped when the worker holding it dies.
        self._runner = web.AppRunner(
            self._app(), access_log=None, handler_cancellation=True, shutdown_timeout=2.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=2048)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.port = port
        self.base_url = f"http://{host}:{port}"

    async def _close(self) -> None:
        self._release_held()
        if self._runner is not None:
            await self._runner.cleanup()

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/token", self._handle_token)
        app.router.add_post("/v1/projects/{project_id}/messages:send", self._handle_send)
        app.router.add_get("/_control/stats", self._control_stats)
        app.router.add_get("/_control/messages", self._control_messages)
        app.router.add_post("/_control/reset", self._control_reset)
        app.router.add_post("/_control/rules", self._control_rules)
        app.router.add_post("/_control/config", self._control_config)
        app.router.add_post("/_control/release", self._control_release)
        return app

    # -- configuring -----------------------------------------------------------------------

    def add_service_account(self, project_id: str = DEFAULT_PROJECT_ID) -> dict[str, str]:
        """A new service account (fresh RSA key) whose token assertions this server accepts."""
        if not self.base_url:
            raise RuntimeError("start the server first: the account's token_uri names its port")
        info, public_key_pem = new_service_account(self.token_url, project_id)
        with self._lock:
            self._accounts[info["private_key_id"]] = _TrustedAccount(
                info["client_email"], public_key_pem
            )
        return info

    def set_rule(self, token: str, rule: TokenRule) -> None:
        """Answer `token` by `rule`; its request count (for `times`) starts again."""
        with self._lock:
            self._rules[token] = rule
            self._attempts.pop(token, None)

    def set_prefix_rule(self, prefix: str, rule: TokenRule) -> None:
        """Answer every token starting with `prefix` by `rule` (exact-token rules win)."""
        with self._lock:
            self._prefix_rules[prefix] = rule

    def clear_rules(self) -> None:
        with self._lock:
            self._rules.clear()
            self._prefix_rules.clear()
            self._attempts.clear()

    @property
    def latency(self) -> float:
        """Seconds every send answer waits (asynchronously) before going out."""
        with self._lock:
            return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        with self._lock:
            self._latency = seconds

    def hold(self) -> None:
        """Receive and record every send from now on, but answer none until `release()`."""
        with self._lock:
            self._holding = True

    def release(self) -> None:
        """Stop holding, and answer the held requests (by their rules)."""
        with self._lock:
            self._holding = False
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._release_held)

    def expire_access_tokens(self) -> None:
        """Forget issued access tokens, so clients get 401 and fetch new ones."""
        with self._lock:
            self._access_tokens.clear()

    def reset(self) -> None:
        """Forget messages, counters and rules; issued access tokens stay valid."""
        with self._lock:
            self._rules.clear()
            self._prefix_rules.clear()
            self._attempts.clear()
            self._records.clear()
            self._received_pairs.clear()
            self._answered_pairs.clear()
            self._statuses.clear()
            self._rejected = self._dropped = self._token_requests = 0
            self._max_in_flight = self._in_flight

    # -- reading ---------------------------------------------------------------------------

    def messages(
        self, token: str | None = None, status: int | None = None
    ) -> list[ReceivedMessage]:
        """Copies of the recorded send requests, oldest first, optionally filtered."""
        with self._lock:
            return [
                dataclasses.replace(record)
                for record in self._records
                if (token is None or record.token == token)
                and (status is None or record.status == status)
            ]

    def wait_until(self, condition: Callable[[FcmServer], bool], timeout: float = 5.0) -> None:
        """Block until `condition(server)` holds, re-checked as requests arrive and end."""
        with self._changed:
            if not self._changed.wait_for(lambda: condition(self), timeout):
                raise TimeoutError(f"not within {timeout} s; stats: {self.stats()}")

    def wait_for_messages(self, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """Block until at least `count` send requests have been received (answered or not)."""
        self.wait_until(lambda server: len(server._records) >= count, timeout)
        return self.messages()

    def counts(self, answered_only: bool = True) -> Counter[tuple[str, str]]:
        """Requests per (token, data["notification_id"]): answered 200, or all received."""
        with self._lock:
            return Counter(self._answered_pairs if answered_only else self._received_pairs)

    def duplicates(self) -> int:
        """How many (token, notification_id) pairs were answered 200 more than once."""
        return sum(1 for n in self.counts().values() if n > 1)

    def duplicates_received(self) -> int:
        """How many (token, notification_id) pairs arrived more than once, however answered."""
        return sum(1 for n in self.counts(answered_only=False).values() if n > 1)

    @property
    def token_requests(self) -> int:
        with self._lock:
            return self._token_requests

    @property
    def held(self) -> int:
        """Requests waiting for `release()` right now."""
        with self._lock:
            return self._waiting_in_hold

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "received": len(self._records),
                "answered": {str(code): n for code, n in sorted(self._statuses.items())},
                "held": self._waiting_in_hold,
                "dropped": self._dropped,
                "rejected": self._rejected,
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "token_requests": self._token_requests,
                "access_tokens": len(self._access_tokens),
                "distinct_pairs": len(self._received_pairs),
                "accepted_pairs": len(self._answered_pairs),
                "duplicates": sum(1 for n in self._answered_pairs.values() if n > 1),
                "duplicates_received": sum(1 for n in self._received_pairs.values() if n > 1),
            }

    # -- the token endpoint ----------------------------------------------------------------

    async def _handle_token(self, request: web.Request) -> web.Response:
        with self._lock:
            self._token_requests += 1
        form = await request.post()
        if form.get("grant_type") != JWT_BEARER_GRANT:
            return _oauth_error("unsupported_grant_type", "Only the JWT-bearer grant is served.")
        assertion = form.get("assertion")
        if not isinstance(assertion, str):
            return _oauth_error("invalid_request", "Missing assertion.")
        try:
            claims = self._verify_assertion(assertion)
        except (ValueError, google_auth_exceptions.GoogleAuthError) as exc:
            return _oauth_error("invalid_grant", f"Invalid JWT: {exc}")
        if not claims.get("scope"):
            return _oauth_error("invalid_scope", "No scope in the assertion.")
        access_token = "ya29.local-" + secrets.token_urlsafe(32)
        with self._lock:
            self._access_tokens.add(access_token)
        return web.json_response(
            {
                "access_token": access_token,
                "expires_in": ACCESS_TOKEN_LIFETIME,
                "token_type": "Bearer",
            }
        )

    def _verify_assertion(self, assertion: str) -> dict[str, Any]:
        key_id = jwt.decode_header(assertion).get("kid")
        with self._lock:
            account = self._accounts.get(key_id) if isinstance(key_id, str) else None
        if account is None:
            raise ValueError(f"unknown key {key_id!r}")
        claims: dict[str, Any] = jwt.decode(
            assertion,
            certs={key_id: account.public_key_pem},
            audience=[GOOGLE_TOKEN_URL, self.token_url],
        )
        if claims.get("iss") != account.client_email:
            raise ValueError(f"key {key_id!r} does not belong to {claims.get('iss')!r}")
        return claims

    # -- the send endpoint -----------------------------------------------------------------

    async def _handle_send(self, request: web.Request) -> web.Response:
        project_id = request.match_info["project_id"]
        try:
            body = await request.json()
        except ValueError:
            return self._reject("Invalid JSON payload received.")
        message = body.get("message") if isinstance(body, dict) else None
        # firebase-admin 7.7 deprecates `token` for `fid` (an installation ID); both address
        # one app instance and are treated alike here.
        token = (message.get("token") or message.get("fid")) if isinstance(message, dict) else None
        if not isinstance(message, dict) or not isinstance(token, str) or not token:
            return self._reject("Recipient of the message is not set.")
        header = request.headers.get("Authorization", "")
        record = ReceivedMessage(
            token=token,
            message=message,
            project_id=project_id,
            validate_only=bool(body.get("validate_only", False)),
            received_at=time.time(),
        )
        with self._changed:
            authorized = header.startswith("Bearer ") and header[7:] in self._access_tokens
            rule = self._rule_for(token)
            if authorized:
                self._attempts[token] += 1
            error = rule.error if authorized and rule.fails(self._attempts[token]) else None
            record.held = authorized and (self._holding or rule.hold)
            delay = self._latency + rule.delay
            self._records.append(record)
            if record.notification_id is not None:
                self._received_pairs[(token, record.notification_id)] += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            self._waiting_in_hold += int(record.held)
            self._changed.notify_all()
        if not authorized:
            self._answered(record, 401)
            return _google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
            )
        try:
            if record.held:
                await self._wait_for_release()
            if delay > 0:
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            self._answered(record, None)
            raise
        if error is not None:
            reply = ERROR_REPLIES[error]
            self._answered(record, reply.code)
            return _fcm_error(reply, rule.retry_after)
        self._answered(record, 200)
        message_id = (
            "fake_message_id"
            if record.validate_only
            else f"0:{time.time_ns() // 1000}%{next(self._message_ids):016x}"
        )
        return web.json_response({"name": f"projects/{project_id}/messages/{message_id}"})

    def _rule_for(self, token: str) -> TokenRule:
        rule = self._rules.get(token)
        if rule is not None:
            return rule
        for prefix, prefix_rule in self._prefix_rules.items():
            if token.startswith(prefix):
                return prefix_rule
        return SUCCESS

    async def _wait_for_release(self) -> None:
        try:
            await self._release.wait()
        finally:
            with self._lock:
                self._waiting_in_hold -= 1

    def _release_held(self) -> None:
        # Runs on the loop: wake every waiter, and give later holds a fresh event.
        released, self._release = self._release, asyncio.Event()
        released.set()

    def _answered(self, record: ReceivedMessage, status: int | None) -> None:
        """Close the record: `status` None means the client went away unanswered."""
        with self._changed:
            self._in_flight -= 1
            if status is None:
                record.dropped = True
                self._dropped += 1
            else:
                record.status = status
                record.answered_at = time.time()
                self._statuses[status] += 1
                if status == 200 and record.notification_id is not None:
                    self._answered_pairs[(record.token, record.notification_id)] += 1
            self._changed.notify_all()

    def _reject(self, message: str) -> web.Response:
        with self._lock:
            self._rejected += 1
        return _google_error(400, "INVALID_ARGUMENT", message)

    # -- the control API -------------------------------------------------------------------

    async def _control_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _control_messages(self, request: web.Request) -> web.Response:
        records = self.messages(token=request.query.get("token"))
        return web.json_response([record.to_json() for record in records])

    async def _control_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response(self.stats())

    async def _control_rules(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        try:
            tokens = {t: TokenRule.from_json(r) for t, r in body.get("tokens", {}).items()}
            prefixes = {p: TokenRule.from_json(r) for p, r in body.get("prefixes", {}).items()}
        except (AttributeError, TypeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        for token, rule in tokens.items():
            self.set_rule(token, rule)
        for prefix, rule in prefixes.items():
            self.set_prefix_rule(prefix, rule)
        with self._lock:
            return web.json_response(
                {
                    "tokens": {t: r.to_json() for t, r in self._rules.items()},
                    "prefixes": {p: r.to_json() for p, r in self._prefix_rules.items()},
                }
            )

    async def _control_config(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        if "latency_ms" in body:
            self.latency = float(body["latency_ms"]) / 1000
        if body.get("hold") is True:
            self.hold()
        elif body.get("hold") is False:
            self.release()
        with self._lock:
            return web.json_response({"latency_ms": self._latency * 1000, "hold": self._holding})

    async def _control_release(self, request: web.Request) -> web.Response:
        self.release()
        return web.json_response({"released": True})


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object")
    return body


def _google_error(code: int, status: str, message: str) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, "status": status}}, status=code
    )


def _fcm_error(reply: _ErrorReply, retry_after: int | None) -> web.Response:
    body = {
        "error": {
            "code": reply.code,
            "message": reply.message,
            "status": reply.status,
            "details": [{"@type": FCM_ERROR_TYPE, "errorCode": reply.error_code}],
        }
    }
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return web.json_response(body, status=reply.code, headers=headers)


def _oauth_error(error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=400)


# -- service accounts ------------------------------------------------------------------------


def new_service_account(token_url: str, project_id: str) -> tuple[dict[str, str], str]:
    """A service-account JSON body with a fresh RSA 2048 key, and that key's public half (PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    client_email = f"fcm-test@{project_id}.iam.gserviceaccount.com"
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": private_pem,
        "client_email": client_email,
        "client_id": str(10**20 + secrets.randbelow(9 * 10**20)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_url,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": (
            f"https://www.googleapis.com/robot/v1/metadata/x509/{quote(client_email)}"
        ),
        "universe_domain": "googleapis.com",
    }
    return info, public_pem


def write_service_account(
    path: str | os.PathLike[str], server: FcmServer, project_id: str = DEFAULT_PROJECT_ID
) -> Path:
    """Write a service-account JSON that firebase-admin can use against `server`."""
    target = Path(path)
    target.write_text(json.dumps(server.add_service_account(project_id), indent=2))
    target.chmod(0o600)
    return target


def point_messaging_at(
    app: firebase_admin.App, server: FcmEndpoint, retries: Retry | None = None
) -> None:
    """Make `app`'s messaging service send to the stand-in instead of fcm.googleapis.com.

    firebase-admin has no emulator setting for messaging: this rewrites the service's send URL
    and mounts, for the stand-in's address, the adapter firebase-admin mounts for
    fcm.googleapis.com (100 pooled connections, its default urllib3 retries unless `retries`
    says otherwise).
    """
    from firebase_admin import _http_client, messaging

    service = messaging._get_messaging_service(app)
    service._fcm_url = server.send_url(app.project_id)
    adapter = requests.adapters.HTTPAdapter(
        pool_connections=100,
        pool_maxsize=100,
        max_retries=retries if retries is not None else _http_client.DEFAULT_RETRY_CONFIG,
    )
    service._client.session.mount(server.base_url + "/", adapter)


# -- the stand-in as a separate process --------------------------------------------------------


class FcmServerProcess(FcmEndpoint):
    """`python -m tests.fcm_server` in a child process, with a client for its control API."""

    def __init__(
        self,
        port: int = 0,
        latency_ms: float = 0.0,
        service_account: str | os.PathLike[str] | None = None,
        project_id: str = DEFAULT_PROJECT_ID,
    ) -> None:
        self.base_url = ""
        self.service_account = Path(service_account) if service_account is not None else None
        self._args = [
            sys.executable,
            "-m",
            "tests.fcm_server",
            "--port",
            str(port),
            "--latency-ms",
            str(latency_ms),
            "--project-id",
            project_id,
        ]
        if self.service_account is not None:
            self._args += ["--service-account", str(self.service_account)]
        self._process: subprocess.Popen[str] | None = None
        self._http = requests.Session()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = 20.0) -> Self:
        """Start the process and wait for its ready line."""
        self._process = subprocess.Popen(
            self._args, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                self.stop()
                raise TimeoutError(f"the FCM stand-in process was not ready within {timeout} s")
        line = self._process.stdout.readline()
        if not line:
            code = self._process.wait(timeout=5)
            raise RuntimeError(f"the FCM stand-in process exited with {code} before it was ready")
        self.base_url = json.loads(line)["base_url"]
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it lingers; returns the exit code."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._http.close()
        return self._process.returncode

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "stats")

    def messages(self, token: str | None = None) -> list[dict[str, Any]]:
        params = {"token": token} if token is not None else None
        response = self._http.get(f"{self.base_url}/_control/messages", params=params, timeout=30)
        response.raise_for_status()
        records: list[dict[str, Any]] = response.json()
        return records

    def reset(self) -> dict[str, Any]:
        return self._call("POST", "reset")

    def set_rules(
        self,
        tokens: dict[str, TokenRule] | None = None,
        prefixes: dict[str, TokenRule] | None = None,
    ) -> dict[str, Any]:
        return self._call(
            "POST",
            "rules",
            {
                "tokens": {t: r.to_json() for t, r in (tokens or {}).items()},
                "prefixes": {p: r.to_json() for p, r in (prefixes or {}).items()},
            },
        )

    def configure(
        self, latency_ms: float | None = None, hold: bool | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if latency_ms is not None:
            body["latency_ms"] = latency_ms
        if hold is not None:
            body["hold"] = hold
        return self._call("POST", "config", body)

    def release(self) -> dict[str, Any]:
        return self._call("POST", "release")

    def _call(self, method: str, name: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._http.request(
            method, f"{self.base_url}/_control/{name}", json=body, timeout=30
        )
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fcm_server",
        description="Serve a local stand-in for FCM HTTP v1 and Google's OAuth2 token endpoint.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay of every send answer")
    parser.add_argument(
        "--service-account", type=Path, help="write a service-account JSON trusted by the server"
    )
    parser.add_argument("--project-id", default=DEFAULT_PROJECT_ID)
    args = parser.parse_args(argv)
    server = FcmServer(host=args.host, port=args.port, latency=args.latency_ms / 1000)

    def announce() -> None:
        if args.service_account is not None:
            write_service_account(args.service_account, server, args.project_id)
        ready = {
            "base_url": server.base_url,
            "token_url": server.token_url,
            "pid": os.getpid(),
            "service_account": str(args.service_account) if args.service_account else None,
        }
        print(json.dumps(ready), flush=True)

    asyncio.run(server.serve(announce))
    return 0


if __name__ == "__main__":
    sys.exit(main())
