"""Who may see and act on what: the one place that decides.

Two rules hold for every object:

- Tenancy: objects of another organisation do not exist for the principal. Every predicate
  below includes `org_id`, and the loaders answer `NotFound`, never `PermissionDenied`, so ids
  cannot be probed.
- Visibility, then permission: an object the principal may not see does not exist for them
  either (`NotFound`); on an object they may see, `authorize(principal, action, obj)` decides
  from the rule table `RULES` and raises `PermissionDenied` (403, `permission_denied`).

Each kind of object is one section and one class below, all of the same shape:

- `visible(principal)`: a SQL predicate (`ColumnElement[bool]`) for the WHERE clause of any
  list, search or count, so a page of 50 videos or a search over a million rows is filtered by
  the database in the same statement, never in Python;
- `can_see(session, principal, obj)`: the same rule asked of one object already loaded (a
  share's video, an inbox item's link, `authorize` on a visibility action);
- `select(principal)`: `select(Model)` narrowed by `visible`;
- `load(session, principal, obj_id, action)`: one object, `NotFound` when it is not visible,
  then `authorize(action)`. `load_video`, `load_share`, `load_list`, `load_upload` name them.

`tests/test_policy.py` checks that the predicate and the per-object check agree for every kind
over a population with every relation to an object (author, recipient, manager up the chain,
peer, admin, another organisation). A new kind (comments, collections, assignments) adds a
class of the same shape, its instance, its loader and its rows in `RULES`.

The reporting chain (the managers above a person; the people below a manager) is one recursive
query, `reporting_chain`, walked at most `MAX_REPORTING_DEPTH` levels and never through a
person twice: shares use it upwards (may this manager follow this share?) and downwards (which
shares may this manager follow?).

Signed playback URLs (`api/resources/playback.py`) are capabilities, not a second rule: the API
hands them out only inside a video that `load_video` returned, and the routes that serve them
check the signature, its expiry, and `videos.can_see` again for the viewer the URL was made for
(`fieldcast.videos.playback.check_access`, remembered at most PLAYBACK_REVOCATION_S).

This module imports only models, `fieldcast.db` and `fieldcast.errors`: every domain package
can use it without an import circle.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from sqlalchemy import (
    CTE,
    BindParameter,
    ColumnElement,
    Select,
    Uuid,
    and_,
    any_,
    bindparam,
    exists,
    literal,
    not_,
    or_,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased, object_session

from fieldcast.errors import ErrorCode, NotFound, PermissionDenied
from fieldcast.models.accounts import Role, Team, TeamMembership, User
from fieldcast.models.conversation import Comment
from fieldcast.models.curation import (
    Collection,
    CollectionEditor,
    CollectionItem,
    CollectionTeam,
    CollectionVisibility,
)
from fieldcast.models.deals import Deal
from fieldcast.models.programs import Assignee, Assignment
from fieldcast.models.sharing import (
    DistributionList,
    ListVisibility,
    Share,
    ShareAudience,
    ShareRecipient,
)
from fieldcast.models.uploads import Upload
from fieldcast.models.videos import Video

# -- the principal --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who is acting: a user, through a login session or an integration's API token."""

    user: User
    session_id: uuid.UUID | None = None
    api_token_id: uuid.UUID | None = None

    @property
    def org_id(self) -> uuid.UUID:
        return self.user.org_id

    @property
    def user_id(self) -> uuid.UUID:
        return self.user.id

    @property
    def role(self) -> Role:
        return self.user.role

    def has_role(self, *roles: Role) -> bool:
        return self.user.role in roles

    @property
    def is_admin(self) -> bool:
        """Admins see every object of their organisation (they do not edit others' videos)."""
        return self.user.role is Role.ADMIN


class Viewer(Protocol):
    """Whose visibility a rule is written for: a principal, or bound parameters standing for
    one (`_VIEWER`), so that a check on one object is a statement built once."""

    @property
    def org_id(self) -> Any: ...

    @property
    def user_id(self) -> Any: ...


@dataclass(frozen=True)
class _BoundViewer:
    org_id: Any
    user_id: Any


# The viewer of the statements built once, at import: their values are given at execution.
_VIEWER = _BoundViewer(bindparam("viewer_org", type_=Uuid()), bindparam("viewer", type_=Uuid()))
_OBJECT = bindparam("object_id", type_=Uuid())


def _bound(value: Any) -> Any:
    """A value inside an SQL expression: a bound parameter as it is, else the value bound."""
    return value if isinstance(value, BindParameter) else literal(value, Uuid())


# -- the reporting chain --------------------------------------------------------------------------

# How many levels of the reporting line count, above or below a person. Twenty is far more
# than any organisation chart has; the bound keeps one corrupt or absurd chain from making
# every share check walk the whole users table.
MAX_REPORTING_DEPTH = 20


class Direction(enum.Enum):
    UP = "up"  # the person's manager, their manager, ...
    DOWN = "down"  # the people reporting to the person, directly or not


def reporting_chain(
    org_id: uuid.UUID, user_id: uuid.UUID, direction: Direction, *, name: str = "reporting_chain"
) -> CTE:
    """The people linked to `user_id` by the reporting line, as a recursive CTE with columns
    `id` (a person), `depth` (1 = direct manager or direct report) and `path` (the ids walked
    from `user_id`, it included).

    At most `MAX_REPORTING_DEPTH` levels are walked. A step to someone already on the path is
    not taken, so even a loop in the data (the API refuses to make one; an import or a
    hand-edited row could) ends, and `user_id` is never in its own chain.
    """
    # Upwards each step follows a person's manager_id; downwards it finds whose manager_id
    # is the person.
    step: InstrumentedAttribute[Any]
    link: InstrumentedAttribute[Any]
    if direction is Direction.UP:
        step, link = User.manager_id, User.id
    else:
        step, link = User.id, User.manager_id
    chain = (
        select(
            step.label("id"),
            literal(1).label("depth"),
            array([literal(user_id, Uuid()), step]).label("path"),
        )
        .where(User.org_id == org_id, link == user_id, step.is_not(None))
        .cte(name, recursive=True)
    )
    return chain.union_all(
        select(step, chain.c.depth + 1, chain.c.path.concat(array([step]))).where(
            User.org_id == org_id,
            link == chain.c.id,
            step.is_not(None),
            chain.c.depth < MAX_REPORTING_DEPTH,
            not_(step == any_(chain.c.path)),
        )
    )


