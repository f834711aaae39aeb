"""Reading points: a person's own, a person's badges, the boards, and the admin's switch.

Every member of an organisation sees its boards, the organisation's and any team's: the
organisation's board shows everyone's points already, so a team's board tells nothing more
than who is in the team, which the directory shows every member too. Switched off, every read
answers `enabled: false` and nothing else (no points, no badges, no board), so apps hide the
feature from one field.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, and_, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldcast.db import utcnow
from fieldcast.models.accounts import Team, TeamMembership, User
from fieldcast.models.points import (
    BadgeAward,
    PointAward,
    PointKind,
    PointPeriod,
    PointsSetting,
    PointTotal,
)
from fieldcast.points.awards import enabled
from fieldcast.points.rules import BADGES_BY_NAME, period_start
from fieldcast.policy import Principal, authorize, get_scoped

# The most places a board pages through (an organisation's people, with room to spare).
MAX_BOARD = 100_000


@dataclass(frozen=True)
class EarnedBadge:
    name: str
    title: str
    description: str
    earned_at: datetime


@dataclass(frozen=True)
class MyPoints:
    enabled: bool
    # Per period (week, month, quarter, all): the points earned in the current one.
    totals: dict[str, int] = field(default_factory=dict)
    # All time, per kind (live awards).
    by_kind: dict[str, int] = field(default_factory=dict)
    badges: list[EarnedBadge] = field(default_factory=list)


@dataclass(frozen=True)
class Standing:
    rank: int
    user_id: uuid.UUID
    display_name: str
    handle: str
    points: int


@dataclass(frozen=True)
class Board:
    enabled: bool
    period: PointPeriod
    starts_on: date | None
    team_id: uuid.UUID | None
    items: list[Standing]
    total: int
    me: Standing | None


def _today() -> date:
    return utcnow().date()


def mine(session: Session, principal: Principal) -> MyPoints:
    """The principal's points in the current week, month, quarter and all time, by kind,
    and their badges."""
    authorize(principal, "points.read")
    if not enabled(session, principal.org_id):
        return MyPoints(enabled=False)
    today = _today()
    totals = {period.value: 0 for period in PointPeriod}
    current = [(p, period_start(p, today)) for p in PointPeriod]
    for period, points in session.execute(
        select(PointTotal.period, PointTotal.points).where(
            PointTotal.org_id == principal.org_id,
            PointTotal.user_id == principal.user_id,
            tuple_(PointTotal.period, PointTotal.starts_on).in_(current),
        )
    ):
        totals[PointPeriod(period).value] = points
    by_kind = {kind.value: 0 for kind in PointKind}
    for kind, points in session.execute(
        select(PointAward.kind, func.sum(PointAward.points))
        .where(
            PointAward.org_id == principal.org_id,
            PointAward.user_id == principal.user_id,
            PointAward.revoked_at.is_(None),
        )
        .group_by(PointAward.kind)
    ):
        by_kind[PointKind(kind).value] = int(points)
    return MyPoints(
        enabled=True,
        totals=totals,
        by_kind=by_kind,
        badges=_badges(session, principal.org_id, principal.user_id),
    )


def badges_of(
    session: Session, principal: Principal, user_id: uuid.UUID
) -> tuple[bool, list[EarnedBadge]]:
    """A person's badges (any member of their organisation sees them): (enabled, badges)."""
    authorize(principal, "points.read")
    person = get_scoped(session, principal, User, user_id)
    if not enabled(session, principal.org_id):
        return False, []
    return True, _badges(session, principal.org_id, person.id)


def _badges(session: Session, org_id: uuid.UUID, user_id: uuid.UUID) -> list[EarnedBadge]:
    rows = session.execute(
        select(BadgeAward.badge, BadgeAward.earned_at)
        .where(BadgeAward.org_id == org_id, BadgeAward.user_id == user_id)
        .order_by(BadgeAward.earned_at, BadgeAward.badge)
    ).all()
    return [
        EarnedBadge(badge.name, badge.title, badge.description, row.earned_at)
        for row in rows
        if (badge := BADGES_BY_NAME.get(row.badge)) is not None
    ]


def board(
    session: Session,
    principal: Principal,
    *,
    period: PointPeriod,
    team_id: uuid.UUID | None,
    offset: int,
    limit: int,
) -> Board:
    """The current period's board of the organisation, or of a team's members: the people
    with points in it, most first (equal points share a rank, then by name), `limit` of
    them from place `offset`; and the principal's own standing (None without points)."""
    authorize(principal, "points.read")
    team = get_scoped(session, principal, Team, team_id) if team_id is not None else None
    if not enabled(session, principal.org_id):
        return Board(False, period, None, team_id, [], 0, None)
    starts_on = period_start(period, _today())
    ranked = _ranked(principal.org_id, period, starts_on, team).subquery()
    total = session.scalar(select(func.count()).select_from(ranked)) or 0
    rows = session.execute(
        select(ranked)
        .order_by(ranked.c.points.desc(), ranked.c.display_name, ranked.c.user_id)
        .offset(offset)
        .limit(limit)
    ).all()
    me_row = session.execute(
        select(ranked).where(ranked.c.user_id == principal.user_id)
    ).one_or_none()
    return Board(
        True,
        period,
        starts_on,
        team_id,
        [_standing(row) for row in rows],
        int(total),
        _standing(me_row) if me_row is not None else None,
    )


def _standing(row: Any) -> Standing:
    return Standing(
        rank=int(row.rank),
        user_id=row.user_id,
        display_name=row.display_name,
        handle=row.handle,
        points=int(row.points),
    )


def _ranked(
    org_id: uuid.UUID, period: PointPeriod, starts_on: date, team: Team | None
) -> Select[uuid.UUID, int, str, str, int]:
    """Each active person of the board with points, and their rank (read from the period's
    totals by `ix_point_totals_board`)."""
    stmt = (
        select(
            PointTotal.user_id,
            PointTotal.points,
            User.display_name,
            User.handle,
            func.rank().over(order_by=PointTotal.points.desc()).label("rank"),
        )
        .join(User, and_(User.org_id == PointTotal.org_id, User.id == PointTotal.user_id))
        .where(
            PointTotal.org_id == org_id,
            PointTotal.period == period,
            PointTotal.starts_on == starts_on,
            PointTotal.points > 0,
            User.is_active.is_(True),
            User.deleted_at.is_(None),
        )
    )
    if team is not None:
        stmt = stmt.where(
            PointTotal.user_id.in_(
                select(TeamMembership.user_id).where(
                    TeamMembership.org_id == org_id, TeamMembership.team_id == team.id
                )
            )
        )
    return stmt


def settings_of(session: Session, principal: Principal) -> bool:
    """Whether the organisation awards and shows points (every member may ask)."""
    authorize(principal, "points.read")
    return enabled(session, principal.org_id)


def set_enabled(session: Session, principal: Principal, on: bool) -> bool:
    """An admin switches points on or off for the organisation. Off: nothing is awarded or
    taken back, and reads say `enabled: false`; what was earned stays for when they are on
    again (nothing is awarded for what happened meanwhile)."""
    authorize(principal, "points.configure")
    stmt = insert(PointsSetting).values(
        org_id=principal.org_id, enabled=on, updated_by_id=principal.user_id, updated_at=utcnow()
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["org_id"],
            set_={
                "enabled": stmt.excluded.enabled,
                "updated_by_id": stmt.excluded.updated_by_id,
                "updated_at": stmt.excluded.updated_at,
            },
        )
    )
    session.flush()
    return on
