"""Deals and the attribute catalogue that describes them.

An organisation's catalogue (`AttributeDefinition`) names the attributes its deals and videos
carry (stage, industry, competitors, ...), their type and their allowed values. A `Deal` is a
CRM opportunity kept in step by an integration, keyed by (source, external_id); its
`attributes` are the deal's catalogue values now. A video or comment names the deal it is
about (`deal_id`); the video keeps the deal's attributes as they were when it was recorded.
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CheckConstraint, Date, Index, Numeric, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from fieldcast.db import UUIDPK, Base, CreatedAt, TenantMixin, UpdatedAt, str_enum, tenant_fk

# A catalogue name: what the JSON of deals and videos uses as the key.
ATTRIBUTE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"


class AttributeType(enum.StrEnum):
    SINGLE_CHOICE = "single_choice"
    MULTIPLE_CHOICE = "multiple_choice"
    NUMBER = "number"  # with `bands` that name ranges of it ("10k-50k")
    TEXT = "text"
    DATE = "date"


class AttributeDefinition(TenantMixin, Base):
    """One attribute of an organisation's catalogue."""

    __tablename__ = "attribute_definitions"
    __table_args__ = (
        UniqueConstraint("org_id", "name"),
        CheckConstraint(f"name ~ '{ATTRIBUTE_NAME_PATTERN}'", name="name_is_a_slug"),
        # The catalogue in its order.
        Index("ix_attribute_definitions_org_id_position", "org_id", "position"),
    )

    id: Mapped[UUIDPK]
    name: Mapped[str] = mapped_column(String(63))
    label: Mapped[str] = mapped_column(String(120))
    type: Mapped[AttributeType] = mapped_column(str_enum(AttributeType, "attribute_type"))
    # The allowed values of a choice, in the order apps offer them. Values are matched in any
    # case and stored as spelled here.
    choices: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default="[]")
    # An open choice (competitors, products) takes any value, strict catalogue or not; a new
    # value joins `choices`, so that it is spelled one way from then on.
    choices_open: Mapped[bool] = mapped_column(default=False, server_default="false")
    # A number's named ranges, [{"label": "10k-50k", "min": 10000, "max": 50000}], `min`
    # included and `max` excluded, either left out for an open end.
    bands: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list, server_default="[]")
    position: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class DealOutcome(enum.StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class Deal(TenantMixin, Base):
    """A deal (a CRM opportunity), owned by a person, worked by a team."""

    __tablename__ = "deals"
    __table_args__ = (
        UniqueConstraint("org_id", "id"),
        # The CRM's key: an upsert finds the deal by it.
        UniqueConstraint("org_id", "source", "external_id"),
        tenant_fk("deals", "owner_id", "users", ondelete="CASCADE"),
        tenant_fk("deals", "team_id", "teams", ondelete="SET NULL (team_id)"),
        CheckConstraint("amount IS NULL OR amount >= 0", name="amount_not_negative"),
        CheckConstraint("currency IS NULL OR currency ~ '^[A-Z]{3}$'", name="currency_iso_4217"),
        # "My deals": a person's open deals, newest first.
        Index(
            "ix_deals_owner_id_open",
            "owner_id",
            "id",
            postgresql_where=text("outcome = 'open'"),
        ),
        Index("ix_deals_team_id", "team_id", postgresql_where=text("team_id IS NOT NULL")),
        # Deals by their attributes (JSONB containment, `@>`).
        Index(
            "ix_deals_attributes",
            "attributes",
            postgresql_using="gin",
            postgresql_ops={"attributes": "jsonb_path_ops"},
        ),
    )

    id: Mapped[UUIDPK]
    # Where the deal comes from ("salesforce", "hubspot") and its id there.
    source: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    account: Mapped[str] = mapped_column(String(255), default="", server_default="")
    owner_id: Mapped[uuid.UUID]
    team_id: Mapped[uuid.UUID | None]
    stage: Mapped[str | None] = mapped_column(String(200))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    close_date: Mapped[date | None] = mapped_column(Date)
    outcome: Mapped[DealOutcome] = mapped_column(
        str_enum(DealOutcome, "deal_outcome", length=8),
        default=DealOutcome.OPEN,
        server_default=DealOutcome.OPEN.value,
    )
    # When the deal was first seen won or lost; cleared if it opens again.
    closed_at: Mapped[datetime | None]
    # The deal's catalogue values now, `stage`, `outcome` and `deal_size` (the amount) among
    # them: what search compares with a video's snapshot.
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
