"""Distribution lists and shares: who gets a video, and what became of each of them.

A share resolves its audience (users, teams with their sub-teams, lists) in one SQL statement,
in the request's transaction, into a few blocks of user ids: the recipients are deduplicated,
the sender left out, and every recipient can see the video from the moment the share exists.
The rest is work for the outbox: `shares.fan_out` makes one row per recipient (their state)
and, once the video is playable, cuts them into slices; each `shares.send_slice` makes their
inbox items and pushes them to their devices. A share of a video that is not playable yet
waits for it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    Select,
    Table,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    union,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from fieldcast import events
from fieldcast.db import Database, utcnow, uuid7
from fieldcast.errors import ErrorCode, InvalidInput, NotFound
from fieldcast.inbox import delivery
from fieldcast.inbox import services as inbox
from fieldcast.inbox.types import NotificationType
from fieldcast.models.accounts import Team, TeamMembership, User
from fieldcast.models.inbox import Notification
from fieldcast.models.sharing import (
    AUDIENCE_BLOCK,
    STATE_RANK,
    DistributionList,
    DistributionListTeam,
    DistributionListUser,
    ListVisibility,
    RecipientState,
    Share,
    ShareAudience,
    ShareRecipient,
)
from fieldcast.models.videos import Video
from fieldcast.outbox import services as outbox
from fieldcast.outbox.names import TaskName
from fieldcast.policy import Principal, authorize, load_list, load_video, mine
from fieldcast.policy import lists as list_policy
from fieldcast.policy import shares as share_policy
from fieldcast.videos.playback import PLAYABLE_STATUSES

log = logging.getLogger(__name__)

FAN_OUT_TASK = TaskName.SHARES_FAN_OUT
SLICE_TASK = TaskName.SHARES_SEND_SLICE
# Recipients per slice job: about 500 devices, one FCM batch, and work for every worker.
SLICE_SIZE = 250

MAX_LIST_USERS = 20_000
MAX_LIST_TEAMS = 500
MAX_SHARE_USERS = 1_000
MAX_SHARE_TEAMS = 100
MAX_SHARE_LISTS = 20

# -- distribution lists ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ListMembers:
    user_ids: list[uuid.UUID]
    team_ids: list[uuid.UUID]
    # Active people the list reaches now, teams resolved.
    recipient_count: int


def members(session: Session, dl: DistributionList) -> ListMembers:
    user_ids, team_ids = _member_ids(session, dl)
    count = session.scalar(
        select(func.count()).select_from(audience(dl.org_id, list_ids=[dl.id]).subquery())
    )
    return ListMembers(user_ids, team_ids, int(count or 0))


def _member_ids(session: Session, dl: DistributionList) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    user_ids = session.scalars(
        select(DistributionListUser.user_id)
        .where(DistributionListUser.list_id == dl.id)
        .order_by(DistributionListUser.user_id)
    ).all()
    team_ids = session.scalars(
        select(DistributionListTeam.team_id)
        .where(DistributionListTeam.list_id == dl.id)
        .order_by(DistributionListTeam.team_id)
    ).all()
    return list(user_ids), list(team_ids)


def create_list(
    session: Session,
    principal: Principal,
    *,
    name: str,
    description: str = "",
    visibility: ListVisibility = ListVisibility.PRIVATE,
    user_ids: Sequence[uuid.UUID] = (),
    team_ids: Sequence[uuid.UUID] = (),
) -> DistributionList:
    authorize(principal, "distribution_list.create")
    dl = DistributionList(
        org_id=principal.org_id,
        owner_id=principal.user_id,
        name=name,
        description=description,
        visibility=visibility,
    )
    session.add(dl)
    session.flush()
    _set_members(session, dl, user_ids, team_ids)
    session.flush()
    return dl


def update_list(
    session: Session,
    principal: Principal,
    list_id: uuid.UUID,
    *,
    changes: dict[str, Any],
    user_ids: Sequence[uuid.UUID] | None = None,
    team_ids: Sequence[uuid.UUID] | None = None,
) -> DistributionList:
    """Change name, description or visibility; `user_ids` / `team_ids` replace those members."""
    dl = load_list(session, principal, list_id, "distribution_list.update")
    for field_name in ("name", "description", "visibility"):
        if field_name in changes:
            setattr(dl, field_name, changes[field_name])
    if user_ids is not None or team_ids is not None:
        current_users, current_teams = _member_ids(session, dl)
        _set_members(
            session,
            dl,
            current_users if user_ids is None else user_ids,
            current_teams if team_ids is None else team_ids,
        )
    dl.updated_at = utcnow()
    session.flush()
    return dl


def delete_list(session: Session, principal: Principal, list_id: uuid.UUID) -> None:
    dl = load_list(session, principal, list_id, "distribution_list.delete")
    session.delete(dl)
    session.flush()


def _set_members(
    session: Session,
    dl: DistributionList,
    user_ids: Sequence[uuid.UUID],
    team_ids: Sequence[uuid.UUID],
) -> None:
    users, teams = _unique(user_ids), _unique(team_ids)
    if len(users) > MAX_LIST_USERS or len(teams) > MAX_LIST_TEAMS:
        raise InvalidInput(
            f"A list holds at most {MAX_LIST_USERS} people and {MAX_LIST_TEAMS} teams.",
            errors={"user_ids": ["too many"]}
            if len(users) > MAX_LIST_USERS
            else {"team_ids": ["too many"]},
        )
    _check_ids(session, dl.org_id, users, teams)
    session.execute(delete(DistributionListUser).where(DistributionListUser.list_id == dl.id))
    session.execute(delete(DistributionListTeam).where(DistributionListTeam.list_id == dl.id))
    if users:
        session.execute(
            insert(DistributionListUser),
            [{"org_id": dl.org_id, "list_id": dl.id, "user_id": u} for u in users],
        )
    if teams:
        session.execute(
            insert(DistributionListTeam),
            [{"org_id": dl.org_id, "list_id": dl.id, "team_id": t} for t in teams],
        )


def _unique(ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    return list(dict.fromkeys(ids))


def _check_ids(
    session: Session,
    org_id: uuid.UUID,
    user_ids: Sequence[uuid.UUID],
    team_ids: Sequence[uuid.UUID],
) -> None:
    """Every id names a member or team of the organisation; others are named in the error."""
    if errors := _unknown_ids(session, org_id, user_ids, team_ids):
        raise InvalidInput("Some ids name nobody in your organisation.", errors=errors)


def _unknown_ids(
    session: Session,
    org_id: uuid.UUID,
    user_ids: Sequence[uuid.UUID],
    team_ids: Sequence[uuid.UUID],
) -> dict[str, list[str]]:
    """Field errors naming the ids that are no member or team of the organisation."""
    errors: dict[str, list[str]] = {}
    if user_ids:
        found = set(
            session.scalars(
                select(User.id).where(User.org_id == org_id, User.id.in_(user_ids))
            ).all()
        )
        if missing := [str(u) for u in user_ids if u not in found]:
            errors["user_ids"] = [f"no such user: {', '.join(missing[:20])}"]
    if team_ids:
        found = set(
            session.scalars(
                select(Team.id).where(Team.org_id == org_id, Team.id.in_(team_ids))
            ).all()
        )
        if missing := [str(t) for t in team_ids if t not in found]:
            errors["team_ids"] = [f"no such team: {', '.join(missing[:20])}"]
    return errors


# -- the audience ---------------------------------------------------------------------------------


def audience(
    org_id: uuid.UUID,
    *,
    user_ids: Sequence[uuid.UUID] = (),
    team_ids: Sequence[uuid.UUID] = (),
    list_ids: Sequence[uuid.UUID] = (),
) -> Select[Any]:
    """The distinct active users reached: the users named, the members of the teams named and of
    their sub-teams, and the people and teams of the lists named, as they are now."""
    listed_teams = select(DistributionListTeam.team_id).where(
        DistributionListTeam.org_id == org_id,
        DistributionListTeam.list_id.in_(list(list_ids) or [_NONE]),
    )
    teams = (
        select(Team.id.label("team_id"))
        .where(
            Team.org_id == org_id,
            or_(Team.id.in_(list(team_ids) or [_NONE]), Team.id.in_(listed_teams)),
        )
        .cte("audience_teams", recursive=True)
    )
    teams = teams.union(
        select(Team.id).where(Team.org_id == org_id, Team.parent_id == teams.c.team_id)
    )
    people = union(
        select(User.id.label("user_id")).where(
            User.org_id == org_id, User.id.in_(list(user_ids) or [_NONE])
        ),
        select(DistributionListUser.user_id).where(
            DistributionListUser.org_id == org_id,
            DistributionListUser.list_id.in_(list(list_ids) or [_NONE]),
        ),
        select(TeamMembership.user_id).where(
            TeamMembership.org_id == org_id, TeamMembership.team_id.in_(select(teams.c.team_id))
        ),
    ).subquery("audience_people")
    return select(User.id).where(
        User.org_id == org_id, User.is_active.is_(True), User.id.in_(select(people.c.user_id))
    )


# An id that names nothing, so an empty IN list stays valid SQL and cheap to plan.
_NONE = uuid.UUID(int=0)


# -- shares ---------------------------------------------------------------------------------------


def share_video(
    session: Session,
    principal: Principal,
    video_id: uuid.UUID,
    *,
    user_ids: Sequence[uuid.UUID] = (),
    team_ids: Sequence[uuid.UUID] = (),
    list_ids: Sequence[uuid.UUID] = (),
    message: str = "",
) -> Share:
    """Share a video the principal can see. Returns at once whatever the audience size.

    A video that is not playable yet (still uploading or processing, or failed and waiting for
    a new file) is shared now; its recipients are told when it becomes playable.
    """
    video = load_video(session, principal, video_id, "video.share")
    users, teams, lists = _unique(user_ids), _unique(team_ids), _unique(list_ids)
    if not (users or teams or lists):
        raise InvalidInput(
            "Name at least one user, team or list.",
            errors={"user_ids": ["name someone to share with"]},
        )
    if len(users) > MAX_SHARE_USERS or len(teams) > MAX_SHARE_TEAMS or len(lists) > MAX_SHARE_LISTS:
        raise InvalidInput(
            f"A share names at most {MAX_SHARE_USERS} users, {MAX_SHARE_TEAMS} teams and "
            f"{MAX_SHARE_LISTS} lists; put larger audiences in a list.",
            code=ErrorCode.AUDIENCE_TOO_LARGE,
        )
    errors = _unknown_ids(session, principal.org_id, users, teams)
    if lists:
        usable = set(
            session.scalars(
                select(DistributionList.id).where(
                    list_policy.visible(principal), DistributionList.id.in_(lists)
                )
            ).all()
        )
        if missing := [str(x) for x in lists if x not in usable]:
            errors["list_ids"] = [f"no such list: {', '.join(missing[:20])}"]
    if errors:
        # Like any object the sender may not see: not found, be it missing, another
        # organisation's or someone else's private list.
        raise NotFound(
            "Some people, teams or lists do not exist or are not yours to share with.",
            errors=errors,
        )

    share = Share(
        id=uuid7(),
        org_id=principal.org_id,
        video_id=video.id,
        sender_id=principal.user_id,
        message=message,
        audience={
            "user_ids": [str(u) for u in users],
            "team_ids": [str(t) for t in teams],
            "list_ids": [str(x) for x in lists],
        },
    )
    session.add(share)
    session.flush()
    people = (
        audience(principal.org_id, user_ids=users, team_ids=teams, list_ids=lists)
        .where(User.id != principal.user_id)
        .subquery()
    )
    # The audience in blocks of user ids: a few rows whatever its size (see ShareAudience).
    # Nothing reads them in order, so nothing is sorted.
    numbered = select(people.c.id.label("user_id"), func.row_number().over().label("n")).subquery()
    block = ((numbered.c.n - 1) // AUDIENCE_BLOCK).label("block")
    inserted = (
        pg_insert(cast(Table, ShareAudience.__table__))
        .from_select(
            ["org_id", "share_id", "video_id", "block", "user_ids"],
            select(
                literal(principal.org_id),
                literal(share.id),
                literal(video.id),
                block,
                func.array_agg(numbered.c.user_id),
            ).group_by(block),
        )
        .returning(func.cardinality(ShareAudience.user_ids).label("people"))
        .cte("inserted")
    )
    share.recipient_count = int(session.scalar(select(func.sum(inserted.c.people))) or 0)
    # A worker turns the blocks into one row per person at once, and pushes once released.
    outbox.record(
        session,
        FAN_OUT_TASK,
        {"share_id": str(share.id)},
        org_id=share.org_id,
        dedup_key=f"share.fan_out:{share.id}",
    )
    if video.status in PLAYABLE_STATUSES:
        _release(session, share, record_fan_out=False)  # the fan-out above sees it released
    session.flush()
    log.info(
        "share %s of video %s by %s: %d recipients%s",
        share.id,
        video.id,
        principal.user_id,
        share.recipient_count,
        "" if share.released_at else " (sent when the video is playable)",
    )
    return share


def _release(session: Session, share: Share, *, record_fan_out: bool = True) -> None:
    """The video plays: the share's pushes (and chat cards) may go out."""
    share.released_at = utcnow()
    if record_fan_out:
        outbox.record(
            session,
            FAN_OUT_TASK,
            {"share_id": str(share.id)},
            org_id=share.org_id,
            dedup_key=f"share.fan_out:{share.id}:released",
        )
    events.publish(
        session,
        events.ShareReleased(
            org_id=share.org_id,
            share_id=share.id,
            team_ids=tuple(uuid.UUID(t) for t in share.audience.get("team_ids", [])),
        ),
    )


