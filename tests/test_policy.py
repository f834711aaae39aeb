"""The visibility policy: for every kind of object, the SQL predicate and the check on one object
give the same answers; the reporting chain is bounded and survives loops; the video predicate
is one statement whatever the page size."""

from __future__ import annotations

import ast
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fieldcast import policy
from fieldcast.db import utcnow
from fieldcast.errors import NotFound, PermissionDenied
from fieldcast.models.accounts import User
from fieldcast.models.conversation import Comment
from fieldcast.models.curation import (
    Collection,
    CollectionItem,
    CollectionTeam,
    CollectionVisibility,
)
from fieldcast.models.inbox import Notification
from fieldcast.models.programs import Assignee, Assignment
from fieldcast.models.sharing import (
    DistributionList,
    ListVisibility,
    RecipientState,
    Share,
    ShareAudience,
    ShareRecipient,
)
from fieldcast.models.videos import Video, VideoKind
from fieldcast.policy import MAX_REPORTING_DEPTH, Direction, Principal
from tests import factories

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Population:
    """One organisation with every relation a person can have to a video and its shares, and
    an admin of another organisation."""

    people: dict[str, Any]
    video: Video  # by `author`, shared with `recipient` (row) and `pending` (audience block)
    other_video: Video  # by `peer`, shared with nobody
    share: Share  # `author` shared `video`
    reshare: Share  # `recipient` passed `video` on to `peer` (rows made)
    recalled_share: Share  # `author` shared `video` with `former` and `recipient`, then recalled it
    deleted_video: Video  # by `author`, shared with `recipient`, then deleted
    private_list: DistributionList  # `manager1`'s
    org_list: DistributionList  # `author`'s, for the whole organisation
    answer_video: Video  # by `peer`, answering `video` (a question), shared with nobody
    hidden_video: Video  # by `author`, shared with `recipient`, hidden by an admin
    comment: Comment  # by `recipient` on `video`
    team_video: Video  # by `curator`, in `team_collection`
    draft_video: Video  # by `curator`, in `draft_collection` only
    assigned_video: Video  # by `curator`, assigned to `assignee` (and, withdrawn, to `former`)
    collection_video: Video  # by `curator`, in `assigned_collection`
    team_collection: Collection  # `curator`'s, published for a team `member` is in a sub-team of
    draft_collection: Collection  # `curator`'s, for the organisation, not published
    assigned_collection: Collection  # `curator`'s, private, assigned to `assignee`


def _principal(user: Any) -> Principal:
    return Principal(user=user)


