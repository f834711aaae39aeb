"""Organisations, users, teams and memberships. Each public function owns its transaction."""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from fieldcast import audit, events, passwords
from fieldcast.audit import AuditAction
from fieldcast.db import utcnow
from fieldcast.deals import catalogue
from fieldcast.devices import services as devices
from fieldcast.errors import Conflict, ErrorCode, InvalidInput, NotFound
from fieldcast.models.accounts import (
    ApiToken,
    AuthSession,
    Handle,
    Organisation,
    Role,
    Team,
    TeamMembership,
    TeamRole,
    User,
)
from fieldcast.policy import Principal, authorize, get_scoped, scoped

# 2-32 lower-case letters, digits, `_` and `-` (not at the end, so "@sam-" mentions @sam).
# People and teams share the namespace (`models.accounts.Handle`).
HANDLE_RE = re.compile(r"^[a-z0-9_][a-z0-9_-]{0,30}[a-z0-9_]$")
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
MIN_PASSWORD_LENGTH = 10


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            errors={"password": [f"Must be at least {MIN_PASSWORD_LENGTH} characters long."]}
        )
    return passwords.hash_of(password)


def verify_password(user: User | None, password: str) -> bool:
    if not passwords.matches(user.password_hash if user is not None else None, password):
        return False
    assert user is not None and user.password_hash is not None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_of(password)
    return True


def normalise_handle(handle: str) -> str:
    value = handle.strip().lstrip("@").lower()
    if not HANDLE_RE.match(value):
        raise InvalidInput(
            errors={
                "handle": [
                    "2-32 characters: lower-case letters, digits, underscores and hyphens "
                    "(not at the end)."
                ]
            }
        )
    return value


def free_handle(session: Session, org_id: uuid.UUID, name: str) -> str:
    """A handle made from a name (a team's) that no person or team of the organisation has:
    "Sales West" is `sales-west`, then `sales-west-2`, ..."""
    base = re.sub(r"[^a-z0-9_]+", "-", name.lower()).strip("-")[:28].strip("-")
    if len(base) < 2:
        base = "team"
    taken = set(
        session.scalars(
            select(Handle.handle).where(
                Handle.org_id == org_id, Handle.handle.like(f"{_escape_like(base)}%")
            )
        )
    )
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def clean_name(value: str, field: str) -> str:
    """Names are shown to people: trimmed, and never blank."""
    cleaned = " ".join(value.split())
    if not cleaned:
        raise InvalidInput(errors={field: ["Must not be blank."]})
    return cleaned


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _unique_violation(exc: IntegrityError) -> str:
    """The name of the constraint an insert or update ran into."""
    diag = getattr(exc.orig, "diag", None)
    return str(getattr(diag, "constraint_name", "") or "")


def conflict_from(exc: IntegrityError) -> Conflict:
    constraint = _unique_violation(exc)
    if "email" in constraint:
        return Conflict(
            "A user with this email already exists.",
            code=ErrorCode.EMAIL_TAKEN,
            errors={"email": ["Already in use."]},
        )
    if "handle" in constraint:
        return Conflict(
            "This handle is already taken in the organisation.",
            code=ErrorCode.HANDLE_TAKEN,
            errors={"handle": ["Already taken."]},
        )
    if "external_id" in constraint:
        return Conflict(
            "Another record has this external id.",
            code=ErrorCode.EXTERNAL_ID_TAKEN,
            errors={"external_id": ["Already in use."]},
        )
    if "slug" in constraint:
        return Conflict(
            "An organisation with this slug already exists.",
            code=ErrorCode.SLUG_TAKEN,
            errors={"slug": ["Already in use."]},
        )
    if "teams" in constraint and "name" in constraint:
        return Conflict(
            "A team with this name already exists under the same parent.",
            code=ErrorCode.TEAM_NAME_TAKEN,
            errors={"name": ["Already in use under this parent."]},
        )
    return Conflict("The change conflicts with existing data.")


# -- organisations -------------------------------------------------------------------------


@dataclass(frozen=True)
class NewOrganisation:
    organisation: Organisation
    admin: User


