"""An organisation's retention policy: what is deleted and purged when, done by a periodic job
(`apply`), and shown to its admins beforehand (`overview`).

- `video_retention_days`: a video is deleted that long after it was made, as its author
  would delete it (gone for everyone, restorable until purged), unless a standing assignment
  or a published collection holds it: a program is not broken by age. Off by default.
- `deleted_retention_days`: a deleted video is purged (media and row) that long after its
  deletion; the deployment's VIDEO_PURGE_GRACE_S otherwise. Applies to deletions made after
  it is set (each deletion keeps the `purge_after` it was given).
- `view_retention_days`: each view (who played what, when, with its events) is deleted that
  long after it started; each person's progress on a video (what assignments and completion
  read) stays. Off by default.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from fieldcast.db import Database, EarlyCommit, commit_early, utcnow
from fieldcast.errors import InvalidInput
from fieldcast.models.tenancy import OrganisationPolicy
from fieldcast.models.videos import Video
from fieldcast.policy import Principal, authorize
from fieldcast.tenancy import storage as quotas
from fieldcast.videos import services as videos
from media.storage import Storage

log = logging.getLogger(__name__)

# How far ahead `overview` tells admins what will go.
LOOKAHEAD = timedelta(days=30)
MAX_DAYS = 36_500

# Videos older than the cutoff that nothing standing holds: not deleted, not held by an
# assignment that is not withdrawn (alone or through its collection), not in a published
# collection that is not deleted.
_AGED_VIDEOS = """
    FROM videos v
    WHERE v.org_id = :org_id AND v.deleted_at IS NULL AND v.created_at < :cutoff
      AND NOT EXISTS (
          SELECT 1 FROM assignments a
          WHERE a.org_id = v.org_id AND a.withdrawn_at IS NULL AND (
              a.video_id = v.id OR a.collection_id IN (
                  SELECT i.collection_id FROM collection_items i
                  WHERE i.org_id = v.org_id AND i.video_id = v.id)))
      AND NOT EXISTS (
          SELECT 1 FROM collection_items i
          JOIN collections c ON c.org_id = i.org_id AND c.id = i.collection_id
          WHERE i.org_id = v.org_id AND i.video_id = v.id
            AND c.published_at IS NOT NULL AND c.deleted_at IS NULL)
"""


@dataclass(frozen=True)
class Policy:
    video_retention_days: int | None
    view_retention_days: int | None
    deleted_retention_days: int | None


def policy_of(session: Session, org_id: uuid.UUID) -> Policy:
    found = session.get(OrganisationPolicy, org_id)
    if found is None:
        return Policy(None, None, None)
    return Policy(
        found.video_retention_days, found.view_retention_days, found.deleted_retention_days
    )


def set_policy(session: Session, principal: Principal, policy: Policy) -> Policy:
    """An admin sets the organisation's retention (None: keep; see the module docstring)."""
    authorize(principal, "organisation.retention")
    errors = {
        name: [f"From {low} to {MAX_DAYS} days, or null."]
        for name, value, low in (
            ("video_retention_days", policy.video_retention_days, 1),
            ("view_retention_days", policy.view_retention_days, 1),
            ("deleted_retention_days", policy.deleted_retention_days, 0),
        )
        if value is not None and not low <= value <= MAX_DAYS
    }
    if errors:
        raise InvalidInput(errors=errors)
    found = session.get(OrganisationPolicy, principal.org_id)
    if found is None:
        found = OrganisationPolicy(org_id=principal.org_id)
        session.add(found)
    found.video_retention_days = policy.video_retention_days
    found.view_retention_days = policy.view_retention_days
    found.deleted_retention_days = policy.deleted_retention_days
    session.flush()
    return policy


