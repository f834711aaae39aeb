"""The audit log: who changed people, permissions and content, in the change's own transaction.

`record` adds one `AuditEntry` with the caller's session: the entry commits or rolls back with
the change it describes, so the log never claims a change that did not happen nor misses one
that did. Services call it where the change happens (`accounts`, `integrations`,
`moderation`), which is why it lives here, beside `policy`, importing only the data layer:
every domain package can use it without an import circle (`accounts` cannot import
`moderation`, which stands on `inbox`, which stands on `videos`, which imports `accounts`).

What an entry holds:

- `action`: one of `AuditAction`, a stable name clients filter on (`user.updated`);
- `actor_id`: who did it (None when nobody did: a job). An API token's id rides in `details`
  as `api_token_id` when the change came through one;
- `object_type` / `object_id`: what it was done to;
- `details`: what changed, as ids, roles, states and field names. Never a secret (passwords,
  tokens, token hashes, webhook URLs: `record` refuses keys that name one) and no personal
  data beyond ids (no emails or names of people: an erased account leaves nothing readable
  behind in the log; the export shows the actor's current name, read when exporting).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session

from fieldcast.models.moderation import AuditEntry


class AuditAction(enum.StrEnum):
    """Every action the log records, with its one-line meaning (`description`)."""

    description: str

    def __new__(cls, value: str, description: str = "") -> AuditAction:
        member = str.__new__(cls, value)
        member._value_ = value
        member.description = description
        return member

    USER_CREATED = "user.created", "A person's account was made (by an admin, or by accepting)."
    USER_UPDATED = "user.updated", "A person's account changed: `fields`, and role etc. from/to."
    USER_DELETED = "user.deleted", "A person's account was deleted and anonymised."
    TEAM_CREATED = "team.created", "A team was made."
    TEAM_UPDATED = "team.updated", "A team changed: `fields`, name and parent from/to."
    TEAM_DELETED = "team.deleted", "A team was deleted."
    TEAM_MEMBER_SET = "team.member_set", "Someone joined a team, or their role in it changed."
    TEAM_MEMBER_REMOVED = "team.member_removed", "Someone was taken out of a team."
    API_TOKEN_CREATED = "api_token.created", "An integration's API token was made."
    API_TOKEN_REVOKED = "api_token.revoked", "An integration's API token was revoked."
    SCIM_TOKEN_CREATED = "scim_token.created", "The organisation's SCIM token was made (rotated)."
    SCIM_TOKEN_REVOKED = "scim_token.revoked", "The organisation's SCIM token was revoked."
    IDENTITY_PROVIDER_CHANGED = (
        "identity_provider.changed",
        "The organisation's identity provider was set, changed or removed (`issuer`).",
    )
    INVITATION_CREATED = "invitation.created", "Someone was invited by email."
    INVITATION_REVOKED = "invitation.revoked", "An invitation was withdrawn."
    INVITATION_RESENT = "invitation.resent", "An invitation was sent again with a new link."
    WEBHOOK_CREATED = "webhook.created", "A Slack or Teams webhook was added to a team."
    WEBHOOK_DELETED = "webhook.deleted", "A team's Slack or Teams webhook was removed."
    VIDEO_HIDDEN = "video.hidden", "An admin hid a video on a report."
    COMMENT_HIDDEN = "comment.hidden", "An admin hid a comment on a report."
    VIDEO_UNHIDDEN = "video.unhidden", "An admin showed a hidden video again."
    COMMENT_UNHIDDEN = "comment.unhidden", "An admin showed a hidden comment again."
    REPORT_DISMISSED = "report.dismissed", "An admin kept the reported content."
    AUDIT_LOG_EXPORTED = "audit_log.exported", "An admin exported the audit log."


class Actor(Protocol):
    """Who acts: a `policy.Principal` (typed here without importing the policy)."""

    @property
    def org_id(self) -> uuid.UUID: ...

    @property
    def user_id(self) -> uuid.UUID: ...


# Words that name a secret in a detail's key ("password", "token_hash", "webhook_url"): such a
# key is a bug in the caller, refused before anything is written.
_SECRET_WORDS = frozenset({"password", "secret", "hash", "url", "nonce", "token"})
# Keys that contain a secret word but name no secret.
_NOT_SECRET = frozenset({"api_token_id", "token_id"})


def _refuse_secrets(details: Mapping[str, Any], path: str = "") -> None:
    for key, value in details.items():
        name = str(key).lower()
        if name not in _NOT_SECRET and _SECRET_WORDS & set(name.split("_")):
            raise ValueError(f"audit details must not hold secrets: {path}{key}")
        if isinstance(value, Mapping):
            _refuse_secrets(value, f"{path}{key}.")


def plain(value: Any) -> Any:
    """A detail as JSON holds it: ids, enums and dates as strings, collections walked."""
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return value


def change(before: Any, after: Any) -> dict[str, Any]:
    """`{"from": ..., "to": ...}` of one field."""
    return {"from": plain(before), "to": plain(after)}


def record(
    session: Session,
    actor: Actor | uuid.UUID | None,
    action: AuditAction,
    object_type: str,
    object_id: uuid.UUID | None,
    details: Mapping[str, Any] | None = None,
    *,
    org_id: uuid.UUID | None = None,
) -> AuditEntry:
    """Add one entry in the caller's transaction (flushed with the caller's next flush).

    `actor` is the principal acting, or a user's id (then `org_id` is required), or None for
    work nobody started by hand (`org_id` required)."""
    data = dict(details or {})
    _refuse_secrets(data)
    if actor is None or isinstance(actor, uuid.UUID):
        if org_id is None:
            raise ValueError("an entry without a principal needs its org_id")
        actor_id = actor
    else:
        org_id, actor_id = actor.org_id, actor.user_id
        via = getattr(actor, "api_token_id", None)
        if via is not None:
            data["api_token_id"] = via
    entry = AuditEntry(
        org_id=org_id,
        actor_id=actor_id,
        action=AuditAction(action).value,
        object_type=object_type,
        object_id=object_id,
        details=plain(data),
    )
    session.add(entry)
    return entry


__all__ = ["Actor", "AuditAction", "change", "plain", "record"]
