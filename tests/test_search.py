"""Search as the apps use it: words, phrases, not, or, prefixes, accents; only what the caller
may see; why each video matched and its moments; filters and facets."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from fieldcast.context import AppContext
from fieldcast.db import Database, plan_once, utcnow
from fieldcast.models.search import SavedSearch, SavedSearchHit, SearchDocument
from fieldcast.models.videos import Video, VideoKind, VideoStatus
from fieldcast.search import engine
from fieldcast.search.query import parse
from tests import factories
from tests.api_support import share_video
from tests.conftest import bearer
from tests.worker_support import drain_outbox as drain

pytestmark = pytest.mark.usefixtures("sink")


def _video(
    client: FlaskClient, headers: dict[str, str], title: str, description: str = "", **body: Any
) -> Any:
    response = client.post(
        "/api/v1/videos", json={"title": title, "description": description, **body}, headers=headers
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _playable(session: Session, *ids: str, duration_ms: int = 60_000) -> None:
    for video_id in ids:
        video = session.get(Video, video_id)
        assert video is not None
        video.status = VideoStatus.PLAYABLE
        video.duration_ms = duration_ms
        video.playable_at = utcnow()
    session.flush()


def _search(client: FlaskClient, headers: dict[str, str], **params: Any) -> Any:
    response = client.get("/api/v1/search", query_string=params, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _titles(page: Any) -> set[str]:
    return {item["video"]["title"] for item in page["items"]}


@pytest.fixture
def people(session: Session, org: Any) -> dict[str, Any]:
    return {
        "ana": factories.UserFactory(org=org, handle="ana", display_name="Ana Lima"),
        "sam": factories.UserFactory(org=org, handle="sam", display_name="Sam Oduya"),
        "kim": factories.UserFactory(org=org, handle="kim", display_name="Kim Berg"),
        "admin": factories.UserFactory(org=org, admin=True, handle="root"),
    }


@pytest.fixture
def library(
    client: FlaskClient, session: Session, context: AppContext, people: dict[str, Any]
) -> dict[str, Any]:
    """Ana's videos, all shared with Sam; Kim sees none of them."""
    ana = bearer(client, people["ana"])
    made = {
        "pricing": _video(
            client,
            ana,
            "Handling the pricing objection",
            "Discount only for multi-year deals",
            deal_attributes={"industry": "Retail", "competitors": "Acme"},
        ),
        "acme": _video(
            client,
            ana,
            "Acme turned off their mobile app",
            "A competitor update",
            deal_attributes={"industry": "Banking", "competitors": "Acme"},
        ),
        "globex": _video(
            client,
            ana,
            "Winning against Globex",
            "Negotiation at the café with procurement",
            deal_attributes={"industry": "Retail", "competitors": "Globex"},
        ),
        "demo": _video(client, ana, "Demo script for discovery calls"),
    }
    _playable(session, *(v["id"] for v in made.values()))
    for video in made.values():
        share_video(client, ana, _Ref(video["id"]), people["sam"])
    drain(context)
    return made


class _Ref:
    def __init__(self, video_id: str) -> None:
        self.id = video_id


def test_query_language_reads_words_phrases_not_or_and_prefixes() -> None:
    query = parse('pricing "mobile app" -globex acme or initech negot')
    assert query.tsquery() == (
        "'pricing' & 'mobile app' & !'globex' & ( 'acme' | 'initech' ) & 'negot':*"
    )
    assert parse("negot ").tsquery() == "'negot'"
    assert parse("it's a (b) & c | !d").tsquery() == "'it s' & 'a' & 'b' & ( 'c' | 'd':* )"
    assert parse("   ").empty
    assert parse("or -").empty


def test_words_phrases_not_or_prefix_and_accents(
    client: FlaskClient, people: dict[str, Any], library: dict[str, Any]
) -> None:
    sam = bearer(client, people["sam"])
    assert _titles(_search(client, sam, q="pricing objection")) == {
        "Handling the pricing objection"
    }
    # Stemmed: "objections" finds "objection".
    assert _titles(_search(client, sam, q="objections ")) == {"Handling the pricing objection"}
    assert _titles(_search(client, sam, q='"mobile app"')) == {"Acme turned off their mobile app"}
    assert _titles(_search(client, sam, q='"app mobile"')) == set()
    assert _titles(_search(client, sam, q="acme -mobile")) == {"Handling the pricing objection"}
    assert _titles(_search(client, sam, q="globex or discovery")) == {
        "Winning against Globex",
        "Demo script for discovery calls",
    }
    # As you type: the last word is a prefix, unless it is followed by a space.
    assert _titles(_search(client, sam, q="discov")) == {"Demo script for discovery calls"}
    # Not a prefix: "discov" is then only close to a word of the title (a typo).
    for params in ({"q": "discov ", "prefix": "true"}, {"q": "discov", "prefix": "false"}):
        (hit,) = _search(client, sam, **params)["items"]
        assert [r["similar"] for r in hit["reasons"]] == [True]
    # Accents and case, either way.
    assert _titles(_search(client, sam, q="CAFE")) == {"Winning against Globex"}
    assert _titles(_search(client, sam, q="prôcurement")) == {"Winning against Globex"}


