"""Private playback: viewer grants carried by signed URLs, and playlists whose every URI is signed.

Media never sits behind a guessable public URL. Reading a video, a viewer gets a grant: the
right to play that video's current media until the grant expires (PLAYBACK_GRANT_TTL_S, a day
by default), bound to the viewer. Every URL the API hands out for it (master and variant
playlists, init files, segments, the MP4, the poster, the storyboard and its sprite) carries
the grant and a signature over the URL's path and the grant, so a player that pauses for an
hour, or a download resumed with `Range` the next morning, still holds working URLs, while
changing the path, the video, the viewer or the expiry makes them worthless.

A long-lived URL must still die with the viewer's access. So every fetch is checked twice: the
signature, and that the viewer may still see the video (`policy.videos.can_see` on the
viewer, active, the video not deleted, its share not recalled, its media not replaced). The
answer is remembered per (video, viewer, source version) for at most PLAYBACK_REVOCATION_S
(`AccessCache`), which keeps a segment fetch free of queries and is the bound within which a
revocation stops new fetches. Bytes come from the API (local storage, with `Range`) or from a
freshly presigned S3 URL the API redirects to, short-lived (PLAYBACK_URL_TTL_S): a presigned
URL cannot be revoked, so none outlives a few minutes.

Attachments keep plain signed URLs (`signed_path`): a path and an expiry, no viewer.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from posixpath import dirname, normpath
from urllib.parse import quote

from sqlalchemy.orm import Session

from fieldcast import policy
from fieldcast.models.accounts import User
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


def _is_number(text: str) -> bool:
    # ASCII only: str.isdigit() also accepts "²", which int() refuses.
    return len(text) <= 12 and text.isascii() and text.isdigit()


def signature(secret: str, path: str, expires: int) -> str:
    mac = hmac.new(secret.encode(), f"{path}\n{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:20]).decode().rstrip("=")


def signed_path(secret: str, path: str, expires: int) -> str:
    """The URL path with its signature. The signature covers the path as the server sees it
    (decoded); the URL carries it percent-encoded."""
    return f"{quote(path, safe='/')}?exp={expires}&sig={signature(secret, path, expires)}"


def verify(secret: str, path: str, expires: str | None, sig: str | None, *, now: float) -> str:
    """'' when the signature holds and has not expired; else why not: 'invalid' or 'expired'."""
    if not expires or not sig or not _is_number(expires):
        return "invalid"
    if not hmac.compare_digest(signature(secret, path, int(expires)), sig):
        return "invalid"
    if int(expires) < now:
        return "expired"
    return ""


# -- viewer grants --------------------------------------------------------------------------------

_VERSION_BYTES = 4


@dataclass(frozen=True)
class Grant:
    """One viewer's right to play one video's media from one source version, until `expires`.

    Nothing is stored: the grant travels in the URLs (`g`, `exp`) under a signature only the
    API can make, and each fetch asks again whether it still holds (`check_access`)."""

    video_id: uuid.UUID
    user_id: uuid.UUID
    source_version: int
    expires: int

    @classmethod
    def for_viewer(cls, video: Video, user_id: uuid.UUID, ttl_s: int) -> Grant:
        return cls(video.id, user_id, video.source_version, expiry(ttl_s))

    @property
    def token(self) -> str:
        raw = (
            self.video_id.bytes
            + self.user_id.bytes
            + self.source_version.to_bytes(_VERSION_BYTES, "big")
        )
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def parse(cls, token: str, expires: str) -> Grant | None:
        if not _is_number(expires) or len(token) > 64:
            return None
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except ValueError:
            return None
        if len(raw) != 32 + _VERSION_BYTES:
            return None
        return cls(
            video_id=uuid.UUID(bytes=raw[:16]),
            user_id=uuid.UUID(bytes=raw[16:32]),
            source_version=int.from_bytes(raw[32:], "big"),
            expires=int(expires),
        )


def grant_signature(secret: str, path: str, grant: Grant, name: str | None = None) -> str:
    # "grant" keeps these signatures apart from `signature`'s: neither opens the other's URLs.
    material = f"grant\n{path}\n{grant.expires}\n{grant.token}\n{name or ''}"
    mac = hmac.new(secret.encode(), material.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:20]).decode().rstrip("=")


def granted_path(secret: str, path: str, grant: Grant, *, name: str | None = None) -> str:
    """The URL path carrying the grant, signed over the path (as the server sees it, decoded),
    the grant and the download name, if any."""
    query = f"exp={grant.expires}&g={grant.token}&sig={grant_signature(secret, path, grant, name)}"
    if name:
        query += f"&name={quote(name)}"
    return f"{quote(path, safe='/')}?{query}"


def verify_grant(
    secret: str,
    path: str,
    *,
    expires: str | None,
    token: str | None,
    sig: str | None,
    name: str | None,
    now: float,
) -> tuple[Grant | None, str]:
    """The grant a URL carries, and '' when its signature holds and it has not expired; else
    None and why not: 'invalid' or 'expired'."""
    grant = Grant.parse(token, expires) if token and expires else None
    if grant is None or not sig:
        return None, "invalid"
    if not hmac.compare_digest(grant_signature(secret, path, grant, name), sig):
        return None, "invalid"
    if grant.expires < now:
        return None, "expired"
    return grant, ""


class Access(enum.Enum):
    ALLOWED = "allowed"
    REVOKED = "revoked"  # the viewer may no longer see the video (or is no longer active)
    REPLACED = "replaced"  # the video has a new source: these URLs name the old media


@dataclass(frozen=True)
class AccessDecision:
    access: Access
    # Where the granted media lives: the only keys the grant opens.
    media_prefix: str | None = None


def check_access(session: Session, grant: Grant) -> AccessDecision:
    """Whether the grant's viewer may still play the grant's video: the one visibility rule
    (`policy.videos.can_see`) asked again of the viewer as they are now."""
    user = session.get(User, grant.user_id)
    video = session.get(Video, grant.video_id)
    if user is None or video is None or not user.is_active:
        return AccessDecision(Access.REVOKED)
    if not policy.videos.can_see(session, policy.Principal(user=user), video):
        return AccessDecision(Access.REVOKED)
    if video.source_version != grant.source_version:
        return AccessDecision(Access.REPLACED)
    return AccessDecision(Access.ALLOWED, video.media_prefix)


class AccessCache:
    """Access decisions per (video, viewer, source version), each kept at most `ttl_s` seconds.

    Per process: every API process asks the database at most once per viewer and video every
    `ttl_s`, however many segments the player fetches; a revocation is seen by all of them
    within `ttl_s`. `ttl_s` 0 asks on every fetch."""

    def __init__(
        self,
        ttl_s: float,
        *,
        max_entries: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[tuple[uuid.UUID, uuid.UUID, int], tuple[float, AccessDecision]]
        self._entries = OrderedDict()
        self._lock = threading.Lock()

    def decide(self, grant: Grant, ask: Callable[[Grant], AccessDecision]) -> AccessDecision:
        key = (grant.video_id, grant.user_id, grant.source_version)
        now = self._clock()
        with self._lock:
            held = self._entries.get(key)
            if held is not None and now - held[0] < self.ttl_s:
                self._entries.move_to_end(key)  # the least recently used go first
                return held[1]
        decision = ask(grant)
        if self.ttl_s > 0:
            with self._lock:
                self._entries[key] = (now, decision)
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    self._entries.popitem(last=False)
        return decision


def within(key: str, prefix: str) -> bool:
    """The storage key lies under `prefix` (a video's media of one source version)."""
    return normpath(key) == key and key.startswith(prefix.rstrip("/") + "/")


def expiry(ttl_s: int, *, now: float | None = None) -> int:
    """`ttl_s` from now, rounded up so URLs made close together are the same (caches hit, ETags
    hold): to the minute, or to a tenth of a lifetime shorter than ten minutes."""
    step = max(1, min(60, ttl_s // 10))
    moment = (time.time() if now is None else now) + ttl_s
    return int(moment // step + 1) * step


def playlist_path(video_id: uuid.UUID, name: str) -> str:
    return f"/play/{video_id}/{name}.m3u8"


def storyboard_path(video_id: uuid.UUID) -> str:
    return f"/play/{video_id}/storyboard.vtt"


# The subtitles rendition a master playlist lists when the video has captions; not a rendition
# of its own, made from the transcript when asked for.
CAPTIONS_NAME = "captions"


def captions_path(video_id: uuid.UUID) -> str:
    return f"/play/{video_id}/captions.vtt"


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
