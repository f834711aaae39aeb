"""Asking the peers: a video posted as a question, its answers, their votes, the accepted one.

A question is a video with `kind = question` (and, optionally, when the advice is `needed_by`).
Its answers are its threads (top-level comments) and its reply videos: videos whose
`answers_video_id` names it, which the asker always sees (`policy.VideoPolicy`). Peers vote an
answer up: a like on an answer comment, a vote on a reply video. The asker accepts one answer;
the question is then `answered`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldcast import events, policy
from fieldcast.db import utcnow
from fieldcast.errors import Conflict, ErrorCode, InvalidInput
from fieldcast.inbox import services as inbox
from fieldcast.inbox.types import NotificationType
from fieldcast.models.accounts import User
from fieldcast.models.conversation import AnswerVote, Comment, CommentLike
from fieldcast.models.videos import Video, VideoKind
from fieldcast.policy import Principal

# Answers one listing returns at most (the best first): more is a debate, not advice.
MAX_ANSWERS = 100


class QuestionState:
    OPEN = "open"
    ANSWERED = "answered"


def state(video: Video) -> str | None:
    """`open` or `answered` for a question; None for any other video."""
    if video.kind is not VideoKind.QUESTION:
        return None
    return QuestionState.ANSWERED if video.answered_at is not None else QuestionState.OPEN


def question_of(session: Session, principal: Principal, video_id: uuid.UUID) -> Video:
    """A question the principal sees (a reply video names it when it is created)."""
    question = policy.load_video(session, principal, video_id)
    if question.kind is not VideoKind.QUESTION:
        raise InvalidInput(
            "That video is not a question.",
            code=ErrorCode.NOT_A_QUESTION,
            errors={"answers_video_id": ["Not a question."]},
        )
    return question


@dataclass(frozen=True)
class Answer:
    comment: Comment | None
    video: Video | None
    votes: int
    voted_by_me: bool
    accepted: bool

    @property
    def created_at(self) -> object:
        return (self.comment or self.video).created_at  # type: ignore[union-attr]


def answers(session: Session, principal: Principal, question: Video) -> list[Answer]:
    """The question's answers the principal sees, the accepted one first, then by votes, then
    the earliest."""
    threads = session.scalars(
        select(Comment)
        .where(
            Comment.org_id == question.org_id,
            Comment.video_id == question.id,
            Comment.parent_id.is_(None),
            Comment.deleted_at.is_(None),
            Comment.hidden_at.is_(None),
        )
        .order_by(Comment.like_count.desc(), Comment.id)
        .limit(MAX_ANSWERS)
    ).all()
    liked = set(
        session.scalars(
            select(CommentLike.comment_id).where(
                CommentLike.user_id == principal.user_id,
                CommentLike.comment_id.in_([c.id for c in threads]),
            )
        )
    )
    replies = session.scalars(
        select(Video)
        .where(Video.answers_video_id == question.id, policy.videos.listed(principal))
        .limit(MAX_ANSWERS)
    ).all()
    votes = dict(
        session.execute(
            select(AnswerVote.video_id, func.count())
            .where(AnswerVote.video_id.in_([v.id for v in replies]))
            .group_by(AnswerVote.video_id)
        ).all()
    )
    mine = set(
        session.scalars(
            select(AnswerVote.video_id).where(
                AnswerVote.user_id == principal.user_id,
                AnswerVote.video_id.in_([v.id for v in replies]),
            )
        )
    )
    found = [
        Answer(c, None, c.like_count, c.id in liked, c.id == question.accepted_comment_id)
        for c in threads
    ] + [
        Answer(None, v, int(votes.get(v.id, 0)), v.id in mine, v.id == question.accepted_video_id)
        for v in replies
    ]
    found.sort(key=lambda a: (not a.accepted, -a.votes, str(a.created_at)))
    return found[:MAX_ANSWERS]


def vote_video(
    session: Session, principal: Principal, video_id: uuid.UUID, *, up: bool
) -> tuple[Video, int]:
    """Vote a reply video up (or take the vote back); returns it with its votes."""
    video = policy.load_video(session, principal, video_id)
    if video.answers_video_id is None:
        raise Conflict("That video answers no question.", code=ErrorCode.NOT_AN_ANSWER)
    if up:
        session.execute(
            insert(AnswerVote)
            .values(org_id=video.org_id, video_id=video.id, user_id=principal.user_id)
            .on_conflict_do_nothing()
        )
    else:
        session.execute(
            delete(AnswerVote).where(
                AnswerVote.video_id == video.id, AnswerVote.user_id == principal.user_id
            )
        )
    session.flush()
    count = session.scalar(
        select(func.count()).select_from(AnswerVote).where(AnswerVote.video_id == video.id)
    )
    return video, int(count or 0)


def accept(
    session: Session,
    principal: Principal,
    question_id: uuid.UUID,
    *,
    comment_id: uuid.UUID | None = None,
    video_id: uuid.UUID | None = None,
) -> Video:
    """The asker accepts one answer (a thread of the question, or a reply video to it); the
    question is `answered` and the answer's author is told. Accepting another replaces it."""
    question = policy.load_video(session, principal, question_id, "video.update")
    if question.kind is not VideoKind.QUESTION:
        raise Conflict("That video is not a question.", code=ErrorCode.NOT_A_QUESTION)
    if (comment_id is None) == (video_id is None):
        raise InvalidInput(
            "Name one answer: a comment or a video.",
            errors={"comment_id": ["Give comment_id or video_id, not both."]},
        )
    author_id: uuid.UUID
    if comment_id is not None:
        comment = policy.load_comment(session, principal, comment_id)
        if (
            comment.video_id != question.id
            or comment.parent_id is not None
            or comment.deleted_at is not None
            or comment.hidden_at is not None
        ):
            raise Conflict(
                "That comment is not an answer to this question.", code=ErrorCode.NOT_AN_ANSWER
            )
        question.accepted_comment_id, question.accepted_video_id = comment.id, None
        author_id = comment.author_id
        about = {"comment_id": comment.id}
    else:
        assert video_id is not None
        reply = policy.load_video(session, principal, video_id)
        if reply.answers_video_id != question.id:
            raise Conflict(
                "That video does not answer this question.", code=ErrorCode.NOT_AN_ANSWER
            )
        question.accepted_comment_id, question.accepted_video_id = None, reply.id
        author_id = reply.owner_id
        about = {"answer_video_id": reply.id}
    question.answered_at = question.answered_at or utcnow()
    session.flush()
    events.publish(
        session,
        events.AcceptedAnswerChanged(
            org_id=question.org_id,
            question_id=question.id,
            asker_id=principal.user_id,
            author_id=author_id,
        ),
    )
    # Nobody is told about a question they can no longer open (a share recalled since).
    sees = policy.videos.viewers_among(
        session, question, select(User.id).where(User.id == author_id)
    )
    if author_id != principal.user_id and author_id in sees:
        asker = session.get(User, principal.user_id)
        inbox.notify(
            session,
            org_id=question.org_id,
            user_id=author_id,
            type=NotificationType.ANSWER_ACCEPTED,
            args={"author": asker.display_name if asker else "", "video": question.title},
            data={"video_id": question.id, **about},
            dedup_key=f"{NotificationType.ANSWER_ACCEPTED}:{question.id}:"
            f"{next(iter(about.values()))}",
        )
    return question


