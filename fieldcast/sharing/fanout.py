"""The fan-out of a share, as outbox tasks.

`shares.fan_out` makes one row per recipient (their state) and, once the video is playable,
cuts them into slices; each `shares.send_slice` makes their inbox items and pushes them to
their devices, and the push round's outcome moves the recipients' states (`on_delivery`).
Importing this module registers the tasks and the delivery listener: `shares` imports it to
record the fan-out, and the worker lists it in `workers.jobs.TASK_MODULES`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, delete, exists, func, literal, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from fieldcast import events
from fieldcast.db import Database
from fieldcast.inbox import delivery
from fieldcast.inbox import services as inbox
from fieldcast.inbox.types import NotificationType
from fieldcast.models.accounts import User
from fieldcast.models.outbox import OutboxJob
from fieldcast.models.sharing import RecipientState, Share, ShareAudience, ShareRecipient
from fieldcast.models.videos import Video
from fieldcast.models.viewing import WATCHED_MS, VideoProgress, View
from fieldcast.outbox import services as outbox
from fieldcast.outbox.names import TaskName
from fieldcast.sharing.tracking import advance

log = logging.getLogger(__name__)

FAN_OUT_TASK = TaskName.SHARES_FAN_OUT
SLICE_TASK = TaskName.SHARES_SEND_SLICE
# Recipients per slice job: about 500 devices, one FCM batch, and work for every worker.
SLICE_SIZE = 250


def _fan_out(session: Session, payload: dict[str, Any]) -> None:
    """Make a row per recipient from the share's audience blocks, which then go (once; again
    is harmless); then, if the share is released, cut the recipients into slices by user id
    and record one push job per slice."""
    share = session.get(Share, uuid.UUID(payload["share_id"]))
    if share is None:
        return
    if share.recalled_at is not None:
        # A recalled share reaches nobody: its blocks go, no row is made.
        session.execute(delete(ShareAudience).where(ShareAudience.share_id == share.id))
        return
    people = (
        select(
            ShareAudience.org_id,
            ShareAudience.share_id,
            func.unnest(ShareAudience.user_ids).label("user_id"),
            ShareAudience.video_id,
        )
        .where(ShareAudience.share_id == share.id)
        .subquery()
    )
    session.execute(
        pg_insert(cast(Table, ShareRecipient.__table__))
        .from_select(
            ["org_id", "share_id", "user_id", "video_id", "state"],
            select(
                people.c.org_id,
                people.c.share_id,
                people.c.user_id,
                people.c.video_id,
                literal(RecipientState.QUEUED.value),
            ),
        )
        .on_conflict_do_nothing(index_elements=["share_id", "user_id"])
    )
    # Who played the video already (through another share, their team, ...) has watched it.
    advance(
        session,
        RecipientState.WATCHED,
        ShareRecipient.share_id == share.id,
        _played_already(),
    )
    # The rows now give the recipients access; the blocks are done with.
    session.execute(delete(ShareAudience).where(ShareAudience.share_id == share.id))
    if share.released_at is None:
        return  # the pushes wait until the video is playable
    if _video_deleted(session, share):
        # The rows stay (a restore gives the video back); nobody is pushed about it.
        advance(
            session,
            RecipientState.FAILED,
            ShareRecipient.share_id == share.id,
            ShareRecipient.state == RecipientState.QUEUED,
            reason="video_removed",
        )
        return
    starts = slice_starts(session, ShareRecipient.user_id, ShareRecipient.share_id == share.id)
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else None
        outbox.record(
            session,
            SLICE_TASK,
            {"share_id": str(share.id), "from": str(start), "to": str(end) if end else None},
            org_id=share.org_id,
            dedup_key=f"share.slice:{share.id}:{index}",
        )
    log.info("share %s: %d recipients in %d slices", share.id, share.recipient_count, len(starts))


def _played_already() -> ColumnElement[bool]:
    """Recipient rows whose person really played the share's video before the row was made:
    the rule viewing reports apply (fieldcast.viewing.progress.report), WATCHED_MS (or the
    whole range, if shorter) in one view or in all their views of it together."""
    return or_(
        exists().where(
            VideoProgress.org_id == ShareRecipient.org_id,
            VideoProgress.user_id == ShareRecipient.user_id,
            VideoProgress.video_id == ShareRecipient.video_id,
            VideoProgress.played_ms >= func.least(WATCHED_MS, VideoProgress.duration_ms),
        ),
        exists().where(
            View.org_id == ShareRecipient.org_id,
            View.video_id == ShareRecipient.video_id,
            View.user_id == ShareRecipient.user_id,
            View.played_ms >= func.least(WATCHED_MS, View.end_ms - View.start_ms),
        ),
    )


def slice_starts(session: Session, person: Any, *conditions: Any) -> list[uuid.UUID]:
    """The first person id of each slice of `SLICE_SIZE` people the conditions select (by
    the column `person`, in id order): a fan-out's push jobs each take [start, next start)."""
    numbered = (
        select(person.label("user_id"), func.row_number().over(order_by=person).label("n"))
        .where(*conditions)
        .subquery()
    )
    return list(
        session.scalars(
            select(numbered.c.user_id)
            .where((numbered.c.n - 1) % SLICE_SIZE == 0)
            .order_by(numbered.c.user_id)
        )
    )


def _video_deleted(session: Session, share: Share) -> bool:
    deleted_at = session.scalar(
        select(Video.deleted_at).where(Video.org_id == share.org_id, Video.id == share.video_id)
    )
    return deleted_at is not None


