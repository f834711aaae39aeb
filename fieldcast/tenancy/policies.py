"""An organisation's retention policy, as the rest of the domain reads it."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.orm import Session

from fieldcast.models.tenancy import OrganisationPolicy


def deleted_grace(session: Session, org_id: uuid.UUID, default: timedelta) -> timedelta:
    """How long a video the organisation deletes can be restored before it is purged: its
    policy's `deleted_retention_days`, else the deployment's VIDEO_PURGE_GRACE_S."""
    policy = session.get(OrganisationPolicy, org_id)
    if policy is None or policy.deleted_retention_days is None:
        return default
    return timedelta(days=policy.deleted_retention_days)
