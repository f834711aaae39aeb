"""The purge: deleted videos past their grace period lose their media, then their row.

A periodic job (`purge-deleted-videos`) takes the deleted videos whose `purge_after` has passed,
one at a time (FOR UPDATE SKIP LOCKED, so two workers never take the same one and a restore
waits for the purge, then finds nothing), and for each:

1. discards the stored parts of uploads that never finished (tus partials, S3 multipart
   uploads), which live outside the video's folder: the rows of those cancelled with the
   video stay until then, whether or not discarding their parts at the deletion worked;
2. deletes every object under the video's folder `org/{org}/videos/{video}/`: every source
   version, every rendition, every attachment file, and on S3 any unfinished multipart upload
   there;
3. deletes the row; its renditions, uploads, attachments, shares, recipients and mutes go with
   it (ON DELETE CASCADE).

Each video commits on its own (`EarlyCommit.BATCH_ITEM`). Storage goes first: a purge that dies
between the two leaves a row whose folder is already empty, and the next run finishes it. A
video whose storage refuses is left for the next run; the others carry on.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from fieldcast.db import Database, EarlyCommit, commit_early
from fieldcast.models.attachments import Attachment
from fieldcast.models.uploads import Upload
from fieldcast.models.videos import Video
from fieldcast.videos.services import discard_upload_parts
from media.storage import Storage, StorageError

log = logging.getLogger(__name__)


def video_folder(org_id: uuid.UUID, video_id: uuid.UUID) -> str:
    """The storage folder that holds everything of a video (see `Video.media_prefix`)."""
    return f"org/{org_id}/videos/{video_id}"


def purge_video(session: Session, storage: Storage, video: Video) -> int:
    """Remove a deleted video's media and row, in the caller's transaction; returns how many
    objects were deleted. Raises StorageError, leaving the row, when storage refuses."""
    folder = video_folder(video.org_id, video.id)
    for upload in session.scalars(
        select(Upload).where(Upload.org_id == video.org_id, Upload.video_id == video.id)
    ):
        if upload.completed_at is None:
            discard_upload_parts(storage, upload)
    deleted = 0
    # Attachment files are stored in the folder; one stored anywhere else goes too.
    for key in session.scalars(
        select(Attachment.storage_key).where(
            Attachment.org_id == video.org_id,
            Attachment.video_id == video.id,
            Attachment.storage_key.is_not(None),
        )
    ):
        if key and not key.startswith(folder + "/"):
            storage.delete(key)
            deleted += 1
    deleted += storage.delete_prefix(folder)
    session.execute(delete(Video).where(Video.org_id == video.org_id, Video.id == video.id))
    return deleted


def purge_deleted(db: Database, storage: Storage, *, batch: int = 100) -> dict[str, int]:
    """Purge up to `batch` deleted videos whose grace period has passed (see the module
    docstring). Safe to run again and in several workers at once."""
    counts = {"purged": 0, "objects": 0, "failed": 0}
    failed: list[uuid.UUID] = []
    with db.session() as session:
        while counts["purged"] + counts["failed"] < batch:
            query = (
                select(Video)
                .where(Video.deleted_at.is_not(None), Video.purge_after <= func.now())
                .order_by(Video.purge_after)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if failed:
                query = query.where(Video.id.not_in(failed))
            video = session.scalars(query).one_or_none()
            if video is None:
                session.rollback()
                break
            try:
                objects = purge_video(session, storage, video)
            except StorageError:
                session.rollback()
                log.warning("video %s could not be purged; the next run tries again", video.id)
                failed.append(video.id)
                counts["failed"] += 1
                continue
            commit_early(session, EarlyCommit.BATCH_ITEM)
            log.info("video %s purged: %d stored objects deleted", video.id, objects)
            counts["purged"] += 1
            counts["objects"] += objects
    return counts
