"""Credentials: access and refresh tokens for the apps, browser sessions for the web app, API
tokens for integrations.

- Access tokens are short-lived JWTs (HS256) naming the user and the login session; every use
  checks that the session is still live, so logout and revocation take effect at once.
- Refresh tokens are opaque, stored as SHA-256 hashes, single use. Exchanging one rotates it;
  presenting a used one again means it leaked, and the whole session (the family) is revoked.
- Browser sessions are login sessions (the same `AuthSession` rows, so logout, deactivation and
  revocation end them the same way) carried by an HttpOnly cookie instead of a token in the
  page's reach. The cookie holds the session id signed with the secret key; its CSRF token is
  an HMAC of the session id under another purpose (signed double submit), so neither needs a
  column and both die with the session. A browser session slides: each use pushes its end
  back to the idle lifetime, never past its absolute lifetime.
- API tokens are opaque, prefixed `fct_`, stored as SHA-256 hashes, and act as one user.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import Select, Uuid, bindparam, select, update
from sqlalchemy.orm import Session

from fieldcast import audit
from fieldcast.accounts.services import normalise_email, verify_password
from fieldcast.audit import AuditAction
from fieldcast.db import EarlyCommit, commit_early, new_token, utcnow
from fieldcast.devices import services as devices
from fieldcast.errors import AuthenticationFailed, ErrorCode, InvalidInput
from fieldcast.models.accounts import ApiToken, AuthSession, RefreshToken, User
from fieldcast.policy import Principal, authorize, get_scoped, scoped

API_TOKEN_PREFIX = "fct_"  # noqa: S105 - a marker, not a secret
_ALGORITHM = "HS256"
_AUDIENCE = "fieldcast-api"


@dataclass(frozen=True)
class TokenConfig:
    secret_key: str
    access_ttl: timedelta
    refresh_ttl: timedelta
    # A browser session ends after this long unused, and in any case this long after login.
    browser_idle_ttl: timedelta = timedelta(days=7)
    browser_max_ttl: timedelta = timedelta(days=30)


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: uuid.UUID


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _access_token(config: TokenConfig, user: User, session_id: uuid.UUID, now: datetime) -> str:
    claims = {
        "sub": str(user.id),
        "org": str(user.org_id),
        "sid": str(session_id),
        "aud": _AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + config.access_ttl).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, config.secret_key, algorithm=_ALGORITHM)


def _issue_refresh(
    session: Session, config: TokenConfig, auth_session: AuthSession, now: datetime
) -> str:
    token = new_token(32)
    session.add(
        RefreshToken(
            org_id=auth_session.org_id,
            session_id=auth_session.id,
            token_hash=_digest(token),
            expires_at=now + config.refresh_ttl,
        )
    )
    return token


def _check_credentials(session: Session, email: str, password: str) -> User:
    user = session.execute(
        select(User).where(User.email == normalise_email(email))
    ).scalar_one_or_none()
    if not verify_password(user, password) or user is None or not user.is_active:
        session.rollback()
        raise AuthenticationFailed("Wrong email or password.", code=ErrorCode.INVALID_CREDENTIALS)
    return user


def _start_session(
    session: Session, user: User, user_agent: str, now: datetime, expires_at: datetime
) -> AuthSession:
    auth_session = AuthSession(
        id=uuid.uuid4(),
        org_id=user.org_id,
        user_id=user.id,
        # Kept as data: control characters (NUL included) dropped, cut to the column.
        user_agent="".join(c for c in user_agent if c.isprintable())[:255],
        expires_at=expires_at,
    )
    session.add(auth_session)
    user.last_login_at = now
    return auth_session


def login(
    session: Session, config: TokenConfig, *, email: str, password: str, user_agent: str = ""
) -> TokenPair:
    return issue_pair(session, config, _check_credentials(session, email, password), user_agent)


def issue_pair(
    session: Session, config: TokenConfig, user: User, user_agent: str = ""
) -> TokenPair:
    """A new login session of `user`, whose credentials were checked (a password, or the
    organisation's identity provider): its first token pair."""
    now = utcnow()
    auth_session = _start_session(session, user, user_agent, now, now + config.refresh_ttl)
    refresh = _issue_refresh(session, config, auth_session, now)
    session.flush()
    return TokenPair(
        access_token=_access_token(config, user, auth_session.id, now),
        refresh_token=refresh,
        expires_in=int(config.access_ttl.total_seconds()),
        session_id=auth_session.id,
    )


def refresh(session: Session, config: TokenConfig, refresh_token: str) -> TokenPair:
    now = utcnow()
    row = session.execute(
        select(RefreshToken, AuthSession, User)
        .join(AuthSession, AuthSession.id == RefreshToken.session_id)
        .join(User, (User.id == AuthSession.user_id) & (User.org_id == AuthSession.org_id))
        .where(RefreshToken.token_hash == _digest(refresh_token))
        .with_for_update(of=RefreshToken)
    ).one_or_none()
    if row is None:
        session.rollback()
        raise AuthenticationFailed("Unknown refresh token.", code=ErrorCode.INVALID_REFRESH_TOKEN)
    token, auth_session, user = row
    if token.used_at is not None:
        # A rotated token came back: someone holds a copy. End the whole family.
        if auth_session.revoked_at is None:
            auth_session.revoked_at = now
            auth_session.revoked_reason = "refresh_token_reuse"
        commit_early(session, EarlyCommit.SESSION_FAMILY_REVOKED)
        raise AuthenticationFailed(
            "This refresh token was already used; the session has been ended.",
            code=ErrorCode.REFRESH_TOKEN_REUSED,
        )
    if auth_session.revoked_at is not None or token.expires_at <= now or not user.is_active:
        session.rollback()
        raise AuthenticationFailed(
            "The session has ended; log in again.", code=ErrorCode.SESSION_ENDED
        )
    token.used_at = now
    auth_session.last_refreshed_at = now
    # The session lives as long as its newest refresh token: housekeeping prunes by this.
    auth_session.expires_at = now + config.refresh_ttl
    new_refresh = _issue_refresh(session, config, auth_session, now)
    session.flush()
    return TokenPair(
        access_token=_access_token(config, user, auth_session.id, now),
        refresh_token=new_refresh,
        expires_in=int(config.access_ttl.total_seconds()),
        session_id=auth_session.id,
    )


def logout(session: Session, principal: Principal, *, device_id: uuid.UUID | None = None) -> None:
    """End the login session behind the credential in use (an access token or a browser
    session), and unregister the caller's push device `device_id`, if given: the phone logged
    out gets no more pushes. A device id that is not the caller's (or is gone already) does not
    keep the session from ending."""
    if principal.session_id is None:
        raise InvalidInput(
            "API tokens are revoked through /api/v1/api-tokens, not logged out.",
            code=ErrorCode.NOT_A_LOGIN_SESSION,
        )
    session.execute(
        update(AuthSession)
        .where(AuthSession.id == principal.session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason="logout")
    )
    if device_id is not None:
        devices.forget(session, principal, device_id)
    session.flush()


# -- browser sessions ------------------------------------------------------------------------


@dataclass(frozen=True)
class BrowserSession:
    """A browser session as the API hands it out: the cookie's value, its CSRF token, its end."""

    session_id: uuid.UUID
    user: User
    cookie: str
    csrf_token: str
    expires_at: datetime
    # Whether this use moved the end of the session: the cookie is then sent again.
    renewed: bool = False


def _mac(config: TokenConfig, purpose: str, session_id: uuid.UUID) -> str:
    digest = hmac.new(
        config.secret_key.encode(), f"{purpose}:{session_id.hex}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def csrf_token(config: TokenConfig, session_id: uuid.UUID) -> str:
    """The CSRF token of a browser session: fixed for the session, useless without it."""
    return _mac(config, "fieldcast-csrf", session_id)


def _browser_session(
    config: TokenConfig, auth_session: AuthSession, user: User, *, renewed: bool
) -> BrowserSession:
    sid = auth_session.id
    return BrowserSession(
        session_id=sid,
        user=user,
        cookie=f"{sid.hex}.{_mac(config, 'fieldcast-session-cookie', sid)}",
        csrf_token=csrf_token(config, sid),
        expires_at=auth_session.expires_at,
        renewed=renewed,
    )


def _session_id_from_cookie(config: TokenConfig, cookie: str) -> uuid.UUID | None:
    sid_hex, _, mac = cookie.partition(".")
    try:
        sid = uuid.UUID(hex=sid_hex)
    except ValueError:
        return None
    if not hmac.compare_digest(
        mac.encode(), _mac(config, "fieldcast-session-cookie", sid).encode()
    ):
        return None
    return sid


def start_browser_session(
    session: Session, config: TokenConfig, *, email: str, password: str, user_agent: str = ""
) -> BrowserSession:
    """Log in for a browser: a login session carried by a cookie, with its CSRF token."""
    user = _check_credentials(session, email, password)
    return browser_session_for(session, config, user, user_agent)


def browser_session_for(
    session: Session, config: TokenConfig, user: User, user_agent: str = ""
) -> BrowserSession:
    """A new browser login session of `user`, whose credentials were checked."""
    now = utcnow()
    expires_at = now + min(config.browser_idle_ttl, config.browser_max_ttl)
    auth_session = _start_session(session, user, user_agent, now, expires_at)
    session.flush()
    return _browser_session(config, auth_session, user, renewed=True)


def authenticate_browser_session(
    session: Session, config: TokenConfig, cookie: str
) -> tuple[Principal, BrowserSession]:
    """The principal behind a session cookie. Slides the session's end forward, writing at most
    once per renewal interval (a tenth of the idle lifetime, an hour at most) rather than on
    every request."""
    sid = _session_id_from_cookie(config, cookie)
    if sid is None:
        raise AuthenticationFailed(
            "The session cookie is not valid; log in again.", code=ErrorCode.INVALID_TOKEN
        )
    row = session.execute(
        select(AuthSession, User)
        .join(User, (User.id == AuthSession.user_id) & (User.org_id == AuthSession.org_id))
        .where(AuthSession.id == sid)
    ).one_or_none()
    now = utcnow()
    if (
        row is None
        or row.AuthSession.revoked_at is not None
        or row.AuthSession.expires_at <= now
        or not row.User.is_active
    ):
        raise AuthenticationFailed(
            "The session has ended; log in again.", code=ErrorCode.SESSION_ENDED
        )
    auth_session, user = row.AuthSession, row.User
    idle_end = min(now + config.browser_idle_ttl, auth_session.created_at + config.browser_max_ttl)
    interval = min(config.browser_idle_ttl / 10, timedelta(hours=1))
    renewed = idle_end - auth_session.expires_at >= interval
    if renewed:
        auth_session.expires_at = idle_end
        auth_session.last_refreshed_at = now
        session.flush()
    return (
        Principal(user=user, session_id=sid),
        _browser_session(config, auth_session, user, renewed=renewed),
    )


@functools.lru_cache(maxsize=4096)
def _verified_claims(bearer: str, secret_key: str) -> dict[str, Any]:
    """An access token's claims, its signature and audience checked: once per token and
    process while it is in use (a phone sends the same token for up to its lifetime), not on
    every request. Its expiry is the caller's to check each time; a token that fails is not
    remembered."""
    claims: dict[str, Any] = jwt.decode(
        bearer,
        secret_key,
        algorithms=[_ALGORITHM],
        audience=_AUDIENCE,
        options={"require": ["exp", "sub", "sid", "org"]},
    )
    return claims


# Every request with an access token reads its person and session: built once (an
# expression rebuilt per request costs more than the lookup itself).
_SESSION_USER = (
    select(User, AuthSession.revoked_at)
    .join(AuthSession, (AuthSession.user_id == User.id) & (AuthSession.org_id == User.org_id))
    .where(
        User.id == bindparam("user_id", type_=Uuid()),
        User.org_id == bindparam("org_id", type_=Uuid()),
        AuthSession.id == bindparam("session_id", type_=Uuid()),
    )
)


def authenticate(session: Session, config: TokenConfig, bearer: str) -> Principal:
    if bearer.startswith(API_TOKEN_PREFIX):
        return _authenticate_api_token(session, bearer)
    try:
        claims = _verified_claims(bearer, config.secret_key)
        if claims["exp"] <= time.time():
            raise jwt.ExpiredSignatureError
        user_id = uuid.UUID(claims["sub"])
        session_id = uuid.UUID(claims["sid"])
        org_id = uuid.UUID(claims["org"])
    except jwt.ExpiredSignatureError:
        raise AuthenticationFailed(
            "The access token has expired.", code=ErrorCode.TOKEN_EXPIRED
        ) from None
    except (jwt.InvalidTokenError, ValueError, KeyError, TypeError):
        raise AuthenticationFailed(
            "The access token is not valid.", code=ErrorCode.INVALID_TOKEN
        ) from None
    row = session.execute(
        _SESSION_USER, {"user_id": user_id, "org_id": org_id, "session_id": session_id}
    ).one_or_none()
    if row is None or row.revoked_at is not None or not row.User.is_active:
        raise AuthenticationFailed(
            "The session has ended; log in again.", code=ErrorCode.SESSION_ENDED
        )
    return Principal(user=row.User, session_id=session_id)


def _authenticate_api_token(session: Session, bearer: str) -> Principal:
    row = session.execute(
        select(ApiToken, User)
        .join(User, (User.id == ApiToken.user_id) & (User.org_id == ApiToken.org_id))
        .where(ApiToken.token_hash == _digest(bearer))
    ).one_or_none()
    now = utcnow()
    if (
        row is None
        or row.ApiToken.revoked_at is not None
        or (row.ApiToken.expires_at is not None and row.ApiToken.expires_at <= now)
        or not row.User.is_active
    ):
        raise AuthenticationFailed("The API token is not valid.", code=ErrorCode.INVALID_TOKEN)
    token = row.ApiToken
    # Recording every use would write on every request; once a minute is enough to audit.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        session.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now))
        session.flush()
    return Principal(user=row.User, api_token_id=token.id)


@dataclass(frozen=True)
class NewApiToken:
    token: ApiToken
    secret: str


def create_api_token(
    session: Session,
    principal: Principal,
    *,
    name: str,
    user_id: uuid.UUID | None = None,
    expires_at: datetime | None = None,
) -> NewApiToken:
    authorize(principal, "api_token.create")
    acting = get_scoped(session, principal, User, user_id) if user_id else principal.user
    if not acting.is_active:
        raise InvalidInput(errors={"user_id": ["This user is deactivated."]})
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidInput(errors={"expires_at": ["Must be in the future."]})
    secret = API_TOKEN_PREFIX + new_token(32)
    token = ApiToken(
        org_id=principal.org_id,
        name=name.strip(),
        prefix=secret[: len(API_TOKEN_PREFIX) + 6],
        token_hash=_digest(secret),
        user_id=acting.id,
        created_by_id=principal.user_id,
        expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    # Its name, whom it acts as and until when: never the secret, its prefix or its hash.
    audit.record(
        session,
        principal,
        AuditAction.API_TOKEN_CREATED,
        "api_token",
        token.id,
        {"name": token.name, "user_id": token.user_id, "expires_at": token.expires_at},
    )
    return NewApiToken(token, secret)


def revoke_api_token(session: Session, principal: Principal, token_id: uuid.UUID) -> ApiToken:
    token = get_scoped(session, principal, ApiToken, token_id)
    authorize(principal, "api_token.revoke", token)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(
            session,
            principal,
            AuditAction.API_TOKEN_REVOKED,
            "api_token",
            token.id,
            {"name": token.name, "user_id": token.user_id},
        )
    session.flush()
    return token


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def listed_api_tokens(principal: Principal) -> Select[tuple[ApiToken]]:
    """The organisation's API tokens, for a page (admins)."""
    authorize(principal, "api_token.list")
    return scoped(principal, ApiToken)
