"""xAPI: the organisation's learning record store (LRS), and the statements waiting for it."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, PrimaryKeyConstraint, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from fieldcast.db import Base, CreatedAt, UpdatedAt, str_enum

# The longest natural key of a statement ("view:<uuid>:event:<seq>:<n>" and the like).
MAX_KEY = 200


class ActorFormat(enum.StrEnum):
    """How a person is named to the LRS. `account` (the default) names them by their id in
    the product under the organisation's home page, and tells the LRS nothing it could not
    know otherwise; `mbox_sha1sum` is the SHA-1 of their `mailto:` address, for an LRS that
    joins statements with other systems by email."""

    ACCOUNT = "account"
    MBOX_SHA1SUM = "mbox_sha1sum"


class LearningRecordStore(Base):
    """Where an organisation's statements go: one LRS per organisation, with its credentials.

    The secret is a credential: never returned by the API nor logged. Delivery failures back
    off on this row (`failures`, `next_attempt_at`), so one LRS that is down costs one attempt
    per backoff step, whatever its backlog.
    """

    __tablename__ = "xapi_lrs"

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    # The LRS's base: statements are posted to `<endpoint>/statements`.
    endpoint: Mapped[str] = mapped_column(String(2048))
    key: Mapped[str] = mapped_column(String(255))
    secret: Mapped[str] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    actor_format: Mapped[ActorFormat] = mapped_column(
        str_enum(ActorFormat, "xapi_actor_format", length=16),
        default=ActorFormat.ACCOUNT,
        server_default=ActorFormat.ACCOUNT.value,
    )
    # The `homePage` of the people's accounts; PUBLIC_BASE_URL when not set.
    account_home_page: Mapped[str | None] = mapped_column(String(2048))
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None]
    last_delivered_at: Mapped[datetime | None]
    delivered: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class XapiStatement(Base):
    """A statement to send, recorded with what caused it. It is kept as its facts (who, what,
    which verb, its numbers in `data`) and written out in full when sent, in batches.

    Its id is derived from `key`, the natural key of what happened (a view's report event, a
    progress step, an assignment's completion), so recording it again, or sending it again,
    never makes a second statement. Sent rows are kept for a week, then pruned.
    """

    __tablename__ = "xapi_statements"
    __table_args__ = (
        PrimaryKeyConstraint("org_id", "key"),
        # The backlog of each organisation, oldest first: only unsent rows are indexed.
        Index(
            "ix_xapi_statements_unsent",
            "org_id",
            "created_at",
            postgresql_where="sent_at IS NULL",
        ),
        # Views gone quiet (their `terminated`), and the pruning of sent rows.
        Index("ix_xapi_statements_created_at", "created_at"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(MAX_KEY))
    verb: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[uuid.UUID]
    video_id: Mapped[uuid.UUID | None]
    view_id: Mapped[uuid.UUID | None]
    # The assignment or comment the statement is about.
    subject_id: Mapped[uuid.UUID | None]
    # When it happened: by the device's clock when the app said, else the server's.
    occurred_at: Mapped[datetime]
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    created_at: Mapped[CreatedAt]
    sent_at: Mapped[datetime | None]
    # Why the LRS refused this one statement (it is not sent again).
    error: Mapped[str | None] = mapped_column(Text)
