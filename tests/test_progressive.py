"""A rendition stored while ffmpeg makes it: the EVENT playlist published over the segments
already stored, which only ever grows, and the storing that feeds it."""

from __future__ import annotations

import itertools
import struct
import threading
import time
from pathlib import Path

import pytest

from fieldcast.videos.progressive import GrowingRendition
from media import ffmpeg, keyframes
from media.keyframes import longest_keyframe_gap_s
from media.playlists import bitrates, event_playlist, parse_growing
from media.storage import LocalStorage, StorageError
from tests.media_samples import ffmpeg as run_ffmpeg

TARGET_S = 8  # what the published playlists below declare

HEADER = (
    "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n"
    '#EXT-X-PLAYLIST-TYPE:EVENT\n#EXT-X-MAP:URI="init.mp4"\n'
)


def ffmpeg_playlist(durations: list[float], *, ended: bool = False, target: int = 4) -> str:
    """A playlist as ffmpeg's HLS muxer writes it after each segment."""
    text = HEADER.format(target=target)
    for number, duration in enumerate(durations):
        text += f"#EXTINF:{duration:.6f},\nseg-{number:05d}.m4s\n"
    return text + ("#EXT-X-ENDLIST\n" if ended else "")


def segment_lines(text: str) -> list[str]:
    """The lines from the first segment's on: what a reloading player compares."""
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith("#EXTINF")), len(lines))
    return lines[first:]


def tag(text: str, name: str) -> str | None:
    return next((line for line in text.splitlines() if line.startswith(name)), None)


# -- The playlists --------------------------------------------------------------------------------


def test_a_torn_read_never_yields_half_a_segment_name() -> None:
    whole = ffmpeg_playlist([4.0, 4.0])
    assert [s.uri for s in parse_growing(whole).segments] == ["seg-00000.m4s", "seg-00001.m4s"]
    for cut in range(len(whole)):
        parsed = parse_growing(whole[:cut])
        assert all(s.uri in {"seg-00000.m4s", "seg-00001.m4s"} for s in parsed.segments)
    parsed = parse_growing(whole)
    assert parsed.init == "init.mp4" and not parsed.ended
    assert parse_growing(ffmpeg_playlist([4.0], ended=True)).ended


def test_each_published_version_extends_the_one_before_and_only_the_last_ends() -> None:
    durations = [4.0, 4.021, 4.0, 5.1, 2.2]
    versions = []
    for made in range(1, len(durations) + 1):
        # ffmpeg raises its own target when a longer segment comes; the published one stays.
        ffmpeg_target = 5 if made >= 4 else 4
        playlist = parse_growing(ffmpeg_playlist(durations[:made], target=ffmpeg_target))
        # Published as storing catches up: one segment behind what ffmpeg listed, then level.
        for count in (made - 1, made):
            versions.append(event_playlist(playlist, count, target_s=TARGET_S, ended=False))
    whole = parse_growing(ffmpeg_playlist(durations, ended=True, target=5))
    versions.append(event_playlist(whole, len(durations), target_s=TARGET_S, ended=True))

    for before, after in itertools.pairwise(versions):
        old = segment_lines(before)
        assert segment_lines(after)[: len(old)] == old
        assert tag(before, "#EXT-X-TARGETDURATION") == tag(after, "#EXT-X-TARGETDURATION")
    assert tag(versions[0], "#EXT-X-TARGETDURATION") == f"#EXT-X-TARGETDURATION:{TARGET_S}"
    for text in versions:
        assert text.startswith("#EXTM3U\n")
        assert tag(text, "#EXT-X-PLAYLIST-TYPE") == "#EXT-X-PLAYLIST-TYPE:EVENT"
        assert tag(text, "#EXT-X-START") == "#EXT-X-START:TIME-OFFSET=0"
        assert tag(text, '#EXT-X-MAP:URI="init.mp4"') is not None
        assert text.count("#EXT-X-TARGETDURATION") == 1
    assert all("#EXT-X-ENDLIST" not in text for text in versions[:-1])
    assert versions[-1].rstrip().endswith("#EXT-X-ENDLIST")
    assert segment_lines(versions[-1]).count("#EXTINF:2.200000,") == 1


