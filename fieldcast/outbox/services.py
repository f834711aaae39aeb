"""The transactional outbox.

A service records work with `record()` inside its own transaction. When that transaction
commits, the session hands the new rows to a `Dispatcher` (RQ in production). A worker runs a
row through `execute()`, which claims it with a lease (an early commit, see
`fieldcast.db.EarlyCommit.OUTBOX_LEASE`), runs the registered task and marks it done in the
task's own transaction: the task body only flushes, and that transaction commits once, with
the row's new status, whatever the outcome. `relay()` puts back what was lost: rows whose RQ job
vanished (Redis restarted) and rows whose lease ran out (the worker died).
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from sqlalchemy import and_, delete, event, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session, sessionmaker

from fieldcast.db import (
    Database,
    EarlyCommit,
    commit_apart,
    commit_early,
    commit_unit,
    utcnow,
)
from fieldcast.models.outbox import OutboxJob, OutboxStatus

log = logging.getLogger(__name__)

_SESSION_KEY = "fieldcast.outbox.recorded"


class TransientError(Exception):
    """Raised by a task when trying again later may succeed (a remote 503, a timeout)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


TaskFunc = Callable[[Session, dict[str, Any]], None]
# Called once, in its own transaction, when a task fails for good: the place to tell the user
# (mark the video failed) instead of leaving what they wait for stuck.
GiveUpFunc = Callable[[Session, dict[str, Any], str], None]


@dataclass(frozen=True)
class Task:
    name: str
    func: TaskFunc
    queue: str
    max_attempts: int = 5
    on_give_up: GiveUpFunc | None = None
    # At most `TaskRegistry.fair_share` of one organisation's jobs of this task are queued or
    # running at once; the others wait, held, and go in order as those finish. One
    # organisation's bulk upload then fills a queue no further than its share, and another's
    # first playable rendition waits for at most that many jobs ahead of it.
    fair_share: bool = False


@dataclass
class TaskRegistry:
    tasks: dict[str, Task] = field(default_factory=dict)
    # An organisation's jobs of a fair-shared task queued or running at once
    # (MEDIA_JOBS_PER_ORGANISATION, set from the settings where a context is built).
    fair_share: int = 2

    def register(
        self,
        name: str,
        *,
        queue: str,
        max_attempts: int = 5,
        on_give_up: GiveUpFunc | None = None,
        fair_share: bool = False,
    ) -> Callable[[TaskFunc], TaskFunc]:
        def decorator(func: TaskFunc) -> TaskFunc:
            if name in self.tasks:
                raise ValueError(f"task {name!r} is registered twice")
            self.tasks[name] = Task(name, func, queue, max_attempts, on_give_up, fair_share)
            return func

        return decorator

    def get(self, name: str) -> Task:
        try:
            return self.tasks[name]
        except KeyError:
            raise LookupError(f"no task named {name!r}") from None


#: Tasks register themselves here at import time of their domain module.
tasks = TaskRegistry()


@dataclass(frozen=True)
class Dispatch:
    job_id: uuid.UUID
    queue: str


