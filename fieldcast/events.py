"""Domain events: what one package tells the packages that care, without importing them.

The package that owns a fact publishes it (`publish(session, VideoBecamePlayable(...))`); the
packages that care subscribe a handler at import (`@subscribe(VideoBecamePlayable)`). Handlers
run at once, in a fixed order (by module and name), inside the publisher's transaction and with
its session: what they change commits or rolls back with the publisher's work, and work that
must happen later or outside the database is recorded in the outbox by the handler, as any
service does. A handler that raises fails the publisher's operation.

So `videos` does not import `sharing`, and `sharing` does not import `integrations`: the import
graph between domain packages stays acyclic (import-linter checks it, see pyproject.toml).

Every process that may publish imports `HANDLER_MODULES` at start (`load_handlers()`: the API's
app factory, the worker, the scheduler). `publish` loads them too, so a script or test that
calls a service directly still reaches every handler.
"""

from __future__ import annotations

import importlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

# The modules whose import subscribes handlers. Listed by name so that this module, which every
# domain package imports, imports none of them.
HANDLER_MODULES: tuple[str, ...] = (
    "fieldcast.inbox.services",
    "fieldcast.sharing.shares",
    "fieldcast.sharing.fanout",
    "fieldcast.sharing.tracking",
    "fieldcast.integrations.webhooks",
    "fieldcast.sync.tombstones",
    "fieldcast.conversation.questions",
    "fieldcast.search.indexing",
    "fieldcast.transcripts.services",
    "fieldcast.programs.assignments",
    "fieldcast.programs.rules",
    "fieldcast.xapi.recording",
    "fieldcast.points.awards",
)


@dataclass(frozen=True)
class Event:
    """Something that happened in one package that others may act on. Ids, not ORM objects:
    a handler loads what it needs through the session it is given."""

    org_id: uuid.UUID


@dataclass(frozen=True)
class VideoBecamePlayable(Event):
    """A video's first rendition plays (published by `videos.processing`).

    Shares that waited for it are released; its author is told."""

    video_id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    source_version: int


@dataclass(frozen=True)
class VideoBecameReady(Event):
    """A video's processing ended (published by `videos.processing`): what its current file
    will have is made, or named missing. Its speech is transcribed (`transcripts`)."""

    video_id: uuid.UUID
    owner_id: uuid.UUID
    source_version: int


@dataclass(frozen=True)
class VideoFailed(Event):
    """A video's file cannot be processed (published by `videos.processing`, and by
    `uploads` when a file's first bytes show it is not a video); `detail` says why in words
    for its author, who is told."""

    video_id: uuid.UUID
    owner_id: uuid.UUID
    title: str
    source_version: int
    detail: str


@dataclass(frozen=True)
class ShareReleased(Event):
    """A share may go out: it was made for a playable video, or its video just became playable
    (published by `sharing`). The teams the sender named get their chat cards."""

    share_id: uuid.UUID
    team_ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True)
class ReceiptArrived(Event):
    """A person's app says a notification reached their phone (`delivered`) or was tapped
    (`opened`) (published by `inbox`). `data` is the notification's data: a share's names it,
    and its recipient state moves forward."""

    user_id: uuid.UUID
    notification_id: uuid.UUID
    receipt: Literal["delivered", "opened"]
    data: dict[str, Any]


@dataclass(frozen=True)
class VideoRemoved(Event):
    """A video was deleted by its author or an admin (published by `videos`): it is gone for
    everyone at once, its media waits for the purge. Pending pushes about it are dropped and
    inbox items about it show it as removed."""

    video_id: uuid.UUID
    owner_id: uuid.UUID


@dataclass(frozen=True)
class VideoRestored(Event):
    """A deleted video was restored before its purge (published by `videos`)."""

    video_id: uuid.UUID
    owner_id: uuid.UUID


@dataclass(frozen=True)
class ShareRecalled(Event):
    """A sender or an admin recalled a share (published by `sharing`): its recipients lose
    what it granted, its pending pushes are dropped. `recipient_ids` are the people it had
    reached or was about to reach."""

    share_id: uuid.UUID
    video_id: uuid.UUID
    recipient_ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True)
class VideoHidden(Event):
    """An admin hid a video on a report (published by `moderation`): from now only its author
    and admins see it. It leaves the lists of the people its shares reached; its pushes and
    chat cards not yet sent check it when sending. Shown again, it simply changed."""

    video_id: uuid.UUID
    owner_id: uuid.UUID


@dataclass(frozen=True)
class VideoTextChanged(Event):
    """A text search reads about a video changed: its title, description or deal attributes
    (published by `videos`), a comment on it (by `conversation`), its transcript, stored or
    edited by a person (by `transcripts`), or the text of one of its attachments, read or
    removed (by `attachments`). Search builds the video's document again."""

    video_id: uuid.UUID


@dataclass(frozen=True)
class PersonRenamed(Event):
    """A person's display name changed (published by `accounts`: by an admin, by themselves, or
    as their account is deleted). Search builds the documents of their videos again, which
    hold their name."""

    user_id: uuid.UUID


@dataclass(frozen=True)
class PersonJoinedTeams(Event):
    """A person became a member of teams (published by `accounts`: an admin added them, or
    they accepted an invitation naming the teams). The assignment rules of those teams, and
    of the teams above them, assign to them."""

    user_id: uuid.UUID
    team_ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True)
