"""Creating and editing videos, and their life: archived, deleted, restored. Who may see a
video is decided by `fieldcast.policy`; the purge of deleted videos is `fieldcast.videos.purge`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from fieldcast import events
from fieldcast.accounts.services import clean_name
from fieldcast.db import on_commit, utcnow
from fieldcast.deals import catalogue, deals
from fieldcast.errors import ErrorCode, InvalidInput, NotFound
from fieldcast.models.uploads import Upload, UploadProtocol
from fieldcast.models.videos import Rendition, Video, VideoKind, VideoStatus
from fieldcast.policy import Principal, authorize, load_deal, load_video
from fieldcast.policy import videos as video_policy
from fieldcast.tenancy import policies
from fieldcast.videos import processing
from media.storage import Storage, StorageError

log = logging.getLogger(__name__)


def clean_deal_attributes(
    session: Session, org_id: uuid.UUID, attributes: dict[str, Any]
) -> dict[str, Any]:
    """Deal attributes as stored: normalised by the organisation's attribute catalogue
    (`fieldcast.deals.catalogue`), which a lenient catalogue learns new names and values from
    and a strict one refuses them by."""
    return catalogue.normalise(session, org_id, attributes, field="deal_attributes")


def _about_deal(
    session: Session,
    principal: Principal,
    video: Video,
    deal_id: uuid.UUID | None,
    explicit: dict[str, Any] | None,
) -> None:
    """Name the deal the video is about (one the principal sees): the video keeps the deal's
    attributes as they are now, with the values given for the video over them."""
    if deal_id is None:
        video.deal_id = None
        if explicit is not None:
            video.deal_attributes = explicit
        return
    # Loaded before anything is assigned: the query flushes the video, which must not name a
    # deal that is not there yet.
    deal = load_deal(session, principal, deal_id)
    video.deal_id = deal_id
    video.deal_attributes = deals.snapshot(deal, explicit)


def create_video(
    session: Session,
    principal: Principal,
    *,
    title: str,
    description: str = "",
    deal_attributes: dict[str, Any] | None = None,
    kind: VideoKind = VideoKind.VIDEO,
    needed_by: datetime | None = None,
    answers_video_id: uuid.UUID | None = None,
    deal_id: uuid.UUID | None = None,
) -> Video:
    """A draft video; a question (`kind`), or a reply video answering a question the principal
    sees (`answers_video_id`); about a deal the principal sees (`deal_id`), whose attributes
    it keeps as they are now."""
    authorize(principal, "video.create")
    if needed_by is not None and kind is not VideoKind.QUESTION:
        raise InvalidInput(errors={"needed_by": ["Only a question is needed by a time."]})
    if answers_video_id is not None:
        question = load_video(session, principal, answers_video_id)
        if question.kind is not VideoKind.QUESTION:
            raise InvalidInput(
                "That video is not a question.",
                code=ErrorCode.NOT_A_QUESTION,
                errors={"answers_video_id": ["Not a question."]},
            )
    video = Video(
        org_id=principal.org_id,
        owner_id=principal.user_id,
        title=clean_name(title, "title"),
        description=description.strip(),
        kind=kind,
        needed_by=needed_by,
        answers_video_id=answers_video_id,
    )
    explicit = clean_deal_attributes(session, principal.org_id, deal_attributes or {})
    _about_deal(session, principal, video, deal_id, explicit)
    session.add(video)
    session.flush()
    events.publish(session, events.VideoTextChanged(org_id=video.org_id, video_id=video.id))
    return video


def update_video(
    session: Session, principal: Principal, video_id: uuid.UUID, changes: dict[str, Any]
) -> Video:
    video = load_video(session, principal, video_id, "video.update")
    if "title" in changes:
        video.title = clean_name(changes["title"], "title")
    if "description" in changes:
        video.description = changes["description"].strip()
    explicit = (
        clean_deal_attributes(session, video.org_id, changes["deal_attributes"])
        if "deal_attributes" in changes
        else None
    )
    if "deal_id" in changes and changes["deal_id"] != video.deal_id:
        # Another deal: a new snapshot, of that deal now.
        _about_deal(session, principal, video, changes["deal_id"], explicit)
    elif explicit is not None:
        video.deal_attributes = explicit
    if "needed_by" in changes:
        if video.kind is not VideoKind.QUESTION and changes["needed_by"] is not None:
            raise InvalidInput(errors={"needed_by": ["Only a question is needed by a time."]})
        video.needed_by = changes["needed_by"]
    session.flush()
    if changes.keys() & {"title", "description", "deal_attributes", "deal_id"}:
        events.publish(session, events.VideoTextChanged(org_id=video.org_id, video_id=video.id))
    return video


def renditions_of(session: Session, videos: Sequence[Video]) -> dict[uuid.UUID, list[Rendition]]:
    """The renditions of videos already loaded (a page of them), in one query."""
    found: dict[uuid.UUID, list[Rendition]] = {video.id: [] for video in videos}
    if found:
        for rendition in session.scalars(select(Rendition).where(Rendition.video_id.in_(found))):
            found[rendition.video_id].append(rendition)
    return found


def current_rendition(
    session: Session, video_id: uuid.UUID, name: str
) -> tuple[Video, Rendition] | None:
    """A video with its rendition `name` made from its current source, or None.

    No principal: the media routes check a signed URL, which was handed only to a viewer
    allowed to see the video.
    """
    row = session.execute(
        select(Video, Rendition)
        .join(Rendition, (Rendition.video_id == Video.id) & (Rendition.org_id == Video.org_id))
        .where(
            Video.id == video_id,
            Rendition.name == name,
            Rendition.source_version == Video.source_version,
        )
    ).one_or_none()
    return (row[0], row[1]) if row else None


# -- a video's life -------------------------------------------------------------------------------


def _own_or_deleted(session: Session, principal: Principal, video_id: uuid.UUID) -> Video:
    """A video the principal sees, or one of theirs (any, for admins) deleted and not yet
    purged: what delete and restore act on, so that doing either twice answers the same."""
    video = session.scalars(
        select(Video)
        .where(
            Video.id == video_id,
            or_(video_policy.visible(principal), video_policy.restorable(principal)),
        )
        .with_for_update()
    ).one_or_none()
    if video is None:
        raise NotFound(f"No video with id {video_id}.")
    return video


def delete_video(
    session: Session,
    principal: Principal,
    storage: Storage,
    video_id: uuid.UUID,
    *,
    grace: timedelta,
) -> Video:
    """Delete a video (its author, admins): gone for everyone at once, restorable until
    `purge_after` (now + `grace`), when the purge removes its media and its row.

    Uploads in progress for it are cancelled; processing stands down when it sees the video
    deleted. Deleting it again changes nothing (the first `purge_after` holds).
    """
    video = _own_or_deleted(session, principal, video_id)
    authorize(principal, "video.delete", video)
    remove(session, storage, video, grace=grace, by=principal.user_id)
    return video


def remove(
    session: Session, storage: Storage, video: Video, *, grace: timedelta, by: uuid.UUID | None
) -> None:
    """`delete_video` once allowed; `by` None for the organisation's retention policy. The
    organisation's own grace (`deleted_retention_days`) stands before `grace`."""
    if video.deleted_at is not None:
        return
    now = utcnow()
    grace = policies.deleted_grace(session, video.org_id, grace)
    video.deleted_at = now
    video.purge_after = now + grace
    _cancel_uploads(session, storage, video)
    events.publish(
        session,
        events.VideoRemoved(org_id=video.org_id, video_id=video.id, owner_id=video.owner_id),
    )
    session.flush()
    log.info("video %s deleted by %s; purged after %s", video.id, by or "retention", now + grace)


