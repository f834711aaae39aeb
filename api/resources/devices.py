"""Devices: where a user's pushes go."""

from __future__ import annotations

import uuid
from typing import Any

import marshmallow as ma
from flask.views import MethodView

from api.auth import current_principal
from api.extensions import Blueprint, Schema
from api.fields import String
from api.runtime import context, db_session
from api.schemas import attributes
from fieldcast.devices import services as devices
from fieldcast.models.devices import Device, Platform

blp = Blueprint(
    "devices",
    __name__,
    url_prefix="/api/v1/devices",
    description=(
        "Register the app's push token (FCM registration token; iOS through APNs via FCM) at "
        "every start and when it changes. Registering is idempotent; a token registered before "
        "by someone else moves to you. Remove the device at logout."
    ),
)


class DeviceSchema(Schema):
    id = ma.fields.UUID(dump_only=True)
    token = String(required=True, min_length=1, column=Device.token)
    platform = ma.fields.Enum(Platform, by_value=True, required=True)
    app_version = String(load_default=None, allow_none=True, column=Device.app_version)
    locale = String(
        load_default=None,
        column=Device.locale,
        allow_none=True,
        validate=ma.validate.Regexp(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$"),
        metadata={
            "description": "The app's language as a BCP 47 tag. Pushes to this device are "
            "worded in it when the server has it (English, German, Spanish), else in the "
            "deployment's DEFAULT_LOCALE; they also carry localization keys for the app's own "
            "strings.",
            "example": "en-GB",
        },
    )
    created_at = ma.fields.DateTime(dump_only=True)
    last_registered_at = ma.fields.DateTime(dump_only=True)


class DeviceListSchema(Schema):
    items = ma.fields.List(ma.fields.Nested(DeviceSchema))


@blp.route("")
class Devices(MethodView):
    @blp.response(200, DeviceListSchema)
    def get(self) -> dict[str, Any]:
        """Your registered devices"""
        found = devices.my_devices(db_session(), current_principal())
        return {"items": [attributes(device, DeviceSchema) for device in found]}

    @blp.arguments(DeviceSchema)
    @blp.response(201, DeviceSchema)
    @blp.alt_response(200, schema=DeviceSchema, description="Already registered; updated")
    def post(self, body: dict[str, Any]) -> Any:
        """Register this device's push token"""
        device, created = devices.register(db_session(), current_principal(), **body)
        return attributes(device, DeviceSchema), 201 if created else 200


class WebPushSchema(Schema):
    available = ma.fields.Boolean(
        required=True,
        metadata={"description": "Whether this deployment sends pushes to browsers"},
    )
    firebase = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.String(),
        allow_none=True,
        metadata={
            "description": "The Firebase web app's public settings (`apiKey`, `appId`, "
            "`messagingSenderId`, `projectId`) for `initializeApp`; null when not available",
        },
    )
    vapid_key = ma.fields.String(
        allow_none=True,
        metadata={"description": "The Web Push public key for `getToken({vapidKey})`"},
    )


@blp.route("/web-push")
class WebPush(MethodView):
    @blp.response(200, WebPushSchema)
    def get(self) -> dict[str, Any]:
        """How a browser gets its FCM registration token

        A web app asks Firebase's JavaScript SDK for a token with these (`initializeApp`,
        then `getToken` with `vapidKey` and its service worker), then registers it with
        `POST /api/v1/devices` and `platform: "web"`. Public values, no secret; `available`
        is false when the deployment sets no `FCM_WEB_CONFIG`.
        """
        current_principal()
        config = context().settings.fcm_web_config
        if config is None:
            return {"available": False, "firebase": None, "vapid_key": None}
        firebase = {key: value for key, value in config.items() if key != "vapidKey"}
        return {"available": True, "firebase": firebase, "vapid_key": config["vapidKey"]}


@blp.route("/<uuid:device_id>")
class DeviceById(MethodView):
    @blp.response(204)
    @blp.problems(404)
    def delete(self, device_id: uuid.UUID) -> None:
        """Remove one of your devices (at logout): it gets no more pushes"""
        devices.unregister(db_session(), current_principal(), device_id)
