"""Telling the people a comment concerns: in the writer's request, or from a worker
(`conversation.notify`) when a team mention reaches many.

Who is told, each once, by the most specific reason:

1. the people it mentions (`comment.mention`; a team mention reaches its members and those of
   its sub-teams);
2. for a reply, the people in its thread: the thread's author and whoever replied before
   (`comment.reply`);
3. the video's author (`comment.new`; `question.answer` for an answer to their question).

Never the comment's author, never someone who cannot open the video now, never an inactive
account. Each item is typed, carries `video_id`, `comment_id` and `at_ms` (the app opens the
player at that moment), and is pushed through the person's preferences, mutes and quiet hours,
folded with the other pushes about the video's conversation (`inbox.coalescing`). An edit tells
only the people it newly mentions: every item's key is (type, comment, person).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from fieldcast import policy
from fieldcast.context import current
from fieldcast.conversation.mentions import Mention
from fieldcast.inbox import coalescing
from fieldcast.inbox import services as inbox
from fieldcast.inbox.types import NotificationType
from fieldcast.models.accounts import User
from fieldcast.models.conversation import Comment
from fieldcast.models.videos import Video, VideoKind
from fieldcast.outbox import services as outbox
from fieldcast.outbox.names import TaskName
from fieldcast.sharing.audience import audience

NOTIFY_TASK = TaskName.CONVERSATION_NOTIFY
# People a comment's writer tells in their own request; more (a big team mentioned) are told
# by a worker.
INLINE_PEOPLE = 50


def recipients(
    session: Session, comment: Comment, video: Video, *, edited: bool
) -> dict[uuid.UUID, NotificationType]:
    """Who is told about the comment, and as what (see the module docstring)."""
    told: dict[uuid.UUID, NotificationType] = {}
    spans = [Mention.from_json(m) for m in comment.mentions or []]
    user_ids = [m.user_id for m in spans if m.user_id]
    team_ids = [m.team_id for m in spans if m.team_id]
    if user_ids or team_ids:
        mentioned = audience(comment.org_id, user_ids=user_ids, team_ids=team_ids)
        for user_id in session.scalars(mentioned):
            told[user_id] = NotificationType.COMMENT_MENTION
    if not edited:
        if comment.parent_id is not None:
            thread = union(
                select(Comment.author_id).where(Comment.id == comment.parent_id),
                select(Comment.author_id).where(
                    Comment.parent_id == comment.parent_id,
                    Comment.id != comment.id,
                    Comment.deleted_at.is_(None),
                ),
            )
            for user_id in session.scalars(thread):
                told.setdefault(user_id, NotificationType.COMMENT_REPLY)
        answer = video.kind is VideoKind.QUESTION and comment.parent_id is None
        told.setdefault(
            video.owner_id,
            NotificationType.QUESTION_ANSWER if answer else NotificationType.COMMENT_NEW,
        )
    told.pop(comment.author_id, None)
    if not told:
        return {}
    seeing = policy.videos.viewers_among(
        session, video, select(User.id).where(User.id.in_(list(told)))
    )
    return {user_id: kind for user_id, kind in told.items() if user_id in seeing}


def tell(
    session: Session,
    comment: Comment,
    video: Video,
    told: dict[uuid.UUID, NotificationType],
    *,
    window_s: int,
) -> None:
    """The inbox items of the people told about a comment, and the pushes of those whose push
    goes at once (see `inbox.coalescing`), as one job: one worker run and one FCM batch."""
    author = session.get(User, comment.author_id)
    if author is None or not told:
        return
    data = {
        "video_id": video.id,
        "comment_id": comment.id,
        "actor_id": author.id,
        **({"at_ms": comment.at_ms} if comment.at_ms is not None else {}),
        **({"thread_id": comment.parent_id} if comment.parent_id else {}),
    }
    about = {"video_id": str(video.id), "comment_id": str(comment.id)}
    now: list[uuid.UUID] = []
    for user_id, kind in sorted(told.items()):
        made = inbox.notify(
            session,
            org_id=comment.org_id,
            user_id=user_id,
            type=kind,
            args={"author": author.display_name, "video": video.title, "excerpt": comment.body},
            data=data,
            dedup_key=f"{kind}:{comment.id}:{user_id}",
            push=False,
        )
        if made is not None and coalescing.push_or_fold(
            session,
            org_id=comment.org_id,
            user_id=user_id,
            video_id=video.id,
            notification_id=made,
            about=about,
            window_s=window_s,
            record=False,
        ):
            now.append(made)
    if now:
        coalescing.record_pushes(session, comment.org_id, now, about)


def notify(
    session: Session, comment: Comment, video: Video, *, edited: bool, window_s: int
) -> None:
    """Tell the people a comment concerns, in the writer's transaction: at once when they are
    few (the usual comment: a mention or two, a thread, the video's author), so a mention's
    push waits on one job, not two; through a `conversation.notify` job when a team mention
    reaches more than INLINE_PEOPLE, so the request stays short."""
    told = recipients(session, comment, video, edited=edited)
    if len(told) <= INLINE_PEOPLE:
        tell(session, comment, video, told, window_s=window_s)
        return
    what = "edited" if edited else "created"
    outbox.record(
        session,
        NOTIFY_TASK,
        {"comment_id": str(comment.id), "what": what},
        org_id=comment.org_id,
        dedup_key=f"{NOTIFY_TASK}:{comment.id}:{what}:{comment.updated_at.isoformat()}",
    )


def _notify(session: Session, payload: dict[str, Any]) -> None:
    comment = session.get(Comment, uuid.UUID(payload["comment_id"]))
    if comment is None or comment.deleted_at is not None or comment.hidden_at is not None:
        return
    video = session.get(Video, comment.video_id)
    if video is None or video.deleted_at is not None:
        return
    told = recipients(session, comment, video, edited=payload.get("what") == "edited")
    tell(session, comment, video, told, window_s=current().settings.comment_push_window_s)


outbox.tasks.register(NOTIFY_TASK, queue="notify", max_attempts=8)(_notify)