@pytest.fixture
def population(session: Session, org: Any, other_org: Any) -> Population:
    # The reporting line: author -> manager1 -> manager2 -> manager3.
    manager3 = factories.UserFactory(org=org, manager=True)
    manager2 = factories.UserFactory(org=org, manager=True, manager_id=manager3.id)
    manager1 = factories.UserFactory(org=org, manager=True, manager_id=manager2.id)
    author = factories.UserFactory(org=org, manager_id=manager1.id)
    people = {
        "author": author,
        "recipient": factories.UserFactory(org=org),
        "pending": factories.UserFactory(org=org),
        "manager1": manager1,
        "manager3": manager3,
        "peer": factories.UserFactory(org=org, manager_id=manager1.id),
        "admin": factories.UserFactory(org=org, admin=True),
        "outsider": factories.UserFactory(org=other_org, admin=True),
        "former": factories.UserFactory(org=org),
        "curator": factories.UserFactory(org=org, enablement=True),
        "member": factories.UserFactory(org=org),
        "assignee": factories.UserFactory(org=org),
    }
    video = Video(
        org_id=org.id, owner_id=author.id, title="Pricing objection", kind=VideoKind.QUESTION
    )
    other_video = Video(org_id=org.id, owner_id=people["peer"].id, title="Peer's own")
    deleted_video = Video(
        org_id=org.id,
        owner_id=author.id,
        title="Taken down",
        deleted_at=utcnow(),
        purge_after=utcnow() + timedelta(days=7),
    )
    hidden_video = Video(
        org_id=org.id, owner_id=author.id, title="Hidden on a report", hidden_at=utcnow()
    )
    session.add_all([video, other_video, deleted_video, hidden_video])
    session.flush()
    answer_video = Video(
        org_id=org.id, owner_id=people["peer"].id, title="Try this", answers_video_id=video.id
    )
    comment = Comment(
        org_id=org.id, video_id=video.id, author_id=people["recipient"].id, body="At 0:12"
    )
    hidden_share = Share(org_id=org.id, video_id=hidden_video.id, sender_id=author.id, audience={})
    session.add_all([answer_video, comment, hidden_share])
    session.flush()
    session.add(
        ShareRecipient(
            org_id=org.id,
            share_id=hidden_share.id,
            user_id=people["recipient"].id,
            video_id=hidden_video.id,
            state=RecipientState.SENT,
        )
    )
    share = Share(org_id=org.id, video_id=video.id, sender_id=author.id, audience={})
    reshare = Share(org_id=org.id, video_id=video.id, sender_id=people["recipient"].id, audience={})
    recalled = Share(
        org_id=org.id, video_id=video.id, sender_id=author.id, audience={}, recalled_at=utcnow()
    )
    deleted_share = Share(
        org_id=org.id, video_id=deleted_video.id, sender_id=author.id, audience={}
    )
    private_list = DistributionList(org_id=org.id, owner_id=manager1.id, name="Mine")
    org_list = DistributionList(
        org_id=org.id,
        owner_id=author.id,
        name="Everyone's",
        visibility=ListVisibility.ORGANISATION,
    )
    session.add_all([share, reshare, recalled, deleted_share, private_list, org_list])
    session.flush()
    session.add_all(
        [
            ShareRecipient(
                org_id=org.id,
                share_id=share.id,
                user_id=people["recipient"].id,
                video_id=video.id,
                state=RecipientState.QUEUED,
            ),
            ShareAudience(
                org_id=org.id,
                share_id=share.id,
                block=0,
                video_id=video.id,
                user_ids=[people["pending"].id],
            ),
            ShareRecipient(
                org_id=org.id,
                share_id=reshare.id,
                user_id=people["peer"].id,
                video_id=video.id,
                state=RecipientState.QUEUED,
            ),
            # A recalled share grants nothing: `former` had the video only through it,
            # `recipient` keeps it through `share`.
            *(
                ShareRecipient(
                    org_id=org.id,
                    share_id=recalled.id,
                    user_id=people[who].id,
                    video_id=video.id,
                    state=RecipientState.SENT,
                )
                for who in ("former", "recipient")
            ),
            ShareRecipient(
                org_id=org.id,
                share_id=deleted_share.id,
                user_id=people["recipient"].id,
                video_id=deleted_video.id,
                state=RecipientState.SENT,
            ),
        ]
    )
    session.flush()
    curated = _curation(session, org, people)
    return Population(
        people,
        video,
        other_video,
        share,
        reshare,
        recalled,
        deleted_video,
        private_list,
        org_list,
        answer_video,
        hidden_video,
        comment,
        **curated,
    )


