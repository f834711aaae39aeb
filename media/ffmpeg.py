"""Running ffmpeg: finding the binary, following `-progress`, and dying with the worker.

A worker killed with SIGKILL must not leave an ffmpeg behind writing into a work directory
nobody will read: on Linux each ffmpeg asks the kernel to kill it when its parent dies.
"""

from __future__ import annotations

import collections
import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from media.processes import dies_with_this_process
from media.renditions import parse_progress

_STDERR_LINES = 20


class FFmpegFailed(Exception):
    """ffmpeg exited with an error. `tail` holds its last lines of output."""

    def __init__(self, returncode: int, tail: str) -> None:
        super().__init__(f"ffmpeg exited with {returncode}: {tail[-500:]}")
        self.returncode = returncode
        self.tail = tail


def ffmpeg_binary(configured: str | None = None) -> str:
    """The configured binary (FFMPEG_BINARY), else the one shipped in imageio-ffmpeg (which also
    honours IMAGEIO_FFMPEG_EXE)."""
    if configured:
        return configured
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def run(
    args: Sequence[str],
    *,
    duration_s: float = 0.0,
    on_progress: Callable[[int], None] | None = None,
    timeout_s: float | None = None,
    cwd: Path | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Run one ffmpeg command to completion, reporting percent done from `-progress`.

    Setting `cancel` (from another thread) kills ffmpeg: within 50 ms while it is waited for,
    at its next progress line with `on_progress`. Raises FFmpegFailed on a non-zero exit or
    when cancelled, and TimeoutError past `timeout_s`.
    """
    command = list(args)
    if on_progress is not None:
        # `-progress` is a global option: it goes before the first input.
        command[1:1] = ["-progress", "pipe:1", "-nostats"]
    process = subprocess.Popen(  # noqa: S603 - arguments are built by media.renditions
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if on_progress is not None else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=cwd,
        preexec_fn=dies_with_this_process(),
        text=True,
        errors="replace",
    )
    tail: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)

    def drain_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            if line.strip():
                tail.append(line.rstrip())

    reader = threading.Thread(target=drain_stderr, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout_s if timeout_s else None
    try:
        if on_progress is not None:
            assert process.stdout is not None
            last = -1
            for line in process.stdout:
                percent = parse_progress(line, duration_s)
                if percent is not None and percent != last:
                    last = percent
                    on_progress(percent)
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"ffmpeg ran longer than {timeout_s:.0f}s")
                _check(cancel)
        returncode = _wait(process, deadline, cancel, timeout_s)
    except BaseException:
        process.kill()
        process.wait()
        raise
    finally:
        reader.join(timeout=5)
    if returncode != 0:
        raise FFmpegFailed(returncode, "\n".join(tail))


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise FFmpegFailed(-9, "stopped: the work it was for ended")


def _wait(
    process: subprocess.Popen[str],
    deadline: float | None,
    cancel: threading.Event | None,
    timeout_s: float | None,
) -> int:
    """ffmpeg's exit status, once it exits; TimeoutError past `deadline`."""
    while True:
        step = None if cancel is None else 0.05
        if deadline is not None:
            left = max(0.1, deadline - time.monotonic())
            step = left if step is None else min(step, left)
        try:
            return process.wait(timeout=step)
        except subprocess.TimeoutExpired:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"ffmpeg ran longer than {timeout_s:.0f}s") from None
            _check(cancel)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
