"""Declining an assignment, or asking for more time, with a reason.

A person's request is kept as they made it, answered or not, so the reasons can be reported
(`reasons`). Its assigner, an admin or the person's manager (up the reporting line) answers:
a decline granted excuses the person; more time granted moves their due date (and their
reminders with it). The person is told either way.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from fieldcast.db import utcnow
from fieldcast.errors import Conflict, ErrorCode, InvalidInput, NotFound
from fieldcast.inbox import services as inbox
from fieldcast.inbox.types import NotificationType
from fieldcast.models.accounts import User
from fieldcast.models.programs import (
    Assignee,
    AssigneeState,
    Assignment,
    AssignmentRequest,
    RequestKind,
    RequestReason,
)
from fieldcast.policy import Principal, authorize, managers_of, reports_of
from fieldcast.programs import assignments


def make(
    session: Session,
    principal: Principal,
    assignment_id: uuid.UUID,
    *,
    kind: RequestKind,
    reason: RequestReason,
    text: str = "",
    wanted_due_at: datetime | None = None,
) -> AssignmentRequest:
    row = assignments.mine(session, principal, assignment_id)
    if row.state in (AssigneeState.COMPLETED, AssigneeState.EXCUSED):
        raise Conflict(f"You are {row.state.value} already.", code=ErrorCode.CONFLICT)
    if reason is RequestReason.OTHER and not text.strip():
        raise InvalidInput(errors={"text": ["Say why, for another reason."]})
    if kind is RequestKind.MORE_TIME:
        if wanted_due_at is None or wanted_due_at <= max(utcnow(), row.due_at or utcnow()):
            raise InvalidInput(errors={"wanted_due_at": ["Later than your due date."]})
    elif wanted_due_at is not None:
        raise InvalidInput(errors={"wanted_due_at": ["Only for more time."]})
    waiting = session.scalar(
        select(AssignmentRequest.id).where(
            AssignmentRequest.org_id == principal.org_id,
            AssignmentRequest.assignment_id == assignment_id,
            AssignmentRequest.user_id == principal.user_id,
            AssignmentRequest.kind == kind,
            AssignmentRequest.decided_at.is_(None),
        )
    )
    if waiting is not None:
        raise Conflict(
            "You asked this already; it waits for an answer.", code=ErrorCode.REQUEST_PENDING
        )
    made = AssignmentRequest(
        org_id=principal.org_id,
        assignment_id=assignment_id,
        user_id=principal.user_id,
        kind=kind,
        reason=reason,
        text=text.strip(),
        wanted_due_at=wanted_due_at,
    )
    session.add(made)
    session.flush()
    _tell_assigner(session, principal, made)
    return made


def _tell_assigner(session: Session, principal: Principal, made: AssignmentRequest) -> None:
    """The assigner hears of the request (an inbox item and a push, through their preferences):
    who asks, what and why; an admin or the person's manager may answer it too."""
    assignment = session.get(Assignment, made.assignment_id)
    if assignment is None or assignment.assigned_by in (None, principal.user_id):
        return  # (their own assignment of themselves)
    assigner = session.scalar(
        select(User).where(User.org_id == made.org_id, User.id == assignment.assigned_by)
    )
    if assigner is None or not assigner.is_active or assigner.deleted_at is not None:
        return  # (admins and the person's managers find it listed)
    inbox.notify(
        session,
        org_id=made.org_id,
        user_id=assigner.id,
        type=NotificationType.ASSIGNMENT_REQUESTED,
        args={
            "person": principal.user.display_name,
            "title": assignments.title_of(session, assignment),
            "text": made.text,
        },
        data={
            "assignment_id": str(assignment.id),
            "request_id": str(made.id),
            "kind": made.kind.value,
            "reason": made.reason.value,
        },
        dedup_key=f"assignment.requested:{made.id}",
    )


def load(session: Session, principal: Principal, request_id: uuid.UUID) -> AssignmentRequest:
    """A request the principal may answer: as the assignment's assigner, an admin, or the
    person's manager; its maker reads their own."""
    found = session.scalar(
        select(AssignmentRequest).where(
            AssignmentRequest.org_id == principal.org_id, AssignmentRequest.id == request_id
        )
    )
    if found is None or not (
        found.user_id == principal.user_id or may_answer(session, principal, found)
    ):
        raise NotFound(f"No request with id {request_id}.")
    return found


def may_answer(session: Session, principal: Principal, request: AssignmentRequest) -> bool:
    if principal.is_admin:
        return True
    assignment = session.get(Assignment, request.assignment_id)
    if assignment is not None and assignment.assigned_by == principal.user_id:
        return True
    chain = managers_of(principal.org_id, request.user_id).subquery()
    return session.scalar(select(chain.c.id).where(chain.c.id == principal.user_id)) is not None


