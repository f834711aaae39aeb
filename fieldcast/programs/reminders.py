"""Reminders and digests of assignments, run by the scheduler.

- Due soon: once per due date, `REMIND_BEFORE` ahead, a person not done yet gets an inbox item
  and a push (their preferences and quiet hours apply, as to every push).
- Overdue: once per due date, when it has passed.
- Weekly, each manager with direct reports who have overdue assignments gets one inbox item
  and one email listing them.

Each round claims its rows (`FOR UPDATE SKIP LOCKED`) and marks them in the same transaction,
so two schedulers never remind twice, and a due date moved (more time granted) is reminded
again.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from fieldcast import policy
from fieldcast.accounts.emails import Paragraphs
from fieldcast.context import current
from fieldcast.db import Database, utcnow
from fieldcast.inbox import services as inbox
from fieldcast.inbox.types import NotificationType
from fieldcast.links import app_link
from fieldcast.models.accounts import User
from fieldcast.models.curation import Collection
from fieldcast.models.programs import Assignee, Assignment
from fieldcast.models.videos import Video
from fieldcast.outbox import services as outbox
from fieldcast.outbox.names import TaskName
from fieldcast.policy import Principal
from fieldcast.programs import assignments
from notifications.email import Email, EmailRejected, EmailTransientError

log = logging.getLogger(__name__)

REMIND_BEFORE = timedelta(hours=24)
# Rows claimed per round and kind: a backlog is worked off over the next rounds.
ROUND_SIZE = 2_000
DIGEST_TASK = TaskName.ASSIGNMENTS_DIGEST_EMAIL
# What one digest lists at most (the email says how many more).
DIGEST_LINES = 50


def remind(db: Database, *, now: datetime | None = None) -> dict[str, int]:
    """One round: due-soon and overdue reminders. Returns how many of each were made."""
    now = now or utcnow()
    with db.unit_of_work() as session:
        soon = _claim(
            session,
            Assignee.reminded_at,
            (Assignee.due_at > now) & (Assignee.due_at <= now + REMIND_BEFORE),
            now,
        )
        late = _claim(session, Assignee.overdue_reminded_at, Assignee.due_at <= now, now)
        for rows, kind in (
            (soon, NotificationType.ASSIGNMENT_DUE),
            (late, NotificationType.ASSIGNMENT_OVERDUE),
        ):
            _tell(session, rows, kind)
    return {"due": len(soon), "overdue": len(late)}


def _claim(session: Session, mark: Any, when: Any, now: datetime) -> list[Any]:
    open_rows = (
        select(Assignee.assignment_id, Assignee.user_id)
        .join(
            Assignment,
            (Assignment.org_id == Assignee.org_id) & (Assignment.id == Assignee.assignment_id),
        )
        .where(
            Assignee.state.in_(assignments.OPEN_STATES),
            Assignee.due_at.is_not(None),
            when,
            mark.is_(None),
            Assignment.withdrawn_at.is_(None),
            select(User.id).where(User.id == Assignee.user_id, User.is_active.is_(True)).exists(),
        )
        .limit(ROUND_SIZE)
        .with_for_update(of=Assignee, skip_locked=True)
        .cte("claimed")
    )
    return list(
        session.execute(
            update(Assignee)
            .where(
                Assignee.assignment_id == open_rows.c.assignment_id,
                Assignee.user_id == open_rows.c.user_id,
            )
            .values({mark.key: now})
            .returning(
                Assignee.org_id,
                Assignee.assignment_id,
                Assignee.user_id,
                Assignee.due_at,
                Assignee.played_ms,
                Assignee.total_ms,
            )
        ).all()
    )


def _tell(session: Session, rows: list[Any], kind: NotificationType) -> None:
    titles: dict[uuid.UUID, tuple[str, dict[str, str]]] = {}
    for row in rows:
        if row.assignment_id not in titles:
            assignment = session.get(Assignment, row.assignment_id)
            assert assignment is not None
            titles[row.assignment_id] = (
                assignments.title_of(session, assignment),
                assignments._about(assignment),
            )
        title, about = titles[row.assignment_id]
        share = round(100 * row.played_ms / row.total_ms) if row.total_ms else 0
        inbox.notify(
            session,
            org_id=row.org_id,
            user_id=row.user_id,
            type=kind,
            args={"title": title, "due": row.due_at.date().isoformat(), "progress": f"{share} %"},
            data={"assignment_id": str(row.assignment_id), **about},
            dedup_key=f"{kind}:{row.assignment_id}:{row.user_id}:{row.due_at.isoformat()}",
        )


# -- the managers' weekly digest ------------------------------------------------------------------

_OVERDUE_BY_MANAGER = text(
    """
    SELECT u.org_id, u.manager_id, count(*) AS items,
           array_agg(DISTINCT u.display_name) AS people
    FROM assignees ae
    JOIN users u ON u.org_id = ae.org_id AND u.id = ae.user_id
    JOIN assignments a ON a.org_id = ae.org_id AND a.id = ae.assignment_id
    WHERE ae.state IN ('not_started', 'in_progress') AND ae.due_at < :now
      AND a.withdrawn_at IS NULL AND u.manager_id IS NOT NULL AND u.is_active
    GROUP BY u.org_id, u.manager_id
    """
)


def digest(db: Database, *, now: datetime | None = None) -> dict[str, int]:
    """The weekly digest: one inbox item and one email per manager with overdue people."""
    now = now or utcnow()
    week = now.strftime("%G-W%V")
    told = 0
    with db.unit_of_work() as session:
        for row in session.execute(_OVERDUE_BY_MANAGER, {"now": now}).all():
            people = sorted(row.people)
            made = inbox.notify(
                session,
                org_id=row.org_id,
                user_id=row.manager_id,
                type=NotificationType.ASSIGNMENT_DIGEST,
                args={
                    "count": row.items,
                    "people": ", ".join(people[:5]) + (" …" if len(people) > 5 else ""),
                },
                data={"week": week},
                dedup_key=f"{NotificationType.ASSIGNMENT_DIGEST}:{row.manager_id}:{week}",
            )
            if made is None:
                continue  # told this week already
            outbox.record(
                session,
                DIGEST_TASK,
                {"manager_id": str(row.manager_id), "week": week},
                org_id=row.org_id,
                dedup_key=f"assignment.digest_email:{row.manager_id}:{week}",
            )
            told += 1
    return {"managers": told}


def overdue_of_reports(session: Session, manager: User, now: datetime) -> list[Any]:
    """The overdue assignments of the manager's direct reports, most overdue first."""
    return list(
        session.execute(
            select(User.display_name, Assignee.assignment_id, Assignee.due_at)
            .join(Assignee, (Assignee.org_id == User.org_id) & (Assignee.user_id == User.id))
            .join(
                Assignment,
                (Assignment.org_id == Assignee.org_id) & (Assignment.id == Assignee.assignment_id),
            )
            .where(
                User.org_id == manager.org_id,
                User.manager_id == manager.id,
                User.is_active.is_(True),
                Assignee.state.in_(assignments.OPEN_STATES),
                Assignee.due_at < now,
                Assignment.withdrawn_at.is_(None),
            )
            .order_by(Assignee.due_at, User.display_name)
        ).all()
    )


