"""The web app as the server hands it out: the shell, its assets, caching, compression, the
Content Security Policy, person links, and a committed build that matches its sources."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import re
import uuid
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from api.app import create_app
from api.webapp import ASSETS, ROOT, content_security_policy
from fieldcast.context import AppContext
from fieldcast.settings import Settings

REPO = Path(__file__).resolve().parents[1]
WEBAPP = REPO / "webapp"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.inline_code: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in = tag
        if any(name.startswith("on") or name == "style" for name, _ in attrs):
            self.inline_code.append(f"<{tag}> with an inline handler or style")

    def handle_data(self, data: str) -> None:
        if self._in in {"script", "style"} and data.strip():
            self.inline_code.append(f"inline <{self._in}>")

    def handle_endtag(self, tag: str) -> None:
        self._in = None


def _shell(client: FlaskClient, path: str = "/app/") -> _Tags:
    response = client.get(path)
    assert response.status_code == 200, path
    assert response.mimetype == "text/html"
    assert response.headers["Cache-Control"] == "no-cache"
    parser = _Tags()
    parser.feed(response.get_data(as_text=True))
    return parser


def _directives(policy: str) -> dict[str, list[str]]:
    return {
        name: values
        for name, *values in (part.split() for part in policy.split(";") if part.strip())
    }


@pytest.mark.parametrize("path", ["/app/", "/app/videos/123", "/app/admin/people", "/app/me"])
def test_every_app_path_answers_with_the_shell_and_no_inline_code(
    client: FlaskClient, path: str
) -> None:
    shell = _shell(client, path)
    assert shell.inline_code == []
    scripts = [attrs for tag, attrs in shell.tags if tag == "script"]
    assert scripts and all((attrs.get("src") or "").startswith("/app/assets/") for attrs in scripts)
    links = {attrs.get("rel"): attrs.get("href") for tag, attrs in shell.tags if tag == "link"}
    assert links["manifest"] == "/app/manifest.webmanifest"
    assert (links["stylesheet"] or "").startswith("/app/assets/app.css?v=")
    # Nothing is fetched from another origin: the product runs offline.
    for _, attrs in shell.tags:
        for name in ("src", "href"):
            assert not (attrs.get(name) or "/").startswith(("http:", "https:", "//"))


def test_the_policy_allows_this_origin_only_for_code(client: FlaskClient) -> None:
    response = client.get("/app/")
    policy = _directives(response.headers["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    assert "'unsafe-eval'" not in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_signed_media_on_s3_is_allowed_to_play_and_upload(settings: Settings) -> None:
    s3 = dataclasses.replace(
        settings, storage_url="s3://media", s3_endpoint_url="https://s3.example.net:9000"
    )
    policy = _directives(content_security_policy(s3))
    for directive in ("media-src", "connect-src", "img-src"):
        assert "https://s3.example.net:9000" in policy[directive]
    assert policy["script-src"] == ["'self'"]
    aws = dataclasses.replace(settings, storage_url="s3://media", s3_endpoint_url=None)
    assert "https://*.amazonaws.com" in _directives(content_security_policy(aws))["media-src"]
    local = _directives(content_security_policy(settings))
    assert local["media-src"] == ["'self'", settings.public_base_url, "blob:"]


def test_entry_assets_are_versioned_by_content_and_cached_for_a_year(
    client: FlaskClient,
) -> None:
    shell = _shell(client)
    urls = [attrs["src"] for tag, attrs in shell.tags if tag == "script"]
    urls += [
        attrs["href"]
        for tag, attrs in shell.tags
        if tag == "link" and "css" in (attrs["href"] or "")
    ]
    for url in urls:
        assert url
        name, _, version = url.partition("?v=")
        body = (ROOT / name.removeprefix("/app/")).read_bytes()
        assert version == hashlib.sha256(body).hexdigest()[:16]
        response = client.get(url)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert response.get_data() == body
    for stale in ("/app/assets/app.js", "/app/assets/app.js?v=0123456789abcdef"):
        # Unversioned, or another build's digest: served, never pinned.
        assert "immutable" not in client.get(stale).headers["Cache-Control"]


def test_text_assets_are_gzipped_for_clients_that_take_it(client: FlaskClient) -> None:
    plain = client.get("/app/assets/app.js")
    zipped = client.get("/app/assets/app.js", headers={"Accept-Encoding": "gzip, br"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    assert gzip.decompress(zipped.get_data()) == plain.get_data()
    assert len(zipped.get_data()) < len(plain.get_data()) / 2
    again = client.get(
        "/app/assets/app.js",
        headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]},
    )
    assert again.status_code == 304


@pytest.mark.parametrize(
    "path",
    [
        "/app/assets/missing.js",
        "/app/assets/../../webapp.py",
        "/app/assets/%2e%2e/%2e%2e/webapp.py",
        "/app/assets/../build-info.json",
        "/app/missing.png",
    ],
)
def test_files_outside_the_build_or_missing_are_not_found(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_the_service_worker_and_manifest_are_served_for_the_app_scope(client: FlaskClient) -> None:
    worker = client.get("/app/sw.js")
    assert worker.status_code == 200
    assert worker.mimetype == "text/javascript"
    assert worker.headers["Service-Worker-Allowed"] == "/app/"
    assert worker.headers["Cache-Control"] == "no-cache"
    manifest = client.get("/app/manifest.webmanifest")
    assert manifest.mimetype == "application/manifest+json"
    body = json.loads(manifest.get_data())
    assert body["start_url"] == "/app/" and body["scope"] == "/app/"
    assert client.get("/app").status_code == 308


def test_a_persons_video_link_opens_the_player_in_the_app(client: FlaskClient) -> None:
    video_id = uuid.uuid4()
    comment_id = uuid.uuid4()
    response = client.get(f"/videos/{video_id}?comment={comment_id}&t=72000")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/app/videos/{video_id}?comment={comment_id}&t=72000"
    assert client.get("/videos/not-a-video").status_code == 404


def _app_link_paths() -> set[str]:
    """Every path the product puts in a person's link (fieldcast.links.app_link's callers)."""
    found: set[str] = set()
    for source in (REPO / "fieldcast").rglob("*.py"):
        for path in re.findall(r'app_link\(\s*\w+,\s*f?"(/[^"]*)"', source.read_text()):
            found.add(re.sub(r"\{[^}]*\}", str(uuid.uuid4()), path))
    return found


def _app_routes() -> list[str]:
    main = (REPO / "webapp" / "src" / "main.jsx").read_text()
    return re.findall(r'^\s*\["(/[^"]*)", \w+', main, flags=re.MULTILINE)


def _routed(pattern: str, path: str) -> bool:
    want, got = pattern.strip("/").split("/"), path.strip("/").split("/")
    return len(want) == len(got) and all(
        w.startswith(":") or w == g for w, g in zip(want, got, strict=True)
    )


def test_every_link_the_product_hands_out_opens_its_screen_in_the_app(client: FlaskClient) -> None:
    """A push's, an email's or a chat card's link opened in a browser on this server goes to
    the web app's screen of the same path, with its query, and the app has that screen."""
    paths = _app_link_paths()
    assert {"/invitations/accept", "/password-reset", "/learning/team", "/search"} <= paths
    assert any(p.startswith("/videos/") for p in paths)
    routes = _app_routes()
    for path in paths:
        response = client.get(f"{path}?token=t&saved=1")
        assert response.status_code == 302, path
        assert response.headers["Location"] == f"/app{path}?token=t&saved=1"
        assert any(_routed(route, path) for route in routes), f"no screen in the app for {path}"
    # A query that is not UTF-8 is passed on percent-encoded, never a server error.
    response = client.get("/search", environ_overrides={"QUERY_STRING": "q=caf\xe9&saved=1"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/app/search?q=caf%E9&saved=1"


def test_the_shell_is_served_without_a_session(client: FlaskClient, context: AppContext) -> None:
    # The app itself signs in; the shell holds nothing of anyone's.
    app = create_app(context.settings, context=context)
    response = app.test_client().get("/app/inbox")
    assert response.status_code == 200
    assert b"fieldcast_session" not in response.get_data()
    assert "Set-Cookie" not in response.headers


def _sources_digest() -> str:
    """webapp/build.mjs's sourcesDigest, in Python: the relative path and content of each input."""
    info = json.loads((ROOT / "build-info.json").read_text())
    digest = hashlib.sha256()
    for name in info["inputs"]:
        top = WEBAPP / name
        files = (
            sorted(top.rglob("*"), key=lambda p: p.relative_to(WEBAPP).parts)
            if top.is_dir()
            else [top]
        )
        for file in files:
            if file.is_file():
                digest.update(file.relative_to(WEBAPP).as_posix().encode() + b"\0")
                digest.update(file.read_bytes() + b"\0")
    return digest.hexdigest()


def test_the_committed_build_is_made_from_the_committed_sources() -> None:
    info = json.loads((ROOT / "build-info.json").read_text())
    assert info["sources_sha256"] == _sources_digest(), (
        "webapp/ changed since api/static/app was built: cd webapp && npm ci && npm run build"
    )
    assert (ASSETS / "app.js").is_file() and (ASSETS / "app.css").is_file()


def test_browser_libraries_are_pinned_to_exact_versions() -> None:
    package = json.loads((WEBAPP / "package.json").read_text())
    lock = json.loads((WEBAPP / "package-lock.json").read_text())
    for section in ("dependencies", "devDependencies"):
        for name, version in package[section].items():
            assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} {version} is not exact"
            assert lock["packages"][f"node_modules/{name}"]["version"] == version
