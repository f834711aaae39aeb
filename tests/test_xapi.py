"""xAPI: views, reports, assignments and comments become statements, delivered in batches to a
real LRS (ralph, tests/lrs_server.py) and read back through its Statement API."""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from fieldcast import events as events_module
from fieldcast.context import AppContext
from fieldcast.db import utcnow
from fieldcast.models.outbox import OutboxJob
from fieldcast.models.videos import Video, VideoStatus
from fieldcast.models.xapi import LearningRecordStore, XapiStatement
from fieldcast.outbox.names import TaskName
from fieldcast.xapi import delivery, recording
from fieldcast.xapi import statements as xs
from tests import factories
from tests.conftest import QueryCounter, bearer
from tests.lrs_server import PASSWORD, USERNAME, XAPI_HEADERS, RalphLRS, ensure_venv
from tests.worker_support import drain_outbox

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("sink")]

MINUTE = 60_000
VIDEO = "https://w3id.org/xapi/video/verbs/"
ADL = "http://adlnet.gov/expapi/verbs/"


@pytest.fixture(scope="module")
def ralph_venv() -> Any:
    try:
        return ensure_venv()
    except RuntimeError as exc:
        pytest.skip(f"no real LRS to send statements to: {exc}")


@pytest.fixture
def lrs(ralph_venv: Any) -> Iterator[RalphLRS]:
    server = RalphLRS(ralph_venv)
    try:
        server.start()
        yield server
    finally:
        server.close()


def _video(session: Session, org: Any, owner: Any, title: str = "Acme: the opener") -> Video:
    video = Video(
        org_id=org.id,
        owner_id=owner.id,
        title=title,
        status=VideoStatus.PLAYABLE,
        duration_ms=MINUTE,
    )
    session.add(video)
    session.flush()
    return video


def _set_up(client: FlaskClient, admin: Any, lrs: RalphLRS, **extra: Any) -> dict[str, Any]:
    body = {"endpoint": lrs.endpoint, "key": USERNAME, "secret": PASSWORD, **extra}
    response = client.put("/api/v1/xapi/lrs", json=body, headers=bearer(client, admin))
    assert response.status_code == 200, response.get_json()
    found: dict[str, Any] = response.get_json()
    return found


def _deliver(context: AppContext, **kwargs: Any) -> int:
    """What the workers do: the periodic round records the jobs, the outbox runs them."""
    scheduled = delivery.schedule(context.db, **kwargs)
    drain_outbox(context)
    return scheduled


