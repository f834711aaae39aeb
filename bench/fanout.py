"""Share fan-out: one share to a 10,000-person list with two devices each, pushed to FCM.

What runs: the real API (`fieldcast web`, gunicorn, 2 processes), two `fieldcast worker`
processes (queues notify and default) and the scheduler, on a scratch PostgreSQL database and
Redis database. Pushes go through firebase-admin (`send_each`, batches of 500) with a generated
service account to the local FCM HTTP v1 stand-in (`tests/fcm_server.py`, its own process),
which answers every send after 20 ms and fetches nothing from Google. The service account's
token URI points at the stand-in, so the real OAuth flow runs too.

The organisation is seeded in SQL: a sender (admin), `--members` people with two devices each,
a distribution list of all of them and one of 10, and a playable video.

Figures (one JSON line on stdout, progress on stderr):

- `share_post_p95_ms`: `POST /api/v1/videos/{id}/shares` wall time seen by the client, the 95th
  percentile of `--posts` shares to each audience (10 and the whole list), measured while no
  fan-out runs (those shares are removed, unsent, before the measured fan-out). Per size in
  `share_post_p95_ms_by_audience`.
- `fanout_s`: from the POST of one share to the whole list until FCM has accepted every push.
- `pushes_per_s`: pushes accepted / fanout_s.
- `duplicates`: (device token, notification) pairs FCM accepted more than once.
- `cpu_busy_s`, `fcm_standin_cpu_s`: CPU seconds the whole machine (all cores) and the FCM
  stand-in alone spent during the fan-out: the fan-out is CPU-bound on a small machine.
- `recipients_sent`: the share's recipients in state `sent` afterwards (the API's own count).
- `send_each_cpu_ms_per_push`: before the fan-out, CPU per message of sending 2,000 messages
  through the product's FCM sink from this process to the same stand-in; `send_each_floor_s` is
  what that alone makes the least fan-out time on this machine's cores (pushes x CPU / cores),
  before any database, queue or stand-in work.

Targets: share_post_p95_ms <= 100 for both sizes, fanout_s <= 15, duplicates = 0.

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
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import psycopg
import requests

from bench.harness import free_port, log, running, scratch_environment, signed_in, wait_until_up

DEVICES_PER_MEMBER = 2
SMALL_AUDIENCE = 10
FCM_LATENCY_MS = 20
TARGETS = {"share_post_p95_ms": 100, "fanout_s": 15, "duplicates": 0}


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
    """Remove the shares made to measure the POST, before any worker sends them."""
    from redis import Redis

    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM shares")
        conn.execute("DELETE FROM outbox_jobs")
    Redis.from_url(redis_url).flushdb()


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


def send_each_cpu_ms(account: Path, endpoint: str, messages: int = 2000) -> float:
    """CPU milliseconds this process spends per message sending through the product's FCM sink
    (firebase-admin `send_each`, batches of 500) to the stand-in, and nothing else."""
    from notifications.fcm import FcmSink
    from notifications.push import MAX_BATCH, PushMessage

    sink = FcmSink(str(account), endpoint=endpoint)
    batch = [
        PushMessage(
            notification_id=uuid.uuid4(),
            user_id=uuid.uuid4(),
            type="share",
            title="Bench Rep shared “Pricing objection, handled”",
            body="Listen to the pricing part",
            data={"video_id": str(uuid.uuid4()), "share_id": str(uuid.uuid4())},
            token=f"probe-{n}",
            badge=1,
        )
        for n in range(MAX_BATCH)
    ]
    sink.send_each(batch[:10])  # the app, the access token, the first connections
    before = os.times()
    for _ in range(messages // MAX_BATCH):
        assert all(result.accepted for result in sink.send_each(batch))
    after = os.times()
    sink.close()
    spent = (after.user - before.user) + (after.system - before.system)
    return spent * 1000 / (messages // MAX_BATCH * MAX_BATCH)


def machine_busy_s() -> float:
    """CPU seconds spent by every process on the machine so far (all cores, not idle)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def run(members: int, posts: int) -> dict[str, Any]:
    from tests.fcm_server import FcmServerProcess

    workdir = Path(tempfile.mkdtemp(prefix="fieldcast-bench-fanout-"))
    account = workdir / "service-account.json"
    expected = members * DEVICES_PER_MEMBER
    with FcmServerProcess(latency_ms=FCM_LATENCY_MS, service_account=account) as fcm:
        log(f"FCM stand-in at {fcm.base_url}, answering after {FCM_LATENCY_MS} ms")
        extra = {"FCM_CREDENTIALS": str(account), "FCM_ENDPOINT": fcm.base_url}
        with scratch_environment(**extra) as env:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            with running(env, [["web", "--bind", f"127.0.0.1:{port}", "--workers", "2"]]):
                wait_until_up(base)
                client = signed_in(env, base)
                ids = seed(env["DATABASE_URL"], members)
                log(f"seeded {members} members with {expected} devices")
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
                log(f"share POST p95 (ms) by audience: {by_size}; medians: {medians}")

                sender_ms = send_each_cpu_ms(account, fcm.base_url)
                cores = os.cpu_count() or 1
                floor_s = sender_ms * expected / 1000 / cores
                log(
                    f"send_each alone: {sender_ms:.2f} ms of CPU per push, so {expected} pushes "
                    f"need at least {floor_s:.1f} s on {cores} cores before any other work"
                )
                fcm.reset()
                workers = [
                    ["worker", "--queue", "notify", "--queue", "default"],
                    ["worker", "--queue", "notify", "--queue", "default"],
                    ["scheduler"],
                ]
                with running(env, workers):
                    time.sleep(3)  # the workers import and connect
                    standin = psutil.Process(fcm.pid)
                    standin_before = sum(standin.cpu_times()[:2])
                    busy_before = machine_busy_s()
                    started = time.perf_counter()
                    _, share = post_share(base, client.headers, ids["video_id"], ids["everyone"])
                    accepted = 0
                    deadline = started + 300
                    while time.perf_counter() < deadline:
                        stats = fcm.stats()
                        accepted = int(stats["answered"].get("200", 0))
                        if accepted >= expected:
                            break
                        time.sleep(0.05)
                    fanout_s = time.perf_counter() - started
                    busy_s = machine_busy_s() - busy_before
                    standin_s = sum(standin.cpu_times()[:2]) - standin_before
                    log(
                        f"fan-out: {accepted} pushes accepted in {fanout_s:.2f} s; CPU busy "
                        f"{busy_s:.1f} s over {os.cpu_count()} cores, of which the FCM stand-in "
                        f"{standin_s:.1f} s"
                    )
                    time.sleep(1)  # the last results are recorded
                    stats = fcm.stats()
                    counts = client.get(f"/api/v1/shares/{share['id']}")["counts"]
    return {
        "benchmark": "fanout",
        "members": members,
        "devices": expected,
        "share_post_p95_ms": max(by_size.values()),
        "share_post_p95_ms_by_audience": by_size,
        "fanout_s": round(fanout_s, 2),
        "pushes_per_s": round(accepted / fanout_s, 1),
        "pushes_accepted": accepted,
        "duplicates": int(stats["duplicates"]),
        "recipients_sent": counts["sent"],
        "cpu_busy_s": round(busy_s, 1),
        "fcm_standin_cpu_s": round(standin_s, 1),
        "send_each_cpu_ms_per_push": round(sender_ms, 2),
        "send_each_floor_s": round(floor_s, 1),
        "cores": os.cpu_count(),
        "fcm_latency_ms": FCM_LATENCY_MS,
        "workers": 2,
        "targets": TARGETS,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="500 members, 5 posts each")
    parser.add_argument("--posts", type=int, default=20, help="POSTs per audience size")
    args = parser.parse_args(argv)
    members, posts = (500, 5) if args.quick else (args.members, args.posts)
    if members < SMALL_AUDIENCE or posts < 1:
        parser.error(f"--members must be at least {SMALL_AUDIENCE} and --posts at least 1")
    print(json.dumps(run(members, posts)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
