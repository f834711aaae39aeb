"""Learning programs: assignments of a video, clip or collection, each person's state, the
requests people make about them, and the rules that assign by team, role and schedule."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, Uuid, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from fieldcast.db import (
    UUIDPK,
    Base,
    ChangeSeq,
    ChangeXid,
    CreatedAt,
    TenantMixin,
    str_enum,
    tenant_fk,
)
from fieldcast.models.accounts import Role
from fieldcast.models.curation import CLIP_RANGE

THRESHOLD_RANGE = "threshold_pct IS NULL OR threshold_pct BETWEEN 1 AND 100"
ONE_SUBJECT = (
    "(video_id IS NULL) <> (collection_id IS NULL) AND (collection_id IS NULL OR start_ms IS NULL)"
)


class Assignment(TenantMixin, Base):
    """Something to watch (a video, a clip, a collection) for a set of people by a date.

    Granting access as a share does: each person assigned sees what it assigns (its video,
    or the videos of its collection) while the assignment stands. A round of a recurring rule
    is an assignment of its own (`rule_id`, `round`)."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("org_id", "id"),
        CheckConstraint(CLIP_RANGE, name="clip_range"),
        CheckConstraint(ONE_SUBJECT, name="one_subject"),
        CheckConstraint(THRESHOLD_RANGE, name="threshold_range"),
        tenant_fk("assignments", "video_id", "videos", ondelete="CASCADE"),
        tenant_fk("assignments", "collection_id", "collections", ondelete="CASCADE"),
        Index("ix_assignments_assigned_by_id", "assigned_by", "id"),
        Index("ix_assignments_collection_id", "collection_id"),
        Index("ix_assignments_video_id", "video_id"),
        Index("ix_assignments_rule_id", "rule_id", "round"),
    )

    id: Mapped[UUIDPK]
    # Who assigned it (for a rule's round, the rule's maker; an erased account stays named).
    assigned_by: Mapped[uuid.UUID | None]
    video_id: Mapped[uuid.UUID | None]
    start_ms: Mapped[int | None]
    end_ms: Mapped[int | None]
    collection_id: Mapped[uuid.UUID | None]
    message: Mapped[str] = mapped_column(String(2000), default="", server_default="")
    due_at: Mapped[datetime | None]
    # The share played that completes it (None: the organisation's threshold).
    threshold_pct: Mapped[int | None]
    # What the assigner named: {"user_ids": [...], "team_ids": [...], "list_ids": [...]}.
    audience: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    person_count: Mapped[int] = mapped_column(default=0, server_default="0")
    rule_id: Mapped[uuid.UUID | None]
    round: Mapped[int | None]
    created_at: Mapped[CreatedAt]
    # When its people's rows were made: it reached them.
    published_at: Mapped[datetime | None]
    withdrawn_at: Mapped[datetime | None]
    # The BI export's change marks (see fieldcast/exports/cursor.py).
    change_seq: Mapped[ChangeSeq]
    change_xid: Mapped[ChangeXid]


class AssignmentAudience(Base):
    """The people an assignment reaches, in blocks of user ids, until a worker has made each
    one's `Assignee` row (as `ShareAudience` is for a share): the request stays fast whatever
    the audience."""

    __tablename__ = "assignment_audiences"
    __table_args__ = (
        tenant_fk("assignment_audiences", "assignment_id", "assignments", ondelete="CASCADE"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"))
    assignment_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    block: Mapped[int] = mapped_column(primary_key=True)
    user_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid()))


class AssigneeState(enum.StrEnum):
    NOT_STARTED = "not_started"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    EXCUSED = "excused"
    # `overdue` is not stored: a person not completed nor excused past their due date.


class Assignee(TenantMixin, Base):
    """One person's part in an assignment: their state, their own due date (it moves when more
    time is granted), their progress, and when each step happened."""

    __tablename__ = "assignees"
    __table_args__ = (
        tenant_fk("assignees", "assignment_id", "assignments", ondelete="CASCADE"),
        tenant_fk("assignees", "user_id", "users", ondelete="CASCADE"),
        Index("ix_assignees_user_id_due_at", "user_id", "due_at"),
        Index("ix_assignees_assignment_id_state", "assignment_id", "state"),
        # Reminders read the open ones not reminded yet, by due date: before it, and overdue.
        Index(
            "ix_assignees_due_unreminded",
            "due_at",
            postgresql_where=text(
                "state IN ('not_started', 'in_progress') AND reminded_at IS NULL"
            ),
        ),
        Index(
            "ix_assignees_overdue_unreminded",
            "due_at",
            postgresql_where=text(
                "state IN ('not_started', 'in_progress') AND overdue_reminded_at IS NULL"
            ),
        ),
    )

    assignment_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    state: Mapped[AssigneeState] = mapped_column(
        str_enum(AssigneeState, "assignee_state", length=16), default=AssigneeState.NOT_STARTED
    )
    due_at: Mapped[datetime | None]
    played_ms: Mapped[int] = mapped_column(default=0, server_default="0")
    total_ms: Mapped[int] = mapped_column(default=0, server_default="0")
    assigned_at: Mapped[CreatedAt]
    notified_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    excused_at: Mapped[datetime | None]
    excused_by: Mapped[uuid.UUID | None]
    reminded_at: Mapped[datetime | None]
    overdue_reminded_at: Mapped[datetime | None]
    # The BI export's change marks (see fieldcast/exports/cursor.py).
    change_seq: Mapped[ChangeSeq]
    change_xid: Mapped[ChangeXid]


