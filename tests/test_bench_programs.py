"""`python -m bench.programs --quick` as a smoke test: the API, the bare report endpoint, two
workers and the scheduler against the local FCM stand-in, on a scratch database and a Redis
server of the test's own. It must print its JSON line with every figure and reach every member
of the assignment once, with a push to each phone."""

from __future__ import annotations

import os

import pytest

from tests.bench_support import run_quick
from tests.fault_servers import RedisServer

# Whole stacks of processes: one such file at a time (scripts/test runs them on one worker).
pytestmark = pytest.mark.xdist_group("stack")

FIGURES: dict[str, type | tuple[type, ...]] = {
    "baseline_me_p95_ms": (int, float),
    "assign_post_p95_ms": (int, float),
    "assign_fanout_s": (int, float),
    "bare_reports_per_s": (int, float),
    "progress_reports_per_s": (int, float),
    "progress_report_p95_ms": (int, float),
    "my_learning_p95_ms": (int, float),
    "my_learning_all_p95_ms": (int, float),
    "top_clips_p95_ms": (int, float),
    "me_per_s": (int, float),
    "timed_out": bool,
}


@pytest.mark.slow
def test_the_quick_programs_benchmark_reaches_every_member_once(
    server_database_url: str, redis_server: RedisServer
) -> None:
    env = {**os.environ, "DATABASE_URL": server_database_url, "REDIS_URL": redis_server.url}
    figures, lines, _ = run_quick("bench.programs", env)
    assert len(lines) == 1, lines
    assert figures["benchmark"] == "programs"
    for name, kind in FIGURES.items():
        assert isinstance(figures[name], kind), (name, figures[name])
    assert figures["timed_out"] is False
    assert figures["assignees_made"] == figures["members"] == 300
    assert figures["pushes_accepted"] >= 300 and figures["duplicates"] == 0
    assert figures["top_entries_read"] > 0
    assert figures["progress_reports_per_s"] > 0 and figures["bare_reports_per_s"] > 0
