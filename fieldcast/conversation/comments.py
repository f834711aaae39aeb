"""Comments at the timeline: write, read, edit, delete, resolve and like them.

Anyone who sees a video comments on it (`policy.CommentPolicy`); nobody else learns that its
comments exist. A comment is on the whole video, at a point or over a range; a reply joins a
thread (one level: replying to a reply joins its thread) and takes the thread's time.

Writing a comment tells the people it concerns in the same transaction (`notify`): their inbox
items and the record of their pushes commit with it, so nobody is told about a comment that did
not commit, and a worker sends the pushes after.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldcast import events, policy
from fieldcast.conversation import mentions, notify
from fieldcast.db import utcnow
from fieldcast.errors import Conflict, ErrorCode, InvalidInput
from fieldcast.inbox import services as inbox
from fieldcast.models.accounts import Team, User
from fieldcast.models.conversation import BODY_MAX, Comment, CommentLike
from fieldcast.models.videos import Video
from fieldcast.policy import Principal
from fieldcast.sharing import audience
from fieldcast.sharing import shares as sharing
from fieldcast.sync.changes import SyncPoint, changed_since

# Replies a thread shows inline in a listing; the rest are a page away.
FIRST_REPLIES = 3
MAX_FIRST_REPLIES = 10

# Control characters other than tab and line breaks, and the invisible direction overrides
# that make text read differently from what it holds (CVE-2021-42574 "Trojan Source").
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean_body(body: str, field: str = "body") -> str:
    """Plain text as the person wrote it: CRLF made LF, no other control character, not blank,
    at most BODY_MAX characters. Nothing here is HTML, and the API never renders it as such."""
    text = body.replace("\r\n", "\n").replace("\r", "\n").strip()
    if _CONTROL.search(text):
        raise InvalidInput(
            "The text holds control characters.",
            code=ErrorCode.INVALID_TEXT,
            errors={field: ["Control characters other than line breaks and tabs are refused."]},
        )
    if not text:
        raise InvalidInput(
            "The text is blank.",
            code=ErrorCode.INVALID_TEXT,
            errors={field: ["Must not be blank."]},
        )
    if len(text) > BODY_MAX:
        raise InvalidInput(errors={field: [f"At most {BODY_MAX} characters."]})
    return text


# -- writing --------------------------------------------------------------------------------------


def check_time(
    video: Video, at_ms: int | None, end_ms: int | None, *, what: str = "comment"
) -> None:
    """A moment (or range) of the video's timeline for a comment or a reaction (`what`): within
    its duration, once that is known."""
    if at_ms is None:
        if end_ms is not None:
            raise InvalidInput(
                "A range starts at `at_ms`.",
                code=ErrorCode.COMMENT_TIME_OUT_OF_RANGE,
                errors={"at_ms": ["Required with end_ms."]},
            )
        return
    if video.duration_ms is None:
        raise InvalidInput(
            "The video's duration is not known yet.",
            code=ErrorCode.TIMELINE_UNAVAILABLE,
            errors={"at_ms": ["The video has no timeline yet."]},
        )
    errors: dict[str, list[str]] = {}
    if not 0 <= at_ms <= video.duration_ms:
        errors["at_ms"] = [f"Must lie within the video: 0 to {video.duration_ms} ms."]
    if end_ms is not None and not at_ms < end_ms <= video.duration_ms:
        errors["end_ms"] = [f"Must be after at_ms and at most {video.duration_ms} ms."]
    if errors:
        raise InvalidInput(
            f"The {what}'s time is outside the video.",
            code=ErrorCode.COMMENT_TIME_OUT_OF_RANGE,
            errors=errors,
        )


@dataclass(frozen=True)
class Unreached:
    """A mention whose person (or some of whose team) cannot see the video."""

    user_id: uuid.UUID | None
    team_id: uuid.UUID | None
    handle: str
    display_name: str
    people: int  # how many people of it cannot


def _without_access(session: Session, video: Video, people: Select[Any]) -> set[uuid.UUID]:
    """Of the active people `people` selects, those who cannot see the video."""
    return set(session.scalars(people)) - policy.videos.viewers_among(session, video, people)


def _unreached(
    session: Session, video: Video, found: Sequence[mentions.Mention]
) -> list[Unreached]:
    """The mentions (people, teams with their sub-teams) with people who cannot see the
    video."""
    org_id = video.org_id
    unreached: list[Unreached] = []
    user_ids = {m.user_id for m in found if m.user_id}
    team_ids = {m.team_id for m in found if m.team_id}
    if user_ids:
        lacking = _without_access(
            session, video, audience.audience(org_id, user_ids=list(user_ids))
        )
        if lacking:
            for row in session.execute(
                select(User.id, User.handle, User.display_name).where(User.id.in_(lacking))
            ):
                unreached.append(Unreached(row.id, None, row.handle, row.display_name, 1))
    for team_id in team_ids:
        lacking = _without_access(session, video, audience.audience(org_id, team_ids=[team_id]))
        if lacking:
            team = session.get(Team, team_id)
            if team is not None:
                unreached.append(Unreached(None, team_id, team.handle, team.name, len(lacking)))
    return unreached


def _refuse_unreached(unreached: Sequence[Unreached]) -> None:
    names = ", ".join(f"@{u.handle}" for u in unreached[:10])
    raise InvalidInput(
        f"{names} cannot see this video. Send again with share_with_mentioned to share it "
        "with them, or leave them out.",
        code=ErrorCode.MENTION_WITHOUT_ACCESS,
        errors={
            "body": [f"@{u.handle} cannot see this video." for u in unreached],
            "mentions_without_access": [
                {
                    "user_id": str(u.user_id) if u.user_id else None,
                    "team_id": str(u.team_id) if u.team_id else None,
                    "handle": u.handle,
                    "display_name": u.display_name,
                    "people_without_access": u.people,
                }
                for u in unreached
            ],
        },
    )


def _resolve_mentions(
    session: Session,
    principal: Principal,
    video: Video,
    text: str,
    *,
    share_with_mentioned: bool,
) -> list[mentions.Mention]:
    """The text's mentions, each of whose people can see the video: refused otherwise, or
    shared with them through the normal share path (and its push) when asked to."""
    found = mentions.find(session, principal.org_id, text)
    if not found:
        return []
    unreached = _unreached(session, video, found)
    if unreached:
        if not share_with_mentioned:
            _refuse_unreached(unreached)
        sharing.share_video(
            session,
            principal,
            video.id,
            user_ids=[u.user_id for u in unreached if u.user_id],
            team_ids=[u.team_id for u in unreached if u.team_id],
        )
    return found


def post_comment(
    session: Session,
    principal: Principal,
    video_id: uuid.UUID,
    *,
    body: str,
    at_ms: int | None = None,
    end_ms: int | None = None,
    parent_id: uuid.UUID | None = None,
    share_with_mentioned: bool = False,
    push_window_s: int = 60,
    deal_id: uuid.UUID | None = None,
) -> Comment:
    """Comment on a video the principal sees, or reply in one of its threads; the people it
    concerns are told (`notify`), their pushes folded within `push_window_s`. The comment may
    name the deal it is about (one the principal sees)."""
    video = policy.load_video(session, principal, video_id, "video.comment")
    if deal_id is not None:
        policy.load_deal(session, principal, deal_id)
    text = clean_body(body)
    parent = None
    if parent_id is not None:
        parent = policy.load_comment(session, principal, parent_id, "comment.reply")
        if parent.video_id != video.id:
            raise InvalidInput(
                "The comment replied to is on another video.",
                errors={"parent_id": ["Not a comment of this video."]},
            )
        if parent.parent_id is not None:
            # One level of threads: a reply to a reply joins its thread.
            parent = session.get(Comment, parent.parent_id)
            assert parent is not None
        if at_ms is not None or end_ms is not None:
            raise InvalidInput(
                "A reply takes its thread's time.",
                code=ErrorCode.REPLY_HAS_OWN_TIME,
                errors={"at_ms": ["Leave out at_ms and end_ms in a reply."]},
            )
        at_ms, end_ms = parent.at_ms, parent.end_ms
    else:
        check_time(video, at_ms, end_ms)
    found = _resolve_mentions(
        session, principal, video, text, share_with_mentioned=share_with_mentioned
    )
    comment = Comment(
        org_id=principal.org_id,
        video_id=video.id,
        author_id=principal.user_id,
        parent_id=parent.id if parent else None,
        at_ms=at_ms,
        end_ms=end_ms,
        body=text,
        mentions=[m.to_json() for m in found],
        deal_id=deal_id,
    )
    session.add(comment)
    if parent is not None:
        session.execute(
            update(Comment)
            .where(Comment.id == parent.id)
            .values(reply_count=Comment.reply_count + 1, last_reply_at=func.now())
        )
    session.flush()
    notify.notify(session, comment, video, edited=False, window_s=push_window_s)
    _text_changed(session, comment)
    session.refresh(comment)
    return comment


def _alive(comment: Comment) -> None:
    """Only a comment people read can be changed, liked or accepted: not a deleted one, nor one
    an admin hid (an unhide must show what was judged)."""
    if comment.deleted_at is not None:
        raise Conflict("The comment was deleted.", code=ErrorCode.COMMENT_DELETED)
    if comment.hidden_at is not None:
        raise Conflict("An admin hid the comment.", code=ErrorCode.COMMENT_HIDDEN)


def lock_thread(session: Session, comment_id: uuid.UUID) -> None:
    """Lock a reply's thread before the reply leaves or rejoins it (deleted, hidden, shown
    again): every path takes the thread first, then the reply, so two of them never wait on
    each other in a circle, and the thread's recount sees the others' changes committed."""
    parent = select(Comment.parent_id).where(Comment.id == comment_id).scalar_subquery()
    session.execute(select(Comment.id).where(Comment.id == parent).with_for_update())


def recount_replies(session: Session, thread_id: uuid.UUID) -> None:
    """A thread's `reply_count`: its replies neither deleted nor hidden, counted again (under
    the thread's lock, taken with `lock_thread`)."""
    live = (
        select(func.count())
        .select_from(Comment)
        .where(
            Comment.parent_id == thread_id,
            Comment.deleted_at.is_(None),
            Comment.hidden_at.is_(None),
        )
        .scalar_subquery()
    )
    session.execute(update(Comment).where(Comment.id == thread_id).values(reply_count=live))