def managers_of(org_id: uuid.UUID, user_id: uuid.UUID) -> Select[Any]:
    """`SELECT id`: the managers above the user (up to `MAX_REPORTING_DEPTH` levels)."""
    chain = reporting_chain(org_id, user_id, Direction.UP, name="managers")
    return select(chain.c.id)


def reports_of(org_id: uuid.UUID, user_id: uuid.UUID) -> Select[Any]:
    """`SELECT id`: the people below the manager (up to `MAX_REPORTING_DEPTH` levels)."""
    chain = reporting_chain(org_id, user_id, Direction.DOWN, name="reports")
    return select(chain.c.id)


# -- one shape for every kind of object -----------------------------------------------------------

T = TypeVar("T")


class ObjectPolicy(Generic[T]):
    """Visibility of one kind of object, as a SQL predicate and as a check on one object."""

    model: ClassVar[type[Any]]
    noun: ClassVar[str]  # for "No <noun> with id ..."
    read_action: ClassVar[str]

    def visible(self, principal: Principal) -> ColumnElement[bool]:
        raise NotImplementedError

    def can_see(self, session: Session | None, principal: Principal, obj: T) -> bool:
        """The object is visible to the principal: the same answer as `visible`, for one
        object. `session` may be None for an object outside one; then only what the object
        itself shows counts (never more than `visible` would allow)."""
        raise NotImplementedError

    def select(self, principal: Principal) -> Select[Any]:
        """`select(Model)` narrowed to what the principal may see."""
        return select(self.model).where(self.visible(principal))

    def load(
        self,
        session: Session,
        principal: Principal,
        obj_id: uuid.UUID,
        action: str | None = None,
    ) -> T:
        """One object the principal may see (else `NotFound`, like a missing id), on which the
        action is allowed (else `PermissionDenied`)."""
        obj: T | None = session.scalars(
            self.select(principal).where(self.model.id == obj_id)
        ).one_or_none()
        if obj is None:
            raise NotFound(f"No {self.noun} with id {obj_id}.")
        action = action or self.read_action
        # The query above has just proven the visibility rule; other rules are asked.
        if _rule(action) is not _VISIBILITY_RULES.get(type(self)):
            authorize(principal, action, obj)
        return obj


# -- videos ---------------------------------------------------------------------------------------


