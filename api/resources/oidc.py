"""Sign-in with the organisation's identity provider (OpenID Connect), and its setting (admins).

The flow is in `fieldcast.accounts.oidc`; docs/mobile.md shows it from an app's side.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response, g, request
from flask.views import MethodView

from api.auth import check_origin, current_principal, token_config
from api.extensions import Blueprint, Schema, public
from api.fields import String
from api.resources.auth import BrowserSessionSchema, TokenSchema, _browser_session_body, _pair
from api.runtime import context, db_session
from fieldcast.accounts import oidc, tokens
from fieldcast.errors import DomainError, ErrorCode
from fieldcast.models.accounts import Organisation, Role
from fieldcast.models.identity import IdentityProvider
from fieldcast.ratelimit import RateLimiter, Window

blp = Blueprint(
    "oidc",
    __name__,
    url_prefix="/api/v1/auth/oidc",
    description=(
        "Sign in with the organisation's identity provider (OpenID Connect, authorization code "
        "with PKCE), from the mobile apps and the web app: `authorize` in the system browser, "
        "back to the app with a sign-in code, which `token` (or `session`) redeems with the "
        "app's code verifier."
    ),
)
settings_blp = Blueprint(
    "identity_provider",
    __name__,
    url_prefix="/api/v1/identity-provider",
    description=(
        "The organisation's OpenID provider (Okta, Microsoft Entra ID, Google, Keycloak...), "
        "for sign-in (admins). Its client secret is never returned."
    ),
)


def _config() -> oidc.OidcConfig:
    settings = context().settings
    return oidc.OidcConfig(
        callback_url=f"{settings.public_base_url}{blp.url_prefix}/callback",
        redirect_uris=settings.oidc_redirect_uris,
        allow_http_loopback=settings.oidc_allow_http_loopback,
    )


class SignInExpired(DomainError):
    status = 400
    code = ErrorCode.BAD_REQUEST
    title = "This sign-in expired or was used already"


class AuthorizeArgsSchema(Schema):
    org = String(
        required=True,
        column=Organisation.slug,
        metadata={"description": "The organisation's slug (what the person typed or picked)"},
    )
    redirect_uri = String(
        required=True,
        max_length=2048,
        metadata={"description": "Where to return to the app: one of OIDC_REDIRECT_URIS, exactly"},
    )
    code_challenge = String(
        required=True,
        max_length=128,
        metadata={"description": "The app's PKCE challenge: BASE64URL(SHA-256(code_verifier))"},
    )
    code_challenge_method = String(
        load_default="S256", max_length=8, validate=ma.validate.OneOf(["S256"])
    )
    state = String(
        load_default=None,
        max_length=512,
        metadata={"description": "The app's own state, returned to it as is"},
    )


class CallbackArgsSchema(Schema):
    state = String(required=True, max_length=128)
    code = String(load_default=None, max_length=2048)
    error = String(load_default=None, max_length=256)
    error_description = String(load_default=None, max_length=2048)


class RedeemSchema(Schema):
    code = String(
        required=True, max_length=128, metadata={"description": "The sign-in code the app got back"}
    )
    code_verifier = String(
        required=True,
        min_length=43,
        max_length=128,
        metadata={"description": "The app's PKCE verifier (RFC 7636) of its `code_challenge`"},
    )


def _redirect(url: str) -> Response:
    return Response(status=302, headers={"Location": url, "Cache-Control": "no-store"})


@blp.route("/authorize")
class OidcAuthorize(MethodView):
    @public
    @blp.arguments(AuthorizeArgsSchema, location="query")
    @blp.response(302, description="To the identity provider's sign-in page")
    @blp.problems(404, 422, 429, 502)
    def get(self, args: dict[str, Any]) -> Response:
        """Start a sign-in with the organisation's identity provider

        Open this URL in the system browser (ASWebAuthenticationSession, Custom Tabs; the web
        app navigates to it). It sends the browser to the provider; once the person signed in
        there, the browser comes back to `redirect_uri` with `code` (a sign-in code, good once
        for 60 seconds) and `state`, or with `error` and `error_description` (OAuth 2.0 error
        codes: `access_denied` for someone the organisation does not let in). 404
        `no_identity_provider` when the organisation has none.
        """
        # Each start keeps a little state for ten minutes: an address starts a few a minute.
        RateLimiter(context().redis).take(
            "oidc-authorize", request.remote_addr or "unknown", Window(30, 60)
        )
        url = oidc.begin(
            db_session(),
            context().redis,
            _config(),
            org_slug=args["org"],
            redirect_uri=args["redirect_uri"],
            code_challenge=args["code_challenge"],
            code_challenge_method=args["code_challenge_method"],
            app_state=args["state"],
        )
        return _redirect(url)


@blp.route("/callback")
class OidcCallback(MethodView):
    @public
    @blp.arguments(CallbackArgsSchema, location="query")
    @blp.response(302, description="Back to the app, with its sign-in code or an error")
    @blp.problems(400, 422)
    def get(self, args: dict[str, Any]) -> Response:
        """Where the identity provider returns the browser (not for apps to call)"""
        login = oidc.pending_login(context().redis, args["state"])
        if login is None:
            raise SignInExpired("This sign-in expired or was used already: start again.")
        back = oidc.complete(
            db_session(),
            context().redis,
            _config(),
            login,
            code=args["code"],
            error=args["error"],
            error_description=args["error_description"],
        )
        return _redirect(back.url)


@blp.route("/token")
class OidcToken(MethodView):
    @public
    @blp.arguments(RedeemSchema)
    @blp.response(200, TokenSchema)
    @blp.problems(401)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Redeem a sign-in code for a token pair (the mobile apps)

        401 `invalid_sign_in_code` when the code is unknown, used, older than a minute, or the
        verifier is not the one of the challenge the app sent to `authorize`: sign in again.
        """
        user = oidc.redeem(db_session(), context().redis, body["code"], body["code_verifier"])
        pair = tokens.issue_pair(
            db_session(), token_config(), user, request.headers.get("User-Agent", "")
        )
        return _pair(pair)


