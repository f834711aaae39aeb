"""RFC 6381 codec strings (`avc1.64001f`, `hvc1.2.4.L153.B0`, `mp4a.40.2`) for HLS CODECS
attributes and the API, read from a stream's decoder configuration record.

Players choose among the variants of a master playlist by these strings, so they must describe
the stream exactly: they are built from the record the stream itself carries (`avcC`, `hvcC`,
AAC's AudioSpecificConfig), not from what an encoder was asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

# The VIDEO-RANGE of a master playlist's variant, by the transfer curve of its pixels.
VIDEO_RANGES = {"arib-std-b67": "HLG", "smpte2084": "PQ"}


def video_range(transfer: str) -> str:
    """`SDR`, `HLG` or `PQ`: what a player must be able to show for the variant."""
    return VIDEO_RANGES.get(transfer, "SDR")


def avc_codec(extradata: bytes | None) -> str | None:
    """`avc1.PPCCLL` from an `avcC` record: profile, constraint flags and level in hex."""
    if not extradata or len(extradata) < 4 or extradata[0] != 1:
        return None
    return f"avc1.{extradata[1:4].hex()}"


def _reverse_bits32(value: int) -> int:
    return int(f"{value:032b}"[::-1], 2)


def hevc_codec(extradata: bytes | None, tag: str = "hvc1") -> str | None:
    """`hvc1.<space><profile>.<compatibility>.<tier><level>.<constraints>` from an `hvcC`
    record, as ISO/IEC 14496-15 annex E spells it: the compatibility flags bit-reversed in hex,
    the constraint bytes in hex up to the last non-zero one."""
    if not extradata or len(extradata) < 13 or extradata[0] != 1:
        return None
    space = "" if not extradata[1] >> 6 else "ABC"[(extradata[1] >> 6) - 1]
    tier = "H" if extradata[1] & 0x20 else "L"
    profile = extradata[1] & 0x1F
    compatibility = _reverse_bits32(int.from_bytes(extradata[2:6], "big"))
    constraints = list(extradata[6:12])
    while constraints and constraints[-1] == 0:
        constraints.pop()
    parts = [
        tag,
        f"{space}{profile}",
        f"{compatibility:X}",
        f"{tier}{extradata[12]}",
        *(f"{byte:02X}" for byte in constraints),
    ]
    return ".".join(parts)


def aac_codec(extradata: bytes | None) -> str:
    """`mp4a.40.<object type>` from AAC's AudioSpecificConfig (LC, 2, when it says nothing)."""
    if not extradata:
        return "mp4a.40.2"
    object_type = extradata[0] >> 3
    if object_type == 31 and len(extradata) >= 2:  # escape: six more bits follow
        object_type = 32 + (((extradata[0] & 0x07) << 3) | (extradata[1] >> 5))
    return f"mp4a.40.{object_type or 2}"


def stream_codec(codec: str, extradata: bytes | None) -> str | None:
    """The codec string of one stream by its decoder's name, or None when it cannot be told."""
    if codec == "h264":
        return avc_codec(extradata)
    if codec == "hevc":
        return hevc_codec(extradata)
    if codec == "aac":
        return aac_codec(extradata)
    return None


@dataclass(frozen=True)
class Codecs:
    video: str | None
    audio: str | None

    @property
    def attribute(self) -> str:
        """The CODECS attribute's value: video, then audio."""
        return ",".join(codec for codec in (self.video, self.audio) if codec)


def file_codecs(path: Path) -> Codecs:
    """The codec strings of the first video and audio streams of an MP4 (or an fMP4 init
    segment, which holds the records without any sample)."""
    with av.open(str(path)) as container:
        video = audio = None
        if container.streams.video:
            ctx = container.streams.video[0].codec_context
            video = stream_codec(ctx.name, ctx.extradata)
        if container.streams.audio:
            actx = container.streams.audio[0].codec_context
            audio = stream_codec(actx.name, actx.extradata)
    return Codecs(video, audio)
