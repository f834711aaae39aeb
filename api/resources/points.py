"""Points and badges: your points, a person's badges, the boards, the organisation's switch."""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, Schema
from api.fields import String
from api.pagination import offset_cursor, offset_of
from api.runtime import db_session
from fieldcast.models.points import PointKind, PointPeriod
from fieldcast.points import boards
from fieldcast.points.rules import BADGES, RULES

_RULES_TEXT = "; ".join(
    f"`{kind.value}` {rule.points} points, at most {rule.daily_cap} a day"
    for kind, rule in RULES.items()
)
_BADGES_TEXT = "; ".join(f"`{badge.name}`: {badge.description}" for badge in BADGES)

blp = Blueprint(
    "points",
    __name__,
    url_prefix="/api/v1",
    description=(
        "Points for what builds the library: a video of yours someone else completes, an "
        "answer of yours the asker accepts, a comment of yours someone else likes, an "
        f"assignment you complete by its due date ({_RULES_TEXT}; caps per person and UTC "
        "day). Nothing for reacting to yourself. Each award is counted once, however often "
        "its event comes; a like taken back, or an acceptance withdrawn or moved to another "
        "answer, takes its points back (given again, they count again). Badges, once earned, "
        f"are kept: {_BADGES_TEXT}.\n\n"
        "Boards rank the people with points in the current week (from Monday), month, quarter "
        "(UTC) or all time, for the organisation or a team's members; every member sees them. "
        "An admin may switch points off for the organisation (`PUT /points/settings`): then "
        "nothing is awarded or taken back, and every read answers `enabled: false` with "
        "nothing else; switched on again, what was earned before shows again. "
        "docs/points.md has the rules."
    ),
)

# The most places one page of a board holds.
MAX_PAGE = 100


class BadgeSchema(Schema):
    name = ma.fields.String(metadata={"description": "Stable: one of the badges above"})
    title = ma.fields.String()
    description = ma.fields.String(metadata={"description": "What earns it"})
    earned_at = ma.fields.DateTime()


class MyPointsSchema(Schema):
    enabled = ma.fields.Boolean(
        metadata={"description": "False: the organisation switched points off (nothing else)"}
    )
    totals = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.OneOf([p.value for p in PointPeriod])),
        values=ma.fields.Integer(),
        metadata={"description": "Points in the current week, month, quarter, and all time"},
    )
    by_kind = ma.fields.Dict(
        keys=ma.fields.String(validate=ma.validate.OneOf([k.value for k in PointKind])),
        values=ma.fields.Integer(),
        metadata={"description": "All-time points per kind of award"},
    )
    badges = ma.fields.List(ma.fields.Nested(BadgeSchema))


class BadgesSchema(Schema):
    enabled = ma.fields.Boolean()
    items = ma.fields.List(ma.fields.Nested(BadgeSchema))


class BoardArgsSchema(Schema):
    period = ma.fields.Enum(
        PointPeriod,
        by_value=True,
        load_default=PointPeriod.WEEK,
        metadata={"description": "The current week (the default), month, quarter, or all time"},
    )
    team_id = ma.fields.UUID(
        load_default=None, metadata={"description": "A team's board: its members only"}
    )
    limit = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=MAX_PAGE))
    cursor = String(
        load_default=None, max_length=64, metadata={"description": "`next_cursor` of the last page"}
    )


class StandingSchema(Schema):
    rank = ma.fields.Integer(metadata={"description": "1 for the most points; equal points share"})
    user_id = ma.fields.UUID()
    display_name = ma.fields.String()
    handle = ma.fields.String()
    points = ma.fields.Integer()


class BoardSchema(Schema):
    enabled = ma.fields.Boolean()
    period = ma.fields.Enum(PointPeriod, by_value=True)
    starts_on = ma.fields.Date(
        allow_none=True, metadata={"description": "The period's first day (UTC)"}
    )
    team_id = ma.fields.UUID(allow_none=True)
    total = ma.fields.Integer(metadata={"description": "People on the board"})
    items = ma.fields.List(ma.fields.Nested(StandingSchema))
    next_cursor = ma.fields.String(allow_none=True)
    me = ma.fields.Nested(
        StandingSchema, allow_none=True, metadata={"description": "You; null without points"}
    )


class PointsSettingsSchema(Schema):
    enabled = ma.fields.Boolean(
        required=True, metadata={"description": "The organisation awards and shows points"}
    )


def _badge(badge: boards.EarnedBadge) -> dict[str, Any]:
    return {
        "name": badge.name,
        "title": badge.title,
        "description": badge.description,
        "earned_at": badge.earned_at,
    }


def _standing(standing: boards.Standing) -> dict[str, Any]:
    return {
        "rank": standing.rank,
        "user_id": standing.user_id,
        "display_name": standing.display_name,
        "handle": standing.handle,
        "points": standing.points,
    }


@blp.route("/me/points")
class MyPoints(MethodView):
    @blp.response(200, MyPointsSchema)
    def get(self) -> dict[str, Any]:
        """Your points (this week, month, quarter, all time; by kind) and your badges"""
        found = boards.mine(db_session(), current_principal())
        if not found.enabled:
            return {"enabled": False}
        return {
            "enabled": True,
            "totals": found.totals,
            "by_kind": found.by_kind,
            "badges": [_badge(b) for b in found.badges],
        }


@blp.route("/users/<uuid:user_id>/badges")
class UserBadges(MethodView):
    @blp.response(200, BadgesSchema)
    @blp.problems(404)
    def get(self, user_id: uuid.UUID) -> dict[str, Any]:
        """A person's badges (of your organisation)"""
        on, found = boards.badges_of(db_session(), current_principal(), user_id)
        return {"enabled": on, "items": [_badge(b) for b in found]}


@blp.route("/leaderboards")
class Leaderboards(MethodView):
    @blp.arguments(BoardArgsSchema, location="query")
    @blp.response(200, BoardSchema)
    @blp.problems(404, 422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The board of the organisation, or of a team, for the current period

        The people with points in the period, most first; equal points share a rank."""
        offset = offset_of(args["cursor"], below=boards.MAX_BOARD)
        found = boards.board(
            db_session(),
            current_principal(),
            period=args["period"],
            team_id=args["team_id"],
            offset=offset,
            limit=args["limit"],
        )
        more = offset + len(found.items) < found.total
        return {
            "enabled": found.enabled,
            "period": found.period,
            "starts_on": found.starts_on,
            "team_id": found.team_id,
            "total": found.total,
            "items": [_standing(s) for s in found.items],
            "next_cursor": offset_cursor(offset + len(found.items)) if more else None,
            "me": _standing(found.me) if found.me else None,
        }


@blp.route("/points/settings")
class PointsSettings(MethodView):
    @blp.response(200, PointsSettingsSchema)
    def get(self) -> dict[str, Any]:
        """Whether the organisation awards and shows points"""
        return {"enabled": boards.settings_of(db_session(), current_principal())}

    @blp.arguments(PointsSettingsSchema)
    @blp.response(200, PointsSettingsSchema)
    @blp.problems(403, 422)
    def put(self, body: dict[str, Any]) -> dict[str, Any]:
        """Switch points on or off for the organisation (admins)

        Off: nothing is awarded or taken back and every read says `enabled: false`; what was
        earned is kept and shows again when they are switched on (nothing is awarded for what
        happened meanwhile)."""
        return {"enabled": boards.set_enabled(db_session(), current_principal(), body["enabled"])}
