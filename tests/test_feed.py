"""Shared with me: the feed, a recipient reading their share, and the videos list's filters."""

from __future__ import annotations

import uuid
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from fieldcast.context import AppContext
from fieldcast.db import utcnow
from fieldcast.models.inbox import Notification
from fieldcast.models.sharing import Share
from fieldcast.models.videos import Rendition, RenditionKind, Video, VideoStatus
from fieldcast.policy import Principal
from fieldcast.sharing import feed
from tests import factories
from tests.api_support import share_video
from tests.conftest import QueryCounter
from tests.push_support import RecordingSink
from tests.worker_support import drain_outbox as drain


def _video(
    session: Session,
    owner: Any,
    title: str = "Discovery call",
    *,
    status: VideoStatus = VideoStatus.PLAYABLE,
    deal: dict[str, str] | None = None,
) -> Video:
    video = Video(
        org_id=owner.org_id,
        owner_id=owner.id,
        title=title,
        status=status,
        duration_ms=95_000,
        deal_attributes=deal or {},
    )
    session.add(video)
    session.flush()
    return video


def _poster(session: Session, video: Video) -> None:
    session.add(
        Rendition(
            org_id=video.org_id,
            video_id=video.id,
            name="poster",
            kind=RenditionKind.POSTER,
            source_version=video.source_version,
            storage_key=f"{video.media_prefix}/poster.jpg",
        )
    )
    session.flush()


