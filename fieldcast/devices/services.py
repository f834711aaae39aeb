"""Registering the devices pushes go to. A user has any number of them."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from fieldcast.db import utcnow
from fieldcast.errors import InvalidInput, NotFound
from fieldcast.models.accounts import User
from fieldcast.models.devices import Device, Platform
from fieldcast.policy import Principal, mine

MAX_DEVICES_PER_USER = 20


def register(
    session: Session,
    principal: Principal,
    *,
    token: str,
    platform: Platform,
    app_version: str | None = None,
    locale: str | None = None,
) -> tuple[Device, bool]:
    """Register a push token for the principal. Returns the device and whether it is new.

    Registering the same token again updates it (apps re-register on every start); a token
    last registered by someone else moves to the principal, since the phone changed hands or
    accounts: pushes must never reach the previous user.
    """
    token = token.strip()
    if not token or any(ch.isspace() for ch in token):
        raise InvalidInput(errors={"token": ["A push registration token, without spaces."]})
    device = session.scalars(
        select(Device).where(Device.token == token).with_for_update()
    ).one_or_none()
    created = device is None
    if device is None:
        _prune_oldest(session, principal)
        device = Device(token=token)
        session.add(device)
    device.org_id = principal.org_id
    device.user_id = principal.user_id
    device.platform = platform
    device.app_version = app_version
    device.locale = locale
    device.last_registered_at = utcnow()
    session.flush()
    return device, created


def _prune_oldest(session: Session, principal: Principal) -> None:
    """Keep a user's devices bounded: apps reinstalled many times leave stale tokens."""
    devices = session.scalars(
        select(Device).where(mine(principal, Device)).order_by(Device.last_registered_at.desc())
    ).all()
    for stale in devices[MAX_DEVICES_PER_USER - 1 :]:
        session.delete(stale)


def my_devices(session: Session, principal: Principal) -> list[Device]:
    return list(session.scalars(select(Device).where(mine(principal, Device)).order_by(Device.id)))


def unregister(session: Session, principal: Principal, device_id: uuid.UUID) -> None:
    """Remove one of the principal's devices (logout on that phone). Others' do not exist."""
    device = session.scalars(
        select(Device).where(Device.id == device_id, mine(principal, Device))
    ).one_or_none()
    if device is None:
        raise NotFound(f"No device with id {device_id}.")
    session.delete(device)
    session.flush()


def forget(session: Session, principal: Principal, device_id: uuid.UUID) -> bool:
    """Remove one of the principal's devices if it is still there (logout). Returns whether one
    was removed; an id that is not the principal's is left alone, whoever's it is."""
    device = session.scalars(
        select(Device).where(Device.id == device_id, mine(principal, Device))
    ).one_or_none()
    if device is None:
        return False
    session.delete(device)
    session.flush()
    return True


def remove_all(session: Session, user: User) -> int:
    """Remove every device of a user (deactivation): no push may reach them any more."""
    result = session.execute(
        delete(Device).where(Device.org_id == user.org_id, Device.user_id == user.id)
    )
    return int(getattr(result, "rowcount", 0) or 0)
