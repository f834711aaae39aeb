"""The API fuzzed from its own OpenAPI document (schemathesis): every operation, valid and invalid
input, against the app on the test PostgreSQL and Redis, signed in as an admin of an
organisation with a video, a team, a list, an attachment, a device, an API token, a share, a
webhook, an upload, an inbox item, a comment and a report of it, a deal and a saved search in
it.

No input may produce a server error, a status code the document does not list for the
operation, a content type it does not list, or a body or header that breaks its schema; and
input the document forbids must be refused.

Each operation is its own test with its own rolled-back transaction: nothing is left behind and
no operation sees what another one did. Path parameters name the organisation's real objects
three times out of four (so the operations act on something), random ids otherwise (404s).

No operation is excluded. `POST /auth/logout` and `DELETE /auth/session` end the session they
are called with, so they get a fresh session for every call; every other operation shares the
test's token. No check is relaxed.
"""

from __future__ import annotations

import base64
import os
import tempfile
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session

from fieldcast.models.conversation import Comment
from fieldcast.models.inbox import Notification
from fieldcast.settings import Settings
from tests.conftest import SECRET_KEY, bearer

pytestmark = pytest.mark.slow

# Enough to reach each operation's error paths, few enough for about two minutes on two cores.
MAX_EXAMPLES = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# Input the document forbids must be refused. 412 is a refusal too: tus answers it when
# `Tus-Resumable` is missing. (Server errors are `not_a_server_error`'s.)
REFUSALS = ["400", "401", "403", "404", "405", "406", "409", "412", "415", "422", "428", "429"]


def _document() -> dict[str, Any]:
    """The OpenAPI document, from an app on placeholder settings: building it connects nothing."""
    from api.app import create_app

    with tempfile.TemporaryDirectory(prefix="fieldcast-fuzz-spec-") as directory:
        placeholder = Settings.from_env(
            {
                "DATABASE_URL": "postgresql://unused@127.0.0.1:9/unused",
                "REDIS_URL": "redis://127.0.0.1:9/0",
                "SECRET_KEY": SECRET_KEY,
                "FIELDCAST_DATA_DIR": directory,
                "STORAGE_URL": f"file://{directory}/media",
                "LOG_LEVEL": "WARNING",
                "LOG_JSON": "false",
            }
        )
        document: dict[str, Any] = (
            create_app(placeholder).test_client().get("/openapi.json").get_json()
        )
    return document


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=schemathesis.Config.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}}
    ),
)


def _shard(value: str) -> tuple[int, int]:
    """FUZZ_SHARD=K/N: this process fuzzes the K-th of N shares of the operations (scripts/test
    runs the shares side by side: schemathesis's tests share one node id, so pytest-xdist cannot
    spread them)."""
    try:
        k, n = (int(part) for part in value.split("/"))
    except ValueError:
        raise pytest.UsageError(f"FUZZ_SHARD must be K/N, got {value!r}") from None
    if not 1 <= k <= n:
        raise pytest.UsageError(f"FUZZ_SHARD must be K/N with 1 <= K <= N, got {value!r}")
    return k, n


if os.environ.get("FUZZ_SHARD"):
    _K, _N = _shard(os.environ["FUZZ_SHARD"])
    _LABELS = sorted(
        f"{method.upper()} {path}"
        for path, item in DOCUMENT["paths"].items()
        for method in item
        if method in {"get", "put", "post", "delete", "patch", "head", "options"}
    )
    _MINE = set(_LABELS[_K - 1 :: _N])
    fuzzed = schema.include(lambda ctx: ctx.operation.label in _MINE)
else:
    fuzzed = schema


@dataclass
class World:
    app: Flask
    client: FlaskClient
    admin: Any
    headers: dict[str, str]
    ids: dict[str, str]


