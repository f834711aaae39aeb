"""Shares: making them, releasing them once their video plays, reading them.

A share resolves its audience (users, teams with their sub-teams, lists) in one SQL statement,
in the request's transaction, into a few blocks of user ids: the recipients are deduplicated,
the sender left out, and every recipient can see the video from the moment the share exists.
The rest is work for the outbox (`fanout`). A share of a video that is not playable yet waits
for it: it is released when the video becomes playable, and only then do its pushes and chat
cards go out.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import Select, Table, delete, select
from sqlalchemy.orm import Session

from fieldcast import events
from fieldcast.db import utcnow, uuid7
from fieldcast.models.accounts import User
from fieldcast.models.sharing import (
    RecipientState,
    Share,
    ShareAudience,
    ShareRecipient,
)
from fieldcast.models.videos import Video
from fieldcast.outbox import services as outbox
from fieldcast.policy import Principal, load_share, load_video
from fieldcast.policy import shares as share_policy
from fieldcast.sharing.audience import audience, insert_blocks
from fieldcast.sharing.fanout import FAN_OUT_TASK, stop_fan_out
from fieldcast.sharing.lists import MAX_NAMED_LISTS, MAX_NAMED_TEAMS, MAX_NAMED_USERS, named
from fieldcast.sharing.tracking import advance
from fieldcast.videos.playback import PLAYABLE_STATUSES

log = logging.getLogger(__name__)

MAX_SHARE_USERS = MAX_NAMED_USERS
MAX_SHARE_TEAMS = MAX_NAMED_TEAMS
MAX_SHARE_LISTS = MAX_NAMED_LISTS


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
    audience_named = named(
        session, principal, user_ids=user_ids, team_ids=team_ids, list_ids=list_ids, verb="share"
    )
    users, teams, lists = audience_named.user_ids, audience_named.team_ids, audience_named.list_ids

    share = Share(
        id=uuid7(),
        org_id=principal.org_id,
        video_id=video.id,
        sender_id=principal.user_id,
        message=message,
        audience=audience_named.as_json(),
    )
    session.add(share)
    session.flush()
    people = (
        audience(principal.org_id, user_ids=users, team_ids=teams, list_ids=lists)
        .where(User.id != principal.user_id)
        .subquery()
    )
    # The audience in blocks of user ids: a few rows whatever its size (see ShareAudience).
    share.recipient_count = insert_blocks(
        session,
        cast(Table, ShareAudience.__table__),
        {"org_id": principal.org_id, "share_id": share.id, "video_id": video.id},
        people,
    )
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


def shares_of_video(session: Session, principal: Principal, video_id: uuid.UUID) -> Select[Any]:
    """Shares of a video (one the principal can see) that the principal may follow: their
    own, their reports' down the chain, all for admins (`fieldcast.policy.SharePolicy`)."""
    video = load_video(session, principal, video_id)
    return select(Share).where(Share.video_id == video.id, share_policy.visible(principal))


# -- recalling a share, and shares of a deleted video ---------------------------------------------


def recall_share(session: Session, principal: Principal, share_id: uuid.UUID) -> Share:
    """Take a share back (its sender, admins): it grants nothing from now on, so its recipients
    lose the video unless another share, authorship or their role still gives it to them. Its
    pushes and chat cards not yet sent are dropped, recipients still `queued` end `failed` with
    `recalled`, and the share stays, with `recalled_at`, in its sender's record. Recalling it
    again changes nothing."""
    share = load_share(session, principal, share_id, "share.recall")
    if share.recalled_at is not None:
        return share
    share.recalled_at = utcnow()
    blocks = session.execute(
        delete(ShareAudience)
        .where(ShareAudience.org_id == share.org_id, ShareAudience.share_id == share.id)
        .returning(ShareAudience.user_ids)
    ).scalars()
    reached: set[uuid.UUID] = {user_id for block in blocks for user_id in block}
    reached.update(
        session.scalars(
            select(ShareRecipient.user_id).where(
                ShareRecipient.org_id == share.org_id, ShareRecipient.share_id == share.id
            )
        )
    )
    stop_fan_out(session, [share.id], reason="share_recalled")
    advance(
        session,
        RecipientState.FAILED,
        ShareRecipient.org_id == share.org_id,
        ShareRecipient.share_id == share.id,
        ShareRecipient.state == RecipientState.QUEUED,
        reason="recalled",
    )
    events.publish(
        session,
        events.ShareRecalled(
            org_id=share.org_id,
            share_id=share.id,
            video_id=share.video_id,
            recipient_ids=tuple(sorted(reached)),
        ),
    )
    session.flush()
    log.info("share %s recalled by %s (%d people)", share.id, principal.user_id, len(reached))
    return share
