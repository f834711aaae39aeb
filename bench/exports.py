"""The BI export: a million rows streamed over HTTP as CSV and as Parquet, and the server's
memory meanwhile.

What runs: the real API (`fieldcast web`, gunicorn, 1 process x 2 threads, so one process's
memory is measured) on a scratch PostgreSQL database and Redis. One organisation is seeded in
SQL with `--rows` views (with played segments) of one video, and a second organisation with a
tenth as many, which the export must leave out.

Each format is exported once to warm up (a small fact), then `GET /api/v1/exports/views` is
streamed to a temporary file while the server's resident memory (RSS, the gunicorn master and
its worker together) is sampled every 20 ms. Then 1 % of the rows are changed and the export
from the first answer's cursor is timed.

Figures (one JSON line on stdout, progress on stderr):

- `csv` / `parquet`: `rows` (counted in what arrived), `bytes`, `seconds`, `rows_per_s`,
  `rss_growth_mb` (the peak during the export over the RSS before it: the server's first
  large export, which also sizes pyarrow's allocator once), `delta_rows` and `delta_s` (the
  export from the cursor: the changed rows only), `again_rows_per_s` and
  `again_rss_growth_mb` (the whole export once more, the allocator warm).
- `export_rows_per_s`: the slower format's first export; `export_rss_growth_mb`: the larger
  growth of any export.

Targets: export_rows_per_s >= 100,000 and export_rss_growth_mb <= 100, for each format.

Run: python -m bench.exports  [--rows 1000000 | --quick]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pyarrow.parquet as pq
import requests

from bench.harness import (
    free_port,
    log,
    running,
    scratch_environment,
    signed_in,
    wait_until_up,
)

TARGET_ROWS_PER_S = 100_000
TARGET_RSS_GROWTH_MB = 100


def seed(database_url: str, rows: int) -> uuid.UUID:
    """`rows` views of one video in the (scratch database's one) admin's organisation; a
    tenth as many in another organisation."""
    with psycopg.connect(database_url) as conn:
        org_id, user_id = conn.execute(
            "SELECT org_id, id FROM users WHERE role = 'admin' ORDER BY created_at LIMIT 1"
        ).fetchone() or (None, None)
        other_org = uuid.uuid4()
        conn.execute(
            "INSERT INTO organisations (id, name, slug) VALUES (%s, 'Other', %s)",
            (other_org, f"other-{other_org.hex[:8]}"),
        )
        other_user = conn.execute(
            "INSERT INTO users (id, org_id, email, display_name, handle, role) "
            "VALUES (gen_random_uuid(), %s, %s, 'Other', 'other', 'rep') RETURNING id",
            (other_org, f"other-{other_org.hex[:8]}@example.com"),
        ).fetchone()
        assert other_user is not None
        for org, user, count in ((org_id, user_id, rows), (other_org, other_user[0], rows // 10)):
            video = conn.execute(
                "INSERT INTO videos (id, org_id, owner_id, title, status, duration_ms) "
                "VALUES (gen_random_uuid(), %s, %s, 'Pricing objection', 'playable', 60000) "
                "RETURNING id",
                (org, user),
            ).fetchone()
            assert video is not None
            conn.execute(
                "INSERT INTO views (id, org_id, video_id, user_id, session_id, end_ms, played, "
                "played_ms, position_ms, reports, started_at, last_reported_at) "
                "SELECT gen_random_uuid(), %(org)s, %(video)s, %(user)s, gen_random_uuid(), "
                "60000, int4multirange(int4range(0, g %% 60000 + 1)), g %% 60000 + 1, "
                "g %% 60000 + 1, 1 + g %% 7, now() - interval '1 day', now() "
                "FROM generate_series(1, %(rows)s) AS g",
                {"org": org, "video": video[0], "user": user, "rows": count},
            )
        conn.execute("ANALYZE views")
    assert isinstance(org_id, uuid.UUID)
    return org_id


def _web_processes() -> list[psutil.Process]:
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "gunicorn" in child.cmdline():
                found.append(child)
        except psutil.Error:
            pass
    return found


def _rss(processes: list[psutil.Process]) -> int:
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total


def _count_rows(path: Path, fmt: str) -> int:
    if fmt == "parquet":
        return int(pq.ParquetFile(path).metadata.num_rows)
    with path.open(newline="", encoding="utf-8") as handle:
        return sum(1 for _ in csv.reader(handle)) - 1


def export_once(
    base: str, headers: dict[str, str], fmt: str, workdir: Path, cursor: str | None = None
) -> dict[str, Any]:
    """Stream one export to a file, sampling the server's RSS; its figures and next cursor."""
    processes = _web_processes()
    before = _rss(processes)
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss(processes))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    path = workdir / f"views.{fmt}"
    params = {"format": fmt, **({"cursor": cursor} if cursor else {})}
    started = time.perf_counter()
    size = 0
    with requests.get(
        f"{base}/api/v1/exports/views", params=params, headers=headers, stream=True, timeout=600
    ) as response:
        response.raise_for_status()
        next_cursor = response.headers["X-Next-Cursor"]
        with path.open("wb") as out:
            for chunk in response.iter_content(256 * 1024):
                out.write(chunk)
                size += len(chunk)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    rows = _count_rows(path, fmt)
    path.unlink()
    return {
        "rows": rows,
        "bytes": size,
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds) if seconds else 0,
        "rss_growth_mb": round(max(0, peak[0] - before) / 2**20, 1),
        "next_cursor": next_cursor,
    }


