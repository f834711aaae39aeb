"""Sign-in with an organisation's identity provider (OpenID Connect), and whom it signed in."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ARRAY, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fieldcast.db import UUIDPK, Base, CreatedAt, TenantMixin, UpdatedAt, str_enum, tenant_fk
from fieldcast.models.accounts import Role


class IdentityProvider(Base):
    """An organisation's OpenID provider (one at most): Okta, Entra ID, Google Workspace,
    Keycloak... People of the organisation sign in there instead of with a password.

    The client secret is a credential: never returned by the API, never logged.
    """

    __tablename__ = "identity_providers"

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    issuer: Mapped[str] = mapped_column(String(512))
    client_id: Mapped[str] = mapped_column(String(255))
    client_secret: Mapped[str | None] = mapped_column(String(512))
    scopes: Mapped[str] = mapped_column(String(255), default="openid email profile")
    # Whether someone the provider vouches for, with no account here yet, gets one (with
    # `default_role`), or is refused until an admin invites or provisions them.
    create_users: Mapped[bool] = mapped_column(default=True, server_default="true")
    default_role: Mapped[Role] = mapped_column(
        str_enum(Role, "identity_provider_role"), default=Role.REP
    )
    # Whether an email the provider sends without `email_verified` is the person's (Entra ID
    # sends none, and only addresses of the tenant's verified domains): off, only an email
    # marked verified finds or makes an account.
    trust_email: Mapped[bool] = mapped_column(default=False, server_default="false")
    # The email domains whose people may get an account at their first sign-in (a provider
    # that serves many organisations, as Google's does, vouches for people of every domain);
    # empty: any domain.
    allowed_domains: Mapped[list[str]] = mapped_column(
        ARRAY(String(253)), default=list, server_default="{}"
    )
    enabled: Mapped[bool] = mapped_column(default=True, server_default="true")
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class UserIdentity(TenantMixin, Base):
    """A person as their organisation's provider names them (`iss`, `sub`): found again by it
    at every sign-in, whatever their email becomes."""

    __tablename__ = "user_identities"
    __table_args__ = (
        tenant_fk("user_identities", "user_id", "users", ondelete="CASCADE"),
        # (A provider serving many organisations, as Google's or Entra ID's common one does,
        # names one person the same for each of them.)
        UniqueConstraint("org_id", "issuer", "subject"),
        UniqueConstraint("user_id", "issuer"),
    )

    id: Mapped[UUIDPK]
    user_id: Mapped[uuid.UUID]
    issuer: Mapped[str] = mapped_column(String(512))
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[CreatedAt]
    last_sign_in_at: Mapped[datetime | None]
