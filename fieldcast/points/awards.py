"""The ledger: points awarded from what happened elsewhere, each at most once.

Handlers of the domain events award points in the publisher's transaction: a like, an accepted
answer, a video completed, an assignment completed on time. Every award is one row of
`point_awards`, unique per (kind, subject, actor, person): a retried event, a like taken back
and given again, or a recount run twice finds the row and adds nothing. What is taken back (a
like withdrawn, an acceptance withdrawn or moved to another answer) marks the row revoked and
its points leave the totals; given again, the same row counts again, at its first date.

Nobody earns points for their own action (a like of one's own comment, one's own video
completed, one's own answer accepted, an assignment one gave oneself), and each kind has a
daily cap per person (`rules.RULES`). While the organisation has points switched off nothing
is awarded or taken back; what was earned before stays, hidden, until they are on again.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import and_, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldcast import events
from fieldcast.db import utcnow
from fieldcast.models.points import (
    BadgeAward,
    PointAward,
    PointKind,
    PointPeriod,
    PointsSetting,
    PointTotal,
)
from fieldcast.models.programs import Assignee, AssigneeState, Assignment
from fieldcast.models.videos import Video
from fieldcast.points.rules import BADGES, RULES, Badge, day_start, period_start


def enabled(session: Session, org_id: uuid.UUID) -> bool:
    """The organisation awards and shows points (on unless an admin switched them off)."""
    found = session.scalar(select(PointsSetting.enabled).where(PointsSetting.org_id == org_id))
    return True if found is None else found


def award(
    session: Session,
    org_id: uuid.UUID,
    *,
    user_id: uuid.UUID,
    kind: PointKind,
    subject_id: uuid.UUID,
    actor_id: uuid.UUID,
) -> bool:
    """Award `user_id` the points of `kind` for what `actor_id` did with `subject_id`, unless
    it was awarded already (a revoked award counts again) or the day's cap is reached.
    True when points were added now."""
    if not enabled(session, org_id):
        return False
    # One award of a kind at a time per person: the cap below counts what is committed.
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"points:{user_id}:{kind}"},
    )
    key = and_(
        PointAward.org_id == org_id,
        PointAward.kind == kind,
        PointAward.subject_id == subject_id,
        PointAward.actor_id == actor_id,
        PointAward.user_id == user_id,
    )
    found = session.execute(
        select(PointAward.id, PointAward.revoked_at, PointAward.points, PointAward.occurred_at)
        .where(key)
        .with_for_update()
    ).one_or_none()
    if found is not None:
        if found.revoked_at is None:
            return False
        # Given again: the same award counts again (it used its day's cap when first made).
        session.execute(update(PointAward).where(PointAward.id == found.id).values(revoked_at=None))
        _add_to_totals(session, org_id, user_id, found.occurred_at, found.points)
        _check_badges(session, org_id, user_id, kind)
        return True
    now = utcnow()
    rule = RULES[kind]
    today = session.scalar(
        select(func.count())
        .select_from(PointAward)
        .where(
            PointAward.user_id == user_id,
            PointAward.kind == kind,
            PointAward.occurred_at >= day_start(now),
        )
    )
    if (today or 0) >= rule.daily_cap:
        return False
    made = session.execute(
        insert(PointAward)
        .values(
            org_id=org_id,
            user_id=user_id,
            kind=kind,
            subject_id=subject_id,
            actor_id=actor_id,
            points=rule.points,
            occurred_at=now,
        )
        .on_conflict_do_nothing()
        .returning(PointAward.id)
    ).scalar_one_or_none()
    if made is None:
        return False
    _add_to_totals(session, org_id, user_id, now, rule.points)
    _check_badges(session, org_id, user_id, kind)
    return True


def revoke(
    session: Session,
    org_id: uuid.UUID,
    *,
    user_id: uuid.UUID,
    kind: PointKind,
    subject_id: uuid.UUID,
    actor_id: uuid.UUID | None = None,
) -> int:
    """Take back the live awards of `kind` for `subject_id` to `user_id` (from `actor_id`, or
    from anyone); their points leave the totals. How many were taken back."""
    if not enabled(session, org_id):
        return 0
    where = [
        PointAward.org_id == org_id,
        PointAward.kind == kind,
        PointAward.subject_id == subject_id,
        PointAward.user_id == user_id,
        PointAward.revoked_at.is_(None),
    ]
    if actor_id is not None:
        where.append(PointAward.actor_id == actor_id)
    taken = session.execute(
        update(PointAward)
        .where(*where)
        .values(revoked_at=utcnow())
        .returning(PointAward.occurred_at, PointAward.points)
    ).all()
    for row in taken:
        _add_to_totals(session, org_id, user_id, row.occurred_at, -row.points)
    return len(taken)


def _add_to_totals(
    session: Session, org_id: uuid.UUID, user_id: uuid.UUID, occurred_at: datetime, points: int
) -> None:
    """Add `points` (or take them away) in each period holding `occurred_at`."""
    day = occurred_at.astimezone(UTC).date()
    rows = [
        {
            "org_id": org_id,
            "user_id": user_id,
            "period": period,
            "starts_on": period_start(period, day),
            "points": points,
        }
        for period in PointPeriod
    ]
    stmt = insert(PointTotal).values(rows)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["user_id", "period", "starts_on"],
            set_={"points": PointTotal.points + stmt.excluded.points},
        )
    )


# The first day of each period holding an award's time, in SQL (weeks from Monday, in UTC).
_PERIOD_START_SQL = {
    PointPeriod.WEEK: "date_trunc('week', occurred_at AT TIME ZONE 'UTC')::date",
    PointPeriod.MONTH: "date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date",
    PointPeriod.QUARTER: "date_trunc('quarter', occurred_at AT TIME ZONE 'UTC')::date",
    PointPeriod.ALL: "DATE '1970-01-01'",
}

_RECOUNT = """
    INSERT INTO point_totals (org_id, user_id, period, starts_on, points)
    SELECT org_id, user_id, :period, {starts}, sum(points)
    FROM point_awards WHERE org_id = :org_id AND revoked_at IS NULL
    GROUP BY org_id, user_id, {starts}
