"""Statements recorded in the transaction of what causes them.

Views: a started view is `initialized`; each player report may say it `played`, `paused` or
`seeked` (the player's events it kept, once each: a report sent again records nothing new),
that it `progressed` (a *progress step*: this report took the view's played share across one
or more tenths of its range; one statement, at the highest tenth crossed), and that it
`completed` (it reached the organisation's threshold). A report is the players' hot path:
whatever it says is recorded in ONE insert, which writes nothing when the organisation has no
LRS on, and a report that says none of these (most of them: a few seconds more played, inside
the same tenth) runs no statement at all. A view that has heard nothing for `VIEW_IDLE` is
`terminated` by a periodic sweep (`terminate_idle`).

Assignments and comments: their rows are written by set-wise SQL in many places (an audience
fanned out, people's progress recounted, a request filed), so triggers on `assignees`,
`assignment_requests` and `comments` (migration 0029) record their statements in the same
statement that changes them: `assigned` when a person's row is made, `completed` when it
completes, `declined` when they file a decline, `commented` for every comment and reply.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from fieldcast import events
from fieldcast.db import Database
from fieldcast.xapi.statements import Verb

# A view that has heard nothing this long is over: its `terminated` is recorded.
VIEW_IDLE = timedelta(minutes=30)
# How far back the sweep looks for views gone quiet (it runs every few minutes).
SWEEP_WINDOW = timedelta(hours=6)

_PLAYER_VERBS = {"play": Verb.PLAYED, "pause": Verb.PAUSED, "seek": Verb.SEEKED}

# The rows of one report, inserted only for an organisation whose LRS is on; what the view has
# played (its segments, after this report) is read by the same statement.
_RECORD_REPORT = text(
    """
    INSERT INTO xapi_statements
        (org_id, key, verb, user_id, video_id, view_id, occurred_at, data)
    SELECT v.org_id, r.key, r.verb, v.user_id, v.video_id, v.id, coalesce(r.at, now()),
           r.data || jsonb_build_object('played', CAST(v.played AS text))
    FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(key text, verb text, at timestamptz,
                                                       data jsonb)
    JOIN views v ON v.org_id = CAST(:org_id AS uuid) AND v.id = CAST(:view_id AS uuid)
    WHERE EXISTS (SELECT 1 FROM xapi_lrs l WHERE l.org_id = v.org_id AND l.enabled)
    ON CONFLICT DO NOTHING
    """
)

_RECORD_START = text(
    """
    INSERT INTO xapi_statements
        (org_id, key, verb, user_id, video_id, view_id, occurred_at, data)
    SELECT o.id, :key, :verb, :user_id, :video_id, :view_id, coalesce(:at, now()),
           jsonb_build_object('session_id', CAST(:session_id AS text),
                              'length_ms', CAST(:length_ms AS integer),
                              'threshold_pct', o.completion_threshold_pct)
    FROM organisations o
    JOIN xapi_lrs l ON l.org_id = o.id AND l.enabled
    WHERE o.id = :org_id
    ON CONFLICT DO NOTHING
    """
)


def view_key(view_id: Any, *parts: object) -> str:
    return ":".join(["view", str(view_id), *(str(part) for part in parts)])


@events.subscribe(events.ViewStarted)
def _view_started(session: Session, event: events.ViewStarted) -> None:
    session.execute(
        _RECORD_START,
        {
            "key": view_key(event.view_id, "initialized"),
            "verb": Verb.INITIALIZED.value,
            "org_id": event.org_id,
            "user_id": event.user_id,
            "video_id": event.video_id,
            "view_id": event.view_id,
            "at": event.device_at,
            "session_id": str(event.session_id),
            "length_ms": event.length_ms,
        },
    )


@events.subscribe(events.ViewReported)
def _view_reported(session: Session, event: events.ViewReported) -> None:
    rows = list(report_rows(event))
    if rows:
        session.execute(
            _RECORD_REPORT,
            {
                "rows": json.dumps(rows),
                "org_id": str(event.org_id),
                "view_id": str(event.view_id),
            },
        )


def report_rows(event: events.ViewReported) -> Iterator[dict[str, Any]]:
    """The statements one report makes, as rows for `_RECORD_REPORT`."""
    common = {
        "session_id": str(event.session_id),
        "length_ms": event.length_ms,
        "threshold_pct": event.threshold_pct,
        "played_ms": event.played_ms,
    }
    last_end = event.segments[-1][1] if event.segments else None
    previous: int | None = None  # the position of the report's previous event
    for kind, position_ms, device_at, n in event.events:
        verb = _PLAYER_VERBS.get(kind)
        if verb is Verb.SEEKED:
            came_from = _seek_from(event.segments, position_ms)
            if came_from is None:
                came_from = previous if previous is not None else last_end
            data = {**common, "from_ms": came_from if came_from is not None else position_ms}
            data["to_ms"] = position_ms
        else:
            data = {**common, "time_ms": position_ms}
        previous = position_ms
        if verb is None:
            continue  # the player's own "complete": completion is the threshold's (below)
        key = view_key(event.view_id, "event", event.seq, n)
        yield {
            "key": key,
            "verb": verb.value,
            "at": _iso(device_at or event.device_at),
            "data": data,
        }
    length = event.length_ms
    if length <= 0:
        return
    here = {
        **common,
        "time_ms": event.position_ms if event.position_ms is not None else previous or last_end,
    }
    step_before = event.before_ms * 10 // length
    step_after = event.played_ms * 10 // length
    if step_after > step_before:
        tenth = min(step_after, 10) * 10
        yield {
            "key": view_key(event.view_id, "progressed", tenth),
            "verb": Verb.PROGRESSED.value,
            "at": _iso(event.device_at),
            "data": {**here, "step_pct": tenth},
        }
    line = event.threshold_pct * length
    if event.before_ms * 100 < line <= event.played_ms * 100:
        yield {
            "key": view_key(event.view_id, "completed"),
            "verb": Verb.COMPLETED.value,
            "at": _iso(event.device_at),
            "data": here,
        }


def _seek_from(segments: tuple[tuple[int, int], ...], to_ms: int) -> int | None:
    """Where a seek to `to_ms` came from: the end of the segment played just before the one
    that starts where it landed (players list segments in the order they played them)."""
    for index, (low, _) in enumerate(segments):
        if low == to_ms and index > 0:
            return segments[index - 1][1]
    return None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# Views of organisations with an LRS on whose last statement is older than VIEW_IDLE (but
# within the window) and that have no `terminated` yet: one each, where the view stands.
_TERMINATE_IDLE = text(
    """
    WITH quiet AS (
        SELECT s.org_id, s.view_id
        FROM xapi_statements s
        WHERE s.view_id IS NOT NULL
          AND s.created_at > now() - CAST(:window AS interval)
        GROUP BY s.org_id, s.view_id
        HAVING max(s.created_at) < now() - CAST(:idle AS interval)
           AND bool_and(s.verb <> :terminated)
    )
    INSERT INTO xapi_statements
        (org_id, key, verb, user_id, video_id, view_id, occurred_at, data)
    SELECT v.org_id, 'view:' || v.id || ':' || 'terminated', :terminated,
           v.user_id, v.video_id, v.id,
           coalesce(v.device_last_at, v.last_reported_at, v.started_at),
           jsonb_build_object('session_id', CAST(v.session_id AS text),
                              'length_ms', v.end_ms - v.start_ms,
                              'threshold_pct', o.completion_threshold_pct,
                              'time_ms', v.position_ms,
                              'played_ms', v.played_ms,
                              'played', CAST(v.played AS text))
    FROM quiet q
    JOIN views v ON v.org_id = q.org_id AND v.id = q.view_id
    JOIN organisations o ON o.id = v.org_id
    JOIN xapi_lrs l ON l.org_id = v.org_id AND l.enabled
    ON CONFLICT DO NOTHING
    """
)


def terminate_idle(
    db: Database, *, idle: timedelta = VIEW_IDLE, window: timedelta = SWEEP_WINDOW
) -> int:
    """Record `terminated` for the views gone quiet (the periodic job `xapi-terminate`)."""
    with db.unit_of_work() as session:
        result = session.execute(
            _TERMINATE_IDLE,
            {
                "idle": f"{idle.total_seconds()} seconds",
                "window": f"{window.total_seconds()} seconds",
                "terminated": Verb.TERMINATED.value,
            },
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
