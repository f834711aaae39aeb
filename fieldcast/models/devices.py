"""Devices: the phones and browsers a user receives pushes on."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from fieldcast.db import UUIDPK, Base, CreatedAt, TenantMixin, UpdatedAt, str_enum, tenant_fk


class Platform(enum.StrEnum):
    IOS = "ios"
    ANDROID = "android"
    WEB = "web"


class Device(TenantMixin, Base):
    __tablename__ = "devices"
    __table_args__ = (
        tenant_fk("devices", "user_id", "users", ondelete="CASCADE"),
        # Fan-out reads every device of a set of users.
        Index("ix_devices_user_id", "user_id"),
    )

    id: Mapped[UUIDPK]
    user_id: Mapped[uuid.UUID]
    # One registration token is one app install: it belongs to whoever registered it last.
    token: Mapped[str] = mapped_column(String(1024), unique=True)
    platform: Mapped[Platform] = mapped_column(str_enum(Platform, "device_platform", length=16))
    app_version: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(35))
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
    last_registered_at: Mapped[datetime]
