"""The rendition table and ffmpeg command lines: decided by pure functions, then run for real."""

from __future__ import annotations

import itertools
import re
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from media.probe import MediaInfo, probe
from media.renditions import (
    LADDER,
    fast_start_command,
    first_rung,
    ladder_command,
    ladder_for,
    offline_rung,
    output_fps,
    output_size,
    parse_progress,
    picture_filters,
    remux_command,
)
from tests.media_samples import FFMPEG, PHONE, ffmpeg, make_samples

# Its fixtures are made once per module: the module's tests share one worker.
pytestmark = pytest.mark.xdist_group("test_renditions")


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    directory = tmp_path_factory.mktemp("renditions")
    made = make_samples(directory)
    tall = directory / "tall.mp4"
    # 720x1280 as a phone records it: landscape pixels, turned upright by the display matrix.
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440", "-t", "2",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-shortest", str(directory / "wide.mp4"),
    )  # fmt: skip
    ffmpeg("-display_rotation", "-90", "-i", str(directory / "wide.mp4"), "-c", "copy", str(tall))
    made["tall"] = tall
    yield made


def test_portrait_rungs_scale_the_short_side() -> None:
    assert [r.name for r in ladder_for(PHONE)] == ["360p", "540p", "720p", "1080p"]
    assert output_size(PHONE, 720) == (720, 1280)
    assert output_size(replace(PHONE, rotation=0), 720) == (1280, 720)


@pytest.mark.parametrize(
    ("width", "height", "rotation", "names", "first", "offline"),
    [
        (1920, 1080, 0, ["360p", "540p", "720p", "1080p"], "540p", "720p"),
        (1080, 1920, 0, ["360p", "540p", "720p", "1080p"], "540p", "720p"),
        (1920, 1080, 90, ["360p", "540p", "720p", "1080p"], "540p", "720p"),
        (3840, 2160, 0, ["360p", "540p", "720p", "1080p"], "540p", "720p"),
        (2560, 1440, 270, ["360p", "540p", "720p", "1080p"], "540p", "720p"),
        (1280, 720, 0, ["360p", "540p", "720p"], "540p", "720p"),
        # Between two rungs: a rung at the source's own size.
        (854, 480, 0, ["360p", "480p"], "480p", "480p"),
        (480, 854, 0, ["360p", "480p"], "480p", "480p"),
        (854, 480, 90, ["360p", "480p"], "480p", "480p"),
        (640, 480, 0, ["360p", "480p"], "480p", "480p"),
        (853, 479, 0, ["360p", "480p"], "480p", "480p"),
        (1600, 900, 0, ["360p", "540p", "720p", "900p"], "540p", "720p"),
        (1920, 800, 0, ["360p", "540p", "720p", "800p"], "540p", "720p"),
        # Within 10% of the rung below: not worth a rung of its own.
        (644, 362, 0, ["360p"], "360p", "360p"),
        (1024, 576, 0, ["360p", "540p"], "540p", "540p"),
        (1920, 1200, 0, ["360p", "540p", "720p", "1080p"], "540p", "720p"),
        # Smaller than every rung: one at its own size.
        (320, 180, 0, ["180p"], "180p", "180p"),
        (321, 241, 0, ["240p"], "240p", "240p"),
        (16, 16, 0, ["16p"], "16p", "16p"),
    ],
)
def test_rungs_first_and_offline_for_each_source_size(
    width: int, height: int, rotation: int, names: list[str], first: str, offline: str
) -> None:
    video = replace(PHONE, width=width, height=height, rotation=rotation)
    rungs = ladder_for(video)
    assert [rung.name for rung in rungs] == names
    assert first_rung(video).name == first
    assert offline_rung(rungs).name == offline
    # Never upscaled (beyond rounding to even), orientation kept, bitrates rising with size.
    for rung in rungs:
        out_w, out_h = output_size(video, rung.short_side)
        assert out_w <= video.display_width + 1 and out_h <= video.display_height + 1
        assert (out_w >= out_h) == (video.display_width >= video.display_height)
    assert all(a.video_kbps < b.video_kbps for a, b in itertools.pairwise(rungs))


def test_a_rung_at_the_source_size_takes_a_bitrate_between_its_neighbours() -> None:
    rungs = ladder_for(replace(PHONE, width=854, height=480, rotation=0))
    own = rungs[-1]
    assert (own.name, own.short_side) == ("480p", 480)
    assert LADDER[0].video_kbps < own.video_kbps < LADDER[1].video_kbps
    # By pixel count: 480 lines sit 62% of the way from 360 to 540.
    assert own.video_kbps == 1300
    assert output_size(replace(PHONE, width=854, height=480, rotation=0), 480) == (854, 480)


def test_odd_sizes_round_to_even() -> None:
    odd = replace(PHONE, width=321, height=241, rotation=0)
    width, height = output_size(odd, 240)
    assert width % 2 == 0 and height % 2 == 0


def test_hdr_is_tone_mapped_and_vfr_made_constant() -> None:
    filters = picture_filters(PHONE)
    assert filters[0] == "fps=30"
    assert any(f.startswith("zscale=pin=bt2020:tin=arib-std-b67:min=bt2020nc") for f in filters)
    assert any(f.startswith("tonemap=") for f in filters)
    sdr = picture_filters(replace(PHONE, transfer="bt709", primaries="bt709", matrix="bt709"))
    assert not any("tonemap" in f or "zscale" in f for f in sdr)
    assert output_fps(replace(PHONE, fps=240.0)) == 60


