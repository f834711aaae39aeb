"""Conversation at the timeline under load: a busy video's comments, moments and mention pushes.

What runs: the real API (`fieldcast web`, gunicorn, 2 processes), two `fieldcast worker`
processes (queues notify, search and default: a comment's search document is built too) and the
scheduler, on a scratch PostgreSQL database and Redis database. Pushes go through the product's
FCM sender with a generated service account to the local FCM HTTP v1 stand-in
(`tests/fcm_server.py`, its own process, answering every send after 20 ms), as in bench.fanout.
COMMENTS_PER_MINUTE and REACTIONS_PER_MINUTE are set out of the way, so the run's own load is
never rate limited; COMMENT_PUSH_WINDOW_S keeps its default.

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
prober (one more person) posts a comment every 2 s, `--pushes` in all, each mentioning one
person whom no comment of the run mentioned before, so that person's push goes at once (their
push window on the video is closed, as for the first comment about it in a minute;
COMMENT_PUSH_WINDOW_S keeps its default), and notes when the FCM stand-in answered that
person's device 200 for that comment. The prober keeps its pace whatever the pushes do, and the
clients go on until each has done `--rounds` rounds and the prober has posted its last comment.
Then, once the workers have caught up, three more such comments, one at a time.

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
  percentile over the comments posted while the clients ran; `mention_push_median_s`,
  `mention_push_max_s` beside it. `mention_push_breakdown` (medians): the POST at the client
  (`post_s`, which writes the inbox item and its push job's row); from that row until the push
  job was done (`push_job_s`: its wait in the queue and its run, the send included); the rest
  until the stand-in's answer was recorded (`after_job_s`). `mention_push_quiet_s` and
  `mention_push_quiet_breakdown`: the same with the clients stopped and the workers idle (the
  median of three).
- `cpu_busy_s`, `cpu_busy_share`: CPU seconds the whole machine (all cores) spent while the
  clients were measured, and that as a share of all its cores over that time;
  `cpu_s_by_role`: how much of it the API, the RQ workers, the scheduler, PostgreSQL, Redis,
  the FCM stand-in and the clients themselves spent; `api_cpu_ms_per_request`: the API's CPU per
  request of the mix, and `worker_cpu_ms_per_job`: the workers' CPU per outbox job they finished
  meanwhile (`outbox_jobs_done`).
- `pushes_accepted`: distinct (device, notification) pairs the stand-in accepted during the
  run; `outbox_backlog` and `outbox_oldest_due_s`: outbox jobs due and not done when the
  clients stopped, and how long the oldest had waited (whether the workers kept up with the
  comments' pushes); `outbox_drain_s`: from the start of the measurement until none was left.

Targets: comment_post_p95_ms <= 50, comments_page_p95_ms <= 30, moments_p95_ms <= 30,
mention_push_s <= 2; `met` says which were. A missed target is a figure, not a failure: the run
exits non-zero only when it cannot measure (a request fails, a push is not accepted within
180 s of its POST).

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
import requests

from bench import harness
from bench.fanout import FCM_LATENCY_MS, machine_busy_s, p95, wait_for_workers
from bench.harness import (
    NON_MEDIA_WORKER,
    free_port,
    running,
    scratch_environment,
    signed_in,
    wait_until_up,
)

DURATION_MS = 180_000
WEB_WORKERS = 2
WORKERS = 2
# The run's own comments and reactions must never meet the per-person limits.
UNLIMITED_PER_MINUTE = "1000000"
# A mention push later than this after its POST fails the run.
PUSH_TIMEOUT_S = 180.0
# The prober's pace while the clients run, and how often it looks for its pushes meanwhile.
PROBE_EVERY_S = 2.0
PROBE_POLL_S = 0.1
WARMUP_PROBES = 2
# Probes once the clients have stopped and the workers have caught up.
QUIET_PROBES = 3
DRAIN_TIMEOUT_S = 600.0
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
class Probe:
    """One comment mentioning one person, and when its push to them was accepted."""

    handle: str
    token: str  # the person's device
    comment_id: str = ""
    before: float = 0.0  # time.time() just before the POST
    posted: float = 0.0  # when the POST answered
    accepted: float | None = None  # when the stand-in answered the push 200 (its time.time())

    @property
    def push_s(self) -> float:
        assert self.accepted is not None
        return self.accepted - self.before


class MentionProber:
    """Comments that each mention one person not mentioned before, each timed until the
    stand-in accepted that person's push about it."""

    def __init__(
        self,
        base: str,
        session: requests.Session,
        video_id: str,
        fcm: Any,
        database_url: str,
        people: list[tuple[str, str]],
    ) -> None:
        self.url = f"{base}/api/v1/videos/{video_id}/comments"
        self.session = session
        self.fcm = fcm
        self.database_url = database_url
        # (handle, device token) of the people to mention, one per comment.
        self.people = list(people)
        self.random = random.Random(7)
        self.errors: list[str] = []

    def post(self) -> Probe:
        handle, token = self.people.pop(0)
        probe = Probe(handle, token)
        body = {
            "body": f"@{handle} listen to how the price objection is handled here",
            "at_ms": self.random.randrange(DURATION_MS + 1),
        }
        probe.before = time.time()
        response = self.session.post(self.url, json=body, timeout=60)
        probe.posted = time.time()
        if response.status_code != 201:
            raise RuntimeError(f"POST comment: {response.status_code} {response.text[:500]}")
        probe.comment_id = response.json()["id"]
        return probe

    def check(self, probe: Probe) -> bool:
        """Whether the stand-in has accepted the probe's push (noting when it did)."""
        for message in self.fcm.messages(token=probe.token):
            data = message["message"].get("data") or {}
            if message["status"] == 200 and data.get("comment_id") == probe.comment_id:
                probe.accepted = float(message["answered_at"])
                return True
        return False

    def wait(self, probes: list[Probe], poll_s: float) -> None:
        """Until every probe's push was accepted; a push later than PUSH_TIMEOUT_S after its
        POST fails the run."""
        waiting = [probe for probe in probes if probe.accepted is None]
        while waiting:
            self.overdue(waiting)
            time.sleep(poll_s)
            waiting = [probe for probe in waiting if not self.check(probe)]

    def overdue(self, waiting: list[Probe]) -> None:
        late = [probe for probe in waiting if time.time() > probe.before + PUSH_TIMEOUT_S]
        if late:
            probe = late[0]
            backlog, behind_s = outbox_backlog(self.database_url)
            raise RuntimeError(
                f"no push to @{probe.handle} about comment {probe.comment_id} within "
                f"{PUSH_TIMEOUT_S} s; its outbox jobs: "
                f"{outbox_trail(self.database_url, probe.comment_id)}; {backlog} jobs due and "
                f"not done, the oldest due for {behind_s} s"
            )

    def one(self) -> Probe:
        """A probe on its own: posted, then waited for."""
        probe = self.post()
        self.wait([probe], 0.02)
        return probe

    def paced(self, count: int, every_s: float, posted: threading.Event) -> list[Probe]:
        """`count` probes, one every `every_s` whatever the pushes do (so a push that queues
        does not slow the probing down), then waiting for every push; `posted` is set once the
        last comment is posted, or when the probing fails."""
        probes: list[Probe] = []
        try:
            due = time.monotonic()
            while len(probes) < count:
                if time.monotonic() >= due:
                    probes.append(self.post())
                    due += every_s
                    continue
                waiting = [probe for probe in probes if probe.accepted is None]
                self.overdue(waiting)
                for probe in waiting:
                    self.check(probe)
                time.sleep(min(PROBE_POLL_S, max(0.0, due - time.monotonic())))
            posted.set()
            for probe in probes:
                self.wait([probe], PROBE_POLL_S)
        except (requests.RequestException, RuntimeError) as exc:
            self.errors.append(str(exc))
        finally:
            posted.set()
        return probes


