"""An admin sets up the organisation's LRS, sees how delivery goes, and switches it off.

With no LRS, or one switched off, nothing is recorded: statements start with the moment it is
on. Switched off, what was recorded and not sent waits (and goes once it is on again); removed,
the LRS and its waiting statements are gone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from fieldcast.errors import InvalidInput
from fieldcast.models.xapi import ActorFormat, LearningRecordStore, XapiStatement
from fieldcast.policy import Principal, authorize

ACTION = "xapi.configure"


@dataclass(frozen=True)
class Status:
    store: LearningRecordStore | None
    backlog: int
    oldest_waiting_at: datetime | None
    set_aside: int


def status(session: Session, principal: Principal) -> Status:
    """The organisation's LRS, if it has one, and its delivery: the backlog, failures."""
    authorize(principal, ACTION)
    store = session.get(LearningRecordStore, principal.org_id)
    backlog, oldest = session.execute(
        select(func.count(), func.min(XapiStatement.created_at)).where(
            XapiStatement.org_id == principal.org_id, XapiStatement.sent_at.is_(None)
        )
    ).one()
    set_aside = session.scalar(
        select(func.count()).where(
            XapiStatement.org_id == principal.org_id, XapiStatement.error.is_not(None)
        )
    )
    return Status(store, backlog, oldest, set_aside or 0)


def configure(
    session: Session,
    principal: Principal,
    *,
    endpoint: str,
    key: str,
    secret: str | None,
    enabled: bool = True,
    actor_format: ActorFormat = ActorFormat.ACCOUNT,
    account_home_page: str | None = None,
) -> LearningRecordStore:
    """Set the LRS up, or change it. The secret may be left out to keep the stored one. A
    change clears the delivery's backoff: the next period tries at once."""
    authorize(principal, ACTION)
    endpoint = _http_url(endpoint, "endpoint")
    if account_home_page:
        account_home_page = _http_url(account_home_page, "account_home_page")
    store = session.get(LearningRecordStore, principal.org_id)
    if store is None:
        if not secret:
            raise InvalidInput(errors={"secret": ["Required to set up the LRS."]})
        store = LearningRecordStore(org_id=principal.org_id, secret=secret)
        session.add(store)
    elif secret:
        store.secret = secret
    store.endpoint = endpoint
    store.key = key
    store.enabled = enabled
    store.actor_format = actor_format
    store.account_home_page = account_home_page or None
    store.failures = 0
    store.next_attempt_at = None
    session.flush()
    return store


def remove(session: Session, principal: Principal) -> None:
    """Forget the LRS and the statements waiting for it (none set up: nothing to do)."""
    authorize(principal, ACTION)
    session.execute(delete(XapiStatement).where(XapiStatement.org_id == principal.org_id))
    session.execute(
        delete(LearningRecordStore).where(LearningRecordStore.org_id == principal.org_id)
    )


def _http_url(value: str, field: str) -> str:
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # (an unclosed IPv6 bracket, say)
        host = None
    if host is None or parts.scheme not in ("http", "https"):
        raise InvalidInput(errors={field: ["An http(s) URL."]})
    if parts.username or parts.password:
        raise InvalidInput(errors={field: ["Give the credentials as key and secret."]})
    return value.rstrip("/")
