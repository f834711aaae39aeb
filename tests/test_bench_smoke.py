"""The `--quick` modes of `bench.upload` and `bench.ladder` as smoke tests: each runs in a
subprocess, exits 0 and prints one JSON line with every figure it documents. (`bench.upload`
makes its database on the test server and drops it, and runs a Redis server of its own; each
takes well under a minute on a quiet machine.)"""

from __future__ import annotations

import os
import re

import psycopg
import pytest

from tests.bench_support import run_quick

# Whole stacks of processes: one such file at a time (scripts/test runs them on one worker).
pytestmark = pytest.mark.xdist_group("stack")

NUMBER = (int, float)


@pytest.mark.slow
def test_the_quick_upload_benchmark_prints_its_figures(server_database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["DATABASE_URL"] = server_database_url  # the server its scratch database is made on
    figures, _, log = run_quick("bench.upload", env)
    assert figures["benchmark"] == "upload"
    assert figures["size_mb"] == 16 and figures["chunk_mb"] == 8
    for name in ("tus_mb_s", "bare_put_mb_s", "throughput_ratio"):
        assert isinstance(figures[name], NUMBER) and figures[name] > 0, (name, figures)
    # A growth: none at all is a figure too (the worker reused memory it already held).
    assert isinstance(figures["rss_growth_mb"], NUMBER) and figures["rss_growth_mb"] >= 0
    assert figures["throughput_ratio"] == pytest.approx(
        figures["tus_mb_s"] / figures["bare_put_mb_s"], rel=0.05
    )
    assert figures["targets"] == {"throughput_ratio": 0.8, "rss_growth_mb": 64}
    # It ran on a Redis of its own and dropped the database it made, and nothing else.
    assert "services: a scratch database and a private Redis" in log
    dropped = re.findall(r"dropped scratch database (fieldcast_bench_\w+)", log)
    assert len(dropped) == 1, log
    admin_url = server_database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin_url) as conn:
        left = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", dropped).fetchall()
    assert left == []


@pytest.mark.slow
def test_the_quick_ladder_benchmark_prints_its_figures() -> None:
    figures, _, _ = run_quick("bench.ladder", dict(os.environ))
    assert figures["benchmark"] == "ladder"
    assert figures["source"] == "1920x1080 30fps 2s"
    assert figures["rungs"] == ["360p", "540p", "720p", "1080p"]
    assert figures["rounds"] == 1
    for name in ("shared_s", "per_rung_s", "speedup", "x_realtime", "shared_cpu_s"):
        assert isinstance(figures[name], NUMBER) and figures[name] > 0, (name, figures)
    assert figures["speedup"] == pytest.approx(
        figures["per_rung_s"] / figures["shared_s"], rel=0.05
    )
    assert figures["target_speedup"] == 1.3
