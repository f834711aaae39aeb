"""Attachments: the slides, documents, links and notes an author adds to their video.

Anyone who may see the video sees its attachments; only the author adds or removes them.
Files are checked against an allow-list by extension and by their first bytes (a renamed
executable is refused), counted while they stream to storage (never held whole in memory),
and stored under a key derived from the attachment's id. A document's text is read later by a
worker, for search (`attachments.text`).
"""

from __future__ import annotations

import logging
import re
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import IO, cast
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fieldcast import events
from fieldcast.accounts.services import clean_name
from fieldcast.attachments import text as attachment_text
from fieldcast.db import EarlyCommit, commit_early, on_commit, uuid7
from fieldcast.errors import Conflict, DomainError, ErrorCode, InvalidInput, NotFound
from fieldcast.models.attachments import Attachment, AttachmentKind
from fieldcast.models.videos import Video
from fieldcast.policy import Principal, load_video
from fieldcast.tenancy import storage as quotas
from media.storage import Storage

log = logging.getLogger(__name__)

MAX_ATTACHMENTS_PER_VIDEO = 50
MAX_TITLE = 200
MAX_URL = 2000
MAX_NOTE: int = Attachment.__table__.c.body.info["max_length"]  # one limit: the column's
MAX_FILENAME = 255
# Enough for every signature below and for a fair look at whether a "text" file is text.
SNIFF_BYTES = 8192
_READ_CHUNK = 1024 * 1024


class AttachmentTooLarge(DomainError):
    status = 413
    code = ErrorCode.ATTACHMENT_TOO_LARGE
    title = "The file is larger than allowed"


class AttachmentTypeNotAllowed(InvalidInput):
    code = ErrorCode.ATTACHMENT_TYPE_NOT_ALLOWED
    title = "This kind of file cannot be attached"


class TooManyAttachments(Conflict):
    code = ErrorCode.TOO_MANY_ATTACHMENTS
    title = "The video has as many attachments as it may have"


# -- file types --------------------------------------------------------------------------------


def _starts(*signatures: bytes) -> Callable[[bytes], bool]:
    return lambda head: head.startswith(signatures)


def _is_webp(head: bytes) -> bool:
    return head[:4] == b"RIFF" and head[8:12] == b"WEBP"


def _is_heic(head: bytes) -> bool:
    # An ISO-BMFF `ftyp` box whose brand is one of HEIF's.
    return head[4:8] == b"ftyp" and head[8:12] in {
        b"heic",
        b"heix",
        b"heim",
        b"heis",
        b"mif1",
        b"msf1",
    }


