"""Private playback: short-lived signed URLs, and playlists whose every URI is signed.

Media never sits behind a guessable public URL. The API hands a viewer signed URLs for the
master playlist, the MP4, the poster and the storyboard; when a player fetches a playlist, the
API rewrites each URI in it (variant playlists, init files, segments, sprite images) to a signed
URL of its own: an S3 presigned URL, or in the embedded default an HMAC-signed URL of the API's
own media route (which answers HTTP Range requests). A signature covers the path and its expiry,
so changing either (a guessed storage key, a later time) makes it worthless.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from posixpath import dirname, normpath
from urllib.parse import quote

from fieldcast.models.videos import Rendition, RenditionKind, Video, VideoStatus

PLAYABLE_STATUSES = {VideoStatus.PLAYABLE, VideoStatus.READY}
# The ladder's master; the master over an HEVC source's copy and first H.264 rendition; the
# first rendition of any other source.
HLS_NAMES_BY_PREFERENCE = ("master", "first_master", "first")
MP4_NAMES_BY_PREFERENCE = ("mp4", "source_mp4")
# Playlists listing the renditions the ladder replaces: an HEVC source's first master lists
# its copy and its first H.264 rendition; the ladder's master lists the copy and the rungs.
_SUPERSEDED_BY_LADDER = {"first"}
# What a client must decode to play a rendition, by the RFC 6381 string's first part.
CODEC_FAMILIES = {"avc1": "h264", "avc3": "h264", "hvc1": "hevc", "hev1": "hevc"}


def signature(secret: str, path: str, expires: int) -> str:
    mac = hmac.new(secret.encode(), f"{path}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:20]).decode().rstrip("=")


def signed_path(secret: str, path: str, expires: int) -> str:
    """The URL path with its signature. The signature covers the path as the server sees it
    (decoded); the URL carries it percent-encoded."""
    return f"{quote(path, safe='/')}?exp={expires}&sig={signature(secret, path, expires)}"


def verify(secret: str, path: str, expires: str | None, sig: str | None, *, now: float) -> str:
    """'' when the signature holds and has not expired; else why not: 'invalid' or 'expired'."""
    if not expires or not sig or not expires.isdigit():
        return "invalid"
    if not hmac.compare_digest(signature(secret, path, int(expires)), sig):
        return "invalid"
    if int(expires) < now:
        return "expired"
    return ""


def expiry(ttl_s: int, *, now: float | None = None) -> int:
    # Rounded up to the minute, so URLs made in the same minute are the same (caches hit).
    moment = (time.time() if now is None else now) + ttl_s
    return int(moment // 60 + 1) * 60


def playlist_path(video_id: uuid.UUID, name: str) -> str:
    return f"/play/{video_id}/{name}.m3u8"


def storyboard_path(video_id: uuid.UUID) -> str:
    return f"/play/{video_id}/storyboard.vtt"


def media_path(key: str) -> str:
    return "/media/" + key


CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".jpg": "image/jpeg",
    ".vtt": "text/vtt",
}


def content_type(name: str) -> str:
    """The media type of a rendition file, by its extension."""
    return CONTENT_TYPES.get(PurePosixPath(name).suffix.lower(), "application/octet-stream")


def codec_family(codec: str | None) -> str:
    """`h264` or `hevc` for a rendition's codecs; renditions made before codecs were recorded
    are all H.264."""
    if not codec:
        return "h264"
    return CODEC_FAMILIES.get(codec.split(".", 1)[0], codec.split(".", 1)[0])


@dataclass(frozen=True)
class Playback:
    hls: Rendition | None
    mp4: Rendition | None
    poster: Rendition | None
    storyboard: Rendition | None
    # The video renditions the HLS playlist offers, then the MP4: what a client may play.
    renditions: tuple[Rendition, ...] = ()

    @property
    def playable_for(self) -> list[str]:
        """The codecs a client must decode to play the video now, one of which is enough:
        `["hevc"]` while only an HEVC source's copy exists, then `["h264", "hevc"]`."""
        return sorted(
            {codec_family(r.codec) for r in self.renditions if r.kind is RenditionKind.HLS}
        )


