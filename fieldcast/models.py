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
from fieldcast.db import Base
from fieldcast.idempotency.models import IdempotencyKey
from fieldcast.outbox.models import OutboxJob
from fieldcast.videos.models import Video

metadata = Base.metadata

__all__ = [
    "ApiToken",
    "AuthSession",
    "IdempotencyKey",
    "Organisation",
    "OutboxJob",
    "RefreshToken",
    "Team",
    "TeamMembership",
    "User",
    "Video",
    "metadata",
]
