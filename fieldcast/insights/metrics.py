"""Learning metrics: how fast content becomes learning, how much of what is assigned is done,
why it is not, and whether it shows in deals. Read by managers (their people: everyone below
them on the reporting line), enablement and admins (the whole organisation); reps are refused
(403). Every metric takes a period ([from, to)), a team (its people and its sub-teams') and a
program (one assignment, or every assignment of a collection). The definitions, with worked
examples, are in docs/metrics.md; in short:

- *Learning cycle*: seconds from a program's content being created to (a) publication: each
  video's first playable rendition (`playable_at`), for the videos that became playable in the
  period (the program's, with one; else those recorded by the people in scope); (b)
  assignment: each assignment reaching its people (`published_at`) in the period;
  (c) completion: each person's completion in the period. An assignment's content was created
  when its video was, or, for a collection, when its newest video was. Median and 90th
  percentile (linear interpolation, `percentile_cont`), with the count behind them.
- *Assignment and completion average*: of the items (one per person and assignment)
  assigned in the period to the people in scope, not excused: assigned per person, and
  completed (before `to`) per person, over the people in scope (active members).
- *Golden ratio*: completed per person / assigned per person. With the same people on both
  sides it is the share of the period's assigned items completed, 0 to 1 (null when nothing
  was assigned).
- *Non-completion reasons*: the declines and requests for more time made in the period, by
  reason, in total and per week (or day, or month: UTC).
- *Conversion*: the deals closed (won or lost) in the period whose owner is in scope, split
  by whether the owner had completed the program (any assignment, without a program filter)
  before the deal closed: deals, won, people, win rate with its 95 % Wilson interval, and the
  deal cycle (closed_at - created_at, days).

They are computed when read, from the programs' own tables, and the answer is kept
`CACHE_FOR` (a minute) for the same question (the same metric, period, filters and reader's
scope): a dashboard opened by many, or refreshed, costs one computation a minute. Every answer
says when it was computed (`computed_at`). Access is checked on every request, before the
cache is read; a Redis outage only means computing again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis, RedisError
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    exists,
    extract,
    func,
    literal,
    select,
)
from sqlalchemy.orm import Session, aliased

from fieldcast.errors import ErrorCode, InvalidInput, NotFound, PermissionDenied
from fieldcast.insights.videos import team_people
from fieldcast.models.accounts import Role, Team, User
from fieldcast.models.curation import Collection, CollectionItem
from fieldcast.models.deals import Deal, DealOutcome
from fieldcast.models.programs import (
    Assignee,
    AssigneeState,
    Assignment,
    AssignmentRequest,
    RequestKind,
    RequestReason,
)
from fieldcast.models.videos import Video
from fieldcast.policy import Principal, reports_of

log = logging.getLogger(__name__)

# How long an answer is kept for the same question.
CACHE_FOR = timedelta(seconds=60)
# The longest period one request may cover.
MAX_PERIOD = timedelta(days=400)
# The period when none is given: the last 90 days.
DEFAULT_PERIOD = timedelta(days=90)
BUCKETS = ("day", "week", "month")
# The dates a period may name (far from the calendar's ends, where date arithmetic overflows).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
# The most buckets one trend may have.
MAX_BUCKETS = 400


@dataclass(frozen=True)
class Scope:
    """Whose learning a metric reads, over which period and program."""

    org_id: uuid.UUID
    start: datetime
    end: datetime
    people: Select[Any]  # SELECT users.id: the people in scope
    assignment_id: uuid.UUID | None
    collection_id: uuid.UUID | None
    team_id: uuid.UUID | None = None
    # Whose people: the organisation's (admins, enablement) or a manager's.
    viewer: str = "organisation"

    def period(self) -> dict[str, datetime]:
        return {"start": self.start, "end": self.end}

    def in_program(self) -> ColumnElement[bool]:
        """`Assignment` is of the program (every assignment without one)."""
        if self.assignment_id is not None:
            return Assignment.id == self.assignment_id
        if self.collection_id is not None:
            return Assignment.collection_id == self.collection_id
        return literal(True)


def scope(
    session: Session,
    principal: Principal,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    team_id: uuid.UUID | None = None,
    assignment_id: uuid.UUID | None = None,
    collection_id: uuid.UUID | None = None,
) -> Scope:
    """The scope of a metric for the principal: 403 for reps, 404 for a team, assignment or
    collection not of their organisation, 422 for a period upside down or too long."""
    if not principal.has_role(Role.MANAGER, Role.ENABLEMENT, Role.ADMIN):
        raise PermissionDenied(
            "Learning metrics are for managers, enablement and admins.",
            code=ErrorCode.PERMISSION_DENIED,
        )
    org = principal.org_id
    for name, value in (("from", start), ("to", end)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise InvalidInput(
                f"A date from {EARLIEST.year} to {LATEST.year}.", errors={name: ["out of range"]}
            )
    # Without `to`, the period ends with the current minute: the same request made again within
    # it is the same question (and its cached answer).
    end = end or datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = start or end - DEFAULT_PERIOD
    if start >= end:
        raise InvalidInput("The period must end after it starts.", errors={"to": ["after from"]})
    if end - start > MAX_PERIOD:
        raise InvalidInput(
            f"A period covers at most {MAX_PERIOD.days} days.",
            errors={"from": [f"at most {MAX_PERIOD.days} days before to"]},
        )
    if assignment_id is not None and collection_id is not None:
        raise InvalidInput(
            "Name one program: an assignment or a collection.",
            errors={"collection_id": ["not with assignment_id"]},
        )
    if team_id is not None and not session.scalar(
        select(Team.id).where(Team.org_id == org, Team.id == team_id)
    ):
        raise NotFound(f"No team with id {team_id}.")
    if assignment_id is not None and not session.scalar(
        select(Assignment.id).where(Assignment.org_id == org, Assignment.id == assignment_id)
    ):
        raise NotFound(f"No assignment with id {assignment_id}.")
    if collection_id is not None and not session.scalar(
        select(Collection.id).where(
            Collection.org_id == org,
            Collection.id == collection_id,
            Collection.deleted_at.is_(None),
        )
    ):
        raise NotFound(f"No collection with id {collection_id}.")
    people = select(User.id).where(
        User.org_id == org, User.is_active.is_(True), User.deleted_at.is_(None)
    )
    if principal.role is Role.MANAGER:
        people = people.where(User.id.in_(reports_of(org, principal.user_id)))
    if team_id is not None:
        people = people.where(User.id.in_(team_people(org, team_id)))
    viewer = f"manager:{principal.user_id}" if principal.role is Role.MANAGER else "organisation"
    return Scope(org, start, end, people, assignment_id, collection_id, team_id, viewer)


def _in(column: Any, scope: Scope) -> ColumnElement[bool]:
    return and_(column >= scope.start, column < scope.end)


def _stats(session: Session, seconds: Any, where: Select[Any]) -> dict[str, Any]:
    """Count, median and 90th percentile of `seconds` over the rows `where` selects from."""
    sub = where.add_columns(seconds.label("s")).subquery()
    row = session.execute(
        select(
            func.count(sub.c.s),
            func.percentile_cont(0.5).within_group(sub.c.s),
            func.percentile_cont(0.9).within_group(sub.c.s),
        )
    ).one()
    return {"count": row[0], "median_s": _round(row[1]), "p90_s": _round(row[2])}


def _round(value: Any, digits: int = 3) -> float | None:
    return None if value is None else round(float(value), digits)


def _content_created(org_id: uuid.UUID) -> Any:
    """When an `Assignment`'s content was created: its video's creation, or its collection's
    newest video's."""
    item_video = aliased(Video)
    newest = (
        select(func.max(item_video.created_at))
        .join(
            CollectionItem,
            and_(
                CollectionItem.org_id == item_video.org_id,
                CollectionItem.video_id == item_video.id,
            ),
        )
        .where(
            CollectionItem.org_id == org_id,
            CollectionItem.collection_id == Assignment.collection_id,
        )
        .scalar_subquery()
    )
    own = (
        select(Video.created_at)
        .where(Video.org_id == org_id, Video.id == Assignment.video_id)
        .scalar_subquery()
    )
    return func.coalesce(own, newest)


