"""Invitations, password resets and account deletion, with their emails read from a real SMTP
server (aiosmtpd on loopback) after the outbox tasks that send them ran."""

from __future__ import annotations

import email
import email.policy
import logging
import re
import socket
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword
from aiosmtpd.smtp import Session as SmtpSession
from flask.testing import FlaskClient
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from fieldcast.accounts import invitations
from fieldcast.context import AppContext, set_current
from fieldcast.db import utcnow
from fieldcast.models.accounts import (
    AuthSession,
    Invitation,
    Organisation,
    PasswordReset,
    Role,
    TeamMembership,
    User,
)
from fieldcast.models.devices import Device, Platform
from fieldcast.models.inbox import Notification
from fieldcast.models.outbox import OutboxJob, OutboxStatus
from fieldcast.models.videos import Video
from fieldcast.policy import Principal
from fieldcast.settings import Settings, SettingsError
from notifications.email import (
    Email,
    EmailRejected,
    EmailTransientError,
    FileSink,
    SmtpSender,
    sender_from_settings,
)
from tests import factories
from tests.worker_support import drain_outbox as drain
from tests.worker_support import install_worker_context, run_burst

LEASE = timedelta(seconds=60)
LINK_BASE = "https://links.fieldcast.example"
NEW_PASSWORD = "a-brand-new-password"


# -- a real SMTP server ------------------------------------------------------------------------


