"""Curation: collections of videos and clips, what is featured, and the top lists."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from fieldcast.db import UUIDPK, Base, CreatedAt, TenantMixin, UpdatedAt, str_enum, tenant_fk

# A clip is [start_ms, end_ms) of its video; both or neither are set.
CLIP_RANGE = "(start_ms IS NULL AND end_ms IS NULL) OR (start_ms >= 0 AND end_ms > start_ms)"


class CollectionVisibility(enum.StrEnum):
    PRIVATE = "private"  # its owner, its editors and admins
    TEAMS = "teams"  # once published: the members of its teams and of their sub-teams
    ORGANISATION = "organisation"  # once published: every member


class Collection(TenantMixin, Base):
    """An ordered set of videos and clips a curator puts together ("handling Acme, in five
    clips"). Published, it lets its audience see the videos in it; unpublished, that stops."""

    __tablename__ = "collections"
    __table_args__ = (
        UniqueConstraint("org_id", "id"),
        tenant_fk("collections", "owner_id", "users", ondelete="CASCADE"),
        Index("ix_collections_owner_id", "owner_id"),
        # The published ones: what every visibility check of a video reads.
        Index(
            "ix_collections_published",
            "org_id",
            "visibility",
            postgresql_where=text("published_at IS NOT NULL AND deleted_at IS NULL"),
        ),
    )

    id: Mapped[UUIDPK]
    owner_id: Mapped[uuid.UUID]
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(5000), default="", server_default="")
    # The cover is a video's poster (one of the collection's, by choice; else the first's).
    cover_video_id: Mapped[uuid.UUID | None]
    visibility: Mapped[CollectionVisibility] = mapped_column(
        str_enum(CollectionVisibility, "collection_visibility", length=16),
        default=CollectionVisibility.PRIVATE,
    )
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
    published_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]


class CollectionTeam(TenantMixin, Base):
    """A team a `teams` collection is for (with its sub-teams)."""

    __tablename__ = "collection_teams"
    __table_args__ = (
        tenant_fk("collection_teams", "collection_id", "collections", ondelete="CASCADE"),
        tenant_fk("collection_teams", "team_id", "teams", ondelete="CASCADE"),
        Index("ix_collection_teams_team_id", "team_id"),
    )

    collection_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    team_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)


class CollectionEditor(TenantMixin, Base):
    """Someone the owner lets edit the collection."""

    __tablename__ = "collection_editors"
    __table_args__ = (
        tenant_fk("collection_editors", "collection_id", "collections", ondelete="CASCADE"),
        tenant_fk("collection_editors", "user_id", "users", ondelete="CASCADE"),
        Index("ix_collection_editors_user_id", "user_id"),
    )

    collection_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)


class CollectionItem(TenantMixin, Base):
    """A whole video, or a clip of it ([start_ms, end_ms)), at a place in a collection. A video
    may be in a collection any number of times, as different clips."""

    __tablename__ = "collection_items"
    __table_args__ = (
        UniqueConstraint("org_id", "id"),
        CheckConstraint(CLIP_RANGE, name="clip_range"),
        tenant_fk("collection_items", "collection_id", "collections", ondelete="CASCADE"),
        # A purged video leaves its collections; a deleted one stays, shown as unavailable.
        tenant_fk("collection_items", "video_id", "videos", ondelete="CASCADE"),
        Index("ix_collection_items_collection_id_position", "collection_id", "position"),
        Index("ix_collection_items_video_id", "video_id"),
    )

    id: Mapped[UUIDPK]
    collection_id: Mapped[uuid.UUID]
    position: Mapped[int]
    video_id: Mapped[uuid.UUID]
    start_ms: Mapped[int | None]
    end_ms: Mapped[int | None]
    note: Mapped[str] = mapped_column(String(1000), default="", server_default="")
    # The comment the clip was made from, when it was (kept if the comment goes).
    comment_id: Mapped[uuid.UUID | None]
    added_by: Mapped[uuid.UUID | None]
    created_at: Mapped[CreatedAt]


class Feature(TenantMixin, Base):
    """A video, a clip or a collection a curator put forward, for the organisation (no team) or
    for one team."""

    __tablename__ = "features"
    __table_args__ = (
        UniqueConstraint("org_id", "id"),
        CheckConstraint(CLIP_RANGE, name="clip_range"),
        CheckConstraint(
            "(video_id IS NULL) <> (collection_id IS NULL)"
            " AND (collection_id IS NULL OR start_ms IS NULL)",
            name="one_subject",
        ),
        tenant_fk("features", "team_id", "teams", ondelete="CASCADE"),
        tenant_fk("features", "video_id", "videos", ondelete="CASCADE"),
        tenant_fk("features", "collection_id", "collections", ondelete="CASCADE"),
        Index("ix_features_org_id_team_id", "org_id", "team_id", "created_at"),
    )

    id: Mapped[UUIDPK]
    team_id: Mapped[uuid.UUID | None]
    video_id: Mapped[uuid.UUID | None]
    start_ms: Mapped[int | None]
    end_ms: Mapped[int | None]
    collection_id: Mapped[uuid.UUID | None]
    note: Mapped[str] = mapped_column(String(1000), default="", server_default="")
    featured_by: Mapped[uuid.UUID | None]
    created_at: Mapped[CreatedAt]


class TopEntry(Base):
    """One place in a ranked list of top videos and clips, as the workers last computed it.

    `board` names the list: `organisation`, `team:<team id>` or `attribute:<key>=<value>`.
    `reasons` says why the entry ranks (its engagement counts and the formula's terms)."""

    __tablename__ = "top_entries"
    __table_args__ = (
        CheckConstraint(CLIP_RANGE, name="clip_range"),
        tenant_fk("top_entries", "video_id", "videos", ondelete="CASCADE"),
        Index("ix_top_entries_video_id", "video_id"),
    )

    org_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True
    )
    board: Mapped[str] = mapped_column(String(300), primary_key=True)
    rank: Mapped[int] = mapped_column(primary_key=True)
    video_id: Mapped[uuid.UUID]
    start_ms: Mapped[int | None]
    end_ms: Mapped[int | None]
    score: Mapped[float]
    reasons: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    computed_at: Mapped[datetime]
