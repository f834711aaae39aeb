"""Teams: hierarchical, with members and team leads."""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, PatchSchema, Schema
from api.fields import String
from api.pagination import Page, PageArgsSchema, page_schema, paginate
from api.runtime import db_session
from api.schemas import UserSummarySchema
from fieldcast.accounts import services as accounts
from fieldcast.models.accounts import Team, TeamMembership, TeamRole

blp = Blueprint(
    "teams",
    __name__,
    url_prefix="/api/v1/teams",
    description="Teams form a tree; each has members and leads. Everyone can read; admins manage.",
)


class TeamSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    name = String(required=True, min_length=1, column=Team.name)
    handle = String(
        load_default=None,
        column=Team.handle,
        metadata={
            "description": "For @mentions, in one namespace with people's handles: 2-32 "
            "lower-case letters, digits, underscores, hyphens. Made from the name when left out."
        },
    )
    description = String(load_default="", column=Team.description)
    parent_id = ma.fields.UUID(
        load_default=None, allow_none=True, metadata={"description": "The team this one sits in"}
    )
    external_id = String(load_default=None, allow_none=True, column=Team.external_id)
    created_at = ma.fields.DateTime(dump_only=True)
    updated_at = ma.fields.DateTime(dump_only=True)


class TeamUpdateSchema(PatchSchema):
    name = String(min_length=1, column=Team.name)
    handle = String(column=Team.handle)
    description = String(column=Team.description)
    parent_id = ma.fields.UUID(allow_none=True)
    external_id = String(allow_none=True, column=Team.external_id)


class TeamListArgsSchema(PageArgsSchema):
    parent_id = ma.fields.UUID(
        load_default=None, metadata={"description": "Only the direct sub-teams of this team"}
    )
    root = ma.fields.Boolean(load_default=False, metadata={"description": "Only top-level teams"})


class MemberSchema(Schema):
    user = ma.fields.Nested(UserSummarySchema, dump_only=True)
    role = ma.fields.Enum(TeamRole, by_value=True, dump_only=True)
    created_at = ma.fields.DateTime(dump_only=True)


class MembershipSchema(Schema):
    role = ma.fields.Enum(TeamRole, by_value=True, load_default=TeamRole.MEMBER)


@blp.route("")
class Teams(MethodView):
    @blp.etag
    @blp.arguments(TeamListArgsSchema, location="query")
    @blp.response(200, page_schema(TeamSchema))
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List teams

        Ordered by name. `parent_id` lists the direct sub-teams of a team; `root=true` the
        top-level teams.
        """
        principal = current_principal()
        stmt = accounts.listed_teams(
            principal, parent_id=args.pop("parent_id"), root=args.pop("root")
        )
        page: Page[Team] = paginate(db_session(), stmt, order_by=[Team.name, Team.id], args=args)
        return {"items": page.items, "next_cursor": page.next_cursor}

    @blp.arguments(TeamSchema)
    @blp.response(201, TeamSchema)
    @blp.problems(403, 409)
    def post(self, body: dict[str, Any]) -> Team:
        """Create a team (admins)"""
        return accounts.create_team(db_session(), current_principal(), **body)


@blp.route("/<uuid:team_id>")
class TeamById(MethodView):
    @blp.etag
    @blp.response(200, TeamSchema)
    @blp.problems(404)
    def get(self, team_id: uuid.UUID) -> Team:
        """Read a team"""
        return accounts.get_team(db_session(), current_principal(), team_id)

    @blp.arguments(TeamUpdateSchema)
    @blp.response(200, TeamSchema)
    @blp.problems(403, 404, 409)
    def patch(self, body: dict[str, Any], team_id: uuid.UUID) -> Team:
        """Update a team (admins)"""
        return accounts.update_team(db_session(), current_principal(), team_id, body)

    @blp.response(204)
    @blp.problems(403, 404, 409)
    def delete(self, team_id: uuid.UUID) -> None:
        """Delete a team (admins)

        A team with sub-teams cannot be deleted (409 `team_has_subteams`).
        """
        accounts.delete_team(db_session(), current_principal(), team_id)


@blp.route("/<uuid:team_id>/members")
class TeamMembers(MethodView):
    @blp.etag
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_schema(MemberSchema))
    @blp.problems(404)
    def get(self, args: dict[str, Any], team_id: uuid.UUID) -> dict[str, Any]:
        """List the members of a team"""
        principal = current_principal()
        team = accounts.get_team(db_session(), principal, team_id)
        page: Page[TeamMembership] = paginate(
            db_session(),
            accounts.team_memberships(principal, team),
            order_by=[TeamMembership.user_id],
            args=args,
        )
        users = accounts.users_by_id(
            db_session(), principal.org_id, [m.user_id for m in page.items]
        )
        items = [
            {"user": users[m.user_id], "role": m.role, "created_at": m.created_at}
            for m in page.items
        ]
        return {"items": items, "next_cursor": page.next_cursor}


@blp.route("/<uuid:team_id>/members/<uuid:user_id>")
class TeamMember(MethodView):
    # The body is optional: without one the person joins as a member.
    @blp.arguments(MembershipSchema, required=False)
    @blp.response(200, MemberSchema)
    @blp.problems(403, 404)
    def put(self, body: dict[str, Any], team_id: uuid.UUID, user_id: uuid.UUID) -> dict[str, Any]:
        """Add a member or change their role in the team (admins)"""
        principal = current_principal()
        membership = accounts.set_membership(
            db_session(), principal, team_id, user_id, body["role"]
        )
        user = accounts.get_user(db_session(), principal, user_id)
        return {"user": user, "role": membership.role, "created_at": membership.created_at}

    @blp.response(204)
    @blp.problems(403, 404)
    def delete(self, team_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Remove a member from the team (admins)"""
        accounts.remove_membership(db_session(), current_principal(), team_id, user_id)
