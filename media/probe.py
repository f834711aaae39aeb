"""Probing and validating uploaded media with PyAV.

`probe()` reads what the pipeline needs to plan renditions: codec, coded and display size
(after the display-matrix rotation phones write), frame rate and whether it varies, bit depth,
the colour tags (primaries, transfer, matrix, range; `VideoInfo.colour` says what the pixels
are when some are missing), audio, duration. Anything that is not a playable video raises
`MediaRejected` with a stable `code` and a sentence the author can read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from media.codecs import stream_codec
from media.limits import MediaLimits

# AVColorTransferCharacteristic / AVColorPrimaries / AVColorSpace / AVColorRange values
# (libavutil/pixfmt.h), by the names ffmpeg's filters and options take.
_TRANSFERS = {
    1: "bt709",
    6: "smpte170m",
    13: "iec61966-2-1",
    14: "bt2020-10",
    15: "bt2020-12",
    16: "smpte2084",
    18: "arib-std-b67",
}
_PRIMARIES = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020", 12: "smpte432"}
_MATRICES = {1: "bt709", 5: "bt470bg", 6: "smpte170m", 9: "bt2020nc", 10: "bt2020c"}
_RANGES = {1: "tv", 2: "pc"}
HDR_TRANSFERS = {"smpte2084", "arib-std-b67"}
BT2020_MATRICES = {"bt2020nc", "bt2020c"}


@dataclass(frozen=True)
class Colour:
    """What a picture's pixels are, every property known, in ffmpeg's names."""

    primaries: str
    transfer: str
    matrix: str
    full_range: bool

    @property
    def is_hdr(self) -> bool:
        return self.transfer in HDR_TRANSFERS

    @property
    def range(self) -> str:
        return "pc" if self.full_range else "tv"


# What every video output is, and what remuxed sources must already be: SDR BT.709, limited range.
BT709 = Colour("bt709", "bt709", "bt709", full_range=False)


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
    matrix: str | None = None  # the YCbCr matrix (colorspace) tag
    color_range: str | None = None  # "tv" (limited), "pc" (full) or untagged
    # RFC 6381, from the stream's decoder configuration record (`avc1.64001f`,
    # `hvc1.2.4.L153.B0`); None when the container carries none (raw or MPEG-TS streams).
    codec_string: str | None = None

    @property
    def colour(self) -> Colour:
        """What the pixels are, from the tags the source carries and, where some are missing,
        from the others, the bit depth and the size. The one place this is decided.

        - HDR: an HDR transfer (PQ or HLG). With no transfer tag, a 10-bit or deeper picture with
          BT.2020 primaries or matrix is HDR too (phones tag some and not all): taken as HLG,
          which phones record and which, if the guess is wrong, still looks right after tone
          mapping, where PQ would not. An SDR transfer tag proves otherwise.
        - Matrix and primaries, when untagged, follow each other (BT.2020 with BT.2020, BT.601
          with BT.601); with neither, a picture no larger than standard definition (short side
          at most 576 and long side under 1280, as players guess) is BT.601, else BT.709.
        - Range: full when tagged so or when the pixel format is a JPEG one (`yuvj420p`),
          else limited.
        - RGB pictures (screen recordings, PNG or RGB H.264) have no matrix, and untagged
          primaries are BT.709 (sRGB's) whatever their size.
        """
        hdr = self.transfer in HDR_TRANSFERS or (
            self.transfer is None
            and self.bit_depth >= 10
            and (self.primaries == "bt2020" or self.matrix in BT2020_MATRICES)
        )
        short, long = sorted((self.width, self.height))
        rgb = self.pix_fmt.startswith(_RGB_FORMATS)
        standard_definition = short <= 576 and long < 1280 and not rgb
        guess = "smpte170m" if standard_definition else "bt709"
        if hdr:
            primaries = self.primaries or "bt2020"
            matrix = self.matrix or "bt2020nc"
            transfer = self.transfer if self.transfer in HDR_TRANSFERS else "arib-std-b67"
        else:
            primaries = self.primaries or _PRIMARIES_FOR_MATRIX.get(self.matrix or "", guess)
            matrix = self.matrix or _MATRIX_FOR_PRIMARIES.get(self.primaries or "", guess)
            transfer = self.transfer or "bt709"
        if rgb:
            matrix = "gbr"
        full_range = self.color_range == "pc" or (
            self.color_range is None and self.pix_fmt.startswith("yuvj")
        )
        return Colour(primaries, transfer, matrix, full_range)

    @property
    def display_width(self) -> int:
        return self.height if self.rotation in (90, 270) else self.width

    @property
    def display_height(self) -> int:
        return self.width if self.rotation in (90, 270) else self.height

    @property
    def is_hdr(self) -> bool:
        return self.colour.is_hdr


_RGB_FORMATS = ("gbr", "rgb", "bgr", "argb", "abgr", "0rgb", "0bgr")
_PRIMARIES_FOR_MATRIX = {
    "bt709": "bt709",
    "bt470bg": "bt470bg",
    "smpte170m": "smpte170m",
    "bt2020nc": "bt2020",
    "bt2020c": "bt2020",
}
_MATRIX_FOR_PRIMARIES = {
    "bt709": "bt709",
    "bt470bg": "bt470bg",
    "smpte170m": "smpte170m",
    "bt2020": "bt2020nc",
    "smpte432": "bt709",  # Display P3 video comes with the BT.709 matrix
}


@dataclass(frozen=True)
class AudioInfo:
    codec: str
    channels: int
    sample_rate: int
    codec_string: str | None = None  # `mp4a.40.2` for AAC-LC; None for other codecs


@dataclass(frozen=True)
class MediaInfo:
    container: str
    duration_s: float
    size_bytes: int
    video: VideoInfo
    audio: AudioInfo | None

    @property
    def can_remux(self) -> bool:
        """The first playable rendition can copy the stream, without re-encoding: 8-bit 4:2:0
        H.264 whose pixels already are what every output is tagged as (`BT709`). Anything else
        (HDR, BT.601 or BT.2020 SDR, full range) is converted by an encode."""
        colour = self.video.colour
        return (
            self.video.codec == "h264"
            and self.video.bit_depth == 8
            and self.video.pix_fmt == "yuv420p"
            and (colour.primaries, colour.matrix, colour.full_range) == ("bt709", "bt709", False)
            # SMPTE 170M's transfer curve is BT.709's.
            and colour.transfer in {"bt709", "smpte170m"}
        )

    @property
    def can_copy_hevc(self) -> bool:
        """The stream can be copied as it is into an HLS rendition for players that decode HEVC
        (`hvc1`, as Apple's players require): Main or Main 10 at 4:2:0, 8 or 10 bits, SDR or
        HDR, with the `hvcC` record its codec string is read from. Its colour is kept: HDR
        stays HDR for the players that show it."""
        video = self.video
        return (
            video.codec == "hevc"
            and video.pix_fmt in {"yuv420p", "yuv420p10le"}
            and video.codec_string is not None
            and video.codec_string.split(".")[1] in {"1", "2"}  # Main, Main 10
        )


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
    """What `path` holds. Raises MediaRejected for anything that is not a playable video: no
    PyAV error leaves this module, so callers need not know how the file is read."""
    try:
        return _probe(path)
    except av.error.FFmpegError as exc:
        if isinstance(exc, OSError):
            raise  # the file could not be read at all (gone, no permission): not its content
        raise MediaRejected("not_a_video", "This file is not a video we can read.") from None


def _probe(path: Path) -> MediaInfo:
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
            matrix=_MATRICES.get(int(ctx.colorspace or 0)),
            color_range=_RANGES.get(int(ctx.color_range or 0)),
            codec_string=stream_codec(ctx.name, ctx.extradata),
        )
        audio = None
        if container.streams.audio:
            actx = container.streams.audio[0].codec_context
            audio = AudioInfo(
                codec=actx.name,
                channels=actx.channels,
                sample_rate=actx.sample_rate,
                codec_string=stream_codec(actx.name, actx.extradata),
            )
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
    """A file cut short still opens when its index comes first; its last second is then missing
    or cut off. That second's packets are read to the end (a cut one is flagged corrupt) and its
    first picture is decoded: decoding all of it cost most of the probe, and the probe comes
    before every first playable."""
    if duration < 2 or not stream.time_base:
        return True
    start = stream.start_time or 0
    target = int((duration - 1.0) / stream.time_base) + start
    decoder = stream.codec_context
    decoded = reached = False
    try:
        container.seek(target, stream=stream, backward=True, any_frame=False)
        for packet in container.demux(stream):
            if packet.pts is None and not packet.size:
                continue  # the demuxer's end-of-stream marker
            if packet.is_corrupt:
                return False
            if not decoded:
                decoded = bool(decoder.decode(packet))
            seconds = None if packet.pts is None else (packet.pts - start) * stream.time_base
            if seconds is not None and seconds >= duration - 1.05:
                reached = True
        if not decoded:
            decoded = bool(decoder.decode(None))
    except av.error.FFmpegError:
        return False
    return decoded and reached


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


# A single picture's length when nothing says it: a phone camera's usual rate.
_DEFAULT_FRAME_S = Fraction(1, 30)


def _read_length(path: Path) -> tuple[float, Fraction]:
    """Length and frame rate of a video whose header has no length, by reading its packets
    (not decoding them).

    Browsers' MediaRecorder and Android's WebM encoders write the header before they know the
    length and never go back: the file ends where the recording stopped, so there is no
    announced end to fall short of, and what the stream holds is the video. MediaRecorder's
    blocks carry no duration either: the last picture then lasts one mean frame interval (a
    sole picture, one frame of the stream's guessed rate or 1/30 s).
    """
    first: int | None = None
    last = 0
    end = 0
    frames = 0
    time_base: Fraction | None = None
    guessed: Fraction | None = None
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            try:
                for packet in container.demux(stream):
                    if packet.pts is None or packet.size == 0:
                        continue
                    frames += 1
                    first = packet.pts if first is None else min(first, packet.pts)
                    last = max(last, packet.pts)
                    end = max(end, packet.pts + (packet.duration or 0))
            except av.error.FFmpegError:
                pass  # a recording cut mid-cluster: keep what was read before
            time_base = stream.time_base
            guessed = stream.guessed_rate
    except av.error.FFmpegError:
        frames = 0
    if not frames or first is None or not time_base:
        raise MediaRejected(
            "truncated", "The video's length cannot be read; the file may be incomplete."
        )
    span = Fraction(end - first)
    if end <= last:  # the last picture's duration is unknown
        if frames > 1:
            interval = Fraction(last - first, frames - 1)
        elif guessed and 1 <= guessed <= 120:
            interval = 1 / Fraction(guessed) / time_base
        else:
            interval = _DEFAULT_FRAME_S / time_base
        span = last - first + interval
    if span <= 0:
        raise MediaRejected(
            "truncated", "The video's length cannot be read; the file may be incomplete."
        )
    return float(span * time_base), Fraction(frames) / span / time_base


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
