"""Sign-in with the organisation's identity provider: OpenID Connect's authorization code flow
with PKCE, for the mobile apps and the web app alike.

The provider's tokens and the client secret never leave the server; the app holds a PKCE pair
of its own, so a sign-in code caught on the way back to the app (another app claiming the same
URL scheme) is worth nothing without it:

1. The app makes a code verifier and opens, in the system browser (ASWebAuthenticationSession,
   Custom Tabs; a plain redirect for the web app), `GET /api/v1/auth/oidc/authorize` with the
   organisation, its redirect URI (one of OIDC_REDIRECT_URIS), its S256 code challenge and a
   state. The server keeps that for LOGIN_TTL under a state of its own (`begin`) and sends the
   browser to the provider, with a PKCE pair and a nonce of its own.
2. The provider sends the browser back to `/api/v1/auth/oidc/callback`. The server redeems the
   provider's code (with its verifier and the client secret), checks the ID token (signature
   by the provider's published keys, issuer, audience, expiry, nonce), finds the person
   (`_person`) and sends the browser to the app's redirect URI with a sign-in code good once,
   for CODE_TTL, and the app's state (`complete`).
3. The app redeems the sign-in code with its verifier (`redeem`): a token pair, or the web
   app's cookie session.

Authlib makes the authorization URL and redeems the provider's code; joserfc (Authlib's JOSE
library) checks the ID token's signature and claims.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlparse

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from redis import Redis
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fieldcast import audit, events
from fieldcast.accounts.services import (
    clean_name,
    conflict_from,
    free_handle,
    normalise_email,
)
from fieldcast.audit import AuditAction
from fieldcast.db import new_token, utcnow
from fieldcast.errors import (
    AuthenticationFailed,
    DomainError,
    ErrorCode,
    InvalidInput,
    NotFound,
)
from fieldcast.models.accounts import Organisation, Role, User
from fieldcast.models.identity import IdentityProvider, UserIdentity
from fieldcast.policy import Principal, authorize

LOGIN_TTL = timedelta(minutes=10)
# The roles a person made at their first sign-in may get.
JOIN_ROLES = (Role.REP, Role.MANAGER)
CODE_TTL = timedelta(seconds=60)
# How long a provider's discovery document and keys are reused; keys are fetched again at
# once when a token names one not among them (the provider rotated its keys).
METADATA_TTL_S = 3600
HTTP_TIMEOUT_S = 10
# What a provider signs ID tokens with (never "none", never an HMAC keyed by the secret).
ID_TOKEN_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


class ProviderUnreachable(DomainError):
    status = 502
    code = ErrorCode.IDENTITY_PROVIDER_UNREACHABLE
    title = "The identity provider did not answer as expected"


class NoProvider(NotFound):
    code = ErrorCode.NO_IDENTITY_PROVIDER
    title = "No identity provider to sign in with"


class SignInFailed(Exception):
    """The provider's answer ends the sign-in: the app is told `error` (an OAuth 2.0 error
    code: access_denied, server_error, ...) on its redirect URI."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error, self.description = error, description


@dataclass(frozen=True)
class OidcConfig:
    """What the flow needs of the settings."""

    callback_url: str  # PUBLIC_BASE_URL + /api/v1/auth/oidc/callback
    redirect_uris: tuple[str, ...]  # where apps may be sent back to, exactly
    allow_http_loopback: bool = False  # a provider on http://127.0.0.1 (local testing)


@dataclass(frozen=True)
class Metadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    token_auth_methods: tuple[str, ...]


# -- the provider ---------------------------------------------------------------------------------

_cache_lock = threading.Lock()
_metadata_cache: dict[str, tuple[float, Metadata]] = {}
_keys_cache: dict[str, tuple[float, KeySet]] = {}


def _check_url(url: str, what: str, config: OidcConfig) -> str:
    """An https URL of a public host (an admin's setting is fetched by the server: never one
    of its private network's), or with OIDC_ALLOW_HTTP_LOOPBACK, one on loopback."""
    parsed = urlparse(url)
    host = parsed.hostname
    if host is None or parsed.scheme not in {"http", "https"}:
        raise ProviderUnreachable(f"The provider's {what} must be an https:// URL, got {url!r}.")
    addresses = _addresses(host, parsed.port or (443 if parsed.scheme == "https" else 80))
    loopback = bool(addresses) and all(address.is_loopback for address in addresses)
    if loopback and config.allow_http_loopback:
        return url
    if parsed.scheme != "https":
        raise ProviderUnreachable(f"The provider's {what} must be an https:// URL, got {url!r}.")
    if not addresses or any(not address.is_global for address in addresses):
        raise ProviderUnreachable(f"The provider's {what} is not on a public address: {url!r}.")
    return url


