"""From inbox items to phones: one push per (notification, device), whatever happens to workers.

`deliver()` takes a set of notifications (up to a few hundred users' worth):

1. Preferences first: a muted type or video sends nothing; quiet hours defer the push to their
   end (a delayed outbox job), never drop it.
2. Claim: one `push_deliveries` row per (notification, device), inserted and committed before
   FCM is called. A second run of the same job (a duplicate, a retry) finds the rows claimed
   and sends nothing again. A claim older than the outbox lease belongs to a worker that died
   between claiming and recording: only then is it sent again, with the same collapse id, so
   the phone shows it once.
3. Send in batches of at most 500, record each result, forget tokens FCM says are dead. Each
   push is worded in its device's language with the keys of the app's own strings
   (`wording`), grouped with the other pushes about its video, shows the video's poster and
   links to it (`links.video_link`); its data carries a receipt token (`receipts`) with which
   the phone reports it delivered or opened without an access token.
4. Tell listeners (sharing) who got it: `sent` when any of their devices accepted, `failed`
   with a reason when none could.
5. Results FCM asked to retry (429, 5xx) make the job raise `TransientError` with the longest
   Retry-After: the outbox runs it again after an exponential, jittered backoff, and only the
   unsent rows go out.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from fieldcast import links, policy
from fieldcast.context import current
from fieldcast.db import EarlyCommit, commit_early, utcnow
from fieldcast.inbox import preferences, receipts, wording
from fieldcast.inbox.types import NotificationType
from fieldcast.models.accounts import User
from fieldcast.models.conversation import Comment
from fieldcast.models.devices import Device
from fieldcast.models.inbox import DeliveryStatus, Notification
from fieldcast.models.sharing import Share
from fieldcast.models.videos import Rendition, RenditionKind, Video
from fieldcast.outbox import services as outbox
from fieldcast.outbox.names import TaskName
from fieldcast.videos import playback as media_links
from notifications.push import MAX_BATCH, PushMessage, PushResult

log = logging.getLogger(__name__)

PUSH_TASK = TaskName.NOTIFICATIONS_PUSH
# The conversation on a video: what a deleted or hidden comment, or lost access to the video,
# withdraws; and what folds into one summary push (`coalescing`). Not `content.hidden`, which
# tells an author about their hidden comment.
CONVERSATION_TYPES = frozenset(
    {
        NotificationType.COMMENT_MENTION.value,
        NotificationType.COMMENT_REPLY.value,
        NotificationType.COMMENT_NEW.value,
        NotificationType.QUESTION_ANSWER.value,
        NotificationType.ANSWER_ACCEPTED.value,
    }
)
# Where the app presents a push's receipt token (api/resources/notifications.py).
RECEIPT_PATH = "/api/v1/receipts"
# How long a push's image (the video's poster) URL works: long enough for a phone that was
# off or in flight mode to fetch it when the push finally arrives.
POSTER_URL_TTL_S = 6 * 3600


@dataclass
class Outcome:
    notification_id: uuid.UUID
    user_id: uuid.UUID
    data: dict[str, Any]
    accepted: bool = False
    # Why nobody's phone got it: muted, no_devices, unregistered, invalid_token, ...
    failure: str | None = None
    errors: Counter[str] = field(default_factory=Counter)


Listener = Callable[[Session, dict[uuid.UUID, Outcome]], None]
#: Called after each round, in its transaction, with every notification's outcome.
listeners: list[Listener] = []


def deliver(
    session: Session,
    notification_ids: Sequence[uuid.UUID],
    *,
    summaries: dict[uuid.UUID, dict[str, str]] | None = None,
) -> dict[uuid.UUID, Outcome]:
    """Push these notifications to their users' devices (see the module docstring).

    A notification in `summaries` is pushed worded as the summary of a conversation's folded
    pushes (`wording.SUMMARY` with its `count`, `video` and `people`; see `coalescing`)."""
    summaries = summaries or {}
    if not notification_ids:
        return {}
    rows = session.execute(
        select(Notification, User.time_zone)
        .join(User, (User.id == Notification.user_id) & (User.org_id == Notification.org_id))
        .where(Notification.id.in_(list(notification_ids)), User.is_active.is_(True))
    ).all()
    items = {row.Notification.id: row.Notification for row in rows}
    zones = {row.Notification.user_id: row.time_zone for row in rows}
    outcomes = {nid: Outcome(nid, item.user_id, dict(item.data)) for nid, item in items.items()}
    if not outcomes:
        return {}
    for nid, reason in _withdrawn(session, items).items():
        outcomes[nid].failure = reason
        del items[nid]
        if reason == "comment_removed" and summaries.get(nid, {}).get("others"):
            _fold_again(session, summaries[nid]["others"])

    to_send = _apply_preferences(session, items, zones, outcomes, summaries)
    devices = _devices(session, {items[nid].user_id for nid in to_send})
    pairs: list[tuple[uuid.UUID, Device]] = []
    for nid in to_send:
        mine = devices.get(items[nid].user_id, [])
        if not mine:
            outcomes[nid].failure = "no_devices"
        pairs.extend((nid, device) for device in mine)

    # The job runs again only once its outbox lease ran out (its worker died) or as a duplicate
    # while that lease holds: a claim older than the lease was left by a dead worker.
    lease = timedelta(seconds=current().settings.outbox_lease_s)
    claimed = _claim(session, [(nid, device.id) for nid, device in pairs], lease)
    commit_early(session, EarlyCommit.PUSH_CLAIM)  # the claims hold before anything is sent

    badges = _unread_counts(session, {items[nid].user_id for nid, _ in pairs})
    going = {nid: items[nid] for nid, device in pairs if (nid, device.id) in claimed}
    extra_data = _push_data(going)
    posters = _posters(session, {_video_id(item) for item in going.values()})
    default_locale = current().settings.default_locale
    messages = [
        _message(
            items[nid],
            device,
            badges.get(items[nid].user_id, 0),
            extra_data[nid],
            posters.get(_video_id(items[nid])),
            default_locale,
            summaries.get(nid),
        )
        for nid, device in pairs
        if (nid, device.id) in claimed
    ]
    results: list[tuple[PushMessage, PushResult]] = []
    sink = current().push
    for start in range(0, len(messages), MAX_BATCH):
        batch = messages[start : start + MAX_BATCH]
        results.extend(zip(batch, sink.send_each(batch), strict=True))

    retry_after = _record(session, results)
    _settle(session, outcomes, [nid for nid in to_send if outcomes[nid].failure is None])
    for listener in listeners:
        listener(session, outcomes)
    _forget_dead_tokens(session, results)
    commit_early(session, EarlyCommit.PUSH_RESULTS)

    sent = sum(1 for _, result in results if result.accepted)
    waiting = sum(1 for _, result in results if result.transient)
    log.info(
        "pushed %d notifications: %d messages accepted, %d to retry, %d skipped as already sent",
        len(outcomes),
        sent,
        waiting,
        len(pairs) - len(messages),
    )
    if waiting:
        raise outbox.TransientError(
            f"FCM asked to retry {waiting} messages", retry_after=retry_after
        )
    return outcomes


def _apply_preferences(
    session: Session,
    items: dict[uuid.UUID, Notification],
    zones: dict[uuid.UUID, str],
    outcomes: dict[uuid.UUID, Outcome],
    summaries: dict[uuid.UUID, dict[str, str]],
) -> list[uuid.UUID]:
    """Mark muted ones, defer quiet ones (they stay queued); return the ids to send now."""
    prefs = preferences.load_for_delivery(session, list(zones))
    video_pairs = [
        (item.user_id, uuid.UUID(item.data["video_id"]))
        for item in items.values()
        if item.data.get("video_id")
    ]
    muted_videos = preferences.muted_pairs(session, video_pairs)
    now = utcnow()
    deferred: dict[datetime, list[uuid.UUID]] = {}
    to_send = []
    for nid, item in items.items():
        muted_types, quiet_start, quiet_end = prefs.get(item.user_id, ((), None, None))
        video_id = item.data.get("video_id")
        if item.type in muted_types or (
            video_id and (item.user_id, uuid.UUID(video_id)) in muted_videos
        ):
            outcomes[nid].failure = "muted"
            continue
        until = preferences.quiet_until(quiet_start, quiet_end, zones[item.user_id], now)
        if until is not None:
            deferred.setdefault(until, []).append(nid)
            continue
        to_send.append(nid)
    for until, ids in deferred.items():
        key = hashlib.sha256("".join(sorted(str(i) for i in ids)).encode()).hexdigest()[:32]
        waiting = {str(i): summaries[i] for i in ids if i in summaries}
        outbox.record(
            session,
            PUSH_TASK,
            {"notification_ids": [str(i) for i in ids], "summaries": waiting},
            delay=until - now,
            dedup_key=f"push.deferred:{key}",
        )
    return to_send


def _fold_again(session: Session, others: str) -> None:
    """A summary whose newest item's comment went since: the other items it stood for wait for
    the next summary (`coalescing.send_summaries`) rather than go untold."""
    ids = [nid for raw in others.split(",") if (nid := uuid_of(raw)) is not None]
    if ids:
        session.execute(
            update(Notification)
            .where(Notification.id.in_(ids), Notification.read_at.is_(None))
            .values(folded=True)
        )


def _withdrawn(session: Session, items: dict[uuid.UUID, Notification]) -> dict[uuid.UUID, str]:
    """Items whose push must not go out any more, with why: their video was deleted
    (`video_removed`), hidden by an admin from everyone but its author (`video_hidden`), or
    their share recalled (`share_recalled`). Checked when sending, as the pushes not yet
    started were dropped when it happened (a hidden video's are only checked here)."""
    video_ids = {uuid_of(item.data.get("video_id")) for item in items.values()} - {None}
    share_ids = {uuid_of(item.data.get("share_id")) for item in items.values()} - {None}
    rows = (
        session.execute(
            select(Video.id, Video.owner_id, Video.hidden_at).where(
                Video.id.in_(video_ids), Video.deleted_at.is_(None)
            )
        ).all()
        if video_ids
        else []
    )
    live = {row.id for row in rows}
    hidden = {row.id: row.owner_id for row in rows if row.hidden_at is not None}
    recalled = set(
        session.scalars(
            select(Share.id).where(Share.id.in_(share_ids), Share.recalled_at.is_not(None))
        )
        if share_ids
        else ()
    )
    withdrawn: dict[uuid.UUID, str] = {}
    for nid, item in items.items():
        video_id = uuid_of(item.data.get("video_id"))
        if video_id is not None and video_id not in live:
            withdrawn[nid] = "video_removed"
        elif video_id in hidden and hidden[video_id] != item.user_id:
            withdrawn[nid] = "video_hidden"
        elif uuid_of(item.data.get("share_id")) in recalled:
            withdrawn[nid] = "share_recalled"
    withdrawn.update(_conversation_withdrawn(session, items, skip=set(withdrawn)))
    return withdrawn


def _conversation_withdrawn(
    session: Session, items: dict[uuid.UUID, Notification], *, skip: set[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """Items about a comment deleted or hidden since (`comment_removed`), or about a video the
    person can no longer open (`no_access`: the share that gave it was recalled, it was
    hidden): nobody is pushed about a video they cannot open."""
    about = {
        nid: (item, uuid_of(item.data.get("comment_id")))
        for nid, item in items.items()
        if nid not in skip and item.type in CONVERSATION_TYPES
    }
    if not about:
        return {}
    alive = live_comments(session, {c for _, c in about.values() if c is not None})
    withdrawn: dict[uuid.UUID, str] = {}
    by_video: dict[uuid.UUID, set[uuid.UUID]] = {}
    for nid, (item, comment_id) in about.items():
        video_id = uuid_of(item.data.get("video_id"))
        if (comment_id is not None and comment_id not in alive) or video_id is None:
            withdrawn[nid] = "comment_removed"
        else:
            by_video.setdefault(video_id, set()).add(item.user_id)
    seeing: set[tuple[uuid.UUID, uuid.UUID]] = set()
    for video_id, user_ids in by_video.items():
        video = session.get(Video, video_id)
        if video is None:
            continue
        viewers = policy.videos.viewers_among(
            session, video, select(User.id).where(User.id.in_(user_ids))
        )
        seeing |= {(video_id, user_id) for user_id in viewers}
    for nid, (item, _) in about.items():
        video_id = uuid_of(item.data.get("video_id"))
        if nid not in withdrawn and (video_id, item.user_id) not in seeing:
            withdrawn[nid] = "no_access"
    return withdrawn


def live_comments(session: Session, comment_ids: set[uuid.UUID]) -> set[uuid.UUID]:
    """Of these comments, those neither deleted nor hidden: what a conversation push may still
    be about (here, and in `coalescing`'s summaries)."""
    if not comment_ids:
        return set()
    return set(
        session.scalars(
            select(Comment.id).where(
                Comment.id.in_(comment_ids),
                Comment.deleted_at.is_(None),
                Comment.hidden_at.is_(None),
            )
        )
    )


def uuid_of(value: Any) -> uuid.UUID | None:
    """An id as an inbox item's data holds it (a string), or None when absent or malformed."""
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _devices(session: Session, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, list[Device]]:
    found: dict[uuid.UUID, list[Device]] = {}
    if not user_ids:
        return found
    for device in session.scalars(
        select(Device).where(Device.user_id.in_(list(user_ids))).order_by(Device.id)
    ):
        found.setdefault(device.user_id, []).append(device)
    return found


def _claim(
    session: Session, pairs: Sequence[tuple[uuid.UUID, uuid.UUID]], lease: timedelta
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """Insert or take over delivery rows; returns the pairs this run now owns."""
    if not pairs:
        return set()
    claimed = session.execute(
        text(
            "INSERT INTO push_deliveries AS d (notification_id, device_id, status, claimed_at) "
            "SELECT n, dev, 'sending', now() "
            "FROM unnest(CAST(:notifications AS uuid[]), CAST(:devices AS uuid[])) AS p(n, dev) "
            "ON CONFLICT (notification_id, device_id) DO UPDATE "
            "SET status = 'sending', claimed_at = now(), attempts = d.attempts + 1 "
            "WHERE d.status = 'retry' "
            "OR (d.status = 'sending' AND d.claimed_at < now() - CAST(:lease AS interval)) "
            "RETURNING d.notification_id, d.device_id"
        ),
        {
            "notifications": [nid for nid, _ in pairs],
            "devices": [did for _, did in pairs],
            "lease": f"{lease.total_seconds()} seconds",
        },
    ).all()
    return {(row.notification_id, row.device_id) for row in claimed}


def _unread_counts(session: Session, user_ids: set[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not user_ids:
        return {}
    rows = session.execute(
        select(Notification.user_id, func.count())
        .where(Notification.user_id.in_(list(user_ids)), Notification.read_at.is_(None))
        .group_by(Notification.user_id)
    ).all()
    return {user_id: int(count) for user_id, count in rows}


def _video_id(item: Notification) -> uuid.UUID | None:
    return item_id(item, "video_id")


def item_id(item: Notification, name: str) -> uuid.UUID | None:
    """The id an inbox item's data names under `name` (video_id, comment_id, ...)."""
    return uuid_of(item.data.get(name))


def _push_data(items: dict[uuid.UUID, Notification]) -> dict[uuid.UUID, dict[str, str]]:
    """What each notification's data carries beyond its ids, the same for all of its user's
    devices: the link the app opens (a universal link / app link, `links.video_link`), and the
    receipt token with the URL to present it to (see `receipts`)."""
    settings = current().settings
    receipt_url = links.api_url(settings, RECEIPT_PATH)
    now = utcnow()
    found: dict[uuid.UUID, dict[str, str]] = {}
    for nid, item in items.items():
        data: dict[str, str] = {}
        video_id = _video_id(item)
        if video_id is not None:
            at = str(item.data.get("at_ms", ""))
            data["link"] = links.video_link(
                settings,
                video_id,
                share_id=item_id(item, "share_id"),
                comment_id=item_id(item, "comment_id"),
                at_ms=int(at) if at.isdigit() else None,
            )
        elif item.data.get("saved_search_id"):
            data["link"] = links.app_link(
                settings, "/search", saved=str(item.data["saved_search_id"])
            )
        if settings.secret_key is not None:
            data["receipt_token"] = receipts.issue(
                settings.secret_key, nid, item.user_id, ttl_s=settings.receipt_token_ttl_s, now=now
            )
            data["receipt_url"] = receipt_url
        found[nid] = data
    return found


def _posters(session: Session, video_ids: set[uuid.UUID | None]) -> dict[uuid.UUID | None, str]:
    """A signed URL of each video's current poster (none before it is made, nor for a deleted
    video), good for POSTER_URL_TTL_S: the phone fetches it when the push arrives, which may be
    a while after it was sent to a phone that was off."""
    ids = [video_id for video_id in video_ids if video_id is not None]
    if not ids:
        return {}
    rows = session.execute(
        select(Rendition.video_id, Rendition.storage_key)
        .join(
            Video,
            (Video.id == Rendition.video_id)
            & (Video.org_id == Rendition.org_id)
            & (Video.source_version == Rendition.source_version),
        )
        .where(
            Rendition.video_id.in_(ids),
            Rendition.name == RenditionKind.POSTER.value,
            Video.deleted_at.is_(None),
        )
    ).all()
    ctx = current()
    found: dict[uuid.UUID | None, str] = {}
    for video_id, key in rows:
        url = ctx.storage.presigned_url(key, expires_in=POSTER_URL_TTL_S)
        if url is None and ctx.settings.secret_key is not None:
            # Local storage: the API's own signed media route serves it.
            path = media_links.signed_path(
                ctx.settings.secret_key,
                media_links.media_path(key),
                media_links.expiry(POSTER_URL_TTL_S),
            )
            url = links.api_url(ctx.settings, path)
        if url is not None:
            found[video_id] = url
    return found


def _message(
    item: Notification,
    device: Device,
    badge: int,
    extra: dict[str, str],
    image: str | None,
    default_locale: str,
    summary: dict[str, str] | None = None,
) -> PushMessage:
    """One push of the item to one device, worded in the device's language (as the summary
    of several, with `summary`)."""
    language = wording.language_for(device.locale, default_locale)
    if summary is not None:
        worded = wording.word_summary(summary, language)
        extra = {**extra, "summary_count": summary["count"]}
    else:
        worded = wording.word(
            item.type, item.args or {}, language, title=item.title, body=item.body
        )
    video_id = _video_id(item)
    return PushMessage(
        notification_id=item.id,
        user_id=item.user_id,
        type=item.type,
        title=worded.title,
        body=worded.body,
        data={"notification_id": str(item.id), "type": item.type, **item.data, **extra},
        device_id=device.id,
        token=device.token,
        platform=device.platform.value,
        badge=badge,
        title_loc_key=worded.title_loc_key,
        title_loc_args=worded.title_loc_args,
        body_loc_key=worded.body_loc_key,
        body_loc_args=worded.body_loc_args,
        # A busy video's pushes stack as one thread (iOS) and one entry (Android).
        group=f"video:{video_id}" if video_id else None,
        image=image,
    )


def _record(session: Session, results: Sequence[tuple[PushMessage, PushResult]]) -> float | None:
    """Write each result on its claim. Returns the longest Retry-After asked for."""
    if not results:
        return None
    status = [
        DeliveryStatus.ACCEPTED.value
        if result.accepted
        else DeliveryStatus.RETRY.value
        if result.transient
        else DeliveryStatus.FAILED.value
        for _, result in results
    ]
    session.execute(
        text(
            "UPDATE push_deliveries AS d SET status = r.status, message_id = r.message_id, "
            "error = r.error, finished_at = CASE WHEN r.status = 'retry' THEN NULL ELSE now() END "
            "FROM unnest(CAST(:notifications AS uuid[]), CAST(:devices AS uuid[]), "
            "CAST(:status AS text[]), CAST(:message_ids AS text[]), CAST(:errors AS text[])) "
            "AS r(notification_id, device_id, status, message_id, error) "
            "WHERE d.notification_id = r.notification_id AND d.device_id = r.device_id"
        ),
        {
            "notifications": [m.notification_id for m, _ in results],
            "devices": [m.device_id for m, _ in results],
            "status": status,
            "message_ids": [r.message_id for _, r in results],
            "errors": [r.error for _, r in results],
        },
    )
    waits = [r.retry_after for _, r in results if r.transient and r.retry_after is not None]
    return max(waits) if waits else None


def _forget_dead_tokens(
    session: Session, results: Sequence[tuple[PushMessage, PushResult]]
) -> None:
    """Remove the devices whose tokens FCM will never accept again; their delivery rows go
    with them, once the outcome is settled."""
    dead = {m.device_id for m, r in results if r.drop_token and m.device_id is not None}
    if not dead:
        return
    # Only if the token is still the one that failed: the app may have re-registered.
    tokens = [m.token for m, r in results if r.drop_token]
    session.execute(delete(Device).where(Device.id.in_(list(dead)), Device.token.in_(tokens)))
    log.info("forgot %d devices whose tokens FCM no longer accepts", len(dead))


def _settle(
    session: Session, outcomes: dict[uuid.UUID, Outcome], notification_ids: Sequence[uuid.UUID]
) -> None:
    """Each notification's state over all its deliveries, this run's and earlier ones."""
    if not notification_ids:
        return
    rows = session.execute(
        text(
            "SELECT notification_id, status, error FROM push_deliveries "
            "WHERE notification_id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": list(notification_ids)},
    ).all()
    pending: set[uuid.UUID] = set()
    for row in rows:
        outcome = outcomes[row.notification_id]
        if row.status == DeliveryStatus.ACCEPTED.value:
            outcome.accepted = True
        elif row.status == DeliveryStatus.FAILED.value:
            outcome.errors[row.error or "fcm_error"] += 1
        else:
            pending.add(row.notification_id)
    for nid in notification_ids:
        outcome = outcomes[nid]
        if outcome.accepted or nid in pending or not outcome.errors:
            continue
        outcome.failure = outcome.errors.most_common(1)[0][0]


def _push(session: Session, payload: dict[str, Any]) -> None:
    ids = payload.get("notification_ids") or [payload["notification_id"]]
    summaries = {uuid.UUID(k): v for k, v in (payload.get("summaries") or {}).items()}
    if payload.get("summary"):
        summaries[uuid.UUID(payload["notification_id"])] = payload["summary"]
    deliver(session, [uuid.UUID(i) for i in ids], summaries=summaries)


outbox.tasks.register(PUSH_TASK, queue="notify", max_attempts=8)(_push)