def _feed(client: FlaskClient, headers: dict[str, str], **query: Any) -> dict[str, Any]:
    response = client.get("/api/v1/feed", query_string=query, headers=headers)
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def test_the_feed_lists_what_was_shared_with_me_newest_first(
    client: FlaskClient,
    session: Session,
    org: Any,
    auth: Any,
    sink: RecordingSink,
    context: AppContext,
) -> None:
    alice = factories.UserFactory(org=org, display_name="Alice", handle="alice")
    bob = factories.UserFactory(org=org, display_name="Bob", handle="bob")
    me, bystander = factories.UserFactory(org=org), factories.UserFactory(org=org)
    pricing = _video(session, alice, "Pricing objection")
    _poster(session, pricing)
    competitor = _video(session, bob, "Competitor X")
    first = share_video(client, auth(alice), pricing, me, message="Watch from 1:10")
    second = share_video(client, auth(bob), competitor, me, bystander, message="Heads up")
    third = share_video(client, auth(alice), pricing, me, message="Again, for Friday")
    drain(context)

    headers = auth(me)
    body = _feed(client, headers)
    assert [e["share_id"] for e in body["items"]] == [third, second, first]
    assert body["next_cursor"] is None and body["deleted"] == [] and body["sync_token"]
    entry = body["items"][2]
    assert entry["sender"] == {"id": str(alice.id), "handle": "alice", "display_name": "Alice"}
    assert entry["message"] == "Watch from 1:10"
    assert entry["my_state"] == "unseen" and entry["state"] == "failed"  # no phone to push to
    video = entry["video"]
    assert video["id"] == str(pricing.id) and video["title"] == "Pricing objection"
    assert video["status"] == "playable" and video["duration_ms"] == 95_000
    assert "sig=" in video["poster_url"]
    assert body["items"][1]["video"]["poster_url"] is None

    # Opening the push of the first share, then starting the video, move my state.
    item = session.scalars(
        select(Notification).where(
            Notification.user_id == me.id, Notification.data["share_id"].astext == first
        )
    ).one()
    client.post(f"/api/v1/notifications/{item.id}/opened", headers=headers)
    states = {e["share_id"]: e["my_state"] for e in _feed(client, headers)["items"]}
    assert states == {first: "opened", second: "unseen", third: "unseen"}
    client.post(f"/api/v1/videos/{pricing.id}/playback-started", headers=headers)
    states = {e["share_id"]: e["my_state"] for e in _feed(client, headers)["items"]}
    assert states == {first: "watched", second: "unseen", third: "watched"}

    # One page at a time, by cursor.
    seen, cursor = [], None
    while True:
        page = _feed(client, headers, limit=1, **({"cursor": cursor} if cursor else {}))
        seen += [e["share_id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [third, second, first]

    # Only my shares: the bystander got the second one; the senders got none.
    assert [e["share_id"] for e in _feed(client, auth(bystander))["items"]] == [second]
    assert _feed(client, auth(alice))["items"] == []

    # Recalled shares, archived and deleted videos never appear.
    recalled = session.get(Share, uuid.UUID(third))
    assert recalled is not None
    recalled.recalled_at = utcnow()
    session.flush()
    assert [e["share_id"] for e in _feed(client, headers)["items"]] == [second, first]
    competitor.archived_at = utcnow()
    session.flush()
    assert [e["share_id"] for e in _feed(client, headers)["items"]] == [first]
    pricing.deleted_at = utcnow()
    session.flush()
    assert _feed(client, headers)["items"] == []


def test_a_share_is_in_the_feed_before_a_worker_made_its_rows(
    client: FlaskClient, session: Session, org: Any, auth: Any
) -> None:
    sender, me = factories.UserFactory(org=org), factories.UserFactory(org=org)
    video = _video(session, sender, status=VideoStatus.PROCESSING)
    share_id = share_video(client, auth(sender), video, me, message="When it is ready")
    [entry] = _feed(client, auth(me))["items"]
    assert entry["share_id"] == share_id and entry["state"] == "queued"
    assert entry["my_state"] == "unseen" and entry["video"]["status"] == "processing"


def test_the_feed_of_another_organisation_is_empty(
    client: FlaskClient, session: Session, org: Any, outsider: Any, auth: Any
) -> None:
    sender, me = factories.UserFactory(org=org), factories.UserFactory(org=org)
    share_video(client, auth(sender), _video(session, sender), me)
    assert _feed(client, auth(outsider))["items"] == []


def test_a_recipient_reads_their_share_by_the_id_the_push_carried(
    client: FlaskClient,
    session: Session,
    org: Any,
    auth: Any,
    sink: RecordingSink,
    context: AppContext,
) -> None:
    sender = factories.UserFactory(org=org, display_name="Sam", handle="sam")
    me, other = factories.UserFactory(org=org), factories.UserFactory(org=org)
    video = _video(session, sender, "Renewal call")
    share_id = share_video(client, auth(sender), video, me, other, message="Listen to the close")
    drain(context)

    response = client.get(f"/api/v1/shares/{share_id}", headers=auth(me))
    assert response.status_code == 200
    body = response.get_json()
    assert body["id"] == share_id and body["message"] == "Listen to the close"
    received = body["received"]
    assert received["sender"]["handle"] == "sam" and received["video"]["title"] == "Renewal call"
    assert received["my_state"] == "unseen"
    # Nothing of the audience or of the other recipients.
    for key in ("audience", "recipient_count", "counts", "reached", "status"):
        assert body[key] is None, key
    assert str(other.id) not in response.get_data(as_text=True)
    assert client.get(f"/api/v1/shares/{share_id}/recipients", headers=auth(me)).status_code == 404

    # The sender still follows it, with the counts and without a recipient's view.
    followed = client.get(f"/api/v1/shares/{share_id}", headers=auth(sender)).get_json()
    assert followed["recipient_count"] == 2 and followed["received"] is None


def test_the_feed_reads_one_page_through_the_index_whatever_the_number_of_shares(
    client: FlaskClient, session: Session, org: Any, auth: Any, count_queries: QueryCounter
) -> None:
    sender, me = factories.UserFactory(org=org), factories.UserFactory(org=org)
    noise = [factories.UserFactory(org=org) for _ in range(3)]
    video = _video(session, sender)
    # Thousands of shares to me among many more to others, as the fan-out leaves them: every
    # fifth share of the organisation reached me.
    session.execute(
        text(
            """
            WITH made AS (
                INSERT INTO shares (id, org_id, video_id, sender_id, message, audience,
                                    recipient_count, created_at, released_at)
                SELECT gen_random_uuid(), :org, :video, :sender, '', '{}', 1, now(), now()
                  FROM generate_series(1, 15000)
                RETURNING id
            ), numbered AS (
                SELECT id, row_number() OVER () AS n FROM made
            )
            INSERT INTO share_recipients (org_id, share_id, user_id, video_id, state, queued_at)
            SELECT :org, numbered.id,
                   CASE WHEN numbered.n % 5 = 0 THEN CAST(:me AS uuid)
                        ELSE (CAST(:noise AS uuid[]))[1 + numbered.n % 3] END,
                   :video, 'sent', now()
              FROM numbered
            """
        ),
        {
            "org": org.id,
            "video": video.id,
            "sender": sender.id,
            "me": me.id,
            "noise": [u.id for u in noise],
        },
    )
    session.execute(text("ANALYZE shares; ANALYZE share_recipients; ANALYZE videos"))
    principal = Principal(me)
    stmt, position = feed.feed(principal)
    page = stmt.order_by(position.desc()).limit(51)
    connection = session.connection()
    compiled = page.compile(connection)
    plan = "\n".join(
        row[0] for row in connection.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
    )
    # My recipient rows are walked newest first through their index, and the walk stops after
    # a page: no scan or sort of all of them.
    assert "Index Scan Backward using ix_share_recipients_user_id_share_id" in plan, plan
    assert "Seq Scan on share_recipients" not in plan, plan
    assert "Sort" not in plan, plan

    headers = auth(me)
    count_queries.statements.clear()
    first = _feed(client, headers, limit=50)
    assert len(first["items"]) == 50 and first["next_cursor"]
    statements = count_queries.count
    count_queries.statements.clear()
    small = _feed(client, headers, limit=5)
    assert len(small["items"]) == 5
    assert count_queries.count == statements  # no query per entry


# -- GET /api/v1/videos filters ------------------------------------------------------------------


def _ids(client: FlaskClient, headers: dict[str, str], query: Any) -> list[str]:
    response = client.get("/api/v1/videos", query_string=query, headers=headers)
    assert response.status_code == 200, response.get_json()
    return [v["id"] for v in response.get_json()["items"]]


def test_the_videos_list_filters_by_scope_status_and_deal_attributes(
    client: FlaskClient, session: Session, org: Any, auth: Any
) -> None:
    me, peer = factories.UserFactory(org=org), factories.UserFactory(org=org)
    mine_ready = _video(
        session, me, status=VideoStatus.READY, deal={"stage": "negotiation", "industry": "retail"}
    )
    mine_draft = _video(session, me, status=VideoStatus.AWAITING_UPLOAD, deal={"stage": "demo"})
    theirs = _video(session, peer, deal={"stage": "negotiation", "industry": "banking"})
    unseen = _video(session, peer, deal={"stage": "negotiation"})
    archived = _video(session, me, deal={"stage": "negotiation"})
    archived.archived_at = utcnow()
    session.flush()
    share_video(client, auth(peer), theirs, me)
    headers = auth(me)

    everything = {str(v.id) for v in (mine_ready, mine_draft, theirs)}
    assert set(_ids(client, headers, {})) == everything
    assert set(_ids(client, headers, {"scope": "all_visible"})) == everything
    assert set(_ids(client, headers, {"scope": "mine"})) == {str(mine_ready.id), str(mine_draft.id)}
    assert _ids(client, headers, {"scope": "shared_with_me"}) == [str(theirs.id)]
    assert set(_ids(client, headers, {"status": ["ready", "awaiting_upload"]})) == {
        str(mine_ready.id),
        str(mine_draft.id),
    }
    negotiation = {str(mine_ready.id), str(theirs.id)}
    assert set(_ids(client, headers, {"deal": "stage:negotiation"})) == negotiation
    # Names in any case, runs of spaces as one; every filter must hold.
    assert set(_ids(client, headers, {"deal": "Stage:negotiation"})) == negotiation
    query = {"deal": ["stage:negotiation", "industry:retail"]}
    assert _ids(client, headers, query) == [str(mine_ready.id)]
    only = {"deal": "stage:negotiation", "scope": "shared_with_me", "status": "playable"}
    assert _ids(client, headers, only) == [str(theirs.id)]
    assert str(unseen.id) not in _ids(client, auth(me), {"deal": "stage:negotiation"})

    bad = client.get("/api/v1/videos", query_string={"deal": "stage"}, headers=headers)
    assert bad.status_code == 422 and "deal" in bad.get_json()["errors"]
    too_many = {"deal": [f"k{i}:v" for i in range(6)]}
    assert client.get("/api/v1/videos", query_string=too_many, headers=headers).status_code == 422
    wrong = client.get("/api/v1/videos", query_string={"status": "gone"}, headers=headers)
    assert wrong.status_code == 422
    wrong = client.get("/api/v1/videos", query_string={"scope": "everyone"}, headers=headers)
    assert wrong.status_code == 422


def test_a_deal_filter_can_be_served_by_the_containment_index(session: Session) -> None:
    session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(
        session.execute(
            text(
                "EXPLAIN SELECT id FROM videos "
                """WHERE deal_attributes @> '{"stage": "negotiation"}'"""
            )
        ).scalars()
    )
    assert "ix_videos_deal_attributes" in plan, plan


def test_the_filters_are_documented_for_generated_clients(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    operation = spec["paths"]["/api/v1/videos"]["get"]
    params = {p["name"]: p for p in operation["parameters"] if "name" in p}
    assert set(params) >= {"scope", "status", "deal", "updated_since", "cursor", "limit"}
    assert params["scope"]["schema"]["enum"] == ["mine", "shared_with_me", "all_visible"]
    assert params["status"]["schema"]["type"] == "array"
    assert params["deal"]["schema"]["maxItems"] == 5
    for name in ("scope", "status", "deal", "updated_since"):
        assert params[name].get("description"), name
    feed_page = spec["paths"]["/api/v1/feed"]["get"]["responses"]["200"]["content"]
    ref = feed_page["application/json"]["schema"]["$ref"]
    assert ref.endswith("/FeedEntrySyncPage")
