"""Conversation at the timeline under load: a busy video's comments, moments and mention pushes.

What runs: the real API (`fieldcast web`, gunicorn, 2 processes), two `fieldcast worker`
processes (queues notify and default) and the scheduler, on a scratch PostgreSQL database and
Redis database. Pushes go through the product's FCM sender with a generated service account to
the local FCM HTTP v1 stand-in (`tests/fcm_server.py`, its own process, answering every send
after 20 ms), as in bench.fanout. COMMENTS_PER_MINUTE and REACTIONS_PER_MINUTE are set out of
the way, so the run's own load is never rate limited; COMMENT_PUSH_WINDOW_S keeps its default.

Seeded in SQL: an organisation of `--people` people (handles member1, member2, ...), one device
each, and a 180 s video of its admin (`ready`: processed a month ago), shared with all of them
(one share and its recipient rows, as a sent share leaves them); on it `--comments` comments (a
fifth of them replies in earlier threads, one in 50 threads on the whole video, a quarter
mentioning someone, a third of the threads gathered around five busy moments) and `--reactions`
reactions (the reaction set's emoji, one person's emoji at most once), written over the last 30
days with time-ordered ids. The triggers keep `moment_counts` as they do for the API's writes;
the seed checks the counts against the rows, then runs VACUUM ANALYZE.

Measured: `--clients` clients at once, each with its own keep-alive HTTP session and its own
person (member1, member2, ...; share recipients, not admins), each round doing these in a
shuffled order, with no pause: GET /api/v1/me, GET the first page of the video's comments by
timeline (the default page of 50 threads with their first replies), GET its moments in 100
buckets, POST a comment at a random moment mentioning three people (`@memberN`, who can see the
video), POST a reaction at a random moment. `--warmup` rounds first, not counted. Meanwhile a
prober (one more person) posts, one after another, `--pushes` comments each mentioning one
person whom no comment of the run mentioned before, so that person's push goes at once (their
push window on the video is closed, as for the first comment about it in a minute), and waits
until the FCM stand-in has answered that person's device 200 for that comment. The clients go
on until each has done `--rounds` rounds and the prober is through.

Figures (one JSON line on stdout, progress on stderr); times are wall times at the client, p95
and p50 over every client's samples:

- `comment_post_p95_ms`: POST /api/v1/videos/{id}/comments with three mentions (201).
- `comments_page_p95_ms`: GET /api/v1/videos/{id}/comments?order=timeline, the first page.
- `moments_p95_ms`: GET /api/v1/videos/{id}/moments?buckets=100.
- `reaction_post_p95_ms`: POST /api/v1/videos/{id}/reactions.
- `baseline_me_p95_ms`: GET /api/v1/me in the same mix (HTTP, authentication, a query or
  two: what the cheapest signed-in request costs on this machine under this load); each figure
  above is also given as its ratio to it (`comment_post_vs_me`, `comments_page_vs_me`,
  `moments_vs_me`, `reaction_post_vs_me`).
- `mention_push_s`: from just before the prober's POST until the stand-in answered 200 to the
  mentioned person's push about that comment (its own clock, the same machine's), the 95th
  percentile; `mention_push_median_s`, `mention_push_max_s` beside it.
- `cpu_busy_s`, `cpu_busy_share`: CPU seconds the whole machine (all cores) spent while the
  clients were measured, and that as a share of all its cores over that time.
- `pushes_accepted`: distinct (device, notification) pairs the stand-in accepted during the
  run; `outbox_backlog` and `outbox_oldest_due_s`: outbox jobs due and not done when the
  measurement ended, and how long the oldest had waited (whether the workers kept up with the
  comments' pushes).

Targets: comment_post_p95_ms <= 50, comments_page_p95_ms <= 30, moments_p95_ms <= 30,
mention_push_s <= 2; `met` says which were. A missed target is a figure, not a failure: the run
exits non-zero only when it cannot measure (a request fails, a push never arrives).

No database or Redis is emptied here: the scratch environment owns its own.

Run: python -m bench.comments  [--people 10000 --comments 10000 --reactions 50000 --clients 10
     --rounds 40 --pushes 20 | --quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests

from bench import harness
from bench.fanout import FCM_LATENCY_MS, machine_busy_s, p95, wait_for_workers
from bench.harness import free_port, running, scratch_environment, signed_in, wait_until_up

DURATION_MS = 180_000
WEB_WORKERS = 2
WORKERS = 2
# The run's own comments and reactions must never meet the per-person limits.
UNLIMITED_PER_MINUTE = "1000000"
PUSH_TIMEOUT_S = 30.0
PROBE_GAP_S = 0.5
WARMUP_PROBES = 2
BUCKETS = 100
OPERATIONS = ("me", "comments_page", "moments", "comment_post", "reaction_post")
STARTED = time.perf_counter()


def log(message: str) -> None:
    harness.log(f"[{time.perf_counter() - STARTED:5.1f} s] {message}")


TARGETS = {
    "comment_post_p95_ms": 50,
    "comments_page_p95_ms": 30,
    "moments_p95_ms": 30,
    "mention_push_s": 2,
}

# A UUID version 7 for a moment, as the product's ids are (fieldcast.db.uuid7): 48 bits of Unix
# milliseconds over a random UUID, its version nibble made 7.
_UUID7 = """
    CREATE FUNCTION pg_temp.uuid7_at(ts timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
        SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
            PLACING substring(int8send((extract(epoch FROM ts) * 1000)::bigint) FROM 3)
            FROM 1 FOR 6), 52, 1), 53, 1), 'hex')::uuid
    $$