def overview(session: Session, principal: Principal, default_grace: timedelta) -> dict[str, Any]:
    """What the organisation stores against its quota, its policy, and what will be deleted
    or purged within LOOKAHEAD (and what is due now, for the next run of the job)."""
    authorize(principal, "organisation.retention")
    org_id, now = principal.org_id, utcnow()
    used = quotas.usage(session, org_id)
    policy = policy_of(session, org_id)
    horizon = now + LOOKAHEAD
    purges = session.execute(
        text(
            "SELECT count(*) FILTER (WHERE purge_after <= now()) AS due, count(*) AS soon, "
            "min(purge_after) AS next FROM videos "
            "WHERE org_id = :org_id AND deleted_at IS NOT NULL AND purge_after <= :horizon"
        ),
        {"org_id": org_id, "horizon": horizon},
    ).one()
    result: dict[str, Any] = {
        "storage": {
            "quota_bytes": quotas.quota_of(session, org_id),
            "used_bytes": used.total,
            "sources_bytes": used.sources,
            "renditions_bytes": used.renditions,
            "attachments_bytes": used.attachments,
            "uploading_bytes": used.uploading,
        },
        "policy": {
            "video_retention_days": policy.video_retention_days,
            "view_retention_days": policy.view_retention_days,
            "deleted_retention_days": policy.deleted_retention_days,
            "deleted_grace_days_default": round(default_grace.total_seconds() / 86400, 2),
        },
        "upcoming": {
            "lookahead_days": LOOKAHEAD.days,
            "deleted_videos_purged": {
                "due": purges.due,
                "within_lookahead": purges.soon,
                "next_at": purges.next,
            },
            "videos_deleted": None,
            "views_deleted": None,
        },
    }
    if policy.video_retention_days is not None:
        age = timedelta(days=policy.video_retention_days)
        aged = session.execute(
            text(
                "SELECT count(*) FILTER (WHERE v.created_at < :due) AS due, count(*) AS soon, "
                "min(v.created_at) AS oldest " + _AGED_VIDEOS
            ),
            {"org_id": org_id, "cutoff": horizon - age, "due": now - age},
        ).one()
        result["upcoming"]["videos_deleted"] = {
            "due": aged.due,
            "within_lookahead": aged.soon,
            "next_at": _later(aged.oldest, age, now),
        }
    if policy.view_retention_days is not None:
        age = timedelta(days=policy.view_retention_days)
        views = session.execute(
            text(
                "SELECT count(*) FILTER (WHERE started_at < :due) AS due, count(*) AS soon, "
                "min(started_at) AS oldest FROM views "
                "WHERE org_id = :org_id AND started_at < :cutoff"
            ),
            {"org_id": org_id, "cutoff": horizon - age, "due": now - age},
        ).one()
        result["upcoming"]["views_deleted"] = {
            "due": views.due,
            "within_lookahead": views.soon,
            "next_at": _later(views.oldest, age, now),
        }
    return result


def _later(oldest: datetime | None, age: timedelta, now: datetime) -> datetime | None:
    return None if oldest is None else max(oldest + age, now)


def apply(
    db: Database, storage: Storage, *, default_grace: timedelta, batch: int = 200
) -> dict[str, int]:
    """Delete what every organisation's policy says is past keeping: up to `batch` videos
    and views per organisation and run (the next run takes the rest). Safe to run again and
    in several workers at once."""
    counts = {"videos_deleted": 0, "views_deleted": 0}
    with db.session() as session:
        policies = session.execute(
            select(OrganisationPolicy.org_id, OrganisationPolicy.video_retention_days).where(
                OrganisationPolicy.video_retention_days.is_not(None)
            )
        ).all()
        for org_id, days in policies:
            params = {"org_id": org_id, "cutoff": utcnow() - timedelta(days=days or 0)}
            ids = session.scalars(
                text("SELECT v.id " + _AGED_VIDEOS + " ORDER BY v.created_at LIMIT :batch"),
                {**params, "batch": batch},
            ).all()
            aged = session.scalars(
                select(Video)
                .where(Video.org_id == org_id, Video.id.in_(ids), Video.deleted_at.is_(None))
                .with_for_update(skip_locked=True)
            ).all()
            for video in aged:
                videos.remove(session, storage, video, grace=default_grace, by=None)
                counts["videos_deleted"] += 1
            commit_early(session, EarlyCommit.BATCH_ITEM)
        cutoffs = session.execute(
            select(OrganisationPolicy.org_id, OrganisationPolicy.view_retention_days).where(
                OrganisationPolicy.view_retention_days.is_not(None)
            )
        ).all()
        for org_id, days in cutoffs:
            deleted = session.execute(
                text(
                    "DELETE FROM views WHERE org_id = :org_id AND id IN ("
                    "SELECT id FROM views WHERE org_id = :org_id AND started_at < :cutoff "
                    "ORDER BY started_at LIMIT :batch FOR UPDATE SKIP LOCKED)"
                ),
                {
                    "org_id": org_id,
                    "cutoff": utcnow() - timedelta(days=days or 0),
                    "batch": batch * 10,
                },
            )
            counts["views_deleted"] += int(getattr(deleted, "rowcount", 0) or 0)
            commit_early(session, EarlyCommit.BATCH_ITEM)
    if any(counts.values()):
        log.info("retention: %s", counts)
    return counts
