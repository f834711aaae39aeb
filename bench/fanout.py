"""Share fan-out: one share to a 10,000-person list with two devices each, pushed to FCM.

What runs: the real API (`fieldcast web`, gunicorn, 2 processes), two `fieldcast worker`
processes (queues notify and default) and the scheduler, on a scratch PostgreSQL database and
Redis database. Pushes go through the product's FCM sender (one pooled aiohttp session per
worker, firebase-admin for the credential and each message's body) with a generated service
account to the local FCM HTTP v1 stand-in (`tests/fcm_server.py`, its own process), which
answers every send after 20 ms and fetches nothing from Google. The service account's token URI
points at the stand-in, so the real OAuth flow runs too.

The organisation is seeded in SQL: a sender (admin), `--members` people with two devices each,
a distribution list of all of them and one of 10, and a playable video.

Figures (one JSON line on stdout, progress on stderr):

- `share_post_p95_ms`: `POST /api/v1/videos/{id}/shares` wall time seen by the client, the 95th
  percentile of `--posts` shares to each audience (10 and the whole list), measured while the
  workers are idle (not started; those shares, their outbox rows and their RQ jobs are removed,
  unsent, before the measured fan-out). Per size in `share_post_p95_ms_by_audience`.
- `share_post_busy_p95_ms`: the same for shares to the list of 10, one every 250 ms (at most
  `--posts`) while the fan-out below runs; their pushes count in the fan-out.
- `fanout_s`: from the POST of one share to the whole list until the FCM stand-in has accepted
  a push for every (device, notification) pair of the run: that share's and the busy shares'.
- `pushes_accepted`: distinct (device token, notification) pairs the stand-in answered 200, not
  answers; `duplicates`: pairs it answered 200 more than once; `pushes_per_s`: pairs / fanout_s.
- `recipients_expected`, `recipients_sent`: recipients of the run's shares, and those in state
  `sent` once every outbox job is done.
- `worker_cpu_ms_per_push`: CPU the `notify` worker processes (and any horse they forked) spent
  from the POST until every outbox job was done (bookkeeping included), per accepted push.
- `send_each_cpu_ms_per_push` (the machine's yardstick) and `sender_cpu_ms_per_push`: CPU this
  process spends per message sending the same batches (250 notifications x 2 devices) to the
  same stand-in through firebase-admin's `send_each` (one thread and `requests` call per
  message) and through the product's sender alone; `sender_vs_send_each` is their ratio.
- `cpu_busy_s`, `fcm_standin_cpu_s`: CPU seconds the whole machine (all cores) and the FCM
  stand-in alone spent during the fan-out.

Targets: share_post_p95_ms <= 100, share_post_busy_p95_ms <= 250, fanout_s <= 8 (a quiet
machine), duplicates = 0, sender_vs_send_each <= 0.4. The run exits non-zero when the fan-out
times out or any recipient or device is not reached.

No database or Redis is emptied here: the scratch environment owns its own, and what this
benchmark removes between phases is only what it made.

Run: python -m bench.fanout  [--members 10000 | --quick] [--posts 20]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import psycopg
import requests

from bench import harness
from bench.harness import (
    NON_MEDIA_WORKER,
    free_port,
    running,
    scratch_environment,
    signed_in,
    wait_until_up,
)

DEVICES_PER_MEMBER = 2
SMALL_AUDIENCE = 10
FCM_LATENCY_MS = 20
BUSY_POST_EVERY_S = 0.25
STARTED = time.perf_counter()


def log(message: str) -> None:
    harness.log(f"[{time.perf_counter() - STARTED:5.1f} s] {message}")


TARGETS = {
    "share_post_p95_ms": 100,
    "share_post_busy_p95_ms": 250,
    "fanout_s": 8,
    "duplicates": 0,
    "sender_vs_send_each": 0.4,
}


def seed(database_url: str, members: int) -> dict[str, str]:
    """The audience, its devices, two lists and a playable video, in a few SQL statements."""
    with psycopg.connect(database_url, autocommit=False) as conn:
        row = conn.execute("SELECT id, org_id FROM users LIMIT 1").fetchone()
        assert row is not None, "the benchmark's organisation has its admin"
        sender_id, org_id = row
        conn.execute(
            "INSERT INTO users (id, org_id, email, display_name, handle, role, is_active, "
            "time_zone, created_at, updated_at) "
            "SELECT gen_random_uuid(), %(org)s, 'member' || n || '@bench.example.com', "
            "'Member ' || n, 'member' || n, 'rep', true, 'UTC', now(), now() "
            "FROM generate_series(1, %(n)s) AS n",
            {"org": org_id, "n": members},
        )
        conn.execute(
            "INSERT INTO devices (id, org_id, user_id, token, platform, created_at, updated_at, "
            "last_registered_at) "
            "SELECT gen_random_uuid(), u.org_id, u.id, 'bench-' || u.id || '-' || k, 'android', "
            "now(), now(), now() FROM users u CROSS JOIN generate_series(1, %(k)s) AS k "
            "WHERE u.org_id = %(org)s AND u.id <> %(sender)s",
            {"org": org_id, "sender": sender_id, "k": DEVICES_PER_MEMBER},
        )
        lists = {}
        for name, limit in (("everyone", members), ("small", SMALL_AUDIENCE)):
            list_id = uuid.uuid4()
            conn.execute(
                "INSERT INTO distribution_lists (id, org_id, owner_id, name, description, "
                "visibility, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, '', 'private', now(), now())",
                (list_id, org_id, sender_id, name),
            )
            conn.execute(
                "INSERT INTO distribution_list_users (org_id, list_id, user_id) "
                "SELECT org_id, %s, id FROM users WHERE org_id = %s AND id <> %s "
                "ORDER BY handle LIMIT %s",
                (list_id, org_id, sender_id, limit),
            )
            lists[name] = str(list_id)
        video_id = uuid.uuid4()
        conn.execute(
            "INSERT INTO videos (id, org_id, owner_id, title, description, deal_attributes, "
            "status, progress, source_version, created_at, updated_at, playable_at) "
            "VALUES (%s, %s, %s, 'Pricing objection, handled', '', '{}', 'playable', 60, 1, "
            "now(), now(), now())",
            (video_id, org_id, sender_id),
        )
        conn.commit()
    # The load above is a day's worth of sign-ups at once: settle it (visibility map,
    # statistics) now rather than have autovacuum do it while the requests are timed.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    return {"video_id": str(video_id), **lists}


def forget_shares(database_url: str, redis_url: str) -> None:
    """Remove the shares made to measure the POST, before any worker sends them: their rows,
    their outbox rows and the RQ jobs those were queued as, and nothing else."""
    from redis import Redis
    from rq.job import Job

    from workers.queues import outbox_rq_id

    with psycopg.connect(database_url, autocommit=True) as conn:
        outbox_ids = [row[0] for row in conn.execute("SELECT id FROM outbox_jobs").fetchall()]
        conn.execute("DELETE FROM shares")
        conn.execute("DELETE FROM outbox_jobs")
    with Redis.from_url(redis_url) as redis:
        rq_ids = [outbox_rq_id(job_id) for job_id in outbox_ids]
        for job in Job.fetch_many(rq_ids, connection=redis):
            if job is not None:
                job.delete()  # and out of its queue


def post_share(
    base: str, headers: dict[str, str], video_id: str, list_id: str
) -> tuple[float, Any]:
    started = time.perf_counter()
    response = requests.post(
        f"{base}/api/v1/videos/{video_id}/shares",
        json={"list_ids": [list_id], "message": "Listen to the pricing part"},
        headers=headers,
        timeout=60,
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, response.json()


def probe_batch() -> list[Any]:
    """A batch as the fan-out makes them: 250 notifications, each to a user's two devices."""
    from notifications.push import MAX_BATCH, PushMessage

    batch = []
    for n in range(MAX_BATCH // DEVICES_PER_MEMBER):
        notification_id, video_id, share_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        for device in range(DEVICES_PER_MEMBER):
            batch.append(
                PushMessage(
                    notification_id=notification_id,
                    user_id=uuid.uuid4(),
                    type="share.received",
                    title="Bench Rep shared “Pricing objection, handled”",
                    body="Listen to the pricing part",
                    data={
                        "notification_id": str(notification_id),
                        "type": "share.received",
                        "video_id": str(video_id),
                        "share_id": str(share_id),
                    },
                    token=f"probe-{n}-{device}",
                    badge=1,
                )
            )
    return batch


def cpu_ms_per_message(send: Callable[[list[Any]], int], messages: int) -> float:
    """CPU milliseconds this process (all its threads) spends per message sending `messages`
    messages in batches through `send`, which returns how many were accepted."""
    batch = probe_batch()
    send(batch[:10])  # the access token, the first connections
    rounds = max(1, messages // len(batch))
    before = os.times()
    for _ in range(rounds):
        accepted = send(batch)
        assert accepted == len(batch), f"{accepted} of {len(batch)} accepted"
    after = os.times()
    spent = (after.user - before.user) + (after.system - before.system)
    return spent * 1000 / (rounds * len(batch))


def send_each_cpu_ms(account: Path, endpoint: Any, messages: int) -> float:
    """The yardstick: firebase-admin's `send_each` (a thread and a `requests` call per message,
    batches of 500), sending the product's messages to the stand-in."""
    import firebase_admin
    from firebase_admin import credentials, messaging
    from urllib3.util.retry import Retry

    from notifications.fcm import build_message
    from tests.fcm_server import point_messaging_at

    app = firebase_admin.initialize_app(
        credentials.Certificate(str(account)), name=f"bench-{uuid.uuid4()}"
    )
    point_messaging_at(app, endpoint, retries=Retry(total=1, connect=1, read=0, status=0))

    def send(batch: list[Any]) -> int:
        app.credential.get_access_token()  # once per batch, not once per thread
        return int(messaging.send_each([build_message(m) for m in batch], app=app).success_count)

    try:
        return cpu_ms_per_message(send, messages)
    finally:
        firebase_admin.delete_app(app)


def sender_cpu_ms(account: Path, endpoint: str, messages: int) -> float:
    """The product's FCM sender alone, on the same batches to the same stand-in."""
    from notifications.fcm import FcmSink

    sink = FcmSink(str(account), endpoint=endpoint)

    def send(batch: list[Any]) -> int:
        return sum(1 for result in sink.send_each(batch) if result.accepted)

    try:
        return cpu_ms_per_message(send, messages)
    finally:
        sink.close()


def worker_processes() -> list[psutil.Process]:
    """This process's `fieldcast worker` children."""
    return [child for child in psutil.Process().children() if "worker" in child.cmdline()]


def wait_for_workers(redis_url: str, count: int, timeout: float = 120) -> None:
    """Until `count` workers have registered with RQ: imports done, waiting for jobs, so their
    start-up CPU stays out of the figures."""
    from redis import Redis
    from rq import Worker

    deadline = time.monotonic() + timeout
    with Redis.from_url(redis_url) as redis:
        while Worker.count(connection=redis) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{count} workers did not start within {timeout} s")
            time.sleep(0.1)
    time.sleep(0.5)  # their first poll of the queues


def cpu_s(processes: list[psutil.Process]) -> float:
    """CPU seconds spent so far by these processes and the children they have waited for (the
    work horses of their other queues)."""
    total = 0.0
    for process in processes:
        times = process.cpu_times()
        total += times.user + times.system + times.children_user + times.children_system
    return total


class BusyPoster:
    """Shares to the small list, one every BUSY_POST_EVERY_S, while the fan-out runs."""

    def __init__(self, base: str, headers: dict[str, str], video_id: str, list_id: str) -> None:
        self.args = (base, headers, video_id, list_id)
        self.timings: list[float] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="busy-posts", daemon=True)

    def start(self, posts: int) -> None:
        self.posts = posts
        self.thread.start()

    def _run(self) -> None:
        while len(self.timings) < self.posts and not self.stop.wait(BUSY_POST_EVERY_S):
            try:
                elapsed, body = post_share(*self.args)
            except requests.RequestException as exc:
                self.errors.append(str(exc))
                return
            assert body["recipient_count"] == SMALL_AUDIENCE, body
            self.timings.append(elapsed * 1000)

    def finish(self) -> int:
        self.stop.set()
        self.thread.join(timeout=120)
        return len(self.timings)


def outbox_settled(database_url: str) -> bool:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM outbox_jobs WHERE status NOT IN ('done', 'failed')"
        ).fetchone()
    return row is not None and row[0] == 0


