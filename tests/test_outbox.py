"""The transactional outbox end to end: PostgreSQL commits, RQ on Redis, real burst workers.

Each test records work through a committed session, lets a real RQ worker (forking work horses)
run it, and checks the row in `outbox_jobs` and the task's effect.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from redis import Redis
from rq.job import Job
from sqlalchemy import text

import fieldcast.context
from fieldcast.context import AppContext, build_context
from fieldcast.db import Database, utcnow
from fieldcast.models.outbox import OutboxJob, OutboxStatus
from fieldcast.observability import ContextFilter, JsonFormatter
from fieldcast.outbox import services as outbox
from fieldcast.settings import Settings
from tests import outbox_tasks as t
from tests.worker_support import install_worker_context, run_burst
from workers.queues import QUEUE_NAMES, RQDispatcher, get_queue, outbox_rq_id

LEASE = timedelta(minutes=5)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60, method="thread")]

NO_GRACE = timedelta(0)


@pytest.fixture
def ctx(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, committed_db: Database, redis: Redis
) -> AppContext:
    return install_worker_context(monkeypatch, settings, committed_db, redis)


@pytest.fixture
def marks_table(committed_db: Database) -> Iterator[str]:
    with committed_db.engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {t.MARKS_TABLE} (id serial PRIMARY KEY, value text)"))
    yield t.MARKS_TABLE
    with committed_db.engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {t.MARKS_TABLE}"))


def mark_payload(redis_url: str, value: str = "v", **extra: Any) -> dict[str, Any]:
    key = f"marks:{uuid.uuid4().hex}"
    return {"redis_url": redis_url, "key": key, "value": value, **extra}


def marks(redis: Redis, payload: dict[str, Any]) -> list[str]:
    items: list[bytes] = redis.lrange(payload["key"], 0, -1)  # type: ignore[assignment]
    return [item.decode() for item in items]


def record_committed(db: Database, task: str, payload: dict[str, Any], **kwargs: Any) -> uuid.UUID:
    with db.session() as session:
        job_id = outbox.record(session, task, payload, **kwargs)
        session.commit()
    assert job_id is not None
    return job_id


def load(db: Database, job_id: uuid.UUID) -> OutboxJob:
    with db.session() as session:
        return session.get_one(OutboxJob, job_id)


def count_rows(db: Database) -> int:
    with db.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM outbox_jobs")).scalar_one())


def sql(db: Database, statement: str, **params: Any) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(statement), params)


def run_to_done_on_second_attempt(ctx: AppContext, job_id: uuid.UUID) -> OutboxJob:
    """A worker runs the taken-back row once more, and this time it is done."""
    assert run_burst() is True
    row = load(ctx.db, job_id)
    assert row.status is OutboxStatus.DONE
    assert row.attempts == 2
    return row


def expire_lease_and_relay(ctx: AppContext, job_id: uuid.UUID) -> None:
    """Let the row's lease run out, as when its worker died, and run the relay."""
    sql(
        ctx.db,
        "UPDATE outbox_jobs SET lease_until = now() - interval '1 second' WHERE id = :id",
        id=job_id,
    )
    assert outbox.relay(ctx.db, ctx.dispatcher, grace=NO_GRACE) == outbox.RelayReport(
        expired=1, requeued=1
    )


def queued(redis: Redis, queue: str = "default") -> list[str]:
    return get_queue(redis, queue).get_job_ids()


def test_committed_work_is_enqueued_after_commit_and_done_by_the_worker(
    ctx: AppContext, redis: Redis, redis_url: str
) -> None:
    payload = mark_payload(redis_url, "first")
    notify_payload = mark_payload(redis_url, "second")
    with ctx.db.session() as session:
        job_id = outbox.record(session, t.APPEND_MARK, payload)
        notify_id = outbox.record(session, t.NOTIFY_MARK, notify_payload)
        session.flush()
        # Nothing reaches the queue before the transaction commits.
        assert all(queued(redis, q) == [] for q in QUEUE_NAMES)
        session.commit()
    assert job_id is not None and notify_id is not None

    assert queued(redis, "default") == [outbox_rq_id(job_id)]
    assert queued(redis, "notify") == [outbox_rq_id(notify_id)]
    row = load(ctx.db, job_id)
    assert row.status is OutboxStatus.PENDING
    assert row.queue == "default"
    assert row.attempts == 0

    assert run_burst() is True

    for outbox_id, p in ((job_id, payload), (notify_id, notify_payload)):
        row = load(ctx.db, outbox_id)
        assert row.status is OutboxStatus.DONE
        assert row.attempts == 1
        assert row.finished_at is not None
        assert row.lease_until is None
        assert row.last_error is None
        assert marks(redis, p) == [p["value"]]
        # result_ttl=0: the outcome lives in PostgreSQL, RQ keeps nothing.
        assert not Job.exists(outbox_rq_id(outbox_id), connection=redis)
    assert all(queued(redis, q) == [] for q in QUEUE_NAMES)
    assert get_queue(redis, "default").failed_job_registry.count == 0


