"""Telling a user something: an inbox item, and a push to their phones after commit
(`fieldcast.inbox.delivery`)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import Select, func, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import Session

from fieldcast import events
from fieldcast.db import utcnow, uuid7
from fieldcast.errors import NotFound
from fieldcast.inbox import coalescing, receipts, wording
from fieldcast.inbox.delivery import PUSH_TASK
from fieldcast.inbox.types import NotificationType
from fieldcast.models.accounts import User
from fieldcast.models.inbox import Notification
from fieldcast.models.outbox import OutboxJob, OutboxStatus
from fieldcast.models.videos import Video
from fieldcast.outbox import services as outbox
from fieldcast.policy import Principal, mine
from fieldcast.policy import videos as video_policy
from fieldcast.sync.changes import SyncPoint, changed_since

# A wording arg (a name, a title, a note) is kept up to this, the longest body an item has;
# pushes carry less of it (`wording.ARG_LIMIT`, `BODY_LIMIT`).
ARG_LIMIT = 1000
# What an item's push names in its payload, for dropping it when that is deleted or recalled.
ABOUT_KEYS = ("video_id", "share_id", "comment_id")


def item_values(
    *,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    type: NotificationType,
    args: dict[str, Any] | None = None,
    title: str | None = None,
    body: str | None = None,
    data: dict[str, Any] | None = None,
    dedup_key: str,
) -> dict[str, Any]:
    """An inbox item's columns, cut to their limits, the data as strings (as FCM carries it).

    `args` are the values of the type's wording (`wording.WORDINGS`): the item's title and body
    are that wording in English, and each push words it again in its phone's language. `title`
    and `body` replace the worded ones in the inbox item only (a failure's reason); an item with
    no args is pushed with them as they are.

    The type must be registered in `NotificationType` (ValueError otherwise)."""
    kind = NotificationType(type)
    text_args = {key: str(value)[:ARG_LIMIT] for key, value in (args or {}).items()}
    worded_title, worded_body = wording.english(kind, text_args)
    return {
        "id": uuid7(),
        "org_id": org_id,
        "user_id": user_id,
        "type": kind.value,
        "title": (title or worded_title)[:200],
        "body": (worded_body if body is None else body)[:1000],
        "data": {key: str(value) for key, value in (data or {}).items()},
        "args": text_args,
        "dedup_key": dedup_key,
    }


def add_items(
    session: Session,
    *,
    org_id: uuid.UUID,
    user_ids: Sequence[uuid.UUID],
    type: NotificationType,
    args: dict[str, Any],
    data: dict[str, Any],
    dedup_prefix: str,
) -> list[Any]:
    """The same inbox item for many people (a slice of a fan-out), in one statement: each
    person's once, whatever the retries (`dedup_prefix:user_id`). Returns each item's `id` and
    `user_id`; the caller records their pushes."""
    rows = [
        item_values(
            org_id=org_id,
            user_id=user_id,
            type=type,
            args=args,
            data=data,
            dedup_key=f"{dedup_prefix}:{user_id}",
        )
        for user_id in user_ids
    ]
    session.execute(insert(Notification).on_conflict_do_nothing(index_elements=["dedup_key"]), rows)
    return list(
        session.execute(
            select(Notification.id, Notification.user_id).where(
                Notification.dedup_key.in_([row["dedup_key"] for row in rows])
            )
        ).all()
    )


def notify(
    session: Session,
    *,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    type: NotificationType,
    args: dict[str, Any] | None = None,
    title: str | None = None,
    body: str | None = None,
    data: dict[str, Any] | None = None,
    dedup_key: str,
    push: bool = True,
) -> uuid.UUID | None:
    """Add an inbox item and record its push, in the caller's transaction.

    The same `dedup_key` never makes a second item or push, however often the caller runs.
    Without `push`, the caller records the push: through the person's push window on the video
    (`coalescing.push_or_fold`), several items' in one job (`coalescing.record_pushes`).
    """
    notification_id = session.execute(
        insert(Notification)
        .values(
            item_values(
                org_id=org_id,
                user_id=user_id,
                type=type,
                args=args,
                title=title,
                body=body,
                data=data,
                dedup_key=dedup_key,
            )
        )
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(Notification.id)
    ).scalar_one_or_none()
    if notification_id is not None and push:
        # What the push is about travels with it, so that a deletion or a recall finds the
        # pending pushes through their own index rather than the organisation's inbox.
        about = {key: str(data[key]) for key in ABOUT_KEYS if data and data.get(key)}
        coalescing.record_push(session, org_id, notification_id, about)
    return notification_id


# -- the inbox ------------------------------------------------------------------------------------


def inbox(principal: Principal, *, unread_only: bool = False) -> Select[Any]:
    stmt = select(Notification).where(mine(principal, Notification))
    if unread_only:
        stmt = stmt.where(Notification.read_at.is_(None))
    return stmt


class VideoState:
    """What became of the video an inbox item is about, as the app shows it."""

    AVAILABLE = "available"  # the reader may open it
    # Deleted (restorable until purged, when the item shows it again), purged, or no longer
    # the reader's to see (the share that gave it was recalled).
    REMOVED = "removed"


def video_states(
    session: Session, principal: Principal, items: list[Notification]
) -> dict[uuid.UUID, str | None]:
    """For each item, the state of the video it is about (None when about no video), read
    now in one query: a restored video shows as available again."""
    about: dict[uuid.UUID, uuid.UUID] = {}
    for item in items:
        try:
            about[item.id] = uuid.UUID(str(item.data["video_id"]))
        except (KeyError, ValueError):
            continue
    seen: set[uuid.UUID] = set()
    if about:
        seen = set(
            session.scalars(
                select(Video.id).where(
                    Video.id.in_(set(about.values())), video_policy.visible(principal)
                )
            )
        )
    return {
        item.id: (
            None
            if item.id not in about
            else VideoState.AVAILABLE
            if about[item.id] in seen
            else VideoState.REMOVED
        )
        for item in items
    }


def inbox_changes(principal: Principal, point: SyncPoint) -> Select[Any]:
    """The principal's items written since the point (new, read, delivered, opened), whether
    or not they still match a filter (an item read since leaves an `unread_only` list)."""
    return select(Notification).where(
        mine(principal, Notification), changed_since(point, Notification)
    )


def matching_ids(
    session: Session, principal: Principal, ids: list[uuid.UUID], *, unread_only: bool
) -> set[uuid.UUID]:
    """Of these ids, those in the principal's inbox (unread, with `unread_only`) now."""
    if not ids:
        return set()
    stmt = inbox(principal, unread_only=unread_only).where(Notification.id.in_(ids))
    return set(session.scalars(stmt.with_only_columns(Notification.id)))


def unread_count(session: Session, principal: Principal) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                mine(principal, Notification), Notification.read_at.is_(None)
            )
        )
        or 0
    )


