"""Time to playable: from the last upload byte to a video peers can play.

A 3-minute 1280x720 30 fps H.264/AAC clip (as a phone records it) is uploaded with the official
tus client to the real API (gunicorn), processed by real RQ workers (`fieldcast worker`, split
by latency class as `fieldcast serve` runs them), and the video is polled through the API.

- `ttp_s`: last byte stored (the final PATCH answered) until `status` is `playable`.
- `ladder_s`: the same pipeline waiting for the full ladder instead (until `ready`: poster,
  every rung, offline MP4, storyboard), measured in the same run.
- `ratio`: ladder_s / ttp_s. Target: ttp_s <= 2 on this machine.

Run: python -m bench.time_to_playable  [--duration 180] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from tusclient.client import TusClient

from bench.harness import (
    Client,
    free_port,
    log,
    running,
    scratch_environment,
    signed_in,
    wait_until_up,
)
from media.ffmpeg import ffmpeg_binary


def make_clip(path: Path, duration: int) -> None:
    subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", str(duration), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-g", "60", "-c:a", "aac", "-b:a", "128k", "-shortest", str(path)],
        check=True,
    )  # fmt: skip


def wait_for(
    client: Client, video_id: str, statuses: set[str], timeout: float
) -> tuple[str, float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/api/v1/videos/{video_id}")["status"]
        if status in statuses:
            return status, time.monotonic()
        time.sleep(0.02)
    raise TimeoutError(f"video {video_id} never reached {statuses}")


def measure(client: Client, clip: Path, chunk: int) -> tuple[float, float]:
    video_id = client.post("/api/v1/videos", {"title": "Time to playable"})["id"]
    uploader = TusClient(client.base + "/api/v1/uploads", headers=client.headers).uploader(
        file_path=str(clip), chunk_size=chunk, metadata={"video_id": video_id}
    )
    uploader.upload()
    last_byte = time.monotonic()
    status, playable_at = wait_for(client, video_id, {"playable", "ready", "failed"}, 120)
    if status == "failed":
        raise RuntimeError(client.get(f"/api/v1/videos/{video_id}")["failure"])
    status, ready_at = wait_for(client, video_id, {"ready", "failed"}, 1800)
    if status == "failed":
        raise RuntimeError(client.get(f"/api/v1/videos/{video_id}")["failure"])
    video = client.get(f"/api/v1/videos/{video_id}")
    assert video["playback"]["hls_url"] and video["playback"]["mp4_url"]
    return playable_at - last_byte, ready_at - last_byte


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=180, help="clip length in seconds")
    parser.add_argument("--quick", action="store_true", help="a 20 s clip, for smoke tests")
    parser.add_argument("--runs", type=int, default=2, help="uploads measured (median kept)")
    args = parser.parse_args()
    duration = 20 if args.quick else args.duration
    runs = 1 if args.quick else args.runs

    with tempfile.TemporaryDirectory(prefix="fieldcast-ttp-") as tmp:
        clip = Path(tmp) / "clip.mp4"
        log(f"making a {duration}s 1280x720 30 fps H.264/AAC clip ...")
        make_clip(clip, duration)
        port = free_port()
        with scratch_environment() as env:
            commands = [
                ["web", "--bind", f"127.0.0.1:{port}", "--workers", "2"],
                ["worker", "--queue", "notify", "--queue", "media-fast", "--queue", "default"],
                ["worker", "--queue", "media", "--queue", "media-fast"],
            ]
            with running(env, commands):
                base = f"http://127.0.0.1:{port}"
                wait_until_up(base)
                client = signed_in(env, base)
                results = []
                for run in range(runs):
                    ttp, ladder = measure(client, clip, 8 * 1024 * 1024)
                    log(f"run {run + 1}: playable after {ttp:.2f}s, ready after {ladder:.2f}s")
                    results.append((ttp, ladder))
    results.sort()
    ttp_s, ladder_s = results[len(results) // 2]
    print(
        json.dumps(
            {
                "benchmark": "time_to_playable",
                "source": f"1280x720 30fps H.264/AAC {duration}s",
                "runs": runs,
                "ttp_s": round(ttp_s, 2),
                "ladder_s": round(ladder_s, 2),
                "ratio": round(ladder_s / ttp_s, 1),
                "target_ttp_s": 2,
                "cores": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
