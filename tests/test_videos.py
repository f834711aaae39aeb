"""Draft videos as a mobile client creates, lists and edits them."""

from __future__ import annotations

from typing import Any

from tests import factories


def _create(client: Any, headers: dict[str, str], **body: Any) -> Any:
    return client.post(
        "/api/v1/videos", json={"title": "Pricing objection", **body}, headers=headers
    )


def test_create_returns_a_draft_awaiting_upload(client: Any, rep: Any, auth: Any) -> None:
    response = _create(
        client,
        auth(rep),
        description="  How I answered  ",
        deal_attributes={" Industry ": "Retail", "deal size": 50000},
    )
    assert response.status_code == 201, response.get_json()
    video = response.get_json()
    assert video["status"] == "awaiting_upload"
    assert video["progress"] == 0
    assert video["owner_id"] == str(rep.id)
    assert video["description"] == "How I answered"
    # Read by the catalogue: a name as its slug, a choice in its spelling, a number a number.
    assert video["deal_attributes"] == {"industry": "retail", "deal_size": 50000}
    assert video["failure"] is None
    playback = dict(video["playback"])
    assert isinstance(playback.pop("expires_at"), int)
    assert playback == {
        "hls_url": None,
        "mp4_url": None,
        "poster_url": None,
        "storyboard_url": None,
        "captions_url": None,
        "playable_for": [],
        "renditions": [],
    }
    again = client.get(f"/api/v1/videos/{video['id']}", headers=auth(rep))
    assert again.get_json() == video


def test_bad_drafts_name_the_field(client: Any, rep: Any, auth: Any) -> None:
    headers = auth(rep)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"deal_attributes": {f"k{i}": "v" for i in range(21)}}, "deal_attributes"),
        ({"deal_attributes": {"stage": {"nested": 1}}}, "deal_attributes"),
        ({"deal_attributes": {"stage": True}}, "deal_attributes"),
        ({"deal_attributes": {"stage": "x" * 201}}, "deal_attributes"),
        ({"deal_attributes": {"stage": ""}}, "deal_attributes"),
        ({"status": "ready"}, "status"),
    ]
    for body, field in cases:
        response = client.post("/api/v1/videos", json={"title": "ok", **body}, headers=headers)
        assert response.status_code == 422, body
        problem = response.get_json()
        # A value of the wrong type for its attribute says so (a stage is a choice, text).
        wrong_type = body.get("deal_attributes", {}).get("stage") in ({"nested": 1}, True)
        code = "attribute_type_mismatch" if wrong_type else "validation_failed"
        assert problem["code"] == code, (body, problem)
        assert field in problem["errors"], (body, problem)


def test_list_shows_my_videos_newest_first_in_pages(
    client: Any, org: Any, rep: Any, auth: Any
) -> None:
    headers = auth(rep)
    created = [_create(client, headers, title=f"Clip {i}").get_json()["id"] for i in range(5)]
    colleague = factories.UserFactory(org=org)
    _create(client, auth(colleague), title="Not mine")
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/videos", query_string=query, headers=headers).get_json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))


def test_author_edits_details(client: Any, rep: Any, auth: Any) -> None:
    headers = auth(rep)
    video = _create(client, headers).get_json()
    response = client.patch(
        f"/api/v1/videos/{video['id']}",
        json={"title": "Competitor X turned off their app", "deal_attributes": {"competitor": "X"}},
        headers=headers,
    )
    assert response.status_code == 200
    assert response.get_json()["title"] == "Competitor X turned off their app"
    assert response.get_json()["deal_attributes"] == {"competitor": "X"}


def test_video_reads_are_cacheable(client: Any, rep: Any, auth: Any) -> None:
    headers = auth(rep)
    video = _create(client, headers).get_json()
    first = client.get(f"/api/v1/videos/{video['id']}", headers=headers)
    etag = first.headers["ETag"]
    cached = client.get(f"/api/v1/videos/{video['id']}", headers={**headers, "If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.get_data() == b""

    renamed = client.patch(
        f"/api/v1/videos/{video['id']}", json={"title": "Renamed"}, headers=headers
    )
    assert renamed.status_code == 200
    changed = client.get(
        f"/api/v1/videos/{video['id']}", headers={**headers, "If-None-Match": etag}
    )
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert changed.get_json()["title"] == "Renamed"
    fresh = {**headers, "If-None-Match": changed.headers["ETag"]}
    assert client.get(f"/api/v1/videos/{video['id']}", headers=fresh).status_code == 304
