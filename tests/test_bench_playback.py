"""The `--quick` mode of `bench.playback` as a smoke test: it exits 0 and prints one JSON line
with every figure it documents."""

from __future__ import annotations

import os

import pytest

from tests.bench_support import run_quick

# Whole stacks of processes: one such file at a time (scripts/test runs them on one worker).
pytestmark = pytest.mark.xdist_group("stack")


@pytest.mark.slow
def test_the_quick_playback_benchmark_prints_its_figures(server_database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["DATABASE_URL"] = server_database_url  # the server its scratch database is made on
    figures, _, _ = run_quick("bench.playback", env)
    assert figures["benchmark"] == "playback"
    assert figures["segments"] == 20 and figures["segment_kb"] == 256
    for path in ("direct", "via_api", "redirect", "redirect_uncached"):
        for stat in ("p50", "p95"):
            value = figures[f"{path}_{stat}_ms"]
            assert isinstance(value, float) and value > 0, (path, stat, figures)
    # Following the redirect is a fetch from storage plus the redirect: never cheaper.
    assert figures["via_api_p50_ms"] > figures["redirect_p50_ms"]
    assert figures["added_p50_ms"] == pytest.approx(
        figures["via_api_p50_ms"] - figures["direct_p50_ms"], abs=0.02
    )