@pytest.fixture
def world(
    app: Flask, client: FlaskClient, session: Session, org: Any, admin: Any, rep: Any
) -> World:
    headers = bearer(client, admin)

    def made(path: str, body: dict[str, Any]) -> str:
        response = client.post(path, json=body, headers=headers)
        assert response.status_code in (200, 201), response.get_json()
        return str(response.get_json()["id"])

    team_id = made("/api/v1/teams", {"name": "Field sales"})
    client.put(f"/api/v1/teams/{team_id}/members/{rep.id}", json={}, headers=headers)
    video_id = made("/api/v1/videos", {"title": "Pricing objection", "description": "How"})
    ids = {
        "video_id": video_id,
        "team_id": team_id,
        "user_id": str(rep.id),
        "list_id": made(
            "/api/v1/distribution-lists", {"name": "Managers", "user_ids": [str(rep.id)]}
        ),
        "attachment_id": made(
            f"/api/v1/videos/{video_id}/attachments", {"kind": "note", "body": "Ask about budget"}
        ),
        "device_id": made("/api/v1/devices", {"token": "fcm-token-1", "platform": "android"}),
        "token_id": made("/api/v1/api-tokens", {"name": "BI export"}),
        "share_id": made(f"/api/v1/videos/{video_id}/shares", {"user_ids": [str(rep.id)]}),
        "webhook_id": made(
            f"/api/v1/teams/{team_id}/webhooks",
            {"kind": "slack", "url": "https://hooks.slack.com/services/T0/B0/abcdefghijklmnop"},
        ),
        "invitation_id": made("/api/v1/invitations", {"email": "invited@example.com"}),
        "saved_id": made("/api/v1/saved-searches", {"q": "pricing"}),
    }
    deal = client.put(
        "/api/v1/deals/by-source/salesforce/0061",
        json={"name": "Northwind", "owner_id": str(rep.id)},
        headers=headers,
    )
    assert deal.status_code == 201, deal.get_json()
    ids["deal_id"] = str(deal.get_json()["id"])
    upload = client.post(
        "/api/v1/uploads",
        headers={
            **headers,
            "Tus-Resumable": "1.0.0",
            "Upload-Length": "1000",
            "Upload-Metadata": "video_id " + base64.b64encode(video_id.encode()).decode(),
        },
    )
    assert upload.status_code == 201, upload.get_json()
    # The upload URL: /api/v1/uploads/{upload_id}/{capability}
    ids["upload_id"], ids["capability"] = upload.headers["Location"].rsplit("/", 2)[-2:]
    item = Notification(
        org_id=org.id,
        user_id=admin.id,
        type="video.playable",
        title="Ready to watch",
        body="",
        data={"video_id": video_id},
    )
    session.add(item)
    session.flush()
    ids["notification_id"] = str(item.id)
    comment = Comment(
        org_id=org.id, video_id=uuid.UUID(video_id), author_id=rep.id, body="Ask about budget"
    )
    session.add(comment)
    session.flush()
    ids["comment_id"] = str(comment.id)
    ids["report_id"] = made("/api/v1/reports", {"comment_id": ids["comment_id"], "reason": "spam"})
    return World(app, client, admin, headers, ids)


ENDS_ITS_SESSION = {("POST", "/api/v1/auth/logout"), ("DELETE", "/api/v1/auth/session")}


def _aim(case: Any, ids: dict[str, str]) -> None:
    """Point most generated path ids at real objects; keep a quarter random (404s)."""
    for name, value in (case.path_parameters or {}).items():
        real = ids.get(name)
        if real is None:
            continue
        try:
            random_id = uuid.UUID(str(value))
        except ValueError:
            continue  # not an id at all: the router answers that
        if random_id.int % 4:
            case.path_parameters[name] = real


@fuzzed.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_input_breaks_the_api(case: Any, world: World) -> None:
    _aim(case, world.ids)
    headers = dict(world.headers)
    if (case.operation.method.upper(), case.operation.path) in ENDS_ITS_SESSION:
        headers = bearer(world.client, world.admin)
    if schema.is_security_param_negated(case):
        headers = {}  # the case is about a missing token: send none
    case.call_and_validate(app=world.app, headers=headers, checks=CHECKS)