def reopen(session: Session, principal: Principal, question_id: uuid.UUID) -> Video:
    """The asker takes the acceptance back: the question is open again."""
    question = policy.load_video(session, principal, question_id, "video.update")
    if question.kind is not VideoKind.QUESTION:
        raise Conflict("That video is not a question.", code=ErrorCode.NOT_A_QUESTION)
    question.accepted_comment_id = question.accepted_video_id = question.answered_at = None
    session.flush()
    events.publish(
        session,
        events.AcceptedAnswerChanged(
            org_id=question.org_id,
            question_id=question.id,
            asker_id=principal.user_id,
            author_id=None,
        ),
    )
    return question


@events.subscribe(events.VideoBecamePlayable)
def _reply_video_playable(session: Session, event: events.VideoBecamePlayable) -> None:
    """A reply video plays: the asker is told (once per version of its file)."""
    reply = session.get(Video, event.video_id)
    if reply is None or reply.answers_video_id is None:
        return
    question = session.get(Video, reply.answers_video_id)
    author = session.get(User, reply.owner_id)
    if (
        question is None
        or question.deleted_at
        or author is None
        or question.owner_id == reply.owner_id
    ):
        return
    inbox.notify(
        session,
        org_id=reply.org_id,
        user_id=question.owner_id,
        type=NotificationType.QUESTION_ANSWER,
        args={"author": author.display_name, "video": question.title, "excerpt": reply.title},
        data={"video_id": reply.id, "question_id": question.id, "actor_id": author.id},
        dedup_key=f"{NotificationType.QUESTION_ANSWER}:{reply.id}:{event.source_version}",
    )
