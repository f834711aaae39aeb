"""Every model, imported in one place so that the metadata is complete (Alembic, checks)."""

from fieldcast.accounts.models import (
    ApiToken,
    AuthSession,
    Organisation,
    RefreshToken,
    Team,
    TeamMembership,
    User,
)
from fieldcast.attachments.models import Attachment
from fieldcast.db import Base
from fieldcast.devices.models import Device
from fieldcast.idempotency.models import IdempotencyKey
from fieldcast.notifications.models import Notification
from fieldcast.outbox.models import OutboxJob
from fieldcast.uploads.models import Upload
from fieldcast.videos.models import Rendition, Video

metadata = Base.metadata

__all__ = [
    "ApiToken",
    "Attachment",
    "AuthSession",
    "Device",
    "IdempotencyKey",
    "Notification",
    "Organisation",
    "OutboxJob",
    "RefreshToken",
    "Rendition",
    "Team",
    "TeamMembership",
    "Upload",
    "User",
    "Video",
    "metadata",
]
