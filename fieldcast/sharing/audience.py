"""Who a share reaches: the users named, the members of the teams named and of their
sub-teams, and the people and teams of the lists named, as they are now.

One SQL statement, deduplicated, active people of the organisation only, to be used inside
another: a share stores it in the request's transaction (`shares`), a list counts its reach
with it (`lists`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, Subquery, Table, func, literal, or_, select, union
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from fieldcast.models.accounts import Team, TeamMembership, User
from fieldcast.models.sharing import AUDIENCE_BLOCK, DistributionListTeam, DistributionListUser


def audience(
    org_id: uuid.UUID,
    *,
    user_ids: Sequence[uuid.UUID] = (),
    team_ids: Sequence[uuid.UUID] = (),
    list_ids: Sequence[uuid.UUID] = (),
) -> Select[Any]:
    """The distinct active users reached: the users named, the members of the teams named and of
    their sub-teams, and the people and teams of the lists named, as they are now."""
    listed_teams = select(DistributionListTeam.team_id).where(
        DistributionListTeam.org_id == org_id,
        DistributionListTeam.list_id.in_(list(list_ids) or [_NONE]),
    )
    teams = (
        select(Team.id.label("team_id"))
        .where(
            Team.org_id == org_id,
            or_(Team.id.in_(list(team_ids) or [_NONE]), Team.id.in_(listed_teams)),
        )
        .cte("audience_teams", recursive=True)
    )
    teams = teams.union(
        select(Team.id).where(Team.org_id == org_id, Team.parent_id == teams.c.team_id)
    )
    people = union(
        select(User.id.label("user_id")).where(
            User.org_id == org_id, User.id.in_(list(user_ids) or [_NONE])
        ),
        select(DistributionListUser.user_id).where(
            DistributionListUser.org_id == org_id,
            DistributionListUser.list_id.in_(list(list_ids) or [_NONE]),
        ),
        select(TeamMembership.user_id).where(
            TeamMembership.org_id == org_id, TeamMembership.team_id.in_(select(teams.c.team_id))
        ),
    ).subquery("audience_people")
    return select(User.id).where(
        User.org_id == org_id, User.is_active.is_(True), User.id.in_(select(people.c.user_id))
    )


# An id that names nothing, so an empty IN list stays valid SQL and cheap to plan.
_NONE = uuid.UUID(int=0)


def insert_blocks(session: Session, table: Table, fixed: dict[str, Any], people: Subquery) -> int:
    """Store the people of `people` (a subquery with an `id` column) in `table` as blocks of
    up to `AUDIENCE_BLOCK` user ids (`block`, `user_ids`), each row with the `fixed` columns:
    a few rows whatever the audience, in one statement. Returns how many people."""
    numbered = select(people.c.id.label("user_id"), func.row_number().over().label("n")).subquery()
    block = ((numbered.c.n - 1) // AUDIENCE_BLOCK).label("block")
    inserted = (
        pg_insert(table)
        .from_select(
            [*fixed, "block", "user_ids"],
            select(
                *(literal(value) for value in fixed.values()),
                block,
                func.array_agg(numbered.c.user_id),
            ).group_by(block),
        )
        .returning(func.cardinality(table.c.user_ids).label("people"))
        .cte("inserted")
    )
    return int(session.scalar(select(func.sum(inserted.c.people))) or 0)
