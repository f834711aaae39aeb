"""Logging in, rotating and revoking tokens, as a mobile app does it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import jwt
import pytest
from argon2 import PasswordHasher, extract_parameters

from tests import factories
from tests.conftest import SECRET_KEY


def _login(client: Any, email: str, password: str = factories.PASSWORD) -> Any:
    return client.post("/api/v1/auth/token", json={"email": email, "password": password})


def test_login_returns_a_bearer_token_pair(client: Any, rep: Any) -> None:
    response = _login(client, rep.email.upper())
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.get_json()["email"] == rep.email


def test_a_password_hashed_at_other_costs_logs_in_and_is_hashed_again_at_the_settings(
    client: Any, session: Any, rep: Any
) -> None:
    # As when an operator changes PASSWORD_HASH_TIME_COST / _MEMORY_KIB.
    rep.password_hash = PasswordHasher().hash(factories.PASSWORD)  # argon2's own defaults
    session.flush()
    assert _login(client, rep.email).status_code == 200
    session.refresh(rep)
    costs = extract_parameters(rep.password_hash)
    assert (costs.time_cost, costs.memory_cost) == (
        factories.HASH_TIME_COST,
        factories.HASH_MEMORY_KIB,
    )
    assert _login(client, rep.email).status_code == 200
    assert _login(client, rep.email, "not-the-password").status_code == 401


def test_wrong_password_and_unknown_email_look_the_same(client: Any, rep: Any) -> None:
    wrong = _login(client, rep.email, "not-the-password")
    unknown = _login(client, "nobody@example.com")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.mimetype == "application/problem+json"
        assert response.get_json()["code"] == "invalid_credentials"


def test_inactive_user_cannot_log_in(client: Any, org: Any) -> None:
    user = factories.UserFactory(org=org, inactive=True)
    refused = _login(client, user.email)
    assert refused.status_code == 401
    # Told apart from a wrong password by nothing, so accounts cannot be probed.
    assert refused.get_json()["code"] == "invalid_credentials"
    assert "access_token" not in refused.get_json()


def test_failed_logins_are_rate_limited_per_account(client: Any, rep: Any) -> None:
    for _ in range(10):
        assert _login(client, rep.email, "wrong-password").status_code == 401
    blocked = _login(client, rep.email)  # even the right password waits out the window
    assert blocked.status_code == 429
    assert blocked.get_json()["code"] == "rate_limited"
    assert int(blocked.headers["Retry-After"]) > 0


def test_successful_login_clears_the_failure_count(client: Any, rep: Any) -> None:
    for _ in range(9):
        _login(client, rep.email, "wrong-password")
    assert _login(client, rep.email).status_code == 200
    for _ in range(9):
        assert _login(client, rep.email, "wrong-password").status_code == 401


def test_refresh_rotates_and_reuse_ends_the_session(client: Any, rep: Any) -> None:
    first = _login(client, rep.email).get_json()
    rotated = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200
    second = rotated.get_json()
    assert second["refresh_token"] != first["refresh_token"]
    headers = {"Authorization": f"Bearer {second['access_token']}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200

    replay = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert replay.get_json()["code"] == "refresh_token_reused"
    # The whole family is gone: the newest tokens no longer work either.
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    again = client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert again.status_code == 401


def test_unknown_refresh_token(client: Any) -> None:
    response = client.post("/api/v1/auth/refresh", json={"refresh_token": "nope"})
    assert response.status_code == 401
    assert response.get_json()["code"] == "invalid_refresh_token"


def _refused(response: Any, code: str) -> None:
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.get_json()["code"] == code


def test_logout_revokes_access_and_refresh(client: Any, rep: Any) -> None:
    first = _login(client, rep.email).get_json()
    # The session works before the logout: its access token reads, its refresh token rotates.
    first_headers = {"Authorization": f"Bearer {first['access_token']}"}
    assert client.get("/api/v1/me", headers=first_headers).status_code == 200
    rotated = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200
    pair = rotated.get_json()
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200

    logout = client.post("/api/v1/auth/logout", headers=headers)
    assert logout.status_code == 204 and logout.get_data() == b""
    # Every access token of the session is refused, the older one too, and so is its refresh.
    _refused(client.get("/api/v1/me", headers=headers), "session_ended")
    _refused(client.get("/api/v1/me", headers=first_headers), "session_ended")
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    _refused(refreshed, "session_ended")
    # Logging in again starts a new session.
    again = _login(client, rep.email).get_json()
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {again['access_token']}"})
    assert me.status_code == 200


def test_other_sessions_survive_a_logout(client: Any, rep: Any) -> None:
    phone = _login(client, rep.email).get_json()
    tablet = _login(client, rep.email).get_json()
    phone_headers = {"Authorization": f"Bearer {phone['access_token']}"}
    assert client.post("/api/v1/auth/logout", headers=phone_headers).status_code == 204
    _refused(client.get("/api/v1/me", headers=phone_headers), "session_ended")
    tablet_headers = {"Authorization": f"Bearer {tablet['access_token']}"}
    assert client.get("/api/v1/me", headers=tablet_headers).status_code == 200
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": tablet["refresh_token"]})
    assert refreshed.status_code == 200


def test_expired_and_forged_access_tokens(client: Any, rep: Any) -> None:
    token = _login(client, rep.email).get_json()["access_token"]
    claims = jwt.decode(token, SECRET_KEY, algorithms=["HS256"], audience="fieldcast-api")
    claims["exp"] = claims["iat"] - int(timedelta(minutes=1).total_seconds())
    expired = jwt.encode(claims, SECRET_KEY, algorithm="HS256")
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.get_json()["code"] == "token_expired"
    assert "WWW-Authenticate" in response.headers

    forged = jwt.encode(
        {**claims, "exp": claims["iat"] + 600}, "another-key" * 4, algorithm="HS256"
    )
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert response.get_json()["code"] == "invalid_token"


def test_a_token_used_while_valid_is_refused_once_it_expires(
    client: Any, rep: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = _login(client, rep.email).get_json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    exp = jwt.decode(token, SECRET_KEY, algorithms=["HS256"], audience="fieldcast-api")["exp"]

    class Later:
        @staticmethod
        def time() -> float:
            return float(exp)

    # (Its checked claims are remembered; its expiry is checked on every request still.)
    monkeypatch.setattr("fieldcast.accounts.tokens.time", Later)
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.get_json()["code"] == "token_expired"


def test_missing_or_malformed_authorization(client: Any) -> None:
    for header in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
        response = client.get("/api/v1/me", headers=header)
        assert response.status_code == 401
        assert response.get_json()["code"] == "authentication_required"


def test_login_validation_errors_name_the_fields(client: Any) -> None:
    response = client.post("/api/v1/auth/token", json={"email": "not-an-email"})
    assert response.status_code == 422
    body = response.get_json()
    assert body["code"] == "validation_failed"
    assert set(body["errors"]) == {"email", "password"}


def test_non_json_and_oversized_bodies_are_problems_not_500s(client: Any) -> None:
    response = client.post("/api/v1/auth/token", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "bad_request"
    assert "json" in response.get_json()["errors"]
    huge = client.post(
        "/api/v1/auth/token",
        data="x" * (2 * 1024 * 1024),
        content_type="application/json",
    )
    assert huge.status_code == 413
    assert huge.get_json()["code"] == "request_too_large"
