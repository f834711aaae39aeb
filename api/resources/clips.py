"""What curation points at, presented alike everywhere (collection items, featured entries,
top lists, assignments): a video or a clip of it, for the person asking. Something they cannot
see (deleted, hidden, or never theirs to see) is `available: false` with no video, never an
error and never a hint of what it was."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import marshmallow as ma
from sqlalchemy import select

from api.auth import current_principal
from api.extensions import Schema
from api.resources.playback import playback_urls
from api.runtime import context, db_session
from fieldcast import links, policy
from fieldcast.curation import collections
from fieldcast.models.curation import Collection
from fieldcast.models.videos import Video, VideoKind, VideoStatus
from fieldcast.videos import services as videos


class ClipVideoSchema(Schema):
    id = ma.fields.UUID()
    title = ma.fields.String()
    status = ma.fields.Enum(VideoStatus, by_value=True)
    kind = ma.fields.Enum(VideoKind, by_value=True)
    duration_ms = ma.fields.Integer(allow_none=True)
    poster_url = ma.fields.String(allow_none=True)


class ClipSchema(Schema):
    available = ma.fields.Boolean(
        metadata={"description": "False when the video was removed or is not yours to see"}
    )
    video = ma.fields.Nested(ClipVideoSchema, allow_none=True)
    start_ms = ma.fields.Integer(
        allow_none=True, metadata={"description": "A clip's start; null for the whole video"}
    )
    end_ms = ma.fields.Integer(allow_none=True, metadata={"description": "A clip's end"})
    link = ma.fields.String(
        allow_none=True,
        metadata={"description": "Opens the player at the clip's range (`t` to `end`, in ms)"},
    )


class CollectionRefSchema(Schema):
    available = ma.fields.Boolean(
        metadata={"description": "False when it was deleted or is not yours to see"}
    )
    id = ma.fields.UUID(allow_none=True)
    title = ma.fields.String(allow_none=True)
    item_count = ma.fields.Integer(allow_none=True)


def present_collections(
    ids: set[uuid.UUID], *, assigned: bool = False
) -> dict[uuid.UUID, dict[str, Any]]:
    """Each collection named, as the principal sees it (`CollectionRefSchema`; unavailable,
    with nothing of it, when they may not), in two queries. `assigned`: the collections are
    assigned to the principal by assignments standing for them
    (`policy.collections.among_assigned`)."""
    if not ids:
        return {}
    session, principal = db_session(), current_principal()
    rule = policy.collections.among_assigned if assigned else policy.collections.visible
    seen = {
        c.id: c
        for c in session.scalars(select(Collection).where(Collection.id.in_(ids), rule(principal)))
    }
    counted = collections.item_counts(session, list(seen))
    return {
        cid: (
            {
                "available": True,
                "id": cid,
                "title": seen[cid].title,
                "item_count": counted.get(cid, 0),
            }
            if cid in seen
            else {"available": False, "id": None, "title": None, "item_count": None}
        )
        for cid in ids
    }


Subject = tuple[uuid.UUID, int | None, int | None]


def present_clips(subjects: Sequence[Subject], *, assigned: bool = False) -> list[dict[str, Any]]:
    """One `ClipSchema` value per (video_id, start_ms, end_ms), in order, in two queries.
    `assigned`: the videos are assigned to the principal by assignments standing for them
    (`policy.videos.among_assigned`)."""
    session, principal, settings = db_session(), current_principal(), context().settings
    ids = {video_id for video_id, _, _ in subjects}
    rule = policy.videos.among_assigned if assigned else policy.videos.visible
    seen = (
        {
            video.id: video
            for video in session.scalars(select(Video).where(Video.id.in_(ids), rule(principal)))
        }
        if ids
        else {}
    )
    renditions = videos.renditions_of(session, list(seen.values()))
    # A video in many entries (clips of it, assignments of it) is signed and summed up once.
    summaries: dict[uuid.UUID, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for video_id, start_ms, end_ms in subjects:
        video = seen.get(video_id)
        if video is not None and video_id not in summaries:
            summaries[video_id] = {
                "id": video.id,
                "title": video.title,
                "status": video.status,
                "kind": video.kind,
                "duration_ms": video.duration_ms,
                "poster_url": playback_urls(video, renditions.get(video.id, []))["poster_url"],
            }
        if video is None:
            out.append(
                {
                    "available": False,
                    "video": None,
                    "start_ms": start_ms,
                    "end_ms": end_ms,
                    "link": None,
                }
            )
            continue
        out.append(
            {
                "available": True,
                "video": summaries[video_id],
                "start_ms": start_ms,
                "end_ms": end_ms,
                "link": links.video_link(settings, video.id, at_ms=start_ms, end_ms=end_ms),
            }
        )
    return out
