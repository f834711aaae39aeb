"""Browser sessions (cookie + CSRF), the minimum app version, deprecation headers, and logout
that unregisters the phone, as the web app and the mobile apps meet them."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from flask.views import MethodView
from redis import Redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from api.extensions import Blueprint
from api.versioning import deprecated
from fieldcast import versions
from fieldcast.context import build_context
from fieldcast.db import Database, utcnow
from fieldcast.models.accounts import AuthSession
from fieldcast.models.devices import Device
from fieldcast.settings import Settings, SettingsError
from tests import factories
from tests.live_server import committed_factories, serve

SESSION_COOKIE = "fieldcast_session"
CSRF_COOKIE = "fieldcast_csrf"
WEB_APP = "https://app.example.com"


def _app(settings: Settings, db: Database, redis: Redis, **changes: Any) -> Flask:
    from api.app import create_app

    settings = dataclasses.replace(settings, **changes)
    app = create_app(settings, context=build_context(settings, db=db, redis=redis))
    app.config["TESTING"] = True
    return app


def _browser_login(client: FlaskClient, user: Any, **headers: str) -> Any:
    return client.post(
        "/api/v1/auth/session",
        json={"email": user.email, "password": factories.PASSWORD},
        headers=headers,
    )


def _set_cookies(response: Any) -> dict[str, str]:
    """The Set-Cookie headers of a response, by cookie name."""
    return {header.split("=", 1)[0]: header for header in response.headers.getlist("Set-Cookie")}


def _csrf(client: FlaskClient) -> str:
    cookie = client.get_cookie(CSRF_COOKIE)
    assert cookie is not None
    return cookie.value


def _auth_session(session: Session, user: Any) -> AuthSession:
    return session.scalars(select(AuthSession).where(AuthSession.user_id == user.id)).one()


# -- cookie sessions (Flask's test client and its cookie jar) --------------------------------


def test_a_browser_logs_in_with_an_httponly_cookie_and_no_token(
    client: FlaskClient, rep: Any
) -> None:
    response = _browser_login(client, rep)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert set(body) == {"user_id", "csrf_token", "expires_at"}
    assert body["user_id"] == str(rep.id)
    cookies = _set_cookies(response)
    session_cookie = cookies[SESSION_COOKIE]
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=6047"):
        assert attribute in session_cookie
    # Served over plain http here: no Secure (browsers would drop the cookie), no __Host-.
    assert "Secure" not in session_cookie
    csrf_cookie = cookies[CSRF_COOKIE]
    assert "HttpOnly" not in csrf_cookie and "SameSite=Strict" in csrf_cookie
    assert f"{CSRF_COOKIE}={body['csrf_token']};" in csrf_cookie
    # The cookie alone is enough for reads, and the page never saw a credential.
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.get_json()["email"] == rep.email
    assert "Set-Cookie" not in me.headers  # a read right after login writes nothing


def test_over_https_the_cookie_is_host_bound_and_secure(
    settings: Settings, db: Database, redis: Redis, rep: Any
) -> None:
    client = _app(settings, db, redis, public_base_url="https://api.example.com").test_client()
    response = _browser_login(client, rep)
    assert response.status_code == 200
    cookie = _set_cookies(response)["__Host-fieldcast_session"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "Path=/" in cookie
    assert "Domain" not in cookie
    assert "Secure" in _set_cookies(response)[CSRF_COOKIE]
    assert client.get("/api/v1/me").status_code == 200


def test_a_browser_login_with_a_wrong_password_sets_nothing(client: FlaskClient, rep: Any) -> None:
    response = client.post(
        "/api/v1/auth/session", json={"email": rep.email, "password": "not-the-password"}
    )
    assert response.status_code == 401
    assert response.get_json()["code"] == "invalid_credentials"
    assert "Set-Cookie" not in response.headers
    assert client.get("/api/v1/me").get_json()["code"] == "authentication_required"


def test_changes_need_the_csrf_token(client: FlaskClient, rep: Any, auth: Any) -> None:
    assert _browser_login(client, rep).status_code == 200
    for headers in ({}, {"X-CSRF-Token": "guessed"}, {"X-CSRF-Token": ""}):
        refused = client.patch("/api/v1/me", json={"display_name": "Forged"}, headers=headers)
        assert refused.status_code == 403
        assert refused.mimetype == "application/problem+json"
        assert refused.get_json()["code"] == "csrf_failed"
    assert client.get("/api/v1/me").get_json()["display_name"] != "Forged"
    done = client.patch(
        "/api/v1/me", json={"display_name": "Renamed"}, headers={"X-CSRF-Token": _csrf(client)}
    )
    assert done.status_code == 200
    assert client.get("/api/v1/me").get_json()["display_name"] == "Renamed"
    # Bearer requests need no CSRF token, and a bearer header wins over a cookie sent along.
    bearer = auth(rep)
    by_app = client.patch("/api/v1/me", json={"display_name": "By app"}, headers=bearer)
    assert by_app.status_code == 200
    assert client.get("/api/v1/me").get_json()["display_name"] == "By app"


def test_a_token_of_another_session_is_refused(client: FlaskClient, rep: Any, org: Any) -> None:
    colleague = factories.UserFactory(org=org)
    other = client.application.test_client()
    assert _browser_login(other, colleague).status_code == 200
    assert _browser_login(client, rep).status_code == 200
    stolen = {"X-CSRF-Token": _csrf(other)}
    refused = client.patch("/api/v1/me", json={"display_name": "Forged"}, headers=stolen)
    assert refused.get_json()["code"] == "csrf_failed"


def test_changes_from_a_page_of_another_origin_are_refused(
    settings: Settings, db: Database, redis: Redis, rep: Any
) -> None:
    client = _app(settings, db, redis, cors_origins=(WEB_APP,)).test_client()
    evil = "https://evil.example"
    refused = _browser_login(client, rep, Origin=evil)
    assert refused.status_code == 403 and refused.get_json()["code"] == "csrf_failed"
    assert "Set-Cookie" not in refused.headers
    assert _browser_login(client, rep, Origin=WEB_APP).status_code == 200
    token = {"X-CSRF-Token": _csrf(client)}
    for headers in ({"Origin": evil}, {"Origin": "null"}, {"Referer": f"{evil}/page"}):
        response = client.patch(
            "/api/v1/me", json={"display_name": "Forged"}, headers={**token, **headers}
        )
        assert response.status_code == 403, headers
        assert response.get_json()["code"] == "csrf_failed"
    # Reads are not changes: any page may ask (CORS decides whether it may read the answer).
    assert client.get("/api/v1/me", headers={"Origin": evil}).status_code == 200
    for origin in (WEB_APP, settings.public_base_url):
        response = client.patch(
            "/api/v1/me", json={"display_name": "Kept"}, headers={**token, "Origin": origin}
        )
        assert response.status_code == 200, origin


def test_cors_allows_credentials_for_the_configured_origins_only(
    settings: Settings, db: Database, redis: Redis
) -> None:
    client = _app(settings, db, redis, cors_origins=(WEB_APP,)).test_client()
    preflight = {
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "content-type, x-csrf-token, x-app-version",
    }
    allowed = client.options("/api/v1/me", headers={"Origin": WEB_APP, **preflight})
    assert allowed.headers["Access-Control-Allow-Origin"] == WEB_APP
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    allowed_headers = allowed.headers["Access-Control-Allow-Headers"].lower()
    assert "x-csrf-token" in allowed_headers and "x-app-version" in allowed_headers
    other = client.options("/api/v1/me", headers={"Origin": "https://evil.example", **preflight})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Access-Control-Allow-Credentials" not in other.headers


def test_the_session_survives_a_reload_and_hands_back_its_csrf_token(
    client: FlaskClient, rep: Any
) -> None:
    login = _browser_login(client, rep).get_json()
    # A reload: the page's memory is gone, the cookie jar is not.
    reloaded = client.get("/api/v1/auth/session")
    assert reloaded.status_code == 200
    assert reloaded.get_json()["csrf_token"] == login["csrf_token"]
    assert reloaded.get_json()["user_id"] == str(rep.id)


def test_the_session_slides_on_use_within_its_absolute_lifetime(
    client: FlaskClient, session: Session, rep: Any
) -> None:
    _browser_login(client, rep)
    auth_session = _auth_session(session, rep)
    # Nearly idle for its whole lifetime: the next use extends it by the idle lifetime again.
    session.execute(
        update(AuthSession)
        .where(AuthSession.id == auth_session.id)
        .values(expires_at=utcnow() + timedelta(minutes=1))
    )
    used = client.get("/api/v1/me")
    assert used.status_code == 200
    renewed = _set_cookies(used)
    assert "Max-Age=6047" in renewed[SESSION_COOKIE]  # about 7 days again
    assert CSRF_COOKIE in renewed
    session.refresh(auth_session)
    assert auth_session.expires_at > utcnow() + timedelta(days=6, hours=23)
    assert auth_session.last_refreshed_at is not None
    # Right after, there is nothing to renew: no write, no cookie.
    assert "Set-Cookie" not in client.get("/api/v1/me").headers

    # Near its absolute end (30 days after login), it slides no further than that end.
    created = utcnow() - timedelta(days=30) + timedelta(hours=2)
    session.execute(
        update(AuthSession)
        .where(AuthSession.id == auth_session.id)
        .values(created_at=created, expires_at=utcnow() + timedelta(minutes=1))
    )
    capped = client.get("/api/v1/me")
    assert capped.status_code == 200
    session.refresh(auth_session)
    assert auth_session.expires_at == created + timedelta(days=30)

    session.execute(
        update(AuthSession)
        .where(AuthSession.id == auth_session.id)
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    ended = client.get("/api/v1/me")
    assert ended.status_code == 401 and ended.get_json()["code"] == "session_ended"
    # The page cannot delete an HttpOnly cookie: the refusal does.
    assert "Max-Age=0" in _set_cookies(ended)[SESSION_COOKIE]
    assert client.get_cookie(SESSION_COOKIE) is None


def test_a_forged_cookie_is_refused(client: FlaskClient, rep: Any) -> None:
    _browser_login(client, rep)
    value = client.get_cookie(SESSION_COOKIE)
    assert value is not None
    sid, _, mac = value.value.partition(".")
    for forged in (f"{uuid.uuid4().hex}.{mac}", f"{sid}.{mac[:-2]}AA", "garbage", sid):
        client.set_cookie(SESSION_COOKIE, forged)
        response = client.get("/api/v1/me")
        assert response.status_code == 401, forged
        assert response.get_json()["code"] == "invalid_token"


def test_logging_out_ends_the_session_everywhere_it_was_copied(
    client: FlaskClient, rep: Any
) -> None:
    _browser_login(client, rep)
    cookie = client.get_cookie(SESSION_COOKIE)
    assert cookie is not None
    refused = client.delete("/api/v1/auth/session")  # a change like any other
    assert refused.status_code == 403 and refused.get_json()["code"] == "csrf_failed"
    out = client.delete("/api/v1/auth/session", headers={"X-CSRF-Token": _csrf(client)})
    assert out.status_code == 204
    cleared = _set_cookies(out)
    assert "Max-Age=0" in cleared[SESSION_COOKIE] and "Max-Age=0" in cleared[CSRF_COOKIE]
    assert client.get_cookie(SESSION_COOKIE) is None
    # A copy of the cookie taken before the logout is dead too.
    client.set_cookie(SESSION_COOKIE, cookie.value)
    response = client.get("/api/v1/me")
    assert response.status_code == 401 and response.get_json()["code"] == "session_ended"


def test_deactivating_a_user_ends_their_browser_sessions_and_removes_their_devices(
    client: FlaskClient, session: Session, org: Any, rep: Any, admin: Any, auth: Any
) -> None:
    rep_bearer = auth(rep)
    for token in ("phone-1", "tablet-1"):
        registered = client.post(
            "/api/v1/devices", json={"token": token, "platform": "ios"}, headers=rep_bearer
        )
        assert registered.status_code == 201
    colleague = factories.UserFactory(org=org)
    kept = client.post(
        "/api/v1/devices",
        json={"token": "colleague-phone", "platform": "android"},
        headers=auth(colleague),
    )
    assert kept.status_code == 201
    browser = client.application.test_client()
    assert _browser_login(browser, rep).status_code == 200
    assert browser.get("/api/v1/me").status_code == 200

    response = client.patch(
        f"/api/v1/users/{rep.id}", json={"is_active": False}, headers=auth(admin)
    )
    assert response.status_code == 200, response.get_json()
    assert browser.get("/api/v1/me").get_json()["code"] == "session_ended"
    assert client.get("/api/v1/me", headers=rep_bearer).status_code == 401
    owners = session.scalars(select(Device.user_id)).all()
    assert rep.id not in owners
    assert colleague.id in owners


# -- logout unregisters the phone ---------------------------------------------------------------


def test_logout_with_a_device_id_unregisters_that_phone(
    client: FlaskClient, session: Session, org: Any, rep: Any, auth: Any
) -> None:
    headers = auth(rep)
    phone = client.post(
        "/api/v1/devices", json={"token": "my-phone", "platform": "ios"}, headers=headers
    ).get_json()
    tablet = client.post(
        "/api/v1/devices", json={"token": "my-tablet", "platform": "android"}, headers=headers
    ).get_json()
    colleague = factories.UserFactory(org=org)
    theirs = client.post(
        "/api/v1/devices",
        json={"token": "their-phone", "platform": "ios"},
        headers=auth(colleague),
    ).get_json()

    out = client.post("/api/v1/auth/logout", json={"device_id": phone["id"]}, headers=headers)
    assert out.status_code == 204
    assert client.get("/api/v1/me", headers=headers).get_json()["code"] == "session_ended"
    tokens = set(session.scalars(select(Device.token)).all())
    assert "my-phone" not in tokens
    assert {"my-tablet", "their-phone"} <= tokens

    # Someone else's device id (or one already gone) is ignored: the logout still happens.
    headers = auth(rep)
    for device_id in (theirs["id"], phone["id"], str(uuid.uuid4())):
        again = client.post("/api/v1/auth/logout", json={"device_id": device_id}, headers=headers)
        assert again.status_code == 204
        headers = auth(rep)
    assert "their-phone" in set(session.scalars(select(Device.token)).all())
    assert tablet["id"] in {str(i) for i in session.scalars(select(Device.id)).all()}

    bad = client.post("/api/v1/auth/logout", json={"device_id": "not-a-uuid"}, headers=headers)
    assert bad.status_code == 422 and "device_id" in bad.get_json()["errors"]


def test_a_browser_logout_can_unregister_its_web_push_device(
    client: FlaskClient, session: Session, rep: Any
) -> None:
    _browser_login(client, rep)
    csrf = {"X-CSRF-Token": _csrf(client)}
    device = client.post(
        "/api/v1/devices", json={"token": "web-push-endpoint", "platform": "web"}, headers=csrf
    )
    assert device.status_code == 201
    out = client.delete(f"/api/v1/auth/session?device_id={device.get_json()['id']}", headers=csrf)
    assert out.status_code == 204
    assert session.scalars(select(Device).where(Device.token == "web-push-endpoint")).all() == []


# -- a real browser-like client against a live server -------------------------------------------


@pytest.fixture
def live(settings: Settings, committed_db: Database, redis: Redis) -> Iterator[Any]:
    ctx = build_context(settings, db=committed_db, redis=redis)
    with committed_factories(committed_db) as session:
        rep = factories.UserFactory(org=factories.OrganisationFactory())
        session.commit()
    with serve(ctx) as server:
        yield server, rep


@pytest.mark.timeout(120, method="thread")
def test_a_browser_session_over_real_http(live: Any) -> None:
    server, rep = live
    browser = requests.Session()
    browser.headers["Origin"] = server.url  # what a browser sends from the app's own pages
    login = browser.post(
        f"{server.url}/api/v1/auth/session",
        json={"email": rep.email, "password": factories.PASSWORD},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    assert set(browser.cookies.keys()) == {SESSION_COOKIE, CSRF_COOKIE}
    assert next(c for c in browser.cookies if c.name == SESSION_COOKIE).has_nonstandard_attr(
        "HttpOnly"
    )
    me = browser.get(f"{server.url}/api/v1/me", timeout=10)
    assert me.status_code == 200 and me.json()["email"] == rep.email

    forged = browser.patch(f"{server.url}/api/v1/me", json={"display_name": "X"}, timeout=10)
    assert forged.status_code == 403 and forged.json()["code"] == "csrf_failed"
    csrf = {"X-CSRF-Token": browser.cookies[CSRF_COOKIE]}
    renamed = browser.patch(
        f"{server.url}/api/v1/me", json={"display_name": "Web Rep"}, headers=csrf, timeout=10
    )
    assert renamed.status_code == 200
    # A fresh tab (a new client with the same cookies) is still logged in.
    tab = requests.Session()
    tab.cookies.update(browser.cookies)
    assert tab.get(f"{server.url}/api/v1/me", timeout=10).json()["display_name"] == "Web Rep"

    out = browser.delete(f"{server.url}/api/v1/auth/session", headers=csrf, timeout=10)
    assert out.status_code == 204
    assert SESSION_COOKIE not in browser.cookies
    ended = tab.get(f"{server.url}/api/v1/me", timeout=10)
    assert ended.status_code == 401 and ended.json()["code"] == "session_ended"
    assert SESSION_COOKIE not in tab.cookies  # the refusal deleted the dead cookie


# -- the minimum app version ------------------------------------------------------------------


@pytest.fixture
def versioned(settings: Settings, db: Database, redis: Redis) -> FlaskClient:
    return _app(
        settings,
        db,
        redis,
        min_app_version_ios=versions.parse("2.4.0"),
        app_store_url_ios="https://apps.apple.com/app/id000000000",
    ).test_client()


def _app_headers(version: str, platform: str = "ios") -> dict[str, str]:
    return {"X-App-Version": version, "X-App-Platform": platform}


def test_an_app_below_the_minimum_gets_426_with_where_to_upgrade(
    versioned: FlaskClient, rep: Any, auth: Any
) -> None:
    headers = auth(rep)
    for version in ("2.3.9", "1.0", "2.4.0-beta.2"):
        response = versioned.get("/api/v1/me", headers={**headers, **_app_headers(version)})
        assert response.status_code == 426, version
        assert response.mimetype == "application/problem+json"
        body = response.get_json()
        assert body["code"] == "app_version_unsupported"
        assert body["minimum_version"] == "2.4.0"
        assert body["platform"] == "ios"
        assert body["upgrade_url"] == "https://apps.apple.com/app/id000000000"
    # Logging in too: the outdated app hears "update", not a credentials error.
    login = versioned.post(
        "/api/v1/auth/token",
        json={"email": rep.email, "password": "whatever"},
        headers=_app_headers("2.0.0"),
    )
    assert login.status_code == 426
    assert versioned.get("/healthz", headers=_app_headers("1.0.0")).status_code == 200


def test_current_apps_the_web_and_scripts_pass(versioned: FlaskClient, rep: Any, auth: Any) -> None:
    headers = auth(rep)
    passing = [
        _app_headers("2.4.0"),
        _app_headers("2.4.1+build.77"),
        _app_headers("10.0"),
        _app_headers("1.0.0", "android"),  # no minimum set for Android
        _app_headers("1.0.0", "web"),
        {},
    ]
    for extra in passing:
        assert versioned.get("/api/v1/me", headers={**headers, **extra}).status_code == 200, extra
    malformed = versioned.get("/api/v1/me", headers={**headers, **_app_headers("two")})
    assert malformed.status_code == 400
    assert malformed.get_json()["code"] == "invalid_app_version"


# -- deprecated operations ---------------------------------------------------------------------


def test_a_deprecated_operation_carries_deprecation_and_sunset(
    settings: Settings, db: Database, redis: Redis
) -> None:
    from api.app import API_BLUEPRINTS

    legacy = Blueprint("legacy", __name__, url_prefix="/api/v1/legacy", description="Old ways")

    @legacy.route("")
    class Legacy(MethodView):
        @deprecated(
            since=date(2026, 1, 15),
            sunset=date(2026, 7, 31),
            link="https://docs.example.com/migrate",
        )
        @legacy.response(200)
        def get(self) -> dict[str, str]:
            """An operation on its way out"""
            return {"still": "here"}

    app = _app(settings, db, redis)
    app.extensions["flask-smorest"]["apis"][""]["ext_obj"].register_blueprint(legacy)
    assert legacy not in API_BLUEPRINTS  # served without authentication: a test route only
    response = app.test_client().get("/api/v1/legacy")
    assert response.status_code == 200 and response.get_json() == {"still": "here"}
    assert response.headers["Deprecation"] == "@1768435200"
    sunset = parsedate_to_datetime(response.headers["Sunset"])
    assert sunset.date() == date(2026, 7, 31)
    assert response.headers["Link"] == (
        '<https://docs.example.com/migrate>; rel="deprecation"; type="text/html"'
    )
    spec = app.test_client().get("/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/legacy"]["get"]
    assert operation["deprecated"] is True
    assert operation["x-sunset"] == "2026-07-31"


def test_a_sunset_sooner_than_the_notice_period_is_refused() -> None:
    with pytest.raises(ValueError, match="6 months"):
        deprecated(since=date(2026, 1, 31), sunset=date(2026, 7, 30))
    deprecated(since=date(2026, 1, 31), sunset=date(2026, 7, 31))  # exactly six months


def test_session_and_version_settings_are_checked_at_start() -> None:
    loaded = Settings.from_env(
        {
            "BROWSER_SESSION_IDLE_S": "3600",
            "BROWSER_SESSION_MAX_S": "86400",
            "MIN_APP_VERSION_ANDROID": "3.1",
            "APP_STORE_URL_ANDROID": "https://play.google.com/store/apps/details?id=x",
        }
    )
    assert (loaded.browser_session_idle_s, loaded.browser_session_max_s) == (3600, 86400)
    assert loaded.min_app_version_android == versions.parse("3.1.0")
    assert loaded.min_app_version_ios is None
    for bad in (
        {"BROWSER_SESSION_IDLE_S": "90000", "BROWSER_SESSION_MAX_S": "86400"},
        {"MIN_APP_VERSION_IOS": "latest"},
        {"APP_STORE_URL_IOS": "itms-apps://apps.apple.com/app/id1"},
    ):
        with pytest.raises(SettingsError, match=next(iter(bad))):
            Settings.from_env(bad)


def test_a_token_session_lives_as_long_as_its_newest_refresh_token(
    client: FlaskClient, session: Session, rep: Any
) -> None:
    pair = client.post(
        "/api/v1/auth/token", json={"email": rep.email, "password": factories.PASSWORD}
    ).get_json()
    auth_session = _auth_session(session, rep)
    # Logged in 20 days ago: the session would be pruned 30 days after that login otherwise.
    session.execute(
        update(AuthSession)
        .where(AuthSession.id == auth_session.id)
        .values(expires_at=utcnow() + timedelta(days=10))
    )
    rotated = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert rotated.status_code == 200
    session.refresh(auth_session)
    assert auth_session.expires_at > utcnow() + timedelta(days=29)


def test_browser_and_app_log_ins_share_the_failure_limit(client: FlaskClient, rep: Any) -> None:
    wrong = {"email": rep.email, "password": "wrong-password"}
    for _ in range(10):
        assert client.post("/api/v1/auth/session", json=wrong).status_code == 401
    for path in ("/api/v1/auth/session", "/api/v1/auth/token"):
        blocked = client.post(path, json={"email": rep.email, "password": factories.PASSWORD})
        assert blocked.status_code == 429 and blocked.get_json()["code"] == "rate_limited"
        assert "Set-Cookie" not in blocked.headers
