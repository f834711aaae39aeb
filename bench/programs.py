"""Learning programs: a collection assigned to 10,000 people, progress reports, my learning,
top clips.

What runs: the real API (`fieldcast web`, gunicorn, 2 processes x 4 threads), then two
`fieldcast worker` processes and the scheduler, on a scratch PostgreSQL database and Redis.
Pushes go through the product's FCM sender to the local FCM HTTP v1 stand-in
(`tests/fcm_server.py`), answering after 20 ms.

The organisation is seeded in SQL: `--members` reps with one phone each, all in one team; ten
playable one-minute videos; a collection of ten items (five whole videos, five clips); a
learner with 200 assignments of their own; 50 people with a view each of an hour-long video
assigned to them (for the reports: each report adds a second they never played); and
a few thousand people's progress, comments and reactions, from which the top lists are
computed once (`fieldcast.curation.top.compute_all`) before they are read.

Figures (one JSON line on stdout, progress on stderr):

- `baseline_me_p95_ms`: `GET /api/v1/me` in the same run (the machine's pace).
- `assign_post_p95_ms`: `POST /api/v1/assignments` of the collection to the team (every
  member), workers idle (those assignments are removed, unsent, afterwards).
- `assign_fanout_s`: from the POST of one such assignment, workers running, until every
  member has their row and the FCM stand-in accepted a push to every member's phone.
- `bare_reports_per_s`: progress reports a minimal Flask endpoint served the same way merges
  per second with the product's own SQL (`bench.bare_reports`), 8 clients in a closed loop;
  `progress_reports_per_s`: the product's `POST /api/v1/views/{id}/reports`, the same load
  (one report per request); `progress_report_p95_ms`: its latency at half the bare rate,
  paced (an open loop). `me_per_s`: `GET /api/v1/me` under the same load, the lightest
  signed-in request: what the framework (authentication, routing, serialisation) allows.
- `my_learning_p95_ms`: `GET /api/v1/me/learning?state=all` of the learner (200 assignments),
  its first page (50, by due date); `my_learning_all_p95_ms`: all 200 in one page.
- `top_clips_p95_ms`: `GET /api/v1/top` of a member.

Targets: assign_post_p95_ms <= 150, assign_fanout_s <= 30, progress_reports_per_s >= half of
bare_reports_per_s, progress_report_p95_ms <= 30 (at half the bare rate),
my_learning_p95_ms <= 30, top_clips_p95_ms <= 30.

Run: python -m bench.programs  [--members 10000 | --quick]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import requests

from bench import harness
from bench.fanout import forget_shares, outbox_settled, wait_for_workers
from bench.harness import (
    NON_MEDIA_WORKER,
    PASSWORD,
    free_port,
    running,
    scratch_environment,
    signed_in,
    wait_until_up,
)

FCM_LATENCY_MS = 20
VIDEOS = 10
LEARNER_ASSIGNMENTS = 200
REPORTERS = 50
# What the reporters watch: an hour long, so every report adds time never played before.
LONG_VIDEO = uuid.uuid4()
LONG_MS = 3_600_000
CLIENTS = 8
STARTED = time.perf_counter()

TARGETS = {
    "assign_post_p95_ms": 150,
    "assign_fanout_s": 30,
    "progress_vs_bare": 0.5,
    "progress_report_p95_ms": 30,
    "my_learning_p95_ms": 30,
    "top_clips_p95_ms": 30,
}


def log(message: str) -> None:
    harness.log(f"[{time.perf_counter() - STARTED:5.1f} s] {message}")


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def seed(database_url: str, members: int, engaged: int, reporters_n: int) -> dict[str, Any]:
    """The organisation's people, phones, team, videos, collection, learner and engagement."""
    from fieldcast.accounts.services import hash_password

    password_hash = hash_password(PASSWORD)
    with psycopg.connect(database_url, autocommit=False) as conn:
        row = conn.execute("SELECT id, org_id FROM users LIMIT 1").fetchone()
        assert row is not None
        admin_id, org_id = row
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
            "last_registered_at) SELECT gen_random_uuid(), org_id, id, 'bench-' || id, "
            "'android', now(), now(), now() FROM users WHERE org_id = %s AND id <> %s",
            (org_id, admin_id),
        )
        team_id = uuid.uuid4()
        conn.execute(
            "INSERT INTO teams (id, org_id, name, handle, description, created_at, updated_at) "
            "VALUES (%s, %s, 'Everyone', 'everyone', '', now(), now())",
            (team_id, org_id),
        )
        conn.execute(
            "INSERT INTO team_memberships (org_id, team_id, user_id, role, created_at) "
            "SELECT org_id, %s, id, 'member', now() FROM users WHERE org_id = %s AND id <> %s",
            (team_id, org_id, admin_id),
        )
        videos = [uuid.uuid4() for _ in range(VIDEOS)]
        for n, video_id in enumerate(videos):
            conn.execute(
                "INSERT INTO videos (id, org_id, owner_id, title, description, deal_attributes, "
                "status, progress, source_version, duration_ms, created_at, updated_at, "
                "playable_at) VALUES (%s, %s, %s, %s, '', %s, 'playable', 100, 1, 60000, "
                "now() - make_interval(days => %s), now(), now())",
                (
                    video_id,
                    org_id,
                    admin_id,
                    f"Handling Acme, part {n + 1}",
                    json.dumps({"competitor": "Acme" if n % 2 else "Globex"}),
                    n,
                ),
            )
        collection_id = uuid.uuid4()
        conn.execute(
            "INSERT INTO collections (id, org_id, owner_id, title, description, visibility, "
            "created_at, updated_at) VALUES (%s, %s, %s, 'Acme in ten clips', '', 'private', "
            "now(), now())",
            (collection_id, org_id, admin_id),
        )
        for n, video_id in enumerate(videos):
            clip = (n * 1000, n * 1000 + 20_000) if n % 2 else (None, None)
            conn.execute(
                "INSERT INTO collection_items (id, org_id, collection_id, position, video_id, "
                "start_ms, end_ms, note, created_at) "
                "VALUES (gen_random_uuid(), %s, %s, %s, %s, %s, %s, '', now())",
                (org_id, collection_id, n, video_id, *clip),
            )
        people = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM users WHERE org_id = %s AND id <> %s ORDER BY handle",
                (org_id, admin_id),
            ).fetchall()
        ]
        learner, reporters = people[0], people[1 : 1 + reporters_n]
        conn.execute(
            "UPDATE users SET password_hash = %s WHERE id = ANY(%s)",
            (password_hash, [learner, *reporters]),
        )
        # The learner's 200 assignments: of a video, a clip, or the collection, due over months.
        for n in range(LEARNER_ASSIGNMENTS):
            assignment_id = uuid.uuid4()
            video = videos[n % VIDEOS]
            subject: tuple[Any, ...]
            if n % 3 == 0:
                subject = (None, None, None, collection_id)
            elif n % 3 == 1:
                subject = (video, None, None, None)
            else:
                subject = (video, 5_000, 25_000, None)
            conn.execute(
                "INSERT INTO assignments (id, org_id, assigned_by, video_id, start_ms, end_ms, "
                "collection_id, message, due_at, audience, person_count, created_at, "
                "published_at) VALUES (%s, %s, %s, %s, %s, %s, %s, 'Before the QBR', "
                "now() + make_interval(days => %s), '{}', 1, now(), now())",
                (assignment_id, org_id, admin_id, *subject, n - 20),
            )
            conn.execute(
                "INSERT INTO assignees (org_id, assignment_id, user_id, state, due_at, "
                "played_ms, total_ms, assigned_at) "
                "VALUES (%s, %s, %s, %s, now() + make_interval(days => %s), 0, 60000, now())",
                (
                    org_id,
                    assignment_id,
                    learner,
                    ("not_started", "in_progress", "completed")[n % 3],
                    n - 20,
                ),
            )
        # The reporters watch what was assigned to them: an hour-long talk.
        conn.execute(
            "INSERT INTO videos (id, org_id, owner_id, title, description, deal_attributes, "
            "status, progress, source_version, duration_ms, created_at, updated_at, playable_at) "
            "VALUES (%s, %s, %s, 'The pricing masterclass', '', '{}', 'playable', 100, 1, %s, "
            "now(), now(), now())",
            (LONG_VIDEO, org_id, admin_id, LONG_MS),
        )
        reporting = uuid.uuid4()
        conn.execute(
            "INSERT INTO assignments (id, org_id, assigned_by, video_id, message, audience, "
            "person_count, created_at, published_at) "
            "VALUES (%s, %s, %s, %s, '', '{}', %s, now(), now())",
            (reporting, org_id, admin_id, LONG_VIDEO, len(reporters)),
        )
        conn.execute(
            "INSERT INTO assignees (org_id, assignment_id, user_id, state, played_ms, total_ms, "
            "assigned_at) SELECT %s, %s, id, 'not_started', 0, %s, now() "
            "FROM unnest(%s::uuid[]) AS id",
            (org_id, reporting, LONG_MS, reporters),
        )
        views = {}
        for person in reporters:
            view_id = uuid.uuid4()
            # A view of an hour-long talk: every report adds a second never played before.
            conn.execute(
                "INSERT INTO views (id, org_id, video_id, user_id, session_id, start_ms, end_ms, "
                "started_at) VALUES (%s, %s, %s, %s, gen_random_uuid(), 0, %s, now())",
                (view_id, org_id, LONG_VIDEO, person, LONG_MS),
            )
            views[str(person)] = str(view_id)
        # Engagement for the top lists: progress (some completed), comments and reactions.
        conn.execute(
            "INSERT INTO video_progress (org_id, user_id, video_id, played, played_ms, "
            "duration_ms, first_played_at, updated_at, completed_at) "
            "SELECT %(org)s, p.id, v.id, int4multirange(int4range(0, x.ms)), x.ms, 60000, "
            "now() - make_interval(hours => x.h), now() - make_interval(hours => x.h), "
            "CASE WHEN x.ms >= 54000 THEN now() - make_interval(hours => x.h) END "
            "FROM (SELECT id, row_number() OVER (ORDER BY id) AS k FROM users "
            "      WHERE org_id = %(org)s AND id <> %(admin)s LIMIT %(engaged)s) AS p "
            "CROSS JOIN unnest(%(videos)s::uuid[]) WITH ORDINALITY AS v(id, i) "
            "CROSS JOIN LATERAL (SELECT (1000 + ((p.k * 7919 + v.i * 104729) %% 59000))::int "
            "AS ms, ((p.k + v.i) %% 500)::int AS h) AS x "
            "WHERE (p.k + v.i) %% 3 <> 0",
            {"org": org_id, "admin": admin_id, "engaged": engaged, "videos": videos},
        )
        conn.execute(
            "INSERT INTO comments (id, org_id, video_id, author_id, body, at_ms, end_ms, "
            "created_at, updated_at) "
            "SELECT gen_random_uuid(), %(org)s, v.id, p.id, 'Watch how the price lands', "
            "(p.k %% 40) * 1000, (p.k %% 40) * 1000 + 8000, now(), now() "
            "FROM (SELECT id, row_number() OVER (ORDER BY id) AS k FROM users "
            "      WHERE org_id = %(org)s AND id <> %(admin)s LIMIT 300) AS p "
            "CROSS JOIN unnest(%(videos)s::uuid[]) WITH ORDINALITY AS v(id, i) "
            "WHERE (p.k + v.i) %% 4 = 0",
            {"org": org_id, "admin": admin_id, "videos": videos},
        )
        conn.commit()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")
    return {
        "org_id": str(org_id),
        "admin_id": str(admin_id),
        "team_id": str(team_id),
        "collection_id": str(collection_id),
        "videos": [str(v) for v in videos],
        "learner": str(learner),
        "views": views,
    }


