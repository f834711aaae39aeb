"""Signed playback routes: playlists and storyboards rewritten with signed URIs, and local media.

Players (AVPlayer, ExoPlayer, hls.js) cannot add an Authorization header to every segment
request, so these routes take no bearer token: the signed URL is the credential. The API hands
such URLs only to principals who may see the video (GET /api/v1/videos/{id}); they expire
after PLAYBACK_URL_TTL_S. These routes are not part of the OpenAPI: clients never build them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, request, send_file

from api.problems import problem_response
from api.runtime import context, db_session
from fieldcast import links
from fieldcast.errors import ErrorCode
from fieldcast.models.videos import Rendition, RenditionKind, Video
from fieldcast.videos import playback
from fieldcast.videos import services as videos
from media.storage import LocalStorage, ObjectNotFound

blp = Blueprint("playback", __name__)

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"


def _secret() -> str:
    secret = context().settings.secret_key
    assert secret is not None
    return secret


def _ttl() -> int:
    return context().settings.playback_url_ttl_s


def _absolute(path: str) -> str:
    return links.api_url(context().settings, path)


def sign_media_key(key: str, *, ttl: int, download_name: str | None = None) -> str:
    """A short-lived URL for one stored object: presigned by S3, or signed by this API."""
    storage = context().storage
    url = storage.presigned_url(key, expires_in=ttl, download_name=download_name)
    if url is not None:
        return url
    path = playback.media_path(key)
    signed = playback.signed_path(_secret(), path, playback.expiry(ttl))
    if download_name:
        signed += f"&name={quote(download_name)}"
    return _absolute(signed)


def _sign_api_path(path: str, ttl: int) -> str:
    return _absolute(playback.signed_path(_secret(), path, playback.expiry(ttl)))


def _media_ttl(video: Video) -> int:
    # Segments are fetched for as long as the video plays; their URLs outlive the playlist's.
    return _ttl() + (video.duration_ms or 0) // 1000


def _beside(video: Video, rendition: Rendition, ttl: int) -> Callable[[str], str | None]:
    """Signs a URI found in the rendition's file, if it names an object of the same video."""

    def sign(uri: str) -> str | None:
        key = playback.resolve(rendition.storage_key, uri, within=video.media_prefix)
        return sign_media_key(key, ttl=ttl) if key else None

    return sign


def playback_urls(video: Video, renditions: Iterable[Rendition]) -> dict[str, Any]:
    """The `playback` object of a video, for a principal already allowed to see it."""
    chosen = playback.choose(video, renditions)
    ttl = _ttl()
    media_ttl = _media_ttl(video)
    return {
        "hls_url": _sign_api_path(playback.playlist_path(video.id, chosen.hls.name), ttl)
        if chosen.hls
        else None,
        "mp4_url": sign_media_key(
            chosen.mp4.storage_key, ttl=media_ttl, download_name=_download_name(video)
        )
        if chosen.mp4
        else None,
        "poster_url": sign_media_key(chosen.poster.storage_key, ttl=ttl) if chosen.poster else None,
        "storyboard_url": _sign_api_path(playback.storyboard_path(video.id), ttl)
        if chosen.storyboard
        else None,
        "expires_at": playback.expiry(ttl),
        "playable_for": chosen.playable_for,
        "renditions": [_rendition(rendition) for rendition in chosen.renditions],
    }


def _rendition(rendition: Rendition) -> dict[str, Any]:
    return {
        "name": rendition.name,
        "kind": rendition.kind.value,
        "codec": rendition.codec,
        "width": rendition.width,
        "height": rendition.height,
        "bitrate_kbps": rendition.bitrate_kbps,
        "hdr": rendition.video_range if rendition.video_range in ("hlg", "pq") else None,
    }


def _download_name(video: Video) -> str:
    safe = "".join(c if c.isalnum() or c in " -_" else "_" for c in video.title).strip()
    return f"{safe[:80] or 'video'}.mp4"


def _denied(reason: str) -> Response:
    if reason == "expired":
        return problem_response(403, ErrorCode.LINK_EXPIRED, detail="This link has expired.")
    return problem_response(403, ErrorCode.INVALID_SIGNATURE, detail="This link is not valid.")


def _check_signature() -> Response | None:
    reason = playback.verify(
        _secret(), request.path, request.args.get("exp"), request.args.get("sig"), now=time.time()
    )
    return _denied(reason) if reason else None


def _read_text(key: str) -> str | None:
    try:
        return b"".join(context().storage.open(key)).decode()
    except ObjectNotFound:
        return None


def _text_response(body: str, mimetype: str) -> Response:
    response = Response(body, mimetype=mimetype)
    # The body holds signed URLs made for this viewer: shared caches must not keep it.
    response.headers["Cache-Control"] = "private, max-age=60"
    return response


@blp.get("/play/<uuid:video_id>/<name>.m3u8")
def playlist(video_id: uuid.UUID, name: str) -> Response:
    denied = _check_signature()
    if denied is not None:
        return denied
    found = videos.current_rendition(db_session(), video_id, name)
    if found is None or found[1].kind not in (RenditionKind.HLS, RenditionKind.MASTER):
        return problem_response(404, ErrorCode.NOT_FOUND, detail="No such playlist.")
    video, rendition = found
    text = _read_text(rendition.storage_key)
    if text is None:
        return problem_response(404, ErrorCode.NOT_FOUND, detail="No such playlist.")
    ttl = _media_ttl(video)

    def sign_variant(uri: str) -> str | None:
        # Variants are "<rung>/index.m3u8": served (and signed) by this route in turn.
        variant = uri.split("/", 1)[0]
        return _sign_api_path(playback.playlist_path(video.id, variant), ttl)

    sign = (
        sign_variant if rendition.kind is RenditionKind.MASTER else _beside(video, rendition, ttl)
    )
    return _text_response(playback.rewrite_playlist(text, sign), PLAYLIST_TYPE)


@blp.get("/play/<uuid:video_id>/storyboard.vtt")
def storyboard(video_id: uuid.UUID) -> Response:
    denied = _check_signature()
    if denied is not None:
        return denied
    found = videos.current_rendition(db_session(), video_id, "storyboard")
    text = _read_text(found[1].storage_key) if found else None
    if found is None or text is None:
        return problem_response(404, ErrorCode.NOT_FOUND, detail="No storyboard.")
    video, rendition = found
    sign = _beside(video, rendition, _media_ttl(video))
    return _text_response(playback.rewrite_storyboard(text, sign), "text/vtt")


@blp.get("/media/<path:key>")
def media(key: str) -> Response:
    """Local storage only (S3 serves its own presigned URLs). Honours Range requests."""
    denied = _check_signature()
    if denied is not None:
        return denied
    storage = context().storage
    if not isinstance(storage, LocalStorage):
        return problem_response(404, ErrorCode.NOT_FOUND, detail="No such media.")
    try:
        path = storage.path(key)
    except Exception:
        return problem_response(404, ErrorCode.NOT_FOUND, detail="No such media.")
    if not path.is_file():
        return problem_response(404, ErrorCode.NOT_FOUND, detail="No such media.")
    name = request.args.get("name")
    response = send_file(
        path,
        mimetype=playback.content_type(path.name) if not name else None,
        as_attachment=bool(name),
        download_name=name or path.name,
        conditional=True,
        etag=True,
        max_age=_ttl(),
    )
    response.headers["Cache-Control"] = f"private, max-age={_ttl()}"
    return response
