"""Schemas shared by several resources."""

from __future__ import annotations

import marshmallow as ma

from api.extensions import Schema
from fieldcast.accounts.models import Role, TeamRole


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
