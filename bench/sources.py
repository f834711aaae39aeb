"""Source clips encoded as phones record them, made once with ffmpeg and kept in a cache.

- `h264`: 1280x720 30 fps H.264 High profile at about 10 Mbit/s, 1 s GOP, AAC 48 kHz stereo
  (an Android phone's or an older iPhone's 720p setting).
- `hevc`: 1920x1080 30 fps HEVC Main 10 (yuv420p10le, `hvc1` tag) at about 8 Mbit/s, tagged
  BT.2020 HLG (`arib-std-b67`, matrix `bt2020nc`), AAC: an iPhone's default HDR recording.

The pictures are ffmpeg's `testsrc2` and the sound a sine; only the encoding follows a phone's.
The cache directory is FIELDCAST_BENCH_CACHE, else ~/.cache/fieldcast-bench; a clip is made
again only when its file is missing (the name carries every parameter).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from media.ffmpeg import ffmpeg_binary

LOOP_S = 10


@dataclass(frozen=True)
class SourceSpec:
    name: str
    description: str
    video_args: tuple[str, ...]
    size: str


SOURCES: dict[str, SourceSpec] = {
    "h264": SourceSpec(
        "h264",
        "1280x720 30 fps H.264 High 10 Mbit/s, AAC",
        (
            "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high",
            "-pix_fmt", "yuv420p", "-b:v", "10M", "-maxrate", "12M", "-bufsize", "20M",
            "-g", "30",
            "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709",
        ),
        "1280x720",
    ),
    "hevc": SourceSpec(
        "hevc",
        "1920x1080 30 fps HEVC Main 10 HLG (BT.2020) 8 Mbit/s, hvc1, AAC",
        (
            "-vf", "format=yuv420p10le",
            "-c:v", "libx265", "-preset", "ultrafast", "-profile:v", "main10",
            "-b:v", "8M", "-maxrate", "10M", "-bufsize", "16M",
            "-x265-params",
            "keyint=30:colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc:log-level=error",
            "-tag:v", "hvc1",
            "-color_primaries", "bt2020", "-color_trc", "arib-std-b67", "-colorspace", "bt2020nc",
        ),
        "1920x1080",
    ),
}  # fmt: skip


def cache_dir() -> Path:
    configured = os.environ.get("FIELDCAST_BENCH_CACHE")
    path = Path(configured) if configured else Path.home() / ".cache" / "fieldcast-bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _encode(spec: SourceSpec, duration: int, out: Path) -> None:
    subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={spec.size}:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", str(duration), *spec.video_args,
         "-c:a", "aac", "-b:a", "128k", "-ac", "2",
         "-movflags", "+faststart", "-shortest", str(out)],
        check=True,
    )  # fmt: skip


def source_clip(name: str, duration: int) -> Path:
    """The cached clip of `SOURCES[name]`, `duration` seconds long, made when missing.

    A long clip is one LOOP_S-second encode repeated by a stream copy: the same bitrate, GOP
    and stream layout as one long encode, made in a fraction of the time on a small machine.
    """
    spec = SOURCES[name]
    path = cache_dir() / f"{spec.name}-{spec.size}-{duration}s-v1.mp4"
    if path.is_file():
        return path
    partial = path.with_suffix(f".{os.getpid()}.part.mp4")
    if duration <= LOOP_S:
        _encode(spec, duration, partial)
    else:
        piece = source_clip(name, LOOP_S)
        subprocess.run(
            [ffmpeg_binary(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
             "-stream_loop", str(-(-duration // LOOP_S) - 1), "-i", str(piece),
             "-t", str(duration), "-map", "0", "-c", "copy",
             "-movflags", "+faststart", str(partial)],
            check=True,
        )  # fmt: skip
    partial.replace(path)
    return path


if __name__ == "__main__":
    import sys

    for argument in sys.argv[1:] or ["h264:180", "hevc:180"]:
        clip_name, _, seconds = argument.partition(":")
        print(source_clip(clip_name, int(seconds or 180)))
