"""Devices as the apps register them: idempotent, moving with the token, removed at logout."""

from __future__ import annotations

import dataclasses
from typing import Any

from flask.testing import FlaskClient

from api.app import create_app
from fieldcast.context import AppContext
from fieldcast.devices.services import MAX_DEVICES_PER_USER
from fieldcast.settings import Settings
from tests import factories


def _register(client: FlaskClient, headers: dict[str, str], token: str, **body: Any) -> Any:
    return client.post(
        "/api/v1/devices", json={"token": token, "platform": "ios", **body}, headers=headers
    )


def _tokens(client: FlaskClient, headers: dict[str, str]) -> list[str]:
    response = client.get("/api/v1/devices", headers=headers)
    assert response.status_code == 200
    return [item["token"] for item in response.get_json()["items"]]


def test_registering_again_updates_the_same_device(
    client: FlaskClient, rep: Any, auth: Any
) -> None:
    headers = auth(rep)
    first = _register(client, headers, "tok-1", app_version="1.0.0", locale="en-GB")
    assert first.status_code == 201
    again = _register(client, headers, "tok-1", app_version="1.1.0", locale="de-DE")
    assert again.status_code == 200
    assert again.get_json()["id"] == first.get_json()["id"]
    assert (again.get_json()["app_version"], again.get_json()["locale"]) == ("1.1.0", "de-DE")
    assert _register(client, headers, "tok-2", platform="android").status_code == 201
    assert sorted(_tokens(client, headers)) == ["tok-1", "tok-2"]


def test_a_token_moves_to_whoever_registers_it_last(
    client: FlaskClient, org: Any, rep: Any, outsider: Any, auth: Any
) -> None:
    colleague = factories.UserFactory(org=org)
    assert _register(client, auth(rep), "shared-phone").status_code == 201
    moved = _register(client, auth(colleague), "shared-phone")
    assert moved.status_code == 200
    assert _tokens(client, auth(rep)) == []
    assert _tokens(client, auth(colleague)) == ["shared-phone"]
    # Even into another organisation: the previous user must get no more pushes on it.
    assert _register(client, auth(outsider), "shared-phone").status_code == 200
    assert _tokens(client, auth(colleague)) == []
    assert _tokens(client, auth(outsider)) == ["shared-phone"]


def test_removing_a_device_at_logout(client: FlaskClient, org: Any, rep: Any, auth: Any) -> None:
    device = _register(client, auth(rep), "tok-logout").get_json()
    colleague = factories.UserFactory(org=org)
    assert client.delete(
        f"/api/v1/devices/{device['id']}", headers=auth(colleague)
    ).status_code == (404)
    assert client.delete(f"/api/v1/devices/{device['id']}", headers=auth(rep)).status_code == 204
    assert _tokens(client, auth(rep)) == []
    assert client.delete(f"/api/v1/devices/{device['id']}", headers=auth(rep)).status_code == 404


def test_bad_registrations_name_the_field(client: FlaskClient, rep: Any, auth: Any) -> None:
    headers = auth(rep)
    cases = [
        ({"token": "", "platform": "ios"}, "token"),
        ({"token": "has space", "platform": "ios"}, "token"),
        ({"token": "x" * 1025, "platform": "ios"}, "token"),
        ({"token": "ok", "platform": "blackberry"}, "platform"),
        ({"token": "ok", "platform": "ios", "locale": "not a locale"}, "locale"),
        ({"platform": "ios"}, "token"),
    ]
    for body, field in cases:
        response = client.post("/api/v1/devices", json=body, headers=headers)
        assert response.status_code == 422, body
        problem = response.get_json()
        assert problem["code"] == "validation_failed", (body, problem)
        assert field in problem["errors"], (body, problem)
    assert _tokens(client, headers) == []


def test_a_user_keeps_at_most_a_bounded_number_of_devices(
    client: FlaskClient, rep: Any, auth: Any
) -> None:
    headers = auth(rep)
    for n in range(MAX_DEVICES_PER_USER + 3):
        assert _register(client, headers, f"install-{n}").status_code == 201
    kept = _tokens(client, headers)
    assert len(kept) == MAX_DEVICES_PER_USER
    # The most recent installs are the ones kept.
    assert f"install-{MAX_DEVICES_PER_USER + 2}" in kept
    assert "install-0" not in kept


def test_a_browser_learns_how_to_get_its_push_token(
    client: FlaskClient, settings: Settings, context: AppContext, rep: Any, auth: Any
) -> None:
    headers = auth(rep)
    off = client.get("/api/v1/devices/web-push", headers=headers)
    assert off.status_code == 200
    assert off.get_json() == {"available": False, "firebase": None, "vapid_key": None}
    assert client.get("/api/v1/devices/web-push").status_code == 401

    config = {
        "apiKey": "AIzaSyExample",
        "appId": "1:1234567890:web:abcdef",
        "messagingSenderId": "1234567890",
        "projectId": "acme-app",
        "vapidKey": "BExampleVapidKey",
    }
    configured = dataclasses.replace(settings, fcm_web_config=config)
    app = create_app(configured, context=dataclasses.replace(context, settings=configured))
    on = app.test_client().get("/api/v1/devices/web-push", headers=headers)
    assert on.get_json() == {
        "available": True,
        "firebase": {key: value for key, value in config.items() if key != "vapidKey"},
        "vapid_key": "BExampleVapidKey",
    }
    # Only then may the page reach Firebase's token service.
    policy = app.test_client().get("/app/").headers["Content-Security-Policy"]
    assert "https://fcmregistrations.googleapis.com" in policy
    assert "googleapis" not in client.get("/app/").headers["Content-Security-Policy"]
