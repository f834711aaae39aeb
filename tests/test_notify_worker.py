"""The worker runs `notify` jobs in its own process, so the FCM sender's session outlives a job,
and their hard time limit still holds: the job is stopped at its limit, and a job that ignores
that is taken down with the worker by the watchdog."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from redis import Redis
from rq.job import Job, JobStatus

from fieldcast.db import Database
from fieldcast.settings import Settings
from notifications.fcm import FcmSink
from tests.test_push_faults import FanOut, _assert_everyone_got_it_once, fan_out  # noqa: F401
from tests.worker_support import install_worker_context, run_burst
from workers import worker as worker_module
from workers.queues import get_queue


def test_notify_jobs_share_one_sender_session_in_the_worker_process(
    fan_out: FanOut,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clients: list[tuple[int, int]] = []
    get_client = FcmSink._get_client

    def recording(sink: FcmSink) -> Any:
        client = get_client(sink)
        clients.append((os.getpid(), id(client)))
        return client

    monkeypatch.setattr(FcmSink, "_get_client", recording)
    run_burst(["notify"])

    _assert_everyone_got_it_once(fan_out)
    # Three slices, three jobs, sent from this very process on one client.
    assert len(clients) == 3
    assert set(clients) == {(os.getpid(), clients[0][1])}
    assert fan_out.fcm.token_requests == 1


def test_a_notify_job_is_stopped_at_its_time_limit_in_the_worker_process(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    committed_db: Database,
    redis: Redis,
) -> None:
    install_worker_context(monkeypatch, settings, committed_db, redis)
    job = get_queue(redis, "notify").enqueue_call("time.sleep", args=(30,), timeout=1)
    started = time.monotonic()
    run_burst(["notify"])
    assert time.monotonic() - started < 15
    job = Job.fetch(job.id, connection=redis)
    assert job.get_status() == JobStatus.FAILED
    assert "JobTimeoutException" in (job.latest_result().exc_string or "")  # type: ignore[union-attr]


def test_the_watchdog_ends_a_worker_whose_job_ignores_its_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(worker_module, "WATCHDOG_GRACE_S", 0.5)
    job: Any = SimpleNamespace(id="stuck", timeout=1)
    pid = os.fork()
    if pid == 0:  # the worker, in a job that signals cannot stop
        try:
            with worker_module._Watchdog(job):
                time.sleep(30)
        finally:
            os._exit(0)
    started = time.monotonic()
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert 1.4 < time.monotonic() - started < 10
