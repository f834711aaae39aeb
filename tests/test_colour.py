"""Colour: every output is BT.709 in its tags and in its pixels, whatever the source carried.

Each source is two flat patches of a known colour (defined in BT.709 RGB), converted into the
source's colour space and encoded with all, some or none of its tags. The real commands then
make the first rendition, the ladder, the poster and the storyboard; the outputs' tags are read
from the H.264 VUI and the MP4 container, and a pixel of each patch is decoded as a player
would (by the tags it finds) and compared with the colour the source showed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import av
import pytest

from media.probe import BT709, Colour, probe
from media.renditions import (
    fast_start_command,
    first_rung,
    ladder_command,
    ladder_for,
    remux_command,
)
from media.thumbnails import make_poster, make_storyboard
from tests.media_samples import FFMPEG, PHONE, colr, ffmpeg

# Its fixtures are made once per module: the module's tests share one worker.
pytestmark = pytest.mark.xdist_group("test_colour")

RED = (192, 48, 32)
GREY = (128, 128, 128)
TOLERANCE = 8  # of 255: chroma subsampling and 8-bit rounding, twice

# (Kr, Kb) of each YCbCr matrix, by the numbers in AVColorSpace.
_MATRIX_WEIGHTS = {1: (0.2126, 0.0722), 5: (0.299, 0.114), 6: (0.299, 0.114), 9: (0.2627, 0.0593)}
_AV_BT709 = 1
_AV_LIMITED, _AV_FULL = 1, 2


@dataclass(frozen=True)
class Source:
    """How a sample is made: the colour space its pixels are in, and the tags it carries."""

    encoder: str  # "h264" (8-bit), "hevc" (10-bit) or "rgb" (8-bit RGB H.264)
    pixels: str  # zscale's output options: what the pixels are
    tags: str  # setparams' options: what the file says they are
    width: int = 64
    height: int = 48
    hdr: bool = False


# zscale input for the RGB patches: BT.709 primaries and curve, full range.
_RGB_IN = "pin=709:tin=709:min=gbr:rin=full"
_NO_TAGS = "color_primaries=unknown:color_trc=unknown:colorspace=unknown:range=unknown"
_BT601 = "p=170m:t=709:m=170m:r=limited"
SOURCES = {
    # SDR BT.601, every tag.
    "bt601_all": Source(
        "h264",
        _BT601,
        "color_primaries=smpte170m:color_trc=smpte170m:colorspace=smpte170m:range=tv",
    ),
    # SDR BT.601 with only its matrix tagged: primaries follow the matrix.
    "bt601_matrix_only": Source(
        "h264", _BT601, "color_primaries=unknown:color_trc=unknown:colorspace=smpte170m"
    ),
    # An untagged standard-definition picture: BT.601, as players guess.
    "sd_untagged": Source("h264", _BT601, _NO_TAGS),
    # Full range (what some Android phones record, `yuvj420p`), BT.709.
    "bt709_full_range": Source(
        "h264",
        "p=709:t=709:m=709:r=full",
        "color_primaries=bt709:color_trc=bt709:colorspace=bt709:range=pc",
    ),
    # 8-bit H.264 in BT.2020 SDR: not what BT.709 players expect; it must be converted.
    "bt2020_8bit": Source(
        "h264",
        "p=2020:t=709:m=2020_ncl:r=limited",
        "color_primaries=bt2020:color_trc=bt709:colorspace=bt2020nc:range=tv",
    ),
    # An untagged HD picture: BT.709, as players guess; remuxed, with the tags written in.
    "hd_untagged": Source("h264", "p=709:t=709:m=709:r=limited", _NO_TAGS, 1280, 720),
    # A phone's HDR: HEVC 10-bit HLG, every tag.
    "hlg_all": Source(
        "hevc",
        "p=2020:t=arib-std-b67:m=2020_ncl:r=limited",
        "color_primaries=bt2020:color_trc=arib-std-b67:colorspace=bt2020nc:range=tv",
        hdr=True,
    ),
    # The same pictures tagged with the BT.2020 matrix only: HDR until proven otherwise.
    "hlg_matrix_only": Source(
        "hevc",
        "p=2020:t=arib-std-b67:m=2020_ncl:r=limited",
        "color_primaries=unknown:color_trc=unknown:colorspace=bt2020nc",
        hdr=True,
    ),
    # HEVC 10-bit SD with no tags at all: SDR BT.601.
    "hevc_untagged": Source("hevc", _BT601, _NO_TAGS),
    # RGB H.264 (as screen recorders may write), untagged: sRGB's primaries, no matrix.
    "rgb_untagged": Source("rgb", "p=709:t=709:m=gbr:r=full", _NO_TAGS),
}


def make_source(source: Source, path: Path) -> None:
    half = source.width // 2
    patch = f"s={half}x{source.height}:r=30:d=1"
    pixel_format, encoder = {
        "hevc": (
            "yuv420p10le",
            ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:crf=8"],
        ),
        "h264": ("yuv420p", ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "8"]),
        "rgb": ("gbrp", ["-c:v", "libx264rgb", "-preset", "ultrafast", "-crf", "8"]),
    }[source.encoder]
    graph = (
        f"color=c=0x{RED[0]:02x}{RED[1]:02x}{RED[2]:02x}:{patch},format=gbrp[a];"
        f"color=c=0x{GREY[0]:02x}{GREY[1]:02x}{GREY[2]:02x}:{patch},format=gbrp[b];"
        f"[a][b]hstack,zscale={_RGB_IN}:{source.pixels}:npl=100,format={pixel_format},"
        f"setparams={source.tags}[v]"
    )
    ffmpeg("-filter_complex", graph, "-map", "[v]", *encoder, "-pix_fmt", pixel_format, str(path))


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    directory = tmp_path_factory.mktemp("colour")
    made = {}
    for name, source in SOURCES.items():
        made[name] = directory / f"{name}.mp4"
        make_source(source, made[name])
    yield made


def rgb_at(frame: av.VideoFrame, x: int, y: int, *, matrix: int, full_range: bool) -> tuple:
    """The RGB (0-255) a player shows at (x, y) of an 8-bit 4:2:0 picture."""
    luma, cb, cr = (bytes(plane) for plane in frame.planes)
    y_value = luma[y * frame.planes[0].line_size + x]
    u_value = cb[y // 2 * frame.planes[1].line_size + x // 2]
    v_value = cr[y // 2 * frame.planes[2].line_size + x // 2]
    if full_range:
        luma_n, cb_n, cr_n = y_value / 255, (u_value - 128) / 255, (v_value - 128) / 255
    else:
        luma_n, cb_n, cr_n = (y_value - 16) / 219, (u_value - 128) / 224, (v_value - 128) / 224
    kr, kb = _MATRIX_WEIGHTS[matrix]
    red = luma_n + 2 * (1 - kr) * cr_n
    blue = luma_n + 2 * (1 - kb) * cb_n
    green = (luma_n - kr * red - kb * blue) / (1 - kr - kb)
    return tuple(round(min(1.0, max(0.0, c)) * 255) for c in (red, green, blue))


def video_rgb(frame: av.VideoFrame, x: int, y: int) -> tuple:
    """As a video player decodes it: by the matrix and range the stream says."""
    assert frame.format.name == "yuv420p"
    return rgb_at(frame, x, y, matrix=frame.colorspace, full_range=frame.color_range == _AV_FULL)


def jpeg_rgb(path: Path, x: int, y: int) -> tuple:
    """As every JPEG decoder reads it (JFIF): BT.601 at full range."""
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    assert frame.format.name == "yuvj420p"
    return rgb_at(frame, x, y, matrix=5, full_range=True)


def close(actual: tuple, expected: tuple, tolerance: int = TOLERANCE) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def assert_tagged_bt709(path: Path, init: Path | None = None) -> av.VideoFrame:
    """The stream (H.264 VUI, as the decoder reads it) and the container both say BT.709,
    limited range."""
    with av.open(str(path)) as container:
        ctx = container.streams.video[0].codec_context
        frame = next(container.decode(video=0))
    assert ctx.name == "h264"
    vui = (frame.color_primaries, frame.color_trc, frame.colorspace, frame.color_range)
    assert vui == (_AV_BT709, _AV_BT709, _AV_BT709, _AV_LIMITED)
    assert colr(init or path) == (1, 1, 1, 0)
    return frame


def patches(width: int, height: int) -> list[tuple[tuple[int, int], tuple[int, int, int]]]:
    """Where to look (the middle of each patch) and what colour the source showed there."""
    return [((width // 4, height // 2), RED), ((3 * width // 4, height // 2), GREY)]


# What each source is: decided in one place, from whatever tags it carries.


def test_sources_are_classified_from_the_tags_they_carry(sources: dict[str, Path]) -> None:
    colours = {name: probe(path).video.colour for name, path in sources.items()}
    bt601 = Colour("smpte170m", "bt709", "smpte170m", full_range=False)
    assert colours["bt601_all"] == replace(bt601, transfer="smpte170m")
    assert colours["bt601_matrix_only"] == bt601
    assert colours["sd_untagged"] == bt601
    assert colours["hevc_untagged"] == bt601
    assert colours["bt709_full_range"] == replace(BT709, full_range=True)
    assert colours["bt2020_8bit"] == Colour("bt2020", "bt709", "bt2020nc", full_range=False)
    assert colours["hd_untagged"] == BT709
    assert colours["rgb_untagged"] == Colour("bt709", "bt709", "gbr", full_range=True)
    hlg = Colour("bt2020", "arib-std-b67", "bt2020nc", full_range=False)
    assert colours["hlg_all"] == colours["hlg_matrix_only"] == hlg
    remuxable = {name for name, path in sources.items() if probe(path).can_remux}
    assert remuxable == {"hd_untagged"}


def test_partial_tags_on_phone_video_are_classified_sensibly() -> None:
    # A BT.2020 matrix or primaries on 10-bit video is HDR until a transfer says otherwise.
    untagged = replace(PHONE, transfer=None, primaries=None, matrix=None)
    assert replace(untagged, matrix="bt2020nc").is_hdr
    assert replace(untagged, primaries="bt2020").is_hdr
    assert not replace(untagged, matrix="bt2020nc", transfer="bt2020-10").is_hdr
    assert not replace(untagged, matrix="bt2020nc", bit_depth=8, pix_fmt="yuv420p").is_hdr
    assert not untagged.is_hdr
    assert replace(PHONE, transfer="smpte2084", primaries=None).colour == Colour(
        "bt2020", "smpte2084", "bt2020nc", full_range=False
    )
    # Untagged: standard definition is BT.601, high definition BT.709, portrait or not.
    sd = replace(untagged, width=480, height=854, bit_depth=8, pix_fmt="yuv420p")
    assert sd.colour.matrix == "smpte170m" and sd.colour.primaries == "smpte170m"
    hd = replace(sd, width=720, height=1280)
    assert hd.colour == BT709
    assert replace(hd, pix_fmt="yuvj420p").colour.full_range


# The renditions: tagged BT.709 and showing the source's colours.


def _first_rendition(path: Path, out: Path) -> tuple[Path, Path]:
    """The first playable rendition as processing makes it: the stream and its init segment."""
    info = probe(path)
    if info.can_remux:
        subprocess.run(remux_command(FFMPEG, path, out, info), check=True, capture_output=True)
        rung_dir = out
        # The offline copy of a remux is an MP4 too: tagged in its VUI and its container.
        fast = fast_start_command(FFMPEG, path, out / "fast.mp4", info)
        subprocess.run(fast, check=True, capture_output=True)
        assert_tagged_bt709(out / "fast.mp4")
    else:
        rung = first_rung(info.video)
        command = ladder_command(FFMPEG, path, out, info, [rung], preset="ultrafast")
        subprocess.run(command, check=True, capture_output=True)
        rung_dir = out / rung.name
    init = rung_dir / "init.mp4"
    joined = out / "joined.mp4"
    joined.write_bytes(init.read_bytes() + (rung_dir / "seg-00000.m4s").read_bytes())
    return joined, init


@pytest.mark.parametrize("name", [name for name, source in SOURCES.items() if not source.hdr])
def test_sdr_first_rendition_is_bt709_and_shows_the_source_colours(
    sources: dict[str, Path], tmp_path: Path, name: str
) -> None:
    joined, init = _first_rendition(sources[name], tmp_path)
    frame = assert_tagged_bt709(joined, init)
    for (x, y), expected in patches(frame.width, frame.height):
        assert close(video_rgb(frame, x, y), expected), (name, video_rgb(frame, x, y), expected)


def _hdr_outputs_look_right(pictures: dict[str, list[tuple]]) -> None:
    """Tone-mapped, a grey stays grey and a red stays red; tagged only by its matrix, a phone's
    HLG picture comes out as it does with every tag."""
    for red, grey in pictures.values():
        assert max(grey) - min(grey) <= TOLERANCE and 60 <= grey[0] <= 200
        assert red[0] > red[1] + 60 and red[0] > red[2] + 60
    assert all(
        close(a, b, 4)
        for a, b in zip(pictures["hlg_all"], pictures["hlg_matrix_only"], strict=True)
    )


def test_hdr_first_rendition_is_tone_mapped_to_bt709(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    pictures = {}
    for name in ("hlg_all", "hlg_matrix_only"):
        joined, init = _first_rendition(sources[name], tmp_path / name)
        frame = assert_tagged_bt709(joined, init)
        pictures[name] = [video_rgb(frame, x, y) for (x, y), _ in patches(frame.width, 48)]
    _hdr_outputs_look_right(pictures)


def test_every_ladder_rung_is_tagged_bt709(sources: dict[str, Path], tmp_path: Path) -> None:
    path = sources["bt601_matrix_only"]
    info = probe(path)
    rungs = ladder_for(info.video)
    command = ladder_command(FFMPEG, path, tmp_path, info, rungs, preset="ultrafast")
    subprocess.run(command, check=True, capture_output=True)
    for rung in rungs:
        init = tmp_path / rung.name / "init.mp4"
        joined = tmp_path / f"{rung.name}.mp4"
        joined.write_bytes(
            init.read_bytes() + (tmp_path / rung.name / "seg-00000.m4s").read_bytes()
        )
        frame = assert_tagged_bt709(joined, init)
        for (x, y), expected in patches(frame.width, frame.height):
            assert close(video_rgb(frame, x, y), expected)


# Posters and storyboards: JPEGs that show the source's colours.


@pytest.mark.parametrize("name", [name for name, source in SOURCES.items() if not source.hdr])
def test_sdr_poster_shows_the_source_colours(
    sources: dict[str, Path], tmp_path: Path, name: str
) -> None:
    out = tmp_path / "poster.jpg"
    result = make_poster(FFMPEG, sources[name], probe(sources[name]), out)
    for (x, y), expected in patches(result.width, result.height):
        assert close(jpeg_rgb(out, x, y), expected), (name, jpeg_rgb(out, x, y), expected)


def test_hdr_poster_and_storyboard_are_tone_mapped(
    sources: dict[str, Path], tmp_path: Path
) -> None:
    posters = {}
    tiles = {}
    for name in ("hlg_all", "hlg_matrix_only"):
        info = probe(sources[name])
        poster = tmp_path / f"{name}.jpg"
        result = make_poster(FFMPEG, sources[name], info, poster)
        posters[name] = [jpeg_rgb(poster, x, y) for (x, y), _ in patches(result.width, 48)]
        (tmp_path / name).mkdir()
        board = make_storyboard(FFMPEG, sources[name], info, tmp_path / name)
        tiles[name] = [
            jpeg_rgb(board.sprite_path, x, y)
            for (x, y), _ in patches(board.tile_width, board.tile_height)
        ]
    _hdr_outputs_look_right(posters)
    _hdr_outputs_look_right(tiles)


def test_sdr_storyboard_shows_the_source_colours(sources: dict[str, Path], tmp_path: Path) -> None:
    for name in ("bt601_all", "bt709_full_range", "bt2020_8bit"):
        (tmp_path / name).mkdir()
        board = make_storyboard(FFMPEG, sources[name], probe(sources[name]), tmp_path / name)
        for (x, y), expected in patches(board.tile_width, board.tile_height):
            shown = jpeg_rgb(board.sprite_path, x, y)
            assert close(shown, expected), (name, shown, expected)
