"""Firebase Cloud Messaging (HTTP v1) through firebase-admin.

Each batch goes out with `messaging.send_each` (at most 500 messages). The result of every
message is sorted into: accepted; a token that will never work again (UNREGISTERED,
INVALID_ARGUMENT, SENDER_ID_MISMATCH: forget the device); worth trying again later (429, 5xx,
timeouts, with FCM's Retry-After); or failed for another reason.

`endpoint` is for the one case where messages must go somewhere other than Google (a local FCM
stand-in for tests, or an egress proxy): firebase-admin has no setting for it, so
`_configure_transport` points the messaging service's send URL at it. OAuth tokens still come
from the service account's own `token_uri`.
"""

from __future__ import annotations

import logging
import os
import threading
import urllib.request
import uuid
import warnings
from collections.abc import Sequence
from typing import Any

import firebase_admin
import requests
from firebase_admin import credentials, exceptions, messaging
from urllib3.util.retry import Retry

from notifications.credentials import service_account_info
from notifications.headers import retry_after_seconds
from notifications.push import MAX_BATCH, PushMessage, PushResult

log = logging.getLogger("fieldcast.push")


GOOGLE_ENDPOINT = "https://fcm.googleapis.com"
HTTP_TIMEOUT_S = 15
# Connections kept to the endpoint: send_each runs one thread per message of a batch.
POOL_SIZE = MAX_BATCH

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


class FcmSink:
    def __init__(
        self,
        service_account: str,
        *,
        project_id: str | None = None,
        endpoint: str = GOOGLE_ENDPOINT,
    ) -> None:
        self._service_account = service_account
        self._project_id = project_id
        self._endpoint = endpoint.rstrip("/")
        self._app: firebase_admin.App | None = None
        # The process whose connection pool the app's HTTP session holds.
        self._pid = 0
        self._lock = threading.Lock()

    def _get_app(self) -> firebase_admin.App:
        with self._lock:
            if self._app is not None and self._pid != os.getpid():
                # Forked from the process that set the app up: connections that process pooled
                # must not be shared, so this one takes a pool of its own.
                _configure_transport(self._app, self._endpoint)
                self._pid = os.getpid()
            if self._app is None:
                info = service_account_info(self._service_account)
                options: dict[str, Any] = {"httpTimeout": HTTP_TIMEOUT_S}
                if self._project_id:
                    options["projectId"] = self._project_id
                app = firebase_admin.initialize_app(
                    credentials.Certificate(info), options, name=f"fieldcast-{uuid.uuid4()}"
                )
                _configure_transport(app, self._endpoint)
                self._app = app
                self._pid = os.getpid()
            return self._app

    def prepare(self) -> None:
        """Set up the app now: its credentials (the private key), messaging client and HTTP
        pool. A worker calls this before it forks a process per job, so each job inherits them
        instead of parsing the key and loading TLS settings again. Opens no connection."""
        self._get_app()

    def close(self) -> None:
        with self._lock:
            if self._app is not None:
                firebase_admin.delete_app(self._app)
                self._app = None

    def send_each(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        if len(messages) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} messages per batch")
        if not messages:
            return []
        app = self._get_app()
        try:
            # One token refresh before the batch: google-auth refreshes without a lock, and
            # every thread of send_each would otherwise fetch its own.
            app.credential.get_access_token()
            batch = messaging.send_each([_message(m) for m in messages], app=app)
        except exceptions.FirebaseError as exc:
            # The whole batch failed before any message was sent (credentials, network).
            log.warning("FCM batch of %d failed: %s", len(messages), exc)
            return [PushResult(accepted=False, error="unavailable", transient=True)] * len(messages)
        return [_result(response) for response in batch.responses]


def _configure_transport(app: firebase_admin.App, endpoint: str) -> None:
    """The messaging service's HTTP pool for `endpoint`, and its send URL when that is not
    Google's.

    The pool retries only failed connections: FCM's 429 and 5xx come back at once, and the
    outbox tries again after its own jittered backoff (honouring Retry-After), instead of a
    send_each thread sleeping through it while the worker waits.
    """
    service = messaging._get_messaging_service(app)
    if endpoint != GOOGLE_ENDPOINT:
        service._fcm_url = f"{endpoint}/v1/projects/{service._project_id}/messages:send"
    adapter = requests.adapters.HTTPAdapter(
        pool_connections=1,
        pool_maxsize=POOL_SIZE,
        max_retries=Retry(total=1, connect=1, read=0, status=0, other=0),
    )
    session = service._client.session
    session.mount(endpoint, adapter)
    # requests reads proxies, .netrc and the CA bundle from the environment on every request,
    # a third of a push's CPU: read them once here instead.
    session.proxies.update(urllib.request.getproxies())
    if endpoint.startswith("https://"):
        session.verify = (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        )
    session.trust_env = False


def _message(push: PushMessage) -> messaging.Message:
    collapse = push.collapse_id
    with warnings.catch_warnings():
        # The apps register FCM registration tokens, which FCM HTTP v1 takes as
        # `message.token`; firebase-admin 7 already nudges towards installation ids (`fid`).
        warnings.filterwarnings("ignore", "Message.token is deprecated", DeprecationWarning)
        return messaging.Message(
            token=push.token,
            notification=messaging.Notification(title=push.title, body=push.body),
            data=push.data,
            android=messaging.AndroidConfig(
                priority="high",
                collapse_key=collapse,
                notification=messaging.AndroidNotification(
                    tag=collapse, sound="default", notification_count=push.badge
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
                        badge=push.badge, sound="default", mutable_content=True, thread_id=push.type
                    )
                ),
            ),
            webpush=messaging.WebpushConfig(
                headers={"Urgency": "high"},
                notification=messaging.WebpushNotification(tag=collapse),
            ),
        )


def _result(response: messaging.SendResponse) -> PushResult:
    if response.success:
        return PushResult(accepted=True, message_id=response.message_id)
    error = response.exception
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


def _retry_after(error: Exception) -> float | None:
    response = getattr(error, "http_response", None)
    return retry_after_seconds(
        response.headers.get("Retry-After") if response is not None else None
    )