def create_organisation(
    session: Session,
    *,
    name: str,
    slug: str,
    admin_email: str,
    admin_name: str,
    admin_handle: str,
    admin_password: str,
) -> NewOrganisation:
    slug = slug.strip().lower()
    if not SLUG_RE.match(slug):
        raise InvalidInput(errors={"slug": ["Lower-case letters, digits and dashes."]})
    org = Organisation(id=uuid.uuid4(), name=name.strip(), slug=slug)
    session.add(org)
    admin = User(
        org_id=org.id,
        email=normalise_email(admin_email),
        display_name=admin_name.strip(),
        handle=normalise_handle(admin_handle),
        role=Role.ADMIN,
        password_hash=hash_password(admin_password),
    )
    session.add(admin)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise conflict_from(exc) from None
    catalogue.create_defaults(session, org.id)
    audit.record(
        session,
        None,
        AuditAction.USER_CREATED,
        "user",
        admin.id,
        {"role": admin.role, "via": "organisation"},
        org_id=org.id,
    )
    return NewOrganisation(org, admin)


def get_organisation(session: Session, org_id: uuid.UUID) -> Organisation:
    org = session.get(Organisation, org_id)
    if org is None:
        raise NotFound()
    return org


# -- users ---------------------------------------------------------------------------------

USER_FIELDS = {
    "display_name",
    "handle",
    "role",
    "manager_id",
    "is_active",
    "external_id",
    "time_zone",
}
# The fields whose old and new values the audit log keeps: they decide what a person may do
# and see. Of the others it keeps only that they changed.
AUDITED_USER_VALUES = ("role", "manager_id", "is_active")


def _check_parent_link(
    session: Session,
    principal: Principal,
    model: type[User] | type[Team],
    obj_id: uuid.UUID | None,
    parent_id: uuid.UUID,
    *,
    field: str,
    link: str,
    missing: str,
    circle: str,
) -> None:
    """A new manager / parent team must exist in the organisation and must not close a loop.

    Whether following the links up from `parent_id` meets `obj_id` is asked in one recursive
    query; UNION (not UNION ALL) stops at rows already seen, so even a corrupt loop ends.
    """
    try:
        get_scoped(session, principal, model, parent_id)
    except NotFound:
        raise InvalidInput(errors={field: [missing]}) from None
    if obj_id is None:
        return
    chain = (
        select(model.id, getattr(model, link).label("up"))
        .where(model.org_id == principal.org_id, model.id == parent_id)
        .cte(recursive=True)
    )
    step = aliased(model)
    chain = chain.union(
        select(step.id, getattr(step, link)).where(
            step.org_id == principal.org_id, step.id == chain.c.up
        )
    )
    if session.execute(select(exists().where(chain.c.id == obj_id))).scalar():
        raise InvalidInput(errors={field: [circle]})


def _check_manager(
    session: Session, principal: Principal, user_id: uuid.UUID | None, manager_id: uuid.UUID
) -> None:
    _check_parent_link(
        session,
        principal,
        User,
        user_id,
        manager_id,
        field="manager_id",
        link="manager_id",
        missing="No such user in this organisation.",
        circle="This would make the reporting line a circle.",
    )


def _check_time_zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(errors={"time_zone": ["Not an IANA time zone name."]}) from None
    return value


