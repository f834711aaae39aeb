"""`python -m bench.xapi --quick` as a smoke test: the API, two workers and the scheduler on a
scratch database, 2,000 seeded statements delivered to a local ralph LRS. It must print its
JSON line with every figure, every statement delivered."""

from __future__ import annotations

import os

import pytest

from tests.bench_support import run_quick
from tests.fault_servers import RedisServer
from tests.lrs_server import ensure_venv

# Whole stacks of processes: one such file at a time (scripts/test runs them on one worker).
pytestmark = pytest.mark.xdist_group("stack")


@pytest.mark.slow
def test_the_quick_xapi_benchmark_delivers_every_statement(
    server_database_url: str, redis_server: RedisServer
) -> None:
    try:
        ensure_venv()
    except RuntimeError as exc:
        pytest.skip(str(exc))
    env = {**os.environ, "DATABASE_URL": server_database_url, "REDIS_URL": redis_server.url}
    figures, lines, _ = run_quick("bench.xapi", env, timeout=300)
    assert len(lines) == 1, lines
    assert figures["benchmark"] == "xapi"
    assert figures["delivered"] == figures["statements"] == 2_000
    assert figures["timed_out"] is False and figures["lrs_backlog"] == 0
    assert figures["lrs_statements"] == 2_000  # read back from the LRS itself
    assert figures["xapi_statements_per_s"] > 0
    assert figures["targets"] == {"xapi_statements_per_s": 200}
