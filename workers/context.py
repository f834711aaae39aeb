"""One AppContext per worker process, rebuilt after a fork.

RQ runs each job in a forked work horse; connections inherited from the parent must not be
shared, so the horse builds its own on first use.
"""

from __future__ import annotations

import os

from fieldcast.context import AppContext, build_context
from fieldcast.settings import Settings

_context: AppContext | None = None


def set_context(context: AppContext) -> None:
    global _context
    _context = context


def get_context() -> AppContext:
    global _context
    if _context is None:
        _context = build_context(Settings.from_env())
    elif _context.pid != os.getpid():
        # Drop the parent's pooled connections without closing them under the parent's feet.
        _context.db.engine.dispose(close=False)
        _context.redis.connection_pool.reset()
        _context.pid = os.getpid()
    return _context
