"""Domain events: every event type reaches its handlers, in the API and in the worker.

Each process's startup (the API's app factory, the worker) must subscribe every handler before
anything publishes; the check runs each startup in a fresh interpreter, where nothing was
imported before it, and reads what got subscribed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from fieldcast import events
from fieldcast.settings import Settings

ROOT = Path(__file__).resolve().parent.parent

# Which handlers each event must reach, in the order they run.
EXPECTED = {
    "VideoBecamePlayable": [
        "fieldcast.conversation.questions._reply_video_playable",
        "fieldcast.inbox.services._video_playable",
        "fieldcast.programs.assignments._video_playable",
        "fieldcast.sharing.shares._video_playable",
    ],
    "VideoBecameReady": ["fieldcast.transcripts.services._video_ready"],
    "VideoFailed": ["fieldcast.inbox.services._video_failed"],
    "ShareReleased": ["fieldcast.integrations.webhooks._share_released"],
    "ReceiptArrived": ["fieldcast.sharing.tracking._receipt_arrived"],
    "VideoRemoved": [
        "fieldcast.inbox.services._video_removed",
        "fieldcast.integrations.webhooks._video_removed",
        "fieldcast.programs.assignments._video_removed",
        "fieldcast.sharing.fanout._video_removed",
        "fieldcast.sync.tombstones._video_removed",
    ],
    "VideoRestored": ["fieldcast.programs.assignments._video_restored"],
    "ShareRecalled": [
        "fieldcast.inbox.services._share_recalled",
        "fieldcast.integrations.webhooks._share_recalled",
        "fieldcast.sync.tombstones._share_recalled",
    ],
    "VideoHidden": ["fieldcast.sync.tombstones._video_hidden"],
    "VideoTextChanged": ["fieldcast.search.indexing._text_changed"],
    "PersonRenamed": ["fieldcast.search.indexing._person_renamed"],
    "PersonJoinedTeams": ["fieldcast.programs.rules._joined_teams"],
    "PersonTookRole": ["fieldcast.programs.rules._took_role"],
    "ProgressMade": ["fieldcast.programs.assignments._progress_made"],
    "CollectionItemsChanged": ["fieldcast.programs.assignments._collection_items_changed"],
    "CompletionThresholdChanged": ["fieldcast.programs.assignments._threshold_changed"],
    "ViewStarted": ["fieldcast.xapi.recording._view_started"],
    "ViewReported": ["fieldcast.xapi.recording._view_reported"],
    "VideoCompleted": ["fieldcast.points.awards._video_completed"],
    "CommentLikeChanged": ["fieldcast.points.awards._comment_like_changed"],
    "AcceptedAnswerChanged": ["fieldcast.points.awards._accepted_answer_changed"],
    "AssignmentsCompleted": ["fieldcast.points.awards._assignments_completed"],
}

_STARTUP = """
import json, sys
from fieldcast import events
if sys.argv[1] == "api":
    from api.app import create_app
    create_app()
else:
    from workers.worker import run_worker
    run_worker(["default"], burst=True)
subscribed = {
    kind.__name__: [f"{h.__module__}.{h.__name__}" for h in events.handlers(kind)]
    for kind in events.EVENT_TYPES
}
print("SUBSCRIBED " + json.dumps(subscribed))
"""


def _subscribed_after_startup(process: str, settings: Settings, redis_url: str) -> Any:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": redis_url,
        "SECRET_KEY": str(settings.secret_key),
        "STORAGE_URL": settings.storage_url,
        "FIELDCAST_DATA_DIR": str(settings.data_dir),
        "LOG_JSON": "false",
        "LOG_LEVEL": "WARNING",
    }
    done = subprocess.run(
        [sys.executable, "-c", _STARTUP, process],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("SUBSCRIBED "))
    return json.loads(line.removeprefix("SUBSCRIBED "))


@pytest.mark.slow
@pytest.mark.parametrize("process", ["api", "worker"])
def test_startup_subscribes_every_handler_of_every_event(
    process: str, settings: Settings, redis_url: str, redis: Redis
) -> None:
    assert _subscribed_after_startup(process, settings, redis_url) == EXPECTED


def test_every_event_type_is_listed_and_expected() -> None:
    declared = {
        kind.__name__
        for kind in events.Event.__subclasses__()
        if kind.__module__.startswith("fieldcast.")
    }
    assert declared == {kind.__name__ for kind in events.EVENT_TYPES} == set(EXPECTED)


@dataclass(frozen=True)
class _Pinged(events.Event):
    note: str


def test_publish_runs_each_handler_once_in_order_with_the_callers_session() -> None:
    calls: list[tuple[str, object, str]] = []
    session: Any = object()

    def first(s: Any, event: _Pinged) -> None:
        calls.append(("first", s, event.note))

    def second(s: Any, event: _Pinged) -> None:
        calls.append(("second", s, event.note))

    try:
        events.subscribe(_Pinged)(first)
        events.subscribe(_Pinged)(second)
        events.subscribe(_Pinged)(first)  # subscribing again changes nothing
        events.publish(session, _Pinged(org_id=uuid.uuid4(), note="hello"))
    finally:
        events._handlers.pop(_Pinged, None)
    assert calls == [("first", session, "hello"), ("second", session, "hello")]


def test_a_failing_handler_fails_the_publisher() -> None:
    def broken(s: Any, event: _Pinged) -> None:
        raise RuntimeError("handler failed")

    try:
        events.subscribe(_Pinged)(broken)
        with pytest.raises(RuntimeError, match="handler failed"):
            events.publish(object(), _Pinged(org_id=uuid.uuid4(), note="x"))  # type: ignore[arg-type]
    finally:
        events._handlers.pop(_Pinged, None)