def test_only_what_the_caller_may_see(
    client: FlaskClient,
    session: Session,
    org: Any,
    other_org: Any,
    people: dict[str, Any],
    library: dict[str, Any],
    context: AppContext,
) -> None:
    outsider = factories.UserFactory(org=other_org, admin=True)
    theirs = bearer(client, outsider)
    _playable(session, _video(client, theirs, "Acme pricing in the other org")["id"])
    drain(context)
    assert _titles(_search(client, bearer(client, people["kim"]), q="acme")) == set()
    assert _titles(_search(client, bearer(client, people["sam"]), q="acme")) == {
        "Handling the pricing objection",
        "Acme turned off their mobile app",
    }
    assert len(_search(client, bearer(client, people["admin"]), q="acme")["items"]) == 2
    assert _titles(_search(client, theirs, q="acme")) == {"Acme pricing in the other org"}
    # Drafts and deleted videos are not found.
    ana = bearer(client, people["ana"])
    _video(client, ana, "Acme draft")
    drain(context)
    assert client.delete(f"/api/v1/videos/{library['acme']['id']}", headers=ana).status_code == 204
    assert _titles(_search(client, ana, q="acme")) == {"Handling the pricing objection"}


def test_reasons_and_comment_moments_with_deep_links(
    client: FlaskClient, people: dict[str, Any], library: dict[str, Any], context: AppContext
) -> None:
    sam = bearer(client, people["sam"])
    video_id = library["demo"]["id"]
    posted = client.post(
        f"/api/v1/videos/{video_id}/comments",
        json={"body": "At this point she handles the procurement freeze well", "at_ms": 42_000},
        headers=sam,
    )
    assert posted.status_code == 201, posted.get_json()
    comment_id = posted.get_json()["id"]
    # Found once the worker built the document (never in the request).
    assert _titles(_search(client, sam, q="freeze")) == set()
    drain(context)
    page = _search(client, sam, q="procurement freeze")
    assert _titles(page) == {"Demo script for discovery calls"}
    hit = page["items"][0]
    assert {"kind": "comment", "detail": None, "at_ms": 42_000, "similar": False} in hit["reasons"]
    (moment,) = hit["moments"]
    assert moment["comment_id"] == comment_id and moment["at_ms"] == 42_000
    snippet = moment["snippet"]
    assert [snippet["text"][a:b] for a, b in snippet["marks"]] == ["procurement", "freeze"]
    assert f"comment={comment_id}" in moment["link"] and "t=42000" in moment["link"]
    # Several parts: the title and the description, the author, an attribute.
    hit = _search(client, sam, q="globex")["items"][0]
    assert {r["kind"] for r in hit["reasons"]} >= {"title", "attribute"}
    assert {"kind": "attribute", "detail": "competitors", "at_ms": None, "similar": False} in hit[
        "reasons"
    ]
    hit = _search(client, sam, q="lima")["items"][0]
    assert {r["kind"] for r in hit["reasons"]} == {"author"}
    # A deleted comment leaves the index.
    assert client.delete(f"/api/v1/comments/{comment_id}", headers=sam).status_code in (200, 204)
    drain(context)
    assert _titles(_search(client, sam, q="freeze")) == set()


def test_filters_and_or_not_across_attributes(
    client: FlaskClient, people: dict[str, Any], library: dict[str, Any]
) -> None:
    sam = bearer(client, people["sam"])
    assert _titles(_search(client, sam, attr="industry:Retail")) == {
        "Handling the pricing objection",
        "Winning against Globex",
    }
    assert _titles(_search(client, sam, attr=["industry:Retail", "competitors:Acme"])) == {
        "Handling the pricing objection"
    }
    assert _titles(
        _search(client, sam, attr=["industry:Banking", "competitors:Globex"], attr_match="any")
    ) == {"Acme turned off their mobile app", "Winning against Globex"}
    assert _titles(_search(client, sam, attr="-competitors:Acme|Globex")) == {
        "Demo script for discovery calls"
    }
    assert _titles(_search(client, sam, q="deals", attr="industry:Retail")) == {
        "Handling the pricing objection"
    }
    assert _titles(_search(client, sam, author=str(people["kim"].id))) == set()
    assert len(_search(client, sam, author=str(people["ana"].id))["items"]) == 4
    assert _titles(_search(client, sam, max_duration_s=30)) == set()
    assert _titles(_search(client, sam, question="any")) == set()


def test_questions_filter_by_state(
    client: FlaskClient, session: Session, people: dict[str, Any], context: AppContext
) -> None:
    ana = bearer(client, people["ana"])
    asked = _video(client, ana, "How do you answer Acme's discount?", kind="question")
    _playable(session, asked["id"])
    drain(context)
    assert _titles(_search(client, ana, question="open")) == {asked["title"]}
    assert _titles(_search(client, ana, question="answered")) == set()
    question = session.get(Video, asked["id"])
    assert question is not None and question.kind is VideoKind.QUESTION