def _curation(session: Session, org: Any, people: dict[str, Any]) -> dict[str, Any]:
    """Collections and assignments: what they grant, and to whom."""
    curator = people["curator"]
    parent = factories.TeamFactory(org=org)
    child = factories.TeamFactory(org=org, parent_id=parent.id)
    factories.MembershipFactory(team=child, user=people["member"])
    made = {
        name: Video(org_id=org.id, owner_id=curator.id, title=name)
        for name in ("team_video", "draft_video", "assigned_video", "collection_video")
    }
    team_collection = Collection(
        org_id=org.id,
        owner_id=curator.id,
        title="For the team",
        visibility=CollectionVisibility.TEAMS,
        published_at=utcnow(),
    )
    draft = Collection(
        org_id=org.id,
        owner_id=curator.id,
        title="Draft",
        visibility=CollectionVisibility.ORGANISATION,
    )
    assigned_collection = Collection(org_id=org.id, owner_id=curator.id, title="Assigned")
    session.add_all([*made.values(), team_collection, draft, assigned_collection])
    session.flush()
    session.add(CollectionTeam(org_id=org.id, collection_id=team_collection.id, team_id=parent.id))
    for collection, video in (
        (team_collection, made["team_video"]),
        (draft, made["draft_video"]),
        (assigned_collection, made["collection_video"]),
    ):
        session.add(
            CollectionItem(
                org_id=org.id, collection_id=collection.id, position=0, video_id=video.id
            )
        )
    standing = Assignment(org_id=org.id, video_id=made["assigned_video"].id)
    withdrawn = Assignment(org_id=org.id, video_id=made["assigned_video"].id, withdrawn_at=utcnow())
    of_collection = Assignment(org_id=org.id, collection_id=assigned_collection.id)
    session.add_all([standing, withdrawn, of_collection])
    session.flush()
    session.add_all(
        [
            Assignee(org_id=org.id, assignment_id=standing.id, user_id=people["assignee"].id),
            Assignee(org_id=org.id, assignment_id=withdrawn.id, user_id=people["former"].id),
            Assignee(org_id=org.id, assignment_id=of_collection.id, user_id=people["assignee"].id),
        ]
    )
    session.flush()
    return {
        **made,
        "team_collection": team_collection,
        "draft_collection": draft,
        "assigned_collection": assigned_collection,
    }


# What each person sees: the expectations the predicate and the check must both meet.
EXPECTED = {
    "video": {"author", "recipient", "pending", "peer", "admin"},
    "other_video": {"peer", "admin"},
    "share": {"author", "manager1", "manager3", "admin"},
    "reshare": {"recipient", "admin"},
    # A recalled share is still followed by its sender, their managers and admins.
    "recalled_share": {"author", "manager1", "manager3", "admin"},
    # A deleted video is seen by nobody, its author and admins included.
    "deleted_video": set(),
    "private_list": {"manager1", "admin"},
    # A reply video is seen by the asker of the question it answers, too.
    "answer_video": {"peer", "author", "admin"},
    # A hidden video is seen by its author and admins only.
    "hidden_video": {"author", "admin"},
    # A comment is seen by whoever sees its video.
    "comment": {"author", "recipient", "pending", "peer", "admin"},
    "org_list": {
        "author",
        "recipient",
        "pending",
        "manager1",
        "manager3",
        "peer",
        "admin",
        "former",
        "curator",
        "member",
        "assignee",
    },
    # A collection published for a team is for the people of its sub-teams too.
    "team_video": {"curator", "member", "admin"},
    "team_collection": {"curator", "member", "admin"},
    # Unpublished, a collection grants nothing.
    "draft_video": {"curator", "admin"},
    "draft_collection": {"curator", "admin"},
    # An assignment grants what it assigns while it stands (`former`'s was withdrawn).
    "assigned_video": {"curator", "assignee", "admin"},
    "collection_video": {"curator", "assignee", "admin"},
    "assigned_collection": {"curator", "assignee", "admin"},
}


CURATED = ("team_video", "draft_video", "assigned_video", "collection_video")


def _kind(name: str) -> policy.ObjectPolicy[Any]:
    if name == "comment":
        return policy.comments
    if "collection" in name and "video" not in name:
        return policy.collections
    if "video" in name:
        return policy.videos
    if "share" in name:
        return policy.shares
    return policy.lists


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_predicate_and_the_check_on_one_object_agree(
    session: Session, population: Population, name: str
) -> None:
    obj = getattr(population, name)
    kind = _kind(name)
    by_predicate: set[str] = set()
    by_check: set[str] = set()
    for who, user in population.people.items():
        principal = _principal(user)
        found: Sequence[Any] = session.scalars(
            select(kind.model.id).where(kind.model.id == obj.id, kind.visible(principal))
        ).all()
        if found:
            by_predicate.add(who)
        if kind.can_see(session, principal, obj):
            by_check.add(who)
    assert by_predicate == EXPECTED[name]
    assert by_check == EXPECTED[name]
    if kind is policy.videos:
        # Asked for many people at once (who may be told about the video), the same answer.
        everyone = select(User.id).where(
            User.id.in_([user.id for user in population.people.values()])
        )
        viewers = policy.videos.viewers_among(session, obj, everyone)
        assert viewers == {population.people[who].id for who in EXPECTED[name]}