def create_user(
    session: Session,
    principal: Principal,
    *,
    email: str,
    display_name: str,
    handle: str,
    role: Role = Role.REP,
    password: str | None = None,
    manager_id: uuid.UUID | None = None,
    external_id: str | None = None,
    time_zone: str = "UTC",
) -> User:
    authorize(principal, "user.create")
    if manager_id is not None:
        _check_manager(session, principal, None, manager_id)
    user = User(
        org_id=principal.org_id,
        email=normalise_email(email),
        display_name=clean_name(display_name, "display_name"),
        handle=normalise_handle(handle),
        role=role,
        manager_id=manager_id,
        external_id=external_id,
        time_zone=_check_time_zone(time_zone),
        password_hash=hash_password(password) if password else None,
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise conflict_from(exc) from None
    audit.record(
        session,
        principal,
        AuditAction.USER_CREATED,
        "user",
        user.id,
        {"role": user.role, "manager_id": user.manager_id, "can_sign_in": bool(password)},
    )
    events.publish(
        session, events.PersonTookRole(org_id=user.org_id, user_id=user.id, role=user.role)
    )
    return user


def get_user(session: Session, principal: Principal, user_id: uuid.UUID) -> User:
    user = get_scoped(session, principal, User, user_id)
    authorize(principal, "user.read", user)
    return user


def update_user(
    session: Session, principal: Principal, user_id: uuid.UUID, changes: dict[str, Any]
) -> User:
    user = get_scoped(session, principal, User, user_id)
    unknown = set(changes) - USER_FIELDS - {"password"}
    if unknown:
        raise InvalidInput(errors={name: ["Unknown field."] for name in sorted(unknown)})
    authorize(principal, "user.update", user)
    if user.deleted_at is not None:
        # Its person is gone: bringing the anonymised row back would make a new person of it.
        raise Conflict(
            "This account was deleted; invite the person again instead.",
            code=ErrorCode.ACCOUNT_DELETED,
        )
    if user.id == principal.user_id and (
        changes.get("is_active") is False or ("role" in changes and changes["role"] != Role.ADMIN)
    ):
        raise InvalidInput(
            "Admins cannot deactivate or demote themselves; ask another admin.",
            code=ErrorCode.CANNOT_CHANGE_OWN_ADMIN,
        )
    if "handle" in changes:
        changes["handle"] = normalise_handle(changes["handle"])
    if "display_name" in changes:
        changes["display_name"] = clean_name(changes["display_name"], "display_name")
    if changes.get("manager_id") is not None:
        _check_manager(session, principal, user.id, changes["manager_id"])
    if "time_zone" in changes:
        _check_time_zone(changes["time_zone"])
    password_set = "password" in changes
    if password_set:
        password = changes.pop("password")
        user.password_hash = hash_password(password) if password else None
    before = {name: getattr(user, name) for name in changes}
    for name, value in changes.items():
        setattr(user, name, value)
    if changes.get("is_active") is False:
        _revoke_credentials(session, user, reason="deactivated")
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise conflict_from(exc) from None
    changed = [name for name in changes if before[name] != getattr(user, name)]
    if "display_name" in changed:
        events.publish(session, events.PersonRenamed(org_id=user.org_id, user_id=user.id))
    if "role" in changed:
        events.publish(
            session, events.PersonTookRole(org_id=user.org_id, user_id=user.id, role=user.role)
        )
    if changed or password_set:
        audit.record(
            session,
            principal,
            AuditAction.USER_UPDATED,
            "user",
            user.id,
            {
                # Which fields changed; the values only of those that grant or take away
                # access (never a name, a handle or an email).
                "fields": sorted([*changed, *(["password"] if password_set else [])]),
                "changes": {
                    name: audit.change(before[name], getattr(user, name))
                    for name in changed
                    if name in AUDITED_USER_VALUES
                },
            },
        )
    return user


def update_profile(session: Session, principal: Principal, changes: dict[str, Any]) -> User:
    """What users may change about themselves."""
    user = principal.user
    authorize(principal, "user.update_profile", user)
    allowed = {"display_name", "time_zone"}
    unknown = set(changes) - allowed
    if unknown:
        raise InvalidInput(errors={name: ["Cannot be changed here."] for name in sorted(unknown)})
    if "time_zone" in changes:
        _check_time_zone(changes["time_zone"])
    if "display_name" in changes:
        changes["display_name"] = clean_name(changes["display_name"], "display_name")
    renamed = changes.get("display_name", user.display_name) != user.display_name
    for name, value in changes.items():
        setattr(user, name, value)
    session.add(user)
    session.flush()
    if renamed:
        events.publish(session, events.PersonRenamed(org_id=user.org_id, user_id=user.id))
    return user


def revoke_sessions(session: Session, user: User, *, reason: str) -> None:
    """End every login session of the person (their refresh and access tokens stop working);
    their integrations' API tokens are left alone."""
    session.execute(
        update(AuthSession)
        .where(
            AuthSession.org_id == user.org_id,
            AuthSession.user_id == user.id,
            AuthSession.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )


def _revoke_credentials(session: Session, user: User, *, reason: str) -> None:
    """End every login session and API token of the user, and forget their push devices."""
    now = utcnow()
    session.execute(
        update(AuthSession)
        .where(
            AuthSession.org_id == user.org_id,
            AuthSession.user_id == user.id,
            AuthSession.revoked_at.is_(None),
        )
        .values(revoked_at=now, revoked_reason=reason)
    )
    session.execute(
        update(ApiToken)
        .where(
            ApiToken.org_id == user.org_id,
            ApiToken.user_id == user.id,
            ApiToken.revoked_at.is_(None),
        )
        .values(revoked_at=now)
    )
    devices.remove_all(session, user)


# -- teams ---------------------------------------------------------------------------------


def _check_parent(
    session: Session, principal: Principal, team_id: uuid.UUID | None, parent_id: uuid.UUID
) -> None:
    _check_parent_link(
        session,
        principal,
        Team,
        team_id,
        parent_id,
        field="parent_id",
        link="parent_id",
        missing="No such team in this organisation.",
        circle="A team cannot sit inside itself.",
    )


def create_team(
    session: Session,
    principal: Principal,
    *,
    name: str,
    handle: str | None = None,
    description: str = "",
    parent_id: uuid.UUID | None = None,
    external_id: str | None = None,
) -> Team:
    authorize(principal, "team.create")
    if parent_id is not None:
        _check_parent(session, principal, None, parent_id)
    name = clean_name(name, "name")
    team = Team(
        org_id=principal.org_id,
        name=name,
        handle=(
            normalise_handle(handle)
            if handle is not None
            else free_handle(session, principal.org_id, name)
        ),
        description=description,
        parent_id=parent_id,
        external_id=external_id,
    )
    session.add(team)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise conflict_from(exc) from None
    audit.record(
        session,
        principal,
        AuditAction.TEAM_CREATED,
        "team",
        team.id,
        {"name": team.name, "handle": team.handle, "parent_id": team.parent_id},
    )
    return team


def get_team(session: Session, principal: Principal, team_id: uuid.UUID) -> Team:
    team = get_scoped(session, principal, Team, team_id)
    authorize(principal, "team.read", team)
    return team


def update_team(
    session: Session, principal: Principal, team_id: uuid.UUID, changes: dict[str, Any]
) -> Team:
    team = get_scoped(session, principal, Team, team_id)
    authorize(principal, "team.update", team)
    if changes.get("parent_id") is not None:
        _check_parent(session, principal, team.id, changes["parent_id"])
    if "name" in changes:
        changes["name"] = clean_name(changes["name"], "name")
    if "handle" in changes:
        changes["handle"] = normalise_handle(changes["handle"])
    fields = [
        name
        for name in ("name", "handle", "description", "parent_id", "external_id")
        if name in changes
    ]
    before = {name: getattr(team, name) for name in fields}
    for name in fields:
        setattr(team, name, changes[name])
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise conflict_from(exc) from None
    changed = [name for name in fields if before[name] != getattr(team, name)]
    if changed:
        audit.record(
            session,
            principal,
            AuditAction.TEAM_UPDATED,
            "team",
            team.id,
            {
                "fields": changed,
                "changes": {
                    name: audit.change(before[name], getattr(team, name))
                    for name in changed
                    if name in ("name", "handle", "parent_id")
                },
            },
        )
    return team


def delete_team(session: Session, principal: Principal, team_id: uuid.UUID) -> None:
    team = get_scoped(session, principal, Team, team_id)
    authorize(principal, "team.delete", team)
    has_children = session.execute(
        select(func.count()).where(Team.org_id == principal.org_id, Team.parent_id == team.id)
    ).scalar_one()
    if has_children:
        raise Conflict(
            "Move or delete the sub-teams first.",
            code=ErrorCode.TEAM_HAS_SUBTEAMS,
        )
    audit.record(
        session,
        principal,
        AuditAction.TEAM_DELETED,
        "team",
        team.id,
        {"name": team.name, "parent_id": team.parent_id},
    )
    session.delete(team)
    session.flush()


def set_membership(
    session: Session,
    principal: Principal,
    team_id: uuid.UUID,
    user_id: uuid.UUID,
    role: TeamRole = TeamRole.MEMBER,
) -> TeamMembership:
    team = get_scoped(session, principal, Team, team_id)
    authorize(principal, "team.manage_members", team)
    try:
        get_scoped(session, principal, User, user_id)
    except NotFound:
        raise NotFound(f"No user with id {user_id}.", code=ErrorCode.USER_NOT_FOUND) from None
    membership = session.get(TeamMembership, (team.id, user_id))
    previous = membership.role if membership is not None else None
    if membership is None:
        membership = TeamMembership(org_id=principal.org_id, team_id=team.id, user_id=user_id)
        session.add(membership)
    membership.role = role
    session.flush()
    if previous is None:
        events.publish(
            session,
            events.PersonJoinedTeams(org_id=team.org_id, user_id=user_id, team_ids=(team.id,)),
        )
    if previous != role:
        audit.record(
            session,
            principal,
            AuditAction.TEAM_MEMBER_SET,
            "team",
            team.id,
            {"user_id": user_id, "role": role, "previous_role": previous},
        )
    return membership


def remove_membership(
    session: Session, principal: Principal, team_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    team = get_scoped(session, principal, Team, team_id)
    authorize(principal, "team.manage_members", team)
    result = session.execute(
        delete(TeamMembership).where(
            TeamMembership.org_id == principal.org_id,
            TeamMembership.team_id == team.id,
            TeamMembership.user_id == user_id,
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        session.rollback()
        raise NotFound(
            "This user is not a member of the team.", code=ErrorCode.MEMBERSHIP_NOT_FOUND
        )
    audit.record(
        session, principal, AuditAction.TEAM_MEMBER_REMOVED, "team", team.id, {"user_id": user_id}
    )
    session.flush()


def teams_of(
    session: Session, principal: Principal, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[Team, TeamRole]]]:
    """The teams of several users in one query (for list endpoints)."""
    rows = session.execute(
        select(TeamMembership.user_id, Team, TeamMembership.role)
        .join(Team, (Team.id == TeamMembership.team_id) & (Team.org_id == TeamMembership.org_id))
        .where(TeamMembership.org_id == principal.org_id, TeamMembership.user_id.in_(user_ids))
        .order_by(Team.name)
    ).all()
    result: dict[uuid.UUID, list[tuple[Team, TeamRole]]] = {uid: [] for uid in user_ids}
    for user_id, team, role in rows:
        result[user_id].append((team, role))
    return result


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def listed_users(
    principal: Principal,
    *,
    q: str | None = None,
    role: Role | None = None,
    is_active: bool | None = None,
    manager_id: uuid.UUID | None = None,
) -> Select[tuple[User]]:
    """The users of the principal's organisation that match the list filters, for a page.

    `q` is a prefix of the handle (a leading `@` is ignored), the display name or the email.
    """
    authorize(principal, "user.list")
    # Deleted accounts stay as anonymised authors of what they made, out of the directory.
    stmt = scoped(principal, User).where(User.deleted_at.is_(None))
    if q:
        prefix = _escape_like(q.lstrip("@").lower()) + "%"
        stmt = stmt.where(
            or_(
                User.handle.like(prefix),
                User.display_name.ilike(prefix),
                User.email.like(prefix),
            )
        )
    if role is not None:
        stmt = stmt.where(User.role == role)
    if is_active is not None:
        stmt = stmt.where(User.is_active == is_active)
    if manager_id is not None:
        stmt = stmt.where(User.manager_id == manager_id)
    return stmt


def users_by_id(
    session: Session, org_id: uuid.UUID, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, User]:
    """Several users of one organisation in one query (to present a page of other objects)."""
    users = session.scalars(select(User).where(User.org_id == org_id, User.id.in_(user_ids)))
    return {user.id: user for user in users}


def listed_teams(
    principal: Principal, *, parent_id: uuid.UUID | None = None, root: bool = False
) -> Select[tuple[Team]]:
    """The teams of the principal's organisation, for a page: the direct sub-teams of
    `parent_id`, or only top-level teams with `root`, or all."""
    authorize(principal, "team.list")
    stmt = scoped(principal, Team)
    if parent_id is not None:
        stmt = stmt.where(Team.parent_id == parent_id)
    elif root:
        stmt = stmt.where(Team.parent_id.is_(None))
    return stmt


def team_memberships(principal: Principal, team: Team) -> Select[tuple[TeamMembership]]:
    """The memberships of a team the principal has loaded, for a page."""
    return scoped(principal, TeamMembership).where(TeamMembership.team_id == team.id)