def get_item(session: Session, principal: Principal, notification_id: uuid.UUID) -> Notification:
    """One of the principal's items. Others' do not exist."""
    item = session.scalars(inbox(principal).where(Notification.id == notification_id)).one_or_none()
    if item is None:
        raise NotFound(f"No notification with id {notification_id}.")
    return item


def mark_read(session: Session, principal: Principal, notification_id: uuid.UUID) -> Notification:
    """Mark one of the principal's items read (again is harmless)."""
    item = get_item(session, principal, notification_id)
    if item.read_at is None:
        item.read_at = utcnow()
    session.flush()
    return item


def receipt(
    session: Session,
    principal: Principal,
    notification_id: uuid.UUID,
    kind: Literal["delivered", "opened"],
) -> Notification:
    """The app says a push arrived (`delivered`) or was tapped (`opened`; also marks it read).

    Published as ReceiptArrived: a share's recipient state follows (see `sharing`).
    """
    return _record_receipt(session, get_item(session, principal, notification_id), kind)


def receipt_by_token(
    session: Session,
    secret: str,
    token: str,
    kind: Literal["delivered", "opened"],
) -> Notification:
    """The same receipt, from the push's own receipt token instead of the user's credentials
    (see `receipts`): it moves only the notification the token names."""
    claim = receipts.verify(secret, token, now=utcnow())
    item = session.scalars(
        select(Notification)
        .join(User, (User.id == Notification.user_id) & (User.org_id == Notification.org_id))
        .where(
            Notification.id == claim.notification_id,
            Notification.user_id == claim.user_id,
            User.is_active.is_(True),
        )
    ).one_or_none()
    if item is None:
        # Deleted since (with its user, or by retention): nothing left to mark.
        raise NotFound("The notification of this receipt no longer exists.")
    return _record_receipt(session, item, kind)


def _record_receipt(
    session: Session, item: Notification, kind: Literal["delivered", "opened"]
) -> Notification:
    """Stamp the receipt (the first time only: a state never moves back) and publish it."""
    now = utcnow()
    item.delivered_at = item.delivered_at or now
    if kind == "opened":
        item.opened_at = item.opened_at or now
        item.read_at = item.read_at or now
    events.publish(
        session,
        events.ReceiptArrived(
            org_id=item.org_id,
            user_id=item.user_id,
            notification_id=item.id,
            receipt=kind,
            data=dict(item.data),
        ),
    )
    session.flush()
    return item


