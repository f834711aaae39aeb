"""A demo organisation, so that a new developer can try the API at once."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from fieldcast.accounts.services import (
    create_organisation,
    create_team,
    create_user,
    set_membership,
)
from fieldcast.db import new_token
from fieldcast.devices.services import register as register_device
from fieldcast.errors import Conflict, ErrorCode
from fieldcast.models.accounts import Organisation, Role, Team, TeamRole, User
from fieldcast.models.devices import Platform
from fieldcast.models.sharing import ListVisibility
from fieldcast.policy import Principal
from fieldcast.sharing.lists import create_list

DEMO_SLUG = "demo"
DEMO_DOMAIN = "demo.example.com"


@dataclass(frozen=True)
class Demo:
    organisation: Organisation
    users: list[User]
    teams: list[Team]
    password: str

    def people(self) -> dict[str, User]:
        return {user.handle: user for user in self.users}

    def teams_by_name(self) -> dict[str, Team]:
        return {team.name: team for team in self.teams}


def load_demo_organisation(session: Session, *, password: str | None = None) -> Demo:
    if session.execute(select(Organisation).where(Organisation.slug == DEMO_SLUG)).first():
        raise Conflict(
            "The demo organisation already exists. Log in with its users, or start from an "
            "empty data directory.",
            code=ErrorCode.DEMO_EXISTS,
        )
    password = password or new_token(9)
    created = create_organisation(
        session,
        name="Northwind Demo",
        slug=DEMO_SLUG,
        admin_email=f"ada@{DEMO_DOMAIN}",
        admin_name="Ada Admin",
        admin_handle="ada",
        admin_password=password,
    )
    admin = Principal(user=created.admin)

    def person(handle: str, name: str, role: Role, manager: User | None = None) -> User:
        return create_user(
            session,
            admin,
            email=f"{handle}@{DEMO_DOMAIN}",
            display_name=name,
            handle=handle,
            role=role,
            password=password,
            manager_id=manager.id if manager else None,
            time_zone="Europe/London",
        )

    maya = person("maya", "Maya Manager", Role.MANAGER)
    riley = person("riley", "Riley Rep", Role.REP, maya)
    sam = person("sam", "Sam Rep", Role.REP, maya)
    jordan = person("jordan", "Jordan Rep", Role.REP, maya)
    eli = person("eli", "Eli Enablement", Role.ENABLEMENT)

    sales = create_team(session, admin, name="Sales", description="Everyone who sells")
    west = create_team(session, admin, name="Sales West", parent_id=sales.id)
    east = create_team(session, admin, name="Sales East", parent_id=sales.id)
    enablement = create_team(session, admin, name="Enablement")
    set_membership(session, admin, west.id, maya.id, TeamRole.LEAD)
    set_membership(session, admin, east.id, maya.id, TeamRole.LEAD)
    set_membership(session, admin, west.id, riley.id)
    set_membership(session, admin, west.id, sam.id)
    set_membership(session, admin, east.id, jordan.id)
    set_membership(session, admin, enablement.id, eli.id, TeamRole.LEAD)
    people = [riley, maya, eli, created.admin, sam, jordan]
    # A phone each, so the pushes of a demo show in the local sink's log (with FCM configured,
    # FCM rejects these tokens and they are forgotten).
    for user in people:
        register_device(
            session,
            Principal(user=user),
            token=f"demo-phone-of-{user.handle}",
            platform=Platform.IOS,
            locale="en-GB",
        )
    create_list(
        session,
        Principal(user=maya),
        name="My reps",
        description="Everyone reporting to Maya",
        user_ids=[riley.id, sam.id, jordan.id],
    )
    create_list(
        session,
        Principal(user=eli),
        name="All of sales",
        visibility=ListVisibility.ORGANISATION,
        team_ids=[sales.id],
    )
    return Demo(created.organisation, people, [sales, west, east, enablement], password)
