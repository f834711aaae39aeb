"""Playback routes: playlists and storyboards rewritten with signed URIs, and media.

Players (AVPlayer, ExoPlayer, hls.js) cannot add an Authorization header to every segment
request, so these routes take no bearer token: the signed URL is the credential. The API hands
such URLs only to a principal who may see the video (GET /api/v1/videos/{id}), each carrying
that viewer's grant (fieldcast/videos/playback.py): they play until the grant expires
(PLAYBACK_GRANT_TTL_S), and each fetch asks again, at most PLAYBACK_REVOCATION_S late, whether
the viewer may still see the video. Media is served by the API (local storage, with Range) or
by S3 through a redirect to a presigned URL made for that fetch, valid PLAYBACK_URL_TTL_S.
These routes are not part of the OpenAPI: clients never build them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, request, send_file

from api.auth import current_principal
from api.problems import problem_response
from api.runtime import context, db_session
from fieldcast import links
from fieldcast.errors import ErrorCode
from fieldcast.models.videos import Rendition, RenditionKind, Video
from fieldcast.transcripts import services as transcripts
from fieldcast.videos import playback
from fieldcast.videos import services as videos
from fieldcast.videos.playback import Access, AccessCache, AccessDecision, Grant
from media import captions
from media.storage import LocalStorage, ObjectNotFound

blp = Blueprint("playback", __name__)

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
_ACCESS_CACHE = "fieldcast.playback_access"


def _secret() -> str:
    secret = context().settings.secret_key
    assert secret is not None
    return secret


def _ttl() -> int:
    return context().settings.playback_url_ttl_s


def _absolute(path: str) -> str:
    return links.api_url(context().settings, path)


def sign_media_key(key: str, *, ttl: int, download_name: str | None = None) -> str:
    """A short-lived URL for one stored object, bound to no viewer (attachments): presigned by
    S3, or signed by this API."""
    storage = context().storage
    url = storage.presigned_url(key, expires_in=ttl, download_name=download_name)
    if url is not None:
        return url
    path = playback.media_path(key)
    signed = playback.signed_path(_secret(), path, playback.expiry(ttl))
    if download_name:
        signed += f"&name={quote(download_name)}"
    return _absolute(signed)


def _granted(grant: Grant, path: str, *, name: str | None = None) -> str:
    return _absolute(playback.granted_path(_secret(), path, grant, name=name))


def _beside(grant: Grant, video_prefix: str, rendition_key: str) -> Callable[[str], str | None]:
    """Signs a URI found in a rendition's file, if it names an object of the same video."""

    def sign(uri: str) -> str | None:
        key = playback.resolve(rendition_key, uri, within=video_prefix)
        return _granted(grant, playback.media_path(key)) if key else None

    return sign