def _seconds(later: Any, earlier: Any) -> Any:
    return extract("epoch", later - earlier)


def learning_cycle(session: Session, scope: Scope) -> dict[str, Any]:
    org = scope.org_id
    program_videos: Any = None
    program = scope.assignment_id is not None or scope.collection_id is not None
    if program:
        subjects = select(Assignment.video_id, Assignment.collection_id).where(
            Assignment.org_id == org, scope.in_program()
        )
        if scope.collection_id is not None:
            collections = select(literal(scope.collection_id))
            direct = select(Video.id).where(literal(False))
        else:
            collections = subjects.with_only_columns(Assignment.collection_id)
            direct = subjects.with_only_columns(Assignment.video_id)
        program_videos = (
            select(CollectionItem.video_id)
            .where(CollectionItem.org_id == org, CollectionItem.collection_id.in_(collections))
            .union(direct)
        )
    publication = _stats(
        session,
        _seconds(Video.playable_at, Video.created_at),
        select()
        .select_from(Video)
        .where(
            Video.org_id == org,
            Video.deleted_at.is_(None),
            _in(Video.playable_at, scope),
            # The program's videos whoever recorded them; else those of the people in scope.
            Video.id.in_(program_videos) if program else Video.owner_id.in_(scope.people),
        ),
    )
    reaches_people = exists().where(
        Assignee.org_id == Assignment.org_id,
        Assignee.assignment_id == Assignment.id,
        Assignee.user_id.in_(scope.people),
    )
    assignment = _stats(
        session,
        _seconds(Assignment.published_at, _content_created(org)),
        select()
        .select_from(Assignment)
        .where(
            Assignment.org_id == org,
            Assignment.withdrawn_at.is_(None),
            _in(Assignment.published_at, scope),
            scope.in_program(),
            reaches_people,
        ),
    )
    # When each assignment's content was created, worked out once per assignment (a few
    # hundred) rather than once per completion (hundreds of thousands).
    created = (
        select(Assignment.id.label("id"), _content_created(org).label("at"))
        .where(Assignment.org_id == org, Assignment.withdrawn_at.is_(None), scope.in_program())
        .cte("content_created")
        .prefix_with("MATERIALIZED")
    )
    completion = _stats(
        session,
        _seconds(Assignee.completed_at, created.c.at),
        select()
        .select_from(Assignee)
        .join(created, created.c.id == Assignee.assignment_id)
        .where(
            Assignee.org_id == org,
            Assignee.state == AssigneeState.COMPLETED,
            _in(Assignee.completed_at, scope),
            Assignee.user_id.in_(scope.people),
        ),
    )
    return {
        "period": scope.period(),
        "to_publication": publication,
        "to_assignment": assignment,
        "to_completion": completion,
    }