_EXECUTABLES = (b"MZ", b"\x7fELF", b"\xfe\xed\xfa", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe", b"#!")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _is_text(head: bytes) -> bool:
    """Plain text: no executable header, and no NUL byte (except in BOM-marked UTF-16, which
    spreadsheet exports use)."""
    if head.startswith(_EXECUTABLES):
        return False
    return head.startswith(_UTF16_BOMS) or b"\x00" not in head


_PDF = _starts(b"%PDF-")
# OOXML (docx, pptx, xlsx) and iWork (key, numbers, pages) documents are zip archives.
_ZIP = _starts(b"PK\x03\x04")
# Legacy Office documents are OLE2 compound files.
_OLE2 = _starts(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")
_PNG = _starts(b"\x89PNG\r\n\x1a\n")
_JPEG = _starts(b"\xff\xd8\xff")
_GIF = _starts(b"GIF87a", b"GIF89a")

_ZIP_TYPES = frozenset({"application/zip", "application/x-zip-compressed"})


@dataclass(frozen=True)
class FileType:
    content_type: str
    matches: Callable[[bytes], bool]
    # Other names clients give the same type (browsers and phones differ).
    aliases: frozenset[str] = frozenset()


FILE_TYPES: dict[str, FileType] = {
    "pdf": FileType("application/pdf", _PDF, frozenset({"application/x-pdf"})),
    "ppt": FileType("application/vnd.ms-powerpoint", _OLE2),
    "pptx": FileType(
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        _ZIP,
        _ZIP_TYPES,
    ),
    "key": FileType(
        "application/vnd.apple.keynote",
        _ZIP,
        _ZIP_TYPES | {"application/x-iwork-keynote-sffkey"},
    ),
    "doc": FileType("application/msword", _OLE2),
    "docx": FileType(
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document", _ZIP, _ZIP_TYPES
    ),
    "xls": FileType("application/vnd.ms-excel", _OLE2),
    "xlsx": FileType(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", _ZIP, _ZIP_TYPES
    ),
    "numbers": FileType(
        "application/vnd.apple.numbers",
        _ZIP,
        _ZIP_TYPES | {"application/x-iwork-numbers-sffnumbers"},
    ),
    "pages": FileType(
        "application/vnd.apple.pages", _ZIP, _ZIP_TYPES | {"application/x-iwork-pages-sffpages"}
    ),
    "txt": FileType("text/plain", _is_text),
    # Windows browsers send CSV files as Excel's type.
    "csv": FileType(
        "text/csv",
        _is_text,
        frozenset({"text/plain", "application/csv", "application/vnd.ms-excel"}),
    ),
    "md": FileType("text/markdown", _is_text, frozenset({"text/plain", "text/x-markdown"})),
    "png": FileType("image/png", _PNG),
    "jpg": FileType("image/jpeg", _JPEG, frozenset({"image/jpg", "image/pjpeg"})),
    "jpeg": FileType("image/jpeg", _JPEG, frozenset({"image/jpg", "image/pjpeg"})),
    "gif": FileType("image/gif", _GIF),
    "webp": FileType("image/webp", _is_webp),
    "heic": FileType("image/heic", _is_heic, frozenset({"image/heif", "image/heic-sequence"})),
}
# What a client sends when it does not know the type: the extension and the bytes decide.
_UNDECLARED = frozenset({"", "application/octet-stream", "binary/octet-stream"})
ALLOWED_EXTENSIONS = ", ".join(sorted(FILE_TYPES))


def _declared(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _extension(filename: str) -> str:
    stem, dot, ext = filename.rpartition(".")
    return ext.lower() if dot and stem else ""


def file_type(filename: str, content_type: str | None) -> tuple[str, FileType]:
    """The allowed type of a file named `filename`, or AttachmentTypeNotAllowed.

    The extension decides; a declared content type must agree with it. A name without an
    extension (some phone pickers) takes it from a declared type that names exactly one.
    """
    declared = _declared(content_type)
    ext = _extension(filename)
    if not ext:
        candidates = {e for e, t in FILE_TYPES.items() if t.content_type == declared}
        ext = min(candidates) if len(candidates) == 1 or candidates == {"jpg", "jpeg"} else ""
    kind = FILE_TYPES.get(ext)
    if kind is None:
        raise AttachmentTypeNotAllowed(
            f"Attach slides, documents or images ({ALLOWED_EXTENSIONS}).",
            errors={"file": [f"{filename!r} is not one of: {ALLOWED_EXTENSIONS}."]},
        )
    if declared not in _UNDECLARED and declared not in {kind.content_type, *kind.aliases}:
        raise AttachmentTypeNotAllowed(
            f"The file is named .{ext} but sent as {declared}.",
            errors={"file": [f"A .{ext} file is sent as {kind.content_type}."]},
        )
    return ext, kind


# -- names -------------------------------------------------------------------------------------


def _has_control(text: str) -> bool:
    return any(unicodedata.category(c) == "Cc" for c in text)


def clean_title(title: str) -> str:
    if _has_control(title.replace("\t", " ")):
        raise InvalidInput(errors={"title": ["Must not contain control characters."]})
    cleaned = clean_name(title, "title")
    if len(cleaned) > MAX_TITLE:
        raise InvalidInput(errors={"title": [f"At most {MAX_TITLE} characters."]})
    return cleaned


def _default_title(text: str) -> str:
    return " ".join(text.split())[:MAX_TITLE]


def clean_filename(filename: str | None) -> str:
    """The name shown and offered on download: its last path part (Windows clients send
    `C:\\...\\deck.pptx`), without control characters, at most 255 characters."""
    name = re.split(r"[/\\]", filename or "")[-1]
    name = "".join(c for c in unicodedata.normalize("NFC", name) if unicodedata.category(c) != "Cc")
    name = " ".join(name.split()).strip(" .")
    if len(name) <= MAX_FILENAME:
        return name
    ext = _extension(name)
    if not ext or len(ext) > 16:
        return name[:MAX_FILENAME]
    # Shorten the stem, not the extension: the extension decides the type.
    return f"{name[: MAX_FILENAME - len(ext) - 1].rstrip(' .')}.{ext}"


def storage_name(filename: str, ext: str) -> str:
    """The last part of the storage key: ASCII letters, digits, `-`, `_` and the extension, so
    that keys are valid on every backend and never start with a dot."""
    stem = filename[: -len(ext) - 1] if _extension(filename) == ext else filename
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", ascii_stem).strip("_-")[:100]
    return f"{safe or 'file'}.{ext}"


def attachment_key(video: Video, attachment_id: uuid.UUID, name: str) -> str:
    return f"org/{video.org_id}/videos/{video.id}/attachments/{attachment_id}/{name}"


# -- links and notes ---------------------------------------------------------------------------


def clean_url(url: str) -> str:
    url = url.strip()
    if not url or len(url) > MAX_URL:
        raise InvalidInput(errors={"url": [f"Links are 1-{MAX_URL} characters."]})
    if _has_control(url) or any(c.isspace() for c in url):
        raise InvalidInput(errors={"url": ["Links must not contain spaces or control characters."]})
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise InvalidInput(errors={"url": ["This is not a valid link."]}) from None
    if parts.scheme.lower() not in {"http", "https"} or not host:
        raise InvalidInput(errors={"url": ["Links start with http:// or https:// and a host."]})
    # A user name or password in a link is a classic way to disguise where it leads.
    if parts.username is not None or parts.password is not None:
        raise InvalidInput(errors={"url": ["Links must not contain a user name or password."]})
    return url


def clean_note(body: str) -> str:
    body = body.strip()
    if not body or len(body) > MAX_NOTE:
        raise InvalidInput(errors={"body": [f"Notes are 1-{MAX_NOTE} characters."]})
    if _has_control(body.replace("\n", "").replace("\r", "").replace("\t", "")):
        raise InvalidInput(errors={"body": ["Must not contain control characters."]})
    return body


# -- reading -----------------------------------------------------------------------------------


def attachments_of(session: Session, video: Video) -> list[Attachment]:
    """The attachments of a video the caller has already been allowed to see, oldest first."""
    return list(
        session.scalars(
            select(Attachment)
            .where(Attachment.org_id == video.org_id, Attachment.video_id == video.id)
            .order_by(Attachment.id)
        )
    )


def list_attachments(
    session: Session, principal: Principal, video_id: uuid.UUID
) -> list[Attachment]:
    return attachments_of(session, load_video(session, principal, video_id))


# -- adding ------------------------------------------------------------------------------------


def _attachable_video(session: Session, principal: Principal, video_id: uuid.UUID) -> Video:
    return load_video(session, principal, video_id, "attachment.create")


def _ensure_room(session: Session, video: Video, *, lock: bool) -> None:
    if lock:
        # Concurrent adds to one video queue here, so the cap holds.
        session.execute(
            select(Video.id)
            .where(Video.org_id == video.org_id, Video.id == video.id)
            .with_for_update()
        )
    count = session.scalar(
        select(func.count())
        .select_from(Attachment)
        .where(Attachment.org_id == video.org_id, Attachment.video_id == video.id)
    )
    if (count or 0) >= MAX_ATTACHMENTS_PER_VIDEO:
        raise TooManyAttachments(
            f"A video has at most {MAX_ATTACHMENTS_PER_VIDEO} attachments; remove one first."
        )


def _add(session: Session, video: Video, attachment: Attachment) -> Attachment:
    _ensure_room(session, video, lock=True)
    session.add(attachment)
    session.flush()
    # Search reads every attachment's title, a note's body and, later, a file's text.
    events.publish(session, events.VideoTextChanged(org_id=video.org_id, video_id=video.id))
    return attachment


def add_link(
    session: Session,
    principal: Principal,
    video_id: uuid.UUID,
    *,
    url: str,
    title: str | None = None,
) -> Attachment:
    video = _attachable_video(session, principal, video_id)
    url = clean_url(url)
    attachment = Attachment(
        org_id=video.org_id,
        video_id=video.id,
        created_by_id=principal.user_id,
        kind=AttachmentKind.LINK,
        title=clean_title(title) if title is not None else urlsplit(url).hostname or url,
        url=url,
    )
    return _add(session, video, attachment)


def add_note(
    session: Session,
    principal: Principal,
    video_id: uuid.UUID,
    *,
    body: str,
    title: str | None = None,
) -> Attachment:
    video = _attachable_video(session, principal, video_id)
    body = clean_note(body)
    attachment = Attachment(
        org_id=video.org_id,
        video_id=video.id,
        created_by_id=principal.user_id,
        kind=AttachmentKind.NOTE,
        title=clean_title(title) if title is not None else _default_title(body.splitlines()[0]),
        body=body,
    )
    return _add(session, video, attachment)


class _CheckedReader:
    """Replays the sniffed head, then the rest of the stream, refusing more than `limit`
    bytes as soon as they arrive."""

    def __init__(self, head: bytes, stream: IO[bytes], limit: int) -> None:
        self.head = head
        self.stream = stream
        self.limit = limit
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        if self.head:
            data = self.head if size < 0 else self.head[:size]
            self.head = self.head[len(data) :]
        else:
            # One byte past the limit is enough to know the file is too large.
            wanted = self.limit - self.count + 1
            data = self.stream.read(wanted if size < 0 else min(size, wanted))
        self.count += len(data)
        if self.count > self.limit:
            raise AttachmentTooLarge(f"Attachments are at most {self.limit} bytes.")
        return data


def _read_head(stream: IO[bytes]) -> bytes:
    head = b""
    while len(head) < SNIFF_BYTES:
        chunk = stream.read(SNIFF_BYTES - len(head))
        if not chunk:
            break
        head += chunk
    return head


def add_file(
    session: Session,
    principal: Principal,
    storage: Storage,
    video_id: uuid.UUID,
    *,
    stream: IO[bytes],
    filename: str | None,
    content_type: str | None,
    max_bytes: int,
    title: str | None = None,
) -> Attachment:
    video = _attachable_video(session, principal, video_id)
    _ensure_room(session, video, lock=False)  # before storing: a full video wastes no upload
    quotas.check_room(session, video.org_id, 0)  # nor an organisation out of storage
    name = clean_filename(filename)
    ext, kind = file_type(name, content_type)
    if _extension(name) != ext:
        name = f"{(name or 'attachment')[: MAX_FILENAME - len(ext) - 1]}.{ext}"
    cleaned_title = clean_title(title) if title is not None else _default_title(name)
    head = _read_head(stream)
    if not head:
        raise InvalidInput("The file is empty.", code=ErrorCode.ATTACHMENT_EMPTY)
    if not kind.matches(head):
        raise AttachmentTypeNotAllowed(
            f"The file's content is not a .{ext} file.",
            errors={"file": [f"The content does not look like a .{ext} file."]},
        )
    attachment_id = uuid7()
    key = attachment_key(video, attachment_id, storage_name(name, ext))
    commit_early(session, EarlyCommit.BEFORE_LONG_WORK)  # nothing stays open while the bytes stream
    reader = _CheckedReader(head, stream, max_bytes)
    try:
        size = storage.put(key, cast(IO[bytes], reader), content_type=kind.content_type)
    except Exception:
        _discard(storage, key)
        if reader.count > max_bytes:
            # Whatever the backend wrapped it in, the cause is the size.
            raise AttachmentTooLarge(f"Attachments are at most {max_bytes} bytes.") from None
        raise
    try:
        quotas.check_room(session, video.org_id, size)
        attachment = Attachment(
            id=attachment_id,
            org_id=video.org_id,
            video_id=video.id,
            created_by_id=principal.user_id,
            kind=AttachmentKind.FILE,
            title=cleaned_title,
            filename=name,
            content_type=kind.content_type,
            size_bytes=size,
            storage_key=key,
        )
        _add(session, video, attachment)
        attachment_text.start(session, attachment)  # its text is read by a worker, for search
        return attachment
    except BaseException:
        session.rollback()
        _discard(storage, key)
        raise


# -- removing ----------------------------------------------------------------------------------


def _discard(storage: Storage, key: str) -> None:
    # The row is what users see; an object left behind is only wasted space.
    try:
        storage.delete(key)
    except Exception:
        log.warning("could not delete attachment object %s", key, exc_info=True)


def delete_attachment(
    session: Session,
    principal: Principal,
    storage: Storage,
    video_id: uuid.UUID,
    attachment_id: uuid.UUID,
) -> None:
    video = load_video(session, principal, video_id, "attachment.delete")
    attachment = session.scalars(
        select(Attachment).where(
            Attachment.org_id == video.org_id,
            Attachment.video_id == video.id,
            Attachment.id == attachment_id,
        )
    ).one_or_none()
    if attachment is None:
        raise NotFound(f"No attachment with id {attachment_id}.")
    key = attachment.storage_key
    session.delete(attachment)
    session.flush()
    events.publish(session, events.VideoTextChanged(org_id=video.org_id, video_id=video.id))
    if key is not None:
        on_commit(session, partial(_discard, storage, key))
