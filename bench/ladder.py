"""Shared-decode HLS ladder against one ffmpeg process per rung.

What it measures: the wall-clock time to encode a 1920x1080 30 fps H.264/AAC source (encoded as
a phone records it: High profile, CABAC, ~16 Mbit/s) into the
rendition ladder that `media.renditions.ladder_for` picks (360p, 540p, 720p and 1080p), using the
project's real code path: `media.probe.probe`, `media.renditions.ladder_command` and
`media.ffmpeg.run`, with the default x264 preset from `fieldcast.settings.Settings`.

- shared: ONE ffmpeg process (`ladder_command(..., rungs)`) decodes the source once, applies the
  picture and loudness filters once, and `split`s the result to every rung.
- per-rung (baseline): one ffmpeg process per rung, run one after the other, each decoding and
  filtering the source itself, as PeerTube and MediaCMS do with one transcoding job per
  resolution. Each process is `ladder_command(..., [rung])`, so the x264 arguments, filters, audio
  and HLS segmenting are exactly those of the shared command.

The two variants run alternately (shared, per-rung, shared, per-rung, ...) and the fastest round
of each is kept. Every run's output is checked (a playlist per rung whose segments exist and
cover the source) so a failing command cannot be timed by mistake.

Fields: `shared_s` and `per_rung_s` (wall-clock seconds, best round), `speedup` =
per_rung_s / shared_s, `x_realtime` = source duration / shared_s, and `shared_cpu_s` /
`per_rung_cpu_s` (user + system CPU seconds of the ffmpeg processes in those rounds: the work
saved by decoding and filtering once, apart from how well each variant keeps the cores busy).
Target: `speedup` >= 1.3.

Run:  python -m bench.ladder            (60 s source, 2 rounds)
      python -m bench.ladder --quick    (2 s source, 1 round: a smoke test)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from fieldcast.settings import Settings
from media import ffmpeg
from media.probe import MediaInfo, probe
from media.renditions import Rung, ladder_command, ladder_for

TARGET_SPEEDUP = 1.3
WIDTH, HEIGHT, FPS = 1920, 1080, 30
FULL_DURATION_S = 60.0
QUICK_DURATION_S = 2.0


def log(message: str) -> None:
    print(f"[ladder] {message}", file=sys.stderr, flush=True)


def make_source(binary: str, path: Path, duration_s: float) -> None:
    """A 1080p30 H.264/AAC clip encoded as a phone records it: High profile with CABAC, no
    B-frames, about 16 Mbit/s (a moving pattern and a tone). Decoding it costs what decoding
    a phone's file costs, which a low-bitrate test encode would understate."""
    args = [
        binary, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={WIDTH}x{HEIGHT}:rate={FPS}",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", f"{duration_s:g}",
        "-c:v", "libx264", "-preset", "superfast", "-profile:v", "high", "-bf", "0",
        "-b:v", "16M", "-maxrate", "16M", "-bufsize", "32M", "-pix_fmt", "yuv420p",
        "-g", str(FPS),
        "-c:a", "aac", "-b:a", "128k", "-ac", "2",
        "-movflags", "+faststart",
        str(path),
    ]  # fmt: skip
    subprocess.run(args, check=True)


def _progress_logger(label: str) -> Callable[[int], None]:
    reported = [-1]

    def report(percent: int) -> None:
        step = percent // 25 * 25
        if step > reported[0]:
            reported[0] = step
            log(f"  {label}: {step}%")

    return report


def _encode(args: list[str], info: MediaInfo, label: str) -> None:
    ffmpeg.run(
        args,
        duration_s=info.duration_s,
        on_progress=_progress_logger(label),
        timeout_s=max(300.0, info.duration_s * 40),
    )