class PersonTookRole(Event):
    """A person has a role they did not have (published by `accounts`: made with it, invited
    with it, or given it by an admin). The assignment rules of the role assign to them."""

    user_id: uuid.UUID
    role: str


@dataclass(frozen=True)
class ProgressMade(Event):
    """A person played more of a video (published by `viewing` after a report added to their
    progress). Their assignments of it, alone or in a collection, follow."""

    user_id: uuid.UUID
    video_id: uuid.UUID


@dataclass(frozen=True)
class CollectionItemsChanged(Event):
    """A collection holds other videos or other ranges of them (published by `curation`: an
    item added, removed or given a new range). The people it is assigned to have their
    progress worked out again."""

    collection_id: uuid.UUID


@dataclass(frozen=True)
class CompletionThresholdChanged(Event):
    """The organisation's share of a video that counts as completed changed (published by
    `viewing`). The people of the assignments that follow it have their state worked out
    again."""


@dataclass(frozen=True)
class ViewStarted(Event):
    """A person started a view of a video, or of a clip of it (published by `viewing`).
    Learning records follow (`xapi`)."""

    user_id: uuid.UUID
    video_id: uuid.UUID
    view_id: uuid.UUID
    session_id: uuid.UUID
    length_ms: int
    device_at: datetime | None


# One event of a player's report as it was kept: (kind, position_ms, device_at, its place n).
PlayerEvent = tuple[str, int, datetime | None, int]


@dataclass(frozen=True)
class ViewReported(Event):
    """A player's report was merged into its view (published by `viewing`, also when it added
    nothing): the player's events it kept, and what the view had played before and after it.
    Learning records follow (`xapi`)."""

    user_id: uuid.UUID
    video_id: uuid.UUID
    view_id: uuid.UUID
    session_id: uuid.UUID
    seq: int
    events: tuple[PlayerEvent, ...]
    # The report's played segments, [start_ms, end_ms) in its order (where a seek came from).
    segments: tuple[tuple[int, int], ...]
    before_ms: int
    played_ms: int
    length_ms: int
    threshold_pct: int
    position_ms: int | None
    device_at: datetime | None


@dataclass(frozen=True)
class VideoCompleted(Event):
    """A person's progress on a video reached the organisation's threshold, for the first time
    (published by `viewing`). Its author earns points (`points`)."""

    user_id: uuid.UUID
    video_id: uuid.UUID


@dataclass(frozen=True)
class CommentLikeChanged(Event):
    """A person liked a comment (`liked`), or took their like back (published by
    `conversation`). Its author earns points, or loses them again (`points`)."""

    comment_id: uuid.UUID
    author_id: uuid.UUID
    user_id: uuid.UUID
    liked: bool


@dataclass(frozen=True)
class AcceptedAnswerChanged(Event):
    """The asker of a question accepted an answer (`author_id` wrote it), replacing any
    accepted before, or took the acceptance back (`author_id` None) (published by
    `conversation`). The answer's author earns points; an author replaced loses them."""

    question_id: uuid.UUID
    asker_id: uuid.UUID
    author_id: uuid.UUID | None


@dataclass(frozen=True)
class AssignmentsCompleted(Event):
    """People completed assignments, as their progress was worked out (published by
    `programs`): (assignment_id, user_id) each. Those on time earn points (`points`)."""

    completed: tuple[tuple[uuid.UUID, uuid.UUID], ...]


# Every event type, for the checks that each reaches a handler in every process.
EVENT_TYPES: tuple[type[Event], ...] = (
    VideoBecamePlayable,
    VideoBecameReady,
    VideoFailed,
    ShareReleased,
    ReceiptArrived,
    VideoRemoved,
    VideoRestored,
    ShareRecalled,
    VideoHidden,
    VideoTextChanged,
    PersonRenamed,
    PersonJoinedTeams,
    PersonTookRole,
    ProgressMade,
    CollectionItemsChanged,
    CompletionThresholdChanged,
    ViewStarted,
    ViewReported,
    VideoCompleted,
    CommentLikeChanged,
    AcceptedAnswerChanged,
    AssignmentsCompleted,
)

E = TypeVar("E", bound=Event)
Handler = Callable[[Session, Any], None]
TypedHandler = Callable[[Session, E], None]

_handlers: dict[type[Event], list[Handler]] = {}
_loaded = False


def subscribe(
    kind: type[E],
) -> Callable[[Callable[[Session, E], None]], Callable[[Session, E], None]]:
    """Decorator: call the function with (session, event) for every event of `kind` published
    in this process. Subscribing the same function twice subscribes it once."""

    def register(handler: TypedHandler[E]) -> TypedHandler[E]:
        handlers = _handlers.setdefault(kind, [])
        if handler not in handlers:
            handlers.append(handler)
        return handler

    return register


def handlers(kind: type[Event]) -> list[Handler]:
    """The handlers subscribed to `kind`, in the order they run: by module and name, not by
    the order the modules happened to be imported in, so every process runs them alike."""
    return sorted(_handlers.get(kind, ()), key=lambda h: (h.__module__, h.__qualname__))


def load_handlers() -> None:
    """Import every module of HANDLER_MODULES (once), so that their handlers are subscribed."""
    global _loaded
    if _loaded:
        return
    for name in HANDLER_MODULES:
        importlib.import_module(name)
    _loaded = True


def publish(session: Session, event: Event) -> None:
    """Run every handler of the event's type, now, in the caller's transaction."""
    load_handlers()
    for handler in handlers(type(event)):
        handler(session, event)
