"""`python -m bench.search --quick` as a smoke test: the whole product (API, two workers, the
scheduler) on a scratch database and a Redis server of the test's own, with a small seeded
set of organisations. It must print its JSON line with every figure, the rep must see only part
of the largest organisation's videos, every kind of query must have been measured for both
people, and each new comment must have been found by search. (About 50 s on a quiet machine.)"""

from __future__ import annotations

import os

import pytest

from tests.bench_support import run_quick
from tests.fault_servers import RedisServer

# Whole stacks of processes: one such file at a time (scripts/test runs them on one worker).
pytestmark = pytest.mark.xdist_group("stack")

NUMBER = (int, float)
FIGURES: dict[str, type | tuple[type, ...]] = {
    "search_p95_ms": NUMBER,
    "search_p95_ms_rep": NUMBER,
    "search_p50_ms_rep": NUMBER,
    "search_p95_ms_admin": NUMBER,
    "search_p50_ms_admin": NUMBER,
    "facets_p95_ms": NUMBER,
    "facets_p95_ms_rep": NUMBER,
    "facets_p95_ms_admin": NUMBER,
    "baseline_me_p95_ms": NUMBER,
    "baseline_me_p50_ms": NUMBER,
    "search_vs_me": NUMBER,
    "facets_vs_me": NUMBER,
    "search_p95_ms_by_kind": dict,
    "hits_by_kind": dict,
    "fresh_s": NUMBER,
    "fresh_median_s": NUMBER,
    "fresh_max_s": NUMBER,
    "recommendations_measured": str,
    "samples": dict,
    "seed_s": dict,
    "seed_total_s": NUMBER,
    "doc_build_s": NUMBER,
    "docs_per_s": int,
    "videos_seeded": int,
    "comments_seeded": int,
    "segments_seeded": int,
    "share_recipients_seeded": int,
    "rep_sees_videos": int,
    "rep_sees_share": NUMBER,
    "targets": dict,
    "met": dict,
}
KINDS = {"common", "rare", "two_words", "phrase", "prefix", "attribute", "attribute_word"}


@pytest.mark.slow
def test_the_quick_search_benchmark_measures_every_query_kind_and_freshness(
    server_database_url: str, redis_server: RedisServer
) -> None:
    env = {
        **os.environ,
        # The harness makes a scratch database on this server and drops it afterwards.
        "DATABASE_URL": server_database_url,
        # A Redis server of this test's own: whatever the run does to it touches nothing else.
        "REDIS_URL": redis_server.url,
    }
    figures, lines, stderr = run_quick("bench.search", env)
    assert len(lines) == 1, lines
    assert figures["benchmark"] == "search" and figures["size"] == "quick"
    for name, kind in FIGURES.items():
        assert isinstance(figures[name], kind), (name, figures[name])
    assert figures["videos_seeded"] == 600 and figures["comments_seeded"] == 3000
    assert figures["organisations"] == 5 and figures["largest_org_videos"] == 240
    # Every video got its document through the product's build.
    assert figures["doc_build_s"] > 0 and figures["docs_per_s"] > 0
    # The rep sees some of the largest organisation's videos, not all of them.
    assert 0 < figures["rep_sees_videos"] < figures["largest_org_videos"]
    # Transcript segments are seeded exactly when the schema has them.
    assert (figures["segments_seeded"] > 0) == figures["transcript_segments_table"]
    if not figures["transcript_segments_table"]:
        assert "transcript_segments does not exist" in stderr
    # Every kind of query, for both people, each request answered.
    assert set(figures["search_p95_ms_by_kind"]) == KINDS
    assert all(set(v) == {"rep", "admin"} for v in figures["search_p95_ms_by_kind"].values())
    assert figures["samples"]["search:rep"] == figures["samples"]["search:admin"] >= 7 * 3
    assert figures["samples"]["me"] == 2 * figures["samples"]["search:rep"]
    # The mix finds things: common words and attribute filters have results.
    assert figures["hits_by_kind"]["common"] > 0 and figures["hits_by_kind"]["attribute"] > 0
    assert "EXPLAIN candidates, rep" in stderr and "EXPLAIN candidates, admin" in stderr
    # Each new comment was found (the run fails otherwise), well within the timeout.
    assert figures["fresh_tries"] == 2
    assert 0 < figures["fresh_median_s"] <= figures["fresh_max_s"] < 60
    for name in ("search", "facets"):
        for who in ("rep", "admin"):
            assert 0 < figures[f"{name}_p50_ms_{who}"] <= figures[f"{name}_p95_ms_{who}"]
    if figures["recommendations_measured"] == "yes":
        assert figures["recommendations_p95_ms"] > 0
    else:
        assert figures["recommendations_p95_ms"] is None
        assert figures["met"]["recommendations_p95_ms"] is None
    assert figures["growth"] is None and figures["met"]["growth"] is None
    assert figures["targets"] == {
        "search_p95_ms": 50,
        "facets_p95_ms": 80,
        "recommendations_p95_ms": 100,
        "growth": 2,
        "fresh_s": 2,
    }
    assert set(figures["met"]) == set(figures["targets"])