"""
MENTION_PREFIX = "Good handling here, "


@dataclass(frozen=True)
class Seeded:
    org_id: str
    video_id: str
    people: int
    threads: int
    replies: int
    reactions: int


def seed(database_url: str, people: int, comments: int, reactions: int, signers: int) -> Seeded:
    """The organisation, its devices, the shared video and its conversation, in SQL. The first
    `signers` people get the benchmark's password, to sign in as clients."""
    from fieldcast.accounts.services import hash_password
    from fieldcast.conversation.reactions import EMOJI

    replies = comments // 5
    threads = comments - replies
    with psycopg.connect(database_url, autocommit=False) as conn:
        row = conn.execute("SELECT id, org_id FROM users LIMIT 1").fetchone()
        assert row is not None, "the benchmark's organisation has its admin"
        admin_id, org_id = row
        conn.execute(
            "INSERT INTO users (id, org_id, email, display_name, handle, role, is_active, "
            "time_zone, created_at, updated_at) "
            "SELECT gen_random_uuid(), %(org)s, 'member' || n || '@bench.example.com', "
            "'Member ' || n, 'member' || n, 'rep', true, 'UTC', now(), now() "
            "FROM generate_series(1, %(n)s) AS n",
            {"org": org_id, "n": people},
        )
        conn.execute(
            "UPDATE users SET password_hash = %s WHERE org_id = %s AND handle = ANY(%s)",
            (
                hash_password(harness.PASSWORD),
                org_id,
                [f"member{n}" for n in range(1, signers + 1)],
            ),
        )
        conn.execute(
            "CREATE TEMP TABLE bench_people ON COMMIT DROP AS "
            "SELECT substring(handle FROM 7)::int AS n, id FROM users "
            "WHERE org_id = %s AND id <> %s",
            (org_id, admin_id),
        )
        conn.execute("CREATE UNIQUE INDEX ON bench_people (n)")
        conn.execute(
            "INSERT INTO devices (id, org_id, user_id, token, platform, created_at, updated_at, "
            "last_registered_at) "
            "SELECT gen_random_uuid(), %s, id, 'bench-' || id, 'android', now(), now(), now() "
            "FROM bench_people",
            (org_id,),
        )
        video_id = uuid.uuid4()
        conn.execute(
            "INSERT INTO videos (id, org_id, owner_id, title, description, deal_attributes, "
            "status, progress, source_version, duration_ms, created_at, updated_at, "
            "playable_at, ready_at) VALUES (%s, %s, %s, 'Pricing objection, handled', '', "
            "'{}', 'ready', 100, 1, %s, now() - interval '31 days', now(), "
            "now() - interval '31 days', now() - interval '31 days')",
            (video_id, org_id, admin_id, DURATION_MS),
        )
        # Shared with everyone, as a share whose fan-out went out leaves it.
        share_id = uuid.uuid4()
        conn.execute(
            "INSERT INTO shares (id, org_id, video_id, sender_id, message, audience, "
            "recipient_count, created_at, released_at) VALUES (%s, %s, %s, %s, "
            "'Listen to the pricing part', '{}', %s, now() - interval '31 days', "
            "now() - interval '31 days')",
            (share_id, org_id, video_id, admin_id, people),
        )
        conn.execute(
            "INSERT INTO share_recipients (org_id, share_id, user_id, video_id, state, "
            "queued_at, sent_at) SELECT %s, %s, id, %s, 'sent', now() - interval '31 days', "
            "now() - interval '31 days' FROM bench_people",
            (org_id, share_id, video_id),
        )
        conn.execute(_UUID7)
        # Threads: a third gathered around five busy moments, one in 50 on the whole video, a
        # quarter mentioning someone; then replies in earlier threads, at their thread's time.
        conn.execute(
            "CREATE TEMP TABLE bench_threads ON COMMIT DROP AS "
            "SELECT g, pg_temp.uuid7_at(ts) AS id, ts, author, mentioned, "
            "CASE WHEN g %% 50 = 0 THEN NULL "
            "WHEN g %% 3 = 0 THEN (%(d)s::bigint * (1 + g %% 5) / 6 + floor(random() * 4000))::int "
            "ELSE floor(random() * %(d)s)::int END AS at_ms "
            "FROM (SELECT g, now() - interval '30 days' * random() AS ts, "
            "1 + floor(random() * %(p)s)::int AS author, "
            "1 + floor(random() * %(p)s)::int AS mentioned "
            "FROM generate_series(1, %(t)s) AS g) AS s",
            {"d": DURATION_MS, "p": people, "t": threads},
        )
        conn.execute("CREATE UNIQUE INDEX ON bench_threads (g)")
        conn.execute(
            "CREATE TEMP TABLE bench_replies ON COMMIT DROP AS "
            "SELECT g, pg_temp.uuid7_at(ts) AS id, ts, parent, at_ms, author, mentioned FROM ("
            "SELECT r.g, t.id AS parent, t.at_ms, "
            "least(now(), t.ts + interval '2 days' * random()) AS ts, "
            "1 + floor(random() * %(p)s)::int AS author, "
            "1 + floor(random() * %(p)s)::int AS mentioned "
            "FROM (SELECT g, 1 + floor(random() * %(t)s)::int AS thread "
            "FROM generate_series(1, %(r)s) AS g) AS r "
            "JOIN bench_threads t ON t.g = r.thread) AS s",
            {"p": people, "t": threads, "r": replies},
        )
        conn.execute(
            "INSERT INTO comments (id, org_id, video_id, author_id, parent_id, at_ms, body, "
            "mentions, created_at, updated_at) "
            "SELECT c.id, %(org)s, %(video)s, a.id, c.parent, c.at_ms, "
            "CASE WHEN c.g %% 4 = 0 THEN %(prefix)s || '@member' || m.n || ' in the pause' "
            "WHEN c.parent IS NULL THEN 'The objection lands right here' "
            "ELSE 'Agreed, and the pause helps' END, "
            "CASE WHEN c.g %% 4 = 0 THEN jsonb_build_array(jsonb_build_object("
            "'user_id', m.id::text, 'start', %(start)s, "
            "'end', %(start)s + 7 + length(m.n::text))) ELSE '[]'::jsonb END, "
            "c.ts, c.ts "
            "FROM (SELECT g, id, ts, NULL::uuid AS parent, at_ms, author, mentioned "
            "FROM bench_threads UNION ALL "
            "SELECT g, id, ts, parent, at_ms, author, mentioned FROM bench_replies) AS c "
            "JOIN bench_people a ON a.n = c.author JOIN bench_people m ON m.n = c.mentioned "
            "ORDER BY c.id",
            {
                "org": org_id,
                "video": video_id,
                "prefix": MENTION_PREFIX,
                "start": len(MENTION_PREFIX),
            },
        )
        conn.execute(
            "UPDATE comments c SET reply_count = r.n, last_reply_at = r.last "
            "FROM (SELECT parent_id, count(*) AS n, max(created_at) AS last FROM comments "
            "WHERE video_id = %s AND parent_id IS NOT NULL GROUP BY parent_id) AS r "
            "WHERE c.id = r.parent_id",
            (video_id,),
        )
        # One person's emoji at most once: person, then emoji, by the row's number.
        conn.execute(
            "INSERT INTO reactions (id, org_id, video_id, user_id, emoji, at_ms, created_at) "
            "SELECT pg_temp.uuid7_at(s.ts), %(org)s, %(video)s, p.id, "
            "(%(emoji)s::text[])[1 + (s.g / %(p)s) %% %(e)s], s.at_ms, s.ts "
            "FROM (SELECT g, now() - interval '30 days' * random() AS ts, "
            "CASE WHEN g %% 3 = 0 THEN (%(d)s::bigint * (1 + g %% 5) / 6 "
            "+ floor(random() * 4000))::int ELSE floor(random() * %(d)s)::int END AS at_ms "
            "FROM generate_series(0, %(x)s - 1) AS g) AS s "
            "JOIN bench_people p ON p.n = 1 + s.g %% %(p)s "
            "ORDER BY 1 ON CONFLICT DO NOTHING",
            {
                "org": org_id,
                "video": video_id,
                "emoji": [e.emoji for e in EMOJI],
                "p": people,
                "e": len(EMOJI),
                "d": DURATION_MS,
                "x": reactions,
            },
        )
        counted = conn.execute(
            "SELECT coalesce(sum(comments + replies), 0), coalesce(sum(reactions), 0) "
            "FROM moment_counts WHERE video_id = %s",
            (video_id,),
        ).fetchone()
        rows = conn.execute(
            "SELECT (SELECT count(*) FROM comments WHERE video_id = %(v)s AND at_ms IS NOT NULL), "
            "(SELECT count(*) FROM reactions WHERE video_id = %(v)s)",
            {"v": video_id},
        ).fetchone()
        assert counted is not None and rows is not None
        if tuple(counted) != tuple(rows):
            raise RuntimeError(
                f"moment_counts holds {tuple(counted)} (comments and replies, reactions), the "
                f"rows say {tuple(rows)}"
            )
        made = conn.execute(
            "SELECT count(*) FILTER (WHERE parent_id IS NULL), "
            "count(*) FILTER (WHERE parent_id IS NOT NULL) FROM comments WHERE video_id = %s",
            (video_id,),
        ).fetchone()
        assert made is not None
        conn.commit()
    # Settle the load (visibility map, statistics) rather than have autovacuum do it while the
    # requests are timed.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    return Seeded(str(org_id), str(video_id), people, int(made[0]), int(made[1]), int(rows[1]))