def mark_all_read(session: Session, principal: Principal) -> int:
    """Mark every unread item read; returns how many were."""
    result = session.execute(
        update(Notification)
        .where(mine(principal, Notification), Notification.read_at.is_(None))
        .values(read_at=utcnow())
    )
    session.flush()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# -- what other packages tell the author of a video -----------------------------------------------


def _tell_author(
    session: Session,
    event: events.VideoBecamePlayable | events.VideoFailed,
    type: NotificationType,
    *,
    body: str | None = None,
) -> None:
    """One inbox item (and push) for the author, once per version of the video's file."""
    notify(
        session,
        org_id=event.org_id,
        user_id=event.owner_id,
        type=type,
        args={"video": event.title},
        body=body,
        data={"video_id": event.video_id},
        dedup_key=f"{type}:{event.video_id}:{event.source_version}",
    )


@events.subscribe(events.VideoBecamePlayable)
def _video_playable(session: Session, event: events.VideoBecamePlayable) -> None:
    _tell_author(session, event, NotificationType.VIDEO_PLAYABLE)


@events.subscribe(events.VideoFailed)
def _video_failed(session: Session, event: events.VideoFailed) -> None:
    # The inbox shows why; the push says to open it (the reason is in English only).
    _tell_author(session, event, NotificationType.VIDEO_FAILED, body=event.detail)


# -- pushes that must not go out any more ---------------------------------------------------------


def _drop_pushes(
    session: Session, org_id: uuid.UUID, key: str, value: uuid.UUID, reason: str
) -> int:
    """Drop the pushes not yet started of the items whose data names `key` = `value`; a push
    already running checks again before sending (`delivery._withdrawn`).

    A push names what it is about in its payload (`about`): only the pending jobs are read,
    through the outbox's index of unfinished work, never the organisation's inbox. Pushes
    recorded before pushes named it are looked up by their item's id."""
    pending = (OutboxJob.org_id == org_id, OutboxJob.status == OutboxStatus.PENDING)
    about = OutboxJob.payload["about"].contains({key: str(value)})
    dropped = outbox.drop(session, PUSH_TASK, *pending, about, reason=reason)
    older = session.execute(
        select(OutboxJob.id, OutboxJob.payload["notification_id"].astext).where(
            OutboxJob.task == PUSH_TASK,
            *pending,
            ~OutboxJob.payload.has_key("about"),
            OutboxJob.payload.has_key("notification_id"),
        )
    ).all()
    if older:
        by_item = {uuid.UUID(str(nid)): job_id for job_id, nid in older}
        named = session.scalars(
            select(Notification.id).where(
                Notification.id.in_(list(by_item)),
                Notification.org_id == org_id,
                Notification.data[key].astext == str(value),
            )
        ).all()
        if named:
            dropped += outbox.drop(
                session,
                PUSH_TASK,
                OutboxJob.id.in_([by_item[nid] for nid in named]),
                reason=reason,
            )
    return dropped


@events.subscribe(events.VideoRemoved)
def _video_removed(session: Session, event: events.VideoRemoved) -> None:
    """Pushes about a deleted video are dropped; its inbox items stay and show it removed
    (`video_states`)."""
    _drop_pushes(session, event.org_id, "video_id", event.video_id, "video_removed")


@events.subscribe(events.ShareRecalled)
def _share_recalled(session: Session, event: events.ShareRecalled) -> None:
    """Pushes of a recalled share are dropped."""
    _drop_pushes(session, event.org_id, "share_id", event.share_id, "share_recalled")


# What an inbox item about a comment says once the comment was deleted or hidden.
COMMENT_REMOVED = "The comment was removed."


def redact_comment_items(session: Session, org_id: uuid.UUID, comment_id: uuid.UUID) -> int:
    """Inbox items about a comment deleted or hidden since stop quoting it (their body and the
    excerpt their pushes are worded with); they stay, and say it was removed."""
    result = session.execute(
        update(Notification)
        .where(
            Notification.org_id == org_id,
            Notification.data["comment_id"].astext == str(comment_id),
        )
        .values(
            body=COMMENT_REMOVED,
            args=Notification.args.op("-", return_type=JSONB)(literal("excerpt")),
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def drop_comment_pushes(session: Session, org_id: uuid.UUID, comment_id: uuid.UUID) -> int:
    """Pushes about a comment deleted or hidden since are dropped; its inbox items stay."""
    return _drop_pushes(session, org_id, "comment_id", comment_id, "comment_removed")