def prune_audiences(db: Database) -> int:
    """Delete the audience blocks of shares whose recipient rows exist: those a fan-out of an
    earlier release made without deleting them. The fan-out deletes its own."""
    with db.unit_of_work() as session:
        result = session.execute(
            delete(ShareAudience).where(
                select(ShareRecipient.share_id)
                .where(ShareRecipient.share_id == ShareAudience.share_id)
                .exists()
            )
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _send_slice(session: Session, payload: dict[str, Any]) -> None:
    """Inbox items for one slice of recipients (once each), then their pushes."""
    share = session.get(Share, uuid.UUID(payload["share_id"]))
    if share is None:
        return
    video = session.get(Video, share.video_id)
    sender = session.get(User, share.sender_id)
    if video is None or sender is None:
        return
    # Checked again when the slice runs: the share may have been recalled, or its video
    # deleted, after the slice was recorded (pending slices are dropped then; this one was
    # already running or claimed).
    if share.recalled_at is not None or video.deleted_at is not None:
        log.info("share %s: recalled or its video deleted; slice not sent", share.id)
        return
    user_ids = session.scalars(
        select(ShareRecipient.user_id).where(*_in_slice(payload)).order_by(ShareRecipient.user_id)
    ).all()
    if not user_ids:
        return
    args = {"sender": sender.display_name, "video": video.title, "note": share.message or ""}
    data = {"video_id": str(video.id), "share_id": str(share.id)}
    made = inbox.add_items(
        session,
        org_id=share.org_id,
        user_ids=user_ids,
        type=NotificationType.SHARE_RECEIVED,
        args=args,
        data=data,
        dedup_prefix=f"share:{share.id}",
    )
    _link_notifications(session, share.id, made)
    session.flush()
    delivery.deliver(session, [row.id for row in made])


def _link_notifications(session: Session, share_id: uuid.UUID, made: Sequence[Any]) -> None:
    """Point each recipient at their inbox item, in one statement."""
    if not made:
        return
    session.execute(
        text(
            "UPDATE share_recipients AS r SET notification_id = v.notification_id "
            "FROM unnest(CAST(:users AS uuid[]), CAST(:notifications AS uuid[])) "
            "AS v(user_id, notification_id) "
            "WHERE r.share_id = :share_id AND r.user_id = v.user_id"
        ),
        {
            "share_id": share_id,
            "users": [row.user_id for row in made],
            "notifications": [row.id for row in made],
        },
    )


def on_delivery(session: Session, outcomes: dict[uuid.UUID, delivery.Outcome]) -> None:
    """Recipients' states after a push round: sent if a device accepted, failed with the reason
    when none could take it. Called by the delivery module for share notifications."""
    by_share: dict[tuple[uuid.UUID, RecipientState, str | None], list[uuid.UUID]] = {}
    key: tuple[uuid.UUID, RecipientState, str | None]
    for outcome in outcomes.values():
        share_id = outcome.data.get("share_id")
        if not share_id:
            continue
        if outcome.accepted:
            key = (uuid.UUID(share_id), RecipientState.SENT, None)
        elif outcome.failure:
            key = (uuid.UUID(share_id), RecipientState.FAILED, outcome.failure)
        else:
            continue
        by_share.setdefault(key, []).append(outcome.user_id)
    for (share_id, state, reason), users in by_share.items():
        advance(
            session,
            state,
            ShareRecipient.share_id == share_id,
            ShareRecipient.user_id.in_(users),
            reason=reason,
        )


def _in_slice(payload: dict[str, Any]) -> list[Any]:
    """SQL: the recipients of a slice job (user ids from `from`, up to before `to`)."""
    conditions = [
        ShareRecipient.share_id == uuid.UUID(payload["share_id"]),
        ShareRecipient.user_id >= uuid.UUID(payload["from"]),
    ]
    if payload.get("to"):
        conditions.append(ShareRecipient.user_id < uuid.UUID(payload["to"]))
    return conditions


def _give_up_slice(session: Session, payload: dict[str, Any], reason: str) -> None:
    """Pushes that could never be sent: their recipients are failed, not left queued."""
    advance(session, RecipientState.FAILED, *_in_slice(payload), reason="push_unavailable")


def stop_fan_out(session: Session, share_ids: Sequence[uuid.UUID], *, reason: str) -> int:
    """Drop the push slices of these shares that have not started; one that runs checks the
    share and its video again before sending (`fanout._send_slice`)."""
    if not share_ids:
        return 0
    return outbox.drop(
        session,
        SLICE_TASK,
        OutboxJob.payload["share_id"].astext.in_([str(s) for s in share_ids]),
        reason=reason,
    )


@events.subscribe(events.VideoRemoved)
def _video_removed(session: Session, event: events.VideoRemoved) -> None:
    """A deleted video's shares stop going out: slices not started are dropped, and people
    still `queued` end `failed` with `video_removed`. Their rows stay, so a restore gives
    the recipients the video back (without a second push)."""
    share_ids = list(
        session.scalars(
            select(Share.id).where(Share.org_id == event.org_id, Share.video_id == event.video_id)
        )
    )
    dropped = stop_fan_out(session, share_ids, reason="video_removed")
    advance(
        session,
        RecipientState.FAILED,
        ShareRecipient.share_id.in_(share_ids),
        ShareRecipient.state == RecipientState.QUEUED,
        reason="video_removed",
    )
    if dropped:
        log.info("video %s deleted: %d push slices dropped", event.video_id, dropped)


delivery.listeners.append(on_delivery)
outbox.tasks.register(FAN_OUT_TASK, queue="notify")(_fan_out)
outbox.tasks.register(SLICE_TASK, queue="notify", max_attempts=8, on_give_up=_give_up_slice)(
    _send_slice
)