def sign_in(base: str, person: int) -> requests.Session:
    """A keep-alive session signed in as member<person>."""
    session = requests.Session()
    response = session.post(
        f"{base}/api/v1/auth/token",
        json={"email": f"member{person}@bench.example.com", "password": harness.PASSWORD},
        timeout=30,
    )
    response.raise_for_status()
    session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    return session


class Client:
    """One person's app, doing every operation of the mix once a round, in a shuffled order."""

    def __init__(
        self,
        base: str,
        session: requests.Session,
        video_id: str,
        mentionable: range,
        seed: int,
        page_size: int,
    ) -> None:
        self.session = session
        self.comments_url = f"{base}/api/v1/videos/{video_id}/comments"
        self.urls = {
            "me": f"{base}/api/v1/me",
            "moments": f"{base}/api/v1/videos/{video_id}/moments?buckets={BUCKETS}",
            "reactions": f"{base}/api/v1/videos/{video_id}/reactions",
        }
        from fieldcast.conversation.reactions import EMOJI

        self.emoji = [e.emoji for e in EMOJI]
        self.mentionable = mentionable
        self.page_size = page_size
        self.random = random.Random(seed)
        self.timings: dict[str, list[float]] = {operation: [] for operation in OPERATIONS}
        self.rounds = 0
        self.errors: list[str] = []

    def round(self, record: bool) -> None:
        operations = list(OPERATIONS)
        self.random.shuffle(operations)
        for operation in operations:
            elapsed = getattr(self, operation)()
            if record:
                self.timings[operation].append(elapsed * 1000)
        if record:
            self.rounds += 1

    def _timed(self, method: str, url: str, status: int, **kwargs: Any) -> tuple[float, Any]:
        started = time.perf_counter()
        response = self.session.request(method, url, timeout=60, **kwargs)
        elapsed = time.perf_counter() - started
        if response.status_code != status:
            raise RuntimeError(
                f"{method} {url}: {response.status_code} {response.text[:500]} (expected {status})"
            )
        return elapsed, response.json()

    def me(self) -> float:
        elapsed, _ = self._timed("GET", self.urls["me"], 200)
        return elapsed

    def comments_page(self) -> float:
        elapsed, page = self._timed("GET", self.comments_url, 200, params={"order": "timeline"})
        assert len(page["items"]) == self.page_size, len(page["items"])
        return elapsed

    def moments(self) -> float:
        elapsed, found = self._timed("GET", self.urls["moments"], 200)
        assert len(found["buckets"]) == BUCKETS, len(found["buckets"])
        return elapsed

    def comment_post(self) -> float:
        first, second, third = self.random.sample(self.mentionable, 3)
        body = {
            "body": f"Listen to the pause here, @member{first} @member{second} "
            f"@member{third}: that is where the price lands",
            "at_ms": self.random.randrange(DURATION_MS + 1),
        }
        elapsed, comment = self._timed("POST", self.comments_url, 201, json=body)
        assert len(comment["mentions"]) == 3, comment["mentions"]
        return elapsed

    def reaction_post(self) -> float:
        body = {
            "emoji": self.random.choice(self.emoji),
            "at_ms": self.random.randrange(DURATION_MS + 1),
        }
        started = time.perf_counter()
        response = self.session.post(self.urls["reactions"], json=body, timeout=60)
        elapsed = time.perf_counter() - started
        # 200: the same emoji at the same moment again (a collision of random moments).
        if response.status_code not in (200, 201):
            raise RuntimeError(f"POST reaction: {response.status_code} {response.text[:500]}")
        return elapsed