class VideoPolicy(ObjectPolicy[Video]):
    """A video is seen by its author, by the people it was shared with, and by admins; a reply
    video answering a question is seen by the person who asked it, too.

    The people a share reached see the video from the moment the share exists: through the
    share's audience blocks (`ShareAudience`) until a worker has made their `ShareRecipient`
    rows, through those rows after. A recalled share grants nothing: its blocks are deleted
    when it is recalled, and its rows no longer count (the person may still see the video
    through another share, as its author or as an admin).

    A deleted video is seen by nobody; until it is purged, its author and admins find it among
    the deleted ones (`restorable`) to restore it. A video an admin hid on a report is seen by
    its author and admins only.
    """

    model = Video
    noun = "video"
    read_action = "video.read"

    def visible(self, principal: Principal) -> ColumnElement[bool]:
        # A deleted video is gone for everyone, its author and admins included.
        tenant = and_(Video.org_id == principal.org_id, Video.deleted_at.is_(None))
        if principal.is_admin:
            return tenant
        return and_(
            tenant,
            or_(
                Video.owner_id == principal.user_id,
                and_(
                    Video.hidden_at.is_(None),
                    or_(
                        Video.id.in_(self._received(principal)),
                        Video.id.in_(self._pending(principal)),
                        Video.answers_video_id.in_(self._asked(principal)),
                        Video.id.in_(self._granted(principal)),
                    ),
                ),
            ),
        )

    def listed_by_ids(self, principal: Principal) -> ColumnElement[bool]:
        """`listed`, written for queries over many rows: for a person who is no admin, the ids
        of the videos they may see are gathered first (their own, those shared with them, the
        reply videos to their questions: a few per cent of the organisation's) and only those
        are read, rather than every video of the organisation tested. The same rule."""
        if principal.is_admin:
            return self.listed(principal)
        own = select(Video.id).where(
            Video.org_id == principal.org_id, Video.owner_id == principal.user_id
        )
        replies = select(Video.id).where(
            Video.org_id == principal.org_id, Video.answers_video_id.in_(self._asked(principal))
        )
        ids = union_all(
            own,
            self._received(principal),
            self._pending(principal),
            replies,
            *_granted_ids(principal),
        )
        return and_(
            Video.org_id == principal.org_id,
            Video.deleted_at.is_(None),
            Video.archived_at.is_(None),
            Video.id.in_(ids.subquery().select()),
            or_(Video.owner_id == principal.user_id, Video.hidden_at.is_(None)),
        )

    def among_assigned(self, principal: Principal) -> ColumnElement[bool]:
        """`visible`, for videos known to be assigned to the principal by an assignment
        standing for them (their own list of what to watch): such an assignment grants the
        video, so what is left to ask is whether it was deleted or hidden."""
        return and_(
            Video.org_id == principal.org_id,
            Video.deleted_at.is_(None),
            or_(
                literal(principal.is_admin),
                Video.owner_id == principal.user_id,
                Video.hidden_at.is_(None),
            ),
        )

    def shared_with(self, principal: Principal) -> ColumnElement[bool]:
        """The videos that reached the principal through a share (visible to them for it)."""
        return and_(
            Video.org_id == principal.org_id,
            or_(Video.id.in_(self._received(principal)), Video.id.in_(self._pending(principal))),
        )

    def listed(self, principal: Principal) -> ColumnElement[bool]:
        """What feeds and lists show: the visible videos that are not archived (an archived
        video is still reachable by direct link)."""
        return and_(self.visible(principal), Video.archived_at.is_(None))

    def restorable(self, principal: Principal) -> ColumnElement[bool]:
        """The deleted videos (not yet purged) the principal may bring back: their own, all of
        the organisation's for admins."""
        deleted = and_(Video.org_id == principal.org_id, Video.deleted_at.is_not(None))
        if principal.is_admin:
            return deleted
        return and_(deleted, Video.owner_id == principal.user_id)

    def can_see(
        self,
        session: Session | None,
        principal: Principal,
        obj: Video,
        *,
        shared: bool | None = None,
    ) -> bool:
        """`shared`: what `shared_with_viewer` answered for the principal, read with the video
        (else it is asked here, when the quick answers do not settle it)."""
        if obj.org_id != principal.org_id or obj.deleted_at is not None:
            return False
        if principal.is_admin or obj.owner_id == principal.user_id:
            return True
        if session is None or obj.hidden_at is not None:
            return False
        if obj.answers_video_id is not None:
            question = session.get(Video, obj.answers_video_id)
            if question is not None and question.owner_id == principal.user_id:
                return True
        if shared is not None:
            return shared
        return bool(session.scalar(_SEES_SHARED, {**viewer_params(principal), "object_id": obj.id}))

    def viewers_among(
        self, session: Session, video: Video, candidates: Select[Any]
    ) -> set[uuid.UUID]:
        """Of the people `candidates` selects (a `SELECT` of user ids), the active ones who see
        the video: the same rule as `visible`, asked for many people at once (who may be
        told about a comment on it, who a mention reaches)."""
        if video.deleted_at is not None:
            return set()
        received = exists().where(
            ShareRecipient.org_id == video.org_id,
            ShareRecipient.video_id == video.id,
            ShareRecipient.user_id == User.id,
            Share.org_id == ShareRecipient.org_id,
            Share.id == ShareRecipient.share_id,
            Share.recalled_at.is_(None),
        )
        pending = exists().where(
            ShareAudience.org_id == video.org_id,
            ShareAudience.video_id == video.id,
            User.id == any_(ShareAudience.user_ids),
        )
        asker = (
            select(Video.owner_id)
            .where(Video.org_id == video.org_id, Video.id == video.answers_video_id)
            .scalar_subquery()
        )
        shared = (
            or_(received, pending, User.id == asker, _granted_to(session, video))
            if video.hidden_at is None
            else literal(False)
        )
        return set(
            session.scalars(
                select(User.id).where(
                    User.org_id == video.org_id,
                    User.is_active.is_(True),
                    User.id.in_(candidates),
                    or_(User.role == Role.ADMIN, User.id == video.owner_id, shared),
                )
            )
        )

    @staticmethod
    def _received(principal: Viewer) -> Select[Any]:
        # Only rows of shares still standing: a recalled share's rows stay for its sender's
        # record of who it reached, and grant nothing.
        # Written as "less the recalled ones" (few, in a partial index), not as a join with
        # every share: the person's rows are read and nothing else.
        recalled = exists().where(
            Share.org_id == ShareRecipient.org_id,
            Share.id == ShareRecipient.share_id,
            Share.recalled_at.is_not(None),
        )
        return select(ShareRecipient.video_id).where(
            ShareRecipient.org_id == principal.org_id,
            ShareRecipient.user_id == principal.user_id,
            ~recalled,
        )

    @staticmethod
    def _granted(principal: Viewer) -> Select[Any]:
        # The videos of the published collections for the principal and of what was assigned
        # to them (see `_granted_ids`).
        return union_all(*_granted_ids(principal)).subquery().select()

    @staticmethod
    def _asked(principal: Viewer) -> Select[Any]:
        # The principal's questions: the reply videos answering them are theirs to see.
        return select(_ASKED.id).where(
            _ASKED.org_id == principal.org_id, _ASKED.owner_id == principal.user_id
        )

    @staticmethod
    def _pending(principal: Viewer) -> Select[Any]:
        # The blocks of the last moments' shares, read by organisation (see ShareAudience).
        return select(ShareAudience.video_id).where(
            ShareAudience.org_id == principal.org_id,
            ShareAudience.user_ids.contains(array([_bound(principal.user_id)])),
        )


def teams_of(principal: Viewer) -> Select[Any]:
    """The principal's teams and every team above them: a collection for a team is for the
    people of its sub-teams too."""
    mine = (
        select(TeamMembership.team_id.label("team_id"))
        .where(
            TeamMembership.org_id == principal.org_id, TeamMembership.user_id == principal.user_id
        )
        .cte("my_teams", recursive=True)
    )
    # UNION (not ALL): a loop in the team tree ends the walk.
    mine = mine.union(
        select(Team.parent_id).where(
            Team.org_id == principal.org_id,
            Team.id == mine.c.team_id,
            Team.parent_id.is_not(None),
        )
    )
    return select(mine.c.team_id)


def published_for(principal: Viewer) -> Select[Any]:
    """The ids of the published collections for the principal: the organisation's, and those
    of their teams (or of a team above theirs)."""
    teams = select(CollectionTeam.collection_id).where(
        CollectionTeam.org_id == principal.org_id,
        CollectionTeam.team_id.in_(teams_of(principal)),
    )
    return select(Collection.id).where(
        Collection.org_id == principal.org_id,
        Collection.published_at.is_not(None),
        Collection.deleted_at.is_(None),
        or_(
            Collection.visibility == CollectionVisibility.ORGANISATION,
            and_(Collection.visibility == CollectionVisibility.TEAMS, Collection.id.in_(teams)),
        ),
    )


def assigned_to(principal: Viewer) -> Select[Any]:
    """The ids of the assignments standing for the principal (excused ones included: what
    was assigned stays theirs to watch)."""
    return select(Assignee.assignment_id).where(
        Assignee.org_id == principal.org_id,
        Assignee.user_id == principal.user_id,
        select(Assignment.id)
        .where(
            Assignment.org_id == Assignee.org_id,
            Assignment.id == Assignee.assignment_id,
            Assignment.withdrawn_at.is_(None),
        )
        .exists(),
    )


