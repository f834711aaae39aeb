"""Playback on S3 through a viewer's grant: what the API's redirect costs a segment fetch.

A playback URL carries the viewer's grant and points at the API, which checks it (the
signature, and whether the viewer may still see the video, remembered PLAYBACK_REVOCATION_S)
and answers 302 to an S3 URL presigned for that fetch. Before grants, the playlist held the S3
presigned URLs themselves, fetched straight from storage. This measures the difference.

What runs: the real API (`fieldcast web`, gunicorn, one worker) twice, with the default
PLAYBACK_REVOCATION_S (30) and with 0 (the access check on every fetch), on a scratch
PostgreSQL database and a private Redis, with S3 storage on moto's standalone server (its own
process, loopback). A video is seeded with a media playlist of `--segments` segments of
256 KiB (random bytes: the bytes do not matter, their size does). One keep-alive HTTP client
per path fetches each segment in turn, the paths interleaved segment by segment.

Figures (one JSON line on stdout, progress on stderr), milliseconds, p50 and p95:

- `direct_*`: GET of an S3 presigned URL (the baseline: what a segment fetch cost before).
- `via_api_*`: GET of the playlist's URL through the API, following its 302 to S3.
- `redirect_*`: the API's 302 alone (cached access decision).
- `redirect_uncached_*`: the API's 302 alone with PLAYBACK_REVOCATION_S=0.
- `added_p50_ms`: via_api_p50_ms - direct_p50_ms, what a player pays per segment.

No target: a segment lasts two seconds, so a few milliseconds per fetch is what to look for.

Run: python -m bench.playback  [--segments 300 | --quick]
(--quick: 20 segments, a smoke test, not a measurement)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests

from bench.harness import free_port, log, running, scratch_environment, signed_in, wait_until_up

SEGMENT_BYTES = 256 * 1024
AWS = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's standalone S3 server, its own process, on a free loopback port."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, **AWS},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(endpoint, timeout=2)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    raise RuntimeError("moto did not come up") from None
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


def seed(env: dict[str, str], owner_id: uuid.UUID, segments: int) -> tuple[uuid.UUID, list[str]]:
    """A ready video of the owner with one HLS rendition of `segments` segments; returns its id
    and its segments' storage keys."""
    from fieldcast.db import Database
    from fieldcast.models.accounts import User
    from fieldcast.models.videos import Rendition, RenditionKind, Video, VideoStatus
    from fieldcast.settings import normalise_database_url
    from media.storage import storage_from_url

    storage = storage_from_url(env["STORAGE_URL"], s3_endpoint_url=env["S3_ENDPOINT_URL"])
    database = Database(normalise_database_url(env["DATABASE_URL"]), pool_size=1)
    try:
        with database.unit_of_work() as session:
            owner = session.get_one(User, owner_id)
            video = Video(
                org_id=owner.org_id,
                owner_id=owner.id,
                title="Benchmark",
                status=VideoStatus.READY,
                progress=100,
                source_version=1,
                duration_ms=segments * 2000,
            )
            session.add(video)
            session.flush()
            prefix = f"{video.media_prefix}/first"
            lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:2"]
            keys = []
            for index in range(segments):
                key = f"{prefix}/seg-{index:05d}.m4s"
                storage.put_bytes(key, os.urandom(SEGMENT_BYTES))
                keys.append(key)
                lines += ["#EXTINF:2.000000,", f"seg-{index:05d}.m4s"]
            lines.append("#EXT-X-ENDLIST")
            storage.put_bytes(f"{prefix}/index.m3u8", "\n".join(lines).encode() + b"\n")
            session.add(
                Rendition(
                    org_id=video.org_id,
                    video_id=video.id,
                    name="first",
                    kind=RenditionKind.HLS,
                    source_version=1,
                    storage_key=f"{prefix}/index.m3u8",
                )
            )
            return video.id, keys
    finally:
        database.dispose()


def timed(session: requests.Session, url: str, *, follow: bool = True) -> float:
    started = time.perf_counter()
    response = session.get(url, allow_redirects=follow, timeout=30)
    response.content  # noqa: B018 - the body is part of the fetch
    elapsed = (time.perf_counter() - started) * 1000
    expected = 200 if follow else 302
    if response.status_code != expected:
        raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")
    return elapsed


