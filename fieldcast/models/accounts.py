"""Organisations, users, teams and the credentials that authenticate them."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    ARRAY,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from fieldcast.db import (
    UUIDPK,
    Base,
    ChangeSeq,
    ChangeXid,
    CreatedAt,
    Str255,
    TenantMixin,
    UpdatedAt,
    str_enum,
    tenant_fk,
)


class Role(enum.StrEnum):
    REP = "rep"
    MANAGER = "manager"
    ENABLEMENT = "enablement"
    ADMIN = "admin"


class TeamRole(enum.StrEnum):
    MEMBER = "member"
    LEAD = "lead"


class Organisation(Base):
    __tablename__ = "organisations"
    __table_args__ = (
        CheckConstraint(
            "completion_threshold_pct BETWEEN 1 AND 100", name="completion_threshold_pct"
        ),
    )

    id: Mapped[UUIDPK]
    name: Mapped[Str255]
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    # The language search stems words in ("en", "de", ...; fieldcast.search.language): words
    # of another language, and names, still match as written, accents and case aside.
    search_language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    # A strict attribute catalogue refuses attribute names and choice values it does not
    # list; otherwise they join it (see fieldcast.deals.catalogue).
    catalogue_strict: Mapped[bool] = mapped_column(default=False, server_default="false")
    # The share of a video (or clip) a person must have played for it to count as completed.
    completion_threshold_pct: Mapped[int] = mapped_column(default=90, server_default="90")
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]


class User(TenantMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        # The tenant key rides along in every reference so that rows never point across tenants.
        UniqueConstraint("org_id", "id"),
        UniqueConstraint("org_id", "handle"),
        Index(
            "uq_users_org_id_external_id",
            "org_id",
            "external_id",
            unique=True,
            postgresql_where="external_id IS NOT NULL",
        ),
        Index(
            "uq_users_org_id_user_name",
            "org_id",
            "user_name",
            unique=True,
            postgresql_where="user_name IS NOT NULL",
        ),
        tenant_fk("users", "manager_id", "users", ondelete="SET NULL (manager_id)"),
        CheckConstraint("manager_id IS NULL OR manager_id <> id", name="not_own_manager"),
        # Search finds people's videos by their name misspelt (trigrams).
        Index(
            "ix_users_display_name_trgm",
            "display_name",
            postgresql_using="gin",
            postgresql_ops={"display_name": "gin_trgm_ops"},
        ),
    )

    id: Mapped[UUIDPK]
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    handle: Mapped[str] = mapped_column(String(32))
    role: Mapped[Role] = mapped_column(str_enum(Role, "user_role"), default=Role.REP)
    manager_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    is_active: Mapped[bool] = mapped_column(default=True, server_default="true")
    external_id: Mapped[str | None] = mapped_column(String(255))
    # What the organisation's directory (SCIM) says of the person: their user name there (the
    # email when it names none), name parts, department and employee number. Kept as given.
    user_name: Mapped[str | None] = mapped_column(String(255))
    given_name: Mapped[str | None] = mapped_column(String(120))
    family_name: Mapped[str | None] = mapped_column(String(120))
    department: Mapped[str | None] = mapped_column(String(255))
    employee_number: Mapped[str | None] = mapped_column(String(64))
    # Set when the directory deleted the person: deactivated and out of the directory's view,
    # their account and what they made kept (an admin may still delete or reactivate it).
    deprovisioned_at: Mapped[datetime | None]
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    last_login_at: Mapped[datetime | None]
    # Set when the person deleted their account (or an admin did): the row stays, anonymised,
    # so that what they made for the organisation keeps an author ("Former member").
    deleted_at: Mapped[datetime | None]
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
    # The BI export's change marks (see fieldcast/exports/cursor.py).
    change_seq: Mapped[ChangeSeq]
    change_xid: Mapped[ChangeXid]

    organisation: Mapped[Organisation] = relationship(lazy="raise")
    manager: Mapped[User | None] = relationship(
        remote_side="User.id",
        primaryjoin="and_(User.manager_id == remote(User.id), User.org_id == remote(User.org_id))",
        foreign_keys="User.manager_id",
        lazy="raise",
        viewonly=True,
    )

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


class Team(TenantMixin, Base):
    __tablename__ = "teams"
    __table_args__ = (
        UniqueConstraint("org_id", "id"),
        UniqueConstraint("org_id", "parent_id", "name", postgresql_nulls_not_distinct=True),
        UniqueConstraint("org_id", "handle"),
        Index(
            "uq_teams_org_id_external_id",
            "org_id",
            "external_id",
            unique=True,
            postgresql_where="external_id IS NOT NULL",
        ),
        tenant_fk("teams", "parent_id", "teams", ondelete="RESTRICT"),
        CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
    )

    id: Mapped[UUIDPK]
    name: Mapped[str] = mapped_column(String(120))
    # For @mentions: one namespace with people's handles (see `Handle`).
    handle: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(String(2000), default="", server_default="")
    parent_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    external_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
    # The BI export's change marks (see fieldcast/exports/cursor.py).
    change_seq: Mapped[ChangeSeq]
    change_xid: Mapped[ChangeXid]


class Handle(Base):
    """Every @handle of an organisation, a person's or a team's: one namespace, so `@sam`
    and `@sales-west` each name exactly one of them. Kept by triggers on `users` and `teams`
    (migration 0021), never written by the application."""

    __tablename__ = "handles"
    __table_args__ = (
        tenant_fk("handles", "user_id", "users", ondelete="CASCADE"),
        tenant_fk("handles", "team_id", "teams", ondelete="CASCADE"),
        CheckConstraint("(user_id IS NULL) <> (team_id IS NULL)", name="one_owner"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    handle: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(unique=True)
    team_id: Mapped[uuid.UUID | None] = mapped_column(unique=True)


class TeamMembership(TenantMixin, Base):
    __tablename__ = "team_memberships"
    __table_args__ = (
        tenant_fk("team_memberships", "team_id", "teams", ondelete="CASCADE"),
        tenant_fk("team_memberships", "user_id", "users", ondelete="CASCADE"),
    )

    team_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, index=True)
    role: Mapped[TeamRole] = mapped_column(str_enum(TeamRole, "team_role"), default=TeamRole.MEMBER)
    created_at: Mapped[CreatedAt]
    # The BI export's change marks (see fieldcast/exports/cursor.py).
    change_seq: Mapped[ChangeSeq]
    change_xid: Mapped[ChangeXid]

    user: Mapped[User] = relationship(
        primaryjoin="and_(TeamMembership.user_id == User.id, TeamMembership.org_id == User.org_id)",
        foreign_keys="[TeamMembership.user_id]",
        lazy="raise",
        viewonly=True,
    )


class AuthSession(TenantMixin, Base):
    """A login on one device: the family of refresh tokens issued from one password login.

    Access tokens name their session, so revoking it (logout, reuse of a rotated refresh token,
    deactivation) ends every token of the family at once.
    """

    __tablename__ = "auth_sessions"
    __table_args__ = (tenant_fk("auth_sessions", "user_id", "users", ondelete="CASCADE"),)

    id: Mapped[UUIDPK]
    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    user_agent: Mapped[str] = mapped_column(String(255), default="", server_default="")
    created_at: Mapped[CreatedAt]
    last_refreshed_at: Mapped[datetime | None]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(32))


class RefreshToken(TenantMixin, Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[UUIDPK]
    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[CreatedAt]
    expires_at: Mapped[datetime]
    # Set when the token is exchanged; presenting it again means it leaked.
    used_at: Mapped[datetime | None]


class ApiToken(TenantMixin, Base):
    """A long-lived token for an integration, acting as one user of the organisation."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        tenant_fk("api_tokens", "user_id", "users", ondelete="CASCADE"),
        tenant_fk("api_tokens", "created_by_id", "users", ondelete="SET NULL (created_by_id)"),
    )

    id: Mapped[UUIDPK]
    name: Mapped[str] = mapped_column(String(120))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    created_by_id: Mapped[uuid.UUID | None]
    created_at: Mapped[CreatedAt]
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class Invitation(TenantMixin, Base):
    """An admin's invitation for someone to join the organisation by email.

    The link in the email carries a single-use token. Only its SHA-256 hash is stored; the
    token itself is derived from the server's secret key and `nonce` when the email is written
    (see `fieldcast.accounts.invitations`), so neither the table nor the outbox holds it.
    """

    __tablename__ = "invitations"
    __table_args__ = (
        tenant_fk("invitations", "invited_by_id", "users", ondelete="SET NULL (invited_by_id)"),
        tenant_fk("invitations", "user_id", "users", ondelete="SET NULL (user_id)"),
        # One open invitation per address and organisation; accepted and revoked ones stay.
        Index(
            "uq_invitations_org_id_email_open",
            "org_id",
            "email",
            unique=True,
            postgresql_where=text("accepted_at IS NULL AND revoked_at IS NULL"),
        ),
    )

    id: Mapped[UUIDPK]
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[Role] = mapped_column(str_enum(Role, "invitation_role"), default=Role.REP)
    display_name: Mapped[str | None] = mapped_column(String(120))
    team_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(Uuid()), default=list, server_default="{}"
    )
    invited_by_id: Mapped[uuid.UUID | None]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    nonce: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[CreatedAt]
    sent_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    # The person the invitation became.
    user_id: Mapped[uuid.UUID | None]
    revoked_at: Mapped[datetime | None]


class PasswordReset(TenantMixin, Base):
    """A single-use link to set a new password, sent to the person's email. Like invitations,
    only the token's hash is stored."""

    __tablename__ = "password_resets"
    __table_args__ = (tenant_fk("password_resets", "user_id", "users", ondelete="CASCADE"),)

    id: Mapped[UUIDPK]
    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    nonce: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[CreatedAt]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
