"""Sign-in with the organisation's identity provider, against a real OpenID provider run
locally (tests/oidc_provider.py, Authlib's server classes): the app's PKCE pair, the provider's
code and ID token, people found by identity or email or made at first sign-in, and every way
a sign-in is refused."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from fieldcast.accounts import oidc
from fieldcast.models.accounts import Role, User
from fieldcast.models.identity import UserIdentity
from fieldcast.settings import Settings
from tests import factories
from tests.conftest import bearer
from tests.oidc_provider import Client, OpenIdProvider

APP = "com.example.fieldcast:/signed-in"
WEB_APP = "http://127.0.0.1:8000/app/"
CALLBACK = "http://127.0.0.1:8000/api/v1/auth/oidc/callback"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, oidc_allow_http_loopback=True, oidc_redirect_uris=(APP, WEB_APP)
    )


@pytest.fixture(scope="module")
def provider() -> Iterator[OpenIdProvider]:
    with OpenIdProvider() as running:
        yield running


@pytest.fixture
def registered(client: FlaskClient, provider: OpenIdProvider, org: Any, admin: Any) -> Client:
    """The organisation's provider, set by its admin through the API."""
    registration = provider.register(redirect_uri=CALLBACK)
    response = client.put(
        "/api/v1/identity-provider",
        json={
            "issuer": provider.issuer,
            "client_id": registration.client_id,
            "client_secret": registration.client_secret,
        },
        headers=bearer(client, admin),
    )
    assert response.status_code == 200, response.get_json()
    return registration


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _sign_in(
    client: FlaskClient, org: Any, *, redirect_uri: str = APP, state: str = "app-state"
) -> tuple[dict[str, str], str]:
    """The browser's trip: the API, the provider, back to the API, back to the app. The
    app's redirect's parameters, and the app's verifier."""
    verifier = secrets.token_urlsafe(48)
    started = client.get(
        "/api/v1/auth/oidc/authorize",
        query_string={
            "org": org.slug,
            "redirect_uri": redirect_uri,
            "code_challenge": _challenge(verifier),
            "state": state,
        },
    )
    assert started.status_code == 302, started.get_json()
    at_provider = requests.get(started.headers["Location"], allow_redirects=False, timeout=30)
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    returned = client.get(f"{back.path}?{back.query}")
    assert returned.status_code == 302, returned.get_json()
    to_app = returned.headers["Location"]
    assert to_app.startswith(redirect_uri + "?"), to_app
    return dict(parse_qsl(urlsplit(to_app).query)), verifier


def _change_provider(
    client: FlaskClient, admin: Any, provider: OpenIdProvider, registered: Client, **changes: Any
) -> Any:
    """The admin sets the organisation's provider again, with `changes` (the secret kept)."""
    body = {"issuer": provider.issuer, "client_id": registered.client_id, **changes}
    return client.put("/api/v1/identity-provider", json=body, headers=bearer(client, admin))


def _redeem(client: FlaskClient, code: str, verifier: str) -> Any:
    return client.post("/api/v1/auth/oidc/token", json={"code": code, "code_verifier": verifier})


def test_a_person_new_to_the_organisation_signs_in_and_is_found_again_by_their_identity(
    client: FlaskClient, session: Session, provider: OpenIdProvider, org: Any, registered: Client
) -> None:
    provider.sign_in_as("00u-ana", "Ana.Ruiz@Example.com", "Ana Ruiz")
    params, verifier = _sign_in(client, org)
    assert params["state"] == "app-state" and "error" not in params
    tokens = _redeem(client, params["code"], verifier)
    assert tokens.status_code == 200, tokens.get_json()
    me = client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {tokens.get_json()['access_token']}"}
    ).get_json()
    assert me["email"] == "ana.ruiz@example.com" and me["display_name"] == "Ana Ruiz"
    assert me["role"] == "rep"
    # The provider's email changes: the identity still finds her, no second account.
    provider.sign_in_as("00u-ana", "ana@example.org", "Ana Ruiz")
    params, verifier = _sign_in(client, org)
    again = _redeem(client, params["code"], verifier).get_json()
    assert again["access_token"]
    people = session.scalars(select(User).where(User.org_id == org.id, User.email.like("ana%")))
    assert [person.email for person in people] == ["ana.ruiz@example.com"]
    identity = session.scalar(select(UserIdentity).where(UserIdentity.subject == "00u-ana"))
    assert identity is not None and identity.issuer == provider.issuer
    assert identity.last_sign_in_at is not None


