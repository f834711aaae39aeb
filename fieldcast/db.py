"""Database plumbing: the declarative base, shared column types and the session factory."""

from __future__ import annotations

import enum
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from sqlalchemy import (
    DateTime,
    Enum,
    ForeignKey,
    ForeignKeyConstraint,
    MetaData,
    String,
    Uuid,
    create_engine,
    func,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 version 7).

    Ids that sort by creation time keep B-tree inserts local and let cursors page by id alone.
    """
    unix_ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    return uuid.UUID(int=value)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def str_enum(cls: type[enum.Enum], name: str, *, length: int = 32) -> Enum:
    """An enum stored as its value strings with a CHECK constraint.

    Adding a member later is a migration that rewrites the constraint, not an ALTER TYPE.
    """
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


def tenant_fk(table: str, column: str, target: str, *, ondelete: str) -> ForeignKeyConstraint:
    """A reference that stays inside one organisation: (org_id, column) -> target(org_id, id).

    Carrying the tenant key in the reference makes a row pointing at another organisation's
    row impossible, whatever the application code does.
    """
    return ForeignKeyConstraint(
        ["org_id", column],
        [f"{target}.org_id", f"{target}.id"],
        name=f"fk_{table}_{column}_{target}",
        ondelete=ondelete,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: DateTime(timezone=True),
        uuid.UUID: Uuid(),
    }


UUIDPK = Annotated[uuid.UUID, mapped_column(primary_key=True, default=uuid7)]
CreatedAt = Annotated[datetime, mapped_column(server_default=func.now(), default=utcnow)]
UpdatedAt = Annotated[
    datetime, mapped_column(server_default=func.now(), default=utcnow, onupdate=utcnow)
]
Str255 = Annotated[str, mapped_column(String(255))]
OrgFK = Annotated[
    uuid.UUID,
    mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), index=True),
]


class TenantMixin:
    """Every tenant-owned row carries `org_id`, so every query can be scoped and sharded by it."""

    org_id: Mapped[OrgFK]


class Database:
    """One engine and session factory per process, created from the settings."""

    def __init__(self, url: str, *, pool_size: int = 5, echo: bool = False, **kwargs: Any) -> None:
        self.engine: Engine = create_engine(
            url,
            pool_size=pool_size,
            max_overflow=10,
            pool_pre_ping=True,
            # Error messages end up in logs: they name the statement, never the values bound
            # to it (emails, token hashes, what a user typed).
            hide_parameters=True,
            echo=echo,
            **kwargs,
        )
        self.sessionmaker: sessionmaker[Session] = sessionmaker(
            bind=self.engine, expire_on_commit=False
        )

    @classmethod
    def from_engine(cls, engine: Engine, **session_kwargs: Any) -> Database:
        """Wrap an existing engine or connection (tests bind sessions to one connection)."""
        db = cls.__new__(cls)
        db.engine = engine
        db.sessionmaker = sessionmaker(bind=engine, expire_on_commit=False, **session_kwargs)
        return db

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = self.sessionmaker()
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()