def test_lists_filtered_by_the_predicate_hold_exactly_what_each_person_sees(
    session: Session, population: Population
) -> None:
    for who, user in population.people.items():
        principal = _principal(user)
        seen = set(session.scalars(policy.videos.select(principal).with_only_columns(Video.id)))
        expected = {
            getattr(population, name).id
            for name in ("video", "other_video", "answer_video", "hidden_video", *CURATED)
            if who in EXPECTED[name]
        }
        assert seen == expected, who
        # The same rule written to start from the ids a person may see (search's).
        names = (
            "video",
            "other_video",
            "answer_video",
            "hidden_video",
            "deleted_video",
            *CURATED,
        )
        among = Video.id.in_([getattr(population, name).id for name in names])
        by_ids = set(
            session.scalars(select(Video.id).where(policy.videos.listed_by_ids(principal), among))
        )
        listed = set(
            session.scalars(select(Video.id).where(policy.videos.listed(principal), among))
        )
        assert by_ids == listed == expected, who
        shares = set(
            session.scalars(
                select(Share.id).where(
                    policy.shares.visible(principal),
                    Share.video_id.not_in(
                        [population.deleted_video.id, population.hidden_video.id]
                    ),
                )
            )
        )
        expected = {
            getattr(population, name).id
            for name in ("share", "reshare", "recalled_share")
            if who in EXPECTED[name]
        }
        assert shares == expected, who


def test_loaders_answer_not_found_for_the_invisible_and_forbidden_for_the_refused(
    session: Session, population: Population
) -> None:
    people, video = population.people, population.video
    # Invisible: 404, exactly like an id that does not exist.
    for who in ("manager1", "outsider"):
        with pytest.raises(NotFound):
            policy.load_video(session, _principal(people[who]), video.id)
    with pytest.raises(NotFound):
        policy.load_video(session, _principal(people["author"]), uuid.uuid4())
    # Visible but not theirs to edit: 403 permission_denied.
    for who in ("recipient", "pending", "admin"):
        assert policy.load_video(session, _principal(people[who]), video.id) is video
        with pytest.raises(PermissionDenied) as refused:
            policy.load_video(session, _principal(people[who]), video.id, "video.update")
        assert refused.value.code == "permission_denied"
    author = _principal(people["author"])
    assert policy.load_video(session, author, video.id, "video.update") is video
    # The sender's manager three levels up follows the share; a recipient does not.
    assert policy.load_share(session, _principal(people["manager3"]), population.share.id)
    with pytest.raises(NotFound):
        policy.load_share(session, _principal(people["recipient"]), population.share.id)
    # An organisation list is seen by all; only its owner or an admin changes it.
    peer = _principal(people["peer"])
    assert policy.load_list(session, peer, population.org_list.id) is population.org_list
    with pytest.raises(PermissionDenied):
        policy.load_list(session, peer, population.org_list.id, "distribution_list.update")
    with pytest.raises(NotFound):
        policy.load_list(session, peer, population.private_list.id)


def test_deleted_videos_are_restorable_by_their_author_and_admins_only(
    session: Session, population: Population
) -> None:
    deleted = population.deleted_video
    for who, user in population.people.items():
        found = session.scalars(
            select(Video.id).where(
                Video.id == deleted.id, policy.videos.restorable(_principal(user))
            )
        ).all()
        assert bool(found) is (who in {"author", "admin"}), who


def test_a_share_is_recalled_by_its_sender_and_admins_not_its_followers(
    session: Session, population: Population
) -> None:
    share = population.share
    for who, user in population.people.items():
        allowed = policy.can(_principal(user), "share.recall", share)
        assert allowed is (who in {"author", "admin"}), who
    # Managers up the chain follow the share (they may read it) but are refused the recall.
    with pytest.raises(PermissionDenied):
        policy.load_share(
            session, _principal(population.people["manager1"]), share.id, "share.recall"
        )


