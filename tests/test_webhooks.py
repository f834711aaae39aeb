"""Team webhooks: admins add a team's Slack or Teams channel through the API, and a share to
the team posts a card there through the real outbox and a real RQ worker, to a chat service
played by a local HTTP server."""

from __future__ import annotations

import dataclasses
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import select, text

from fieldcast.context import AppContext
from fieldcast.db import Database, utcnow
from fieldcast.integrations import cards, webhooks
from fieldcast.models.accounts import Organisation
from fieldcast.models.integrations import TeamWebhook, WebhookKind
from fieldcast.models.outbox import OutboxJob, OutboxStatus
from fieldcast.models.sharing import Share
from fieldcast.models.videos import Video
from fieldcast.outbox import services as outbox
from fieldcast.settings import Settings
from notifications import chat as chat_transport
from tests import factories
from tests.live_server import committed_factories
from tests.worker_support import install_worker_context, run_burst
from workers.jobs import run_outbox_job

PROBLEM_JSON = "application/problem+json"
PUBLIC_BASE_URL = "https://api.fieldcast.test"
# Cards link to the app (universal links), not to the API.
APP_LINK_BASE = "https://app.fieldcast.test"
SLACK_URL = "https://hooks.slack.com/services/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"
WORKFLOW_URL = (
    "https://prod-12.westeurope.logic.azure.com:443/workflows/0a1b2c3d4e5f/triggers/manual/"
    "paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=Zx9Yw8Vu7Ts6"
)
CONNECTOR_URL = (
    "https://contoso.webhook.office.com/webhookb2/1f2e3d4c@5b6a7980/IncomingWebhook/"
    "a1b2c3d4e5f6/0f9e8d7c6b5a"
)


# -- the chat service ------------------------------------------------------------------------------


@dataclass
class Post:
    path: str
    body: dict[str, Any]
    content_type: str


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


class ChatService:
    """Slack and Teams as far as an incoming webhook can tell: it records what is posted and
    answers `ok`, or the answers it was told to give next (a 500, a 429, a 404, a slow one)."""

    def __init__(self) -> None:
        self.posts: list[Post] = []
        self.answers: list[Answer] = []
        self.lock = threading.Lock()
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length))
                with service.lock:
                    service.posts.append(
                        Post(self.path, body, self.headers.get("Content-Type", ""))
                    )
                    answer = service.answers.pop(0) if service.answers else Answer(200, b"ok")
                time.sleep(answer.delay_s)
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # a caller that timed out is gone: so was the chat service's answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_port}"

    def webhook_url(self, channel: str) -> str:
        """A Slack-shaped webhook URL whose last part, as in Slack's, is the secret."""
        return f"{self.base}/services/T0FIELDCA/{channel}/{secrets.token_urlsafe(18)}"

    def answer_next(self, *answers: Answer) -> None:
        with self.lock:
            self.answers.extend(answers)

    def posted_to(self, url: str) -> list[dict[str, Any]]:
        path = url[len(self.base) :]
        return [post.body for post in self.posts if post.path == path]


@pytest.fixture
def chat() -> Iterator[ChatService]:
    service = ChatService()
    thread = threading.Thread(target=service.server.serve_forever, daemon=True)
    thread.start()
    yield service
    service.server.shutdown()
    service.server.server_close()
    thread.join(timeout=10)


def loopback_allowed(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings,
        webhook_allowed_hosts=(*settings.webhook_allowed_hosts, "127.0.0.1"),
        public_base_url=PUBLIC_BASE_URL,
        app_link_base=APP_LINK_BASE,
    )


# -- the API -------------------------------------------------------------------------------------


def _team(org: Any) -> Any:
    return factories.TeamFactory(org=org)


def _url(team_id: Any, suffix: str = "") -> str:
    return f"/api/v1/teams/{team_id}/webhooks{suffix}"


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    body: dict[str, Any] = response.get_json()
    assert body["code"] == code, body
    return body


def _add(client: Any, headers: dict[str, str], team_id: Any, kind: str, url: str) -> Any:
    return client.post(_url(team_id), json={"kind": kind, "url": url}, headers=headers)


