"""Assignments: a video, a clip or a collection to watch, for people, teams and lists, by a date.

Making one is fast whatever the audience: the request resolves the audience in one statement
into blocks of user ids (as a share does, `sharing.audience.insert_blocks`) and records the
fan-out. A worker makes each person's `Assignee` row from the blocks (from then on the
assignment grants them what it assigns, `policy.assigned_to`), works out the progress they
may already have, and records one push job per slice of people, each making their inbox items
and pushing them (preferences and quiet hours apply, as for any push).

Progress is the share of the assignment's *units* a person played: the video's (or clip's)
range, or each item of the collection, against their played segments (`video_progress`).
Completed at the assignment's threshold, else the organisation's. A report that adds to a
person's progress publishes `ProgressMade`; their assignments of that video follow at once.

States: `not_started`, `in_progress`, `completed`, `excused`; `overdue` is derived (open past
the person's due date). Every step keeps its time: the assignment's `created_at` and
`published_at` (its people reached), each person's `assigned_at`, `notified_at`,
`started_at`, `completed_at`, `excused_at`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    TextClause,
    delete,
    func,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from fieldcast import events, policy
from fieldcast.db import utcnow
from fieldcast.errors import Conflict, ErrorCode, InvalidInput, NotFound, PermissionDenied
from fieldcast.inbox import delivery
from fieldcast.inbox import services as inbox
from fieldcast.inbox.types import NotificationType
from fieldcast.models.accounts import User
from fieldcast.models.curation import Collection, CollectionItem, CollectionVisibility
from fieldcast.models.outbox import OutboxJob
from fieldcast.models.programs import (
    Assignee,
    AssigneeState,
    Assignment,
    AssignmentAudience,
)
from fieldcast.models.videos import Video
from fieldcast.outbox import services as outbox
from fieldcast.outbox.names import TaskName
from fieldcast.policy import (
    Principal,
    authorize,
    load_collection,
    load_video,
    managers_of,
    reports_of,
)
from fieldcast.sharing.audience import audience, insert_blocks
from fieldcast.sharing.fanout import slice_starts
from fieldcast.sharing.lists import MAX_NAMED_LISTS, MAX_NAMED_TEAMS, MAX_NAMED_USERS, named

log = logging.getLogger(__name__)

FAN_OUT_TASK = TaskName.ASSIGNMENTS_FAN_OUT
SLICE_TASK = TaskName.ASSIGNMENTS_SEND_SLICE
MAX_USERS = MAX_NAMED_USERS
MAX_TEAMS = MAX_NAMED_TEAMS
MAX_LISTS = MAX_NAMED_LISTS
# What "my learning" and a person's list hold at most (open ones first, by due date).
MAX_LEARNING = 500
OPEN_STATES = (AssigneeState.NOT_STARTED, AssigneeState.IN_PROGRESS)


@dataclass(frozen=True)
class Subject:
    """What an assignment is of: a video (a clip with `start_ms`/`end_ms`) or a collection."""

    video_id: uuid.UUID | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    collection_id: uuid.UUID | None = None


def check_subject(session: Session, principal: Principal, subject: Subject) -> Subject:
    """The subject exists and the principal sees it; a clip fits its video."""
    if (subject.video_id is None) == (subject.collection_id is None):
        raise InvalidInput(errors={"video_id": ["Name a video (or a clip of it) or a collection."]})
    if subject.collection_id is not None:
        if subject.start_ms is not None or subject.end_ms is not None:
            raise InvalidInput(errors={"start_ms": ["A collection is assigned whole."]})
        collection = load_collection(session, principal, subject.collection_id)
        # Assigning grants the collection and its items, those added later included, to its
        # people: only who may change it does that, unless everyone sees it already.
        everyone_sees = (
            collection.published_at is not None
            and collection.visibility is CollectionVisibility.ORGANISATION
        )
        if not (everyone_sees or policy.collections.editable(session, principal, collection)):
            raise PermissionDenied(
                "Assign a collection you edit, or one published for the organisation.",
                code=ErrorCode.PERMISSION_DENIED,
            )
        return subject
    assert subject.video_id is not None
    video = load_video(session, principal, subject.video_id)
    if subject.start_ms is None and subject.end_ms is None:
        return subject
    low = subject.start_ms or 0
    high = subject.end_ms if subject.end_ms is not None else video.duration_ms
    if high is None or high <= low or (video.duration_ms and high > video.duration_ms):
        raise InvalidInput(
            "The clip must end after it starts, within the video.",
            code=ErrorCode.CLIP_OUT_OF_RANGE,
            errors={"end_ms": ["after start_ms, within the video"]},
        )
    return Subject(video_id=video.id, start_ms=low, end_ms=high)


def assign(
    session: Session,
    principal: Principal,
    subject: Subject,
    *,
    user_ids: Sequence[uuid.UUID] = (),
    team_ids: Sequence[uuid.UUID] = (),
    list_ids: Sequence[uuid.UUID] = (),
    due_at: datetime | None = None,
    threshold_pct: int | None = None,
    message: str = "",
) -> Assignment:
    """Assign something the principal sees to people, teams (with their sub-teams) and lists.
    Returns at once whatever the audience; the people are reached by workers."""
    authorize(principal, "assignment.create")
    subject = check_subject(session, principal, subject)
    if due_at is not None and due_at <= utcnow():
        raise InvalidInput(errors={"due_at": ["In the future."]})
    audience_named = named(
        session, principal, user_ids=user_ids, team_ids=team_ids, list_ids=list_ids, verb="assign"
    )
    users, teams, lists = audience_named.user_ids, audience_named.team_ids, audience_named.list_ids
    people = audience(principal.org_id, user_ids=users, team_ids=teams, list_ids=lists)
    return create(
        session,
        principal.org_id,
        subject,
        people,
        assigned_by=principal.user_id,
        audience_named=audience_named.as_json(),
        due_at=due_at,
        threshold_pct=threshold_pct,
        message=message,
    )


def create(
    session: Session,
    org_id: uuid.UUID,
    subject: Subject,
    people: Select[Any],
    *,
    assigned_by: uuid.UUID | None,
    audience_named: dict[str, Any],
    due_at: datetime | None,
    threshold_pct: int | None,
    message: str,
    rule_id: uuid.UUID | None = None,
    round: int | None = None,
) -> Assignment:
    """The assignment, its audience in blocks (`people` selects user ids), and its fan-out:
    the one way assignments are made, by a person or by a rule."""
    if threshold_pct is not None and not 1 <= threshold_pct <= 100:
        raise InvalidInput(errors={"threshold_pct": ["From 1 to 100."]})
    assignment = Assignment(
        org_id=org_id,
        assigned_by=assigned_by,
        video_id=subject.video_id,
        start_ms=subject.start_ms,
        end_ms=subject.end_ms,
        collection_id=subject.collection_id,
        message=message,
        due_at=due_at,
        threshold_pct=threshold_pct,
        audience=audience_named,
        rule_id=rule_id,
        round=round,
    )
    session.add(assignment)
    session.flush()
    assignment.person_count = insert_blocks(
        session,
        cast(Table, AssignmentAudience.__table__),
        {"org_id": org_id, "assignment_id": assignment.id},
        people.subquery(),
    )
    outbox.record(
        session,
        FAN_OUT_TASK,
        {"assignment_id": str(assignment.id)},
        org_id=org_id,
        dedup_key=f"assignment.fan_out:{assignment.id}",
    )
    session.flush()
    log.info("assignment %s: %d people", assignment.id, assignment.person_count)
    return assignment


# -- the fan-out ----------------------------------------------------------------------------------


def _fan_out(session: Session, payload: dict[str, Any]) -> None:
    """Each person's row from the blocks (once: again is harmless), their progress so far,
    then one push job per slice of people."""
    assignment = session.get(Assignment, uuid.UUID(payload["assignment_id"]))
    if assignment is None:
        return
    blocks = delete(AssignmentAudience).where(AssignmentAudience.assignment_id == assignment.id)
    if assignment.withdrawn_at is not None:
        session.execute(blocks)
        return
    people = (
        select(
            AssignmentAudience.org_id,
            AssignmentAudience.assignment_id,
            func.unnest(AssignmentAudience.user_ids).label("user_id"),
        )
        .where(AssignmentAudience.assignment_id == assignment.id)
        .subquery()
    )
    session.execute(
        pg_insert(cast(Table, Assignee.__table__))
        .from_select(
            ["org_id", "assignment_id", "user_id", "due_at", "state", "total_ms"],
            select(
                people.c.org_id,
                people.c.assignment_id,
                people.c.user_id,
                literal(assignment.due_at, Assignee.due_at.type),
                literal(AssigneeState.NOT_STARTED.value),
                literal(total_ms(session, assignment)),
            ),
        )
        .on_conflict_do_nothing(index_elements=["assignment_id", "user_id"])
    )
    session.execute(blocks)
    if assignment.published_at is None:
        assignment.published_at = utcnow()
    # Those who played some of it already: their progress so far (the others' rows, made with
    # the whole's length and nothing played, are not written again).
    refresh(session, [assignment.id], everyone=False)
    starts = slice_starts(
        session,
        Assignee.user_id,
        Assignee.assignment_id == assignment.id,
        Assignee.notified_at.is_(None),
    )
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else None
        outbox.record(
            session,
            SLICE_TASK,
            {
                "assignment_id": str(assignment.id),
                "from": str(start),
                "to": str(end) if end else None,
            },
            org_id=assignment.org_id,
            dedup_key=f"assignment.slice:{assignment.id}:{index}:{start}",
        )


def total_ms(session: Session, assignment: Assignment) -> int:
    """The length of what it assigns: its video's (or clip's) range, or its collection's items'
    (deleted videos, and videos not playable yet, count for nothing; see `_REFRESH`)."""
    if assignment.video_id is not None:
        rows = session.execute(
            select(
                literal(assignment.start_ms), literal(assignment.end_ms), Video.duration_ms
            ).where(
                Video.org_id == assignment.org_id,
                Video.id == assignment.video_id,
                Video.deleted_at.is_(None),
            )
        ).all()
    else:
        rows = session.execute(
            select(CollectionItem.start_ms, CollectionItem.end_ms, Video.duration_ms)
            .join(
                Video,
                (Video.org_id == CollectionItem.org_id) & (Video.id == CollectionItem.video_id),
            )
            .where(
                CollectionItem.org_id == assignment.org_id,
                CollectionItem.collection_id == assignment.collection_id,
                Video.deleted_at.is_(None),
            )
        ).all()
    total = 0
    for start, end, duration in rows:
        high = end if end is not None else duration
        if high is not None and high > (start or 0):
            total += high - (start or 0)
    return total


def _send_slice(session: Session, payload: dict[str, Any]) -> None:
    """Inbox items for one slice of people (once each), then their pushes."""
    assignment = session.get(Assignment, uuid.UUID(payload["assignment_id"]))
    if assignment is None or assignment.withdrawn_at is not None:
        return
    conditions = [
        Assignee.assignment_id == assignment.id,
        Assignee.user_id >= uuid.UUID(payload["from"]),
        Assignee.notified_at.is_(None),
    ]
    if payload.get("to"):
        conditions.append(Assignee.user_id < uuid.UUID(payload["to"]))
    user_ids = session.scalars(
        select(Assignee.user_id).where(*conditions).order_by(Assignee.user_id)
    ).all()
    if not user_ids:
        return
    assigner = (
        session.scalar(select(User.display_name).where(User.id == assignment.assigned_by))
        if assignment.assigned_by
        else None
    )
    args = {
        "assigner": assigner or "Your enablement team",
        "title": title_of(session, assignment),
        "due": assignment.due_at.date().isoformat() if assignment.due_at else "any time",
        "note": assignment.message or "",
    }
    data = {"assignment_id": str(assignment.id), **_about(assignment)}
    made = inbox.add_items(
        session,
        org_id=assignment.org_id,
        user_ids=user_ids,
        type=NotificationType.ASSIGNMENT_RECEIVED,
        args=args,
        data=data,
        dedup_prefix=f"assignment:{assignment.id}",
    )
    session.execute(
        update(Assignee)
        .where(*conditions[:2], Assignee.user_id.in_(user_ids))
        .values(notified_at=func.now())
    )
    session.flush()
    delivery.deliver(session, [row.id for row in made])


def _about(assignment: Assignment) -> dict[str, str]:
    """What a push about the assignment opens: its video (at the clip) or its collection."""
    if assignment.collection_id is not None:
        return {"collection_id": str(assignment.collection_id)}
    about = {"video_id": str(assignment.video_id)}
    if assignment.start_ms is not None:
        about["start_ms"] = str(assignment.start_ms)
        about["end_ms"] = str(assignment.end_ms)
    return about


def title_of(session: Session, assignment: Assignment) -> str:
    if assignment.collection_id is not None:
        found = session.scalar(
            select(Collection.title).where(Collection.id == assignment.collection_id)
        )
    else:
        found = session.scalar(select(Video.title).where(Video.id == assignment.video_id))
    return found or "An assignment"


outbox.tasks.register(FAN_OUT_TASK, queue="notify")(_fan_out)
outbox.tasks.register(SLICE_TASK, queue="notify", max_attempts=8)(_send_slice)


# -- progress -------------------------------------------------------------------------------------

# Each assignment's units (its video or clip, or each item of its collection) and each of its
# people's played share of them, in one statement: the union of what they played of a unit's
# video within the unit's range. Videos deleted, or not playable yet (no duration), have no
# unit. Completed at the assignment's threshold, else the organisation's; an excused or
# completed person stays so.
_REFRESH_BODY = """
    units AS (
        SELECT a.id AS assignment_id, a.video_id,
               coalesce(a.start_ms, 0) AS s, coalesce(a.end_ms, v.duration_ms) AS e
        FROM assignments a
        JOIN videos v ON v.org_id = a.org_id AND v.id = a.video_id
        WHERE a.id IN (SELECT id FROM targets) AND v.deleted_at IS NULL
        UNION ALL
        SELECT a.id, i.video_id, coalesce(i.start_ms, 0), coalesce(i.end_ms, v.duration_ms)
        FROM assignments a
        JOIN collection_items i ON i.org_id = a.org_id AND i.collection_id = a.collection_id
        JOIN videos v ON v.org_id = i.org_id AND v.id = i.video_id
        WHERE a.id IN (SELECT id FROM targets) AND v.deleted_at IS NULL
    ),
    per AS (
        SELECT ae.assignment_id, ae.user_id,
               coalesce(sum(u.e - u.s), 0) AS total_ms,
               coalesce(sum(multirange_ms(
                   p.played * int4multirange(int4range(u.s, u.e)))), 0) AS played_ms
        FROM assignees ae
        LEFT JOIN units u ON u.assignment_id = ae.assignment_id AND u.e > u.s
        LEFT JOIN video_progress p ON p.user_id = ae.user_id AND p.video_id = u.video_id
        WHERE ae.assignment_id IN (SELECT id FROM targets)
{people}        GROUP BY ae.assignment_id, ae.user_id
    ),
    judged AS (
        SELECT per.*, per.total_ms > 0 AND per.played_ms * 100
               >= coalesce(a.threshold_pct, o.completion_threshold_pct) * per.total_ms AS done
        FROM per
        JOIN assignments a ON a.id = per.assignment_id
        JOIN organisations o ON o.id = a.org_id
    ),
    changed AS (
    UPDATE assignees AS ae SET
        played_ms = judged.played_ms,
        total_ms = judged.total_ms,
        started_at = CASE WHEN judged.played_ms > 0 THEN coalesce(ae.started_at, now())
                          ELSE ae.started_at END,
        state = CASE WHEN ae.state IN ('completed', 'excused') THEN ae.state
                     WHEN judged.done THEN 'completed'
                     WHEN judged.played_ms > 0 THEN 'in_progress'
                     ELSE ae.state END,
        completed_at = CASE WHEN ae.state IN ('completed', 'excused') THEN ae.completed_at
                            WHEN judged.done THEN now()
                            ELSE ae.completed_at END
    FROM judged
    WHERE ae.assignment_id = judged.assignment_id AND ae.user_id = judged.user_id
      AND (ae.played_ms IS DISTINCT FROM judged.played_ms
           OR ae.total_ms IS DISTINCT FROM judged.total_ms
           OR (judged.done AND ae.state NOT IN ('completed', 'excused')))
    RETURNING ae.org_id, ae.assignment_id, ae.user_id, ae.state, ae.completed_at
    )
    -- The people who completed now (`AssignmentsCompleted`).
    SELECT org_id, assignment_id, user_id FROM changed
    WHERE state = 'completed' AND completed_at = now()
