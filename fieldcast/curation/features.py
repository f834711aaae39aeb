"""Features: the videos, clips and collections curators put forward, for the organisation or
for a team. A feature does not grant access: someone who cannot see what it names finds it
among the featured as unavailable (`available: false`), never as an error."""

from __future__ import annotations

import uuid

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from fieldcast.curation.collections import ItemInput, _resolve
from fieldcast.errors import Conflict, ErrorCode, InvalidInput, NotFound
from fieldcast.models.accounts import Role, Team
from fieldcast.models.curation import Feature
from fieldcast.policy import Principal, authorize, load_collection, teams_of

# Featured entries per organisation or team.
MAX_FEATURES = 100


def feature(
    session: Session,
    principal: Principal,
    *,
    team_id: uuid.UUID | None = None,
    video_id: uuid.UUID | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    collection_id: uuid.UUID | None = None,
    note: str = "",
) -> Feature:
    """Put a video, a clip or a collection the curator sees forward, for the organisation
    (no team) or a team."""
    authorize(principal, "feature.manage")
    if (video_id is None) == (collection_id is None):
        raise InvalidInput(errors={"video_id": ["Name a video (or clip) or a collection."]})
    if team_id is not None and not session.scalar(
        select(Team.id).where(Team.org_id == principal.org_id, Team.id == team_id)
    ):
        raise NotFound(f"No team with id {team_id}.")
    count = session.scalar(
        select(func.count())
        .select_from(Feature)
        .where(
            Feature.org_id == principal.org_id,
            Feature.team_id == team_id if team_id else Feature.team_id.is_(None),
        )
    )
    if (count or 0) >= MAX_FEATURES:
        raise Conflict(
            f"At most {MAX_FEATURES} featured entries; remove one first.",
            code=ErrorCode.COLLECTION_FULL,
        )
    low = high = None
    if collection_id is not None:
        if start_ms is not None or end_ms is not None:
            raise InvalidInput(errors={"start_ms": ["A collection is featured whole."]})
        load_collection(session, principal, collection_id)
    else:
        video_id, low, high, _ = _resolve(
            session, principal, ItemInput(video_id=video_id, start_ms=start_ms, end_ms=end_ms)
        )
    made = Feature(
        org_id=principal.org_id,
        team_id=team_id,
        video_id=video_id,
        start_ms=low,
        end_ms=high,
        collection_id=collection_id,
        note=note,
        featured_by=principal.user_id,
    )
    session.add(made)
    session.flush()
    return made


def unfeature(session: Session, principal: Principal, feature_id: uuid.UUID) -> None:
    authorize(principal, "feature.manage")
    found = session.scalar(
        select(Feature).where(Feature.org_id == principal.org_id, Feature.id == feature_id)
    )
    if found is None:
        raise NotFound(f"No featured entry with id {feature_id}.")
    session.delete(found)
    session.flush()


def featured_for(
    session: Session, principal: Principal, *, team_id: uuid.UUID | None = None
) -> list[Feature]:
    """What is featured for the principal, newest first: for the organisation and for their
    teams (and the teams above them); or, with `team_id`, for that team alone."""
    authorize(principal, "feature.list")
    mine = teams_of(principal)
    if team_id is None:
        scope = or_(Feature.team_id.is_(None), Feature.team_id.in_(mine))
    elif principal.has_role(Role.ADMIN, Role.ENABLEMENT, Role.MANAGER):
        scope = Feature.team_id == team_id  # curators see (and keep) every team's
    else:
        # Another team's features are its own: a member sees those of their teams.
        scope = and_(Feature.team_id == team_id, Feature.team_id.in_(mine))
    return list(
        session.scalars(
            select(Feature)
            .where(Feature.org_id == principal.org_id, scope)
            .order_by(Feature.created_at.desc(), Feature.id)
            .limit(MAX_FEATURES * 2)
        )
    )
