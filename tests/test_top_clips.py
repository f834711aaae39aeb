"""Top lists: completions among many viewers beat one viewer's, older acts count less, clips of
published collections and of commented ranges rank with their range, team and attribute boards
hold their videos, and a reader never sees an entry of a video they may not see."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import Range
from sqlalchemy.orm import Session

import fieldcast.context
from fieldcast.context import AppContext
from fieldcast.curation import top
from fieldcast.db import utcnow
from fieldcast.models.accounts import User
from fieldcast.models.conversation import AnswerVote, Comment, CommentLike, Reaction
from fieldcast.models.curation import (
    Collection,
    CollectionItem,
    CollectionVisibility,
    TopEntry,
)
from fieldcast.models.sharing import Share
from fieldcast.models.videos import Video, VideoKind, VideoStatus
from fieldcast.models.viewing import VideoProgress
from tests import factories
from tests.conftest import bearer
from workers import jobs

MINUTE = 60_000


def _video(
    session: Session, owner: User, title: str = "Acme pricing", attrs: dict[str, Any] | None = None
) -> Video:
    video = Video(
        org_id=owner.org_id,
        owner_id=owner.id,
        title=title,
        status=VideoStatus.READY,
        duration_ms=MINUTE,
        deal_attributes=attrs or {},
    )
    session.add(video)
    session.flush()
    return video


def _people(org: Any, n: int) -> list[User]:
    return [factories.UserFactory(org=org) for _ in range(n)]


def _watch(
    session: Session,
    video: Video,
    person: User,
    *,
    done: bool,
    played: tuple[int, int] = (0, MINUTE),
    at: datetime | None = None,
) -> None:
    at = at or utcnow()
    session.add(
        VideoProgress(
            org_id=video.org_id,
            user_id=person.id,
            video_id=video.id,
            played=[Range(*played)],
            played_ms=played[1] - played[0],
            duration_ms=MINUTE,
            first_played_at=at,
            completed_at=at if done else None,
            updated_at=at,
        )
    )


def _react(session: Session, video: Video, person: User, *, at: datetime | None = None) -> None:
    session.add(
        Reaction(
            org_id=video.org_id,
            video_id=video.id,
            user_id=person.id,
            emoji="👏",
            at_ms=1_000,
            created_at=at or utcnow(),
        )
    )


def _board(session: Session, org: Any, board: str = top.ORGANISATION) -> list[TopEntry]:
    return list(
        session.scalars(
            select(TopEntry)
            .where(TopEntry.org_id == org.id, TopEntry.board == board)
            .order_by(TopEntry.rank)
        )
    )


def _get(client: FlaskClient, headers: dict[str, str], **query: Any) -> Any:
    response = client.get("/api/v1/top", query_string=query, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_many_completions_among_viewers_outrank_one_viewer_who_completed(
    session: Session, org: Any
) -> None:
    author = factories.UserFactory(org=org)
    people = _people(org, 20)
    finished = _video(session, author, "Finished by nine of ten")
    loud = _video(session, author, "One viewer, who finished, and eight reactions")
    lone = _video(session, author, "One viewer, who finished")
    abandoned = _video(session, author, "Started by twenty, finished by one")
    for i, person in enumerate(people[:10]):
        _watch(session, finished, person, done=i < 9)
    _watch(session, loud, people[0], done=True)
    for person in people[1:9]:
        _react(session, loud, person)
    _watch(session, lone, people[0], done=True)
    for i, person in enumerate(people):
        _watch(session, abandoned, person, done=i == 0)
    session.flush()

    computed = top.compute(session, org.id)

    entries = _board(session, org)
    # `finished` and `loud` weigh the same nine acts; `loud`'s completion rate (100 %) is
    # higher, but one viewer proves little. `abandoned` has as many completions as `lone`,
    # among twenty viewers.
    assert [e.video_id for e in entries] == [finished.id, loud.id, lone.id, abandoned.id]
    assert entries[0].reasons["engagement"] == pytest.approx(entries[1].reasons["engagement"])
    assert computed.boards == 1 and computed.entries == 4
    best, one = entries[0], entries[2]
    assert best.reasons["viewers"] == 10 and best.reasons["completions"] == 9
    assert best.reasons["completion_lower_bound"] == pytest.approx(
        top.wilson_lower_bound(9, 10), abs=1e-3
    )
    assert one.reasons["completion_lower_bound"] == pytest.approx(0.207, abs=1e-3)
    # The stored score is the documented formula of the stored terms.
    for entry in entries:
        assert entry.score == pytest.approx(
            top.score_of(
                top.wilson_lower_bound(entry.reasons["completions"], entry.reasons["viewers"]),
                entry.reasons["engagement"],
            ),
            rel=1e-3,
        )
        assert entry.start_ms is None and entry.end_ms is None
    # Computed again, the board is replaced, not added to.
    top.compute(session, org.id)
    assert len(_board(session, org)) == 4


def test_older_engagement_counts_less_and_past_the_window_not_at_all(
    session: Session, org: Any
) -> None:
    author = factories.UserFactory(org=org)
    people = _people(org, 4)
    fresh = _video(session, author, "This week")
    stale = _video(session, author, "Four weeks ago")
    ancient = _video(session, author, "Last year")
    now = utcnow()
    for person in people[:3]:
        _react(session, fresh, person, at=now - timedelta(hours=1))
    # More reactions, two half-lives old: worth a quarter each.
    for person in people:
        _react(session, stale, person, at=now - 2 * top.HALF_LIFE)
        _react(session, ancient, person, at=now - top.WINDOW - timedelta(days=1))
    session.flush()

    top.compute(session, org.id, now=now)

    entries = _board(session, org)
    assert [e.video_id for e in entries] == [fresh.id, stale.id]
    old = entries[1].reasons
    assert old["reactions"] == 4
    assert old["decay"] == pytest.approx(0.25, abs=1e-3)
    assert old["engagement"] == pytest.approx(1.0, abs=1e-3)
    assert entries[0].reasons["decay"] == pytest.approx(1.0, abs=1e-2)


def test_clips_of_published_collections_and_commented_ranges_rank_with_their_range(
    client: FlaskClient, session: Session, org: Any
) -> None:
    author, curator, peer, liker, viewer = (
        factories.UserFactory(org=org),
        factories.UserFactory(org=org, enablement=True),
        factories.UserFactory(org=org),
        factories.UserFactory(org=org),
        factories.UserFactory(org=org),
    )
    video = _video(session, author)
    published = Collection(
        org_id=org.id,
        owner_id=curator.id,
        title="Acme in five clips",
        visibility=CollectionVisibility.ORGANISATION,
        published_at=utcnow(),
    )
    draft = Collection(org_id=org.id, owner_id=curator.id, title="Draft")
    session.add_all([published, draft])
    session.flush()
    for collection, (start, end) in ((published, (10_000, 20_000)), (draft, (40_000, 50_000))):
        session.add(
            CollectionItem(
                org_id=org.id,
                collection_id=collection.id,
                position=0,
                video_id=video.id,
                start_ms=start,
                end_ms=end,
                added_by=curator.id,
            )
        )
    comment = Comment(
        org_id=org.id,
        video_id=video.id,
        author_id=peer.id,
        body="This is where the price objection turns",
        at_ms=30_000,
        end_ms=45_000,
        like_count=1,
    )
    session.add(comment)
    session.flush()
    session.add(CommentLike(org_id=org.id, comment_id=comment.id, user_id=liker.id))
    # The viewer played the first 25 s: all of the curated clip, none of the comment's range.
    _watch(session, video, viewer, done=False, played=(0, 25_000))
    session.flush()

    top.compute(session, org.id)

    found = {(e.start_ms, e.end_ms): e for e in _board(session, org)}
    assert set(found) == {(None, None), (10_000, 20_000), (30_000, 45_000)}
    curated = found[(10_000, 20_000)].reasons
    assert curated["curation"] == 1
    assert (curated["viewers"], curated["completions"]) == (1, 1)
    moment = found[(30_000, 45_000)].reasons
    assert (moment["comments"], moment["votes"], moment["viewers"]) == (1, 1, 0)
    whole = found[(None, None)].reasons
    assert (whole["viewers"], whole["completions"], whole["curation"]) == (1, 0, 0)

    # Any member sees them (the collection is published for the organisation), and each
    # clip's link opens the player at its range.
    got = _get(client, bearer(client, viewer))
    clips = {(e["clip"]["start_ms"], e["clip"]["end_ms"]): e for e in got["entries"]}
    assert set(clips) == set(found)
    link = clips[(10_000, 20_000)]["clip"]["link"]
    query = parse_qs(urlsplit(link).query)
    assert urlsplit(link).path.endswith(f"/videos/{video.id}")
    assert query["t"] == ["10000"] and query["end"] == ["20000"]
    assert clips[(10_000, 20_000)]["clip"]["video"]["title"] == "Acme pricing"
    assert clips[(10_000, 20_000)]["reasons"]["curation"] == 1
    assert [e["rank"] for e in got["entries"]] == [1, 2, 3]
    assert got["board"] == "organisation" and got["computed_at"] is not None


def test_team_boards_hold_their_members_videos_and_attribute_boards_their_values(
    client: FlaskClient, session: Session, org: Any
) -> None:
    admin = factories.UserFactory(org=org, admin=True)
    lead, member, loner = _people(org, 3)
    fans = _people(org, 2)
    parent = factories.TeamFactory(org=org)
    child = factories.TeamFactory(org=org, parent_id=parent.id)
    quiet = factories.TeamFactory(org=org)
    factories.MembershipFactory(team=parent, user=lead)
    factories.MembershipFactory(team=child, user=member)
    by_lead = _video(session, lead, "Lead on Acme", {"competitors": ["Acme"], "deal_size": 48_000})
    by_member = _video(
        session, member, "Member in retail", {"industry": "retail", "competitors": ["Globex"]}
    )
    by_loner = _video(session, loner, "Loner on Acme", {"competitors": ["Acme"]})
    for video in (by_lead, by_member, by_loner):
        for fan in fans:
            _react(session, video, fan)
    session.flush()

    top.compute(session, org.id)

    def ids(board: str) -> set[uuid.UUID]:
        return {e.video_id for e in _board(session, org, board)}

    # A team's board: videos by its members and its sub-teams' members.
    assert ids(top.team_board(parent.id)) == {by_lead.id, by_member.id}
    assert ids(top.team_board(child.id)) == {by_member.id}
    assert ids("attribute:competitors=Acme") == {by_lead.id, by_loner.id}
    assert ids("attribute:competitors=Globex") == {by_member.id}
    assert ids("attribute:industry=retail") == {by_member.id}
    # Numbers (and dates) make no boards: a value of its own would hold one deal.
    boards = set(session.scalars(select(TopEntry.board).where(TopEntry.org_id == org.id)))
    assert not any(b.startswith("attribute:deal_size") for b in boards)

    headers = bearer(client, admin)

    def listed(**query: Any) -> set[str]:
        return {e["clip"]["video"]["id"] for e in _get(client, headers, **query)["entries"]}

    assert listed(team_id=str(parent.id)) == {str(by_lead.id), str(by_member.id)}
    # Names and choices as people write them find the board.
    assert listed(attribute="Industry:Retail") == {str(by_member.id)}
    assert listed(attribute="competitors:Acme") == {str(by_lead.id), str(by_loner.id)}
    assert listed(attribute="competitors:Initech") == set()
    assert listed(limit=1) and len(listed(limit=1)) == 1
    # A team whose members recorded nothing that ranks has an empty list, ranked all the same.
    empty = _get(client, headers, team_id=str(quiet.id))
    assert empty["entries"] == [] and empty["computed_at"] is not None

    unknown = client.get(
        "/api/v1/top", query_string={"team_id": str(uuid.uuid4())}, headers=headers
    )
    assert unknown.status_code == 404
    for query in (
        {"attribute": "no-colon"},
        {"attribute": "industry:"},
        {"limit": 51},
        {"team_id": str(parent.id), "attribute": "industry:retail"},
    ):
        refused = client.get("/api/v1/top", query_string=query, headers=headers)
        assert refused.status_code == 422, query
        assert refused.content_type == "application/problem+json"


def test_accepted_answers_answer_votes_and_shares_count_for_the_video_they_are_about(
    session: Session, org: Any
) -> None:
    asker, answerer, voter, sharer, commenter = _people(org, 5)
    question = _video(session, asker, "How do I answer Acme on price?")
    question.kind = VideoKind.QUESTION
    reply = _video(session, answerer, "Like this")
    reply.answers_video_id = question.id
    asked_again = _video(session, asker, "And on security?")
    asked_again.kind = VideoKind.QUESTION
    answer = Comment(
        org_id=org.id,
        video_id=asked_again.id,
        author_id=commenter.id,
        body="Lead with the audit report",
        at_ms=5_000,
    )
    session.add(answer)
    session.flush()
    question.accepted_video_id, question.answered_at = reply.id, utcnow()
    asked_again.accepted_comment_id, asked_again.answered_at = answer.id, utcnow()
    session.add(AnswerVote(org_id=org.id, video_id=reply.id, user_id=voter.id))
    session.add(
        Share(org_id=org.id, video_id=reply.id, sender_id=sharer.id, audience={"user_ids": []})
    )
    # A recalled share is no endorsement.
    session.add(
        Share(
            org_id=org.id,
            video_id=reply.id,
            sender_id=voter.id,
            audience={"user_ids": []},
            recalled_at=utcnow(),
        )
    )
    session.flush()

    top.compute(session, org.id)

    found = {e.video_id: e.reasons for e in _board(session, org)}
    assert set(found) == {reply.id, asked_again.id}
    assert (found[reply.id]["accepted_answers"], found[reply.id]["votes"]) == (1, 1)
    assert found[reply.id]["shares"] == 1
    # The comment the asker accepted is on the question: the question and its moment count it.
    assert (found[asked_again.id]["accepted_answers"], found[asked_again.id]["comments"]) == (
        1,
        1,
    )


def test_a_reader_never_sees_entries_of_videos_they_may_not_see(
    client: FlaskClient, session: Session, org: Any, other_org: Any
) -> None:
    admin = factories.UserFactory(org=org, admin=True)
    rep, peer = _people(org, 2)
    fans = _people(org, 5)
    outsider = factories.UserFactory(org=other_org, admin=True)
    mine = _video(session, rep, "Rep's own")
    theirs = _video(session, peer, "Not shared with the rep")
    for fan in fans[:2]:
        _react(session, mine, fan)
    # The author's own acts on their video do not count.
    _react(session, mine, rep)
    for fan in fans:
        _react(session, theirs, fan)
    archived = _video(session, peer, "Archived")
    archived.archived_at = utcnow()
    for fan in fans:
        _react(session, archived, fan)
    session.flush()
    top.compute(session, org.id)
    assert [e.video_id for e in _board(session, org)] == [theirs.id, mine.id]
    assert _board(session, org)[1].reasons["reactions"] == 2

    as_admin = _get(client, bearer(client, admin))
    assert [e["clip"]["video"]["id"] for e in as_admin["entries"]] == [str(theirs.id), str(mine.id)]
    as_rep = _get(client, bearer(client, rep))
    # Skipped, not shown as unavailable; the rep's list starts at 1.
    assert [(e["rank"], e["clip"]["video"]["id"]) for e in as_rep["entries"]] == [(1, str(mine.id))]
    assert all(e["clip"]["available"] for e in as_rep["entries"])
    assert set(as_rep["entries"][0]["reasons"]) == {
        "viewers",
        "completions",
        "completion_lower_bound",
        "reactions",
        "comments",
        "votes",
        "accepted_answers",
        "shares",
        "curation",
        "engagement",
        "decay",
    }
    # Another organisation has boards of its own (none yet), never these.
    outside = _get(client, bearer(client, outsider))
    assert outside["entries"] == [] and outside["computed_at"] is None

    # A video deleted after the ranking leaves the lists at once.
    mine.deleted_at = utcnow()
    session.flush()
    as_rep = _get(client, bearer(client, rep))
    assert as_rep["entries"] == []
    assert as_rep["computed_at"] is not None
    # So does one archived after it (still reachable by its link, no longer listed).
    theirs.archived_at = utcnow()
    session.flush()
    assert _get(client, bearer(client, admin))["entries"] == []


def test_the_periodic_job_ranks_every_organisation(
    monkeypatch: pytest.MonkeyPatch,
    context: AppContext,
    session: Session,
    org: Any,
    other_org: Any,
) -> None:
    monkeypatch.setattr(fieldcast.context, "_current", context)
    for organisation in (org, other_org):
        author, fan = _people(organisation, 2)
        _react(session, _video(session, author), fan)
    session.commit()

    report = jobs.compute_top_clips()

    assert report["organisations"] >= 2 and report["failed"] == 0
    for organisation in (org, other_org):
        assert len(_board(session, organisation)) == 1


def test_reading_a_board_takes_the_same_few_queries_however_many_entries_it_shows(
    client: FlaskClient, session: Session, org: Any, count_queries: Any
) -> None:
    author, fan = _people(org, 2)
    for n in range(6):
        _react(session, _video(session, author, f"Video {n}"), fan)
    session.flush()
    top.compute(session, org.id)
    headers = bearer(client, author)

    counts = []
    for limit in (1, 6):
        before = count_queries.count
        assert len(_get(client, headers, limit=limit)["entries"]) == limit
        counts.append(count_queries.count - before)
    assert counts[0] == counts[1], counts
