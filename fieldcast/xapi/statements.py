"""Statements written out from their recorded facts: pure functions, no database.

Each recorded row names what happened (`verb`, one of `Verb`), who, about what, and its numbers
(`data`); the statement is written out when it is sent, with the person's identification the
organisation chose and the product's public links as activity ids. Its id comes from the row's
natural key (`statement_id`), so the same fact always makes the same statement id.
"""

from __future__ import annotations

import enum
import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fieldcast.models.xapi import ActorFormat

# Statement ids are uuid5 of "<organisation>/<natural key>" in this namespace. Never change it:
# every statement already sent would come back with another id.
NAMESPACE = uuid.UUID("6c3a2d4e-5f1b-5a7c-9e2d-1b8f4c0a7e31")

VIDEO_PROFILE = "https://w3id.org/xapi/video"
VIDEO_TYPE = "https://w3id.org/xapi/video/activity-type/video"
COLLECTION_TYPE = "http://adlnet.gov/expapi/activities/module"
PROFILE_TYPE = "http://adlnet.gov/expapi/activities/profile"
PLATFORM = "Fieldcast"
LANGUAGE = "und"  # the language of titles is not known (RFC 5646 "undetermined")

_EXT = "https://w3id.org/xapi/video/extensions/"
SESSION_ID = _EXT + "session-id"
LENGTH = _EXT + "length"
COMPLETION_THRESHOLD = _EXT + "completion-threshold"
TIME = _EXT + "time"
TIME_FROM = _EXT + "time-from"
TIME_TO = _EXT + "time-to"
PROGRESS = _EXT + "progress"
PLAYED_SEGMENTS = _EXT + "played-segments"


class Verb(enum.StrEnum):
    """What a recorded row says happened (stored in `xapi_statements.verb`)."""

    INITIALIZED = "video.initialized"
    PLAYED = "video.played"
    PAUSED = "video.paused"
    SEEKED = "video.seeked"
    PROGRESSED = "video.progressed"
    COMPLETED = "video.completed"
    TERMINATED = "video.terminated"
    ASSIGNED = "assignment.assigned"
    ASSIGNMENT_COMPLETED = "assignment.completed"
    DECLINED = "assignment.declined"
    COMMENTED = "comment.commented"


# The xAPI verb of each: the Video Profile's own, ADL's where the profile uses them, and for
# what the profile does not cover, ADL's vocabulary (ActivityStreams' `reject` for a decline:
# ADL has no verb for refusing an activity). docs/xapi.md explains each choice.
VERBS: dict[Verb, tuple[str, str]] = {
    Verb.INITIALIZED: ("http://adlnet.gov/expapi/verbs/initialized", "initialized"),
    Verb.PLAYED: ("https://w3id.org/xapi/video/verbs/played", "played"),
    Verb.PAUSED: ("https://w3id.org/xapi/video/verbs/paused", "paused"),
    Verb.SEEKED: ("https://w3id.org/xapi/video/verbs/seeked", "seeked"),
    Verb.PROGRESSED: ("http://adlnet.gov/expapi/verbs/progressed", "progressed"),
    Verb.COMPLETED: ("http://adlnet.gov/expapi/verbs/completed", "completed"),
    Verb.TERMINATED: ("http://adlnet.gov/expapi/verbs/terminated", "terminated"),
    Verb.ASSIGNED: ("http://adlnet.gov/expapi/verbs/registered", "registered"),
    Verb.ASSIGNMENT_COMPLETED: ("http://adlnet.gov/expapi/verbs/completed", "completed"),
    Verb.DECLINED: ("http://activitystrea.ms/schema/1.0/reject", "declined"),
    Verb.COMMENTED: ("http://adlnet.gov/expapi/verbs/commented", "commented"),
}

VIDEO_VERBS = frozenset(
    {
        Verb.INITIALIZED,
        Verb.PLAYED,
        Verb.PAUSED,
        Verb.SEEKED,
        Verb.PROGRESSED,
        Verb.COMPLETED,
        Verb.TERMINATED,
    }
)


def statement_id(org_id: uuid.UUID, key: str) -> uuid.UUID:
    """The statement's id: the same fact of the same organisation, the same id."""
    return uuid.uuid5(NAMESPACE, f"{org_id}/{key}")


@dataclass(frozen=True)
class Identity:
    """How the organisation names people to its LRS."""

    actor_format: ActorFormat
    home_page: str


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    email: str | None


@dataclass(frozen=True)
class Thing:
    """An activity a statement is about: a video (or a collection, for an assignment of one)."""

    id: str
    kind: str
    title: str | None


@dataclass(frozen=True)
class Recorded:
    org_id: uuid.UUID
    key: str
    verb: Verb
    occurred_at: datetime
    data: dict[str, Any]


