"""Operations endpoints: liveness, readiness and Prometheus metrics (outside the OpenAPI)."""

from __future__ import annotations

import hmac
import logging
import os
import time
from typing import Any

from flask import Blueprint, Response, jsonify, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import text

from api.problems import problem_response
from api.runtime import context
from fieldcast.errors import ErrorCode

log = logging.getLogger(__name__)

blp = Blueprint("health", __name__)

REQUESTS = Counter(
    "fieldcast_http_requests_total",
    "HTTP requests by route template, method and status",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "fieldcast_http_request_duration_seconds",
    "HTTP request latency by route template",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def observe(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)


@blp.get("/healthz")
def healthz() -> Any:
    """The process is up and serving."""
    return jsonify(status="ok")


def _timed(check: Any) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000, 1)}


@blp.get("/readyz")
def readyz() -> Any:
    """PostgreSQL, Redis and storage are reachable: the process can take traffic."""
    ctx = context()

    def database() -> None:
        with ctx.db.session() as session:
            session.execute(text("SELECT 1"))

    checks = {
        "database": _timed(database),
        "redis": _timed(ctx.redis.ping),
        "storage": _timed(ctx.storage.check),
    }
    ready = all(c["ok"] for c in checks.values())
    response = jsonify(status="ready" if ready else "unavailable", checks=checks)
    response.status_code = 200 if ready else 503
    return response


def _queue_gauges(registry: CollectorRegistry) -> None:
    """Queue depth and outbox backlog, read at scrape time."""
    from prometheus_client import Gauge

    from fieldcast.outbox.services import backlog
    from workers.queues import QUEUE_NAMES, get_queue

    ctx = context()
    queued = Gauge(
        "fieldcast_queue_jobs", "Jobs waiting per RQ queue", ["queue"], registry=registry
    )
    for name in QUEUE_NAMES:
        try:
            queued.labels(name).set(get_queue(ctx.redis, name).count)
        except Exception:
            queued.labels(name).set(float("nan"))
    outbox = Gauge("fieldcast_outbox_jobs", "Unfinished outbox jobs", ["status"], registry=registry)
    try:
        with ctx.db.session() as session:
            counts = backlog(session)
        for status, count in counts.items():
            outbox.labels(status.value).set(count)
    except Exception:
        log.warning("could not read the outbox backlog for metrics", exc_info=True)


@blp.get("/metrics")
def metrics() -> Response:
    token = context().settings.metrics_token
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return problem_response(
                401, ErrorCode.AUTHENTICATION_REQUIRED, detail="Metrics need the metrics token."
            )
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Under gunicorn each worker process counts on its own; sum them at scrape time.
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        from prometheus_client import REGISTRY

        body = generate_latest(REGISTRY)
    extra = CollectorRegistry()
    _queue_gauges(extra)
    return Response(body + generate_latest(extra), mimetype=CONTENT_TYPE_LATEST)