def test_admin_adds_lists_and_removes_webhooks_and_never_sees_a_url_again(
    client: Any, session: Any, org: Any, admin: Any, auth: Any
) -> None:
    headers = auth(admin)
    team = _team(org)

    slack = _add(client, headers, team.id, "slack", SLACK_URL)
    assert slack.status_code == 201, slack.get_json()
    workflow = _add(client, headers, team.id, "teams", WORKFLOW_URL)
    assert workflow.status_code == 201, workflow.get_json()
    connector = _add(client, headers, team.id, "teams", CONNECTOR_URL)
    assert connector.status_code == 201, connector.get_json()

    created = slack.get_json()
    assert created["kind"] == "slack"
    assert created["team_id"] == str(team.id)
    assert created["created_by_id"] == str(admin.id)
    assert created["url"] == "https://hooks.slack.com/…AbCd"
    assert workflow.get_json()["url"] == "https://prod-12.westeurope.logic.azure.com/…7Ts6"
    assert connector.get_json()["url"] == "https://contoso.webhook.office.com/…6b5a"

    listed = client.get(_url(team.id), headers=headers)
    assert listed.status_code == 200
    assert listed.get_json()["items"] == [
        slack.get_json(),
        workflow.get_json(),
        connector.get_json(),
    ]
    every_answer = "".join(r.get_data(as_text=True) for r in (slack, workflow, connector, listed))
    for secret in ("q1w2e3r4t5y6u7i8o9p0", "0a1b2c3d4e5f", "sig=", "a1b2c3d4e5f6"):
        assert secret not in every_answer
    # Stored whole: the worker needs it.
    stored = session.scalars(select(TeamWebhook.url).where(TeamWebhook.team_id == team.id)).all()
    assert set(stored) == {SLACK_URL, WORKFLOW_URL, CONNECTOR_URL}

    removed = client.delete(_url(team.id, f"/{created['id']}"), headers=headers)
    assert removed.status_code == 204
    remaining = client.get(_url(team.id), headers=headers).get_json()["items"]
    assert [item["id"] for item in remaining] == [
        workflow.get_json()["id"],
        connector.get_json()["id"],
    ]
    _problem(client.delete(_url(team.id, f"/{created['id']}"), headers=headers), 404, "not_found")


def test_only_admins_of_the_organisation_manage_webhooks(
    client: Any, org: Any, admin: Any, rep: Any, outsider: Any, auth: Any
) -> None:
    team = _team(org)
    other_team = _team(org)
    added = _add(client, auth(admin), team.id, "slack", SLACK_URL)
    assert added.status_code == 201
    webhook_id = added.get_json()["id"]

    # Members see the team, so they are told they may not, rather than that it is not there.
    as_rep = auth(rep)
    _problem(client.get(_url(team.id), headers=as_rep), 403, "permission_denied")
    _problem(_add(client, as_rep, team.id, "slack", SLACK_URL + "x"), 403, "permission_denied")
    _problem(
        client.delete(_url(team.id, f"/{webhook_id}"), headers=as_rep), 403, "permission_denied"
    )

    # Another organisation's team does not exist for its admins.
    as_outsider = auth(outsider)
    _problem(client.get(_url(team.id), headers=as_outsider), 404, "not_found")
    _problem(_add(client, as_outsider, team.id, "slack", SLACK_URL + "x"), 404, "not_found")
    _problem(client.delete(_url(team.id, f"/{webhook_id}"), headers=as_outsider), 404, "not_found")
    _problem(client.get(_url(uuid.uuid4()), headers=auth(admin)), 404, "not_found")

    # A webhook belongs to its team: another team's path does not reach it.
    _problem(
        client.delete(_url(other_team.id, f"/{webhook_id}"), headers=auth(admin)), 404, "not_found"
    )
    assert client.get(_url(team.id)).status_code == 401

    items = client.get(_url(team.id), headers=auth(admin)).get_json()["items"]
    assert [item["id"] for item in items] == [webhook_id]