def test_an_existing_person_is_matched_by_email_and_linked(
    client: FlaskClient, session: Session, provider: OpenIdProvider, org: Any, registered: Client
) -> None:
    sam = factories.UserFactory(org=org, email="sam@example.com", role=Role.MANAGER)
    provider.sign_in_as("00u-sam", "SAM@example.com", "Samuel")
    params, verifier = _sign_in(client, org)
    pair = _redeem(client, params["code"], verifier).get_json()
    me = client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {pair['access_token']}"}
    ).get_json()
    assert me["id"] == str(sam.id) and me["role"] == "manager"
    assert me["display_name"] == sam.display_name  # the account's own name is kept
    linked = session.scalar(select(UserIdentity).where(UserIdentity.user_id == sam.id))
    assert linked is not None and linked.subject == "00u-sam"


def test_the_sign_in_code_needs_the_apps_verifier_and_works_once(
    client: FlaskClient, provider: OpenIdProvider, org: Any, registered: Client
) -> None:
    provider.sign_in_as("00u-kim", "kim@example.com", "Kim")
    params, verifier = _sign_in(client, org)
    stolen = _redeem(client, params["code"], secrets.token_urlsafe(48))
    assert stolen.status_code == 401
    assert stolen.get_json()["code"] == "invalid_sign_in_code"
    # A wrong verifier burns the code: the right one no longer works either.
    assert _redeem(client, params["code"], verifier).status_code == 401
    params, verifier = _sign_in(client, org)
    assert _redeem(client, params["code"], verifier).status_code == 200
    replay = _redeem(client, params["code"], verifier)
    assert replay.status_code == 401 and replay.get_json()["code"] == "invalid_sign_in_code"


def test_the_web_app_gets_a_cookie_session_and_no_token(
    client: FlaskClient, provider: OpenIdProvider, org: Any, registered: Client
) -> None:
    provider.sign_in_as("00u-web", "web@example.com", "Wes")
    params, verifier = _sign_in(client, org, redirect_uri=WEB_APP)
    started = client.post(
        "/api/v1/auth/oidc/session", json={"code": params["code"], "code_verifier": verifier}
    )
    assert started.status_code == 200, started.get_json()
    body = started.get_json()
    assert body["csrf_token"] and "access_token" not in body
    cookies = started.headers.getlist("Set-Cookie")
    assert any(c.startswith("fieldcast_session=") and "HttpOnly" in c for c in cookies)
    me = client.get("/api/v1/me")  # the cookie alone
    assert me.status_code == 200 and me.get_json()["email"] == "web@example.com"


@pytest.mark.parametrize(
    "case",
    [
        "provider_refuses",
        "not_created",
        "deactivated",
        "unverified_email",
        "email_not_vouched",
        "no_email",
    ],
)
def test_who_the_organisation_does_not_let_in_returns_to_the_app_with_access_denied(
    case: str,
    client: FlaskClient,
    session: Session,
    provider: OpenIdProvider,
    org: Any,
    admin: Any,
    registered: Client,
) -> None:
    if case == "provider_refuses":
        provider.refuse()
    elif case == "not_created":
        changed = _change_provider(client, admin, provider, registered, create_users=False)
        assert changed.status_code == 200 and changed.get_json()["has_client_secret"]
        provider.sign_in_as("00u-new", "new@example.com", "New")
    elif case == "deactivated":
        factories.UserFactory(org=org, email="gone@example.com", is_active=False)
        provider.sign_in_as("00u-gone", "gone@example.com", "Gone")
    elif case == "unverified_email":
        factories.UserFactory(org=org, email="boss@example.com", role=Role.ADMIN)
        provider.sign_in_as("00u-fake", "boss@example.com", "Boss?", email_verified=False)
    elif case == "email_not_vouched":
        # No `email_verified` at all (as Entra ID sends): not the person's unless trusted.
        factories.UserFactory(org=org, email="chief@example.com", role=Role.ADMIN)
        provider.sign_in_as("00u-nv", "chief@example.com", "Chief?", email_verified=None)
    else:
        provider.sign_in_as("00u-anon", None, "Nobody")
    params, _ = _sign_in(client, org, state="s-1")
    assert params["error"] == "access_denied", params
    assert params["state"] == "s-1" and "code" not in params
    assert session.scalar(select(User.id).where(User.email == "new@example.com")) is None
    assert session.scalar(select(UserIdentity.id).where(UserIdentity.org_id == org.id)) is None


