"""Delta sync: what was removed from someone's lists, for the apps that synced before."""

from __future__ import annotations

import enum
import uuid

from sqlalchemy import Index, String, Uuid
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from fieldcast.db import UUIDPK, Base, ChangeSeq, ChangeXid, CreatedAt


class TombstoneKind(enum.StrEnum):
    VIDEO = "video"  # gone from the videos list
    SHARE = "share"  # gone from the feed (its `share_id`)
    NOTIFICATION = "notification"  # gone from the inbox
    COMMENT = "comment"  # gone from a video's comments


class SyncTombstone(Base):
    """One object gone from the lists of some people (`user_ids`: those who could see it) or of
    the organisation's admins (`user_ids` NULL), kept SYNC_TOMBSTONE_DAYS.

    No reference to the organisation or the people: a tombstone outlives what it is about
    (an inbox item deleted with its person, a video purged), and the prune removes it.
    """

    __tablename__ = "sync_tombstones"
    __table_args__ = (
        Index("ix_sync_tombstones_org_id_change_seq", "org_id", "change_seq"),
        Index("ix_sync_tombstones_org_id_change_xid", "org_id", "change_xid"),
        Index("ix_sync_tombstones_created_at", "created_at"),
    )

    id: Mapped[UUIDPK]
    org_id: Mapped[uuid.UUID]
    user_ids: Mapped[list[uuid.UUID] | None] = mapped_column(ARRAY(Uuid()))
    kind: Mapped[str] = mapped_column(String(16))
    object_id: Mapped[uuid.UUID]
    created_at: Mapped[CreatedAt]
    change_seq: Mapped[ChangeSeq]
    change_xid: Mapped[ChangeXid]