def test_ladder_is_one_process_with_a_two_second_gop() -> None:
    info = MediaInfo("mov", 120.0, 10, PHONE, None)
    args = ladder_command("ffmpeg", Path("in.mov"), Path("out"), info, LADDER[:3])
    assert args.count("-i") == 1
    graph = args[args.index("-filter_complex") + 1]
    assert "split=3[s0][s1][s2]" in graph
    assert "scale=360:640" in graph and "scale=720:1280" in graph
    assert args[args.index("-g:v:0") + 1] == "60"
    assert args[args.index("-hls_time") + 1] == "4"
    assert args[args.index("-var_stream_map") + 1] == "v:0,name:360p v:1,name:540p v:2,name:720p"


def test_progress_lines() -> None:
    assert parse_progress("out_time_us=30000000", 60.0) == 50
    assert parse_progress("out_time_ms=90000000", 60.0) == 100
    assert parse_progress("frame=12", 60.0) is None
    assert parse_progress("out_time_us=N/A", 60.0) is None


def _variants(master: Path) -> list[str]:
    return re.findall(r"RESOLUTION=(\d+x\d+)", master.read_text())


def test_portrait_ladder_runs_and_stays_portrait(samples: dict[str, Path], tmp_path: Path) -> None:
    info = probe(samples["tall"])
    rungs = ladder_for(info.video)
    assert [r.name for r in rungs] == ["360p", "540p", "720p"]
    command = ladder_command(FFMPEG, samples["tall"], tmp_path, info, rungs, preset="ultrafast")
    subprocess.run(command, check=True, capture_output=True)
    assert _variants(tmp_path / "master.m3u8") == ["360x640", "540x960", "720x1280"]
    for rung in rungs:
        playlist = (tmp_path / rung.name / "index.m3u8").read_text()
        assert "#EXT-X-MAP:URI=" in playlist and ".m4s" in playlist
    # The rungs carry upright pixels: players need no rotation metadata.
    rung_dir = tmp_path / "720p"
    joined = tmp_path / "720p.mp4"
    joined.write_bytes(
        next(rung_dir.glob("init*.mp4")).read_bytes() + (rung_dir / "seg-00000.m4s").read_bytes()
    )
    out = probe(joined)
    assert out.video.rotation == 0
    assert (out.video.width, out.video.height) == (720, 1280)


def test_a_source_between_rungs_gets_a_rung_at_its_own_size(tmp_path: Path) -> None:
    # 854x480 recorded sideways: 480x854 as shown, between the 360p and 540p rungs.
    wide, source = tmp_path / "wide.mp4", tmp_path / "between.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=854x480:rate=30", "-t", "1",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(wide),
    )  # fmt: skip
    ffmpeg("-display_rotation", "-90", "-i", str(wide), "-c", "copy", str(source))
    info = probe(source)
    rungs = ladder_for(info.video)
    out = tmp_path / "hls"
    command = ladder_command(FFMPEG, source, out, info, rungs, preset="ultrafast")
    subprocess.run(command, check=True, capture_output=True)
    assert _variants(out / "master.m3u8") == ["360x640", "480x854"]
    assert offline_rung(rungs).name == "480p"
    rung_dir = out / "480p"
    joined = tmp_path / "480p.mp4"
    joined.write_bytes(
        next(rung_dir.glob("init*.mp4")).read_bytes() + (rung_dir / "seg-00000.m4s").read_bytes()
    )
    assert (probe(joined).video.width, probe(joined).video.height) == (480, 854)


def test_hdr_source_is_encoded_to_sdr(samples: dict[str, Path], tmp_path: Path) -> None:
    info = probe(samples["hlg"])
    command = ladder_command(
        FFMPEG, samples["hlg"], tmp_path, info, ladder_for(info.video), preset="ultrafast"
    )
    subprocess.run(command, check=True, capture_output=True)
    assert _variants(tmp_path / "master.m3u8") == ["320x240"]


def test_remux_makes_hls_and_fast_start_mp4_without_reencoding(
    samples: dict[str, Path], tmp_path: Path
) -> None:
    info = probe(samples["portrait"])
    assert info.can_remux
    subprocess.run(
        remux_command(FFMPEG, samples["portrait"], tmp_path, info), check=True, capture_output=True
    )
    assert "#EXT-X-ENDLIST" in (tmp_path / "index.m3u8").read_text()
    assert not (tmp_path / "fast.mp4").exists()  # made after the video plays
    subprocess.run(
        fast_start_command(FFMPEG, samples["portrait"], tmp_path / "fast.mp4", info),
        check=True,
        capture_output=True,
    )
    mp4 = probe(tmp_path / "fast.mp4")
    assert (mp4.video.display_width, mp4.video.display_height) == (240, 320)
    assert mp4.duration_s == pytest.approx(info.duration_s, abs=0.1)
    head = (tmp_path / "fast.mp4").read_bytes()[:4096]
    assert head.find(b"moov") < head.find(b"mdat") or b"mdat" not in head
