"""A push sink that accepts every push and keeps it, for the tests of what gets pushed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from notifications.push import PushMessage, PushResult


class RecordingSink:
    """Accepts every push and keeps it: what the phones would have shown."""

    def __init__(self) -> None:
        self.sent: list[PushMessage] = []

    def send_each(self, messages: Sequence[PushMessage]) -> list[PushResult]:
        self.sent.extend(messages)
        return [PushResult(accepted=True, message_id=f"m/{uuid.uuid4()}") for _ in messages]

    def about(self, video_id: Any) -> list[PushMessage]:
        return [m for m in self.sent if m.data.get("video_id") == str(video_id)]
