"""The authorization matrix: every operation of the OpenAPI document, checked four ways.

(a) without credentials: 401 problem (except log-in and the upload URLs, whose secret is the
    credential);
(b) from another organisation: the objects do not exist (404), so ids cannot be probed;
(c) without the permission: 403 `permission_denied` for admin-only operations;
(d) with the right role: success.

`OPERATIONS` must name every operation of the document: a new endpoint without an entry here
fails `test_every_operation_has_an_authorization_case`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import Enum
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from redis import Redis
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from api.app import create_app
from fieldcast.accounts import invitations, recovery
from fieldcast.context import AppContext, build_context
from fieldcast.db import Database, utcnow
from fieldcast.directory import tokens as scim_tokens
from fieldcast.inbox import receipts
from fieldcast.models.accounts import ApiToken, Role, Team, TeamMembership, User
from fieldcast.models.attachments import Attachment, AttachmentKind
from fieldcast.models.conversation import Comment, Reaction
from fieldcast.models.curation import Collection, CollectionItem, CollectionVisibility, Feature
from fieldcast.models.deals import AttributeDefinition, Deal
from fieldcast.models.devices import Device, Platform
from fieldcast.models.directory import ScimToken
from fieldcast.models.identity import IdentityProvider
from fieldcast.models.inbox import Notification
from fieldcast.models.integrations import TeamWebhook, WebhookKind
from fieldcast.models.moderation import Report, ReportReason
from fieldcast.models.programs import (
    Assignee,
    Assignment,
    AssignmentRequest,
    AssignmentRule,
    RequestKind,
    RequestReason,
)
from fieldcast.models.search import SavedSearch
from fieldcast.models.sharing import DistributionList, Share, ShareAudience
from fieldcast.models.uploads import Upload, UploadProtocol
from fieldcast.models.videos import Video, VideoKind
from fieldcast.models.viewing import View
from fieldcast.policy import Principal
from fieldcast.settings import Settings
from fieldcast.uploads import services as uploads
from media.storage import S3Storage
from tests import factories
from tests.oidc_provider import OpenIdProvider

PROBLEM_JSON = "application/problem+json"
HTTP_METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}


class Access(Enum):
    PUBLIC = "public"  # no credentials needed
    MEMBER = "member"  # any signed-in user of the organisation
    ADMIN = "admin"  # admins of the organisation only
    OWNER = "owner"  # the video's author; other members do not see it (404)
    LIST_MAKER = "list_maker"  # managers, enablement and admins; reps are refused (403)


@dataclass
class World:
    """Objects of `org` the requests point at, and who may act on them."""

    client: FlaskClient
    org: Any
    admin: Any
    rep: Any
    target: Any  # a second rep: the user that user operations point at
    team: Any  # a top-level team with `target` as a member
    api_token: ApiToken
    video: Video  # authored by `rep`
    upload: Upload  # a tus upload of `rep` to `video`, 10 bytes long
    direct_upload: Upload  # a direct-to-S3 upload of `rep` to `video`
    attachment: Attachment  # a note `rep` attached to `video`
    device: Device  # a phone of `rep`
    notification: Notification  # an inbox item of `rep`
    distribution_list: DistributionList  # a private list of `rep`'s
    share: Share  # `rep` shared `video` with `admin`
    webhook: TeamWebhook  # `team`'s Slack channel
    admin_comment: Comment  # `admin`'s comment on `video`, which `rep` may report
    report: Report  # `admin` reported `video`
    # The ETag of the direct upload's one part, sent to S3 already (on S3 storage only).
    direct_part_etag: str = '"no-part-sent"'
    invitation: Any = None  # `admin` invited someone; `invitation_token` is its link's token
    invitation_token: str = ""
    reset_token: str = ""  # the token of a password reset `rep` asked for
    capability: str = ""  # the secret in `upload`'s URL
    comment: Any = None  # `rep`'s comment on `video`
    reaction: Any = None  # `rep`'s reaction on `video`
    answer_video: Any = None  # `rep`'s reply video answering `video` (a question)
    saved_search: Any = None  # a search `rep` follows
    deal: Any = None  # `rep`'s deal, from "salesforce" as "006-WORLD"
    view: Any = None  # `rep`'s view of `video`
    collection: Any = None  # `rep`'s unpublished collection for the organisation, with `video`
    item: Any = None  # `collection`'s one item: a clip of `video`
    feature: Any = None  # `admin` featured `video` for the organisation
    curated_video: Any = None  # `admin`'s, in a collection published for the organisation
    assignment: Any = None  # `rep` assigned `video` to themselves (as after a change of role)
    assignment_request: Any = None  # `rep` asked for more time on `assignment`
    rule: Any = None  # `admin`'s rule: `curated_video` for every rep
    scim_token: Any = None  # the organisation's SCIM token, made by `admin`
    openid: Any = None  # the organisation's identity provider: an OpenIdProvider run locally

    def ids(self) -> dict[str, Any]:
        return {
            "capability": self.capability,
            "user_id": self.target.id,
            "team_id": self.team.id,
            "token_id": self.api_token.id,
            "video_id": self.video.id,
            "upload_id": self.upload.id,
            "direct_upload_id": self.direct_upload.id,
            "attachment_id": self.attachment.id,
            "device_id": self.device.id,
            "notification_id": self.notification.id,
            "list_id": self.distribution_list.id,
            "share_id": self.share.id,
            "webhook_id": self.webhook.id,
            "invitation_id": self.invitation.id,
            "comment_id": self.comment.id,
            "reaction_id": self.reaction.id,
            "answer_video_id": self.answer_video.id,
            "report_id": self.report.id,
            "saved_id": self.saved_search.id,
            "deal_id": self.deal.id,
            "view_id": self.view.id,
            "collection_id": self.collection.id,
            "item_id": self.item.id,
            "feature_id": self.feature.id,
            "assignment_id": self.assignment.id,
            "request_id": self.assignment_request.id,
            "rule_id": self.rule.id,
            "source": self.deal.source,
            "external_id": self.deal.external_id,
            "name": "stage",
            "fact": "views",
        }

    def login(self, user: Any) -> dict[str, Any]:
        response = self.client.post(
            "/api/v1/auth/token", json={"email": user.email, "password": factories.PASSWORD}
        )
        assert response.status_code == 200, response.get_json()
        body: dict[str, Any] = response.get_json()
        return body


Body = dict[str, Any] | Callable[[World], dict[str, Any]] | None


@dataclass(frozen=True)
class Case:
    access: Access
    ok: int  # the success status
    body: Body = None
    headers: Body = None
    # A raw body (tus chunks) or form fields and files (multipart) instead of JSON.
    data: bytes | Callable[[World], dict[str, Any]] | None = None
    json_response: bool = True
    query: Body = None  # the query string's parameters
    needs_s3: bool = False  # succeeds only on S3 storage: its success case runs on moto's S3

    def json(self, world: World) -> dict[str, Any] | None:
        return self.body(world) if callable(self.body) else self.body

    def request_headers(self, world: World) -> dict[str, str]:
        return dict(self.headers(world) if callable(self.headers) else self.headers or {})


TUS = {"Tus-Resumable": "1.0.0"}
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def _tus_create_headers(world: World) -> dict[str, str]:
    encoded = base64.b64encode(str(world.video.id).encode()).decode()
    return {**TUS, "Upload-Length": "10", "Upload-Metadata": f"video_id {encoded}"}


def _direct_upload_body(world: World) -> dict[str, Any]:
    return {"video_id": str(world.video.id), "size": 1000}


def _login_body(world: World) -> dict[str, Any]:
    return {"email": world.rep.email, "password": factories.PASSWORD}


def _accept_body(world: World) -> dict[str, Any]:
    return {
        "token": world.invitation_token,
        "password": "a-long-enough-password",
        "handle": "invited_one",
        "display_name": "Invited One",
    }


def _refresh_body(world: World) -> dict[str, Any]:
    return {"refresh_token": world.login(world.rep)["refresh_token"]}


def _report_body(world: World) -> dict[str, Any]:
    # `rep` reports the admin's comment on their video.
    return {"comment_id": str(world.admin_comment.id), "reason": "harassment", "details": "Rude"}


def _receipt_body(world: World) -> dict[str, Any]:
    secret = world.client.application.extensions["fieldcast"].settings.secret_key
    token = receipts.issue(secret, world.notification.id, world.rep.id, ttl_s=3600, now=utcnow())
    return {"token": token, "receipt": "delivered"}


def _authorize_query(world: World) -> dict[str, Any]:
    verifier = "v" * 43
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    return {
        "org": world.org.slug,
        "redirect_uri": "http://127.0.0.1:8000/app/",
        "code_challenge": challenge.decode(),
        "verifier": verifier,  # (not sent: `_sign_in_code` redeems with it)
    }


def _callback_query(world: World) -> dict[str, Any]:
    """The provider's answer: `rep` signs in there and is sent back with a code."""
    query = _authorize_query(world)
    query.pop("verifier")
    started = world.client.get("/api/v1/auth/oidc/authorize", query_string=query)
    assert started.status_code == 302, started.get_json()
    world.openid.sign_in_as(f"sub-{world.rep.id}", world.rep.email)
    answered = requests.get(started.headers["Location"], allow_redirects=False, timeout=30)
    return dict(parse_qsl(urlsplit(answered.headers["Location"]).query))


