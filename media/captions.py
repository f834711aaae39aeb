"""Captions: a transcript as a WebVTT file, and as a subtitles rendition of an HLS presentation.

Pure text building, tested without a player: `webvtt` writes the cues (times as
`hh:mm:ss.mmm`, text escaped so that `<`, `>` and `&` show as written instead of being read as
WebVTT markup); `subtitles_playlist` is the media playlist of the subtitles rendition, one WebVTT
segment covering the whole video; `with_subtitles` adds that rendition to a master playlist
(RFC 8216 `EXT-X-MEDIA` of `TYPE=SUBTITLES`, named by every variant's `SUBTITLES`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

GROUP_ID = "subs"


@dataclass(frozen=True)
class Cue:
    start_ms: int
    end_ms: int
    text: str


def timestamp(ms: int) -> str:
    """WebVTT's cue time, `hh:mm:ss.mmm` (hours always written, as HLS players expect)."""
    ms = max(0, int(ms))
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}"


def escape(text: str) -> str:
    """Cue text shown as written: markup characters escaped, and no blank line (which would end
    the cue) nor `-->` (which would read as a timing line)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    lines = [" ".join(line.split()) for line in text.replace("\r", "\n").split("\n")]
    return "\n".join(line for line in lines if line).replace("-->", "--&gt;")


def webvtt(cues: Iterable[Cue]) -> str:
    """A WebVTT file of the cues, in the order given."""
    out = ["WEBVTT", ""]
    for number, cue in enumerate(cues, start=1):
        text = escape(cue.text)
        if not text:
            continue
        out += [str(number), f"{timestamp(cue.start_ms)} --> {timestamp(cue.end_ms)}", text, ""]
    return "\n".join(out)


def subtitles_playlist(vtt_uri: str, duration_ms: int) -> str:
    """The media playlist of the subtitles rendition: the whole WebVTT file as one segment."""
    seconds = max(duration_ms, 1) / 1000
    return "\n".join(
        [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            f"#EXT-X-TARGETDURATION:{max(1, math.ceil(seconds))}",
            "#EXT-X-MEDIA-SEQUENCE:0",
            "#EXT-X-PLAYLIST-TYPE:VOD",
            f"#EXTINF:{seconds:.3f},",
            vtt_uri,
            "#EXT-X-ENDLIST",
            "",
        ]
    )


def _quoted(value: str) -> str:
    # A quoted-string attribute holds no double quote nor line break.
    return "".join(c for c in value if c not in '"\r\n')


def with_subtitles(master: str, *, uri: str, name: str, language: str) -> str:
    """The master playlist with a subtitles rendition (`uri`, its media playlist) that every
    variant names, for players to offer as captions. Not selected by default."""
    media = (
        f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{GROUP_ID}",NAME="{_quoted(name)}",'
        f'LANGUAGE="{_quoted(language)}",AUTOSELECT=YES,DEFAULT=NO,FORCED=NO,'
        f'URI="{_quoted(uri)}"'
    )
    out: list[str] = []
    added = False
    for line in master.splitlines():
        if line.startswith("#EXT-X-STREAM-INF:"):
            if not added:
                out += [media, ""]
                added = True
            if "SUBTITLES=" not in line:
                line = f'{line},SUBTITLES="{GROUP_ID}"'
        out.append(line)
    return "\n".join(out) + "\n"
