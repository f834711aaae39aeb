"""Users, teams, memberships, idempotent retries and API tokens, as a client sees them."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from fieldcast.models.accounts import ApiToken
from tests import factories

Headers = dict[str, str]
Auth = Callable[[Any], Headers]

PROBLEM_JSON = "application/problem+json"


def make_user(**fields: Any) -> Any:
    return factories.UserFactory(**fields)


def make_team(**fields: Any) -> Any:
    return factories.TeamFactory(**fields)


def new_user(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": "jane.doe@example.com",
        "display_name": "Jane Doe",
        "handle": "jane_doe",
        "password": "a-long-enough-password",
    }
    body.update(overrides)
    return body


def problem(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    body: dict[str, Any] = response.get_json()
    if code is not None:
        assert body["code"] == code, body
    return body


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def login(client: FlaskClient, email: str, password: str = factories.PASSWORD) -> Any:
    return client.post("/api/v1/auth/token", json={"email": email, "password": password})


def bearer(token: str) -> Headers:
    return {"Authorization": f"Bearer {token}"}


def cursor_of(values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


# -- creating users --------------------------------------------------------------------------


def test_admin_creates_a_user_who_can_then_log_in(
    client: FlaskClient, admin: Any, auth: Auth
) -> None:
    body = new_user(email="Jane.Doe@Example.COM", handle="@Jane_Doe", role="manager")
    response = client.post("/api/v1/users", json=body, headers=auth(admin))
    created = ok(response, 201)
    assert created["handle"] == "jane_doe"
    assert created["email"] == "jane.doe@example.com"
    assert created["display_name"] == "Jane Doe"
    assert created["role"] == "manager"
    assert created["is_active"] is True
    assert created["time_zone"] == "UTC"
    assert created["teams"] == []
    assert "password" not in created
    assert "password_hash" not in created

    fetched = ok(client.get(f"/api/v1/users/{created['id']}", headers=auth(admin)))
    assert fetched == created
    # The new user signs in with the normalised email, whatever case they type.
    assert login(client, "JANE.DOE@example.com", "a-long-enough-password").status_code == 200


def test_duplicate_email_is_a_conflict_whatever_the_case(
    client: FlaskClient, admin: Any, auth: Auth
) -> None:
    headers = auth(admin)
    ok(client.post("/api/v1/users", json=new_user(), headers=headers), 201)
    again = new_user(email="JANE.DOE@example.com", handle="someone_else")
    body = problem(client.post("/api/v1/users", json=again, headers=headers), 409, "email_taken")
    assert "email" in body["errors"]


def test_email_is_unique_across_organisations(
    client: FlaskClient, admin: Any, outsider: Any, auth: Auth
) -> None:
    """Log-in is by email alone, so one email cannot belong to two organisations."""
    response = client.post(
        "/api/v1/users", json=new_user(email=outsider.email), headers=auth(admin)
    )
    problem(response, 409, "email_taken")


def test_duplicate_handle_is_a_conflict(client: FlaskClient, admin: Any, auth: Auth) -> None:
    headers = auth(admin)
    ok(client.post("/api/v1/users", json=new_user(), headers=headers), 201)
    again = new_user(email="other@example.com", handle="@JANE_DOE")
    body = problem(client.post("/api/v1/users", json=again, headers=headers), 409, "handle_taken")
    assert "handle" in body["errors"]


def test_the_same_handle_is_free_in_another_organisation(
    client: FlaskClient, admin: Any, outsider: Any, auth: Auth
) -> None:
    ok(client.post("/api/v1/users", json=new_user(), headers=auth(admin)), 201)
    other = new_user(email="jane@other.example.com")
    ok(client.post("/api/v1/users", json=other, headers=auth(outsider)), 201)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"password": "short"}, "password"),
        ({"handle": "has space"}, "handle"),
        ({"handle": "x"}, "handle"),
        ({"email": "not-an-email"}, "email"),
        ({"role": "overlord"}, "role"),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"nickname": "JD"}, "nickname"),
    ],
)
def test_invalid_user_fields_are_reported_by_name(
    client: FlaskClient, admin: Any, auth: Auth, overrides: dict[str, Any], field: str
) -> None:
    headers = auth(admin)
    response = client.post("/api/v1/users", json=new_user(**overrides), headers=headers)
    body = problem(response, 422, "validation_failed")
    assert field in body["errors"], body
    listed = ok(client.get("/api/v1/users", query_string={"q": "jane"}, headers=headers))
    assert listed["items"] == []


def test_missing_required_fields_are_reported(client: FlaskClient, admin: Any, auth: Auth) -> None:
    body = problem(
        client.post("/api/v1/users", json={}, headers=auth(admin)), 422, "validation_failed"
    )
    assert {"email", "display_name", "handle"} <= set(body["errors"])


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        pytest.param(
            "POST",
            "/api/v1/users",
            new_user(display_name="   "),
            "display_name",
            id="create-user",
        ),
        pytest.param(
            "POST",
            "/api/v1/teams",
            {"name": "   "},
            "name",
            id="create-team",
        ),
        pytest.param(
            "PATCH",
            "/api/v1/me",
            {"display_name": "   "},
            "display_name",
            id="update-me",
        ),
    ],
)
def test_blank_names_are_rejected(
    client: FlaskClient,
    admin: Any,
    auth: Auth,
    method: str,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    response = client.open(path, method=method, json=body, headers=auth(admin))
    assert field in problem(response, 422, "validation_failed")["errors"]


def test_external_ids_are_unique_in_the_organisation(
    client: FlaskClient, admin: Any, auth: Auth
) -> None:
    headers = auth(admin)
    ok(client.post("/api/v1/users", json=new_user(external_id="HR-1"), headers=headers), 201)
    again = new_user(email="john@example.com", handle="john", external_id="HR-1")
    body = problem(
        client.post("/api/v1/users", json=again, headers=headers), 409, "external_id_taken"
    )
    assert "external_id" in body["errors"]
    team = {"name": "Sales", "external_id": "HR-1"}  # teams and users are separate spaces
    ok(client.post("/api/v1/teams", json=team, headers=headers), 201)
    other = {"name": "Support", "external_id": "HR-1"}
    problem(client.post("/api/v1/teams", json=other, headers=headers), 409, "external_id_taken")


# -- updating users --------------------------------------------------------------------------


def test_admin_updates_a_user(client: FlaskClient, admin: Any, rep: Any, auth: Auth) -> None:
    changes = {"display_name": "Renamed", "handle": "@New_Handle", "role": "enablement"}
    updated = ok(client.patch(f"/api/v1/users/{rep.id}", json=changes, headers=auth(admin)))
    assert updated["display_name"] == "Renamed"
    assert updated["handle"] == "new_handle"
    assert updated["role"] == "enablement"
    assert ok(client.get("/api/v1/me", headers=auth(rep)))["role"] == "enablement"


def test_unknown_field_on_update_is_rejected(
    client: FlaskClient, admin: Any, rep: Any, auth: Auth
) -> None:
    response = client.patch(
        f"/api/v1/users/{rep.id}", json={"email": "x@example.com"}, headers=auth(admin)
    )
    body = problem(response, 422, "validation_failed")
    assert "email" in body["errors"]


def test_manager_chain_cannot_become_a_circle(
    client: FlaskClient, org: Any, admin: Any, auth: Auth
) -> None:
    top = make_user(org=org, manager=True)
    middle = make_user(org=org, manager=True, manager_id=top.id)
    bottom = make_user(org=org, manager_id=middle.id)
    headers = auth(admin)
    for manager in (bottom, top):  # indirect and direct cycles
        response = client.patch(
            f"/api/v1/users/{top.id}", json={"manager_id": str(manager.id)}, headers=headers
        )
        body = problem(response, 422, "validation_failed")
        assert "manager_id" in body["errors"]
    assert ok(client.get(f"/api/v1/users/{top.id}", headers=headers))["manager_id"] is None


def test_manager_must_be_in_the_organisation(
    client: FlaskClient, admin: Any, rep: Any, outsider: Any, auth: Auth
) -> None:
    headers = auth(admin)
    response = client.patch(
        f"/api/v1/users/{rep.id}", json={"manager_id": str(outsider.id)}, headers=headers
    )
    assert "manager_id" in problem(response, 422, "validation_failed")["errors"]
    response = client.post(
        "/api/v1/users", json=new_user(manager_id=str(outsider.id)), headers=headers
    )
    assert "manager_id" in problem(response, 422, "validation_failed")["errors"]


def test_direct_reports_are_listed_by_manager(
    client: FlaskClient, org: Any, admin: Any, rep: Any, auth: Auth
) -> None:
    headers = auth(admin)
    boss = make_user(org=org, manager=True)
    ok(client.patch(f"/api/v1/users/{rep.id}", json={"manager_id": str(boss.id)}, headers=headers))
    listed = ok(
        client.get("/api/v1/users", query_string={"manager_id": str(boss.id)}, headers=headers)
    )
    assert [u["id"] for u in listed["items"]] == [str(rep.id)]
    assert listed["items"][0]["manager_id"] == str(boss.id)
    cleared = client.patch(f"/api/v1/users/{rep.id}", json={"manager_id": None}, headers=headers)
    assert ok(cleared)["manager_id"] is None


def test_deactivating_a_user_ends_their_access(
    client: FlaskClient, admin: Any, rep: Any, auth: Auth
) -> None:
    tokens = ok(login(client, rep.email))
    rep_headers = bearer(tokens["access_token"])
    ok(client.get("/api/v1/me", headers=rep_headers))

    admin_headers = auth(admin)
    api_token = ok(
        client.post(
            "/api/v1/api-tokens",
            json={"name": "Rep's sync", "user_id": str(rep.id)},
            headers=admin_headers,
        ),
        201,
    )["token"]
    ok(client.get("/api/v1/me", headers=bearer(api_token)))

    updated = client.patch(
        f"/api/v1/users/{rep.id}", json={"is_active": False}, headers=admin_headers
    )
    assert ok(updated)["is_active"] is False

    problem(client.get("/api/v1/me", headers=rep_headers), 401)
    problem(client.get("/api/v1/me", headers=bearer(api_token)), 401)
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    problem(refreshed, 401)
    problem(login(client, rep.email), 401, "invalid_credentials")

    # Reactivating lets them log in again, but does not revive the old session.
    ok(client.patch(f"/api/v1/users/{rep.id}", json={"is_active": True}, headers=admin_headers))
    problem(client.get("/api/v1/me", headers=rep_headers), 401)
    ok(login(client, rep.email))


@pytest.mark.parametrize("changes", [{"is_active": False}, {"role": "rep"}])
def test_admin_cannot_deactivate_or_demote_themselves(
    client: FlaskClient, admin: Any, auth: Auth, changes: dict[str, Any]
) -> None:
    headers = auth(admin)
    response = client.patch(f"/api/v1/users/{admin.id}", json=changes, headers=headers)
    problem(response, 422, "cannot_change_own_admin")
    me = ok(client.get("/api/v1/me", headers=headers))
    assert me["is_active"] is True
    assert me["role"] == "admin"


def test_admin_can_demote_another_admin(
    client: FlaskClient, org: Any, admin: Any, auth: Auth
) -> None:
    other = make_user(org=org, admin=True)
    other_headers = auth(other)
    ok(client.patch(f"/api/v1/users/{other.id}", json={"role": "rep"}, headers=auth(admin)))
    problem(client.get("/api/v1/api-tokens", headers=other_headers), 403, "permission_denied")


def test_password_change_takes_effect(
    client: FlaskClient, admin: Any, rep: Any, auth: Auth
) -> None:
    response = client.patch(
        f"/api/v1/users/{rep.id}", json={"password": "a-brand-new-password"}, headers=auth(admin)
    )
    ok(response)
    problem(login(client, rep.email), 401, "invalid_credentials")
    ok(login(client, rep.email, "a-brand-new-password"))


# -- listing users ---------------------------------------------------------------------------


def test_user_list_pages_through_everyone_once_in_handle_order(
    client: FlaskClient, org: Any, admin: Any, auth: Auth
) -> None:
    for handle in ["zoe", "adam", "mia", "bob_2", "bob_1", "carla", "yusuf"]:
        make_user(org=org, handle=handle)
    make_user(handle="amy_elsewhere")  # another organisation
    headers = auth(admin)
    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        query: dict[str, Any] = {"limit": 3}
        if cursor:
            query["cursor"] = cursor
        page = ok(client.get("/api/v1/users", query_string=query, headers=headers))
        pages += 1
        assert len(page["items"]) <= 3
        seen.extend(item["handle"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10, "pagination does not end"
    expected = sorted(["zoe", "adam", "mia", "bob_2", "bob_1", "carla", "yusuf", admin.handle])
    assert seen == expected
    assert pages == 3


def test_a_page_is_stable_when_users_are_added_before_the_cursor(
    client: FlaskClient, org: Any, admin: Any, auth: Auth
) -> None:
    for handle in ["b1", "b2", "c1", "c2"]:
        make_user(org=org, handle=handle)
    headers = auth(admin)
    first = ok(client.get("/api/v1/users", query_string={"limit": 2}, headers=headers))
    assert [u["handle"] for u in first["items"]] == sorted([admin.handle, "b1", "b2"])[:2]
    make_user(org=org, handle="aa")  # sorts before the cursor
    second = ok(
        client.get(
            "/api/v1/users",
            query_string={"limit": 2, "cursor": first["next_cursor"]},
            headers=headers,
        )
    )
    seen = [u["handle"] for u in first["items"] + second["items"]]
    assert len(seen) == len(set(seen))
    assert "aa" not in [u["handle"] for u in second["items"]]


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor!",
        cursor_of(["a", "b"]),  # a cursor of another list's shape
        cursor_of([42]),  # a number where a handle goes
        cursor_of({"handle": "x"}),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_invalid_cursor_is_rejected(
    client: FlaskClient, admin: Any, auth: Auth, cursor: str
) -> None:
    response = client.get("/api/v1/users", query_string={"cursor": cursor}, headers=auth(admin))
    body = problem(response, 422, "invalid_cursor")
    assert "cursor" in body["errors"]


def test_cursor_of_one_list_is_rejected_by_another(
    client: FlaskClient, org: Any, admin: Any, auth: Auth
) -> None:
    make_team(org=org)
    make_team(org=org)
    headers = auth(admin)
    teams = ok(client.get("/api/v1/teams", query_string={"limit": 1}, headers=headers))
    assert teams["next_cursor"]
    for path in ("/api/v1/users", "/api/v1/api-tokens"):
        response = client.get(path, query_string={"cursor": teams["next_cursor"]}, headers=headers)
        problem(response, 422, "invalid_cursor")


@pytest.mark.parametrize("limit", [0, -1, 501, "ten"])
def test_invalid_limit_is_rejected(client: FlaskClient, admin: Any, auth: Auth, limit: Any) -> None:
    response = client.get("/api/v1/users", query_string={"limit": limit}, headers=auth(admin))
    assert "limit" in problem(response, 422, "validation_failed")["errors"]


def test_q_filters_by_prefix_of_handle_name_or_email(
    client: FlaskClient, org: Any, rep: Any, auth: Auth
) -> None:
    make_user(org=org, handle="jdoe", display_name="Zed", email="a1@example.com")
    make_user(org=org, handle="zz1", display_name="Jane Roe", email="a2@example.com")
    make_user(org=org, handle="zz2", display_name="Zed", email="jay@example.com")
    make_user(org=org, handle="zz3", display_name="Zed", email="x_j@example.com")
    make_user(org=org, handle="majd", display_name="Majd J", email="m@example.com")
    make_user(handle="jelsewhere")  # another organisation
    headers = auth(rep)

    def handles(q: str) -> list[str]:
        page = ok(client.get("/api/v1/users", query_string={"q": q}, headers=headers))
        return [u["handle"] for u in page["items"]]

    assert handles("j") == ["jdoe", "zz1", "zz2"]
    assert handles("@J") == ["jdoe", "zz1", "zz2"]
    assert handles("jane r") == ["zz1"]
    assert handles("zz") == ["zz1", "zz2", "zz3"]
    # LIKE wildcards are taken literally.
    assert handles("x_") == ["zz3"]
    assert handles("%") == []
    assert handles("_") == []


def test_list_filters_by_role_and_activity(
    client: FlaskClient, org: Any, admin: Any, rep: Any, auth: Auth
) -> None:
    gone = make_user(org=org, inactive=True)
    boss = make_user(org=org, manager=True)
    headers = auth(admin)

    def ids(**query: Any) -> set[str]:
        page = ok(client.get("/api/v1/users", query_string=query, headers=headers))
        return {u["id"] for u in page["items"]}

    assert ids(role="manager") == {str(boss.id)}
    assert ids(role="admin") == {str(admin.id)}
    assert ids(is_active="false") == {str(gone.id)}
    assert ids(is_active="true") == {str(u.id) for u in (admin, rep, boss)}


def test_user_read_supports_conditional_requests(
    client: FlaskClient, admin: Any, rep: Any, auth: Auth
) -> None:
    headers = auth(admin)
    first = client.get(f"/api/v1/users/{rep.id}", headers=headers)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag
    again = client.get(f"/api/v1/users/{rep.id}", headers={**headers, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.get_data() == b""

    ok(client.patch(f"/api/v1/users/{rep.id}", json={"display_name": "New"}, headers=headers))
    changed = client.get(f"/api/v1/users/{rep.id}", headers={**headers, "If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert changed.get_json()["display_name"] == "New"


def test_user_list_query_count_does_not_grow_with_users(
    client: FlaskClient, org: Any, admin: Any, auth: Auth, count_queries: Any
) -> None:
    headers = auth(admin)
    teams = [make_team(org=org) for _ in range(2)]

    def add_users(n: int) -> None:
        for i in range(n):
            user = make_user(org=org)
            factories.MembershipFactory(team=teams[i % 2], user=user)

    def queries_for_list() -> tuple[int, int]:
        count_queries.statements.clear()
        page = ok(client.get("/api/v1/users", headers=headers))
        assert all(u["teams"] for u in page["items"] if u["id"] != str(admin.id))
        return count_queries.count, len(page["items"])

    add_users(2)
    few, few_items = queries_for_list()
    add_users(10)
    many, many_items = queries_for_list()
    assert (few_items, many_items) == (3, 13)
    assert many == few, count_queries.statements


# -- my profile ------------------------------------------------------------------------------


def test_user_changes_own_display_name_and_time_zone(
    client: FlaskClient, rep: Any, auth: Auth
) -> None:
    headers = auth(rep)
    changes = {"display_name": "Renamed Rep", "time_zone": "Europe/Berlin"}
    me = ok(client.patch("/api/v1/me", json=changes, headers=headers))
    assert me["display_name"] == "Renamed Rep"
    assert me["time_zone"] == "Europe/Berlin"
    assert me["id"] == str(rep.id)
    assert me["organisation"]["id"] == str(rep.org_id)
    again = ok(client.get(f"/api/v1/users/{rep.id}", headers=headers))
    assert again["display_name"] == "Renamed Rep"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"role": "admin"}, "role"),
        ({"is_active": False}, "is_active"),
        ({"handle": "new_handle"}, "handle"),
        ({"time_zone": "Nowhere/Special"}, "time_zone"),
        ({"display_name": ""}, "display_name"),
    ],
)
def test_user_cannot_change_protected_profile_fields(
    client: FlaskClient, rep: Any, auth: Auth, changes: dict[str, Any], field: str
) -> None:
    headers = auth(rep)
    before = ok(client.get("/api/v1/me", headers=headers))
    body = problem(
        client.patch("/api/v1/me", json=changes, headers=headers), 422, "validation_failed"
    )
    assert field in body["errors"]
    after = ok(client.get("/api/v1/me", headers=headers))
    assert after == before


# -- teams -----------------------------------------------------------------------------------


def create_team(client: FlaskClient, headers: Headers, name: str, parent: Any = None) -> Any:
    body: dict[str, Any] = {"name": name}
    if parent is not None:
        body["parent_id"] = parent["id"]
    return client.post("/api/v1/teams", json=body, headers=headers)


def test_team_hierarchy(client: FlaskClient, admin: Any, rep: Any, auth: Auth) -> None:
    headers = auth(admin)
    sales = ok(create_team(client, headers, "Sales"), 201)
    west = ok(create_team(client, headers, "West", sales), 201)
    east = ok(create_team(client, headers, "East", sales), 201)
    bay = ok(create_team(client, headers, "Bay Area", west), 201)
    assert sales["parent_id"] is None
    assert west["parent_id"] == sales["id"]
    assert bay["parent_id"] == west["id"]

    rep_headers = auth(rep)  # everyone can read the tree

    def names(**query: Any) -> list[str]:
        page = ok(client.get("/api/v1/teams", query_string=query, headers=rep_headers))
        return [t["name"] for t in page["items"]]

    assert names() == ["Bay Area", "East", "Sales", "West"]
    assert names(root="true") == ["Sales"]
    assert names(parent_id=sales["id"]) == ["East", "West"]
    assert names(parent_id=west["id"]) == ["Bay Area"]

    moved = client.patch(
        f"/api/v1/teams/{bay['id']}", json={"parent_id": east["id"]}, headers=headers
    )
    assert ok(moved)["parent_id"] == east["id"]
    assert names(parent_id=east["id"]) == ["Bay Area"]
    detached = client.patch(f"/api/v1/teams/{bay['id']}", json={"parent_id": None}, headers=headers)
    assert ok(detached)["parent_id"] is None
    assert names(root="true") == ["Bay Area", "Sales"]


def test_team_names_are_unique_under_the_same_parent(
    client: FlaskClient, admin: Any, auth: Auth
) -> None:
    headers = auth(admin)
    sales = ok(create_team(client, headers, "Sales"), 201)
    support = ok(create_team(client, headers, "Support"), 201)
    ok(create_team(client, headers, "West", sales), 201)

    body = problem(create_team(client, headers, "West", sales), 409, "team_name_taken")
    assert "name" in body["errors"]
    problem(create_team(client, headers, "Sales"), 409, "team_name_taken")  # top level too
    problem(create_team(client, headers, " Sales "), 409, "team_name_taken")
    ok(create_team(client, headers, "West", support), 201)  # another parent is fine

    renamed = client.patch(
        f"/api/v1/teams/{support['id']}", json={"name": "Sales"}, headers=headers
    )
    problem(renamed, 409, "team_name_taken")
    assert ok(client.get(f"/api/v1/teams/{support['id']}", headers=headers))["name"] == "Support"


def test_team_list_pages_through_teams_with_equal_names(
    client: FlaskClient, org: Any, rep: Any, auth: Auth
) -> None:
    parents = [make_team(org=org, name=f"Region {i}") for i in range(3)]
    for parent in parents:
        make_team(org=org, name="West", parent_id=parent.id)
    headers = auth(rep)
    seen: list[tuple[str, str]] = []
    cursor: str | None = None
    for _ in range(10):
        query: dict[str, Any] = {"limit": 2}
        if cursor:
            query["cursor"] = cursor
        page = ok(client.get("/api/v1/teams", query_string=query, headers=headers))
        seen.extend((t["name"], t["id"]) for t in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 6
    assert len(set(seen)) == 6
    assert [name for name, _ in seen] == ["Region 0", "Region 1", "Region 2"] + ["West"] * 3


def test_member_list_pages(client: FlaskClient, org: Any, rep: Any, auth: Auth) -> None:
    team = make_team(org=org)
    members = [make_user(org=org) for _ in range(5)]
    for user in members:
        factories.MembershipFactory(team=team, user=user)
    headers = auth(rep)
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        query: dict[str, Any] = {"limit": 2}
        if cursor:
            query["cursor"] = cursor
        url = f"/api/v1/teams/{team.id}/members"
        page = ok(client.get(url, query_string=query, headers=headers))
        seen.extend(m["user"]["id"] for m in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(str(u.id) for u in members)
    assert len(seen) == len(set(seen))


def test_renaming_a_team_to_a_padded_existing_name_conflicts(
    client: FlaskClient, admin: Any, auth: Auth
) -> None:
    headers = auth(admin)
    ok(create_team(client, headers, "Sales"), 201)
    support = ok(create_team(client, headers, "Support"), 201)
    renamed = client.patch(
        f"/api/v1/teams/{support['id']}", json={"name": " Sales "}, headers=headers
    )
    problem(renamed, 409, "team_name_taken")


def test_team_cannot_sit_inside_itself(client: FlaskClient, admin: Any, auth: Auth) -> None:
    headers = auth(admin)
    sales = ok(create_team(client, headers, "Sales"), 201)
    west = ok(create_team(client, headers, "West", sales), 201)
    bay = ok(create_team(client, headers, "Bay", west), 201)
    for parent in (bay, west, sales):  # grandchild, child, itself
        response = client.patch(
            f"/api/v1/teams/{sales['id']}", json={"parent_id": parent["id"]}, headers=headers
        )
        assert "parent_id" in problem(response, 422, "validation_failed")["errors"]
    assert ok(client.get(f"/api/v1/teams/{sales['id']}", headers=headers))["parent_id"] is None


def test_team_parent_must_be_in_the_organisation(
    client: FlaskClient, admin: Any, outsider: Any, other_org: Any, auth: Auth
) -> None:
    foreign = make_team(org=other_org)
    response = client.post(
        "/api/v1/teams", json={"name": "Spy", "parent_id": str(foreign.id)}, headers=auth(admin)
    )
    assert "parent_id" in problem(response, 422, "validation_failed")["errors"]


def test_team_with_subteams_cannot_be_deleted(client: FlaskClient, admin: Any, auth: Auth) -> None:
    headers = auth(admin)
    sales = ok(create_team(client, headers, "Sales"), 201)
    west = ok(create_team(client, headers, "West", sales), 201)

    problem(
        client.delete(f"/api/v1/teams/{sales['id']}", headers=headers), 409, "team_has_subteams"
    )
    ok(client.get(f"/api/v1/teams/{sales['id']}", headers=headers))

    assert client.delete(f"/api/v1/teams/{west['id']}", headers=headers).status_code == 204
    assert client.delete(f"/api/v1/teams/{sales['id']}", headers=headers).status_code == 204
    problem(client.get(f"/api/v1/teams/{sales['id']}", headers=headers), 404, "not_found")
    problem(client.delete(f"/api/v1/teams/{sales['id']}", headers=headers), 404)


def test_team_members(client: FlaskClient, org: Any, admin: Any, rep: Any, auth: Auth) -> None:
    headers = auth(admin)
    team = ok(create_team(client, headers, "Sales"), 201)
    colleague = make_user(org=org)
    members_url = f"/api/v1/teams/{team['id']}/members"

    added = ok(client.put(f"{members_url}/{rep.id}", json={"role": "lead"}, headers=headers))
    assert added["user"]["id"] == str(rep.id)
    assert added["user"]["handle"] == rep.handle
    assert added["role"] == "lead"
    assert ok(client.put(f"{members_url}/{colleague.id}", json={}, headers=headers))["role"] == (
        "member"
    )

    listed = ok(client.get(members_url, headers=auth(rep)))
    roles = {m["user"]["id"]: m["role"] for m in listed["items"]}
    assert roles == {str(rep.id): "lead", str(colleague.id): "member"}
    me = ok(client.get("/api/v1/me", headers=auth(rep)))
    assert me["teams"] == [{"id": team["id"], "name": "Sales", "role": "lead"}]

    # PUT again changes the role without adding the user twice.
    changed = client.put(f"{members_url}/{rep.id}", json={"role": "member"}, headers=headers)
    assert ok(changed)["role"] == "member"
    assert len(ok(client.get(members_url, headers=headers))["items"]) == 2

    assert client.delete(f"{members_url}/{rep.id}", headers=headers).status_code == 204
    listed = ok(client.get(members_url, headers=headers))
    assert [m["user"]["id"] for m in listed["items"]] == [str(colleague.id)]
    assert ok(client.get("/api/v1/me", headers=auth(rep)))["teams"] == []
    problem(client.delete(f"{members_url}/{rep.id}", headers=headers), 404, "membership_not_found")


def test_invalid_membership_role_is_rejected(
    client: FlaskClient, org: Any, admin: Any, rep: Any, auth: Auth
) -> None:
    team = make_team(org=org)
    response = client.put(
        f"/api/v1/teams/{team.id}/members/{rep.id}", json={"role": "boss"}, headers=auth(admin)
    )
    assert "role" in problem(response, 422, "validation_failed")["errors"]


def test_user_of_another_organisation_cannot_be_made_a_member(
    client: FlaskClient, org: Any, admin: Any, outsider: Any, auth: Auth
) -> None:
    team = make_team(org=org)
    headers = auth(admin)
    response = client.put(
        f"/api/v1/teams/{team.id}/members/{outsider.id}", json={}, headers=headers
    )
    problem(response, 404)
    assert ok(client.get(f"/api/v1/teams/{team.id}/members", headers=headers))["items"] == []


def test_deleting_a_team_removes_it_from_its_members(
    client: FlaskClient, org: Any, admin: Any, rep: Any, auth: Auth
) -> None:
    team = make_team(org=org)
    factories.MembershipFactory(team=team, user=rep)
    headers = auth(admin)
    assert client.delete(f"/api/v1/teams/{team.id}", headers=headers).status_code == 204
    assert ok(client.get(f"/api/v1/users/{rep.id}", headers=headers))["teams"] == []


# -- idempotent retries ----------------------------------------------------------------------


def test_retried_create_with_the_same_key_is_replayed(
    client: FlaskClient, admin: Any, auth: Auth
) -> None:
    headers = {**auth(admin), "Idempotency-Key": "create-jane-1"}
    first = client.post("/api/v1/users", json=new_user(), headers=headers)
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers

    second = client.post("/api/v1/users", json=new_user(), headers=headers)
    assert second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.get_json() == first.get_json()
    assert second.mimetype == "application/json"

    listed = ok(client.get("/api/v1/users", query_string={"q": "jane"}, headers=headers))
    assert [u["id"] for u in listed["items"]] == [first.get_json()["id"]]


def test_same_key_with_another_body_is_refused(client: FlaskClient, admin: Any, auth: Auth) -> None:
    headers = {**auth(admin), "Idempotency-Key": "create-jane-2"}
    ok(client.post("/api/v1/users", json=new_user(), headers=headers), 201)
    other = new_user(email="john@example.com", handle="john")
    response = client.post("/api/v1/users", json=other, headers=headers)
    problem(response, 422, "idempotency_key_reused")
    listed = ok(client.get("/api/v1/users", query_string={"q": "john"}, headers=headers))
    assert listed["items"] == []


def test_a_failed_request_does_not_use_up_its_key(
    client: FlaskClient, admin: Any, auth: Auth
) -> None:
    headers = {**auth(admin), "Idempotency-Key": "create-jane-3"}
    refused = client.post("/api/v1/users", json=new_user(password="short"), headers=headers)
    assert "password" in problem(refused, 422, "validation_failed")["errors"]
    retried = client.post("/api/v1/users", json=new_user(), headers=headers)
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers


def test_idempotency_keys_belong_to_one_user(
    client: FlaskClient, org: Any, admin: Any, auth: Auth
) -> None:
    other_admin = make_user(org=org, admin=True)
    key = {"Idempotency-Key": "shared-key"}
    ok(client.post("/api/v1/users", json=new_user(), headers={**auth(admin), **key}), 201)
    second = client.post(
        "/api/v1/users",
        json=new_user(email="john@example.com", handle="john"),
        headers={**auth(other_admin), **key},
    )
    assert second.status_code == 201
    assert "Idempotent-Replayed" not in second.headers


@pytest.mark.parametrize("key", ["", "   ", "k" * 256])
def test_invalid_idempotency_key_is_refused_before_acting(
    client: FlaskClient, admin: Any, auth: Auth, key: str
) -> None:
    headers = {**auth(admin), "Idempotency-Key": key}
    response = client.post("/api/v1/users", json=new_user(), headers=headers)
    problem(response, 422, "invalid_idempotency_key")
    listed = ok(client.get("/api/v1/users", query_string={"q": "jane"}, headers=headers))
    assert listed["items"] == []


# -- API tokens ------------------------------------------------------------------------------


def test_api_token_lifecycle(client: FlaskClient, admin: Any, auth: Auth) -> None:
    headers = auth(admin)
    created = ok(client.post("/api/v1/api-tokens", json={"name": "CRM"}, headers=headers), 201)
    secret = created["token"]
    assert secret.startswith("fct_")
    assert len(secret) > 20
    assert created["prefix"] == secret[: len(created["prefix"])]
    assert created["name"] == "CRM"
    assert created["revoked_at"] is None

    listed = client.get("/api/v1/api-tokens", headers=headers)
    page = ok(listed)
    assert [t["id"] for t in page["items"]] == [created["id"]]
    assert "token" not in page["items"][0]
    assert secret not in listed.get_data(as_text=True)

    me = ok(client.get("/api/v1/me", headers=bearer(secret)))
    assert me["id"] == str(admin.id)
    assert me["role"] == "admin"

    assert client.delete(f"/api/v1/api-tokens/{created['id']}", headers=headers).status_code == 204
    body = problem(client.get("/api/v1/me", headers=bearer(secret)), 401, "invalid_token")
    assert body["code"] == "invalid_token"
    page = ok(client.get("/api/v1/api-tokens", headers=headers))
    assert page["items"][0]["revoked_at"] is not None


def test_api_token_acts_as_the_chosen_user(
    client: FlaskClient, admin: Any, rep: Any, auth: Auth
) -> None:
    created = client.post(
        "/api/v1/api-tokens", json={"name": "Rep bot", "user_id": str(rep.id)}, headers=auth(admin)
    )
    secret = ok(created, 201)["token"]
    me = ok(client.get("/api/v1/me", headers=bearer(secret)))
    assert me["id"] == str(rep.id)
    # It has the rep's permissions, not its creator's.
    problem(client.get("/api/v1/api-tokens", headers=bearer(secret)), 403, "permission_denied")


def test_api_token_cannot_log_out(client: FlaskClient, admin: Any, auth: Auth) -> None:
    created = client.post("/api/v1/api-tokens", json={"name": "CI"}, headers=auth(admin))
    secret = ok(created, 201)["token"]
    problem(client.post("/api/v1/auth/logout", headers=bearer(secret)), 422, "not_a_login_session")
    ok(client.get("/api/v1/me", headers=bearer(secret)))


def test_api_token_for_user_elsewhere_or_inactive_is_refused(
    client: FlaskClient, org: Any, admin: Any, outsider: Any, auth: Auth
) -> None:
    headers = auth(admin)
    response = client.post(
        "/api/v1/api-tokens", json={"name": "x", "user_id": str(outsider.id)}, headers=headers
    )
    problem(response, 404)
    gone = make_user(org=org, inactive=True)
    response = client.post(
        "/api/v1/api-tokens", json={"name": "x", "user_id": str(gone.id)}, headers=headers
    )
    assert "user_id" in problem(response, 422, "validation_failed")["errors"]
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    response = client.post(
        "/api/v1/api-tokens", json={"name": "x", "expires_at": past}, headers=headers
    )
    assert "expires_at" in problem(response, 422, "validation_failed")["errors"]
    assert ok(client.get("/api/v1/api-tokens", headers=headers))["items"] == []


def test_expired_api_token_is_refused(
    client: FlaskClient, session: Session, admin: Any, auth: Auth
) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    created = client.post(
        "/api/v1/api-tokens", json={"name": "Temp", "expires_at": soon}, headers=auth(admin)
    )
    body = ok(created, 201)
    ok(client.get("/api/v1/me", headers=bearer(body["token"])))
    session.execute(
        update(ApiToken)
        .where(ApiToken.id == body["id"])
        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    session.flush()
    problem(client.get("/api/v1/me", headers=bearer(body["token"])), 401, "invalid_token")
