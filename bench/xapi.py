"""xAPI delivery: statements sent to a real learning record store, per second.

What runs: the real API (`fieldcast web`), two `fieldcast worker` processes and the scheduler,
on a scratch PostgreSQL database and Redis, and ralph's LRS (PyPI `ralph-malph`, in its own
virtual environment, as the tests run it: tests/lrs_server.py) on loopback. An admin sets the
organisation's LRS through the API. `--statements` statements of `--people` people's views of
a one-minute video are seeded in SQL as the player reports record them (`played`, with their
session, length, position and played segments); then the workers start, and the periodic
`xapi-delivery` job hands the backlog to delivery jobs (500 statements a POST, ten POSTs a
job), each building the statements from their rows and posting them.

Figures (one JSON line on stdout, progress on stderr):

- `xapi_drain_s`: from the workers being up until every statement is delivered (the
  scheduler's first tick, up to 10 s, included);
- `xapi_statements_per_s`: statements delivered over `xapi_drain_s`;
- `lrs_statements`: what the LRS answers it holds, read back through its Statement API count.

Target: xapi_statements_per_s >= 200.

Run: python -m bench.xapi  [--statements 20000 | --quick]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from typing import Any

import psycopg
import requests

from bench import harness
from bench.fanout import wait_for_workers
from bench.harness import (
    NON_MEDIA_WORKER,
    free_port,
    running,
    scratch_environment,
    signed_in,
    wait_until_up,
)

TARGETS = {"xapi_statements_per_s": 200}
STARTED = time.perf_counter()


def log(message: str) -> None:
    harness.log(f"[{time.perf_counter() - STARTED:5.1f} s] {message}")


def seed(database_url: str, people: int, statements: int) -> str:
    """`people` reps, a view each of one video, and `statements` `played` rows spread over
    those views, as report recording writes them. Returns the organisation's id."""
    video_id = uuid.uuid4()
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("SELECT id, org_id FROM users LIMIT 1").fetchone()
        assert row is not None
        admin_id, org_id = row
        conn.execute(
            "INSERT INTO users (id, org_id, email, display_name, handle, role, is_active, "
            "time_zone, created_at, updated_at) "
            "SELECT gen_random_uuid(), %(org)s, 'xapi' || n || '@bench.example.com', "
            "'Rep ' || n, 'xrep' || n, 'rep', true, 'UTC', now(), now() "
            "FROM generate_series(1, %(n)s) AS n",
            {"org": org_id, "n": people},
        )
        conn.execute(
            "INSERT INTO videos (id, org_id, owner_id, title, description, deal_attributes, "
            "status, progress, source_version, duration_ms, created_at, updated_at, "
            "playable_at) VALUES (%s, %s, %s, 'Handling the pricing objection', '', '{}', "
            "'ready', 100, 1, 60000, now(), now(), now())",
            (video_id, org_id, admin_id),
        )
        conn.execute(
            "INSERT INTO views (id, org_id, video_id, user_id, session_id, start_ms, end_ms, "
            "played, played_ms, started_at) "
            "SELECT gen_random_uuid(), %s, %s, u.id, gen_random_uuid(), 0, 60000, "
            "'{[0,30000)}', 30000, now() FROM users u "
            "WHERE u.org_id = %s AND u.handle LIKE 'xrep%%'",
            (org_id, video_id, org_id),
        )
        conn.execute(
            """
            INSERT INTO xapi_statements
                (org_id, key, verb, user_id, video_id, view_id, occurred_at, data)
            SELECT v.org_id, 'view:' || v.id || ':event:' || s.n, 'video.played', v.user_id,
                   v.video_id, v.id, now() - interval '1 hour' + s.n * interval '10 ms',
                   jsonb_build_object(
                       'session_id', v.session_id, 'length_ms', 60000, 'threshold_pct', 90,
                       'played_ms', 30000, 'time_ms', (s.n * 1000) %% 60000,
                       'played', '{[0,30000)}')
            FROM generate_series(0, %s - 1) AS s(n)
            JOIN (SELECT *, row_number() OVER (ORDER BY id) - 1 AS k FROM views
                  WHERE org_id = %s) v ON v.k = s.n %% %s
            """,
            (statements, org_id, people),
        )
    return str(org_id)


def delivered(database_url: str, org_id: str) -> tuple[int, int]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE sent_at IS NOT NULL), count(*) "
            "FROM xapi_statements WHERE org_id = %s",
            (org_id,),
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def run(statements: int, people: int, timeout_s: float) -> dict[str, Any]:
    from tests.lrs_server import PASSWORD, USERNAME, RalphLRS, ensure_venv

    figures: dict[str, Any] = {"benchmark": "xapi", "statements": statements}
    lrs = RalphLRS(ensure_venv())
    lrs.start()
    try:
        with scratch_environment() as env:
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            with running(env, [["web", "--bind", f"127.0.0.1:{port}", "--workers", "1"]]):
                wait_until_up(base)
                admin = signed_in(env, base)
                made = requests.put(
                    f"{base}/api/v1/xapi/lrs",
                    json={"endpoint": lrs.endpoint, "key": USERNAME, "secret": PASSWORD},
                    headers=admin.headers,
                    timeout=30,
                )
                made.raise_for_status()
                began = time.perf_counter()
                org_id = seed(env["DATABASE_URL"], people, statements)
                log(f"seeded {statements} statements in {time.perf_counter() - began:.1f} s")
                with running(env, [NON_MEDIA_WORKER, NON_MEDIA_WORKER, ["scheduler"]]):
                    wait_for_workers(env["REDIS_URL"], 2)
                    began = time.perf_counter()
                    deadline = began + timeout_s
                    sent = total = 0
                    while time.perf_counter() < deadline:
                        sent, total = delivered(env["DATABASE_URL"], org_id)
                        if sent >= total:
                            break
                        time.sleep(0.2)
                    drain_s = time.perf_counter() - began
                    state = requests.get(
                        f"{base}/api/v1/xapi/lrs", headers=admin.headers, timeout=30
                    ).json()
        # (A delivery job marks its batches sent in one transaction, at one time: the rate is
        # taken over the whole drain, the scheduler's first tick included.)
        rate = sent / drain_s if drain_s > 0 else 0.0
        figures.update(
            {
                "xapi_statements_per_s": round(rate, 1),
                "xapi_drain_s": round(drain_s, 2),
                "delivered": sent,
                "timed_out": sent < total,
                "lrs_backlog": state.get("backlog"),
                "lrs_last_error": state.get("last_error"),
                "lrs_statements": len(lrs.statements()) if statements <= 5_000 else None,
            }
        )
        log(f"delivered {sent} of {total} in {drain_s:.1f} s; {rate:.0f} statements/s")
    finally:
        lrs.close()
    figures["targets"] = TARGETS
    figures["met"] = {name: figures[name] >= t for name, t in TARGETS.items()}
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.xapi", description=__doc__)
    parser.add_argument("--statements", type=int, default=20_000)
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="2,000 statements of 20 people")
    args = parser.parse_args(argv)
    if args.quick:
        figures = run(2_000, 20, timeout_s=120)
    else:
        figures = run(args.statements, args.people, timeout_s=600)
    print(json.dumps(figures))
    sys.stdout.flush()
    if figures["timed_out"]:
        log("FAILED: the backlog did not drain")
        sys.exit(1)


if __name__ == "__main__":
    main()