def _sees(session: Session, viewer: Principal, assignment: Assignment) -> bool:
    if assignment.collection_id is not None:
        found = session.get(Collection, assignment.collection_id)
        return found is not None and policy.collections.can_see(session, viewer, found)
    video = session.get(Video, assignment.video_id)
    return video is not None and policy.videos.can_see(session, viewer, video)


def digest_email(session: Session, manager: User, now: datetime) -> Email | None:
    rows = overdue_of_reports(session, manager, now)
    if not rows:
        return None
    settings = current().settings
    titles: dict[uuid.UUID, str] = {}
    lines = []
    viewer = Principal(user=manager)
    for row in rows[:DIGEST_LINES]:
        if row.assignment_id not in titles:
            assignment = session.get(Assignment, row.assignment_id)
            # Named only if the manager sees what it assigns (else, what it is stays theirs).
            titles[row.assignment_id] = (
                assignments.title_of(session, assignment)
                if assignment is not None and _sees(session, viewer, assignment)
                else "an assignment"
            )
        days = max(1, (now - row.due_at).days)
        lines.append(
            f"{row.display_name}: “{titles[row.assignment_id]}”, "
            f"{days} day{'s' if days != 1 else ''} overdue"
        )
    if len(rows) > DIGEST_LINES:
        lines.append(f"… and {len(rows) - DIGEST_LINES} more.")
    content = Paragraphs(
        greeting=f"Hello {manager.display_name},",
        lines=(f"Overdue in your team this week: {len(rows)}.", *lines),
        action="See your team's learning",
        link=app_link(settings, "/learning/team"),
        footer="You get this email on weeks when someone in your team has overdue assignments.",
    )
    return Email(
        to=manager.email,
        subject=f"Overdue in your team this week: {len(rows)}",
        text=content.text(),
        html=content.html(),
        message_id=f"assignment-digest.{manager.id}.{now.strftime('%G-W%V')}",
    )


@outbox.tasks.register(DIGEST_TASK, queue="default", max_attempts=8)
def _send_digest(session: Session, payload: dict[str, Any]) -> None:
    manager = session.get(User, uuid.UUID(payload["manager_id"]))
    if manager is None or not manager.is_active or manager.deleted_at is not None:
        return
    message = digest_email(session, manager, utcnow())
    if message is None:
        return
    sender = current().email
    if sender is None:
        raise RuntimeError("no email channel is configured in this process")
    try:
        sender.send(message)
    except EmailTransientError as exc:
        raise outbox.TransientError(str(exc)) from None
    except EmailRejected:
        log.error("the mail server refused the digest to manager %s", manager.id)
        raise
