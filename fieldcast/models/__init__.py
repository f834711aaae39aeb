"""The data layer: every ORM model, one module per domain, below all domain packages.

Domain packages, `fieldcast.policy` and the API import models from here; models import only
`fieldcast.db`, so anything may depend on them without making a circle. Every model is imported
in this module so that the metadata is complete (Alembic's autogenerate, the schema check).
"""

from fieldcast.db import Base
from fieldcast.models.accounts import (
    ApiToken,
    AuthSession,
    Handle,
    Invitation,
    Organisation,
    PasswordReset,
    RefreshToken,
    Team,
    TeamMembership,
    User,
)
from fieldcast.models.attachments import Attachment
from fieldcast.models.conversation import (
    AnswerVote,
    Comment,
    CommentLike,
    MomentCount,
    PushWindow,
    Reaction,
)
from fieldcast.models.curation import (
    Collection,
    CollectionEditor,
    CollectionItem,
    CollectionTeam,
    Feature,
    TopEntry,
)
from fieldcast.models.deals import AttributeDefinition, Deal
from fieldcast.models.devices import Device
from fieldcast.models.directory import ScimToken
from fieldcast.models.idempotency import IdempotencyKey
from fieldcast.models.identity import IdentityProvider, UserIdentity
from fieldcast.models.inbox import (
    Notification,
    NotificationPreference,
    PushDelivery,
    VideoMute,
)
from fieldcast.models.insights import VideoInsight
from fieldcast.models.integrations import TeamWebhook
from fieldcast.models.moderation import AuditEntry, Report
from fieldcast.models.outbox import OutboxJob
from fieldcast.models.points import BadgeAward, PointAward, PointsSetting, PointTotal
from fieldcast.models.programs import (
    Assignee,
    Assignment,
    AssignmentAudience,
    AssignmentRequest,
    AssignmentRule,
)
from fieldcast.models.search import SavedSearch, SavedSearchHit, SearchDocument
from fieldcast.models.sharing import (
    DistributionList,
    DistributionListTeam,
    DistributionListUser,
    Share,
    ShareAudience,
    ShareRecipient,
)
from fieldcast.models.sync import SyncTombstone
from fieldcast.models.tenancy import OrganisationPolicy
from fieldcast.models.transcripts import Transcript, TranscriptSegment
from fieldcast.models.uploads import Upload
from fieldcast.models.videos import Rendition, Video
from fieldcast.models.viewing import VideoProgress, View, ViewEvent
from fieldcast.models.xapi import LearningRecordStore, XapiStatement

metadata = Base.metadata

__all__ = [
    "AnswerVote",
    "ApiToken",
    "Assignee",
    "Assignment",
    "AssignmentAudience",
    "AssignmentRequest",
    "AssignmentRule",
    "Attachment",
    "AttributeDefinition",
    "AuditEntry",
    "AuthSession",
    "BadgeAward",
    "Collection",
    "CollectionEditor",
    "CollectionItem",
    "CollectionTeam",
    "Comment",
    "CommentLike",
    "Deal",
    "Device",
    "DistributionList",
    "DistributionListTeam",
    "DistributionListUser",
    "Feature",
    "Handle",
    "IdempotencyKey",
    "IdentityProvider",
    "Invitation",
    "LearningRecordStore",
    "MomentCount",
    "Notification",
    "NotificationPreference",
    "Organisation",
    "OrganisationPolicy",
    "OutboxJob",
    "PasswordReset",
    "PointAward",
    "PointTotal",
    "PointsSetting",
    "PushDelivery",
    "PushWindow",
    "Reaction",
    "RefreshToken",
    "Rendition",
    "Report",
    "SavedSearch",
    "SavedSearchHit",
    "ScimToken",
    "SearchDocument",
    "Share",
    "ShareAudience",
    "ShareRecipient",
    "SyncTombstone",
    "Team",
    "TeamMembership",
    "TeamWebhook",
    "TopEntry",
    "Transcript",
    "TranscriptSegment",
    "Upload",
    "User",
    "UserIdentity",
    "Video",
    "VideoInsight",
    "VideoMute",
    "VideoProgress",
    "View",
    "ViewEvent",
    "XapiStatement",
    "metadata",
]
