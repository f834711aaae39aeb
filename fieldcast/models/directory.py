"""Provisioning from an organisation's identity provider (SCIM 2.0): its bearer token."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from fieldcast.db import UUIDPK, Base, CreatedAt, TenantMixin, tenant_fk


class ScimToken(TenantMixin, Base):
    """The bearer token an organisation's identity provider (Okta, Entra ID) provisions with.

    One live token per organisation: rotating revokes the old row and adds a new one, so the
    revoked ones stay as the record of who made them and when. Only the SHA-256 hash of the
    secret is stored; the secret is shown once.
    """

    __tablename__ = "scim_tokens"
    __table_args__ = (
        tenant_fk("scim_tokens", "created_by_id", "users", ondelete="SET NULL (created_by_id)"),
        Index(
            "uq_scim_tokens_org_id_live",
            "org_id",
            unique=True,
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[UUIDPK]
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[uuid.UUID | None]
    created_at: Mapped[CreatedAt]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