def test_the_declared_target_covers_a_segment_longer_than_its_bound() -> None:
    playlist = parse_growing(ffmpeg_playlist([4.0, 9.6], target=10))
    text = event_playlist(playlist, 2, target_s=TARGET_S, ended=False)
    # Rounded to the nearest second, no segment may be longer than the target.
    assert tag(text, "#EXT-X-TARGETDURATION") == "#EXT-X-TARGETDURATION:10"


def test_bit_rates_count_the_init_segment_once_and_take_the_busiest_segment() -> None:
    average, peak = bitrates([(4.0, 400_000), (2.0, 600_000)], 2_000)
    assert average == round((1_002_000) * 8 / 6.0)
    assert peak == 600_000 * 8 // 2
    assert bitrates([]) == (0, 0)


# -- Storing as ffmpeg makes it -------------------------------------------------------------------


class Gates:
    """A store that waits, per file, until the test lets it through."""

    def __init__(self, storage: LocalStorage, fail: set[str] | None = None) -> None:
        self.storage = storage
        self.open: dict[str, threading.Event] = {}
        self.fail = fail or set()
        self.stored: list[str] = []

    def let(self, *names: str) -> None:
        for name in names:
            self.open.setdefault(name, threading.Event()).set()

    def __call__(self, path: Path, key: str) -> int:
        if not self.open.setdefault(path.name, threading.Event()).wait(10):
            raise AssertionError(f"{path.name} was never let through")
        if path.name in self.fail:
            raise StorageError(f"cannot store {key}")
        with path.open("rb") as handle:
            size = self.storage.put(key, handle)
        self.stored.append(path.name)
        return size


