"""Time to playable: from the upload's final request to a video peers can play, against
transcode-first (one 720p H.264 encode before anything plays), timed in the same run.

Sources are encoded as phones record (bench.sources, cached): a 3-minute 720p30 H.264 High
clip at about 10 Mbit/s, and a 3-minute 1080p HEVC Main 10 HLG clip (hvc1, BT.2020) at about
8 Mbit/s, the iPhone default. Each is uploaded through the real API (gunicorn) with tus in
8 MiB chunks and processed by real RQ workers (`fieldcast worker`), on local storage and on S3
(moto's server on loopback): the cases `h264_local`, `h264_s3`, `hevc_local`, `hevc_s3`.

- `ttp_s`: from the moment the client starts sending the upload's last tus PATCH (so the
  upload's finishing work counts) until the API says `playable`.
- `transcode_first_s`: what PeerTube does by default before anything plays: that same final
  request (its time measured in this run), plus one ffmpeg run on the same source making a
  720p H.264 MP4 with libx264 `veryfast`, CRF 23, AAC 128 kbit/s, timed here. Storing its
  output is not counted, in the baseline's favour.
- `ratio`: transcode_first_s / ttp_s. The top-level `ttp_s` and `ratio` repeat `h264_local`.
- HEVC cases also report `ttp_hevc_s`: until the API's `playback.playable_for` names `hevc`
  (the HEVC copy plays for the clients that decode HEVC, HDR kept), and `ttp_h264_s`: until
  the video is `playable` for every client (its H.264 SDR rendition is made; the same moment as
  their `ttp_s`), each with its ratio against transcode-first (`ratio_hevc`, `ratio_h264`).

The per-step breakdown of each first playable (the final request, dispatch to a worker, probe,
remux or first encode, storing, the playable commit, the client seeing it) is read from the
worker's log line and printed on stderr and under `breakdown` in the JSON line. The ladder
queue is not worked during the run, so every measurement has the machine to itself.

Run: python -m bench.time_to_playable  [--runs 3] [--cases h264_local,hevc_s3] [--quick]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from bench.harness import (
    Client,
    free_port,
    log,
    running,
    scratch_environment,
    signed_in,
    wait_until_up,
)
from bench.sources import SOURCES, source_clip
from media.ffmpeg import ffmpeg_binary
from media.processes import dies_with_this_process

CASES = ("h264_local", "h264_s3", "hevc_local", "hevc_s3")
TTP_FIGURES = ("ttp_hevc_s", "ttp_h264_s")
CHUNK = 8 * 1024 * 1024
FULL_S = 180
QUICK_S = 4
BUCKET = "fieldcast-bench"


def transcode_first(source: Path, out: Path) -> float:
    """Seconds for PeerTube's default transcode of `source`: one 720p H.264 rendition."""
    started = time.monotonic()
    subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
         "-i", str(source),
         "-vf", "scale=-2:720", "-pix_fmt", "yuv420p",
         "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
         "-c:a", "aac", "-b:a", "128k",
         "-movflags", "+faststart", str(out)],
        check=True,
    )  # fmt: skip
    return time.monotonic() - started


# -- The run's services ---------------------------------------------------------------------------


@contextmanager
def s3_server() -> Iterator[dict[str, str]]:
    """moto's S3 server on loopback, in a process of its own, with a bucket; the environment
    that points at it.

    Its own process, as S3 is a service of its own: inside this one, the server would share a
    lock with the client polling the API, and the product's S3 requests would wait on the
    measuring. It keeps objects in memory, as a store whose disks are not this machine's: by
    default moto spills every object over 5 MiB to a temporary file here, and assembling a
    multipart upload then costs this disk's writes of the whole file, which vary from day to
    day (the final request took 1.0 to 2.9 s for the same clip)."""
    import boto3

    credentials = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    os.environ.update(credentials)
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    # One line per S3 request: kept aside, shown if the server will not start.
    with tempfile.TemporaryFile() as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env={**os.environ, "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(4 * 1024**3)},
            stdout=output,
            stderr=subprocess.STDOUT,
            # Gone with this process, even killed: it holds every object in memory.
            preexec_fn=dies_with_this_process(signal.SIGTERM),
        )
        try:
            client = boto3.client("s3", endpoint_url=endpoint)
            deadline = time.monotonic() + 30
            while True:
                try:
                    client.create_bucket(Bucket=BUCKET)
                    break
                except Exception:
                    if time.monotonic() > deadline or server.poll() is not None:
                        output.seek(0)
                        log(output.read()[-2000:].decode(errors="replace"))
                        raise
                    time.sleep(0.2)
            yield {
                **credentials,
                "STORAGE_URL": f"s3://{BUCKET}/media",
                "S3_ENDPOINT_URL": endpoint,
            }
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