def _granted_ids(principal: Viewer) -> tuple[Select[Any], ...]:
    """The video ids that curation grants the principal, as selects to unite: the items of
    the published collections for them, the videos assigned to them and the items of the
    collections assigned to them."""
    org = principal.org_id
    assigned = assigned_to(principal)
    return (
        select(CollectionItem.video_id).where(
            CollectionItem.org_id == org, CollectionItem.collection_id.in_(published_for(principal))
        ),
        select(Assignment.video_id).where(
            Assignment.org_id == org, Assignment.id.in_(assigned), Assignment.video_id.is_not(None)
        ),
        select(CollectionItem.video_id).where(
            CollectionItem.org_id == org,
            CollectionItem.collection_id.in_(_live_collections(org, assigned)),
        ),
    )


def _live_collections(org: Any, assignments: Select[Any]) -> Select[Any]:
    """The collections of these assignments, less the deleted ones (they grant nothing)."""
    return select(Assignment.collection_id).where(
        Assignment.org_id == org,
        Assignment.id.in_(assignments),
        Assignment.collection_id.is_not(None),
        select(Collection.id)
        .where(
            Collection.org_id == Assignment.org_id,
            Collection.id == Assignment.collection_id,
            Collection.deleted_at.is_(None),
        )
        .exists(),
    )


def _granted_to(session: Session, video: Video) -> ColumnElement[bool]:
    """`User.id` is someone curation grants the video: in the audience of a published
    collection holding it, or assigned it (alone or in a collection)."""
    holding = select(CollectionItem.collection_id).where(
        CollectionItem.org_id == video.org_id,
        CollectionItem.video_id == video.id,
        select(Collection.id)
        .where(
            Collection.org_id == CollectionItem.org_id,
            Collection.id == CollectionItem.collection_id,
            Collection.deleted_at.is_(None),
        )
        .exists(),
    )
    published = session.execute(
        select(Collection.id, Collection.visibility).where(
            Collection.org_id == video.org_id,
            Collection.id.in_(holding),
            Collection.published_at.is_not(None),
            Collection.deleted_at.is_(None),
            Collection.visibility != CollectionVisibility.PRIVATE,
        )
    ).all()
    if any(row.visibility is CollectionVisibility.ORGANISATION for row in published):
        return literal(True)
    teams = (
        select(CollectionTeam.team_id.label("team_id"))
        .where(
            CollectionTeam.org_id == video.org_id,
            CollectionTeam.collection_id.in_([row.id for row in published]),
        )
        .cte("collection_teams_down", recursive=True)
    )
    teams = teams.union(
        select(Team.id).where(Team.org_id == video.org_id, Team.parent_id == teams.c.team_id)
    )
    in_teams = User.id.in_(
        select(TeamMembership.user_id).where(
            TeamMembership.org_id == video.org_id,
            TeamMembership.team_id.in_(select(teams.c.team_id)),
        )
    )
    assignments = select(Assignment.id).where(
        Assignment.org_id == video.org_id,
        Assignment.withdrawn_at.is_(None),
        or_(Assignment.video_id == video.id, Assignment.collection_id.in_(holding)),
    )
    assigned = User.id.in_(
        select(Assignee.user_id).where(
            Assignee.org_id == video.org_id, Assignee.assignment_id.in_(assignments)
        )
    )
    return or_(in_teams, assigned) if published else assigned


# The questions of `VideoPolicy._asked`, aliased once: every visibility check of a video uses it.
_ASKED = aliased(Video, name="asked")
videos = VideoPolicy()


def shared_with_viewer(
    video_id: ColumnElement[Any] | InstrumentedAttribute[Any],
) -> ColumnElement[bool]:
    """`VideoPolicy.can_see` past its quick answers: the video reached the viewer bound by
    `viewer_params` through a share (a recipient row of a standing share, or an audience
    block), or curation grants it to them. The same rules as `visible`. A statement that reads
    a video for one person may read this beside it, and give it to `can_see` as `shared`."""
    return or_(
        VideoPolicy._received(_VIEWER).where(ShareRecipient.video_id == video_id).exists(),
        VideoPolicy._pending(_VIEWER).where(ShareAudience.video_id == video_id).exists(),
        video_id.in_(VideoPolicy._granted(_VIEWER)),
    )


def viewer_params(principal: Principal) -> dict[str, uuid.UUID]:
    """The values of the viewer of the statements built once (`_VIEWER`)."""
    return {"viewer_org": principal.org_id, "viewer": principal.user_id}


# Built once with bound parameters, since every report, comment and share asks it.
_SEES_SHARED = select(shared_with_viewer(_OBJECT))


def load_video(
    session: Session, principal: Principal, video_id: uuid.UUID, action: str = "video.read"
) -> Video:
    return videos.load(session, principal, video_id, action)


# -- comments -------------------------------------------------------------------------------------


class CommentPolicy(ObjectPolicy[Comment]):
    """A comment is seen by whoever sees its video, and by nobody else: a video deleted, hidden
    from them or no longer shared with them takes its comments with it. A deleted or hidden
    comment stays in its thread as a tombstone (the API shows no body of it but to its author
    and admins)."""

    model = Comment
    noun = "comment"
    read_action = "comment.read"

    def visible(self, principal: Principal) -> ColumnElement[bool]:
        return and_(
            Comment.org_id == principal.org_id,
            exists().where(
                Video.org_id == Comment.org_id,
                Video.id == Comment.video_id,
                videos.visible(principal),
            ),
        )

    def can_see(self, session: Session | None, principal: Principal, obj: Comment) -> bool:
        if obj.org_id != principal.org_id or session is None:
            return False
        video = session.get(Video, obj.video_id)
        return video is not None and videos.can_see(session, principal, video)


comments = CommentPolicy()


def load_comment(
    session: Session, principal: Principal, comment_id: uuid.UUID, action: str = "comment.read"
) -> Comment:
    return comments.load(session, principal, comment_id, action)


# -- shares ---------------------------------------------------------------------------------------


