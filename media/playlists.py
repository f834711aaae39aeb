"""A media playlist that ffmpeg is still writing, and the playlist published from it.

ffmpeg's HLS muxer with `-hls_playlist_type event` rewrites its playlist (by a rename, whole)
each time it closes a segment: a segment it lists is complete. `read_growing` reads what it
lists so far; `event_playlist` writes the playlist players are given while the segments are
being stored, naming only the leading segments already stored. It is an RFC 8216 EVENT
playlist: each version only appends to the one before, the target duration stays the same,
playback starts at the beginning (EXT-X-START) rather than near the live edge, and the last
version ends with EXT-X-ENDLIST, after which it is a finished presentation like a VOD one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Tags the published playlist writes itself, in place of ffmpeg's.
_OWN_TAGS = ("#EXT-X-TARGETDURATION:", "#EXT-X-PLAYLIST-TYPE:", "#EXT-X-START:", "#EXT-X-ENDLIST")


@dataclass(frozen=True)
class Segment:
    uri: str
    duration_s: float
    lines: tuple[str, ...]  # its tags (EXTINF and any before it), then its URI


@dataclass(frozen=True)
class GrowingPlaylist:
    header: tuple[str, ...]  # the tags before the first segment, EXT-X-MAP among them
    init: str | None  # the EXT-X-MAP URI: the fMP4 initialization segment
    segments: tuple[Segment, ...]
    ended: bool  # ffmpeg wrote EXT-X-ENDLIST: no segment will follow


def parse_growing(text: str) -> GrowingPlaylist:
    """The playlist as far as it goes. A segment is taken only once its URI line is complete
    (followed by a newline), so a torn read never yields half a name."""
    complete, _, _ = text.rpartition("\n")
    header: list[str] = []
    init: str | None = None
    segments: list[Segment] = []
    pending: list[str] = []
    ended = False
    for raw in complete.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line == "#EXT-X-ENDLIST":
            ended = True
        elif line.startswith("#EXT-X-MAP:") and 'URI="' in line:
            init = line.split('URI="', 1)[1].split('"', 1)[0]
            header.append(line)
        elif line.startswith("#EXTINF:") or (line.startswith("#") and pending):
            pending.append(line)
        elif line.startswith("#"):
            header.append(line)
        else:
            duration = next(
                (float(tag[len("#EXTINF:") :].split(",", 1)[0]) for tag in pending
                 if tag.startswith("#EXTINF:")),
                0.0,
            )  # fmt: skip
            segments.append(Segment(line, duration, (*pending, line)))
            pending = []
    return GrowingPlaylist(tuple(header), init, tuple(segments), ended)


def read_growing(path: Path) -> GrowingPlaylist | None:
    """The playlist ffmpeg has written so far, or None before its first."""
    try:
        return parse_growing(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def event_playlist(playlist: GrowingPlaylist, count: int, *, target_s: int, ended: bool) -> str:
    """The EVENT playlist of the first `count` segments, declaring `target_s` (never less than
    the longest of them), ending with EXT-X-ENDLIST when `ended`."""
    shown = playlist.segments[:count]
    target = max(target_s, *(math.floor(s.duration_s + 0.5) for s in shown), 1)
    lines = ["#EXTM3U"]
    lines += [
        f"#EXT-X-TARGETDURATION:{target}",
        "#EXT-X-PLAYLIST-TYPE:EVENT",
        # Without it a player starts near the newest segment, as for a live stream.
        "#EXT-X-START:TIME-OFFSET=0",
    ]
    lines += [
        line for line in playlist.header if line != "#EXTM3U" and not line.startswith(_OWN_TAGS)
    ]
    for segment in shown:
        lines += segment.lines
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def bitrates(segments: Iterable[tuple[float, int]], init_bytes: int = 0) -> tuple[int, int]:
    """Average and peak bits a second of (duration, bytes) segments, the initialization
    segment counted once in the average: the BANDWIDTH a master playlist states."""
    total_bytes = init_bytes
    total_s = 0.0
    peak = 0
    for duration, size in segments:
        total_bytes += size
        total_s += duration
        peak = max(peak, round(size * 8 / max(duration, 0.5)))
    average = round(total_bytes * 8 / total_s) if total_s else 0
    return average, max(peak, average)
