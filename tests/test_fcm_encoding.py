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
    title_loc_key="share_received_title",
    title_loc_args=("Maya", "Pricing objection, handled"),
    group="video:v1",
    image="https://media.example.com/v1/poster.jpg?sig=abc",
)

# The FCM HTTP v1 `message` for PUSH, as firebase-admin 7.7.0 encodes it.
EXPECTED = {
    "android": {
        "collapse_key": NOTIFICATION,
        "notification": {
            "sound": "default",
            "tag": "video:v1",
            "notification_count": 3,
            "title_loc_key": "share_received_title",
            "title_loc_args": ["Maya", "Pricing objection, handled"],
        },
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
                "alert": {
                    "title": "Maya shared “Pricing objection, handled”",
                    "body": "Listen to the pricing part",
                    "title-loc-key": "share_received_title",
                    "title-loc-args": ["Maya", "Pricing objection, handled"],
                },
                "badge": 3,
                "sound": "default",
                "thread-id": "video:v1",
                "mutable-content": 1,
            }
        },
        "fcm_options": {"image": "https://media.example.com/v1/poster.jpg?sig=abc"},
    },
    "data": {"notification_id": NOTIFICATION, "type": "share.received", "video_id": "v1"},
    "notification": {
        "body": "Listen to the pricing part",
        "title": "Maya shared “Pricing objection, handled”",
        "image": "https://media.example.com/v1/poster.jpg?sig=abc",
    },
    "token": "fcm-token-1",
    "webpush": {
        "headers": {"Urgency": "high"},
        "notification": {
            "tag": NOTIFICATION,
            "image": "https://media.example.com/v1/poster.jpg?sig=abc",
        },
    },
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


def test_a_worded_body_carries_its_key_and_an_unkeyed_push_carries_none() -> None:
    worded = PushMessage(
        **{
            **PUSH.__dict__,
            "body": "Tippe zum Ansehen.",
            "body_loc_key": "share_received_body",
            "body_loc_args": (),
        }
    )
    message = json.loads(encode(worded))["message"]
    assert message["android"]["notification"]["body_loc_key"] == "share_received_body"
    assert "body_loc_args" not in message["android"]["notification"]
    assert message["apns"]["payload"]["aps"]["alert"]["loc-key"] == "share_received_body"
    assert "loc-args" not in message["apns"]["payload"]["aps"]["alert"]

    plain = PushMessage(
        notification_id=PUSH.notification_id,
        user_id=PUSH.user_id,
        type="video.playable",
        title="Ready",
        body="Share it",
        token="fcm-token-9",
    )
    message = json.loads(encode(plain))["message"]
    android = message["android"]["notification"]
    assert not {"title_loc_key", "body_loc_key", "image"} & set(android)
    # Without a video to group by: grouped by type (iOS), and each notification its own (Android).
    assert android["tag"] == NOTIFICATION
    assert message["apns"]["payload"]["aps"]["thread-id"] == "video.playable"
    assert "fcm_options" not in message["apns"] and "image" not in message["notification"]
