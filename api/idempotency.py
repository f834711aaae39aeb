"""The Idempotency-Key header on authenticated POSTs, applied to every endpoint.

The key is inserted here, in the request's transaction; the unit of work (api/unit_of_work.py)
stores the response under it and commits both at once, or rolls both back. See
fieldcast/idempotency/services.py for what a retry meets after a crash at each point.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from flask import Response, g, request

from api.runtime import context, db_session
from fieldcast.idempotency import services as idempotency
from fieldcast.policy import Principal

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


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
