"""Authentication for every operation not marked `@public`: a bearer token (apps, integrations)
or the browser session cookie (the web app), which also needs its CSRF token on every change."""

from __future__ import annotations

import hmac
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Response, current_app, g, request

from api.extensions import PUBLIC_ATTR
from api.runtime import context, db_session
from fieldcast.accounts.tokens import (
    BrowserSession,
    TokenConfig,
    authenticate,
    authenticate_browser_session,
)
from fieldcast.db import utcnow
from fieldcast.errors import AuthenticationFailed, ErrorCode, PermissionDenied
from fieldcast.policy import Principal
from fieldcast.settings import Settings

CSRF_COOKIE = "fieldcast_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def token_config() -> TokenConfig:
    settings = context().settings
    assert settings.secret_key is not None
    return TokenConfig(
        secret_key=settings.secret_key,
        access_ttl=timedelta(seconds=settings.access_token_ttl_s),
        refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_s),
        browser_idle_ttl=timedelta(seconds=settings.browser_session_idle_s),
        browser_max_ttl=timedelta(seconds=settings.browser_session_max_s),
    )


def _https(settings: Settings) -> bool:
    return settings.public_base_url.startswith("https://")


def session_cookie_name(settings: Settings) -> str:
    """`__Host-` binds the cookie to this exact host, over HTTPS, for the whole site; browsers
    refuse that prefix on plain HTTP, so a development server on http:// goes without it."""
    return "__Host-fieldcast_session" if _https(settings) else "fieldcast_session"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def allowed_origins(settings: Settings) -> set[str]:
    """Where the web app may run: the API's own origin and the CORS_ORIGINS."""
    return {_origin(settings.public_base_url)} | {
        origin.rstrip("/").lower() for origin in settings.cors_origins
    }


def check_origin() -> None:
    """Refuse a change a browser sent from a page of another origin. `Origin` is what browsers
    send on every cross-origin request and on same-origin changes; `Referer` stands in where it
    is missing. A request with neither (an older browser, a privacy setting) is left to the CSRF
    token alone."""
    origin = request.headers.get("Origin")
    if origin is None:
        referer = request.headers.get("Referer")
        if not referer:
            return
        origin = _origin(referer)
    if origin.rstrip("/").lower() not in allowed_origins(context().settings):
        raise PermissionDenied(
            "This request comes from a page of an origin the API does not serve.",
            code=ErrorCode.CSRF_FAILED,
        )


def _check_csrf_token(browser: BrowserSession) -> None:
    given = request.headers.get(CSRF_HEADER, "")
    if not given or not hmac.compare_digest(given.encode(), browser.csrf_token.encode()):
        raise PermissionDenied(
            f"Send the session's CSRF token (the `{CSRF_COOKIE}` cookie, or `csrf_token` of "
            f"GET /api/v1/auth/session) in `{CSRF_HEADER}` with every change.",
            code=ErrorCode.CSRF_FAILED,
        )


def _is_public_endpoint() -> bool:
    if request.endpoint is None:
        return True  # unknown route: the router answers 404 by itself
    view = current_app.view_functions.get(request.endpoint)
    view_class = getattr(view, "view_class", None)
    if view_class is None:
        return bool(getattr(view, PUBLIC_ATTR, False))
    method = request.method.lower()
    handler = getattr(view_class, method, None)
    if handler is None and method == "head":
        handler = getattr(view_class, "get", None)
    return handler is None or bool(getattr(handler, PUBLIC_ATTR, False))


def authenticate_request() -> None:
    """Registered as `before_request` on the API blueprints.

    A request with an `Authorization` header is judged by it alone: the session cookie a
    browser may send along is then ignored, and bearer requests never need a CSRF token.
    """
    if request.method == "OPTIONS" or _is_public_endpoint():
        return
    header = request.headers.get("Authorization", "")
    cookie = request.cookies.get(session_cookie_name(context().settings))
    if not header and cookie:
        _authenticate_cookie(cookie)
    else:
        _authenticate_bearer(header)
    from api.idempotency import begin_idempotent_request

    begin_idempotent_request(g.principal)


def _authenticate_bearer(header: str) -> None:
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise AuthenticationFailed(
            "Send `Authorization: Bearer <access token>`, or the session cookie from a browser.",
            code=ErrorCode.AUTHENTICATION_REQUIRED,
            headers={"WWW-Authenticate": 'Bearer realm="fieldcast"'},
        )
    try:
        g.principal = authenticate(db_session(), token_config(), credentials.strip())
    except AuthenticationFailed as exc:
        exc.headers.setdefault(
            "WWW-Authenticate",
            f'Bearer realm="fieldcast", error="invalid_token", error_description="{exc.code}"',
        )
        raise


def _authenticate_cookie(cookie: str) -> None:
    try:
        principal, browser = authenticate_browser_session(db_session(), token_config(), cookie)
    except AuthenticationFailed:
        # The page cannot delete an HttpOnly cookie itself: the answer does.
        g.clear_session_cookies = True
        raise
    if request.method not in SAFE_METHODS:
        check_origin()
        _check_csrf_token(browser)
    g.principal = principal
    g.browser_session = browser


def current_principal() -> Principal:
    principal: Principal | None = g.get("principal")
    if principal is None:
        raise AuthenticationFailed(code=ErrorCode.AUTHENTICATION_REQUIRED)
    return principal


def current_browser_session() -> BrowserSession | None:
    """The browser session the request came with, if it came with the cookie."""
    browser: BrowserSession | None = g.get("browser_session")
    return browser


def send_session_cookies(response: Response) -> Response:
    """`after_request`: set the session and CSRF cookies when a session starts or slides, and
    delete them when it ends or is refused. Error answers set nothing (their work rolled back),
    but do delete."""
    settings = context().settings
    name = session_cookie_name(settings)
    secure = _https(settings)
    if g.get("clear_session_cookies"):
        for cookie in (name, CSRF_COOKIE):
            response.delete_cookie(cookie, path="/", secure=secure, samesite="Strict")
        return response
    browser = current_browser_session()
    if browser is None or not browser.renewed or response.status_code >= 400:
        return response
    max_age = max(0, int((browser.expires_at - utcnow()).total_seconds()))
    response.set_cookie(
        name,
        browser.cookie,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=True,
        samesite="Strict",
    )
    # Readable by the page on purpose: it echoes the value in X-CSRF-Token.
    response.set_cookie(
        CSRF_COOKIE,
        browser.csrf_token,
        max_age=max_age,
        path="/",
        secure=secure,
        httponly=False,
        samesite="Strict",
    )
    return response
