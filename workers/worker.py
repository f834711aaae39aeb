"""The worker process: RQ on the latency-class queues, with JSON logs carrying the job id."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from rq import Worker as RQWorker

from fieldcast.observability import configure_logging
from fieldcast.processes import die_with_parent
from workers.context import get_context
from workers.jobs import TASK_MODULES, import_task_modules
from workers.queues import QUEUE_NAMES, get_queue

log = logging.getLogger(__name__)


class Worker(RQWorker):
    """RQ's worker, with each work horse tied to it.

    RQ puts the horse in a process group of its own, so a worker killed outright (SIGKILL, the
    OOM killer) would leave its horse, and the ffmpeg the horse runs, working for nobody.
    """

    def main_work_horse(self, *args: Any, **kwargs: Any) -> None:
        die_with_parent(parent_pid=self.pid)
        super().main_work_horse(*args, **kwargs)


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
    # Each job runs in a forked process: what the push sink sets up now, every job inherits.
    prepare = getattr(ctx.push, "prepare", None)
    if "notify" in queues and callable(prepare):
        prepare()
    worker = Worker(
        [get_queue(ctx.redis, q) for q in queues],
        connection=ctx.redis,
        name=name,
    )
    log.info("worker %s starting on %s", worker.name, ", ".join(queues))
    return bool(
        worker.work(burst=burst, logging_level=ctx.settings.log_level, with_scheduler=False)
    )
