"""Access to the process's collaborators and the request's database session.

The request's session is one unit of work: see api/unit_of_work.py for when it commits."""

from __future__ import annotations

import logging

from flask import current_app, g
from sqlalchemy.orm import Session

from fieldcast.context import AppContext

EXTENSION_KEY = "fieldcast"

log = logging.getLogger(__name__)


def context() -> AppContext:
    ctx: AppContext = current_app.extensions[EXTENSION_KEY]
    return ctx


def db_session() -> Session:
    """The request's session, opened on first use and closed at teardown."""
    session: Session | None = g.get("db_session")
    if session is None:
        session = context().db.sessionmaker()
        g.db_session = session
    return session


def close_db_session(exc: BaseException | None = None) -> None:
    """Registered as `teardown_request`: the unit of work (api/unit_of_work.py) has committed
    or rolled back already; whatever is left (a streamed body's reads) rolls back."""
    session: Session | None = g.pop("db_session", None)
    if session is None:
        return
    try:
        if exc is not None or session.in_transaction():
            discard_transaction(session)
    finally:
        session.close()


def discard_transaction(session: Session) -> None:
    """Roll back the session's transaction, even when its connection died with the database."""
    try:
        session.rollback()
    except Exception:
        # The connection died with the database: drop it rather than return it to the pool,
        # so the next request gets a fresh one.
        log.warning("could not roll back the request's session; discarding its connection")
        session.invalidate()
