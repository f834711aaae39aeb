"""An organisation's stored bytes and its quota.

What counts is what the organisation keeps in storage: its videos' source files, their
renditions (each as recorded when it was made), attachments, and the declared length of
uploads in progress (reserved at their start, so twenty phones uploading at once cannot pass
the quota together). Deleted videos count until they are purged. A video or attachment that
would take the organisation past its quota is refused before any byte is stored: 413
`storage_quota_exceeded`. The operator sets quotas (`fieldcast quota`); none means no limit.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from fieldcast.errors import DomainError, ErrorCode
from fieldcast.models.tenancy import OrganisationPolicy


class QuotaExceeded(DomainError):
    status = 413
    code = ErrorCode.STORAGE_QUOTA_EXCEEDED
    title = "The organisation's storage quota is used up"


@dataclass(frozen=True)
class Usage:
    sources: int
    renditions: int
    attachments: int
    uploading: int

    @property
    def total(self) -> int:
        return self.sources + self.renditions + self.attachments + self.uploading


_USAGE = text(
    """
    SELECT
        (SELECT coalesce(sum(source_bytes), 0) FROM videos WHERE org_id = :org_id) AS sources,
        (SELECT coalesce(sum(size_bytes), 0) FROM renditions WHERE org_id = :org_id)
            AS renditions,
        (SELECT coalesce(sum(size_bytes), 0) FROM attachments WHERE org_id = :org_id)
            AS attachments,
        (SELECT coalesce(sum(length), 0) FROM uploads
         WHERE org_id = :org_id AND completed_at IS NULL AND cancelled_at IS NULL
           AND expires_at > now() AND length IS NOT NULL) AS uploading
    """
)


def usage(session: Session, org_id: uuid.UUID) -> Usage:
    row = session.execute(_USAGE, {"org_id": org_id}).one()
    return Usage(int(row.sources), int(row.renditions), int(row.attachments), int(row.uploading))


def quota_of(session: Session, org_id: uuid.UUID) -> int | None:
    policy = session.get(OrganisationPolicy, org_id)
    return policy.storage_quota_bytes if policy is not None else None


def check_room(session: Session, org_id: uuid.UUID, adding: int) -> None:
    """Refuse `adding` more bytes where they would take the organisation past its quota (an
    organisation already past it is refused even an empty file)."""
    quota = quota_of(session, org_id)
    if quota is None:
        return
    # One check at a time per organisation, until the caller's transaction ends: twenty
    # uploads starting at once each see the others' reservations.
    session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"quota:{org_id}", 0))))
    used = usage(session, org_id).total
    if used + adding > quota or (adding == 0 and used >= quota):
        raise QuotaExceeded(
            f"The organisation stores {used} of its {quota} bytes; {adding} more do not fit. "
            "An admin frees room (deleted videos count until they are purged) or asks for "
            "a larger quota."
        )


def set_quota(session: Session, org_id: uuid.UUID, quota_bytes: int | None) -> None:
    """The operator's quota for the organisation (None: no limit)."""
    policy = session.get(OrganisationPolicy, org_id)
    if policy is None:
        policy = OrganisationPolicy(org_id=org_id)
        session.add(policy)
    policy.storage_quota_bytes = quota_bytes
    session.flush()