def test_visibility_actions_name_the_visibility_rule(
    session: Session, population: Population
) -> None:
    """`video.read`, `video.share` and `video.mute` are the video's visibility itself."""
    for action in ("video.read", "video.share", "video.mute"):
        for who, user in population.people.items():
            allowed = policy.can(_principal(user), action, population.video)
            assert allowed is (who in EXPECTED["video"]), (action, who)
    assert policy.can(_principal(population.people["manager3"]), "share.read", population.share)
    assert not policy.can(_principal(population.people["peer"]), "share.read", population.share)


def test_the_rule_table_says_who_not_anyone() -> None:
    source = (ROOT / "fieldcast" / "policy.py").read_text()
    assert "_anyone" not in source
    for action in ("video.read", "video.share", "video.mute"):
        assert policy.RULES[action] is policy.RULES["video.read"] is not policy.RULES["user.read"]
    # Every action named in the code base has a rule.
    named: set[str] = set()
    pattern = re.compile(r"""(?:authorize|load_\w+)\([^()]*?["']([a-z_]+\.[a-z_]+)["']""", re.S)
    for path in [*(ROOT / "fieldcast").rglob("*.py"), *(ROOT / "api").rglob("*.py")]:
        named.update(pattern.findall(path.read_text()))
    assert named, "the pattern found no action"
    assert named <= set(policy.RULES), sorted(named - set(policy.RULES))


def test_the_policy_imports_only_models_the_database_and_errors() -> None:
    tree = ast.parse((ROOT / "fieldcast" / "policy.py").read_text())
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fieldcast")
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name.startswith("fieldcast")
    }
    allowed = {"fieldcast.db", "fieldcast.errors"}
    wrong = {
        name
        for name in imported
        if name not in allowed
        and not name.endswith(".models")
        and not name.startswith("fieldcast.models")
    }
    assert not wrong


# -- the reporting chain --------------------------------------------------------------------------


def _line(org: Any, length: int) -> list[Any]:
    """`length` people, each the manager of the one before."""
    people = [factories.UserFactory(org=org)]
    for _ in range(length - 1):
        boss = factories.UserFactory(org=org, manager=True)
        people[-1].manager_id = boss.id
        people.append(boss)
    return people


def _chain(session: Session, org: Any, user: Any, direction: Direction) -> list[uuid.UUID]:
    query = policy.managers_of if direction is Direction.UP else policy.reports_of
    return list(session.scalars(query(org.id, user.id)))


def test_the_reporting_chain_stops_at_its_documented_depth(session: Session, org: Any) -> None:
    people = _line(org, MAX_REPORTING_DEPTH + 3)
    session.flush()
    bottom, top = people[0], people[-1]
    up = _chain(session, org, bottom, Direction.UP)
    assert up == [p.id for p in people[1 : MAX_REPORTING_DEPTH + 1]]
    down = _chain(session, org, top, Direction.DOWN)
    assert sorted(down) == sorted(p.id for p in people[-1 - MAX_REPORTING_DEPTH : -1])

    # Used both ways: the share of the bottom person is followed by exactly the managers
    # within the bound, by the predicate (downwards) and the check (upwards) alike.
    video = Video(org_id=org.id, owner_id=bottom.id, title="Deep")
    session.add(video)
    session.flush()
    share = Share(org_id=org.id, video_id=video.id, sender_id=bottom.id, audience={})
    session.add(share)
    session.flush()
    last_in, first_out = people[MAX_REPORTING_DEPTH], people[MAX_REPORTING_DEPTH + 1]
    for manager, expected in ((people[1], True), (last_in, True), (first_out, False)):
        principal = _principal(manager)
        assert policy.shares.can_see(session, principal, share) is expected
        found = session.scalar(
            select(Share.id).where(Share.id == share.id, policy.shares.visible(principal))
        )
        assert (found is not None) is expected