def release_waiting_shares(session: Session, video: Video) -> int:
    """The video just became playable: start the fan-out of shares that waited for it."""
    waiting = session.scalars(
        select(Share)
        .where(Share.org_id == video.org_id, Share.video_id == video.id)
        .where(Share.released_at.is_(None))
        .with_for_update(skip_locked=True)
    ).all()
    for share in waiting:
        _release(session, share)
    return len(waiting)


@events.subscribe(events.VideoBecamePlayable)
def _video_playable(session: Session, event: events.VideoBecamePlayable) -> None:
    video = session.get(Video, event.video_id)
    released = release_waiting_shares(session, video) if video is not None else 0
    if released:
        log.info("video %s: %d shares that waited for it go out now", event.video_id, released)


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


def shares_of_video(session: Session, principal: Principal, video_id: uuid.UUID) -> Select[Any]:
    """Shares of a video (one the principal can see) that the principal may follow: their
    own, their reports' down the chain, all for admins (`fieldcast.policy.SharePolicy`)."""
    video = load_video(session, principal, video_id)
    return select(Share).where(Share.video_id == video.id, share_policy.visible(principal))


# -- receipts -------------------------------------------------------------------------------------


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


# -- the fan-out (outbox tasks) -------------------------------------------------------------------


def _fan_out(session: Session, payload: dict[str, Any]) -> None:
    """Make a row per recipient from the share's audience blocks, which then go (once; again
    is harmless); then, if the share is released, cut the recipients into slices by user id
    and record one push job per slice."""
    share = session.get(Share, uuid.UUID(payload["share_id"]))
    if share is None:
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
    # The rows now give the recipients access; the blocks are done with.
    session.execute(delete(ShareAudience).where(ShareAudience.share_id == share.id))
    if share.released_at is None:
        return  # the pushes wait until the video is playable
    numbered = (
        select(
            ShareRecipient.user_id,
            func.row_number().over(order_by=ShareRecipient.user_id).label("n"),
        )
        .where(ShareRecipient.share_id == share.id)
        .subquery()
    )
    starts: list[uuid.UUID] = list(
        session.scalars(
            select(numbered.c.user_id)
            .where((numbered.c.n - 1) % SLICE_SIZE == 0)
            .order_by(numbered.c.user_id)
        )
    )
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
    user_ids = session.scalars(
        select(ShareRecipient.user_id).where(*_in_slice(payload)).order_by(ShareRecipient.user_id)
    ).all()
    if not user_ids:
        return
    title = f"{sender.display_name} shared “{video.title}”"
    body = share.message or "Tap to watch."
    data = {"video_id": str(video.id), "share_id": str(share.id)}
    rows = [
        inbox.item_values(
            org_id=share.org_id,
            user_id=user_id,
            type=NotificationType.SHARE_RECEIVED,
            title=title,
            body=body,
            data=data,
            dedup_key=f"share:{share.id}:{user_id}",
        )
        for user_id in user_ids
    ]
    session.execute(
        pg_insert(Notification).on_conflict_do_nothing(index_elements=["dedup_key"]), rows
    )
    made = session.execute(
        select(Notification.id, Notification.user_id).where(
            Notification.dedup_key.in_([row["dedup_key"] for row in rows])
        )
    ).all()
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


delivery.listeners.append(on_delivery)
outbox.tasks.register(FAN_OUT_TASK, queue="notify")(_fan_out)
outbox.tasks.register(SLICE_TASK, queue="notify", max_attempts=8, on_give_up=_give_up_slice)(
    _send_slice
)