@pytest.mark.parametrize(
    ("kind", "url", "code"),
    [
        ("slack", "http://hooks.slack.com/services/T0/B0/secret", "webhook_url_not_https"),
        ("slack", "http://127.0.0.1:8080/services/T0/B0/secret", "webhook_url_not_https"),
        ("slack", "https://hooks.slack.evil.com/services/T0/B0/x", "webhook_host_not_allowed"),
        ("slack", "https://hooks.slack.com.evil.com/services/x", "webhook_host_not_allowed"),
        ("teams", "https://webhook.office.com/webhookb2/x", "webhook_host_not_allowed"),
        ("teams", "https://evilwebhook.office.com/webhookb2/x", "webhook_host_not_allowed"),
        ("teams", "https://169.254.169.254/latest/meta-data", "webhook_host_not_allowed"),
        ("slack", "https://user:pw@hooks.slack.com/services/x", "webhook_url_invalid"),
        ("slack", "https://hooks.slack.com:8443/services/x", "webhook_url_invalid"),
        ("slack", "ftp://hooks.slack.com/services/x", "webhook_url_invalid"),
        ("slack", "https://hooks.slack.com/services/a b", "webhook_url_invalid"),
        ("slack", "https://hooks.slack.com\\@evil.com/x", "webhook_url_invalid"),
        ("teams", SLACK_URL, "webhook_kind_mismatch"),
        ("slack", WORKFLOW_URL, "webhook_kind_mismatch"),
    ],
)
def test_webhook_urls_must_be_https_on_a_chat_service(
    client: Any, org: Any, admin: Any, auth: Any, kind: str, url: str, code: str
) -> None:
    team = _team(org)
    body = _problem(_add(client, auth(admin), team.id, kind, url), 422, code)
    assert "url" in body["errors"], body
    assert client.get(_url(team.id), headers=auth(admin)).get_json()["items"] == []


def test_malformed_requests_name_the_field(client: Any, org: Any, admin: Any, auth: Any) -> None:
    team = _team(org)
    headers = auth(admin)
    for body, name in [
        ({"url": SLACK_URL}, "kind"),
        ({"kind": "discord", "url": SLACK_URL}, "kind"),
        ({"kind": "slack"}, "url"),
        ({"kind": "slack", "url": SLACK_URL + "x" * 2048}, "url"),
        ({"kind": "slack", "url": SLACK_URL, "channel": "#sales"}, "channel"),
    ]:
        response = client.post(_url(team.id), json=body, headers=headers)
        assert response.status_code == 422, body
        problem = response.get_json()
        assert problem["code"] == "validation_failed", (body, problem)
        assert name in problem["errors"], (body, problem)


