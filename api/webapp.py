"""The web app at /app: its shell page and its built assets (api/static/app, made by `webapp/`).

Every path under /app that is not a file answers with the shell, and the app routes on the
client. The shell names its two entry files with a digest of their content (`?v=`), so they and
the content-named chunks are cached for a year and a new build is fetched at the next load.
Every answer carries a strict Content Security Policy: scripts and styles from this origin only
(no inline code), media and API calls to this origin and the storage's. A person's link (push,
chat card, email: `APP_LINK_BASE/videos/...`) that reaches this server opens the app there.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import mimetypes
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TypeVar, cast
from urllib.parse import quote_from_bytes, urlsplit

from flask import Blueprint, Flask, Response, abort, redirect, request, send_file

from fieldcast.settings import Settings

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent / "static" / "app"
ASSETS = ROOT / "assets"
# Files at the top of /app itself (the rest of /app/... is the shell).
TOP_FILES = frozenset({"sw.js", "manifest.webmanifest", "icon.svg"})
YEAR_S = 365 * 24 * 3600
COMPRESSIBLE = frozenset({".js", ".css", ".svg", ".json", ".webmanifest", ".txt"})

mimetypes.add_type("application/manifest+json", ".webmanifest")


def content_security_policy(settings: Settings) -> str:
    """Scripts, styles and fonts from this origin only; media and API calls also to the
    storage's origin (signed playback and upload URLs point there when it is S3)."""
    # Signed URLs of local storage start with PUBLIC_BASE_URL, which may be spelt otherwise
    # than the address the page was opened at (localhost, a proxy's name).
    own = _origin(settings.public_base_url)
    media = " ".join(["'self'", own, "blob:", *_storage_origins(settings)])
    connect = " ".join(["'self'", own, *_storage_origins(settings), *_push_origins(settings)])
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {media} data:",
            f"media-src {media}",
            f"connect-src {connect}",
            "worker-src 'self' blob:",
            "font-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "manifest-src 'self'",
        ]
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _push_origins(settings: Settings) -> list[str]:
    """Where Firebase's SDK asks for a browser's FCM token, when web push is configured."""
    if settings.fcm_web_config is None:
        return []
    return [
        "https://firebaseinstallations.googleapis.com",
        "https://fcmregistrations.googleapis.com",
    ]


def _storage_origins(settings: Settings) -> list[str]:
    if not settings.storage_url.startswith("s3"):
        return []  # local storage: its signed URLs are this server's own
    if settings.s3_endpoint_url:
        parts = urlsplit(settings.s3_endpoint_url)
        return [_origin(settings.s3_endpoint_url), f"{parts.scheme}://*.{parts.netloc}"]
    return ["https://*.amazonaws.com"]


def _from_file(path: Path, derive: Callable[[bytes], T]) -> T:
    """`derive` of the file's bytes, kept until the file changes (a rebuild under a running
    server is picked up). `derive` is a module-level function: it is part of the cache key."""
    stat = path.stat()
    return cast(T, _derived(path, stat.st_mtime_ns, stat.st_size, derive))


@lru_cache(maxsize=128)
def _derived(path: Path, mtime_ns: int, size: int, derive: Callable[[bytes], object]) -> object:
    return derive(path.read_bytes())


def _short_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _chunk_list(data: bytes) -> list[str]:
    return [c for c in json.loads(data) if re.fullmatch(r"chunks/[\w.-]+\.js", c)]


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)


def _digest(path: Path) -> str:
    return _from_file(path, _short_sha256)


def _preloaded() -> list[str]:
    """The chunks app.js imports at once (webapp/build.mjs lists them): fetched beside it."""
    listed = ASSETS / "preload.json"
    return _from_file(listed, _chunk_list) if listed.is_file() else []