class SharePolicy(ObjectPolicy[Share]):
    """A share (who it reached and how far) is followed by its sender, the sender's managers up
    the reporting chain, and admins. Its recipients see the video, not the share."""

    model = Share
    noun = "share"
    read_action = "share.read"

    def visible(self, principal: Principal) -> ColumnElement[bool]:
        tenant = Share.org_id == principal.org_id
        if principal.is_admin:
            return tenant
        return and_(
            tenant,
            or_(
                Share.sender_id == principal.user_id,
                Share.sender_id.in_(reports_of(principal.org_id, principal.user_id)),
            ),
        )

    def can_see(self, session: Session | None, principal: Principal, obj: Share) -> bool:
        if obj.org_id != principal.org_id:
            return False
        if principal.is_admin or obj.sender_id == principal.user_id:
            return True
        if session is None:
            return False
        above = managers_of(obj.org_id, obj.sender_id).subquery()
        return bool(session.scalar(select(exists().where(above.c.id == principal.user_id))))


shares = SharePolicy()


def load_share(
    session: Session, principal: Principal, share_id: uuid.UUID, action: str = "share.read"
) -> Share:
    return shares.load(session, principal, share_id, action)


class ReceivedSharePolicy(ObjectPolicy[Share]):
    """A share as the people it reached see it: the sender, the message, the video and their
    own state, never the other recipients. Seen by each recipient (from the moment the share
    exists, as for the video) while it is not recalled and its video is not deleted."""

    model = Share
    noun = "share"
    read_action = "share.read_received"

    def visible(self, principal: Principal) -> ColumnElement[bool]:
        return and_(
            Share.org_id == principal.org_id,
            Share.recalled_at.is_(None),
            or_(
                Share.id.in_(self.received_ids(principal)),
                Share.id.in_(self.pending_ids(principal)),
            ),
            exists().where(
                Video.org_id == Share.org_id,
                Video.id == Share.video_id,
                Video.deleted_at.is_(None),
            ),
        )

    def can_see(self, session: Session | None, principal: Principal, obj: Share) -> bool:
        if obj.org_id != principal.org_id or obj.recalled_at is not None or session is None:
            return False
        return bool(
            session.scalar(select(exists().where(Share.id == obj.id, self.visible(principal))))
        )

    @staticmethod
    def received_ids(principal: Principal) -> Select[Any]:
        """`SELECT share_id` of the principal's recipient rows."""
        return select(ShareRecipient.share_id).where(
            ShareRecipient.org_id == principal.org_id,
            ShareRecipient.user_id == principal.user_id,
        )

    @staticmethod
    def pending_ids(principal: Principal) -> Select[Any]:
        """`SELECT share_id` of the shares whose audience blocks name the principal (their
        recipient rows are not made yet)."""
        return select(ShareAudience.share_id).where(
            ShareAudience.org_id == principal.org_id,
            ShareAudience.user_ids.contains(array([_bound(principal.user_id)])),
        )


received_shares = ReceivedSharePolicy()


@dataclass(frozen=True)
class ShareAccess:
    """A share loaded for reading, and in which capacities the principal reads it."""

    share: Share
    follows: bool  # sender, a manager above the sender, an admin: `SharePolicy`
    received: bool  # a recipient: `ReceivedSharePolicy`


def load_share_to_read(session: Session, principal: Principal, share_id: uuid.UUID) -> ShareAccess:
    """A share its followers or its recipients read (else `NotFound`), with which they are."""
    follows, received = shares.visible(principal), received_shares.visible(principal)
    row = session.execute(
        select(Share, follows.label("follows"), received.label("received")).where(
            Share.id == share_id, or_(follows, received)
        )
    ).one_or_none()
    if row is None:
        raise NotFound(f"No share with id {share_id}.")
    return ShareAccess(row[0], follows=bool(row[1]), received=bool(row[2]))


# -- deals ----------------------------------------------------------------------------------------


class DealPolicy(ObjectPolicy[Deal]):
    """A deal is seen by its owner, by the members of its team, by the owner's managers up the
    reporting chain, and by enablement and admins (who curate for every deal). Who writes deals
    is `deal.write` (admins and the organisation's integrations), not visibility."""

    model = Deal
    noun = "deal"
    read_action = "deal.read"

    def visible(self, principal: Principal) -> ColumnElement[bool]:
        tenant = Deal.org_id == principal.org_id
        if principal.has_role(Role.ADMIN, Role.ENABLEMENT):
            return tenant
        return and_(
            tenant,
            or_(
                Deal.owner_id == principal.user_id,
                Deal.team_id.in_(self._teams(principal)),
                Deal.owner_id.in_(reports_of(principal.org_id, principal.user_id)),
            ),
        )

    def can_see(self, session: Session | None, principal: Principal, obj: Deal) -> bool:
        if obj.org_id != principal.org_id:
            return False
        if principal.has_role(Role.ADMIN, Role.ENABLEMENT) or obj.owner_id == principal.user_id:
            return True
        if session is None:
            return False
        if obj.team_id is not None and session.scalar(
            select(self._teams(principal).where(TeamMembership.team_id == obj.team_id).exists())
        ):
            return True
        above = managers_of(obj.org_id, obj.owner_id).subquery()
        return bool(session.scalar(select(exists().where(above.c.id == principal.user_id))))

    @staticmethod
    def _teams(principal: Principal) -> Select[Any]:
        return select(TeamMembership.team_id).where(
            TeamMembership.org_id == principal.org_id,
            TeamMembership.user_id == principal.user_id,
        )


deals = DealPolicy()


def load_deal(
    session: Session, principal: Principal, deal_id: uuid.UUID, action: str = "deal.read"
) -> Deal:
    return deals.load(session, principal, deal_id, action)


# -- distribution lists ---------------------------------------------------------------------------


