"""Tombstones: what was removed from someone's lists, so their apps drop it at the next sync.

Written by the handlers below when a video is deleted or hidden on a report or a share
recalled, for the people who could see the object then and no one else (an id in `deleted`
tells that the object existed), and by a trigger when an inbox item is deleted (migration
0013). A tombstone with no people (`user_ids` NULL) is the organisation's admins', who see
every video. Each person's removals count toward their own MAX_REMOVALS only. Kept
SYNC_TOMBSTONE_DAYS: `prune` removes older ones, and a token older than that is refused
(`sync_token_expired`), so no app misses one.

Changes that take an object out of a list without removing it (archived, a status filter no
longer met) need no tombstone: the object's row changed, and the list answers it as removed to
the apps it no longer matches for.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import ColumnElement, delete, insert, select, text
from sqlalchemy.orm import Session

from fieldcast import events
from fieldcast.db import Database, utcnow, uuid7
from fieldcast.errors import Gone
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
    user_ids: Sequence[uuid.UUID] | None,
) -> None:
    """Record that the objects left the lists of `user_ids` (None: of the organisation's
    admins)."""
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
            _addressed_to(principal),
            changed_since(point, SyncTombstone),
        )
        .distinct()
        .limit(MAX_REMOVALS + 1)
    ).all()
    if len(ids) > MAX_REMOVALS:
        raise too_many_removals()
    return list(ids)


def _addressed_to(principal: Principal) -> ColumnElement[bool]:
    mine = SyncTombstone.user_ids.contains([principal.user_id])
    if principal.is_admin:
        return mine | SyncTombstone.user_ids.is_(None)
    return mine


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


# The people who saw a deleted video: its author, the recipients of its standing shares (their
# rows, and the audience blocks of shares whose rows are not made yet), then the admins' row.
_BURY_VIDEO = text(
    """
    INSERT INTO sync_tombstones (id, org_id, user_ids, kind, object_id, created_at)
    SELECT gen_random_uuid(), :org_id, people, 'video', :video_id, now()
      FROM (SELECT ARRAY(
                SELECT CAST(:owner_id AS uuid)
                 UNION
                SELECT r.user_id
                  FROM shares s
                  JOIN share_recipients r ON r.org_id = s.org_id AND r.share_id = s.id
                 WHERE s.org_id = :org_id AND s.video_id = :video_id AND s.recalled_at IS NULL
                 UNION
                SELECT unnest(a.user_ids)
                  FROM shares s
                  JOIN share_audiences a ON a.org_id = s.org_id AND a.share_id = s.id
                 WHERE s.org_id = :org_id AND s.video_id = :video_id AND s.recalled_at IS NULL
            ) AS people
            UNION ALL
            SELECT NULL) AS addressed
    """
)

# A deleted video's standing shares, each for its own recipients only (recalled ones were
# buried when recalled).
_BURY_SHARES = text(
    """
    INSERT INTO sync_tombstones (id, org_id, user_ids, kind, object_id, created_at)
    SELECT gen_random_uuid(), :org_id, people, 'share', share_id, now()
      FROM (SELECT s.id AS share_id,
                   ARRAY(SELECT r.user_id FROM share_recipients r
                          WHERE r.org_id = s.org_id AND r.share_id = s.id
                          UNION
                         SELECT unnest(a.user_ids) FROM share_audiences a
                          WHERE a.org_id = s.org_id AND a.share_id = s.id) AS people
              FROM shares s
             WHERE s.org_id = :org_id AND s.video_id = :video_id AND s.recalled_at IS NULL
           ) AS reached
     WHERE cardinality(people) > 0
    """
)


@events.subscribe(events.VideoRemoved)
def _video_removed(session: Session, event: events.VideoRemoved) -> None:
    """Gone from the videos lists of those who saw it, and its shares from their recipients'
    feeds (the rows may be purged before an app syncs again, so their change alone would not
    tell it). Two statements, however many people a share reached."""
    ids = {"org_id": event.org_id, "video_id": event.video_id, "owner_id": event.owner_id}
    session.execute(_BURY_VIDEO, ids)
    session.execute(_BURY_SHARES, {"org_id": event.org_id, "video_id": event.video_id})


# The people a hidden video's standing shares reached, but its author (admins see it still).
_BURY_HIDDEN_VIDEO = text(
    """
    INSERT INTO sync_tombstones (id, org_id, user_ids, kind, object_id, created_at)
    SELECT gen_random_uuid(), :org_id, people, 'video', :video_id, now()
      FROM (SELECT ARRAY(
                SELECT r.user_id
                  FROM shares s
                  JOIN share_recipients r ON r.org_id = s.org_id AND r.share_id = s.id
                 WHERE s.org_id = :org_id AND s.video_id = :video_id AND s.recalled_at IS NULL
                   AND r.user_id <> :owner_id
                 UNION
                SELECT person
                  FROM shares s
                  JOIN share_audiences a ON a.org_id = s.org_id AND a.share_id = s.id
                 CROSS JOIN LATERAL unnest(a.user_ids) AS person
                 WHERE s.org_id = :org_id AND s.video_id = :video_id AND s.recalled_at IS NULL
                   AND person <> :owner_id
            ) AS people) AS reached
     WHERE cardinality(people) > 0
    """
)


@events.subscribe(events.VideoHidden)
def _video_hidden(session: Session, event: events.VideoHidden) -> None:
    """Gone from the videos lists of the people its shares reached (one statement). Their
    feeds need nothing: the video's row changed, and the feed answers its shares as removed
    to those who no longer see it. The admins among them, who still see it, are left it by
    the lists."""
    ids = {"org_id": event.org_id, "video_id": event.video_id, "owner_id": event.owner_id}
    session.execute(_BURY_HIDDEN_VIDEO, ids)


@events.subscribe(events.ShareRecalled)
def _share_recalled(session: Session, event: events.ShareRecalled) -> None:
    """Its recipients lose it from their feeds, and the video from their lists unless they
    still see it otherwise (the lists leave out removals of what the person still sees)."""
    people = list(event.recipient_ids)
    if not people:
        return
    bury(session, event.org_id, TombstoneKind.SHARE, [event.share_id], user_ids=people)
    bury(session, event.org_id, TombstoneKind.VIDEO, [event.video_id], user_ids=people)
