"""Rules that assign: to whoever joins a team (or a team below it) or takes a role, and again
on a schedule to everyone of the role or team.

A person who joins or takes the role gets one assignment of their own (due `due_days` later),
made through the same path as any assignment (`assignments.create`), so it grants, notifies
and counts alike; a person the rule already reached in its current round is not reached twice.
A recurring rule (`every_months`) makes a round at `next_round_at` (by default when it is
made): one assignment to everyone it covers then, round number `rounds + 1`, each round
tracked on its own. Rounds are made by the scheduler (`run_rounds`); membership and role
changes arrive as events (`PersonJoinedTeams`, `PersonTookRole`), published by `accounts`
whether an admin made the change through the API or a directory sync does.
"""

from __future__ import annotations

import calendar
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, Uuid, literal, or_, select
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.orm import Session

from fieldcast import events
from fieldcast.db import Database, utcnow
from fieldcast.errors import InvalidInput, NotFound
from fieldcast.models.accounts import Role, Team, User
from fieldcast.models.programs import Assignee, Assignment, AssignmentAudience, AssignmentRule
from fieldcast.policy import Principal, authorize
from fieldcast.programs import assignments
from fieldcast.sharing.audience import audience

log = logging.getLogger(__name__)

MAX_RULES = 200
# Rounds made per scheduler run (a backlog is made over the next runs).
ROUNDS_PER_RUN = 20


def add_months(when: datetime, months: int) -> datetime:
    """The same day and time `months` later (the month's last day when it is shorter)."""
    month = when.month - 1 + months
    year, month = when.year + month // 12, month % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def create_rule(
    session: Session,
    principal: Principal,
    *,
    name: str,
    subject: assignments.Subject,
    team_id: uuid.UUID | None = None,
    role: Role | None = None,
    due_days: int = 7,
    threshold_pct: int | None = None,
    message: str = "",
    every_months: int | None = None,
    first_round_at: datetime | None = None,
) -> AssignmentRule:
    authorize(principal, "assignment_rule.manage")
    if (team_id is None) == (role is None):
        raise InvalidInput(errors={"team_id": ["Name a team or a role (one of them)."]})
    if team_id is not None and not session.scalar(
        select(Team.id).where(Team.org_id == principal.org_id, Team.id == team_id)
    ):
        raise NotFound(f"No team with id {team_id}.")
    count = session.scalar(
        select(AssignmentRule.id)
        .where(AssignmentRule.org_id == principal.org_id)
        .offset(MAX_RULES - 1)
        .limit(1)
    )
    if count is not None:
        raise InvalidInput(f"At most {MAX_RULES} rules.")
    subject = assignments.check_subject(session, principal, subject)
    rule = AssignmentRule(
        org_id=principal.org_id,
        created_by=principal.user_id,
        name=name,
        team_id=team_id,
        role=role,
        video_id=subject.video_id,
        start_ms=subject.start_ms,
        end_ms=subject.end_ms,
        collection_id=subject.collection_id,
        message=message,
        due_days=due_days,
        threshold_pct=threshold_pct,
        every_months=every_months,
        next_round_at=(first_round_at or utcnow()) if every_months else None,
    )
    rule.first_round_at = rule.next_round_at
    session.add(rule)
    session.flush()
    return rule


def load_rule(
    session: Session,
    principal: Principal,
    rule_id: uuid.UUID,
    action: str = "assignment_rule.manage",
) -> AssignmentRule:
    """A rule of the organisation: curators read them; its maker and admins change it."""
    authorize(principal, "assignment_rule.manage")
    rule = session.scalar(
        select(AssignmentRule).where(
            AssignmentRule.org_id == principal.org_id, AssignmentRule.id == rule_id
        )
    )
    if rule is None:
        raise NotFound(f"No rule with id {rule_id}.")
    authorize(principal, action, rule)
    return rule


def rules_of(principal: Principal) -> Select[Any]:
    authorize(principal, "assignment_rule.manage")
    return select(AssignmentRule).where(AssignmentRule.org_id == principal.org_id)


def update_rule(
    session: Session, principal: Principal, rule_id: uuid.UUID, changes: dict[str, Any]
) -> AssignmentRule:
    """Its name, message, due days, threshold, schedule, or `active`; what it assigned stays."""
    rule = load_rule(session, principal, rule_id, "assignment_rule.change")
    for key, value in changes.items():
        setattr(rule, key, value)
    if "next_round_at" in changes and rule.next_round_at is not None:
        # A new schedule: its rounds are counted from this one.
        rule.first_round_at = rule.next_round_at
        rule.rounds_before = rule.rounds
    if rule.every_months and rule.next_round_at is None:
        rule.next_round_at = rule.first_round_at = utcnow()
        rule.rounds_before = rule.rounds
    if not rule.every_months:
        rule.next_round_at = None
    session.flush()
    return rule


def delete_rule(session: Session, principal: Principal, rule_id: uuid.UUID) -> None:
    """The rule goes; its assignments stay (withdraw them one by one if need be)."""
    session.delete(load_rule(session, principal, rule_id, "assignment_rule.change"))
    session.flush()