"""


def recount(session: Session, org_id: uuid.UUID) -> None:
    """Build the organisation's totals again from the ledger. They are kept with every award
    and every award taken back; this repairs them after the ledger was changed by hand."""
    session.execute(delete(PointTotal).where(PointTotal.org_id == org_id))
    for period, starts in _PERIOD_START_SQL.items():
        session.execute(
            text(_RECOUNT.format(starts=starts)), {"org_id": org_id, "period": period.value}
        )


# -- badges ---------------------------------------------------------------------------------------


def _check_badges(session: Session, org_id: uuid.UUID, user_id: uuid.UUID, kind: PointKind) -> None:
    """Give the person the badges of `kind` they now qualify for and do not have yet."""
    have = set(session.scalars(select(BadgeAward.badge).where(BadgeAward.user_id == user_id)))
    for badge in BADGES:
        if badge.kind is kind and badge.name not in have and _qualifies(session, user_id, badge):
            session.execute(
                insert(BadgeAward)
                .values(org_id=org_id, user_id=user_id, badge=badge.name, earned_at=utcnow())
                .on_conflict_do_nothing()
            )


def _qualifies(session: Session, user_id: uuid.UUID, badge: Badge) -> bool:
    if badge.streak:
        return _on_time_streak(session, user_id, badge.count)
    counted = PointAward.actor_id.distinct() if badge.distinct_actors else PointAward.id
    found = session.scalar(
        select(func.count(counted)).where(
            PointAward.user_id == user_id,
            PointAward.kind == badge.kind,
            PointAward.revoked_at.is_(None),
        )
    )
    return (found or 0) >= badge.count


def _on_time_streak(session: Session, user_id: uuid.UUID, length: int) -> bool:
    """The person's last `length` assignments completed (given by someone else) were all
    completed by their due date."""
    latest = session.execute(
        select(Assignee.completed_at, Assignee.due_at)
        .join(
            Assignment,
            and_(Assignment.org_id == Assignee.org_id, Assignment.id == Assignee.assignment_id),
        )
        .where(
            Assignee.user_id == user_id,
            Assignee.state == AssigneeState.COMPLETED,
            Assignee.completed_at.is_not(None),
            Assignment.assigned_by.is_distinct_from(user_id),
        )
        .order_by(Assignee.completed_at.desc())
        .limit(length)
    ).all()
    return len(latest) == length and all(_on_time(row.completed_at, row.due_at) for row in latest)


def _on_time(completed_at: datetime | None, due_at: datetime | None) -> bool:
    return completed_at is not None and (due_at is None or completed_at <= due_at)


# -- what earns points ----------------------------------------------------------------------------


@events.subscribe(events.VideoCompleted)
def _video_completed(session: Session, event: events.VideoCompleted) -> None:
    owner_id = session.scalar(
        select(Video.owner_id).where(Video.org_id == event.org_id, Video.id == event.video_id)
    )
    if owner_id is None or owner_id == event.user_id:
        return
    award(
        session,
        event.org_id,
        user_id=owner_id,
        kind=PointKind.VIDEO_COMPLETED,
        subject_id=event.video_id,
        actor_id=event.user_id,
    )


@events.subscribe(events.CommentLikeChanged)
def _comment_like_changed(session: Session, event: events.CommentLikeChanged) -> None:
    if event.author_id == event.user_id:
        return
    change = award if event.liked else revoke
    change(
        session,
        event.org_id,
        user_id=event.author_id,
        kind=PointKind.COMMENT_LIKED,
        subject_id=event.comment_id,
        actor_id=event.user_id,
    )


@events.subscribe(events.AcceptedAnswerChanged)
def _accepted_answer_changed(session: Session, event: events.AcceptedAnswerChanged) -> None:
    # Whoever held the acceptance before (another author, or anyone on a withdrawal) loses it.
    holders = session.scalars(
        select(PointAward.user_id).where(
            PointAward.org_id == event.org_id,
            PointAward.kind == PointKind.ANSWER_ACCEPTED,
            PointAward.subject_id == event.question_id,
            PointAward.revoked_at.is_(None),
        )
    ).all()
    for holder in set(holders) - {event.author_id}:
        revoke(
            session,
            event.org_id,
            user_id=holder,
            kind=PointKind.ANSWER_ACCEPTED,
            subject_id=event.question_id,
        )
    if event.author_id is None or event.author_id == event.asker_id:
        return
    award(
        session,
        event.org_id,
        user_id=event.author_id,
        kind=PointKind.ANSWER_ACCEPTED,
        subject_id=event.question_id,
        actor_id=event.asker_id,
    )


@events.subscribe(events.AssignmentsCompleted)
def _assignments_completed(session: Session, event: events.AssignmentsCompleted) -> None:
    if not event.completed or not enabled(session, event.org_id):
        return
    for assignment_id, user_id in event.completed:
        row = session.execute(
            select(Assignee.completed_at, Assignee.due_at, Assignment.assigned_by)
            .join(
                Assignment,
                and_(Assignment.org_id == Assignee.org_id, Assignment.id == Assignee.assignment_id),
            )
            .where(
                Assignee.org_id == event.org_id,
                Assignee.assignment_id == assignment_id,
                Assignee.user_id == user_id,
            )
        ).one_or_none()
        # Not for an assignment one gave oneself; not when late.
        if row is None or row.assigned_by == user_id or not _on_time(row.completed_at, row.due_at):
            continue
        award(
            session,
            event.org_id,
            user_id=user_id,
            kind=PointKind.ASSIGNMENT_ON_TIME,
            subject_id=assignment_id,
            actor_id=user_id,
        )
