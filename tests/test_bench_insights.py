"""`python -m bench.insights --quick` as a smoke test: the API on a scratch database and a Redis
server of the test's own, an organisation of 1,000 seeded in SQL. It must print its JSON line
with every figure, the video's insights counting every member as a viewer."""

from __future__ import annotations

import os

import pytest

from tests.bench_support import run_quick
from tests.fault_servers import RedisServer

# Whole stacks of processes: one such file at a time (scripts/test runs them on one worker).
pytestmark = pytest.mark.xdist_group("stack")

METRICS = ("learning-cycle", "completion-average", "non-completion-reasons", "deal-conversion")


@pytest.mark.slow
def test_the_quick_insights_benchmark_prints_every_figure(
    server_database_url: str, redis_server: RedisServer
) -> None:
    env = {**os.environ, "DATABASE_URL": server_database_url, "REDIS_URL": redis_server.url}
    # (Its data-out parts have smoke tests of their own: test_bench_exports, test_bench_xapi.)
    figures, lines, _ = run_quick("bench.insights", env, "--only", "insights")
    assert len(lines) == 1, lines
    assert figures["benchmark"] == "insights"
    for name in ("baseline_me_p95_ms", "video_insights_p95_ms", "metrics_p95_ms"):
        assert isinstance(figures[name], (int, float)) and figures[name] > 0, name
    assert set(figures["metric_p95_ms"]) == set(METRICS)
    assert figures["metrics_p95_ms"] == max(figures["metric_p95_ms"].values())
    # Everyone was assigned the 20 program videos.
    assert figures["assignees"] == 20 * figures["members"]
