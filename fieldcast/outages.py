"""Telling an outage of PostgreSQL or Redis from a defect.

An outage passes: a client that backs off and retries succeeds once the service is back, so the
API answers 503 with `Retry-After` instead of a 500. A defect (a bad SQL statement, a violated
constraint, a timed-out query) stays a 500: retrying it would fail the same way.
"""

from __future__ import annotations

import psycopg
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import exc as sa_exc

# How long a client should wait before retrying: long enough for a restart or a failover to
# show, short enough that a phone's upload resumes soon after.
RETRY_AFTER_S = 5

# SQLSTATEs of a server that is going away, restarting or out of connection slots; class 08 is
# "connection exception".
_OUTAGE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def _psycopg_outage(error: BaseException) -> bool:
    if isinstance(error, psycopg.InterfaceError):
        return True  # the connection is closed or broken
    if isinstance(error, psycopg.OperationalError):
        sqlstate = error.sqlstate
        # No SQLSTATE: the client library itself failed to reach or lost the server.
        return sqlstate is None or sqlstate.startswith("08") or sqlstate in _OUTAGE_SQLSTATES
    return False


def _is_outage_error(error: BaseException) -> bool:
    # BusyLoadingError (Redis loading its data after a restart) is a ConnectionError.
    if isinstance(error, RedisConnectionError | RedisTimeoutError):
        return True
    # A disconnect seen by the pool, or no connection free in time.
    if isinstance(error, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError):
            return error.orig is not None and _psycopg_outage(error.orig)
        return False
    return _psycopg_outage(error)


def is_outage(error: BaseException) -> bool:
    """Whether `error`, or an error it was raised from, says PostgreSQL or Redis is unreachable."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if _is_outage_error(current):
            return True
        seen.add(id(current))
        current = current.__cause__
    return False