def _sign_in_code(world: World) -> dict[str, Any]:
    back = world.client.get("/api/v1/auth/oidc/callback", query_string=_callback_query(world))
    params = dict(parse_qsl(urlsplit(back.headers["Location"]).query))
    return {"code": params["code"], "code_verifier": _authorize_query(world)["verifier"]}


OPERATIONS: dict[tuple[str, str], Case] = {
    ("GET", "/api/v1/auth/oidc/authorize"): Case(
        Access.PUBLIC,
        302,
        query=lambda world: {k: v for k, v in _authorize_query(world).items() if k != "verifier"},
        json_response=False,
    ),
    ("GET", "/api/v1/auth/oidc/callback"): Case(
        Access.PUBLIC, 302, query=_callback_query, json_response=False
    ),
    ("POST", "/api/v1/auth/oidc/token"): Case(Access.PUBLIC, 200, _sign_in_code),
    ("POST", "/api/v1/auth/oidc/session"): Case(Access.PUBLIC, 200, _sign_in_code),
    ("GET", "/api/v1/identity-provider"): Case(Access.ADMIN, 200),
    ("PUT", "/api/v1/identity-provider"): Case(
        Access.ADMIN, 200, lambda world: {"issuer": world.openid.issuer, "client_id": "authz-2"}
    ),
    ("DELETE", "/api/v1/identity-provider"): Case(Access.ADMIN, 204),
    ("GET", "/api/v1/organisation/storage"): Case(Access.ADMIN, 200),
    ("PUT", "/api/v1/organisation/retention"): Case(
        Access.ADMIN,
        200,
        {"video_retention_days": 730, "view_retention_days": None, "deleted_retention_days": 14},
    ),
    ("POST", "/api/v1/auth/token"): Case(Access.PUBLIC, 200, _login_body),
    ("POST", "/api/v1/auth/refresh"): Case(Access.PUBLIC, 200, _refresh_body),
    # The push's receipt token is the credential (tests/test_receipts.py).
    ("POST", "/api/v1/receipts"): Case(Access.PUBLIC, 204, _receipt_body),
    ("POST", "/api/v1/auth/logout"): Case(Access.MEMBER, 204),
    ("POST", "/api/v1/auth/session"): Case(Access.PUBLIC, 200, _login_body),
    ("GET", "/api/v1/auth/session"): Case(Access.MEMBER, 200),
    ("DELETE", "/api/v1/auth/session"): Case(Access.MEMBER, 204),
    ("POST", "/api/v1/auth/password-reset"): Case(
        Access.PUBLIC, 202, lambda world: {"email": world.rep.email}, json_response=False
    ),
    ("POST", "/api/v1/auth/password-reset/confirm"): Case(
        Access.PUBLIC,
        204,
        lambda world: {"token": world.reset_token, "password": "another-long-password"},
    ),
    ("GET", "/api/v1/me"): Case(Access.MEMBER, 200),
    ("DELETE", "/api/v1/me"): Case(Access.MEMBER, 204, {"password": factories.PASSWORD}),
    ("PATCH", "/api/v1/me"): Case(Access.MEMBER, 200, {"display_name": "Renamed Me"}),
    ("GET", "/api/v1/users"): Case(Access.MEMBER, 200),
    ("POST", "/api/v1/users"): Case(
        Access.ADMIN,
        201,
        {
            "email": "new.person@example.com",
            "display_name": "New Person",
            "handle": "new_person",
            "password": "a-long-enough-password",
        },
    ),
    ("GET", "/api/v1/users/{user_id}"): Case(Access.MEMBER, 200),
    ("PATCH", "/api/v1/users/{user_id}"): Case(Access.ADMIN, 200, {"display_name": "Renamed"}),
    ("DELETE", "/api/v1/users/{user_id}"): Case(Access.ADMIN, 204),
    ("GET", "/api/v1/invitations"): Case(Access.ADMIN, 200),
    ("POST", "/api/v1/invitations"): Case(
        Access.ADMIN, 201, {"email": "invited.person@example.com", "role": "manager"}
    ),
    ("GET", "/api/v1/invitations/{invitation_id}"): Case(Access.ADMIN, 200),
    ("DELETE", "/api/v1/invitations/{invitation_id}"): Case(Access.ADMIN, 204),
    ("POST", "/api/v1/invitations/{invitation_id}/resend"): Case(Access.ADMIN, 200),
    ("POST", "/api/v1/invitations/accept"): Case(Access.PUBLIC, 201, _accept_body),
    ("POST", "/api/v1/invitations/preview"): Case(
        Access.PUBLIC, 200, lambda world: {"token": world.invitation_token}
    ),
    ("GET", "/api/v1/teams"): Case(Access.MEMBER, 200),
    ("POST", "/api/v1/teams"): Case(Access.ADMIN, 201, {"name": "Brand new team"}),
    ("GET", "/api/v1/teams/{team_id}"): Case(Access.MEMBER, 200),
    ("PATCH", "/api/v1/teams/{team_id}"): Case(Access.ADMIN, 200, {"description": "Changed"}),
    ("DELETE", "/api/v1/teams/{team_id}"): Case(Access.ADMIN, 204),
    ("GET", "/api/v1/teams/{team_id}/members"): Case(Access.MEMBER, 200),
    ("PUT", "/api/v1/teams/{team_id}/members/{user_id}"): Case(Access.ADMIN, 200, {"role": "lead"}),
    ("DELETE", "/api/v1/teams/{team_id}/members/{user_id}"): Case(Access.ADMIN, 204),
    ("GET", "/api/v1/api-tokens"): Case(Access.ADMIN, 200),
    ("POST", "/api/v1/api-tokens"): Case(Access.ADMIN, 201, {"name": "CRM sync"}),
    ("DELETE", "/api/v1/api-tokens/{token_id}"): Case(Access.ADMIN, 204),
    ("GET", "/api/v1/scim-token"): Case(Access.ADMIN, 200),
    ("POST", "/api/v1/scim-token"): Case(Access.ADMIN, 201),
    ("DELETE", "/api/v1/scim-token"): Case(Access.ADMIN, 204),
    ("GET", "/api/v1/videos"): Case(Access.MEMBER, 200),
    ("POST", "/api/v1/videos"): Case(
        Access.MEMBER, 201, {"title": "Pricing objection", "deal_attributes": {"stage": "demo"}}
    ),
    ("GET", "/api/v1/videos/{video_id}"): Case(Access.OWNER, 200),
    ("PATCH", "/api/v1/videos/{video_id}"): Case(Access.OWNER, 200, {"title": "Renamed"}),
    ("DELETE", "/api/v1/videos/{video_id}"): Case(Access.OWNER, 204),
    ("GET", "/api/v1/videos/deleted"): Case(Access.MEMBER, 200),
    ("POST", "/api/v1/videos/{video_id}/restore"): Case(Access.OWNER, 200),
    ("POST", "/api/v1/videos/{video_id}/archive"): Case(Access.OWNER, 200),
    ("POST", "/api/v1/videos/{video_id}/unarchive"): Case(Access.OWNER, 200),
    ("GET", "/api/v1/videos/{video_id}/attachments"): Case(Access.OWNER, 200),
    ("POST", "/api/v1/videos/{video_id}/attachments"): Case(
        Access.OWNER, 201, {"kind": "link", "url": "https://example.com/deck"}
    ),
    ("POST", "/api/v1/videos/{video_id}/attachments/files"): Case(
        Access.OWNER, 201, data=lambda world: {"file": (io.BytesIO(PDF), "deck.pdf")}
    ),
    ("DELETE", "/api/v1/videos/{video_id}/attachments/{attachment_id}"): Case(Access.OWNER, 204),
    ("GET", "/api/v1/attributes"): Case(Access.MEMBER, 200),
    ("PUT", "/api/v1/attributes"): Case(Access.ADMIN, 200, {"strict": True}),
    ("PUT", "/api/v1/attributes/{name}"): Case(
        Access.ADMIN, 200, {"label": "Stage", "type": "single_choice", "choices": ["demo"]}
    ),
    ("DELETE", "/api/v1/attributes/{name}"): Case(Access.ADMIN, 204),
    ("GET", "/api/v1/deals"): Case(Access.MEMBER, 200),
    ("GET", "/api/v1/me/deals"): Case(Access.MEMBER, 200),
    ("GET", "/api/v1/deals/{deal_id}"): Case(Access.OWNER, 200),
    ("GET", "/api/v1/deals/{deal_id}/recommendations"): Case(Access.OWNER, 200),
    # Writing deals is for admins and integrations; the CRM's key names a deal of the
    # caller's own organisation (see test_a_crm_key_names_a_deal_of_ones_own_organisation).
    ("PUT", "/api/v1/deals/by-source/{source}/{external_id}"): Case(
        Access.ADMIN, 200, lambda world: {"name": "Renamed", "owner_id": str(world.rep.id)}
    ),
    ("DELETE", "/api/v1/deals/by-source/{source}/{external_id}"): Case(Access.ADMIN, 204),
    ("POST", "/api/v1/deals/bulk"): Case(
        Access.ADMIN,
        200,
        lambda world: {
            "items": [
                {
                    "source": "salesforce",
                    "external_id": "006-BULK",
                    "name": "Bulk",
                    "owner_id": str(world.rep.id),
                }
            ]
        },
    ),
    ("GET", "/api/v1/videos/{video_id}/transcript"): Case(Access.OWNER, 200),
    ("PUT", "/api/v1/videos/{video_id}/transcript"): Case(
        Access.OWNER,
        200,
        {"segments": [{"start_ms": 0, "end_ms": 2500, "text": "The price is too high"}]},
    ),
    ("GET", "/api/v1/devices"): Case(Access.MEMBER, 200),
    ("GET", "/api/v1/devices/web-push"): Case(Access.MEMBER, 200),
    ("POST", "/api/v1/devices"): Case(
        Access.MEMBER, 201, {"token": "fcm-new-token-1", "platform": "android"}
    ),
    ("DELETE", "/api/v1/devices/{device_id}"): Case(Access.OWNER, 204),
    ("GET", "/api/v1/notifications"): Case(Access.MEMBER, 200),
    ("POST", "/api/v1/notifications/{notification_id}/read"): Case(Access.OWNER, 200),
    ("POST", "/api/v1/notifications/read-all"): Case(Access.MEMBER, 200),
    ("POST", "/api/v1/notifications/{notification_id}/delivered"): Case(Access.OWNER, 200),
    ("POST", "/api/v1/notifications/{notification_id}/opened"): Case(Access.OWNER, 200),
    ("GET", "/api/v1/distribution-lists"): Case(Access.MEMBER, 200),
    ("POST", "/api/v1/distribution-lists"): Case(Access.LIST_MAKER, 201, {"name": "West"}),
    ("GET", "/api/v1/distribution-lists/{list_id}"): Case(Access.OWNER, 200),
    ("PATCH", "/api/v1/distribution-lists/{list_id}"): Case(Access.OWNER, 200, {"name": "East"}),
    ("DELETE", "/api/v1/distribution-lists/{list_id}"): Case(Access.OWNER, 204),
    ("POST", "/api/v1/videos/{video_id}/shares"): Case(
        Access.OWNER, 201, lambda world: {"user_ids": [str(world.admin.id)]}
    ),
    ("GET", "/api/v1/videos/{video_id}/shares"): Case(Access.OWNER, 200),
    ("GET", "/api/v1/shares/{share_id}"): Case(Access.OWNER, 200),
    ("GET", "/api/v1/feed"): Case(Access.MEMBER, 200),
    # Results are what the caller may see (tests/test_search.py).
    ("GET", "/api/v1/search"): Case(Access.MEMBER, 200),
    ("GET", "/api/v1/search/facets"): Case(Access.MEMBER, 200),
    ("GET", "/api/v1/search/settings"): Case(Access.MEMBER, 200),
    ("PUT", "/api/v1/search/settings"): Case(Access.ADMIN, 200, {"language": "de"}),
    ("GET", "/api/v1/saved-searches"): Case(Access.MEMBER, 200),
    ("POST", "/api/v1/saved-searches"): Case(Access.MEMBER, 201, {"q": "acme pricing"}),
    ("GET", "/api/v1/saved-searches/{saved_id}"): Case(Access.OWNER, 200),
    ("PATCH", "/api/v1/saved-searches/{saved_id}"): Case(Access.OWNER, 200, {"notify": False}),
    ("DELETE", "/api/v1/saved-searches/{saved_id}"): Case(Access.OWNER, 204),
    ("GET", "/api/v1/shares/{share_id}/recipients"): Case(Access.OWNER, 200),
    ("POST", "/api/v1/shares/{share_id}/recall"): Case(Access.OWNER, 200),
    ("POST", "/api/v1/videos/{video_id}/playback-started"): Case(Access.OWNER, 204),
    ("POST", "/api/v1/videos/{video_id}/views"): Case(Access.OWNER, 201, body={}),
    ("GET", "/api/v1/videos/{video_id}/progress"): Case(Access.OWNER, 200),
    # The organisation's LRS: its set-up and backlog (tests/test_xapi.py sends to a real one).
    ("GET", "/api/v1/xapi/lrs"): Case(Access.ADMIN, 200),
    ("PUT", "/api/v1/xapi/lrs"): Case(
        Access.ADMIN,
        200,
        body={"endpoint": "https://lrs.example.com/xAPI", "key": "fieldcast", "secret": "s3cret"},
    ),
    ("DELETE", "/api/v1/xapi/lrs"): Case(Access.ADMIN, 204),
    ("GET", "/api/v1/viewing/settings"): Case(Access.MEMBER, 200),
    ("PUT", "/api/v1/viewing/settings"): Case(
        Access.ADMIN, 200, body={"completion_threshold_pct": 80}
    ),
    ("POST", "/api/v1/views/{view_id}/reports"): Case(
        Access.OWNER, 200, body={"seq": 1, "segments": [[0, 1]]}
    ),
    # Each report names its view; someone else's is answered as not found in its result
    # (tests/test_viewing.py).
    ("POST", "/api/v1/views/reports"): Case(
        Access.MEMBER,
        200,
        lambda world: {
            "reports": [{"view_id": str(world.view.id), "seq": 1, "segments": [[0, 1]]}]
        },
    ),
    # Collections: `rep` owns one (reps may no longer create them, as after a change of role).
    ("GET", "/api/v1/collections"): Case(Access.MEMBER, 200),
    ("POST", "/api/v1/collections"): Case(Access.LIST_MAKER, 201, {"title": "Acme in 5 clips"}),
    ("GET", "/api/v1/collections/{collection_id}"): Case(Access.OWNER, 200),
    ("PATCH", "/api/v1/collections/{collection_id}"): Case(Access.OWNER, 200, {"title": "New"}),
    ("DELETE", "/api/v1/collections/{collection_id}"): Case(Access.OWNER, 204),
    ("POST", "/api/v1/collections/{collection_id}/publish"): Case(Access.OWNER, 200),
    ("POST", "/api/v1/collections/{collection_id}/unpublish"): Case(Access.OWNER, 200),
    ("POST", "/api/v1/collections/{collection_id}/items"): Case(
        Access.OWNER, 201, lambda world: {"items": [{"video_id": str(world.video.id)}]}
    ),
    ("POST", "/api/v1/collections/{collection_id}/items/move"): Case(
        Access.OWNER,
        200,
        lambda world: {"item_ids": [str(world.item.id)], "after_item_id": None},
    ),
    ("PATCH", "/api/v1/collections/{collection_id}/items/{item_id}"): Case(
        Access.OWNER, 200, {"note": "Watch the pause"}
    ),
    ("DELETE", "/api/v1/collections/{collection_id}/items/{item_id}"): Case(Access.OWNER, 204),
    ("GET", "/api/v1/featured"): Case(Access.MEMBER, 200),
    ("POST", "/api/v1/featured"): Case(
        Access.LIST_MAKER, 201, lambda world: {"video_id": str(world.curated_video.id)}
    ),
    ("DELETE", "/api/v1/featured/{feature_id}"): Case(Access.LIST_MAKER, 204),
    ("GET", "/api/v1/top"): Case(Access.MEMBER, 200),
    # Assignments: `rep` assigned `video` to themselves; others do not find it.
    ("GET", "/api/v1/assignments"): Case(Access.MEMBER, 200),
    ("POST", "/api/v1/assignments"): Case(
        Access.LIST_MAKER,
        201,
        lambda world: {"video_id": str(world.curated_video.id), "user_ids": [str(world.rep.id)]},
    ),
    ("GET", "/api/v1/assignments/{assignment_id}"): Case(Access.OWNER, 200),
    ("POST", "/api/v1/assignments/{assignment_id}/withdraw"): Case(Access.OWNER, 200),
    ("GET", "/api/v1/assignments/{assignment_id}/people"): Case(Access.OWNER, 200),
    ("GET", "/api/v1/assignments/{assignment_id}/requests"): Case(Access.OWNER, 200),
    ("POST", "/api/v1/assignments/{assignment_id}/requests"): Case(
        Access.OWNER, 201, {"kind": "decline", "reason": "not_relevant"}
    ),
    ("GET", "/api/v1/assignment-requests"): Case(Access.MEMBER, 200),
    ("POST", "/api/v1/assignment-requests/{request_id}/decision"): Case(
        Access.OWNER, 200, {"granted": True}
    ),
    ("GET", "/api/v1/me/learning"): Case(Access.MEMBER, 200),
    ("GET", "/api/v1/me/team-learning"): Case(Access.MEMBER, 200),
    # A person's learning: themselves, their managers and admins (the others: 403).
    ("GET", "/api/v1/users/{user_id}/learning"): Case(Access.ADMIN, 200),
    ("GET", "/api/v1/learning/reasons"): Case(Access.ADMIN, 200),
    ("GET", "/api/v1/assignment-rules"): Case(Access.LIST_MAKER, 200),
    # Viewer insights: the video's author (and the managers above, enablement, admins); a
    # share's follow the share; a team's view of a video, the video's and the team's leads.
    ("GET", "/api/v1/videos/{video_id}/insights"): Case(Access.OWNER, 200),
    ("GET", "/api/v1/videos/{video_id}/insights/viewers"): Case(Access.OWNER, 200),
    ("GET", "/api/v1/videos/{video_id}/insights/teams/{team_id}"): Case(Access.OWNER, 200),
    ("GET", "/api/v1/videos/{video_id}/insights/teams/{team_id}/people"): Case(Access.OWNER, 200),
    ("GET", "/api/v1/shares/{share_id}/insights"): Case(Access.OWNER, 200),
    ("GET", "/api/v1/shares/{share_id}/insights/recipients"): Case(Access.OWNER, 200),
    # Learning metrics: managers (their people), enablement and admins.
    ("GET", "/api/v1/metrics/learning-cycle"): Case(Access.LIST_MAKER, 200),
    ("GET", "/api/v1/metrics/completion-average"): Case(Access.LIST_MAKER, 200),
    ("GET", "/api/v1/metrics/non-completion-reasons"): Case(Access.LIST_MAKER, 200),
    ("GET", "/api/v1/metrics/deal-conversion"): Case(Access.LIST_MAKER, 200),
    ("POST", "/api/v1/assignment-rules"): Case(
        Access.LIST_MAKER,
        201,
        lambda world: {"name": "Refresher", "role": "rep", "video_id": str(world.curated_video.id)},
    ),
    ("GET", "/api/v1/assignment-rules/{rule_id}"): Case(Access.LIST_MAKER, 200),
    # `admin` made the rule: others (curators included) do not change it.
    ("PATCH", "/api/v1/assignment-rules/{rule_id}"): Case(Access.ADMIN, 200, {"active": False}),
    ("DELETE", "/api/v1/assignment-rules/{rule_id}"): Case(Access.ADMIN, 204),
    ("GET", "/api/v1/videos/{video_id}/comments"): Case(Access.OWNER, 200),
    ("POST", "/api/v1/videos/{video_id}/comments"): Case(
        Access.OWNER, 201, {"body": "At 0:01 the opener lands", "at_ms": 1000}
    ),
    ("GET", "/api/v1/comments/{comment_id}"): Case(Access.OWNER, 200),
    ("PATCH", "/api/v1/comments/{comment_id}"): Case(Access.OWNER, 200, {"body": "Edited"}),
    ("DELETE", "/api/v1/comments/{comment_id}"): Case(Access.OWNER, 204),
    ("GET", "/api/v1/comments/{comment_id}/replies"): Case(Access.OWNER, 200),
    ("POST", "/api/v1/comments/{comment_id}/resolve"): Case(Access.OWNER, 200),
    ("POST", "/api/v1/comments/{comment_id}/reopen"): Case(Access.OWNER, 200),
    ("PUT", "/api/v1/comments/{comment_id}/like"): Case(Access.OWNER, 200),
    ("DELETE", "/api/v1/comments/{comment_id}/like"): Case(Access.OWNER, 200),
    ("GET", "/api/v1/videos/{video_id}/mentionable"): Case(Access.OWNER, 200),
    ("GET", "/api/v1/reactions"): Case(Access.MEMBER, 200),
    ("GET", "/api/v1/videos/{video_id}/reactions"): Case(Access.OWNER, 200),
    ("POST", "/api/v1/videos/{video_id}/reactions"): Case(
        Access.OWNER, 201, {"emoji": "👏", "at_ms": 2000}
    ),
    ("DELETE", "/api/v1/videos/{video_id}/reactions/{reaction_id}"): Case(Access.OWNER, 204),
    ("GET", "/api/v1/videos/{video_id}/moments"): Case(Access.OWNER, 200),
    ("GET", "/api/v1/videos/{video_id}/answers"): Case(Access.OWNER, 200),
    ("PUT", "/api/v1/videos/{video_id}/accepted-answer"): Case(
        Access.OWNER, 200, lambda world: {"comment_id": str(world.comment.id)}
    ),
    ("DELETE", "/api/v1/videos/{video_id}/accepted-answer"): Case(Access.OWNER, 200),
    ("PUT", "/api/v1/videos/{answer_video_id}/vote"): Case(Access.OWNER, 200),
    ("DELETE", "/api/v1/videos/{answer_video_id}/vote"): Case(Access.OWNER, 200),
    ("GET", "/api/v1/me/notification-preferences"): Case(Access.MEMBER, 200),
    ("PUT", "/api/v1/me/notification-preferences"): Case(
        Access.MEMBER,
        200,
        {"muted_types": ["video.failed"], "quiet_hours": {"start": "22:00", "end": "07:00"}},
    ),
    ("PUT", "/api/v1/videos/{video_id}/mute"): Case(Access.OWNER, 204),
    ("DELETE", "/api/v1/videos/{video_id}/mute"): Case(Access.OWNER, 204),
    ("GET", "/api/v1/me/muted-videos"): Case(Access.MEMBER, 200),
    ("GET", "/api/v1/me/points"): Case(Access.MEMBER, 200),
    ("GET", "/api/v1/users/{user_id}/badges"): Case(Access.MEMBER, 200),
    ("GET", "/api/v1/leaderboards"): Case(
        Access.MEMBER, 200, query=lambda world: {"team_id": str(world.team.id), "period": "month"}
    ),
    ("GET", "/api/v1/points/settings"): Case(Access.MEMBER, 200),
    ("PUT", "/api/v1/points/settings"): Case(Access.ADMIN, 200, {"enabled": False}),
    ("GET", "/api/v1/teams/{team_id}/webhooks"): Case(Access.ADMIN, 200),
    ("POST", "/api/v1/teams/{team_id}/webhooks"): Case(
        Access.ADMIN,
        201,
        {"kind": "slack", "url": "https://hooks.slack.com/services/T000/B000/secretsecret"},
    ),
    ("DELETE", "/api/v1/teams/{team_id}/webhooks/{webhook_id}"): Case(Access.ADMIN, 204),
    ("GET", "/api/v1/reports"): Case(Access.ADMIN, 200),
    ("POST", "/api/v1/reports"): Case(Access.MEMBER, 201, _report_body),
    ("GET", "/api/v1/reports/{report_id}"): Case(Access.ADMIN, 200),
    ("POST", "/api/v1/reports/{report_id}/hide"): Case(
        Access.ADMIN, 200, {"reason": "Customer pricing must not circulate."}
    ),
    ("POST", "/api/v1/reports/{report_id}/dismiss"): Case(Access.ADMIN, 200, {"note": "Fine"}),
    ("POST", "/api/v1/moderation/videos/{video_id}/unhide"): Case(Access.ADMIN, 200),
    ("POST", "/api/v1/moderation/comments/{comment_id}/unhide"): Case(Access.ADMIN, 200),
    ("GET", "/api/v1/audit-log"): Case(Access.ADMIN, 200),
    ("GET", "/api/v1/audit-log/export"): Case(Access.ADMIN, 200, json_response=False),
    ("GET", "/api/v1/exports/{fact}"): Case(Access.ADMIN, 200, json_response=False),
    ("POST", "/api/v1/uploads"): Case(
        Access.OWNER, 201, headers=_tus_create_headers, json_response=False
    ),
    ("HEAD", "/api/v1/uploads/{upload_id}"): Case(
        Access.OWNER, 200, headers=TUS, json_response=False
    ),
    ("PATCH", "/api/v1/uploads/{upload_id}"): Case(
        Access.OWNER,
        204,
        headers={
            **TUS,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
        data=b"abc",
    ),
    ("DELETE", "/api/v1/uploads/{upload_id}"): Case(Access.OWNER, 204, headers=TUS),
    # The upload URL handed out in `Location`: its secret stands for the uploader's token.
    ("HEAD", "/api/v1/uploads/{upload_id}/{capability}"): Case(
        Access.PUBLIC, 200, headers=TUS, json_response=False
    ),
    ("PATCH", "/api/v1/uploads/{upload_id}/{capability}"): Case(
        Access.PUBLIC,
        204,
        headers={
            **TUS,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
        data=b"abc",
    ),
    ("DELETE", "/api/v1/uploads/{upload_id}/{capability}"): Case(Access.PUBLIC, 204, headers=TUS),
    ("GET", "/api/v1/upload-policy"): Case(Access.MEMBER, 200),
    ("POST", "/api/v1/direct-uploads"): Case(Access.OWNER, 201, _direct_upload_body, needs_s3=True),
    ("DELETE", "/api/v1/direct-uploads/{direct_upload_id}"): Case(Access.OWNER, 204, needs_s3=True),
    ("POST", "/api/v1/direct-uploads/{direct_upload_id}/part-urls"): Case(
        Access.OWNER, 200, {"numbers": [1]}, needs_s3=True
    ),
    ("POST", "/api/v1/direct-uploads/{direct_upload_id}/complete"): Case(
        Access.OWNER,
        200,
        lambda world: {"parts": [{"number": 1, "etag": world.direct_part_etag}]},
        needs_s3=True,
    ),
}

_PATH_PARAM = re.compile(r"{(\w+)}")


def _has_path_ids(path: str) -> bool:
    return bool(_PATH_PARAM.search(path))


def _ops(predicate: Callable[[str, str, Case], bool]) -> list[Any]:
    return [
        pytest.param(method, path, id=f"{method} {path}")
        for (method, path), case in OPERATIONS.items()
        if predicate(method, path, case)
    ]


def _call(
    world: World,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    ids: dict[str, Any] | None = None,
) -> Any:
    case = OPERATIONS[(method, path)]
    url = path.format(**(ids or world.ids()))
    all_headers = {**case.request_headers(world), **(headers or {})}
    if case.data is not None:
        data = case.data(world) if callable(case.data) else case.data
        return world.client.open(url, method=method, data=data, headers=all_headers)
    query = case.query(world) if callable(case.query) else case.query
    return world.client.open(
        url, method=method, json=case.json(world), headers=all_headers, query_string=query
    )


def _org_state(session: Session, org_id: uuid.UUID) -> list[Any]:
    """Everything an operation on `org` could change, read straight from the database."""
    queries = [
        select(User.id, User.email, User.display_name, User.handle, User.role, User.is_active)
        .where(User.org_id == org_id)
        .order_by(User.id),
        select(Team.id, Team.name, Team.description, Team.parent_id)
        .where(Team.org_id == org_id)
        .order_by(Team.id),
        select(TeamMembership.team_id, TeamMembership.user_id, TeamMembership.role)
        .where(TeamMembership.org_id == org_id)
        .order_by(TeamMembership.team_id, TeamMembership.user_id),
        select(ApiToken.id, ApiToken.revoked_at)
        .where(ApiToken.org_id == org_id)
        .order_by(ApiToken.id),
        select(ScimToken.id, ScimToken.revoked_at)
        .where(ScimToken.org_id == org_id)
        .order_by(ScimToken.id),
        select(
            Video.id,
            Video.title,
            Video.description,
            Video.deal_attributes,
            Video.status,
            Video.deleted_at,
            Video.archived_at,
        )
        .where(Video.org_id == org_id)
        .order_by(Video.id),
        select(Share.id, Share.recalled_at).where(Share.org_id == org_id).order_by(Share.id),
        select(Upload.id, Upload.offset, Upload.completed_at)
        .where(Upload.org_id == org_id)
        .order_by(Upload.id),
        select(Attachment.id, Attachment.title)
        .where(Attachment.org_id == org_id)
        .order_by(Attachment.id),
        select(Deal.id, Deal.name, Deal.attributes).where(Deal.org_id == org_id).order_by(Deal.id),
        select(AttributeDefinition.name, AttributeDefinition.choices)
        .where(AttributeDefinition.org_id == org_id)
        .order_by(AttributeDefinition.name),
    ]
    return [session.execute(q).all() for q in queries]


def _assert_problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    if response.request.method == "HEAD":
        return {}  # no body to a HEAD request
    assert response.mimetype == PROBLEM_JSON
    body: dict[str, Any] = response.get_json()
    assert body["status"] == status
    assert isinstance(body.get("code"), str) and body["code"]
    if code is not None:
        assert body["code"] == code, body
    return body


@pytest.fixture
def spec(world: World) -> dict[str, Any]:
    response = world.client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.get_json()
    return document


@pytest.fixture
def world(shared_world: World, session: Session) -> World:
    """The shared world, with a client of the case's own (no cookie of an earlier case)."""
    return replace(shared_world, client=shared_world.client.application.test_client())


@pytest.fixture
def s3_world(
    settings: Settings,
    shared_context: AppContext,
    s3_endpoint: str,
    session: Session,
    org: Any,
    admin: Any,
    rep: Any,
) -> World:
    """The same world served by an API whose storage is S3 (moto's server on loopback), with
    the direct upload begun there and its one part sent, as a phone would send it."""
    import boto3

    bucket = f"fieldcast-authz-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    storage = S3Storage(bucket, "media", endpoint_url=s3_endpoint)
    app = create_app(settings, context=replace(shared_context, storage=storage))
    app.config["TESTING"] = True
    return _make_world(app.test_client(), session, org, admin, rep, s3=storage)


@pytest.fixture
def session(
    shared_context: AppContext, shared_world: World, shared_session: Session, redis: Redis
) -> Iterator[Session]:
    """The world's session, in a savepoint rolled back after the case. The API's sessions share
    its connection, so what the requests committed goes too. Redis is emptied around the case
    (`redis`), and the tus upload's stored bytes start empty again."""
    savepoint = shared_session.begin_nested()
    shared_session.connection()  # the SAVEPOINT is set now, before the API's sessions run
    upload = shared_world.upload
    shared_context.storage.begin_upload(str(upload.id), upload.storage_key)
    factories.bind(shared_session)
    yield shared_session
    factories.bind(None)
    savepoint.rollback()
    shared_session.expire_all()  # (objects read, not changed, in the case are read again)


@pytest.fixture(scope="module")
def settings(settings: Settings) -> Settings:
    # The organisation's identity provider runs on loopback, over plain http.
    return replace(settings, oidc_allow_http_loopback=True)


@pytest.fixture(scope="module")
def openid_provider() -> Iterator[OpenIdProvider]:
    with OpenIdProvider() as provider:
        yield provider


@pytest.fixture(scope="module")
def shared_world(
    settings: Settings,
    shared_context: AppContext,
    shared_session: Session,
    openid_provider: OpenIdProvider,
) -> World:
    """The world every case starts from, built once: each case takes back its changes
    (`session`)."""
    app = create_app(settings, context=shared_context)
    app.config["TESTING"] = True
    factories.bind(shared_session)
    try:
        org = factories.OrganisationFactory()
        admin = factories.UserFactory(org=org, admin=True)
        rep = factories.UserFactory(org=org)
        world = _make_world(app.test_client(), shared_session, org, admin, rep)
    finally:
        factories.bind(None)
    client = openid_provider.register(
        redirect_uri=f"{settings.public_base_url}/api/v1/auth/oidc/callback"
    )
    shared_session.add(
        IdentityProvider(
            org_id=org.id,
            issuer=openid_provider.issuer,
            client_id=client.client_id,
            client_secret=client.client_secret,
        )
    )
    shared_session.flush()
    return replace(world, openid=openid_provider)


@pytest.fixture(scope="module")
def shared_session(shared_context: AppContext) -> Iterator[Session]:
    with shared_context.db.session() as session:
        yield session


@pytest.fixture(scope="module")
def shared_context(settings: Settings, engine: Engine, redis_url: str) -> Iterator[AppContext]:
    """The collaborators of every case, on one connection whose transaction is rolled back
    once the module's cases have run."""
    connection = engine.connect()
    transaction = connection.begin()
    redis = Redis.from_url(redis_url)
    db = Database.from_engine(connection, join_transaction_mode="create_savepoint")  # type: ignore[arg-type]
    yield build_context(settings, db=db, redis=redis)
    redis.close()
    transaction.rollback()
    connection.close()


def _make_world(
    client: FlaskClient,
    session: Session,
    org: Any,
    admin: Any,
    rep: Any,
    s3: S3Storage | None = None,
) -> World:
    target = factories.UserFactory(org=org)
    team = factories.TeamFactory(org=org)
    factories.MembershipFactory(team=team, user=target)
    secret = "fct_" + uuid.uuid4().hex
    token = ApiToken(
        org_id=org.id,
        name="Existing integration",
        prefix=secret[:10],
        token_hash=hashlib.sha256(secret.encode()).hexdigest(),
        user_id=admin.id,
        created_by_id=admin.id,
    )
    session.add(token)
    video = Video(
        org_id=org.id,
        owner_id=rep.id,
        title="How I handled pricing",
        duration_ms=60_000,
        kind=VideoKind.QUESTION,
    )
    session.add(video)
    session.flush()
    answer_video = Video(
        org_id=org.id, owner_id=rep.id, title="Try this instead", answers_video_id=video.id
    )
    session.add(answer_video)
    upload = Upload(
        org_id=org.id,
        video_id=video.id,
        owner_id=rep.id,
        protocol=UploadProtocol.TUS,
        length=10,
        storage_key=f"org/{org.id}/videos/{video.id}/source/first",
        expires_at=utcnow() + timedelta(hours=1),
    )
    upload.state = client.application.extensions["fieldcast"].storage.begin_upload(
        str(upload.id), upload.storage_key
    )
    direct = Upload(
        org_id=org.id,
        video_id=video.id,
        owner_id=rep.id,
        protocol=UploadProtocol.S3_MULTIPART,
        length=1000,
        storage_key=f"org/{org.id}/videos/{video.id}/source/direct",
        state={"upload_id": "not-an-s3-upload"},
        expires_at=utcnow() + timedelta(hours=1),
    )
    part_etag = '"no-part-sent"'
    if s3 is not None:
        direct.state = {"upload_id": s3.begin_direct_upload(direct.storage_key)}
        url = s3.presigned_part_urls(
            direct.storage_key, direct.state["upload_id"], [1], expires_in=600
        )[1]
        # The first bytes of an MP4: a file that may be a video (anything else is refused).
        head = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom"
        sent = requests.put(url, data=head + b"v" * (1000 - len(head)), timeout=30)
        assert sent.status_code == 200, sent.text
        part_etag = sent.headers["ETag"]
    note = Attachment(
        org_id=org.id,
        video_id=video.id,
        created_by_id=rep.id,
        kind=AttachmentKind.NOTE,
        title="Talk track",
        body="Lead with the ROI slide.",
    )
    phone = Device(
        org_id=org.id,
        user_id=rep.id,
        # Unique across organisations: an S3 case builds its world beside the shared one.
        token=f"fcm-token-of-{rep.handle}",
        platform=Platform.IOS,
        last_registered_at=utcnow(),
    )
    item = Notification(
        org_id=org.id,
        user_id=rep.id,
        type="video.playable",
        title="Ready to watch",
        body="",
        data={"video_id": str(video.id)},
    )
    dl = DistributionList(org_id=org.id, owner_id=rep.id, name="My accounts")
    share = Share(
        org_id=org.id, video_id=video.id, sender_id=rep.id, audience={}, recipient_count=1
    )
    hook = TeamWebhook(
        org_id=org.id,
        team_id=team.id,
        kind=WebhookKind.SLACK,
        url="https://hooks.slack.com/services/T000/B000/existing",
    )
    admin_comment = Comment(
        org_id=org.id, video_id=video.id, author_id=admin.id, body="Call me about the discount"
    )
    report = Report(
        org_id=org.id, reporter_id=admin.id, video_id=video.id, reason=ReportReason.CONFIDENTIAL
    )
    capability = uploads.issue_capability(upload)
    comment = Comment(org_id=org.id, video_id=video.id, author_id=rep.id, body="See 0:12", at_ms=12)
    reaction = Reaction(org_id=org.id, video_id=video.id, user_id=rep.id, emoji="🔥", at_ms=5)
    saved_search = SavedSearch(org_id=org.id, user_id=rep.id, name="Acme", query="acme")
    deal = Deal(
        org_id=org.id, source="salesforce", external_id="006-WORLD", name="World", owner_id=rep.id
    )
    session.add_all(
        [
            saved_search,
            upload,
            direct,
            note,
            phone,
            item,
            dl,
            share,
            hook,
            comment,
            admin_comment,
            report,
            reaction,
            deal,
        ]
    )
    session.flush()
    session.add(
        ShareAudience(
            org_id=org.id, share_id=share.id, block=0, video_id=video.id, user_ids=[admin.id]
        )
    )
    session.flush()
    secret = client.application.extensions["fieldcast"].settings.secret_key
    invitation = invitations.invite(
        session,
        Principal(user=admin),
        secret_key=secret,
        ttl=timedelta(days=7),
        email="someone.invited@example.com",
        team_ids=[team.id],
    )
    reset = recovery.request_reset(
        session, email=rep.email, secret_key=secret, ttl=timedelta(hours=1)
    )
    assert reset is not None
    session.flush()
    view = View(org_id=org.id, video_id=video.id, user_id=rep.id, session_id=uuid.uuid4(), end_ms=1)
    collection = Collection(
        org_id=org.id,
        owner_id=rep.id,
        title="Handling pricing",
        visibility=CollectionVisibility.ORGANISATION,
    )
    feature = Feature(org_id=org.id, video_id=video.id, featured_by=admin.id)
    curated_video = Video(org_id=org.id, owner_id=admin.id, title="Everyone's", duration_ms=1000)
    published = Collection(
        org_id=org.id,
        owner_id=admin.id,
        title="Onboarding",
        visibility=CollectionVisibility.ORGANISATION,
        published_at=utcnow(),
    )
    session.add_all([view, collection, feature, curated_video, published])
    session.flush()
    session.add(
        CollectionItem(
            org_id=org.id, collection_id=published.id, position=0, video_id=curated_video.id
        )
    )
    assignment = Assignment(org_id=org.id, assigned_by=rep.id, video_id=video.id)
    rule = AssignmentRule(
        org_id=org.id, created_by=admin.id, name="Basics", role=Role.REP, video_id=curated_video.id
    )
    session.add_all([assignment, rule])
    session.flush()
    assignment_request = AssignmentRequest(
        org_id=org.id,
        assignment_id=assignment.id,
        user_id=rep.id,
        kind=RequestKind.MORE_TIME,
        reason=RequestReason.NO_TIME,
        wanted_due_at=utcnow() + timedelta(days=30),
    )
    session.add_all(
        [Assignee(org_id=org.id, assignment_id=assignment.id, user_id=rep.id), assignment_request]
    )
    clip = CollectionItem(
        org_id=org.id,
        collection_id=collection.id,
        position=0,
        video_id=video.id,
        start_ms=0,
        end_ms=1000,
    )
    session.add(clip)
    session.flush()
    return World(
        client,
        org,
        admin,
        rep,
        target,
        team,
        token,
        video,
        upload,
        direct,
        note,
        phone,
        item,
        dl,
        share,
        hook,
        admin_comment,
        report,
        part_etag,
        invitation=invitation,
        invitation_token=invitations.token_for(secret, invitation),
        reset_token=recovery.token_for(secret, reset),
        capability=capability,
        comment=comment,
        reaction=reaction,
        answer_video=answer_video,
        saved_search=saved_search,
        deal=deal,
        view=view,
        collection=collection,
        item=clip,
        feature=feature,
        curated_video=curated_video,
        assignment=assignment,
        assignment_request=assignment_request,
        rule=rule,
        scim_token=scim_tokens.create_token(session, Principal(user=admin)).token,
    )


def _spec_operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    }


# -- the document itself ---------------------------------------------------------------------


def test_openapi_document_is_valid(spec: dict[str, Any]) -> None:
    validate(spec)


def test_every_operation_has_an_authorization_case(spec: dict[str, Any]) -> None:
    documented = set(_spec_operations(spec))
    missing = sorted(documented - set(OPERATIONS))
    stale = sorted(set(OPERATIONS) - documented)
    assert not missing, f"add authorization cases for: {missing}"
    assert not stale, f"these cases name no documented operation: {stale}"


def test_only_log_in_receipts_email_links_and_upload_urls_are_public(spec: dict[str, Any]) -> None:
    assert spec["security"] == [{"bearerAuth": []}]
    public = {key for key, op in _spec_operations(spec).items() if op.get("security") == []}
    assert public == {key for key, case in OPERATIONS.items() if case.access is Access.PUBLIC}
    assert public == {
        ("POST", "/api/v1/auth/token"),
        ("POST", "/api/v1/auth/refresh"),
        ("POST", "/api/v1/auth/session"),
        # Sign-in with the identity provider: the browser's trip, and the app's sign-in code
        # (good once, and only with the app's PKCE verifier).
        ("GET", "/api/v1/auth/oidc/authorize"),
        ("GET", "/api/v1/auth/oidc/callback"),
        ("POST", "/api/v1/auth/oidc/token"),
        ("POST", "/api/v1/auth/oidc/session"),
        ("POST", "/api/v1/receipts"),
        # The token in the body is the credential: the link of an invitation or reset email.
        ("POST", "/api/v1/invitations/accept"),
        ("POST", "/api/v1/invitations/preview"),
        ("POST", "/api/v1/auth/password-reset"),
        ("POST", "/api/v1/auth/password-reset/confirm"),
        ("HEAD", "/api/v1/uploads/{upload_id}/{capability}"),
        ("PATCH", "/api/v1/uploads/{upload_id}/{capability}"),
        ("DELETE", "/api/v1/uploads/{upload_id}/{capability}"),
    }


def test_documented_error_responses_match_the_rules(spec: dict[str, Any]) -> None:
    """Generated clients rely on the documented statuses."""
    for key, operation in _spec_operations(spec).items():
        case = OPERATIONS[key]
        responses = operation["responses"]
        assert str(case.ok) in responses, key
        if case.access is not Access.PUBLIC:
            assert "401" in responses, key
        if case.access is Access.ADMIN:
            assert "403" in responses, key
        if _has_path_ids(key[1]) and key not in OWN_NAMESPACE:
            assert "404" in responses, key


# -- (a) no credentials ----------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), _ops(lambda m, p, c: c.access is not Access.PUBLIC))
def test_without_credentials_the_answer_is_401(
    world: World, session: Session, method: str, path: str
) -> None:
    before = _org_state(session, world.org.id)
    response = _call(world, method, path)
    _assert_problem(response, 401, "authentication_required")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert _org_state(session, world.org.id) == before


@pytest.mark.parametrize(("method", "path"), _ops(lambda m, p, c: c.access is not Access.PUBLIC))
def test_with_a_forged_token_the_answer_is_401(world: World, method: str, path: str) -> None:
    for bearer in ("not-a-jwt", "fct_" + "0" * 43):
        response = _call(world, method, path, {"Authorization": f"Bearer {bearer}"})
        _assert_problem(response, 401, "invalid_token")


# -- (b) another organisation ----------------------------------------------------------------


# A CRM key names a deal of the caller's own organisation, and an attribute name one of its
# own catalogue: PUT makes one there.
OWN_NAMESPACE = {
    ("PUT", "/api/v1/deals/by-source/{source}/{external_id}"),
    ("PUT", "/api/v1/attributes/{name}"),
    ("DELETE", "/api/v1/attributes/{name}"),
    # A fact names the export of the caller's own organisation.
    ("GET", "/api/v1/exports/{fact}"),
}


@pytest.mark.parametrize(
    ("method", "path"),
    _ops(lambda m, p, c: _has_path_ids(p) and (m, p) not in OWN_NAMESPACE),
)
def test_another_organisation_cannot_see_the_objects(
    world: World, session: Session, outsider: Any, method: str, path: str
) -> None:
    """An admin of another organisation gets 404, exactly as for an id that does not exist."""
    headers = {"Authorization": f"Bearer {world.login(outsider)['access_token']}"}
    before = _org_state(session, world.org.id)
    response = _call(world, method, path, headers)
    body = _assert_problem(response, 404)
    assert _org_state(session, world.org.id) == before

    random_ids = dict.fromkeys(world.ids(), uuid.uuid4())
    unknown = _call(world, method, path, headers, ids=random_ids)
    assert unknown.status_code == 404
    if method != "HEAD":
        assert unknown.get_json()["code"] == body["code"]


def test_a_crm_key_names_a_deal_of_ones_own_organisation(
    world: World, session: Session, outsider: Any
) -> None:
    """Another organisation's integration writing the same CRM key makes its own deal and
    leaves this organisation's alone."""
    headers = {"Authorization": f"Bearer {world.login(outsider)['access_token']}"}
    before = _org_state(session, world.org.id)
    body = {"name": "Theirs", "owner_id": str(outsider.id)}
    response = world.client.put(
        "/api/v1/deals/by-source/salesforce/006-WORLD", json=body, headers=headers
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["id"] != str(world.deal.id)
    assert _org_state(session, world.org.id) == before
    session.refresh(world.deal)
    assert world.deal.name == "World"
    for method in ("PUT", "DELETE"):
        path = "/api/v1/attributes/{name}"
        assert _call(world, method, path, headers).status_code in (200, 204)
    assert _org_state(session, world.org.id) == before


@pytest.mark.parametrize(
    "path", ["/api/v1/users", "/api/v1/teams", "/api/v1/teams/{team_id}/members"]
)
def test_lists_show_nothing_of_another_organisation(world: World, outsider: Any, path: str) -> None:
    headers = {"Authorization": f"Bearer {world.login(outsider)['access_token']}"}
    response = world.client.get(path.format(**world.ids()), headers=headers)
    if _has_path_ids(path):
        _assert_problem(response, 404)
        return
    assert response.status_code == 200
    seen = {item["id"] for item in response.get_json()["items"]}
    org_ids = {str(u.id) for u in (world.admin, world.rep, world.target)} | {str(world.team.id)}
    assert not seen & org_ids


def test_api_token_list_shows_nothing_of_another_organisation(world: World, outsider: Any) -> None:
    headers = {"Authorization": f"Bearer {world.login(outsider)['access_token']}"}
    response = world.client.get("/api/v1/api-tokens", headers=headers)
    assert response.status_code == 200
    assert str(world.api_token.id) not in {item["id"] for item in response.get_json()["items"]}


# -- (c) no permission -----------------------------------------------------------------------


@pytest.mark.parametrize("trait", ["rep", "manager", "enablement"])
@pytest.mark.parametrize(("method", "path"), _ops(lambda m, p, c: c.access is Access.ADMIN))
def test_non_admins_are_refused_admin_operations(
    world: World, session: Session, method: str, path: str, trait: str
) -> None:
    user = world.rep if trait == "rep" else factories.UserFactory(org=world.org, **{trait: True})
    headers = {"Authorization": f"Bearer {world.login(user)['access_token']}"}
    before = _org_state(session, world.org.id)
    response = _call(world, method, path, headers)
    _assert_problem(response, 403, "permission_denied")
    assert _org_state(session, world.org.id) == before


@pytest.mark.parametrize(("method", "path"), _ops(lambda m, p, c: c.access is Access.OWNER))
def test_other_members_do_not_see_someone_elses_video(
    world: World, session: Session, method: str, path: str
) -> None:
    headers = {"Authorization": f"Bearer {world.login(world.target)['access_token']}"}
    before = _org_state(session, world.org.id)
    _assert_problem(_call(world, method, path, headers), 404, "not_found")
    assert _org_state(session, world.org.id) == before


def test_a_recipient_reads_their_share_and_nobody_else_new_may(
    world: World, session: Session
) -> None:
    """Besides its followers (sender, their managers, admins), a share is read by the people it
    reached, as it reached them: not by other members, not once recalled."""
    recipient, bystander = world.target, factories.UserFactory(org=world.org)
    session.add(
        ShareAudience(
            org_id=world.org.id,
            share_id=world.share.id,
            block=1,
            video_id=world.video.id,
            user_ids=[recipient.id],
        )
    )
    session.flush()
    url = f"/api/v1/shares/{world.share.id}"
    as_recipient = world.client.get(
        url, headers={"Authorization": f"Bearer {world.login(recipient)['access_token']}"}
    )
    assert as_recipient.status_code == 200
    body = as_recipient.get_json()
    assert body["received"]["sender"]["id"] == str(world.rep.id)
    assert body["counts"] is None and body["audience"] is None and body["recipient_count"] is None
    for path in (url, f"{url}/recipients"):
        response = world.client.get(
            path, headers={"Authorization": f"Bearer {world.login(bystander)['access_token']}"}
        )
        _assert_problem(response, 404, "not_found")
    recipients = world.client.get(
        f"{url}/recipients",
        headers={"Authorization": f"Bearer {world.login(recipient)['access_token']}"},
    )
    _assert_problem(recipients, 404, "not_found")
    world.share.recalled_at = utcnow()
    session.flush()
    gone = world.client.get(
        url, headers={"Authorization": f"Bearer {world.login(recipient)['access_token']}"}
    )
    _assert_problem(gone, 404, "not_found")


def test_admins_read_but_do_not_edit_someone_elses_video(world: World) -> None:
    headers = {"Authorization": f"Bearer {world.login(world.admin)['access_token']}"}
    assert _call(world, "GET", "/api/v1/videos/{video_id}", headers).status_code == 200
    response = _call(world, "PATCH", "/api/v1/videos/{video_id}", headers)
    _assert_problem(response, 403, "permission_denied")


# -- (d) allowed -----------------------------------------------------------------------------


def _allowed_user(world: World, case: Case) -> Any:
    return world.admin if case.access in (Access.ADMIN, Access.LIST_MAKER) else world.rep


@pytest.mark.parametrize(("method", "path"), _ops(lambda m, p, c: c.access is Access.LIST_MAKER))
def test_reps_are_refused_what_managers_may_do(
    world: World, session: Session, method: str, path: str
) -> None:
    headers = {"Authorization": f"Bearer {world.login(world.rep)['access_token']}"}
    before = _org_state(session, world.org.id)
    _assert_problem(_call(world, method, path, headers), 403, "permission_denied")
    assert _org_state(session, world.org.id) == before
    manager = factories.UserFactory(org=world.org, manager=True)
    headers = {"Authorization": f"Bearer {world.login(manager)['access_token']}"}
    assert _call(world, method, path, headers).status_code == OPERATIONS[(method, path)].ok


@pytest.mark.parametrize(("method", "path"), _ops(lambda m, p, c: True))
def test_the_right_role_succeeds(request: pytest.FixtureRequest, method: str, path: str) -> None:
    case = OPERATIONS[(method, path)]
    world: World = request.getfixturevalue("s3_world" if case.needs_s3 else "world")
    headers: dict[str, str] = {}
    if case.access is not Access.PUBLIC:
        user = _allowed_user(world, case)
        headers = {"Authorization": f"Bearer {world.login(user)['access_token']}"}
    response = _call(world, method, path, headers)
    assert response.status_code == case.ok, response.get_data(as_text=True)
    if case.ok == 204 or method == "HEAD":
        assert response.get_data() == b""
    elif case.json_response:
        assert response.mimetype == "application/json"
        assert response.get_json() is not None


@pytest.mark.parametrize(("method", "path"), _ops(lambda m, p, c: c.access is Access.ADMIN))
def test_an_admin_api_token_is_allowed_like_its_user(world: World, method: str, path: str) -> None:
    created = world.client.post(
        "/api/v1/api-tokens",
        json={"name": "Admin integration"},
        headers={"Authorization": f"Bearer {world.login(world.admin)['access_token']}"},
    )
    assert created.status_code == 201
    headers = {"Authorization": f"Bearer {created.get_json()['token']}"}
    response = _call(world, method, path, headers)
    assert response.status_code == OPERATIONS[(method, path)].ok, response.get_json()
