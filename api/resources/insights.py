"""Viewer insights (per video, share and team) and learning metrics (for dashboards)."""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, Schema
from api.fields import String
from api.pagination import Page, PageArgsSchema, page_schema, paginate
from api.runtime import context, db_session
from fieldcast.insights import metrics
from fieldcast.insights import videos as insights
from fieldcast.models.accounts import User
from fieldcast.models.sharing import RecipientState, ShareRecipient
from fieldcast.models.viewing import VideoProgress

blp = Blueprint(
    "insights",
    __name__,
    url_prefix="/api/v1",
    description=(
        "How a video was watched: views, viewers, average share watched, completion rate, "
        "the retention curve (100 points, one per per cent of the duration), where people "
        "drop off and what they watch again, and who watched how much. Read by the video's "
        "author, the managers above the author, enablement and admins (404 for anyone "
        "else). A share's insights (who it reached, opened and watched, and how much) are "
        "read by its sender, the managers above the sender and admins; a team's view of a "
        "video also by the team's leads who see the video.\n\n"
        "The video's figures are computed ahead and say when (`computed_at`): at once after "
        f"a change for a video of at most {insights.LIVE_VIEWERS} viewers, within "
        f"`stale_up_to_s` ({insights.STALE_UP_TO_S} s) for a larger one. Definitions: "
        "docs/metrics.md."
    ),
)

metrics_blp = Blueprint(
    "learning_metrics",
    __name__,
    url_prefix="/api/v1",
    description=(
        "Learning metrics for dashboards, one `GET` per metric: the learning cycle, the "
        "assignment and completion average with their golden ratio, non-completion reasons "
        "and deal conversion. Each takes a period (`from`, `to`: the last 90 days when not "
        f"given; at most {metrics.MAX_PERIOD.days} days), a `team_id` (its people and its "
        "sub-teams') and a program (`assignment_id`, or `collection_id`). Managers read "
        "their people (everyone below them on the reporting line), enablement and admins "
        "the organisation; reps are refused (403). Computed when read and kept a minute for "
        "the same question (`computed_at` says when). "
        "Definitions: docs/metrics.md."
    ),
)


# -- schemas --------------------------------------------------------------------------------------


class StretchSchema(Schema):
    from_point = ma.fields.Integer(metadata={"description": "Its first point, 0 to 99"})
    to_point = ma.fields.Integer(metadata={"description": "Its last point (included)"})
    start_ms = ma.fields.Integer(metadata={"description": "from_point x duration / 100"})
    end_ms = ma.fields.Integer(metadata={"description": "(to_point + 1) x duration / 100"})
    count = ma.fields.Integer(metadata={"description": "At each of its points"})


_PER_POINT = "one per per cent of the duration (point p is the moment p x duration / 100)"


class VideoInsightsSchema(Schema):
    video_id = ma.fields.UUID()
    duration_ms = ma.fields.Integer()
    views = ma.fields.Integer(metadata={"description": "Sittings that played some of it"})
    viewers = ma.fields.Integer(metadata={"description": "People who played some of it"})
    completed = ma.fields.Integer(metadata={"description": "Viewers who completed it"})
    completion_rate = ma.fields.Float(metadata={"description": "completed / viewers"})
    average_share = ma.fields.Float(
        metadata={"description": "Mean over viewers of the share of it they played, 0 to 1"}
    )
    retention = ma.fields.List(
        ma.fields.Float(),
        metadata={"description": f"Share of viewers who played each point, {_PER_POINT}"},
    )
    drop_offs = ma.fields.List(
        ma.fields.Integer(),
        metadata={
            "description": f"Viewers whose furthest moment is at each point and who left "
            f"before the last point, {_PER_POINT}"
        },
    )
    rewatches = ma.fields.List(
        ma.fields.Integer(),
        metadata={
            "description": f"Plays of each point beyond each viewer's first (other views, "
            f"seeks back), {_PER_POINT}"
        },
    )
    top_drop_offs = ma.fields.List(
        ma.fields.Nested(StretchSchema),
        metadata={"description": "The 3 highest stretches of equal drop-offs, highest first"},
    )
    top_rewatches = ma.fields.List(
        ma.fields.Nested(StretchSchema),
        metadata={"description": "The 3 highest stretches of equal rewatches, highest first"},
    )
    computed_at = ma.fields.DateTime()
    stale_up_to_s = ma.fields.Integer(
        metadata={"description": "How stale the figures may be for a video past the live limit"}
    )


