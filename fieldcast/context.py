"""The long-lived collaborators of one process: settings, database, Redis, storage.

The API builds one in its app factory; each worker process builds its own on first use.
Building one connects to nothing: engines and clients connect lazily.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from redis import Redis

from fieldcast import passwords
from fieldcast.db import Database
from fieldcast.outbox.services import Dispatcher, install_dispatch
from fieldcast.outbox.services import tasks as outbox_tasks
from fieldcast.settings import Settings
from media.storage import Storage, storage_from_url
from notifications.email import EmailSender, sender_from_settings
from notifications.push import LogSink, PushSink
from notifications.sinks import sink_from_settings


@dataclass
class AppContext:
    settings: Settings
    db: Database
    redis: Redis
    storage: Storage
    dispatcher: Dispatcher
    push: PushSink = field(default_factory=LogSink)
    # SMTP when SMTP_URL is set, else .eml files in the data dir.
    email: EmailSender | None = None
    pid: int = field(default_factory=os.getpid)


_current: AppContext | None = None


def set_current(context: AppContext | None) -> None:
    """Make `context` the one that work running in this process (outbox tasks) uses."""
    global _current
    _current = context


def current() -> AppContext:
    if _current is None:
        raise RuntimeError("no AppContext is active in this process")
    return _current


def redis_from_url(url: str) -> Redis:
    return Redis.from_url(
        url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30
    )


def build_context(
    settings: Settings,
    *,
    db: Database | None = None,
    redis: Redis | None = None,
    storage: Storage | None = None,
    dispatcher: Dispatcher | None = None,
    push: PushSink | None = None,
    email: EmailSender | None = None,
) -> AppContext:
    settings.require("DATABASE_URL", "REDIS_URL")
    assert settings.database_url is not None and settings.redis_url is not None
    db = db or Database(settings.database_url)
    redis = redis or redis_from_url(settings.redis_url)
    storage = storage or storage_from_url(
        settings.storage_url, s3_endpoint_url=settings.s3_endpoint_url
    )
    if dispatcher is None:
        from workers.queues import RQDispatcher

        dispatcher = RQDispatcher(redis)
    install_dispatch(db.sessionmaker, dispatcher)
    passwords.configure(
        time_cost=settings.password_hash_time_cost, memory_kib=settings.password_hash_memory_kib
    )
    outbox_tasks.fair_share = settings.media_jobs_per_organisation
    return AppContext(
        settings=settings,
        db=db,
        redis=redis,
        storage=storage,
        dispatcher=dispatcher,
        push=push or sink_from_settings(settings),
        email=email or sender_from_settings(settings),
    )