def actor(identity: Identity, person: Person) -> dict[str, Any]:
    """The person as the organisation identifies them: an account (their id in the product,
    under the organisation's home page) or the SHA-1 of their mailbox. No name either way:
    an LRS joins statements by the identifier, and the name is personal data it does not need.
    """
    if identity.actor_format is ActorFormat.MBOX_SHA1SUM and person.email:
        digest = hashlib.sha1(f"mailto:{person.email.lower()}".encode()).hexdigest()  # noqa: S324
        return {"objectType": "Agent", "mbox_sha1sum": digest}
    return {
        "objectType": "Agent",
        "account": {"homePage": identity.home_page, "name": str(person.id)},
    }


def activity(thing: Thing) -> dict[str, Any]:
    definition: dict[str, Any] = {"type": thing.kind}
    if thing.title:
        definition["name"] = {LANGUAGE: thing.title}
    return {"objectType": "Activity", "id": thing.id, "definition": definition}


def seconds(ms: int | float | None) -> float:
    """Milliseconds as the profile's seconds, to the millisecond."""
    return round((ms or 0) / 1000, 3)


def played_segments(multirange: str | None) -> str:
    """A PostgreSQL int4multirange of milliseconds ('{[0,4000),[9000,12000)}') as the
    profile's played segments ('0[.]4[,]9[.]12', seconds)."""
    if not multirange:
        return ""
    parts = []
    for piece in multirange.strip("{}").split("),"):
        piece = piece.strip("[]()")
        if not piece:
            continue
        low, _, high = piece.partition(",")
        parts.append(f"{_number(seconds(int(low)))}[.]{_number(seconds(int(high)))}")
    return "[,]".join(parts)


def _number(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def duration(ms: int | float | None) -> str:
    """ISO 8601 duration of milliseconds ("PT12.5S")."""
    return f"PT{_number(seconds(ms))}S"


def progress(played_ms: int | None, length_ms: int | None) -> float:
    if not length_ms:
        return 0.0
    return round(min(1.0, (played_ms or 0) / length_ms), 3)


def build(
    row: Recorded,
    *,
    identity: Identity,
    person: Person,
    thing: Thing,
    registration: uuid.UUID | None = None,
    response: str | None = None,
) -> dict[str, Any]:
    """The whole statement of a recorded row."""
    verb_id, display = VERBS[row.verb]
    statement: dict[str, Any] = {
        "id": str(statement_id(row.org_id, row.key)),
        "actor": actor(identity, person),
        "verb": {"id": verb_id, "display": {"en-US": display}},
        "object": activity(thing),
        "timestamp": row.occurred_at.isoformat(),
    }
    context: dict[str, Any] = {"platform": PLATFORM}
    result: dict[str, Any] = {}
    data = row.data
    if row.verb in VIDEO_VERBS:
        context["contextActivities"] = {
            "category": [
                {
                    "objectType": "Activity",
                    "id": VIDEO_PROFILE,
                    "definition": {"type": PROFILE_TYPE},
                }
            ]
        }
        session_id = data.get("session_id")
        if session_id:
            context["registration"] = session_id
        extensions: dict[str, Any] = {SESSION_ID: session_id, LENGTH: seconds(data["length_ms"])}
        if data.get("threshold_pct") is not None:
            extensions[COMPLETION_THRESHOLD] = round(data["threshold_pct"] / 100, 3)
        context["extensions"] = extensions
        result = _video_result(row.verb, data)
    else:
        if registration is not None:
            context["registration"] = str(registration)
        if row.verb is Verb.ASSIGNMENT_COMPLETED:
            result = {"completion": True}
        if row.verb is Verb.COMMENTED and data.get("at_ms") is not None:
            result = {"extensions": {TIME: seconds(data["at_ms"])}}
        if response:
            result["response"] = response
    statement["context"] = context
    if result:
        statement["result"] = result
    return statement


def _video_result(verb: Verb, data: dict[str, Any]) -> dict[str, Any]:
    if verb is Verb.INITIALIZED:
        return {}
    if verb is Verb.SEEKED:
        return {
            "extensions": {TIME_FROM: seconds(data["from_ms"]), TIME_TO: seconds(data["to_ms"])}
        }
    extensions = {
        TIME: seconds(data.get("time_ms")),
        PROGRESS: progress(data.get("played_ms"), data.get("length_ms")),
        PLAYED_SEGMENTS: played_segments(data.get("played")),
    }
    result: dict[str, Any] = {"extensions": extensions}
    if verb is Verb.COMPLETED:
        result["completion"] = True
        result["duration"] = duration(data.get("played_ms"))
    return result
