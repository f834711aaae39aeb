"""Saved searches: a person follows a query, and what newly matches it reaches them together.

Every round of the saved-search worker (a periodic job) looks, for each search due, at the
videos that became playable and the comments written in the last `LOOKBACK` that match the
query and filters and that the person may see. What it has not told them yet
(`SavedSearchHit`) becomes one inbox item and one push per search and round: "New for
“acme pricing”: 3". A video or moment is told once, however rounds overlap; the lookback
covers a round that came late or a document built after its comment was written.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, select
from sqlalchemy import delete as delete_rows
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldcast.db import Database, utcnow
from fieldcast.errors import ErrorCode, InvalidInput, NotFound
from fieldcast.inbox import services as inbox
from fieldcast.inbox.types import NotificationType
from fieldcast.models.accounts import User
from fieldcast.models.conversation import Comment
from fieldcast.models.search import (
    SAVED_SEARCH_NAME_MAX,
    SavedSearch,
    SavedSearchHit,
    SearchDocument,
)
from fieldcast.models.videos import Video
from fieldcast.policy import Principal
from fieldcast.search import engine
from fieldcast.search.query import parse

log = logging.getLogger(__name__)
D = SearchDocument

MAX_PER_PERSON = 50
LOOKBACK = timedelta(hours=2)
# How long what a search told is remembered; nothing older than this is looked at either (a
# search whose rounds stopped for longer picks up from this far back), so none is told twice.
HIT_RETENTION = timedelta(days=7)
# What one item names at most; the count says how many there were.
NAMED = 10
SEARCHES_PER_ROUND = 500


class TooManySavedSearches(InvalidInput):
    code = ErrorCode.TOO_MANY_SAVED_SEARCHES
    title = "You follow as many searches as you may"


class EmptySavedSearch(InvalidInput):
    code = ErrorCode.SAVED_SEARCH_EMPTY
    title = "A saved search names a query or a filter"


def _check_follows_something(query: str, filters: engine.Filters) -> None:
    if not query.strip() and not filters.narrows:
        raise EmptySavedSearch("Name a query (`q`) or a filter to follow; the feed has the rest.")


def mine(principal: Principal) -> Select[Any]:
    return (
        select(SavedSearch)
        .where(SavedSearch.org_id == principal.org_id, SavedSearch.user_id == principal.user_id)
        .order_by(SavedSearch.id)
    )


def get(session: Session, principal: Principal, saved_id: uuid.UUID) -> SavedSearch:
    """One of the principal's own saved searches; nobody else's exists for them."""
    found = session.scalar(mine(principal).where(SavedSearch.id == saved_id))
    if found is None:
        raise NotFound("No such saved search.")
    return found


def create(
    session: Session,
    principal: Principal,
    *,
    name: str,
    query: str,
    filters: engine.Filters,
    notify: bool = True,
) -> SavedSearch:
    # Two POSTs at once count one after the other: the person's row is the lock.
    session.execute(
        select(User.id).where(User.id == principal.user_id).with_for_update(key_share=True)
    )
    count = session.scalar(
        select(func.count()).select_from(mine(principal).order_by(None).subquery())
    )
    if (count or 0) >= MAX_PER_PERSON:
        raise TooManySavedSearches(f"At most {MAX_PER_PERSON} saved searches.")
    _check_follows_something(query, filters)
    saved = SavedSearch(
        org_id=principal.org_id,
        user_id=principal.user_id,
        name=(name.strip() or query.strip() or "Saved search")[:SAVED_SEARCH_NAME_MAX],
        query=query.strip(),
        filters=filters.to_json(),
        notify=notify,
        checked_at=utcnow(),
    )
    session.add(saved)
    session.flush()
    return saved


def update(
    session: Session, principal: Principal, saved_id: uuid.UUID, changes: dict[str, Any]
) -> SavedSearch:
    saved = get(session, principal, saved_id)
    if "name" in changes:
        saved.name = changes["name"].strip() or saved.name
    if "query" in changes:
        saved.query = changes["query"].strip()
    if "filters" in changes:
        saved.filters = changes["filters"].to_json()
    if "notify" in changes:
        if changes["notify"] and not saved.notify:
            # Pushes again from about now (a round looks LOOKBACK further back), not about
            # everything that matched while they were off.
            saved.checked_at = utcnow()
        saved.notify = changes["notify"]
    if changes.keys() & {"query", "filters"}:
        _check_follows_something(saved.query, engine.Filters.from_json(saved.filters))
    session.flush()
    return saved


def delete(session: Session, principal: Principal, saved_id: uuid.UUID) -> None:
    session.delete(get(session, principal, saved_id))
    session.flush()


@dataclass(frozen=True)
class NewMatch:
    key: str  # "video:<id>" or "comment:<id>"
    video_id: uuid.UUID
    comment_id: uuid.UUID | None = None
    at_ms: int | None = None


def new_matches(
    session: Session, principal: Principal, saved: SavedSearch, *, since: datetime
) -> list[NewMatch]:
    """Videos that became playable and comments written since `since` that match the saved
    search, among what the person may see, not told before."""
    query = parse(saved.query, prefix=False)
    filters = engine.resolve(session, principal.org_id, engine.Filters.from_json(saved.filters))
    config = engine.config_of(session, principal.org_id)
    tsquery = None if query.empty else engine.tsquery(config, query.tsquery())

    def untold(key: Any) -> ColumnElement[bool]:
        return ~exists().where(
            SavedSearchHit.saved_search_id == saved.id, SavedSearchHit.key == key
        )

    videos = session.execute(
        engine.matching(principal, tsquery, filters)
        .where(
            Video.playable_at >= since,
            Video.owner_id != principal.user_id,
            untold(func.concat("video:", D.video_id)),
        )
        .limit(NAMED * 5)
    ).all()
    found = [NewMatch(f"video:{row.video_id}", row.video_id) for row in videos]
    if tsquery is not None:
        matching_ids = (
            engine.matching(principal, None, filters).order_by(None).with_only_columns(D.video_id)
        )
        comments = session.execute(
            select(Comment.id, Comment.video_id, Comment.timeline_ms)
            .where(
                Comment.org_id == principal.org_id,
                Comment.created_at >= since,
                Comment.deleted_at.is_(None),
                Comment.hidden_at.is_(None),
                Comment.author_id != principal.user_id,
                Comment.search_tsv.op("@@")(tsquery),
                Comment.video_id.in_(matching_ids),
                untold(func.concat("comment:", Comment.id)),
            )
            .order_by(Comment.created_at)
            .limit(NAMED * 5)
        ).all()
        found += [
            NewMatch(f"comment:{row.id}", row.video_id, row.id, row.timeline_ms) for row in comments
        ]
    return found


def run_round(db: Database, *, limit: int = SEARCHES_PER_ROUND) -> int:
    """One round of the saved-search worker. Returns how many people were told."""
    told = 0
    with db.unit_of_work() as session:
        due = session.scalars(
            select(SavedSearch)
            .where(SavedSearch.notify.is_(True))
            .order_by(SavedSearch.checked_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        now = utcnow()
        for saved in due:
            user = session.get(User, saved.user_id)
            # What became new since a little before the last look (a document built late, a
            # round that came late); what was told already is not told again.
            since = max(saved.checked_at - LOOKBACK, saved.created_at, now - HIT_RETENTION)
            saved.checked_at = now
            if user is None or not user.is_active or user.deleted_at is not None:
                continue
            try:
                with session.begin_nested():
                    found = new_matches(session, Principal(user=user), saved, since=since)
                    if found:
                        _tell(session, saved, found, now)
                        told += 1
            except Exception:
                # One search that fails (its filters, its person) does not hold up the others.
                log.exception("saved search %s could not be run", saved.id)
        session.execute(
            delete_rows(SavedSearchHit).where(SavedSearchHit.created_at < now - HIT_RETENTION)
        )
    return told


def _tell(session: Session, saved: SavedSearch, found: list[NewMatch], now: datetime) -> None:
    session.execute(
        insert(SavedSearchHit)
        .values(
            [{"org_id": saved.org_id, "saved_search_id": saved.id, "key": m.key} for m in found]
        )
        .on_conflict_do_nothing()
    )
    videos = list(dict.fromkeys(m.video_id for m in found))
    data: dict[str, Any] = {
        "saved_search_id": saved.id,
        # Push data values are strings: ids joined by commas.
        "video_ids": ",".join(str(v) for v in videos[:NAMED]),
        "comment_ids": ",".join([str(m.comment_id) for m in found if m.comment_id][:NAMED]),
    }
    if len(found) == 1:
        data["video_id"] = found[0].video_id
        if found[0].comment_id is not None:
            data["comment_id"] = found[0].comment_id
            data["at_ms"] = found[0].at_ms
    inbox.notify(
        session,
        org_id=saved.org_id,
        user_id=saved.user_id,
        type=NotificationType.SEARCH_MATCHES,
        args={"search": saved.name, "count": len(found)},
        data=data,
        dedup_key=f"{NotificationType.SEARCH_MATCHES}:{saved.id}:{now.isoformat()}",
    )
    saved.last_notified_at = now
