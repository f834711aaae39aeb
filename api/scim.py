"""SCIM 2.0 at /scim/v2: the organisation's identity provider provisions people and teams.

SCIM is its own protocol (RFC 7644): `application/scim+json`, its own error format (§3.12)
rather than problem+json, its own discovery endpoints. So it sits beside the API, outside
/api/v1 and outside the OpenAPI document (docs/scim.md describes it).

scim2-server serves the protocol: its `ScimService` (validation, PATCH and PUT applied to the
current resource, If-Match, paging, errors) and `ScimHandler` (the order of the steps) run
inside this Flask view, over `fieldcast.directory.storage`. It is mounted this way rather than
as scim2-server's own WSGI application dispatched under /scim/v2 so that a SCIM request is a
request of the app like any other: the request's one database transaction committed by the unit
of work (api/unit_of_work.py) only on success, the request id, the access log and the metrics.

Authentication: `Authorization: Bearer <the organisation's SCIM token>` (an admin makes it with
POST /api/v1/scim-token); the token names the organisation, and the request sees only its
people and teams. /ServiceProviderConfig needs no token (RFC 7643 §5).
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

from flask import Blueprint, Response, g, request
from scim2_models import (
    Context,
    InvalidFilterException,
    PayloadTooLargeException,
    Resource,
    ResourceType,
    ResponseParameters,
    SCIMException,
    SearchRequest,
    UnauthorizedException,
)
from scim2_server.handler import ScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.routing import Operation
from scim2_server.service import ScimService

from api.runtime import db_session
from fieldcast.directory import resources, tokens
from fieldcast.directory.resources import MAX_FILTER_LENGTH
from fieldcast.directory.storage import DirectoryStorage, scim_error
from fieldcast.errors import AuthenticationFailed, DomainError

log = logging.getLogger(__name__)

PREFIX = "/scim/v2"
# The largest request body: a PATCH or PUT of a team with thousands of members fits.
MAX_BODY_BYTES = 1024**2
MAX_QUERY_VALUE_LENGTH = MAX_FILTER_LENGTH

blp = Blueprint("scim", __name__, url_prefix=PREFIX)


class DirectoryService(ScimService):
    """scim2-server's service, with the product's tolerance on creation (a person created
    without `displayName` gets one made of their name or userName, and without `active` is
    active, as older Okta integrations send them) and PATCH answered with the resource."""

    def read_creation(
        self, resource_type: ResourceType, body: bytes, content_type: str | None
    ) -> Resource[Any]:
        if resource_type.name == "User":
            body = _with_user_defaults(self.decode_body(body, content_type))
        return super().read_creation(resource_type, body, content_type)

    def read_search(
        self, resource_types: list[ResourceType], payload: Any
    ) -> tuple[SearchRequest[Any], Any]:
        """A search's filter is at most MAX_FILTER_LENGTH characters, by GET or POST."""
        if isinstance(payload, dict):
            for key, value in payload.items():
                if str(key).lower() == "filter" and len(str(value)) > MAX_FILTER_LENGTH:
                    raise InvalidFilterException(
                        detail=f"The filter exceeds {MAX_FILTER_LENGTH} characters"
                    )
        return super().read_search(resource_types, payload)

    def patch_response(
        self,
        base_url: str,
        resource: Resource[Any],
        response_parameters: ResponseParameters[Any],
    ) -> ScimResponse:
        """200 with the resource, never 204: Okta reads the person back from the answer."""
        return self.resource_response(
            self.publish(base_url, resource),
            Context.RESOURCE_REPLACEMENT_RESPONSE,
            response_parameters,
        )


def _with_user_defaults(payload: Any) -> bytes:
    if isinstance(payload, dict):
        keys = {str(key).lower(): key for key in payload}
        if "displayname" not in keys:
            name = payload.get(keys.get("name", "name"))
            parts = (
                [name.get("givenName"), name.get("familyName")] if isinstance(name, dict) else []
            )
            made = " ".join(str(part) for part in parts if isinstance(part, str) and part)
            user_name = payload.get(keys.get("username", "userName"))
            payload["displayName"] = made or (user_name if isinstance(user_name, str) else "")
        if "active" not in keys:
            payload["active"] = True
    return json.dumps(payload).encode()


@functools.cache
def service() -> DirectoryService:
    return DirectoryService(resources.provider())


def _respond(response: ScimResponse, scim_request: ScimRequest) -> Response:
    response.headers.setdefault("Location", scim_request.url)
    response.headers.setdefault("Cache-Control", "no-cache")
    body = b"" if response.body is None else json.dumps(response.body).encode()
    return Response(body, status=response.status.value, headers=response.headers)


def _read_request(path: str) -> ScimRequest:
    return ScimRequest(
        method=request.method,
        base_url=request.url_root.rstrip("/") + PREFIX,
        path="/" + path,
        query=request.args.to_dict(),
        headers=list(request.headers.items()),
    )


def _check_limits(scim_request: ScimRequest) -> None:
    length = request.content_length
    if length is not None and length > MAX_BODY_BYTES:
        raise PayloadTooLargeException(detail=f"The body exceeds {MAX_BODY_BYTES} bytes")
    for name, value in scim_request.query.items():
        if len(value) > MAX_QUERY_VALUE_LENGTH:
            raise SCIMException(detail=f"{name} exceeds {MAX_QUERY_VALUE_LENGTH} characters")


def _authenticate(scim_request: ScimRequest) -> DirectoryStorage:
    scheme, _, bearer = (scim_request.header("Authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not bearer.strip():
        raise UnauthorizedException(detail="Send the organisation's SCIM token as a bearer")
    try:
        principal = tokens.authenticate(db_session(), bearer.strip())
    except AuthenticationFailed as error:
        raise UnauthorizedException(detail=error.detail) from None
    g.principal = principal
    return DirectoryStorage(db_session(), principal)


def serve(path: str) -> Response:
    scim = service()
    scim_request = _read_request(path)
    try:
        _check_limits(scim_request)
        scim_request.body = request.get_data(cache=False)
        if scim.match(scim_request).operation is Operation.service_provider_config:
            # What the service supports is public: answered without a token (RFC 7643 §5).
            with scim.provider:
                scim.route(scim_request, Operation.service_provider_config)
                response = scim.service_provider_config(scim_request.url, scim_request.query)
        else:
            response = ScimHandler(scim, _authenticate(scim_request)).handle(scim_request)
    except SCIMException as error:
        response = scim.error_response(error)
    except DomainError as error:
        response = scim.error_response(scim_error(error))
    return _respond(response, scim_request)


@blp.route("", defaults={"path": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@blp.route("/", defaults={"path": ""}, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
@blp.route("/<path:path>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def scim_endpoint(path: str) -> Response:
    return serve(path)


__all__ = ["MAX_BODY_BYTES", "PREFIX", "blp", "serve"]