class ListPolicy(ObjectPolicy[DistributionList]):
    """A list is seen (and shared to) by its owner, by everyone when its visibility is
    `organisation`, and by admins."""

    model = DistributionList
    noun = "distribution list"
    read_action = "distribution_list.read"

    def visible(self, principal: Principal) -> ColumnElement[bool]:
        tenant = DistributionList.org_id == principal.org_id
        if principal.is_admin:
            return tenant
        return and_(
            tenant,
            or_(
                DistributionList.owner_id == principal.user_id,
                DistributionList.visibility == ListVisibility.ORGANISATION,
            ),
        )

    def can_see(self, session: Session | None, principal: Principal, obj: DistributionList) -> bool:
        if obj.org_id != principal.org_id:
            return False
        return (
            principal.is_admin
            or obj.owner_id == principal.user_id
            or obj.visibility is ListVisibility.ORGANISATION
        )


lists = ListPolicy()


def load_list(
    session: Session,
    principal: Principal,
    list_id: uuid.UUID,
    action: str = "distribution_list.read",
) -> DistributionList:
    return lists.load(session, principal, list_id, action)


# -- collections ----------------------------------------------------------------------------------


class CollectionPolicy(ObjectPolicy[Collection]):
    """A collection is seen by its owner, its editors and admins; once published, by its
    audience (the organisation, or the people of its teams and their sub-teams); and by the
    people it is assigned to. A deleted collection is seen by nobody."""

    model = Collection
    noun = "collection"
    read_action = "collection.read"

    def visible(self, principal: Principal) -> ColumnElement[bool]:
        tenant = and_(Collection.org_id == principal.org_id, Collection.deleted_at.is_(None))
        if principal.is_admin:
            return tenant
        assigned = select(Assignment.collection_id).where(
            Assignment.org_id == principal.org_id,
            Assignment.id.in_(assigned_to(principal)),
            Assignment.collection_id.is_not(None),
        )
        return and_(
            tenant,
            or_(
                Collection.owner_id == principal.user_id,
                Collection.id.in_(self._edited(principal)),
                Collection.id.in_(published_for(principal)),
                Collection.id.in_(assigned),
            ),
        )

    def among_assigned(self, principal: Principal) -> ColumnElement[bool]:
        """`visible`, for collections known to be assigned to the principal by an assignment
        standing for them (their own list of what to watch): what is left to ask is whether
        they were deleted."""
        return and_(Collection.org_id == principal.org_id, Collection.deleted_at.is_(None))

    def can_see(self, session: Session | None, principal: Principal, obj: Collection) -> bool:
        if obj.org_id != principal.org_id or obj.deleted_at is not None:
            return False
        if principal.is_admin or obj.owner_id == principal.user_id:
            return True
        if session is None:
            return False
        if obj.published_at is not None and obj.visibility is CollectionVisibility.ORGANISATION:
            return True
        return (
            session.scalar(
                select(Collection.id).where(Collection.id == obj.id, self.visible(principal))
            )
            is not None
        )

    def editable(self, session: Session, principal: Principal, obj: Collection) -> bool:
        """Its owner, its editors and admins change it."""
        if principal.is_admin or obj.owner_id == principal.user_id:
            return True
        return (
            session.scalar(self._edited(principal).where(CollectionEditor.collection_id == obj.id))
            is not None
        )

    @staticmethod
    def _edited(principal: Principal) -> Select[Any]:
        return select(CollectionEditor.collection_id).where(
            CollectionEditor.org_id == principal.org_id,
            CollectionEditor.user_id == principal.user_id,
        )


collections = CollectionPolicy()


def load_collection(
    session: Session,
    principal: Principal,
    collection_id: uuid.UUID,
    action: str = "collection.read",
) -> Collection:
    return collections.load(session, principal, collection_id, action)


# -- uploads --------------------------------------------------------------------------------------


class UploadPolicy(ObjectPolicy[Upload]):
    """An upload is its sender's alone: nobody else, admins included, sees or resumes it; one
    cancelled with its video is gone for them too."""

    model = Upload
    noun = "upload"
    read_action = "upload.write"

    def visible(self, principal: Principal) -> ColumnElement[bool]:
        return and_(
            Upload.org_id == principal.org_id,
            Upload.owner_id == principal.user_id,
            Upload.cancelled_at.is_(None),
        )

    def can_see(self, session: Session | None, principal: Principal, obj: Upload) -> bool:
        return (
            obj.org_id == principal.org_id
            and obj.owner_id == principal.user_id
            and obj.cancelled_at is None
        )


uploads = UploadPolicy()


def load_upload(
    session: Session, principal: Principal, upload_id: uuid.UUID, action: str = "upload.write"
) -> Upload:
    return uploads.load(session, principal, upload_id, action)


# -- personal rows --------------------------------------------------------------------------------


def mine(principal: Principal, model: type[Any]) -> ColumnElement[bool]:
    """Rows that are one person's alone, admins not excepted: their inbox items, phones, muted
    videos, and their own recipient rows when they report a receipt. (Uploads, whose person is
    `owner_id`, are `uploads` above.)"""
    return and_(model.org_id == principal.org_id, model.user_id == principal.user_id)


# -- the rule table -------------------------------------------------------------------------------

Rule = Callable[[Principal, Any], bool]


def _member(principal: Principal, obj: Any) -> bool:
    """Every member of the organisation: `can` has already refused other organisations'
    objects, and a principal is an active member by authentication."""
    return True


def _admin(principal: Principal, obj: Any) -> bool:
    return principal.is_admin


def _author(principal: Principal, obj: Any) -> bool:
    """The person who made the object: a video's author, a list's or an upload's owner."""
    return getattr(obj, "owner_id", None) == principal.user_id


def _author_or_admin(principal: Principal, obj: Any) -> bool:
    return principal.is_admin or _author(principal, obj)


def _self_or_admin(principal: Principal, obj: Any) -> bool:
    return principal.is_admin or (isinstance(obj, User) and obj.id == principal.user_id)


def _list_maker(principal: Principal, obj: Any) -> bool:
    return principal.has_role(Role.ADMIN, Role.MANAGER, Role.ENABLEMENT)


def _sees_video(principal: Principal, obj: Any) -> bool:
    """`VideoPolicy`: its author, the people it was shared with, admins."""
    return isinstance(obj, Video) and videos.can_see(object_session(obj), principal, obj)