def breakdown(database_url: str, probes: list[Probe]) -> dict[str, float]:
    """Where the probes' time went, medians in seconds: the POST at the client (which writes
    the mentioned person's inbox item and the row of its push job); from that row until its
    job was done (`push_job_s`: its wait in the queue, and its run with the send to FCM); what
    is left until the stand-in's answer was recorded (`after_job_s`, usually below zero: the
    stand-in answers before the job writes its results)."""
    parts: dict[str, list[float]] = {"post_s": [], "push_job_s": [], "after_job_s": []}
    from fieldcast.outbox.names import TaskName

    with psycopg.connect(database_url, autocommit=True) as conn:
        for probe in probes:
            row = conn.execute(
                "SELECT extract(epoch FROM p.created_at), extract(epoch FROM p.finished_at) "
                "FROM outbox_jobs p, notifications i, users u "
                "WHERE u.handle = %(h)s AND i.user_id = u.id AND i.data->>'comment_id' = %(c)s "
                "AND p.task = %(push)s AND p.finished_at IS NOT NULL "
                "AND (p.payload->>'notification_id' = i.id::text "
                "OR p.payload->'notification_ids' ? i.id::text)",
                {
                    "push": TaskName.NOTIFICATIONS_PUSH.value,
                    "c": probe.comment_id,
                    "h": probe.handle,
                },
            ).fetchone()
            if row is None or probe.accepted is None:
                continue
            recorded, done = (float(v) for v in row)
            parts["post_s"].append(probe.posted - probe.before)
            parts["push_job_s"].append(done - recorded)
            parts["after_job_s"].append(probe.accepted - done)
    return {name: round(statistics.median(v), 3) for name, v in parts.items() if v}


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


