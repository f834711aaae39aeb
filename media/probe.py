"""Probing and validating uploaded media with PyAV.

`probe()` reads what the pipeline needs to plan renditions: codec, coded and display size
(after the display-matrix rotation phones write), frame rate and whether it varies, bit depth
and HDR transfer, audio, duration. Anything that is not a playable video raises `MediaRejected`
with a stable `code` and a sentence the author can read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

# AVColorTransferCharacteristic / AVColorPrimaries values (libavutil/pixfmt.h).
_TRANSFERS = {
    1: "bt709",
    13: "iec61966-2-1",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    18: "arib-std-b67",
}
_PRIMARIES = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020", 12: "smpte432"}
HDR_TRANSFERS = {"smpte2084", "arib-std-b67"}


class MediaRejected(Exception):
    """The file cannot become a video. `code` is stable; `detail` is for the author."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    width: int
    height: int
    rotation: int  # degrees clockwise the player must turn the picture: 0, 90, 180 or 270
    fps: float
    variable_frame_rate: bool
    pix_fmt: str
    bit_depth: int
    transfer: str | None
    primaries: str | None
    profile: str | None

    @property
    def display_width(self) -> int:
        return self.height if self.rotation in (90, 270) else self.width

    @property
    def display_height(self) -> int:
        return self.width if self.rotation in (90, 270) else self.height

    @property
    def is_hdr(self) -> bool:
        return self.transfer in HDR_TRANSFERS


@dataclass(frozen=True)
class AudioInfo:
    codec: str
    channels: int
    sample_rate: int


@dataclass(frozen=True)
class MediaInfo:
    container: str
    duration_s: float
    size_bytes: int
    video: VideoInfo
    audio: AudioInfo | None

    @property
    def is_h264_sdr_8bit(self) -> bool:
        """Can be remuxed for the first playable rendition, without re-encoding."""
        return (
            self.video.codec == "h264"
            and self.video.bit_depth == 8
            and not self.video.is_hdr
            and self.video.pix_fmt in {"yuv420p", "yuvj420p"}
        )


# What the pipeline can hand to players. A phone's H.264 file is remuxed as it is, so its picture
# must be one every phone decodes: H.264 level 5.2, the highest that phones record (4K at 60 fps)
# and decode in hardware, allows 36,864 macroblocks of 16x16 pixels a frame (4096x2304) and
# 2,073,600 a second (4096x2160 at 60 fps); phone decoders also stop at 4096 pixels a side.
MAX_FRAME_PIXELS = 36_864 * 256
MAX_PIXEL_RATE = 2_073_600 * 256
MAX_FRAME_SIDE = 4096
MIN_FRAME_SIDE = 16
# H.264 itself (level 6.2) ends here: no configuration may go past it.
H264_MAX_FRAME_PIXELS = 139_264 * 256
H264_MAX_PIXEL_RATE = 16_711_680 * 256
H264_MAX_FRAME_SIDE = 8192


@dataclass(frozen=True)
class MediaLimits:
    max_bytes: int
    max_duration_s: float
    max_pixels: int = MAX_FRAME_PIXELS
    max_side: int = MAX_FRAME_SIDE
    min_side: int = MIN_FRAME_SIDE
    max_pixel_rate: int = MAX_PIXEL_RATE  # width x height x frames a second


