"""Push channels behind one small interface: FCM when configured, a local sink otherwise.

The local sink writes every message to the log (logger `fieldcast.push`), so the embedded
default and demos show what would have been sent.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass, field
from typing import Protocol

log = logging.getLogger("fieldcast.push")


@dataclass(frozen=True)
class PushMessage:
    notification_id: uuid.UUID
    user_id: uuid.UUID
    type: str
    title: str
    body: str
    # Deep-link ids; FCM data payloads carry strings only.
    data: dict[str, str] = field(default_factory=dict)


class PushSink(Protocol):
    def send(self, message: PushMessage) -> None: ...


class LogSink:
    """Records each message as one log line instead of sending it."""

    def send(self, message: PushMessage) -> None:
        fields = asdict(message)
        log.info(
            "push (local sink) to user %s: %s",
            message.user_id,
            message.title,
            extra={
                "push": {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in fields.items()}
            },
        )
