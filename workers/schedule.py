"""Periodic jobs, defined in code, each with a stable id.

The scheduler enqueues each periodic job once per period, whichever replica gets there first:
the period slot is claimed in Redis with SET NX, and the RQ job id is stable, so a run that is
still queued or running is never doubled.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from types import FrameType

from redis import Redis
from rq.job import Job

from fieldcast.observability import configure_logging
from workers.context import get_context
from workers.queues import get_queue, is_live

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Periodic:
    id: str
    every: timedelta
    func: str
    queue: str = "default"
    timeout: timedelta = timedelta(minutes=5)


PERIODIC: tuple[Periodic, ...] = (
    # Re-enqueue outbox work whose RQ job was lost and take back work from dead workers.
    Periodic("outbox-relay", timedelta(seconds=10), "workers.jobs.relay_outbox"),
    Periodic("prune-records", timedelta(hours=1), "workers.jobs.prune_records"),
    # The summary push of each conversation push window that is over with pushes folded in it.
    Periodic("push-summaries", timedelta(seconds=10), "workers.jobs.send_push_summaries"),
    # Search documents a lost job left stale, and those whose engagement is oldest.
    Periodic("search-sweep", timedelta(seconds=30), "workers.jobs.sweep_search"),
    Periodic("search-engagement", timedelta(minutes=5), "workers.jobs.refresh_search_engagement"),
    # What newly matches the searches people follow: one item and push per search and round.
    Periodic("saved-searches", timedelta(minutes=5), "workers.jobs.run_saved_searches"),
    # Each organisation's unsent xAPI statements: a delivery job per LRS that is on and due.
    Periodic("xapi-delivery", timedelta(seconds=10), "workers.jobs.deliver_xapi"),
    # Views gone quiet: their xAPI `terminated` statement.
    Periodic("xapi-terminate", timedelta(minutes=5), "workers.jobs.terminate_idle_views"),
    # Assignments due within a day or past due: one reminder each per due date.
    Periodic("assignment-reminders", timedelta(minutes=15), "workers.jobs.remind_assignments"),
    # Each manager's weekly digest of their people's overdue assignments.
    Periodic("learning-digests", timedelta(days=7), "workers.jobs.send_learning_digests"),
    # The rounds of recurring assignment rules that are due.
    Periodic("assignment-rounds", timedelta(hours=1), "workers.jobs.run_assignment_rounds"),
    # Unfinished uploads past their expiry: storage freed, the draft waits for a new upload.
    Periodic("expire-uploads", timedelta(minutes=5), "workers.jobs.expire_uploads"),
    # Playable videos whose ladder work failed or vanished: ready, naming what they go without.
    Periodic("settle-playable-videos", timedelta(minutes=5), "workers.jobs.settle_playable_videos"),
    # Each organisation's top lists of videos and clips, ranked again (fieldcast.curation.top).
    Periodic("top-clips", timedelta(minutes=15), "workers.jobs.compute_top_clips"),
    # Viewer insights read lately whose video's viewing moved since they were counted.
    Periodic("video-insights", timedelta(minutes=1), "workers.jobs.refresh_video_insights"),
    # Each organisation's retention policy: videos and views past keeping deleted.
    Periodic("retention", timedelta(hours=1), "workers.jobs.apply_retention"),
    # Deleted videos past VIDEO_PURGE_GRACE_S: their media and their row removed for good.
    Periodic(
        "purge-deleted-videos",
        timedelta(minutes=10),
        "workers.jobs.purge_deleted_videos",
        timeout=timedelta(minutes=15),
    ),
)


def enqueue_due(
    redis: Redis, periodic: tuple[Periodic, ...] = PERIODIC, *, now: float | None = None
) -> list[str]:
    """Enqueue every periodic job whose current slot is unclaimed. Returns the ids enqueued."""
    now = time.time() if now is None else now
    enqueued = []
    for job in periodic:
        period = job.every.total_seconds()
        slot = int(now // period)
        claim = f"fieldcast:periodic:{job.id}:{slot}"
        if not redis.set(claim, b"1", nx=True, ex=max(2, int(period * 2))):
            continue
        job_id = f"periodic-{job.id}"
        previous = Job.fetch_many([job_id], connection=redis)[0]
        if is_live(previous):
            log.info("periodic job %s is still queued or running; skipping this period", job.id)
            continue
        # A finished or failed previous run is replaced: one failure must not stop the job.
        get_queue(redis, job.queue).enqueue_call(
            job.func,
            job_id=job_id,
            timeout=int(job.timeout.total_seconds()),
            result_ttl=0,
            failure_ttl=int(timedelta(days=1).total_seconds()),
            description=f"periodic {job.id}",
        )
        enqueued.append(job.id)
    return enqueued


def run_scheduler(*, tick: float = 1.0, stop: threading.Event | None = None) -> None:
    ctx = get_context()
    configure_logging(ctx.settings.log_level, json_lines=ctx.settings.log_json)
    stop = stop or threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("scheduler stopping (signal %d)", signum)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    log.info("scheduler started with %d periodic job(s)", len(PERIODIC))
    while not stop.is_set():
        try:
            for job_id in enqueue_due(ctx.redis):
                log.info("enqueued periodic job %s", job_id)
        except Exception:
            log.exception("scheduler tick failed; retrying")
        stop.wait(tick)