def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        found = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]


def _get_json(url: str, what: str) -> dict[str, Any]:
    try:
        response = requests.get(
            url,
            timeout=HTTP_TIMEOUT_S,
            headers={"Accept": "application/json"},
            allow_redirects=False,  # (the URLs are the provider's own, as published)
        )
        response.raise_for_status()
        found = response.json()
    except (requests.RequestException, ValueError) as exc:
        raise ProviderUnreachable(f"Reading the provider's {what} at {url} failed: {exc}") from None
    if not isinstance(found, dict):
        raise ProviderUnreachable(f"The provider's {what} at {url} is not a JSON object.")
    return found


def discover(issuer: str, config: OidcConfig, *, fresh: bool = False) -> Metadata:
    """The provider's endpoints, from `<issuer>/.well-known/openid-configuration`, whose
    `issuer` must be the one configured (OpenID Connect Discovery 1.0, section 4.3)."""
    now = time.monotonic()
    with _cache_lock:
        cached = _metadata_cache.get(issuer)
    if cached and not fresh and now - cached[0] < METADATA_TTL_S:
        return cached[1]
    _check_url(issuer, "issuer", config)
    document = _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration", "discovery")
    if document.get("issuer") != issuer:
        raise ProviderUnreachable(
            f"The discovery document names the issuer {document.get('issuer')!r}, not {issuer!r}."
        )
    try:
        metadata = Metadata(
            issuer=issuer,
            authorization_endpoint=_check_url(
                document["authorization_endpoint"], "authorization endpoint", config
            ),
            token_endpoint=_check_url(document["token_endpoint"], "token endpoint", config),
            jwks_uri=_check_url(document["jwks_uri"], "jwks_uri", config),
            token_auth_methods=tuple(
                document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
            ),
        )
    except (KeyError, TypeError):
        raise ProviderUnreachable(
            "The discovery document lacks an authorization, token or jwks endpoint."
        ) from None
    with _cache_lock:
        _metadata_cache[issuer] = (now, metadata)
    return metadata


def _keys(metadata: Metadata, *, fresh: bool = False) -> KeySet:
    now = time.monotonic()
    with _cache_lock:
        cached = _keys_cache.get(metadata.jwks_uri)
    if cached and not fresh and now - cached[0] < METADATA_TTL_S:
        return cached[1]
    try:
        keys = KeySet.import_key_set(_get_json(metadata.jwks_uri, "keys"))  # type: ignore[arg-type]
    except (JoseError, ValueError, TypeError, KeyError) as exc:
        raise ProviderUnreachable(f"The provider's keys cannot be read: {exc}") from None
    with _cache_lock:
        _keys_cache[metadata.jwks_uri] = (now, keys)
    return keys


def _client(provider: IdentityProvider, metadata: Metadata, config: OidcConfig) -> OAuth2Session:
    if provider.client_secret is None:
        method = "none"  # a public client: PKCE alone
    elif "client_secret_basic" in metadata.token_auth_methods:
        method = "client_secret_basic"
    else:
        method = "client_secret_post"
    return OAuth2Session(
        provider.client_id,
        provider.client_secret,
        scope=provider.scopes,
        redirect_uri=config.callback_url,
        code_challenge_method="S256",
        token_endpoint_auth_method=method,
    )


# -- the organisation's setting -------------------------------------------------------------------


def provider_of(session: Session, principal: Principal) -> IdentityProvider | None:
    authorize(principal, "identity_provider.manage")
    return session.get(IdentityProvider, principal.org_id)


