"""Tokens for the mobile apps (log in, rotate, log out) and the browser session of the web app."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import marshmallow as ma
from flask import g, request
from flask.views import MethodView

from api.auth import (
    CSRF_COOKIE,
    CSRF_HEADER,
    check_origin,
    current_browser_session,
    current_principal,
    token_config,
)
from api.extensions import Blueprint, Schema, public
from api.fields import Email, String
from api.runtime import context, db_session
from fieldcast.accounts import tokens
from fieldcast.errors import AuthenticationFailed
from fieldcast.models.accounts import User
from fieldcast.ratelimit import RateLimiter, Window

T = TypeVar("T")

blp = Blueprint(
    "auth",
    __name__,
    url_prefix="/api/v1/auth",
    description=(
        "Log in with email and password; rotate and revoke tokens. Browsers use a cookie "
        "session instead of tokens (`/auth/session`)."
    ),
)


class TokenRequestSchema(Schema):
    email = Email(required=True, column=User.email)
    password = String(required=True, load_only=True, min_length=1, max_length=1024)


class RefreshRequestSchema(Schema):
    refresh_token = String(required=True, load_only=True, min_length=1, max_length=512)


class TokenSchema(Schema):
    access_token = ma.fields.String(
        required=True, metadata={"description": "Send as `Authorization: Bearer <token>`"}
    )
    refresh_token = ma.fields.String(
        required=True,
        metadata={"description": "Single use: exchange at /auth/refresh for a new pair"},
    )
    token_type = ma.fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = ma.fields.Integer(
        required=True, metadata={"description": "Seconds until the access token expires"}
    )


class LogoutRequestSchema(Schema):
    device_id = ma.fields.UUID(
        load_default=None,
        metadata={
            "description": (
                "This phone's device (POST /api/v1/devices answered its id): it is unregistered "
                "with the logout and gets no more pushes. An id that is not yours, or is gone "
                "already, is ignored: the session ends all the same."
            )
        },
    )


class SessionLogoutQuerySchema(Schema):
    device_id = ma.fields.UUID(
        load_default=None,
        metadata={"description": "This browser's push device, unregistered with the logout"},
    )


class BrowserSessionSchema(Schema):
    user_id = ma.fields.UUID(required=True, metadata={"description": "Who is logged in"})
    csrf_token = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": (
                f"Send in `{CSRF_HEADER}` with every POST, PUT, PATCH and DELETE made with the "
                f"session cookie. Also in the `{CSRF_COOKIE}` cookie. Fixed for the session. Null "
                "for a request authenticated by a bearer token, which needs none."
            )
        },
    )
    expires_at = ma.fields.DateTime(
        required=True,
        allow_none=True,
        metadata={
            "description": (
                "When the session ends unless used: each use moves it later, up to an absolute "
                "lifetime from login. Null for a bearer token."
            )
        },
    )


def _pair(pair: tokens.TokenPair) -> dict[str, Any]:
    return {
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
    }


def _limiter() -> tuple[RateLimiter, Window, Window]:
    settings = context().settings
    per_account = Window(settings.login_attempts_per_window, settings.login_window_s)
    # An address may front a whole office behind NAT: allow it ten accounts' worth.
    per_address = Window(settings.login_attempts_per_window * 10, settings.login_window_s)
    return RateLimiter(context().redis), per_account, per_address


def _limited_login(log_in: Callable[..., T], body: dict[str, Any]) -> T:
    """Log in with `log_in`, counting failures per account and per address."""
    limiter, per_account, per_address = _limiter()
    email = body["email"].strip().lower()
    address = request.remote_addr or "unknown"
    limiter.check("login-account", email, per_account)
    limiter.check("login-address", address, per_address)
    try:
        logged_in = log_in(
            db_session(),
            token_config(),
            email=email,
            password=body["password"],
            user_agent=request.headers.get("User-Agent", ""),
        )
    except AuthenticationFailed:
        limiter.hit("login-account", email, per_account)
        limiter.hit("login-address", address, per_address)
        raise
    limiter.reset("login-account", email)
    return logged_in


@blp.route("/token")
class Token(MethodView):
    @public
    @blp.arguments(TokenRequestSchema)
    @blp.response(200, TokenSchema)
    @blp.problems(401, 429)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Log in with email and password

        Failed attempts are limited per account and per address; past the limit the answer is
        429 with `Retry-After`.
        """
        return _pair(_limited_login(tokens.login, body))


@blp.route("/refresh")
class Refresh(MethodView):
    @public
    @blp.arguments(RefreshRequestSchema)
    @blp.response(200, TokenSchema)
    @blp.problems(401)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Exchange a refresh token for a new token pair

        The refresh token is single use. Presenting one that was already exchanged ends the
        whole login session (all tokens issued from it), since a copy of it has leaked.
        """
        return _pair(tokens.refresh(db_session(), token_config(), body["refresh_token"]))


@blp.route("/logout")
class Logout(MethodView):
    @blp.arguments(LogoutRequestSchema, required=False)
    @blp.response(204)
    @blp.problems(422)
    def post(self, body: dict[str, Any]) -> None:
        """End the current login session

        The access token and every refresh token of this session stop working at once. Name
        this phone's `device_id` to unregister its push token in the same step. The body is
        optional.
        """
        tokens.logout(db_session(), current_principal(), device_id=body.get("device_id"))
        if current_browser_session() is not None:
            g.clear_session_cookies = True


def _browser_session_body(user_id: Any) -> dict[str, Any]:
    browser = current_browser_session()
    return {
        "user_id": user_id,
        "csrf_token": browser.csrf_token if browser else None,
        "expires_at": browser.expires_at if browser else None,
    }


@blp.route("/session")
class BrowserSession(MethodView):
    @public
    @blp.arguments(TokenRequestSchema)
    @blp.response(200, BrowserSessionSchema)
    @blp.problems(401, 403, 429)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Log in a browser with email and password

        For the web app: no token reaches the page. The answer sets the session cookie
        (`__Host-fieldcast_session`; `fieldcast_session` when the API is served over plain
        HTTP), HttpOnly, `SameSite=Strict`, `Path=/`, Secure over HTTPS, and the page-readable
        `fieldcast_csrf` cookie. Requests then carry the cookie by themselves (`fetch` with
        `credentials: "include"` from another origin listed in CORS_ORIGINS); every POST, PUT,
        PATCH and DELETE also needs `X-CSRF-Token` (403 `csrf_failed` without it). The session
        slides: every use extends it. Failed attempts are limited like `/auth/token`; a log-in
        from a page of another origin is refused with 403 `csrf_failed`.
        """
        check_origin()
        browser = _limited_login(tokens.start_browser_session, body)
        g.browser_session = browser
        return _browser_session_body(browser.user.id)

    @blp.response(200, BrowserSessionSchema)
    def get(self) -> dict[str, Any]:
        """The current session and its CSRF token

        A page loaded afresh reads its CSRF token here when it cannot read the `fieldcast_csrf`
        cookie (an app served from another origin). Answers 401 once the session has ended.
        """
        return _browser_session_body(current_principal().user_id)

    @blp.arguments(SessionLogoutQuerySchema, location="query")
    @blp.response(204)
    @blp.problems(422)
    def delete(self, query: dict[str, Any]) -> None:
        """Log out a browser

        Ends the session (the cookie stops working at once, everywhere it was copied) and
        deletes the cookies. Needs `X-CSRF-Token` like every change.
        """
        tokens.logout(db_session(), current_principal(), device_id=query.get("device_id"))
        g.clear_session_cookies = True
