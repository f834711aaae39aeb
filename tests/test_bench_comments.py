"""`python -m bench.comments --quick` as a smoke test: the whole product (API, two workers, the
scheduler) against the local FCM stand-in, on a scratch database and a Redis server of the
test's own, with a small seeded conversation. It must print its JSON line with every figure,
and every mention push it timed must have arrived. (It takes about 25 s on a quiet machine.)"""

from __future__ import annotations

import os

import pytest

from tests.bench_support import run_quick
from tests.fault_servers import RedisServer

# Whole stacks of processes: one such file at a time (scripts/test runs them on one worker).
pytestmark = pytest.mark.xdist_group("stack")

NUMBER = (int, float)
FIGURES: dict[str, type | tuple[type, ...]] = {
    "comment_post_p95_ms": NUMBER,
    "comment_post_p50_ms": NUMBER,
    "comments_page_p95_ms": NUMBER,
    "comments_page_p50_ms": NUMBER,
    "moments_p95_ms": NUMBER,
    "moments_p50_ms": NUMBER,
    "reaction_post_p95_ms": NUMBER,
    "reaction_post_p50_ms": NUMBER,
    "baseline_me_p95_ms": NUMBER,
    "baseline_me_p50_ms": NUMBER,
    "comment_post_vs_me": NUMBER,
    "comments_page_vs_me": NUMBER,
    "moments_vs_me": NUMBER,
    "reaction_post_vs_me": NUMBER,
    "mention_push_s": NUMBER,
    "mention_push_median_s": NUMBER,
    "mention_push_max_s": NUMBER,
    "mention_pushes": int,
    "mention_push_breakdown": dict,
    "mention_push_quiet_s": NUMBER,
    "mention_push_quiet_breakdown": dict,
    "samples": dict,
    "pushes_accepted": int,
    "duplicates": int,
    "outbox_backlog": int,
    "cpu_busy_s": NUMBER,
    "cpu_s_by_role": dict,
    "api_cpu_ms_per_request": NUMBER,
    "worker_cpu_ms_per_job": NUMBER,
    "outbox_jobs_done": int,
    "people": int,
    "comments_seeded": int,
    "reactions_seeded": int,
    "targets": dict,
    "met": dict,
}


@pytest.mark.slow
def test_the_quick_comments_benchmark_measures_every_operation_and_push(
    server_database_url: str, redis_server: RedisServer
) -> None:
    env = {
        **os.environ,
        # The harness makes a scratch database on this server and drops it afterwards.
        "DATABASE_URL": server_database_url,
        # A Redis server of this test's own: whatever the run does to it touches nothing else.
        "REDIS_URL": redis_server.url,
    }
    figures, lines, _ = run_quick("bench.comments", env)
    assert len(lines) == 1, lines
    assert figures["benchmark"] == "comments"
    for name, kind in FIGURES.items():
        assert isinstance(figures[name], kind), (name, figures[name])
    assert figures["people"] == 200
    assert figures["comments_seeded"] == 300
    assert figures["threads_seeded"] == 240 and figures["replies_seeded"] == 60
    assert figures["reactions_seeded"] == 1000
    assert figures["clients"] == 2 and figures["comments_page_items"] == 50
    # Every operation measured in every round: at least 5 rounds by each of 2 clients.
    assert figures["rounds_per_client"] >= 5
    assert set(figures["samples"]) == {
        "me",
        "comments_page",
        "moments",
        "comment_post",
        "reaction_post",
    }
    assert all(count >= 10 for count in figures["samples"].values()), figures["samples"]
    # Every timed mention push arrived (the run fails otherwise), each within its timeout.
    assert figures["mention_pushes"] == 3
    assert 0 < figures["mention_push_median_s"] <= figures["mention_push_max_s"] < 30
    assert figures["pushes_accepted"] >= 3 and figures["duplicates"] == 0
    assert 0 < figures["mention_push_quiet_s"] < 30
    parts = ("post_s", "push_job_s", "after_job_s")
    for breakdown in ("mention_push_breakdown", "mention_push_quiet_breakdown"):
        assert set(figures[breakdown]) == set(parts), figures[breakdown]
    # The API and the workers did the work, and were seen doing it.
    assert figures["cpu_s_by_role"]["web"] > 0 and figures["cpu_s_by_role"]["worker"] > 0
    assert figures["outbox_jobs_done"] > 0
    assert figures["targets"] == {
        "comment_post_p95_ms": 50,
        "comments_page_p95_ms": 30,
        "moments_p95_ms": 30,
        "mention_push_s": 2,
    }
    assert set(figures["met"]) == set(figures["targets"])
    assert all(isinstance(met, bool) for met in figures["met"].values())
    for name in ("comment_post", "comments_page", "moments", "reaction_post", "baseline_me"):
        assert 0 < figures[f"{name}_p50_ms"] <= figures[f"{name}_p95_ms"], name