def _cancel_uploads(session: Session, storage: Storage, video: Video) -> None:
    """Unfinished uploads of a deleted video end now: a client still sending gets 404 and
    stops. Their stored parts are discarded once the deletion commits; their rows stay, so
    that the purge discards whatever that left (`purge.purge_video`) and then deletes them."""
    open_uploads = session.scalars(
        select(Upload).where(
            Upload.org_id == video.org_id,
            Upload.video_id == video.id,
            Upload.completed_at.is_(None),
            Upload.cancelled_at.is_(None),
        )
    ).all()
    now = utcnow()
    for upload in open_uploads:
        upload.cancelled_at = now
        on_commit(session, partial(discard_upload, storage, upload))
    if open_uploads and video.status is VideoStatus.UPLOADING:
        video.status = VideoStatus.FAILED if video.failure_code else VideoStatus.AWAITING_UPLOAD


def discard_upload_parts(storage: Storage, upload: Upload) -> None:
    """Remove the stored part of an unfinished upload (tus partial or S3 multipart upload);
    again is harmless. Raises StorageError when storage refuses."""
    if upload.protocol is UploadProtocol.TUS:
        storage.abort_upload(upload.state)
    elif upload.state.get("upload_id"):
        storage.abort_direct_upload(upload.storage_key, upload.state["upload_id"])


def discard_upload(storage: Storage, upload: Upload) -> None:
    """`discard_upload_parts`, best effort: the purge discards whatever is left, as the row of
    a cancelled upload stays until then."""
    try:
        discard_upload_parts(storage, upload)
    except StorageError:
        log.warning("could not discard the stored part of upload %s", upload.id, exc_info=True)


def deleted_videos(principal: Principal) -> Select[Any]:
    """The deleted videos the principal may still restore (theirs; all, for admins)."""
    return select(Video).where(video_policy.restorable(principal))


def restore_video(session: Session, principal: Principal, video_id: uuid.UUID) -> Video:
    """Bring back a deleted video before its purge (its author, admins): visible again to
    everyone who saw it, and its processing carries on where it stood down. Restoring a video
    that is not deleted changes nothing; a purged one is gone (404)."""
    video = _own_or_deleted(session, principal, video_id)
    authorize(principal, "video.restore", video)
    deleted_at = video.deleted_at
    if deleted_at is None:
        return video
    video.deleted_at = None
    video.purge_after = None
    processing.resume(session, video, deleted_at=deleted_at)
    events.publish(
        session,
        events.VideoRestored(org_id=video.org_id, video_id=video.id, owner_id=video.owner_id),
    )
    session.flush()
    log.info("video %s restored by %s", video.id, principal.user_id)
    return video


def archive_video(
    session: Session, principal: Principal, video_id: uuid.UUID, *, archived: bool = True
) -> Video:
    """Archive a video (its author, admins): left out of feeds and lists, still reachable by
    direct link for whoever may see it. Again is harmless; `archived=False` unarchives."""
    video = load_video(session, principal, video_id, "video.archive")
    if archived and video.archived_at is None:
        video.archived_at = utcnow()
    elif not archived:
        video.archived_at = None
    session.flush()
    return video
