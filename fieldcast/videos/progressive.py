"""An HLS rendition stored while ffmpeg is still making it, published as it grows.

Storing a large rendition takes longer than making it when ffmpeg only copies (an HEVC source
into HLS): waiting for the whole of it before anyone may play would put the slower of the two,
end to end, before the first frame. Instead each segment is stored as soon as ffmpeg lists it,
several at once, and the playlist players read names only the leading segments already stored:
an EVENT playlist (`media.playlists`) that each version extends, until the last, which ends.
The API reads the playlist anew on every fetch, so a player reloading it sees it grow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

from fieldcast.videos.playback import content_type
from media import ffmpeg
from media.playlists import GrowingPlaylist, bitrates, event_playlist, read_growing
from media.storage import ObjectNotFound, Storage

# A growing playlist is published again at most this often, not once per segment.
REPUBLISH_S = 0.5
# Objects stored at once: S3 requests wait on the network, not on this process.
STORE_THREADS = 8


class GrowingRendition:
    """The segments of ffmpeg's output directory `out`, stored under `prefix` as they are
    listed, and the playlist `<prefix>/index.m3u8` over those stored.

    `poll` takes what ffmpeg listed since the last call; `finish`, once ffmpeg has exited,
    stores the rest and publishes the whole playlist. With `partial` false, nothing is
    published before that: a step run again must not hand players who already hold the
    playlist a shorter one than before. Segments past the first `first_s` seconds wait until
    those are stored, so what players need first has the storing to itself. `target_s` is the
    target duration every version declares: no segment may be longer (rounded).
    """

    def __init__(
        self,
        storage: Storage,
        out: Path,
        prefix: str,
        store: Callable[[Path, str], int],
        *,
        partial: bool,
        target_s: int,
        first_s: float = 0.0,
    ) -> None:
        self.storage = storage
        self.out = out
        self.prefix = prefix
        self.store = store
        self.partial = partial
        self.target_s = target_s
        self.first_s = first_s
        self.playlist: GrowingPlaylist | None = None
        self.pool = ThreadPoolExecutor(STORE_THREADS, thread_name_prefix="store")
        self.storing: dict[str, Future[int]] = {}
        self.sizes: dict[str, int] = {}
        self.published = 0  # segments the published playlist names
        self.published_at = 0.0
        self._seen: tuple[int, int, int] | None = None

    def __enter__(self) -> GrowingRendition:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    @property
    def playlist_key(self) -> str:
        return f"{self.prefix}/index.m3u8"

    def poll(self) -> None:
        """Start storing what ffmpeg listed since the last call, and publish the stored
        segments when there are more of them than the published playlist names."""
        self._read()
        self._collect()
        self._submit(everything=self.stored_s >= self.first_s)
        if self.partial and (
            not self.published or time.monotonic() - self.published_at >= REPUBLISH_S
        ):
            self.publish_stored()

    def publish_stored(self) -> None:
        """Publish the stored segments now, if the published playlist names fewer."""
        if self.stored_count > self.published:
            self._publish(self.stored_count, ended=False)

    def end_here(self) -> None:
        """ffmpeg failed for good: end the published playlist where it is, so players that
        hold it stop waiting for more; also the one an earlier run of the step published."""
        if self.published:
            self._publish(self.published, ended=True)
            return
        try:
            text = b"".join(self.storage.open(self.playlist_key)).decode()
        except ObjectNotFound:
            return
        if "#EXT-X-ENDLIST" not in text:
            self._put(text.rstrip("\n") + "\n#EXT-X-ENDLIST\n")

    def finish(self) -> GrowingPlaylist:
        """ffmpeg has exited: store what is left and publish the whole playlist, ended."""
        self._seen = None
        self._read()
        self._submit(everything=True)
        for future in list(self.storing.values()):
            future.result()
        self._collect()
        playlist = self.playlist
        if playlist is None or not playlist.ended:
            raise ffmpeg.FFmpegFailed(0, f"{self.out.name}: the playlist was left unfinished")
        self._publish(len(playlist.segments), ended=True)
        return playlist

    @property
    def stored_count(self) -> int:
        """How many leading segments are stored (none before the initialization segment)."""
        playlist = self.playlist
        if playlist is None or (playlist.init is not None and playlist.init not in self.sizes):
            return 0
        count = 0
        for segment in playlist.segments:
            if segment.uri not in self.sizes:
                break
            count += 1
        return count

    @property
    def stored_s(self) -> float:
        """Seconds of the presentation stored from its start."""
        if self.playlist is None:
            return 0.0
        return sum(s.duration_s for s in self.playlist.segments[: self.stored_count])

    @property
    def stored_bytes(self) -> int:
        return sum(self.sizes.values())

    def bitrates(self) -> tuple[int, int]:
        """Average and peak bits a second of the segments stored from the start."""
        if self.playlist is None:
            return 0, 0
        shown = self.playlist.segments[: self.stored_count]
        init = self.sizes.get(self.playlist.init, 0) if self.playlist.init else 0
        return bitrates(((s.duration_s, self.sizes[s.uri]) for s in shown), init)

    def _read(self) -> None:
        path = self.out / "index.m3u8"
        try:
            stat = path.stat()
        except FileNotFoundError:
            return
        mark = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if mark == self._seen:
            return
        self._seen = mark
        self.playlist = read_growing(path) or self.playlist

    def _submit(self, *, everything: bool) -> None:
        """Start storing the listed files not yet on their way: all of them, or the
        initialization segment and the segments that begin within the first `first_s`."""
        if self.playlist is None:
            return
        wanted = [self.playlist.init] if self.playlist.init else []
        start = 0.0
        for segment in self.playlist.segments:
            if not everything and start >= self.first_s:
                break
            wanted.append(segment.uri)
            start += segment.duration_s
        for uri in wanted:
            if uri not in self.storing:
                self.storing[uri] = self.pool.submit(self._store_one, uri)

    def _store_one(self, uri: str) -> int:
        return self.store(self.out / uri, f"{self.prefix}/{uri}")

    def _collect(self) -> None:
        for uri, future in self.storing.items():
            if uri not in self.sizes and future.done():
                self.sizes[uri] = future.result()  # a storage error ends the step, to retry

    def _publish(self, count: int, *, ended: bool) -> None:
        assert self.playlist is not None
        self._put(event_playlist(self.playlist, count, target_s=self.target_s, ended=ended))
        self.published = count
        self.published_at = time.monotonic()

    def _put(self, text: str) -> None:
        key = self.playlist_key
        self.storage.put_bytes(key, text.encode(), content_type=content_type(key))
