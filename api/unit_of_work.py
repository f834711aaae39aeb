"""One unit of work per request: the request commits once, or not at all.

Services change rows and `flush()`; none commits. The request's session (api/runtime.py
`db_session`) holds everything the request did, the idempotency key it inserted included
(api/idempotency.py), and this module ends it. The order, for every request:

1. `before_request`: authentication, then `begin_idempotent_request` inserts the key (if any)
   in the request's transaction.
2. The view runs. A domain error, an HTTP error or an unexpected exception becomes its
   problem+json response through the app's error handlers; every response, the error
   handlers' included, then goes through the `after_request` hooks.
3. `finish_unit_of_work`, the FIRST `after_request` hook (registered last by `install`, and
   Flask runs an app's hooks in reverse order; no blueprint has hooks of its own):
   - a success (status below 400) stores the response under its idempotency key in the same
     transaction, then commits. The change and its stored response commit together. If the
     store or the commit fails, everything rolls back and the answer becomes the error's
     problem+json (503 `service_unavailable` for an outage): nothing was done and the key is
     free.
   - an error (status 400 or above), or a replayed response, rolls back: the key insert rolls
     back with the rest, so the key is free at once.
4. The later `after_request` steps (request id, cache headers, the access log, CORS) run on
   the committed response. Should one of them raise, Flask answers 500 and runs the hooks
   again; this hook then does nothing: the change is committed and its response stored, so
   the client's retry is replayed with `Idempotent-Replayed: true` and acts nothing twice.
5. The response is sent; `teardown_request` closes the session (rolling back whatever a
   streamed body might have started).

Streamed responses (a file, a playlist) are committed like any other before their body
streams; their body cannot be stored, so a key sent with one is forgotten in the same
transaction and a retry acts again.

Early commits: a few requests must commit before their end (`fieldcast.db.EarlyCommit`: the
bytes of a tus chunk stream with no transaction open, its offset commits once stored; a
reused refresh token ends its session family and still answers 401). An early commit carries
the key insert with it; should the request then fail, the key is deleted in a transaction of
its own, so no key waits "in progress" for its TTL.
"""

from __future__ import annotations

import logging
import uuid

from flask import Flask, Response, g
from sqlalchemy.orm import Session

from api.problems import from_unexpected
from api.runtime import context, discard_transaction
from fieldcast.db import commit_unit, early_commits
from fieldcast.idempotency import services as idempotency
from fieldcast.outages import is_outage

log = logging.getLogger(__name__)

# Headers worth replaying; hop-by-hop and per-request ones are not.
_KEPT_HEADERS = ("Content-Type", "Location", "ETag")


def install(app: Flask) -> None:
    """Register the unit of work's end. Call it after every other `after_request` hook is
    registered, so that it runs before them."""
    app.after_request(finish_unit_of_work)


def finish_unit_of_work(response: Response) -> Response:
    """Commit a success together with its stored response; roll back anything else."""
    if g.get("unit_of_work_finished"):
        return response  # a later hook raised: the 500 that followed passes through again
    g.unit_of_work_finished = True
    key_id: uuid.UUID | None = g.pop("idempotency_key_id", None)
    session: Session | None = g.get("db_session")
    if session is None:
        return response
    if response.status_code >= 400 or g.get("idempotent_replay"):
        _roll_back(session, key_id)
        return response
    try:
        if key_id is not None:
            _store(session, key_id, response)
        commit_unit(session)
    except Exception as exc:
        _roll_back(session, key_id)
        return from_unexpected(exc)
    return response


def _store(session: Session, key_id: uuid.UUID, response: Response) -> None:
    if response.is_streamed:
        # No body to replay: forget the key with the change, and a retry acts again.
        idempotency.release(session, key_id)
        return
    headers = {name: response.headers[name] for name in _KEPT_HEADERS if name in response.headers}
    idempotency.complete(
        session, key_id, status=response.status_code, body=response.get_data(), headers=headers
    )


def _roll_back(session: Session, key_id: uuid.UUID | None) -> None:
    carried_key = key_id is not None and bool(early_commits(session))
    discard_transaction(session)
    if not carried_key:
        return
    assert key_id is not None
    # An early commit carried the key; the request failed after it. Free the key now.
    try:
        with context().db.unit_of_work() as cleanup:
            idempotency.release(cleanup, key_id)
    except Exception as exc:
        if not is_outage(exc):
            raise
        log.warning("could not free Idempotency-Key %s during an outage; it expires", key_id)
