"""The Idempotency-Key header on authenticated POSTs, applied to every endpoint."""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta

from flask import Response, g, request

from api.runtime import context, db_session
from fieldcast.idempotency import services as idempotency
from fieldcast.outages import is_outage
from fieldcast.policy import Principal

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
# Headers worth replaying; hop-by-hop and per-request ones are not.
_KEPT_HEADERS = ("Content-Type", "Location", "ETag")


class ReplayResponse(Exception):
    """Raised to short-circuit the view with the stored response."""

    def __init__(self, response: Response) -> None:
        super().__init__("idempotent replay")
        self.response = response


def _fingerprint() -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b"\0")
    digest.update(request.full_path.encode())
    digest.update(b"\0")
    digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def begin_idempotent_request(principal: Principal) -> None:
    if request.method != "POST":
        return
    key = request.headers.get(HEADER)
    if key is None:
        return
    # The documented form of the key holds on every POST, whether or not its body is replayed.
    idempotency.check_key(key.strip())
    # JSON requests only: binary bodies (upload chunks) are resumed by their own protocol and
    # must not be read whole into memory to be fingerprinted.
    if request.mimetype not in ("application/json", ""):
        return
    outcome = idempotency.begin(
        db_session(),
        org_id=principal.org_id,
        user_id=principal.user_id,
        key=key.strip(),
        fingerprint=_fingerprint(),
        ttl=timedelta(seconds=context().settings.idempotency_ttl_s),
    )
    if isinstance(outcome, idempotency.Replay):
        response = Response(outcome.body, status=outcome.status)
        for name, value in outcome.headers.items():
            response.headers[name] = value
        response.headers[REPLAYED_HEADER] = "true"
        raise ReplayResponse(response)
    g.idempotency_key_id = outcome.key_id


def finish_idempotent_request(response: Response) -> Response:
    """Registered as `after_request`: remember a success, forget a failure."""
    key_id = g.pop("idempotency_key_id", None)
    if key_id is None:
        return response
    session = db_session()
    if 200 <= response.status_code < 300 and not response.is_streamed:
        headers = {
            name: response.headers[name] for name in _KEPT_HEADERS if name in response.headers
        }
        idempotency.complete(
            session,
            key_id,
            status=response.status_code,
            body=response.get_data(),
            headers=headers,
        )
    else:
        try:
            idempotency.abandon(session, key_id)
        except Exception as exc:
            if not is_outage(exc):
                raise
            # The request failed with the same outage. Its transaction, and the key with it,
            # rolled back; a key committed earlier in the request expires with its TTL.
            log.warning("could not forget Idempotency-Key %s during an outage", key_id)
    return response