@dataclass
class MailServer:
    """aiosmtpd on 127.0.0.1: keeps every message it accepts; `answer_next` makes it answer
    the next DATA commands with the given SMTP replies instead (451 busy, 550 refused)."""

    port: int = 0
    received: list[Envelope] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: SmtpSession, envelope: Envelope) -> str:  # noqa: N802
        if self.answers:
            return self.answers.pop(0)
        self.received.append(envelope)
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: Any, session: SmtpSession, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login.decode(), data.password.decode()))
        ok = data.login == b"mailer" and data.password == b"p@ss word"
        return AuthResult(success=ok, handled=False)

    def answer_next(self, *answers: str) -> None:
        self.answers.extend(answers)

    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(bytes(envelope.content), policy=email.policy.default)  # type: ignore[arg-type]
            for envelope in self.received
        ]

    def url(self, credentials: str = "") -> str:
        return f"smtp://{credentials}127.0.0.1:{self.port}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[MailServer]:
    server = MailServer(port=_free_port())
    controller = Controller(
        server,
        hostname="127.0.0.1",
        port=server.port,
        authenticator=server.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture
def mail(context: AppContext, smtp: MailServer) -> Iterator[MailServer]:
    """The API and the outbox tasks of this process send through `smtp`, with links to
    LINK_BASE."""
    context.settings = replace(context.settings, smtp_url=smtp.url(), app_link_base=LINK_BASE)
    context.email = sender_from_settings(context.settings)
    set_current(context)
    yield smtp
    set_current(None)


def _bodies(message: EmailMessage) -> tuple[str, str]:
    plain = message.get_body(("plain",))
    rich = message.get_body(("html",))
    assert plain is not None and rich is not None
    return plain.get_content(), rich.get_content()


def _token(message: EmailMessage, path: str) -> str:
    """The token of the app link in the message, checked to be the same in both bodies."""
    plain, rich = _bodies(message)
    links = re.findall(re.escape(LINK_BASE + path) + r"\?token=[A-Za-z0-9_%-]+", plain)
    assert len(links) == 1, plain
    assert links[0] in rich.replace("&amp;", "&")
    return parse_qs(urlparse(links[0]).query)["token"][0]


def _login(client: FlaskClient, address: str, password: str) -> Any:
    return client.post("/api/v1/auth/token", json={"email": address, "password": password})


def _bearer(body: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {body['access_token']}"}


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json()
    assert body["code"] == code, body
    return body


def _database_text(session: Session) -> str:
    """Every invitation, reset and outbox row as text: where a leaked token would show."""
    rows: Any = (
        session.execute(
            text(
                "SELECT coalesce(string_agg(i::text, ' '), '') FROM invitations i "
                "UNION ALL SELECT coalesce(string_agg(p::text, ' '), '') FROM password_resets p "
                "UNION ALL SELECT coalesce(string_agg(o::text, ' '), '') FROM outbox_jobs o"
            )
        )
        .scalars()
        .all()
    )
    return " ".join(str(row) for row in rows)


# -- invitations -------------------------------------------------------------------------------


def test_an_invitation_email_carries_a_single_use_link_that_makes_the_account(
    mail: MailServer,
    context: AppContext,
    client: FlaskClient,
    session: Session,
    org: Any,
    admin: Any,
    auth: Any,
) -> None:
    team = factories.TeamFactory(org=org, name="West")
    created = client.post(
        "/api/v1/invitations",
        json={
            "email": "Dana.Invited@Example.com",
            "role": "manager",
            "team_ids": [str(team.id)],
            "display_name": "Dana",
        },
        headers=auth(admin),
    )
    assert created.status_code == 201, created.get_json()
    invitation = created.get_json()
    assert invitation["status"] == "pending"
    assert invitation["email"] == "dana.invited@example.com"
    assert mail.received == []  # sent by the worker, never in the request

    assert drain(context) == 1
    (message,) = mail.messages()
    assert message["To"] == "dana.invited@example.com"
    assert message["From"] == context.settings.email_from
    assert org.name in message["Subject"]
    plain, rich = _bodies(message)
    assert admin.display_name in plain and "Dana" in plain
    assert rich.lstrip().lower().startswith("<!doctype html>")
    token = _token(message, "/invitations/accept")
    # Only a hash is kept: neither the tables nor the outbox hold the link's token.
    assert token not in _database_text(session)

    preview = client.post("/api/v1/invitations/preview", json={"token": token})
    assert preview.status_code == 200
    assert preview.get_json() == {
        "email": "dana.invited@example.com",
        "display_name": "Dana",
        "role": "manager",
        "organisation": {"id": str(org.id), "name": org.name, "slug": org.slug},
        "invited_by": admin.display_name,
        "expires_at": invitation["expires_at"],
    }

    accepted = client.post(
        "/api/v1/invitations/accept",
        json={"token": token, "password": NEW_PASSWORD, "handle": "@Dana_W"},
    )
    assert accepted.status_code == 201, accepted.get_json()
    me = client.get("/api/v1/me", headers=_bearer(accepted.get_json())).get_json()
    assert me["email"] == "dana.invited@example.com"
    assert me["handle"] == "dana_w" and me["display_name"] == "Dana"
    assert me["role"] == "manager"
    assert [t["name"] for t in me["teams"]] == ["West"]
    assert _login(client, "dana.invited@example.com", NEW_PASSWORD).status_code == 200

    again = client.post(
        "/api/v1/invitations/accept",
        json={"token": token, "password": NEW_PASSWORD, "handle": "dana_two"},
    )
    _problem(again, 410, "invitation_used")
    _problem(
        client.post("/api/v1/invitations/preview", json={"token": token}), 410, "invitation_used"
    )
    listed = client.get("/api/v1/invitations?status=accepted", headers=auth(admin)).get_json()
    assert [(i["id"], i["user_id"]) for i in listed["items"]] == [(invitation["id"], me["id"])]


def test_invitations_refuse_duplicates_and_dead_links_with_clear_codes(
    mail: MailServer,
    context: AppContext,
    client: FlaskClient,
    session: Session,
    org: Any,
    admin: Any,
    rep: Any,
    auth: Any,
) -> None:
    headers = auth(admin)
    taken = client.post("/api/v1/invitations", json={"email": rep.email}, headers=headers)
    _problem(taken, 409, "email_taken")

    first = client.post(
        "/api/v1/invitations", json={"email": "sam@example.com"}, headers=headers
    ).get_json()
    twice = client.post("/api/v1/invitations", json={"email": "sam@example.com"}, headers=headers)
    _problem(twice, 409, "invitation_pending")
    drain(context)
    old_token = _token(mail.messages()[-1], "/invitations/accept")

    # A handle already taken leaves the invitation open.
    clash = client.post(
        "/api/v1/invitations/accept",
        json={
            "token": old_token,
            "password": NEW_PASSWORD,
            "handle": rep.handle,
            "display_name": "Sam",
        },
    )
    _problem(clash, 409, "handle_taken")

    # Resending retires the old link and mails a new one.
    resent = client.post(f"/api/v1/invitations/{first['id']}/resend", headers=headers)
    assert resent.status_code == 200 and resent.get_json()["status"] == "pending"
    drain(context)
    assert len(mail.received) == 2
    new_token = _token(mail.messages()[-1], "/invitations/accept")
    assert new_token != old_token
    body = {"password": NEW_PASSWORD, "handle": "sam", "display_name": "Sam"}
    _problem(
        client.post("/api/v1/invitations/accept", json={"token": old_token, **body}),
        404,
        "invitation_not_found",
    )

    assert client.delete(f"/api/v1/invitations/{first['id']}", headers=headers).status_code == 204
    _problem(
        client.post("/api/v1/invitations/accept", json={"token": new_token, **body}),
        410,
        "invitation_revoked",
    )
    _problem(
        client.post(f"/api/v1/invitations/{first['id']}/resend", headers=headers),
        409,
        "invitation_closed",
    )

    # An expired invitation says so, and gives way to a new one for the same address.
    other = client.post(
        "/api/v1/invitations", json={"email": "kim@example.com"}, headers=headers
    ).get_json()
    drain(context)
    kim_token = _token(mail.messages()[-1], "/invitations/accept")
    session.execute(
        update(Invitation)
        .where(Invitation.id == uuid.UUID(other["id"]))
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    _problem(
        client.post("/api/v1/invitations/accept", json={"token": kim_token, **body}),
        410,
        "invitation_expired",
    )
    expired = client.get("/api/v1/invitations?status=expired", headers=headers).get_json()
    assert [i["id"] for i in expired["items"]] == [other["id"]]
    renewed = client.post("/api/v1/invitations", json={"email": "kim@example.com"}, headers=headers)
    assert renewed.status_code == 201
    # Links for a withdrawn or expired invitation are not mailed once they are dead.
    assert drain(context) == 1 and len(mail.received) == 4


def test_an_invitation_without_a_name_needs_one_on_accepting(
    mail: MailServer, context: AppContext, client: FlaskClient, admin: Any, auth: Any
) -> None:
    client.post("/api/v1/invitations", json={"email": "lee@example.com"}, headers=auth(admin))
    drain(context)
    token = _token(mail.messages()[0], "/invitations/accept")
    nameless = client.post(
        "/api/v1/invitations/accept",
        json={"token": token, "password": NEW_PASSWORD, "handle": "lee"},
    )
    assert nameless.status_code == 422
    assert "display_name" in nameless.get_json()["errors"]
    short = client.post(
        "/api/v1/invitations/accept",
        json={"token": token, "password": "short", "handle": "lee", "display_name": "Lee"},
    )
    assert short.status_code == 422 and "password" in short.get_json()["errors"]


# -- password reset ----------------------------------------------------------------------------


def test_a_password_reset_sets_the_password_once_and_ends_every_session(
    mail: MailServer, context: AppContext, client: FlaskClient, session: Session, rep: Any
) -> None:
    phone = _login(client, rep.email, factories.PASSWORD).get_json()
    tablet = _login(client, rep.email, factories.PASSWORD).get_json()

    asked = client.post("/api/v1/auth/password-reset", json={"email": rep.email.upper()})
    assert asked.status_code == 202
    assert drain(context) == 1
    (message,) = mail.messages()
    assert message["To"] == rep.email
    token = _token(message, "/password-reset")
    assert token not in _database_text(session)

    weak = client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "password": "short"}
    )
    assert weak.status_code == 422  # and the link still works
    done = client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD}
    )
    assert done.status_code == 204, done.get_data(as_text=True)

    for tokens in (phone, tablet):
        _problem(client.get("/api/v1/me", headers=_bearer(tokens)), 401, "session_ended")
        refreshed = client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        _problem(refreshed, 401, "session_ended")
    _problem(_login(client, rep.email, factories.PASSWORD), 401, "invalid_credentials")
    assert _login(client, rep.email, NEW_PASSWORD).status_code == 200

    reused = client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "password": "yet-another-one"}
    )
    _problem(reused, 410, "password_reset_used")
    unknown = client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": "not-a-token", "password": "yet-another-one"},
    )
    _problem(unknown, 404, "password_reset_not_found")


