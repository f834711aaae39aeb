"""Text input the database cannot store answers 422 naming the field, never 500: NUL and lone
surrogates anywhere (body, query, nested objects, lists, headers kept as data, path parts), and
strings longer than the column they land in. Every string input of every schema carries the
limit of its column, so a new field without one fails here."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from typing import Any

import marshmallow as ma
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.fields import String, column_limit
from fieldcast.models.accounts import AuthSession
from fieldcast.models.videos import Video
from fieldcast.videos import playback
from tests import factories
from tests.conftest import SECRET_KEY

PROBLEM_JSON = "application/problem+json"
NUL = "\\u0000"  # as JSON spells it
SURROGATE = "\\ud800"


def _send(client: FlaskClient, method: str, path: str, raw_json: str, headers: Any) -> Any:
    return client.open(
        path, method=method, data=raw_json, content_type="application/json", headers=headers
    )


def _assert_field_error(response: Any, field: str) -> None:
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    body = response.get_json()
    assert body["code"] == "validation_failed"
    assert field in body["errors"], body


@pytest.fixture
def video_id(client: FlaskClient, rep: Any, auth: Any) -> str:
    response = client.post("/api/v1/videos", json={"title": "Pricing"}, headers=auth(rep))
    assert response.status_code == 201
    return str(response.get_json()["id"])


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "lone-surrogate"])
@pytest.mark.parametrize(
    ("method", "path", "template", "field"),
    [
        ("POST", "/api/v1/videos", '{"title": "a%sb"}', "title"),
        ("PATCH", "/api/v1/videos/{video}", '{"description": "a%sb"}', "description"),
        (
            "POST",
            "/api/v1/videos",
            '{"title": "t", "deal_attributes": {"stage": "n%se"}}',
            "deal_attributes",
        ),
        (
            "POST",
            "/api/v1/videos",
            '{"title": "t", "deal_attributes": {"st%sage": "negotiation"}}',
            "deal_attributes",
        ),
        ("POST", "/api/v1/teams", '{"name": "Sa%sles"}', "name"),
        ("POST", "/api/v1/distribution-lists", '{"name": "L", "description": "%s"}', "description"),
        ("POST", "/api/v1/devices", '{"token": "t%s", "platform": "android"}', "token"),
        (
            "PUT",
            "/api/v1/me/notification-preferences",
            '{"muted_types": ["video.%s"], "quiet_hours": null}',
            "muted_types",
        ),
        ("POST", "/api/v1/videos/{video}/shares", '{"message": "hi %s"}', "message"),
        ("POST", "/api/v1/auth/token", '{"email": "a@b.co", "password": "p%s"}', "password"),
    ],
)
def test_text_the_database_refuses_is_a_field_error(
    client: FlaskClient,
    admin: Any,
    auth: Any,
    method: str,
    path: str,
    template: str,
    field: str,
    bad: str,
) -> None:
    headers = auth(admin)
    created = client.post("/api/v1/videos", json={"title": "Pricing"}, headers=headers)
    path = path.format(video=created.get_json()["id"])
    _assert_field_error(_send(client, method, path, template % bad, headers), field)


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/users?q=ab%00c", "q"),
        ("/api/v1/videos?cursor=%00", "cursor"),
    ],
)
def test_text_the_database_refuses_in_the_query_is_a_field_error(
    client: FlaskClient, rep: Any, auth: Any, path: str, field: str
) -> None:
    _assert_field_error(client.get(path, headers=auth(rep)), field)


@pytest.mark.parametrize(
    ("path", "position"),
    [
        ("/api/v1/users", ["a\x00"]),  # ordered by handle
        ("/api/v1/teams", ["a\x00", "01a232b6-aa31-759d-8225-362b27524a96"]),  # by name, id
    ],
)
def test_a_cursor_that_decodes_to_nul_is_refused(
    client: FlaskClient, admin: Any, auth: Any, path: str, position: list[str]
) -> None:
    forged = base64.urlsafe_b64encode(json.dumps(position).encode()).decode()
    response = client.get(f"{path}?cursor={forged}", headers=auth(admin))
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    assert response.get_json()["code"] == "invalid_cursor"
    assert "cursor" in response.get_json()["errors"], response.get_json()


def test_a_locale_longer_than_its_column_is_a_field_error(
    client: FlaskClient, rep: Any, auth: Any
) -> None:
    locale = "en" + "-abcdefgh" * 4  # matches the pattern, 38 characters
    response = client.post(
        "/api/v1/devices",
        json={"token": "fcm-token", "platform": "android", "locale": locale},
        headers=auth(rep),
    )
    _assert_field_error(response, "locale")


def test_a_title_longer_than_its_column_is_a_field_error(
    client: FlaskClient, rep: Any, auth: Any
) -> None:
    response = client.post("/api/v1/videos", json={"title": "x" * 201}, headers=auth(rep))
    _assert_field_error(response, "title")


def test_a_tus_file_name_with_nul_is_refused(
    client: FlaskClient, rep: Any, auth: Any, video_id: str
) -> None:
    def b64(value: str) -> str:
        return base64.b64encode(value.encode()).decode()

    name = "clip\x00.mp4"
    response = client.post(
        "/api/v1/uploads",
        headers={
            **auth(rep),
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "100",
            "Upload-Metadata": f"video_id {b64(video_id)},filename {b64(name)}",
        },
    )
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    assert response.get_json()["code"] == "invalid_upload_metadata"


def test_a_user_agent_with_nul_still_logs_in_and_is_stored_clean(
    client: FlaskClient, rep: Any, session: Session
) -> None:
    response = client.post(
        "/api/v1/auth/token",
        json={"email": rep.email, "password": factories.PASSWORD},
        headers={"User-Agent": "Fieldcast/1.0\x00 iOS" + "x" * 300},
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    stored = session.scalars(select(AuthSession).where(AuthSession.user_id == rep.id)).one()
    assert stored.user_agent.startswith("Fieldcast/1.0 iOS")
    assert "\x00" not in stored.user_agent
    assert len(stored.user_agent) <= column_limit(AuthSession.user_agent)


def test_an_attachment_file_name_with_nul_is_stored_clean(
    client: FlaskClient, rep: Any, auth: Any, video_id: str
) -> None:
    response = client.post(
        f"/api/v1/videos/{video_id}/attachments/files",
        data={"file": (io.BytesIO(b"call notes\n"), "no\x00tes.txt", "text/plain")},
        headers=auth(rep),
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["filename"] == "notes.txt"


@pytest.mark.parametrize("kind", ["json", "multipart", "tus"])
def test_a_malformed_idempotency_key_is_refused_on_every_post(
    client: FlaskClient, rep: Any, auth: Any, video_id: str, kind: str
) -> None:
    headers = {**auth(rep), "Idempotency-Key": "k" * 300}
    if kind == "json":
        response = client.post("/api/v1/videos", json={"title": "Pricing"}, headers=headers)
    elif kind == "multipart":
        response = client.post(
            f"/api/v1/videos/{video_id}/attachments/files",
            data={"file": (io.BytesIO(b"call notes\n"), "notes.txt", "text/plain")},
            headers=headers,
        )
    else:
        metadata = "video_id " + base64.b64encode(video_id.encode()).decode()
        response = client.post(
            "/api/v1/uploads",
            headers={
                **headers,
                "Tus-Resumable": "1.0.0",
                "Upload-Length": "100",
                "Upload-Metadata": metadata,
            },
        )
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.get_json()["code"] == "invalid_idempotency_key"
    assert "Idempotency-Key" in response.get_json()["errors"]


def test_a_signed_playlist_path_with_nul_is_not_found(
    client: FlaskClient, session: Session, rep: Any
) -> None:
    video = Video(org_id=rep.org_id, owner_id=rep.id, title="Pricing objection")
    session.add(video)
    session.flush()
    path = playback.playlist_path(video.id, "hls\x00720p")
    grant = playback.Grant.for_viewer(video, rep.id, 60)
    response = client.get(playback.granted_path(SECRET_KEY, path, grant))
    assert response.status_code == 404, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON


# -- every string input is bounded ----------------------------------------------------------------


def _argument_schemas(app: Flask) -> Iterator[ma.Schema]:
    """The schema of every input of every operation, and the schemas nested in them."""
    pending: list[ma.Schema] = []
    for view in app.view_functions.values():
        view_class = getattr(view, "view_class", None)
        handlers = (
            [getattr(view_class, m.lower()) for m in view_class.methods or ()]
            if view_class
            else [view]
        )
        for handler in handlers:
            arguments = getattr(handler, "_apidoc", {}).get("arguments", {})
            pending.extend(p["schema"] for p in arguments.get("parameters", []))
    seen: set[type[ma.Schema]] = set()
    while pending:
        schema = pending.pop()
        schema = schema() if isinstance(schema, type) else schema
        if type(schema) in seen:
            continue
        seen.add(type(schema))
        yield schema
        for field in schema.fields.values():
            inner = field.inner if isinstance(field, ma.fields.List) else field
            if isinstance(inner, ma.fields.Nested) and not inner.dump_only:
                pending.append(inner.schema)


def _string_inputs(field: ma.fields.Field, name: str) -> Iterator[tuple[str, ma.fields.Field]]:
    if field.dump_only:
        return
    if isinstance(field, ma.fields.String):
        yield name, field
    elif isinstance(field, ma.fields.List):
        yield from _string_inputs(field.inner, f"{name}[]")
    elif isinstance(field, ma.fields.Dict):
        if field.key_field is not None:
            yield from _string_inputs(field.key_field, f"{name}.keys")
        if field.value_field is not None:
            yield from _string_inputs(field.value_field, f"{name}.values")


# String inputs that are never stored as they come (compared, hashed, parsed or cleaned first);
# every other string input names its column, and its limit is that column's.
NOT_STORED = {
    # A search's filters are kept as JSON by a saved search, within its body's limits.
    "FiltersSchema.attr[]",
    "FiltersSchema.attr_match",
    "FiltersSchema.attr_time",
    "FiltersSchema.question",
    "SearchArgsSchema.attr[]",
    "SearchArgsSchema.attr_match",
    "SearchArgsSchema.attr_time",
    "SearchArgsSchema.question",
    "SearchPageArgsSchema.attr[]",
    "SearchPageArgsSchema.attr_match",
    "SearchPageArgsSchema.attr_time",
    "SearchPageArgsSchema.question",
    "SearchPageArgsSchema.cursor",
    "PageArgsSchema.cursor",
    "UserListArgsSchema.cursor",
    "TeamListArgsSchema.cursor",
    "InboxArgsSchema.cursor",
    "InboxArgsSchema.updated_since",
    "SyncPageArgsSchema.cursor",
    "SyncPageArgsSchema.updated_since",
    "VideoListArgsSchema.cursor",
    "VideoListArgsSchema.updated_since",
    "VideoListArgsSchema.deal[]",
    "RecipientArgsSchema.cursor",
    "UserListArgsSchema.q",
    "TokenRequestSchema.password",
    "RefreshRequestSchema.refresh_token",
    "ReceiptSchema.token",
    "ReceiptSchema.receipt",
    "UserCreateSchema.password",
    "UserUpdateSchema.password",
    "CompletedPartSchema.etag",
    "InvitationListArgsSchema.cursor",
    "ReportListArgsSchema.cursor",
    "AuditLogArgsSchema.cursor",
    "AcceptSchema.token",
    "PreviewRequestSchema.token",
    "AcceptSchema.password",
    "ResetSchema.token",
    "ResetSchema.password",
    "AccountDeletionSchema.password",
    "AttachmentCreateSchema.kind",
    "VideoSchema.deal_attributes.keys",
    "VideoUpdateSchema.deal_attributes.keys",
    # Stored inside JSONB (a deal's attributes, a catalogue's choices and bands), bounded by
    # the catalogue's own limits (fieldcast.deals.catalogue).
    "DealWriteSchema.attributes.keys",
    "BulkDealSchema.attributes.keys",
    "AttributeSchema.choices[]",
    "BandSchema.label",
    "DealListArgsSchema.cursor",
    "VideoListArgsSchema.question_state",
    "CommentListArgsSchema.cursor",
    "CommentListArgsSchema.updated_since",
    "CommentListArgsSchema.order",
    "MentionableArgsSchema.q",
    "ReactionCreateSchema.emoji",
    "CollectionArgsSchema.cursor",
    "AssigneePageArgsSchema.cursor",
    "RequestListArgsSchema.cursor",
    "LearningArgsSchema.cursor",
    "LearningArgsSchema.state",
    "TeamLearningArgsSchema.state",
    "AssigneePageArgsSchema.state",
    # `name:value` of a deal attribute, looked up in the catalogue (a top list's board).
    "TopArgsSchema.attribute",
    # A place on a board (an offset cursor), never stored.
    "BoardArgsSchema.cursor",
    # Viewer insights' pages and a learning metric's trend step (one of three words).
    "ViewerArgsSchema.cursor",
    "ReasonTrendArgsSchema.bucket",
    # The BI export's signed cursor, checked and decoded, never stored.
    "ExportArgsSchema.cursor",
    # Sign-in with the identity provider: the app's PKCE values and state, the provider's
    # answer and the sign-in code, all compared or passed on, never stored as sent.
    "AuthorizeArgsSchema.redirect_uri",
    "AuthorizeArgsSchema.code_challenge",
    "AuthorizeArgsSchema.code_challenge_method",
    "AuthorizeArgsSchema.state",
    "CallbackArgsSchema.state",
    "CallbackArgsSchema.code",
    "CallbackArgsSchema.error",
    "CallbackArgsSchema.error_description",
    "RedeemSchema.code",
    "RedeemSchema.code_verifier",
    # Items of an array column of 253-character domains, lowercased first.
    "IdentityProviderSchema.allowed_domains[]",
}


def test_every_string_input_carries_the_limit_of_its_column(app: Flask) -> None:
    checked = 0
    problems: list[str] = []
    for schema in _argument_schemas(app):
        for field_name, declared in schema.fields.items():
            for name, field in _string_inputs(declared, f"{type(schema).__name__}.{field_name}"):
                checked += 1
                if not isinstance(field, String) or field.max_length is None:
                    problems.append(f"{name}: no length limit (use api.fields.String)")
                    continue
                lengths = [v for v in field.validators if isinstance(v, ma.validate.Length)]
                if not lengths or lengths[-1].max != field.max_length:
                    problems.append(f"{name}: the Length validator does not enforce max_length")
                if field.column is not None and field.max_length > column_limit(field.column):
                    problems.append(f"{name}: longer than its column {field.column}")
                if field.column is None and name not in NOT_STORED:
                    problems.append(f"{name}: name the column it is stored in")
    assert checked > 40
    assert not problems, "\n".join(problems)


def test_the_document_shows_every_string_input_limit(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    schemas = spec["components"]["schemas"]
    missing: list[str] = []

    def walk(schema: dict[str, Any], where: str, seen: frozenset[str]) -> None:
        ref = schema.get("$ref")
        if ref:
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                walk(schemas[name], name, seen | {name})
            return
        if schema.get("readOnly"):
            return
        kind = schema.get("type")
        bare = kind == "string" and "enum" not in schema and "format" not in schema
        if bare and "maxLength" not in schema:
            missing.append(where)
        for key, sub in (schema.get("properties") or {}).items():
            walk(sub, f"{where}.{key}", seen)
        for key in ("items", "additionalProperties"):
            if isinstance(schema.get(key), dict):
                walk(schema[key], f"{where}.{key}", seen)

    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if "$ref" in parameter:
                    continue  # shared parameters are checked where they are defined
                walk(parameter["schema"], f"{method} {path} {parameter['name']}", frozenset())
            for media in (operation.get("requestBody") or {}).get("content", {}).values():
                walk(media["schema"], f"{method} {path} body", frozenset())
    assert not missing, json.dumps(missing, indent=1)
