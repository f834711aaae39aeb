"""One AppContext per worker process, rebuilt after a fork.

RQ runs most jobs in a forked work horse (`notify` jobs run in the worker process itself, see
workers/worker.py); connections inherited from the parent must not be shared, so a horse builds
its own on first use. The context is also made current
(`fieldcast.context.current`) for the outbox tasks the job runs.
"""

from __future__ import annotations

import os

from fieldcast import context as app_context
from fieldcast.context import AppContext, build_context
from fieldcast.settings import Settings


def set_context(context: AppContext) -> None:
    app_context.set_current(context)


def get_context() -> AppContext:
    context = app_context._current
    if context is None:
        context = build_context(Settings.from_env())
        app_context.set_current(context)
    elif context.pid != os.getpid():
        # Drop the parent's pooled connections without closing them under the parent's feet.
        context.db.engine.dispose(close=False)
        context.redis.connection_pool.reset()
        context.pid = os.getpid()
    return context
