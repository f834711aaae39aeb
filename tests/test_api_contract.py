"""The OpenAPI document and the API agree on what a request must hold: what the API refuses,
the document calls invalid, so clients generated from it cannot send it."""

from __future__ import annotations

import re
import uuid
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_schema_validator import OAS30Validator

from api.app import API_BLUEPRINTS
from api.extensions import EMPTY_PATCH
from api.runtime import EXTENSION_KEY
from fieldcast.context import AppContext
from fieldcast.settings import Settings


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


def test_the_document_is_whole_however_many_read_it_first_at_once(
    app: Flask, spec: dict[str, Any]
) -> None:
    # An app documents its operations when its document is first read: readers that arrive
    # together each get all of it, the same as an app read alone.
    from api.app import create_app

    fresh = create_app(
        app.extensions[EXTENSION_KEY].settings, context=app.extensions[EXTENSION_KEY]
    )
    with ThreadPoolExecutor(4) as pool:
        read = list(
            pool.map(lambda _: fresh.test_client().get("/openapi.json").get_json(), range(8))
        )
    assert all(document == spec for document in read)
    assert len(spec["paths"]) > 80 and len(spec["tags"]) == len(API_BLUEPRINTS)


def test_no_nullable_object_is_documented_as_any_object(spec: dict[str, Any]) -> None:
    for node in _walk(spec):
        for option in node.get("anyOf", []):
            assert option != {"type": "object", "nullable": True}, node


def test_every_operation_has_its_own_operation_id(spec: dict[str, Any]) -> None:
    # Client generators name their methods after it (getVideoById), so it must exist, be
    # unique and read as a name.
    ids = [
        operation.get("operationId")
        for item in spec["paths"].values()
        for method, operation in item.items()
        if method in {"get", "put", "post", "patch", "delete", "head", "options"}
    ]
    assert all(isinstance(i, str) and re.fullmatch(r"[a-z]+[A-Za-z0-9]*", i) for i in ids), ids
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


def test_every_schema_has_a_name_of_its_own(settings: Settings, context: AppContext) -> None:
    # Two schemas of one name get a made-up one ("Report1"), or one's properties under the
    # other's name (a nested `Upcoming` inside `UpcomingSchema`): a client generator's class
    # names would then change with the order blueprints are registered in. The document is
    # built as the blueprints register, so the app is made here, under the filter.
    from api.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        app = create_app(settings, context=context)
        assert app.test_client().get("/openapi.json").status_code == 200


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_no_two_schemas_of_the_api_resolve_to_one_name(app: Flask) -> None:
    """The document names a schema class after itself without `Schema` (`UpcomingSchema` is
    `Upcoming`): two classes of the API resolving to one name would share a component, one's
    properties standing for the other's."""
    import marshmallow as ma

    names: dict[str, list[str]] = {}
    for cls in set(_subclasses(ma.Schema)):
        if cls.__module__.split(".")[0] != "api":
            continue
        name = cls.__name__.removesuffix("Schema") or cls.__name__
        names.setdefault(name, []).append(f"{cls.__module__}.{cls.__qualname__}")
    assert len(names) > 100
    assert not {name: found for name, found in names.items() if len(found) > 1}


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


# A value of another JSON type for each documented scalar type: what marshmallow would read
# leniently (0 as false, 2.5 as 2, "3" as 3) and a JSON body must not mean.
_WRONG_JSON_TYPE = {"boolean": [0, "true"], "integer": [2.5, "3", True], "number": ["3.5", False]}