class Muxer:
    """Writes an output directory as ffmpeg does: the files, then the playlist (by a rename)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.durations: list[float] = []
        out.mkdir()
        (out / "init.mp4").write_bytes(b"i" * 100)

    def segment(self, duration: float, size: int) -> None:
        (self.out / f"seg-{len(self.durations):05d}.m4s").write_bytes(b"s" * size)
        self.durations.append(duration)
        self._playlist(ended=False)

    def end(self) -> None:
        self._playlist(ended=True)

    def _playlist(self, *, ended: bool) -> None:
        temporary = self.out / "index.m3u8.tmp"
        temporary.write_text(ffmpeg_playlist(self.durations, ended=ended))
        temporary.replace(self.out / "index.m3u8")


def growing(
    storage: LocalStorage, muxer: Muxer, gates: Gates, *, partial: bool, first_s: float = 0.0
) -> GrowingRendition:
    return GrowingRendition(
        storage, muxer.out, "v/hevc", gates, partial=partial, target_s=TARGET_S, first_s=first_s
    )


def settle(rendition: GrowingRendition, until: int) -> None:
    deadline = time.monotonic() + 10
    while rendition.stored_count < until and time.monotonic() < deadline:
        rendition.poll()
        time.sleep(0.01)


def published(storage: LocalStorage) -> str | None:
    path = storage.path("v/hevc/index.m3u8")
    return path.read_text() if path.exists() else None


def test_the_published_playlist_names_only_the_segments_stored_from_the_start(
    tmp_path: Path,
) -> None:
    storage = LocalStorage(tmp_path / "store")
    gates = Gates(storage)
    muxer = Muxer(tmp_path / "out")
    with growing(storage, muxer, gates, partial=True) as rendition:
        rendition.poll()
        assert published(storage) is None  # nothing listed yet
        for _ in range(3):
            muxer.segment(4.0, 1000)
        # The second and third segments are stored before the first: nothing may be named.
        gates.let("seg-00001.m4s", "seg-00002.m4s")
        rendition.poll()
        deadline = time.monotonic() + 5
        while gates.stored != ["seg-00001.m4s", "seg-00002.m4s"] and time.monotonic() < deadline:
            time.sleep(0.01)
        rendition.poll()
        assert rendition.stored_count == 0 and published(storage) is None
        gates.let("seg-00000.m4s")
        while "seg-00000.m4s" not in gates.stored and time.monotonic() < deadline:
            time.sleep(0.01)
        rendition.poll()
        assert rendition.stored_count == 0  # the initialization segment is not stored yet
        assert published(storage) is None
        gates.let("init.mp4")
        settle(rendition, 3)
        first = published(storage)
        assert first is not None and "#EXT-X-ENDLIST" not in first
        assert [line for line in first.splitlines() if line.startswith("seg-")] == [
            "seg-00000.m4s",
            "seg-00001.m4s",
            "seg-00002.m4s",
        ]
        assert rendition.stored_s == 12.0 and rendition.stored_bytes == 3100
        assert rendition.bitrates() == (round(3100 * 8 / 12),) * 2  # no segment above it

        muxer.segment(1.5, 500)
        muxer.end()
        gates.let("seg-00003.m4s")
        made = rendition.finish()
    assert made.ended and len(made.segments) == 4
    final = published(storage)
    assert final is not None and final.rstrip().endswith("#EXT-X-ENDLIST")
    assert final.startswith(first)  # appended to, nothing changed
    for name in ("init.mp4", "seg-00000.m4s", "seg-00003.m4s"):
        assert storage.path(f"v/hevc/{name}").exists()


def test_a_step_run_again_publishes_only_the_whole_playlist(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    gates = Gates(storage)
    gates.let("init.mp4", "seg-00000.m4s", "seg-00001.m4s")
    muxer = Muxer(tmp_path / "out")
    with growing(storage, muxer, gates, partial=False) as rendition:
        muxer.segment(4.0, 10)
        settle(rendition, 1)
        assert published(storage) is None
        muxer.segment(4.0, 10)
        muxer.end()
        rendition.finish()
    final = published(storage)
    assert final is not None and final.count("seg-") == 2 and "#EXT-X-ENDLIST" in final


def test_a_segment_that_cannot_be_stored_fails_the_rendition(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    gates = Gates(storage, fail={"seg-00001.m4s"})
    gates.let("init.mp4", "seg-00000.m4s", "seg-00001.m4s")
    muxer = Muxer(tmp_path / "out")
    with (
        pytest.raises(StorageError),
        growing(storage, muxer, gates, partial=True) as rendition,
    ):
        muxer.segment(4.0, 10)
        muxer.segment(4.0, 10)
        muxer.end()
        rendition.finish()
    text = published(storage)
    assert text is None or "seg-00001.m4s" not in text


def test_an_output_ffmpeg_left_without_its_end_is_not_published_whole(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    gates = Gates(storage)
    gates.let("init.mp4", "seg-00000.m4s")
    muxer = Muxer(tmp_path / "out")
    with (
        pytest.raises(ffmpeg.FFmpegFailed),
        growing(storage, muxer, gates, partial=True) as rendition,
    ):
        muxer.segment(4.0, 10)
        settle(rendition, 1)
        rendition.finish()
    text = published(storage)
    assert text is not None and "#EXT-X-ENDLIST" not in text


def test_segments_past_the_first_seconds_wait_until_those_are_stored(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    gates = Gates(storage)
    muxer = Muxer(tmp_path / "out")
    with growing(storage, muxer, gates, partial=True, first_s=8.0) as rendition:
        for _ in range(4):
            muxer.segment(4.0, 10)
        rendition.poll()
        # The first 8 s are on their way; the rest are not even started.
        assert set(rendition.storing) == {"init.mp4", "seg-00000.m4s", "seg-00001.m4s"}
        gates.let("init.mp4", "seg-00000.m4s", "seg-00001.m4s", "seg-00002.m4s", "seg-00003.m4s")
        settle(rendition, 4)
        assert rendition.stored_count == 4
        muxer.end()
        rendition.finish()


# -- The longest gap between key frames -----------------------------------------------------------


@pytest.mark.parametrize(
    ("gop", "flags", "expected"),
    [
        (15, [], 0.5),  # a key frame every half second, the index at the end as phones write it
        (90, ["-movflags", "+faststart"], 3.0),  # every 3 s, the index first
    ],
)
def test_the_longest_key_frame_gap_is_read_from_the_index(
    tmp_path: Path, gop: int, flags: list[str], expected: float
) -> None:
    clip = tmp_path / "clip.mov"
    run_ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30", "-t", "7",
               "-c:v", "libx264", "-preset", "ultrafast", "-g", str(gop),
               "-keyint_min", str(gop), "-sc_threshold", "0", *flags, str(clip))  # fmt: skip
    gap = longest_keyframe_gap_s(clip)
    assert gap == pytest.approx(expected, abs=0.05)


def test_a_file_whose_index_cannot_tell_gives_no_gap(tmp_path: Path) -> None:
    fragmented = tmp_path / "fragmented.mp4"
    run_ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30", "-t", "2",
               "-c:v", "libx264", "-preset", "ultrafast",
               "-movflags", "frag_keyframe+empty_moov", str(fragmented))  # fmt: skip
    assert longest_keyframe_gap_s(fragmented) is None
    webm = tmp_path / "clip.webm"
    run_ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30", "-t", "1",
               "-c:v", "libvpx", "-deadline", "realtime", str(webm))  # fmt: skip
    assert longest_keyframe_gap_s(webm) is None
    truncated = tmp_path / "truncated.mp4"
    whole = tmp_path / "whole.mp4"
    run_ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30", "-t", "2",
               "-c:v", "libx264", "-preset", "ultrafast", str(whole))  # fmt: skip
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # no moov
    assert longest_keyframe_gap_s(truncated) is None
    assert longest_keyframe_gap_s(tmp_path / "missing.mp4") is None


def test_an_index_that_lies_about_its_sizes_gives_no_gap(tmp_path: Path) -> None:
    huge = tmp_path / "huge.mp4"
    huge.write_bytes(struct.pack(">I4sQ", 1, b"free", 2**64 - 1) + b"\0" * 32)
    assert longest_keyframe_gap_s(huge) is None
    garbage = tmp_path / "garbage.mov"
    garbage.write_bytes(struct.pack(">I4s", 24, b"moov") + struct.pack(">I4s", 400, b"trak"))
    assert longest_keyframe_gap_s(garbage) is None


def _elst(*media_times: int) -> bytes:
    entries = b"".join(struct.pack(">Iii", 1000, time, 0x10000) for time in media_times)
    return struct.pack(">II", 0, len(media_times)) + entries


def test_only_edits_that_splice_the_media_make_the_gap_unknown() -> None:
    assert not keyframes._cutting_edits(None)
    assert not keyframes._cutting_edits(_elst(1024))  # a shift, as encoders write
    assert not keyframes._cutting_edits(_elst(-1, 0))  # a delayed start, then the media
    assert keyframes._cutting_edits(_elst(0, 90_000))  # two pieces of it


def test_a_failed_copy_ends_the_playlist_players_hold(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "store")
    gates = Gates(storage)
    gates.let("init.mp4", "seg-00000.m4s", "seg-00001.m4s")
    muxer = Muxer(tmp_path / "out")
    with growing(storage, muxer, gates, partial=True) as rendition:
        muxer.segment(4.0, 10)
        settle(rendition, 1)
        muxer.segment(4.0, 10)  # listed, never published: the copy fails now
        rendition.end_here()
    text = published(storage)
    assert text is not None and text.rstrip().endswith("#EXT-X-ENDLIST")
    assert text.count(".m4s") == 1

    # A step run again (publishing only whole) that fails ends what the first run published.
    storage.put_bytes("v/hevc/index.m3u8", text.replace("#EXT-X-ENDLIST\n", "").encode())
    again = Muxer(tmp_path / "again")
    with growing(storage, again, gates, partial=False) as rendition:
        rendition.end_here()
    assert published(storage) == text
    with growing(storage, again, gates, partial=False) as rendition:
        rendition.end_here()  # already ended: left as it is
    assert published(storage) == text


def test_a_cancelled_ffmpeg_is_killed_at_once() -> None:
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(ffmpeg.FFmpegFailed):
        ffmpeg.run(
            [ffmpeg.ffmpeg_binary(), "-hide_banner", "-nostdin", "-re", "-f", "lavfi",
             "-i", "testsrc2=size=64x64:rate=10", "-f", "null", "-"],
            timeout_s=30,
            cancel=cancel,
        )  # fmt: skip
    assert time.monotonic() - started < 5
