"""`python -m bench.fanout --quick` as a smoke test: the whole product (API, two workers, the
scheduler) against the local FCM stand-in, on a scratch database and a Redis server of the
test's own. It must print its JSON line with every figure, reach every recipient and device,
and accept no push twice. (It takes about 30 s on a quiet machine.)"""

from __future__ import annotations

import os

import pytest

from tests.bench_support import run_quick
from tests.fault_servers import RedisServer

# Whole stacks of processes: one such file at a time (scripts/test runs them on one worker).
pytestmark = pytest.mark.xdist_group("stack")

FIGURES: dict[str, type | tuple[type, ...]] = {
    "share_post_p95_ms": (int, float),
    "share_post_busy_p95_ms": (int, float),
    "fanout_s": (int, float),
    "duplicates": int,
    "pushes_expected": int,
    "pushes_accepted": int,
    "recipients_expected": int,
    "recipients_sent": int,
    "send_each_cpu_ms_per_push": (int, float),
    "sender_cpu_ms_per_push": (int, float),
    "sender_vs_send_each": (int, float),
    "worker_cpu_ms_per_push": (int, float),
    "timed_out": bool,
}


@pytest.mark.slow
def test_the_quick_fanout_benchmark_reaches_everyone_once(
    server_database_url: str, redis_server: RedisServer
) -> None:
    env = {
        **os.environ,
        # The harness makes a scratch database on this server and drops it afterwards.
        "DATABASE_URL": server_database_url,
        # A Redis server of this test's own: whatever the run does to it touches nothing else.
        "REDIS_URL": redis_server.url,
    }
    figures, lines, _ = run_quick("bench.fanout", env)
    assert len(lines) == 1, lines
    assert figures["benchmark"] == "fanout"
    for name, kind in FIGURES.items():
        assert isinstance(figures[name], kind), (name, figures[name])
    assert figures["timed_out"] is False
    assert figures["duplicates"] == 0
    assert figures["members"] == 300 and figures["devices"] == 600
    assert figures["busy_posts"] >= 1
    assert (
        figures["pushes_accepted"] == figures["pushes_expected"] == 600 + 20 * figures["busy_posts"]
    )
    assert figures["recipients_sent"] == figures["recipients_expected"]
    assert figures["recipient_states"] == {"sent": figures["recipients_expected"]}
    assert figures["share_counts"]["sent"] == 300
    assert figures["sender_cpu_ms_per_push"] > 0 and figures["send_each_cpu_ms_per_push"] > 0
