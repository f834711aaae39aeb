"""Pushes about a busy conversation (`delivery.CONVERSATION_TYPES`), folded: the first goes at
once, the next ones about the same video within COMMENT_PUSH_WINDOW_S fold into one summary
push at the window's end ("3 new comments on ..."). Every event keeps its own inbox item; only
the buzzing is spared.

A person's window on a video is one row (`push_windows`), opened by an atomic upsert: of two
comments arriving together, exactly one opens the window and is pushed, the other folds. A
folded item is named on the window row (`folded`), not found again by time, so no item is lost
to clocks that disagree or to a commit that lands late. The summary is an outbox task delayed
to the window's end, recorded once per window (by its key); it takes what folded, keeps what
is still to be told (unread, about a comment still there, of a type the person did not mute),
and pushes the newest of that, worded as the summary, or as it is when it is the only one. It
then opens a new window from then, so a conversation that keeps going buzzes a phone at most
once per window.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from fieldcast.db import utcnow
from fieldcast.inbox import preferences
from fieldcast.inbox.delivery import PUSH_TASK
from fieldcast.models.accounts import User
from fieldcast.models.conversation import Comment, PushWindow
from fieldcast.models.inbox import Notification, PushDelivery
from fieldcast.outbox import services as outbox
from fieldcast.outbox.names import TaskName

SUMMARY_TASK = TaskName.NOTIFICATIONS_PUSH_SUMMARY
# Names a summary push lists before "and N others" (in its body).
SUMMARY_NAMES = 3

_OPEN = text(
    """
    INSERT INTO push_windows AS w (org_id, user_id, video_id, opened_at, notification_id,
                                   updated_at)
    VALUES (:org_id, :user_id, :video_id, now(), :notification_id, now())
    ON CONFLICT (user_id, video_id) DO UPDATE
       SET opened_at = now(), notification_id = :notification_id, updated_at = now()
     WHERE w.opened_at <= now() - make_interval(secs => :window_s)
    RETURNING w.opened_at
    """
)


def record_push(
    session: Session, org_id: uuid.UUID, notification_id: uuid.UUID, about: dict[str, str]
) -> None:
    """The push of one inbox item, recorded in the caller's transaction."""
    outbox.record(
        session,
        PUSH_TASK,
        {"notification_id": str(notification_id), "about": about},
        org_id=org_id,
        dedup_key=f"push:{notification_id}",
    )


def record_pushes(
    session: Session,
    org_id: uuid.UUID,
    notification_ids: Sequence[uuid.UUID],
    about: dict[str, str],
) -> None:
    """The pushes of several inbox items about the same thing, as one job (one worker run, one
    FCM batch): the people one comment concerns."""
    if len(notification_ids) == 1:
        record_push(session, org_id, notification_ids[0], about)
        return
    ids = sorted(str(nid) for nid in notification_ids)
    key = hashlib.sha256(",".join(ids).encode()).hexdigest()[:32]
    outbox.record(
        session,
        PUSH_TASK,
        {"notification_ids": ids, "about": about},
        org_id=org_id,
        dedup_key=f"push.batch:{key}",
    )


def push_or_fold(
    session: Session,
    *,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    video_id: uuid.UUID,
    notification_id: uuid.UUID,
    about: dict[str, str],
    window_s: int,
    record: bool = True,
) -> bool:
    """Push the item now when the person's window on the video is closed (and open it), or
    fold it into the window's summary. Returns whether it goes now; without `record`, the
    caller records its push (`record_pushes`)."""
    params = {
        "org_id": org_id,
        "user_id": user_id,
        "video_id": video_id,
        "notification_id": notification_id,
        "window_s": window_s,
    }
    if window_s <= 0 or session.execute(_OPEN, params).scalar_one_or_none() is not None:
        if record:
            record_push(session, org_id, notification_id, about)
        return True
    # Folded: named on the window, where its summary finds it.
    opened_at = session.execute(
        update(PushWindow)
        .where(PushWindow.user_id == user_id, PushWindow.video_id == video_id)
        .values(folded=func.array_append(PushWindow.folded, notification_id))
        .returning(PushWindow.opened_at)
    ).scalar_one()
    due = opened_at + timedelta(seconds=window_s)
    outbox.record(
        session,
        SUMMARY_TASK,
        {
            "user_id": str(user_id),
            "video_id": str(video_id),
            "opened_at": opened_at.isoformat(),
            "about": {"video_id": str(video_id)},
        },
        org_id=org_id,
        delay=max(due - utcnow(), timedelta(0)),
        dedup_key=f"push.summary:{user_id}:{video_id}:{opened_at.isoformat()}",
    )
    return False