def test_rolled_back_work_is_never_enqueued(ctx: AppContext, redis: Redis, redis_url: str) -> None:
    lost = mark_payload(redis_url, "lost")
    kept = mark_payload(redis_url, "kept")
    with ctx.db.session() as session:
        lost_id = outbox.record(session, t.APPEND_MARK, lost)
        session.flush()
        session.rollback()
        # The same session goes on to commit other work: only that work is dispatched.
        kept_id = outbox.record(session, t.APPEND_MARK, kept)
        session.commit()
    assert lost_id is not None and kept_id is not None

    with pytest.raises(RuntimeError), ctx.db.session() as session:
        outbox.record(session, t.APPEND_MARK, lost)
        session.flush()
        raise RuntimeError("the request failed")

    assert queued(redis) == [outbox_rq_id(kept_id)]
    assert count_rows(ctx.db) == 1
    with ctx.db.session() as session:
        assert session.get(OutboxJob, lost_id) is None

    assert run_burst() is True
    assert marks(redis, lost) == []
    assert marks(redis, kept) == ["kept"]
    assert outbox.relay(ctx.db, ctx.dispatcher, grace=NO_GRACE).requeued == 0
    assert run_burst() is False


def test_a_rolled_back_savepoint_does_not_drop_work_recorded_before_it(
    ctx: AppContext, redis: Redis, redis_url: str
) -> None:
    payload = mark_payload(redis_url)
    with ctx.db.session() as session:
        job_id = outbox.record(session, t.APPEND_MARK, payload)
        savepoint = session.begin_nested()
        savepoint.rollback()  # e.g. an optional step that failed and was abandoned
        session.commit()
    assert job_id is not None
    assert load(ctx.db, job_id).status is OutboxStatus.PENDING
    assert queued(redis) == [outbox_rq_id(job_id)]


def test_dedup_key_records_the_work_once(ctx: AppContext, redis: Redis, redis_url: str) -> None:
    payload = mark_payload(redis_url)
    with ctx.db.session() as session:
        first = outbox.record(session, t.APPEND_MARK, payload, dedup_key="welcome:42")
        again = outbox.record(session, t.APPEND_MARK, payload, dedup_key="welcome:42")
        session.commit()
    with ctx.db.session() as session:
        later = outbox.record(session, t.APPEND_MARK, payload, dedup_key="welcome:42")
        session.commit()
    assert first is not None
    assert again is None
    assert later is None
    assert count_rows(ctx.db) == 1
    assert queued(redis) == [outbox_rq_id(first)]

    assert run_burst() is True
    assert load(ctx.db, first).status is OutboxStatus.DONE
    assert marks(redis, payload) == ["v"]

    # Done work keeps its key: recording it again still does nothing.
    with ctx.db.session() as session:
        assert outbox.record(session, t.APPEND_MARK, payload, dedup_key="welcome:42") is None
        session.commit()
    assert queued(redis) == []