def left(session: Session, comment: Comment) -> None:
    """A comment left its readers (deleted, or hidden by an admin): its thread counts it no
    more, pushes about it not sent yet are dropped, and the inbox items about it no longer
    quote it."""
    if comment.parent_id is not None:
        recount_replies(session, comment.parent_id)
    inbox.drop_comment_pushes(session, comment.org_id, comment.id)
    inbox.redact_comment_items(session, comment.org_id, comment.id)
    _text_changed(session, comment)


def returned(session: Session, comment: Comment) -> None:
    """A hidden comment is shown again (an admin undid the hide): its thread counts it again."""
    if comment.parent_id is not None:
        recount_replies(session, comment.parent_id)
    _text_changed(session, comment)


def _text_changed(session: Session, comment: Comment) -> None:
    """Search reads the video's comments: its document is built again."""
    events.publish(
        session, events.VideoTextChanged(org_id=comment.org_id, video_id=comment.video_id)
    )


def edit_comment(
    session: Session,
    principal: Principal,
    comment_id: uuid.UUID,
    *,
    body: str | None = None,
    share_with_mentioned: bool = False,
    push_window_s: int = 60,
) -> Comment:
    """Its author rewrites a comment (its time and thread stay). People newly mentioned are
    told; those mentioned before are not told again."""
    comment = policy.load_comment(session, principal, comment_id, "comment.update")
    _alive(comment)
    if body is None:
        return comment
    text = clean_body(body)
    if text == comment.body:
        return comment
    video = session.get(Video, comment.video_id)
    assert video is not None
    found = _resolve_mentions(
        session, principal, video, text, share_with_mentioned=share_with_mentioned
    )
    comment.body = text
    comment.mentions = [m.to_json() for m in found]
    comment.edited_at = utcnow()
    session.flush()
    notify.notify(session, comment, video, edited=True, window_s=push_window_s)
    _text_changed(session, comment)
    return comment