def _sees_comment(principal: Principal, obj: Any) -> bool:
    """`CommentPolicy`: whoever sees the comment's video."""
    return isinstance(obj, Comment) and comments.can_see(object_session(obj), principal, obj)


def _comment_author(principal: Principal, obj: Any) -> bool:
    return isinstance(obj, Comment) and obj.author_id == principal.user_id


def _comment_remover(principal: Principal, obj: Any) -> bool:
    """A comment's author, the author of its video, admins."""
    if not isinstance(obj, Comment):
        return False
    if principal.is_admin or obj.author_id == principal.user_id:
        return True
    session = object_session(obj)
    video = session.get(Video, obj.video_id) if session is not None else None
    return video is not None and video.owner_id == principal.user_id


def _thread_resolver(principal: Principal, obj: Any) -> bool:
    """The video's author, the thread's author, the managers above the thread's author,
    admins."""
    if not isinstance(obj, Comment):
        return False
    if _comment_remover(principal, obj):
        return True
    session = object_session(obj)
    if session is None:
        return False
    above = managers_of(obj.org_id, obj.author_id).subquery()
    return bool(session.scalar(select(exists().where(above.c.id == principal.user_id))))


def _sees_deal(principal: Principal, obj: Any) -> bool:
    """`DealPolicy`: its owner, its team, the owner's managers, enablement, admins."""
    return isinstance(obj, Deal) and deals.can_see(object_session(obj), principal, obj)


def _deal_writer(principal: Principal, obj: Any) -> bool:
    """Admins, and the organisation's integrations: an API token (which only admins make)
    keeps deals in step with the CRM whoever it acts as."""
    return principal.is_admin or principal.api_token_id is not None


def _sender_or_admin(principal: Principal, obj: Any) -> bool:
    """A share's sender, or an admin: not the managers who follow it, not its recipients."""
    return isinstance(obj, Share) and (principal.is_admin or obj.sender_id == principal.user_id)


def _follows_share(principal: Principal, obj: Any) -> bool:
    """`SharePolicy`: its sender, the sender's managers up the chain, admins."""
    return isinstance(obj, Share) and shares.can_see(object_session(obj), principal, obj)


def _receives_share(principal: Principal, obj: Any) -> bool:
    """`ReceivedSharePolicy`: the people it reached, while it is not recalled."""
    return isinstance(obj, Share) and received_shares.can_see(object_session(obj), principal, obj)


def _sees_list(principal: Principal, obj: Any) -> bool:
    """`ListPolicy`: its owner, everyone for an organisation list, admins."""
    return isinstance(obj, DistributionList) and lists.can_see(object_session(obj), principal, obj)


def _curator(principal: Principal, obj: Any) -> bool:
    """Those who put programs together: enablement, managers and admins."""
    return principal.has_role(Role.ENABLEMENT, Role.MANAGER, Role.ADMIN)


def _sees_collection(principal: Principal, obj: Any) -> bool:
    """`CollectionPolicy`."""
    return isinstance(obj, Collection) and collections.can_see(object_session(obj), principal, obj)


def _collection_editor(principal: Principal, obj: Any) -> bool:
    """Its owner, the editors they added, and admins."""
    if not isinstance(obj, Collection):
        return False
    session = object_session(obj)
    return session is not None and collections.editable(session, principal, obj)


def _owner_or_admin(principal: Principal, obj: Any) -> bool:
    return principal.is_admin or getattr(obj, "owner_id", None) == principal.user_id


def _rule_maker_or_admin(principal: Principal, obj: Any) -> bool:
    return _curator(principal, obj) and (
        principal.is_admin or getattr(obj, "created_by", None) == principal.user_id
    )


def _assigner_or_admin(principal: Principal, obj: Any) -> bool:
    return principal.is_admin or (
        isinstance(obj, Assignment) and obj.assigned_by == principal.user_id
    )


def _uploader(principal: Principal, obj: Any) -> bool:
    """`UploadPolicy`: the person sending the file."""
    return isinstance(obj, Upload) and uploads.can_see(object_session(obj), principal, obj)