"""


def _refresh_statement(targets: str, people: str) -> TextClause:
    return text(f"WITH targets AS ({targets}),\n" + _REFRESH_BODY.format(people=people))


# Of the assignments `ids`: everyone (or `user_id` alone), or with `everyone` false only those
# who played some of what they assign. Run by workers and on assigning: planned for its values.
_REFRESH = _refresh_statement(
    "SELECT unnest(CAST(:ids AS uuid[])) AS id",
    """
          AND (CAST(:user_id AS uuid) IS NULL OR ae.user_id = CAST(:user_id AS uuid))
          AND (CAST(:everyone AS boolean) OR EXISTS (
              SELECT 1 FROM video_progress vp
              WHERE vp.user_id = ae.user_id AND vp.video_id IN (
                  SELECT un.video_id FROM units un WHERE un.assignment_id = ae.assignment_id)))
""",
)

# One person's open assignments holding a video, after their report: its conditions are the
# same for every value, since report transactions plan their statements once (`plan_once`).
_REFRESH_MINE = _refresh_statement(
    """
        SELECT a.id
        FROM assignees ae
        JOIN assignments a ON a.org_id = ae.org_id AND a.id = ae.assignment_id
        WHERE ae.org_id = CAST(:org_id AS uuid) AND ae.user_id = CAST(:user_id AS uuid)
          AND ae.state IN ('not_started', 'in_progress') AND a.withdrawn_at IS NULL
          AND (a.video_id = CAST(:video_id AS uuid) OR a.collection_id IN (
              SELECT i.collection_id FROM collection_items i
              WHERE i.org_id = CAST(:org_id AS uuid) AND i.video_id = CAST(:video_id AS uuid)))
    """,
    "          AND ae.user_id = CAST(:user_id AS uuid)\n",
)


def refresh(
    session: Session,
    assignment_ids: Sequence[uuid.UUID],
    user_id: uuid.UUID | None = None,
    *,
    everyone: bool = True,
) -> None:
    """Work out the progress and state of the assignments' people (or of one person); with
    `everyone` False, only of those who played some of what they assign (the others' rows
    already hold the whole's length and nothing played)."""
    if assignment_ids:
        completed = session.execute(
            _REFRESH,
            {
                "ids": list(assignment_ids),
                "user_id": user_id,
                "everyone": everyone,
            },
        ).all()
        _publish_completed(session, completed)


def _publish_completed(session: Session, rows: Sequence[Any]) -> None:
    """Tell who completed assignments just now (their points follow), per organisation."""
    by_org: dict[uuid.UUID, list[tuple[uuid.UUID, uuid.UUID]]] = {}
    for row in rows:
        by_org.setdefault(row.org_id, []).append((row.assignment_id, row.user_id))
    for org_id, completed in by_org.items():
        events.publish(
            session, events.AssignmentsCompleted(org_id=org_id, completed=tuple(completed))
        )


@events.subscribe(events.ProgressMade)
def _progress_made(session: Session, event: events.ProgressMade) -> None:
    # The person's open assignments holding the video, found and worked out in one statement.
    completed = session.execute(
        _REFRESH_MINE,
        {"org_id": event.org_id, "user_id": event.user_id, "video_id": event.video_id},
    ).all()
    _publish_completed(session, completed)


# What an assignment holds can change after its people's rows were made: a video of it
# deleted, restored or made playable (its length known), a collection's items added, removed
# or given other ranges, the organisation's threshold (for assignments without their own). A
# worker then works its people out again (`refresh`, everyone: the length changed for all of
# them), RECOUNT_AFTER after the change. Each change records its own recount; the first to run
# drops the others of the same subject already committed (it counts their changes too), so a
# curator's run of edits is counted about once, and a change still being committed when a
# recount runs keeps its own.
RECOUNT_TASK = TaskName.ASSIGNMENTS_RECOUNT
RECOUNT_AFTER = timedelta(seconds=30)


def recount_later(
    session: Session, org_id: uuid.UUID, scope: str, subject_id: uuid.UUID | None = None
) -> None:
    """Record the recount of the standing assignments holding a video (`video`), assigning a
    collection (`collection`), or following the organisation's threshold (`organisation`)."""
    outbox.record(
        session,
        RECOUNT_TASK,
        _recount_subject(org_id, scope, subject_id),
        org_id=org_id,
        delay=RECOUNT_AFTER,
    )


def _recount_subject(org_id: uuid.UUID, scope: str, subject_id: uuid.UUID | None) -> dict[str, Any]:
    return {
        "org_id": str(org_id),
        "scope": scope,
        "subject_id": str(subject_id) if subject_id else None,
    }


def _recount(session: Session, payload: dict[str, Any]) -> None:
    org_id = uuid.UUID(payload["org_id"])
    subject = uuid.UUID(payload["subject_id"]) if payload["subject_id"] else None
    # First: what this run reads next includes the changes of the recounts it drops.
    outbox.drop(
        session,
        RECOUNT_TASK,
        OutboxJob.payload.contains(_recount_subject(org_id, payload["scope"], subject)),
        reason="counted by an earlier recount of the same subject",
    )
    standing = select(Assignment.id).where(
        Assignment.org_id == org_id, Assignment.withdrawn_at.is_(None)
    )
    match payload["scope"]:
        case "video":
            standing = standing.where(_holding(org_id, subject))
        case "collection":
            standing = standing.where(Assignment.collection_id == subject)
        case "organisation":
            standing = standing.where(Assignment.threshold_pct.is_(None))
        case other:
            raise ValueError(f"no recount scope {other!r}")
    refresh(session, session.scalars(standing).all())


outbox.tasks.register(RECOUNT_TASK, queue="notify", max_attempts=8)(_recount)


def _holding(org_id: uuid.UUID, video_id: uuid.UUID | None) -> ColumnElement[bool]:
    """Assignments of the video, alone or in their collection."""
    collections = select(CollectionItem.collection_id).where(
        CollectionItem.org_id == org_id, CollectionItem.video_id == video_id
    )
    return (Assignment.video_id == video_id) | Assignment.collection_id.in_(collections)


def _recount_video_later(session: Session, org_id: uuid.UUID, video_id: uuid.UUID) -> None:
    """`recount_later` for a video, if a standing assignment holds it (most videos are in
    none)."""
    held = session.scalar(
        select(Assignment.id)
        .where(
            Assignment.org_id == org_id,
            Assignment.withdrawn_at.is_(None),
            _holding(org_id, video_id),
        )
        .limit(1)
    )
    if held is not None:
        recount_later(session, org_id, "video", video_id)


@events.subscribe(events.VideoRemoved)
def _video_removed(session: Session, event: events.VideoRemoved) -> None:
    # Units of a deleted video no longer count.
    _recount_video_later(session, event.org_id, event.video_id)


@events.subscribe(events.VideoRestored)
def _video_restored(session: Session, event: events.VideoRestored) -> None:
    _recount_video_later(session, event.org_id, event.video_id)


@events.subscribe(events.VideoBecamePlayable)
def _video_playable(session: Session, event: events.VideoBecamePlayable) -> None:
    # (Added to a collection while processing, it had no length to count.)
    _recount_video_later(session, event.org_id, event.video_id)


@events.subscribe(events.CollectionItemsChanged)
def _collection_items_changed(session: Session, event: events.CollectionItemsChanged) -> None:
    recount_later(session, event.org_id, "collection", event.collection_id)


@events.subscribe(events.CompletionThresholdChanged)
def _threshold_changed(session: Session, event: events.CompletionThresholdChanged) -> None:
    recount_later(session, event.org_id, "organisation")


# -- reading --------------------------------------------------------------------------------------


def load_assignment(
    session: Session, principal: Principal, assignment_id: uuid.UUID, action: str
) -> Assignment:
    """An assignment of the organisation on which the principal may act (its assigner,
    admins); anyone else does not find it."""
    found = session.scalar(
        select(Assignment).where(
            Assignment.org_id == principal.org_id, Assignment.id == assignment_id
        )
    )
    if found is None or not (principal.is_admin or found.assigned_by == principal.user_id):
        raise NotFound(f"No assignment with id {assignment_id}.")
    authorize(principal, action, found)
    return found


def assigned_by(principal: Principal) -> Select[Any]:
    """The assignments the principal made (all of the organisation's, for admins)."""
    stmt = select(Assignment).where(Assignment.org_id == principal.org_id)
    if not principal.is_admin:
        stmt = stmt.where(Assignment.assigned_by == principal.user_id)
    return stmt


def counts(session: Session, assignment: Assignment) -> dict[str, int]:
    """How many of its people are in each state (`overdue` counted apart, among the open)."""
    rows = session.execute(
        select(Assignee.state, func.count())
        .where(Assignee.org_id == assignment.org_id, Assignee.assignment_id == assignment.id)
        .group_by(Assignee.state)
    ).all()
    found = {state.value: 0 for state in AssigneeState}
    found.update({row[0].value: int(row[1]) for row in rows})
    found["overdue"] = int(
        session.scalar(
            select(func.count()).where(
                Assignee.org_id == assignment.org_id,
                Assignee.assignment_id == assignment.id,
                Assignee.state.in_(OPEN_STATES),
                Assignee.due_at < func.now(),
            )
        )
        or 0
    )
    return found


_S = TypeVar("_S", bound="Select[*tuple[Any, ...]]")


def people(assignment: Assignment, *, state: str | None = None) -> Select[Any]:
    """Its people's rows, filtered by state (`overdue`: open past their due date)."""
    stmt = select(Assignee).where(
        Assignee.org_id == assignment.org_id, Assignee.assignment_id == assignment.id
    )
    return _by_state(stmt, state)


def _by_state(stmt: _S, state: str | None) -> _S:
    if state == "overdue":
        return stmt.where(Assignee.state.in_(OPEN_STATES), Assignee.due_at < func.now())
    if state == "open":
        return stmt.where(Assignee.state.in_(OPEN_STATES))
    if state:
        return stmt.where(Assignee.state == AssigneeState(state))
    return stmt


def learning_of(
    session: Session,
    principal: Principal,
    user_id: uuid.UUID,
    *,
    state: str | None = "open",
    limit: int = MAX_LEARNING,
    offset: int = 0,
) -> list[tuple[Assignee, Assignment]]:
    """A person's assignments (the standing ones), by due date (none last), `limit` of them
    from `offset`: their own, their managers' (up the reporting line) and admins' to read."""
    if user_id != principal.user_id and not session.scalar(
        select(User.id).where(User.org_id == principal.org_id, User.id == user_id)
    ):
        raise NotFound(f"No user with id {user_id}.")
    if user_id != principal.user_id and not principal.is_admin:
        chain = managers_of(principal.org_id, user_id).subquery()
        if session.scalar(select(chain.c.id).where(chain.c.id == principal.user_id)) is None:
            # The person is in the directory every member sees; their learning is not.
            raise PermissionDenied(
                "Only the person, their managers and admins read their learning.",
                code=ErrorCode.PERMISSION_DENIED,
            )
    stmt = (
        select(Assignee, Assignment)
        .join(
            Assignment,
            (Assignment.org_id == Assignee.org_id) & (Assignment.id == Assignee.assignment_id),
        )
        .where(
            Assignee.org_id == principal.org_id,
            Assignee.user_id == user_id,
            Assignment.withdrawn_at.is_(None),
        )
        .order_by(Assignee.due_at.asc().nulls_last(), Assignee.assignment_id)
        .limit(limit)
        .offset(offset)
    )
    return [(row[0], row[1]) for row in session.execute(_by_state(stmt, state)).all()]


def team_learning(
    principal: Principal, *, state: str | None = "overdue"
) -> Select[Assignee, Assignment]:
    """The rows of the people below a manager (their whole reporting line), by due date."""
    stmt = (
        select(Assignee, Assignment)
        .join(
            Assignment,
            (Assignment.org_id == Assignee.org_id) & (Assignment.id == Assignee.assignment_id),
        )
        .where(
            Assignee.org_id == principal.org_id,
            Assignee.user_id.in_(reports_of(principal.org_id, principal.user_id)),
            Assignment.withdrawn_at.is_(None),
        )
    )
    return _by_state(stmt, state)


def withdraw(session: Session, principal: Principal, assignment_id: uuid.UUID) -> Assignment:
    """It stops: no more reminders, and it grants nothing (its people may still see what it
    named otherwise). Its rows stay, for the record."""
    assignment = load_assignment(session, principal, assignment_id, "assignment.manage")
    if assignment.withdrawn_at is None:
        assignment.withdrawn_at = utcnow()
        session.execute(
            delete(AssignmentAudience).where(AssignmentAudience.assignment_id == assignment.id)
        )
    session.flush()
    return assignment


def mine(session: Session, principal: Principal, assignment_id: uuid.UUID) -> Assignee:
    """The principal's own row of a standing assignment (else not found)."""
    row = session.scalar(
        select(Assignee)
        .join(
            Assignment,
            (Assignment.org_id == Assignee.org_id) & (Assignment.id == Assignee.assignment_id),
        )
        .where(
            Assignee.org_id == principal.org_id,
            Assignee.user_id == principal.user_id,
            Assignee.assignment_id == assignment_id,
        )
    )
    if row is None:
        raise NotFound(f"No assignment with id {assignment_id}.")
    assignment = session.get(Assignment, assignment_id)
    if assignment is not None and assignment.withdrawn_at is not None:
        raise Conflict("The assignment was withdrawn.", code=ErrorCode.ASSIGNMENT_WITHDRAWN)
    return row
