"""Reading the audit log (admins): pages newest first, and exports as CSV or NDJSON.

Entries are written by `fieldcast.audit.record` wherever a change happens; here they are only
read. An export streams in batches (a keyset walk down the `(org_id, id)` index, never one
huge query), holds at most `EXPORT_MAX_ROWS` entries (more matching is refused with
`export_too_large` before anything is sent: narrow it with `since` / `until`), and describes
the log as it was when the export began. Exporting is itself recorded.

CSV cells are neutralised against formula injection: a cell a spreadsheet would run as a
formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) is written with a
leading `'`, so it shows as the text it is.
"""

from __future__ import annotations

import csv
import enum
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from fieldcast import audit
from fieldcast.audit import AuditAction
from fieldcast.db import utcnow
from fieldcast.errors import ErrorCode, InvalidInput
from fieldcast.models.accounts import User
from fieldcast.models.moderation import AuditEntry
from fieldcast.policy import Principal, authorize, scoped

EXPORT_MAX_ROWS = 100_000
EXPORT_BATCH = 1000
COLUMNS = (
    "id",
    "created_at",
    "actor_id",
    "actor_name",
    "action",
    "object_type",
    "object_id",
    "details",
)
# What a spreadsheet reads as the start of a formula (OWASP's list).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class ExportFormat(enum.StrEnum):
    CSV = "csv"
    NDJSON = "ndjson"

    @property
    def media_type(self) -> str:
        return "text/csv" if self is ExportFormat.CSV else "application/x-ndjson"


@dataclass(frozen=True)
class AuditFilters:
    action: str | None = None
    actor_id: uuid.UUID | None = None
    object_id: uuid.UUID | None = None
    since: datetime | None = None  # from this moment on (included)
    until: datetime | None = None  # before this moment (excluded)

    def __post_init__(self) -> None:
        if self.since and self.until and self.since > self.until:
            raise InvalidInput(errors={"until": ["Must not be before `since`."]})

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.action:
            found.append(AuditEntry.action == self.action)
        if self.actor_id:
            found.append(AuditEntry.actor_id == self.actor_id)
        if self.object_id:
            found.append(AuditEntry.object_id == self.object_id)
        if self.since:
            found.append(AuditEntry.created_at >= self.since)
        if self.until:
            found.append(AuditEntry.created_at < self.until)
        return found

    def named(self) -> dict[str, Any]:
        """The filters given, for the export's own entry."""
        return {
            name: value
            for name, value in (
                ("action", self.action),
                ("actor_id", self.actor_id),
                ("object_id", self.object_id),
                ("since", self.since),
                ("until", self.until),
            )
            if value is not None
        }


def entries(principal: Principal, filters: AuditFilters) -> Select[Any]:
    """The organisation's entries matching the filters, for a page (admins)."""
    authorize(principal, "audit.read")
    return scoped(principal, AuditEntry).where(*filters.conditions())


@dataclass(frozen=True)
class Export:
    """An export ready to stream: its name, media type, size, and its text in chunks."""

    format: ExportFormat
    filename: str
    rows: int
    chunks: Iterator[str] = field(repr=False)

    @property
    def media_type(self) -> str:
        return self.format.media_type


def export(
    session: Session, principal: Principal, filters: AuditFilters, fmt: ExportFormat
) -> Export:
    """Check the export's size and record it; its chunks read the entries as they stream
    (after the request's transaction committed, through the same session)."""
    authorize(principal, "audit.read")
    started = utcnow()
    stmt = entries(principal, filters).where(AuditEntry.created_at < started)
    rows = int(
        session.scalar(
            select(func.count()).select_from(
                stmt.with_only_columns(AuditEntry.id).limit(EXPORT_MAX_ROWS + 1).subquery()
            )
        )
        or 0
    )
    if rows > EXPORT_MAX_ROWS:
        raise InvalidInput(
            f"More than {EXPORT_MAX_ROWS} entries match; export a shorter time with `since` "
            "and `until`.",
            code=ErrorCode.EXPORT_TOO_LARGE,
            errors={"since": [f"At most {EXPORT_MAX_ROWS} entries per export."]},
        )
    audit.record(
        session,
        principal,
        AuditAction.AUDIT_LOG_EXPORTED,
        "audit_log",
        None,
        {"format": fmt, "filters": filters.named(), "rows": rows},
    )
    session.flush()
    return Export(
        format=fmt,
        filename=f"audit-log-{started:%Y%m%dT%H%M%SZ}.{fmt.value}",
        rows=rows,
        chunks=_chunks(session, principal.org_id, stmt, fmt),
    )


def _batches(session: Session, org_id: uuid.UUID, stmt: Select[Any]) -> Iterator[list[Any]]:
    """The entries newest first, `EXPORT_BATCH` at a time, each with its actor's name now.
    Read as plain rows, not ORM objects: nothing accumulates in the session as it streams."""
    columns = stmt.with_only_columns(
        AuditEntry.id,
        AuditEntry.created_at,
        AuditEntry.actor_id,
        AuditEntry.action,
        AuditEntry.object_type,
        AuditEntry.object_id,
        AuditEntry.details,
    )
    last: uuid.UUID | None = None
    sent = 0
    while sent < EXPORT_MAX_ROWS:
        page = columns.order_by(AuditEntry.id.desc()).limit(
            min(EXPORT_BATCH, EXPORT_MAX_ROWS - sent)
        )
        if last is not None:
            page = page.where(AuditEntry.id < last)
        batch = session.execute(page).all()
        if not batch:
            return
        actor_ids = {entry.actor_id for entry in batch if entry.actor_id is not None}
        names: dict[uuid.UUID, str] = {}
        if actor_ids:
            names = {
                user.id: user.display_name
                for user in session.execute(
                    select(User.id, User.display_name).where(
                        User.org_id == org_id, User.id.in_(actor_ids)
                    )
                )
            }
        yield [_row(entry, names.get(entry.actor_id)) for entry in batch]
        sent += len(batch)
        last = batch[-1].id


def _row(entry: Any, actor_name: str | None) -> dict[str, Any]:
    return {
        "id": str(entry.id),
        "created_at": entry.created_at.isoformat(),
        "actor_id": str(entry.actor_id) if entry.actor_id else None,
        "actor_name": actor_name,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": str(entry.object_id) if entry.object_id else None,
        "details": entry.details,
    }


def _chunks(
    session: Session, org_id: uuid.UUID, stmt: Select[Any], fmt: ExportFormat
) -> Iterator[str]:
    if fmt is ExportFormat.NDJSON:
        for rows in _batches(session, org_id, stmt):
            yield "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        return
    yield _csv_lines([list(COLUMNS)])
    for rows in _batches(session, org_id, stmt):
        yield _csv_lines([[_csv_cell(row[name]) for name in COLUMNS] for row in rows])


def _csv_lines(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return neutralised(text)


def neutralised(text: str) -> str:
    """The cell as a spreadsheet shows text: a leading `'` before a formula's first sign."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
