"""The app factory: wires settings, collaborators, conventions and blueprints. Starts nothing."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request, send_from_directory
from flask_cors import CORS
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from api import health, scim, unit_of_work, webapp
from api.auth import (
    CSRF_HEADER,
    authenticate_request,
    send_session_cookies,
    session_cookie_name,
)
from api.extensions import Api
from api.fields import install_converters
from api.idempotency import ReplayResponse
from api.log_masking import mask_secrets
from api.problems import from_domain_error, from_http_exception, from_unexpected
from api.resources import (
    api_tokens,
    assignments,
    attachments,
    auth,
    collections,
    comments,
    deals,
    devices,
    exports,
    feed,
    insights,
    invitations,
    moderation,
    notifications,
    oidc,
    organisation,
    password_reset,
    playback,
    points,
    preferences,
    scim_token,
    search,
    sharing,
    teams,
    top,
    transcripts,
    uploads,
    users,
    videos,
    viewing,
    webhooks,
    xapi,
)
from api.runtime import EXTENSION_KEY, close_db_session
from api.versioning import APP_PLATFORM_HEADER, APP_VERSION_HEADER, check_app_version
from fieldcast import events
from fieldcast.context import AppContext, build_context
from fieldcast.errors import DomainError
from fieldcast.observability import configure_logging, request_id_var
from fieldcast.settings import Settings

log = logging.getLogger("fieldcast.access")

API_BLUEPRINTS = (
    auth.blp,
    oidc.blp,
    oidc.settings_blp,
    organisation.blp,
    password_reset.blp,
    users.blp,
    invitations.blp,
    teams.blp,
    api_tokens.blp,
    scim_token.blp,
    videos.blp,
    deals.attributes_blp,
    deals.blp,
    attachments.blp,
    transcripts.blp,
    uploads.blp,
    uploads.direct_blp,
    uploads.policy_blp,
    devices.blp,
    notifications.blp,
    notifications.receipts_blp,
    sharing.lists_blp,
    sharing.shares_blp,
    feed.blp,
    comments.blp,
    comments.reactions_blp,
    comments.questions_blp,
    preferences.blp,
    webhooks.blp,
    moderation.reports_blp,
    moderation.moderation_blp,
    moderation.audit_blp,
    search.blp,
    search.saved_blp,
    search.recommendations_blp,
    viewing.blp,
    collections.blp,
    top.blp,
    assignments.blp,
    insights.blp,
    insights.metrics_blp,
    exports.blp,
    xapi.blp,
    points.blp,
)
EXPOSED_HEADERS = [
    "ETag",
    "Location",
    "Retry-After",
    "X-Request-ID",
    "Idempotent-Replayed",
    "WWW-Authenticate",
    "Deprecation",
    "Sunset",
    "Link",
    *uploads.TUS_RESPONSE_HEADERS,
    exports.NEXT_CURSOR_HEADER,
]
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,128}$")

API_DESCRIPTION = """
Fieldcast is the backend of a mobile-first peer video microlearning product.

**Authentication.** `POST /api/v1/auth/token` with email and password returns a short-lived
access token and a single-use refresh token. Send `Authorization: Bearer <access token>`.
Browsers use `POST /api/v1/auth/session` instead: an HttpOnly session cookie that no script can
read, and a CSRF token to send in `X-CSRF-Token` with every POST, PUT, PATCH and DELETE.

**App versions.** Apps send `X-App-Version: 2.4.1` and `X-App-Platform: ios|android` with every
request. Below the platform's minimum every operation answers 426
`app_version_unsupported` with `minimum_version` and `upgrade_url`: show it and send the user to
the store. Requests without these headers are not checked.

**Versioning.** The path names the major version. Within v1 changes are additive only (new
operations, new optional inputs, new response fields, new problem codes): ignore what you do not
know. An operation on its way out is marked `deprecated` here and answers with `Deprecation`
and `Sunset` headers at least six months before it is removed.

**Errors** are `application/problem+json` (RFC 9457). Switch on `code`; `errors` holds field
errors for validation failures. Every string input documents its `maxLength`; NUL and unpaired
surrogates are refused with 422. While PostgreSQL or Redis is unreachable, any operation may
answer 503 `service_unavailable` with `Retry-After`: wait and retry the same request.

**Partial updates.** `PATCH` changes only the fields it names; a body naming none is 422
`empty_patch`.

**Lists** are cursor-paginated: pass `next_cursor` back as `cursor` until it is null.

**Caching.** Reads carry an `ETag`; send it back in `If-None-Match` to get `304 Not Modified`.

