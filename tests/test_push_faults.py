"""The fan-out under faults, with real RQ workers, the real FCM sender and the local FCM server:
a worker killed while its pushes are in flight, Redis losing its queues mid-fan-out, and Redis
itself killed and started again. Every device ends up with its push accepted exactly once."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import select

from fieldcast.context import AppContext
from fieldcast.db import Database, utcnow
from fieldcast.models.devices import Device, Platform
from fieldcast.models.outbox import OutboxJob, OutboxStatus
from fieldcast.models.sharing import RecipientState, ShareRecipient
from fieldcast.models.videos import Video, VideoStatus
from fieldcast.outbox import services as outbox
from fieldcast.policy import Principal
from fieldcast.settings import Settings
from fieldcast.sharing import fanout, shares
from notifications.fcm import FcmSink
from tests import factories
from tests.fault_servers import RedisServer
from tests.fcm_server import FcmServer, write_service_account
from tests.live_server import committed_factories
from tests.worker_support import (
    TASK_MODULE,
    install_worker_context,
    preserved_process_state,
    run_burst,
)
from workers.worker import run_worker

LEASE_S = 2


@dataclasses.dataclass
class FanOut:
    ctx: AppContext
    fcm: FcmServer
    share_id: Any
    tokens: list[str]

    def recipients(self) -> list[ShareRecipient]:
        with self.ctx.db.session() as session:
            return list(
                session.scalars(
                    select(ShareRecipient).where(ShareRecipient.share_id == self.share_id)
                )
            )

    def jobs(self, task: str) -> list[OutboxJob]:
        with self.ctx.db.session() as session:
            return list(session.scalars(select(OutboxJob).where(OutboxJob.task == task)))


@contextlib.contextmanager
def _fan_out(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    committed_db: Database,
    redis: Redis,
    tmp_path: Path,
) -> Iterator[FanOut]:
    """Six recipients with a phone each, in slices of two; the share is made, not yet sent."""
    monkeypatch.setattr(fanout, "SLICE_SIZE", 2)
    ctx = install_worker_context(
        monkeypatch, dataclasses.replace(settings, outbox_lease_s=LEASE_S), committed_db, redis
    )
    with FcmServer() as fcm:
        sink = FcmSink(str(write_service_account(tmp_path / "sa.json", fcm)), endpoint=fcm.base_url)
        ctx.push = sink
        with committed_factories(committed_db) as session:
            org = factories.OrganisationFactory()
            sender = factories.UserFactory(org=org)
            peers = [factories.UserFactory(org=org) for _ in range(6)]
            video = Video(org_id=org.id, owner_id=sender.id, title="Demo", status=VideoStatus.READY)
            session.add(video)
            tokens = []
            for i, peer in enumerate(peers):
                tokens.append(f"phone-{i}")
                session.add(
                    Device(
                        org_id=org.id,
                        user_id=peer.id,
                        token=tokens[-1],
                        platform=Platform.ANDROID,
                        last_registered_at=utcnow(),
                    )
                )
            session.commit()
            share = shares.share_video(
                session, Principal(user=sender), video.id, user_ids=[p.id for p in peers]
            )
            session.commit()  # services flush; the caller commits its unit of work
            share_id = share.id
        try:
            yield FanOut(ctx, fcm, share_id, tokens)
        finally:
            sink.close()


@pytest.fixture
def fan_out(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    committed_db: Database,
    redis: Redis,
    tmp_path: Path,
) -> Iterator[FanOut]:
    with _fan_out(monkeypatch, settings, committed_db, redis, tmp_path) as fan:
        yield fan


def _meanwhile(action: Any) -> threading.Thread:
    """Run `action` beside the worker: RQ's worker needs the main thread for its signals."""
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    return thread


def _assert_everyone_got_it_once(fan: FanOut) -> None:
    accepted = fan.fcm.counts()
    assert sorted(token for token, _ in accepted) == sorted(fan.tokens)
    assert fan.fcm.duplicates() == 0
    states = {r.state for r in fan.recipients()}
    assert states == {RecipientState.SENT}


