"""RFC 6381 codec strings, HLS master playlists, the HEVC copy and the renditions a viewer is
offered: what players choose by."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from fieldcast.models.videos import Rendition, RenditionKind, Video, VideoStatus
from fieldcast.videos import playback
from media.codecs import aac_codec, avc_codec, file_codecs, hevc_codec, video_range
from media.probe import probe
from media.renditions import (
    LADDER,
    Variant,
    h264_after_hevc_rung,
    hevc_copy_command,
    master_playlist,
    parse_master,
    playlist_bitrates,
)
from tests.media_samples import FFMPEG, PHONE, colr, ffmpeg


def _hvcc(profile_byte: int, compatibility: int, constraints: bytes, level: int) -> bytes:
    return (
        bytes([1, profile_byte])
        + compatibility.to_bytes(4, "big")
        + constraints
        + bytes([level])
        + bytes(10)
    )


def test_hevc_codec_strings_follow_iso_14496_15() -> None:
    # Main 10, main tier, level 5.1: Apple's example of an HDR variant.
    main10 = _hvcc(0x02, 0x20000000, bytes([0xB0, 0, 0, 0, 0, 0]), 153)
    assert hevc_codec(main10) == "hvc1.2.4.L153.B0"
    # Main, high tier, level 4, both compatibility flags 1 and 2 set, no constraint byte.
    main = _hvcc(0x21, 0x60000000, bytes(6), 120)
    assert hevc_codec(main) == "hvc1.1.6.H120"
    # A profile space is spelled as a letter before the profile.
    assert hevc_codec(_hvcc(0x42, 0x20000000, bytes([0x90, 0, 0, 0, 0, 0]), 93)) == (
        "hvc1.A2.4.L93.90"
    )
    assert hevc_codec(b"") is None and hevc_codec(b"\x00\x00\x00\x01" * 4) is None  # Annex B


def test_avc_and_aac_codec_strings() -> None:
    assert avc_codec(bytes([1, 0x64, 0x00, 0x1F, 0xFF])) == "avc1.64001f"
    assert avc_codec(b"\x00\x00\x00\x01") is None
    assert aac_codec(bytes([0x12, 0x10])) == "mp4a.40.2"  # LC
    assert aac_codec(bytes([0x2B, 0x92])) == "mp4a.40.5"  # HE-AAC
    assert aac_codec(None) == "mp4a.40.2"


def test_video_range_by_transfer() -> None:
    assert video_range("arib-std-b67") == "HLG"
    assert video_range("smpte2084") == "PQ"
    assert video_range("bt709") == "SDR"


def test_a_master_playlist_states_codecs_and_range_and_reads_back() -> None:
    variants = [
        Variant("hevc/index.m3u8", 9_000_000, 8_000_000, 1080, 1920, "hvc1.2.4.L123.B0,mp4a.40.2",
                "HLG", 29.97),
        Variant("360p/index.m3u8", 1_200_000, 800_000, 360, 640, "avc1.64001e,mp4a.40.2", "SDR",
                30.0),
    ]  # fmt: skip
    text = master_playlist(variants)
    assert text.startswith("#EXTM3U\n")
    assert (
        "#EXT-X-STREAM-INF:BANDWIDTH=9000000,AVERAGE-BANDWIDTH=8000000,RESOLUTION=1080x1920,"
        'CODECS="hvc1.2.4.L123.B0,mp4a.40.2",VIDEO-RANGE=HLG,FRAME-RATE=29.970\nhevc/index.m3u8'
    ) in text
    assert text.index("hevc/index.m3u8") < text.index("360p/index.m3u8")
    assert parse_master(text) == [
        replace(variants[0], frame_rate=29.97),
        replace(variants[1], frame_rate=30.0),
    ]


def test_the_h264_rendition_after_an_hevc_copy_is_the_lowest_rung() -> None:
    assert h264_after_hevc_rung(PHONE) == LADDER[0]
    small = replace(PHONE, width=320, height=240, rotation=0)
    assert h264_after_hevc_rung(small).short_side == 240


def test_the_hevc_copy_command_copies_tags_hvc1_and_encodes_only_foreign_audio(
    tmp_path: Path,
) -> None:
    source = tmp_path / "iphone.mov"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i",
           "sine=frequency=440", "-t", "5", "-vf", "format=yuv420p10le", "-c:v", "libx265",
           "-preset", "ultrafast", "-x265-params",
           "keyint=30:colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc:log-level=error",
           "-tag:v", "hev1", "-color_primaries", "bt2020", "-color_trc", "arib-std-b67",
           "-colorspace", "bt2020nc", "-c:a", "aac", "-shortest", str(source))  # fmt: skip
    info = probe(source)
    assert info.can_copy_hevc and not info.can_remux
    assert info.video.codec_string is not None and info.video.codec_string.startswith("hvc1.2.4.")
    out = tmp_path / "hevc"
    out.mkdir()
    args = hevc_copy_command(FFMPEG, source, out, info)
    assert args[args.index("-c:v") + 1] == "copy" and args[args.index("-tag:v") + 1] == "hvc1"
    assert args[args.index("-c:a") + 1] == "copy"
    subprocess.run(args, check=True, capture_output=True)
    made = file_codecs(out / "init.mp4")
    assert made.video == info.video.codec_string and made.audio == "mp4a.40.2"
    assert colr(out / "init.mp4") == (9, 18, 9, 0)  # HLG kept
    average, peak = playlist_bitrates(out / "index.m3u8")
    total = sum(p.stat().st_size for p in out.iterdir() if p.suffix in {".m4s", ".mp4"})
    assert average == pytest.approx(total * 8 / info.duration_s, rel=0.1)
    assert peak >= average

    assert info.audio is not None
    opus = replace(info, audio=replace(info.audio, codec="opus"))
    args = hevc_copy_command(FFMPEG, source, out, opus)
    assert args[args.index("-c:a") + 1] == "aac"


def test_only_main_and_main_10_hevc_with_its_record_is_copied(tmp_path: Path) -> None:
    source = tmp_path / "camera.ts"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "1", "-c:v", "libx265",
           "-preset", "ultrafast", "-x265-params", "log-level=error", str(source))  # fmt: skip
    info = probe(source)
    # MPEG-TS carries no hvcC record: no codec string to state, so it is encoded instead.
    assert info.video.codec == "hevc" and not info.can_copy_hevc
    rext = replace(info, video=replace(info.video, codec_string="hvc1.4.10.L93.B0"))
    assert not rext.can_copy_hevc
    main = replace(info, video=replace(info.video, codec_string="hvc1.1.6.L93.B0"))
    assert main.can_copy_hevc


def _rendition(name: str, kind: RenditionKind, codec: str | None = None, height: int = 0) -> Any:
    return Rendition(name=name, kind=kind, source_version=1, codec=codec, height=height)


HEVC = _rendition("hevc", RenditionKind.HLS, "hvc1.2.4.L123.B0,mp4a.40.2", 1080)
FIRST = _rendition("first", RenditionKind.HLS, "avc1.64001e,mp4a.40.2", 360)
FIRST_MASTER = _rendition("first_master", RenditionKind.MASTER)


@pytest.mark.parametrize(
    ("status", "hls", "playable_for"),
    [
        # Only the HEVC copy: it plays for HEVC clients while the video is processing.
        (VideoStatus.PROCESSING, "first_master", ["hevc"]),
        # A video that failed plays for nobody, whatever was made before.
        (VideoStatus.FAILED, None, []),
    ],
)
def test_an_hevc_copy_is_offered_while_processing_and_never_after_a_failure(
    status: VideoStatus, hls: str | None, playable_for: list[str]
) -> None:
    video = Video(status=status, source_version=1)
    chosen = playback.choose(video, [HEVC, FIRST_MASTER])
    assert (chosen.hls.name if chosen.hls else None) == hls
    assert chosen.playable_for == playable_for


def test_the_ladder_master_offers_the_hevc_copy_and_the_rungs_not_the_first_rendition() -> None:
    video = Video(status=VideoStatus.READY, source_version=1)
    rungs = [
        _rendition("360p", RenditionKind.HLS, "avc1.64001e,mp4a.40.2", 360),
        _rendition("720p", RenditionKind.HLS, "avc1.64001f,mp4a.40.2", 720),
    ]
    master = _rendition("master", RenditionKind.MASTER)
    mp4 = _rendition("mp4", RenditionKind.MP4, "avc1.64001f,mp4a.40.2", 720)
    stale = Rendition(name="hevc", kind=RenditionKind.HLS, source_version=0)  # a former file's
    chosen = playback.choose(video, [FIRST, *rungs, HEVC, FIRST_MASTER, master, mp4, stale])
    assert chosen.hls is master
    assert [r.name for r in chosen.renditions] == ["hevc", "360p", "720p", "mp4"]
    assert chosen.playable_for == ["h264", "hevc"]
    # Renditions made before codecs were recorded are H.264, as every rendition then was.
    assert playback.codec_family(None) == "h264"