def test_what_the_authorize_step_refuses(
    client: FlaskClient,
    provider: OpenIdProvider,
    org: Any,
    other_org: Any,
    registered: Client,
) -> None:
    good = {"org": org.slug, "redirect_uri": APP, "code_challenge": _challenge("v" * 43)}
    url = "/api/v1/auth/oidc/authorize"
    # Somewhere the server does not send sign-ins to (another app's scheme).
    evil = client.get(url, query_string={**good, "redirect_uri": "evil.app:/cb"})
    assert evil.status_code == 422 and "redirect_uri" in evil.get_json()["errors"]
    # No PKCE, or the plain method.
    assert client.get(url, query_string={**good, "code_challenge": "short"}).status_code == 422
    plain = client.get(url, query_string={**good, "code_challenge_method": "plain"})
    assert plain.status_code == 422
    # An organisation without a provider, and one that does not exist.
    for slug in (other_org.slug, "no-such-org"):
        missing = client.get(url, query_string={**good, "org": slug})
        assert missing.status_code == 404
        assert missing.get_json()["code"] == "no_identity_provider"
    # A return to the API that no sign-in started, or one used already.
    stray = client.get("/api/v1/auth/oidc/callback", query_string={"state": "x" * 43, "code": "c"})
    assert stray.status_code == 400


def test_a_provider_rotating_its_keys_still_signs_people_in(
    client: FlaskClient, provider: OpenIdProvider, org: Any, registered: Client
) -> None:
    provider.sign_in_as("00u-rot", "rot@example.com", "Rot")
    params, verifier = _sign_in(client, org)
    assert _redeem(client, params["code"], verifier).status_code == 200
    provider.rotate_key()  # the keys the server read before no longer verify
    params, verifier = _sign_in(client, org)
    assert "error" not in params, params
    assert _redeem(client, params["code"], verifier).status_code == 200


def test_an_id_token_is_believed_only_when_the_providers_key_signed_it_for_this_client(
    provider: OpenIdProvider, registered: Client, session: Session, org: Any
) -> None:
    config = oidc.OidcConfig(CALLBACK, (APP,), allow_http_loopback=True)
    metadata = oidc.discover(provider.issuer, config)
    from fieldcast.models.identity import IdentityProvider

    setting = session.get(IdentityProvider, org.id)
    assert setting is not None
    now = int(time.time())
    claims = {
        "iss": provider.issuer,
        "sub": "00u-x",
        "aud": registered.client_id,
        "exp": now + 300,
        "iat": now,
        "nonce": "n-1",
    }

    def signed(key: RSAKey, **changes: Any) -> str:
        return jwt.encode({"alg": "RS256", "kid": str(key.kid)}, {**claims, **changes}, key)

    assert oidc._checked_claims(metadata, setting, signed(provider.key), "n-1")["sub"] == "00u-x"
    forger = RSAKey.generate_key(2048, parameters={"kid": str(provider.key.kid)})
    refused: list[dict[str, Any]] = [
        {"token": signed(forger)},  # another key, under the provider's key id
        {"token": signed(provider.key, aud="another-client")},
        {"token": signed(provider.key, iss="https://evil.example.com")},
        {"token": signed(provider.key, exp=now - 3600)},
        {"token": signed(provider.key), "nonce": "n-2"},  # a token of another sign-in
        {"token": signed(provider.key, aud=[registered.client_id, "x"], azp="x")},
    ]
    for case in refused:
        with pytest.raises(oidc.SignInFailed):
            oidc._checked_claims(metadata, setting, case["token"], case.get("nonce", "n-1"))