def test_a_loop_in_the_reporting_line_ends_the_walk(session: Session, org: Any) -> None:
    a, b, c = _line(org, 3)
    session.flush()
    # The API refuses to close a loop; a bulk import or a hand-edited row might not.
    session.execute(update(User).where(User.id == c.id).values(manager_id=a.id))
    session.expire_all()
    # Each person once, the start never: the walk stops at the loop, not at the depth bound.
    assert _chain(session, org, a, Direction.UP) == [b.id, c.id]
    assert _chain(session, org, a, Direction.DOWN) == [c.id, b.id]
    video = Video(org_id=org.id, owner_id=a.id, title="Loop")
    session.add(video)
    session.flush()
    share = Share(org_id=org.id, video_id=video.id, sender_id=a.id, audience={})
    session.add(share)
    session.flush()
    for user in (a, b, c):
        assert policy.shares.can_see(session, _principal(user), share)
        visible = select(Share.id).where(policy.shares.visible(_principal(user)))
        assert session.scalars(visible).all() == [share.id]


def test_the_chain_stays_inside_the_organisation(
    session: Session, org: Any, other_org: Any
) -> None:
    person, boss = _line(org, 2)
    session.flush()
    assert _chain(session, org, person, Direction.UP) == [boss.id]
    assert _chain(session, other_org, person, Direction.UP) == []
    assert _chain(session, other_org, boss, Direction.DOWN) == []


# -- one statement --------------------------------------------------------------------------------


def _explain(session: Session, stmt: Any) -> list[str]:
    compiled = stmt.compile(dialect=session.get_bind().dialect)
    rows = session.connection().exec_driver_sql("EXPLAIN " + compiled.string, compiled.params)
    return [row[0] for row in rows]


def test_the_video_predicate_is_one_statement(session: Session, population: Population) -> None:
    principal = _principal(population.people["recipient"])
    stmt = policy.videos.select(principal).order_by(Video.id.desc()).limit(50)
    plan = "\n".join(_explain(session, stmt))
    # One plan that reads the videos and both ways a share gives access, in the database.
    for table in ("videos", "share_recipients", "share_audiences"):
        assert table in plan, plan
    shares = _explain(session, policy.shares.select(_principal(population.people["manager3"])))
    assert any("Recursive Union" in line for line in shares), shares


def test_a_page_of_videos_costs_the_same_statements_whatever_its_size(
    client: FlaskClient, session: Session, org: Any, auth: Any, count_queries: Any
) -> None:
    author = factories.UserFactory(org=org)
    viewer = factories.UserFactory(org=org)
    session.flush()
    headers = auth(viewer)

    def page_after_sharing(count: int) -> tuple[int, int]:
        for _ in range(count):
            video = Video(org_id=org.id, owner_id=author.id, title="Shared")
            session.add(video)
            session.flush()
            share = Share(org_id=org.id, video_id=video.id, sender_id=author.id, audience={})
            session.add(share)
            session.flush()
            session.add(
                ShareRecipient(
                    org_id=org.id,
                    share_id=share.id,
                    user_id=viewer.id,
                    video_id=video.id,
                    state=RecipientState.QUEUED,
                )
            )
        session.flush()
        count_queries.statements.clear()
        page = client.get("/api/v1/videos?limit=50", headers=headers).get_json()
        return count_queries.count, len(page["items"])

    few, few_items = page_after_sharing(3)
    many, many_items = page_after_sharing(47)
    assert (few_items, many_items) == (3, 50)
    assert many == few, count_queries.statements


def test_personal_rows_are_their_persons_alone(
    session: Session, population: Population, other_org: Any
) -> None:
    """Inbox items, phones and mutes: nobody else sees them, admins of the organisation not
    excepted."""
    owner = population.people["recipient"]
    item = Notification(
        org_id=owner.org_id, user_id=owner.id, type="share.received", title="New", body=""
    )
    session.add(item)
    session.flush()
    for who, user in population.people.items():
        found = session.scalar(
            select(Notification.id).where(
                Notification.id == item.id, policy.mine(_principal(user), Notification)
            )
        )
        assert (found is not None) is (who == "recipient"), who
