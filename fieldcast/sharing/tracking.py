"""What became of each recipient of a share: queued, sent, delivered, opened, watched or failed.

A state only moves forward (`advance`), stamped when it got there: a push accepted or refused
(`fanout.on_delivery`), a receipt from the phone (`ReceiptArrived`), the recipient starting the
video. `counts` and `reached` are what the sender is shown.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.orm import Session

from fieldcast import events
from fieldcast.models.sharing import STATE_RANK, RecipientState, Share, ShareRecipient
from fieldcast.policy import Principal, load_video, mine


def counts(session: Session, share: Share) -> dict[str, int]:
    """Recipients per state, every state present (0 when nobody is in it). Everyone not yet
    past `queued` counts there, including people whose rows a worker is still making."""
    rows = session.execute(
        select(ShareRecipient.state, func.count())
        .where(ShareRecipient.share_id == share.id, ShareRecipient.state != RecipientState.QUEUED)
        .group_by(ShareRecipient.state)
    ).all()
    result = {state.value: 0 for state in RecipientState}
    for state, count in rows:
        result[RecipientState(state).value] = int(count)
    result[RecipientState.QUEUED.value] = max(0, share.recipient_count - sum(result.values()))
    return result


def reached(by_state: dict[str, int]) -> dict[str, int]:
    """How many got at least this far: sent counts everyone delivered, opened or watched too."""
    order = [RecipientState.SENT, RecipientState.DELIVERED, RecipientState.OPENED,
             RecipientState.WATCHED]  # fmt: skip
    result: dict[str, int] = {}
    for i, state in enumerate(order):
        result[state.value] = sum(by_state[s.value] for s in order[i:])
    return result


def recipients(share: Share, *, state: RecipientState | None = None) -> Select[Any]:
    stmt = select(ShareRecipient).where(ShareRecipient.share_id == share.id)
    if state is not None:
        stmt = stmt.where(ShareRecipient.state == state)
    return stmt


_STAMP = {
    RecipientState.SENT: ShareRecipient.sent_at,
    RecipientState.DELIVERED: ShareRecipient.delivered_at,
    RecipientState.OPENED: ShareRecipient.opened_at,
    RecipientState.WATCHED: ShareRecipient.watched_at,
    RecipientState.FAILED: ShareRecipient.failed_at,
}


def advance(
    session: Session,
    state: RecipientState,
    *conditions: Any,
    reason: str | None = None,
) -> int:
    """Move matching recipients forward to `state` (never back), stamping when they got there."""
    lower = [s.value for s, rank in STATE_RANK.items() if rank < STATE_RANK[state]]
    stamp = _STAMP[state]
    result = session.execute(
        update(ShareRecipient)
        .where(*conditions, ShareRecipient.state.in_(lower))
        .values(
            {
                ShareRecipient.state: state,
                stamp: func.coalesce(stamp, func.now()),
                ShareRecipient.failure_reason: reason if state is RecipientState.FAILED else None,
            }
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# A person's recipient rows of the standing shares of a video, moved to `watched` (see
# `advance`): built once, as every progress report past the first seconds asks it.
_WATCHED = (
    update(ShareRecipient)
    .where(
        ShareRecipient.org_id == bindparam("of_org"),
        ShareRecipient.user_id == bindparam("of_user"),
        ShareRecipient.video_id == bindparam("of_video"),
        ShareRecipient.share_id.in_(
            select(Share.id).where(
                Share.org_id == bindparam("of_org"),
                Share.video_id == bindparam("of_video"),
                Share.recalled_at.is_(None),
            )
        ),
        ShareRecipient.state.in_(
            [s.value for s, rank in STATE_RANK.items() if rank < STATE_RANK[RecipientState.WATCHED]]
        ),
    )
    .values(
        {
            ShareRecipient.state: RecipientState.WATCHED,
            ShareRecipient.watched_at: func.coalesce(ShareRecipient.watched_at, func.now()),
            ShareRecipient.failure_reason: None,
        }
    )
)


def watched(session: Session, org_id: uuid.UUID, user_id: uuid.UUID, video_id: uuid.UUID) -> int:
    """The person really played the video: their shares of it (not recalled) are watched."""
    # (On the connection: given a dict, an ORM UPDATE would take it for a row to update.)
    result = session.connection().execute(
        _WATCHED, {"of_org": org_id, "of_user": user_id, "of_video": video_id}
    )
    return int(result.rowcount or 0)


@events.subscribe(events.ReceiptArrived)
def _receipt_arrived(session: Session, event: events.ReceiptArrived) -> None:
    """A share's notification reached its recipient's phone or was tapped: their state follows."""
    share_id = event.data.get("share_id")
    if share_id:
        advance(
            session,
            _RECEIPT_STATES[event.receipt],
            ShareRecipient.share_id == uuid.UUID(share_id),
            ShareRecipient.user_id == event.user_id,
        )


_RECEIPT_STATES = {"delivered": RecipientState.DELIVERED, "opened": RecipientState.OPENED}


def playback_started(session: Session, principal: Principal, video_id: uuid.UUID) -> int:
    """The principal started playing the video: every share of it to them counts as watched."""
    video = load_video(session, principal, video_id)
    moved = advance(
        session,
        RecipientState.WATCHED,
        mine(principal, ShareRecipient),
        ShareRecipient.video_id == video.id,
    )
    session.flush()
    return moved
