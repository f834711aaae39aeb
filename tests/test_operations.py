"""Health, readiness, metrics, request ids and logs: what an operator relies on."""

from __future__ import annotations

import json
import logging
from typing import Any

from fieldcast.observability import ContextFilter, JsonFormatter, request_id_var


def test_healthz(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_checks_database_redis_and_storage(client: Any) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready"
    assert {name for name, check in body["checks"].items() if check["ok"]} == {
        "database",
        "redis",
        "storage",
    }


def test_readyz_reports_an_unreachable_redis(app: Any, client: Any) -> None:
    from redis import Redis

    from api.runtime import EXTENSION_KEY

    app.extensions[EXTENSION_KEY].redis = Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.2
    )
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True


def test_metrics_count_requests_by_route(client: Any) -> None:
    client.get("/healthz")
    client.get("/api/v1/me")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'fieldcast_http_requests_total{method="GET",route="/api/v1/me",status="401"}' in text
    assert "fieldcast_queue_jobs" in text
    assert 'fieldcast_outbox_jobs{status="pending"}' in text


def test_request_id_is_echoed_or_generated(client: Any) -> None:
    given = client.get("/healthz", headers={"X-Request-ID": "phone-retry-1234"})
    assert given.headers["X-Request-ID"] == "phone-retry-1234"
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert len(generated.headers["X-Request-ID"]) == 32
    problem = client.get("/api/v1/me", headers={"X-Request-ID": "trace-abcdef12"})
    assert problem.get_json()["request_id"] == "trace-abcdef12"


def test_unknown_route_and_method_are_problems(client: Any) -> None:
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.mimetype == "application/problem+json"
    wrong_method = client.delete("/api/v1/auth/token")
    assert wrong_method.status_code == 405
    assert wrong_method.get_json()["code"] == "method_not_allowed"


def test_docs_are_served_with_local_assets(client: Any) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert b"/docs/static/swagger-ui-bundle.js" in page.data
    assert client.get("/docs/static/swagger-ui-bundle.js").status_code == 200


def test_json_log_lines_carry_the_request_id() -> None:
    record = logging.LogRecord(
        "fieldcast.test", logging.INFO, __file__, 1, "hello %s", ("x",), None
    )
    token = request_id_var.set("req-123456")
    try:
        ContextFilter().filter(record)
    finally:
        request_id_var.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "hello x"
    assert line["request_id"] == "req-123456"
    assert line["level"] == "info"


def test_database_errors_never_carry_the_values_bound_to_the_statement(database_url: str) -> None:
    """What a statement was given (an email, a token hash) must not reach the logs through an
    error's message, which the outage and internal-error handlers log."""
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from fieldcast.db import Database

    database = Database(database_url)
    try:
        with pytest.raises(DBAPIError) as caught, database.engine.connect() as connection:
            connection.execute(
                text("SELECT CAST(:value AS text), 1 / 0"), {"value": "ada@secret.test"}
            )
    finally:
        database.dispose()
    assert "ada@secret.test" not in str(caught.value)
    assert "division by zero" in str(caught.value)
