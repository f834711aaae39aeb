"""Periodic jobs: one enqueue per slot across replicas, stable ids, and a worker that runs them."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import pytest
from redis import Redis
from rq.job import Job

from fieldcast.context import AppContext
from fieldcast.db import Database
from fieldcast.models.outbox import OutboxJob, OutboxStatus
from fieldcast.outbox import services as outbox
from fieldcast.settings import Settings
from tests import outbox_tasks as t
from tests.worker_support import install_worker_context, preserved_process_state, run_burst
from workers.queues import get_queue
from workers.schedule import PERIODIC, Periodic, enqueue_due, run_scheduler

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60, method="thread")]

# Aligned on both periods' slots, and far from the next hour so +10 s and +20 s stay inside it.
NOW = 3600.0 * 500_000


@pytest.fixture
def ctx(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, committed_db: Database, redis: Redis
) -> AppContext:
    return install_worker_context(monkeypatch, settings, committed_db, redis)


IDS = [p.id for p in PERIODIC]
JOB_IDS = [f"periodic-{p.id}" for p in PERIODIC]


def queued(redis: Redis, queue: str = "default") -> list[str]:
    return get_queue(redis, queue).get_job_ids()


def test_periodic_ids_and_functions_are_stable() -> None:
    assert [p.id for p in PERIODIC] == [
        "outbox-relay",
        "prune-records",
        "push-summaries",
        "search-sweep",
        "search-engagement",
        "saved-searches",
        "xapi-delivery",
        "xapi-terminate",
        "assignment-reminders",
        "learning-digests",
        "assignment-rounds",
        "expire-uploads",
        "settle-playable-videos",
        "top-clips",
        "video-insights",
        "retention",
        "purge-deleted-videos",
    ]
    assert len({p.id for p in PERIODIC}) == len(PERIODIC)
    relay = PERIODIC[0]
    assert relay.func == "workers.jobs.relay_outbox"
    assert relay.every == timedelta(seconds=10)
    # Every periodic function exists: a typo would only show when the job first runs.
    import importlib

    for periodic in PERIODIC:
        module, _, name = periodic.func.rpartition(".")
        assert callable(getattr(importlib.import_module(module), name)), periodic.func


def test_each_periodic_job_is_enqueued_once_per_slot_across_replicas(
    redis: Redis, redis_url: str
) -> None:
    replica_a = Redis.from_url(redis_url)
    replica_b = Redis.from_url(redis_url)
    try:
        assert enqueue_due(replica_a, now=NOW) == IDS
        assert enqueue_due(replica_b, now=NOW) == []
        assert enqueue_due(replica_a, now=NOW + 5) == []  # still the same 10-second slot
    finally:
        replica_a.close()
        replica_b.close()

    assert queued(redis) == JOB_IDS
    job = Job.fetch("periodic-outbox-relay", connection=redis)
    assert job.func_name == "workers.jobs.relay_outbox"
    assert job.origin == "default"
    assert job.timeout == 300
    assert Job.fetch("periodic-prune-records", connection=redis).func_name == (
        "workers.jobs.prune_records"
    )
    # The slot claim expires on its own, after two periods.
    claim_ttl = redis.ttl(f"fieldcast:periodic:outbox-relay:{int(NOW // 10)}")
    assert 0 < claim_ttl <= 20


def test_a_new_slot_is_skipped_while_the_previous_run_is_still_queued(
    redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    assert enqueue_due(redis, now=NOW) == IDS
    with caplog.at_level(logging.INFO, logger="workers.schedule"):
        # The relay's next slot comes round before any worker took the first run.
        assert enqueue_due(redis, now=NOW + 10) == []
    assert "periodic job outbox-relay is still queued or running" in caplog.text
    assert queued(redis) == JOB_IDS


def test_a_worker_runs_the_periodic_jobs_and_the_next_slot_enqueues_again(
    ctx: AppContext, redis: Redis
) -> None:
    assert enqueue_due(redis, now=NOW) == IDS
    assert run_burst(["default"]) is True
    assert queued(redis) == []
    assert get_queue(redis, "default").failed_job_registry.count == 0
    # result_ttl=0: a successful run leaves no job behind to block the next slot.
    assert not Job.exists("periodic-outbox-relay", connection=redis)
    # The jobs every 10 s come again in the next slot.
    assert enqueue_due(redis, now=NOW + 10) == ["outbox-relay", "push-summaries", "xapi-delivery"]
    assert queued(redis) == [
        "periodic-outbox-relay",
        "periodic-push-summaries",
        "periodic-xapi-delivery",
    ]


def test_the_relay_outbox_job_re_dispatches_lost_work_in_a_burst_worker(
    ctx: AppContext, redis: Redis, redis_url: str
) -> None:
    payload = {"redis_url": redis_url, "key": "marks:relayed", "value": "v"}
    with ctx.db.session() as session:
        # Delayed work is not dispatched on commit: only the relay can enqueue it.
        job_id = outbox.record(session, t.APPEND_MARK, payload, delay=timedelta(hours=1))
        session.commit()
    assert job_id is not None
    with ctx.db.engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE outbox_jobs SET run_after = now() - interval '1 minute',"
            " created_at = now() - interval '1 minute' WHERE id = %(id)s",
            {"id": job_id},
        )
    assert queued(redis) == []

    assert enqueue_due(redis, PERIODIC[:1], now=NOW) == ["outbox-relay"]
    # One burst: the relay job enqueues the outbox job, and the same worker then runs it.
    assert run_burst(["default"]) is True
    assert get_queue(redis, "default").failed_job_registry.count == 0
    with ctx.db.session() as session:
        row = session.get_one(OutboxJob, job_id)
        assert row.status is OutboxStatus.DONE
        assert row.enqueued_at is not None
    assert redis.lrange("marks:relayed", 0, -1) == [b"v"]


def test_a_failed_periodic_run_does_not_block_the_next_slots(ctx: AppContext, redis: Redis) -> None:
    failing = (
        Periodic("test-failing", timedelta(seconds=10), "tests.outbox_tasks.failing_periodic"),
    )
    assert enqueue_due(redis, failing, now=NOW) == ["test-failing"]
    run_burst(["default"])
    assert "periodic-test-failing" in get_queue(redis, "default").failed_job_registry
    # The failed run is neither queued nor running: the next slot must enqueue a new run.
    assert enqueue_due(redis, failing, now=NOW + 10) == ["test-failing"]


def test_run_scheduler_enqueues_the_periodic_jobs_until_stopped(
    ctx: AppContext, redis: Redis
) -> None:
    stop = threading.Event()
    with preserved_process_state():
        thread = threading.Thread(target=run_scheduler, kwargs={"tick": 0.02, "stop": stop})
        thread.start()
        try:
            deadline = time.monotonic() + 5
            while len(queued(redis)) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            stop.set()
            thread.join(5)
    assert not thread.is_alive()
    assert sorted(queued(redis)) == sorted(JOB_IDS)