def playback_urls(
    video: Video, renditions: Iterable[Rendition], *, captioned: bool = False
) -> dict[str, Any]:
    """The `playback` object of a video, for the current principal, already allowed to see it:
    every URL carries their grant and plays until `expires_at`. `captioned`: its current file
    has a transcript to show as captions (`transcripts.captioned`)."""
    chosen = playback.choose(video, renditions)
    grant = Grant.for_viewer(
        video, current_principal().user_id, context().settings.playback_grant_ttl_s
    )
    return {
        "hls_url": _granted(grant, playback.playlist_path(video.id, chosen.hls.name))
        if chosen.hls
        else None,
        "mp4_url": _granted(
            grant, playback.media_path(chosen.mp4.storage_key), name=_download_name(video)
        )
        if chosen.mp4
        else None,
        "poster_url": _granted(grant, playback.media_path(chosen.poster.storage_key))
        if chosen.poster
        else None,
        "storyboard_url": _granted(grant, playback.storyboard_path(video.id))
        if chosen.storyboard
        else None,
        "captions_url": _granted(grant, playback.captions_path(video.id))
        if captioned and chosen.hls is not None
        else None,
        "expires_at": grant.expires,
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


def _access_cache() -> AccessCache:
    cache: AccessCache | None = current_app.extensions.get(_ACCESS_CACHE)
    if cache is None:
        cache = AccessCache(context().settings.playback_revocation_s)
        current_app.extensions[_ACCESS_CACHE] = cache
    return cache


def _check_grant(video_id: uuid.UUID | None = None) -> tuple[Grant, AccessDecision] | Response:
    """The grant of this request's URL, when its signature holds, it has not expired and its
    viewer may still see its video (as known at most PLAYBACK_REVOCATION_S ago); else the
    problem response."""
    grant, reason = playback.verify_grant(
        _secret(),
        request.path,
        expires=request.args.get("exp"),
        token=request.args.get("g"),
        sig=request.args.get("sig"),
        name=request.args.get("name"),
        now=time.time(),
    )
    if grant is None:
        return _denied(reason)
    if video_id is not None and video_id != grant.video_id:
        return _denied("invalid")
    decision = _access_cache().decide(grant, lambda held: playback.check_access(db_session(), held))
    if decision.access is Access.REVOKED:
        return problem_response(
            403, ErrorCode.PLAYBACK_REVOKED, detail="You may no longer watch this video."
        )
    if decision.access is Access.REPLACED:
        return problem_response(
            403,
            ErrorCode.LINK_EXPIRED,
            detail="The video's media was replaced; read the video again for fresh links.",
        )
    return grant, decision


def _read_text(key: str) -> str | None:
    try:
        return b"".join(context().storage.open(key)).decode()
    except ObjectNotFound:
        return None


def _text_response(body: str, mimetype: str, *, growing: bool = False) -> Response:
    response = Response(body, mimetype=mimetype)
    # The body holds URLs made for this viewer: shared caches must not keep it. A playlist
    # still growing (an EVENT playlist without its end) is asked for again as players reload it.
    response.headers["Cache-Control"] = "private, no-cache" if growing else "private, max-age=60"
    return response


@blp.get("/play/<uuid:video_id>/<name>.m3u8")
def playlist(video_id: uuid.UUID, name: str) -> Response:
    """A master or media playlist, every URI in it signed anew with the viewer's grant

    `Cache-Control: private, max-age=60`; while an HEVC copy is still being stored, its media
    playlist is an HLS EVENT playlist without `#EXT-X-ENDLIST` that grows as segments are
    stored, served `private, no-cache` so players reload it. A master playlist of a video with
    captions lists them as a subtitles rendition (`captions.m3u8`).
    """
    checked = _check_grant(video_id)
    if isinstance(checked, Response):
        return checked
    grant, _ = checked
    if name == playback.CAPTIONS_NAME:
        return _subtitles_playlist(grant, video_id)
    found = videos.current_rendition(db_session(), video_id, name)
    if found is None or found[1].kind not in (RenditionKind.HLS, RenditionKind.MASTER):
        return problem_response(404, ErrorCode.NOT_FOUND, detail="No such playlist.")
    video, rendition = found
    text = _read_text(rendition.storage_key)
    if text is None:
        return problem_response(404, ErrorCode.NOT_FOUND, detail="No such playlist.")

    def sign_variant(uri: str) -> str | None:
        # Variants are "<rung>/index.m3u8": served (and signed) by this route in turn.
        variant = uri.split("/", 1)[0]
        return _granted(grant, playback.playlist_path(video.id, variant))

    if rendition.kind is RenditionKind.MASTER:
        language, segments = transcripts.captions_of(db_session(), video)
        if segments:
            text = captions.with_subtitles(
                text,
                uri=f"{playback.CAPTIONS_NAME}/index.m3u8",
                name=_language_name(language),
                language=language or "und",
            )
    sign = (
        sign_variant
        if rendition.kind is RenditionKind.MASTER
        else _beside(grant, video.media_prefix, rendition.storage_key)
    )
    growing = rendition.kind is RenditionKind.HLS and "#EXT-X-ENDLIST" not in text
    return _text_response(playback.rewrite_playlist(text, sign), PLAYLIST_TYPE, growing=growing)


_LANGUAGE_NAMES = {"en": "English", "de": "Deutsch", "es": "Español", "fr": "Français"}


def _language_name(language: str | None) -> str:
    base = (language or "").split("-")[0].lower()
    return _LANGUAGE_NAMES.get(base, language or "Captions")


def _captioned_video(video_id: uuid.UUID) -> tuple[Video, str | None, list[Any]] | None:
    video = db_session().get(Video, video_id)
    if video is None:
        return None
    language, segments = transcripts.captions_of(db_session(), video)
    return (video, language, segments) if segments else None


def _subtitles_playlist(grant: Grant, video_id: uuid.UUID) -> Response:
    """The subtitles rendition of the master playlist: one WebVTT segment, the whole video."""
    found = _captioned_video(video_id)
    if found is None:
        return problem_response(404, ErrorCode.NOT_FOUND, detail="No captions.")
    video, _, segments = found
    duration_ms = video.duration_ms or max(segment.end_ms for segment in segments)
    vtt_url = _granted(grant, playback.captions_path(video_id))
    return _text_response(captions.subtitles_playlist(vtt_url, duration_ms), PLAYLIST_TYPE)


@blp.get("/play/<uuid:video_id>/captions.vtt")
def captions_track(video_id: uuid.UUID) -> Response:
    """The video's captions as WebVTT, made from its transcript as it is now"""
    checked = _check_grant(video_id)
    if isinstance(checked, Response):
        return checked
    found = _captioned_video(video_id)
    if found is None:
        return problem_response(404, ErrorCode.NOT_FOUND, detail="No captions.")
    _, _, segments = found
    cues = [captions.Cue(s.start_ms, s.end_ms, s.text) for s in segments]
    return _text_response(captions.webvtt(cues), "text/vtt")


@blp.get("/play/<uuid:video_id>/storyboard.vtt")
def storyboard(video_id: uuid.UUID) -> Response:
    checked = _check_grant(video_id)
    if isinstance(checked, Response):
        return checked
    grant, _ = checked
    found = videos.current_rendition(db_session(), video_id, "storyboard")
    text = _read_text(found[1].storage_key) if found else None
    if found is None or text is None:
        return problem_response(404, ErrorCode.NOT_FOUND, detail="No storyboard.")
    video, rendition = found
    sign = _beside(grant, video.media_prefix, rendition.storage_key)
    return _text_response(playback.rewrite_storyboard(text, sign), "text/vtt")


@blp.get("/media/<path:key>")
def media(key: str) -> Response:
    """A stored object: a video's media under a viewer's grant (`g`), or an attachment under a
    plain signature. Local storage is served here, with Range, ETag and If-Range; S3 answers
    with a redirect to a presigned URL made now, valid PLAYBACK_URL_TTL_S."""
    name = request.args.get("name")
    if "g" in request.args:
        checked = _check_grant()
        if isinstance(checked, Response):
            return checked
        _, decision = checked
        if decision.media_prefix is None or not playback.within(key, decision.media_prefix):
            return _denied("invalid")
        url = context().storage.presigned_url(key, expires_in=_ttl(), download_name=name)
        if url is not None:
            # A fresh URL per fetch; the redirect itself must not be kept.
            return Response(status=302, headers={"Location": url, "Cache-Control": "no-store"})
    else:
        denied = _check_signature()
        if denied is not None:
            return denied
    return _local_file(key, name)


def _local_file(key: str, name: str | None) -> Response:
    storage = context().storage
    if not isinstance(storage, LocalStorage):
        return problem_response(404, ErrorCode.NOT_FOUND, detail="No such media.")
    try:
        path = storage.path(key)
    except Exception:
        return problem_response(404, ErrorCode.NOT_FOUND, detail="No such media.")
    if not path.is_file():
        return problem_response(404, ErrorCode.NOT_FOUND, detail="No such media.")
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
