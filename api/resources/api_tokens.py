"""Long-lived API tokens for integrations (admins)."""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, Schema
from api.fields import String
from api.pagination import Page, PageArgsSchema, page_schema, paginate
from api.runtime import db_session
from api.schemas import attributes
from fieldcast.accounts import tokens
from fieldcast.models.accounts import ApiToken

blp = Blueprint(
    "api_tokens",
    __name__,
    url_prefix="/api/v1/api-tokens",
    description=(
        "Tokens for integrations. A token acts as one user of the organisation and is shown "
        "once, at creation; only a hash is stored."
    ),
)


class ApiTokenSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    name = String(required=True, min_length=1, column=ApiToken.name)
    user_id = ma.fields.UUID(
        load_default=None, metadata={"description": "The user the token acts as (default: you)"}
    )
    expires_at = ma.fields.AwareDateTime(load_default=None, allow_none=True)
    prefix = ma.fields.String(
        dump_only=True, metadata={"description": "The first characters, to recognise a token"}
    )
    created_by_id = ma.fields.UUID(dump_only=True, allow_none=True)
    created_at = ma.fields.DateTime(dump_only=True)
    last_used_at = ma.fields.DateTime(dump_only=True, allow_none=True)
    revoked_at = ma.fields.DateTime(dump_only=True, allow_none=True)


class NewApiTokenSchema(ApiTokenSchema):
    token = ma.fields.String(dump_only=True, metadata={"description": "The secret; shown only now"})


@blp.route("")
class ApiTokens(MethodView):
    @blp.etag
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_schema(ApiTokenSchema))
    @blp.problems(403)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List API tokens (admins)"""
        page: Page[ApiToken] = paginate(
            db_session(),
            tokens.listed_api_tokens(current_principal()),
            order_by=[ApiToken.id],
            args=args,
        )
        return {"items": page.items, "next_cursor": page.next_cursor}

    @blp.arguments(ApiTokenSchema)
    @blp.response(201, NewApiTokenSchema)
    @blp.problems(403, 404)
    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create an API token (admins)

        The response carries the secret `token` once; store it in the integration's vault.
        """
        created = tokens.create_api_token(db_session(), current_principal(), **body)
        data = attributes(created.token, ApiTokenSchema)
        data["token"] = created.secret
        return data


@blp.route("/<uuid:token_id>")
class ApiTokenById(MethodView):
    @blp.response(204)
    @blp.problems(403, 404)
    def delete(self, token_id: uuid.UUID) -> None:
        """Revoke an API token (admins)"""
        tokens.revoke_api_token(db_session(), current_principal(), token_id)