RULES: dict[str, Rule] = {
    # The directory is visible to every member: @mentions and sharing need it.
    "user.read": _member,
    "user.list": _member,
    "user.create": _admin,
    "user.update": _admin,
    "user.update_profile": _self_or_admin,
    "team.read": _member,
    "team.list": _member,
    "team.create": _admin,
    "team.update": _admin,
    "team.delete": _admin,
    "team.manage_members": _admin,
    # Admins invite people and follow their invitations.
    "invitation.create": _admin,
    "invitation.list": _admin,
    "invitation.read": _admin,
    "invitation.revoke": _admin,
    "invitation.resend": _admin,
    # People delete their own account (DELETE /me); admins delete anyone else's.
    "user.delete": _admin,
    "user.delete_own": _member,
    "api_token.list": _admin,
    "api_token.create": _admin,
    "api_token.revoke": _admin,
    # The organisation's identity provider (OpenID Connect sign-in).
    "identity_provider.manage": _admin,
    # What the organisation stores against its quota, and its retention policy.
    "organisation.retention": _admin,
    # The organisation's SCIM token: its identity provider provisions people and teams.
    "scim_token.manage": _admin,
    # Every member records videos; the list shows each of them what `videos.visible` allows.
    "video.create": _member,
    "video.list": _member,
    "video.read": _sees_video,
    "video.update": _author,
    # A video's life: its author and admins delete, restore, archive and unarchive it.
    "video.delete": _author_or_admin,
    "video.restore": _author_or_admin,
    "video.archive": _author_or_admin,
    # Only the author sends the file of their draft, and only they add or remove attachments.
    "video.upload": _author,
    "attachment.create": _author,
    "attachment.delete": _author,
    # What the video says: its author corrects the transcript, as admins may.
    "video.edit_transcript": _author_or_admin,
    # Whoever can see a video may pass it on (peers learn from peers) or mute it.
    "video.share": _sees_video,
    "video.mute": _sees_video,
    # Whoever sees a video talks about it: comments, replies, likes, reactions, reports.
    "video.comment": _sees_video,
    "video.react": _sees_video,
    "video.report": _sees_video,
    "comment.read": _sees_comment,
    "comment.reply": _sees_comment,
    "comment.like": _sees_comment,
    "comment.report": _sees_comment,
    "comment.update": _comment_author,
    "comment.delete": _comment_remover,
    "comment.resolve": _thread_resolver,
    "share.read": _follows_share,
    # Managers follow their reports' shares but do not take them back.
    "share.recall": _sender_or_admin,
    # A recipient reads the share that reached them (sender, message, video, their own state).
    "share.read_received": _receives_share,
    "upload.write": _uploader,
    "distribution_list.read": _sees_list,
    # Lists are for the people who send to many: managers, enablement, admins.
    "distribution_list.create": _list_maker,
    "distribution_list.update": _author_or_admin,
    "distribution_list.delete": _author_or_admin,
    # A team's Slack or Teams channel is an organisation-level integration.
    "team.manage_webhooks": _admin,
    # Admins moderate: they read the reports, hide or keep what was reported, show hidden
    # content again, and read the audit log. (Reporting is "video.report" / "comment.report".)
    "report.list": _admin,
    "report.read": _admin,
    "report.resolve": _admin,
    "video.unhide": _admin,
    "comment.unhide": _admin,
    "audit.read": _admin,
    # The BI export: every fact of the organisation, everyone's (fieldcast/exports).
    "bi.export": _admin,
    # The attribute catalogue is read by every member (apps offer its choices) and kept by
    # admins; deals are read as `DealPolicy` allows and written from the CRM.
    "attribute.read": _member,
    "attribute.write": _admin,
    "search.configure": _admin,
    "viewing.configure": _admin,
    # Points and badges (fieldcast/points): every member reads the boards and anyone's
    # badges; admins switch them on or off for the organisation.
    "points.read": _member,
    "points.configure": _admin,
    # The organisation's learning record store (fieldcast/xapi): its credentials and backlog.
    "xapi.configure": _admin,
    # Curation: enablement, managers and admins make collections; a collection's owner adds
    # editors; its editors change and publish it (publishing lets its audience see its
    # videos). Curators feature videos, clips and collections and assign them.
    "collection.create": _curator,
    "collection.list": _member,
    "collection.read": _sees_collection,
    "collection.update": _collection_editor,
    "collection.publish": _collection_editor,
    "collection.delete": _owner_or_admin,
    "collection.manage_editors": _owner_or_admin,
    "feature.manage": _curator,
    "feature.list": _member,
    # The top lists: every member reads them, each entry shown only if its video is theirs to see.
    "top.list": _member,
    "assignment.create": _curator,
    # Its assigner and admins follow, change and withdraw an assignment, and answer requests.
    "assignment.manage": _assigner_or_admin,
    "assignment_rule.manage": _curator,
    # A rule is changed or deleted by whoever made it, and by admins.
    "assignment_rule.change": _rule_maker_or_admin,
    # The reasons people give for declining or asking for more time, across the organisation.
    "assignment.report": _admin,
    "deal.list": _member,
    "deal.read": _sees_deal,
    "deal.write": _deal_writer,
}

# The rule that is each kind's visibility itself: a loader's query has already asked it.
_VISIBILITY_RULES: dict[type[ObjectPolicy[Any]], Rule] = {
    VideoPolicy: _sees_video,
    CommentPolicy: _sees_comment,
    DealPolicy: _sees_deal,
    SharePolicy: _follows_share,
    ReceivedSharePolicy: _receives_share,
    ListPolicy: _sees_list,
    UploadPolicy: _uploader,
    CollectionPolicy: _sees_collection,
}


def _rule(action: str) -> Rule:
    try:
        return RULES[action]
    except KeyError:
        raise LookupError(f"no authorization rule for {action!r}") from None


def can(principal: Principal, action: str, obj: Any = None) -> bool:
    if obj is not None and getattr(obj, "org_id", principal.org_id) != principal.org_id:
        return False
    return _rule(action)(principal, obj)


def authorize(principal: Principal, action: str, obj: Any = None) -> None:
    if obj is not None and getattr(obj, "org_id", principal.org_id) != principal.org_id:
        raise NotFound()
    if not can(principal, action, obj):
        raise PermissionDenied(
            f"Your role does not allow {action.replace('_', ' ').replace('.', ': ')}.",
            code=ErrorCode.PERMISSION_DENIED,
        )


# -- organisation scope ---------------------------------------------------------------------------


def scoped(principal: Principal, model: type[T]) -> Select[Any]:
    """`select(model)` restricted to the principal's organisation: for objects every member
    sees (users, teams) or that a rule decides on after loading (tokens, webhooks)."""
    return select(model).where(model.org_id == principal.org_id)  # type: ignore[attr-defined]


def get_scoped(session: Session, principal: Principal, model: type[T], obj_id: uuid.UUID) -> T:
    """Load one object of the principal's organisation, or raise NotFound."""
    obj: T | None = session.execute(
        scoped(principal, model).where(model.id == obj_id)  # type: ignore[attr-defined]
    ).scalar_one_or_none()
    if obj is None:
        raise NotFound(f"No {model.__name__.lower()} with id {obj_id}.")
    return obj


__all__ = [
    "MAX_REPORTING_DEPTH",
    "RULES",
    "CollectionPolicy",
    "CommentPolicy",
    "DealPolicy",
    "Direction",
    "ListPolicy",
    "ObjectPolicy",
    "Principal",
    "ReceivedSharePolicy",
    "ShareAccess",
    "SharePolicy",
    "UploadPolicy",
    "VideoPolicy",
    "assigned_to",
    "authorize",
    "can",
    "collections",
    "comments",
    "deals",
    "get_scoped",
    "lists",
    "load_collection",
    "load_comment",
    "load_deal",
    "load_list",
    "load_share",
    "load_share_to_read",
    "load_upload",
    "load_video",
    "managers_of",
    "mine",
    "published_for",
    "received_shares",
    "reporting_chain",
    "reports_of",
    "scoped",
    "shares",
    "teams_of",
    "uploads",
    "videos",
]
