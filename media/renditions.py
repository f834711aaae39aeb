"""The rendition table and the ffmpeg command lines built from it.

Pure functions: they take what `media.probe` found and return argument lists, so every
decision (which rungs, which sizes, tone mapping, constant frame rate, GOP) is unit-tested
without running ffmpeg. Differences from the usual per-rung approach: one ffmpeg process decodes
the source once and feeds every rung; sizes follow the picture as displayed (after rotation),
scaling the short side so portrait stays portrait; a source between two rungs also gets a rung
at its own size; every output is SDR BT.709 in its pixels and in its tags, whatever the source
was (HDR is tone-mapped, BT.601 and BT.2020 converted, full range made limited).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from media.playlists import bitrates, parse_growing
from media.probe import BT709, Colour, MediaInfo, VideoInfo

GOP_SECONDS = 2
SEGMENT_SECONDS = 4
AUDIO_KBPS = 128
LOUDNESS = "loudnorm=I=-16:TP=-1.5:LRA=11"


@dataclass(frozen=True)
class Rung:
    name: str
    short_side: int
    video_kbps: int

    @property
    def max_kbps(self) -> int:
        return self.video_kbps * 3 // 2

    @property
    def buffer_kbps(self) -> int:
        return self.video_kbps * 2


LADDER: tuple[Rung, ...] = (
    Rung("360p", 360, 800),
    Rung("540p", 540, 1600),
    Rung("720p", 720, 2800),
    Rung("1080p", 1080, 5000),
)
OFFLINE_RUNG = LADDER[2]  # the offline MP4: at most 720p
FIRST_RUNG = LADDER[1]  # encoded first when the source cannot be remuxed
# A source's own size is a rung of its own only when its short side is at least this much larger
# than the rung below: a 362p source next to the 360p rung gains nothing from a 362p one.
OWN_RUNG_MARGIN = 1.1


def _even(value: float) -> int:
    return max(2, round(value / 2) * 2)


def output_size(video: VideoInfo, short_side: int) -> tuple[int, int]:
    """Display size scaled so the short side is `short_side` (never larger than the source)."""
    width, height = video.display_width, video.display_height
    source_short = min(width, height)
    target_short = min(short_side, source_short)
    scale = target_short / source_short
    return _even(width * scale), _even(height * scale)


def _own_rung(short_side: int) -> Rung:
    """A rung at a size between two of the table's, its bitrate interpolated between theirs by
    pixel count (below the smallest: the smallest's bitrate)."""
    below = [rung for rung in LADDER if rung.short_side <= short_side]
    above = [rung for rung in LADDER if rung.short_side > short_side]
    if not below:
        return Rung(f"{short_side}p", short_side, LADDER[0].video_kbps)
    low, high = below[-1], above[0]
    share = (short_side**2 - low.short_side**2) / (high.short_side**2 - low.short_side**2)
    kbps = low.video_kbps + share * (high.video_kbps - low.video_kbps)
    return Rung(f"{short_side}p", short_side, round(kbps / 50) * 50)


def ladder_for(video: VideoInfo) -> list[Rung]:
    """The rungs worth making for this source: the table's up to its size (never upscaled),
    plus one at the source's own size when it lies between two of them, so an 854x480 source
    keeps its 480 lines. That own-size rung is left out when it would be less than
    OWN_RUNG_MARGIN (10%) larger than the rung below, and sources beyond the largest rung stop
    there (4K gets up to 1080p). A source smaller than every rung gets one at its own size."""
    source_short = _even(min(video.display_width, video.display_height))
    rungs = [rung for rung in LADDER if rung.short_side <= source_short]
    if source_short < LADDER[-1].short_side and (
        not rungs or source_short >= rungs[-1].short_side * OWN_RUNG_MARGIN
    ):
        rungs.append(_own_rung(source_short))
    return rungs


def best_rung(rungs: Sequence[Rung], cap: Rung) -> Rung:
    """The largest of `rungs` no larger than `cap` (the smallest when all are larger)."""
    fitting = [rung for rung in rungs if rung.short_side <= cap.short_side]
    return fitting[-1] if fitting else rungs[0]


def first_rung(video: VideoInfo) -> Rung:
    """The rung encoded for the first playable rendition when the source cannot be remuxed:
    as close to the source's size as FIRST_RUNG allows, so it is quick to encode."""
    return best_rung(ladder_for(video), FIRST_RUNG)


def h264_after_hevc_rung(video: VideoInfo) -> Rung:
    """The H.264 rendition made right after an HEVC source's copy, for the players that cannot
    decode HEVC: the lowest rung, the quickest to make, as those players wait for it."""
    return best_rung(ladder_for(video), LADDER[0])


def offline_rung(rungs: Sequence[Rung]) -> Rung:
    """The rung the offline MP4 is made from: the best one up to 720p."""
    return best_rung(rungs, OFFLINE_RUNG)


def output_fps(video: VideoInfo) -> int:
    """A constant output rate: the source's average, capped at 60, at least 1."""
    if not video.fps or math.isnan(video.fps):
        return 30
    return max(1, min(60, round(video.fps)))


# JPEG (JFIF) pictures: BT.601 YCbCr at full range, BT.709 primaries and curve (as sRGB).
JPEG = Colour("bt709", "bt709", "bt470bg", full_range=True)


def colour_filters(
    video: VideoInfo, target: Colour = BT709, size: tuple[int, int] | None = None
) -> list[str]:
    """Filters turning the source's pixels into `target`'s: tone mapping for HDR, a conversion
    for any other difference (BT.601 or BT.2020 SDR, full range), nothing when they match.

    They start by stating what the source is (`VideoInfo.colour`), as the frames' own tags may
    be missing or partial: ffmpeg would otherwise convert from a guess of its own on the way to
    the encoder, and the encoder would copy those tags instead of the ones asked for.

    With `size` (one output only), the first conversion also scales the picture to it, so the
    rest (tone mapping in floating point above all) works on the output's pixels, not the
    source's: a quarter of the work for a 1080p source's 540p first rendition.
    """
    source = video.colour
    filters = [
        f"setparams=color_primaries={source.primaries}:color_trc={source.transfer}"
        f":colorspace={source.matrix}:range={source.range}"
    ]
    given = f"pin={source.primaries}:tin={source.transfer}:min={source.matrix}:rin={source.range}"
    if size is not None:
        given += f":w={size[0]}:h={size[1]}:f=spline36"
    wanted = f"p={target.primaries}:t={target.transfer}:m={target.matrix}:r={target.range}"
    # Pinned after the last conversion: left free, ffmpeg may pick a full-range (`yuvj`) format
    # there for a full-range source and undo the conversion to limited range. 4:4:4, as odd-sized
    # pictures cannot be 4:2:0; the rungs and thumbnails are made 4:2:0 at their even sizes.
    pinned = f"format={'yuvj444p' if target.full_range else 'yuv444p'}"
    if source.is_hdr:
        filters += [
            f"zscale={given}:t=linear:npl=100",
            "format=gbrpf32le",
            f"zscale=p={target.primaries}",
            "tonemap=tonemap=hable:desat=0",
            f"zscale={wanted}",
            pinned,
        ]
    elif source != target:
        filters += [f"zscale={given}:{wanted}", pinned]
    return filters


def picture_filters(
    video: VideoInfo, target: Colour = BT709, size: tuple[int, int] | None = None
) -> list[str]:
    """Filters applied once, before the rungs split: constant frame rate and `target` colour
    (at `size`, when there is one output)."""
    return [f"fps={output_fps(video)}", *colour_filters(video, target, size)]


def _colour_tags(target: Colour, suffix: str) -> list[str]:
    """Tags for the container and the H.264 VUI, matching the pixels `colour_filters` made."""
    return [
        f"-color_primaries{suffix}", target.primaries,
        f"-color_trc{suffix}", target.transfer,
        f"-colorspace{suffix}", target.matrix,
        f"-color_range{suffix}", target.range,
    ]  # fmt: skip


def _x264(video: VideoInfo, rung: Rung, index: int | None, preset: str) -> list[str]:
    suffix = f":v:{index}" if index is not None else ":v"
    gop = output_fps(video) * GOP_SECONDS
    return [
        f"-c{suffix}", "libx264",
        f"-preset{suffix}", preset,
        f"-profile{suffix}", "high",
        f"-b{suffix}", f"{rung.video_kbps}k",
        f"-maxrate{suffix}", f"{rung.max_kbps}k",
        f"-bufsize{suffix}", f"{rung.buffer_kbps}k",
        f"-g{suffix}", str(gop),
        f"-keyint_min{suffix}", str(gop),
        f"-sc_threshold{suffix}", "0",
        *_colour_tags(BT709, suffix),
    ]  # fmt: skip


def _audio_args() -> list[str]:
    return ["-c:a", "aac", "-b:a", f"{AUDIO_KBPS}k", "-ac", "2", "-ar", "48000"]


def ladder_command(
    ffmpeg: str,
    source: Path,
    out_dir: Path,
    info: MediaInfo,
    rungs: Sequence[Rung],
    *,
    preset: str = "veryfast",
) -> list[str]:
    """One ffmpeg process: one decode, split to every rung, fMP4 HLS with a master playlist."""
    video = info.video
    count = len(rungs)
    # One rung (a first rendition): the colour conversion scales to it on the way.
    size = output_size(video, rungs[0].short_side) if count == 1 else None
    graph = [
        f"[0:v]{','.join(picture_filters(video, size=size))},split={count}"
        + "".join(f"[s{i}]" for i in range(count))
    ]
    for i, rung in enumerate(rungs):
        width, height = output_size(video, rung.short_side)
        graph.append(f"[s{i}]scale={width}:{height}:flags=bicubic,format=yuv420p[v{i}]")
    if info.audio is not None:
        graph.append(f"[0:a]{LOUDNESS},asplit={count}" + "".join(f"[a{i}]" for i in range(count)))
    args = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-i", str(source)]
    args += ["-filter_complex", ";".join(graph)]
    stream_map = []
    for i, rung in enumerate(rungs):
        args += ["-map", f"[v{i}]"]
        args += _x264(video, rung, i, preset)
        entry = f"v:{i}"
        if info.audio is not None:
            args += ["-map", f"[a{i}]"]
            entry += f",a:{i}"
        stream_map.append(f"{entry},name:{rung.name}")
    if info.audio is not None:
        args += _audio_args()
    args += [
        "-f", "hls",
        "-hls_time", str(SEGMENT_SECONDS),
        "-hls_playlist_type", "vod",
        "-hls_segment_type", "fmp4",
        "-hls_flags", "independent_segments",
        "-hls_fmp4_init_filename", "init.mp4",
        "-hls_segment_filename", str(out_dir / "%v" / "seg-%05d.m4s"),
        "-master_pl_name", "master.m3u8",
        "-var_stream_map", " ".join(stream_map),
        str(out_dir / "%v" / "index.m3u8"),
    ]  # fmt: skip
    return args


def remux_command(ffmpeg: str, source: str | Path, out_dir: Path, info: MediaInfo) -> list[str]:
    """The first playable rendition without re-encoding: HLS (fMP4) copied from the source.

    Only for sources where `info.can_remux`: their pixels already are BT.709 at limited range,
    and their H.264 VUI says so or leaves it unsaid, never says otherwise. The copy is tagged
    BT.709 in the container (the `colr` box of the HLS init segment), which players and
    decoders take where the VUI is silent. The VUI itself is left as the phone wrote it:
    rewriting it (`h264_metadata`) parses every packet and doubled the remux's time, which is
    most of the time to playable. Rotation stays as display metadata, which every HLS and MP4
    player honours. The fast-start MP4 (`fast_start_command`) is made after the video plays.
    """
    maps = ["-map", "0:v:0"] + (["-map", "0:a:0"] if info.audio is not None else [])
    audio = ["-c:a", "copy"] if info.audio is not None else []
    video = ["-c:v", "copy", *_colour_tags(BT709, ":v")]
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-y", "-i", str(source),
        *maps, *video, *audio,
        "-f", "hls",
        "-hls_time", str(SEGMENT_SECONDS),
        "-hls_playlist_type", "vod",
        "-hls_segment_type", "fmp4",
        "-hls_fmp4_init_filename", "init.mp4",
        "-hls_segment_filename", str(out_dir / "seg-%05d.m4s"),
        str(out_dir / "index.m3u8"),
    ]  # fmt: skip