def _rotation(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> int:
    """The rotation of the first decoded frame (from the display matrix), normalised."""
    for frame in container.decode(stream):
        # PyAV reports counter-clockwise degrees (-90 for a phone held upright).
        return int(-getattr(frame, "rotation", 0) or 0) % 360
    raise MediaRejected("truncated", "The video has no picture that can be decoded.")


def _bit_depth(pix_fmt: str) -> int:
    for depth in (16, 12, 10):
        if f"p{depth}" in pix_fmt or pix_fmt.endswith((f"{depth}le", f"{depth}be")):
            return depth
    return 8


def probe(path: Path) -> MediaInfo:
    size = os.path.getsize(path)
    if size == 0:
        raise MediaRejected("empty_file", "The uploaded file is empty.")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError:
        if _looks_like_mp4(path):
            # An MP4/MOV that will not open is, in practice, one whose upload stopped early:
            # phones write the index at the end.
            raise MediaRejected(
                "truncated", "The upload is incomplete: the end of the video file is missing."
            ) from None
        raise MediaRejected("not_a_video", "This file is not a video we can read.") from None
    with container:
        if not container.streams.video:
            kind = "audio_only" if container.streams.audio else "not_a_video"
            detail = (
                "The file has sound but no picture."
                if kind == "audio_only"
                else "This file is not a video we can read."
            )
            raise MediaRejected(kind, detail)
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if not ctx.width or not ctx.height:
            raise MediaRejected("not_a_video", "The video has no picture size.")
        duration, counted_rate = _duration(path, container, stream)
        avg = counted_rate or stream.average_rate or stream.guessed_rate or Fraction(0)
        real = stream.base_rate or avg
        try:
            rotation = _rotation(container, stream)
        except av.error.FFmpegError:
            raise MediaRejected("truncated", "The video's pictures cannot be decoded.") from None
        if counted_rate is None and not _tail_decodes(container, stream, duration):
            raise MediaRejected(
                "truncated", "The upload is incomplete: the end of the video is missing."
            )
        pix_fmt = ctx.pix_fmt or "unknown"
        video = VideoInfo(
            codec=ctx.name,
            width=ctx.width,
            height=ctx.height,
            rotation=rotation,
            fps=float(avg) if avg else 0.0,
            variable_frame_rate=bool(avg and real and abs(float(real) - float(avg)) > 0.01),
            pix_fmt=pix_fmt,
            bit_depth=_bit_depth(pix_fmt),
            transfer=_TRANSFERS.get(int(ctx.color_trc or 0)),
            primaries=_PRIMARIES.get(int(ctx.color_primaries or 0)),
            profile=ctx.profile,
        )
        audio = None
        if container.streams.audio:
            actx = container.streams.audio[0].codec_context
            audio = AudioInfo(codec=actx.name, channels=actx.channels, sample_rate=actx.sample_rate)
        return MediaInfo(
            container=container.format.name,
            duration_s=duration,
            size_bytes=size,
            video=video,
            audio=audio,
        )


def _looks_like_mp4(path: Path) -> bool:
    with path.open("rb") as handle:
        head = handle.read(12)
    return len(head) == 12 and head[4:8] == b"ftyp"


def _tail_decodes(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, duration: float
) -> bool:
    """A file cut short still opens when its index comes first; its last seconds do not decode."""
    if duration < 2 or not stream.time_base:
        return True
    target = int((duration - 1.0) / stream.time_base) + (stream.start_time or 0)
    try:
        container.seek(target, stream=stream, backward=True, any_frame=False)
        for frame in container.decode(stream):
            if frame.time is not None and frame.time >= duration - 1.05:
                return True
    except av.error.FFmpegError:
        return False
    return False


def _duration(
    path: Path, container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> tuple[float, Fraction | None]:
    """The length from the header, else the one found by reading the stream (with the frame rate
    counted on the way: such headers carry no trustworthy rate either)."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base), None
    if container.duration:
        return container.duration / av.time_base, None
    return _read_length(path)


def _read_length(path: Path) -> tuple[float, Fraction]:
    """Length and frame rate of a video whose header has no length, by reading its packets
    (not decoding them).

    Browsers' MediaRecorder and Android's WebM encoders write the header before they know the
    length and never go back: the file ends where the recording stopped, so there is no
    announced end to fall short of, and what the stream holds is the video.
    """
    first: int | None = None
    end = 0
    frames = 0
    time_base: Fraction | None = None
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            try:
                for packet in container.demux(stream):
                    if packet.pts is None or packet.size == 0:
                        continue
                    frames += 1
                    first = packet.pts if first is None else min(first, packet.pts)
                    end = max(end, packet.pts + (packet.duration or 0))
            except av.error.FFmpegError:
                pass  # a recording cut mid-cluster: keep what was read before
            time_base = stream.time_base
    except av.error.FFmpegError:
        frames = 0
    if not frames or first is None or not time_base or end <= first:
        raise MediaRejected(
            "truncated", "The video's length cannot be read; the file may be incomplete."
        )
    duration = float((end - first) * time_base)
    return duration, Fraction(frames) / Fraction(end - first) / time_base


def check_size(size_bytes: int, limits: MediaLimits) -> None:
    """The size alone, checkable before the file is fetched from storage."""
    if size_bytes > limits.max_bytes:
        raise MediaRejected(
            "too_big", f"The file is larger than {limits.max_bytes // (1024 * 1024)} MB."
        )


def validate(info: MediaInfo, limits: MediaLimits) -> None:
    """Raise MediaRejected when the media is outside what the product accepts."""
    check_size(info.size_bytes, limits)
    if info.duration_s <= 0:
        raise MediaRejected("truncated", "The video has no length.")
    if info.duration_s > limits.max_duration_s:
        raise MediaRejected(
            "too_long",
            f"The video is {info.duration_s / 60:.1f} minutes long; the limit is "
            f"{limits.max_duration_s / 60:.0f} minutes.",
        )
    v = info.video
    if (
        v.width > limits.max_side
        or v.height > limits.max_side
        or v.width * v.height > limits.max_pixels
    ):
        raise MediaRejected(
            "frame_too_large", f"The picture is {v.width}x{v.height}, larger than we can process."
        )
    if v.width < limits.min_side or v.height < limits.min_side:
        raise MediaRejected("frame_too_small", f"The picture is only {v.width}x{v.height}.")
    if v.fps and v.width * v.height * v.fps > limits.max_pixel_rate:
        raise MediaRejected(
            "frame_rate_too_high",
            f"The video is {v.width}x{v.height} at {v.fps:.0f} frames a second, more than we "
            "can process; record at a lower frame rate or resolution.",
        )