def configure(
    session: Session,
    principal: Principal,
    config: OidcConfig,
    *,
    issuer: str,
    client_id: str,
    client_secret: str | None,
    keep_secret: bool,
    scopes: str,
    create_users: bool,
    default_role: Role,
    enabled: bool,
    trust_email: bool = False,
    allowed_domains: Sequence[str] = (),
) -> IdentityProvider:
    """Set the organisation's provider; its discovery document must answer now (a typo is
    refused here, not at the first person's sign-in). `keep_secret`: the secret stays as it is
    (the API never returns it, so an edit that leaves it out keeps it)."""
    authorize(principal, "identity_provider.manage")
    issuer = issuer.strip()
    if "openid" not in scopes.split():
        raise InvalidInput(errors={"scopes": ["Must include `openid`."]})
    if default_role not in JOIN_ROLES:
        # Whoever the provider vouches for would join with it: never an admin's powers.
        raise InvalidInput(errors={"default_role": ["One of: rep, manager."]})
    try:
        discover(issuer, config, fresh=True)
    except ProviderUnreachable as exc:
        raise InvalidInput(str(exc), errors={"issuer": [str(exc)]}) from None
    provider = session.get(IdentityProvider, principal.org_id)
    if provider is None:
        provider = IdentityProvider(org_id=principal.org_id)
        session.add(provider)
    provider.issuer, provider.client_id, provider.scopes = issuer, client_id.strip(), scopes
    if not keep_secret:
        provider.client_secret = client_secret
    provider.create_users, provider.default_role, provider.enabled = (
        create_users,
        default_role,
        enabled,
    )
    provider.trust_email = trust_email
    provider.allowed_domains = sorted(
        {domain.strip().lower().lstrip("@") for domain in allowed_domains}
    )
    session.flush()
    _audit(
        session, principal, {"issuer": issuer, "client_id": provider.client_id, "enabled": enabled}
    )
    return provider


def remove(session: Session, principal: Principal) -> None:
    """Sign-in with the provider ends; people's identities are kept for when it comes back
    (passwords, where people have them, still work)."""
    authorize(principal, "identity_provider.manage")
    provider = session.get(IdentityProvider, principal.org_id)
    if provider is None:
        raise NoProvider("The organisation has no identity provider.")
    session.delete(provider)
    session.flush()
    _audit(session, principal, {"issuer": None})


def _audit(session: Session, principal: Principal, details: dict[str, Any]) -> None:
    # Which provider, never the secret.
    audit.record(
        session,
        principal,
        AuditAction.IDENTITY_PROVIDER_CHANGED,
        "organisation",
        principal.org_id,
        details,
    )


# -- 1. to the provider ---------------------------------------------------------------------------


def _login_key(state: str) -> str:
    return f"oidc:login:{hashlib.sha256(state.encode()).hexdigest()}"


def _code_key(code: str) -> str:
    return f"oidc:code:{hashlib.sha256(code.encode()).hexdigest()}"


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def begin(
    session: Session,
    redis: Redis,
    config: OidcConfig,
    *,
    org_slug: str,
    redirect_uri: str,
    code_challenge: str,
    code_challenge_method: str,
    app_state: str | None,
) -> str:
    """Where to send the browser: the provider's authorization URL for a new sign-in."""
    if redirect_uri not in config.redirect_uris:
        raise InvalidInput(
            "This redirect_uri is not one the server lets sign-ins return to (OIDC_REDIRECT_URIS).",
            errors={"redirect_uri": ["Not an allowed redirect URI."]},
        )
    if code_challenge_method != "S256" or not _CHALLENGE.fullmatch(code_challenge):
        raise InvalidInput(
            errors={"code_challenge": ["A PKCE S256 challenge: 43 base64url characters."]}
        )
    org = session.scalar(select(Organisation).where(Organisation.slug == org_slug))
    provider = session.get(IdentityProvider, org.id) if org is not None else None
    if org is None or provider is None or not provider.enabled:
        raise NoProvider(f"No identity provider to sign in with for {org_slug!r}.")
    metadata = discover(provider.issuer, config)
    state, nonce, verifier = new_token(32), new_token(32), new_token(48)
    login = {
        "org_id": str(org.id),
        "issuer": provider.issuer,
        "nonce": nonce,
        "verifier": verifier,
        "redirect_uri": redirect_uri,
        "challenge": code_challenge,
        "app_state": app_state,
    }
    redis.set(_login_key(state), json.dumps(login), ex=LOGIN_TTL)
    url, _ = _client(provider, metadata, config).create_authorization_url(
        metadata.authorization_endpoint, state=state, nonce=nonce, code_verifier=verifier
    )
    return str(url)


