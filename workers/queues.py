"""RQ queues by latency class, their hard time limits, and the outbox dispatcher."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from redis import Redis
from rq import Queue
from rq.job import Job, JobStatus

from fieldcast.outbox.services import Dispatch


@dataclass(frozen=True)
class QueueSpec:
    name: str
    timeout: timedelta
    description: str


# Listed in the order a general-purpose worker drains them: the user is waiting on the first ones.
QUEUES: tuple[QueueSpec, ...] = (
    QueueSpec("notify", timedelta(minutes=2), "pushes, inbox items, chat webhooks"),
    # A new comment is found by search within seconds: short jobs, drained right after pushes.
    QueueSpec("search", timedelta(minutes=2), "search documents built from a video's texts"),
    # Long enough to encode a first rendition of a 10-minute 4K HDR file on a small machine.
    QueueSpec("media-fast", timedelta(minutes=15), "probe and the first playable rendition"),
    QueueSpec("default", timedelta(minutes=10), "fan-out, housekeeping, the outbox relay"),
    QueueSpec("media", timedelta(hours=1), "the full rendition ladder, storyboards"),
    # Last: slow, and nobody waits for it (search and captions follow when it is done).
    QueueSpec(
        "transcribe",
        timedelta(minutes=40),
        "speech to text of ready videos, the text of attached documents",
    ),
)
QUEUE_SPECS = {spec.name: spec for spec in QUEUES}
QUEUE_NAMES = tuple(spec.name for spec in QUEUES)

RUN_OUTBOX_JOB = "workers.jobs.run_outbox_job"
# Successful outbox jobs keep their outcome in PostgreSQL; RQ need not keep a result.
_RESULT_TTL = 0
_FAILURE_TTL = int(timedelta(days=7).total_seconds())
LIVE_STATUSES = frozenset(
    {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED}
)


def is_live(job: Job | None) -> bool:
    """Whether an RQ job is still waiting or running (not finished, failed or gone)."""
    return job is not None and job.get_status(refresh=False) in LIVE_STATUSES


def outbox_rq_id(job_id: uuid.UUID) -> str:
    return f"outbox-{job_id}"


def get_queue(connection: Redis, name: str) -> Queue:
    spec = QUEUE_SPECS[name]
    return Queue(
        name,
        connection=connection,
        default_timeout=int(spec.timeout.total_seconds()),
    )


class RQDispatcher:
    """Enqueues outbox rows on RQ, one job per row with a deterministic id."""

    def __init__(self, connection: Redis) -> None:
        self.connection = connection

    def dispatch(self, jobs: Sequence[Dispatch]) -> None:
        with self.connection.pipeline() as pipe:
            for job in jobs:
                queue = get_queue(self.connection, job.queue)
                queue.enqueue_call(
                    RUN_OUTBOX_JOB,
                    args=(str(job.job_id),),
                    job_id=outbox_rq_id(job.job_id),
                    result_ttl=_RESULT_TTL,
                    failure_ttl=_FAILURE_TTL,
                    description=f"outbox {job.job_id}",
                    pipeline=pipe,
                )
            pipe.execute()

    def missing(self, job_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        found = Job.fetch_many([outbox_rq_id(i) for i in job_ids], connection=self.connection)
        return {job_id for job_id, job in zip(job_ids, found, strict=True) if not is_live(job)}