def run(rows: int) -> dict[str, Any]:
    figures: dict[str, Any] = {"benchmark": "exports", "rows": rows}
    workdir = Path(tempfile.mkdtemp(prefix="fieldcast-bench-exports-"))
    with scratch_environment() as env:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with running(
            env, [["web", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "2"]]
        ):
            wait_until_up(base)
            admin = signed_in(env, base)
            log(f"seeding {rows} views ...")
            started = time.perf_counter()
            org_id = seed(env["DATABASE_URL"], rows)
            log(f"seeded in {time.perf_counter() - started:.1f} s")
            for fmt in ("csv", "parquet"):
                # Warm up: the pools, the allocator, pyarrow's first use.
                requests.get(
                    f"{base}/api/v1/exports/people",
                    params={"format": fmt},
                    headers=admin.headers,
                    timeout=60,
                ).raise_for_status()
                log(f"exporting {rows} views as {fmt} ...")
                full = export_once(base, admin.headers, fmt, workdir)
                log(json.dumps({fmt: full}))
                if full["rows"] != rows:
                    raise RuntimeError(f"{fmt}: exported {full['rows']} rows, not {rows}")
                with psycopg.connect(env["DATABASE_URL"]) as conn:
                    changed = conn.execute(
                        "UPDATE views SET reports = reports + 1 WHERE id IN "
                        "(SELECT id FROM views WHERE org_id = %s ORDER BY random() LIMIT %s)",
                        (org_id, rows // 100),
                    ).rowcount
                delta = export_once(base, admin.headers, fmt, workdir, full.pop("next_cursor"))
                if delta["rows"] != changed:
                    raise RuntimeError(
                        f"{fmt}: {delta['rows']} rows from the cursor, not {changed}"
                    )
                full["delta_rows"] = delta["rows"]
                full["delta_s"] = delta["seconds"]
                again = export_once(base, admin.headers, fmt, workdir)
                full["again_rows_per_s"] = again["rows_per_s"]
                full["again_rss_growth_mb"] = again["rss_growth_mb"]
                figures[fmt] = full
    figures["export_rows_per_s"] = min(figures[f]["rows_per_s"] for f in ("csv", "parquet"))
    figures["export_rss_growth_mb"] = max(
        figures[f][name]
        for f in ("csv", "parquet")
        for name in ("rss_growth_mb", "again_rss_growth_mb")
    )
    figures["targets"] = {
        "export_rows_per_s": TARGET_ROWS_PER_S,
        "export_rss_growth_mb": TARGET_RSS_GROWTH_MB,
    }
    figures["met"] = (
        figures["export_rows_per_s"] >= TARGET_ROWS_PER_S
        and figures["export_rss_growth_mb"] <= TARGET_RSS_GROWTH_MB
    )
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.exports", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    args = parser.parse_args(argv)
    print(json.dumps(run(100_000 if args.quick else args.rows)), flush=True)


if __name__ == "__main__":
    main()
