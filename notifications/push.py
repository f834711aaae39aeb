"""Push channels behind one small interface: FCM when configured, a local sink otherwise.

A sink takes a batch of messages (at most 500, one per device) and answers one result per
message, in order. The local sink writes every message to the log (logger `fieldcast.push`) and
accepts it, so the embedded default and demos show what would have been sent.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

log = logging.getLogger("fieldcast.push")

MAX_BATCH = 500
# Data keys whose values are credentials: never written to a log.
SECRET_DATA = frozenset({"receipt_token"})


@dataclass(frozen=True)
class PushMessage:
    notification_id: uuid.UUID
    user_id: uuid.UUID
    type: str
    title: str
    body: str
    # Deep-link ids; FCM data payloads carry strings only.
    data: dict[str, str] = field(default_factory=dict)
    device_id: uuid.UUID | None = None
    token: str = ""
    platform: str = "android"
    # The app icon's badge: the user's unread inbox items.
    badge: int | None = None
    # The keys (and their args, in order) the app words the title and body by, from its own
    # string resources; `title` and `body` are the same text worded by the server, shown when
    # the app has no string for the key.
    title_loc_key: str | None = None
    title_loc_args: tuple[str, ...] = ()
    body_loc_key: str | None = None
    body_loc_args: tuple[str, ...] = ()
    # Notifications about the same thing (a video) are grouped under this on the phone:
    # APNs `thread-id`, Android `tag`.
    group: str | None = None
    # An HTTPS URL of a picture to show with it (a video's poster), fetched by the phone.
    image: str | None = None

    @property
    def collapse_id(self) -> str:
        """The same notification sent twice replaces itself on the phone instead of stacking."""
        return str(self.notification_id)

    @property
    def thread_id(self) -> str:
        return self.group or self.type

    @property
    def tag(self) -> str:
        return self.group or self.collapse_id


@dataclass(frozen=True)
class PushResult:
    accepted: bool
    message_id: str | None = None
    # A stable reason when not accepted: unregistered, invalid_token, sender_mismatch,
    # quota_exceeded, unavailable, internal, apns_auth, fcm_error.
    error: str | None = None
    # The token will never work again: forget the device.
    drop_token: bool = False
    # Trying again later may succeed (429, 5xx, timeouts); `retry_after` is what FCM asked for.
    transient: bool = False
    retry_after: float | None = None


class PushSink(Protocol):
    def send_each(self, messages: Sequence[PushMessage]) -> list[PushResult]: ...


class LogSink:
    """Records each message as one log line instead of sending it, and accepts it."""

    def send_each(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        results = []
        for message in messages:
            fields = asdict(message)
            fields.pop("token")  # a credential of the device; the device id names it
            # The receipt token is a credential too (it marks the push delivered or opened).
            fields["data"] = {
                key: "[redacted]" if key in SECRET_DATA else value
                for key, value in message.data.items()
            }
            log.info(
                "push (local sink) to user %s: %s",
                message.user_id,
                message.title,
                extra={
                    "push": {
                        k: str(v) if isinstance(v, uuid.UUID) else v for k, v in fields.items()
                    }
                },
            )
            results.append(PushResult(accepted=True, message_id=f"local/{uuid.uuid4()}"))
        return results