def test_the_setting_is_the_admins_and_never_shows_the_secret(
    client: FlaskClient, provider: OpenIdProvider, org: Any, admin: Any, rep: Any
) -> None:
    url = "/api/v1/identity-provider"
    assert client.get(url, headers=bearer(client, admin)).status_code == 404
    body = {"issuer": provider.issuer, "client_id": "c-1", "client_secret": "s3cr3t-value"}
    assert client.put(url, json=body, headers=bearer(client, rep)).status_code == 403
    made = client.put(url, json=body, headers=bearer(client, admin))
    assert made.status_code == 200
    shown = client.get(url, headers=bearer(client, admin))
    assert shown.status_code == 200 and "s3cr3t" not in shown.get_data(as_text=True)
    assert shown.get_json()["has_client_secret"] is True
    assert shown.get_json()["callback_url"] == CALLBACK
    # An issuer that is not an OpenID provider is refused at once, saying why.
    unreachable = client.put(
        url, json={**body, "issuer": "http://127.0.0.1:9/nothing"}, headers=bearer(client, admin)
    )
    assert unreachable.status_code == 422 and "issuer" in unreachable.get_json()["errors"]
    no_openid = client.put(url, json={**body, "scopes": "email"}, headers=bearer(client, admin))
    assert no_openid.status_code == 422
    # A public client: PKCE alone.
    public = client.put(url, json={**body, "client_secret": None}, headers=bearer(client, admin))
    assert public.get_json()["has_client_secret"] is False
    assert client.delete(url, headers=bearer(client, rep)).status_code == 403
    assert client.delete(url, headers=bearer(client, admin)).status_code == 204
    assert client.get(url, headers=bearer(client, admin)).status_code == 404


def test_plain_http_providers_are_refused_unless_allowed_for_loopback(
    provider: OpenIdProvider,
) -> None:
    strict = oidc.OidcConfig(CALLBACK, (APP,), allow_http_loopback=False)
    with pytest.raises(oidc.ProviderUnreachable):
        oidc.discover(provider.issuer, strict, fresh=True)
    # An admin's issuer is fetched by the server: never an address of its own network.
    for private in ("https://10.0.0.8/realms/x", "https://127.0.0.1:8443", "https://[::1]/"):
        with pytest.raises(oidc.ProviderUnreachable, match="public address"):
            oidc.discover(private, strict, fresh=True)
    with pytest.raises(oidc.ProviderUnreachable):
        oidc.discover("http://idp.example.com", oidc.OidcConfig(CALLBACK, (APP,), True), fresh=True)


def test_an_address_starts_a_few_sign_ins_a_minute(
    client: FlaskClient, org: Any, registered: Client
) -> None:
    query = {"org": org.slug, "redirect_uri": APP, "code_challenge": _challenge("v" * 43)}
    answers = [
        client.get("/api/v1/auth/oidc/authorize", query_string=query).status_code for _ in range(31)
    ]
    assert answers[:30] == [302] * 30
    assert answers[30] == 429


def test_a_provider_trusted_for_its_emails_links_without_email_verified_and_admits_no_admin(
    client: FlaskClient,
    session: Session,
    provider: OpenIdProvider,
    org: Any,
    admin: Any,
    registered: Client,
) -> None:
    as_admins = _change_provider(client, admin, provider, registered, default_role="admin")
    assert as_admins.status_code == 422 and "default_role" in as_admins.get_json()["errors"]
    trusted = _change_provider(client, admin, provider, registered, trust_email=True)
    assert trusted.status_code == 200 and trusted.get_json()["trust_email"] is True
    pat = factories.UserFactory(org=org, email="pat@example.com")
    provider.sign_in_as("00u-pat", "pat@example.com", "Pat", email_verified=None)
    params, verifier = _sign_in(client, org)
    pair = _redeem(client, params["code"], verifier).get_json()
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.get_json()["id"] == str(pat.id)
    # An email the provider marks unverified stays refused, trusted or not.
    factories.UserFactory(org=org, email="lee@example.com")
    provider.sign_in_as("00u-lee", "lee@example.com", "Lee", email_verified=False)
    assert _sign_in(client, org)[0]["error"] == "access_denied"


def test_a_provider_of_many_organisations_admits_only_the_allowed_domains(
    client: FlaskClient,
    session: Session,
    provider: OpenIdProvider,
    org: Any,
    admin: Any,
    registered: Client,
) -> None:
    bad = _change_provider(client, admin, provider, registered, allowed_domains=["not a domain"])
    assert bad.status_code == 422
    made = _change_provider(client, admin, provider, registered, allowed_domains=["@Example.COM"])
    assert made.get_json()["allowed_domains"] == ["example.com"]
    provider.sign_in_as("00u-out", "someone@gmail.example.org", "Someone")
    assert _sign_in(client, org)[0]["error"] == "access_denied"
    assert session.scalar(select(User.id).where(User.email == "someone@gmail.example.org")) is None
    provider.sign_in_as("00u-in", "new.hire@example.com", "New Hire")
    params, verifier = _sign_in(client, org)
    assert _redeem(client, params["code"], verifier).status_code == 200