def test_facets_count_only_what_the_caller_sees_and_say_when_capped(
    client: FlaskClient,
    people: dict[str, Any],
    library: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sam = bearer(client, people["sam"])
    response = client.get("/api/v1/search/facets", query_string={"q": ""}, headers=sam)
    facets = response.get_json()
    assert response.status_code == 200, facets
    assert facets["total"] == 4 and facets["total_text"] == "4" and not facets["capped"]
    # In the catalogue's spelling.
    assert {v["value"]: v["count"] for v in facets["attributes"]["industry"]} == {
        "retail": 2,
        "banking": 1,
    }
    assert facets["authors"] == [{"value": str(people["ana"].id), "count": 4, "label": "Ana Lima"}]
    assert facets["duration"] == [{"value": "1_to_3_min", "count": 4, "label": None}]
    kim = client.get("/api/v1/search/facets", headers=bearer(client, people["kim"])).get_json()
    assert kim["total"] == 0 and kim["attributes"] == {}
    monkeypatch.setattr(engine, "FACET_CAP", 3)
    capped = client.get("/api/v1/search/facets", headers=sam).get_json()
    assert capped["total"] == 3 and capped["capped"] and capped["total_text"] == "3+"


def _facets_by_hand(session: Session, principal: Any, cap: int) -> dict[str, Any]:
    """What facets should say, counted here from the first `cap` matches in rank order."""
    rows = session.execute(
        engine.matching(principal, None, engine.Filters())
        .with_only_columns(
            SearchDocument.attrs,
            Video.owner_id,
            Video.kind,
            Video.answered_at,
            Video.duration_ms,
            Video.created_at,
        )
        .limit(cap)
    ).all()
    now = session.scalar(select(func.now()))
    assert now is not None
    # Values in the order first seen, that is of their best-ranked match.
    attributes: dict[str, dict[str, int]] = {}
    counts: dict[str, dict[str, int]] = {"author": {}, "question": {}, "duration": {}}
    ages = {"last_7_days": 0, "last_30_days": 0, "last_90_days": 0}

    def add(facet: dict[str, int], value: str) -> None:
        facet[value] = facet.get(value, 0) + 1

    for row in rows:
        for name, value in (row.attrs if isinstance(row.attrs, dict) else {}).items():
            facet = attributes.setdefault(name, {})
            for v in value if isinstance(value, list) else [value]:
                add(facet, str(v))
        add(counts["author"], str(row.owner_id))
        if row.kind is VideoKind.QUESTION:
            add(counts["question"], "open" if row.answered_at is None else "answered")
        for name, low, high in engine._DURATIONS:
            if row.duration_ms is not None and low <= row.duration_ms < (high or 10**12):
                add(counts["duration"], name)
        for name, days in (("last_7_days", 7), ("last_30_days", 30), ("last_90_days", 90)):
            ages[name] += (now - row.created_at) < timedelta(days=days)

    def ordered(facet: dict[str, int]) -> list[tuple[str, int]]:
        return sorted(facet.items(), key=lambda item: -item[1])

    return {
        "total": len(rows),
        "attributes": {name: ordered(facet) for name, facet in attributes.items()},
        "author": ordered(counts["author"]),
        "question": ordered(counts["question"]),
        "duration": counts["duration"],
        "created": {k: n for k, n in ages.items() if n},
    }


def _facets_as_counted(found: engine.Facets) -> dict[str, Any]:
    def values(facet: list[engine.FacetValue]) -> list[tuple[str, int]]:
        return [(v.value, v.count) for v in facet]

    return {
        "total": found.total,
        "attributes": {name: values(facet) for name, facet in found.attributes.items()},
        "author": values(found.authors),
        "question": values(found.question),
        "duration": dict(values(found.duration)),
        "created": dict(values(found.created)),
    }


def test_facets_count_every_kind_of_value_of_the_first_matches_in_rank_order(
    client: FlaskClient,
    session: Session,
    context: AppContext,
    people: dict[str, Any],
    library: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Lists of values (an empty one too), questions open and answered, durations and ages,
    several authors, values counted as often as each other listed in rank order; with the cap
    passed, only the best-ranked matches are counted."""
    ana, sam = bearer(client, people["ana"]), bearer(client, people["sam"])
    made = [
        _video(
            client,
            who,
            f"Field note {n}",
            deal_attributes={"industry": "Retail", "competitors": ["Acme", "Globex"][: n % 3]},
            kind="question" if n % 2 else "video",
        )
        for n, who in enumerate([ana, sam, ana, sam, ana, ana])
    ]
    for n, video in enumerate(made):
        _playable(session, video["id"], duration_ms=[20_000, 90_000, 240_000, 900_000][n % 4])
        row = session.get(Video, video["id"])
        assert row is not None
        row.created_at = utcnow() - timedelta(days=[2, 12, 45, 200, 400, 5][n])
        if n == 1:
            row.answered_at = utcnow()
    session.flush()
    drain(context)
    # Distinct ranks, so that "the first in rank order" is one set of videos.
    for n, doc in enumerate(session.scalars(select(SearchDocument))):
        doc.rank_key = float(n)
    session.flush()
    admin = engine.Principal(user=people["admin"])
    # Rows left by an older version: attributes that are no object, a list with nothing in it.
    odd, empty = (session.get(SearchDocument, made[n]["id"]) for n in (0, 2))
    assert odd is not None and empty is not None
    odd.attrs = ["Retail"]  # type: ignore[assignment]
    empty.attrs = {"industry": "Retail", "tags": []}
    session.flush()
    every = engine.FACET_CAP
    for cap in (every, 7, 3):
        monkeypatch.setattr(engine, "FACET_CAP", cap)
        found = engine.facets(session, admin, "", engine.Filters())
        assert _facets_as_counted(found) == _facets_by_hand(session, admin, cap), cap
        assert found.capped == (cap < len(made) + len(library))
        if cap == every:
            assert found.attributes["tags"] == []
    names = {v.value: v.label for v in found.authors}
    assert set(names.values()) <= {"Ana Lima", "Sam Oduya"}


def test_pages_and_bad_input(
    client: FlaskClient, people: dict[str, Any], library: dict[str, Any]
) -> None:
    sam = bearer(client, people["sam"])
    first = _search(client, sam, limit=3)
    assert len(first["items"]) == 3 and first["next_cursor"]
    rest = _search(client, sam, limit=3, cursor=first["next_cursor"])
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert _titles(first) | _titles(rest) == {v["title"] for v in library.values()}
    for params in (
        {"cursor": "not-a-cursor"},
        {"attr": "industry"},
        {"attr": "industry:"},
        {"attr_match": "some"},
        {"q": "x" * 201},
        {"question": "closed"},
    ):
        response = client.get("/api/v1/search", query_string=params, headers=sam)
        assert response.status_code == 422, params
        assert response.mimetype == "application/problem+json"


def test_documents_are_built_once_per_burst(
    client: FlaskClient,
    session: Session,
    people: dict[str, Any],
    library: dict[str, Any],
    context: AppContext,
) -> None:
    from fieldcast.models.outbox import OutboxJob

    sam = bearer(client, people["sam"])
    video_id = library["pricing"]["id"]
    before = session.scalar(
        select(OutboxJob.id)
        .where(OutboxJob.task == "search.index")
        .order_by(OutboxJob.created_at.desc())
    )
    for n in range(3):
        client.post(f"/api/v1/videos/{video_id}/comments", json={"body": f"note {n}"}, headers=sam)
    jobs = session.scalars(
        select(OutboxJob).where(
            OutboxJob.task == "search.index", OutboxJob.payload["video_id"].astext == video_id
        )
    ).all()
    assert before is not None
    assert len([j for j in jobs if j.status == "pending"]) == 1
    drain(context)
    doc = session.get(SearchDocument, video_id)
    assert doc is not None and doc.indexed_at == doc.requested_at
    assert doc.engagement == 3 + 2  # three comments, one share


def test_typo_tolerance_for_titles_and_names(
    client: FlaskClient, people: dict[str, Any], library: dict[str, Any]
) -> None:
    sam = bearer(client, people["sam"])
    page = _search(client, sam, q="globx")
    assert _titles(page) == {"Winning against Globex"}
    assert page["items"][0]["reasons"] == [
        {"kind": "title", "detail": None, "at_ms": None, "similar": True}
    ]
    # Ana Lima's videos, her name misspelt.
    page = _search(client, sam, q="limaa", prefix="false")
    assert len(page["items"]) == 4
    assert {r["kind"] for item in page["items"] for r in item["reasons"]} == {"author"}
    # Still only what the caller may see.
    assert _titles(_search(client, bearer(client, people["kim"]), q="globx")) == set()


def test_the_sweep_builds_what_was_left_stale_and_engagement_is_counted_again(
    session: Session, context: AppContext, library: dict[str, Any]
) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from fieldcast.search import indexing

    video_id = library["globex"]["id"]
    # As the migration leaves existing videos: a document nobody built.
    session.execute(
        update(SearchDocument)
        .where(SearchDocument.video_id == video_id)
        .values(tsv=None, indexed_at=None, engagement=0)
    )
    session.flush()
    assert indexing.sweep(context.db) == 1
    doc = session.get(SearchDocument, video_id)
    assert doc is not None
    session.refresh(doc)
    assert doc.tsv is not None and doc.indexed_at == doc.requested_at
    assert doc.engagement == 2  # its share
    assert indexing.refresh_engagement(context.db, older_than=timedelta(0)) == 4
    assert indexing.sweep(context.db) == 4
    assert indexing.sweep(context.db) == 0


# -- saved searches --------------------------------------------------------------------------------


def test_saved_searches_are_each_persons_own(
    client: FlaskClient, people: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fieldcast.search import saved

    sam, kim = bearer(client, people["sam"]), bearer(client, people["kim"])
    made = client.post(
        "/api/v1/saved-searches",
        json={"q": "pricing objection", "filters": {"attr": ["industry:Retail"]}},
        headers=sam,
    )
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert body["name"] == "pricing objection" and body["notify"] is True
    assert body["filters"] == {"attr": ["industry:Retail"], "attr_match": "all"}
    path = f"/api/v1/saved-searches/{body['id']}"
    assert [
        s["id"] for s in client.get("/api/v1/saved-searches", headers=sam).get_json()["items"]
    ] == [body["id"]]
    assert client.get("/api/v1/saved-searches", headers=kim).get_json()["items"] == []
    for method in ("get", "patch", "delete"):
        body = {"notify": False} if method == "patch" else None
        response = getattr(client, method)(path, headers=kim, json=body)
        assert response.status_code == 404, method
    # Named by its query when unnamed, cut to the name's length.
    long = client.post("/api/v1/saved-searches", json={"q": "acme " * 40}, headers=sam)
    assert long.status_code == 201 and len(long.get_json()["name"]) == 120
    assert (
        client.delete(f"/api/v1/saved-searches/{long.get_json()['id']}", headers=sam).status_code
        == 204
    )
    changed = client.patch(path, json={"name": "Objections", "notify": False}, headers=sam)
    assert changed.get_json()["name"] == "Objections" and changed.get_json()["notify"] is False
    bad = client.post("/api/v1/saved-searches", json={"filters": {"attr": ["nope"]}}, headers=sam)
    assert bad.status_code == 422
    # Following everything is the feed: a saved search names a query or a filter, and keeps one.
    for empty in (None, {}, {"q": "  "}, {"filters": {"attr_match": "any"}}):
        refused = client.post("/api/v1/saved-searches", json=empty, headers=sam)
        assert refused.status_code == 422, empty
        assert refused.get_json()["code"] == "saved_search_empty", empty
    emptied = client.patch(path, json={"q": "", "filters": {}}, headers=sam)
    assert emptied.get_json()["code"] == "saved_search_empty"
    by_filter = client.patch(path, json={"q": "", "filters": {"question": "open"}}, headers=sam)
    assert by_filter.status_code == 200 and by_filter.get_json()["q"] == ""
    monkeypatch.setattr(saved, "MAX_PER_PERSON", 1)
    full = client.post("/api/v1/saved-searches", json={"q": "acme"}, headers=sam)
    assert full.status_code == 422 and full.get_json()["code"] == "too_many_saved_searches"
    assert client.delete(path, headers=sam).status_code == 204
    assert client.get(path, headers=sam).status_code == 404


def test_what_newly_matches_a_saved_search_is_told_once_in_one_item(
    client: FlaskClient,
    session: Session,
    people: dict[str, Any],
    library: dict[str, Any],
    context: AppContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from fieldcast.models.inbox import Notification
    from fieldcast.search import saved

    sam, ana = bearer(client, people["sam"]), bearer(client, people["ana"])
    made = client.post(
        "/api/v1/saved-searches",
        json={"q": "objection", "filters": {"attr": ["industry:Retail"]}},
        headers=sam,
    ).get_json()
    # Nothing new yet: the library was there before.
    assert saved.run_round(context.db) == 0
    fresh = _video(
        client, ana, "Another objection, handled", deal_attributes={"industry": "Retail"}
    )
    hidden_from_sam = _video(client, ana, "Objection notes", deal_attributes={"industry": "Retail"})
    _playable(session, fresh["id"], hidden_from_sam["id"])
    share_video(client, ana, _Ref(fresh["id"]), people["sam"])
    posted = client.post(
        f"/api/v1/videos/{library['pricing']['id']}/comments",
        json={"body": "Her objection handling at 0:40 is the model", "at_ms": 40_000},
        headers=ana,
    )
    assert posted.status_code == 201
    drain(context)
    assert saved.run_round(context.db) == 1
    (item,) = session.scalars(
        select(Notification).where(
            Notification.user_id == people["sam"].id, Notification.type == "search.matches"
        )
    ).all()
    assert item.args == {"search": "objection", "count": "2"}
    assert set(item.data["video_ids"].split(",")) == {fresh["id"], library["pricing"]["id"]}
    assert item.data["comment_ids"] == posted.get_json()["id"]
    assert item.data["saved_search_id"] == made["id"]
    # Told once.
    assert saved.run_round(context.db) == 0

    def hits() -> int:
        return session.scalar(select(func.count()).select_from(SavedSearchHit)) or 0

    # What was told is forgotten after HIT_RETENTION, when nothing that old is looked at either.
    assert hits() == 2
    later = datetime.now(UTC) + saved.HIT_RETENTION + timedelta(days=1)
    monkeypatch.setattr(saved, "utcnow", lambda: later)
    assert saved.run_round(context.db) == 0
    session.expire_all()
    assert hits() == 0
    # A search whose rounds stopped looks back no further than what it remembers: the matches
    # above, told and forgotten, are not told again.
    stored = session.get(SavedSearch, uuid.UUID(made["id"]))
    assert stored is not None
    stored.checked_at = datetime.now(UTC) - timedelta(hours=1)
    session.flush()
    assert saved.run_round(context.db) == 0


def test_a_person_renamed_is_found_by_the_new_name_once_the_sweep_ran(
    client: FlaskClient,
    session: Session,
    people: dict[str, Any],
    library: dict[str, Any],
    context: AppContext,
) -> None:
    from fieldcast.search import indexing

    sam, ana = bearer(client, people["sam"]), bearer(client, people["ana"])
    assert len(_search(client, sam, q="lima", prefix="false")["items"]) == 4
    assert (
        client.patch("/api/v1/me", json={"display_name": "Ana Moreau"}, headers=ana).status_code
        == 200
    )
    drain(context)
    while indexing.sweep(context.db):
        pass
    assert len(_search(client, sam, q="moreau", prefix="false")["items"]) == 4
    assert _search(client, sam, q="lima", prefix="false")["items"] == []
    # Renamed by an admin, the same.
    admin = bearer(client, people["admin"])
    renamed = client.patch(
        f"/api/v1/users/{people['ana'].id}", json={"display_name": "Ana Quist"}, headers=admin
    )
    assert renamed.status_code == 200, renamed.get_json()
    drain(context)
    while indexing.sweep(context.db):
        pass
    assert len(_search(client, sam, q="quist", prefix="false")["items"]) == 4
    assert _search(client, sam, q="moreau", prefix="false")["items"] == []


def test_pushes_turned_back_on_start_from_then(
    client: FlaskClient, session: Session, people: dict[str, Any], context: AppContext
) -> None:

    sam = bearer(client, people["sam"])
    made = client.post("/api/v1/saved-searches", json={"q": "objection"}, headers=sam).get_json()
    path = f"/api/v1/saved-searches/{made['id']}"
    assert client.patch(path, json={"notify": False}, headers=sam).status_code == 200
    stored = session.get(SavedSearch, uuid.UUID(made["id"]))
    assert stored is not None
    stored.checked_at = datetime.now(UTC) - timedelta(days=3)
    session.flush()
    assert client.patch(path, json={"notify": True}, headers=sam).status_code == 200
    session.refresh(stored)
    assert datetime.now(UTC) - stored.checked_at < timedelta(minutes=1)
    # A search left empty by an older version can still be muted and renamed.
    stored.query = ""
    session.flush()
    muted = client.patch(path, json={"notify": False, "name": "Old"}, headers=sam)
    assert muted.status_code == 200, muted.get_json()


def test_transcript_moments_and_attachment_reasons(
    client: FlaskClient, people: dict[str, Any], library: dict[str, Any], context: AppContext
) -> None:
    ana, sam = bearer(client, people["ana"]), bearer(client, people["sam"])
    video_id = library["demo"]["id"]
    # The author writes the transcript (as the engine would store it: VideoTextChanged).
    put = client.put(
        f"/api/v1/videos/{video_id}/transcript",
        json={
            "segments": [
                {"start_ms": 0, "end_ms": 4_000, "text": "Welcome to the discovery call"},
                {"start_ms": 4_000, "end_ms": 9_000, "text": "The budget holder is the CFO"},
            ]
        },
        headers=ana,
    )
    assert put.status_code == 200, put.get_json()
    note = client.post(
        f"/api/v1/videos/{video_id}/attachments",
        json={"kind": "note", "title": "Call plan", "body": "Ask about the procurement freeze"},
        headers=ana,
    )
    assert note.status_code == 201, note.get_json()
    drain(context)
    hit = _search(client, sam, q="budget holder")["items"][0]
    assert hit["video"]["id"] == video_id
    (moment,) = hit["moments"]
    assert (moment["kind"], moment["at_ms"], moment["end_ms"]) == ("transcript", 4_000, 9_000)
    assert {"kind": "transcript", "detail": None, "at_ms": 4_000, "similar": False} in hit[
        "reasons"
    ]
    assert "t=4000" in moment["link"]
    hit = _search(client, sam, q="freeze")["items"][0]
    assert hit["video"]["id"] == video_id
    assert {"kind": "attachment", "detail": "Call plan", "at_ms": None, "similar": False} in hit[
        "reasons"
    ]
    # Every attachment's title counts, a link's too.
    link = client.post(
        f"/api/v1/videos/{video_id}/attachments",
        json={"kind": "link", "url": "https://example.com/bc", "title": "Initech battlecard"},
        headers=ana,
    )
    assert link.status_code == 201, link.get_json()
    drain(context)
    hit = _search(client, sam, q="battlecard")["items"][0]
    assert {
        "kind": "attachment",
        "detail": "Initech battlecard",
        "at_ms": None,
        "similar": False,
    } in hit["reasons"]
    # A comment on the whole video is a moment with no time.
    client.post(f"/api/v1/videos/{video_id}/comments", json={"body": "Initech again"}, headers=sam)
    drain(context)
    moments = _search(client, sam, q="initech")["items"][0]["moments"]
    assert [m["at_ms"] for m in moments if m["kind"] == "comment"] == [None]


def test_deal_attributes_then_and_now_and_number_bands(
    client: FlaskClient, session: Session, people: dict[str, Any], context: AppContext
) -> None:
    admin, ana, sam = (bearer(client, people[k]) for k in ("admin", "ana", "sam"))
    deal_path = "/api/v1/deals/by-source/salesforce/006-NW"
    body = {
        "name": "Northwind renewal",
        "account": "Northwind",
        "owner_id": str(people["ana"].id),
        "stage": "discovery",
        "amount": 120_000,
        "currency": "EUR",
        "attributes": {"industry": "retail"},
    }
    made = client.put(deal_path, json=body, headers=admin)
    assert made.status_code in (200, 201), made.get_json()
    deal_id = made.get_json()["id"]
    video = _video(client, ana, "Northwind discovery debrief", deal_id=deal_id)
    _playable(session, video["id"])
    share_video(client, ana, _Ref(video["id"]), people["sam"])
    drain(context)
    assert (
        client.put(deal_path, json={**body, "stage": "negotiation"}, headers=admin).status_code
        == 200
    )
    title = {"Northwind discovery debrief"}
    assert _titles(_search(client, sam, attr="stage:Discovery")) == title
    assert _titles(_search(client, sam, attr="stage:negotiation")) == set()
    # Now: the deal's current stage, for whoever may read the deal (Ana owns it) ...
    assert _titles(_search(client, ana, attr="stage:negotiation", attr_time="now")) == title
    assert _titles(_search(client, ana, attr="stage:discovery", attr_time="now")) == set()
    # ... while Sam, who sees the video but not the deal, learns nothing of it: the snapshot.
    assert _titles(_search(client, sam, attr="stage:negotiation", attr_time="now")) == set()
    assert _titles(_search(client, sam, attr="stage:discovery", attr_time="now")) == title
    assert _titles(_search(client, sam, attr="deal_size:50k-250k")) == title
    assert _titles(_search(client, sam, attr="deal_size:<10k")) == set()
    assert _titles(_search(client, sam, attr="-deal_size:<10k")) == title
    assert _titles(_search(client, sam, deal=deal_id)) == title
    facets = client.get("/api/v1/search/facets", headers=sam).get_json()
    assert {"value": "50k-250k", "count": 1, "label": None} in facets["attributes"]["deal_size"]
    # Facets count what the filters read: the stage now for Ana, the snapshot for Sam.
    for who, stage in ((ana, "negotiation"), (sam, "discovery")):
        now = client.get(
            "/api/v1/search/facets", query_string={"attr_time": "now"}, headers=who
        ).get_json()
        assert now["attributes"]["stage"] == [{"value": stage, "count": 1, "label": None}]


# -- for this deal --------------------------------------------------------------------------------


def test_recommendations_for_a_deal_weigh_shared_attributes_and_won_deals(
    client: FlaskClient, session: Session, people: dict[str, Any], context: AppContext
) -> None:
    admin, ana, sam = (bearer(client, people[k]) for k in ("admin", "ana", "sam"))

    def deal(key: str, owner: str, **fields: Any) -> str:
        response = client.put(
            f"/api/v1/deals/by-source/salesforce/{key}",
            json={"name": key, "owner_id": str(people[owner].id), **fields},
            headers=admin,
        )
        assert response.status_code in (200, 201), response.get_json()
        return str(response.get_json()["id"])

    northwind = deal(
        "northwind",
        "sam",
        stage="negotiation",
        amount=120_000,
        currency="USD",
        attributes={"competitors": ["Acme"], "industry": "retail"},
    )
    contoso = deal(
        "contoso",
        "ana",
        stage="closed",
        outcome="won",
        attributes={"competitors": ["Acme"], "industry": "retail"},
    )
    made = {
        "won": _video(client, ana, "How we beat Acme at Contoso", deal_id=contoso),
        "acme": _video(
            client, ana, "Acme pricing tricks", deal_attributes={"competitors": ["Acme"]}
        ),
        "other": _video(
            client,
            ana,
            "Globex in banking",
            deal_attributes={"competitors": ["Globex"], "industry": "banking"},
        ),
        "unseen": _video(
            client,
            ana,
            "Acme retail, not shared",
            deal_attributes={"competitors": ["Acme"], "industry": "retail"},
        ),
    }
    _playable(session, *(v["id"] for v in made.values()))
    for key in ("won", "acme", "other"):
        share_video(client, ana, _Ref(made[key]["id"]), people["sam"])
    liked = client.post(
        f"/api/v1/videos/{made['won']['id']}/comments",
        json={"body": "This is the reframe that won it", "at_ms": 20_000},
        headers=ana,
    ).get_json()
    assert client.put(f"/api/v1/comments/{liked['id']}/like", headers=sam).status_code == 200
    drain(context)

    response = client.get(f"/api/v1/deals/{northwind}/recommendations", headers=sam)
    body = response.get_json()
    assert response.status_code == 200, body
    assert [v["video"]["title"] for v in body["videos"]] == [
        "How we beat Acme at Contoso",
        "Acme pricing tricks",
    ]
    first = body["videos"][0]["why"]
    assert {"kind": "attribute", "attribute": "competitors", "value": "Acme"} in first
    assert {"kind": "attribute", "attribute": "industry", "value": "retail"} in first
    assert {"kind": "won_deal", "attribute": None, "value": None} in first
    (moment,) = body["moments"]
    assert moment["comment_id"] == liked["id"] and moment["at_ms"] == 20_000
    assert moment["likes"] == 1 and f"comment={liked['id']}" in moment["link"]
    # Deals are read by whom the deal policy lets read them.
    kim = bearer(client, people["kim"])
    assert client.get(f"/api/v1/deals/{northwind}/recommendations", headers=kim).status_code == 404


def test_the_search_language_is_the_organisations(
    client: FlaskClient, session: Session, people: dict[str, Any], context: AppContext
) -> None:
    from fieldcast.search import indexing

    ana, admin = bearer(client, people["ana"]), bearer(client, people["admin"])
    video = _video(client, ana, "Verhandlungen mit Einkäufern")
    _playable(session, video["id"])
    said = client.post(
        f"/api/v1/videos/{video['id']}/comments",
        json={"body": "Gute Verhandlungsführung hier", "at_ms": 3_000},
        headers=ana,
    ).get_json()
    drain(context)
    # English stems differ from German ones: "Verhandlung" is only a close match yet.
    (hit,) = _search(client, ana, q="verhandlung ")["items"]
    assert [r["similar"] for r in hit["reasons"]] == [True]
    refused = client.put("/api/v1/search/settings", json={"language": "de"}, headers=ana)
    assert refused.status_code == 403
    bad = client.put("/api/v1/search/settings", json={"language": "xx"}, headers=admin)
    assert bad.status_code == 422
    changed = client.put("/api/v1/search/settings", json={"language": "de-AT"}, headers=admin)
    assert changed.get_json()["language"] == "de"
    from fieldcast.models.conversation import Comment

    seq = session.scalar(select(Comment.change_seq).where(Comment.id == said["id"]))
    drain(context)  # the comments stemmed again, in German
    # ... which apps syncing comments need not fetch again.
    assert session.scalar(select(Comment.change_seq).where(Comment.id == said["id"])) == seq
    indexing.sweep(context.db)
    (hit,) = _search(client, ana, q="verhandlungsfuhrung ")["items"]
    assert [m["comment_id"] for m in hit["moments"]] == [said["id"]]
    (hit,) = _search(client, ana, q="verhandlung ")["items"]
    assert hit["reasons"] == [{"kind": "title", "detail": None, "at_ms": None, "similar": False}]
    assert _titles(_search(client, ana, q="einkaufer ")) == {"Verhandlungen mit Einkäufern"}
    assert client.get("/api/v1/search/settings", headers=ana).get_json()["language"] == "de"


def test_an_accepted_reply_video_counts_for_the_question_and_the_reply(
    session: Session, org: Any, people: dict[str, Any]
) -> None:
    from fieldcast.search import indexing

    def video(title: str, owner: Any, **fields: Any) -> Video:
        made = Video(
            org_id=org.id, owner_id=owner.id, title=title, status=VideoStatus.READY, **fields
        )
        session.add(made)
        session.flush()
        return made

    question = video("How do you price pilots?", people["ana"], kind=VideoKind.QUESTION)
    reply = video("Pilots, priced", people["sam"], answers_video_id=question.id)
    other = video("Another answer", people["kim"], answers_video_id=question.id)
    question.accepted_video_id = reply.id
    session.flush()
    assert indexing.build(session, [question.id, reply.id, other.id]) == {
        question.id,
        reply.id,
        other.id,
    }
    engagement = dict(
        session.execute(
            select(SearchDocument.video_id, SearchDocument.engagement).where(
                SearchDocument.video_id.in_([question.id, reply.id, other.id])
            )
        ).all()
    )
    assert engagement == {question.id: 5, reply.id: 5, other.id: 0}


def test_two_saved_searches_posted_at_once_keep_to_the_cap(
    committed_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fieldcast.models.accounts import Organisation, User
    from fieldcast.policy import Principal
    from fieldcast.search import saved

    monkeypatch.setattr(saved, "MAX_PER_PERSON", 1)
    with committed_db.unit_of_work() as session:
        org = Organisation(id=uuid.uuid4(), name="Acme", slug=f"acme-{uuid.uuid4().hex[:8]}")
        session.add(org)
        user = User(org_id=org.id, email="rep@example.com", display_name="Rep", handle="rep")
        session.add(user)
        session.flush()
        user_id = user.id
    first_in = threading.Event()

    def post(query: str, hold: bool) -> str:
        try:
            with committed_db.unit_of_work() as session:
                person = session.get(User, user_id)
                assert person is not None
                saved.create(
                    session, Principal(user=person), name="", query=query, filters=engine.Filters()
                )
                if hold:
                    first_in.set()
                    time.sleep(0.5)  # the other POST counts meanwhile, or waits
            return "made"
        except saved.TooManySavedSearches:
            return "refused"

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(post, "acme", True)
        assert first_in.wait(10)
        second = pool.submit(post, "globex", False)
        assert sorted([first.result(), second.result()]) == ["made", "refused"]


def test_an_admin_finds_the_same_whether_the_rank_index_is_walked_or_the_matches_sorted(
    client: FlaskClient,
    session: Session,
    people: dict[str, Any],
    library: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Which way the first matches are found is chosen from the planner's estimate; the
    results are the same either way, in the same order."""
    admin = engine.Principal(user=people["admin"])
    for doc in session.scalars(select(SearchDocument)):
        doc.rank_key = float(len(doc.title))
    session.flush()
    tsq = engine.tsquery(engine.config_of(session, admin.org_id), parse("acme").tsquery())
    assert engine.estimated_rows(session, select(SearchDocument.video_id)) >= 1
    # The limits bite: the first match in rank order is the only candidate, and facets count
    # the first two.
    monkeypatch.setattr(engine.ranking, "CANDIDATES", 1)
    monkeypatch.setattr(engine, "FACET_CAP", 2)
    found: dict[bool, Any] = {}
    for walk, ratio in ((True, 0.0), (False, float("inf"))):
        monkeypatch.setattr(engine, "WALK_COST_RATIO", ratio)
        engine._documents.forget()
        assert engine.walk_pays(session, admin, tsq, 300) is walk
        found[walk] = [
            (
                [h.video.id for h in engine.search(session, admin, q, engine.Filters()).hits],
                engine.facets(session, admin, q, engine.Filters()),
            )
            for q in ("acme", "globex OR discount", "deal*", "-acme")
        ]
    assert found[True] == found[False]
    # The longest title of the matches (the best rank here) is each query's one result.
    title_of = {v.id: v.title for v in session.scalars(select(Video))}
    titles = [[title_of[i] for i in ids] for ids, _ in found[True]]
    assert titles == [
        ["Acme turned off their mobile app"],
        ["Handling the pricing objection"],
        ["Handling the pricing objection"],
        ["Demo script for discovery calls"],
    ]
    assert [facets.total for _, facets in found[True]] == [2, 2, 1, 2]
    assert [facets.capped for _, facets in found[True]] == [False, False, False, False]
    # An estimate reads the plan whatever the statement's columns (an enum here).
    assert engine.estimated_rows(session, select(Video.status)) >= 1


def test_every_connection_plans_statements_for_their_values_and_compiles_none(
    database_url: str,
) -> None:
    database = Database(database_url, pool_size=1)
    try:
        with database.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW plan_cache_mode").scalar() == "force_custom_plan"
            assert conn.exec_driver_sql("SHOW jit").scalar() == "off"
    finally:
        database.dispose()


def test_a_transaction_planned_once_leaves_the_connection_planning_every_execution(
    database_url: str,
) -> None:
    database = Database(database_url, pool_size=1)
    try:
        for end in ("commit", "rollback"):
            with database.sessionmaker() as session:
                plan_once(session)
                mode = session.scalar(text("SHOW plan_cache_mode"))
                assert mode == "force_generic_plan"
                getattr(session, end)()
                # The same pooled connection, the next transaction.
                assert session.scalar(text("SHOW plan_cache_mode")) == "force_custom_plan"
    finally:
        database.dispose()
