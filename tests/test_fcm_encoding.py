"""The FCM sender relies on firebase-admin's private message encoder
(`messaging._MessagingService.encode_message`) for each v1 request body. These tests pin what it
produces for the pushes the product sends, so an upgrade of firebase-admin that changes or
removes it fails here, not in production."""

from __future__ import annotations

import json
import uuid
from importlib import metadata

import firebase_admin
from firebase_admin import messaging

from notifications.fcm import build_message, encode, encode_batch
from notifications.push import PushMessage

NOTIFICATION = "5f0c6a8e-2b7d-4c1e-9a3f-0d2e4b6c8a10"

PUSH = PushMessage(
    notification_id=uuid.UUID(NOTIFICATION),
    user_id=uuid.UUID("0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9"),
    type="share.received",
    title="Maya shared “Pricing objection, handled”",
    body="Listen to the pricing part",
    data={"notification_id": NOTIFICATION, "type": "share.received", "video_id": "v1"},
    token="fcm-token-1",
    badge=3,
)

# The FCM HTTP v1 `message` for PUSH, as firebase-admin 7.7.0 encodes it.
EXPECTED = {
    "android": {
        "collapse_key": NOTIFICATION,
        "notification": {"sound": "default", "tag": NOTIFICATION, "notification_count": 3},
        "priority": "high",
    },
    "apns": {
        "headers": {
            "apns-priority": "10",
            "apns-push-type": "alert",
            "apns-collapse-id": NOTIFICATION,
        },
        "payload": {
            "aps": {
                "badge": 3,
                "sound": "default",
                "thread-id": "share.received",
                "mutable-content": 1,
            }
        },
    },
    "data": {"notification_id": NOTIFICATION, "type": "share.received", "video_id": "v1"},
    "notification": {
        "body": "Listen to the pricing part",
        "title": "Maya shared “Pricing objection, handled”",
    },
    "token": "fcm-token-1",
    "webpush": {"headers": {"Urgency": "high"}, "notification": {"tag": NOTIFICATION}},
}


def test_the_pinned_firebase_admin_is_the_one_installed() -> None:
    assert firebase_admin.__version__ == metadata.version("firebase-admin") == "7.7.0"


def test_the_private_encoder_makes_the_v1_message_the_sender_relies_on() -> None:
    assert messaging._MessagingService.encode_message(build_message(PUSH)) == EXPECTED
    assert json.loads(encode(PUSH)) == {"message": EXPECTED}


def test_a_notification_to_several_devices_differs_only_in_the_token() -> None:
    second = PushMessage(**{**PUSH.__dict__, "token": "fcm-token-2"})
    other_user = PushMessage(
        **{**PUSH.__dict__, "user_id": uuid.uuid4(), "token": "fcm-token-3", "badge": None}
    )
    batch = [PUSH, second, other_user]
    assert encode_batch(batch) == [encode(push) for push in batch]
    assert json.loads(encode_batch(batch)[1]) == {"message": {**EXPECTED, "token": "fcm-token-2"}}
    unbadged = json.loads(encode_batch(batch)[2])["message"]
    assert "badge" not in unbadged["apns"]["payload"]["aps"]
    assert "notification_count" not in unbadged["android"]["notification"]
