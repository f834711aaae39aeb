"""The feed: the shares that reached a person, newest first, with their own state of each.

One entry per share (a video shared twice with you is two entries, each with its sender and
message, as the pushes were). Recalled shares and shares of deleted or archived videos are left
out (`policy.videos.listed`). The person's shares are read from their recipient rows (index
`ix_share_recipients_user_id_share_id`, newest first) and, for shares of the last moments whose
rows a worker has not made yet, from the audience blocks.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, and_, cast, null, or_, select, union_all
from sqlalchemy.orm import Session

from fieldcast import policy
from fieldcast.models.sharing import RecipientState, Share, ShareAudience, ShareRecipient
from fieldcast.models.videos import Video
from fieldcast.policy import Principal
from fieldcast.sync.changes import SyncPoint, changed_since


class SeenState(enum.StrEnum):
    """A recipient's state as the app shows it."""

    UNSEEN = "unseen"  # queued, sent, delivered (or failed: no push reached them)
    OPENED = "opened"
    WATCHED = "watched"


def seen(state: RecipientState) -> SeenState:
    if state is RecipientState.WATCHED:
        return SeenState.WATCHED
    if state is RecipientState.OPENED:
        return SeenState.OPENED
    return SeenState.UNSEEN


def _received(principal: Principal) -> Any:
    """(share_id, change_seq, change_xid) of every share that reached the principal.

    The two branches' columns have the same types, so PostgreSQL flattens the UNION ALL and
    can merge both in share order (the recipient rows straight from their index)."""
    mine = select(
        ShareRecipient.share_id.label("share_id"),
        ShareRecipient.change_seq.label("change_seq"),
        ShareRecipient.change_xid.label("change_xid"),
    ).where(ShareRecipient.org_id == principal.org_id, ShareRecipient.user_id == principal.user_id)
    pending = select(
        ShareAudience.share_id,
        cast(null(), BigInteger).label("change_seq"),
        cast(null(), BigInteger).label("change_xid"),
    ).where(
        ShareAudience.org_id == principal.org_id,
        ShareAudience.user_ids.contains([principal.user_id]),
        # The worker deletes the blocks as it makes the rows; until the prune, skip overlap.
        ~select(ShareRecipient.share_id)
        .where(
            ShareRecipient.share_id == ShareAudience.share_id,
            ShareRecipient.user_id == principal.user_id,
        )
        .exists(),
    )
    return union_all(mine, pending).subquery("received")


def _joined(principal: Principal, received: Any) -> Select[Any]:
    return (
        select(Share)
        .join(received, received.c.share_id == Share.id)
        .join(Video, and_(Video.org_id == Share.org_id, Video.id == Share.video_id))
        .where(Share.org_id == principal.org_id)
    )


def in_feed(principal: Principal) -> ColumnElement[bool]:
    """A share that reached the principal is in their feed: not recalled, its video listed."""
    return and_(Share.recalled_at.is_(None), policy.videos.listed(principal))


def feed(principal: Principal) -> tuple[Select[Any], Any]:
    """`select(Share)` of the principal's feed from their recipient rows, and the column to
    `paginate` it by (descending): the share id as the recipient rows hold it, so a page walks
    their index newest first and stops after one page, whatever the number of shares.

    Shares whose rows a worker has not made yet are `pending`."""
    stmt = (
        select(Share)
        .join(
            ShareRecipient,
            and_(
                ShareRecipient.share_id == Share.id,
                ShareRecipient.org_id == principal.org_id,
                ShareRecipient.user_id == principal.user_id,
            ),
        )
        .join(Video, and_(Video.org_id == Share.org_id, Video.id == Share.video_id))
        .where(Share.org_id == principal.org_id, in_feed(principal))
    )
    return stmt, ShareRecipient.share_id


def pending(principal: Principal) -> Select[Any]:
    """`select(Share)` of the feed's shares of the last moments: their audience blocks name
    the principal, their recipient rows are not made yet (a few at most, while the worker
    catches up)."""
    blocks = select(ShareAudience.share_id).where(
        ShareAudience.org_id == principal.org_id,
        ShareAudience.user_ids.contains([principal.user_id]),
        ~select(ShareRecipient.share_id)
        .where(
            ShareRecipient.share_id == ShareAudience.share_id,
            ShareRecipient.user_id == principal.user_id,
        )
        .exists(),
    )
    return (
        select(Share)
        .join(Video, and_(Video.org_id == Share.org_id, Video.id == Share.video_id))
        .where(Share.org_id == principal.org_id, Share.id.in_(blocks), in_feed(principal))
        .order_by(Share.id.desc())
    )


def changes(principal: Principal, point: SyncPoint) -> tuple[Select[Any], Any]:
    """Shares that reached the principal whose entry changed since the point: their own
    state, the share (recalled) or its video (title, status, poster, archived, deleted).
    In the feed or not any more: those no longer in it are removed for the client."""
    received = _received(principal)
    stmt = _joined(principal, received).where(
        or_(
            changed_since(point, received.c),
            changed_since(point, Share),
            changed_since(point, Video),
        )
    )
    return stmt, received.c.share_id


def in_feed_ids(session: Session, principal: Principal, ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Of these share ids, those in the principal's feed now."""
    ids = list(ids)
    if not ids:
        return set()
    stmt = _joined(principal, _received(principal)).where(in_feed(principal))
    return set(session.scalars(stmt.where(Share.id.in_(ids)).with_only_columns(Share.id)))


def states(
    session: Session, principal: Principal, share_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, RecipientState]:
    """The principal's state of each share (`queued` until their row is made)."""
    ids = list(share_ids)
    found = dict.fromkeys(ids, RecipientState.QUEUED)
    if ids:
        rows = session.execute(
            select(ShareRecipient.share_id, ShareRecipient.state).where(
                ShareRecipient.org_id == principal.org_id,
                ShareRecipient.user_id == principal.user_id,
                ShareRecipient.share_id.in_(ids),
            )
        )
        for share_id, state in rows:
            found[share_id] = RecipientState(state)
    return found
