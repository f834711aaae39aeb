"""Collections: ordered videos and clips a curator puts together, and publishes to an audience.

An item is a whole video or a clip of it ([start_ms, end_ms)); a video may be in a collection
any number of times, as different clips. A clip is made from numbers, from a comment's range
(`comment_id`), or from a moment (`at_ms`: from a little before it, for `MOMENT_MS`). Items
keep their places as consecutive `position`s; a move takes a run of items (in the order
given) to after another item, or to the start, in one statement.

Publishing lets the collection's audience (the organisation, or the people of its teams and
their sub-teams) see its videos: `policy.published_for` is part of every visibility check of a
video. Unpublishing, deleting the collection or removing an item takes that away at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from fieldcast import events
from fieldcast.db import utcnow
from fieldcast.errors import Conflict, ErrorCode, InvalidInput, NotFound
from fieldcast.models.accounts import User
from fieldcast.models.curation import (
    Collection,
    CollectionEditor,
    CollectionItem,
    CollectionTeam,
    CollectionVisibility,
)
from fieldcast.models.videos import Video
from fieldcast.policy import (
    Principal,
    authorize,
    load_collection,
    load_comment,
    load_video,
    videos,
)
from fieldcast.sharing.lists import unique, unknown_ids

MAX_ITEMS = 200
MAX_TEAMS = 100
MAX_EDITORS = 50
# A clip made from a moment starts this long before it and lasts MOMENT_MS.
MOMENT_LEAD_MS = 5_000
MOMENT_MS = 30_000
# A position in a video, as the database keeps it (int4 milliseconds: 24 days).
MAX_MS = 2**31 - 1


@dataclass(frozen=True)
class ItemInput:
    """What to add: a video (whole, or a clip by `start_ms`/`end_ms`, or a clip around the
    moment `at_ms`), or the range of a comment (`comment_id`)."""

    video_id: uuid.UUID | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    at_ms: int | None = None
    comment_id: uuid.UUID | None = None
    note: str = ""


def create_collection(
    session: Session,
    principal: Principal,
    *,
    title: str,
    description: str = "",
    visibility: CollectionVisibility = CollectionVisibility.PRIVATE,
    team_ids: Sequence[uuid.UUID] = (),
    editor_ids: Sequence[uuid.UUID] = (),
    cover_video_id: uuid.UUID | None = None,
) -> Collection:
    authorize(principal, "collection.create")
    collection = Collection(
        org_id=principal.org_id,
        owner_id=principal.user_id,
        title=title,
        description=description,
        visibility=visibility,
    )
    session.add(collection)
    session.flush()
    _set_teams(session, collection, team_ids)
    if editor_ids:
        _set_editors(session, collection, editor_ids)
    if cover_video_id is not None:
        set_cover(session, principal, collection, cover_video_id)
    return collection


def update_collection(
    session: Session,
    principal: Principal,
    collection_id: uuid.UUID,
    *,
    changes: dict[str, Any],
    team_ids: Sequence[uuid.UUID] | None = None,
    editor_ids: Sequence[uuid.UUID] | None = None,
) -> Collection:
    collection = load_collection(session, principal, collection_id, "collection.update")
    cover = changes.pop("cover_video_id", ...)
    for key, value in changes.items():
        setattr(collection, key, value)
    if team_ids is not None:
        _set_teams(session, collection, team_ids)
    if editor_ids is not None:
        authorize(principal, "collection.manage_editors", collection)
        _set_editors(session, collection, editor_ids)
    if cover is not ...:
        set_cover(session, principal, collection, cover)
    collection.updated_at = utcnow()
    if collection.published_at is not None:
        _check_publishable(session, collection)
        if "visibility" in changes or team_ids is not None:
            _check_vouched(session, principal, collection)
    session.flush()
    return collection


def set_cover(
    session: Session, principal: Principal, collection: Collection, video_id: uuid.UUID | None
) -> None:
    """The cover is the poster of a video the curator sees (None: the first item's)."""
    if video_id is not None:
        load_video(session, principal, video_id)
    collection.cover_video_id = video_id


def publish(session: Session, principal: Principal, collection_id: uuid.UUID) -> Collection:
    """Its audience sees it, and the videos in it, from now on (again: no change)."""
    collection = load_collection(session, principal, collection_id, "collection.publish")
    _check_publishable(session, collection)
    _check_vouched(session, principal, collection)
    if collection.published_at is None:
        collection.published_at = utcnow()
        collection.updated_at = utcnow()
    session.flush()
    return collection


def unpublish(session: Session, principal: Principal, collection_id: uuid.UUID) -> Collection:
    """Its audience no longer sees it (nor its videos, unless they see them otherwise)."""
    collection = load_collection(session, principal, collection_id, "collection.publish")
    if collection.published_at is not None:
        collection.published_at = None
        collection.updated_at = utcnow()
    session.flush()
    return collection


def delete_collection(session: Session, principal: Principal, collection_id: uuid.UUID) -> None:
    """Gone for everyone; what it granted goes with it (assignments of it stay, and show it as
    unavailable)."""
    collection = load_collection(session, principal, collection_id, "collection.delete")
    collection.deleted_at = utcnow()
    collection.published_at = None
    session.flush()


def _check_vouched(session: Session, principal: Principal, collection: Collection) -> None:
    """Publishing lets the audience see the videos in it, so the one publishing (or widening
    its audience) vouches for each: an item of a video they do not see (one an editor added
    through a share since recalled, say) stops it, naming the items. Deleted and hidden
    videos grant nothing to anyone and do not stop it."""
    would_grant = select(Video.id).where(
        Video.org_id == collection.org_id,
        Video.deleted_at.is_(None),
        Video.hidden_at.is_(None),
    )
    unseen = session.scalars(
        select(CollectionItem.id).where(
            CollectionItem.org_id == collection.org_id,
            CollectionItem.collection_id == collection.id,
            CollectionItem.video_id.in_(would_grant),
            ~select(Video.id)
            .where(Video.id == CollectionItem.video_id, videos.visible(principal))
            .exists(),
        )
    ).all()
    if unseen:
        raise Conflict(
            "Some items are of videos you do not see: remove them, or ask who added them to "
            "publish.",
            code=ErrorCode.NOT_PUBLISHABLE,
            errors={"item_ids": [str(item) for item in unseen[:50]]},
        )


def _check_publishable(session: Session, collection: Collection) -> None:
    if collection.visibility is CollectionVisibility.ORGANISATION:
        return
    if collection.visibility is CollectionVisibility.TEAMS and session.scalar(
        select(CollectionTeam.team_id).where(CollectionTeam.collection_id == collection.id).limit(1)
    ):
        return
    raise Conflict(
        "Publish a collection for the organisation, or for teams (name at least one); a "
        "private one stays with its owner and editors.",
        code=ErrorCode.NOT_PUBLISHABLE,
    )


def _set_teams(session: Session, collection: Collection, team_ids: Sequence[uuid.UUID]) -> None:
    teams = unique(team_ids)
    if len(teams) > MAX_TEAMS:
        raise InvalidInput(errors={"team_ids": [f"At most {MAX_TEAMS} teams."]})
    if errors := unknown_ids(session, collection.org_id, [], teams):
        raise NotFound("Some teams do not exist.", errors=errors)
    session.execute(delete(CollectionTeam).where(CollectionTeam.collection_id == collection.id))
    session.add_all(
        CollectionTeam(org_id=collection.org_id, collection_id=collection.id, team_id=team_id)
        for team_id in teams
    )
    session.flush()


def _set_editors(session: Session, collection: Collection, user_ids: Sequence[uuid.UUID]) -> None:
    users = [u for u in unique(user_ids) if u != collection.owner_id]
    if len(users) > MAX_EDITORS:
        raise InvalidInput(errors={"editor_ids": [f"At most {MAX_EDITORS} editors."]})
    active = set(
        session.scalars(
            select(User.id).where(
                User.org_id == collection.org_id, User.id.in_(users), User.is_active.is_(True)
            )
        )
    )
    if missing := [str(u) for u in users if u not in active]:
        raise NotFound("Some editors are no active member.", errors={"editor_ids": missing[:20]})
    session.execute(delete(CollectionEditor).where(CollectionEditor.collection_id == collection.id))
    session.add_all(
        CollectionEditor(org_id=collection.org_id, collection_id=collection.id, user_id=user_id)
        for user_id in users
    )
    session.flush()


def editors_of(session: Session, collection: Collection) -> list[uuid.UUID]:
    return list(
        session.scalars(
            select(CollectionEditor.user_id)
            .where(CollectionEditor.collection_id == collection.id)
            .order_by(CollectionEditor.user_id)
        )
    )


def teams_of(session: Session, collection: Collection) -> list[uuid.UUID]:
    return list(
        session.scalars(
            select(CollectionTeam.team_id)
            .where(CollectionTeam.collection_id == collection.id)
            .order_by(CollectionTeam.team_id)
        )
    )


# -- items ----------------------------------------------------------------------------------------


def items_of(session: Session, collection: Collection) -> list[CollectionItem]:
    return list(
        session.scalars(
            select(CollectionItem)
            .where(
                CollectionItem.org_id == collection.org_id,
                CollectionItem.collection_id == collection.id,
            )
            .order_by(CollectionItem.position, CollectionItem.id)
        )
    )


def add_items(
    session: Session,
    principal: Principal,
    collection_id: uuid.UUID,
    items: Sequence[ItemInput],
    *,
    after_item_id: uuid.UUID | None = None,
    at_start: bool = False,
) -> list[CollectionItem]:
    """Add videos and clips (each of a video the curator sees), at the end, at the start, or
    after an item; returns the items added, in order."""
    collection = load_collection(session, principal, collection_id, "collection.update")
    if at_start and after_item_id is not None:
        raise InvalidInput(errors={"after_item_id": ["Either at_start or after an item."]})
    _lock(session, collection)
    current = items_of(session, collection)
    if after_item_id is not None and after_item_id not in {item.id for item in current}:
        raise InvalidInput(
            "Add after an item of this collection.",
            code=ErrorCode.NOT_IN_COLLECTION,
            errors={"after_item_id": [str(after_item_id)]},
        )
    if len(current) + len(items) > MAX_ITEMS:
        raise Conflict(
            f"A collection holds at most {MAX_ITEMS} items.", code=ErrorCode.COLLECTION_FULL
        )
    made: list[CollectionItem] = []
    for item in items:
        video_id, low, high, comment_id = _resolve(session, principal, item)
        row = CollectionItem(
            org_id=collection.org_id,
            collection_id=collection.id,
            position=len(current) + len(made),
            video_id=video_id,
            start_ms=low,
            end_ms=high,
            note=item.note,
            comment_id=comment_id,
            added_by=principal.user_id,
        )
        made.append(row)
    session.add_all(made)
    session.flush()
    if at_start or after_item_id is not None:
        _place(session, collection, current, made, None if at_start else after_item_id)
    _items_changed(session, collection)
    return made


def _resolve(
    session: Session, principal: Principal, item: ItemInput
) -> tuple[uuid.UUID, int | None, int | None, uuid.UUID | None]:
    """The video and range an item input names, checked against the video's duration."""
    named = [
        name
        for name, given in (
            ("comment_id", item.comment_id is not None),
            ("at_ms", item.at_ms is not None),
            ("start_ms", item.start_ms is not None or item.end_ms is not None),
        )
        if given
    ]
    if len(named) > 1:
        raise InvalidInput(
            "Name a clip one way: by start_ms and end_ms, by at_ms, or by comment_id.",
            errors={name: ["one of start_ms/end_ms, at_ms, comment_id"] for name in named},
        )
    if item.comment_id is not None:
        comment = load_comment(session, principal, item.comment_id)
        if comment.at_ms is None:
            raise InvalidInput(
                "The comment is on the whole video: make a clip from a moment or a range.",
                errors={"comment_id": ["a comment without a moment"]},
            )
        video = load_video(session, principal, comment.video_id)
        if comment.end_ms is not None:
            low, high = comment.at_ms, comment.end_ms
        else:
            low, high = _moment(video, comment.at_ms)
        return video.id, low, _fit(video, low, high), comment.id
    if item.video_id is None:
        raise InvalidInput(errors={"video_id": ["Name a video or a comment."]})
    video = load_video(session, principal, item.video_id)
    if item.at_ms is not None:
        low, high = _moment(video, item.at_ms)
        return video.id, low, _fit(video, low, high), None
    if item.start_ms is None and item.end_ms is None:
        return video.id, None, None, None
    low = item.start_ms or 0
    end = item.end_ms if item.end_ms is not None else video.duration_ms
    if end is None or end <= low:
        raise InvalidInput(
            "A clip ends after it starts.",
            code=ErrorCode.CLIP_OUT_OF_RANGE,
            errors={"end_ms": ["after start_ms"]},
        )
    return video.id, low, _fit(video, low, end, strict=True), None


def _moment(video: Video, at_ms: int) -> tuple[int, int]:
    low = max(0, at_ms - MOMENT_LEAD_MS)
    return low, min(low + MOMENT_MS, MAX_MS)


def _fit(video: Video, low: int, high: int, *, strict: bool = False) -> int:
    """The clip's end within the video (a moment's clip is cut at the end; a clip given by
    numbers must fit). A video whose duration is not known yet takes the clip as given."""
    duration = video.duration_ms
    if duration is None:
        return high
    if low >= duration or (strict and high > duration):
        raise InvalidInput(
            f"The video is {duration} ms long.",
            code=ErrorCode.CLIP_OUT_OF_RANGE,
            errors={"end_ms": [f"at most {duration}"]},
        )
    return min(high, duration)


def update_item(
    session: Session,
    principal: Principal,
    collection_id: uuid.UUID,
    item_id: uuid.UUID,
    changes: dict[str, Any],
) -> CollectionItem:
    """A new note, or a new range (`start_ms`/`end_ms`; both None: the whole video)."""
    collection = load_collection(session, principal, collection_id, "collection.update")
    item = _item(session, collection, item_id)
    if "note" in changes:
        item.note = changes["note"]
    if "start_ms" in changes or "end_ms" in changes:
        low = changes.get("start_ms", item.start_ms)
        high = changes.get("end_ms", item.end_ms)
        if low is None and high is None:
            item.start_ms = item.end_ms = None
        else:
            video = session.get(Video, item.video_id)
            assert video is not None
            _, start, end, _ = _resolve(
                session, principal, ItemInput(video_id=video.id, start_ms=low, end_ms=high)
            )
            item.start_ms, item.end_ms = start, end
        _items_changed(session, collection)
    else:
        collection.updated_at = utcnow()
        session.flush()
    return item


def remove_item(
    session: Session, principal: Principal, collection_id: uuid.UUID, item_id: uuid.UUID
) -> None:
    collection = load_collection(session, principal, collection_id, "collection.update")
    _lock(session, collection)
    item = _item(session, collection, item_id)
    session.delete(item)
    session.flush()
    _renumber(session, collection, [i.id for i in items_of(session, collection)])
    _items_changed(session, collection)


def _items_changed(session: Session, collection: Collection) -> None:
    collection.updated_at = utcnow()
    session.flush()
    events.publish(
        session,
        events.CollectionItemsChanged(org_id=collection.org_id, collection_id=collection.id),
    )


def move_items(
    session: Session,
    principal: Principal,
    collection_id: uuid.UUID,
    item_ids: Sequence[uuid.UUID],
    *,
    after_item_id: uuid.UUID | None,
) -> list[CollectionItem]:
    """Move a run of items (in the order given) to just after `after_item_id`, or to the start
    (None). Returns the collection's items in their new order."""
    collection = load_collection(session, principal, collection_id, "collection.update")
    _lock(session, collection)
    current = items_of(session, collection)
    by_id = {item.id: item for item in current}
    moving = unique(item_ids)
    if missing := [str(i) for i in [*moving, after_item_id] if i is not None and i not in by_id]:
        raise InvalidInput(
            "Move items of this collection.",
            code=ErrorCode.NOT_IN_COLLECTION,
            errors={"item_ids": missing[:20]},
        )
    if after_item_id in moving:
        raise InvalidInput(errors={"after_item_id": ["one of the items moved"]})
    _place(session, collection, current, [by_id[i] for i in moving], after_item_id)
    collection.updated_at = utcnow()
    session.flush()
    return items_of(session, collection)


def _place(
    session: Session,
    collection: Collection,
    current: Sequence[CollectionItem],
    run: Sequence[CollectionItem],
    after_item_id: uuid.UUID | None,
) -> None:
    moving = {item.id for item in run}
    rest = [item.id for item in current if item.id not in moving]
    at = 0 if after_item_id is None else rest.index(after_item_id) + 1
    _renumber(session, collection, [*rest[:at], *(item.id for item in run), *rest[at:]])


def _renumber(session: Session, collection: Collection, order: Sequence[uuid.UUID]) -> None:
    """Every item at its place in `order`, in one statement."""
    if not order:
        return
    session.execute(
        text(
            "UPDATE collection_items AS i SET position = o.n - 1 "
            "FROM unnest(CAST(:ids AS uuid[])) WITH ORDINALITY AS o(id, n) "
            "WHERE i.org_id = :org_id AND i.collection_id = :collection_id AND i.id = o.id"
        ),
        {"ids": list(order), "org_id": collection.org_id, "collection_id": collection.id},
    )
    session.expire_all()


def _lock(session: Session, collection: Collection) -> None:
    """One change of a collection's order at a time (two adds at once would take one place)."""
    session.execute(select(Collection.id).where(Collection.id == collection.id).with_for_update())


def _item(session: Session, collection: Collection, item_id: uuid.UUID) -> CollectionItem:
    item = session.scalar(
        select(CollectionItem).where(
            CollectionItem.org_id == collection.org_id,
            CollectionItem.collection_id == collection.id,
            CollectionItem.id == item_id,
        )
    )
    if item is None:
        raise NotFound(f"No item with id {item_id} in this collection.")
    return item


def item_counts(session: Session, collection_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    rows = session.execute(
        select(CollectionItem.collection_id, func.count())
        .where(CollectionItem.collection_id.in_(collection_ids))
        .group_by(CollectionItem.collection_id)
    ).all()
    return {row[0]: int(row[1]) for row in rows}
