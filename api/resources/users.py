"""The organisation's people: a directory for everyone, administration for admins."""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, PatchSchema, Schema
from api.fields import Email, String
from api.pagination import Page, PageArgsSchema, page_schema, paginate
from api.runtime import db_session
from api.schemas import MeSchema, UserSchema, attributes
from fieldcast.accounts import deletion
from fieldcast.accounts import services as accounts
from fieldcast.accounts.services import teams_of
from fieldcast.models.accounts import Role, User
from fieldcast.policy import Principal

blp = Blueprint(
    "users",
    __name__,
    url_prefix="/api/v1",
    description="The people of your organisation. Everyone can read; admins manage.",
)


class UserListArgsSchema(PageArgsSchema):
    q = String(
        load_default=None,
        min_length=1,
        max_length=100,
        metadata={
            "description": "Prefix of a handle, display name or email (for @mention pickers)"
        },
    )
    role = ma.fields.Enum(Role, by_value=True, load_default=None)
    is_active = ma.fields.Boolean(load_default=None)
    manager_id = ma.fields.UUID(
        load_default=None, metadata={"description": "Direct reports of this user"}
    )


class UserCreateSchema(Schema):
    email = Email(required=True, column=User.email)
    display_name = String(required=True, min_length=1, column=User.display_name)
    handle = String(required=True, min_length=2, column=User.handle)
    role = ma.fields.Enum(Role, by_value=True, load_default=Role.REP)
    password = String(
        load_default=None,
        load_only=True,
        min_length=10,
        max_length=1024,
        metadata={"description": "Leave out for users who sign in through an identity provider"},
    )
    manager_id = ma.fields.UUID(load_default=None, allow_none=True)
    external_id = String(load_default=None, allow_none=True, column=User.external_id)
    time_zone = String(load_default="UTC", column=User.time_zone)


class UserUpdateSchema(PatchSchema):
    display_name = String(min_length=1, column=User.display_name)
    handle = String(min_length=2, column=User.handle)
    role = ma.fields.Enum(Role, by_value=True)
    password = String(load_only=True, allow_none=True, min_length=10, max_length=1024)
    manager_id = ma.fields.UUID(allow_none=True)
    is_active = ma.fields.Boolean(
        metadata={"description": "false deactivates and ends all sessions and API tokens"}
    )
    external_id = String(allow_none=True, column=User.external_id)
    time_zone = String(column=User.time_zone)


DELETION_POLICY = """
What happens: the person's sessions, tokens, phones, inbox, notification preferences, muted
videos and memberships are deleted at once; their profile (name, email, handle) is replaced by
an anonymous "Former member" and the email is free for a new account. Their videos stay with
the organisation under the "Former member" author so the team's learning is not lost; admins
can delete them like any video. To take videos away too, delete them before the account.
"""


class AccountDeletionSchema(Schema):
    password = String(
        load_default=None,
        load_only=True,
        min_length=1,
        max_length=1024,
        metadata={
            "description": (
                "The current password. Without it, the login session must be at most five "
                "minutes old (log in again first; for accounts without a password)."
            )
        },
    )


class ProfileUpdateSchema(PatchSchema):
    display_name = String(min_length=1, column=User.display_name)
    time_zone = String(column=User.time_zone)


def with_teams(principal: Principal, users: list[User]) -> list[dict[str, Any]]:
    """Serialise users with their teams, loading the teams of all of them in one query."""
    memberships = teams_of(db_session(), principal, [u.id for u in users])
    result = []
    for user in users:
        data = attributes(user, UserSchema, exclude={"teams"})
        data["teams"] = [
            {"id": team.id, "name": team.name, "role": role} for team, role in memberships[user.id]
        ]
        result.append(data)
    return result


@blp.route("/users")
class Users(MethodView):
    @blp.etag
    @blp.arguments(UserListArgsSchema, location="query")
    @blp.response(200, page_schema(UserSchema))
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List users

        Ordered by handle. Filter by `q` (a prefix of handle, display name or email), `role`,
        `is_active` or `manager_id`.
        """
        principal = current_principal()
        stmt = accounts.listed_users(
            principal,
            q=args.pop("q"),
            role=args.pop("role"),
            is_active=args.pop("is_active"),
            manager_id=args.pop("manager_id"),
        )
        page: Page[User] = paginate(db_session(), stmt, order_by=[User.handle], args=args)
        return {"items": with_teams(principal, page.items), "next_cursor": page.next_cursor}

    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserSchema)
    @blp.problems(403, 409)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a user (admins)"""
        principal = current_principal()
        user = accounts.create_user(db_session(), principal, **body)
        return with_teams(principal, [user])[0]


@blp.route("/users/<uuid:user_id>")
class UserById(MethodView):
    @blp.etag
    @blp.response(200, UserSchema)
    @blp.problems(404)
    def get(self, user_id: uuid.UUID) -> dict[str, Any]:
        """Read a user"""
        principal = current_principal()
        user = accounts.get_user(db_session(), principal, user_id)
        return with_teams(principal, [user])[0]

    @blp.arguments(UserUpdateSchema)
    @blp.response(200, UserSchema)
    @blp.problems(403, 404, 409)
    def patch(self, body: dict[str, Any], user_id: uuid.UUID) -> dict[str, Any]:
        """Update a user (admins)

        Setting `is_active` to false ends the user's sessions and API tokens at once.
        """
        principal = current_principal()
        user = accounts.update_user(db_session(), principal, user_id, body)
        return with_teams(principal, [user])[0]

    @blp.response(204)
    @blp.problems(403, 404, 409, 422)
    @blp.doc(
        description=(
            "Deletes someone else's account, with the same policy as deleting one's own. "
            "422 `own_account` for yourself (use `DELETE /api/v1/me`). Deleting a deleted "
            "account again changes nothing.\n" + DELETION_POLICY
        )
    )
    def delete(self, user_id: uuid.UUID) -> None:
        """Delete a person's account (admins)"""
        deletion.delete_user(db_session(), current_principal(), user_id)


def _me(principal: Principal) -> dict[str, Any]:
    data = with_teams(principal, [principal.user])[0]
    data["organisation"] = accounts.get_organisation(db_session(), principal.org_id)
    return data


@blp.route("/me")
class Me(MethodView):
    @blp.etag
    @blp.response(200, MeSchema)
    def get(self) -> dict[str, Any]:
        """Who am I: the signed-in user, their teams and organisation"""
        return _me(current_principal())

    @blp.arguments(ProfileUpdateSchema)
    @blp.response(200, MeSchema)
    def patch(self, body: dict[str, Any]) -> dict[str, Any]:
        """Update my display name or time zone"""
        principal = current_principal()
        accounts.update_profile(db_session(), principal, body)
        return _me(principal)

    @blp.arguments(AccountDeletionSchema)
    @blp.response(204)
    @blp.problems(403, 409, 422)
    @blp.doc(
        description=(
            "Confirm with `password`, or call within five minutes of logging in. 403 "
            "`reauthentication_required` otherwise; 409 `last_admin` for the organisation's "
            "only admin; 422 `not_a_login_session` with an API token. Afterwards every token "
            "of the account answers 401.\n" + DELETION_POLICY
        )
    )
    def delete(self, body: dict[str, Any]) -> None:
        """Delete my account"""
        deletion.delete_own_account(db_session(), current_principal(), password=body["password"])