# -- 2. back from the provider --------------------------------------------------------------------


@dataclass(frozen=True)
class Return:
    """Where the browser goes back to the app, and with what."""

    redirect_uri: str
    params: dict[str, str]

    @property
    def url(self) -> str:
        separator = "&" if urlparse(self.redirect_uri).query else "?"
        return self.redirect_uri + separator + urlencode(self.params)


def pending_login(redis: Redis, state: str) -> dict[str, Any] | None:
    """The sign-in started with `state`, once: a state used or expired is none."""
    found = redis.getdel(_login_key(state))
    return json.loads(found) if found else None


def complete(
    session: Session,
    redis: Redis,
    config: OidcConfig,
    login: dict[str, Any],
    *,
    code: str | None,
    error: str | None,
    error_description: str | None,
) -> Return:
    """The provider's answer to the sign-in `login`: the app gets a sign-in code, or the
    reason it has none."""
    app_state = {"state": login["app_state"]} if login.get("app_state") else {}
    try:
        if error:
            raise SignInFailed(error[:64], (error_description or "")[:512])
        if not code:
            raise SignInFailed("invalid_request", "The provider sent no code.")
        user = _signed_in(session, config, login, code)
    except SignInFailed as failed:
        params = {"error": failed.error, **app_state}
        if failed.description:
            params["error_description"] = failed.description
        return Return(login["redirect_uri"], params)
    sign_in_code = new_token(32)
    redis.set(
        _code_key(sign_in_code),
        json.dumps({"user_id": str(user.id), "challenge": login["challenge"]}),
        ex=CODE_TTL,
    )
    return Return(login["redirect_uri"], {"code": sign_in_code, **app_state})


def _signed_in(session: Session, config: OidcConfig, login: dict[str, Any], code: str) -> User:
    org_id = uuid.UUID(login["org_id"])
    provider = session.get(IdentityProvider, org_id)
    if provider is None or not provider.enabled or provider.issuer != login["issuer"]:
        raise SignInFailed("access_denied", "Sign-in with this provider has been switched off.")
    try:
        metadata = discover(provider.issuer, config)
        token = _client(provider, metadata, config).fetch_token(
            metadata.token_endpoint,
            code=code,
            code_verifier=login["verifier"],
            timeout=HTTP_TIMEOUT_S,
        )
    except (AuthlibBaseError, requests.RequestException, ProviderUnreachable, ValueError) as exc:
        raise SignInFailed("server_error", f"The provider refused the code: {exc}") from None
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise SignInFailed("server_error", "The provider sent no ID token.")
    claims = _checked_claims(metadata, provider, id_token, login["nonce"])
    return _person(session, provider, claims)


def _checked_claims(
    metadata: Metadata, provider: IdentityProvider, id_token: str, nonce: str
) -> dict[str, Any]:
    """The ID token's claims, once its signature (by the provider's keys) and its issuer,
    audience, expiry and nonce are right (OpenID Connect Core 1.0, 3.1.3.7)."""
    try:
        try:
            token = jwt.decode(id_token, _keys(metadata), algorithms=ID_TOKEN_ALGORITHMS)
        except JoseError:
            # A key the provider started signing with since its keys were read.
            token = jwt.decode(
                id_token, _keys(metadata, fresh=True), algorithms=ID_TOKEN_ALGORITHMS
            )
        jwt.JWTClaimsRegistry(
            leeway=60,
            iss={"essential": True, "value": metadata.issuer},
            sub={"essential": True},
            aud={"essential": True, "value": provider.client_id},
            exp={"essential": True},
            nonce={"essential": True, "value": nonce},
        ).validate(token.claims)
    except (JoseError, ValueError) as exc:
        raise SignInFailed("server_error", f"The ID token is not valid: {exc}") from None
    except ProviderUnreachable as exc:
        raise SignInFailed("server_error", str(exc)) from None
    claims = token.claims
    audience = claims["aud"]
    if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != provider.client_id:
        raise SignInFailed("server_error", "The ID token was issued to another party (azp).")
    return claims


