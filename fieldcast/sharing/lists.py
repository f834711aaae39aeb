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
from fieldcast.errors import ErrorCode, InvalidInput, NotFound
from fieldcast.models.accounts import Team, User
from fieldcast.models.sharing import (
    DistributionList,
    DistributionListTeam,
    DistributionListUser,
    ListVisibility,
)
from fieldcast.policy import Principal, authorize, load_list
from fieldcast.policy import lists as list_policy
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


# What one share or assignment may name at once (larger audiences go in a list).
MAX_NAMED_USERS = 1_000
MAX_NAMED_TEAMS = 100
MAX_NAMED_LISTS = 20


@dataclass(frozen=True)
class Named:
    """The people, teams and lists a share or an assignment names, each once, checked."""

    user_ids: list[uuid.UUID]
    team_ids: list[uuid.UUID]
    list_ids: list[uuid.UUID]

    def as_json(self) -> dict[str, list[str]]:
        return {
            "user_ids": [str(u) for u in self.user_ids],
            "team_ids": [str(t) for t in self.team_ids],
            "list_ids": [str(x) for x in self.list_ids],
        }


def named(
    session: Session,
    principal: Principal,
    *,
    user_ids: Sequence[uuid.UUID],
    team_ids: Sequence[uuid.UUID],
    list_ids: Sequence[uuid.UUID],
    verb: str,
) -> Named:
    """The audience named, each id once: at least one; at most `MAX_NAMED_*` of each (422
    `audience_too_large`); every person and team of the organisation and every list the
    principal may use, else not found, as any object they may not see (`verb`: "share",
    "assign", for the messages)."""
    users, teams, lists = unique(user_ids), unique(team_ids), unique(list_ids)
    if not (users or teams or lists):
        raise InvalidInput(
            "Name at least one user, team or list.",
            errors={"user_ids": [f"name someone to {verb} to"]},
        )
    if len(users) > MAX_NAMED_USERS or len(teams) > MAX_NAMED_TEAMS or len(lists) > MAX_NAMED_LISTS:
        raise InvalidInput(
            f"Name at most {MAX_NAMED_USERS} users, {MAX_NAMED_TEAMS} teams and "
            f"{MAX_NAMED_LISTS} lists; put larger audiences in a list.",
            code=ErrorCode.AUDIENCE_TOO_LARGE,
        )
    errors = unknown_ids(session, principal.org_id, users, teams)
    if lists:
        usable = set(
            session.scalars(
                select(DistributionList.id).where(
                    list_policy.visible(principal), DistributionList.id.in_(lists)
                )
            ).all()
        )
        if missing := [str(x) for x in lists if x not in usable]:
            errors["list_ids"] = [f"no such list: {', '.join(missing[:20])}"]
    if errors:
        # Like any object the sender may not see: not found, be it missing, another
        # organisation's or someone else's private list.
        raise NotFound(
            f"Some people, teams or lists do not exist or are not yours to {verb} to.",
            errors=errors,
        )
    return Named(users, teams, lists)
