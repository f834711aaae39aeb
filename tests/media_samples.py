"""Short media samples made with ffmpeg (lavfi testsrc2 + sine), for the media tests."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import imageio_ffmpeg

from media.probe import VideoInfo

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
VIDEO = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"]
TONE = ["-f", "lavfi", "-i", "sine=frequency=440"]
# Tagged BT.709 throughout, as phones tag what they record: such a clip can be remuxed.
H264 = [
    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
    "-vf", "setparams=color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=tv",
]  # fmt: skip

# What a recent phone records held upright: HEVC 10-bit HLG, rotated by its display matrix.
PHONE = VideoInfo(
    codec="hevc",
    width=1920,
    height=1080,
    rotation=90,
    fps=29.97,
    variable_frame_rate=True,
    pix_fmt="yuv420p10le",
    bit_depth=10,
    transfer="arib-std-b67",
    primaries="bt2020",
    profile="Main 10",
)


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def make_samples(directory: Path) -> dict[str, Path]:
    """name -> path of every sample kind the tests use."""
    s = {
        "landscape": directory / "landscape.mp4",
        "faststart": directory / "faststart.mp4",
        "portrait": directory / "portrait.mp4",
        "hlg": directory / "hlg.mp4",
        "audio_only": directory / "audio.m4a",
        "truncated": directory / "truncated.mp4",
        "truncated_faststart": directory / "truncated-faststart.mp4",
        "empty": directory / "empty.mp4",
        "not_a_video": directory / "notes.mp4",
        "odd_size": directory / "odd.mp4",
    }
    clip = [*VIDEO, *TONE, "-t", "4", *H264, "-c:a", "aac", "-shortest"]
    ffmpeg(*clip, str(s["landscape"]))
    ffmpeg(*clip, "-movflags", "+faststart", str(s["faststart"]))
    # A phone held upright: landscape pixels with a display matrix turning them 90° clockwise.
    ffmpeg("-display_rotation", "-90", "-i", str(s["landscape"]), "-c", "copy", str(s["portrait"]))
    ffmpeg(
        *VIDEO,
        "-t",
        "2",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt",
        "yuv420p10le",
        "-bsf:v",
        "h264_metadata=transfer_characteristics=18:colour_primaries=9",
        str(s["hlg"]),
    )
    ffmpeg(*TONE, "-t", "2", str(s["audio_only"]))
    ffmpeg(
        *VIDEO, "-t", "1", "-vf", "scale=321:241",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p", str(s["odd_size"]),
    )  # fmt: skip
    for source, target in (("landscape", "truncated"), ("faststart", "truncated_faststart")):
        data = s[source].read_bytes()
        s[target].write_bytes(data[: len(data) // 2])
    s["empty"].write_bytes(b"")
    s["not_a_video"].write_bytes(b"Pricing objection notes\n" * 200)
    return s


def colr(path: Path) -> tuple[int, int, int, int] | None:
    """An MP4's `colr` (nclx) box: primaries, transfer, matrix (ITU-T H.273 numbers) and the
    full-range flag; None without one."""
    data = path.read_bytes()
    at = data.find(b"colrnclx")
    if at < 0:
        return None
    primaries, transfer, matrix, full_range = struct.unpack(">HHHB", data[at + 8 : at + 15])
    return primaries, transfer, matrix, full_range >> 7


# Matroska's TrackDefaultDuration element, which ffmpeg writes and MediaRecorder does not.
_DEFAULT_DURATION_ID = b"\x23\xe3\x83"
_EBML_VOID_ID = 0xEC


def recorder_webm(out: Path, *, frames: int, codec: str = "libvpx") -> None:
    """A WebM as browsers' MediaRecorder writes it: a live header with no length, and blocks
    that say nothing of how long each picture lasts (ffmpeg's SimpleBlocks carry no
    BlockDuration; its track's DefaultDuration is blanked out into a Void element of the same
    size, so nothing else in the file moves)."""
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30", "-frames:v", str(frames),
           "-c:v", codec, "-deadline", "realtime", "-cpu-used", "8", "-live", "1", "-f", "webm",
           str(out))  # fmt: skip
    data = out.read_bytes()
    at = data.find(_DEFAULT_DURATION_ID)
    assert at > 0 and data.count(_DEFAULT_DURATION_ID) == 1, "one DefaultDuration expected"
    size_byte = data[at + len(_DEFAULT_DURATION_ID)]
    assert size_byte & 0x80, "a one-byte size expected"
    total = len(_DEFAULT_DURATION_ID) + 1 + (size_byte & 0x7F)
    void = bytes([_EBML_VOID_ID, 0x80 | (total - 2)]) + bytes(total - 2)
    out.write_bytes(data[:at] + void + data[at + total :])
