"""Points and badges: what people earn for building the library, and the boards that rank them."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from fieldcast.db import UUIDPK, Base, CreatedAt, TenantMixin, UpdatedAt, str_enum, tenant_fk


class PointKind(enum.StrEnum):
    """What earns points (the values, caps and rules are in `fieldcast.points.rules`)."""

    VIDEO_COMPLETED = "video_completed"  # someone else completed a video of yours
    ANSWER_ACCEPTED = "answer_accepted"  # an asker accepted your answer to their question
    COMMENT_LIKED = "comment_liked"  # someone else liked a comment of yours
    ASSIGNMENT_ON_TIME = "assignment_on_time"  # you completed an assignment by its due date


class PointPeriod(enum.StrEnum):
    """The periods a board ranks: calendar weeks (from Monday), months and quarters in UTC,
    and all time."""

    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    ALL = "all"


class PointAward(TenantMixin, Base):
    """One award of the ledger: `user_id` earned `points` of `kind` on `occurred_at`, for what
    `actor_id` did with `subject_id` (the video, question, comment or assignment).

    (kind, subject, actor, person) is unique: a retried event, a like taken back and given
    again, or a job run twice finds the row and awards nothing more. An award taken back (a
    like withdrawn, another answer accepted) keeps its row with `revoked_at`; given again, the
    same row counts again."""

    __tablename__ = "point_awards"
    __table_args__ = (
        tenant_fk("point_awards", "user_id", "users", ondelete="CASCADE"),
        UniqueConstraint("org_id", "kind", "subject_id", "actor_id", "user_id"),
        CheckConstraint("points > 0", name="points_positive"),
        # Boards and reports by time; a person's awards of a kind in a day (the caps).
        Index("ix_point_awards_org_id_occurred_at", "org_id", "occurred_at"),
        Index("ix_point_awards_user_id_kind_occurred_at", "user_id", "kind", "occurred_at"),
    )

    id: Mapped[UUIDPK]
    user_id: Mapped[uuid.UUID]
    kind: Mapped[PointKind] = mapped_column(str_enum(PointKind, "point_kind"))
    subject_id: Mapped[uuid.UUID]
    actor_id: Mapped[uuid.UUID]
    points: Mapped[int]
    occurred_at: Mapped[CreatedAt]
    revoked_at: Mapped[datetime | None]


class PointTotal(TenantMixin, Base):
    """A person's points in one period (`starts_on` its first day; 1970-01-01 for all time),
    kept with every award and every award taken back, so a board reads one row a person."""

    __tablename__ = "point_totals"
    __table_args__ = (
        tenant_fk("point_totals", "user_id", "users", ondelete="CASCADE"),
        # One board, best first.
        Index(
            "ix_point_totals_board",
            "org_id",
            "period",
            "starts_on",
            "points",
            "user_id",
        ),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    period: Mapped[PointPeriod] = mapped_column(
        str_enum(PointPeriod, "point_period", length=8), primary_key=True
    )
    starts_on: Mapped[date] = mapped_column(primary_key=True)
    points: Mapped[int] = mapped_column(default=0, server_default="0")


class BadgeAward(TenantMixin, Base):
    """A badge a person earned (`fieldcast.points.rules.BADGES`): earned once, kept."""

    __tablename__ = "badge_awards"
    __table_args__ = (tenant_fk("badge_awards", "user_id", "users", ondelete="CASCADE"),)

    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    badge: Mapped[str] = mapped_column(String(32), primary_key=True)
    earned_at: Mapped[CreatedAt]


class PointsSetting(Base):
    """Whether an organisation awards points and shows them. No row: on."""

    __tablename__ = "points_settings"

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(default=True, server_default="true")
    updated_by_id: Mapped[uuid.UUID | None]
    updated_at: Mapped[UpdatedAt]