def _json_body_scalars(spec: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(method, path, property, type) for every scalar property of every JSON request body."""
    found = []
    for path, item in spec["paths"].items():
        for method in {"post", "put", "patch"} & item.keys():
            content = item[method].get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            ref = content["application/json"]["schema"].get("$ref", "")
            schema = spec["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
            for name, prop in schema.get("properties", {}).items():
                if prop.get("type") in _WRONG_JSON_TYPE and not prop.get("readOnly"):
                    found.append((method, path, name, prop["type"]))
    return found


def test_every_json_body_refuses_a_value_of_another_json_type(
    spec: dict[str, Any], client: FlaskClient, admin: Any, auth: Any
) -> None:
    cases = _json_body_scalars(spec)
    # Booleans (notify, share_with_mentioned, ...), integers (at_ms, ...), numbers (amount).
    assert {kind for *_, kind in cases} == set(_WRONG_JSON_TYPE), cases
    headers = {**auth(admin), "Tus-Resumable": "1.0.0"}
    for method, path, name, kind in cases:
        url = re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)
        for wrong in _WRONG_JSON_TYPE[kind]:
            response = client.open(url, method=method.upper(), json={name: wrong}, headers=headers)
            assert response.status_code == 422, (method, path, name, wrong, response.get_json())
            assert name in response.get_json()["errors"], (method, path, name, wrong)


def test_a_nested_value_of_another_json_type_is_refused_too(
    client: FlaskClient, rep: Any, auth: Any
) -> None:
    body = {"q": "pricing", "filters": {"max_duration_s": 2.5}}
    response = client.post("/api/v1/saved-searches", json=body, headers=auth(rep))
    assert response.status_code == 422
    assert response.get_json()["errors"] == {"filters": {"max_duration_s": ["Not an integer."]}}


# -- problem codes: one registry, published as an open list ------------------------------------

_SOURCE_DIRS = ("api", "fieldcast", "workers", "notifications")
# A code written as a string where a problem is made: `code="x"`, `code = "x"`,
# `problem_response(409, "x"`, and the (status, "x") pairs of tables such as api/server.py's.
_LITERAL_CODE = re.compile(
    r"""\bcode\s*(?::\s*\w+\s*)?=\s*["']([a-z_]+)["']"""
    r"""|(?:problem_response|problem_body|_tus_error)\(\s*\d{3},\s*["']([a-z_]+)["']"""
    r"""|^\s*\d{3},\s*["']([a-z_]+)["'],\s*$""",
    re.MULTILINE,
)
_REGISTERED_USE = re.compile(r"\bErrorCode\.([A-Z_]+)\b")


def _source() -> dict[str, str]:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    return {
        str(path.relative_to(root)): path.read_text()
        for directory in _SOURCE_DIRS
        for path in sorted((root / directory).rglob("*.py"))
    }


def _domain_error_classes() -> list[type[Any]]:
    import importlib
    import pkgutil

    import fieldcast
    from fieldcast.errors import DomainError

    for package in ("api", "fieldcast"):
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, f"{package}."):
            if info.name not in {"fieldcast.__main__"}:
                importlib.import_module(info.name)
    assert fieldcast
    found: list[type[Any]] = []
    pending: list[type[Any]] = [DomainError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_every_problem_code_is_raised_through_the_registry() -> None:
    from fieldcast.errors import ErrorCode

    literals = sorted(
        f"{path}: {next(g for g in match.groups() if g)}"
        for path, text in _source().items()
        for match in _LITERAL_CODE.finditer(text)
        if path != "fieldcast/errors.py"
    )
    assert literals == [], "use ErrorCode members, not strings, for problem codes"
    used = {name for text in _source().values() for name in _REGISTERED_USE.findall(text)}
    assert used, "the source names no ErrorCode at all: the scan is broken"
    assert used <= set(ErrorCode.__members__), used - set(ErrorCode.__members__)
    for cls in _domain_error_classes():
        assert isinstance(cls.code, ErrorCode), f"{cls.__qualname__}.code is not registered"


def test_every_registered_code_has_a_meaning_and_a_stable_spelling() -> None:
    from fieldcast.errors import ErrorCode

    for code in ErrorCode:
        assert re.fullmatch(r"[a-z][a-z_]*[a-z]", code.value), code
        assert code.name == code.value.upper(), code
        assert code.description and "\n" not in code.description, code


def test_the_document_lists_every_code_as_an_open_list(spec: dict[str, Any]) -> None:
    from fieldcast.errors import ErrorCode

    code = spec["components"]["schemas"]["Problem"]["properties"]["code"]
    # Not a closed enum: generated Swift and Kotlin clients reject enum values they do not know.
    assert "enum" not in code
    assert code["type"] == "string"
    assert code["x-known-values"] == [c.value for c in ErrorCode]
    assert "treat a code it does not know as its HTTP `status`" in code["description"]
    for known in ErrorCode:
        assert f"- `{known.value}`: {known.description}" in code["description"]
    enums = [node for node in _walk(spec["components"]["schemas"]["Problem"]) if "enum" in node]
    assert enums == []