def hevc_copy_command(ffmpeg: str, source: str | Path, out_dir: Path, info: MediaInfo) -> list[str]:
    """An HEVC source as an HLS rendition for the players that decode HEVC, without re-encoding:
    fMP4 segments (HEVC in HLS must be fMP4) and the `hvc1` tag (Apple's players refuse `hev1`).
    Its colour, HDR included, stays as recorded and is tagged in the init segment's `colr` box;
    the master playlist's VIDEO-RANGE tells players what it needs. Audio is copied when it is
    AAC, else encoded to AAC (every HLS player decodes it). Only for `info.can_copy_hevc`."""
    maps = ["-map", "0:v:0"] + (["-map", "0:a:0"] if info.audio is not None else [])
    audio: list[str] = []
    if info.audio is not None:
        audio = ["-c:a", "copy"] if info.audio.codec == "aac" else _audio_args()
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-y", "-i", str(source),
        *maps, "-c:v", "copy", "-tag:v", "hvc1", *audio,
        "-f", "hls",
        "-hls_time", str(SEGMENT_SECONDS),
        # Rewritten as each segment closes, so segments are stored while the copy runs.
        "-hls_playlist_type", "event",
        "-hls_segment_type", "fmp4",
        "-hls_fmp4_init_filename", "init.mp4",
        "-movflags", "+write_colr",
        "-hls_segment_filename", str(out_dir / "seg-%05d.m4s"),
        str(out_dir / "index.m3u8"),
    ]  # fmt: skip