def test_an_expired_reset_link_says_so(
    mail: MailServer, context: AppContext, client: FlaskClient, session: Session, rep: Any
) -> None:
    client.post("/api/v1/auth/password-reset", json={"email": rep.email})
    drain(context)
    token = _token(mail.messages()[0], "/password-reset")
    session.execute(update(PasswordReset).values(expires_at=utcnow() - timedelta(seconds=1)))
    expired = client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD}
    )
    _problem(expired, 410, "password_reset_expired")


def test_asking_for_a_reset_tells_nobody_who_has_an_account_and_is_limited(
    mail: MailServer, context: AppContext, client: FlaskClient, redis: Any, rep: Any
) -> None:
    limit = context.settings.password_resets_per_hour
    for address in ("nobody@example.com", rep.email):
        answers = [
            client.post("/api/v1/auth/password-reset", json={"email": address})
            for _ in range(limit)
        ]
        assert {(r.status_code, r.get_data()) for r in answers} == {(202, b"")}
        over = client.post("/api/v1/auth/password-reset", json={"email": address})
        _problem(over, 429, "rate_limited")
        assert int(over.headers["Retry-After"]) > 0
    assert drain(context) == limit  # only the account that exists got mail
    assert {m["To"] for m in mail.messages()} == {rep.email}


