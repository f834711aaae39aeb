"""The SCIM resources the directory serves, as scim2-models classes, and what it announces.

The schemas publish exactly what the product keeps, so that what an identity provider writes
reads back the same (RFC 7643 §2: a service provider may support a subset of a schema):

- User: `userName`, `name` (`givenName`, `familyName`), `displayName`, `emails` (one, the
  person's email, of `type` "work"), `active`, `externalId`, and the enterprise
  extension's `employeeNumber`, `department` and `manager`.
- Group (a team): `displayName`, `externalId`, `members` (people only).

Attributes outside them (phone numbers, titles, addresses, ...) are accepted and dropped
(`ScimPolicy.Unknown.ignore`): Okta and Entra ID send them whatever the schema says.
`emails`, `displayName` and `active` are required: the product cannot keep a person without
them; a creation that leaves out `displayName` or `active` gets a name made from the other
attributes and is active (see `api.scim`).
"""

import functools
from typing import Annotated, Any, ClassVar

from pydantic import Field
from scim2_models import (
    URN,
    AuthenticationScheme,
    Bulk,
    CaseExact,
    ChangePassword,
    ComplexAttribute,
    ETag,
    Extension,
    Filter,
    Mutability,
    Patch,
    Reference,
    Required,
    Resource,
    ResourceType,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    Uniqueness,
)

# Limits of what one request may ask (the body's size is bounded by the API, see api.scim).
MAX_RESULTS = 200
MAX_FILTER_LENGTH = 2000

ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


class Name(ComplexAttribute):
    given_name: Annotated[str | None, Field(max_length=120)] = None
    """The person's given name."""

    family_name: Annotated[str | None, Field(max_length=120)] = None
    """The person's family name."""


class Email(ComplexAttribute):
    value: Annotated[str | None, Required.true, Field(max_length=320)] = None
    """The person's email: where they sign in and are notified."""

    type: str | None = Field(None, examples=["work"])
    """Always "work": the product keeps one address."""


class Manager(ComplexAttribute):
    value: Annotated[str | None, Required.true, CaseExact.true] = None
    """The id of the manager's User."""

    ref: Annotated[
        Reference["User"] | None,
        Required.false,
    ] = Field(None, serialization_alias="$ref", validation_alias="$ref")
    """The URI of the manager's User."""


class EnterpriseUser(Extension):
    __schema__ = URN(ENTERPRISE_URN)

    employee_number: Annotated[str | None, Field(max_length=64)] = None
    """The person's employee number."""

    department: Annotated[str | None, Field(max_length=255)] = None
    """The person's department."""

    manager: Manager | None = None
    """The person's manager: sets their reporting line."""


class User(Resource[Any]):
    __schema__ = URN("urn:ietf:params:scim:schemas:core:2.0:User")

    user_name: Annotated[str | None, Uniqueness.server, Required.true, Field(max_length=255)] = None
    """The person's unique name in the directory (their email when none was given)."""

    name: Name | None = None
    """The parts of the person's name."""

    display_name: Annotated[str | None, Required.true, Field(max_length=120)] = None
    """The name shown in the product."""

    active: Annotated[bool | None, Required.true] = None
    """Whether the person may sign in. False deactivates them: their sessions end and their
    phones are forgotten; what they made stays."""

    emails: Annotated[list[Email] | None, Required.true, Field(max_length=10)] = None
    """The person's email; of several, the first is kept."""

    Emails: ClassVar[type[ComplexAttribute]] = Email
    Name: ClassVar[type[ComplexAttribute]] = Name


class GroupMember(ComplexAttribute):
    value: Annotated[str | None, Mutability.immutable, CaseExact.true, Required.true] = None
    """The id of a member's User."""

    ref: Annotated[
        Reference["User"] | None,
        Mutability.immutable,
    ] = Field(None, serialization_alias="$ref", validation_alias="$ref")
    """The URI of the member's User."""

    type: Annotated[str | None, Mutability.immutable] = Field(None, examples=["User"])
    """Always "User": teams hold people, not other teams."""


class Group(Resource[Any]):
    __schema__ = URN("urn:ietf:params:scim:schemas:core:2.0:Group")

    display_name: Annotated[str | None, Required.true, Field(max_length=120)] = None
    """The team's name."""

    members: list[GroupMember] | None = None
    """The team's members."""

    Members: ClassVar[type[ComplexAttribute]] = GroupMember


# Okta and Entra ID depart from the RFC in known ways: attributes no schema declares, a PATCH
# `remove` naming its members in `value` (Entra), `emails[type eq "work"].value` on a person
# without such an entry (Entra).
POLICY = ScimPolicy(
    unknown=ScimPolicy.Unknown.ignore,
    remove_value_as_filter=ScimPolicy.RemoveValue.apply,
    unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
)


def user_resource_type() -> ResourceType:
    resource_type = ResourceType.from_resource(User[EnterpriseUser])  # type: ignore[misc]
    resource_type.description = "People of the organisation"
    return resource_type


def group_resource_type() -> ResourceType:
    resource_type = ResourceType.from_resource(Group)
    resource_type.description = "Teams of the organisation"
    return resource_type


@functools.cache
def provider() -> ScimProvider:
    """What the service serves and announces on /ServiceProviderConfig, /ResourceTypes and
    /Schemas. Built once per process (the models are immutable)."""
    config = ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="Bearer token",
                description=(
                    "The organisation's SCIM token, made by an admin with POST /api/v1/scim-token."
                ),
                primary=True,
            )
        ],
    )
    return ScimProvider(
        models=[User, EnterpriseUser, Group],
        resource_types=[user_resource_type(), group_resource_type()],
        config=config,
        policy=POLICY,
    )