class Dispatcher(Protocol):
    def dispatch(self, jobs: Sequence[Dispatch]) -> None: ...

    def missing(self, job_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Of these outbox ids, those with no live job in the queue backend."""
        ...


def record(
    session: Session,
    task: str,
    payload: dict[str, Any] | None = None,
    *,
    org_id: uuid.UUID | None = None,
    dedup_key: str | None = None,
    delay: timedelta | None = None,
) -> uuid.UUID | None:
    """Record work in the caller's transaction; it is dispatched once that transaction commits.

    With a `dedup_key`, recording the same work twice keeps the first row and returns None.
    """
    spec = tasks.get(task)
    job_id = uuid.uuid4()
    # (Delayed work is not held: it is not in flight before it is due.)
    held = (
        spec.fair_share and org_id is not None and delay is None and _no_room(session, org_id, task)
    )
    values: dict[str, Any] = {
        "id": job_id,
        "org_id": org_id,
        "task": task,
        "queue": spec.queue,
        "payload": payload or {},
        "dedup_key": dedup_key,
        "status": OutboxStatus.HELD if held else OutboxStatus.PENDING,
        "max_attempts": spec.max_attempts,
    }
    if delay is not None:
        values["run_after"] = utcnow() + delay
    stmt = insert(OutboxJob).values(**values)
    if dedup_key is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=["dedup_key"])
    result = session.execute(stmt.returning(OutboxJob.id))
    if result.scalar_one_or_none() is None:
        return None
    if delay is None and not held:
        session.info.setdefault(_SESSION_KEY, []).append(Dispatch(job_id, spec.queue))
    return job_id


def _no_room(session: Session, org_id: uuid.UUID, task: str) -> bool:
    """Whether the organisation's new job of a fair-shared task must wait: its share is in
    flight, or others wait already (they go first). Decided under a lock per organisation and
    task, held until the caller's transaction ends, so two jobs recorded at once cannot both
    take the last place."""
    session.execute(
        select(func.pg_advisory_xact_lock(func.hashtextextended(f"fair:{org_id}:{task}", 0)))
    )
    row = session.execute(
        select(
            func.count().filter(OutboxJob.status != OutboxStatus.HELD).label("busy"),
            func.count().filter(OutboxJob.status == OutboxStatus.HELD).label("waiting"),
        ).where(
            OutboxJob.org_id == org_id,
            OutboxJob.task == task,
            OutboxJob.status.in_([OutboxStatus.PENDING, OutboxStatus.RUNNING, OutboxStatus.HELD]),
        )
    ).one()
    return bool(row.waiting) or row.busy >= tasks.fair_share


# The oldest held jobs of each organisation and fair-shared task, as many as its share has
# room for: released to run.
_RELEASE = text(
    """
    WITH shares AS (
        SELECT org_id, task,
               count(*) FILTER (WHERE status IN ('pending', 'running')) AS busy
        FROM outbox_jobs
        WHERE task = ANY(:tasks) AND status IN ('held', 'pending', 'running')
          AND (CAST(:org_id AS uuid) IS NULL OR org_id = CAST(:org_id AS uuid))
        GROUP BY org_id, task
        HAVING count(*) FILTER (WHERE status = 'held') > 0
    ),
    turn AS (
        SELECT h.id, row_number() OVER (PARTITION BY h.org_id, h.task ORDER BY h.created_at)
                   AS n, s.busy
        FROM outbox_jobs h
        JOIN shares s ON s.org_id = h.org_id AND s.task = h.task
        WHERE h.status = 'held'
    )
    UPDATE outbox_jobs SET status = 'pending', run_after = now()
    WHERE id IN (
        -- Locked in one order, skipping rows another release holds: two releases at once
        -- (a finishing job, the relay) neither wait for nor deadlock with each other.
        SELECT id FROM outbox_jobs
        WHERE id IN (SELECT id FROM turn WHERE n <= :share - busy) AND status = 'held'
        ORDER BY created_at, id
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id, queue
    """
)


def release_held(
    session: Session, *, org_id: uuid.UUID | None = None, registry: TaskRegistry | None = None
) -> int:
    """Release, in the caller's transaction, the held jobs whose organisation's share has
    room (of one organisation, or all): dispatched on commit. Returns how many."""
    released = _released(session, org_id, registry or tasks)
    session.info.setdefault(_SESSION_KEY, []).extend(released)
    return len(released)


def _released(session: Session, org_id: uuid.UUID | None, registry: TaskRegistry) -> list[Dispatch]:
    shared = [name for name, spec in registry.tasks.items() if spec.fair_share]
    if not shared:
        return []
    rows = session.execute(
        _RELEASE, {"tasks": shared, "org_id": org_id, "share": registry.fair_share}
    ).all()
    return [Dispatch(row.id, row.queue) for row in rows]


def drop(session: Session, task: str, *conditions: Any, reason: str) -> int:
    """Withdraw, in the caller's transaction, work recorded but not started: the pending rows
    of `task` matching `conditions` end as done with `dropped: <reason>`, and a worker that
    picks up their RQ job finds them finished. Work already running is not stopped here: its
    task checks again before acting. Returns how many rows were dropped."""
    result = session.execute(
        update(OutboxJob)
        .where(OutboxJob.task == task, OutboxJob.status == OutboxStatus.PENDING, *conditions)
        .values(
            status=OutboxStatus.DONE,
            finished_at=utcnow(),
            lease_until=None,
            last_error=f"dropped: {reason}"[:2000],
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def run_again(session: Session, dedup_key: str, *, finished_since: Any) -> bool:
    """Run once more, in the caller's transaction, a keyed task that finished at or after
    `finished_since` (one that stood down because what it worked on was gone for a while:
    a deleted video's processing step, when the video is restored). Dispatched on commit."""
    row = session.execute(
        update(OutboxJob)
        .where(
            OutboxJob.dedup_key == dedup_key,
            OutboxJob.status == OutboxStatus.DONE,
            OutboxJob.finished_at >= finished_since,
        )
        .values(
            status=OutboxStatus.PENDING,
            attempts=0,
            run_after=func.now(),
            lease_until=None,
            enqueued_at=None,
            finished_at=None,
            last_error=None,
        )
        .returning(OutboxJob.id, OutboxJob.queue)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is None:
        return False
    session.info.setdefault(_SESSION_KEY, []).append(Dispatch(row.id, row.queue))
    return True


def install_dispatch(factory: sessionmaker[Session], dispatcher: Dispatcher) -> None:
    """Dispatch recorded work after every commit of sessions from this factory."""

    @event.listens_for(factory, "after_commit")
    def _after_commit(session: Session) -> None:
        recorded: list[Dispatch] = session.info.pop(_SESSION_KEY, [])
        if not recorded:
            return
        try:
            dispatcher.dispatch(recorded)
        except Exception:
            # The rows are committed; the relay enqueues them once the queue is back.
            log.warning("outbox dispatch failed; the relay will retry", exc_info=True)

    @event.listens_for(factory, "after_transaction_end")
    def _after_transaction_end(session: Session, transaction: Any) -> None:
        # Only the outermost transaction ending (rolled back or closed) discards what was
        # recorded: a rolled-back SAVEPOINT keeps the work recorded before it.
        if transaction.parent is None:
            session.info.pop(_SESSION_KEY, None)


def _backoff(attempt: int, retry_after: float | None) -> float:
    # Exponential with full jitter, floored by what the remote side asked for.
    ceiling = min(600.0, 2.0 ** min(attempt, 10))
    delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security
    return max(delay, retry_after or 0.0)


def execute(
    db: Database,
    job_id: uuid.UUID,
    *,
    lease: timedelta,
    registry: TaskRegistry = tasks,
) -> OutboxStatus | None:
    """Run one outbox row at most once at a time. Returns the row's new status, or None when
    another worker holds it or it is already finished.

    While the task runs, its lease is renewed every third of `lease`; a worker that dies
    (SIGKILL, OOM, lost host) stops renewing, and the relay hands the work to another worker
    soon after, however long the task may legitimately run.
    """
    # The database's clock, not this host's: run_after and created_at come from it too.
    now = func.now()
    with db.session() as session:
        claimed = session.execute(
            update(OutboxJob)
            .where(
                OutboxJob.id == job_id,
                OutboxJob.run_after <= now,
                or_(
                    OutboxJob.status == OutboxStatus.PENDING,
                    and_(
                        OutboxJob.status == OutboxStatus.RUNNING,
                        OutboxJob.lease_until < now,
                    ),
                ),
            )
            .values(
                status=OutboxStatus.RUNNING,
                attempts=OutboxJob.attempts + 1,
                lease_until=now + lease,
            )
            .returning(
                OutboxJob.task, OutboxJob.payload, OutboxJob.attempts, OutboxJob.max_attempts
            )
        ).one_or_none()
        commit_early(session, EarlyCommit.OUTBOX_LEASE)
    if claimed is None:
        log.info("outbox job %s is finished or held elsewhere; skipping", job_id)
        return None
    task_name: str = claimed.task
    payload: dict[str, Any] = claimed.payload
    attempt: int = claimed.attempts
    max_attempts: int = claimed.max_attempts

    with _LeaseRenewal(db, job_id, attempt, lease), db.session() as session:
        try:
            try:
                task = registry.get(task_name)
            except LookupError:
                # A worker of an older release may not know a new task yet: leave it for one
                # that does instead of failing the work for good.
                raise TransientError(f"this worker does not know task {task_name!r}") from None
            task.func(session, payload)
            _finish(session, job_id, attempt, OutboxStatus.DONE, None, registry)
            commit_unit(session)
            return OutboxStatus.DONE
        except TransientError as exc:
            session.rollback()
            if attempt >= max_attempts:
                status = OutboxStatus.FAILED
                reason = f"gave up after {attempt} attempts: {exc}"
                _finish(session, job_id, attempt, status, reason, registry)
                _give_up(session, registry, task_name, payload, reason)
            else:
                status = OutboxStatus.PENDING
                delay = _backoff(attempt, exc.retry_after)
                session.execute(
                    update(OutboxJob)
                    .where(OutboxJob.id == job_id, OutboxJob.attempts == attempt)
                    .values(
                        status=status,
                        run_after=utcnow() + timedelta(seconds=delay),
                        lease_until=None,
                        enqueued_at=None,
                        last_error=str(exc)[:2000],
                    )
                )
                log.warning(
                    "outbox job %s (%s) will retry in %.1fs: %s", job_id, task_name, delay, exc
                )
            commit_unit(session)
            return status
        except Exception as exc:
            session.rollback()
            log.exception("outbox job %s (%s) failed", job_id, task_name)
            reason = f"{type(exc).__name__}: {exc}"
            _finish(session, job_id, attempt, OutboxStatus.FAILED, reason, registry)
            _give_up(session, registry, task_name, payload, reason)
            commit_unit(session)
            return OutboxStatus.FAILED


class _LeaseRenewal:
    """Renews a claimed row's lease from a thread while its task runs in this one."""

    def __init__(self, db: Database, job_id: uuid.UUID, attempt: int, lease: timedelta) -> None:
        self.db = db
        self.job_id = job_id
        self.attempt = attempt
        self.lease = lease
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"lease-{job_id}", daemon=True)

    def __enter__(self) -> _LeaseRenewal:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        interval = max(0.5, self.lease.total_seconds() / 3)
        while not self.stop.wait(interval):
            try:
                with commit_apart(self.db.engine, EarlyCommit.OUTBOX_LEASE) as connection:
                    connection.execute(
                        update(OutboxJob)
                        .where(
                            OutboxJob.id == self.job_id,
                            OutboxJob.attempts == self.attempt,
                            OutboxJob.status == OutboxStatus.RUNNING,
                        )
                        .values(lease_until=func.now() + self.lease)
                    )
            except Exception:
                log.warning("could not renew the lease of outbox job %s", self.job_id)


def _give_up(
    session: Session, registry: TaskRegistry, task_name: str, payload: dict[str, Any], reason: str
) -> None:
    try:
        task = registry.get(task_name)
    except LookupError:
        return
    if task.on_give_up is None:
        return
    try:
        with session.begin_nested():
            task.on_give_up(session, payload, reason)
    except Exception:
        log.exception("the give-up handler of %s failed", task_name)


def _finish(
    session: Session,
    job_id: uuid.UUID,
    attempt: int,
    status: OutboxStatus,
    error: str | None,
    registry: TaskRegistry | None = None,
) -> None:
    # Guarded by the attempt number: a worker whose lease expired and was superseded
    # must not overwrite the outcome of the attempt that replaced it.
    finished = session.execute(
        update(OutboxJob)
        .where(OutboxJob.id == job_id, OutboxJob.attempts == attempt)
        .values(
            status=status,
            finished_at=utcnow(),
            lease_until=None,
            last_error=error[:2000] if error else None,
        )
        .returning(OutboxJob.org_id, OutboxJob.task)
    ).one_or_none()
    registry = registry or tasks
    spec = registry.tasks.get(finished.task) if finished is not None else None
    if finished is not None and finished.org_id is not None and spec and spec.fair_share:
        # Its place goes to the organisation's next waiting job at once. Only a courtesy: the
        # relay releases it otherwise, so a failure here never costs the finished work.
        try:
            with session.begin_nested():
                release_held(session, org_id=finished.org_id, registry=registry)
        except Exception:
            log.warning("could not hand on the turn of outbox job %s", job_id, exc_info=True)


@dataclass(frozen=True)
class RelayReport:
    expired: int
    requeued: int


def relay(
    db: Database,
    dispatcher: Dispatcher,
    *,
    grace: timedelta = timedelta(seconds=30),
    batch: int = 500,
    registry: TaskRegistry = tasks,
) -> RelayReport:
    """Re-dispatch due work that has no live job in the queue backend."""
    now = func.now()
    with db.unit_of_work() as session:
        # A lease that ran out means the worker died mid-task (SIGKILL, OOM, lost host).
        expired = session.execute(
            update(OutboxJob)
            .where(OutboxJob.status == OutboxStatus.RUNNING, OutboxJob.lease_until < now)
            .values(status=OutboxStatus.PENDING, lease_until=None, enqueued_at=None)
            .returning(OutboxJob.id)
        ).all()
        gave_up = session.execute(
            update(OutboxJob)
            .where(
                OutboxJob.status == OutboxStatus.PENDING,
                OutboxJob.attempts >= OutboxJob.max_attempts,
            )
            .values(
                status=OutboxStatus.FAILED,
                finished_at=now,
                last_error=text("coalesce(last_error, 'worker lost') || ' (attempts exhausted)'"),
            )
            .returning(OutboxJob.id, OutboxJob.task, OutboxJob.payload, OutboxJob.last_error)
        ).all()
        for row in gave_up:
            log.error("outbox job %s exhausted its attempts", row.id)
            _give_up(session, registry, row.task, row.payload, row.last_error or "worker lost")

        due = session.execute(
            select(OutboxJob.id, OutboxJob.queue)
            .where(
                OutboxJob.status == OutboxStatus.PENDING,
                OutboxJob.run_after <= now,
                or_(
                    # Fresh rows were dispatched on commit; give that path time to land first.
                    and_(
                        OutboxJob.created_at < now - grace,
                        or_(OutboxJob.enqueued_at.is_(None), OutboxJob.enqueued_at < now - grace),
                    ),
                    # Work taken back from a dead worker has waited long enough already.
                    OutboxJob.id.in_([row.id for row in expired]),
                ),
            )
            .order_by(OutboxJob.run_after)
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        lost = dispatcher.missing([row.id for row in due]) if due else set()
        # A lease that ran out is proof enough that the work is lost, even when the queue
        # backend still lists its job as running (the whole worker died, not only its horse).
        lost |= {row.id for row in expired}
        # Retries scheduled by execute() clear enqueued_at: they are due, never enqueued.
        to_send = [Dispatch(row.id, row.queue) for row in due if row.id in lost]
        # Held jobs whose organisation's share has room (one that finished without releasing
        # the next: its worker died, it was given up above).
        to_send += _released(session, None, registry)
        if to_send:
            session.execute(
                update(OutboxJob)
                .where(OutboxJob.id.in_([d.job_id for d in to_send]))
                .values(enqueued_at=now)
            )
    if to_send:
        dispatcher.dispatch(to_send)
        log.info("outbox relay re-dispatched %d job(s)", len(to_send))
    return RelayReport(expired=len(expired), requeued=len(to_send))


def prune(db: Database, *, older_than: timedelta) -> int:
    """Delete finished rows past their retention."""
    with db.unit_of_work() as session:
        result = session.execute(
            delete(OutboxJob).where(
                OutboxJob.status.in_([OutboxStatus.DONE, OutboxStatus.FAILED]),
                OutboxJob.finished_at < utcnow() - older_than,
            )
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


UNFINISHED = (
    OutboxStatus.PENDING,
    OutboxStatus.RUNNING,
    OutboxStatus.FAILED,
    OutboxStatus.HELD,
)


def backlog(session: Session) -> dict[OutboxStatus, int]:
    """How many jobs wait, run or failed for good, per status (0 for none): the metrics'
    outbox gauge."""
    rows = session.execute(
        select(OutboxJob.status, func.count())
        .where(OutboxJob.status.in_(UNFINISHED))
        .group_by(OutboxJob.status)
    ).all()
    counts: dict[OutboxStatus, int] = dict.fromkeys(UNFINISHED, 0)
    for status, count in rows:
        counts[status] = count
    return counts
