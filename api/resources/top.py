"""Top lists: the videos and clips of the organisation people engage with most lately, for the
organisation, a team or a deal attribute's value ("top clips against Acme"), each with why."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, Schema
from api.fields import String
from api.resources.clips import ClipSchema, present_clips
from api.runtime import db_session
from fieldcast.curation import top

blp = Blueprint(
    "top",
    __name__,
    url_prefix="/api/v1",
    description=(
        "Top lists of videos and clips, ranked by a worker every 15 minutes from the last 90 "
        "days of engagement (completions among viewers, reactions, comments, votes, accepted "
        "answers, shares, curation), recent acts counting more (half-life 14 days), and small "
        "counts ranking low (a lower confidence bound of the completion rate). One list for "
        "the organisation, one per team (videos recorded by its members and its sub-teams'), "
        "one per deal attribute value (`attribute=competitors:Acme`). Entries you may not "
        f"see are left out; a list holds at most {top.TOP_N}."
    ),
)

_LIMIT = top.TOP_N
# A name, a colon, a value: at most what a board's name holds.
_ATTRIBUTE_MAX = top.BOARD_MAX


def _attribute(value: str) -> tuple[str, str]:
    name, sep, held = value.partition(":")
    if not sep or not name.strip() or not held.strip():
        raise ma.ValidationError("Write name:value, as `competitors:Acme`.")
    return name.strip(), held.strip()


class TopArgsSchema(Schema):
    team_id = ma.fields.UUID(
        load_default=None,
        metadata={"description": "A team's list: videos recorded by its members (and sub-teams')"},
    )
    attribute = String(
        load_default=None,
        max_length=_ATTRIBUTE_MAX,
        metadata={"description": "A deal attribute value's list, `name:value` (`industry:retail`)"},
    )
    limit = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=_LIMIT))

    @ma.post_load
    def _split(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if data["attribute"] is not None:
            try:
                data["attribute"] = _attribute(data["attribute"])
            except ma.ValidationError as exc:
                raise ma.ValidationError({"attribute": exc.messages}) from None
        return data


class TopReasonsSchema(Schema):
    viewers = ma.fields.Integer(metadata={"description": "People who played it lately"})
    completions = ma.fields.Integer(metadata={"description": "Of them, those who finished it"})
    completion_lower_bound = ma.fields.Float(
        metadata={"description": "The completion rate it has at least (Wilson, 95 %)"}
    )
    reactions = ma.fields.Integer(metadata={"description": "People who reacted (in its range)"})
    comments = ma.fields.Integer(metadata={"description": "People who commented (in its range)"})
    votes = ma.fields.Integer(metadata={"description": "Likes of its comments, votes as answer"})
    accepted_answers = ma.fields.Integer()
    shares = ma.fields.Integer(metadata={"description": "People who shared it"})
    curation = ma.fields.Integer(
        metadata={"description": "Curators who put it in a published collection or featured it"}
    )
    engagement = ma.fields.Float(
        metadata={"description": "The weighted acts, each halved every 14 days of age"}
    )
    decay = ma.fields.Float(
        metadata={"description": "`engagement` over the same acts counted fresh (1: all new)"}
    )


class TopEntrySchema(Schema):
    rank = ma.fields.Integer(metadata={"description": "Its place in the list as you see it"})
    score = ma.fields.Float()
    clip = ma.fields.Nested(ClipSchema)
    reasons = ma.fields.Nested(TopReasonsSchema)


class TopBoardSchema(Schema):
    board = ma.fields.String(
        metadata={"description": "`organisation`, `team:<id>` or `attribute:<name>=<value>`"}
    )
    computed_at = ma.fields.DateTime(
        allow_none=True,
        metadata={"description": "When the lists were last ranked; null: nothing ranked yet"},
    )
    entries = ma.fields.List(ma.fields.Nested(TopEntrySchema))


@blp.route("/top")
class Top(MethodView):
    @blp.arguments(TopArgsSchema, location="query")
    @blp.response(200, TopBoardSchema)
    @blp.problems(404, 422)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The top videos and clips you may see: of the organisation, a team or an attribute
        value, best first, each with why it ranks"""
        session, principal = db_session(), current_principal()
        name = top.board_for(
            session, principal, team_id=args["team_id"], attribute=args["attribute"]
        )
        board = top.read(session, principal, name)
        # One query asks the policy which of the board's videos the caller may see; the others
        # are skipped (not shown as unavailable), and `rank` counts what is shown.
        clips = present_clips([(e.video_id, e.start_ms, e.end_ms) for e in board.entries])
        shown = [
            (entry, clip)
            for entry, clip in zip(board.entries, clips, strict=True)
            if clip["available"]
        ][: args["limit"]]
        return {
            "board": board.name,
            "computed_at": board.computed_at,
            "entries": [
                {
                    "rank": place,
                    "score": round(entry.score, 4),
                    "clip": clip,
                    "reasons": top.reasons_of(entry),
                }
                for place, (entry, clip) in enumerate(shown, start=1)
            ],
        }