class WatchingSchema(Schema):
    user_id = ma.fields.UUID()
    display_name = ma.fields.String()
    played_ms = ma.fields.Integer(metadata={"description": "The union of what they played"})
    duration_ms = ma.fields.Integer()
    share = ma.fields.Float(metadata={"description": "played_ms / duration_ms, 0 to 1"})
    views = ma.fields.Integer()
    first_played_at = ma.fields.DateTime(allow_none=True)
    last_played_at = ma.fields.DateTime(allow_none=True)
    completed_at = ma.fields.DateTime(allow_none=True)


class ViewerArgsSchema(PageArgsSchema):
    team_id = ma.fields.UUID(
        load_default=None, metadata={"description": "Only the team's people (and sub-teams')"}
    )


class GroupFiguresSchema(Schema):
    viewers = ma.fields.Integer()
    completed = ma.fields.Integer()
    completion_rate = ma.fields.Float(metadata={"description": "completed / viewers"})
    average_share = ma.fields.Float(metadata={"description": "Over the viewers, 0 to 1"})
    computed_at = ma.fields.DateTime()


class TeamInsightsSchema(GroupFiguresSchema):
    video_id = ma.fields.UUID()
    team_id = ma.fields.UUID()
    people = ma.fields.Integer(metadata={"description": "Active people of the team"})


class ShareInsightsSchema(GroupFiguresSchema):
    share_id = ma.fields.UUID()
    video_id = ma.fields.UUID()
    recipients = ma.fields.Integer()
    sent = ma.fields.Integer(metadata={"description": "Reached `sent` or further"})
    delivered = ma.fields.Integer(metadata={"description": "Reached `delivered` or further"})
    opened = ma.fields.Integer(metadata={"description": "Reached `opened` or further"})
    watched = ma.fields.Integer(metadata={"description": "Reached `watched`"})
    failed = ma.fields.Integer()


class RecipientWatchingSchema(WatchingSchema):
    state = ma.fields.Enum(RecipientState, by_value=True)
    sent_at = ma.fields.DateTime(allow_none=True)
    delivered_at = ma.fields.DateTime(allow_none=True)
    opened_at = ma.fields.DateTime(allow_none=True)
    watched_at = ma.fields.DateTime(allow_none=True)


def _watching(row: insights.Watching) -> dict[str, Any]:
    return {**row.__dict__, "share": row.share}


# -- viewer insights ------------------------------------------------------------------------------


@blp.route("/videos/<uuid:video_id>/insights")
class VideoInsights(MethodView):
    @blp.response(200, VideoInsightsSchema)
    @blp.problems(404)
    def get(self, video_id: uuid.UUID) -> dict[str, Any]:
        """How the video was watched: counts, retention curve, drop-offs, rewatches"""
        return insights.figures(db_session(), current_principal(), video_id)


@blp.route("/videos/<uuid:video_id>/insights/viewers")
class VideoViewers(MethodView):
    @blp.arguments(ViewerArgsSchema, location="query")
    @blp.response(200, page_schema(WatchingSchema))
    @blp.problems(404)
    def get(self, args: dict[str, Any], video_id: uuid.UUID) -> dict[str, Any]:
        """Who watched the video and how much, most played first"""
        session, principal = db_session(), current_principal()
        video = insights.load_video(session, principal, video_id)
        team_id = args.pop("team_id")
        if team_id is not None:
            insights.check_team(session, principal, team_id)
        page: Page[VideoProgress] = paginate(
            session,
            insights.viewers(video, team_id=team_id),
            order_by=[VideoProgress.played_ms, VideoProgress.user_id],
            args=args,
            descending=True,
        )
        people = insights.watching(session, video, [p.user_id for p in page.items])
        return {
            "items": [_watching(people[p.user_id]) for p in page.items],
            "next_cursor": page.next_cursor,
        }


@blp.route("/videos/<uuid:video_id>/insights/teams/<uuid:team_id>")
class TeamInsights(MethodView):
    @blp.response(200, TeamInsightsSchema)
    @blp.problems(404)
    def get(self, video_id: uuid.UUID, team_id: uuid.UUID) -> dict[str, Any]:
        """How a team (with its sub-teams) watched the video"""
        session = db_session()
        video, team = insights.load_team_view(session, current_principal(), video_id, team_id)
        return insights.team_figures(session, video, team)


