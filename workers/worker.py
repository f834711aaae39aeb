"""The worker process: RQ on the latency-class queues, with JSON logs carrying the job id.

RQ's worker forks a work horse per job. That suits media work (a crash or a leak dies with the
horse, and a killed horse takes its ffmpeg along), but not pushes: the FCM sender keeps one
aiohttp session per process (an event loop in a background thread, kept-alive connections, an
access token; notifications/fcm.py), and in a horse it would live for one job's slice of a
fan-out. So jobs from the `notify` queue run in the worker process itself, as RQ's
`SimpleWorker` runs every job, and its sender lives as long as the worker; jobs from every
other queue still run in a forked horse.

Hard time limits still hold for the jobs run in the process:

- RQ's death penalty, as in a horse: SIGALRM, in the main thread (where the job runs), raises
  `JobTimeoutException` in the job when the queue's limit (`workers/queues.py`, 2 minutes for
  `notify`) is reached. A job waiting on its pushes is woken by it: the wait is on a lock,
  which signals interrupt.
- The sender bounds each batch itself: what FCM has not answered within `BATCH_DEADLINE_S` is
  cancelled and counted as a timeout to retry, so a job's few batches end well inside the limit.
- A watchdog thread ends the whole worker (SIGKILL) if a job is still running
  `WATCHDOG_GRACE_S` after its limit, that is, when the job sits in code that signals cannot
  interrupt. That is what RQ does to a horse that outlives its limit by a minute; here the
  worker goes with it. Its supervisor (`fieldcast serve`, the container runtime) starts it
  again, and the outbox runs the job again once its lease expires: claims already sent are not
  sent twice.

A SIGTERM lets the job in progress finish (RQ's warm shutdown); a second one stops it at once
(cold shutdown) and the outbox lease brings the job back, as for a killed horse.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Sequence
from typing import Any

from rq import Worker as RQWorker
from rq.defaults import DEFAULT_WORKER_TTL
from rq.job import Job
from rq.queue import Queue
from rq.worker import WorkerStatus

from fieldcast import events
from fieldcast.observability import configure_logging
from fieldcast.processes import die_with_parent
from workers.context import get_context
from workers.jobs import TASK_MODULES, import_task_modules
from workers.queues import QUEUE_NAMES, QUEUE_SPECS, get_queue

log = logging.getLogger(__name__)

# Queues whose jobs run in the worker process, not in a forked horse (see the module docstring).
IN_PROCESS_QUEUES = frozenset({"notify"})
# How long an in-process job may outlive its hard limit before the watchdog ends the worker.
WATCHDOG_GRACE_S = 30


class Worker(RQWorker):
    """RQ's worker, with each work horse tied to it, and `notify` jobs run in-process.

    RQ puts the horse in a process group of its own, so a worker killed outright (SIGKILL, the
    OOM killer) would leave its horse, and the ffmpeg the horse runs, working for nobody.
    """

    def main_work_horse(self, *args: Any, **kwargs: Any) -> None:
        die_with_parent(parent_pid=self.pid)
        super().main_work_horse(*args, **kwargs)

    def execute_job(self, job: Job, queue: Queue) -> None:
        if queue.name not in IN_PROCESS_QUEUES:
            super().execute_job(job, queue)
            return
        # As rq.SimpleWorker does it: the death penalty is set around the job by perform_job.
        execution = self.prepare_execution(job)
        with _Watchdog(job):
            self.perform_job(job, queue, execution)
        self.set_state(WorkerStatus.IDLE)

    def get_heartbeat_ttl(self, job: Job, working_time: float = 0.0) -> int:
        if job.origin not in IN_PROCESS_QUEUES:
            return int(super().get_heartbeat_ttl(job, working_time))
        # Nothing renews the heartbeat while the job runs in this process: it covers the limit.
        if job.timeout == -1:
            return DEFAULT_WORKER_TTL
        return int(job.timeout or QUEUE_SPECS[job.origin].timeout.total_seconds()) + 60


class _Watchdog:
    """Kills this process if the job is still running `WATCHDOG_GRACE_S` after its limit."""

    def __init__(self, job: Job) -> None:
        self._job_id = job.id
        self._timer: threading.Timer | None = None
        if job.timeout is not None and job.timeout > 0:
            self._timer = threading.Timer(job.timeout + WATCHDOG_GRACE_S, self._fire)
            self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        if self._timer is not None:
            self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _fire(self) -> None:
        log.critical(
            "job %s outlived its time limit by %d s and ignored its timeout: stopping the worker",
            self._job_id,
            WATCHDOG_GRACE_S,
        )
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)


def run_worker(
    queues: Sequence[str] = QUEUE_NAMES,
    *,
    burst: bool = False,
    name: str | None = None,
    extra_task_modules: Sequence[str] = (),
) -> bool:
    """Work the given queues in priority order until stopped (or, in burst mode, until empty)."""
    ctx = get_context()
    configure_logging(ctx.settings.log_level, json_lines=ctx.settings.log_json)
    unknown = [q for q in queues if q not in QUEUE_NAMES]
    if unknown:
        raise SystemExit(f"unknown queue(s): {', '.join(unknown)}; known: {', '.join(QUEUE_NAMES)}")
    import_task_modules((*TASK_MODULES, *extra_task_modules))
    events.load_handlers()
    # Pushes are sent from this process (notify jobs run in it): load the credentials once.
    prepare = getattr(ctx.push, "prepare", None)
    if IN_PROCESS_QUEUES.intersection(queues) and callable(prepare):
        prepare()
    worker = Worker(
        [get_queue(ctx.redis, q) for q in queues],
        connection=ctx.redis,
        name=name,
    )
    log.info("worker %s starting on %s", worker.name, ", ".join(queues))
    try:
        return bool(
            worker.work(burst=burst, logging_level=ctx.settings.log_level, with_scheduler=False)
        )
    finally:
        close = getattr(ctx.push, "close", None)
        if callable(close):
            close()