def _summary(session: Session, payload: dict[str, Any]) -> None:
    """At a window's end: one push for what folded in it, if any of it is still to be told
    (unread, not pushed otherwise, about a comment still there, of a type not muted)."""
    user_id = uuid.UUID(payload["user_id"])
    video_id = uuid.UUID(payload["video_id"])
    window = session.scalars(
        select(PushWindow)
        .where(PushWindow.user_id == user_id, PushWindow.video_id == video_id)
        .with_for_update()
    ).one_or_none()
    if window is None or not window.folded:
        return  # told already, by an earlier summary that took what folded
    folded = list(window.folded)
    pushed = select(PushDelivery.notification_id).where(
        PushDelivery.notification_id == Notification.id
    )
    items = session.scalars(
        select(Notification)
        .where(
            Notification.id.in_(folded),
            Notification.user_id == user_id,
            Notification.read_at.is_(None),
            ~pushed.exists(),
        )
        .order_by(Notification.id)
    ).all()
    comment_ids = {c for item in items if (c := _comment_id(item)) is not None}
    alive = (
        set(
            session.scalars(
                select(Comment.id).where(
                    Comment.id.in_(comment_ids),
                    Comment.deleted_at.is_(None),
                    Comment.hidden_at.is_(None),
                )
            )
        )
        if comment_ids
        else set()
    )
    muted, _, _ = preferences.load_for_delivery(session, [user_id]).get(user_id, ((), None, None))
    items = [
        item
        for item in items
        if item.type not in muted and (_comment_id(item) is None or _comment_id(item) in alive)
    ]
    window.folded = []
    if items:
        # A new window from now: the conversation goes on buzzing at most once per window.
        window.opened_at = utcnow()
        window.notification_id = items[-1].id
    session.flush()
    if not items:
        return
    newest = items[-1]
    about = {"video_id": str(video_id)}
    if len(items) == 1:
        record_push(session, newest.org_id, newest.id, about)
        return
    actors: list[uuid.UUID] = []
    for item in items:
        actor = item.data.get("actor_id")
        if actor and uuid.UUID(actor) not in actors:
            actors.append(uuid.UUID(actor))
    names = {
        row.id: row.display_name
        for row in session.execute(select(User.id, User.display_name).where(User.id.in_(actors)))
    }
    shown = [names[a] for a in reversed(actors) if a in names][:SUMMARY_NAMES]
    people = ", ".join(shown)
    if len(actors) > len(shown):
        people += f" +{len(actors) - len(shown)}"
    outbox.record(
        session,
        PUSH_TASK,
        {
            "notification_id": str(newest.id),
            "about": about,
            "summary": {
                "count": str(len(items)),
                "video": str(newest.args.get("video", "")),
                "people": people,
            },
        },
        org_id=newest.org_id,
        dedup_key=f"push.summary:{newest.id}",
    )


def _comment_id(item: Notification) -> uuid.UUID | None:
    raw = item.data.get("comment_id")
    try:
        return uuid.UUID(str(raw)) if raw else None
    except ValueError:
        return None


outbox.tasks.register(SUMMARY_TASK, queue="notify", max_attempts=8)(_summary)
