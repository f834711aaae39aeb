"""Bearer authentication for every operation not marked `@public`."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app, g, request

from api.extensions import PUBLIC_ATTR
from api.runtime import context, db_session
from fieldcast.accounts.tokens import TokenConfig, authenticate
from fieldcast.errors import AuthenticationFailed, ErrorCode
from fieldcast.policy import Principal


def token_config() -> TokenConfig:
    settings = context().settings
    assert settings.secret_key is not None
    return TokenConfig(
        secret_key=settings.secret_key,
        access_ttl=timedelta(seconds=settings.access_token_ttl_s),
        refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_s),
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
    """Registered as `before_request` on the API blueprints."""
    if request.method == "OPTIONS" or _is_public_endpoint():
        return
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise AuthenticationFailed(
            "Send `Authorization: Bearer <access token>`.",
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
    from api.idempotency import begin_idempotent_request

    begin_idempotent_request(g.principal)


def current_principal() -> Principal:
    principal: Principal | None = g.get("principal")
    if principal is None:
        raise AuthenticationFailed(code=ErrorCode.AUTHENTICATION_REQUIRED)
    return principal
