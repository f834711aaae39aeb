"""Reports: whoever sees a video or a comment may ask the admins to look at it; an admin hides
it (its author is told why) or keeps it.

- A report names something the reporter sees (rules `video.report`, `comment.report`); what
  they do not see does not exist for them (404), in another organisation least of all. Every
  report names its video; a report of a comment names the comment as well.
- One open report per person and object: reporting it again, while the first is open,
  answers that report and adds nothing (`Filed.created` is False).
- Nobody reports their own video or comment (422 `cannot_report_own_content`): they can
  edit or delete it. A comment deleted or already hidden shows nothing to report (404).
- Hiding (admins) sets `hidden_at` and `hidden_reason` on the comment or the video, closes
  every open report of that same object as `hidden`, and tells its author why (inbox item and
  push `content.hidden`, with the reason as the body). A hidden video is seen by its author
  and admins only (`policy.videos`), leaves the lists of the people it was shared with
  (`events.VideoHidden`), and its pushes and chat cards not yet sent go nowhere; a hidden
  comment stays in its thread as a tombstone. Hiding again changes nothing and tells nobody
  again; hiding on another report of content already hidden closes the open reports.
- Dismissing (admins) keeps the content and closes that one report; dismissing it again
  changes nothing, and a report the content was hidden on is not dismissed (409
  `report_resolved`: show the content again instead).
- Unhiding (admins) shows a video or a comment again; its reports stay as they were decided.

Every decision is written to the audit log (`fieldcast.audit`) in the same transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fieldcast import audit, events, policy
from fieldcast.audit import AuditAction
from fieldcast.conversation import comments
from fieldcast.db import utcnow
from fieldcast.errors import Conflict, ErrorCode, InvalidInput, NotFound
from fieldcast.inbox.services import notify
from fieldcast.inbox.types import NotificationType
from fieldcast.models.accounts import User
from fieldcast.models.conversation import Comment
from fieldcast.models.moderation import Report, ReportReason, ReportStatus
from fieldcast.models.videos import Video
from fieldcast.policy import Principal, authorize, get_scoped, scoped


@dataclass(frozen=True)
class Filed:
    """The reporter's open report of the object, and whether this request made it."""

    report: Report
    created: bool


def _open_report(
    session: Session, principal: Principal, video_id: uuid.UUID, comment_id: uuid.UUID | None
) -> Report | None:
    return session.scalars(
        scoped(principal, Report).where(
            Report.reporter_id == principal.user_id,
            Report.status == ReportStatus.OPEN,
            _same_object(video_id, comment_id),
        )
    ).one_or_none()


def _same_object(video_id: uuid.UUID, comment_id: uuid.UUID | None) -> Any:
    """The reports of one object: of this comment, or of the video itself."""
    if comment_id is not None:
        return Report.comment_id == comment_id
    return and_(Report.video_id == video_id, Report.comment_id.is_(None))


def file_report(
    session: Session,
    principal: Principal,
    *,
    reason: ReportReason,
    details: str = "",
    video_id: uuid.UUID | None = None,
    comment_id: uuid.UUID | None = None,
) -> Filed:
    """Report a comment or a video the principal sees (exactly one of them)."""
    if (video_id is None) == (comment_id is None):
        message = "Name the comment or the video you report: one of them."
        raise InvalidInput(message, errors={"comment_id": [message], "video_id": [message]})
    if comment_id is not None:
        comment = policy.load_comment(session, principal, comment_id, "comment.report")
        if comment.deleted_at is not None or comment.hidden_at is not None:
            raise NotFound(f"No comment with id {comment_id}.")
        author_id, reported_video = comment.author_id, comment.video_id
    else:
        assert video_id is not None
        video = policy.load_video(session, principal, video_id, "video.report")
        author_id, reported_video = video.owner_id, video.id
    if author_id == principal.user_id:
        raise InvalidInput(
            "You cannot report your own video or comment; edit or delete it instead.",
            code=ErrorCode.CANNOT_REPORT_OWN_CONTENT,
        )
    existing = _open_report(session, principal, reported_video, comment_id)
    if existing is not None:
        return Filed(existing, created=False)
    report = Report(
        org_id=principal.org_id,
        reporter_id=principal.user_id,
        video_id=reported_video,
        comment_id=comment_id,
        reason=reason,
        details=details.strip(),
        status=ReportStatus.OPEN,
    )
    session.add(report)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        # The same person's report of the same object, made by a concurrent request: the
        # partial unique index keeps one open, and that one is the answer.
        existing = _open_report(session, principal, reported_video, comment_id)
        if existing is None:
            raise
        return Filed(existing, created=False)
    return Filed(report, created=True)