def _shell(settings: Settings) -> str:
    js, css = ASSETS / "app.js", ASSETS / "app.css"
    if not js.exists():
        abort(404)
    origin = html.escape(settings.public_base_url, quote=True)
    preload = "".join(
        f'<link rel="modulepreload" href="/app/assets/{html.escape(chunk, quote=True)}">\n'
        for chunk in _preloaded()
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="theme-color" content="#0b5cad">
<meta name="description" content="Fieldcast: short videos from the field, shared with your team.">
<meta name="fieldcast-origin" content="{origin}">
<title>Fieldcast</title>
<link rel="manifest" href="/app/manifest.webmanifest">
<link rel="icon" href="/app/icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/app/assets/app.css?v={_digest(css)}">
<script type="module" src="/app/assets/app.js?v={_digest(js)}"></script>
{preload}</head>
<body>
<div id="app"><p class="spinner" role="status">Opening Fieldcast…</p></div>
<noscript>Fieldcast's web app needs JavaScript.</noscript>
</body>
</html>
"""


def _send(path: Path, *, max_age: int, immutable: bool = False) -> Response:
    """A built file; text gzipped (once, then kept in memory) for clients that take it."""
    if not path.is_file():
        abort(404)
    mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    compressible = path.suffix in COMPRESSIBLE
    if compressible and "gzip" in request.headers.get("Accept-Encoding", ""):
        body = _from_file(path, _gzip)
        response = Response(body, mimetype=mimetype)
        response.headers["Content-Encoding"] = "gzip"
        response.set_etag(hashlib.sha256(body).hexdigest()[:32])
        response.cache_control.public = True
        response.cache_control.max_age = max_age
        response.make_conditional(request)
    else:
        response = send_file(path, mimetype=mimetype, max_age=max_age, conditional=True)
    if compressible:
        response.headers.add("Vary", "Accept-Encoding")
    if immutable:
        response.headers["Cache-Control"] = f"public, max-age={max_age}, immutable"
    return response


def install(app: Flask, settings: Settings) -> None:
    blp = Blueprint("webapp", __name__)
    policy = content_security_policy(settings)

    @blp.get("/app")
    def app_root() -> Response:
        return redirect("/app/", code=308)  # type: ignore[return-value]

    @blp.get("/app/")
    @blp.get("/app/<path:path>")
    def shell(path: str = "") -> Response:
        if path in TOP_FILES:
            response = _send(ROOT / path, max_age=0)
            if path == "sw.js":
                response.headers["Cache-Control"] = "no-cache"
                response.headers["Service-Worker-Allowed"] = "/app/"
            return response
        if path.startswith("assets/"):
            name = path.removeprefix("assets/")
            file = (ASSETS / name).resolve()
            if not file.is_relative_to(ASSETS):
                abort(404)
            # Chunks are named by their content; the entries are asked for with ?v=<digest>,
            # cached for good only when it is this file's digest (an old server answering a
            # new shell's URL during a deploy must not pin its file for a year).
            versioned = name.startswith("chunks/") or (
                file.is_file() and request.args.get("v") == _digest(file)
            )
            return _send(file, max_age=YEAR_S if versioned else 0, immutable=versioned)
        if "." in path.rsplit("/", 1)[-1]:
            abort(404)  # a missing file, not a screen
        response = Response(_shell(settings), mimetype="text/html")
        response.headers["Cache-Control"] = "no-cache"
        return response

    # The links the product hands to people (fieldcast.links.app_link: pushes, emails, chat
    # cards) name APP_LINK_BASE's paths; opened in a browser on this server, they are the web
    # app's screens of the same path.
    @blp.get("/videos/<uuid:item_id>", endpoint="video_link")
    @blp.get("/collections/<uuid:item_id>", endpoint="collection_link")
    @blp.get("/invitations/accept", endpoint="invitation_link")
    @blp.get("/password-reset", endpoint="password_reset_link")
    @blp.get("/learning/team", endpoint="team_learning_link")
    @blp.get("/search", endpoint="search_link")
    def app_link(item_id: object = None) -> Response:
        # The query as it came, bytes that are not ASCII percent-encoded (never a 500).
        query = quote_from_bytes(request.query_string, safe="=&%+;,/?:@$!*'()~")
        return redirect(f"/app{request.path}" + (f"?{query}" if query else ""))  # type: ignore[return-value]

    @blp.after_request
    def secure(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = policy
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault(
            "Permissions-Policy", "camera=(self), microphone=(self), geolocation=()"
        )
        return response

    app.register_blueprint(blp)


def build_info() -> dict[str, object]:
    """What the committed build was made from (webapp/build.mjs writes it)."""
    return json.loads((ROOT / "build-info.json").read_text())