**Retries.** Send an `Idempotency-Key` header on POSTs; a retry with the same key and body
replays the first response instead of acting twice.
"""


def create_app(settings: Settings | None = None, *, context: AppContext | None = None) -> Flask:
    settings = settings or (context.settings if context else Settings.from_env())
    settings.require("DATABASE_URL", "REDIS_URL", "SECRET_KEY")
    configure_logging(settings.log_level, json_lines=settings.log_json)
    context = context or build_context(settings)
    # Every package that handles a domain event subscribes before the first request publishes.
    events.load_handlers()

    app = Flask("fieldcast")
    install_converters(app.url_map)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.limits.max_request_bytes,
        JSON_SORT_KEYS=False,
        API_TITLE="Fieldcast API",
        API_VERSION="1.0.0",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="/docs/static/",
        API_SPEC_OPTIONS={
            "info": {"description": API_DESCRIPTION.strip()},
            "security": [{"bearerAuth": []}],
            "servers": [{"url": settings.public_base_url}],
        },
    )
    app.extensions[EXTENSION_KEY] = context
    if settings.trusted_proxy_hops:
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops
        )
    if settings.cors_origins:
        # Credentials (the browser session cookie) are allowed for these origins only.
        CORS(
            app,
            origins=list(settings.cors_origins),
            supports_credentials=True,
            expose_headers=EXPOSED_HEADERS,
            allow_headers=[
                "Authorization",
                CSRF_HEADER,
                APP_VERSION_HEADER,
                APP_PLATFORM_HEADER,
                "Content-Type",
                "Idempotency-Key",
                "If-None-Match",
                "If-Match",
                "X-Request-ID",
                "Range",
                *uploads.TUS_REQUEST_HEADERS,
            ],
            methods=["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"],
            max_age=600,
        )

    api = Api(app)
    api.spec.components.security_scheme(
        "bearerAuth",
        {"type": "http", "scheme": "bearer", "description": "An access token or an API token"},
    )
    api.spec.components.security_scheme(
        "cookieAuth",
        {
            "type": "apiKey",
            "in": "cookie",
            "name": session_cookie_name(settings),
            "description": (
                "The browser session (POST /api/v1/auth/session): accepted wherever a bearer "
                f"token is, without an Authorization header; changes also need `{CSRF_HEADER}`"
            ),
        },
    )
    # Request ids and timing first: every later hook and error carries them.
    _register_request_hooks(app)

    @app.before_request
    def refuse_unsupported_app_versions() -> Response | None:
        # Before authentication: an outdated app hears "update" rather than a login error.
        return check_app_version(settings)

    for blueprint in API_BLUEPRINTS:
        api.register_blueprint(blueprint)
    api_blueprint_names = {blueprint.name for blueprint in API_BLUEPRINTS}

    @app.before_request
    def authenticate_api_request() -> None:
        # Blueprints are module-level and shared by every app; the hook lives on the app.
        if request.blueprint in api_blueprint_names:
            authenticate_request()

    app.register_blueprint(health.blp)
    # Signed URLs are their own credential: players cannot send a bearer token.
    app.register_blueprint(playback.blp)
    # SCIM speaks its own protocol and errors, outside /api/v1 and its OpenAPI (docs/scim.md).
    app.register_blueprint(scim.blp)
    uploads.install(app)
    # The web app at /app: a client of this API like any other (api/webapp.py).
    webapp.install(app, settings)
    _register_docs_assets(app)
    _register_error_handlers(app)
    app.after_request(send_session_cookies)
    # Last registered, so the first `after_request` hook to run: see api/unit_of_work.py.
    unit_of_work.install(app)
    return app


def _register_docs_assets(app: Flask) -> None:
    """Serve Swagger UI's files from the installed package: /docs works offline."""
    import swagger_ui_bundle

    root = swagger_ui_bundle.swagger_ui_path

    @app.get("/docs/static/<path:filename>")
    def swagger_ui_static(filename: str) -> Response:
        return send_from_directory(root, filename, max_age=86400)


def _register_request_hooks(app: Flask) -> None:
    @app.before_request
    def start_request() -> None:
        given = request.headers.get("X-Request-ID", "")
        request_id = given if _REQUEST_ID_RE.match(given) else uuid.uuid4().hex
        g.request_id = request_id
        g.request_token = request_id_var.set(request_id)
        g.started = time.perf_counter()

    @app.after_request
    def finish_request(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        if request.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "private, no-cache")
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule else "unmatched"
        health.observe(request.method, route, response.status_code, elapsed)
        if route not in {"/healthz", "/metrics"} and log.isEnabledFor(logging.INFO):
            log.info(
                "%s %s %s",
                request.method,
                route,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": mask_secrets(request.path),
                    "status": response.status_code,
                    "ms": round(elapsed * 1000, 1),
                    "user_id": str(g.principal.user_id) if g.get("principal") else None,
                },
            )
        return response

    @app.teardown_request
    def end_request(exc: BaseException | None) -> None:
        close_db_session(exc)
        token = g.pop("request_token", None)
        if token is not None:
            request_id_var.reset(token)


def _register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ReplayResponse)
    def replay(error: ReplayResponse) -> Response:
        g.idempotent_replay = True  # nothing to commit: the unit of work rolls back
        return error.response

    @app.errorhandler(DomainError)
    def domain_error(error: DomainError) -> Response:
        return from_domain_error(error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        return from_http_exception(error)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        if isinstance(error, HTTPException):
            return from_http_exception(error)
        return from_unexpected(error)