@dataclass
class MentionProber:
    """Comments that each mention one person not mentioned before, one after another, each
    timed until the stand-in accepted that person's push about it."""

    base: str
    session: requests.Session
    video_id: str
    fcm: Any
    # (handle, device token) of the people to mention, one per comment.
    people: list[tuple[str, str]]
    samples: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def probe(self, handle: str, token: str) -> float:
        body = {
            "body": f"@{handle} listen to how the price objection is handled here",
            "at_ms": self.rng.randrange(DURATION_MS + 1),
        }
        before = time.time()
        response = self.session.post(
            f"{self.base}/api/v1/videos/{self.video_id}/comments", json=body, timeout=60
        )
        if response.status_code != 201:
            raise RuntimeError(f"POST comment: {response.status_code} {response.text[:500]}")
        comment_id = response.json()["id"]
        deadline = before + PUSH_TIMEOUT_S
        while time.time() < deadline:
            for message in self.fcm.messages(token=token):
                data = message["message"].get("data") or {}
                if message["status"] == 200 and data.get("comment_id") == comment_id:
                    return float(message["answered_at"]) - before
            time.sleep(0.02)
        raise RuntimeError(
            f"no push to @{handle} about comment {comment_id} within {PUSH_TIMEOUT_S} s"
        )

    def run(self, count: int, stop: threading.Event, record: bool = True) -> None:
        try:
            for _ in range(count):
                if stop.is_set():
                    return
                handle, token = self.people.pop(0)
                elapsed = self.probe(handle, token)
                if record:
                    self.samples.append(elapsed)
                stop.wait(PROBE_GAP_S)
        except (requests.RequestException, RuntimeError) as exc:
            self.errors.append(str(exc))


