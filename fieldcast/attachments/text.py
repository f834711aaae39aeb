"""The text of attached documents, read by a worker for search (`attachments.extract_text`).

A file attachment whose kind has readable text (PDF, PowerPoint, Word, plain text: see
`media.documents.KINDS`) is stored `pending` with this task recorded in the same transaction;
other kinds are `unsupported` at once. The task reads the file in a child process with limits
(`media.documents`), never in the request, stores at most DocumentLimits.max_chars characters,
and publishes `VideoTextChanged`. A document that cannot be read (encrypted, damaged, a zip
bomb, not what its name says) ends `failed` with a sentence for its author; the worker never
raises on it. It runs on the `transcribe` queue: slow work nobody waits for.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from fieldcast import events
from fieldcast.context import current
from fieldcast.db import EarlyCommit, commit_early
from fieldcast.models.attachments import Attachment, AttachmentKind, TextStatus
from fieldcast.outbox import services as outbox
from fieldcast.outbox.names import TaskName
from media.documents import KINDS, DocumentLimits, DocumentUnreadable, extract_text
from media.storage import ObjectNotFound, StorageError, readable_file

log = logging.getLogger(__name__)

EXTRACT_TASK = TaskName.ATTACHMENTS_EXTRACT_TEXT
TEXT_MAX: int = Attachment.__table__.c.text.info["max_length"]  # one limit: the column's
LIMITS = DocumentLimits(max_chars=TEXT_MAX)


def text_kind(filename: str | None) -> str | None:
    """The document kind whose text is read for a file of this name, or None."""
    stem, dot, ext = (filename or "").rpartition(".")
    ext = ext.lower()
    return ext if dot and stem and ext in KINDS else None


def start(session: Session, attachment: Attachment) -> None:
    """A file attachment was stored: read its text later, or say it has none to read. In the
    caller's transaction."""
    if attachment.kind is not AttachmentKind.FILE:
        return
    if text_kind(attachment.filename) is None:
        attachment.text_status = TextStatus.UNSUPPORTED
        return
    attachment.text_status = TextStatus.PENDING
    session.flush()
    outbox.record(
        session,
        EXTRACT_TASK,
        {"attachment_id": str(attachment.id)},
        org_id=attachment.org_id,
        dedup_key=f"{EXTRACT_TASK}:{attachment.id}",
    )


def _pending(session: Session, attachment_id: uuid.UUID) -> Attachment | None:
    attachment = session.scalars(
        select(Attachment)
        .where(Attachment.id == attachment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if attachment is None or attachment.text_status is not TextStatus.PENDING:
        return None  # removed meanwhile, or read already
    return attachment


def extract(session: Session, payload: dict[str, Any]) -> None:
    ctx = current()
    attachment_id = uuid.UUID(payload["attachment_id"])
    attachment = _pending(session, attachment_id)
    if attachment is None or attachment.storage_key is None:
        return
    kind = text_kind(attachment.filename)
    key = attachment.storage_key
    status, text, detail = TextStatus.DONE, None, None
    if kind is None:
        status = TextStatus.UNSUPPORTED
    elif (attachment.size_bytes or 0) > LIMITS.max_bytes:
        status, detail = TextStatus.FAILED, "The file is too large for its text to be read."
    if status is TextStatus.DONE:
        assert kind is not None
        commit_early(session, EarlyCommit.BEFORE_LONG_WORK)
        try:
            with tempfile.TemporaryDirectory(prefix="attachment-text-") as work:
                path = readable_file(ctx.storage, key, Path(work), max_bytes=LIMITS.max_bytes)
                found = extract_text(path, kind, LIMITS)
                text = found.text
        except ObjectNotFound:
            return  # the attachment was removed with its file
        except DocumentUnreadable as exc:
            status, detail = TextStatus.FAILED, exc.detail
        except (StorageError, OperationalError, OSError) as exc:
            raise outbox.TransientError(f"{type(exc).__name__}: {exc}") from exc
        attachment = _pending(session, attachment_id)
        if attachment is None:
            return
    _store(session, attachment, status, text, detail)


def _store(
    session: Session,
    attachment: Attachment,
    status: TextStatus,
    text: str | None,
    detail: str | None,
) -> None:
    attachment.text_status = status
    attachment.text = text[:TEXT_MAX] if text else None
    attachment.text_failure_detail = detail[:500] if detail else None
    session.flush()
    log.info("attachment %s text: %s (%d characters)", attachment.id, status.value, len(text or ""))
    if text:
        events.publish(
            session,
            events.VideoTextChanged(org_id=attachment.org_id, video_id=attachment.video_id),
        )


def _give_up(session: Session, payload: dict[str, Any], reason: str) -> None:
    attachment = _pending(session, uuid.UUID(payload["attachment_id"]))
    if attachment is not None:
        _store(session, attachment, TextStatus.FAILED, None, "Reading the file's text failed.")


def attachment_texts(session: Session, org_id: uuid.UUID, video_id: uuid.UUID) -> list[str]:
    """The words of a video's attachments, one text each, oldest first: the text read from its
    files, the body of its notes, the titles of all. What search indexes beside the
    transcript. No principal: search filters what it returns with `policy.videos.visible`."""
    rows = session.execute(
        select(Attachment.title, Attachment.body, Attachment.text)
        .where(Attachment.org_id == org_id, Attachment.video_id == video_id)
        .order_by(Attachment.id)
    ).all()
    return ["\n".join(part for part in (row.title, row.body, row.text) if part) for row in rows]


outbox.tasks.register(EXTRACT_TASK, queue="transcribe", max_attempts=3, on_give_up=_give_up)(
    extract
)
