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
from fieldcast.integrations.models import TeamWebhook
from fieldcast.notifications.models import (
    Notification,
    NotificationPreference,
    PushDelivery,
    VideoMute,
)
from fieldcast.outbox.models import OutboxJob
from fieldcast.sharing.models import (
    DistributionList,
    DistributionListTeam,
    DistributionListUser,
    Share,
    ShareAudience,
    ShareRecipient,
)
from fieldcast.uploads.models import Upload
from fieldcast.videos.models import Rendition, Video

metadata = Base.metadata

__all__ = [
    "ApiToken",
    "Attachment",
    "AuthSession",
    "Device",
    "DistributionList",
    "DistributionListTeam",
    "DistributionListUser",
    "IdempotencyKey",
    "Notification",
    "NotificationPreference",
    "Organisation",
    "OutboxJob",
    "PushDelivery",
    "RefreshToken",
    "Rendition",
    "Share",
    "ShareAudience",
    "ShareRecipient",
    "Team",
    "TeamMembership",
    "TeamWebhook",
    "Upload",
    "User",
    "Video",
    "VideoMute",
    "metadata",
]