class WorkerLog:
    """A `fieldcast worker` whose JSON log lines are read: each first playable's step times."""

    def __init__(self, env: dict[str, str], queues: list[str]) -> None:
        args = [sys.executable, "-m", "fieldcast", "worker"]
        for name in queues:
            args += ["--queue", name]
        self.process = subprocess.Popen(
            args,
            env={**env, "LOG_LEVEL": "INFO", "LOG_JSON": "true"},
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            try:
                entry = json.loads(line)
            except ValueError:
                sys.stderr.write(line)
                continue
            if isinstance(entry, dict) and "step_started_at" in entry:
                self.lines.put(entry)
            elif isinstance(entry, dict) and entry.get("level") in {"warning", "error"}:
                sys.stderr.write(line)

    def playable_line(self, video_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                entry = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                break
            if entry.get("video_id") == video_id:
                return entry
        return {}

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


# -- One upload -----------------------------------------------------------------------------------


def _metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def upload_all_but_last(client: Client, clip: Path, video_id: str) -> tuple[str, int]:
    """A tus upload of `clip` with every chunk sent but the last; its URL and offset."""
    length = clip.stat().st_size
    headers = {**client.headers, "Tus-Resumable": "1.0.0"}
    created = requests.post(
        client.base + "/api/v1/uploads",
        headers={
            **headers,
            "Upload-Length": str(length),
            "Upload-Metadata": _metadata(video_id=video_id, filename=clip.name),
        },
        timeout=30,
    )
    created.raise_for_status()
    url = requests.compat.urljoin(client.base + "/", created.headers["Location"])
    last = ((length - 1) // CHUNK) * CHUNK
    offset = 0
    with clip.open("rb") as handle:
        while offset < last:
            offset = _patch(url, headers, offset, handle.read(CHUNK))
    return url, offset


def _patch(url: str, headers: dict[str, str], offset: int, data: bytes) -> int:
    response = requests.patch(
        url,
        data=data,
        headers={
            **headers,
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        },
        timeout=120,
    )
    response.raise_for_status()
    return int(response.headers["Upload-Offset"])


def wait_for_playable(
    client: Client, video_id: str, timeout: float, every: float = 0.02
) -> tuple[float | None, float]:
    """Polls the video until it is playable for every client: when (monotonic) it first played
    for HEVC clients, if it did before, and when it became `playable`."""
    deadline = time.monotonic() + timeout
    hevc_at: float | None = None
    while time.monotonic() < deadline:
        video = client.get(f"/api/v1/videos/{video_id}")
        now = time.monotonic()
        if video["status"] == "failed":
            raise RuntimeError(f"video {video_id} failed: {video.get('failure')}")
        if hevc_at is None and "hevc" in video.get("playback", {}).get("playable_for", []):
            hevc_at = now
        if video["status"] in {"playable", "ready"}:
            return hevc_at, now
        time.sleep(every)
    raise TimeoutError(f"video {video_id} never became playable")


def measure(client: Client, worker: WorkerLog | _MergedLog, clip: Path) -> dict[str, float]:
    """One upload's time to playable, and where it went."""
    video_id = client.post("/api/v1/videos", {"title": "Time to playable"})["id"]
    url, offset = upload_all_but_last(client, clip, video_id)
    with clip.open("rb") as handle:
        handle.seek(offset)
        last_chunk = handle.read()
    headers = {**client.headers, "Tus-Resumable": "1.0.0"}
    wall_start = time.time()
    start = time.monotonic()
    _patch(url, headers, offset, last_chunk)
    answered = time.monotonic()
    hevc_at, playable = wait_for_playable(client, video_id, 300)
    steps = worker.playable_line(video_id)
    result = {
        "ttp_s": playable - start,
        "final_request_s": answered - start,
    }
    if hevc_at is not None:
        result["ttp_hevc_s"] = hevc_at - start
        result["ttp_h264_s"] = playable - start
    if steps:
        started = steps["step_started_at"] - wall_start - (answered - start)
        result["dispatch_s"] = started
        parts = [k for k in steps if k.endswith("_s") and k not in {"ttp_s"}]
        for key in parts:
            result[key] = float(steps[key])
        worked = sum(float(steps[k]) for k in parts)
        result["client_sees_s"] = result["ttp_s"] - result["final_request_s"] - started - worked
    # Whatever the first step does after playable ends before the next upload starts: the
    # fast-start copy of a remuxed source (an HEVC source's step ends at playable).
    deadline = time.monotonic() + (120 if steps.get("first") == "remux" else 0)
    while time.monotonic() < deadline:
        video = client.get(f"/api/v1/videos/{video_id}")
        if video.get("playback", {}).get("mp4_url"):
            break
        time.sleep(0.1)
    return result


# -- The run --------------------------------------------------------------------------------------


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = [k for k in runs[0] if all(k in run for run in runs)]
    return {k: statistics.median(run[k] for run in runs) for k in keys}


def run_cases(
    cases: list[str], clips: dict[str, Path], runs: int, storage: str
) -> dict[str, list[dict[str, float]]]:
    wanted = [case for case in cases if case.endswith(f"_{storage}")]
    if not wanted:
        return {}
    results: dict[str, list[dict[str, float]]] = {}
    with (
        s3_server() if storage == "s3" else _nothing() as extra,
        scratch_environment(**extra) as env,
    ):
        port = free_port()
        # The upload URLs the API hands out are built from its public address.
        env = {**env, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
        web = [["web", "--bind", f"127.0.0.1:{port}", "--workers", "2"]]
        # As `fieldcast serve` runs them, less the ladder queue: ladders wait until the run ends.
        with running(env, web):
            fast = WorkerLog(env, ["notify", "media-fast", "default"])
            spare = WorkerLog(env, ["media-fast"])
            try:
                base = f"http://127.0.0.1:{port}"
                wait_until_up(base)
                client = signed_in(env, base)
                for case in wanted:
                    clip = clips[case.split("_")[0]]
                    for run in range(runs):
                        result = _either(fast, spare, client, clip)
                        log(f"{case} run {run + 1}: " + _describe(result))
                        results.setdefault(case, []).append(result)
            finally:
                fast.stop()
                spare.stop()
    return results


def _either(fast: WorkerLog, spare: WorkerLog, client: Client, clip: Path) -> dict[str, float]:
    """Measure with both media-fast workers' logs read (either may take the job)."""
    merged = _MergedLog(fast, spare)
    return measure(client, merged, clip)


class _MergedLog:
    def __init__(self, *logs: WorkerLog) -> None:
        self.logs = logs

    def playable_line(self, video_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for worker in self.logs:
                found = worker.playable_line(video_id, timeout=0.05)
                if found:
                    return found
        return {}


@contextmanager
def _nothing() -> Iterator[dict[str, str]]:
    yield {}


def _describe(result: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in result.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=FULL_S, help="clip length in seconds")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_S} s clips, one run")
    parser.add_argument("--runs", type=int, default=3, help="uploads per case (median kept)")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated cases")
    args = parser.parse_args()
    duration = QUICK_S if args.quick else args.duration
    runs = 1 if args.quick else args.runs
    cases = [case for case in args.cases.split(",") if case]
    unknown = set(cases) - set(CASES)
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")

    sources = sorted({case.split("_")[0] for case in cases})
    clips = {}
    for name in sources:
        log(f"source {name}: {SOURCES[name].description}, {duration}s ...")
        clips[name] = source_clip(name, duration)
    baseline: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="fieldcast-ttp-") as tmp:
        for name in sources:
            seconds = transcode_first(clips[name], Path(tmp) / f"{name}-720p.mp4")
            log(f"transcode-first 720p encode of {name}: {seconds:.2f}s")
            baseline[name] = seconds

    measured: dict[str, list[dict[str, float]]] = {}
    for storage in ("local", "s3"):
        measured.update(run_cases(cases, clips, runs, storage))

    report: dict[str, Any] = {}
    breakdown: dict[str, Any] = {}
    for case in cases:
        median = _median(measured[case])
        ttp = median["ttp_s"]
        first = baseline[case.split("_")[0]] + median["final_request_s"]
        report[case] = {
            "ttp_s": round(ttp, 3),
            "transcode_first_s": round(first, 2),
            "ratio": round(first / ttp, 1),
        }
        for codec in ("hevc", "h264"):
            if f"ttp_{codec}_s" in median:
                seconds = median[f"ttp_{codec}_s"]
                report[case][f"ttp_{codec}_s"] = round(seconds, 3)
                report[case][f"ratio_{codec}"] = round(first / seconds, 1)
        breakdown[case] = {
            k: round(v, 3) for k, v in median.items() if k not in {"ttp_s", *TTP_FIGURES}
        }
        log(f"{case}: " + _describe(median))
    headline = report.get("h264_local") or report[cases[0]]
    print(
        json.dumps(
            {
                "benchmark": "time_to_playable",
                "cases": report,
                "ttp_s": headline["ttp_s"],
                "ratio": headline["ratio"],
                "breakdown": breakdown,
                "sources": {name: SOURCES[name].description for name in sources},
                "duration_s": duration,
                "runs": runs,
                "cores": os.cpu_count(),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
