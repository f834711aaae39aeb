"""Probing real (generated) phone-like media, and rejecting what cannot become a video."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import av
import pytest

from media.probe import MediaInfo, MediaLimits, MediaRejected, probe, validate
from tests.media_samples import PHONE, ffmpeg, make_samples, recorder_webm

# Its fixtures are made once per module: the module's tests share one worker.
pytestmark = pytest.mark.xdist_group("test_probe")

LIMITS = MediaLimits(max_bytes=50 * 1024 * 1024, max_duration_s=600)


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    yield make_samples(tmp_path_factory.mktemp("media"))


def test_landscape_h264_can_be_remuxed(samples: dict[str, Path]) -> None:
    info = probe(samples["landscape"])
    assert (info.video.codec, info.video.width, info.video.height) == ("h264", 320, 240)
    assert info.video.rotation == 0
    assert info.duration_s == pytest.approx(4.0, abs=0.1)
    assert info.video.fps == pytest.approx(30.0)
    assert info.audio is not None and info.audio.codec == "aac"
    assert info.can_remux
    validate(info, LIMITS)


def test_portrait_phone_video_reports_display_size_after_rotation(
    samples: dict[str, Path],
) -> None:
    info = probe(samples["portrait"])
    assert info.video.rotation == 90
    assert (info.video.width, info.video.height) == (320, 240)
    assert (info.video.display_width, info.video.display_height) == (240, 320)


def test_hdr_hlg_ten_bit_is_recognised_and_not_remuxed(samples: dict[str, Path]) -> None:
    info = probe(samples["hlg"])
    assert info.video.transfer == "arib-std-b67"
    assert info.video.primaries == "bt2020"
    assert info.video.is_hdr
    assert info.video.bit_depth == 10
    assert not info.can_remux


def test_odd_dimensions_and_non_420_are_probed_but_not_remuxed(samples: dict[str, Path]) -> None:
    info = probe(samples["odd_size"])
    assert (info.video.width, info.video.height) == (321, 241)
    assert info.audio is None
    assert not info.can_remux


@pytest.mark.parametrize(
    ("sample", "code"),
    [
        ("empty", "empty_file"),
        ("not_a_video", "not_a_video"),
        ("audio_only", "audio_only"),
        ("truncated", "truncated"),
        ("truncated_faststart", "truncated"),
    ],
)
def test_hostile_files_are_rejected_with_a_reason(
    samples: dict[str, Path], sample: str, code: str
) -> None:
    with pytest.raises(MediaRejected) as rejected:
        probe(samples[sample])
    assert rejected.value.code == code
    assert rejected.value.detail.endswith(".")


def test_limits(samples: dict[str, Path]) -> None:
    info = probe(samples["landscape"])
    cases = [
        (replace(LIMITS, max_duration_s=3), "too_long"),
        (replace(LIMITS, max_bytes=1000), "too_big"),
        (replace(LIMITS, max_side=300), "frame_too_large"),
        (replace(LIMITS, max_pixels=320 * 200), "frame_too_large"),
        (replace(LIMITS, min_side=256), "frame_too_small"),
        (replace(LIMITS, max_pixel_rate=320 * 240 * 29), "frame_rate_too_high"),
    ]
    for limits, code in cases:
        with pytest.raises(MediaRejected) as rejected:
            validate(info, limits)
        assert rejected.value.code == code


def _phone(width: int, height: int, fps: float, rotation: int = 0) -> MediaInfo:
    video = replace(PHONE, width=width, height=height, fps=fps, rotation=rotation)
    return MediaInfo("mov", 60.0, 40 * 1024 * 1024, video, None)


@pytest.mark.parametrize(
    ("width", "height", "fps", "rotation"),
    [
        (3840, 2160, 60.0, 0),  # a phone's 4K60
        (3840, 2160, 59.94, 90),  # the same, held upright
        (4096, 2160, 60.0, 0),  # DCI 4K60: exactly H.264 level 5.2
        (1920, 1080, 240.0, 0),  # slow motion
        (4096, 2304, 30.0, 0),  # the largest level 5.2 picture
    ],
)
def test_what_phones_record_is_within_the_default_limits(
    width: int, height: int, fps: float, rotation: int
) -> None:
    validate(_phone(width, height, fps, rotation), LIMITS)


@pytest.mark.parametrize(
    ("width", "height", "fps", "code"),
    [
        (
            8192,
            8192,
            30.0,
            "frame_too_large",
        ),  # no phone decodes it; remuxed it would be handed out
        (7680, 4320, 24.0, "frame_too_large"),  # 8K
        (4096, 2320, 30.0, "frame_too_large"),  # past level 5.2's picture
        (4160, 64, 30.0, "frame_too_large"),  # past 4096 a side
        (3840, 2160, 120.0, "frame_rate_too_high"),
        (1920, 1080, 300.0, "frame_rate_too_high"),
    ],
)
def test_what_no_phone_can_play_is_rejected_by_the_default_limits(
    width: int, height: int, fps: float, code: str
) -> None:
    with pytest.raises(MediaRejected) as rejected:
        validate(_phone(width, height, fps), LIMITS)
    assert rejected.value.code == code
    assert rejected.value.detail.endswith(".")


@pytest.mark.parametrize("codec", ["libvpx", "libvpx-vp9"])
def test_a_browser_recording_without_a_length_in_its_header_is_read_to_its_end(
    tmp_path: Path, codec: str
) -> None:
    recording = tmp_path / "recording.webm"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30", "-f", "lavfi", "-i",
           "sine=frequency=440:duration=3", "-t", "3", "-c:v", codec, "-deadline", "realtime",
           "-cpu-used", "8", "-c:a", "libopus", "-live", "1", "-f", "webm",
           str(recording))  # fmt: skip
    info = probe(recording)
    assert info.duration_s == pytest.approx(3.0, abs=0.1)
    assert info.video.fps == pytest.approx(30.0, abs=0.5)
    assert info.audio is not None and info.audio.codec == "opus"
    assert not info.can_remux  # encoded, not remuxed
    validate(info, LIMITS)


def _packet_durations(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [p.duration or 0 for p in container.demux(stream) if p.size]


@pytest.mark.parametrize("codec", ["libvpx", "libvpx-vp9"])
def test_a_recording_whose_blocks_carry_no_duration_keeps_its_frame_rate(
    tmp_path: Path, codec: str
) -> None:
    recording = tmp_path / "recording.webm"
    recorder_webm(recording, frames=30, codec=codec)
    assert _packet_durations(recording) == [0] * 30  # as MediaRecorder writes them
    info = probe(recording)
    # 30 pictures a 30th of a second apart: one second, not the 29 intervals between them.
    assert info.duration_s == pytest.approx(1.0, abs=0.005)
    assert info.video.fps == pytest.approx(30.0, abs=0.1)
    validate(info, LIMITS)


def test_a_one_picture_recording_whose_blocks_carry_no_duration_is_accepted(
    tmp_path: Path,
) -> None:
    recording = tmp_path / "one.webm"
    recorder_webm(recording, frames=1)
    assert _packet_durations(recording) == [0]
    info = probe(recording)
    assert info.duration_s == pytest.approx(1 / 30, abs=0.002)
    assert info.video.fps == pytest.approx(30.0, abs=0.5)
    validate(info, LIMITS)


def test_pyav_errors_do_not_leave_the_media_package(tmp_path: Path) -> None:
    from media.ffmpeg import FFmpegFailed
    from media.thumbnails import measure_luma

    broken = tmp_path / "poster.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + bytes(64))  # a JPEG header and nothing after
    with pytest.raises(FFmpegFailed):
        measure_luma(broken)


def test_limits_and_settings_load_without_pyav() -> None:
    import subprocess
    import sys

    code = (
        "import sys, fieldcast.settings, media.limits; "
        "assert 'av' not in sys.modules, 'av imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_domain_never_imports_pyav() -> None:
    import ast

    root = Path(__file__).resolve().parent.parent / "fieldcast"
    importers = []
    for module in root.rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(name == "av" or name.startswith("av.") for name in names):
                importers.append(module.relative_to(root.parent).as_posix())
    assert importers == []
