"""The videos list: which videos, filtered by scope, status and deal attributes, and what
changed in it since a sync token."""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.orm import Session

from fieldcast import policy
from fieldcast.deals.catalogue import Catalogue
from fieldcast.errors import InvalidInput
from fieldcast.models.sharing import Share, ShareRecipient
from fieldcast.models.videos import Video, VideoKind, VideoStatus
from fieldcast.policy import Principal
from fieldcast.sync.changes import SyncPoint, changed_since

# Deal-attribute filters one listing takes: each narrows the list, so more is never needed.
MAX_DEAL_FILTERS = 5


class Scope(enum.StrEnum):
    MINE = "mine"  # videos you recorded
    SHARED_WITH_ME = "shared_with_me"  # videos a share brought you
    ALL_VISIBLE = "all_visible"  # everything you may see (the default)


@dataclass(frozen=True)
class VideoFilters:
    scope: Scope = Scope.ALL_VISIBLE
    statuses: tuple[VideoStatus, ...] = ()
    deal: dict[str, Any] = field(default_factory=dict)
    kind: VideoKind | None = None
    # Questions only: "open" (not answered yet) or "answered".
    question_state: str | None = None

    @classmethod
    def parse(
        cls,
        scope: Scope | None,
        statuses: Iterable[VideoStatus] | None,
        deal: Sequence[str] | None,
        kind: VideoKind | None = None,
        question_state: str | None = None,
        *,
        catalogue: Catalogue | None = None,
    ) -> VideoFilters:
        """`deal` as given in the query, `name:value` each, read by the organisation's
        `catalogue` as stored values are (a choice in any case, a number as a number); a
        multiple-choice attribute matches when its list holds the value."""
        deal = list(deal or [])
        if len(deal) > MAX_DEAL_FILTERS:
            raise InvalidInput(errors={"deal": [f"At most {MAX_DEAL_FILTERS} filters."]})
        pairs: dict[str, Any] = {}
        for item in deal:
            name, sep, value = item.partition(":")
            if not sep:
                raise InvalidInput(errors={"deal": [f"{item!r} is not name:value."]})
            if name in pairs and pairs[name] != value:
                # Two values for one name match nothing; say so rather than answer empty.
                raise InvalidInput(errors={"deal": [f"{name!r} is filtered twice."]})
            pairs[name] = value
        cleaned: dict[str, Any] = {}
        if pairs:
            if catalogue is None:
                raise ValueError("deal filters are read by the organisation's catalogue")
            cleaned = catalogue.normalise(pairs, field="deal", learn=False)
        if question_state is not None:
            kind = VideoKind.QUESTION if kind is None else kind
            if kind is not VideoKind.QUESTION:
                raise InvalidInput(errors={"question_state": ["Only questions have one."]})
        return cls(
            scope=scope or Scope.ALL_VISIBLE,
            statuses=tuple(sorted(set(statuses or ()), key=lambda s: s.value)),
            deal=cleaned,
            kind=kind,
            question_state=question_state,
        )

    def spelling(self) -> str:
        """A canonical spelling, for sync tokens: the same filters, the same text."""
        deal = ",".join(f"{k}:{json.dumps(v)}" for k, v in sorted(self.deal.items()))
        statuses = ",".join(s.value for s in self.statuses)
        kind = self.kind.value if self.kind else ""
        return (
            f"scope={self.scope.value};status={statuses};deal={deal};kind={kind};"
            f"question={self.question_state or ''}"
        )


def matches(principal: Principal, filters: VideoFilters) -> ColumnElement[bool]:
    """The videos the listing shows: listed (visible, not archived), in scope, filtered."""
    conditions = [policy.videos.listed(principal)]
    if filters.scope is Scope.MINE:
        conditions.append(Video.owner_id == principal.user_id)
    elif filters.scope is Scope.SHARED_WITH_ME:
        conditions.append(policy.videos.shared_with(principal))
    if filters.statuses:
        conditions.append(Video.status.in_(filters.statuses))
    if filters.deal:
        # JSONB containment, which a GIN index on deal_attributes serves.
        conditions.append(Video.deal_attributes.contains(filters.deal))
    if filters.kind is not None:
        conditions.append(Video.kind == filters.kind)
    if filters.question_state == "open":
        conditions.append(Video.answered_at.is_(None))
    elif filters.question_state == "answered":
        conditions.append(Video.answered_at.is_not(None))
    return and_(*conditions)


def listing(principal: Principal, filters: VideoFilters) -> Select[Any]:
    return select(Video).where(matches(principal, filters))


def changes(principal: Principal, point: SyncPoint) -> Select[Any]:
    """Videos the principal sees that changed since the point, matching the filters or not:
    those that no longer match (archived, another status) are removed for the client.

    A video changes for the principal also when a share brings it to them: sharing leaves the
    video's row as it was, but the share's row (while its audience blocks name them) and then
    their recipient row carry the change."""
    rows = select(ShareRecipient.video_id).where(
        ShareRecipient.org_id == principal.org_id,
        ShareRecipient.user_id == principal.user_id,
        changed_since(point, ShareRecipient),
    )
    reaching = or_(
        Share.id.in_(policy.received_shares.received_ids(principal)),
        Share.id.in_(policy.received_shares.pending_ids(principal)),
    )
    shares = select(Share.video_id).where(
        Share.org_id == principal.org_id, changed_since(point, Share), reaching
    )
    return select(Video).where(
        policy.videos.visible(principal),
        or_(changed_since(point, Video), Video.id.in_(rows), Video.id.in_(shares)),
    )


def matching_ids(
    session: Session, principal: Principal, filters: VideoFilters, ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    """Of these ids, those the listing shows now."""
    ids = list(ids)
    if not ids:
        return set()
    return set(
        session.scalars(select(Video.id).where(Video.id.in_(ids), matches(principal, filters)))
    )