def test_http_is_accepted_for_loopback_only_when_listed(
    client: Any,
    org: Any,
    admin: Any,
    auth: Any,
    context: AppContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    team = _team(org)
    local = "http://127.0.0.1:8080/services/T0/B0/secret-part"
    _problem(_add(client, auth(admin), team.id, "slack", local), 422, "webhook_url_not_https")

    monkeypatch.setattr(context, "settings", loopback_allowed(context.settings))
    added = _add(client, auth(admin), team.id, "slack", local)
    assert added.status_code == 201, added.get_json()
    assert added.get_json()["url"] == "http://127.0.0.1:8080/…part"
    # Only loopback: a listed public host still needs https.
    _problem(
        _add(client, auth(admin), team.id, "slack", "http://hooks.slack.com/services/x"),
        422,
        "webhook_url_not_https",
    )


def test_a_url_once_per_team_and_at_most_ten_per_team(
    client: Any, org: Any, admin: Any, auth: Any
) -> None:
    headers = auth(admin)
    team = _team(org)
    other_team = _team(org)
    assert _add(client, headers, team.id, "slack", SLACK_URL).status_code == 201
    _problem(_add(client, headers, team.id, "slack", f"  {SLACK_URL} "), 409, "webhook_exists")
    # One channel may serve several teams.
    assert _add(client, headers, other_team.id, "slack", SLACK_URL).status_code == 201

    for n in range(1, webhooks.MAX_WEBHOOKS_PER_TEAM):
        response = _add(client, headers, team.id, "slack", f"{SLACK_URL}{n}")
        assert response.status_code == 201, response.get_json()
    _problem(_add(client, headers, team.id, "slack", f"{SLACK_URL}x"), 422, "too_many_webhooks")
    items = client.get(_url(team.id), headers=headers).get_json()["items"]
    assert len(items) == webhooks.MAX_WEBHOOKS_PER_TEAM


def test_the_operations_are_documented(client: Any) -> None:
    spec = client.get("/openapi.json").get_json()
    listing = spec["paths"]["/api/v1/teams/{team_id}/webhooks"]
    one = spec["paths"]["/api/v1/teams/{team_id}/webhooks/{webhook_id}"]
    assert {"200", "401", "403", "404"} <= set(listing["get"]["responses"])
    assert {"201", "401", "403", "404", "409", "422"} <= set(listing["post"]["responses"])
    assert {"204", "401", "403", "404"} <= set(one["delete"]["responses"])
    body = listing["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/WebhookCreate"}
    assert spec["components"]["schemas"]["WebhookCreate"]["required"] == ["kind", "url"]


def test_masked_shows_scheme_host_and_last_four_characters() -> None:
    assert chat_transport.masked(SLACK_URL) == "https://hooks.slack.com/…AbCd"
    assert chat_transport.masked("https://x.webhook.office.com:8443/a/bcdef") == (
        "https://x.webhook.office.com:8443/…cdef"
    )
    assert chat_transport.masked("http://127.0.0.1:8080/hook") == "http://127.0.0.1:8080/…hook"
    assert chat_transport.masked("https://[broken/abcd") == "…"


# -- posting cards through the outbox ------------------------------------------------------------


@pytest.fixture
def ctx(
    monkeypatch: pytest.MonkeyPatch, settings: Settings, committed_db: Database, redis: Redis
) -> AppContext:
    return install_worker_context(monkeypatch, loopback_allowed(settings), committed_db, redis)


@dataclass
class Sales:
    """An organisation where Dana shares a video to teams that have webhooks."""

    ctx: AppContext
    org_id: uuid.UUID
    sender_id: uuid.UUID
    video_id: uuid.UUID

    @property
    def link(self) -> str:
        return f"{APP_LINK_BASE}/videos/{self.video_id}"

    def team(self, *webhooks_: tuple[WebhookKind, str]) -> uuid.UUID:
        with committed_factories(self.ctx.db) as session:
            team = _team(session.get_one(Organisation, self.org_id))
            for kind, url in webhooks_:
                session.add(TeamWebhook(org_id=self.org_id, team_id=team.id, kind=kind, url=url))
            session.commit()
            return uuid.UUID(str(team.id))

    def share(self, team_ids: list[uuid.UUID], message: str = "") -> tuple[uuid.UUID, int]:
        """Release a share to these teams, as the sharing service does, and commit."""
        with self.ctx.db.session() as session:
            share = Share(
                org_id=self.org_id,
                video_id=self.video_id,
                sender_id=self.sender_id,
                message=message,
                audience={"team_ids": [str(t) for t in team_ids]},
                released_at=utcnow(),
            )
            session.add(share)
            session.flush()
            recorded = webhooks.record_share(session, share, team_ids)
            session.commit()
            return share.id, recorded

    def jobs(self, share_id: uuid.UUID) -> list[OutboxJob]:
        with self.ctx.db.session() as session:
            return list(
                session.scalars(
                    select(OutboxJob)
                    .where(OutboxJob.task == webhooks.POST_TASK)
                    .where(OutboxJob.payload["share_id"].astext == str(share_id))
                    .order_by(OutboxJob.dedup_key)
                )
            )

    def job(self, share_id: uuid.UUID) -> OutboxJob:
        [job] = self.jobs(share_id)
        return job

    def seconds_until_due(self, job_id: uuid.UUID, since: datetime | None = None) -> float:
        """How long after `since` (the database's now by default) the job is due again."""
        with self.ctx.db.engine.connect() as conn:
            return float(
                conn.execute(
                    text(
                        "SELECT extract(epoch FROM run_after - coalesce(:since, now())) "
                        "FROM outbox_jobs WHERE id = :id"
                    ),
                    {"id": job_id, "since": since},
                ).scalar_one()
            )

    def database_now(self) -> datetime:
        with self.ctx.db.engine.connect() as conn:
            return conn.execute(text("SELECT clock_timestamp()")).scalar_one()

    def make_due_and_relay(self) -> None:
        """Time passes until the retry is due; the relay puts it back on its queue."""
        with self.ctx.db.engine.begin() as conn:
            conn.execute(text("UPDATE outbox_jobs SET run_after = now() WHERE status = 'pending'"))
        report = outbox.relay(self.ctx.db, self.ctx.dispatcher, grace=timedelta(0))
        assert report.requeued == 1


@pytest.fixture
def sales(ctx: AppContext) -> Sales:
    with committed_factories(ctx.db) as session:
        org: Any = factories.OrganisationFactory()
        sender: Any = factories.UserFactory(org=org, display_name="Dana <Rep> & Co")
        video = Video(org_id=org.id, owner_id=sender.id, title="Pricing <objection> & more")
        session.add(video)
        session.commit()
        return Sales(ctx, org.id, sender.id, video.id)


MESSAGE = "Lead with *ROI*\n<!channel> & move on"


def test_a_share_posts_a_slack_card_and_a_teams_card(sales: Sales, chat: ChatService) -> None:
    slack_url = chat.webhook_url("SLACK")
    teams_url = chat.webhook_url("TEAMS")
    unnamed_url = chat.webhook_url("UNNAMED")
    team = sales.team((WebhookKind.SLACK, slack_url), (WebhookKind.TEAMS, teams_url))
    # Another named team on the same Slack channel: the channel gets one card, not two.
    same_channel = sales.team((WebhookKind.SLACK, slack_url))
    sales.team((WebhookKind.SLACK, unnamed_url))

    share_id, recorded = sales.share([team, same_channel], MESSAGE)
    assert recorded == 2
    # Releasing the same share again records nothing more.
    with sales.ctx.db.session() as session:
        share = session.get_one(Share, share_id)
        assert webhooks.record_share(session, share, [team, same_channel]) == 0
        session.commit()

    assert run_burst() is True
    assert [job.status for job in sales.jobs(share_id)] == [OutboxStatus.DONE] * 2
    assert all(job.queue == "default" for job in sales.jobs(share_id))
    assert chat.posted_to(unnamed_url) == []
    assert all(post.content_type == "application/json" for post in chat.posts)

    [slack] = chat.posted_to(slack_url)
    assert slack == {
        "text": (
            "Dana &lt;Rep&gt; &amp; Co shared Pricing &lt;objection&gt; &amp; more: " + sales.link
        ),
        "blocks": [
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": (
                        "*Dana &lt;Rep&gt; &amp; Co* shared *Pricing &lt;objection&gt; &amp; more*"
                        "\n>Lead with *ROI*\n>&lt;!channel&gt; &amp; move on"
                    ),
                },
            },
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Watch"},
                        "url": sales.link,
                        "style": "primary",
                    }
                ],
            },
        ],
    }

    [teams] = chat.posted_to(teams_url)
    assert teams["type"] == "message"
    [attachment] = teams["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    # Teams shows TextRuns as written: no escaping, and no Markdown either.
    runs = [[run["text"] for run in block["inlines"]] for block in card["body"]]
    assert runs == [
        ["Dana <Rep> & Co", " shared a video"],
        ["Pricing <objection> & more"],
        [MESSAGE],
    ]
    assert all(block["type"] == "RichTextBlock" for block in card["body"])
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Watch", "url": sales.link}]


def test_a_share_to_teams_without_webhooks_records_nothing(sales: Sales) -> None:
    _, recorded = sales.share([sales.team()])
    assert recorded == 0
    _, recorded = sales.share([])
    assert recorded == 0


@pytest.mark.parametrize(
    ("answer", "due_in"),
    [
        (Answer(500, b"internal_error"), (0.5, 2.5)),
        (Answer(503, b"", {"Retry-After": "45"}), (40.0, 45.5)),
        (Answer(429, b"rate_limited", {"Retry-After": "120"}), (115.0, 120.5)),
    ],
    ids=["500", "503-retry-after", "429-retry-after"],
)
def test_a_busy_chat_service_is_tried_again_when_it_asks(
    sales: Sales,
    chat: ChatService,
    capfd: pytest.CaptureFixture[str],
    answer: Answer,
    due_in: tuple[float, float],
) -> None:
    url = chat.webhook_url("BUSY")
    share_id, _ = sales.share([sales.team((WebhookKind.SLACK, url))], "Try the new deck")
    chat.answer_next(answer)

    before = sales.database_now()
    assert run_burst() is True
    job = sales.job(share_id)
    assert job.status is OutboxStatus.PENDING
    assert job.attempts == 1
    assert f"answered {answer.status}" in (job.last_error or "")
    # The delay was chosen at some moment of the run: at least `low` after its start, at
    # most `high` after its end, however slow the run was.
    low, high = due_in
    assert sales.seconds_until_due(job.id, since=before) >= low
    assert sales.seconds_until_due(job.id) <= high

    sales.make_due_and_relay()
    assert run_burst() is True
    job = sales.job(share_id)
    assert job.status is OutboxStatus.DONE
    assert job.attempts == 2
    posts = chat.posted_to(url)
    assert len(posts) == 2 and posts[0] == posts[1]

    logged = "".join(capfd.readouterr())
    secret = url.rsplit("/", 1)[1]
    assert secret not in logged and secret not in (job.last_error or "")


def test_a_gone_channel_fails_for_good_without_revealing_the_url(
    sales: Sales, chat: ChatService, caplog: pytest.LogCaptureFixture
) -> None:
    url = chat.webhook_url("GONE")
    share_id, _ = sales.share([sales.team((WebhookKind.SLACK, url))])
    chat.answer_next(Answer(404, b"channel_not_found"))
    job_id = sales.job(share_id).id

    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="fieldcast")
    assert run_outbox_job(str(job_id)) == "failed"

    job = sales.job(share_id)
    assert job.status is OutboxStatus.FAILED
    assert job.attempts == 1
    error = job.last_error or ""
    assert error.startswith("WebhookRejected: webhook ")
    assert "(127.0.0.1) answered 404 (channel_not_found)" in error
    assert "the channel or its webhook is gone" in error
    secret = url.rsplit("/", 1)[1]
    path = url[len(chat.base) :]
    assert secret not in error and path not in error
    assert f"outbox job {job_id} ({webhooks.POST_TASK}) failed" in caplog.text
    assert secret not in caplog.text and path not in caplog.text
    # Failed for good: running it again posts nothing more.
    assert run_outbox_job(str(job_id)) is None
    assert len(chat.posted_to(url)) == 1