def test_relay_re_enqueues_work_that_redis_lost_and_it_runs_exactly_once(
    ctx: AppContext, redis: Redis, redis_url: str
) -> None:
    payload = mark_payload(redis_url)
    job_id = record_committed(ctx.db, t.APPEND_MARK, payload)
    # While the RQ job is alive, the relay leaves it alone.
    assert outbox.relay(ctx.db, ctx.dispatcher, grace=NO_GRACE).requeued == 0
    assert queued(redis) == [outbox_rq_id(job_id)]

    redis.flushdb()  # Redis restarted without persistence.
    assert queued(redis) == []
    # Within the grace period fresh rows are left to the commit-time dispatch.
    assert outbox.relay(ctx.db, ctx.dispatcher).requeued == 0

    report = outbox.relay(ctx.db, ctx.dispatcher, grace=NO_GRACE)
    assert report == outbox.RelayReport(expired=0, requeued=1)
    assert queued(redis) == [outbox_rq_id(job_id)]
    assert load(ctx.db, job_id).enqueued_at is not None
    # A second relay (another replica, the next tick) sees the live job and sends nothing.
    assert outbox.relay(ctx.db, ctx.dispatcher, grace=NO_GRACE).requeued == 0
    assert queued(redis) == [outbox_rq_id(job_id)]

    assert run_burst() is True
    row = load(ctx.db, job_id)
    assert row.status is OutboxStatus.DONE
    assert row.attempts == 1
    assert marks(redis, payload) == ["v"]
    assert outbox.relay(ctx.db, ctx.dispatcher, grace=NO_GRACE).requeued == 0
    assert run_burst() is False
    assert marks(redis, payload) == ["v"]


def test_a_failed_dispatch_keeps_the_commit_and_the_relay_sends_the_work_later(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    committed_db: Database,
    redis: Redis,
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The API's Redis is down (nothing listens on port 1) when the transaction commits.
    down = Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=1)
    ctx = build_context(settings, db=committed_db, redis=down)
    monkeypatch.setattr(fieldcast.context, "_current", ctx)
    payload = mark_payload(redis_url)
    with caplog.at_level(logging.WARNING, logger="fieldcast.outbox.services"):
        job_id = record_committed(ctx.db, t.APPEND_MARK, payload)
    assert "outbox dispatch failed; the relay will retry" in caplog.text
    assert load(ctx.db, job_id).status is OutboxStatus.PENDING

    report = outbox.relay(ctx.db, RQDispatcher(redis), grace=NO_GRACE)
    assert report.requeued == 1
    monkeypatch.setattr(fieldcast.context, "_current", dataclasses.replace(ctx, redis=redis))
    assert run_burst() is True
    assert load(ctx.db, job_id).status is OutboxStatus.DONE
    assert marks(redis, payload) == ["v"]


def test_delayed_work_is_not_dispatched_on_commit_but_by_the_relay_once_due(
    ctx: AppContext, redis: Redis, redis_url: str
) -> None:
    payload = mark_payload(redis_url)
    job_id = record_committed(ctx.db, t.APPEND_MARK, payload, delay=timedelta(hours=1))
    assert queued(redis) == []
    assert outbox.relay(ctx.db, ctx.dispatcher, grace=NO_GRACE).requeued == 0

    sql(
        ctx.db,
        "UPDATE outbox_jobs SET run_after = now() - interval '1 second' WHERE id = :id",
        id=job_id,
    )
    assert outbox.relay(ctx.db, ctx.dispatcher, grace=NO_GRACE).requeued == 1
    assert run_burst() is True
    assert load(ctx.db, job_id).status is OutboxStatus.DONE
    assert marks(redis, payload) == ["v"]


def test_relay_takes_back_a_row_whose_lease_expired(
    ctx: AppContext, redis: Redis, redis_url: str
) -> None:
    payload = mark_payload(redis_url)
    job_id = record_committed(ctx.db, t.APPEND_MARK, payload)
    # A worker took the RQ job, claimed the row and died: the row stays running.
    redis.delete(get_queue(redis, "default").key, Job.key_for(outbox_rq_id(job_id)))
    sql(
        ctx.db,
        "UPDATE outbox_jobs SET status = 'running', attempts = 1,"
        " lease_until = now() + interval '5 minutes' WHERE id = :id",
        id=job_id,
    )
    # The lease still runs: nobody else may take the row.
    assert outbox.execute(ctx.db, job_id, lease=LEASE) is None
    assert outbox.relay(ctx.db, ctx.dispatcher, grace=NO_GRACE) == outbox.RelayReport(0, 0)

    expire_lease_and_relay(ctx, job_id)
    row = load(ctx.db, job_id)
    assert row.status is OutboxStatus.PENDING
    assert row.lease_until is None

    row = run_to_done_on_second_attempt(ctx, job_id)
    assert marks(redis, payload) == ["v"]


