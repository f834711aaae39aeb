"""Tying processes' lives together, so nothing outlives the process that started it.

Linux offers two kernel mechanisms: a parent-death signal (a child is signalled when the thread
that started it dies) and a child subreaper (orphans of a process tree are reparented to the
subreaper instead of init, so it can see and stop them). Elsewhere both are no-ops.

Here, not in the domain package, so that media code (ffmpeg) and the process manager share one
implementation.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.CDLL(None, use_errno=True)


def _prctl(option: int, value: int) -> bool:
    libc = _libc()
    return libc is not None and int(libc.prctl(option, value, 0, 0, 0)) == 0


def die_with_parent(signum: int = signal.SIGKILL, *, parent_pid: int | None = None) -> None:
    """Ask the kernel to send `signum` to this process when its parent dies.

    Called in a freshly forked child. With `parent_pid`, a parent that died before the request
    was made is caught too: the child then signals itself.
    """
    set_up = _prctl(_PR_SET_PDEATHSIG, signum)
    if set_up and parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), signum)


def dies_with_this_process(signum: int = signal.SIGKILL) -> Callable[[], None]:
    """A `preexec_fn` for a child that must get `signum` when this process dies, even by
    SIGKILL, even if that happens between fork and exec."""
    _libc()  # loaded now: between fork and exec, dlopen could deadlock on another thread's lock
    return functools.partial(die_with_parent, signum, parent_pid=os.getpid())


def become_subreaper() -> bool:
    """Adopt the orphans of this process's descendants (Linux); returns whether it worked."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)
