"""Posters and storyboards: sizes and cues decided by pure functions, then made for real."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import av
import pytest

from media.probe import MediaInfo, probe
from media.thumbnails import (
    MAX_SPRITE_SIDE,
    Luma,
    Storyboard,
    StoryboardLayout,
    keyframes_command,
    make_early_poster,
    make_poster,
    make_storyboard,
    measure_luma,
    poster_command,
    poster_size,
    poster_times,
    storyboard_command,
    storyboard_layout,
    storyboard_vtt,
)
from tests.media_samples import FFMPEG, PHONE, ffmpeg, make_samples

# Its fixtures are made once per module: the module's tests share one worker.
pytestmark = pytest.mark.xdist_group("test_thumbnails")

WIDE = replace(PHONE, rotation=0, transfer="bt709", primaries="bt709", pix_fmt="yuv420p")
BLACK_S = 4  # the black-start sample is black for this long, then a test pattern for 2 s
RAMP_STEP = 2  # the ramp sample's grey level rises by this much every frame


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    directory = tmp_path_factory.mktemp("thumbnails")
    made = make_samples(directory)
    # Long enough black that the first three poster candidates (2 s, 3 s, 1.2 s) land in it.
    made["black_start"] = directory / "black-start.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", f"color=c=black:size=320x240:rate=30:duration={BLACK_S}",
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=2",
        "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        str(made["black_start"]),
    )  # fmt: skip
    made["all_black"] = directory / "all-black.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "color=c=black:size=320x240:rate=30:duration=2",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        str(made["all_black"]),
    )  # fmt: skip
    # Frame n is a flat grey of level 2n: which frame a tile shows can be read off its luma.
    made["ramp"] = directory / "ramp.mp4"
    ffmpeg(
        "-f", "lavfi",
        "-i", f"color=c=black:size=160x120:rate=30:duration=4,format=gray,geq=lum={RAMP_STEP}*N",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        str(made["ramp"]),
    )  # fmt: skip
    yield made


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    uri: str
    x: int
    y: int
    w: int
    h: int


TIME = r"(\d+):(\d\d):(\d\d)\.(\d{3})"
CUE = re.compile(rf"{TIME} --> {TIME}\n(\S+)#xywh=(\d+),(\d+),(\d+),(\d+)")


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_vtt(text: str) -> list[Cue]:
    assert text.startswith("WEBVTT\n")
    return [
        Cue(
            _seconds(*match.groups()[0:4]),
            _seconds(*match.groups()[4:8]),
            match.group(9),
            *(int(value) for value in match.groups()[9:13]),
        )
        for match in CUE.finditer(text)
    ]


def picture(path: Path) -> av.VideoFrame:
    with av.open(str(path)) as container:
        return next(container.decode(video=0))


def region_mean_luma(frame: av.VideoFrame, x: int, y: int, w: int, h: int) -> float:
    plane = frame.planes[0]
    data = bytes(plane)
    values = bytearray()
    for row in range(y, y + h):
        values += data[row * plane.line_size + x : row * plane.line_size + x + w]
    return sum(values) / len(values) / 255


# Poster: pure decisions


def test_poster_fits_1280_keeps_orientation_and_never_upscales() -> None:
    assert poster_size(PHONE) == (720, 1280)
    assert poster_size(replace(WIDE, width=3840, height=2160)) == (1280, 720)
    assert poster_size(replace(WIDE, width=320, height=240)) == (320, 240)
    width, height = poster_size(replace(WIDE, width=321, height=241))
    assert width % 2 == 0 and height % 2 == 0


def test_poster_candidates_stay_inside_the_clip() -> None:
    assert poster_times(6.0) == [2.0, 3.0, 1.2, 4.0]
    assert poster_times(600.0)[0] == 200.0
    # The last window must still hold a second of video.
    assert max(poster_times(2.4)) <= 1.4
    # Too short for several candidates: one window around the middle.
    assert poster_times(1.5) == [0.25]
    assert poster_times(0.2) == [0.0]


def test_poster_command_seeks_then_tone_maps_a_portrait_frame() -> None:
    info = MediaInfo("mov", 60.0, 10, PHONE, None)
    args = poster_command("ffmpeg", Path("in.mov"), info, 20.0, Path("poster.jpg"))
    assert args.index("-ss") < args.index("-i")  # fast input seek
    assert args[args.index("-ss") + 1] == "20.000"
    assert args[args.index("-frames:v") + 1] == "1"
    graph = args[args.index("-vf") + 1]
    assert "scale=720:1280" in graph
    assert "tonemap=" in graph and "thumbnail=30" in graph
    assert args[-1] == "poster.jpg"


def test_black_and_flat_pictures_are_not_good_posters() -> None:
    assert not Luma(mean=0.03, stdev=0.05).looks_good  # a black frame with noise
    assert not Luma(mean=0.5, stdev=0.005).looks_good  # a grey wall
    assert Luma(mean=0.4, stdev=0.2).looks_good
    assert Luma(mean=0.4, stdev=0.2).score > Luma(mean=0.03, stdev=0.05).score


# Poster: made for real


def test_landscape_and_portrait_posters_keep_their_orientation(
    samples: dict[str, Path], tmp_path: Path
) -> None:
    for name, size in (("landscape", (320, 240)), ("portrait", (240, 320))):
        out = tmp_path / f"{name}.jpg"
        result = make_poster(FFMPEG, samples[name], probe(samples[name]), out)
        frame = picture(out)
        assert (result.width, result.height) == size
        assert (frame.width, frame.height) == size
        assert measure_luma(out).looks_good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["landscape.jpg", "portrait.jpg"]


def test_poster_skips_a_black_opening(samples: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "poster.jpg"
    result = make_poster(FFMPEG, samples["black_start"], probe(samples["black_start"]), out)
    assert result.at_s >= BLACK_S
    assert measure_luma(out).mean > 0.3


def test_an_all_black_clip_still_gets_a_poster(samples: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "poster.jpg"
    result = make_poster(FFMPEG, samples["all_black"], probe(samples["all_black"]), out)
    assert (picture(out).width, picture(out).height) == (result.width, result.height)
    assert list(tmp_path.iterdir()) == [out]


def test_hdr_poster_is_an_8bit_jpeg_neither_black_nor_blown_out(
    samples: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "poster.jpg"
    result = make_poster(FFMPEG, samples["hlg"], probe(samples["hlg"]), out)
    frame = picture(out)
    assert frame.format.name == "yuvj420p"
    assert (frame.width, frame.height) == (result.width, result.height) == (320, 240)
    assert 0.2 < measure_luma(out).mean < 0.8


# Poster at playable: key frames of the first seconds


def test_keyframes_command_decodes_only_key_frames_of_the_first_seconds() -> None:
    info = MediaInfo("mov", 60.0, 10, PHONE, None)
    args = keyframes_command("ffmpeg", Path("in.mov"), info, Path("key-%02d.jpg"), window_s=10)
    assert args.index("-skip_frame") < args.index("-i")  # an input option: the decoder skips
    assert args[args.index("-skip_frame") + 1] == "nokey"
    assert args[args.index("-t") + 1] == "10.000"
    graph = args[args.index("-vf") + 1]
    assert "scale=720:1280" in graph and "tonemap=" in graph  # upright, tone-mapped HDR
    assert "fps=" not in graph  # every key frame as it is, no duplicates
    assert args[-1] == "key-%02d.jpg"


def test_the_poster_at_playable_is_a_key_frame_past_a_black_opening(tmp_path: Path) -> None:
    source = tmp_path / "lens-cap.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "color=c=black:size=320x240:rate=30:duration=1.5",
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=3",
        "-filter_complex", "[0:v][1:v]concat=n=2:v=1:a=0",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "15",
        str(source),
    )  # fmt: skip
    out = tmp_path / "poster.jpg"
    result = make_early_poster(FFMPEG, source, probe(source), out)
    assert result.luma is not None and result.luma.looks_good
    assert measure_luma(out).mean > 0.3
    assert (picture(out).width, picture(out).height) == (320, 240)
    assert set(tmp_path.iterdir()) == {source, out}  # no key frame left behind


def test_when_every_early_key_frame_is_black_the_poster_is_sought_further_in(
    samples: dict[str, Path], tmp_path: Path
) -> None:
    # One key frame, at the start, in the black: the candidates across the clip are tried.
    out = tmp_path / "poster.jpg"
    result = make_early_poster(FFMPEG, samples["black_start"], probe(samples["black_start"]), out)
    assert result.at_s >= BLACK_S
    assert measure_luma(out).mean > 0.3
    assert list(tmp_path.iterdir()) == [out]


def test_the_hdr_poster_at_playable_is_tone_mapped(
    samples: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "poster.jpg"
    make_early_poster(FFMPEG, samples["hlg"], probe(samples["hlg"]), out)
    assert picture(out).format.name == "yuvj420p"
    assert 0.2 < measure_luma(out).mean < 0.8


def test_a_blurred_picture_scores_below_a_sharp_one(tmp_path: Path) -> None:
    sharp, blurred = tmp_path / "sharp.jpg", tmp_path / "blurred.jpg"
    pattern = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=1", "-frames:v", "1"]
    ffmpeg(*pattern, str(sharp))
    ffmpeg(*pattern, "-vf", "gblur=sigma=6", str(blurred))
    assert measure_luma(sharp).sharpness > 1.5 * measure_luma(blurred).sharpness
    assert measure_luma(sharp).score > measure_luma(blurred).score


def test_a_window_of_one_frame_is_taken_as_it_is() -> None:
    # `thumbnail` refuses to pick among fewer than two frames: a 1 fps clip has one a second.
    info = MediaInfo("mov", 1.0, 10, replace(WIDE, fps=1.0), None)
    graph = poster_command("ffmpeg", Path("in.mov"), info, 0.0, Path("p.jpg"))
    assert "thumbnail" not in graph[graph.index("-vf") + 1]


@pytest.mark.parametrize(
    "source",
    [
        ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=1", "-frames:v", "1"],  # one frame, 1 s
        ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30", "-frames:v", "1"],  # one frame
        ["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30", "-t", "0.3"],  # under a second
    ],
    ids=["single-frame-1s", "single-frame", "sub-second"],
)
def test_a_clip_of_one_frame_or_a_blink_gets_a_poster_and_a_storyboard(
    tmp_path: Path, source: list[str]
) -> None:
    clip = tmp_path / "clip.mp4"
    ffmpeg(*source, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(clip))
    info = probe(clip)
    poster = make_poster(FFMPEG, clip, info, tmp_path / "poster.jpg")
    assert (picture(tmp_path / "poster.jpg").width, poster.height) == (160, 120)
    assert measure_luma(tmp_path / "poster.jpg").looks_good
    (tmp_path / "storyboard").mkdir()
    storyboard = make_storyboard(FFMPEG, clip, info, tmp_path / "storyboard")
    assert storyboard.count == 1 and storyboard.sprite_path.stat().st_size > 0


# Storyboard: pure decisions


def test_tile_layout_for_a_very_short_clip() -> None:
    layout = storyboard_layout(0.4, WIDE)
    assert (layout.interval_s, layout.count, layout.columns, layout.rows) == (1, 1, 1, 1)
    assert (layout.tile_width, layout.tile_height) == (160, 90)


def test_tile_layout_at_and_just_past_100_seconds() -> None:
    layout = storyboard_layout(100.0, WIDE)
    assert (layout.interval_s, layout.count, layout.columns, layout.rows) == (1, 100, 10, 10)
    assert (layout.sprite_width, layout.sprite_height) == (1600, 900)
    longer = storyboard_layout(100.5, WIDE)
    assert (longer.interval_s, longer.count, longer.rows) == (2, 51, 6)
    assert storyboard_layout(180.0, WIDE).interval_s == 2


def test_tile_layout_for_ten_minutes_of_portrait_video() -> None:
    layout = storyboard_layout(600.0, PHONE)
    assert (layout.interval_s, layout.count) == (6, 100)
    assert (layout.tile_width, layout.tile_height) == (90, 160)
    assert (layout.sprite_width, layout.sprite_height) == (900, 1600)


def test_extreme_aspect_ratios_keep_the_sprite_within_limits() -> None:
    for video in (replace(WIDE, width=8000, height=200), replace(WIDE, width=200, height=8000)):
        layout = storyboard_layout(600.0, video)
        assert layout.columns * layout.rows >= layout.count == 100
        assert layout.sprite_width <= MAX_SPRITE_SIDE
        assert layout.sprite_height <= MAX_SPRITE_SIDE
        aspect = layout.tile_width / layout.tile_height
        assert aspect == pytest.approx(video.display_width / video.display_height, rel=0.1)


def test_vtt_cues_tile_the_sprite_and_end_at_the_duration() -> None:
    layout = StoryboardLayout(
        interval_s=2, count=3, tile_width=160, tile_height=90, columns=2, rows=2
    )
    cues = parse_vtt(storyboard_vtt(layout, 5.25, "sprite.jpg"))
    assert [(c.start, c.end) for c in cues] == [(0, 2), (2, 4), (4, 5.25)]
    assert [(c.x, c.y) for c in cues] == [(0, 0), (160, 0), (0, 90)]
    assert {c.uri for c in cues} == {"sprite.jpg"}
    # An hour-long clip: hours in the cue times, the last tile on the tenth row.
    long = storyboard_layout(3725.5, WIDE)
    hours = storyboard_vtt(long, 3725.5, "s.jpg")
    assert (long.interval_s, long.count) == (38, 99)
    assert hours.rstrip().endswith("01:02:04.000 --> 01:02:05.500\ns.jpg#xywh=1280,810,160,90")


def test_storyboard_command_samples_once_per_interval_and_tone_maps() -> None:
    info = MediaInfo("mov", 600.0, 10, PHONE, None)
    layout = storyboard_layout(600.0, PHONE)
    args = storyboard_command("ffmpeg", Path("in.mov"), info, layout, Path("sprite.jpg"))
    graph = args[args.index("-vf") + 1].split(",")
    # The constant-rate step of the renditions would multiply every sample 30 times.
    assert [f for f in graph if f.startswith("fps=")] == ["fps=1/6:round=up"]
    assert "scale=90:160:flags=bicubic" in graph and "tile=10x10" in graph
    assert any(f.startswith("tonemap=") for f in graph)
    assert args[args.index("-frames:v") + 1] == "1"


# Storyboard: made for real


def check_storyboard(storyboard: Storyboard, duration_s: float) -> list[Cue]:
    """The cues a player would follow: contiguous, complete, inside the sprite, not blank."""
    sprite = picture(storyboard.sprite_path)
    assert (sprite.width, sprite.height) == (
        storyboard.columns * storyboard.tile_width,
        storyboard.rows * storyboard.tile_height,
    )
    cues = parse_vtt(storyboard.vtt_path.read_text())
    assert len(cues) == storyboard.count
    assert cues[0].start == 0
    assert cues[-1].end == pytest.approx(duration_s, abs=0.001)
    for before, after in itertools.pairwise(cues):
        assert before.end == after.start
    for cue in cues:
        assert cue.uri == storyboard.sprite_path.name
        assert (cue.w, cue.h) == (storyboard.tile_width, storyboard.tile_height)
        assert cue.x + cue.w <= sprite.width and cue.y + cue.h <= sprite.height
    assert len({(cue.x, cue.y) for cue in cues}) == len(cues)
    # The last cue points at a real picture, not the padding of an unfilled grid cell.
    last = cues[-1]
    assert region_mean_luma(sprite, last.x, last.y, last.w, last.h) > 0.2
    return cues


def test_landscape_storyboard(samples: dict[str, Path], tmp_path: Path) -> None:
    info = probe(samples["landscape"])
    storyboard = make_storyboard(FFMPEG, samples["landscape"], info, tmp_path)
    assert storyboard.tile_width > storyboard.tile_height
    assert (storyboard.interval_s, storyboard.count) == (1, 4)
    check_storyboard(storyboard, info.duration_s)


def test_portrait_storyboard_has_portrait_tiles(samples: dict[str, Path], tmp_path: Path) -> None:
    info = probe(samples["portrait"])
    storyboard = make_storyboard(
        FFMPEG, samples["portrait"], info, tmp_path, sprite_name="tiles.jpg"
    )
    assert (storyboard.tile_width, storyboard.tile_height) == (90, 120)
    assert storyboard.sprite_path == tmp_path / "tiles.jpg"
    check_storyboard(storyboard, info.duration_s)


def test_hdr_storyboard(samples: dict[str, Path], tmp_path: Path) -> None:
    info = probe(samples["hlg"])
    storyboard = make_storyboard(FFMPEG, samples["hlg"], info, tmp_path)
    assert picture(storyboard.sprite_path).format.name == "yuvj420p"
    check_storyboard(storyboard, info.duration_s)


def test_each_tile_shows_the_moment_its_cue_starts(
    samples: dict[str, Path], tmp_path: Path
) -> None:
    info = probe(samples["ramp"])
    storyboard = make_storyboard(FFMPEG, samples["ramp"], info, tmp_path)
    sprite = picture(storyboard.sprite_path)
    for cue in check_storyboard(storyboard, info.duration_s):
        frame_number = round(cue.start * 30)
        shown = region_mean_luma(sprite, cue.x, cue.y, cue.w, cue.h)
        assert shown == pytest.approx(RAMP_STEP * frame_number / 255, abs=0.03)