class RequestKind(enum.StrEnum):
    DECLINE = "decline"
    MORE_TIME = "more_time"


class RequestReason(enum.StrEnum):
    NO_TIME = "no_time"
    NOT_RELEVANT = "not_relevant"
    ALREADY_KNOW = "already_know"
    TECHNICAL_PROBLEM = "technical_problem"
    OTHER = "other"


class AssignmentRequest(TenantMixin, Base):
    """A person declines an assignment or asks for more time, with a reason. Every request is
    kept (answered or not), so the reasons can be reported."""

    __tablename__ = "assignment_requests"
    __table_args__ = (
        UniqueConstraint("org_id", "id"),
        CheckConstraint("reason <> 'other' OR length(text) > 0", name="other_has_text"),
        tenant_fk("assignment_requests", "assignment_id", "assignments", ondelete="CASCADE"),
        tenant_fk("assignment_requests", "user_id", "users", ondelete="CASCADE"),
        Index("ix_assignment_requests_assignment_id", "assignment_id", "created_at"),
        Index("ix_assignment_requests_user_id", "user_id"),
    )

    id: Mapped[UUIDPK]
    assignment_id: Mapped[uuid.UUID]
    user_id: Mapped[uuid.UUID]
    kind: Mapped[RequestKind] = mapped_column(str_enum(RequestKind, "request_kind", length=16))
    reason: Mapped[RequestReason] = mapped_column(
        str_enum(RequestReason, "request_reason", length=32)
    )
    text: Mapped[str] = mapped_column(String(1000), default="", server_default="")
    wanted_due_at: Mapped[datetime | None]
    created_at: Mapped[CreatedAt]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[uuid.UUID | None]
    granted: Mapped[bool | None]


class AssignmentRule(TenantMixin, Base):
    """Assign automatically: to whoever joins `team_id` or takes `role` (one assignment each,
    due `due_days` later), and, with `every_months`, again to everyone of the role or team on
    that schedule, each round an assignment of its own."""

    __tablename__ = "assignment_rules"
    __table_args__ = (
        UniqueConstraint("org_id", "id"),
        CheckConstraint(CLIP_RANGE, name="clip_range"),
        CheckConstraint(ONE_SUBJECT, name="one_subject"),
        CheckConstraint(THRESHOLD_RANGE, name="threshold_range"),
        CheckConstraint("(team_id IS NULL) <> (role IS NULL)", name="one_trigger"),
        CheckConstraint("every_months IS NULL OR every_months BETWEEN 1 AND 60", name="every"),
        tenant_fk("assignment_rules", "team_id", "teams", ondelete="CASCADE"),
        tenant_fk("assignment_rules", "video_id", "videos", ondelete="CASCADE"),
        tenant_fk("assignment_rules", "collection_id", "collections", ondelete="CASCADE"),
        Index(
            "ix_assignment_rules_next_round_at",
            "next_round_at",
            postgresql_where=text("active AND every_months IS NOT NULL"),
        ),
    )

    id: Mapped[UUIDPK]
    created_by: Mapped[uuid.UUID | None]
    name: Mapped[str] = mapped_column(String(200))
    team_id: Mapped[uuid.UUID | None]
    role: Mapped[Role | None] = mapped_column(str_enum(Role, "rule_role", length=16))
    video_id: Mapped[uuid.UUID | None]
    start_ms: Mapped[int | None]
    end_ms: Mapped[int | None]
    collection_id: Mapped[uuid.UUID | None]
    message: Mapped[str] = mapped_column(String(2000), default="", server_default="")
    due_days: Mapped[int] = mapped_column(default=7, server_default="7")
    threshold_pct: Mapped[int | None]
    every_months: Mapped[int | None]
    next_round_at: Mapped[datetime | None]
    # The schedule's first round, and the rounds made before it: round n of the schedule is
    # `every_months` x n after the first (a schedule set anew starts counting again).
    first_round_at: Mapped[datetime | None]
    rounds_before: Mapped[int] = mapped_column(default=0, server_default="0")
    rounds: Mapped[int] = mapped_column(default=0, server_default="0")
    active: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    created_at: Mapped[CreatedAt]
