"""Structured logs: one JSON object per line, with the request id or job id in every line."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _current_job_id() -> str | None:
    try:
        from rq import get_current_job
    except ImportError:  # pragma: no cover - rq is a dependency
        return None
    job = get_current_job()
    return job.id if job is not None else None


class ContextFilter(logging.Filter):
    """Attach the request id (API) or the RQ job id (workers) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        if not hasattr(record, "job_id"):
            record.job_id = _current_job_id()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("request_id", "job_id"):
            value = getattr(record, key, None)
            if value:
                entry[key] = value
        for key, value in vars(record).items():
            if key not in _RESERVED and key not in entry and key not in {"request_id", "job_id"}:
                entry[key] = (
                    value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
                )
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        ids = " ".join(
            f"{key}={getattr(record, key)}"
            for key in ("request_id", "job_id")
            if getattr(record, key, None)
        )
        return f"{base} [{ids}]" if ids else base


def configure_logging(level: str = "INFO", *, json_lines: bool = True) -> None:
    """Route every logger through one handler on stderr. Safe to call more than once."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_fieldcast", False):
            root.removeHandler(existing)
    handler._fieldcast = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # HTTP client libraries log request paths at DEBUG, and some paths are credentials (a Slack
    # webhook's, a presigned URL's signature): they stay quiet even when we debug.
    for name in ("urllib3", "botocore", "boto3", "s3transfer", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(logging.getLevelName(level), logging.INFO))
    # RQ installs its own handler on the "rq.worker" logger; let records reach ours instead.
    for name in ("rq.worker", "rq.scheduler", "rq"):
        rq_logger = logging.getLogger(name)
        rq_logger.handlers.clear()
        rq_logger.propagate = True