# -- what admins read ----------------------------------------------------------------------------


def listed(principal: Principal, *, status: ReportStatus | None = None) -> Select[Any]:
    """The organisation's reports, for a page (admins); with `status`, those in it."""
    authorize(principal, "report.list")
    stmt = scoped(principal, Report)
    if status is not None:
        stmt = stmt.where(Report.status == status)
    return stmt


def get_report(session: Session, principal: Principal, report_id: uuid.UUID) -> Report:
    # The role first: a non-admin is refused (403) whatever the id names.
    authorize(principal, "report.read")
    return get_scoped(session, principal, Report, report_id)


def _locked_report(session: Session, principal: Principal, report_id: uuid.UUID) -> Report:
    """A report to decide on, locked: two admins deciding at once are served one by one."""
    authorize(principal, "report.resolve")
    report = session.scalars(
        scoped(principal, Report)
        .where(Report.id == report_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if report is None:
        raise NotFound(f"No report with id {report_id}.")
    return report


def _locked_content(session: Session, report: Report) -> Video | Comment:
    """The comment or the video a report names, locked (it exists while its reports do): one
    admin at a time decides about one piece of content."""
    stmt: Select[Any] = (
        select(Comment).where(Comment.org_id == report.org_id, Comment.id == report.comment_id)
        if report.comment_id is not None
        else select(Video).where(Video.org_id == report.org_id, Video.id == report.video_id)
    )
    content: Video | Comment = session.scalars(
        stmt.with_for_update().execution_options(populate_existing=True)
    ).one()
    return content


# -- deciding ------------------------------------------------------------------------------------


def hide(session: Session, principal: Principal, report_id: uuid.UUID, *, reason: str) -> Report:
    """Hide what the report names, close every open report of it, tell its author why."""
    authorize(principal, "report.resolve")
    reason = " ".join(reason.split())
    if not reason:
        raise InvalidInput(errors={"reason": ["Say why: the author is told."]})
    # The content first, then the report: admins deciding on reports of the same content
    # queue on the content, never each holding a report the other's update needs.
    named = get_scoped(session, principal, Report, report_id)
    if named.comment_id is not None:
        comments.lock_thread(session, named.comment_id)  # the thread before the reply
    content = _locked_content(session, named)
    report = _locked_report(session, principal, report_id)
    now = utcnow()
    newly_hidden = content.hidden_at is None
    if newly_hidden:
        content.hidden_at = now
        content.hidden_reason = reason
        if isinstance(content, Comment) and content.deleted_at is None:
            session.flush()
            comments.left(session, content)
    told = content.hidden_reason or reason
    closing: dict[str, Any] = {
        "status": ReportStatus.HIDDEN,
        "resolved_at": now,
        "resolved_by_id": principal.user_id,
        "resolution_note": told,
    }
    closed = 0
    if report.status is not ReportStatus.HIDDEN:
        # Open, or kept before: the admin now acts on it.
        for name, value in closing.items():
            setattr(report, name, value)
        closed += 1
    result = session.execute(
        update(Report)
        .where(
            Report.org_id == report.org_id,
            Report.id != report.id,
            Report.status == ReportStatus.OPEN,
            _same_object(report.video_id, report.comment_id),
        )
        .values(**closing)
    )
    closed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    if not newly_hidden and not closed:
        session.flush()
        return report  # decided already: nothing changes, nobody is told again

    video = content if isinstance(content, Video) else session.get(Video, report.video_id)
    assert video is not None  # a comment's video outlives it
    if newly_hidden:
        _tell_author(session, report, content, video, reason)
        if isinstance(content, Video):
            events.publish(
                session,
                events.VideoHidden(org_id=video.org_id, video_id=video.id, owner_id=video.owner_id),
            )
    audit.record(
        session,
        principal,
        AuditAction.COMMENT_HIDDEN if isinstance(content, Comment) else AuditAction.VIDEO_HIDDEN,
        "comment" if isinstance(content, Comment) else "video",
        content.id,
        {
            "report_id": report.id,
            "video_id": report.video_id,
            "reason": told,
            "reports_closed": closed,
            "already_hidden": not newly_hidden,
        },
    )
    session.flush()
    return report


def _tell_author(
    session: Session, report: Report, content: Video | Comment, video: Video, reason: str
) -> None:
    """The author's inbox item and push: what was hidden, and the admin's reason as the body.
    Once per hiding (a content hidden, shown and hidden again is told twice). An author whose
    account was deleted is told nothing: nobody would read it."""
    hidden_at = content.hidden_at
    assert hidden_at is not None
    is_comment = isinstance(content, Comment)
    author_id = content.author_id if isinstance(content, Comment) else content.owner_id
    author = session.get(User, author_id)
    if author is None or author.deleted_at is not None:
        return
    data: dict[str, Any] = {"video_id": video.id}
    if is_comment:
        data["comment_id"] = content.id
    notify(
        session,
        org_id=report.org_id,
        user_id=author_id,
        type=NotificationType.CONTENT_HIDDEN,
        args={"video": video.title, "reason": reason},
        data=data,
        dedup_key=(
            f"{NotificationType.CONTENT_HIDDEN}:{'comment' if is_comment else 'video'}:"
            f"{content.id}:{hidden_at.isoformat()}"
        ),
    )


def dismiss(
    session: Session, principal: Principal, report_id: uuid.UUID, *, note: str | None = None
) -> Report:
    """Keep what the report names: the report is closed as `dismissed`."""
    report = _locked_report(session, principal, report_id)
    if report.status is ReportStatus.DISMISSED:
        return report
    if report.status is ReportStatus.HIDDEN:
        raise Conflict(
            "The content was hidden on this report; show it again instead.",
            code=ErrorCode.REPORT_RESOLVED,
        )
    note = " ".join(note.split()) if note else None
    report.status = ReportStatus.DISMISSED
    report.resolved_at = utcnow()
    report.resolved_by_id = principal.user_id
    report.resolution_note = note or None
    audit.record(
        session,
        principal,
        AuditAction.REPORT_DISMISSED,
        "report",
        report.id,
        {"video_id": report.video_id, "comment_id": report.comment_id, "note": note},
    )
    session.flush()
    return report


def unhide_video(session: Session, principal: Principal, video_id: uuid.UUID) -> Video:
    """Show a hidden video again (to everyone it was shared with); one not hidden is
    answered as it is."""
    authorize(principal, "video.unhide")
    video = policy.load_video(session, principal, video_id, "video.unhide")
    if video.hidden_at is not None:
        audit.record(
            session,
            principal,
            AuditAction.VIDEO_UNHIDDEN,
            "video",
            video.id,
            {"hidden_at": video.hidden_at, "previous_reason": video.hidden_reason},
        )
        video.hidden_at = None
        video.hidden_reason = None
    session.flush()
    return video


def unhide_comment(session: Session, principal: Principal, comment_id: uuid.UUID) -> Comment:
    """Show a hidden comment again in its thread; one not hidden is answered as it is."""
    authorize(principal, "comment.unhide")
    comment = policy.load_comment(session, principal, comment_id, "comment.unhide")
    comments.lock_thread(session, comment.id)
    if comment.hidden_at is not None:
        audit.record(
            session,
            principal,
            AuditAction.COMMENT_UNHIDDEN,
            "comment",
            comment.id,
            {
                "video_id": comment.video_id,
                "hidden_at": comment.hidden_at,
                "previous_reason": comment.hidden_reason,
            },
        )
        comment.hidden_at = None
        comment.hidden_reason = None
        session.flush()
        comments.returned(session, comment)
    session.flush()
    return comment