def delete_comment(session: Session, principal: Principal, comment_id: uuid.UUID) -> Comment:
    """Its author, the video's author or an admin deletes a comment: it stays as a tombstone
    that keeps its thread's replies. Deleting it again changes nothing."""
    comment = policy.load_comment(session, principal, comment_id, "comment.delete")
    lock_thread(session, comment.id)
    # Only the request that deletes it acts on it: two deletions at once count it out once.
    deleted = session.execute(
        update(Comment)
        .where(Comment.id == comment.id, Comment.deleted_at.is_(None))
        .values(deleted_at=func.now(), deleted_by_id=principal.user_id)
        .returning(Comment.id)
    ).scalar_one_or_none()
    if deleted is not None:
        left(session, comment)
    session.flush()
    session.refresh(comment)
    return comment


def set_resolved(
    session: Session, principal: Principal, comment_id: uuid.UUID, *, resolved: bool
) -> Comment:
    """Resolve or reopen a thread (the video's author, the thread's author, the managers above
    the thread's author, admins). Doing it again changes nothing."""
    comment = policy.load_comment(session, principal, comment_id, "comment.resolve")
    if comment.parent_id is not None:
        raise Conflict("Only a thread is resolved.", code=ErrorCode.NOT_A_THREAD)
    _alive(comment)
    if resolved and comment.resolved_at is None:
        comment.resolved_at = utcnow()
        comment.resolved_by_id = principal.user_id
    elif not resolved and comment.resolved_at is not None:
        comment.resolved_at = None
        comment.resolved_by_id = None
    session.flush()
    return comment


