"""Sending: workers post each organisation's unsent statements to its LRS, in batches.

A periodic job (`schedule`, every few seconds) records one `xapi.deliver` job for each
organisation whose LRS is on, has statements waiting and is due. The job takes the
organisation's delivery lock (a transaction-scoped advisory lock: a second job for it finds the
lock taken and stands down, so batches go out in order), writes out up to `BATCH` statements
oldest first, posts them as one array, marks them sent, and goes on for up to `ROUND` batches;
then, when more wait, it records its successor, so a large backlog drains at the LRS's pace
without waiting for the next period.

Failures back off on the LRS's row, not per job: on a 5xx, a 429, a timeout or an LRS that is
not there, `failures` grows and `next_attempt_at` moves out exponentially (2, 4, 8 ... seconds
with jitter, at most 10 minutes, at least what `Retry-After` asked), and the statements wait.
What the LRS already holds is delivered: identical statements are dropped by the LRS, and a
409 (some statement of the batch held already, written otherwise) makes the batch go again in
halves, down to the statement alone, whose 409 means it is there. A 400 does the same, and a
statement refused alone is set aside with the LRS's reason (`error`), so one bad statement
cannot hold up the others. A refused key and secret (401/403) is a failure like the others:
the admin sees it (`last_error`) and fixes the credentials.

The task body commits once, with the job's row (`outbox.execute`): statements posted but not
marked sent because the worker died are posted again by the next job, with the same ids.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, or_, select, text, update
from sqlalchemy.orm import Session

from fieldcast import links
from fieldcast.context import current
from fieldcast.db import Database, utcnow
from fieldcast.models.accounts import User
from fieldcast.models.conversation import Comment
from fieldcast.models.curation import Collection
from fieldcast.models.outbox import OutboxJob, OutboxStatus
from fieldcast.models.programs import Assignment
from fieldcast.models.videos import Video
from fieldcast.models.xapi import LearningRecordStore, XapiStatement
from fieldcast.outbox import services as outbox
from fieldcast.outbox.names import TaskName
from fieldcast.settings import Settings
from fieldcast.xapi import lrs as transport
from fieldcast.xapi import statements as xs

log = logging.getLogger(__name__)

DELIVER_TASK = TaskName.XAPI_DELIVER
# Statements per POST, and batches per job before it hands over to its successor (10 POSTs of
# at most 35 s each stay well inside the `default` queue's 10-minute limit).
BATCH = 500
ROUND = 10
MAX_BACKOFF_S = 600.0
# Sent statements are kept this long (a record of what went out), then pruned.
KEEP_SENT = timedelta(days=7)


def schedule(db: Database, *, now: datetime | None = None) -> int:
    """Record a delivery job for each organisation with statements waiting whose LRS is on and
    due (the periodic job `xapi-delivery`); one that has a job waiting or running already gets
    none. Returns how many were recorded."""
    at = now or utcnow()
    with db.unit_of_work() as session:
        waiting = exists().where(
            XapiStatement.org_id == LearningRecordStore.org_id, XapiStatement.sent_at.is_(None)
        )
        queued = exists().where(
            OutboxJob.org_id == LearningRecordStore.org_id,
            OutboxJob.task == DELIVER_TASK.value,
            OutboxJob.status.in_([OutboxStatus.PENDING, OutboxStatus.RUNNING]),
        )
        due = session.scalars(
            select(LearningRecordStore.org_id).where(
                LearningRecordStore.enabled,
                or_(
                    LearningRecordStore.next_attempt_at.is_(None),
                    LearningRecordStore.next_attempt_at <= at,
                ),
                waiting,
                ~queued,
            )
        ).all()
        for org_id in due:
            _record_job(session, org_id, at)
        return len(due)


def _record_job(session: Session, org_id: uuid.UUID, at: datetime) -> None:
    outbox.record(
        session, DELIVER_TASK, {"org_id": str(org_id), "at": at.isoformat()}, org_id=org_id
    )


def deliver(session: Session, payload: dict[str, Any]) -> None:
    """The `xapi.deliver` task: up to ROUND batches of one organisation's statements."""
    org_id = uuid.UUID(payload["org_id"])
    at = datetime.fromisoformat(payload["at"])
    locked = session.scalar(
        text("SELECT pg_try_advisory_xact_lock(hashtext('xapi.deliver:' || :org))"),
        {"org": str(org_id)},
    )
    if not locked:
        log.info("xapi: delivery for %s is running elsewhere", org_id)
        return
    store = session.get(LearningRecordStore, org_id, populate_existing=True)
    if store is None or not store.enabled:
        return
    if store.next_attempt_at is not None and store.next_attempt_at > at:
        return  # a failure since this job was recorded: its backoff stands
    settings = current().settings
    sent = 0
    for _ in range(ROUND):
        rows = session.scalars(
            select(XapiStatement)
            .where(XapiStatement.org_id == org_id, XapiStatement.sent_at.is_(None))
            .order_by(XapiStatement.created_at, XapiStatement.key)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        written = write_out(session, settings, store, rows)
        failure = _send(session, store, rows, written)
        if failure is not None:
            _failed(store, failure)
            log.warning(
                "xapi: delivery to the LRS of %s failed (%d in a row), next try in %s: %s",
                org_id,
                store.failures,
                store.next_attempt_at - utcnow() if store.next_attempt_at else None,
                failure.detail,
            )
            break
        sent += len(rows)
        store.failures = 0
        store.next_attempt_at = None
        store.last_delivered_at = utcnow()
        store.delivered += len(rows)
    else:
        _record_job(session, org_id, utcnow())  # more wait: the next round follows at once
    session.flush()
    if sent:
        log.info("xapi: %d statement(s) of %s delivered", sent, org_id)


def _send(
    session: Session,
    store: LearningRecordStore,
    rows: Sequence[XapiStatement],
    written: dict[str, dict[str, Any]],
) -> transport.Outcome | None:
    """Post the rows' statements (halving a batch the LRS refused or found in conflict);
    marks what was delivered or refused for good. Returns the failure that stops this round."""
    ready = [row for row in rows if row.key in written]
    unwritable = [row for row in rows if row.key not in written]
    if unwritable:
        _mark(session, store.org_id, unwritable, error="what it was about no longer exists")
    if not ready:
        return None
    outcome = transport.post_statements(
        store.endpoint, store.key, store.secret, [written[row.key] for row in ready]
    )
    if outcome.status == "delivered":
        _mark(session, store.org_id, ready)
        return None
    if outcome.status == "failed" or outcome.http_status in (401, 403):
        return outcome
    if len(ready) == 1:
        if outcome.status == "conflict":
            _mark(session, store.org_id, ready)  # the LRS holds it: delivered
        else:
            log.warning("xapi: the LRS of %s refused a statement: %s", store.org_id, outcome)
            _mark(session, store.org_id, ready, error=outcome.detail)
        return None
    half = len(ready) // 2
    for part in (ready[:half], ready[half:]):
        failure = _send(session, store, part, written)
        if failure is not None:
            return failure
    return None


def _mark(
    session: Session,
    org_id: uuid.UUID,
    rows: Sequence[XapiStatement],
    *,
    error: str | None = None,
) -> None:
    session.execute(
        update(XapiStatement)
        .where(XapiStatement.org_id == org_id, XapiStatement.key.in_([r.key for r in rows]))
        .values(sent_at=func.now(), error=error[:2000] if error else None)
        .execution_options(synchronize_session=False)
    )


def backoff_s(failures: int, retry_after: float | None = None) -> float:
    """Exponential with jitter (from half to all of 2^failures seconds, at most MAX_BACKOFF_S),
    at least what the LRS asked for."""
    ceiling = min(MAX_BACKOFF_S, 2.0 ** min(failures, 20))
    delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security
    return max(delay, retry_after or 0.0)


def _failed(store: LearningRecordStore, outcome: transport.Outcome) -> None:
    now = utcnow()
    store.failures += 1
    store.next_attempt_at = now + timedelta(seconds=backoff_s(store.failures, outcome.retry_after))
    store.last_error = outcome.detail[:2000]
    store.last_error_at = now


@dataclass(frozen=True)
class _About:
    """What a batch's statements are about, loaded once per batch."""

    people: dict[uuid.UUID, xs.Person]
    videos: dict[uuid.UUID, str]
    assignments: dict[uuid.UUID, Assignment]
    collections: dict[uuid.UUID, str]
    comments: dict[uuid.UUID, str | None]


def write_out(
    session: Session,
    settings: Settings,
    store: LearningRecordStore,
    rows: Sequence[XapiStatement],
) -> dict[str, dict[str, Any]]:
    """The statements of the rows, by key; a row whose person or object is gone for good has
    none."""
    about = _load(session, store.org_id, rows)
    identity = xs.Identity(store.actor_format, store.account_home_page or settings.public_base_url)
    written: dict[str, dict[str, Any]] = {}
    for row in rows:
        person = about.people.get(row.user_id)
        if person is None:
            continue
        verb = xs.Verb(row.verb)
        recorded = xs.Recorded(row.org_id, row.key, verb, row.occurred_at, row.data)
        registration = None
        response = None
        if verb in (xs.Verb.ASSIGNED, xs.Verb.ASSIGNMENT_COMPLETED, xs.Verb.DECLINED):
            assignment = about.assignments.get(row.subject_id) if row.subject_id else None
            if assignment is None:
                continue
            thing = _assigned_thing(settings, about, assignment)
            registration = uuid.uuid5(xs.NAMESPACE, f"assignment:{assignment.id}:{row.user_id}")
            if verb is xs.Verb.DECLINED:
                response = row.data.get("reason")
        else:
            if row.video_id is None or row.video_id not in about.videos:
                continue
            thing = _video_thing(settings, row.video_id, about.videos[row.video_id])
            if verb is xs.Verb.COMMENTED and row.subject_id is not None:
                response = about.comments.get(row.subject_id)
        written[row.key] = xs.build(
            recorded,
            identity=identity,
            person=person,
            thing=thing,
            registration=registration,
            response=response,
        )
    return written


def _video_thing(settings: Settings, video_id: uuid.UUID, title: str) -> xs.Thing:
    return xs.Thing(links.app_link(settings, f"/videos/{video_id}"), xs.VIDEO_TYPE, title)


def _assigned_thing(settings: Settings, about: _About, assignment: Assignment) -> xs.Thing:
    if assignment.collection_id is not None:
        return xs.Thing(
            links.app_link(settings, f"/collections/{assignment.collection_id}"),
            xs.COLLECTION_TYPE,
            about.collections.get(assignment.collection_id),
        )
    video_id = assignment.video_id
    assert video_id is not None
    return _video_thing(settings, video_id, about.videos.get(video_id, ""))


def _load(session: Session, org_id: uuid.UUID, rows: Sequence[XapiStatement]) -> _About:
    user_ids = {row.user_id for row in rows}
    people = {
        user_id: xs.Person(user_id, email)
        for user_id, email in session.execute(
            select(User.id, User.email).where(User.org_id == org_id, User.id.in_(user_ids))
        )
    }
    assignment_ids = {
        row.subject_id for row in rows if row.verb.startswith("assignment.") and row.subject_id
    }
    assignments = {
        a.id: a
        for a in session.scalars(
            select(Assignment).where(Assignment.org_id == org_id, Assignment.id.in_(assignment_ids))
        )
    }
    video_ids = {row.video_id for row in rows if row.video_id} | {
        a.video_id for a in assignments.values() if a.video_id
    }
    videos = {
        row.id: row.title
        for row in session.execute(
            select(Video.id, Video.title).where(
                Video.org_id == org_id, Video.id.in_(video_ids), Video.deleted_at.is_(None)
            )
        )
    }
    collection_ids = {a.collection_id for a in assignments.values() if a.collection_id}
    collections = {
        row.id: row.title
        for row in session.execute(
            select(Collection.id, Collection.title).where(
                Collection.org_id == org_id, Collection.id.in_(collection_ids)
            )
        )
    }
    comment_ids = {
        row.subject_id for row in rows if row.verb == xs.Verb.COMMENTED and row.subject_id
    }
    comments = {
        comment_id: (None if deleted_at or hidden_at else body)
        for comment_id, body, deleted_at, hidden_at in session.execute(
            select(Comment.id, Comment.body, Comment.deleted_at, Comment.hidden_at).where(
                Comment.org_id == org_id, Comment.id.in_(comment_ids)
            )
        )
    }
    return _About(people, videos, assignments, collections, comments)


def prune(db: Database, *, older_than: timedelta = KEEP_SENT) -> int:
    """Delete statements sent (or set aside) longer ago than `older_than`."""
    with db.unit_of_work() as session:
        result = session.execute(
            delete(XapiStatement).where(XapiStatement.sent_at < utcnow() - older_than)
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


outbox.tasks.register(DELIVER_TASK, queue="default", max_attempts=3)(deliver)
