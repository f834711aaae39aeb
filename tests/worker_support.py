"""Helpers for tests that run real RQ workers in burst mode inside the test process.

`run_worker` configures logging, installs signal handlers and sets environment variables in the
calling process before it forks work horses; `preserved_process_state` puts all of that back so
one test's worker leaves nothing behind for the next test.
"""

from __future__ import annotations

import logging
import os
import signal
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import func, select

import fieldcast.context
from fieldcast.context import AppContext, build_context
from fieldcast.db import Database
from fieldcast.demo_media import send_whole_file
from fieldcast.models.outbox import OutboxJob, OutboxStatus
from fieldcast.models.uploads import Upload
from fieldcast.models.videos import Video
from fieldcast.outbox import services as outbox
from fieldcast.policy import Principal
from fieldcast.settings import Settings
from fieldcast.uploads import services as uploads
from media.sniff import SNIFF_BYTES, sniff
from workers.queues import QUEUE_NAMES
from workers.worker import run_worker

TASK_MODULE = "tests.outbox_tasks"
_LOGGERS = ("rq", "rq.worker", "rq.job", "rq.scheduler")
_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)
_ENV = ("RQ_WORKER_ID", "RQ_JOB_ID")


@contextmanager
def preserved_process_state() -> Iterator[None]:
    root = logging.getLogger()
    root_state = (list(root.handlers), root.level)
    loggers: dict[str, tuple[list[logging.Handler], int, bool]] = {}
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        loggers[name] = (list(logger.handlers), logger.level, logger.propagate)
    handlers: dict[int, Any] = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    env = {name: os.environ.get(name) for name in _ENV}
    try:
        yield
    finally:
        root.handlers[:] = root_state[0]
        root.setLevel(root_state[1])
        for name, (saved, level, propagate) in loggers.items():
            logger = logging.getLogger(name)
            logger.handlers[:] = saved
            logger.setLevel(level)
            logger.propagate = propagate
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        for name, value in env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def install_worker_context(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, db: Database, redis: Redis
) -> AppContext:
    """Build the context the worker (and its forked work horses) will use.

    Recording through `ctx.db` dispatches on commit to RQ on `redis`; the work horses inherit
    the context and rebuild its connections after the fork (workers.context.get_context).
    """
    ctx = build_context(settings, db=db, redis=redis)
    monkeypatch.setattr(fieldcast.context, "_current", ctx)
    return ctx


def drain_outbox(ctx: AppContext, *, rounds: int = 20) -> int:
    """Run the due outbox work in this process, as the workers would (without RQ); returns how
    many jobs ran. Work a job records runs in a later round, up to `rounds`."""
    ran = 0
    for _ in range(rounds):
        with ctx.db.session() as session:
            due = session.scalars(
                select(OutboxJob.id)
                .where(OutboxJob.status == OutboxStatus.PENDING, OutboxJob.run_after <= func.now())
                .order_by(OutboxJob.created_at)
            ).all()
        if not due:
            break
        for job_id in due:
            outbox.execute(ctx.db, job_id, lease=timedelta(seconds=60))
            ran += 1
    return ran


def run_burst(queues: Sequence[str] = QUEUE_NAMES) -> bool:
    """Run a burst-mode worker until the queues are empty. True when it ran at least one job."""
    with preserved_process_state():
        return run_worker(queues, burst=True, extra_task_modules=(TASK_MODULE,))


def upload_file(
    ctx: AppContext, author: Any, path: Path, *, title: str, filename: str | None = None
) -> uuid.UUID:
    """A draft and its file, sent through the upload service in one chunk as the tus endpoint
    does; the processing it records is left for the test to run.

    A file the endpoint refuses at its first bytes (text, a song) is stored without that
    check, so that processing's own checks, which every file still meets, can be tested."""
    principal = Principal(author)
    with ctx.db.unit_of_work() as session:
        video = Video(org_id=author.org_id, owner_id=author.id, title=title)
        session.add(video)
        session.commit()
        size = path.stat().st_size
        upload = uploads.create_upload(
            session,
            principal,
            ctx.storage,
            video_id=video.id,
            length=size,
            max_size=ctx.settings.limits.max_upload_bytes,
            expires_in=timedelta(hours=1),
            filename=filename,
        )
    if sniff(path.read_bytes()[:SNIFF_BYTES], whole_file=size <= SNIFF_BYTES).refusal:
        with path.open("rb") as stream, ctx.db.unit_of_work() as session:
            stored = session.get_one(Upload, upload.id)
            stored.offset, stored.state = ctx.storage.append_upload(
                stored.state, 0, stream, limit=size
            )
            uploads.finish(session, ctx.storage, stored)
        return video.id
    send_whole_file(ctx, principal, upload.id, path)
    return video.id
