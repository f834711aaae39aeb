"""The longest stretch between key frames of an MP4/MOV's video track, read from its index.

A copy into HLS can only cut segments at the source's key frames, so this bounds how long a
segment of it can be before any is made: what an EVENT playlist must declare as its target
duration from its first version on. Only the `moov` box is read (its sample tables: `mdhd`,
`stts`, `stss`), never the media; a fragmented or unreadable file gives None.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

# Larger indexes are not read: an hour of 60 fps video has a `moov` of a few megabytes.
_MAX_MOOV_BYTES = 64 * 1024 * 1024
_CONTAINERS = {b"trak", b"edts", b"mdia", b"minf", b"stbl"}


def longest_keyframe_gap_s(path: Path) -> float | None:
    """Seconds from each key frame of the first video track to the next (and from the last
    to the track's end), the longest of them; None when the file's index cannot tell."""
    try:
        with path.open("rb") as handle:
            moov = _find_moov(handle)
        return None if moov is None else _video_gap(moov)
    except (OSError, struct.error, ValueError, IndexError, OverflowError, ZeroDivisionError):
        return None  # an index this cannot read tells nothing


def _header(data: bytes, position: int) -> tuple[int, bytes, int]:
    """The size (0: up to the end of its parent), type and header length of the box at
    `position`: a 32-bit size, or 1 and a 64-bit one after the type."""
    size, kind = struct.unpack_from(">I4s", data, position)
    if size == 1:
        (size,) = struct.unpack_from(">Q", data, position + 8)
        return size, kind, 16
    return size, kind, 8


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, bytes]]:
    """The (type, payload) of each box in data[start:end]."""
    end = len(data) if end is None else end
    position = start
    while position + 8 <= end:
        size, kind, header = _header(data, position)
        if size == 0:
            size = end - position
        if size < header or position + size > end:
            raise ValueError("a box runs past its parent")
        yield kind, data[position + header : position + size]
        position += size


def _find_moov(handle: BinaryIO) -> bytes | None:
    position = 0
    while True:
        handle.seek(position)
        head = handle.read(16)
        if len(head) < 8:
            return None
        size, kind, header = _header(head, 0)
        if size == 0:
            return None  # the last box runs to the end of the file: no moov after it
        if size < header:
            return None
        if kind == b"moov":
            if size > _MAX_MOOV_BYTES:
                return None
            handle.seek(position + header)
            payload = handle.read(size - header)
            return payload if len(payload) == size - header else None
        position += size


def _video_gap(moov: bytes) -> float | None:
    for kind, trak in _boxes(moov):
        if kind != b"trak":
            continue
        tables = _collect(trak)
        if tables.get(b"hdlr", b"")[8:12] != b"vide":
            continue
        if any(kind == b"mvex" for kind, _ in _boxes(moov)):
            return None  # fragmented: the samples are in the fragments, not indexed here
        return _gap(tables)
    return None


def _collect(box: bytes) -> dict[bytes, bytes]:
    """The leaf boxes under a track that the sample tables need, by type."""
    found: dict[bytes, bytes] = {}
    for kind, payload in _boxes(box):
        # The first of a type wins: a MOV's `minf` has a `hdlr` of its own (the data handler),
        # after the media handler that says what the track is.
        inner = _collect(payload) if kind in _CONTAINERS else {kind: payload}
        for name, leaf in inner.items():
            found.setdefault(name, leaf)
    return found


def _gap(tables: dict[bytes, bytes]) -> float | None:
    mdhd, stts = tables.get(b"mdhd"), tables.get(b"stts")
    if not mdhd or stts is None:
        return None
    if _cutting_edits(tables.get(b"elst")):
        return None  # edits may cut key frames out of the presentation: not a bound any more
    version = mdhd[0]
    timescale = struct.unpack_from(">I", mdhd, 20 if version == 1 else 12)[0]
    if not timescale:
        return None
    # Each sample's decode time, run-length encoded as (count, delta) pairs.
    (entries,) = struct.unpack_from(">I", stts, 4)
    runs = [struct.unpack_from(">II", stts, 8 + 8 * i) for i in range(entries)]
    total = sum(count for count, _ in runs)
    if not total:
        return None
    stss = tables.get(b"stss")
    if stss is None:  # every sample is a key frame
        return max(delta for _, delta in runs) / timescale
    (count,) = struct.unpack_from(">I", stss, 4)
    sync = [struct.unpack_from(">I", stss, 8 + 4 * i)[0] for i in range(count)]
    if not sync:
        return None
    # From the start (which a first segment begins at, key frame or not), through each key
    # frame, to the end.
    times = [0, *_decode_times(runs, sorted(set(sync))), sum(c * d for c, d in runs)]
    return max(b - a for a, b in itertools.pairwise(times)) / timescale


def _cutting_edits(elst: bytes | None) -> bool:
    """More than one edit that plays media: the presentation is spliced from the samples. One,
    after any empty edits (a delayed start), only shifts it."""
    if elst is None:
        return False
    version = elst[0]
    (count,) = struct.unpack_from(">I", elst, 4)
    entry, time_format = (20, ">q") if version == 1 else (12, ">i")
    media = 0
    for number in range(count):
        offset = 8 + number * entry + (8 if version == 1 else 4)
        (media_time,) = struct.unpack_from(time_format, elst, offset)
        media += media_time != -1
    return media > 1


def _decode_times(runs: list[tuple[int, int]], samples: list[int]) -> list[int]:
    """The decode time of each (1-based, ascending) sample number."""
    times: list[int] = []
    wanted = iter(samples)
    target = next(wanted, None)
    number = 1
    clock = 0
    for count, delta in runs:
        while target is not None and target < number + count:
            times.append(clock + (target - number) * delta)
            target = next(wanted, None)
        number += count
        clock += count * delta
    return times
