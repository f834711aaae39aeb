"""Invitations by email: admins invite, the invited person accepts from the link."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import marshmallow as ma
from flask import request
from flask.views import MethodView

from api.auth import current_principal, token_config
from api.extensions import Blueprint, Schema, public
from api.fields import Email, String
from api.pagination import Page, PageArgsSchema, page_schema, paginate
from api.resources.auth import TokenSchema
from api.runtime import context, db_session
from api.schemas import OrganisationSchema, attributes
from fieldcast.accounts import invitations, tokens
from fieldcast.accounts.invitations import InvitationStatus
from fieldcast.models.accounts import Invitation, Role, User

blp = Blueprint(
    "invitations",
    __name__,
    url_prefix="/api/v1/invitations",
    description=(
        "Invite people by email (admins). The email carries an app link "
        "`<APP_LINK_BASE>/invitations/accept?token=...`; the app sends the token to "
        "`POST /api/v1/invitations/accept` with the new person's password and handle, and "
        "gets tokens as from a login. The token works once, until the invitation expires "
        "(INVITATION_TTL_S, 7 days by default) or is revoked; only its hash is stored."
    ),
)

LINK_TOKEN_HELP = "The `token` query parameter of the link in the email"  # noqa: S105 - help text


class InvitationSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    email = Email(required=True, column=Invitation.email)
    role = ma.fields.Enum(
        Role,
        by_value=True,
        load_default=Role.REP,
        metadata={"description": "The role the person will have"},
    )
    team_ids = ma.fields.List(
        ma.fields.UUID(),
        load_default=list,
        validate=ma.validate.Length(max=invitations.MAX_TEAMS),
        metadata={"description": "Teams the person joins on accepting"},
    )
    display_name = String(
        load_default=None,
        allow_none=True,
        min_length=1,
        column=Invitation.display_name,
        metadata={"description": "A name to greet them with; they may change it on accepting"},
    )
    status = ma.fields.Enum(
        InvitationStatus,
        by_value=True,
        dump_only=True,
        metadata={"description": "pending until accepted, revoked or expired"},
    )
    invited_by_id = ma.fields.UUID(dump_only=True, allow_none=True)
    user_id = ma.fields.UUID(
        dump_only=True, allow_none=True, metadata={"description": "The account it became"}
    )
    created_at = ma.fields.DateTime(dump_only=True)
    sent_at = ma.fields.DateTime(
        dump_only=True, metadata={"description": "When its current link was emailed"}
    )
    expires_at = ma.fields.DateTime(dump_only=True)
    accepted_at = ma.fields.DateTime(dump_only=True, allow_none=True)
    revoked_at = ma.fields.DateTime(dump_only=True, allow_none=True)


class InvitationListArgsSchema(PageArgsSchema):
    status = ma.fields.Enum(InvitationStatus, by_value=True, load_default=None)


class AcceptSchema(Schema):
    token = String(
        required=True,
        load_only=True,
        min_length=1,
        max_length=128,
        metadata={"description": LINK_TOKEN_HELP},
    )
    password = String(
        required=True,
        load_only=True,
        min_length=10,
        max_length=1024,
        metadata={"description": "At least 10 characters"},
    )
    handle = String(
        required=True,
        min_length=2,
        column=User.handle,
        metadata={
            "description": "For @mentions: 2-32 lower-case letters, digits, underscores, hyphens"
        },
    )
    display_name = String(
        load_default=None,
        min_length=1,
        column=User.display_name,
        metadata={"description": "Required when the invitation names nobody"},
    )


class PreviewRequestSchema(Schema):
    token = String(
        required=True,
        load_only=True,
        min_length=1,
        max_length=128,
        metadata={"description": LINK_TOKEN_HELP},
    )


class PreviewSchema(Schema):
    email = ma.fields.String(dump_only=True, metadata={"description": "The invited address"})
    display_name = ma.fields.String(dump_only=True, allow_none=True)
    role = ma.fields.Enum(Role, by_value=True, dump_only=True)
    organisation = ma.fields.Nested(OrganisationSchema, dump_only=True)
    invited_by = ma.fields.String(
        dump_only=True, allow_none=True, metadata={"description": "The inviting admin's name"}
    )
    expires_at = ma.fields.DateTime(dump_only=True)


def _dump(invitation: Invitation) -> dict[str, Any]:
    data = attributes(invitation, InvitationSchema, exclude={"status"})
    data["status"] = invitations.status_of(invitation)
    return data


def _ttl() -> timedelta:
    return timedelta(seconds=context().settings.invitation_ttl_s)


def _secret() -> str:
    return token_config().secret_key


@blp.route("")
class Invitations(MethodView):
    @blp.etag
    @blp.arguments(InvitationListArgsSchema, location="query")
    @blp.response(200, page_schema(InvitationSchema))
    @blp.problems(403)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List invitations (admins)

        Newest last. Filter by `status`.
        """
        stmt = invitations.listed(current_principal(), status=args.pop("status"))
        page: Page[Invitation] = paginate(db_session(), stmt, order_by=[Invitation.id], args=args)
        return {"items": [_dump(item) for item in page.items], "next_cursor": page.next_cursor}

    @blp.arguments(InvitationSchema)
    @blp.response(201, InvitationSchema)
    @blp.problems(403, 409)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Invite someone by email (admins)

        The email goes out in the background, with retries. 409 `email_taken` when the address
        has an account already, `invitation_pending` when it has an open invitation (resend or
        revoke that one).
        """
        invitation = invitations.invite(
            db_session(), current_principal(), secret_key=_secret(), ttl=_ttl(), **body
        )
        return _dump(invitation)


@blp.route("/<uuid:invitation_id>")
class InvitationById(MethodView):
    @blp.etag
    @blp.response(200, InvitationSchema)
    @blp.problems(403, 404)
    def get(self, invitation_id: uuid.UUID) -> dict[str, Any]:
        """Read an invitation (admins)"""
        return _dump(invitations.get(db_session(), current_principal(), invitation_id))

    @blp.response(204)
    @blp.problems(403, 404, 409)
    def delete(self, invitation_id: uuid.UUID) -> None:
        """Revoke an invitation (admins)

        Its link stops working at once (410 `invitation_revoked`). An accepted invitation
        cannot be revoked (409 `invitation_closed`): deactivate or delete the user instead.
        """
        invitations.revoke(db_session(), current_principal(), invitation_id)


@blp.route("/<uuid:invitation_id>/resend")
class InvitationResend(MethodView):
    @blp.response(200, InvitationSchema)
    @blp.problems(403, 404, 409)
    def post(self, invitation_id: uuid.UUID) -> dict[str, Any]:
        """Email an invitation again (admins)

        The new email carries a new link (the previous one stops working) and the expiry starts
        again. 409 `invitation_closed` for an accepted or revoked invitation.
        """
        invitation = invitations.resend(
            db_session(), current_principal(), invitation_id, secret_key=_secret(), ttl=_ttl()
        )
        return _dump(invitation)


@blp.route("/accept")
class InvitationAccept(MethodView):
    @public
    @blp.arguments(AcceptSchema)
    @blp.response(201, TokenSchema)
    @blp.problems(404, 409, 410)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Accept an invitation: make the account and log in

        No bearer token: the invitation's token is the credential. Answers tokens as
        `POST /api/v1/auth/token` does. 404 `invitation_not_found` for an unknown token; 410
        `invitation_used`, `invitation_revoked` or `invitation_expired` for one that no longer
        works; 409 `handle_taken` (choose another handle) or `email_taken`.
        """
        session = db_session()
        user = invitations.accept(session, **body)
        pair = tokens.login(
            session,
            token_config(),
            email=user.email,
            password=body["password"],
            user_agent=request.headers.get("User-Agent", ""),
        )
        return {
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
            "token_type": "Bearer",
            "expires_in": pair.expires_in,
        }


@blp.route("/preview")
class InvitationPreview(MethodView):
    @public
    @blp.arguments(PreviewRequestSchema)
    @blp.response(200, PreviewSchema)
    @blp.problems(404, 410)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """See what an invitation is for, before accepting it

        For the app's sign-up screen: the organisation, who invited, the address and the name
        to pre-fill. Changes nothing; the same 404 and 410 codes as accepting.
        """
        preview = invitations.preview(db_session(), body["token"])
        return {
            "email": preview.invitation.email,
            "display_name": preview.invitation.display_name,
            "role": preview.invitation.role,
            "organisation": preview.organisation,
            "invited_by": preview.invited_by,
            "expires_at": preview.invitation.expires_at,
        }
