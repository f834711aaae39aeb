"""Password reset by email, for people who forgot theirs (no bearer token needed)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Response, request
from flask.views import MethodView

from api.auth import token_config
from api.extensions import Blueprint, Schema, public
from api.fields import Email, String
from api.runtime import context, db_session
from fieldcast.accounts import recovery
from fieldcast.accounts.services import normalise_email
from fieldcast.models.accounts import User
from fieldcast.ratelimit import RateLimiter, Window

blp = Blueprint(
    "password_reset",
    __name__,
    url_prefix="/api/v1/auth/password-reset",
    description=(
        "Reset a forgotten password. The email carries an app link "
        "`<APP_LINK_BASE>/password-reset?token=...`, valid once for PASSWORD_RESET_TTL_S "
        "(1 hour by default); the app sends the token with the new password."
    ),
)


class ResetRequestSchema(Schema):
    email = Email(required=True, column=User.email)


class ResetSchema(Schema):
    token = String(
        required=True,
        load_only=True,
        min_length=1,
        max_length=128,
        metadata={"description": "The `token` query parameter of the link in the email"},
    )
    password = String(
        required=True,
        load_only=True,
        min_length=10,
        max_length=1024,
        metadata={"description": "The new password: at least 10 characters"},
    )


HOUR = 3600


def _check_rate(email: str) -> None:
    """Count the request per address and per network: past either limit, 429 (whether or not
    the address has an account, so the limit tells nothing either)."""
    ctx = context()
    per_email = Window(ctx.settings.password_resets_per_hour, HOUR)
    # A network may front a whole office behind NAT: ten addresses' worth.
    per_address = Window(ctx.settings.password_resets_per_hour * 10, HOUR)
    limiter = RateLimiter(ctx.redis)
    address = request.remote_addr or "unknown"
    limiter.check("reset-email", email, per_email)
    limiter.check("reset-address", address, per_address)
    limiter.hit("reset-email", email, per_email)
    limiter.hit("reset-address", address, per_address)


@blp.route("")
class PasswordResetRequest(MethodView):
    @public
    @blp.arguments(ResetRequestSchema)
    @blp.response(202)
    @blp.problems(429)
    def post(self, body: dict[str, Any]) -> Response:
        """Ask for a password reset email

        Always 202, whether or not the address has an account (nobody learns who has one).
        When it has an active account, an email with a single-use link goes out in the
        background. Limited per address and per network: past the limit, 429 with
        `Retry-After`.
        """
        email = normalise_email(body["email"])
        _check_rate(email)
        settings = context().settings
        recovery.request_reset(
            db_session(),
            email=email,
            secret_key=token_config().secret_key,
            ttl=timedelta(seconds=settings.password_reset_ttl_s),
        )
        return Response(status=202)


@blp.route("/confirm")
class PasswordResetConfirm(MethodView):
    @public
    @blp.arguments(ResetSchema)
    @blp.response(204)
    @blp.problems(404, 410)
    def post(self, body: dict[str, Any]) -> None:
        """Set a new password with the token of a reset email

        Every login session of the person ends (all devices log in again with the new
        password). 404 `password_reset_not_found` for an unknown token; 410
        `password_reset_used` or `password_reset_expired` for one that no longer works; 422
        for a password that is too short.
        """
        recovery.reset_password(db_session(), token=body["token"], password=body["password"])