def test_timeouts_and_refused_connections_are_tried_again(
    sales: Sales, chat: ChatService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chat_transport, "READ_TIMEOUT_S", 0.3)
    slow_url = chat.webhook_url("SLOW")
    slow_id, _ = sales.share([sales.team((WebhookKind.TEAMS, slow_url))])
    chat.answer_next(Answer(200, b"1", delay_s=1.0))
    slow = sales.job(slow_id)
    assert run_outbox_job(str(slow.id)) == "pending"
    assert "timed out" in (sales.job(slow_id).last_error or "")

    # Nothing listens on the port of a closed server.
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_port
    closed.server_close()
    refused_url = f"http://127.0.0.1:{port}/services/T0/B0/{secrets.token_urlsafe(18)}"
    refused_id, _ = sales.share([sales.team((WebhookKind.SLACK, refused_url))])
    refused = sales.job(refused_id)
    assert run_outbox_job(str(refused.id)) == "pending"
    error = sales.job(refused_id).last_error or ""
    assert "the connection failed" in error
    assert refused_url.rsplit("/", 1)[1] not in error


def test_nothing_is_posted_to_a_removed_webhook(sales: Sales, chat: ChatService) -> None:
    url = chat.webhook_url("REMOVED")
    share_id, _ = sales.share([sales.team((WebhookKind.SLACK, url))])
    with sales.ctx.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM team_webhooks"))
    assert run_outbox_job(str(sales.job(share_id).id)) == "done"
    assert chat.posts == []


def test_a_host_no_longer_allowed_is_not_posted_to(
    sales: Sales, chat: ChatService, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = chat.webhook_url("NARROWED")
    share_id, _ = sales.share([sales.team((WebhookKind.SLACK, url))])
    narrowed = dataclasses.replace(sales.ctx.settings, webhook_allowed_hosts=("hooks.slack.com",))
    monkeypatch.setattr(sales.ctx, "settings", narrowed)
    assert run_outbox_job(str(sales.job(share_id).id)) == "failed"
    assert "no longer allowed" in (sales.job(share_id).last_error or "")
    assert chat.posts == []


def test_a_long_message_is_cut_to_what_slack_accepts_without_breaking_an_entity() -> None:
    card = cards.ShareCard(sender="Dana", title="<" * 200, message="&" * 1000, link="x")
    section = cards.slack_message(card)["blocks"][0]["text"]["text"]
    assert len(section) <= cards.SLACK_SECTION_MAX
    assert section.endswith("&amp;…")
    assert "*" + "&lt;" * 200 + "*" in section
