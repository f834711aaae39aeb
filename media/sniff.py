"""What a file is, from its first bytes: enough to refuse a photo, a PDF or a song at the first
chunk of its upload instead of after the whole file has crossed a mobile network.

The sniff only refuses what cannot be a video. A file in an accepted container may still be
refused later by the probe (no picture, cut short, too long); that is not for the first bytes
to say. A refusal carries the code the probe gives such a file (`not_a_video`, `audio_only`,
`empty_file`), so an app sees the same reason whichever step found it. One difference: a
still picture (PNG, JPEG, GIF) is refused as `not_a_video` here, where ffmpeg would read it as
a one-frame clip. (A HEIC photo is an ISO BMFF file: the probe judges it.)
"""

from __future__ import annotations

from dataclasses import dataclass

# How many leading bytes are kept to decide: an MPEG-TS file shows its second packet's sync
# byte at 188 (M2TS at 196); every other signature sits in the first 12.
SNIFF_BYTES = 256
_DECIDING_BYTES = 12
_TS_PACKET = 188


@dataclass(frozen=True)
class Container:
    """A container the pipeline reads video from, with what apps call its files."""

    name: str
    extensions: tuple[str, ...]
    mime_types: tuple[str, ...]


ISO_BMFF = Container(
    "iso_bmff",
    ("mp4", "mov", "m4v", "3gp", "3g2"),
    ("video/mp4", "video/quicktime", "video/x-m4v", "video/3gpp", "video/3gpp2"),
)
MATROSKA = Container("matroska", ("webm", "mkv"), ("video/webm", "video/x-matroska"))
AVI = Container("avi", ("avi",), ("video/x-msvideo",))
MPEG_TS = Container("mpeg_ts", ("ts", "mts", "m2ts"), ("video/mp2t",))
MPEG_PS = Container("mpeg_ps", ("mpg", "mpeg"), ("video/mpeg",))
FLV = Container("flv", ("flv",), ("video/x-flv",))
OGG = Container("ogg", ("ogv",), ("video/ogg",))

#: Every container an upload may be in, the ones phones record first.
CONTAINERS = (ISO_BMFF, MATROSKA, AVI, MPEG_TS, MPEG_PS, FLV, OGG)

#: Codecs the pipeline decodes (ffmpeg's names): phones record H.264 or HEVC with AAC.
VIDEO_CODECS = (
    "h264", "hevc", "vp8", "vp9", "av1", "mpeg4", "h263", "mpeg2video", "theora", "flv",
)  # fmt: skip
AUDIO_CODECS = (
    "aac", "opus", "vorbis", "mp3", "mp2", "amr_nb", "alac", "flac", "ac3", "pcm_s16le",
)  # fmt: skip

# Box types a QuickTime or ISO BMFF file starts with (old QuickTime files have no `ftyp`).
_ISO_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid"}


@dataclass(frozen=True)
class Verdict:
    """`container` when the file may be a video; `refusal` (a probe code) when it cannot be;
    neither while too few bytes have arrived to tell."""

    container: Container | None = None
    refusal: str | None = None

    @property
    def decided(self) -> bool:
        return self.container is not None or self.refusal is not None


UNDECIDED = Verdict()


def _audio(head: bytes) -> bool:
    """Sound-only files: the probe fails them as `audio_only`."""
    if head.startswith((b"ID3", b"fLaC", b"#!AMR")):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return True
    # An MPEG audio or ADTS (AAC) frame header: 11 sync bits.
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0


def _container(head: bytes) -> Container | None:
    if head[4:8] in _ISO_BOXES:
        return ISO_BMFF
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML
        return MATROSKA
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return AVI
    if head.startswith(b"\x00\x00\x01\xba"):
        return MPEG_PS
    if head.startswith(b"FLV\x01"):
        return FLV
    if head.startswith(b"OggS"):
        return OGG
    return None


def _ts_start(head: bytes) -> int | None:
    """Where the first TS packet starts (0, or 4 in M2TS), if one may."""
    for start in (0, 4):
        if head[start : start + 1] == b"\x47":
            return start
    return None


def sniff(head: bytes, *, whole_file: bool = False) -> Verdict:
    """Judge a file by `head`, its first bytes. `whole_file`: no more bytes will come."""
    if not head:
        return Verdict(refusal="empty_file") if whole_file else UNDECIDED
    if len(head) < _DECIDING_BYTES and not whole_file:
        return UNDECIDED
    container = _container(head)
    if container is not None:
        return Verdict(container=container)
    if _audio(head):
        return Verdict(refusal="audio_only")
    start = _ts_start(head)
    if start is not None:
        second = start + _TS_PACKET + (4 if start else 0)
        if len(head) > second:
            if head[second] == 0x47:
                return Verdict(container=MPEG_TS)
        elif not whole_file:
            return UNDECIDED
    return Verdict(refusal="not_a_video")
