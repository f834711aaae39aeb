"""scim2-server's storage over the product's own tables: Users are `users`, Groups are
`teams` with their `team_memberships`.

scim2-server does the protocol (validation, PATCH and PUT applied to the current resource,
If-Match, paging bounds, errors); this storage reads and writes rows. Every write goes through
`fieldcast.accounts.services` as the organisation's SCIM token's principal, so a provisioned
person is made, joins teams and is deactivated exactly as an admin would do it through the
API: the same checks, the same audit entries and the same events (the programs' rules assign
on `PersonTookRole` and `PersonJoinedTeams`; deactivation ends sessions and forgets phones).

Everything is scoped to the principal's organisation: a token never sees another one's rows.
The request's transaction is the unit of work: the app commits it on success and rolls it back
on any error, so a failed request leaves nothing half done (bulk requests are not offered).
`operation()` turns the services' domain errors into SCIM errors.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from scim2_models import (
    InvalidValueException,
    Meta,
    MutabilityException,
    NotFoundException,
    PreconditionFailedException,
    Resource,
    ResourceType,
    ResponseParameters,
    SCIMException,
    SearchRequest,
    UniquenessException,
)
from scim2_models.exceptions import ConflictException
from scim2_server.storage import ScimStorage, SearchPage
from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fieldcast.accounts import services as accounts
from fieldcast.db import utcnow
from fieldcast.directory import filters
from fieldcast.directory.resources import (
    MAX_RESULTS,
    Email,
    EnterpriseUser,
    GroupMember,
    Manager,
    Name,
)
from fieldcast.errors import Conflict, DomainError, InvalidInput, NotFound, PermissionDenied
from fieldcast.models.accounts import Team, TeamMembership, User
from fieldcast.policy import Principal

# A team provisioned over SCIM holds at most this many members (what a PUT or a PATCH leaves):
# every write reads and compares them all.
MAX_MEMBERS = 10_000


def _version(*parts: object) -> str:
    digest = hashlib.sha256("|".join(str(part) for part in parts).encode()).hexdigest()
    return f'W/"{digest[:20]}"'


def _parse_id(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def scim_error(error: DomainError) -> SCIMException:
    """The SCIM error of a domain error raised by a service."""
    detail = error.detail or error.title
    if error.errors:
        fields = "; ".join(
            f"{name}: {' '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}"
            for name, msgs in error.errors.items()
        )
        detail = f"{detail} ({fields})" if detail else fields
    if isinstance(error, Conflict):
        if error.code in ("email_taken", "handle_taken", "external_id_taken", "team_name_taken"):
            return UniquenessException(detail=detail)
        return ConflictException(detail=detail)
    if isinstance(error, NotFound):
        return NotFoundException(detail=detail)
    if isinstance(error, PermissionDenied):
        return MutabilityException(detail=detail)
    if isinstance(error, InvalidInput):
        return InvalidValueException(detail=detail)
    return SCIMException(detail=detail)


class DirectoryStorage(ScimStorage):
    """Users and Groups of one organisation, read and written as `principal`."""

    def __init__(self, session: Session, principal: Principal) -> None:
        self.session = session
        self.principal = principal

    @property
    def org_id(self) -> uuid.UUID:
        return self.principal.org_id

    @contextmanager
    def operation(self) -> Iterator[None]:
        """Domain errors become SCIM errors; nothing else is caught."""
        try:
            yield
        except DomainError as error:
            raise scim_error(error) from None

    # -- reading --------------------------------------------------------------------------

    def _users(self) -> Select[Any]:
        # Deleted accounts and people the directory deleted are out of its view.
        return select(User).where(
            User.org_id == self.org_id,
            User.deleted_at.is_(None),
            User.deprovisioned_at.is_(None),
        )

    def _teams(self) -> Select[Any]:
        return select(Team).where(Team.org_id == self.org_id)

    def _load_user(self, resource_id: str, *, lock: bool = False) -> User:
        user_id = _parse_id(resource_id)
        stmt = self._users().where(User.id == user_id)
        user: User | None = (
            self.session.scalar(stmt.with_for_update() if lock else stmt)
            if user_id is not None
            else None
        )
        if user is None:
            raise NotFoundException(detail=f"No User {resource_id}")
        return user

    def _load_team(self, resource_id: str, *, lock: bool = False) -> Team:
        team_id = _parse_id(resource_id)
        stmt = self._teams().where(Team.id == team_id)
        team: Team | None = (
            self.session.scalar(stmt.with_for_update() if lock else stmt)
            if team_id is not None
            else None
        )
        if team is None:
            raise NotFoundException(detail=f"No Group {resource_id}")
        return team

    def _members_of(self, team_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        members: dict[uuid.UUID, list[uuid.UUID]] = {team_id: [] for team_id in team_ids}
        rows = self.session.execute(
            select(TeamMembership.team_id, TeamMembership.user_id)
            .join(
                User,
                (User.id == TeamMembership.user_id) & (User.org_id == TeamMembership.org_id),
            )
            .where(
                TeamMembership.org_id == self.org_id,
                TeamMembership.team_id.in_(team_ids),
                User.deleted_at.is_(None),
                User.deprovisioned_at.is_(None),
            )
            .order_by(TeamMembership.team_id, TeamMembership.user_id)
        )
        for team_id, user_id in rows:
            members[team_id].append(user_id)
        return members

    def _team_version(self, team: Team, members: Sequence[uuid.UUID] | None = None) -> str:
        if members is None:
            members = self._members_of([team.id])[team.id]
        return _version(team.updated_at.isoformat(), *members)

    def user_resource(self, resource_type: ResourceType, user: User) -> Resource[Any]:
        model: Any = _model(resource_type)
        resource = model(
            id=str(user.id),
            external_id=user.external_id,
            user_name=user.user_name or user.email,
            name=(
                Name(given_name=user.given_name, family_name=user.family_name)
                if user.given_name or user.family_name
                else None
            ),
            display_name=user.display_name,
            active=user.is_active,
            emails=[Email(value=user.email, type="work")],
            meta=Meta(
                resource_type="User",
                created=user.created_at,
                last_modified=user.updated_at,
                version=_version(user.updated_at.isoformat()),
            ),
        )
        if user.employee_number or user.department or user.manager_id:
            resource[EnterpriseUser] = EnterpriseUser(
                employee_number=user.employee_number,
                department=user.department,
                manager=(
                    Manager(value=str(user.manager_id), ref=_ref(user.manager_id))
                    if user.manager_id
                    else None
                ),
            )
        return resource

    def group_resource(
        self, resource_type: ResourceType, team: Team, members: Sequence[uuid.UUID] | None
    ) -> Resource[Any]:
        """A team as a Group; `members` None when the response leaves them out."""
        model: Any = _model(resource_type)
        return model(
            id=str(team.id),
            external_id=team.external_id,
            display_name=team.name,
            members=(
                [
                    GroupMember(value=str(user_id), ref=_ref(user_id), type="User")
                    for user_id in members
                ]
                or None
                if members is not None
                else None
            ),
            meta=Meta(
                resource_type="Group",
                created=team.created_at,
                last_modified=team.updated_at,
                version=self._team_version(team, members),
            ),
        )

    def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        if resource_type.name == "User":
            return self.user_resource(resource_type, self._load_user(resource_id))
        team = self._load_team(resource_id)
        return self.group_resource(resource_type, team, self._members_of([team.id])[team.id])

    def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        """One page of the matches; at the root (several types), Users then Groups, as one
        collection."""
        offset = search_request.start_index_0 or 0
        wanted = min(
            search_request.count if search_request.count is not None else MAX_RESULTS,
            MAX_RESULTS,
        )
        total, resources = 0, list[Resource[Any]]()
        for resource_type in resource_types:
            stmt = self._matching(resource_type, search_request)
            matches = self.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            total += matches
            if offset >= matches:
                offset -= matches
                continue
            if len(resources) < wanted:
                resources += self._page(
                    resource_type, search_request, stmt, offset, wanted - len(resources)
                )
            offset = 0
        return SearchPage(total=total, resources=resources)

    def _matching(
        self, resource_type: ResourceType, search_request: SearchRequest[Any]
    ) -> Select[Any]:
        is_user = resource_type.name == "User"
        stmt = self._users() if is_user else self._teams()
        if search_request.filter is not None:
            node = search_request.filter.ast
            stmt = stmt.where(
                filters.user_predicate(node) if is_user else filters.group_predicate(node)
            )
        return stmt

    def _page(
        self,
        resource_type: ResourceType,
        search_request: SearchRequest[Any],
        stmt: Select[Any],
        offset: int,
        limit: int,
    ) -> list[Resource[Any]]:
        model: Any = User if resource_type.name == "User" else Team
        rows = list(
            self.session.scalars(
                stmt.order_by(model.created_at, model.id).offset(offset).limit(limit)
            )
        )
        if model is User:
            return [self.user_resource(resource_type, user) for user in rows]
        excluded = {str(a).lower() for a in search_request.excluded_attributes or []}
        # Identity providers list groups without their members, then read them one by one.
        members = {} if "members" in excluded else self._members_of([team.id for team in rows])
        return [self.group_resource(resource_type, team, members.get(team.id)) for team in rows]

    # -- writing --------------------------------------------------------------------------

    def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        if resource_type.name == "User":
            return self.user_resource(resource_type, self._create_user(resource))
        return self._create_group(resource_type, resource)

    def update(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        if resource_type.name == "User":
            user = self._load_user(str(resource.id), lock=True)
            if expected_version is not None and expected_version != _version(
                user.updated_at.isoformat()
            ):
                raise PreconditionFailedException(detail="The User changed meanwhile")
            self._write_user(user, resource)
            return self.user_resource(resource_type, user)
        team = self._load_team(str(resource.id), lock=True)
        if expected_version is not None and expected_version != self._team_version(team):
            raise PreconditionFailedException(detail="The Group changed meanwhile")
        self._write_group(team, resource)
        return self.get(resource_type, str(team.id))

    def delete(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        expected_version: str | None = None,
    ) -> None:
        if resource_type.name == "User":
            user = self._load_user(resource_id, lock=True)
            if expected_version is not None and expected_version != _version(
                user.updated_at.isoformat()
            ):
                raise PreconditionFailedException(detail="The User changed meanwhile")
            self._deprovision(user)
            return
        team = self._load_team(resource_id, lock=True)
        if expected_version is not None and expected_version != self._team_version(team):
            raise PreconditionFailedException(detail="The Group changed meanwhile")
        accounts.delete_team(self.session, self.principal, team.id)

    # -- people ---------------------------------------------------------------------------

    def _check_user_name(self, user_name: str, user_id: uuid.UUID | None) -> None:
        """userName is unique in the organisation, whatever its case (RFC 7643 §4.1.1)."""
        stmt = self._users().where(
            func.lower(func.coalesce(User.user_name, User.email)) == user_name.lower()
        )
        if user_id is not None:
            stmt = stmt.where(User.id != user_id)
        if self.session.scalar(select(stmt.exists())):
            raise UniquenessException(detail="Another User has this userName")

    def _fields(self, resource: Any) -> dict[str, Any]:
        """What the product keeps of a User resource, checked."""
        user_name = (resource.user_name or "").strip()
        if not user_name:
            raise InvalidValueException(detail="userName must not be blank")
        # `primary` is not kept (the schema has no such attribute): the first address is.
        emails = [e.value for e in resource.emails or [] if e.value]
        email = emails[0] if emails else (user_name if "@" in user_name else None)
        if not email:
            raise InvalidValueException(detail="A User needs an email (emails or userName)")
        name = resource.name
        given = (name.given_name if name else None) or None
        family = (name.family_name if name else None) or None
        display_name = (resource.display_name or "").strip() or (
            " ".join(part for part in (given, family) if part) or user_name
        )[:120]
        extension = resource[EnterpriseUser] if EnterpriseUser in _extensions(resource) else None
        manager_id = None
        if extension is not None and extension.manager is not None and extension.manager.value:
            manager_id = _parse_id(extension.manager.value)
            if manager_id is None:
                raise InvalidValueException(detail="manager.value is not the id of a User")
            try:
                self._load_user(str(manager_id))
            except NotFoundException:
                raise InvalidValueException(
                    detail="manager.value is not the id of a User"
                ) from None
        return {
            "user_name": user_name,
            "email": accounts.normalise_email(email),
            "given_name": given,
            "family_name": family,
            "display_name": display_name,
            "external_id": resource.external_id or None,
            "active": resource.active is not False,
            "manager_id": manager_id,
            "department": extension.department if extension is not None else None,
            "employee_number": extension.employee_number if extension is not None else None,
        }

    def _create_user(self, resource: Resource[Any]) -> User:
        fields = self._fields(resource)
        self._check_user_name(fields["user_name"], None)
        revived = self._revive(fields)
        if revived is not None:
            return revived
        base = fields["user_name"].partition("@")[0] or fields["display_name"]
        user = accounts.create_user(
            self.session,
            self.principal,
            email=fields["email"],
            display_name=fields["display_name"],
            handle=accounts.free_handle(self.session, self.org_id, base),
            manager_id=fields["manager_id"],
            external_id=fields["external_id"],
        )
        self._set_directory_fields(user, fields)
        if not fields["active"]:
            accounts.update_user(self.session, self.principal, user.id, {"is_active": False})
        return user

    def _revive(self, fields: dict[str, Any]) -> User | None:
        """A person the directory deleted, provisioned again under their email: the same
        account comes back (with what they made), rather than a conflict on the email."""
        user = self.session.scalar(
            select(User)
            .where(
                User.org_id == self.org_id,
                User.email == fields["email"],
                User.deleted_at.is_(None),
                User.deprovisioned_at.is_not(None),
            )
            .with_for_update()
        )
        if user is None:
            return None
        user.deprovisioned_at = None
        self._apply_user(user, fields)
        return user

    def _write_user(self, user: User, resource: Resource[Any]) -> None:
        fields = self._fields(resource)
        self._check_user_name(fields["user_name"], user.id)
        self._apply_user(user, fields)

    def _apply_user(self, user: User, fields: dict[str, Any]) -> None:
        changes = {
            name: fields[name]
            for name in ("display_name", "external_id", "manager_id")
            if getattr(user, name) != fields[name]
        }
        if user.is_active != fields["active"]:
            changes["is_active"] = fields["active"]
        if fields["email"] != user.email:
            taken = self.session.scalar(
                select(select(User.id).where(User.email == fields["email"]).exists())
            )
            if taken:
                raise UniquenessException(detail="Another account has this email")
            user.email = fields["email"]
        if changes:
            accounts.update_user(self.session, self.principal, user.id, changes)
        self._set_directory_fields(user, fields)

    def _set_directory_fields(self, user: User, fields: dict[str, Any]) -> None:
        for name in ("user_name", "given_name", "family_name", "department", "employee_number"):
            setattr(user, name, fields[name])
        try:
            self.session.flush()
        except IntegrityError:
            self.session.rollback()
            raise UniquenessException(detail="Another User has this userName or email") from None

    def _deprovision(self, user: User) -> None:
        """DELETE: the person is deactivated (sessions ended, phones forgotten) and leaves the
        directory's view; their account and what they made stay."""
        if user.is_active:
            accounts.update_user(self.session, self.principal, user.id, {"is_active": False})
        user.deprovisioned_at = utcnow()
        # Free for someone else in the directory; the email stays (and revives the account).
        user.user_name = None
        if user.external_id is not None:
            accounts.update_user(self.session, self.principal, user.id, {"external_id": None})
        self.session.flush()

    # -- teams ----------------------------------------------------------------------------

    def _member_ids(self, resource: Any) -> list[uuid.UUID]:
        members = list(resource.members or [])
        if len(members) > MAX_MEMBERS:
            raise InvalidValueException(detail=f"A Group holds at most {MAX_MEMBERS} members")
        ids: list[uuid.UUID] = []
        for member in members:
            if member.type not in (None, "User"):
                raise InvalidValueException(detail="Group members are Users; teams do not nest")
            user_id = _parse_id(member.value)
            if user_id is None:
                raise InvalidValueException(detail=f"No User {member.value}")
            ids.append(user_id)
        wanted = list(dict.fromkeys(ids))
        if wanted:
            found = set(
                self.session.scalars(
                    self._users().where(User.id.in_(wanted)).with_only_columns(User.id)
                )
            )
            missing = [str(user_id) for user_id in wanted if user_id not in found]
            if missing:
                raise InvalidValueException(detail=f"No User {missing[0]}")
        return wanted

    def _create_group(self, resource_type: ResourceType, resource: Any) -> Resource[Any]:
        member_ids = self._member_ids(resource)
        team = accounts.create_team(
            self.session,
            self.principal,
            name=resource.display_name or "",
            external_id=resource.external_id or None,
        )
        for user_id in member_ids:
            accounts.set_membership(self.session, self.principal, team.id, user_id)
        return self.get(resource_type, str(team.id))

    def _write_group(self, team: Team, resource: Any) -> None:
        member_ids = self._member_ids(resource)
        changes = {
            name: value
            for name, value in (
                ("name", resource.display_name or ""),
                ("external_id", resource.external_id or None),
            )
            if getattr(team, name) != value
        }
        if changes:
            accounts.update_team(self.session, self.principal, team.id, changes)
        current = set(self._members_of([team.id])[team.id])
        for user_id in member_ids:
            if user_id not in current:
                accounts.set_membership(self.session, self.principal, team.id, user_id)
        for user_id in current - set(member_ids):
            accounts.remove_membership(self.session, self.principal, team.id, user_id)
        # The members are the Group's too: its version and lastModified move with them.
        team.updated_at = utcnow()
        self.session.flush()


def _ref(user_id: uuid.UUID) -> Any:
    """A reference to a User, relative to the SCIM root: the service makes it a URL."""
    return f"Users/{user_id}"


def _model(resource_type: ResourceType) -> type[Resource[Any]]:
    from fieldcast.directory.resources import provider

    model = provider().model_for(resource_type)
    assert model is not None
    return model  # type: ignore[return-value]


def _extensions(resource: Resource[Any]) -> list[type]:
    return list(getattr(type(resource), "__scim_extension_metadata__", []))