def test_a_killed_work_horse_leaves_a_lease_that_the_relay_takes_back(
    ctx: AppContext, redis: Redis, redis_url: str
) -> None:
    payload = mark_payload(redis_url, counter=f"calls:{uuid.uuid4().hex}")
    job_id = record_committed(ctx.db, t.DIE_ONCE, payload)

    run_burst()  # The horse is SIGKILLed mid-task.
    row = load(ctx.db, job_id)
    assert row.status is OutboxStatus.RUNNING
    assert row.attempts == 1
    assert row.lease_until is not None and row.lease_until > utcnow()
    assert outbox_rq_id(job_id) in get_queue(redis, "default").failed_job_registry.get_job_ids()
    assert marks(redis, payload) == []
    # Until the lease runs out the row may still be in someone's hands.
    assert outbox.relay(ctx.db, ctx.dispatcher, grace=NO_GRACE) == outbox.RelayReport(0, 0)

    expire_lease_and_relay(ctx, job_id)
    row = run_to_done_on_second_attempt(ctx, job_id)
    assert marks(redis, payload) == ["v"]


def test_transient_error_schedules_a_retry_that_the_relay_and_worker_complete(
    ctx: AppContext, redis: Redis, redis_url: str
) -> None:
    payload = mark_payload(
        redis_url, counter=f"calls:{uuid.uuid4().hex}", fail_times=1, retry_after=60
    )
    job_id = record_committed(ctx.db, t.FLAKY, payload)

    before = utcnow()
    assert run_burst() is True
    row = load(ctx.db, job_id)
    assert row.status is OutboxStatus.PENDING
    assert row.attempts == 1
    assert row.last_error is not None and "remote busy (call 1)" in row.last_error
    # The backoff honours the remote side's Retry-After.
    assert row.run_after >= before + timedelta(seconds=59)
    assert row.lease_until is None
    assert row.enqueued_at is None
    assert row.finished_at is None
    assert marks(redis, payload) == []

    # Not due yet: neither the relay nor a worker runs it early.
    assert outbox.relay(ctx.db, ctx.dispatcher, grace=NO_GRACE).requeued == 0
    assert outbox.execute(ctx.db, job_id, lease=LEASE) is None
    assert load(ctx.db, job_id).attempts == 1

    sql(
        ctx.db,
        "UPDATE outbox_jobs SET run_after = now() - interval '1 second' WHERE id = :id",
        id=job_id,
    )
    assert outbox.relay(ctx.db, ctx.dispatcher, grace=NO_GRACE).requeued == 1
    row = run_to_done_on_second_attempt(ctx, job_id)
    assert row.last_error is None
    assert marks(redis, payload) == ["v"]
    assert int(redis.get(payload["counter"]) or 0) == 2


def test_transient_errors_give_up_after_max_attempts(ctx: AppContext, redis_url: str) -> None:
    job_id = record_committed(ctx.db, t.ALWAYS_TRANSIENT, {})
    lease = LEASE
    assert outbox.execute(ctx.db, job_id, lease=lease) is OutboxStatus.PENDING
    sql(
        ctx.db,
        "UPDATE outbox_jobs SET run_after = now() - interval '1 second' WHERE id = :id",
        id=job_id,
    )
    assert outbox.execute(ctx.db, job_id, lease=lease) is OutboxStatus.FAILED
    row = load(ctx.db, job_id)
    assert row.status is OutboxStatus.FAILED
    assert row.attempts == 2
    assert row.finished_at is not None
    assert row.last_error == "gave up after 2 attempts: still busy"
    assert outbox.execute(ctx.db, job_id, lease=lease) is None


def test_an_unexpected_exception_fails_the_row_without_retrying(
    ctx: AppContext, redis: Redis, redis_url: str
) -> None:
    payload = {"redis_url": redis_url, "counter": f"calls:{uuid.uuid4().hex}", "why": "bad data"}
    job_id = record_committed(ctx.db, t.BOOM, payload)

    assert run_burst() is True
    row = load(ctx.db, job_id)
    assert row.status is OutboxStatus.FAILED
    assert row.attempts == 1
    assert row.finished_at is not None
    assert row.lease_until is None
    assert row.last_error == "ValueError: boom: bad data"
    # The outcome is recorded in PostgreSQL; the RQ job itself completed.
    assert get_queue(redis, "default").failed_job_registry.count == 0

    assert outbox.relay(ctx.db, ctx.dispatcher, grace=NO_GRACE) == outbox.RelayReport(0, 0)
    assert run_burst() is False
    assert outbox.execute(ctx.db, job_id, lease=LEASE) is None
    assert int(redis.get(payload["counter"]) or 0) == 1
    assert load(ctx.db, job_id).attempts == 1