def decide(
    session: Session,
    principal: Principal,
    request_id: uuid.UUID,
    *,
    granted: bool,
    due_at: datetime | None = None,
    note: str = "",
) -> AssignmentRequest:
    request = load(session, principal, request_id)
    if not may_answer(session, principal, request):
        raise NotFound(f"No request with id {request_id}.")
    # One answer: a second one at the same time waits here, then finds it answered.
    session.refresh(request, with_for_update=True)
    if request.decided_at is not None:
        raise Conflict("The request was answered already.", code=ErrorCode.REQUEST_DECIDED)
    row = session.scalar(
        select(Assignee)
        .where(Assignee.assignment_id == request.assignment_id, Assignee.user_id == request.user_id)
        .with_for_update()
    )
    assignment = session.get(Assignment, request.assignment_id)
    if row is None or assignment is None:
        raise NotFound(f"No request with id {request_id}.")
    request.decided_at = utcnow()
    request.decided_by = principal.user_id
    request.granted = granted
    if granted and request.kind is RequestKind.DECLINE:
        if row.state is not AssigneeState.COMPLETED:
            row.state = AssigneeState.EXCUSED
            row.excused_at = utcnow()
            row.excused_by = principal.user_id
    elif granted:
        until = due_at or request.wanted_due_at
        if until is None or until <= utcnow():
            raise InvalidInput(errors={"due_at": ["In the future."]})
        row.due_at = until
        row.reminded_at = row.overdue_reminded_at = None
    session.flush()
    inbox.notify(
        session,
        org_id=request.org_id,
        user_id=request.user_id,
        type=NotificationType.ASSIGNMENT_ANSWERED,
        args={"title": assignments.title_of(session, assignment), "note": note},
        data={
            "assignment_id": str(assignment.id),
            "request_id": str(request.id),
            "granted": "true" if granted else "false",
            **({"due_at": row.due_at.isoformat()} if row.due_at else {}),
        },
        dedup_key=f"assignment.answered:{request.id}",
    )
    return request


def answerable(principal: Principal, *, pending: bool = True) -> Select[Any]:
    """The requests the principal may answer (of their assignments, of the people below them;
    every one for admins), the waiting ones only by default, and their own."""
    stmt = select(AssignmentRequest).where(AssignmentRequest.org_id == principal.org_id)
    if not principal.is_admin:
        stmt = stmt.where(
            or_(
                AssignmentRequest.user_id == principal.user_id,
                AssignmentRequest.assignment_id.in_(
                    select(Assignment.id).where(
                        Assignment.org_id == principal.org_id,
                        Assignment.assigned_by == principal.user_id,
                    )
                ),
                AssignmentRequest.user_id.in_(reports_of(principal.org_id, principal.user_id)),
            )
        )
    if pending:
        stmt = stmt.where(AssignmentRequest.decided_at.is_(None))
    return stmt


def of_assignment(assignment: Assignment) -> Select[Any]:
    return select(AssignmentRequest).where(
        AssignmentRequest.org_id == assignment.org_id,
        AssignmentRequest.assignment_id == assignment.id,
    )


def reasons(session: Session, assignment: Assignment) -> dict[str, dict[str, int]]:
    """How many requests of each kind give each reason."""
    rows = session.execute(
        select(AssignmentRequest.kind, AssignmentRequest.reason, func.count())
        .where(
            AssignmentRequest.org_id == assignment.org_id,
            AssignmentRequest.assignment_id == assignment.id,
        )
        .group_by(AssignmentRequest.kind, AssignmentRequest.reason)
    ).all()
    found: dict[str, dict[str, int]] = {
        kind.value: dict.fromkeys((r.value for r in RequestReason), 0) for kind in RequestKind
    }
    for kind, reason, count in rows:
        found[kind.value][reason.value] = int(count)
    return found


def organisation_reasons(
    session: Session, principal: Principal, since: datetime | None = None
) -> dict[str, Any]:
    """Admins' report: the reasons given across the organisation, by kind, and the texts of
    `other` (the newest 100)."""
    authorize(principal, "assignment.report")
    where = [AssignmentRequest.org_id == principal.org_id]
    if since is not None:
        where.append(AssignmentRequest.created_at >= since)
    counted: Counter[tuple[str, str]] = Counter()
    for kind, reason, count in session.execute(
        select(AssignmentRequest.kind, AssignmentRequest.reason, func.count())
        .where(*where)
        .group_by(AssignmentRequest.kind, AssignmentRequest.reason)
    ):
        counted[(kind.value, reason.value)] = int(count)
    others = session.scalars(
        select(AssignmentRequest.text)
        .where(*where, AssignmentRequest.reason == RequestReason.OTHER)
        .order_by(AssignmentRequest.created_at.desc())
        .limit(100)
    ).all()
    return {
        "by_kind": {
            kind.value: {r.value: counted[(kind.value, r.value)] for r in RequestReason}
            for kind in RequestKind
        },
        "other_texts": list(others),
    }
