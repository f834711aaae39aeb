"""Creating and editing videos. Who may see a video is decided by `fieldcast.policy`."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fieldcast.accounts.services import clean_name
from fieldcast.errors import InvalidInput
from fieldcast.models.videos import Rendition, Video
from fieldcast.policy import Principal, authorize, load_video

MAX_DEAL_ATTRIBUTES = 20
MAX_ATTRIBUTE_NAME = 64
MAX_ATTRIBUTE_VALUE = 200


def clean_deal_attributes(attributes: dict[str, Any]) -> dict[str, str]:
    """Deal attributes are a flat map of short names to short text values."""
    if len(attributes) > MAX_DEAL_ATTRIBUTES:
        raise InvalidInput(
            errors={"deal_attributes": [f"At most {MAX_DEAL_ATTRIBUTES} attributes."]}
        )
    cleaned: dict[str, str] = {}
    for name, value in attributes.items():
        key = " ".join(str(name).split()).lower()
        if not key or len(key) > MAX_ATTRIBUTE_NAME:
            raise InvalidInput(
                errors={"deal_attributes": [f"Names are 1-{MAX_ATTRIBUTE_NAME} characters."]}
            )
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise InvalidInput(errors={"deal_attributes": [f"{key!r}: values are text."]})
        text = " ".join(str(value).split())
        if not text or len(text) > MAX_ATTRIBUTE_VALUE:
            raise InvalidInput(
                errors={
                    "deal_attributes": [f"{key!r}: values are 1-{MAX_ATTRIBUTE_VALUE} characters."]
                }
            )
        cleaned[key] = text
    return cleaned


def create_video(
    session: Session,
    principal: Principal,
    *,
    title: str,
    description: str = "",
    deal_attributes: dict[str, Any] | None = None,
) -> Video:
    authorize(principal, "video.create")
    video = Video(
        org_id=principal.org_id,
        owner_id=principal.user_id,
        title=clean_name(title, "title"),
        description=description.strip(),
        deal_attributes=clean_deal_attributes(deal_attributes or {}),
    )
    session.add(video)
    session.flush()
    return video


def update_video(
    session: Session, principal: Principal, video_id: uuid.UUID, changes: dict[str, Any]
) -> Video:
    video = load_video(session, principal, video_id, "video.update")
    if "title" in changes:
        video.title = clean_name(changes["title"], "title")
    if "description" in changes:
        video.description = changes["description"].strip()
    if "deal_attributes" in changes:
        video.deal_attributes = clean_deal_attributes(changes["deal_attributes"])
    session.flush()
    return video


def renditions_of(session: Session, videos: Sequence[Video]) -> dict[uuid.UUID, list[Rendition]]:
    """The renditions of videos already loaded (a page of them), in one query."""
    found: dict[uuid.UUID, list[Rendition]] = {video.id: [] for video in videos}
    if found:
        for rendition in session.scalars(select(Rendition).where(Rendition.video_id.in_(found))):
            found[rendition.video_id].append(rendition)
    return found


def current_rendition(
    session: Session, video_id: uuid.UUID, name: str
) -> tuple[Video, Rendition] | None:
    """A video with its rendition `name` made from its current source, or None.

    No principal: the media routes check a signed URL, which was handed only to a viewer
    allowed to see the video.
    """
    row = session.execute(
        select(Video, Rendition)
        .join(Rendition, (Rendition.video_id == Video.id) & (Rendition.org_id == Video.org_id))
        .where(
            Video.id == video_id,
            Rendition.name == name,
            Rendition.source_version == Video.source_version,
        )
    ).one_or_none()
    return (row[0], row[1]) if row else None
