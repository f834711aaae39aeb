"""factory_boy factories for the domain objects, with traits."""

from __future__ import annotations

import factory
from argon2 import PasswordHasher
from factory.alchemy import SQLAlchemyModelFactory
from sqlalchemy.orm import Session

from fieldcast.db import utcnow
from fieldcast.deals.catalogue import create_defaults
from fieldcast.models.accounts import Organisation, Role, Team, TeamMembership, TeamRole, User
from fieldcast.models.devices import Device, Platform

PASSWORD = "correct-horse-battery"
# The suite hashes passwords at argon2's lowest costs (its settings, tests/conftest.py), and the
# factories' users share one hash made at them: logins still verify real argon2 hashes.
HASH_TIME_COST = 1
HASH_MEMORY_KIB = 32
PASSWORD_HASH = PasswordHasher(time_cost=HASH_TIME_COST, memory_cost=HASH_MEMORY_KIB).hash(PASSWORD)

_holder: dict[str, Session | None] = {"session": None}


def _current() -> Session:
    session = _holder["session"]
    if session is None:
        raise RuntimeError("factories need the `session` fixture")
    return session


def bind(session: Session | None) -> None:
    _holder["session"] = session


class _Base(SQLAlchemyModelFactory):
    class Meta:
        abstract = True
        sqlalchemy_session_factory = _current
        sqlalchemy_session_persistence = "flush"


class OrganisationFactory(_Base):
    class Meta:
        model = Organisation

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")

    @factory.post_generation
    def catalogue(self, create: bool, extracted: object, **kwargs: object) -> None:
        """Every organisation starts with the default attribute catalogue, as in the product."""
        if create:
            _current().flush()
            create_defaults(_current(), self.id)


class UserFactory(_Base):
    class Meta:
        model = User
        exclude = ("org",)

    org = factory.SubFactory(OrganisationFactory)
    org_id = factory.SelfAttribute("org.id")
    email = factory.Sequence(lambda n: f"user{n}@example.com")
    display_name = factory.Sequence(lambda n: f"User {n}")
    handle = factory.Sequence(lambda n: f"user{n}")
    role = Role.REP
    password_hash = PASSWORD_HASH
    is_active = True

    class Params:
        admin = factory.Trait(role=Role.ADMIN)
        manager = factory.Trait(role=Role.MANAGER)
        enablement = factory.Trait(role=Role.ENABLEMENT)
        inactive = factory.Trait(is_active=False)


class TeamFactory(_Base):
    class Meta:
        model = Team
        exclude = ("org",)

    org = factory.SubFactory(OrganisationFactory)
    org_id = factory.SelfAttribute("org.id")
    name = factory.Sequence(lambda n: f"Team {n}")
    handle = factory.Sequence(lambda n: f"team-{n}")
    description = ""


class MembershipFactory(_Base):
    class Meta:
        model = TeamMembership
        exclude = ("team", "user")

    team = None
    user = None
    team_id = factory.LazyAttribute(lambda o: o.team.id)
    user_id = factory.LazyAttribute(lambda o: o.user.id)
    org_id = factory.LazyAttribute(lambda o: o.team.org_id)
    role = TeamRole.MEMBER

    class Params:
        lead = factory.Trait(role=TeamRole.LEAD)


class DeviceFactory(_Base):
    """A person's phone: `DeviceFactory(user=...)`, its token named after them."""

    class Meta:
        model = Device
        exclude = ("user",)

    user = None
    org_id = factory.LazyAttribute(lambda o: o.user.org_id)
    user_id = factory.LazyAttribute(lambda o: o.user.id)
    token = factory.LazyAttribute(lambda o: f"token-{o.user.id}")
    platform = Platform.ANDROID
    last_registered_at = factory.LazyFunction(utcnow)