def set_liked(
    session: Session, principal: Principal, comment_id: uuid.UUID, *, liked: bool
) -> Comment:
    """Like a comment, or take the like back; doing it twice counts once."""
    comment = policy.load_comment(session, principal, comment_id, "comment.like")
    _alive(comment)
    if liked:
        added = session.execute(
            insert(CommentLike)
            .values(org_id=comment.org_id, comment_id=comment.id, user_id=principal.user_id)
            .on_conflict_do_nothing()
            .returning(CommentLike.user_id)
        ).scalar_one_or_none()
        change = 1 if added else 0
    else:
        removed = session.execute(
            delete(CommentLike)
            .where(
                CommentLike.org_id == comment.org_id,
                CommentLike.comment_id == comment.id,
                CommentLike.user_id == principal.user_id,
            )
            .returning(CommentLike.user_id)
        ).scalar_one_or_none()
        change = -1 if removed else 0
    if change:
        session.execute(
            update(Comment)
            .where(Comment.id == comment.id)
            .values(like_count=Comment.like_count + change)
        )
        session.flush()
        session.refresh(comment)
        events.publish(
            session,
            events.CommentLikeChanged(
                org_id=comment.org_id,
                comment_id=comment.id,
                author_id=comment.author_id,
                user_id=principal.user_id,
                liked=change > 0,
            ),
        )
    return comment


# -- reading --------------------------------------------------------------------------------------


class Order:
    TIMELINE = "timeline"  # by moment, whole-video comments first
    NEWEST = "newest"


def shown(principal: Principal) -> Any:
    """What a reader's lists hold: live comments, and tombstones that still carry replies
    (the author of a hidden comment, and admins, still see it as it was, marked hidden)."""
    tombstone = or_(
        Comment.deleted_at.is_not(None),
        and_(
            Comment.hidden_at.is_not(None),
            *(() if principal.is_admin else (Comment.author_id != principal.user_id,)),
        ),
    )
    return or_(~tombstone, and_(Comment.parent_id.is_(None), Comment.reply_count > 0))


def threads(principal: Principal, video: Video) -> Select[Any]:
    """A video's threads (top-level comments), as a list shows them."""
    return select(Comment).where(
        Comment.org_id == video.org_id,
        Comment.video_id == video.id,
        Comment.parent_id.is_(None),
        shown(principal),
    )


def replies(principal: Principal, thread: Comment) -> Select[Any]:
    """A thread's replies, oldest first."""
    return select(Comment).where(
        Comment.org_id == thread.org_id, Comment.parent_id == thread.id, shown(principal)
    )