def run_clients(
    clients: list[Client], rounds: int, record: bool, until: threading.Event | None = None
) -> None:
    """Every client in its own thread for `rounds` rounds, and on until `until` is set."""
    failed = threading.Event()

    def work(client: Client) -> None:
        done = 0
        try:
            while not failed.is_set() and (
                done < rounds or (until is not None and not until.is_set())
            ):
                client.round(record)
                done += 1
        except (requests.RequestException, RuntimeError, AssertionError) as exc:
            client.errors.append(f"{type(exc).__name__}: {exc}")
            failed.set()
            if until is not None:
                until.set()

    threads = [
        threading.Thread(target=work, args=(client,), name=f"client-{n}", daemon=True)
        for n, client in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    errors = [error for client in clients for error in client.errors]
    if errors:
        raise RuntimeError(f"a client failed: {errors[0]}")


def outbox_backlog(database_url: str) -> tuple[int, float]:
    """Outbox jobs due and not done (a summary push waiting for its window is not due), and
    how long the oldest of them has been due, in seconds."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(run_after)), 0) "
            "FROM outbox_jobs WHERE status NOT IN ('done', 'failed') AND run_after <= now()"
        ).fetchone()
    assert row is not None
    return int(row[0]), round(float(row[1]), 1)


def quantiles(values: list[float]) -> tuple[float, float]:
    return round(p95(values), 1), round(statistics.median(values), 1)


def run(
    people: int,
    comments: int,
    reactions: int,
    clients: int,
    rounds: int,
    warmup: int,
    pushes: int,
) -> dict[str, Any]:
    from tests.fcm_server import FcmServerProcess

    workdir = Path(tempfile.mkdtemp(prefix="fieldcast-bench-comments-"))
    account = workdir / "service-account.json"
    prober_person = clients + 1
    # The people the prober mentions, one each, never mentioned by the clients' comments.
    probed = list(range(people - pushes - WARMUP_PROBES + 1, people + 1))
    mentionable = range(clients + 2, probed[0])
    if len(mentionable) < 3:
        raise ValueError("too few people for the clients' mentions")
    with FcmServerProcess(latency_ms=FCM_LATENCY_MS, service_account=account) as fcm:
        log(f"FCM stand-in at {fcm.base_url}, answering after {FCM_LATENCY_MS} ms")
        extra = {
            "FCM_CREDENTIALS": str(account),
            "FCM_ENDPOINT": fcm.base_url,
            "COMMENTS_PER_MINUTE": UNLIMITED_PER_MINUTE,
            "REACTIONS_PER_MINUTE": UNLIMITED_PER_MINUTE,
        }
        with scratch_environment(**extra) as env:
            log("scratch database and Redis ready")
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            web = ["web", "--bind", f"127.0.0.1:{port}", "--workers", str(WEB_WORKERS)]
            with running(env, [web]):
                wait_until_up(base)
                log("the API is up")
                signed_in(env, base)  # the organisation and its admin, the video's author
                seeded = seed(env["DATABASE_URL"], people, comments, reactions, prober_person)
                log(
                    f"seeded {people} people with a device each, {seeded.threads} threads, "
                    f"{seeded.replies} replies and {seeded.reactions} reactions"
                )
                with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
                    ids: dict[str, uuid.UUID] = dict(
                        conn.execute(
                            "SELECT handle, id FROM users WHERE handle = ANY(%s)",
                            ([f"member{n}" for n in probed],),
                        ).fetchall()
                    )
                prober_people = [(f"member{n}", f"bench-{ids[f'member{n}']}") for n in probed]
                from fieldcast.settings import Settings

                page_size = min(Settings.from_env(env).limits.page_size_default, seeded.threads)
                sessions = [sign_in(base, person) for person in range(1, clients + 1)]
                mix = [
                    Client(base, session, seeded.video_id, mentionable, n, page_size)
                    for n, session in enumerate(sessions)
                ]
                prober = MentionProber(
                    base, sign_in(base, prober_person), seeded.video_id, fcm, prober_people
                )
                workers = [["worker", "--queue", "notify", "--queue", "default"]] * WORKERS
                with running(env, [*workers, ["scheduler"]]):
                    wait_for_workers(env["REDIS_URL"], WORKERS)
                    log("the workers are up")
                    never = threading.Event()
                    warm_probes = threading.Thread(
                        target=prober.run, args=(WARMUP_PROBES, never, False), daemon=True
                    )
                    warm_probes.start()
                    run_clients(mix, warmup, record=False)
                    warm_probes.join()
                    if prober.errors:
                        raise RuntimeError(f"the warm-up probe failed: {prober.errors[0]}")
                    log(f"warmed up: {warmup} rounds per client, {WARMUP_PROBES} mention pushes")

                    through = threading.Event()

                    def probe() -> None:
                        prober.run(pushes, through)
                        through.set()

                    busy_before = machine_busy_s()
                    started = time.perf_counter()
                    probing = threading.Thread(target=probe, name="prober", daemon=True)
                    probing.start()
                    run_clients(mix, rounds, record=True, until=through)
                    measured_s = time.perf_counter() - started
                    busy_s = machine_busy_s() - busy_before
                    probing.join(timeout=PUSH_TIMEOUT_S + 30)
                    if prober.errors:
                        raise RuntimeError(f"a mention push failed: {prober.errors[0]}")
                    if len(prober.samples) < pushes:
                        raise RuntimeError(
                            f"{len(prober.samples)} of {pushes} mention pushes measured"
                        )
                    backlog, behind_s = outbox_backlog(env["DATABASE_URL"])
                    stats = fcm.stats()
    timings = {op: [t for c in mix for t in c.timings[op]] for op in OPERATIONS}
    figures: dict[str, Any] = {"benchmark": "comments"}
    for operation, name in (
        ("comment_post", "comment_post"),
        ("comments_page", "comments_page"),
        ("moments", "moments"),
        ("reaction_post", "reaction_post"),
        ("me", "baseline_me"),
    ):
        high, middle = quantiles(timings[operation])
        figures[f"{name}_p95_ms"] = high
        figures[f"{name}_p50_ms"] = middle
    me = figures["baseline_me_p95_ms"]
    for name in ("comment_post", "comments_page", "moments", "reaction_post"):
        figures[f"{name}_vs_me"] = round(figures[f"{name}_p95_ms"] / me, 2)
    samples = sorted(prober.samples)
    figures.update(
        {
            "mention_push_s": round(p95(samples), 3),
            "mention_push_median_s": round(statistics.median(samples), 3),
            "mention_push_max_s": round(samples[-1], 3),
            "mention_pushes": len(samples),
            "mention_push_window": "a person not mentioned before per sample, "
            "COMMENT_PUSH_WINDOW_S at its default",
            "samples": {operation: len(values) for operation, values in timings.items()},
            "rounds_per_client": min(c.rounds for c in mix),
            "measured_s": round(measured_s, 1),
            "requests_per_s": round(sum(len(v) for v in timings.values()) / measured_s, 1),
            "cpu_busy_s": round(busy_s, 1),
            "cpu_busy_share": round(busy_s / (measured_s * (os.cpu_count() or 1)), 2),
            "cores": os.cpu_count(),
            "pushes_accepted": int(stats["accepted_pairs"]),
            "duplicates": int(stats["duplicates"]),
            "outbox_backlog": backlog,
            "outbox_oldest_due_s": behind_s,
            "people": people,
            "devices": people,
            "comments_seeded": seeded.threads + seeded.replies,
            "threads_seeded": seeded.threads,
            "replies_seeded": seeded.replies,
            "reactions_seeded": seeded.reactions,
            "video_duration_ms": DURATION_MS,
            "comments_page_items": page_size,
            "clients": clients,
            "web_workers": WEB_WORKERS,
            "workers": WORKERS,
            "fcm_latency_ms": FCM_LATENCY_MS,
            "targets": TARGETS,
        }
    )
    figures["met"] = {name: figures[name] <= target for name, target in TARGETS.items()}
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.comments", description=__doc__)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--comments", type=int, default=10_000)
    parser.add_argument("--reactions", type=int, default=50_000)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=40, help="measured rounds per client")
    parser.add_argument("--warmup", type=int, default=3, help="rounds per client, not counted")
    parser.add_argument("--pushes", type=int, default=20, help="mention pushes timed")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="200 people, 300 comments, 1,000 reactions, 2 clients, 5 rounds, 3 pushes",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.people, args.comments, args.reactions = 200, 300, 1000
        args.clients, args.rounds, args.warmup, args.pushes = 2, 5, 1, 3
    if args.people < args.clients + args.pushes + WARMUP_PROBES + 5:
        parser.error("--people must leave room for the clients, the prober and its mentions")
    if min(args.comments, args.clients, args.rounds, args.pushes) < 1 or args.reactions < 0:
        parser.error("--comments, --clients, --rounds and --pushes must be at least 1")
    figures = run(
        args.people,
        args.comments,
        args.reactions,
        args.clients,
        args.rounds,
        args.warmup,
        args.pushes,
    )
    log(
        "p95 (p50) ms: "
        + ", ".join(
            f"{name} {figures[f'{name}_p95_ms']} ({figures[f'{name}_p50_ms']})"
            for name in ("comment_post", "comments_page", "moments", "reaction_post", "baseline_me")
        )
        + f"; mention push p95 {figures['mention_push_s']} s"
    )
    print(json.dumps(figures))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