def choose(video: Video, renditions: Iterable[Rendition]) -> Playback:
    """The renditions a viewer gets now: the full ladder once made, else the first one.

    A video plays for every client once `playable`. Before that, an HEVC source's copy may
    already play for the clients that decode HEVC: its master playlist is handed out while the
    video is still `processing`, and `playable_for` says who can play it.
    """
    current = {r.name: r for r in renditions if r.source_version == video.source_version}
    playable = video.status in PLAYABLE_STATUSES

    def first_of(names: tuple[str, ...]) -> Rendition | None:
        return next((current[name] for name in names if name in current), None)

    if playable:
        hls = first_of(HLS_NAMES_BY_PREFERENCE)
    elif video.status is VideoStatus.PROCESSING:
        hls = current.get("first_master")
    else:
        hls = None
    mp4 = first_of(MP4_NAMES_BY_PREFERENCE) if playable else None
    return Playback(
        hls=hls,
        mp4=mp4,
        poster=current.get("poster"),
        storyboard=current.get("storyboard") if playable else None,
        renditions=_offered(hls, mp4, current),
    )


def _offered(
    hls: Rendition | None, mp4: Rendition | None, current: dict[str, Rendition]
) -> tuple[Rendition, ...]:
    if hls is None:
        variants: list[Rendition] = []
    elif hls.kind is RenditionKind.HLS:
        variants = [hls]
    else:
        variants = [
            r
            for r in current.values()
            if r.kind is RenditionKind.HLS
            and (hls.name != "master" or r.name not in _SUPERSEDED_BY_LADDER)
        ]
    # The HEVC copy first (as in the master), then by size.
    variants.sort(key=lambda r: (codec_family(r.codec) != "hevc", r.height or 0, r.name))
    return (*variants, *([mp4] if mp4 is not None else []))


def resolve(base_key: str, uri: str, *, within: str) -> str | None:
    """The storage key a relative URI in the object at `base_key` names, or None when it is
    absolute or leaves `within` (a playlist must never point at another video's media)."""
    if "://" in uri or uri.startswith("/") or "?" in uri:
        return None
    path = normpath(f"{dirname(base_key)}/{uri}")
    return path if path.startswith(within.rstrip("/") + "/") else None


def rewrite_playlist(text: str, sign_uri: Callable[[str], str | None]) -> str:
    """Replace every URI of an HLS playlist with what `sign_uri` returns for it.

    URIs are the non-tag lines and the URI="..." attributes of tags (EXT-X-MAP, EXT-X-MEDIA).
    A URI that `sign_uri` refuses is dropped with its line.
    """
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            out.append(line)
        elif stripped.startswith("#"):
            out.append(_rewrite_attribute(stripped, sign_uri))
        else:
            signed = sign_uri(stripped)
            if signed is not None:
                out.append(signed)
    return "\n".join(out) + "\n"


def _rewrite_attribute(line: str, sign_uri: Callable[[str], str | None]) -> str:
    marker = 'URI="'
    start = line.find(marker)
    if start < 0:
        return line
    start += len(marker)
    end = line.find('"', start)
    if end < 0:
        return line
    signed = sign_uri(line[start:end])
    return line[:start] + (signed or "") + line[end:]


def rewrite_storyboard(text: str, sign_uri: Callable[[str], str | None]) -> str:
    """Sign the image URIs of a WebVTT thumbnail track (`sprite.jpg#xywh=...`)."""
    out = []
    for line in text.splitlines():
        uri, hash_, fragment = line.partition("#xywh=")
        if hash_ and uri and "-->" not in line:
            signed = sign_uri(uri.strip())
            out.append(f"{signed}#xywh={fragment}" if signed else line)
        else:
            out.append(line)
    return "\n".join(out) + "\n"