@dataclass(frozen=True)
class Variant:
    """One entry of a master playlist: a media playlist and what a player needs to choose it."""

    uri: str  # "<rendition name>/index.m3u8"
    peak_bps: int
    average_bps: int
    width: int
    height: int
    codecs: str  # the CODECS attribute: video and audio RFC 6381 strings
    video_range: str  # SDR, HLG or PQ
    frame_rate: float | None = None


def master_playlist(variants: Sequence[Variant]) -> str:
    """A multivariant playlist over `variants`, in the order given (players that can, start
    with the first they can decode). Every variant says its CODECS and VIDEO-RANGE, so a player
    skips what it cannot decode or show: an H.264-only player never picks the HEVC variant, an
    SDR screen never picks an HLG one it cannot map."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS", ""]
    for variant in variants:
        attributes = [
            f"BANDWIDTH={max(1, variant.peak_bps)}",
            f"AVERAGE-BANDWIDTH={max(1, variant.average_bps)}",
            f"RESOLUTION={variant.width}x{variant.height}",
            f'CODECS="{variant.codecs}"',
            f"VIDEO-RANGE={variant.video_range}",
        ]
        if variant.frame_rate:
            attributes.append(f"FRAME-RATE={variant.frame_rate:.3f}")
        lines += ["#EXT-X-STREAM-INF:" + ",".join(attributes), variant.uri, ""]
    return "\n".join(lines)


def parse_master(text: str) -> list[Variant]:
    """The variants of a master playlist written by `master_playlist`."""
    variants: list[Variant] = []
    attributes: dict[str, str] | None = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXT-X-STREAM-INF:"):
            attributes = _attributes(line[len("#EXT-X-STREAM-INF:") :])
        elif line and not line.startswith("#") and attributes is not None:
            width, _, height = attributes.get("RESOLUTION", "0x0").partition("x")
            rate = attributes.get("FRAME-RATE")
            variants.append(
                Variant(
                    uri=line,
                    peak_bps=int(attributes.get("BANDWIDTH", "0")),
                    average_bps=int(attributes.get("AVERAGE-BANDWIDTH", "0")),
                    width=int(width),
                    height=int(height),
                    codecs=attributes.get("CODECS", ""),
                    video_range=attributes.get("VIDEO-RANGE", "SDR"),
                    frame_rate=float(rate) if rate else None,
                )
            )
            attributes = None
    return variants


def _attributes(text: str) -> dict[str, str]:
    """An attribute list (`A=1,B="x,y"`): quoted values may hold commas."""
    found: dict[str, str] = {}
    rest = text
    while rest:
        name, _, rest = rest.partition("=")
        if rest.startswith('"'):
            value, _, rest = rest[1:].partition('"')
            rest = rest.removeprefix(",")
        else:
            value, _, rest = rest.partition(",")
        found[name.strip()] = value
    return found


def playlist_bitrates(media_playlist: Path) -> tuple[int, int]:
    """Average and peak bits a second of a made media playlist, from its segments' sizes and
    durations: the BANDWIDTH a master states."""
    directory = media_playlist.parent
    made = parse_growing(media_playlist.read_text(encoding="utf-8"))
    init = (directory / made.init).stat().st_size if made.init else 0
    return bitrates(
        ((s.duration_s, (directory / s.uri).stat().st_size) for s in made.segments), init
    )


def fast_start_command(ffmpeg: str, source: str | Path, out: Path, info: MediaInfo) -> list[str]:
    """The source copied (not re-encoded) into a fast-start MP4 tagged BT.709 in its `colr`
    box, for a download while the ladder is made. Same sources and tags as `remux_command`."""
    maps = ["-map", "0:v:0"] + (["-map", "0:a:0"] if info.audio is not None else [])
    audio = ["-c:a", "copy"] if info.audio is not None else []
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-y", "-i", str(source),
        *maps, "-c:v", "copy", *_colour_tags(BT709, ":v"), *audio,
        "-movflags", "+faststart+write_colr",
        str(out),
    ]  # fmt: skip


def parse_progress(line: str, duration_s: float) -> int | None:
    """Percent done from one line of ffmpeg's `-progress` output, or None."""
    key, _, value = line.strip().partition("=")
    if key not in {"out_time_us", "out_time_ms"} or not value.strip().lstrip("-").isdigit():
        return None
    if duration_s <= 0:
        return None
    seconds = int(value) / 1_000_000  # both keys are in microseconds
    return max(0, min(100, int(seconds / duration_s * 100)))