def recipient_states(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT state::text, count(*) FROM share_recipients GROUP BY state"
        ).fetchall()
    return {str(state).lower(): int(count) for state, count in rows}


def machine_busy_s() -> float:
    """CPU seconds spent by every process on the machine so far (all cores, not idle)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def run(
    members: int, posts: int, probe_messages: int, probe_rounds: int, timeout_s: float
) -> dict[str, Any]:
    from tests.fcm_server import FcmServerProcess

    workdir = Path(tempfile.mkdtemp(prefix="fieldcast-bench-fanout-"))
    account = workdir / "service-account.json"
    devices = members * DEVICES_PER_MEMBER
    with FcmServerProcess(latency_ms=FCM_LATENCY_MS, service_account=account) as fcm:
        log(f"FCM stand-in at {fcm.base_url}, answering after {FCM_LATENCY_MS} ms")
        extra = {"FCM_CREDENTIALS": str(account), "FCM_ENDPOINT": fcm.base_url}
        with scratch_environment(**extra) as env:
            log("scratch database and Redis ready")
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            with running(env, [["web", "--bind", f"127.0.0.1:{port}", "--workers", "2"]]):
                wait_until_up(base)
                log("the API is up")
                client = signed_in(env, base)
                ids = seed(env["DATABASE_URL"], members)
                log(f"seeded {members} members with {devices} devices")
                timings: dict[str, list[float]] = {"10": [], str(members): []}
                for _ in range(2):  # warm-up: connections, caches, query plans
                    post_share(base, client.headers, ids["video_id"], ids["small"])
                    post_share(base, client.headers, ids["video_id"], ids["everyone"])
                for _ in range(posts):
                    for size, list_id in (("10", ids["small"]), (str(members), ids["everyone"])):
                        elapsed, body = post_share(base, client.headers, ids["video_id"], list_id)
                        assert body["recipient_count"] == int(size), body
                        timings[size].append(elapsed * 1000)
                forget_shares(env["DATABASE_URL"], env["REDIS_URL"])
                by_size = {size: round(p95(values), 1) for size, values in timings.items()}
                medians = {size: round(statistics.median(v), 1) for size, v in timings.items()}
                log(f"share POST p95 (ms) by audience, workers idle: {by_size}; medians: {medians}")

                # The yardstick and the product's sender, on the same batches, interleaved: the
                # lower figure of each is the one less disturbed by the rest of the machine.
                yardstick, ours = [], []
                for _ in range(probe_rounds):
                    yardstick.append(send_each_cpu_ms(account, fcm, probe_messages))
                    ours.append(sender_cpu_ms(account, fcm.base_url, probe_messages))
                send_each_ms, sender_ms = min(yardstick), min(ours)
                log(
                    f"CPU per push: send_each {yardstick} ms, the product's sender {ours} ms "
                    f"(ratio {sender_ms / send_each_ms:.2f})"
                )

                fcm.reset()
                with running(env, [NON_MEDIA_WORKER, NON_MEDIA_WORKER, ["scheduler"]]):
                    wait_for_workers(env["REDIS_URL"], 2)
                    log("the workers are up")
                    notify_workers = worker_processes()
                    assert len(notify_workers) == 2, notify_workers
                    standin = psutil.Process(fcm.pid)
                    standin_before = sum(standin.cpu_times()[:2])
                    workers_before = cpu_s(notify_workers)
                    busy_before = machine_busy_s()
                    started = time.perf_counter()
                    deadline = started + timeout_s
                    _, share = post_share(base, client.headers, ids["video_id"], ids["everyone"])
                    busy = BusyPoster(base, client.headers, ids["video_id"], ids["small"])
                    busy.start(posts)
                    accepted = 0
                    timed_out = True
                    while time.perf_counter() < deadline:
                        accepted = int(fcm.stats()["accepted_pairs"])
                        if accepted >= devices:
                            busy.stop.set()  # the fan-out is through: no more busy shares
                        if busy.stop.is_set() and not busy.thread.is_alive():
                            # Every busy share is made: wait for their pushes too.
                            expected = (
                                devices + len(busy.timings) * SMALL_AUDIENCE * DEVICES_PER_MEMBER
                            )
                            if accepted >= expected:
                                timed_out = False
                                break
                        time.sleep(0.1)
                    fanout_s = time.perf_counter() - started
                    busy_posts = busy.finish()
                    busy_s = machine_busy_s() - busy_before
                    standin_s = sum(standin.cpu_times()[:2]) - standin_before
                    log(
                        f"fan-out: {accepted} pushes accepted in {fanout_s:.2f} s "
                        f"({busy_posts} busy shares posted meanwhile); CPU busy {busy_s:.1f} s "
                        f"over {os.cpu_count()} cores, of which the FCM stand-in {standin_s:.1f} s"
                    )
                    # Bookkeeping included: every outbox job done (results recorded, recipient
                    # states settled) before the workers' CPU is read.
                    while not outbox_settled(env["DATABASE_URL"]):
                        if time.perf_counter() > deadline + 30:
                            timed_out = True
                            break
                        time.sleep(0.1)
                    workers_s = cpu_s(notify_workers) - workers_before
                    stats = fcm.stats()
                    accepted = int(stats["accepted_pairs"])
                    states = recipient_states(env["DATABASE_URL"])
                    counts = client.get(f"/api/v1/shares/{share['id']}")["counts"]
    recipients_expected = members + busy_posts * SMALL_AUDIENCE
    devices_expected = recipients_expected * DEVICES_PER_MEMBER
    figures: dict[str, Any] = {
        "benchmark": "fanout",
        "members": members,
        "devices": devices,
        "share_post_p95_ms": max(by_size.values()),
        "share_post_p95_ms_by_audience": by_size,
        "share_post_busy_p95_ms": round(p95(busy.timings), 1) if busy.timings else None,
        "busy_posts": busy_posts,
        "fanout_s": round(fanout_s, 2),
        "timed_out": timed_out,
        "pushes_expected": devices_expected,
        "pushes_accepted": accepted,
        "pushes_per_s": round(accepted / fanout_s, 1),
        "duplicates": int(stats["duplicates"]),
        "recipients_expected": recipients_expected,
        "recipients_sent": states.get("sent", 0),
        "recipient_states": states,
        "share_counts": counts,
        "send_each_cpu_ms_per_push": round(send_each_ms, 3),
        "sender_cpu_ms_per_push": round(sender_ms, 3),
        "sender_vs_send_each": round(sender_ms / send_each_ms, 2),
        "worker_cpu_ms_per_push": round(workers_s * 1000 / max(accepted, 1), 3),
        "cpu_busy_s": round(busy_s, 1),
        "fcm_standin_cpu_s": round(standin_s, 1),
        "cores": os.cpu_count(),
        "fcm_latency_ms": FCM_LATENCY_MS,
        "workers": 2,
        "targets": TARGETS,
    }
    if busy.errors:
        figures["busy_post_errors"] = busy.errors
    return figures


def reached_everyone(figures: dict[str, Any]) -> bool:
    return (
        not figures["timed_out"]
        and figures["pushes_accepted"] == figures["pushes_expected"]
        and figures["recipients_sent"] == figures["recipients_expected"]
        and sum(figures["recipient_states"].values()) == figures["recipients_expected"]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="300 members, 3 posts each")
    parser.add_argument("--posts", type=int, default=20, help="POSTs per audience size")
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds the fan-out may take (default 300)"
    )
    args = parser.parse_args(argv)
    members, posts = (300, 3) if args.quick else (args.members, args.posts)
    if members < SMALL_AUDIENCE or posts < 1:
        parser.error(f"--members must be at least {SMALL_AUDIENCE} and --posts at least 1")
    probe_messages, probe_rounds = (500, 1) if args.quick else (2000, 2)
    timeout_s = args.timeout or (60.0 if args.quick else 300.0)
    figures = run(members, posts, probe_messages, probe_rounds, timeout_s)
    print(json.dumps(figures))
    sys.stdout.flush()
    if not reached_everyone(figures):
        log(
            "FAILED: "
            + ("the fan-out timed out; " if figures["timed_out"] else "")
            + f"{figures['pushes_accepted']} of {figures['pushes_expected']} pushes accepted, "
            f"{figures['recipients_sent']} of {figures['recipients_expected']} recipients sent"
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
