"""Firebase Cloud Messaging (HTTP v1) through one pooled asynchronous client per process.

Why not firebase-admin's `send_each`: it spends a thread and a `requests` call per message, and
on a small machine the sender's CPU, not FCM, is what limits a large fan-out. Here each process
keeps one aiohttp `ClientSession` on an event loop of its own (a background thread), talking
HTTP/1.1 with keep-alive and up to `CONCURRENCY` requests in flight. `send_each`, called from a
job's thread, encodes the batch, hands it to the loop and waits for every answer, at most
`BATCH_DEADLINE_S`: what has no answer by then is reported as a timeout, worth trying again.
The session lives as long as the process, so it must be a process that outlives a job: the
`notify` worker runs its jobs in the worker process itself (see workers/worker.py).

firebase-admin (pinned to one version in pyproject.toml) still does three things:

- the credential: `Certificate.get_access_token()` fetches the OAuth access token from the
  service account's `token_uri`; it is fetched again shortly before it expires, and once more
  when FCM answers 401 (those messages are then sent once again with the new token);
- each message's body: a `messaging.Message` built by `_message` is encoded to the v1 JSON by
  firebase-admin's own encoder (`messaging._MessagingService.encode_message`, a private API:
  tests/test_fcm_encoding.py pins what it produces, so an upgrade that changes it fails CI);
- the error classes: each answer that is not 200 becomes the `FirebaseError` subclass
  firebase-admin would have raised for it (FCM's `errorCode` first, then the canonical status,
  then the HTTP status).

Each message's result is sorted into: accepted; a token that will never work again
(UNREGISTERED, INVALID_ARGUMENT, SENDER_ID_MISMATCH: forget the device); worth trying again later
(429, 5xx, timeouts, connections lost, with FCM's Retry-After); or failed for another reason.
Nothing is retried here except a connection that could not be opened (nothing was sent) and a
401: FCM's 429 and 5xx go back to the outbox, which tries again after its own jittered backoff,
honouring Retry-After.

`endpoint` is the one place messages go somewhere other than Google (the local FCM stand-in of
the tests and benchmarks, tests/fcm_server.py, or an egress proxy): the send URL is built on it.
firebase-admin itself sends nothing, so nothing in it is patched; OAuth tokens still come from
the service account's own `token_uri`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import ssl
import threading
import urllib.request
import warnings
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aiohttp
import certifi
import firebase_admin
from firebase_admin import credentials, exceptions, messaging
from google.auth import exceptions as google_auth_exceptions

from notifications.credentials import service_account_info
from notifications.headers import retry_after_seconds
from notifications.push import MAX_BATCH, PushMessage, PushResult

log = logging.getLogger("fieldcast.push")

T = TypeVar("T")

GOOGLE_ENDPOINT = "https://fcm.googleapis.com"
# Requests in flight at once, on as many kept-alive connections.
CONCURRENCY = 100
# One request, from asking for a connection to the last byte of the answer.
HTTP_TIMEOUT_S = 15
# One batch of at most MAX_BATCH messages: what has no answer by then counts as a timeout, so a
# job's few batches stay well inside the notify queue's hard limit (workers/queues.py).
BATCH_DEADLINE_S = 40
# Idle connections are closed before FCM would close them under a request.
KEEPALIVE_S = 30
# An access token is fetched again when it has less than this left.
TOKEN_MARGIN = timedelta(minutes=5)

# What firebase-admin sends beside each v1 request (messaging._MessagingService._fcm_headers and
# _http_client.METRICS_HEADERS).
_CLIENT_HEADERS = {
    "X-GOOG-API-FORMAT-VERSION": "2",
    "X-FIREBASE-CLIENT": f"fire-admin-python/{firebase_admin.__version__}",
    "Content-Type": "application/json; charset=UTF-8",
}

_PERMANENT: tuple[tuple[type[Exception], str], ...] = (
    (messaging.UnregisteredError, "unregistered"),
    (messaging.SenderIdMismatchError, "sender_mismatch"),
    (exceptions.InvalidArgumentError, "invalid_token"),
)
_TRANSIENT: tuple[tuple[type[Exception], str], ...] = (
    (messaging.QuotaExceededError, "quota_exceeded"),
    (exceptions.ResourceExhaustedError, "quota_exceeded"),
    (exceptions.UnavailableError, "unavailable"),
    (exceptions.InternalError, "internal"),
    (exceptions.DeadlineExceededError, "timeout"),
    (exceptions.UnknownError, "unknown"),
)

# How firebase-admin turns an FCM error answer into an exception: FCM's own errorCode first
# (messaging._MessagingService.FCM_ERROR_TYPES), then the canonical status, then the HTTP
# status (firebase_admin._utils). Spelled out with the public classes.
_FCM_ERRORS: dict[str, type[exceptions.FirebaseError]] = {
    "APNS_AUTH_ERROR": messaging.ThirdPartyAuthError,
    "QUOTA_EXCEEDED": messaging.QuotaExceededError,
    "SENDER_ID_MISMATCH": messaging.SenderIdMismatchError,
    "THIRD_PARTY_AUTH_ERROR": messaging.ThirdPartyAuthError,
    "UNREGISTERED": messaging.UnregisteredError,
}
_STATUS_ERRORS: dict[str, type[exceptions.FirebaseError]] = {
    exceptions.INVALID_ARGUMENT: exceptions.InvalidArgumentError,
    exceptions.FAILED_PRECONDITION: exceptions.FailedPreconditionError,
    exceptions.OUT_OF_RANGE: exceptions.OutOfRangeError,
    exceptions.UNAUTHENTICATED: exceptions.UnauthenticatedError,
    exceptions.PERMISSION_DENIED: exceptions.PermissionDeniedError,
    exceptions.NOT_FOUND: exceptions.NotFoundError,
    exceptions.ABORTED: exceptions.AbortedError,
    exceptions.ALREADY_EXISTS: exceptions.AlreadyExistsError,
    exceptions.CONFLICT: exceptions.ConflictError,
    exceptions.RESOURCE_EXHAUSTED: exceptions.ResourceExhaustedError,
    exceptions.CANCELLED: exceptions.CancelledError,
    exceptions.DATA_LOSS: exceptions.DataLossError,
    exceptions.UNKNOWN: exceptions.UnknownError,
    exceptions.INTERNAL: exceptions.InternalError,
    exceptions.UNAVAILABLE: exceptions.UnavailableError,
    exceptions.DEADLINE_EXCEEDED: exceptions.DeadlineExceededError,
}
_HTTP_STATUSES: dict[int, str] = {
    400: exceptions.INVALID_ARGUMENT,
    401: exceptions.UNAUTHENTICATED,
    403: exceptions.PERMISSION_DENIED,
    404: exceptions.NOT_FOUND,
    409: exceptions.CONFLICT,
    412: exceptions.FAILED_PRECONDITION,
    429: exceptions.RESOURCE_EXHAUSTED,
    500: exceptions.INTERNAL,
    503: exceptions.UNAVAILABLE,
}
_FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


@dataclass(frozen=True)
class Answer:
    """What came back for one request: an HTTP answer, or the transport error instead."""

    status: int = 0
    content: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    error: BaseException | None = None

    @property
    def status_code(self) -> int:
        """`FirebaseError.http_response` is a `requests` response elsewhere: same names here."""
        return self.status


class FcmSink:
    def __init__(
        self,
        service_account: str,
        *,
        project_id: str | None = None,
        endpoint: str = GOOGLE_ENDPOINT,
        concurrency: int = CONCURRENCY,
        batch_deadline_s: float = BATCH_DEADLINE_S,
    ) -> None:
        self._service_account = service_account
        self._project_id = project_id
        self._endpoint = endpoint.rstrip("/")
        self._concurrency = concurrency
        self._batch_deadline_s = batch_deadline_s
        self._credential: credentials.Certificate | None = None
        self._url = ""
        self._token: str | None = None
        self._token_expiry: datetime | None = None
        self._lock = threading.Lock()
        self._client: _AsyncClient | None = None
        # Clients a forked child inherited: kept, never used, so that nothing of the parent's
        # loop or connections is even garbage-collected in the child.
        self._inherited: list[_AsyncClient] = []

    # -- set-up ---------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Load the credentials (parse the private key) now rather than in the first job. Opens
        no connection and fetches no token."""
        self._get_credential()

    def _get_credential(self) -> credentials.Certificate:
        with self._lock:
            if self._credential is None:
                credential = credentials.Certificate(service_account_info(self._service_account))
                project_id = self._project_id or credential.project_id
                if not project_id:
                    raise ValueError("the FCM service account names no project; set a project id")
                self._url = f"{self._endpoint}/v1/projects/{project_id}/messages:send"
                self._credential = credential
            return self._credential

    def _get_client(self) -> _AsyncClient:
        with self._lock:
            if self._client is None or self._client.pid != os.getpid():
                # A forked child never touches its parent's loop or connections: it leaves
                # them be (closing would pull sockets from under the parent) and opens its own.
                if self._client is not None:
                    self._inherited.append(self._client)
                self._client = _AsyncClient(self._concurrency, _proxy_for(self._endpoint))
            return self._client

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None and client.pid == os.getpid():
            client.close()

    # -- sending --------------------------------------------------------------------------------

    def send_each(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        if len(messages) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} messages per batch")
        if not messages:
            return []
        self._get_credential()
        bodies = encode_batch(messages)
        try:
            token = self._access_token()
        except google_auth_exceptions.GoogleAuthError as exc:
            # No message was sent: the whole batch waits for the outbox's next try.
            log.warning("FCM access token for a batch of %d failed: %s", len(messages), exc)
            return [PushResult(accepted=False, error="unavailable", transient=True)] * len(messages)
        client = self._get_client()
        answers = client.send(self._url, _headers(token), bodies, self._batch_deadline_s)
        unauthorized = [i for i, a in enumerate(answers) if a is not None and a.status == 401]
        if unauthorized:
            # The token was revoked or expired early: one new token, one more try each.
            try:
                token = self._access_token(rejected=token)
            except google_auth_exceptions.GoogleAuthError as exc:
                log.warning("FCM access token after a 401 failed: %s", exc)
            else:
                again = client.send(
                    self._url,
                    _headers(token),
                    [bodies[i] for i in unauthorized],
                    self._batch_deadline_s,
                )
                for i, answer in zip(unauthorized, again, strict=True):
                    answers[i] = answer
        return [result(answer) for answer in answers]

    def _access_token(self, rejected: str | None = None) -> str:
        """The current access token; a new one when it is about to expire or FCM refused it
        (unless another thread already fetched a newer one)."""
        with self._lock:
            now = datetime.now(UTC)
            fresh = (
                self._token is not None
                and self._token != rejected
                and (self._token_expiry is None or self._token_expiry - now > TOKEN_MARGIN)
            )
            if not fresh:
                assert self._credential is not None
                info = self._credential.get_access_token()
                self._token = str(info.access_token)
                expiry = info.expiry
                # google-auth keeps expiry as naive UTC.
                self._token_expiry = (
                    expiry.replace(tzinfo=UTC)
                    if expiry is not None and expiry.tzinfo is None
                    else expiry
                )
            assert self._token is not None
            return self._token