def first_replies(
    session: Session, principal: Principal, thread_ids: Sequence[uuid.UUID], count: int
) -> dict[uuid.UUID, list[Comment]]:
    """The first `count` replies of each thread, in one query."""
    if not thread_ids or count <= 0:
        return {}
    ranked = (
        select(
            Comment.id,
            func.row_number().over(partition_by=Comment.parent_id, order_by=Comment.id).label("n"),
        )
        .where(Comment.parent_id.in_(list(thread_ids)), shown(principal))
        .subquery()
    )
    rows = session.scalars(
        select(Comment)
        .join(ranked, ranked.c.id == Comment.id)
        .where(ranked.c.n <= count)
        .order_by(Comment.parent_id, Comment.id)
    ).all()
    found: dict[uuid.UUID, list[Comment]] = {}
    for reply in rows:
        assert reply.parent_id is not None
        found.setdefault(reply.parent_id, []).append(reply)
    return found


def changes(video: Video, point: SyncPoint) -> Select[Any]:
    """Every comment of the video (threads and replies) written since a sync point."""
    return select(Comment).where(
        Comment.org_id == video.org_id,
        Comment.video_id == video.id,
        changed_since(point, Comment),
    )


def matching_ids(
    session: Session, principal: Principal, video: Video, ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    """Of these comment ids, those the principal's lists of the video hold now."""
    if not ids:
        return set()
    return set(
        session.scalars(
            select(Comment.id).where(
                Comment.org_id == video.org_id,
                Comment.video_id == video.id,
                Comment.id.in_(ids),
                shown(principal),
            )
        )
    )


def liked_by(session: Session, principal: Principal, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    if not ids:
        return set()
    return set(
        session.scalars(
            select(CommentLike.comment_id).where(
                CommentLike.org_id == principal.org_id,
                CommentLike.user_id == principal.user_id,
                CommentLike.comment_id.in_(list(ids)),
            )
        )
    )


# -- who can be mentioned -------------------------------------------------------------------------


@dataclass(frozen=True)
class Mentionable:
    user_id: uuid.UUID | None
    team_id: uuid.UUID | None
    handle: str
    display_name: str
    can_see_video: bool
    # For a team: how many of its people cannot see the video (0: all of them can).
    people_without_access: int = 0


def _like_prefix(q: str) -> str:
    escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def mentionable(
    session: Session, principal: Principal, video_id: uuid.UUID, q: str, count: int
) -> list[Mentionable]:
    """People and teams whose handle or name starts with `q`, for autocompleting `@...` in a
    comment on the video: those who can see it first, those who cannot marked (mentioning them
    needs `share_with_mentioned`)."""
    video = policy.load_video(session, principal, video_id, "video.comment")
    prefix = _like_prefix(q.strip().lstrip("@").lower())
    people = session.execute(
        select(User.id, User.handle, User.display_name)
        .where(
            User.org_id == principal.org_id,
            User.is_active.is_(True),
            User.deleted_at.is_(None),
            User.id != principal.user_id,
            or_(User.handle.like(prefix), User.display_name.ilike(prefix)),
        )
        .order_by(User.handle)
        .limit(count)
    ).all()
    seeing = policy.videos.viewers_among(
        session, video, select(User.id).where(User.id.in_([p.id for p in people]))
    )
    found = [Mentionable(p.id, None, p.handle, p.display_name, p.id in seeing) for p in people]
    teams = session.execute(
        select(Team.id, Team.handle, Team.name)
        .where(
            Team.org_id == principal.org_id,
            or_(Team.handle.like(prefix), Team.name.ilike(prefix)),
        )
        .order_by(Team.handle)
        .limit(min(count, 5))
    ).all()
    for team in teams:
        members = audience.audience(principal.org_id, team_ids=[team.id])
        lacking = _without_access(session, video, members)
        found.append(Mentionable(None, team.id, team.handle, team.name, not lacking, len(lacking)))
    found.sort(key=lambda m: (not m.can_see_video, m.handle))
    return found[:count]