def test_a_worker_killed_with_pushes_in_flight(fan_out: FanOut) -> None:
    """`notify` jobs run in the worker process (its FCM session outlives a job), so it is the
    worker itself that dies here, as under the OOM killer, with a slice's pushes in flight."""
    fan = fan_out
    fan.fcm.hold()
    pid = os.fork()
    if pid == 0:  # the worker
        try:
            run_burst(["notify"])
        finally:
            os._exit(0)
    try:
        # The fan-out ran and the first slice's two pushes reached FCM, unanswered.
        fan.fcm.wait_until(lambda server: server.held == 2, timeout=60)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    fan.fcm.wait_until(lambda server: server.stats()["dropped"] == 2, timeout=20)
    fan.fcm.release()  # FCM answers again from now on

    # A new worker sends the slices still queued; the killed one waits for its lease to run out.
    run_burst(["notify"])
    [killed] = [j for j in fan.jobs(fanout.SLICE_TASK) if j.status is OutboxStatus.RUNNING]
    time.sleep(LEASE_S + 0.5)
    report = outbox.relay(fan.ctx.db, fan.ctx.dispatcher)
    assert report.expired == 1
    run_burst(["notify"])

    _assert_everyone_got_it_once(fan)
    # The two in flight at the kill arrived twice, with the same collapse id for the phone.
    assert fan.fcm.duplicates_received() == 2
    for token, _ in [pair for pair, n in fan.fcm.counts(answered_only=False).items() if n > 1]:
        sent = fan.fcm.messages(token=token)
        assert len({m.message["android"]["collapse_key"] for m in sent}) == 1
    assert {j.status for j in fan.jobs(fanout.SLICE_TASK)} == {OutboxStatus.DONE}
    [again] = [j for j in fan.jobs(fanout.SLICE_TASK) if j.id == killed.id]
    assert again.attempts == 2


def test_redis_losing_its_queues_mid_fan_out(fan_out: FanOut, redis: Redis) -> None:
    """Redis restarts without persistence: the queued slices and the running job's records are
    gone. The worker process stays up, and what Redis lost is queued again from PostgreSQL."""
    fan = fan_out
    fan.fcm.hold()

    def flush_redis_with_pushes_in_flight() -> None:
        fan.fcm.wait_until(lambda server: server.held == 2, timeout=60)
        redis.flushdb()
        fan.fcm.release()

    _run_worker_until_everyone_got_it(fan, flush_redis_with_pushes_in_flight)


def _run_worker_until_everyone_got_it(fan: FanOut, fault: Callable[[], None]) -> None:
    """Run a worker (not in burst mode: it runs until stopped) while `fault` happens beside it
    with the first slice's pushes in flight; once that slice is done, the relay queues again
    what Redis lost, and the same worker process sends it. Then a warm shutdown, as on a
    deploy."""
    requeued: list[int] = []
    everyone = threading.Event()
    returned = threading.Event()

    def fault_then_stop_the_worker() -> None:
        try:
            fault()
            deadline = time.monotonic() + 60
            while [j.status for j in fan.jobs(fanout.SLICE_TASK)].count(OutboxStatus.DONE) < 1:
                assert time.monotonic() < deadline, "the slice in flight never finished"
                time.sleep(0.05)
            assert len(fan.fcm.counts()) == 2  # only the slice in flight got through
            # No grace: in production the relay leaves recorded work 30 s to be dispatched.
            report = outbox.relay(fan.ctx.db, fan.ctx.dispatcher, grace=timedelta(0))
            requeued.append(report.requeued)
            fan.fcm.wait_until(lambda server: len(server.counts()) == len(fan.tokens), timeout=60)
            everyone.set()
        finally:
            if not returned.is_set():
                os.kill(os.getpid(), signal.SIGTERM)

    # Outside the worker, a stop that comes late is ignored rather than ending the test run.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        thread = _meanwhile(fault_then_stop_the_worker)
        with preserved_process_state():
            try:
                run_worker(["notify"], extra_task_modules=(TASK_MODULE,))
            finally:
                returned.set()
        thread.join(timeout=200)  # longer than the thread's own waits
    finally:
        signal.signal(signal.SIGTERM, previous)
    # The worker returned because it was asked to stop, after sending everything.
    assert everyone.is_set()
    assert requeued == [2]
    _assert_everyone_got_it_once(fan)
    assert fan.fcm.duplicates_received() == 0
    assert {j.status for j in fan.jobs(fanout.SLICE_TASK)} == {OutboxStatus.DONE}


def test_redis_restarting_mid_fan_out(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    committed_db: Database,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    """Redis itself goes down and comes back empty while pushes are in flight."""
    with (
        Redis.from_url(redis_server.url) as client,
        _fan_out(monkeypatch, settings, committed_db, client, tmp_path) as fan,
    ):
        fan.fcm.hold()

        def restart_redis_with_pushes_in_flight() -> None:
            fan.fcm.wait_until(lambda server: server.held == 2, timeout=60)
            redis_server.kill()
            redis_server.start()
            fan.fcm.release()

        _run_worker_until_everyone_got_it(fan, restart_redis_with_pushes_in_flight)
