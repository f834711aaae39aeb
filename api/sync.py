"""Delta sync for lists: `updated_since`, the `sync_token` of every page, and cursors that
carry both through the pages of one listing.

A listing (a first page without a cursor) takes a sync point before it reads; every page of it
answers the same `sync_token`, which the app keeps once it has read the last page. Passed back
as `updated_since`, it makes the list answer only what changed since: the items added or
changed, and `deleted`, the ids of items removed from the list for this person (deleted,
archived, recalled, no longer matching the filters, access lost). A delta is paginated like a
listing; its cursor carries both points, so nothing changed meanwhile is lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

import marshmallow as ma

from api.auth import current_principal
from api.extensions import Schema
from api.fields import String
from api.pagination import PageArgsSchema
from api.runtime import context, db_session
from fieldcast.errors import ErrorCode, InvalidInput
from fieldcast.models.sync import TombstoneKind
from fieldcast.sync import changes, tokens
from fieldcast.sync.changes import SyncPoint
from fieldcast.sync.tokens import SyncScope
from fieldcast.sync.tombstones import removed_since

T = TypeVar("T")

TOKEN_MAX_LENGTH = 2048

UPDATED_SINCE = String(
    load_default=None,
    max_length=TOKEN_MAX_LENGTH,
    metadata={
        "description": "A `sync_token` this list answered before: only what changed since "
        "is answered (items added or changed, and the ids in `deleted`). A token older than "
        "SYNC_TOMBSTONE_DAYS (30 by default) answers 410 `sync_token_expired`: list again "
        "without it."
    },
)


class SyncPageArgsSchema(PageArgsSchema):
    # A synced list's cursor also carries the listing's sync points.
    cursor = String(
        load_default=None,
        max_length=TOKEN_MAX_LENGTH,
        metadata={"description": "`next_cursor` from the previous page"},
    )
    updated_since = UPDATED_SINCE


SYNC_TOKEN = ma.fields.String(
    required=True,
    metadata={
        "description": "Opaque. Keep it after the last page (every page of one listing answers "
        "the same) and pass it as `updated_since` for what changes next."
    },
)
DELETED = ma.fields.List(
    ma.fields.UUID(),
    required=True,
    metadata={
        "description": "With `updated_since`: ids of items removed from this list for you "
        "since the token (drop them; an id you do not have can be ignored). Empty otherwise."
    },
)


@cache
def sync_page_schema(item_schema: type[ma.Schema]) -> type[ma.Schema]:
    """The page envelope of a synced list, one named class per item schema."""
    name = item_schema.__name__.removesuffix("Schema") + "SyncPageSchema"
    return type(
        name,
        (Schema,),
        {
            "items": ma.fields.List(
                ma.fields.Nested(item_schema),
                required=True,
                metadata={"description": "With `updated_since`: the items added or changed"},
            ),
            "next_cursor": ma.fields.String(
                allow_none=True,
                required=True,
                metadata={"description": "Pass as `cursor` for the next page; null on the last"},
            ),
            "sync_token": SYNC_TOKEN,
            "deleted": DELETED,
        },
    )


@dataclass(frozen=True)
class SyncRequest:
    scope: SyncScope
    since: SyncPoint | None  # None: a full listing
    point: SyncPoint  # what the answer's sync_token holds
    page_args: dict[str, Any]  # `limit` and the list's own cursor, for `paginate`

    @property
    def first_page(self) -> bool:
        return not self.page_args.get("cursor")


def _secret() -> str:
    secret = context().settings.secret_key
    assert secret is not None
    return secret


def _max_age_s() -> int:
    return context().settings.sync_tombstone_days * 86400


def begin(args: dict[str, Any], scope: SyncScope) -> SyncRequest:
    """Read `updated_since` and `cursor`; take a new point on a first page."""
    secret = _secret()
    cursor = args.get("cursor")
    page_args = {"limit": args.get("limit")}
    if cursor:
        payload = tokens.verify(secret, cursor, field="cursor")
        try:
            if payload["l"] != scope.digest:
                raise ValueError("another list")
            point = SyncPoint.from_json(payload["n"])
            since = SyncPoint.from_json(payload["u"]) if payload["u"] is not None else None
            inner = payload["c"]
            if not isinstance(inner, str):
                raise ValueError("cursor")
        except (KeyError, ValueError, TypeError):
            raise InvalidInput(
                "The cursor is not one this list handed out; start again without one.",
                code=ErrorCode.INVALID_SYNC_TOKEN,
                errors={"cursor": ["Not a cursor of this list."]},
            ) from None
        return SyncRequest(scope, since, point, {**page_args, "cursor": inner})
    since = None
    if args.get("updated_since"):
        since = tokens.read(secret, args["updated_since"], scope, max_age_s=_max_age_s())
    # Before the listing is read: whatever it misses is after this point.
    return SyncRequest(scope, since, changes.take(db_session()), page_args)


def split_delta(
    request: SyncRequest,
    items: Sequence[T],
    id_of: Callable[[T], uuid.UUID],
    matching: Callable[[list[uuid.UUID]], set[uuid.UUID]],
    kind: TombstoneKind,
) -> tuple[list[T], list[uuid.UUID]]:
    """A page's items and its `deleted` ids. A listing keeps every item. A delta keeps the
    changed items still in the list (`matching`: of these ids, those in it for the caller now)
    and drops the others; its first page adds the removals of `kind` recorded since the token,
    but for those in the list again (a restored video)."""
    if request.since is None:
        return list(items), []
    kept = matching([id_of(item) for item in items])
    deleted = [id_of(item) for item in items if id_of(item) not in kept]
    items = [item for item in items if id_of(item) in kept]
    if request.first_page:
        buried = removed_since(db_session(), current_principal(), kind, request.since)
        still = matching(buried) if buried else set()
        deleted += [i for i in buried if i not in still and i not in deleted]
    return list(items), deleted


def envelope(
    request: SyncRequest,
    items: list[Any],
    next_cursor: str | None,
    deleted: list[Any],
) -> dict[str, Any]:
    secret = _secret()
    cursor = None
    if next_cursor:
        cursor = tokens.sign(
            secret,
            {
                "l": request.scope.digest,
                "n": request.point.to_json(),
                "u": request.since.to_json() if request.since else None,
                "c": next_cursor,
            },
        )
    return {
        "items": items,
        "next_cursor": cursor,
        "sync_token": tokens.issue(secret, request.scope, request.point),
        "deleted": deleted,
    }