def _start(client: FlaskClient, headers: dict[str, str], video: Video, **body: Any) -> str:
    response = client.post(f"/api/v1/videos/{video.id}/views", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    view_id: str = response.get_json()["id"]
    return view_id


def _report(client: FlaskClient, headers: dict[str, str], view_id: str, **body: Any) -> None:
    response = client.post(f"/api/v1/views/{view_id}/reports", json=body, headers=headers)
    assert response.status_code == 200, response.get_json()


def _by_verb(found: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for statement in found:
        out.setdefault(statement["verb"]["id"], []).append(statement)
    return out


def test_a_view_its_events_progress_steps_and_completion_reach_the_lrs_once(
    client: FlaskClient, session: Session, context: AppContext, org: Any, admin: Any, rep: Any,
    lrs: RalphLRS,
) -> None:  # fmt: skip
    configured = _set_up(client, admin, lrs)
    assert configured["configured"] and configured["enabled"]
    assert "secret" not in configured
    video = _video(session, org, rep)
    headers = bearer(client, rep)
    session_id = str(uuid.uuid4())
    view_id = _start(client, headers, video, session_id=session_id)
    # 0-7 s with a play (past 10 %); 7-15 s and a seek from 15 s to 30 s (past 20 %); 30-60 s
    # and a pause at the end (75 %); then back for 15-30 s: all of it, past the 90 % threshold.
    _report(
        client, headers, view_id, seq=1, segments=[[0, 7000]], position_ms=7000,
        events=[{"kind": "play", "position_ms": 0}],
    )  # fmt: skip
    _report(
        client, headers, view_id, seq=2, segments=[[7000, 15000]], position_ms=30000,
        events=[{"kind": "seek", "position_ms": 30000}],
    )  # fmt: skip
    third = {
        "seq": 3,
        "segments": [[30000, MINUTE]],
        "position_ms": MINUTE,
        "events": [{"kind": "pause", "position_ms": MINUTE}],
    }
    _report(client, headers, view_id, **third)
    _report(client, headers, view_id, **third)  # a retry of a lost answer: nothing new
    _report(client, headers, view_id, seq=4, segments=[[15000, 30000]], position_ms=30000)
    # A report that adds nothing to a step and has no events records nothing.
    _report(client, headers, view_id, seq=5, segments=[[0, 500]], position_ms=500)
    recorded = session.scalar(
        select(func.count()).select_from(XapiStatement).where(XapiStatement.org_id == org.id)
    )
    assert recorded == 9

    assert _deliver(context) == 1
    found = lrs.statements()
    verbs = _by_verb(found)
    assert sorted((v, len(s)) for v, s in verbs.items()) == sorted(
        [
            (ADL + "initialized", 1),
            (VIDEO + "played", 1),
            (VIDEO + "seeked", 1),
            (VIDEO + "paused", 1),
            (ADL + "progressed", 4),
            (ADL + "completed", 1),
        ]
    )
    activity = f"{context.settings.app_link_base}/videos/{video.id}"
    for statement in found:
        assert statement["actor"] == {
            "objectType": "Agent",
            "account": {"homePage": context.settings.public_base_url, "name": str(rep.id)},
        }
        assert statement["object"]["id"] == activity
        assert statement["object"]["definition"]["type"] == xs.VIDEO_TYPE
        assert statement["object"]["definition"]["name"] == {"und": "Acme: the opener"}
        extensions = statement["context"]["extensions"]
        assert extensions[xs.SESSION_ID] == session_id
        assert extensions[xs.LENGTH] == 60.0
        assert extensions[xs.COMPLETION_THRESHOLD] == 0.9
        assert statement["context"]["contextActivities"]["category"][0]["id"] == xs.VIDEO_PROFILE
    seeked = verbs[VIDEO + "seeked"][0]["result"]["extensions"]
    assert (seeked[xs.TIME_FROM], seeked[xs.TIME_TO]) == (15.0, 30.0)
    paused = verbs[VIDEO + "paused"][0]["result"]["extensions"]
    assert paused[xs.TIME] == 60.0
    assert paused[xs.PROGRESS] == 0.75
    assert paused[xs.PLAYED_SEGMENTS] == "0[.]15[,]30[.]60"
    steps = sorted(s["result"]["extensions"][xs.PROGRESS] for s in verbs[ADL + "progressed"])
    assert steps == [0.117, 0.25, 0.75, 1.0]
    completed = verbs[ADL + "completed"][0]
    assert completed["result"]["completion"] is True
    assert completed["result"]["duration"] == "PT60S"
    assert completed["result"]["extensions"][xs.PROGRESS] == 1.0
    assert completed["result"]["extensions"][xs.PLAYED_SEGMENTS] == "0[.]60"
    assert completed["id"] == str(xs.statement_id(org.id, f"view:{view_id}:completed"))
    # Every statement of the Video Profile's verbs is one ralph's own profile models accept.
    profile = [s for s in found if s["verb"]["id"] != ADL + "progressed"]
    judged = lrs.validate(profile)
    assert judged.returncode == 0, judged.stderr[-2000:]
    assert f"Total events: {len(profile)}, Invalid events: 0" in judged.stderr
    # Stable ids: the same facts always make the same statement ids.
    keys = session.scalars(select(XapiStatement.key).where(XapiStatement.org_id == org.id)).all()
    assert {s["id"] for s in found} == {str(xs.statement_id(org.id, k)) for k in keys}

    status = client.get("/api/v1/xapi/lrs", headers=bearer(client, admin)).get_json()
    assert (status["backlog"], status["delivered"], status["failures"]) == (0, 9, 0)
    assert status["last_delivered_at"] is not None

    # Sent again (a worker died before it marked them sent): the LRS keeps one of each.
    session.execute(
        update(XapiStatement).where(XapiStatement.org_id == org.id).values(sent_at=None)
    )
    assert _deliver(context) == 1
    assert len(lrs.statements()) == 9
    assert session.scalar(
        select(func.count()).where(XapiStatement.org_id == org.id, XapiStatement.sent_at.is_(None))
    ) == 0  # fmt: skip


def test_a_statement_the_lrs_holds_otherwise_counts_as_delivered_and_the_rest_go(
    client: FlaskClient, session: Session, context: AppContext, org: Any, admin: Any, rep: Any,
    lrs: RalphLRS,
) -> None:  # fmt: skip
    _set_up(client, admin, lrs)
    video = _video(session, org, rep)
    headers = bearer(client, rep)
    view_id = _start(client, headers, video)
    _report(client, headers, view_id, seq=1, segments=[[0, 30000]],
            events=[{"kind": "play", "position_ms": 0}])  # fmt: skip
    # The LRS already holds the `initialized` statement's id with other content: it answers
    # the whole batch 409, and the batch goes again in halves.
    initialized = str(xs.statement_id(org.id, f"view:{view_id}:initialized"))
    other = {
        "id": initialized,
        "actor": {"objectType": "Agent", "mbox": "mailto:someone@example.com"},
        "verb": {"id": ADL + "initialized"},
        "object": {"objectType": "Activity", "id": "https://example.com/elsewhere"},
    }
    posted = requests.post(
        lrs.endpoint + "/statements",
        json=[other],
        auth=(USERNAME, PASSWORD),
        headers=XAPI_HEADERS,
        timeout=30,
    )
    assert posted.status_code == 200, posted.text
    _deliver(context)
    found = {s["id"]: s for s in lrs.statements()}
    assert len(found) == 3  # theirs, then played and progressed (at 50 %)
    assert found[initialized]["object"]["id"] == "https://example.com/elsewhere"
    waiting = session.scalar(
        select(func.count()).where(XapiStatement.org_id == org.id, XapiStatement.sent_at.is_(None))
    )
    assert waiting == 0


def test_delivery_backs_off_while_the_lrs_is_down_and_drains_when_it_is_back(
    client: FlaskClient, session: Session, context: AppContext, org: Any, admin: Any, rep: Any,
    lrs: RalphLRS, caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    _set_up(client, admin, lrs)
    video = _video(session, org, rep)
    headers = bearer(client, rep)
    for _ in range(3):
        _start(client, headers, video)
    lrs.stop()
    with caplog.at_level(logging.DEBUG):
        assert _deliver(context) == 1
    store = session.get(LearningRecordStore, org.id, populate_existing=True)
    assert store is not None
    assert store.failures == 1
    assert store.last_error is not None and "cannot reach the LRS" in store.last_error
    assert store.next_attempt_at is not None
    first_wait = (store.next_attempt_at - utcnow()).total_seconds()
    assert 0 < first_wait <= 2
    # The secret never reaches a log line, as such or as a Basic credential.
    basic = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    assert PASSWORD not in caplog.text and basic not in caplog.text
    # Not due yet: nothing is tried.
    assert delivery.schedule(context.db) == 0
    # Due: tried again, failing again, it waits longer (2 to 4 s after 2 failures).
    assert _deliver(context, now=store.next_attempt_at + timedelta(milliseconds=1)) == 1
    store = session.get(LearningRecordStore, org.id, populate_existing=True)
    assert store is not None and store.failures == 2 and store.next_attempt_at is not None
    assert 1 < (store.next_attempt_at - utcnow()).total_seconds() <= 4
    status = client.get("/api/v1/xapi/lrs", headers=bearer(client, admin)).get_json()
    assert (status["backlog"], status["failures"]) == (3, 2)
    assert "cannot reach the LRS" in status["last_error"]
    # The same LRS comes back at the same address, keeping what it held.
    lrs.start()
    assert _deliver(context, now=store.next_attempt_at + timedelta(milliseconds=1)) == 1
    assert len(_by_verb(lrs.statements())[ADL + "initialized"]) == 3
    status = client.get("/api/v1/xapi/lrs", headers=bearer(client, admin)).get_json()
    assert (status["backlog"], status["failures"], status["delivered"]) == (0, 0, 3)


def test_a_large_backlog_goes_in_batches_and_hands_over_to_the_next_job(
    client: FlaskClient, session: Session, context: AppContext, org: Any, admin: Any, rep: Any,
    lrs: RalphLRS, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    _set_up(client, admin, lrs)
    video = _video(session, org, rep)
    monkeypatch.setattr(delivery, "BATCH", 4)
    monkeypatch.setattr(delivery, "ROUND", 2)
    headers = bearer(client, rep)
    for _ in range(11):
        _start(client, headers, video)
    assert delivery.schedule(context.db) == 1
    # 11 statements, 4 a POST, 2 POSTs a job: the first job sends 8 and records the next,
    # which sends the last 3.
    assert drain_outbox(context) == 2
    jobs = session.scalars(
        select(OutboxJob).where(OutboxJob.task == TaskName.XAPI_DELIVER.value)
    ).all()
    assert len(jobs) == 2
    assert len(lrs.statements()) == 11


def test_assignments_and_comments_become_statements(
    client: FlaskClient, session: Session, context: AppContext, org: Any, admin: Any,
    lrs: RalphLRS,
) -> None:  # fmt: skip
    _set_up(client, admin, lrs, actor_format="mbox_sha1sum")
    curator = factories.UserFactory(org=org, enablement=True)
    ana = factories.UserFactory(org=org)
    ben = factories.UserFactory(org=org)
    video = _video(session, org, curator, "Acme: pricing")
    made = client.post(
        "/api/v1/assignments",
        json={"video_id": str(video.id), "user_ids": [str(ana.id), str(ben.id)]},
        headers=bearer(client, curator),
    )
    assert made.status_code == 201, made.get_json()
    assignment_id = made.get_json()["id"]
    drain_outbox(context)  # its people's rows
    ana_headers, ben_headers = bearer(client, ana), bearer(client, ben)
    view_id = _start(client, ana_headers, video)
    _report(client, ana_headers, view_id, seq=1, segments=[[0, MINUTE]])
    declined = client.post(
        f"/api/v1/assignments/{assignment_id}/requests",
        json={"kind": "decline", "reason": "already_know", "text": "I ran Acme"},
        headers=ben_headers,
    )
    assert declined.status_code == 201, declined.get_json()
    comment = client.post(
        f"/api/v1/videos/{video.id}/comments",
        json={"body": "Great opener", "at_ms": 5000},
        headers=ana_headers,
    )
    assert comment.status_code == 201, comment.get_json()
    _deliver(context)
    verbs = _by_verb(lrs.statements())

    def sha1(user: Any) -> str:
        return hashlib.sha1(f"mailto:{user.email.lower()}".encode()).hexdigest()  # noqa: S324

    registered = verbs[ADL + "registered"]
    assert {s["actor"]["mbox_sha1sum"] for s in registered} == {sha1(ana), sha1(ben)}
    activity = f"{context.settings.app_link_base}/videos/{video.id}"
    assert {s["object"]["id"] for s in registered} == {activity}
    # Ana's completion of the assignment (registration: her part in it) beside her view's.
    completions = verbs[ADL + "completed"]
    assignment_done = [s for s in completions if "result" in s and "extensions" not in s["result"]]
    assert len(assignment_done) == 1 and len(completions) == 2
    assert assignment_done[0]["actor"]["mbox_sha1sum"] == sha1(ana)
    assert assignment_done[0]["context"]["registration"] == str(
        uuid.uuid5(xs.NAMESPACE, f"assignment:{assignment_id}:{ana.id}")
    )
    (rejected,) = verbs["http://activitystrea.ms/schema/1.0/reject"]
    assert rejected["actor"]["mbox_sha1sum"] == sha1(ben)
    assert rejected["verb"]["display"] == {"en-US": "declined"}
    assert rejected["result"]["response"] == "already_know"
    (commented,) = verbs[ADL + "commented"]
    assert commented["result"]["response"] == "Great opener"
    assert commented["result"]["extensions"][xs.TIME] == 5.0
    assert commented["id"] == str(
        xs.statement_id(org.id, f"comment:{comment.get_json()['id']}:commented")
    )


def test_nothing_is_recorded_without_an_lrs_that_is_on(
    client: FlaskClient, session: Session, context: AppContext, org: Any, admin: Any, rep: Any,
    lrs: RalphLRS,
) -> None:  # fmt: skip
    video = _video(session, org, rep)
    headers = bearer(client, rep)

    def view_and_report() -> None:
        view_id = _start(client, headers, video)
        _report(client, headers, view_id, seq=1, segments=[[0, MINUTE]],
                events=[{"kind": "play", "position_ms": 0}])  # fmt: skip

    def recorded() -> int:
        return (
            session.scalar(
                select(func.count())
                .select_from(XapiStatement)
                .where(XapiStatement.org_id == org.id)
            )
            or 0
        )

    view_and_report()
    assert recorded() == 0
    status = client.get("/api/v1/xapi/lrs", headers=bearer(client, admin)).get_json()
    assert status["configured"] is False and status["backlog"] == 0
    # Set up without a secret: refused.
    refused = client.put(
        "/api/v1/xapi/lrs",
        json={"endpoint": lrs.endpoint, "key": USERNAME},
        headers=bearer(client, admin),
    )
    assert refused.status_code == 422
    assert refused.get_json()["errors"]["secret"]
    _set_up(client, admin, lrs, enabled=False)
    view_and_report()
    assert recorded() == 0
    # On: recorded; switched off with the secret left out, the stored secret stays.
    on = client.put(
        "/api/v1/xapi/lrs",
        json={"endpoint": lrs.endpoint, "key": USERNAME, "enabled": True},
        headers=bearer(client, admin),
    )
    assert on.status_code == 200
    view_and_report()
    assert recorded() == 4  # initialized, played, progressed (100 %), completed
    store = session.get(LearningRecordStore, org.id, populate_existing=True)
    assert store is not None and store.secret == PASSWORD
    # Removed: its waiting statements go with it.
    gone = client.delete("/api/v1/xapi/lrs", headers=bearer(client, admin))
    assert gone.status_code == 204
    assert recorded() == 0
    assert lrs.statements() == []


def test_views_gone_quiet_are_terminated_once(
    client: FlaskClient, session: Session, context: AppContext, org: Any, admin: Any, rep: Any,
    lrs: RalphLRS,
) -> None:  # fmt: skip
    _set_up(client, admin, lrs)
    video = _video(session, org, rep)
    headers = bearer(client, rep)
    view_id = _start(client, headers, video)
    _report(client, headers, view_id, seq=1, segments=[[0, 12000]], position_ms=12000)
    assert recording.terminate_idle(context.db) == 0  # not quiet yet
    session.execute(
        update(XapiStatement)
        .where(XapiStatement.org_id == org.id)
        .values(created_at=func.now() - timedelta(hours=1))
    )
    assert recording.terminate_idle(context.db) == 1
    assert recording.terminate_idle(context.db) == 0
    _deliver(context)
    (terminated,) = _by_verb(lrs.statements())[ADL + "terminated"]
    extensions = terminated["result"]["extensions"]
    assert (extensions[xs.TIME], extensions[xs.PROGRESS]) == (12.0, 0.2)
    assert extensions[xs.PLAYED_SEGMENTS] == "0[.]12"
    judged = lrs.validate([terminated])
    assert judged.returncode == 0, judged.stderr[-2000:]


def test_played_segments_and_ids() -> None:
    assert xs.played_segments("{[0,4000),[9500,12000)}") == "0[.]4[,]9.5[.]12"
    assert xs.played_segments("{}") == ""
    org_id = uuid.uuid4()
    assert xs.statement_id(org_id, "view:x:completed") == xs.statement_id(
        org_id, "view:x:completed"
    )
    assert xs.statement_id(org_id, "view:x:completed") != xs.statement_id(
        uuid.uuid4(), "view:x:completed"
    )
    assert delivery.backoff_s(1) <= 2 and 300 <= delivery.backoff_s(30) <= 600
    assert delivery.backoff_s(1, retry_after=30) == 30


def test_a_report_adds_at_most_one_insert(
    client: FlaskClient,
    session: Session,
    org: Any,
    rep: Any,
    count_queries: QueryCounter,
) -> None:
    # (No LRS: the one insert writes nothing; with one, the same statement writes the rows.)
    video = _video(session, org, rep)
    headers = bearer(client, rep)
    view_id = _start(client, headers, video)

    def inserts() -> int:
        return sum("xapi_statements" in statement for statement in count_queries.statements)

    count_queries.statements.clear()
    _report(
        client,
        headers,
        view_id,
        seq=1,
        segments=[[0, 20000]],
        events=[{"kind": "play", "position_ms": 0}, {"kind": "pause", "position_ms": 20000}],
    )
    assert inserts() == 1
    count_queries.statements.clear()
    # A few seconds more inside the same tenth, no events: no statement at all.
    _report(client, headers, view_id, seq=2, segments=[[20000, 21000]])
    assert inserts() == 0


class _Unavailable(BaseHTTPRequestHandler):
    """An LRS behind a proxy that answers 503 with Retry-After, or 401, as told."""

    status = 503

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Retry-After", "30")
        body = b'{"detail": "busy"}'
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_5xx_waits_at_least_what_retry_after_asks_and_a_401_says_so(
    client: FlaskClient, session: Session, context: AppContext, org: Any, admin: Any, rep: Any
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/xAPI"
        response = client.put(
            "/api/v1/xapi/lrs",
            json={"endpoint": endpoint, "key": USERNAME, "secret": PASSWORD},
            headers=bearer(client, admin),
        )
        assert response.status_code == 200
        _start(client, bearer(client, rep), _video(session, org, rep))
        assert _deliver(context) == 1
        store = session.get(LearningRecordStore, org.id, populate_existing=True)
        assert store is not None and store.failures == 1 and store.next_attempt_at is not None
        assert (store.next_attempt_at - utcnow()).total_seconds() > 25
        assert store.last_error == 'HTTP 503: {"detail": "busy"}'
        _Unavailable.status = 401
        assert _deliver(context, now=store.next_attempt_at) == 1
        store = session.get(LearningRecordStore, org.id, populate_existing=True)
        assert store is not None and store.failures == 2
        assert store.last_error is not None
        assert store.last_error.startswith("the LRS refused the key and secret")
        assert session.scalar(
            select(func.count()).where(
                XapiStatement.org_id == org.id, XapiStatement.sent_at.is_(None)
            )
        ) == 1  # fmt: skip
    finally:
        _Unavailable.status = 503
        server.shutdown()
        server.server_close()


def test_a_seek_comes_from_where_the_player_was() -> None:
    def seeks(segments: list[tuple[int, int]], events: list[tuple[str, int]]) -> list[Any]:
        event = events_module.ViewReported(
            org_id=uuid.uuid4(),
            user_id=uuid.uuid4(),
            video_id=uuid.uuid4(),
            view_id=uuid.uuid4(),
            session_id=uuid.uuid4(),
            seq=1,
            events=tuple((kind, at, None, n) for n, (kind, at) in enumerate(events)),
            segments=tuple(segments),
            before_ms=0,
            played_ms=0,
            length_ms=MINUTE,
            threshold_pct=90,
            position_ms=None,
            device_at=None,
        )
        return [
            (row["data"]["from_ms"], row["data"]["to_ms"])
            for row in recording.report_rows(event)
            if row["verb"] == xs.Verb.SEEKED
        ]

    # Played 7-15 s, jumped to 30 s and played on: from the end of the segment before.
    assert seeks([(7000, 15000), (30000, 35000)], [("seek", 30000)]) == [(15000, 30000)]
    # Backwards: the same rule.
    assert seeks([(40000, 50000), (10000, 12000)], [("seek", 10000)]) == [(50000, 10000)]
    # Nothing played after it yet: from the previous event, else the last segment's end.
    assert seeks([(0, 5000)], [("pause", 5000), ("seek", 20000)]) == [(5000, 20000)]
    assert seeks([(0, 8000)], [("seek", 20000)]) == [(8000, 20000)]
