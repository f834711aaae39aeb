"""Schemas shared by several resources."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import marshmallow as ma

from api.extensions import Schema
from fieldcast.models.accounts import Role, TeamRole


def attributes(
    obj: Any, schema: type[ma.Schema], *, exclude: Collection[str] = ()
) -> dict[str, Any]:
    """The object's attributes that the schema names, not yet serialised.

    Views return these and let `@blp.response` dump them once; dumping in the view as well
    would serialise twice (enums and dates would no longer be themselves).
    """
    return {name: getattr(obj, name) for name in schema._declared_fields if name not in exclude}


class OrganisationSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    name = ma.fields.String(dump_only=True)
    slug = ma.fields.String(dump_only=True)


class UserTeamSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    name = ma.fields.String(dump_only=True)
    role = ma.fields.Enum(TeamRole, by_value=True, dump_only=True)


class UserSummarySchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    display_name = ma.fields.String(dump_only=True)
    handle = ma.fields.String(dump_only=True)
    role = ma.fields.Enum(Role, by_value=True, dump_only=True)
    is_active = ma.fields.Boolean(dump_only=True)


class UserSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    email = ma.fields.Email(dump_only=True)
    display_name = ma.fields.String(dump_only=True)
    handle = ma.fields.String(
        dump_only=True, metadata={"description": "Unique in the organisation; mention as @handle"}
    )
    role = ma.fields.Enum(Role, by_value=True, dump_only=True)
    manager_id = ma.fields.UUID(dump_only=True, allow_none=True)
    is_active = ma.fields.Boolean(dump_only=True)
    external_id = ma.fields.String(dump_only=True, allow_none=True)
    time_zone = ma.fields.String(dump_only=True)
    teams = ma.fields.List(ma.fields.Nested(UserTeamSchema), dump_only=True)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class MeSchema(UserSchema):
    organisation = ma.fields.Nested(OrganisationSchema, dump_only=True)
