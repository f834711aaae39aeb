"""The OpenAPI document and the API agree on what a request must hold: what the API refuses,
the document calls invalid, so clients generated from it cannot send it."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient
from openapi_schema_validator import OAS30Validator

from api.extensions import EMPTY_PATCH


@pytest.fixture
def spec(client: FlaskClient) -> dict[str, Any]:
    document: dict[str, Any] = client.get("/openapi.json").get_json()
    return document


def _validator(spec: dict[str, Any], name: str) -> OAS30Validator:
    return OAS30Validator(
        {"components": spec["components"], "allOf": [{"$ref": f"#/components/schemas/{name}"}]}
    )


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_no_nullable_object_is_documented_as_any_object(spec: dict[str, Any]) -> None:
    for node in _walk(spec):
        for option in node.get("anyOf", []):
            assert option != {"type": "object", "nullable": True}, node


def test_quiet_hours_need_start_and_end_in_the_document_as_in_the_api(
    spec: dict[str, Any], client: FlaskClient, rep: Any, auth: Any
) -> None:
    schema = _validator(spec, "NotificationPreferences")
    for quiet_hours in ({}, {"start": "22:00"}, {"end": "07:00"}):
        body: dict[str, Any] = {"muted_types": [], "quiet_hours": quiet_hours}
        assert not schema.is_valid(body), body
        refused = client.put("/api/v1/me/notification-preferences", json=body, headers=auth(rep))
        assert refused.status_code == 422, body
        problem = refused.get_json()
        assert problem["code"] == "validation_failed", problem
        assert "quiet_hours" in problem["errors"], problem
    for accepted_hours in (None, {"start": "22:00", "end": "07:00"}):
        body = {"muted_types": [], "quiet_hours": accepted_hours}
        assert schema.is_valid(body), body
        accepted = client.put("/api/v1/me/notification-preferences", json=body, headers=auth(rep))
        assert accepted.status_code == 200


def test_an_attachment_needs_the_field_of_its_kind_in_the_document_too(
    spec: dict[str, Any],
) -> None:
    schema = _validator(spec, "AttachmentCreate")
    assert schema.is_valid({"kind": "link", "url": "https://example.com"})
    assert schema.is_valid({"kind": "note", "body": "Ask about the renewal date."})
    for refused in (
        {"kind": "link"},
        {"kind": "note"},
        {"kind": "link", "body": "text"},
        {"kind": "note", "url": "https://example.com", "body": "text"},
    ):
        assert not schema.is_valid(refused), refused


def _json_patch_operations(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path, item in spec["paths"].items():
        operation = item.get("patch")
        content = (operation or {}).get("requestBody", {}).get("content", {})
        if "application/json" in content:
            found.append((path, content["application/json"]["schema"]))
    return found


def test_every_patch_refuses_a_body_that_names_no_field(
    spec: dict[str, Any], client: FlaskClient, admin: Any, auth: Any
) -> None:
    operations = _json_patch_operations(spec)
    # Users, the profile, teams, videos and distribution lists.
    assert len(operations) >= 5, operations
    headers = auth(admin)
    for path, schema in operations:
        name = schema["$ref"].rsplit("/", 1)[1]
        assert spec["components"]["schemas"][name]["minProperties"] == 1, path
        assert not _validator(spec, name).is_valid({}), path

        url = re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)
        response = client.patch(url, json={}, headers=headers)
        assert response.status_code == 422, (path, response.get_json())
        assert response.mimetype == "application/problem+json"
        problem = response.get_json()
        assert (problem["code"], problem["detail"]) == ("empty_patch", EMPTY_PATCH), path


def test_a_patch_that_names_a_field_still_changes_it(
    client: FlaskClient, rep: Any, auth: Any
) -> None:
    response = client.patch("/api/v1/me", json={"display_name": "Riley R."}, headers=auth(rep))
    assert response.status_code == 200
    assert response.get_json()["display_name"] == "Riley R."
