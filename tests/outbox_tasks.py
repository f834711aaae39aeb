"""Outbox tasks for the tests, registered on the global registry at import.

Their effects are observable from the test process: the Redis ones append to a list or bump a
counter named in the payload (on the Redis given by `redis_url` in the payload); the PostgreSQL
ones insert into `MARKS_TABLE`, in the task's own transaction, which the test creates.

RQ work horses are forked from the test process, so the registrations made here are inherited.
Importing this module again (a reload, or under another name) replaces the registrations instead
of raising on the registry's duplicate check.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

from redis import Redis
from sqlalchemy import text
from sqlalchemy.orm import Session

from fieldcast.outbox.services import Task, TaskFunc, TransientError, tasks

log = logging.getLogger(__name__)

MARKS_TABLE = "test_outbox_marks"

APPEND_MARK = "tests.append_mark"
FLAKY = "tests.flaky"
BOOM = "tests.boom"
ALWAYS_TRANSIENT = "tests.always_transient"
DIE_ONCE = "tests.die_once"
PG_MARK = "tests.pg_mark"
PG_MARK_THEN_BOOM = "tests.pg_mark_then_boom"
LOG_LINE = "tests.log_line"
NOTIFY_MARK = "tests.notify_mark"
FAIR_MARK = "tests.fair_mark"


def _register(
    name: str, *, queue: str = "default", max_attempts: int = 5, fair_share: bool = False
) -> Any:
    def decorator(func: TaskFunc) -> TaskFunc:
        tasks.tasks[name] = Task(name, func, queue, max_attempts, fair_share=fair_share)
        return func

    return decorator


def _redis(payload: dict[str, Any]) -> Redis:
    return Redis.from_url(payload["redis_url"])


@_register(APPEND_MARK)
def append_mark(session: Session, payload: dict[str, Any]) -> None:
    """RPUSH payload["value"] onto the list payload["key"]."""
    with _redis(payload) as client:
        client.rpush(payload["key"], payload["value"])


@_register(FAIR_MARK, fair_share=True)
def fair_mark(session: Session, payload: dict[str, Any]) -> None:
    """As APPEND_MARK, for a fair-shared task (its organisation's share at a time)."""
    with _redis(payload) as client:
        client.rpush(payload["key"], payload["value"])


@_register(NOTIFY_MARK, queue="notify")
def notify_mark(session: Session, payload: dict[str, Any]) -> None:
    """Like append_mark, on the `notify` queue."""
    append_mark(session, payload)


@_register(FLAKY)
def flaky(session: Session, payload: dict[str, Any]) -> None:
    """Fail with TransientError for the first payload["fail_times"] calls, then append a mark."""
    with _redis(payload) as client:
        calls = int(client.incr(payload["counter"]))
        if calls <= int(payload["fail_times"]):
            raise TransientError(
                f"remote busy (call {calls})", retry_after=payload.get("retry_after")
            )
        client.rpush(payload["key"], payload["value"])


@_register(ALWAYS_TRANSIENT, max_attempts=2)
def always_transient(session: Session, payload: dict[str, Any]) -> None:
    raise TransientError("still busy")


@_register(BOOM)
def boom(session: Session, payload: dict[str, Any]) -> None:
    with _redis(payload) as client:
        client.incr(payload["counter"])
    raise ValueError("boom: " + str(payload.get("why", "on purpose")))


@_register(DIE_ONCE)
def die_once(session: Session, payload: dict[str, Any]) -> None:
    """Kill the work horse on the first call (a worker lost mid-task), succeed afterwards."""
    with _redis(payload) as client:
        calls = int(client.incr(payload["counter"]))
        if calls == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        client.rpush(payload["key"], payload["value"])


@_register(PG_MARK)
def pg_mark(session: Session, payload: dict[str, Any]) -> None:
    session.execute(
        text(f"INSERT INTO {MARKS_TABLE} (value) VALUES (:value)"),  # noqa: S608 - constant
        {"value": payload["value"]},
    )


@_register(PG_MARK_THEN_BOOM)
def pg_mark_then_boom(session: Session, payload: dict[str, Any]) -> None:
    pg_mark(session, payload)
    session.flush()
    raise RuntimeError("failed after writing")


@_register(LOG_LINE)
def log_line(session: Session, payload: dict[str, Any]) -> None:
    log.warning("task says %s", payload["value"])


def failing_periodic() -> None:
    """An RQ job function (not an outbox task) that always fails."""
    raise RuntimeError("periodic job failed")
