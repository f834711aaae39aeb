"""Work that must happen, recorded in PostgreSQL with the change that causes it."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from fieldcast.db import UUIDPK, Base, CreatedAt, str_enum


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    # Waiting its turn: its organisation has as many jobs of this task queued or running as
    # its fair share allows (`outbox.services`, fair-shared tasks); released in order.
    HELD = "held"


class OutboxJob(Base):
    __tablename__ = "outbox_jobs"
    __table_args__ = (
        # The relay's scan: only unfinished rows are indexed, so the index stays small.
        Index(
            "ix_outbox_jobs_due",
            "status",
            "run_after",
            postgresql_where=text("status IN ('pending', 'running')"),
        ),
        # An organisation's share of a fair-shared task: what it has in flight, what waits.
        Index(
            "ix_outbox_jobs_fair_share",
            "org_id",
            "task",
            "created_at",
            postgresql_where=text("status IN ('held', 'pending', 'running')"),
        ),
    )

    id: Mapped[UUIDPK]
    # Nullable: some work (housekeeping) belongs to no tenant.
    org_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    task: Mapped[str] = mapped_column(String(120))
    queue: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    dedup_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    status: Mapped[OutboxStatus] = mapped_column(
        str_enum(OutboxStatus, "outbox_status", length=16), default=OutboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    run_after: Mapped[datetime] = mapped_column(server_default=text("now()"))
    lease_until: Mapped[datetime | None]
    enqueued_at: Mapped[datetime | None]
    created_at: Mapped[CreatedAt]
    finished_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