def test_the_task_effect_commits_with_its_outcome(
    ctx: AppContext, marks_table: str, redis: Redis
) -> None:
    done_id = record_committed(ctx.db, t.PG_MARK, {"value": "kept"})
    failed_id = record_committed(ctx.db, t.PG_MARK_THEN_BOOM, {"value": "rolled back"})

    assert run_burst() is True
    assert load(ctx.db, done_id).status is OutboxStatus.DONE
    failed = load(ctx.db, failed_id)
    assert failed.status is OutboxStatus.FAILED
    assert failed.last_error == "RuntimeError: failed after writing"
    with ctx.db.engine.connect() as conn:
        query = text(f"SELECT value FROM {marks_table} ORDER BY id")  # noqa: S608 - constant
        assert list(conn.execute(query).scalars()) == ["kept"]


def test_finished_work_runs_effectively_once(ctx: AppContext, redis: Redis, redis_url: str) -> None:
    payload = mark_payload(redis_url)
    job_id = record_committed(ctx.db, t.APPEND_MARK, payload)
    assert run_burst() is True
    done = load(ctx.db, job_id)
    assert done.status is OutboxStatus.DONE

    assert outbox.execute(ctx.db, job_id, lease=LEASE) is None
    # A duplicate delivery (the same RQ job enqueued again) changes nothing either.
    ctx.dispatcher.dispatch([outbox.Dispatch(job_id, "default")])
    assert run_burst() is True

    again = load(ctx.db, job_id)
    assert again.status is OutboxStatus.DONE
    assert again.attempts == 1
    assert again.finished_at == done.finished_at
    assert marks(redis, payload) == ["v"]
    assert outbox.execute(ctx.db, uuid.uuid4(), lease=LEASE) is None


def test_worker_log_records_carry_the_rq_job_id(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    committed_db: Database,
    redis: Redis,
    redis_url: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    json_settings = dataclasses.replace(settings, log_json=True, log_level="INFO")
    ctx = install_worker_context(monkeypatch, json_settings, committed_db, redis)
    logged_id = record_committed(ctx.db, t.LOG_LINE, {"value": "hello"})
    failed_id = record_committed(
        ctx.db, t.BOOM, {"redis_url": redis_url, "counter": f"calls:{uuid.uuid4().hex}"}
    )

    assert run_burst() is True
    _, err = capfd.readouterr()
    entries = [json.loads(line) for line in err.splitlines() if line.startswith("{")]

    said = [e for e in entries if e["msg"] == "task says hello"]
    assert len(said) == 1
    assert said[0]["job_id"] == outbox_rq_id(logged_id)
    assert said[0]["logger"] == "tests.outbox_tasks"
    assert said[0]["level"] == "warning"

    failures = [e for e in entries if e["msg"] == f"outbox job {failed_id} (tests.boom) failed"]
    assert len(failures) == 1
    assert failures[0]["job_id"] == outbox_rq_id(failed_id)
    assert failures[0]["level"] == "error"
    assert "ValueError: boom" in failures[0]["exc"]


def test_log_records_outside_a_job_have_no_job_id() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "plain %s", ("line",), None)
    assert ContextFilter().filter(record) is True
    assert record.job_id is None  # type: ignore[attr-defined]
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "plain line"
    assert "job_id" not in entry


# -- the task-name registry and the worker's start check ----------------------------------------


def test_the_worker_refuses_to_start_naming_a_task_without_a_handler() -> None:
    from fieldcast.outbox.names import TaskName
    from workers.jobs import import_task_modules

    registry = outbox.TaskRegistry()
    for name in TaskName:
        if name is not TaskName.SHARES_SEND_SLICE:
            registry.register(name, queue="default")(lambda session, payload: None)
    with pytest.raises(SystemExit) as stopped:
        import_task_modules((), registry=registry)
    message = str(stopped.value)
    assert "shares.send_slice" in message
    assert "workers.jobs.TASK_MODULES" in message
    assert "shares.fan_out" not in message

    registry.register(TaskName.SHARES_SEND_SLICE, queue="notify")(lambda session, payload: None)
    import_task_modules((), registry=registry)  # complete: starts


