"""Which push channel a process uses: FCM when credentials are configured, the local sink
otherwise. Apart from `push` so that the channels' common types import no channel."""

from __future__ import annotations

from typing import Protocol

from notifications.push import LogSink, PushSink


class PushSettings(Protocol):
    """What choosing a sink reads of the process's settings (`fieldcast.settings.Settings`)."""

    @property
    def fcm_credentials(self) -> str | None: ...
    @property
    def fcm_project_id(self) -> str | None: ...
    @property
    def fcm_endpoint(self) -> str: ...


def sink_from_settings(settings: PushSettings) -> PushSink:
    """FCM with service-account credentials when they are configured, else the local sink."""
    if settings.fcm_credentials:
        from notifications.fcm import FcmSink

        return FcmSink(
            settings.fcm_credentials,
            project_id=settings.fcm_project_id,
            endpoint=settings.fcm_endpoint,
        )
    return LogSink()