def _subject(rule: AssignmentRule) -> assignments.Subject:
    return assignments.Subject(
        video_id=rule.video_id,
        start_ms=rule.start_ms,
        end_ms=rule.end_ms,
        collection_id=rule.collection_id,
    )


def _covered(rule: AssignmentRule) -> Select[Any]:
    """`SELECT id` of the active people the rule covers now."""
    if rule.team_id is not None:
        return audience(rule.org_id, team_ids=[rule.team_id])
    return select(User.id).where(
        User.org_id == rule.org_id, User.is_active.is_(True), User.role == rule.role
    )


def _assign(session: Session, rule: AssignmentRule, people: Select[Any], **extra: Any) -> None:
    assignments.create(
        session,
        rule.org_id,
        _subject(rule),
        people,
        assigned_by=rule.created_by,
        audience_named={"rule_id": str(rule.id), **extra},
        due_at=utcnow() + timedelta(days=rule.due_days),
        threshold_pct=rule.threshold_pct,
        message=rule.message,
        rule_id=rule.id,
        round=rule.rounds if rule.every_months else None,
    )


def _reach(session: Session, rules: list[AssignmentRule], user_id: uuid.UUID) -> None:
    """Assign each rule's subject to the person, unless the rule reached them already (in its
    current round, for a recurring rule)."""
    for rule in rules:
        reached = session.scalar(
            select(Assignee.user_id)
            .join(
                Assignment,
                (Assignment.org_id == Assignee.org_id) & (Assignment.id == Assignee.assignment_id),
            )
            .where(
                Assignee.org_id == rule.org_id,
                Assignee.user_id == user_id,
                Assignment.rule_id == rule.id,
                Assignment.withdrawn_at.is_(None),
                or_(Assignment.round.is_(None), Assignment.round == rule.rounds),
            )
            .limit(1)
        )
        pending = session.scalar(
            select(AssignmentAudience.assignment_id)
            .join(
                Assignment,
                (Assignment.org_id == AssignmentAudience.org_id)
                & (Assignment.id == AssignmentAudience.assignment_id),
            )
            .where(
                AssignmentAudience.org_id == rule.org_id,
                Assignment.rule_id == rule.id,
                Assignment.withdrawn_at.is_(None),
                or_(Assignment.round.is_(None), Assignment.round == rule.rounds),
                AssignmentAudience.user_ids.contains(array([literal(user_id, Uuid())])),
            )
            .limit(1)
        )
        if reached is not None or pending is not None:
            continue
        person = select(User.id).where(
            User.org_id == rule.org_id, User.id == user_id, User.is_active.is_(True)
        )
        _assign(session, rule, person, user_ids=[str(user_id)])
        log.info("rule %s assigned to %s", rule.id, user_id)


@events.subscribe(events.PersonJoinedTeams)
def _joined_teams(session: Session, event: events.PersonJoinedTeams) -> None:
    # The teams joined and every team above them: a rule for a team covers its sub-teams.
    teams = (
        select(Team.id.label("id"), Team.parent_id.label("parent_id"))
        .where(Team.org_id == event.org_id, Team.id.in_(event.team_ids))
        .cte("joined_up", recursive=True)
    )
    teams = teams.union(
        select(Team.id, Team.parent_id).where(
            Team.org_id == event.org_id, Team.id == teams.c.parent_id
        )
    )
    rules = list(
        session.scalars(
            select(AssignmentRule).where(
                AssignmentRule.org_id == event.org_id,
                AssignmentRule.active.is_(True),
                AssignmentRule.team_id.in_(select(teams.c.id)),
            )
        )
    )
    _reach(session, rules, event.user_id)


@events.subscribe(events.PersonTookRole)
def _took_role(session: Session, event: events.PersonTookRole) -> None:
    rules = list(
        session.scalars(
            select(AssignmentRule).where(
                AssignmentRule.org_id == event.org_id,
                AssignmentRule.active.is_(True),
                AssignmentRule.role == Role(event.role),
            )
        )
    )
    _reach(session, rules, event.user_id)


def run_rounds(db: Database, *, now: datetime | None = None) -> int:
    """Make the rounds of recurring rules that are due. Returns how many were made."""
    now = now or utcnow()
    made = 0
    with db.unit_of_work() as session:
        due = session.scalars(
            select(AssignmentRule)
            .where(
                AssignmentRule.active.is_(True),
                AssignmentRule.every_months.is_not(None),
                AssignmentRule.next_round_at <= now,
            )
            .order_by(AssignmentRule.next_round_at)
            .limit(ROUNDS_PER_RUN)
            .with_for_update(skip_locked=True)
        ).all()
        for rule in due:
            assert rule.every_months is not None and rule.next_round_at is not None
            rule.rounds += 1
            _assign(session, rule, _covered(rule), round=rule.rounds)
            # The next round on the schedule, counted from its first (a round on the 31st stays
            # on the month's last day; a late run does not drift, and skips what it missed).
            first = rule.first_round_at or rule.next_round_at
            step = rule.rounds - rule.rounds_before
            following = add_months(first, step * rule.every_months)
            while following <= now:
                step += 1
                following = add_months(first, step * rule.every_months)
            rule.next_round_at = following
            made += 1
    return made