def compute_top(database_url: str) -> dict[str, int]:
    from fieldcast.curation import top
    from fieldcast.db import Database
    from fieldcast.settings import normalise_database_url

    database = Database(normalise_database_url(database_url), pool_size=1)
    try:
        return top.compute_all(database)
    finally:
        database.dispose()


def sign_in(base: str, email: str) -> dict[str, str]:
    response = requests.post(
        base + "/api/v1/auth/token", json={"email": email, "password": PASSWORD}, timeout=30
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def email_of(database_url: str, user_id: str) -> str:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT email FROM users WHERE id = %s", (user_id,)).fetchone()
    assert row is not None
    return str(row[0])


def timed_gets(
    session: requests.Session, url: str, headers: dict[str, str], count: int
) -> list[float]:
    for _ in range(3):  # warm-up
        session.get(url, headers=headers, timeout=30).raise_for_status()
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        session.get(url, headers=headers, timeout=30).raise_for_status()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def post_assignment(base: str, headers: dict[str, str], ids: dict[str, Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    response = requests.post(
        f"{base}/api/v1/assignments",
        json={
            "collection_id": ids["collection_id"],
            "team_ids": [ids["team_id"]],
            "due_at": "2099-01-01T09:00:00+00:00",
            "message": "Before your first Acme call",
        },
        headers=headers,
        timeout=60,
    )
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed, response.json()


def forget_assignments(database_url: str, redis_url: str) -> None:
    """The assignments made to time the POST, before any worker reaches their people."""
    forget_shares(database_url, redis_url)  # the outbox rows and their RQ jobs
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM assignments WHERE collection_id IS NOT NULL AND person_count > 1")


# -- progress reports -----------------------------------------------------------------------------


class Reporter:
    """One of the people with a view: their headers and a report counter."""

    def __init__(self, view_id: str, headers: dict[str, str]) -> None:
        self.view_id, self.headers, self.seq = view_id, headers, 0
        self.lock = threading.Lock()

    def body(self) -> dict[str, Any]:
        with self.lock:
            self.seq += 1
            seq = self.seq
        start = (seq * 1_000) % (LONG_MS - 1_000)
        return {"seq": seq, "segments": [[start, start + 1_000]], "position_ms": start + 1_000}


def closed_loop(
    send: Callable[[requests.Session, Reporter], None], reporters: list[Reporter], seconds: float
) -> float:
    """Requests per second of CLIENTS threads sending back to back for `seconds`."""
    done = [0] * CLIENTS
    stop = time.perf_counter() + seconds

    def client(n: int) -> None:
        with requests.Session() as session:
            k = n
            while time.perf_counter() < stop:
                send(session, reporters[k % len(reporters)])
                k += CLIENTS
                done[n] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.perf_counter() - started)


def paced(
    send: Callable[[requests.Session, Reporter], None],
    reporters: list[Reporter],
    rate: float,
    seconds: float,
) -> list[float]:
    """Latencies of requests sent at `rate` per second (an open loop over CLIENTS threads)."""
    timings: list[float] = []
    lock = threading.Lock()
    start = time.perf_counter()
    count = int(rate * seconds)

    def client(n: int) -> None:
        with requests.Session() as session:
            for k in range(n, count, CLIENTS):
                due = start + k / rate
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                began = time.perf_counter()
                send(session, reporters[k % len(reporters)])
                with lock:
                    timings.append((time.perf_counter() - began) * 1000)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return timings


def measure_reports(
    env: dict[str, str], base: str, ids: dict[str, Any], seconds: float
) -> dict[str, Any]:
    database_url = env["DATABASE_URL"]
    reporters = []
    for user_id, view_id in ids["views"].items():
        reporters.append(Reporter(view_id, sign_in(base, email_of(database_url, user_id))))
    log(f"{len(reporters)} reporters signed in")

    def product(session: requests.Session, reporter: Reporter) -> None:
        response = session.post(
            f"{base}/api/v1/views/{reporter.view_id}/reports",
            json=reporter.body(),
            headers=reporter.headers,
            timeout=30,
        )
        response.raise_for_status()

    bare_port = free_port()
    bare_base = f"http://127.0.0.1:{bare_port}"
    users = {view: user for user, view in ids["views"].items()}

    def bare(session: requests.Session, reporter: Reporter) -> None:
        response = session.post(
            f"{bare_base}/views/{reporter.view_id}/reports",
            json=reporter.body(),
            headers={"X-User": users[reporter.view_id]},
            timeout=30,
        )
        response.raise_for_status()

    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{bare_port}",
            "--workers",
            "2",
            "--threads",
            "4",
            "--worker-class",
            "gthread",
            "bench.bare_reports:create()",
        ],
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with requests.Session() as session:
                    bare(session, reporters[0])
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        closed_loop(bare, reporters, min(2, seconds))  # warm-up
        bare_rate = closed_loop(bare, reporters, seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)
    log(f"bare endpoint: {bare_rate:.0f} reports/s")
    closed_loop(product, reporters, min(2, seconds))  # warm-up
    product_rate = closed_loop(product, reporters, seconds)
    log(f"the product: {product_rate:.0f} reports/s ({product_rate / bare_rate:.2f} of bare)")

    # The framework's own floor: the lightest signed-in request (`GET /me`), the same load.
    def me(session: requests.Session, reporter: Reporter) -> None:
        session.get(f"{base}/api/v1/me", headers=reporter.headers, timeout=30).raise_for_status()

    me_rate = closed_loop(me, reporters, seconds)
    log(f"GET /me under the same load: {me_rate:.0f}/s ({me_rate / bare_rate:.2f} of bare)")
    latencies = paced(product, reporters, bare_rate / 2, seconds)
    log(
        f"at half the bare rate ({bare_rate / 2:.0f}/s): p95 {p95(latencies):.1f} ms, "
        f"median {statistics.median(latencies):.1f} ms"
    )
    return {
        "bare_reports_per_s": round(bare_rate, 1),
        "progress_reports_per_s": round(product_rate, 1),
        "progress_vs_bare": round(product_rate / bare_rate, 2),
        "progress_report_p95_ms": round(p95(latencies), 1),
        "progress_report_p50_ms": round(statistics.median(latencies), 1),
        "paced_rate_per_s": round(bare_rate / 2, 1),
        "me_per_s": round(me_rate, 1),
    }


# -- the fan-out ----------------------------------------------------------------------------------


def reached(database_url: str, assignment_id: str) -> tuple[int, int]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*), count(notified_at) FROM assignees WHERE assignment_id = %s",
            (assignment_id,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def run(
    members: int,
    posts: int,
    gets: int,
    seconds: float,
    timeout_s: float,
    reporters: int = REPORTERS,
) -> dict[str, Any]:
    from tests.fcm_server import FcmServerProcess

    workdir = Path(tempfile.mkdtemp(prefix="fieldcast-bench-programs-"))
    account = workdir / "service-account.json"
    figures: dict[str, Any] = {"benchmark": "programs", "members": members}
    with FcmServerProcess(latency_ms=FCM_LATENCY_MS, service_account=account) as fcm:
        extra = {"FCM_CREDENTIALS": str(account), "FCM_ENDPOINT": fcm.base_url}
        with scratch_environment(**extra) as env:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            with running(
                env, [["web", "--bind", f"127.0.0.1:{port}", "--workers", "2", "--threads", "4"]]
            ):
                wait_until_up(base)
                admin = signed_in(env, base)
                engaged = min(members, 3_000)
                ids = seed(env["DATABASE_URL"], members, engaged, reporters)
                log(f"seeded {members} members, {engaged} with progress on {VIDEOS} videos")
                started = time.perf_counter()
                boards = compute_top(env["DATABASE_URL"])
                log(f"top lists computed in {time.perf_counter() - started:.2f} s: {boards}")
                figures["top_compute_s"] = round(time.perf_counter() - started, 2)

                with requests.Session() as session:
                    me = timed_gets(session, base + "/api/v1/me", admin.headers, gets)
                figures["baseline_me_p95_ms"] = round(p95(me), 1)
                log(f"/me p95 {p95(me):.1f} ms (the machine's pace)")

                timings = []
                for _ in range(2):
                    post_assignment(base, admin.headers, ids)
                for _ in range(posts):
                    elapsed, body = post_assignment(base, admin.headers, ids)
                    assert body["person_count"] == members, body
                    timings.append(elapsed * 1000)
                forget_assignments(env["DATABASE_URL"], env["REDIS_URL"])
                figures["assign_post_p95_ms"] = round(p95(timings), 1)
                figures["assign_post_p50_ms"] = round(statistics.median(timings), 1)
                log(f"assignment POST to {members}: p95 {p95(timings):.1f} ms")

                learner = sign_in(base, email_of(env["DATABASE_URL"], ids["learner"]))
                page = base + "/api/v1/me/learning?state=all"
                whole = f"{page}&limit={LEARNER_ASSIGNMENTS}"
                with requests.Session() as session:
                    mine = session.get(whole, headers=learner, timeout=30).json()["items"]
                    assert len(mine) == LEARNER_ASSIGNMENTS, len(mine)
                    learning = timed_gets(session, page, learner, gets)
                    learning_all = timed_gets(session, whole, learner, gets)
                    top = session.get(base + "/api/v1/top", headers=learner, timeout=30).json()
                    assert top["entries"], top
                    tops = timed_gets(session, base + "/api/v1/top", learner, gets)
                figures["my_learning_p95_ms"] = round(p95(learning), 1)
                figures["my_learning_all_p95_ms"] = round(p95(learning_all), 1)
                figures["top_clips_p95_ms"] = round(p95(tops), 1)
                figures["top_entries_read"] = len(top["entries"])
                log(
                    f"my learning of {LEARNER_ASSIGNMENTS}: first page p95 {p95(learning):.1f} "
                    f"ms, all at once {p95(learning_all):.1f} ms; "
                    f"top clips ({len(top['entries'])} entries) p95 {p95(tops):.1f} ms"
                )

                figures.update(measure_reports(env, base, ids, seconds))

                fcm.reset()
                with running(env, [NON_MEDIA_WORKER, NON_MEDIA_WORKER, ["scheduler"]]):
                    wait_for_workers(env["REDIS_URL"], 2)
                    log("the workers are up")
                    began = time.perf_counter()
                    _, made = post_assignment(base, admin.headers, ids)
                    deadline = began + timeout_s
                    timed_out = True
                    accepted = rows = notified = 0
                    while time.perf_counter() < deadline:
                        accepted = int(fcm.stats()["accepted_pairs"])
                        if accepted >= members:
                            rows, notified = reached(env["DATABASE_URL"], made["id"])
                            if rows == notified == members:
                                timed_out = False
                                break
                        time.sleep(0.1)
                    fanout_s = time.perf_counter() - began
                    while not outbox_settled(env["DATABASE_URL"]):
                        if time.perf_counter() > deadline + 30:
                            break
                        time.sleep(0.2)
                    stats = fcm.stats()
                log(f"fan-out: {accepted} pushes accepted, {rows} rows in {fanout_s:.2f} s")
                figures.update(
                    {
                        "assign_fanout_s": round(fanout_s, 2),
                        "timed_out": timed_out,
                        "pushes_accepted": int(stats["accepted_pairs"]),
                        "duplicates": int(stats["duplicates"]),
                        "assignees_made": rows,
                    }
                )
    figures["targets"] = TARGETS
    figures["ratios_to_me"] = {
        name: round(figures[name] / figures["baseline_me_p95_ms"], 2)
        for name in (
            "assign_post_p95_ms",
            "my_learning_p95_ms",
            "my_learning_all_p95_ms",
            "top_clips_p95_ms",
        )
    }
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.programs", description=__doc__)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument(
        "--quick", action="store_true", help="300 members, 8 reporters, short phases"
    )
    args = parser.parse_args(argv)
    if args.quick:
        figures = run(300, posts=3, gets=10, seconds=1.5, timeout_s=60, reporters=8)
    else:
        figures = run(args.members, posts=20, gets=200, seconds=10, timeout_s=300)
    print(json.dumps(figures))
    sys.stdout.flush()
    if figures["timed_out"] or figures["pushes_accepted"] < figures["members"]:
        log("FAILED: the fan-out did not reach everyone")
        sys.exit(1)


if __name__ == "__main__":
    main()