def check_output(out_dir: Path, rung: Rung, duration_s: float) -> None:
    """The rung's playlist exists, lists segments that exist, and covers the source."""
    rung_dir = out_dir / rung.name
    playlist = rung_dir / "index.m3u8"
    if not playlist.is_file():
        raise RuntimeError(f"{playlist} is missing")
    lines = playlist.read_text().splitlines()
    segments = [line for line in lines if line and not line.startswith("#")]
    total = sum(
        float(line.split(":", 1)[1].split(",")[0]) for line in lines if line.startswith("#EXTINF:")
    )
    if not segments or "#EXT-X-ENDLIST" not in lines:
        raise RuntimeError(f"{playlist} lists no segments or is unfinished")
    # With several variants ffmpeg names the init segment init_<n>.mp4: follow the playlist.
    maps = [line.split('URI="', 1)[1].split('"')[0] for line in lines if 'MAP:URI="' in line]
    if len(maps) != 1:
        raise RuntimeError(f"{playlist} has no fMP4 initialization segment")
    missing = [name for name in [*maps, *segments] if not (rung_dir / name).is_file()]
    if missing:
        raise RuntimeError(f"{rung_dir}: missing {missing[:3]}")
    if abs(total - duration_s) > 1.0:
        raise RuntimeError(f"{playlist} covers {total:.2f}s of a {duration_s:.2f}s source")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_shared(
    binary: str, source: Path, info: MediaInfo, rungs: Sequence[Rung], work: Path, preset: str
) -> tuple[float, float]:
    """Wall-clock and CPU seconds of the single shared-decode process."""
    out = work / "shared"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    args = ladder_command(binary, source, out, info, rungs, preset=preset)
    cpu, start = _children_cpu_s(), time.perf_counter()
    _encode(args, info, "shared")
    elapsed, cpu = time.perf_counter() - start, _children_cpu_s() - cpu
    if not (out / "master.m3u8").is_file():
        raise RuntimeError("shared: master.m3u8 is missing")
    for rung in rungs:
        check_output(out, rung, info.duration_s)
    return elapsed, cpu


def run_per_rung(
    binary: str, source: Path, info: MediaInfo, rungs: Sequence[Rung], work: Path, preset: str
) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one process per rung, run one after the other."""
    root = work / "per_rung"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    commands = []
    for rung in rungs:
        out = root / rung.name
        out.mkdir()
        commands.append(
            (rung, out, ladder_command(binary, source, out, info, [rung], preset=preset))
        )
    cpu, start = _children_cpu_s(), time.perf_counter()
    for rung, _, args in commands:
        _encode(args, info, f"per-rung {rung.name}")
    elapsed, cpu = time.perf_counter() - start, _children_cpu_s() - cpu
    for rung, out, _ in commands:
        check_output(out, rung, info.duration_s)
    return elapsed, cpu


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ladder", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="2 s source, 1 round (smoke test)")
    parser.add_argument("--duration", type=float, help="source duration in seconds")
    parser.add_argument("--rounds", type=int, help="alternating rounds of each variant")
    options = parser.parse_args(argv)
    duration = options.duration or (QUICK_DURATION_S if options.quick else FULL_DURATION_S)
    rounds = options.rounds or (1 if options.quick else 2)
    preset = Settings.media_preset
    binary = ffmpeg.ffmpeg_binary()

    with tempfile.TemporaryDirectory(prefix="bench-ladder-") as tmp:
        work = Path(tmp)
        source = work / "source.mp4"
        log(f"generating a {WIDTH}x{HEIGHT} {FPS} fps {duration:g}s source with {binary}")
        start = time.perf_counter()
        make_source(binary, source, duration)
        log(f"source ready in {time.perf_counter() - start:.1f}s")
        info = probe(source)
        rungs = ladder_for(info.video)
        names = [rung.name for rung in rungs]
        log(f"rungs {names}, preset {preset}, {rounds} round(s), {os.cpu_count()} cores")

        shared_runs: list[tuple[float, float]] = []
        per_rung_runs: list[tuple[float, float]] = []
        for index in range(1, rounds + 1):
            shared_runs.append(run_shared(binary, source, info, rungs, work, preset))
            wall, cpu = shared_runs[-1]
            log(f"round {index}: shared {wall:.2f}s (cpu {cpu:.2f}s)")
            per_rung_runs.append(run_per_rung(binary, source, info, rungs, work, preset))
            wall, cpu = per_rung_runs[-1]
            log(f"round {index}: per-rung {wall:.2f}s (cpu {cpu:.2f}s)")

    # The fastest round of each variant, with the CPU time of that same round.
    shared_s, shared_cpu_s = min(shared_runs)
    per_rung_s, per_rung_cpu_s = min(per_rung_runs)
    result = {
        "benchmark": "ladder",
        "source": f"{WIDTH}x{HEIGHT} {FPS}fps {duration:g}s",
        "rungs": names,
        "preset": preset,
        "rounds": rounds,
        "shared_s": round(shared_s, 2),
        "per_rung_s": round(per_rung_s, 2),
        "speedup": round(per_rung_s / shared_s, 3),
        "x_realtime": round(info.duration_s / shared_s, 3),
        "shared_cpu_s": round(shared_cpu_s, 2),
        "per_rung_cpu_s": round(per_rung_cpu_s, 2),
        "target_speedup": TARGET_SPEEDUP,
        "cores": os.cpu_count(),
    }
    log(
        f"shared {shared_s:.2f}s, per-rung {per_rung_s:.2f}s, "
        f"speedup {result['speedup']} (target {TARGET_SPEEDUP})"
    )
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