def percentiles(name: str, samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {f"{name}_p50_ms": round(statistics.median(ordered), 2), f"{name}_p95_ms": round(p95, 2)}


def segment_urls(base: str, headers: dict[str, str], video_id: uuid.UUID) -> list[str]:
    body = requests.get(f"{base}/api/v1/videos/{video_id}", headers=headers, timeout=30).json()
    playlist = requests.get(body["playback"]["hls_url"], timeout=30)
    playlist.raise_for_status()
    return [line for line in playlist.text.splitlines() if line and not line.startswith("#")]


def run(segments: int) -> dict[str, Any]:
    import boto3

    from media.storage import storage_from_url

    bucket = f"fieldcast-bench-{uuid.uuid4().hex[:8]}"
    with moto_server() as endpoint:
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=AWS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS["AWS_SECRET_ACCESS_KEY"],
        ).create_bucket(Bucket=bucket)
        storage_url = f"s3://{bucket}/media/"
        cached_port, uncached_port = free_port(), free_port()
        with scratch_environment(**AWS, STORAGE_URL=storage_url, S3_ENDPOINT_URL=endpoint) as env:
            os.environ.update(AWS)  # for the seeding and the baseline's presigning here
            cached_env = {**env, "PUBLIC_BASE_URL": f"http://127.0.0.1:{cached_port}"}
            uncached_env = {
                **env,
                "PUBLIC_BASE_URL": f"http://127.0.0.1:{uncached_port}",
                "PLAYBACK_REVOCATION_S": "0",
            }
            web = ["web", "--workers", "1", "--bind"]
            with (
                running(cached_env, [[*web, f"127.0.0.1:{cached_port}"]]),
                running(uncached_env, [[*web, f"127.0.0.1:{uncached_port}"]]),
            ):
                cached_base = f"http://127.0.0.1:{cached_port}"
                uncached_base = f"http://127.0.0.1:{uncached_port}"
                wait_until_up(cached_base)
                wait_until_up(uncached_base)
                client = signed_in(env, cached_base)
                owner_id = uuid.UUID(client.get("/api/v1/me")["id"])
                log(f"seeding {segments} segments of {SEGMENT_BYTES // 1024} KiB on S3 (moto)")
                video_id, keys = seed(env, owner_id, segments)
                cached_urls = segment_urls(cached_base, client.headers, video_id)
                uncached_urls = segment_urls(uncached_base, client.headers, video_id)
                storage = storage_from_url(storage_url, s3_endpoint_url=endpoint)

                samples: dict[str, list[float]] = {
                    "direct": [],
                    "via_api": [],
                    "redirect": [],
                    "redirect_uncached": [],
                }
                paths = {name: requests.Session() for name in samples}
                # Warm every connection (and the cached access decision) once.
                timed(paths["via_api"], cached_urls[0])
                timed(paths["redirect"], cached_urls[0], follow=False)
                timed(paths["redirect_uncached"], uncached_urls[0], follow=False)
                timed(paths["direct"], str(storage.presigned_url(keys[0], expires_in=900)))
                log(f"fetching {segments} segments on each path")
                for index, key in enumerate(keys):
                    direct = storage.presigned_url(key, expires_in=900)
                    samples["direct"].append(timed(paths["direct"], str(direct)))
                    samples["via_api"].append(timed(paths["via_api"], cached_urls[index]))
                    samples["redirect"].append(
                        timed(paths["redirect"], cached_urls[index], follow=False)
                    )
                    samples["redirect_uncached"].append(
                        timed(paths["redirect_uncached"], uncached_urls[index], follow=False)
                    )
    figures: dict[str, Any] = {
        "benchmark": "playback",
        "segments": segments,
        "segment_kb": SEGMENT_BYTES // 1024,
    }
    for name, values in samples.items():
        figures.update(percentiles(name, values))
    figures["added_p50_ms"] = round(figures["via_api_p50_ms"] - figures["direct_p50_ms"], 2)
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.playback", description=__doc__)
    parser.add_argument("--segments", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="20 segments")
    args = parser.parse_args(argv)
    print(json.dumps(run(20 if args.quick else args.segments)), flush=True)


if __name__ == "__main__":
    main()