class CpuByRole:
    """CPU seconds spent from `start()` to `stop()` by the run's processes, by role: the API
    (`fieldcast web` and its gunicorn workers), the RQ workers and the scheduler, PostgreSQL's
    processes, the run's own Redis server, the FCM stand-in, and this process (the clients, the
    prober). A process that ended in between is left out; the rest of the machine is
    `cpu_busy_s` less their sum."""

    def __init__(self, fcm_pid: int | None) -> None:
        self.fcm_pid = fcm_pid
        self.before: dict[int, tuple[str, float]] = {}
        self.spent: dict[str, float] = {}

    def _roles(self) -> dict[int, tuple[str, float]]:
        found: dict[int, tuple[str, float]] = {}

        def note(process: psutil.Process, role: str) -> None:
            try:
                times = process.cpu_times()
            except psutil.Error:
                return
            found[process.pid] = (role, times.user + times.system)

        for child in psutil.Process().children():
            try:
                command = child.cmdline()
                family = [child, *child.children(recursive=True)]
            except psutil.Error:
                continue
            # `fieldcast web` becomes gunicorn (exec), its workers are its children.
            role = next(
                (r for r in ("web", "worker", "scheduler") if r in command),
                "web" if "gunicorn" in command else "other",
            )
            if child.pid == self.fcm_pid:
                role = "fcm_standin"
            elif any("redis-server" in part for part in command):
                role = "redis"
            for process in family:
                note(process, role)
        for process in psutil.process_iter(["name"]):
            if process.info["name"] == "postgres":
                note(process, "postgres")
        return found

    def start(self) -> None:
        self.before = self._roles()
        own = os.times()
        self.own_before = own.user + own.system

    def stop(self) -> dict[str, float]:
        spent: dict[str, float] = {}
        for pid, (role, seconds) in self._roles().items():
            _, earlier = self.before.get(pid, (role, 0.0))
            spent[role] = spent.get(role, 0.0) + seconds - earlier
        own = os.times()
        spent["bench_clients"] = own.user + own.system - self.own_before
        self.spent = {role: round(seconds, 1) for role, seconds in sorted(spent.items())}
        return self.spent


def watch_outbox(database_url: str, done: threading.Event, every_s: float = 5.0) -> None:
    """Log, while the clients run, how far the workers are behind the outbox."""
    while not done.wait(every_s):
        backlog, behind_s = outbox_backlog(database_url)
        log(f"outbox: {backlog} jobs due and not done, the oldest due for {behind_s} s")


