"""Distribution lists: the people and teams someone names once, then shares with by name.

A list keeps its members as they were named, people and teams; who it reaches is resolved at
each share (`audience`), so the newcomers of a team and its sub-teams are in and people who
left are out.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from fieldcast.db import utcnow
from fieldcast.errors import InvalidInput
from fieldcast.models.accounts import Team, User
from fieldcast.models.sharing import (
    DistributionList,
    DistributionListTeam,
    DistributionListUser,
    ListVisibility,
)
from fieldcast.policy import Principal, authorize, load_list
from fieldcast.sharing.audience import audience

MAX_LIST_USERS = 20_000
MAX_LIST_TEAMS = 500


@dataclass(frozen=True)
class ListMembers:
    user_ids: list[uuid.UUID]
    team_ids: list[uuid.UUID]
    # Active people the list reaches now, teams resolved.
    recipient_count: int


def members(session: Session, dl: DistributionList) -> ListMembers:
    user_ids, team_ids = _member_ids(session, dl)
    count = session.scalar(
        select(func.count()).select_from(audience(dl.org_id, list_ids=[dl.id]).subquery())
    )
    return ListMembers(user_ids, team_ids, int(count or 0))


def _member_ids(session: Session, dl: DistributionList) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    user_ids = session.scalars(
        select(DistributionListUser.user_id)
        .where(DistributionListUser.list_id == dl.id)
        .order_by(DistributionListUser.user_id)
    ).all()
    team_ids = session.scalars(
        select(DistributionListTeam.team_id)
        .where(DistributionListTeam.list_id == dl.id)
        .order_by(DistributionListTeam.team_id)
    ).all()
    return list(user_ids), list(team_ids)


def create_list(
    session: Session,
    principal: Principal,
    *,
    name: str,
    description: str = "",
    visibility: ListVisibility = ListVisibility.PRIVATE,
    user_ids: Sequence[uuid.UUID] = (),
    team_ids: Sequence[uuid.UUID] = (),
) -> DistributionList:
    authorize(principal, "distribution_list.create")
    dl = DistributionList(
        org_id=principal.org_id,
        owner_id=principal.user_id,
        name=name,
        description=description,
        visibility=visibility,
    )
    session.add(dl)
    session.flush()
    _set_members(session, dl, user_ids, team_ids)
    session.flush()
    return dl


def update_list(
    session: Session,
    principal: Principal,
    list_id: uuid.UUID,
    *,
    changes: dict[str, Any],
    user_ids: Sequence[uuid.UUID] | None = None,
    team_ids: Sequence[uuid.UUID] | None = None,
) -> DistributionList:
    """Change name, description or visibility; `user_ids` / `team_ids` replace those members."""
    dl = load_list(session, principal, list_id, "distribution_list.update")
    for field_name in ("name", "description", "visibility"):
        if field_name in changes:
            setattr(dl, field_name, changes[field_name])
    if user_ids is not None or team_ids is not None:
        current_users, current_teams = _member_ids(session, dl)
        _set_members(
            session,
            dl,
            current_users if user_ids is None else user_ids,
            current_teams if team_ids is None else team_ids,
        )
    dl.updated_at = utcnow()
    session.flush()
    return dl


def delete_list(session: Session, principal: Principal, list_id: uuid.UUID) -> None:
    dl = load_list(session, principal, list_id, "distribution_list.delete")
    session.delete(dl)
    session.flush()


def _set_members(
    session: Session,
    dl: DistributionList,
    user_ids: Sequence[uuid.UUID],
    team_ids: Sequence[uuid.UUID],
) -> None:
    users, teams = unique(user_ids), unique(team_ids)
    if len(users) > MAX_LIST_USERS or len(teams) > MAX_LIST_TEAMS:
        raise InvalidInput(
            f"A list holds at most {MAX_LIST_USERS} people and {MAX_LIST_TEAMS} teams.",
            errors={"user_ids": ["too many"]}
            if len(users) > MAX_LIST_USERS
            else {"team_ids": ["too many"]},
        )
    _check_ids(session, dl.org_id, users, teams)
    session.execute(delete(DistributionListUser).where(DistributionListUser.list_id == dl.id))
    session.execute(delete(DistributionListTeam).where(DistributionListTeam.list_id == dl.id))
    if users:
        session.execute(
            insert(DistributionListUser),
            [{"org_id": dl.org_id, "list_id": dl.id, "user_id": u} for u in users],
        )
    if teams:
        session.execute(
            insert(DistributionListTeam),
            [{"org_id": dl.org_id, "list_id": dl.id, "team_id": t} for t in teams],
        )


def unique(ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    return list(dict.fromkeys(ids))


def _check_ids(
    session: Session,
    org_id: uuid.UUID,
    user_ids: Sequence[uuid.UUID],
    team_ids: Sequence[uuid.UUID],
) -> None:
    """Every id names a member or team of the organisation; others are named in the error."""
    if errors := unknown_ids(session, org_id, user_ids, team_ids):
        raise InvalidInput("Some ids name nobody in your organisation.", errors=errors)


def unknown_ids(
    session: Session,
    org_id: uuid.UUID,
    user_ids: Sequence[uuid.UUID],
    team_ids: Sequence[uuid.UUID],
) -> dict[str, list[str]]:
    """Field errors naming the ids that are no member or team of the organisation."""
    errors: dict[str, list[str]] = {}
    if user_ids:
        found = set(
            session.scalars(
                select(User.id).where(User.org_id == org_id, User.id.in_(user_ids))
            ).all()
        )
        if missing := [str(u) for u in user_ids if u not in found]:
            errors["user_ids"] = [f"no such user: {', '.join(missing[:20])}"]
    if team_ids:
        found = set(
            session.scalars(
                select(Team.id).where(Team.org_id == org_id, Team.id.in_(team_ids))
            ).all()
        )
        if missing := [str(t) for t in team_ids if t not in found]:
            errors["team_ids"] = [f"no such team: {', '.join(missing[:20])}"]
    return errors