def completion_average(session: Session, scope: Scope) -> dict[str, Any]:
    org = scope.org_id
    people = session.scalar(select(func.count()).select_from(scope.people.subquery())) or 0
    done = and_(Assignee.state == AssigneeState.COMPLETED, Assignee.completed_at < scope.end)
    assigned, completed, excused, assigned_people = session.execute(
        select(
            func.count().filter(Assignee.state != AssigneeState.EXCUSED),
            func.count().filter(done),
            func.count().filter(Assignee.state == AssigneeState.EXCUSED),
            func.count(func.distinct(Assignee.user_id)).filter(
                Assignee.state != AssigneeState.EXCUSED
            ),
        )
        .select_from(Assignee)
        .join(
            Assignment,
            and_(Assignment.org_id == Assignee.org_id, Assignment.id == Assignee.assignment_id),
        )
        .where(
            Assignee.org_id == org,
            _in(Assignee.assigned_at, scope),
            Assignee.user_id.in_(scope.people),
            Assignment.withdrawn_at.is_(None),
            scope.in_program(),
        )
    ).one()
    assigned_pp = assigned / people if people else None
    completed_pp = completed / people if people else None
    return {
        "period": scope.period(),
        "people": people,
        "people_assigned": assigned_people,
        "assigned": assigned,
        "completed": completed,
        "excused": excused,
        "assigned_per_person": None if assigned_pp is None else round(assigned_pp, 4),
        "completed_per_person": None if completed_pp is None else round(completed_pp, 4),
        "golden_ratio": round(completed / assigned, 4) if assigned else None,
    }


def _buckets(scope: Scope, bucket: str) -> list[datetime]:
    """The starts (UTC) of the buckets the period touches."""
    start = scope.start.astimezone(UTC)
    first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    if bucket == "week":
        first -= timedelta(days=first.weekday())
    elif bucket == "month":
        first = first.replace(day=1)
    out: list[datetime] = []
    at = first
    while at < scope.end and len(out) < MAX_BUCKETS:
        out.append(at)
        if bucket == "day":
            at += timedelta(days=1)
        elif bucket == "week":
            at += timedelta(days=7)
        else:
            at = (at.replace(day=28) + timedelta(days=4)).replace(day=1)
    return out


def non_completion_reasons(
    session: Session, scope: Scope, *, bucket: str = "week"
) -> dict[str, Any]:
    if bucket not in BUCKETS:
        raise InvalidInput("Unknown bucket.", errors={"bucket": [f"one of {', '.join(BUCKETS)}"]})
    starts = _buckets(scope, bucket)
    if len(starts) >= MAX_BUCKETS:
        raise InvalidInput(
            f"A trend has at most {MAX_BUCKETS} buckets: a longer bucket, or a shorter period.",
            errors={"bucket": ["too many buckets for the period"]},
        )
    at = func.date_trunc(bucket, func.timezone("UTC", AssignmentRequest.created_at))
    rows = session.execute(
        select(at, AssignmentRequest.kind, AssignmentRequest.reason, func.count())
        .join(
            Assignment,
            and_(
                Assignment.org_id == AssignmentRequest.org_id,
                Assignment.id == AssignmentRequest.assignment_id,
            ),
        )
        .where(
            AssignmentRequest.org_id == scope.org_id,
            _in(AssignmentRequest.created_at, scope),
            AssignmentRequest.user_id.in_(scope.people),
            scope.in_program(),
        )
        .group_by(at, AssignmentRequest.kind, AssignmentRequest.reason)
    ).all()

    def empty() -> dict[str, dict[str, int]]:
        return {k.value: {r.value: 0 for r in RequestReason} for k in RequestKind}

    totals = empty()
    trend = {s: empty() for s in starts}
    for row in rows:
        when: datetime = row[0]
        kind, reason, n = RequestKind(row[1]).value, RequestReason(row[2]).value, int(row[3])
        totals[kind][reason] += n
        key = when.replace(tzinfo=UTC)
        if key in trend:
            trend[key][kind][reason] += n
    return {
        "period": scope.period(),
        "bucket": bucket,
        "total": {kind: sum(r.values()) for kind, r in totals.items()},
        **totals,
        "trend": [{"start": s, **counts} for s, counts in trend.items()],
    }


