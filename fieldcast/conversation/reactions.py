"""Reactions: an emoji of a fixed set at a point of a video's timeline.

The set is small on purpose (Loom's and Cap's are): a marker on the scrub bar must read at a
glance, and a fixed set is what apps draw without downloading anything. Each member has a
stable `name` too, for clients that prefer to send and show names. An emoji is matched with or
without its variation selector (U+FE0F), which keyboards add or leave out.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, delete, literal_column, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from fieldcast import policy
from fieldcast.conversation.comments import check_time
from fieldcast.errors import ErrorCode, InvalidInput, NotFound
from fieldcast.models.conversation import Reaction
from fieldcast.models.videos import Video
from fieldcast.policy import Principal


@dataclass(frozen=True)
class Emoji:
    emoji: str
    name: str


# The set, in the order apps show it. Values are part of the API: never change one, only add.
EMOJI: tuple[Emoji, ...] = (
    Emoji("👍", "thumbs_up"),
    Emoji("❤️", "heart"),
    Emoji("🔥", "fire"),
    Emoji("👏", "clap"),
    Emoji("😂", "laugh"),
    Emoji("😮", "wow"),
    Emoji("💡", "idea"),
    Emoji("🎯", "on_target"),
    Emoji("❓", "question"),
    Emoji("✅", "check"),
)
_VS16 = "\ufe0f"
_BY_KEY = {e.emoji.replace(_VS16, ""): e for e in EMOJI} | {e.name: e for e in EMOJI}


def emoji_of(value: str) -> Emoji:
    """The set's emoji for `value` (the emoji, with or without U+FE0F, or its name)."""
    found = _BY_KEY.get(value.replace(_VS16, "").strip())
    if found is None:
        raise InvalidInput(
            "That emoji is not one of the reaction set.",
            code=ErrorCode.UNKNOWN_EMOJI,
            errors={"emoji": ["Not in the reaction set (GET /api/v1/reactions)."]},
        )
    return found


def react(
    session: Session, principal: Principal, video_id: uuid.UUID, *, emoji: str, at_ms: int
) -> tuple[Reaction, bool]:
    """Put an emoji at a point of a video the principal sees. The same emoji at the same
    point again is the same reaction (returned, `False`: not made now)."""
    video = policy.load_video(session, principal, video_id, "video.react")
    chosen = emoji_of(emoji)
    check_time(video, at_ms, None, what="reaction")
    values = {
        "org_id": principal.org_id,
        "video_id": video.id,
        "user_id": principal.user_id,
        "emoji": chosen.emoji,
        "at_ms": at_ms,
    }
    # An upsert that changes nothing of an existing row still returns it, even when another
    # request takes it back meanwhile; `xmax = 0` tells a row inserted now.
    stmt = insert(Reaction).values(**values)
    row: Any = session.execute(
        stmt.on_conflict_do_update(
            index_elements=["video_id", "user_id", "emoji", "at_ms"],
            set_={"at_ms": stmt.excluded.at_ms},
        ).returning(Reaction.id, literal_column("xmax = 0").label("made"))
    ).one()
    reaction = session.get_one(Reaction, row.id)
    return reaction, bool(row.made)


def of_video(video: Video) -> Select[Any]:
    """A video's reactions, for its markers (the caller pages them by time)."""
    return select(Reaction).where(Reaction.org_id == video.org_id, Reaction.video_id == video.id)


def remove(
    session: Session, principal: Principal, video_id: uuid.UUID, reaction_id: uuid.UUID
) -> None:
    """Take back one of your reactions on a video you see (only your own)."""
    video = policy.load_video(session, principal, video_id, "video.react")
    removed = session.execute(
        delete(Reaction)
        .where(
            Reaction.org_id == principal.org_id,
            Reaction.video_id == video.id,
            Reaction.id == reaction_id,
            Reaction.user_id == principal.user_id,
        )
        .returning(Reaction.id)
    ).scalar_one_or_none()
    if removed is None:
        raise NotFound(f"No reaction of yours with id {reaction_id}.")