@blp.route("/videos/<uuid:video_id>/insights/teams/<uuid:team_id>/people")
class TeamPeople(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_schema(WatchingSchema))
    @blp.problems(404)
    def get(self, args: dict[str, Any], video_id: uuid.UUID, team_id: uuid.UUID) -> dict[str, Any]:
        """The team's people, each with how much of the video they watched (none included)"""
        session = db_session()
        video, team = insights.load_team_view(session, current_principal(), video_id, team_id)
        page: Page[User] = paginate(
            session, insights.team_members(video, team), order_by=[User.id], args=args
        )
        people = insights.watching(session, video, [u.id for u in page.items])
        return {
            "items": [_watching(people[u.id]) for u in page.items],
            "next_cursor": page.next_cursor,
        }


@blp.route("/shares/<uuid:share_id>/insights")
class ShareInsights(MethodView):
    @blp.response(200, ShareInsightsSchema)
    @blp.problems(404)
    def get(self, share_id: uuid.UUID) -> dict[str, Any]:
        """How far the share got: received, opened, watched, and how much"""
        session = db_session()
        share, video = insights.load_share_and_video(session, current_principal(), share_id)
        return insights.share_figures(session, share, video)


@blp.route("/shares/<uuid:share_id>/insights/recipients")
class ShareRecipientsInsights(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, page_schema(RecipientWatchingSchema))
    @blp.problems(404)
    def get(self, args: dict[str, Any], share_id: uuid.UUID) -> dict[str, Any]:
        """The share's recipients, each with their state and how much they watched"""
        session = db_session()
        share, video = insights.load_share_and_video(session, current_principal(), share_id)
        page: Page[ShareRecipient] = paginate(
            session, insights.recipients(share), order_by=[ShareRecipient.user_id], args=args
        )
        people = insights.watching(session, video, [r.user_id for r in page.items])
        return {
            "items": [
                {
                    **_watching(people[r.user_id]),
                    "state": r.state,
                    "sent_at": r.sent_at,
                    "delivered_at": r.delivered_at,
                    "opened_at": r.opened_at,
                    "watched_at": r.watched_at,
                }
                for r in page.items
            ],
            "next_cursor": page.next_cursor,
        }


# -- learning metrics -----------------------------------------------------------------------------


class MetricArgsSchema(Schema):
    start = ma.fields.AwareDateTime(
        data_key="from",
        load_default=None,
        metadata={"description": "The period's start (default: 90 days before `to`)"},
    )
    end = ma.fields.AwareDateTime(
        data_key="to", load_default=None, metadata={"description": "Its end, excluded (now)"}
    )
    team_id = ma.fields.UUID(load_default=None, metadata={"description": "With its sub-teams"})
    assignment_id = ma.fields.UUID(load_default=None, metadata={"description": "A program"})
    collection_id = ma.fields.UUID(
        load_default=None, metadata={"description": "A program: every assignment of it"}
    )


class ReasonTrendArgsSchema(MetricArgsSchema):
    bucket = String(
        load_default="week",
        max_length=8,
        validate=ma.validate.OneOf(metrics.BUCKETS),
        metadata={"description": "The trend's step (UTC): day, week (from Monday), month"},
    )


class PeriodSchema(Schema):
    start = ma.fields.DateTime(data_key="from")
    end = ma.fields.DateTime(data_key="to")


class StatSchema(Schema):
    count = ma.fields.Integer(metadata={"description": "How many durations are behind it"})
    median_s = ma.fields.Float(allow_none=True)
    p90_s = ma.fields.Float(allow_none=True)


class LearningCycleSchema(Schema):
    period = ma.fields.Nested(PeriodSchema)
    computed_at = ma.fields.DateTime(
        metadata={"description": "When: the same question is answered from it for a minute"}
    )
    to_publication = ma.fields.Nested(StatSchema)
    to_assignment = ma.fields.Nested(StatSchema)
    to_completion = ma.fields.Nested(StatSchema)


class CompletionAverageSchema(Schema):
    period = ma.fields.Nested(PeriodSchema)
    computed_at = ma.fields.DateTime(
        metadata={"description": "When: the same question is answered from it for a minute"}
    )
    people = ma.fields.Integer(metadata={"description": "Active people in scope"})
    people_assigned = ma.fields.Integer()
    assigned = ma.fields.Integer(metadata={"description": "Items assigned in the period"})
    completed = ma.fields.Integer(metadata={"description": "Of them, completed before `to`"})
    excused = ma.fields.Integer(metadata={"description": "Of them, excused (not counted)"})
    assigned_per_person = ma.fields.Float(allow_none=True)
    completed_per_person = ma.fields.Float(allow_none=True)
    golden_ratio = ma.fields.Float(
        allow_none=True,
        metadata={"description": "completed_per_person / assigned_per_person (0 to 1)"},
    )