class _AsyncClient:
    """One event loop in a daemon thread, owning one aiohttp session for this process."""

    def __init__(self, concurrency: int, proxy: str | None = None) -> None:
        self.pid = os.getpid()
        self._concurrency = concurrency
        self._proxy = proxy
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="fcm-sender", daemon=True)
        self._thread.start()
        self._session = self._call(self._open(), timeout=10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except BaseException:
            # Timed out, or the job was stopped (its time limit, a cold shutdown): nothing of
            # this call goes on sending in the background.
            future.cancel()
            raise

    async def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._concurrency,
            limit_per_host=self._concurrency,
            keepalive_timeout=KEEPALIVE_S,
            ttl_dns_cache=300,
            ssl=_tls_context(),
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S),
            skip_auto_headers=("User-Agent",),
            raise_for_status=False,
            # FCM sets no cookies: skip the jar's work on every request and answer.
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    def send(
        self, url: str, headers: dict[str, str], bodies: list[bytes], deadline_s: float
    ) -> list[Answer | None]:
        """POST every body; an answer per body, None where none came before the deadline."""
        # The coroutine itself stops at the deadline; the wait here only backs it up.
        try:
            return self._call(self._send_all(url, headers, bodies, deadline_s), deadline_s + 10)
        except concurrent.futures.TimeoutError:
            log.warning("FCM batch of %d outlived its deadline; cancelled", len(bodies))
            return [None] * len(bodies)

    async def _send_all(
        self, url: str, headers: dict[str, str], bodies: list[bytes], deadline_s: float
    ) -> list[Answer | None]:
        answers: list[Answer | None] = [None] * len(bodies)
        positions = iter(range(len(bodies)))

        async def lane() -> None:
            # Each lane sends one message at a time, taking the next one from the shared
            # iterator: CONCURRENCY lanes are CONCURRENCY requests in flight.
            for i in positions:
                answers[i] = await self._post(url, headers, bodies[i])

        lanes = [asyncio.ensure_future(lane()) for _ in range(min(self._concurrency, len(bodies)))]
        try:
            await asyncio.wait(lanes, timeout=deadline_s)
        finally:
            # At the deadline, or when the caller gave up (this task is cancelled): the
            # requests still in flight are cancelled, their connections closed.
            late = [task for task in lanes if not task.done()]
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        return answers

    async def _post(self, url: str, headers: dict[str, str], body: bytes) -> Answer:
        for attempt in (1, 2):
            try:
                async with self._session.post(
                    url, data=body, headers=headers, proxy=self._proxy
                ) as response:
                    return Answer(response.status, await response.read(), response.headers)
            except aiohttp.ClientConnectorError as exc:
                # The connection could not be opened, so nothing was sent: once more.
                if attempt == 2:
                    return Answer(error=exc)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                return Answer(error=exc)
        raise AssertionError("unreachable")

    def close(self) -> None:
        try:
            self._call(self._session.close(), timeout=10)
        except (concurrent.futures.TimeoutError, RuntimeError) as exc:
            log.warning("closing the FCM session failed: %s", exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()


def _headers(token: str) -> dict[str, str]:
    return {**_CLIENT_HEADERS, "Authorization": f"Bearer {token}"}


def _proxy_for(endpoint: str) -> str | None:
    """The proxy the environment names for the endpoint (HTTPS_PROXY, NO_PROXY, ...), read once
    rather than on every request."""
    scheme, _, rest = endpoint.partition("://")
    host = rest.split("/", 1)[0]
    if urllib.request.proxy_bypass(host):
        return None
    return urllib.request.getproxies().get(scheme)


def _tls_context() -> ssl.SSLContext:
    """Certificates as `requests` (and so firebase-admin) finds them: a bundle named by
    REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE, else certifi's."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    return ssl.create_default_context(cafile=bundle or certifi.where())


# -- messages ------------------------------------------------------------------------------------


def encode(push: PushMessage) -> bytes:
    """The v1 request body for one push, encoded by firebase-admin."""
    encoded = messaging._MessagingService.encode_message(build_message(push))
    return json.dumps({"message": encoded}, separators=(",", ":")).encode()


def encode_batch(pushes: Sequence[PushMessage]) -> list[bytes]:
    """The v1 request bodies of a batch, as `encode` makes them.

    The pushes of one notification to a user's devices in the same language differ only in the
    registration token, so firebase-admin encodes each once and each device's body is that
    encoding with its own token (the encoder's top-level `token`, pinned by
    tests/test_fcm_encoding.py).
    """
    encoded: dict[tuple[Any, ...], dict[str, Any]] = {}
    bodies = []
    for push in pushes:
        key = _template_key(push)
        template = encoded.get(key)
        if template is None:
            template = messaging._MessagingService.encode_message(build_message(push))
            encoded[key] = template
        message = {**template, "token": push.token}
        bodies.append(json.dumps({"message": message}, separators=(",", ":")).encode())
    return bodies


def _template_key(push: PushMessage) -> tuple[Any, ...]:
    """Everything of a push its encoding depends on, except the registration token."""
    return (
        push.notification_id,
        push.user_id,
        push.type,
        push.title,
        push.body,
        push.badge,
        push.title_loc_key,
        push.title_loc_args,
        push.body_loc_key,
        push.body_loc_args,
        push.group,
        push.image,
        tuple(push.data.items()),
    )


def build_message(push: PushMessage) -> messaging.Message:
    """The v1 message of a push. Field names as firebase-admin's encoder writes them:
    `android.notification.{title,body}_loc_{key,args}`, `tag`; `apns.payload.aps.alert.
    {title-loc-key,title-loc-args,loc-key,loc-args}`, `thread-id`, `mutable-content` (the
    Notification Service Extension runs and can fetch the image); `notification.image` (Android)
    and `apns.fcm_options.image` (iOS)."""
    collapse = push.collapse_id
    with warnings.catch_warnings():
        # The apps register FCM registration tokens, which FCM HTTP v1 takes as
        # `message.token`; firebase-admin 7 already nudges towards installation ids (`fid`).
        warnings.filterwarnings("ignore", "Message.token is deprecated", DeprecationWarning)
        return messaging.Message(
            token=push.token,
            notification=messaging.Notification(title=push.title, body=push.body, image=push.image),
            data=push.data,
            android=messaging.AndroidConfig(
                priority="high",
                collapse_key=collapse,
                notification=messaging.AndroidNotification(
                    tag=push.tag,
                    sound="default",
                    notification_count=push.badge,
                    title_loc_key=push.title_loc_key,
                    title_loc_args=list(push.title_loc_args) or None,
                    body_loc_key=push.body_loc_key,
                    body_loc_args=list(push.body_loc_args) or None,
                ),
            ),
            apns=messaging.APNSConfig(
                headers={
                    "apns-priority": "10",
                    "apns-push-type": "alert",
                    "apns-collapse-id": collapse,
                },
                payload=messaging.APNSPayload(
                    aps=messaging.Aps(
                        alert=messaging.ApsAlert(
                            title=push.title,
                            body=push.body,
                            title_loc_key=push.title_loc_key,
                            title_loc_args=list(push.title_loc_args) or None,
                            loc_key=push.body_loc_key,
                            loc_args=list(push.body_loc_args) or None,
                        ),
                        badge=push.badge,
                        sound="default",
                        mutable_content=True,
                        thread_id=push.thread_id,
                    )
                ),
                fcm_options=messaging.APNSFCMOptions(image=push.image) if push.image else None,
            ),
            webpush=messaging.WebpushConfig(
                headers={"Urgency": "high"},
                notification=messaging.WebpushNotification(tag=collapse, image=push.image),
            ),
        )


# -- answers -------------------------------------------------------------------------------------


def result(answer: Answer | None) -> PushResult:
    """One message's outcome, from its answer (None: no answer before the deadline)."""
    if answer is not None and answer.error is None and answer.status == 200:
        return PushResult(accepted=True, message_id=_message_id(answer.content))
    return classify(error_for(answer))


def error_for(answer: Answer | None) -> exceptions.FirebaseError:
    """The firebase-admin error for an answer that is not a success."""
    if answer is None:
        return exceptions.DeadlineExceededError("no answer before the batch's deadline")
    if answer.error is not None:
        cause = answer.error
        if isinstance(cause, TimeoutError):
            return exceptions.DeadlineExceededError(f"timed out: {cause!r}", cause=cause)
        if isinstance(cause, aiohttp.ClientConnectionError | OSError):
            return exceptions.UnavailableError(f"connection failed: {cause!r}", cause=cause)
        return exceptions.UnknownError(f"request failed: {cause!r}", cause=cause)
    error: dict[str, Any] = {}
    try:
        parsed = json.loads(answer.content)
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            error = parsed["error"]
    except ValueError:
        pass
    message = str(error.get("message") or f"unexpected HTTP answer {answer.status}")
    fcm_code = next(
        (
            detail.get("errorCode")
            for detail in error.get("details") or ()
            if isinstance(detail, dict) and detail.get("@type") == _FCM_ERROR_TYPE
        ),
        None,
    )
    kind = _FCM_ERRORS.get(fcm_code) if isinstance(fcm_code, str) else None
    if kind is None:
        status = error.get("status") or _HTTP_STATUSES.get(answer.status, exceptions.UNKNOWN)
        kind = _STATUS_ERRORS.get(status, exceptions.UnknownError)
    return kind(message, http_response=answer)


def classify(error: exceptions.FirebaseError) -> PushResult:
    for kind, code in _PERMANENT:
        if isinstance(error, kind):
            return PushResult(accepted=False, error=code, drop_token=True)
    for kind, code in _TRANSIENT:
        if isinstance(error, kind):
            return PushResult(
                accepted=False, error=code, transient=True, retry_after=_retry_after(error)
            )
    if isinstance(error, messaging.ThirdPartyAuthError):
        return PushResult(accepted=False, error="apns_auth")
    return PushResult(accepted=False, error="fcm_error")


def _message_id(content: bytes) -> str | None:
    try:
        name = json.loads(content).get("name")
    except (ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None


def _retry_after(error: exceptions.FirebaseError) -> float | None:
    response = error.http_response
    return retry_after_seconds(
        response.headers.get("Retry-After") if response is not None else None
    )