@blp.route("/session")
class OidcSession(MethodView):
    @public
    @blp.arguments(RedeemSchema)
    @blp.response(200, BrowserSessionSchema)
    @blp.problems(401, 403)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Redeem a sign-in code for a browser session (the web app)

        As `/auth/session` answers a password: the session cookie and the CSRF token, no token
        readable by the page.
        """
        check_origin()
        user = oidc.redeem(db_session(), context().redis, body["code"], body["code_verifier"])
        browser = tokens.browser_session_for(
            db_session(), token_config(), user, request.headers.get("User-Agent", "")
        )
        g.browser_session = browser
        return _browser_session_body(user.id)


class IdentityProviderSchema(Schema):
    issuer = String(
        required=True,
        column=IdentityProvider.issuer,
        validate=ma.validate.URL(schemes={"https", "http"}, require_tld=False),
        metadata={
            "description": "The provider's issuer URL; its `/.well-known/openid-configuration` "
            "must answer (https)"
        },
    )
    client_id = String(required=True, min_length=1, column=IdentityProvider.client_id)
    client_secret = String(
        load_only=True,
        allow_none=True,
        column=IdentityProvider.client_secret,
        metadata={
            "description": "Write only. Left out, the secret stays as it is; null makes a public "
            "client (PKCE alone)"
        },
    )
    has_client_secret = ma.fields.Boolean(dump_only=True)
    scopes = String(load_default="openid email profile", column=IdentityProvider.scopes)
    create_users = ma.fields.Boolean(
        load_default=True,
        metadata={
            "description": "Whether a person the provider vouches for, without an account "
            "here, gets one at their first sign-in (with `default_role`)"
        },
    )
    default_role = ma.fields.Enum(
        Role,
        by_value=True,
        load_default=Role.REP,
        metadata={"description": "`rep` or `manager`: never more for whoever the provider admits"},
    )
    trust_email = ma.fields.Boolean(
        load_default=False,
        metadata={
            "description": "Take an email sent without `email_verified` as the person's (Entra ID "
            "sends none). Off: only an email marked verified finds or makes an account"
        },
    )
    allowed_domains = ma.fields.List(
        String(max_length=253, validate=ma.validate.Regexp(r"^@?[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")),
        load_default=list,
        validate=ma.validate.Length(max=100),
        metadata={
            "description": "Email domains whose people may get an account at their first "
            "sign-in (a provider that serves many organisations vouches for every domain's "
            "people); empty: any"
        },
    )
    enabled = ma.fields.Boolean(load_default=True)
    callback_url = ma.fields.String(
        dump_only=True,
        metadata={"description": "The redirect URI to register with the provider for this client"},
    )
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


def _provider(provider: IdentityProvider) -> dict[str, Any]:
    return {
        "issuer": provider.issuer,
        "client_id": provider.client_id,
        "has_client_secret": provider.client_secret is not None,
        "scopes": provider.scopes,
        "create_users": provider.create_users,
        "default_role": provider.default_role,
        "trust_email": provider.trust_email,
        "allowed_domains": provider.allowed_domains,
        "enabled": provider.enabled,
        "callback_url": _config().callback_url,
        "created_at": provider.created_at,
        "updated_at": provider.updated_at,
    }


@settings_blp.route("")
class IdentityProviderSetting(MethodView):
    @settings_blp.response(200, IdentityProviderSchema)
    @settings_blp.problems(403, 404)
    def get(self) -> dict[str, Any]:
        """The organisation's identity provider (admins)"""
        provider = oidc.provider_of(db_session(), current_principal())
        if provider is None:
            raise oidc.NoProvider("The organisation has no identity provider.")
        return _provider(provider)

    @settings_blp.arguments(IdentityProviderSchema)
    @settings_blp.response(200, IdentityProviderSchema)
    @settings_blp.problems(403, 422)
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Set the organisation's identity provider (admins)

        Its discovery document is read now: an issuer that does not answer as an OpenID
        provider is refused (422, `errors.issuer` says why). Register `callback_url` as the
        client's redirect URI at the provider.
        """
        provider = oidc.configure(
            db_session(),
            current_principal(),
            _config(),
            issuer=body["issuer"],
            client_id=body["client_id"],
            client_secret=body.get("client_secret"),
            keep_secret="client_secret" not in body,
            scopes=body["scopes"],
            create_users=body["create_users"],
            default_role=body["default_role"],
            enabled=body["enabled"],
            trust_email=body["trust_email"],
            allowed_domains=body["allowed_domains"],
        )
        return _provider(provider)

    @settings_blp.response(204)
    @settings_blp.problems(403, 404)
    def delete(self) -> None:
        """Remove the organisation's identity provider (admins)

        Sign-in with it stops; people who have a password still sign in with it.
        """
        oidc.remove(db_session(), current_principal())
