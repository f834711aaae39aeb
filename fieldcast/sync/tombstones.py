"""Tombstones: what was removed from someone's lists, so their apps drop it at the next sync.

Written by the handlers below when a video is deleted (for everyone in the organisation) or a
share recalled (for its recipients), and by a trigger when an inbox item is deleted (migration
0013). Kept SYNC_TOMBSTONE_DAYS: `prune` removes older ones, and a token older than that is
refused (`sync_token_expired`), so no app misses a removal.

Changes that take an object out of a list without removing it (archived, a status filter no
longer met) need no tombstone: the object's row changed, and the list answers it as removed to
the apps it no longer matches for.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import delete, insert, or_, select
from sqlalchemy.orm import Session

from fieldcast import events
from fieldcast.db import Database, utcnow, uuid7
from fieldcast.errors import Gone
from fieldcast.models.sharing import Share
from fieldcast.models.sync import SyncTombstone, TombstoneKind
from fieldcast.policy import Principal
from fieldcast.sync.changes import SyncPoint, changed_since
from fieldcast.sync.tokens import expired

# Removals one delta answers at most. More since a token (an app away during a mass clean-up)
# is answered 410 `sync_token_expired`: listing again is then the smaller answer.
MAX_REMOVALS = 1000


def bury(
    session: Session,
    org_id: uuid.UUID,
    kind: TombstoneKind,
    object_ids: Sequence[uuid.UUID],
    *,
    user_ids: Sequence[uuid.UUID] | None = None,
) -> None:
    """Record that the objects left the lists of `user_ids` (None: of everyone who could see
    them in the organisation)."""
    if not object_ids:
        return
    people = list(user_ids) if user_ids is not None else None
    session.execute(
        insert(SyncTombstone),
        [
            {
                "id": uuid7(),
                "org_id": org_id,
                "user_ids": people,
                "kind": kind.value,
                "object_id": object_id,
            }
            for object_id in object_ids
        ],
    )


def removed_since(
    session: Session, principal: Principal, kind: TombstoneKind, point: SyncPoint
) -> list[uuid.UUID]:
    """Ids of objects of `kind` removed for the principal since the point (at most
    `MAX_REMOVALS`, else `Gone`)."""
    ids = session.scalars(
        select(SyncTombstone.object_id)
        .where(
            SyncTombstone.org_id == principal.org_id,
            SyncTombstone.kind == kind.value,
            or_(
                SyncTombstone.user_ids.is_(None),
                SyncTombstone.user_ids.contains([principal.user_id]),
            ),
            changed_since(point, SyncTombstone),
        )
        .distinct()
        .limit(MAX_REMOVALS + 1)
    ).all()
    if len(ids) > MAX_REMOVALS:
        raise too_many_removals()
    return list(ids)


def too_many_removals() -> Gone:
    return expired(
        f"More than {MAX_REMOVALS} items were removed since this sync token; list again without it."
    )


def prune(db: Database, *, days: int) -> int:
    """Delete tombstones older than `days` (tokens that old are refused anyway)."""
    with db.unit_of_work() as session:
        result = session.execute(
            delete(SyncTombstone).where(SyncTombstone.created_at < utcnow() - timedelta(days=days))
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


# -- removals other packages announce -------------------------------------------------------------


@events.subscribe(events.VideoRemoved)
def _video_removed(session: Session, event: events.VideoRemoved) -> None:
    """Gone for everyone: from the videos lists, and its shares from the feeds (the rows may
    be purged before an app syncs again, so their change alone would not tell it)."""
    bury(session, event.org_id, TombstoneKind.VIDEO, [event.video_id])
    share_ids = session.scalars(
        select(Share.id).where(Share.org_id == event.org_id, Share.video_id == event.video_id)
    ).all()
    bury(session, event.org_id, TombstoneKind.SHARE, share_ids)


@events.subscribe(events.ShareRecalled)
def _share_recalled(session: Session, event: events.ShareRecalled) -> None:
    """Its recipients lose it from their feeds, and the video from their lists unless they
    still see it otherwise (the lists leave out removals of what the person still sees)."""
    people = list(event.recipient_ids)
    if not people:
        return
    bury(session, event.org_id, TombstoneKind.SHARE, [event.share_id], user_ids=people)
    bury(session, event.org_id, TombstoneKind.VIDEO, [event.video_id], user_ids=people)
