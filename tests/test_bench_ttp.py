"""`bench.time_to_playable --quick` runs end to end and prints its JSON line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.bench_support import run_quick
from tests.fault_servers import RedisServer

# Whole stacks of processes: one such file at a time (scripts/test runs them on one worker).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(300, method="thread"),
    pytest.mark.xdist_group("stack"),
]


def test_quick_time_to_playable_prints_its_cases(redis_server: RedisServer, tmp_path: Path) -> None:
    database = os.environ.get("TEST_DATABASE_URL")
    if not database:
        pytest.skip("TEST_DATABASE_URL is not set")
    env = {
        **os.environ,
        "DATABASE_URL": database,
        # A Redis of the test's own: the benchmark deletes the keys its run made in it.
        "REDIS_URL": redis_server.url,
        "FIELDCAST_BENCH_CACHE": str(tmp_path / "cache"),
    }
    report, _, _ = run_quick(
        "bench.time_to_playable", env, "--cases", "h264_local,hevc_local", timeout=220
    )
    case = report["cases"]["h264_local"]
    assert set(case) == {"ttp_s", "transcode_first_s", "ratio"}
    assert case["ttp_s"] > 0 and case["transcode_first_s"] > 0
    assert report["ttp_s"] == case["ttp_s"]
    assert report["ratio"] == case["ratio"] > 0
    assert case["ratio"] == pytest.approx(case["transcode_first_s"] / case["ttp_s"], rel=0.05)
    # Where the time went, step by step, from the worker's own log line.
    assert {"final_request_s", "dispatch_s", "probe_s", "ffmpeg_s", "store_s"} <= set(
        report["breakdown"]["h264_local"]
    )
    # An iPhone's HEVC HDR clip: it plays for HEVC clients first, then for every client.
    hevc = report["cases"]["hevc_local"]
    assert set(hevc) == {
        "ttp_s",
        "transcode_first_s",
        "ratio",
        "ttp_hevc_s",
        "ratio_hevc",
        "ttp_h264_s",
        "ratio_h264",
    }
    assert 0 < hevc["ttp_hevc_s"] <= hevc["ttp_h264_s"] == hevc["ttp_s"]
    assert hevc["ratio_hevc"] == pytest.approx(
        hevc["transcode_first_s"] / hevc["ttp_hevc_s"], rel=0.05
    )
