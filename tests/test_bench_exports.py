"""`python -m bench.exports --quick` as a smoke test: the API under gunicorn on a scratch
database, 100,000 views streamed as CSV and as Parquet, and from a cursor after 1 % changed.
It must print its JSON line with every figure, count every row it exported, and get exactly
the changed rows from the cursor."""

from __future__ import annotations

import os

import pytest

from tests.bench_support import run_quick
from tests.fault_servers import RedisServer

# Whole stacks of processes: one such file at a time (scripts/test runs them on one worker).
pytestmark = pytest.mark.xdist_group("stack")

NUMBER = (int, float)


@pytest.mark.slow
def test_the_quick_exports_benchmark_streams_every_row_in_both_formats(
    server_database_url: str, redis_server: RedisServer
) -> None:
    env = {**os.environ, "DATABASE_URL": server_database_url, "REDIS_URL": redis_server.url}
    figures, lines, _ = run_quick("bench.exports", env)
    assert len(lines) == 1, lines
    assert figures["benchmark"] == "exports"
    assert figures["rows"] == 100_000
    for fmt in ("csv", "parquet"):
        exported = figures[fmt]
        assert exported["rows"] == 100_000
        assert exported["delta_rows"] == 1_000
        for name in ("rows_per_s", "rss_growth_mb", "again_rows_per_s", "again_rss_growth_mb"):
            assert isinstance(exported[name], NUMBER) and exported[name] >= 0, (name, exported)
        assert exported["rows_per_s"] > 0 and exported["bytes"] > 0
    assert figures["export_rows_per_s"] == min(figures[f]["rows_per_s"] for f in ("csv", "parquet"))
    assert figures["targets"] == {"export_rows_per_s": 100_000, "export_rss_growth_mb": 100}
    assert isinstance(figures["met"], bool)
