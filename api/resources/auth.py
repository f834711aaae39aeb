"""Tokens for the mobile apps: log in, rotate, log out."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import request
from flask.views import MethodView

from api.auth import current_principal, token_config
from api.extensions import Blueprint, Schema, public
from api.fields import Email, String
from api.runtime import context, db_session
from fieldcast.accounts import tokens
from fieldcast.errors import AuthenticationFailed
from fieldcast.models.accounts import User
from fieldcast.ratelimit import RateLimiter, Window

blp = Blueprint(
    "auth",
    __name__,
    url_prefix="/api/v1/auth",
    description="Log in with email and password; rotate and revoke tokens.",
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
        limiter, per_account, per_address = _limiter()
        email = body["email"].strip().lower()
        address = request.remote_addr or "unknown"
        limiter.check("login-account", email, per_account)
        limiter.check("login-address", address, per_address)
        try:
            pair = tokens.login(
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
        return _pair(pair)


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
    @blp.response(204)
    @blp.problems(422)
    def post(self) -> None:
        """End the current login session

        The access token and every refresh token of this session stop working at once.
        """
        tokens.logout(db_session(), current_principal())
