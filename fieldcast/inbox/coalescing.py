"""Pushes about a busy conversation (`delivery.CONVERSATION_TYPES`), folded: the first goes at
once, the next ones about the same video within COMMENT_PUSH_WINDOW_S fold into one summary
push at the window's end ("3 new comments on ..."). Every event keeps its own inbox item; only
the buzzing is spared.

A person's window on a video is one row (`push_windows`). It is opened, or opened again once
over, by statements that write the row only then: a new window's insert, or an update whose
condition is that the window is over. Folding writes nothing there: the folded item is marked
on itself (`Notification.folded`). So the many comments a busy video gets at once do not queue
on its author's window row, and of two arriving together exactly one opens the window.

The summaries are sent by a periodic job (`send_summaries`): for each person and video with
folded items whose window is over, it keeps what is still to be told (unread, about a comment
still there, of a type the person did not mute) and pushes the newest of that, worded as the
summary (or as it is when it is the only one), and opens a new window from then, so a
conversation that keeps going buzzes a phone at most once per window.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import String, and_, cast, exists, func, or_, select, text, update
from sqlalchemy.orm import Session

from fieldcast.db import Database, utcnow
from fieldcast.inbox import preferences
from fieldcast.inbox.delivery import PUSH_TASK, item_id, live_comments, uuid_of
from fieldcast.models.accounts import User
from fieldcast.models.conversation import PushWindow
from fieldcast.models.inbox import Notification, PushDelivery
from fieldcast.outbox import services as outbox

# Names a summary push lists before "+N" (in its body).
SUMMARY_NAMES = 3
# Windows one run of `send_summaries` settles at most; the next run takes the rest.
SUMMARIES_PER_RUN = 1000

_REOPEN = text(
    """
    UPDATE push_windows
       SET opened_at = now(), notification_id = :notification_id, updated_at = now()
     WHERE user_id = :user_id AND video_id = :video_id
       AND opened_at <= now() - make_interval(secs => :window_s)
    RETURNING opened_at
    """
)
_OPEN = text(
    """
    INSERT INTO push_windows (org_id, user_id, video_id, opened_at, notification_id, updated_at)
    VALUES (:org_id, :user_id, :video_id, now(), :notification_id, now())
    ON CONFLICT (user_id, video_id) DO NOTHING
    RETURNING opened_at
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
    """Push the item now when the person's window on the video is over or there is none (and
    open one), or fold it into the window's summary. Returns whether it goes now; without
    `record`, the caller records its push (`record_pushes`)."""
    params = {
        "org_id": org_id,
        "user_id": user_id,
        "video_id": video_id,
        "notification_id": notification_id,
        "window_s": window_s,
    }
    if (
        window_s <= 0
        or session.execute(_REOPEN, params).first() is not None
        or session.execute(_OPEN, params).first() is not None
    ):
        if record:
            record_push(session, org_id, notification_id, about)
        return True
    session.execute(
        update(Notification).where(Notification.id == notification_id).values(folded=True)
    )
    return False


def send_summaries(db: Database, *, window_s: int, now: datetime | None = None) -> int:
    """Push the summary of every window that is over and has folded items, each in its own
    transaction. Returns how many windows were settled."""
    now = now or utcnow()
    video_id = Notification.data["video_id"].astext
    window = and_(
        PushWindow.user_id == Notification.user_id,
        cast(PushWindow.video_id, String) == video_id,
    )
    with db.session() as session:
        # Only windows that are over (or gone), the longest waiting first: windows still open
        # never take the places of those due.
        pairs = session.execute(
            select(Notification.user_id, video_id)
            .outerjoin(PushWindow, window)
            .where(
                Notification.folded.is_(True),
                or_(
                    PushWindow.opened_at.is_(None),
                    PushWindow.opened_at <= now - timedelta(seconds=window_s),
                ),
            )
            .group_by(Notification.user_id, video_id)
            .order_by(func.min(Notification.created_at))
            .limit(SUMMARIES_PER_RUN)
        ).all()
    settled = 0
    for row in pairs:
        user_id, video_id = uuid_of(row[0]), uuid_of(row[1])
        if user_id is None or video_id is None:
            continue
        with db.unit_of_work() as session:
            settled += _summarize(session, user_id, video_id, window_s=window_s, now=now)
    return settled


def _summarize(
    session: Session, user_id: uuid.UUID, video_id: uuid.UUID, *, window_s: int, now: datetime
) -> int:
    """One person's folded items about one video, once their window is over: one push."""
    mine = (PushWindow.user_id == user_id, PushWindow.video_id == video_id)
    window = session.scalars(
        select(PushWindow).where(*mine).with_for_update(skip_locked=True)
    ).one_or_none()
    if window is None and session.scalar(select(exists().where(*mine))):
        return 0  # a comment is opening it again right now: the next run looks again
    if window is not None and window.opened_at + timedelta(seconds=window_s) > now:
        return 0  # still open: its summary comes when it is over
    folded = session.scalars(
        select(Notification)
        .where(
            Notification.user_id == user_id,
            Notification.folded.is_(True),
            Notification.data["video_id"].astext == str(video_id),
        )
        .order_by(Notification.id)
        .with_for_update(skip_locked=True)
    ).all()
    if not folded:
        return 0
    session.execute(
        update(Notification)
        .where(Notification.id.in_([item.id for item in folded]))
        .values(folded=False)
    )
    pushed = select(PushDelivery.notification_id).where(
        PushDelivery.notification_id == Notification.id
    )
    unpushed = set(
        session.scalars(
            select(Notification.id).where(
                Notification.id.in_([item.id for item in folded]), ~pushed.exists()
            )
        )
    )
    alive = live_comments(session, {c for item in folded if (c := _comment_id(item)) is not None})
    muted, _, _ = preferences.load_for_delivery(session, [user_id]).get(user_id, ((), None, None))
    items = [
        item
        for item in folded
        if item.id in unpushed
        and item.read_at is None
        and item.type not in muted
        and (_comment_id(item) is None or _comment_id(item) in alive)
    ]
    if not items:
        return 1
    newest = items[-1]
    # A new window from now: the conversation goes on buzzing at most once per window.
    if window is not None:
        window.opened_at = utcnow()
        window.notification_id = newest.id
    session.flush()
    about = {"video_id": str(video_id)}
    if len(items) == 1:
        record_push(session, newest.org_id, newest.id, about)
        return 1
    actors: list[uuid.UUID] = []
    for item in items:
        actor = uuid_of(item.data.get("actor_id"))
        if actor is not None and actor not in actors:
            actors.append(actor)
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
                # Folded again if the summary cannot go on its newest item after all.
                "others": ",".join(str(item.id) for item in items[:-1]),
            },
        },
        org_id=newest.org_id,
        dedup_key=f"push.summary:{newest.id}",
    )
    return 1


def _comment_id(item: Notification) -> uuid.UUID | None:
    return item_id(item, "comment_id")
