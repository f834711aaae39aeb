"""Processes of the product: tied to the process that started them, and their exits in words.

The kernel mechanisms live in `media.processes`, which media code (ffmpeg) uses too.
"""

from __future__ import annotations

import signal

from media.processes import become_subreaper, die_with_parent, dies_with_this_process

__all__ = ["become_subreaper", "describe_exit", "die_with_parent", "dies_with_this_process"]


def describe_exit(returncode: int) -> str:
    """How a process ended, in words: `exited with status 1`, `was killed by SIGKILL`."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with status {returncode}"