def test_the_worker_modules_register_every_task_the_product_records() -> None:
    """In a fresh interpreter, so registrations made by other tests' imports cannot help."""
    import subprocess
    import sys

    script = (
        "from fieldcast.outbox import services as outbox\n"
        "from fieldcast.outbox.names import TaskName\n"
        "from workers.jobs import import_task_modules\n"
        "import_task_modules()\n"
        "registered = sorted(outbox.tasks.tasks)\n"
        "assert registered == sorted(n.value for n in TaskName), registered\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


def test_recorded_and_registered_task_names_come_from_the_registry() -> None:
    """Production code names tasks through `TaskName`, never as a bare string."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    bare = re.compile(r"""(?:register|record)\(\s*(?:session,\s*)?["'][a-z_]+\.[a-z_]+["']""")
    constant = re.compile(r"""^[A-Z_]*TASK\s*=\s*["']""", re.MULTILINE)
    found = [
        str(path.relative_to(root))
        for directory in ("fieldcast", "workers", "api")
        for path in (root / directory).rglob("*.py")
        if bare.search(path.read_text()) or constant.search(path.read_text())
    ]
    assert found == []


def _organisations(db: Database, count: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    with db.engine.begin() as conn:
        for org_id in ids:
            conn.execute(
                text("INSERT INTO organisations (id, name, slug) VALUES (:id, 'Org', :slug)"),
                {"id": org_id, "slug": f"org-{org_id.hex[:12]}"},
            )
    return ids


def _statuses(db: Database, job_ids: list[uuid.UUID]) -> list[OutboxStatus]:
    return [load(db, job_id).status for job_id in job_ids]


def test_an_organisations_jobs_past_its_share_wait_their_turn_behind_nobody_elses(
    ctx: AppContext, redis: Redis, redis_url: str
) -> None:
    """A bulk upload of one organisation fills the queue no further than its share: the other
    organisation's job is queued at once, ahead of the bulk's rest, which goes in order."""
    assert outbox.tasks.fair_share == 2  # MEDIA_JOBS_PER_ORGANISATION's default
    bulk, other = _organisations(ctx.db, 2)
    key = f"marks:{uuid.uuid4().hex}"
    payloads = [{"redis_url": redis_url, "key": key, "value": f"bulk-{n}"} for n in range(5)]
    jobs = [record_committed(ctx.db, t.FAIR_MARK, p, org_id=bulk) for p in payloads]
    assert _statuses(ctx.db, jobs) == [OutboxStatus.PENDING] * 2 + [OutboxStatus.HELD] * 3
    theirs = record_committed(
        ctx.db, t.FAIR_MARK, {"redis_url": redis_url, "key": key, "value": "other"}, org_id=other
    )
    assert load(ctx.db, theirs).status is OutboxStatus.PENDING
    assert queued(redis) == [outbox_rq_id(j) for j in (*jobs[:2], theirs)]
    # The relay leaves held work alone while its organisation's share is busy.
    assert outbox.relay(ctx.db, ctx.dispatcher, grace=NO_GRACE).requeued == 0

    assert run_burst() is True
    assert _statuses(ctx.db, [*jobs, theirs]) == [OutboxStatus.DONE] * 6
    # Each finished job handed its place to the next in line: the other organisation's job
    # ran third, not sixth, and the bulk in the order it was recorded.
    done = [item.decode() for item in redis.lrange(key, 0, -1)]  # type: ignore[union-attr]
    assert done == ["bulk-0", "bulk-1", "other", "bulk-2", "bulk-3", "bulk-4"]


def test_held_work_whose_turn_was_not_handed_on_is_released_by_the_relay(
    ctx: AppContext, redis: Redis, redis_url: str
) -> None:
    (org_id,) = _organisations(ctx.db, 1)
    jobs = [
        record_committed(ctx.db, t.FAIR_MARK, mark_payload(redis_url, str(n)), org_id=org_id)
        for n in range(3)
    ]
    assert _statuses(ctx.db, jobs)[2] is OutboxStatus.HELD
    # The two in flight end without handing on their place (their worker died, say).
    sql(ctx.db, "UPDATE outbox_jobs SET status = 'done' WHERE id IN (:a, :b)", a=jobs[0], b=jobs[1])
    redis.flushdb()
    report = outbox.relay(ctx.db, ctx.dispatcher, grace=NO_GRACE)
    assert report.requeued == 1
    assert load(ctx.db, jobs[2]).status is OutboxStatus.PENDING
    assert queued(redis) == [outbox_rq_id(jobs[2])]
    assert run_burst() is True
    assert load(ctx.db, jobs[2]).status is OutboxStatus.DONE
