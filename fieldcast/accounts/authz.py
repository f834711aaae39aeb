"""Object-level authorization, in one place.

Two rules hold for every object:
- Tenancy: objects of another organisation do not exist for the principal. Loaders scope every
  query by `org_id` and answer `NotFound`, never `PermissionDenied`, so ids cannot be probed.
- Permission: inside the organisation, `authorize(principal, action, obj)` decides, from the
  rule table below, and raises `PermissionDenied` with the action's code.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from fieldcast.accounts.models import Role, User
from fieldcast.errors import ErrorCode, NotFound, PermissionDenied


@dataclass(frozen=True)
class Principal:
    """Who is acting: a user, through a login session or an integration's API token."""

    user: User
    session_id: uuid.UUID | None = None
    api_token_id: uuid.UUID | None = None

    @property
    def org_id(self) -> uuid.UUID:
        return self.user.org_id

    @property
    def user_id(self) -> uuid.UUID:
        return self.user.id

    @property
    def role(self) -> Role:
        return self.user.role

    def has_role(self, *roles: Role) -> bool:
        return self.user.role in roles


Rule = Callable[[Principal, Any], bool]


def _anyone(principal: Principal, obj: Any) -> bool:
    return True


def _admin(principal: Principal, obj: Any) -> bool:
    return principal.has_role(Role.ADMIN)


def _owner(principal: Principal, obj: Any) -> bool:
    return getattr(obj, "owner_id", None) == principal.user_id


def _owner_or_admin(principal: Principal, obj: Any) -> bool:
    return principal.has_role(Role.ADMIN) or _owner(principal, obj)


def _self_or_admin(principal: Principal, obj: Any) -> bool:
    return principal.has_role(Role.ADMIN) or (isinstance(obj, User) and obj.id == principal.user_id)


def _list_maker(principal: Principal, obj: Any) -> bool:
    return principal.has_role(Role.ADMIN, Role.MANAGER, Role.ENABLEMENT)


RULES: dict[str, Rule] = {
    # The directory is visible to every member: @mentions and sharing need it.
    "user.read": _anyone,
    "user.list": _anyone,
    "user.create": _admin,
    "user.update": _admin,
    "user.update_profile": _self_or_admin,
    "team.read": _anyone,
    "team.list": _anyone,
    "team.create": _admin,
    "team.update": _admin,
    "team.delete": _admin,
    "team.manage_members": _admin,
    "api_token.list": _admin,
    "api_token.create": _admin,
    "api_token.revoke": _admin,
    # Loaders already narrow videos to those the principal may see (services.visible_videos).
    "video.create": _anyone,
    "video.list": _anyone,
    "video.read": _anyone,
    "video.update": _owner,
    # Only the author sends the file of their draft, and only they add or remove attachments.
    "video.upload": _owner,
    "attachment.create": _owner,
    "attachment.delete": _owner,
    # Whoever can see a video may pass it on: peers learn from peers.
    "video.share": _anyone,
    "video.mute": _anyone,
    # Lists are for the people who send to many: managers, enablement, admins.
    "distribution_list.create": _list_maker,
    "distribution_list.update": _owner_or_admin,
    "distribution_list.delete": _owner_or_admin,
    # A team's Slack or Teams channel is an organisation-level integration.
    "team.manage_webhooks": _admin,
}


def can(principal: Principal, action: str, obj: Any = None) -> bool:
    if obj is not None and getattr(obj, "org_id", principal.org_id) != principal.org_id:
        return False
    try:
        rule = RULES[action]
    except KeyError:
        raise LookupError(f"no authorization rule for {action!r}") from None
    return rule(principal, obj)


def authorize(principal: Principal, action: str, obj: Any = None) -> None:
    if obj is not None and getattr(obj, "org_id", principal.org_id) != principal.org_id:
        raise NotFound()
    if not can(principal, action, obj):
        raise PermissionDenied(
            f"Your role does not allow {action.replace('_', ' ').replace('.', ': ')}.",
            code=ErrorCode.PERMISSION_DENIED,
        )


T = TypeVar("T")


def scoped(principal: Principal, model: type[T]) -> Select[Any]:
    """`select(model)` restricted to the principal's organisation."""
    return select(model).where(model.org_id == principal.org_id)  # type: ignore[attr-defined]


def get_scoped(session: Session, principal: Principal, model: type[T], obj_id: uuid.UUID) -> T:
    """Load one object of the principal's organisation, or raise NotFound."""
    obj: T | None = session.execute(
        scoped(principal, model).where(model.id == obj_id)  # type: ignore[attr-defined]
    ).scalar_one_or_none()
    if obj is None:
        raise NotFound(f"No {model.__name__.lower()} with id {obj_id}.")
    return obj
