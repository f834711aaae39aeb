"""Email channels behind one small interface: SMTP when configured, local files otherwise.

The SMTP channel uses the standard library's `smtplib` and `email` packages. They are
maintained with CPython itself (security fixes ship with every Python release), speak SMTP,
SMTPS and STARTTLS with the system's certificate checks, and are synchronous like the RQ
workers that send mail, so no event loop has to be started per message. Its errors map onto
the outbox's: a 4xx answer, a refused or dropped connection or a timeout may succeed later
(`EmailTransientError`); a 5xx answer will not (`EmailRejected`).

Without SMTP (the embedded default), `FileSink` writes each message as an `.eml` file in a
directory of the data dir and logs one line naming the recipient, the subject and the file:
never the body, which carries single-use links.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

log = logging.getLogger("fieldcast.email")


@dataclass(frozen=True)
class Email:
    """One message to one person, with a plain-text body and an HTML alternative."""

    to: str
    subject: str
    text: str
    html: str
    # A stable id per logical message: a retried send carries the same Message-ID, so mail
    # clients that received it once show it once.
    message_id: str | None = None


class EmailTransientError(Exception):
    """Sending may succeed later: the server is unreachable, busy (4xx) or timed out."""


class EmailRejected(Exception):
    """The server refused the message for good (5xx): a wrong address, a policy refusal."""


class EmailSender(Protocol):
    def send(self, message: Email) -> None: ...


def build_message(message: Email, sender: str) -> EmailMessage:
    """The MIME message: text/plain with a text/html alternative."""
    mime = EmailMessage()
    mime["From"] = sender
    mime["To"] = message.to
    mime["Subject"] = message.subject
    mime["Date"] = formatdate(localtime=False, usegmt=True)
    domain = sender.rsplit("@", 1)[-1].strip(" >") or "localhost"
    mime["Message-ID"] = (
        f"<{message.message_id}@{domain}>" if message.message_id else make_msgid(domain=domain)
    )
    mime["Auto-Submitted"] = "auto-generated"
    mime.set_content(message.text)
    mime.add_alternative(message.html, subtype="html")
    return mime


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    starttls: bool
    timeout: float

    @classmethod
    def from_url(cls, url: str, *, starttls: bool = False, timeout: float = 30) -> SmtpConfig:
        """smtp://user:password@host:port (STARTTLS when `starttls`), smtps://... for TLS from
        the first byte. User and password are percent-decoded."""
        parsed = urlparse(url)
        implicit = parsed.scheme == "smtps"
        return cls(
            host=parsed.hostname or "localhost",
            port=parsed.port or (465 if implicit else 587 if starttls else 25),
            username=unquote(parsed.username) if parsed.username else None,
            password=unquote(parsed.password) if parsed.password else None,
            implicit_tls=implicit,
            starttls=starttls,
            timeout=timeout,
        )


class SmtpSender:
    """Sends each message over its own SMTP connection (mail is rare: invitations, resets)."""

    def __init__(self, config: SmtpConfig, sender: str) -> None:
        self.config = config
        self.sender = sender

    def _connect(self) -> smtplib.SMTP:
        config = self.config
        context = ssl.create_default_context()
        client: smtplib.SMTP
        if config.implicit_tls:
            client = smtplib.SMTP_SSL(
                config.host, config.port, timeout=config.timeout, context=context
            )
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
            if config.starttls:
                client.starttls(context=context)
        if config.username:
            client.login(config.username, config.password or "")
        return client

    def send(self, message: Email) -> None:
        mime = build_message(message, self.sender)
        try:
            with self._connect() as client:
                client.send_message(mime)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(400 <= code < 500 for code in codes):
                raise EmailTransientError(f"recipient deferred ({codes})") from None
            raise EmailRejected(f"recipient refused ({codes})") from None
        except smtplib.SMTPResponseException as exc:
            # Server replies, never the message: no link or token reaches a log this way.
            if 400 <= exc.smtp_code < 500:
                raise EmailTransientError(f"SMTP server answered {exc.smtp_code}") from None
            raise EmailRejected(f"SMTP server answered {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise EmailTransientError(f"SMTP server unreachable: {type(exc).__name__}") from None
        log.info("email sent to %s: %s", message.to, message.subject)


class FileSink:
    """Writes each message as an .eml file instead of sending it (no SMTP configured)."""

    def __init__(self, directory: Path, sender: str) -> None:
        self.directory = directory
        self.sender = sender

    def send(self, message: Email) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{message.message_id or uuid.uuid4()}.eml"
        path = self.directory / name
        path.write_bytes(bytes(build_message(message, self.sender)))
        log.info(
            "email (local sink) to %s: %s, written to %s",
            message.to,
            message.subject,
            path,
        )


class EmailSettings(Protocol):
    """What choosing a channel reads of the process's settings."""

    @property
    def smtp_url(self) -> str | None: ...
    @property
    def smtp_starttls(self) -> bool: ...
    @property
    def smtp_timeout_s(self) -> int: ...
    @property
    def email_from(self) -> str: ...
    @property
    def data_dir(self) -> Path: ...


def sender_from_settings(settings: EmailSettings) -> EmailSender:
    """SMTP when SMTP_URL is set, else .eml files in `<data dir>/outbox-mail`."""
    if settings.smtp_url:
        config = SmtpConfig.from_url(
            settings.smtp_url, starttls=settings.smtp_starttls, timeout=settings.smtp_timeout_s
        )
        return SmtpSender(config, settings.email_from)
    return FileSink(settings.data_dir / "outbox-mail", settings.email_from)