def outbox_done(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM outbox_jobs WHERE status = 'done'").fetchone()
    return int(row[0]) if row is not None else 0


def drain(database_url: str, since: float) -> float:
    """Until no outbox job is due and not done; returns the seconds from `since` (a
    perf_counter reading) until then."""
    while outbox_backlog(database_url)[0]:
        if time.perf_counter() - since > DRAIN_TIMEOUT_S:
            raise RuntimeError(f"the workers had not caught up {DRAIN_TIMEOUT_S} s on")
        time.sleep(0.25)
    return time.perf_counter() - since


def outbox_trail(database_url: str, comment_id: str) -> list[tuple[str, str]]:
    """The outbox jobs a comment led to so far, (task, status): its `conversation.notify`, and
    the pushes of the inbox items that names it."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT task, status FROM outbox_jobs WHERE payload->>'comment_id' = %(c)s "
            "OR payload->>'notification_id' IN (SELECT id::text FROM notifications "
            "WHERE data->>'comment_id' = %(c)s) ORDER BY created_at",
            {"c": comment_id},
        ).fetchall()
    return [(str(task), str(status)) for task, status in rows]


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
    probed = list(range(people - pushes - WARMUP_PROBES - QUIET_PROBES + 1, people + 1))
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
                    base,
                    sign_in(base, prober_person),
                    seeded.video_id,
                    fcm,
                    env["DATABASE_URL"],
                    prober_people,
                )
                with running(env, [*[NON_MEDIA_WORKER] * WORKERS, ["scheduler"]]):
                    wait_for_workers(env["REDIS_URL"], WORKERS)
                    log("the workers are up")

                    def warm_up() -> None:
                        try:
                            for _ in range(WARMUP_PROBES):
                                prober.one()
                        except (requests.RequestException, RuntimeError) as exc:
                            prober.errors.append(str(exc))

                    warming = threading.Thread(target=warm_up, name="prober", daemon=True)
                    warming.start()
                    run_clients(mix, warmup, record=False)
                    warming.join()
                    if prober.errors:
                        raise RuntimeError(f"the warm-up probe failed: {prober.errors[0]}")
                    log(f"warmed up: {warmup} rounds per client, {WARMUP_PROBES} mention pushes")

                    posted = threading.Event()
                    probes: list[Probe] = []
                    probing = threading.Thread(
                        target=lambda: probes.extend(prober.paced(pushes, PROBE_EVERY_S, posted)),
                        name="prober",
                        daemon=True,
                    )
                    measured = threading.Event()
                    watching = threading.Thread(
                        target=watch_outbox,
                        args=(env["DATABASE_URL"], measured),
                        name="outbox-watch",
                        daemon=True,
                    )
                    by_role = CpuByRole(fcm.pid)
                    by_role.start()
                    jobs_before = outbox_done(env["DATABASE_URL"])
                    busy_before = machine_busy_s()
                    started = time.perf_counter()
                    probing.start()
                    watching.start()
                    try:
                        run_clients(mix, rounds, record=True, until=posted)
                    finally:
                        measured.set()
                    measured_s = time.perf_counter() - started
                    busy_s = machine_busy_s() - busy_before
                    cpu_by_role = by_role.stop()
                    jobs_done = outbox_done(env["DATABASE_URL"]) - jobs_before
                    backlog, behind_s = outbox_backlog(env["DATABASE_URL"])
                    log(
                        f"the clients stopped after {measured_s:.1f} s: {backlog} outbox jobs "
                        f"due and not done, the oldest due for {behind_s} s"
                    )
                    probing.join(timeout=PUSH_TIMEOUT_S + 60)
                    if prober.errors:
                        raise RuntimeError(f"a mention push failed: {prober.errors[0]}")
                    if len(probes) < pushes or any(p.accepted is None for p in probes):
                        raise RuntimeError(f"{len(probes)} of {pushes} mention pushes measured")
                    log(
                        "mention pushes under load: "
                        + ", ".join(f"{p.push_s:.3f} s" for p in probes)
                    )
                    drain_s = drain(env["DATABASE_URL"], started)
                    log(f"the workers caught up {drain_s:.1f} s after the measurement began")
                    quiet = [prober.one() for _ in range(QUIET_PROBES)]
                    log(
                        "mention pushes with the workers idle: "
                        + ", ".join(f"{p.push_s:.3f} s" for p in quiet)
                    )
                    stats = fcm.stats()
                    parts = breakdown(env["DATABASE_URL"], probes)
                    quiet_parts = breakdown(env["DATABASE_URL"], quiet)
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
    samples = sorted(probe.push_s for probe in probes)
    figures.update(
        {
            "mention_push_s": round(p95(samples), 3),
            "mention_push_median_s": round(statistics.median(samples), 3),
            "mention_push_max_s": round(samples[-1], 3),
            "mention_pushes": len(samples),
            "mention_push_breakdown": parts,
            "mention_push_quiet_s": round(statistics.median(p.push_s for p in quiet), 3),
            "mention_push_quiet_breakdown": quiet_parts,
            "mention_push_window": "a person not mentioned before per sample, "
            "COMMENT_PUSH_WINDOW_S at its default",
            "samples": {operation: len(values) for operation, values in timings.items()},
            "rounds_per_client": min(c.rounds for c in mix),
            "measured_s": round(measured_s, 1),
            "requests_per_s": round(sum(len(v) for v in timings.values()) / measured_s, 1),
            "cpu_busy_s": round(busy_s, 1),
            "cpu_busy_share": round(busy_s / (measured_s * (os.cpu_count() or 1)), 2),
            "cpu_s_by_role": cpu_by_role,
            "api_cpu_ms_per_request": round(
                cpu_by_role.get("web", 0.0) * 1000 / sum(len(v) for v in timings.values()), 1
            ),
            "outbox_jobs_done": jobs_done,
            "worker_cpu_ms_per_job": round(
                cpu_by_role.get("worker", 0.0) * 1000 / max(jobs_done, 1), 1
            ),
            "cores": os.cpu_count(),
            "pushes_accepted": int(stats["accepted_pairs"]),
            "duplicates": int(stats["duplicates"]),
            "outbox_backlog": backlog,
            "outbox_oldest_due_s": behind_s,
            "outbox_drain_s": round(drain_s, 1),
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
    if args.people < args.clients + args.pushes + WARMUP_PROBES + QUIET_PROBES + 5:
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
