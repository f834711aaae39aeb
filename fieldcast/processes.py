"""Tying processes' lives together, so nothing outlives the process that started it.

Linux offers two kernel mechanisms: a parent-death signal (a child is signalled when the thread
that started it dies) and a child subreaper (orphans of a process tree are reparented to the
subreaper instead of init, so it can see and stop them). Elsewhere both are no-ops.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return int(libc.prctl(option, value, 0, 0, 0)) == 0


def die_with_parent(signum: int = signal.SIGKILL, *, parent_pid: int | None = None) -> None:
    """Ask the kernel to send `signum` to this process when its parent dies.

    Called in a freshly forked child. With `parent_pid`, a parent that died before the request
    was made is caught too: the child then signals itself.
    """
    set_up = _prctl(_PR_SET_PDEATHSIG, signum)
    if set_up and parent_pid is not None and os.getppid() != parent_pid:
        os.kill(os.getpid(), signum)


def become_subreaper() -> bool:
    """Adopt the orphans of this process's descendants (Linux); returns whether it worked."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def describe_exit(returncode: int) -> str:
    """How a process ended, in words: `exited with status 1`, `was killed by SIGKILL`."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with status {returncode}"
