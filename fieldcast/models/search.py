"""Search: one document per video, the index that full-text search and "for this deal" read."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKeyConstraint, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from fieldcast.db import UUIDPK, Base, CreatedAt, TenantMixin, UpdatedAt, tenant_fk


class SearchDocument(TenantMixin, Base):
    """What search knows of a video, rebuilt by a worker whenever a text about it changes.

    `tsv` weighs the title A, the description, deal attributes, deal and author B, the
    transcript C, comments and attachments' text D (each part cut to a size limit). Who may
    see the video is not copied here: search joins `videos` and asks the video policy.
    `rank_key` orders candidates before relevance is known: engagement and freshness in one
    number that does not change with time (see fieldcast.search.ranking)."""

    __tablename__ = "search_documents"
    __table_args__ = (
        tenant_fk("search_documents", "video_id", "videos", ondelete="CASCADE"),
        Index("ix_search_documents_tsv", "tsv", postgresql_using="gin"),
        # Candidates in rank order: an admin's query that matches everything reads a page.
        Index("ix_search_documents_org_id_rank_key", "org_id", text("rank_key DESC")),
        # Close matches of titles (typo tolerance).
        Index(
            "ix_search_documents_title_trgm",
            "title",
            postgresql_using="gin",
            postgresql_ops={"title": "gin_trgm_ops"},
        ),
        Index(
            "ix_search_documents_attrs",
            "attrs",
            postgresql_using="gin",
            postgresql_ops={"attrs": "jsonb_path_ops"},
        ),
        # Work left to do: documents asked for again since they were last built.
        Index(
            "ix_search_documents_stale",
            "requested_at",
            postgresql_where=text("indexed_at IS NULL OR requested_at > indexed_at"),
        ),
    )

    video_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    owner_id: Mapped[uuid.UUID]
    title: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # The video's deal attributes when it was recorded ("then").
    attrs: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    tsv: Mapped[Any | None] = mapped_column(TSVECTOR)
    # The search language of the organisation when the document was built.
    config: Mapped[str] = mapped_column(
        String(32), default="fieldcast_simple", server_default="fieldcast_simple"
    )
    engagement: Mapped[int] = mapped_column(default=0, server_default="0")
    rank_key: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # A text the document is made of changed at `requested_at`; built up to `indexed_at`.
    requested_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    indexed_at: Mapped[datetime | None]
    engagement_at: Mapped[datetime | None]


SAVED_SEARCH_NAME_MAX = 120


class SavedSearch(TenantMixin, Base):
    """A query a person follows: what newly matches it reaches them as one push and inbox item
    per round of the saved-search worker, never one per video."""

    __tablename__ = "saved_searches"
    __table_args__ = (
        tenant_fk("saved_searches", "user_id", "users", ondelete="CASCADE"),
        Index("ix_saved_searches_user_id_id", "user_id", "id"),
        # The worker's round: the searches not looked at for longest first.
        Index("ix_saved_searches_checked_at", "checked_at"),
    )

    id: Mapped[UUIDPK]
    user_id: Mapped[uuid.UUID]
    name: Mapped[str] = mapped_column(String(SAVED_SEARCH_NAME_MAX))
    query: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # The search's filters, as `GET /api/v1/search` takes them.
    filters: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    notify: Mapped[bool] = mapped_column(default=True, server_default="true")
    created_at: Mapped[CreatedAt]
    updated_at: Mapped[UpdatedAt]
    # When the saved-search worker last looked for what is new.
    checked_at: Mapped[datetime] = mapped_column(server_default=text("now()"))
    last_notified_at: Mapped[datetime | None]


class SavedSearchHit(TenantMixin, Base):
    """What a saved search already told its person about ("video:<id>", "comment:<id>"), so
    a new video or moment is told once, however the worker's rounds overlap."""

    __tablename__ = "saved_search_hits"
    __table_args__ = (
        ForeignKeyConstraint(
            ["saved_search_id"],
            ["saved_searches.id"],
            name="fk_saved_search_hits_saved_search_id_saved_searches",
            ondelete="CASCADE",
        ),
        # What is forgotten after HIT_RETENTION is found by age.
        Index("ix_saved_search_hits_created_at", "created_at"),
    )

    saved_search_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[CreatedAt]
