"""The organisation's SCIM token (admins): what its identity provider provisions with."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import request
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, Schema
from api.runtime import db_session
from api.schemas import attributes
from fieldcast.directory import tokens

blp = Blueprint(
    "scim_token",
    __name__,
    url_prefix="/api/v1/scim-token",
    description=(
        "The bearer token of the organisation's SCIM 2.0 endpoint (`/scim/v2`), for Okta, "
        "Microsoft Entra ID or another identity provider to provision people and teams. One "
        "live token per organisation; its secret is shown once, only a hash is stored. See "
        "docs/scim.md."
    ),
)


class ScimTokenSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    prefix = ma.fields.String(
        dump_only=True, metadata={"description": "The first characters, to recognise the token"}
    )
    created_by_id = ma.fields.UUID(
        dump_only=True,
        allow_none=True,
        metadata={"description": "The admin who made it: provisioning acts with their rights"},
    )
    created_at = ma.fields.DateTime(dump_only=True)
    last_used_at = ma.fields.DateTime(dump_only=True, allow_none=True)
    base_url = ma.fields.String(
        dump_only=True, metadata={"description": "The SCIM base URL to give the provider"}
    )


class NewScimTokenSchema(ScimTokenSchema):
    token = ma.fields.String(dump_only=True, metadata={"description": "The secret; shown only now"})


def _base_url() -> str:
    return request.url_root.rstrip("/") + "/scim/v2"


@blp.route("")
class ScimToken(MethodView):
    @blp.response(200, ScimTokenSchema)
    @blp.problems(403, 404)
    def get(self) -> dict[str, Any]:
        """Read the organisation's SCIM token (admins)

        Its prefix and when it was made and last used; never the secret. 404 when there is
        none.
        """
        token = tokens.live_token(db_session(), current_principal())
        return {
            **attributes(token, ScimTokenSchema, exclude=("base_url",)),
            "base_url": _base_url(),
        }

    @blp.response(201, NewScimTokenSchema)
    @blp.problems(403)
    def post(self) -> dict[str, Any]:
        """Make or rotate the organisation's SCIM token (admins)

        Revokes the live token, if any, and returns the new secret `token` once: paste it,
        with `base_url`, into the identity provider's provisioning settings. Provisioning acts
        with your rights; should you stop being an admin, the token stops working.
        """
        created = tokens.create_token(db_session(), current_principal())
        return {
            **attributes(created.token, ScimTokenSchema, exclude=("base_url",)),
            "base_url": _base_url(),
            "token": created.secret,
        }

    @blp.response(204)
    @blp.problems(403, 404)
    def delete(self) -> None:
        """Revoke the organisation's SCIM token (admins): provisioning stops at once"""
        tokens.revoke_token(db_session(), current_principal())
