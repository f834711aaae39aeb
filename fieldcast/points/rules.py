"""The rules of points and badges, in one table each: what an action earns, how much of it a
person may earn in a day, and what each badge asks. docs/points.md says the same in words;
change both together.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from fieldcast.models.points import PointKind, PointPeriod


@dataclass(frozen=True)
class Rule:
    points: int
    # At most this many awards of the kind a person, per UTC day: past it, the action earns
    # nothing (then or later), so nobody farms points by liking in a loop.
    daily_cap: int
    description: str


RULES: dict[PointKind, Rule] = {
    PointKind.VIDEO_COMPLETED: Rule(
        5, 20, "Someone else completed a video of yours (once per person and video)."
    ),
    PointKind.ANSWER_ACCEPTED: Rule(
        20, 5, "The asker accepted your answer to their question (once per question)."
    ),
    PointKind.COMMENT_LIKED: Rule(
        2, 25, "Someone else liked a comment of yours (once per person and comment)."
    ),
    PointKind.ASSIGNMENT_ON_TIME: Rule(
        10, 10, "You completed an assignment by its due date (or one without a due date)."
    ),
}


@dataclass(frozen=True)
class Badge:
    name: str
    title: str
    description: str
    # The kind whose live awards are counted, and how many; or, for a streak, how many
    # assignments completed on time in a row.
    kind: PointKind
    count: int
    # Count the different people behind the awards, not the awards.
    distinct_actors: bool = False
    streak: bool = False


# Values of `name` are part of the API: never change one, only add.
BADGES: tuple[Badge, ...] = (
    Badge(
        "first_accepted_answer",
        "First accepted answer",
        "An answer of yours to a peer's question was accepted for the first time.",
        PointKind.ANSWER_ACCEPTED,
        1,
    ),
    Badge(
        "trusted_advisor",
        "Trusted advisor",
        "10 of your answers were accepted.",
        PointKind.ANSWER_ACCEPTED,
        10,
    ),
    Badge(
        "library_builder",
        "Library builder",
        "10 different people completed your videos.",
        PointKind.VIDEO_COMPLETED,
        10,
        distinct_actors=True,
    ),
    Badge(
        "well_liked",
        "Well liked",
        "Your comments were liked 25 times (likes taken back do not count).",
        PointKind.COMMENT_LIKED,
        25,
    ),
    Badge(
        "on_time_streak",
        "On time, every time",
        "Your last 5 assignments were all completed by their due date.",
        PointKind.ASSIGNMENT_ON_TIME,
        5,
        streak=True,
    ),
)
BADGES_BY_NAME = {badge.name: badge for badge in BADGES}

# The first day of "all time".
EPOCH = date(1970, 1, 1)


def period_start(period: PointPeriod, day: date) -> date:
    """The first day of the period holding `day`: its week's Monday, its month's or its
    quarter's first day, or EPOCH for all time (periods are in UTC)."""
    match period:
        case PointPeriod.WEEK:
            return date.fromordinal(day.toordinal() - day.weekday())
        case PointPeriod.MONTH:
            return day.replace(day=1)
        case PointPeriod.QUARTER:
            return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
        case PointPeriod.ALL:
            return EPOCH


def day_start(moment: datetime) -> datetime:
    """Midnight UTC of the day holding `moment` (the caps count from it)."""
    return datetime.combine(moment.astimezone(UTC).date(), time(), tzinfo=UTC)
