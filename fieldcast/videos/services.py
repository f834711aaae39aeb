"""Creating and reading videos. Who may see a video is decided here and in authz."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from fieldcast.accounts.authz import Principal, authorize, scoped
from fieldcast.accounts.models import Role
from fieldcast.accounts.services import clean_name
from fieldcast.errors import InvalidInput, NotFound
from fieldcast.sharing.models import ShareAudience, ShareRecipient
from fieldcast.videos.models import Video

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


def visible_videos(principal: Principal) -> Select[Any]:
    """The videos this principal may see: their own and those shared with them; every video of
    the organisation for admins."""
    stmt = scoped(principal, Video)
    if principal.has_role(Role.ADMIN):
        return stmt
    # A share's recipients have their rows once a worker has made them from its audience
    # blocks, moments after the share; until then the blocks give them access.
    received = select(ShareRecipient.video_id).where(
        ShareRecipient.user_id == principal.user_id, ShareRecipient.org_id == principal.org_id
    )
    pending = select(ShareAudience.video_id).where(
        ShareAudience.org_id == principal.org_id,
        ShareAudience.user_ids.contains([principal.user_id]),
    )
    return stmt.where(
        or_(Video.owner_id == principal.user_id, Video.id.in_(received), Video.id.in_(pending))
    )


def get_video(session: Session, principal: Principal, video_id: uuid.UUID) -> Video:
    video: Video | None = session.execute(
        visible_videos(principal).where(Video.id == video_id)
    ).scalar_one_or_none()
    if video is None:
        # Not visible and not existing look the same, so ids cannot be probed.
        raise NotFound(f"No video with id {video_id}.")
    authorize(principal, "video.read", video)
    return video


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
    video = get_video(session, principal, video_id)
    authorize(principal, "video.update", video)
    if "title" in changes:
        video.title = clean_name(changes["title"], "title")
    if "description" in changes:
        video.description = changes["description"].strip()
    if "deal_attributes" in changes:
        video.deal_attributes = clean_deal_attributes(changes["deal_attributes"])
    session.flush()
    return video
