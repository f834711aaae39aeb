"""Pushes about a busy conversation, folded: the first goes at once, the next ones about the same
video within COMMENT_PUSH_WINDOW_S fold into one summary push at the window's end ("3 new
comments on ..."). Every event keeps its own inbox item; only the buzzing is spared.

A person's window on a video is one row (`push_windows`), opened by an atomic upsert: of two
comments arriving together, exactly one opens the window and is pushed, the other folds. The
summary is an outbox task delayed to the window's end, recorded once per window (by its key);
it pushes the newest folded item, worded as the summary, or that item as it is when it is the
only one, and opens a new window from then, so a conversation that keeps going buzzes a phone
at most once per window.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from fieldcast.context import current
from fieldcast.db import utcnow
from fieldcast.inbox.delivery import CONVERSATION_TYPES, PUSH_TASK
from fieldcast.models.accounts import User
from fieldcast.models.conversation import PushWindow
from fieldcast.models.inbox import Notification, PushDelivery
from fieldcast.outbox import services as outbox
from fieldcast.outbox.names import TaskName

SUMMARY_TASK = TaskName.NOTIFICATIONS_PUSH_SUMMARY
# The kinds of item that fold together: the conversation on one video.
FOLDED_TYPES = sorted(CONVERSATION_TYPES)
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


def push_or_fold(
    session: Session,
    *,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    video_id: uuid.UUID,
    notification_id: uuid.UUID,
    about: dict[str, str],
) -> bool:
    """Push the item now when the person's window on the video is closed (and open it), or
    fold it into the window's summary. Returns whether it was pushed now."""
    window_s = current().settings.comment_push_window_s
    params = {
        "org_id": org_id,
        "user_id": user_id,
        "video_id": video_id,
        "notification_id": notification_id,
        "window_s": window_s,
    }
    if window_s <= 0 or session.execute(_OPEN, params).scalar_one_or_none() is not None:
        record_push(session, org_id, notification_id, about)
        return True
    window = session.execute(
        select(PushWindow.opened_at, PushWindow.notification_id).where(
            PushWindow.user_id == user_id, PushWindow.video_id == video_id
        )
    ).one()
    opened_at, first = window.opened_at, window.notification_id
    due = opened_at + timedelta(seconds=window_s)
    outbox.record(
        session,
        SUMMARY_TASK,
        {
            "user_id": str(user_id),
            "video_id": str(video_id),
            "opened_at": opened_at.isoformat(),
            "first_id": str(first),
            "about": {"video_id": str(video_id)},
        },
        org_id=org_id,
        delay=max(due - utcnow(), timedelta(0)),
        dedup_key=f"push.summary:{user_id}:{video_id}:{opened_at.isoformat()}",
    )
    return False


def _summary(session: Session, payload: dict[str, Any]) -> None:
    """At a window's end: push what folded in it, unread and not pushed otherwise."""
    user_id = uuid.UUID(payload["user_id"])
    video_id = uuid.UUID(payload["video_id"])
    opened_at = datetime.fromisoformat(payload["opened_at"])
    window_s = current().settings.comment_push_window_s
    closes = opened_at + timedelta(seconds=max(window_s, 0))
    pushed = select(PushDelivery.notification_id).where(
        PushDelivery.notification_id == Notification.id
    )
    folded = session.scalars(
        select(Notification)
        .where(
            Notification.user_id == user_id,
            Notification.type.in_(FOLDED_TYPES),
            Notification.data["video_id"].astext == str(video_id),
            Notification.created_at >= opened_at,
            Notification.created_at <= closes,
            Notification.id != uuid.UUID(payload["first_id"]),
            Notification.read_at.is_(None),
            ~pushed.exists(),
        )
        .order_by(Notification.id)
    ).all()
    if not folded:
        return
    newest = folded[-1]
    # A new window from now: the conversation goes on buzzing at most once per window.
    session.execute(
        text(
            "UPDATE push_windows SET opened_at = now(), notification_id = :nid, updated_at = now() "
            "WHERE user_id = :user_id AND video_id = :video_id AND opened_at = :opened_at"
        ),
        {"nid": newest.id, "user_id": user_id, "video_id": video_id, "opened_at": opened_at},
    )
    about = {"video_id": str(video_id)}
    if len(folded) == 1:
        record_push(session, newest.org_id, newest.id, about)
        return
    actors: list[uuid.UUID] = []
    for item in folded:
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
                "count": str(len(folded)),
                "video": str(newest.args.get("video", "")),
                "people": people,
            },
        },
        org_id=newest.org_id,
        dedup_key=f"push:{newest.id}",
    )


outbox.tasks.register(SUMMARY_TASK, queue="notify", max_attempts=8)(_summary)