class ReasonCountSchema(Schema):
    no_time = ma.fields.Integer()
    not_relevant = ma.fields.Integer()
    already_know = ma.fields.Integer()
    technical_problem = ma.fields.Integer()
    other = ma.fields.Integer()


class KindTotalsSchema(Schema):
    decline = ma.fields.Integer()
    more_time = ma.fields.Integer()


class ReasonBucketSchema(Schema):
    start = ma.fields.DateTime()
    decline = ma.fields.Nested(ReasonCountSchema)
    more_time = ma.fields.Nested(ReasonCountSchema)


class NonCompletionSchema(Schema):
    period = ma.fields.Nested(PeriodSchema)
    computed_at = ma.fields.DateTime(
        metadata={"description": "When: the same question is answered from it for a minute"}
    )
    bucket = ma.fields.String()
    total = ma.fields.Nested(KindTotalsSchema)
    decline = ma.fields.Nested(ReasonCountSchema)
    more_time = ma.fields.Nested(ReasonCountSchema)
    trend = ma.fields.List(ma.fields.Nested(ReasonBucketSchema))


class CycleDaysSchema(Schema):
    count = ma.fields.Integer()
    median = ma.fields.Float(allow_none=True)
    p90 = ma.fields.Float(allow_none=True)


class ConversionSideSchema(Schema):
    people = ma.fields.Integer(metadata={"description": "Deal owners behind the figures"})
    deals = ma.fields.Integer(metadata={"description": "Deals closed (won or lost)"})
    won = ma.fields.Integer()
    lost = ma.fields.Integer()
    win_rate = ma.fields.Float(allow_none=True)
    win_rate_interval = ma.fields.List(
        ma.fields.Float(),
        allow_none=True,
        metadata={"description": "95 % Wilson interval of the win rate: wide for few deals"},
    )
    cycle_days = ma.fields.Nested(CycleDaysSchema)


class ConversionSchema(Schema):
    period = ma.fields.Nested(PeriodSchema)
    computed_at = ma.fields.DateTime(
        metadata={"description": "When: the same question is answered from it for a minute"}
    )
    completed = ma.fields.Nested(
        ConversionSideSchema, metadata={"description": "Owner completed before it closed"}
    )
    not_completed = ma.fields.Nested(ConversionSideSchema)


def _answer(args: dict[str, Any], metric: str, compute: Any, **options: Any) -> dict[str, Any]:
    session = db_session()
    filters = {k: v for k, v in args.items() if k != "bucket"}
    scope = metrics.scope(session, current_principal(), **filters)
    return metrics.answer(context().redis, session, scope, metric, compute, **options)


@metrics_blp.route("/metrics/learning-cycle")
class LearningCycle(MethodView):
    @metrics_blp.arguments(MetricArgsSchema, location="query")
    @metrics_blp.response(200, LearningCycleSchema)
    @metrics_blp.problems(403, 404)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Time from content creation to publication, assignment and completion"""
        return _answer(args, "learning-cycle", metrics.learning_cycle)


@metrics_blp.route("/metrics/completion-average")
class CompletionAverage(MethodView):
    @metrics_blp.arguments(MetricArgsSchema, location="query")
    @metrics_blp.response(200, CompletionAverageSchema)
    @metrics_blp.problems(403, 404)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Assigned and completed items per person, and the golden ratio between them"""
        return _answer(args, "completion-average", metrics.completion_average)


@metrics_blp.route("/metrics/non-completion-reasons")
class NonCompletionReasons(MethodView):
    @metrics_blp.arguments(ReasonTrendArgsSchema, location="query")
    @metrics_blp.response(200, NonCompletionSchema)
    @metrics_blp.problems(403, 404)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Why people decline or ask for more time, counted and trended"""
        return _answer(
            args, "non-completion-reasons", metrics.non_completion_reasons, bucket=args["bucket"]
        )


@metrics_blp.route("/metrics/deal-conversion")
class DealConversion(MethodView):
    @metrics_blp.arguments(MetricArgsSchema, location="query")
    @metrics_blp.response(200, ConversionSchema)
    @metrics_blp.problems(403, 404)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Win rate and cycle of deals whose owners completed the program, against the rest"""
        return _answer(args, "deal-conversion", metrics.deal_conversion)