# -- the email channel ------------------------------------------------------------------------


def _email(to: str = "pat@example.com") -> Email:
    return Email(to=to, subject="Hello", text="Plain body", html="<p>HTML body</p>")


def test_smtp_logs_in_with_the_credentials_of_the_url(smtp: MailServer, settings: Settings) -> None:
    configured = replace(settings, smtp_url=smtp.url("mailer:p%40ss%20word@"))
    sender = sender_from_settings(configured)
    assert isinstance(sender, SmtpSender)
    sender.send(_email())
    assert smtp.logins == [("mailer", "p@ss word")]
    (message,) = smtp.messages()
    plain, rich = _bodies(message)
    assert (plain.strip(), rich.strip()) == ("Plain body", "<p>HTML body</p>")

    wrong = replace(settings, smtp_url=smtp.url("mailer:wrong@"))
    with pytest.raises(EmailRejected):
        sender_from_settings(wrong).send(_email())


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made on the spot."""
    import ipaddress
    from datetime import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_starttls_upgrades_the_connection_and_checks_the_certificate(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = _self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    server = MailServer(port=_free_port())
    controller = Controller(
        server,
        hostname="127.0.0.1",
        port=server.port,
        tls_context=tls,
        require_starttls=True,
        authenticator=server.authenticate,
    )
    controller.start()
    try:
        configured = replace(
            settings, smtp_url=server.url("mailer:p%40ss%20word@"), smtp_starttls=True
        )
        # Not a certificate the system trusts: refused, and never sent in clear instead.
        with pytest.raises(EmailTransientError):
            sender_from_settings(configured).send(_email())
        assert server.received == [] and server.logins == []

        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        sender_from_settings(configured).send(_email())
        assert server.logins == [("mailer", "p@ss word")]  # after STARTTLS only
        assert len(server.received) == 1
    finally:
        controller.stop()


def test_a_busy_server_is_tried_again_and_a_refusal_fails_for_good(
    mail: MailServer, context: AppContext, client: FlaskClient, session: Session, rep: Any
) -> None:
    mail.answer_next("451 4.3.0 Try again later")
    client.post("/api/v1/auth/password-reset", json={"email": rep.email})
    assert drain(context) == 1
    job = session.scalars(select(OutboxJob)).one()
    session.refresh(job)
    assert job.status is OutboxStatus.PENDING and job.attempts == 1
    assert "451" in (job.last_error or "")
    session.execute(update(OutboxJob).values(run_after=func.now()))
    assert drain(context) == 1
    session.refresh(job)
    assert job.status is OutboxStatus.DONE and len(mail.received) == 1

    mail.answer_next("550 5.1.1 No such mailbox")
    with pytest.raises(EmailRejected):
        assert context.email is not None
        context.email.send(_email())
    with pytest.raises(EmailTransientError):
        sender_from_settings(
            replace(context.settings, smtp_url=f"smtp://127.0.0.1:{_free_port()}")
        ).send(_email())


def test_a_refused_address_fails_the_job_for_good(
    mail: MailServer, context: AppContext, client: FlaskClient, session: Session, rep: Any
) -> None:
    mail.answer_next("550 5.1.1 No such mailbox")
    client.post("/api/v1/auth/password-reset", json={"email": rep.email})
    drain(context)
    job = session.scalars(select(OutboxJob)).one()
    session.refresh(job)
    assert job.status is OutboxStatus.FAILED and job.attempts == 1
    assert mail.received == []


def test_without_smtp_emails_are_files_in_the_data_dir_and_the_log_shows_no_link(
    context: AppContext,
    client: FlaskClient,
    admin: Any,
    auth: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    context.settings = replace(
        context.settings, smtp_url=None, data_dir=tmp_path, app_link_base=LINK_BASE
    )
    context.email = sender_from_settings(context.settings)
    assert isinstance(context.email, FileSink)
    set_current(context)
    try:
        caplog.set_level(logging.INFO)
        created = client.post(
            "/api/v1/invitations", json={"email": "ola@example.com"}, headers=auth(admin)
        )
        assert created.status_code == 201
        assert drain(context) == 1
    finally:
        set_current(None)
    (written,) = (tmp_path / "outbox-mail").glob("*.eml")
    message = email.message_from_bytes(written.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    assert message["To"] == "ola@example.com"
    token = _token(message, "/invitations/accept")
    assert "ola@example.com" in caplog.text and str(written) in caplog.text
    assert token not in caplog.text


def test_smtp_settings_are_checked_at_start() -> None:
    assert Settings.from_env({}).smtp_url is None
    good = Settings.from_env(
        {"SMTP_URL": "smtp://u:p@mail.example.com:587", "SMTP_STARTTLS": "true"}
    )
    assert good.smtp_starttls and good.smtp_url == "smtp://u:p@mail.example.com:587"
    for env, message in (
        ({"SMTP_URL": "http://mail.example.com"}, "SMTP_URL"),
        ({"SMTP_URL": "smtp://mail.example.com:port"}, "port"),
        ({"SMTP_URL": "smtps://mail.example.com", "SMTP_STARTTLS": "1"}, "SMTP_STARTTLS"),
        ({"EMAIL_FROM": "nobody"}, "EMAIL_FROM"),
        ({"INVITATION_TTL_S": "10"}, "INVITATION_TTL_S"),
    ):
        with pytest.raises(SettingsError, match=message):
            Settings.from_env(env)


# -- account deletion --------------------------------------------------------------------------


def _belongings(session: Session, user: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name, model in (
        ("sessions", AuthSession),
        ("devices", Device),
        ("inbox", Notification),
        ("teams", TeamMembership),
    ):
        counts[name] = session.scalar(  # type: ignore[assignment]
            select(func.count()).select_from(model).where(model.user_id == user.id)
        )
    return counts


def test_deleting_my_account_erases_me_and_keeps_my_videos_for_the_team(
    client: FlaskClient, session: Session, org: Any, admin: Any, rep: Any, auth: Any
) -> None:
    team = factories.TeamFactory(org=org)
    factories.MembershipFactory(team=team, user=rep)
    session.add_all(
        [
            Device(
                org_id=org.id,
                user_id=rep.id,
                token="fcm-token",
                platform=Platform.IOS,
                last_registered_at=utcnow(),
            ),
            Notification(org_id=org.id, user_id=rep.id, type="video.playable", title="t", body=""),
        ]
    )
    video = Video(org_id=org.id, owner_id=rep.id, title="Pricing objection")
    session.add(video)
    session.flush()
    old_email, user_id = rep.email, rep.id
    tokens = _login(client, rep.email, factories.PASSWORD).get_json()
    headers = _bearer(tokens)

    wrong = client.delete("/api/v1/me", json={"password": "not-my-password"}, headers=headers)
    _problem(wrong, 403, "reauthentication_required")
    session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == rep.id)
        .values(created_at=utcnow() - timedelta(minutes=30))
    )
    stale = client.delete("/api/v1/me", headers=headers)
    _problem(stale, 403, "reauthentication_required")
    assert client.get("/api/v1/me", headers=headers).status_code == 200  # nothing changed

    gone = client.delete("/api/v1/me", json={"password": factories.PASSWORD}, headers=headers)
    assert gone.status_code == 204, gone.get_data(as_text=True)

    _problem(client.get("/api/v1/me", headers=headers), 401, "session_ended")
    # The login sessions are deleted, not only ended: the refresh token is unknown now.
    _problem(
        client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}),
        401,
        "invalid_refresh_token",
    )
    _problem(_login(client, old_email, factories.PASSWORD), 401, "invalid_credentials")
    assert _belongings(session, rep) == {"sessions": 0, "devices": 0, "inbox": 0, "teams": 0}
    row = session.get(User, user_id)
    assert row is not None
    session.refresh(row)
    assert row.display_name == "Former member" and old_email not in row.email
    assert row.deleted_at is not None and not row.is_active and row.password_hash is None

    admin_headers = auth(admin)
    kept = client.get(f"/api/v1/videos/{video.id}", headers=admin_headers)
    assert kept.status_code == 200
    author = client.get(f"/api/v1/users/{user_id}", headers=admin_headers).get_json()
    assert author["display_name"] == "Former member" and author["handle"].startswith("former_")
    directory = client.get("/api/v1/users", headers=admin_headers).get_json()
    assert str(user_id) not in {u["id"] for u in directory["items"]}
    # The address is free again: the person can be invited back.
    again = client.post("/api/v1/invitations", json={"email": old_email}, headers=admin_headers)
    assert again.status_code == 201


def test_a_fresh_login_confirms_deletion_without_a_password(client: FlaskClient, rep: Any) -> None:
    headers = _bearer(_login(client, rep.email, factories.PASSWORD).get_json())
    assert client.delete("/api/v1/me", headers=headers).status_code == 204


def test_admins_delete_other_accounts_but_the_last_admin_stays(
    client: FlaskClient, session: Session, org: Any, admin: Any, rep: Any, auth: Any
) -> None:
    headers = auth(admin)
    _problem(client.delete(f"/api/v1/users/{admin.id}", headers=headers), 422, "own_account")
    _problem(
        client.delete("/api/v1/me", json={"password": factories.PASSWORD}, headers=headers),
        409,
        "last_admin",
    )
    report = factories.UserFactory(org=org)
    report.manager_id = rep.id
    session.flush()
    assert client.delete(f"/api/v1/users/{rep.id}", headers=headers).status_code == 204
    assert client.delete(f"/api/v1/users/{rep.id}", headers=headers).status_code == 204
    revive = client.patch(
        f"/api/v1/users/{rep.id}",
        json={"is_active": True, "password": "a-long-enough-password"},
        headers=headers,
    )
    _problem(revive, 409, "account_deleted")
    session.refresh(report)
    assert report.manager_id is None

    second = factories.UserFactory(org=org, admin=True)
    assert client.delete(f"/api/v1/users/{second.id}", headers=headers).status_code == 204
    other = factories.UserFactory(org=org, admin=True)
    own = client.delete("/api/v1/me", json={"password": factories.PASSWORD}, headers=headers)
    assert own.status_code == 204 and other.is_active


# -- through a real worker ---------------------------------------------------------------------


def test_a_worker_sends_the_invitation_after_the_request_commits(
    smtp: MailServer,
    settings: Settings,
    committed_db: Any,
    redis: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The outbox row commits with the invitation, is dispatched to RQ, and a burst worker
    (its job in a forked work horse) sends the email to the SMTP server."""
    configured = replace(settings, smtp_url=smtp.url(), app_link_base=LINK_BASE)
    ctx = install_worker_context(monkeypatch, configured, committed_db, redis)
    with ctx.db.unit_of_work() as session:
        org = Organisation(id=uuid.uuid4(), name="Acme Field", slug=f"acme-{uuid.uuid4().hex[:8]}")
        session.add(org)
        admin = User(
            org_id=org.id,
            email=f"admin-{uuid.uuid4().hex[:8]}@example.com",
            display_name="Ada Admin",
            handle="ada",
            role=Role.ADMIN,
        )
        session.add(admin)
        session.flush()
        invitations.invite(
            session,
            Principal(user=admin),
            secret_key=configured.secret_key or "",
            ttl=timedelta(days=7),
            email="new.rep@example.com",
        )
    assert smtp.received == []

    assert run_burst(["default"])
    (message,) = smtp.messages()
    assert message["To"] == "new.rep@example.com"
    assert "Acme Field" in message["Subject"] and "Ada Admin" in _bodies(message)[0]
    token = _token(message, "/invitations/accept")
    with ctx.db.session() as session:
        job = session.scalars(select(OutboxJob)).one()
        assert job.status is OutboxStatus.DONE
        found = invitations.find_by_token(session, token)
        assert found.email == "new.rep@example.com"
