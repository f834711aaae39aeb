"""Posters and scrubbing storyboards: the ffmpeg command lines, and small runners for them.

The commands are built by pure functions, like `media.renditions`, and go through the same
`picture_filters`, so phone video is upright and HDR is tone-mapped exactly as in the
renditions, only to JPEG's colour (BT.601 YCbCr at full range, what every JPEG decoder assumes)
rather than the videos' BT.709 at limited range. ffmpeg turns the picture upright while decoding
(display-matrix autorotation), so every size here is the display size: a portrait video gets a
portrait poster and portrait tiles.

Poster at playable (`make_early_poster`): the key frames of the video's first seconds, decoded
alone and scored, the best kept. Poster when the ladder is made (`make_poster`): a few
candidate moments are tried in order and the first one that is neither near black nor flat is
kept (clips often open on a black frame or a lens cap), else the best one; when none yields a
picture (a clip of a single frame, or frames seconds apart), the first picture of the video.
Storyboard: one sprite of tiles, one every `interval_s` seconds, and a WebVTT track whose
cues point into it with `#xywh=`; players show those tiles while the author scrubs.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import av

from media.ffmpeg import FFmpegFailed, run
from media.probe import MediaInfo, VideoInfo
from media.renditions import (
    JPEG,
    _even,
    colour_filters,
    output_fps,
    output_size,
    picture_filters,
)

POSTER_LONG_SIDE = 1280
# Tried in this order: a third of the way in is usually past intros and fade-ins.
POSTER_FRACTIONS = (1 / 3, 1 / 2, 1 / 5, 2 / 3)
POSTER_WINDOW_S = 1.0  # the `thumbnail` filter picks the most typical frame of this window
POSTER_TIMEOUT_S = 60.0  # per candidate; a seek plus one second of decoding
MIN_MEAN_LUMA = 0.1  # below this (of full range) a poster looks black
MIN_LUMA_STDEV = 0.02  # below this the picture is one flat colour
SHARPNESS_WEIGHT = 4.0
POSTER_QUALITY = 3  # mjpeg qscale: 2 (best) .. 31
# The poster made with the first playable rendition: from the key frames of the first seconds.
EARLY_POSTER_WINDOW_S = 10.0
EARLY_POSTER_FRAMES = 12

MAX_TILES = 100
TILE_SHORT_SIDE = 90
MAX_COLUMNS = 10
MAX_SPRITE_SIDE = 4096  # keeps the sprite a modest download that every browser decodes
TILE_QUALITY = 5
STORYBOARD_TIMEOUT_BASE_S = 60.0
STORYBOARD_TIMEOUT_PER_SECOND = 2.0  # the whole source is decoded once


@dataclass(frozen=True)
class PosterResult:
    width: int
    height: int
    at_s: float  # start of the window the poster frame was taken from
    luma: Luma | None = None  # of the picture kept


@dataclass(frozen=True)
class Luma:
    """Brightness of a picture, as fractions of the full 8-bit range."""

    mean: float
    stdev: float
    # Mean difference between neighbouring pixels: low when the picture is blurred.
    sharpness: float = 0.0

    @property
    def looks_good(self) -> bool:
        return self.mean >= MIN_MEAN_LUMA and self.stdev >= MIN_LUMA_STDEV

    @property
    def score(self) -> float:
        # Brightness counts up to mid grey, then contrast and sharpness decide (sharpness runs
        # about a tenth of contrast's values, so it is weighed up).
        return min(self.mean, 0.5) + self.stdev + SHARPNESS_WEIGHT * self.sharpness


@dataclass(frozen=True)
class StoryboardLayout:
    interval_s: int
    count: int
    tile_width: int
    tile_height: int
    columns: int
    rows: int

    @property
    def sprite_width(self) -> int:
        return self.columns * self.tile_width

    @property
    def sprite_height(self) -> int:
        return self.rows * self.tile_height


@dataclass(frozen=True)
class Storyboard:
    sprite_path: Path
    vtt_path: Path
    tile_width: int
    tile_height: int
    columns: int
    rows: int
    interval_s: int
    count: int


def _even_floor(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def poster_size(video: VideoInfo) -> tuple[int, int]:
    """Display size fitted within POSTER_LONG_SIDE on the long side; never upscaled."""
    width, height = video.display_width, video.display_height
    scale = min(1.0, POSTER_LONG_SIDE / max(width, height))
    return _even(width * scale), _even(height * scale)


def poster_times(duration_s: float, window_s: float = POSTER_WINDOW_S) -> list[float]:
    """Where each candidate window starts, in the order they are tried."""
    if duration_s < 2 * window_s:
        # Too short for distinct candidates: one window centred on the middle.
        return [round(max(0.0, (duration_s - window_s) / 2), 3)]
    latest = duration_s - window_s
    times: list[float] = []
    for fraction in POSTER_FRACTIONS:
        at = round(min(max(0.0, fraction * duration_s), latest), 3)
        if at not in times:
            times.append(at)
    return times


def poster_command(
    ffmpeg: str,
    source: Path,
    info: MediaInfo,
    at_s: float,
    out: Path,
    *,
    window_s: float | None = POSTER_WINDOW_S,
) -> list[str]:
    """One JPEG: the most typical frame of `window_s` seconds from `at_s`; with no window, the
    first picture from `at_s`."""
    video = info.video
    width, height = poster_size(video)
    frames = round(output_fps(video) * window_s) if window_s else 0
    filters = [
        # Shrinking first keeps tone mapping cheap on 4K sources.
        f"scale={width}:{height}:flags=bicubic",
        # The first picture needs no constant rate, and the rate filter drops a sole picture
        # that carries no duration (a one-picture browser recording).
        *(picture_filters(video, JPEG) if window_s else colour_filters(video, JPEG)),
        # `thumbnail` compares two frames or more; a window holding fewer is taken as it is.
        *([f"thumbnail={frames}"] if frames >= 2 else []),
        # Full-range 8-bit 4:2:0: the JPEG layout every ffmpeg build and decoder accepts.
        "format=yuvj420p",
    ]
    window = ["-t", f"{window_s:.3f}"] if window_s else []
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-y",
        "-ss", f"{at_s:.3f}", *window, "-i", str(source),
        "-map", "0:v:0", "-vf", ",".join(filters),
        "-frames:v", "1", "-update", "1",
        "-f", "image2", "-c:v", "mjpeg", "-q:v", str(POSTER_QUALITY),
        str(out),
    ]  # fmt: skip


def measure_luma(image: Path) -> Luma:
    """Mean and spread of the luma of the first picture in `image`, sampled on a grid.
    Raises FFmpegFailed when the image cannot be decoded."""
    try:
        with av.open(str(image)) as container:
            frame = next(container.decode(video=0), None)
    except av.error.FFmpegError as exc:
        raise FFmpegFailed(0, f"{image.name} cannot be decoded: {exc}") from None
    if frame is None:
        raise FFmpegFailed(0, f"{image.name} holds no picture")
    if not frame.format.name.startswith(("yuv", "gray")):
        frame = frame.reformat(format="gray")
    plane = frame.planes[0]
    data = bytes(plane)
    # Every step-th pixel of every step-th row: about 200x200 samples whatever the size.
    step = max(1, max(plane.width, plane.height) // 200)
    samples = bytearray()
    neighbours = bytearray()  # the pixel right of each sample
    for row in range(0, plane.height, step):
        start = row * plane.line_size
        samples += data[start : start + plane.width - 1 : step]
        neighbours += data[start + 1 : start + plane.width : step]
    if not samples:
        return Luma(0.0, 0.0)
    mean = sum(samples) / len(samples)
    variance = sum((value - mean) ** 2 for value in samples) / len(samples)
    edges = sum(abs(a - b) for a, b in zip(samples, neighbours, strict=True)) / len(samples)
    return Luma(mean / 255, math.sqrt(variance) / 255, edges / 255)


def make_poster(
    ffmpeg: str,
    source: Path,
    info: MediaInfo,
    out: Path,
    *,
    timeout_s: float = POSTER_TIMEOUT_S,
) -> PosterResult:
    """Write the poster JPEG to `out`. Raises FFmpegFailed when no candidate yields a picture.

    `timeout_s` bounds each ffmpeg run; a TimeoutError is not retried at the next candidate.
    """
    width, height = poster_size(info.video)
    best: tuple[float, Path, float, Luma] | None = None  # score, file, at_s, luma
    failure: FFmpegFailed | None = None
    candidates: list[Path] = []
    # The first picture comes last: it always exists, however few frames the clip has.
    attempts: list[tuple[float, float | None]] = [
        (at_s, POSTER_WINDOW_S) for at_s in poster_times(info.duration_s)
    ]
    attempts.append((0.0, None))
    try:
        for index, (at_s, window_s) in enumerate(attempts):
            if window_s is None and best is not None:
                break
            candidate = out.with_name(f"{out.stem}.candidate-{index}{out.suffix or '.jpg'}")
            candidates.append(candidate)
            command = poster_command(ffmpeg, source, info, at_s, candidate, window_s=window_s)
            try:
                run(command, timeout_s=timeout_s)
            except FFmpegFailed as exc:
                failure = exc
                continue
            if not candidate.exists() or candidate.stat().st_size == 0:
                continue  # ffmpeg found no frame there and still exits 0
            try:
                luma = measure_luma(candidate)
            except FFmpegFailed as exc:
                failure = exc
                continue
            if luma.looks_good:
                best = (luma.score, candidate, at_s, luma)
                break
            if best is None or luma.score > best[0]:
                best = (luma.score, candidate, at_s, luma)
        if best is None:
            raise failure or FFmpegFailed(0, f"no picture could be taken from {source.name}")
        os.replace(best[1], out)
        return PosterResult(width=width, height=height, at_s=best[2], luma=best[3])
    finally:
        for candidate in candidates:
            candidate.unlink(missing_ok=True)


def keyframes_command(
    ffmpeg: str, source: Path, info: MediaInfo, out_pattern: Path, *, window_s: float
) -> list[str]:
    """The key frames of the first `window_s` seconds, at poster size and in JPEG colours, one
    JPEG each (`out_pattern` holds `%02d`). Only key frames are decoded (`-skip_frame nokey`),
    so this takes a fraction of a second even for 4K HDR: fast enough to run beside the first
    playable rendition."""
    width, height = poster_size(info.video)
    filters = [
        f"scale={width}:{height}:flags=bicubic",
        *colour_filters(info.video, JPEG),
        "format=yuvj420p",
    ]
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-y",
        "-skip_frame", "nokey", "-t", f"{window_s:.3f}", "-i", str(source),
        "-map", "0:v:0", "-vf", ",".join(filters), "-fps_mode", "passthrough",
        "-frames:v", str(EARLY_POSTER_FRAMES),
        "-f", "image2", "-c:v", "mjpeg", "-q:v", str(POSTER_QUALITY),
        str(out_pattern),
    ]  # fmt: skip


def make_early_poster(
    ffmpeg: str,
    source: Path,
    info: MediaInfo,
    out: Path,
    *,
    timeout_s: float = POSTER_TIMEOUT_S,
) -> PosterResult:
    """A poster made in the time the first playable rendition takes: the key frames of the
    first seconds, each scored by brightness, contrast and sharpness (`Luma.score`); the best
    one that looks good is kept. When none does (a clip that opens on black with few key
    frames), the candidates across the video (`make_poster`) are tried instead. Raises
    FFmpegFailed when no picture can be taken."""
    width, height = poster_size(info.video)
    window = min(max(info.duration_s, 0.1), EARLY_POSTER_WINDOW_S)
    pattern = out.with_name(f"{out.stem}.key-%02d.jpg")
    try:
        run(keyframes_command(ffmpeg, source, info, pattern, window_s=window), timeout_s=timeout_s)
        frames = sorted(out.parent.glob(f"{out.stem}.key-*.jpg"))
        scored: list[tuple[float, int, Path, Luma]] = []
        for index, frame in enumerate(frames):
            try:
                luma = measure_luma(frame)
            except FFmpegFailed:
                continue
            if luma.looks_good:
                scored.append((luma.score, -index, frame, luma))
        if scored:
            _, index, best, luma = max(scored)
            os.replace(best, out)
            # Key frames sit about a GOP apart; the index places it roughly, for the logs.
            return PosterResult(width, height, at_s=-index * window / len(frames), luma=luma)
    finally:
        for frame in out.parent.glob(f"{out.stem}.key-*.jpg"):
            frame.unlink(missing_ok=True)
    return make_poster(ffmpeg, source, info, out, timeout_s=timeout_s)


def _grid(count: int, tile_width: int, tile_height: int) -> tuple[int, int] | None:
    """Columns and rows for `count` tiles within MAX_SPRITE_SIDE, as near MAX_COLUMNS as fits."""
    widest = min(count, MAX_SPRITE_SIDE // tile_width)
    for columns in sorted(range(1, widest + 1), key=lambda c: abs(c - MAX_COLUMNS)):
        rows = math.ceil(count / columns)
        if rows * tile_height <= MAX_SPRITE_SIDE:
            return columns, rows
    return None


def storyboard_layout(duration_s: float, video: VideoInfo) -> StoryboardLayout:
    """One tile per interval (whole seconds, at most MAX_TILES tiles), oriented like the video."""
    duration_ms = max(1, round(duration_s * 1000))
    interval_s = max(1, math.ceil(duration_ms / (MAX_TILES * 1000)))
    # Tile k shows the picture at k * interval_s; ffmpeg makes one for every such moment.
    count = max(1, math.ceil(duration_ms / (interval_s * 1000)))
    short_side = TILE_SHORT_SIDE
    while True:
        tile_width, tile_height = output_size(video, short_side)
        grid = _grid(count, tile_width, tile_height)
        if grid is not None or short_side <= 2:
            break
        # Only extreme aspect ratios get here: smaller tiles until the sprite fits.
        short_side = _even_floor(short_side * 3 / 4)
    columns, rows = grid or (1, count)
    return StoryboardLayout(interval_s, count, tile_width, tile_height, columns, rows)


def storyboard_command(
    ffmpeg: str, source: Path, info: MediaInfo, layout: StoryboardLayout, out: Path
) -> list[str]:
    """One ffmpeg run: a frame every interval, scaled to a tile, tiled into one JPEG."""
    # The storyboard samples at its own rate; the constant-rate step would only add duplicates.
    picture = [f for f in picture_filters(info.video, JPEG) if not f.startswith("fps=")]
    filters = [
        # round=up: tile k is the frame shown at k * interval, where its cue starts.
        f"fps=1/{layout.interval_s}:round=up",
        f"scale={layout.tile_width}:{layout.tile_height}:flags=bicubic",
        *picture,
        f"tile={layout.columns}x{layout.rows}",
        "format=yuvj420p",
    ]
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-y", "-i", str(source),
        "-map", "0:v:0", "-vf", ",".join(filters),
        "-frames:v", "1", "-update", "1",
        "-f", "image2", "-c:v", "mjpeg", "-q:v", str(TILE_QUALITY),
        str(out),
    ]  # fmt: skip


def _vtt_time(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def storyboard_vtt(layout: StoryboardLayout, duration_s: float, sprite_uri: str) -> str:
    """The WebVTT thumbnail track. `sprite_uri` is relative; the API signs it when serving."""
    duration_ms = max(1, round(duration_s * 1000))
    step_ms = layout.interval_s * 1000
    lines = ["WEBVTT", ""]
    for index in range(layout.count):
        start = index * step_ms
        end = duration_ms if index == layout.count - 1 else min(start + step_ms, duration_ms)
        x = index % layout.columns * layout.tile_width
        y = index // layout.columns * layout.tile_height
        lines += [
            f"{_vtt_time(start)} --> {_vtt_time(end)}",
            f"{sprite_uri}#xywh={x},{y},{layout.tile_width},{layout.tile_height}",
            "",
        ]
    return "\n".join(lines)


def make_storyboard(
    ffmpeg: str,
    source: Path,
    info: MediaInfo,
    out_dir: Path,
    *,
    sprite_name: str = "sprite.jpg",
    vtt_name: str = "storyboard.vtt",
    timeout_s: float | None = None,
) -> Storyboard:
    """Write the sprite and its WebVTT track into `out_dir`. Raises FFmpegFailed."""
    layout = storyboard_layout(info.duration_s, info.video)
    sprite_path = out_dir / sprite_name
    vtt_path = out_dir / vtt_name
    if timeout_s is None:
        timeout_s = STORYBOARD_TIMEOUT_BASE_S + STORYBOARD_TIMEOUT_PER_SECOND * info.duration_s
    command = storyboard_command(ffmpeg, source, info, layout, sprite_path)
    # No progress to report: ffmpeg emits the sprite, its only output frame, at the very end.
    run(command, timeout_s=timeout_s)
    if not sprite_path.exists():
        raise FFmpegFailed(0, f"no storyboard picture could be taken from {source.name}")
    vtt_path.write_text(storyboard_vtt(layout, info.duration_s, sprite_name), encoding="utf-8")
    return Storyboard(
        sprite_path=sprite_path,
        vtt_path=vtt_path,
        tile_width=layout.tile_width,
        tile_height=layout.tile_height,
        columns=layout.columns,
        rows=layout.rows,
        interval_s=layout.interval_s,
        count=layout.count,
    )