def _wilson(won: int, n: int, z: float = 1.96) -> list[float] | None:
    """The 95 % Wilson score interval of a rate of `won` in `n`."""
    if not n:
        return None
    p = won / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def deal_conversion(session: Session, scope: Scope) -> dict[str, Any]:
    org = scope.org_id
    completed_before = exists().where(
        Assignee.org_id == Deal.org_id,
        Assignee.user_id == Deal.owner_id,
        Assignee.state == AssigneeState.COMPLETED,
        Assignee.completed_at <= Deal.closed_at,
        Assignment.org_id == Assignee.org_id,
        Assignment.id == Assignee.assignment_id,
        Assignment.withdrawn_at.is_(None),
        scope.in_program(),
    )
    group = case((completed_before, True), else_=False).label("completed")
    days = extract("epoch", Deal.closed_at - Deal.created_at) / 86400.0
    rows = session.execute(
        select(
            group,
            func.count(),
            func.count().filter(Deal.outcome == DealOutcome.WON),
            func.count(func.distinct(Deal.owner_id)),
            func.percentile_cont(0.5).within_group(days),
            func.percentile_cont(0.9).within_group(days),
        )
        .where(
            Deal.org_id == org,
            Deal.outcome.in_([DealOutcome.WON, DealOutcome.LOST]),
            _in(Deal.closed_at, scope),
            Deal.owner_id.in_(scope.people),
        )
        .group_by(group)
    ).all()
    by = {row[0]: row for row in rows}

    def side(completed: bool) -> dict[str, Any]:
        row = by.get(completed)
        deals, won, people = (row[1], row[2], row[3]) if row else (0, 0, 0)
        median = _round(row[4]) if row else None
        p90 = _round(row[5]) if row else None
        return {
            "people": people,
            "deals": deals,
            "won": won,
            "lost": deals - won,
            "win_rate": round(won / deals, 4) if deals else None,
            "win_rate_interval": _wilson(won, deals),
            "cycle_days": {
                "count": deals,
                "median": median,
                "p90": p90,
            },
        }

    return {
        "period": scope.period(),
        "completed": side(True),
        "not_completed": side(False),
    }


# -- the answers kept a minute --------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    raise TypeError(f"not JSON: {type(value)!r}")


def _decode(value: dict[str, Any]) -> Any:
    return datetime.fromisoformat(value["$dt"]) if set(value) == {"$dt"} else value


def answer(
    redis: Redis | None,
    session: Session,
    scope: Scope,
    metric: str,
    compute: Callable[..., dict[str, Any]],
    **options: Any,
) -> dict[str, Any]:
    """The metric for the scope: as computed less than `CACHE_FOR` ago for the same question,
    else computed now (and kept)."""
    question = json.dumps(
        [
            str(scope.org_id),
            scope.viewer,
            metric,
            scope.start.isoformat(),
            scope.end.isoformat(),
            *(str(x) for x in (scope.team_id, scope.assignment_id, scope.collection_id)),
            sorted(options.items()),
        ]
    )
    key = f"metrics:{scope.org_id}:{hashlib.sha256(question.encode()).hexdigest()}"
    if redis is not None:
        try:
            kept = redis.get(key)
            if kept is not None:
                found: dict[str, Any] = json.loads(kept, object_hook=_decode)
                return found
        except RedisError:
            log.warning("metrics cache unavailable; computing", exc_info=True)
    computed = {**compute(session, scope, **options), "computed_at": datetime.now(UTC)}
    if redis is not None:
        try:
            redis.set(key, json.dumps(computed, default=_encode), ex=CACHE_FOR)
        except RedisError:
            log.warning("metrics cache unavailable; not kept", exc_info=True)
    return computed


__all__ = [
    "BUCKETS",
    "MAX_PERIOD",
    "Scope",
    "answer",
    "completion_average",
    "deal_conversion",
    "learning_cycle",
    "non_completion_reasons",
    "scope",
]