def _person(session: Session, provider: IdentityProvider, claims: dict[str, Any]) -> User:
    """Who the provider signed in: the person of that identity; else the person of the
    organisation with that email, which the provider vouches for (`email_verified` not false),
    whose identity it becomes; else a new person, if the organisation lets the provider make
    them. Deactivated people stay out."""
    subject, now = str(claims["sub"])[:255], utcnow()
    identity = session.scalar(
        select(UserIdentity).where(
            UserIdentity.org_id == provider.org_id,
            UserIdentity.issuer == provider.issuer,
            UserIdentity.subject == subject,
        )
    )
    user: User | None
    if identity is not None:
        user = session.get(User, (identity.user_id))
    else:
        email = claims.get("email")
        verified = claims.get("email_verified")
        vouched = verified is True or (verified is None and provider.trust_email)
        if not isinstance(email, str) or not vouched:
            # (An email a person may set themselves would open any account of that address.)
            raise SignInFailed("access_denied", "The provider vouches for no email of this person.")
        user = session.scalar(
            select(User).where(
                User.org_id == provider.org_id,
                User.email == normalise_email(email),
                User.deleted_at.is_(None),
            )
        )
        if user is None:
            domain = normalise_email(email).rsplit("@", 1)[-1]
            if provider.allowed_domains and domain not in provider.allowed_domains:
                raise SignInFailed(
                    "access_denied", "People of this email domain do not join here by signing in."
                )
            if not provider.create_users:
                raise SignInFailed(
                    "access_denied",
                    "This person has no account here yet; an admin invites or provisions them.",
                )
            user = _new_person(session, provider, normalise_email(email), claims)
        elif not user.is_active:
            raise SignInFailed("access_denied", "This account is deactivated.")
        identity = UserIdentity(
            org_id=provider.org_id, user_id=user.id, issuer=provider.issuer, subject=subject
        )
        session.add(identity)
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:
            # Already linked to another identity of this provider, or linked at this moment.
            raise SignInFailed(
                "access_denied", "This account is linked to another identity of the provider."
            ) from None
    if user is None or user.org_id != provider.org_id or not user.is_active:
        raise SignInFailed("access_denied", "This account is deactivated.")
    identity.last_sign_in_at = now
    session.flush()
    return user


def _new_person(
    session: Session, provider: IdentityProvider, email: str, claims: dict[str, Any]
) -> User:
    """A person made at their first sign-in, as the provider names them."""
    name = claims.get("name") or " ".join(
        str(claims[part]) for part in ("given_name", "family_name") if claims.get(part)
    )
    display_name = str(name or email.split("@")[0]).strip()[:120] or email.split("@")[0][:120]
    try:
        display_name = clean_name(display_name, "display_name")
    except InvalidInput:
        display_name = email.split("@")[0][:120]
    seed = str(claims.get("preferred_username") or email.split("@")[0])
    user = User(
        org_id=provider.org_id,
        email=email,
        display_name=display_name,
        handle=free_handle(session, provider.org_id, seed.split("@")[0]),
        role=provider.default_role,
    )
    session.add(user)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        # The address belongs to a person of another organisation.
        raise SignInFailed("access_denied", str(conflict_from(exc))) from None
    events.publish(
        session, events.PersonTookRole(org_id=user.org_id, user_id=user.id, role=user.role)
    )
    audit.record(
        session,
        user.id,
        AuditAction.USER_CREATED,
        "user",
        user.id,
        {"role": user.role, "via": "identity_provider", "issuer": provider.issuer},
        org_id=user.org_id,
    )
    return user


# -- 3. the app's sign-in code --------------------------------------------------------------------


def redeem(session: Session, redis: Redis, code: str, code_verifier: str) -> User:
    """The person a sign-in code stands for, once, given the verifier of the app's challenge."""
    found = redis.getdel(_code_key(code))
    refused = AuthenticationFailed(
        "The sign-in code is unknown, used or expired, or the code_verifier does not match.",
        code=ErrorCode.INVALID_SIGN_IN_CODE,
    )
    if found is None or not _VERIFIER.fullmatch(code_verifier):
        raise refused
    pending = json.loads(found)
    if not hmac.compare_digest(_s256(code_verifier), pending["challenge"]):
        raise refused
    user = session.get(User, uuid.UUID(pending["user_id"]))
    if user is None or not user.is_active:
        raise refused
    return user
