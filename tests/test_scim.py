"""SCIM 2.0 at /scim/v2: compliance (scim2-tester against the live endpoint) and what
provisioning does to people, teams, assignments and sessions."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from scim2_client.engines.wsgi import WSGISCIMClient
from scim2_tester import Status, check_server
from sqlalchemy import select
from sqlalchemy.orm import Session

from fieldcast import passwords
from fieldcast.context import AppContext
from fieldcast.models.accounts import AuthSession, Role, Team, TeamMembership, User
from fieldcast.models.devices import Device
from fieldcast.models.directory import ScimToken
from fieldcast.models.moderation import AuditEntry
from fieldcast.models.programs import Assignee, Assignment
from fieldcast.models.videos import Video, VideoStatus
from tests import factories
from tests.conftest import bearer
from tests.worker_support import drain_outbox as drain

SCIM = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def make_token(client: FlaskClient, admin: Any) -> str:
    response = client.post("/api/v1/scim-token", headers=bearer(client, admin))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["base_url"].endswith("/scim/v2")
    token: str = body["token"]
    return token


@pytest.fixture
def scim_token(client: FlaskClient, admin: Any) -> str:
    return make_token(client, admin)


class Scim:
    """Requests to /scim/v2 with the organisation's token."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def __call__(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        return self.client.open(
            f"/scim/v2{path}",
            method=method,
            data=json.dumps(body) if body is not None else None,
            headers={**self.headers, "Content-Type": SCIM, **(headers or {})},
        )


@pytest.fixture
def scim(client: FlaskClient, scim_token: str) -> Scim:
    return Scim(client, scim_token)


def user_body(user_name: str, **extra: Any) -> dict[str, Any]:
    return {
        "schemas": [USER, ENTERPRISE],
        "userName": user_name,
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "displayName": "Babs Jensen",
        "emails": [{"value": user_name, "type": "work", "primary": True}],
        "active": True,
        **extra,
    }


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


# -- compliance ---------------------------------------------------------------------------------


def test_scim2_tester_finds_no_failure(app: Flask, scim_token: str) -> None:
    """scim2-tester discovers the service (ServiceProviderConfig, ResourceTypes, Schemas) and
    runs every check it has (creation, query, replacement, PATCH add/replace/remove, deletion,
    attributes, misc) on Users and Groups, over the live WSGI application."""
    client = WSGISCIMClient(
        app,
        base_url="http://localhost/scim/v2",
        headers={"Authorization": f"Bearer {scim_token}"},
    )
    results = check_server(client, raise_exceptions=False)
    failures = [
        f"{result.title} {result.resource_type}: {result.reason}"
        for result in results
        if result.status in (Status.ERROR, Status.CRITICAL)
    ]
    assert not failures, "\n".join(failures)
    # Nothing skipped: every check found what it needed (PATCH, filters, root searches, ...).
    assert {result.status for result in results} == {Status.SUCCESS}
    succeeded = {(result.title, result.resource_type) for result in results}
    for resource_type in ("User", "Group"):
        for title in (
            "object_creation",
            "object_query",
            "object_replacement",
            "object_deletion",
            "check_add_attribute",
            "check_replace_attribute",
            "check_remove_attribute",
            "search_with_attributes",
        ):
            assert (title, resource_type) in succeeded


def _video(session: Session, owner: Any, title: str) -> Video:
    video = Video(
        org_id=owner.org_id,
        owner_id=owner.id,
        title=title,
        status=VideoStatus.PLAYABLE,
        duration_ms=60_000,
    )
    session.add(video)
    session.flush()
    return video


# -- the token ----------------------------------------------------------------------------------


def test_the_token_is_shown_once_stored_hashed_rotated_and_revoked(
    client: FlaskClient, session: Session, admin: Any
) -> None:
    headers = bearer(client, admin)
    assert client.get("/api/v1/scim-token", headers=headers).status_code == 404
    first = make_token(client, admin)
    assert first.startswith("fcs_")
    shown = client.get("/api/v1/scim-token", headers=headers).get_json()
    assert "token" not in shown and first.startswith(shown["prefix"])
    row = session.scalars(select(ScimToken).where(ScimToken.org_id == admin.org_id)).one()
    assert first not in (row.token_hash, row.prefix) and len(row.token_hash) == 64
    assert Scim(client, first)("GET", "/Users").status_code == 200
    assert client.get("/api/v1/scim-token", headers=headers).get_json()["last_used_at"]

    second = make_token(client, admin)  # a rotation: the first stops at once
    refused = Scim(client, first)("GET", "/Users")
    assert refused.status_code == 401
    assert refused.mimetype == SCIM
    assert refused.get_json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="SCIM"'
    assert Scim(client, second)("GET", "/Users").status_code == 200

    assert client.delete("/api/v1/scim-token", headers=headers).status_code == 204
    assert Scim(client, second)("GET", "/Users").status_code == 401
    assert client.delete("/api/v1/scim-token", headers=headers).status_code == 404
    logged = session.scalars(
        select(AuditEntry.action)
        .where(AuditEntry.org_id == admin.org_id, AuditEntry.object_type == "scim_token")
        .order_by(AuditEntry.id)
    ).all()
    assert logged == [
        "scim_token.created",
        "scim_token.revoked",
        "scim_token.created",
        "scim_token.revoked",
    ]


def test_only_the_organisations_token_is_accepted(
    client: FlaskClient, org: Any, admin: Any, scim_token: str
) -> None:
    # No token, a login's access token, an integration's API token: all refused.
    assert client.get("/scim/v2/Users").status_code == 401
    assert (
        Scim(client, bearer(client, admin)["Authorization"][7:])("GET", "/Users").status_code == 401
    )
    api_token = client.post(
        "/api/v1/api-tokens", json={"name": "CRM"}, headers=bearer(client, admin)
    ).get_json()["token"]
    assert Scim(client, api_token)("GET", "/Users").status_code == 401
    # What the service supports is public (RFC 7643 §5); nothing else is.
    config = client.get("/scim/v2/ServiceProviderConfig")
    assert config.status_code == 200 and config.mimetype == SCIM
    body = config.get_json()
    assert body["patch"]["supported"] and body["filter"]["supported"]
    assert body["etag"]["supported"] and not body["bulk"]["supported"]
    assert body["filter"]["maxResults"] == 200
    assert client.get("/scim/v2/Schemas").status_code == 401
    # A token whose admin is no longer an admin stops working.
    scim = Scim(client, scim_token)
    assert scim("GET", "/ResourceTypes").status_code == 200
    other_admin = factories.UserFactory(org=org, admin=True)
    demoted = client.patch(
        f"/api/v1/users/{admin.id}", json={"role": "manager"}, headers=bearer(client, other_admin)
    )
    assert demoted.status_code == 200, demoted.get_json()
    assert scim("GET", "/Users").status_code == 401


def test_discovery_lists_users_with_the_enterprise_extension_and_groups(scim: Scim) -> None:
    types = scim("GET", "/ResourceTypes").get_json()
    by_name = {item["name"]: item for item in types["Resources"]}
    assert by_name["User"]["endpoint"] == "/Users"
    assert by_name["User"]["schemaExtensions"][0]["schema"] == ENTERPRISE
    assert by_name["Group"]["endpoint"] == "/Groups"
    schemas = {item["id"]: item for item in scim("GET", "/Schemas").get_json()["Resources"]}
    enterprise = {a["name"] for a in schemas[ENTERPRISE]["attributes"]}
    assert enterprise == {"employeeNumber", "department", "manager"}
    user = {a["name"] for a in schemas[USER]["attributes"]}
    assert {"userName", "name", "displayName", "emails", "active"} <= user


# -- organisation scoping -----------------------------------------------------------------------


def test_a_token_sees_only_its_organisation(
    client: FlaskClient, scim: Scim, rep: Any, outsider: Any
) -> None:
    theirs = Scim(client, make_token(client, outsider))
    mine = scim("POST", "/Users", user_body("mine@example.com")).get_json()
    team = scim("POST", "/Groups", {"schemas": [GROUP], "displayName": "West"}).get_json()
    listed = theirs("GET", "/Users").get_json()
    ids = {item["id"] for item in listed["Resources"]}
    assert ids == {str(outsider.id)} and listed["totalResults"] == 1
    for path in (f"/Users/{mine['id']}", f"/Users/{rep.id}", f"/Groups/{team['id']}"):
        assert theirs("GET", path).status_code == 404
        assert theirs("DELETE", path).status_code == 404
        gone = theirs("PATCH", path, patch({"op": "replace", "value": {"active": False}}))
        assert gone.status_code == 404
    assert (
        theirs("GET", '/Users?filter=userName eq "mine@example.com"').get_json()["totalResults"]
        == 0
    )
    # Nor can it put someone of another organisation in its teams, or name them as manager.
    their_team = theirs("POST", "/Groups", {"schemas": [GROUP], "displayName": "East"})
    added = theirs(
        "PATCH",
        f"/Groups/{their_team.get_json()['id']}",
        patch({"op": "add", "path": "members", "value": [{"value": mine["id"]}]}),
    )
    assert added.status_code == 400 and added.get_json()["scimType"] == "invalidValue"
    body = user_body("spy@example.com")
    body[ENTERPRISE] = {"manager": {"value": mine["id"]}}
    assert theirs("POST", "/Users", body).status_code == 400
    assert scim("GET", f"/Users/{mine['id']}").get_json()["active"] is True


# -- provisioning -------------------------------------------------------------------------------


def test_a_provisioned_person_joins_teams_and_gets_the_programs_assignments(
    client: FlaskClient, session: Session, context: AppContext, admin: Any, scim: Scim
) -> None:
    curator = bearer(client, admin)
    basics = _video(session, admin, "Basics")
    acme = _video(session, admin, "Acme")
    team = scim("POST", "/Groups", {"schemas": [GROUP], "displayName": "Sales West"}).get_json()
    for body in (
        {"name": "Reps' basics", "role": "rep", "video_id": str(basics.id)},
        {"name": "West's Acme", "team_id": team["id"], "video_id": str(acme.id)},
    ):
        made = client.post("/api/v1/assignment-rules", json=body, headers=curator)
        assert made.status_code == 201, made.get_json()

    created = scim("POST", "/Users", user_body("bjensen@example.com", externalId="00u1"))
    assert created.status_code == 201, created.get_json()
    assert created.mimetype == SCIM
    person = created.get_json()
    assert created.headers["Location"] == f"http://localhost/scim/v2/Users/{person['id']}"
    assert created.headers["ETag"] == person["meta"]["version"]
    user = session.get(User, uuid.UUID(person["id"]))
    assert user is not None and user.role is Role.REP and user.email == "bjensen@example.com"
    # Made as the token's admin made it: audited under their name.
    created_entry = session.scalars(
        select(AuditEntry).where(
            AuditEntry.action == "user.created", AuditEntry.object_id == user.id
        )
    ).one()
    assert created_entry.actor_id == admin.id
    assert (user.given_name, user.family_name, user.display_name) == (
        "Barbara",
        "Jensen",
        "Babs Jensen",
    )
    # Okta's and Entra's way of adding members.
    joined = scim(
        "PATCH",
        f"/Groups/{team['id']}",
        patch({"op": "add", "path": "members", "value": [{"value": person["id"]}]}),
    )
    assert joined.status_code == 200, joined.get_json()
    assert [m["value"] for m in joined.get_json()["members"]] == [person["id"]]
    membership = session.get(TeamMembership, (uuid.UUID(team["id"]), user.id))
    assert membership is not None
    drain(context)
    assigned = session.scalars(
        select(Assignment.video_id)
        .join(Assignee, Assignee.assignment_id == Assignment.id)
        .where(Assignee.user_id == user.id)
    ).all()
    assert sorted(assigned, key=str) == sorted([basics.id, acme.id], key=str)
    # The person signs in and sees them in their learning.
    user.password_hash = passwords.hash_of(factories.PASSWORD)
    session.flush()
    learning = client.get("/api/v1/me/learning", headers=bearer(client, user)).get_json()
    assert len(learning["items"]) == 2


def test_the_enterprise_extension_sets_manager_department_and_employee_number(
    session: Session, scim: Scim
) -> None:
    boss = scim("POST", "/Users", user_body("boss@example.com")).get_json()
    body = user_body("ana@example.com")
    body[ENTERPRISE] = {
        "employeeNumber": "E-1042",
        "department": "Field Sales",
        "manager": {"value": boss["id"]},
    }
    created = scim("POST", "/Users", body)
    assert created.status_code == 201, created.get_json()
    ana = created.get_json()
    user = session.get(User, uuid.UUID(ana["id"]))
    assert user is not None
    assert (str(user.manager_id), user.department, user.employee_number) == (
        boss["id"],
        "Field Sales",
        "E-1042",
    )
    extension = scim("GET", f"/Users/{ana['id']}").get_json()[ENTERPRISE]
    assert extension["manager"]["value"] == boss["id"]
    assert extension["manager"]["$ref"] == f"http://localhost/scim/v2/Users/{boss['id']}"
    # Entra's way: the attribute's full path.
    moved = scim(
        "PATCH",
        f"/Users/{ana['id']}",
        patch({"op": "Replace", "path": f"{ENTERPRISE}:department", "value": "Inside Sales"}),
    )
    assert moved.status_code == 200, moved.get_json()
    session.refresh(user)
    assert user.department == "Inside Sales"
    # A reporting line may not become a circle, nor name someone unknown.
    circle = scim(
        "PATCH",
        f"/Users/{boss['id']}",
        patch({"op": "add", "path": f"{ENTERPRISE}:manager", "value": {"value": ana["id"]}}),
    )
    assert circle.status_code == 400 and circle.get_json()["scimType"] == "invalidValue"
    assert "circle" in circle.get_json()["detail"]
    unknown = scim(
        "PATCH",
        f"/Users/{ana['id']}",
        patch(
            {
                "op": "replace",
                "path": f"{ENTERPRISE}:manager",
                "value": {"value": str(uuid.uuid4())},
            }
        ),
    )
    assert unknown.status_code == 400
    removed = scim(
        "PATCH", f"/Users/{ana['id']}", patch({"op": "remove", "path": f"{ENTERPRISE}:manager"})
    )
    assert removed.status_code == 200
    session.refresh(user)
    assert user.manager_id is None and user.department == "Inside Sales"


@pytest.mark.parametrize(
    "operation",
    [
        pytest.param({"op": "replace", "value": {"active": False}}, id="okta"),
        pytest.param({"op": "Replace", "path": "active", "value": False}, id="entra"),
    ],
)
def test_deactivating_ends_sessions_and_forgets_phones_and_keeps_content(
    client: FlaskClient, session: Session, scim: Scim, rep: Any, operation: dict[str, Any]
) -> None:
    video = _video(session, rep, "How I handled pricing")
    factories.DeviceFactory(user=rep)
    rep_headers = bearer(client, rep)
    listed = scim("GET", f'/Users?filter=userName eq "{rep.email}"').get_json()
    assert listed["totalResults"] == 1  # made in the product: its userName is the email
    person = listed["Resources"][0]
    assert person["id"] == str(rep.id) and person["active"] is True

    changed = scim("PATCH", f"/Users/{rep.id}", patch(operation))
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["active"] is False
    session.refresh(rep)
    assert rep.is_active is False
    assert client.get("/api/v1/me", headers=rep_headers).status_code == 401
    assert (
        session.scalars(
            select(AuthSession).where(
                AuthSession.user_id == rep.id, AuthSession.revoked_at.is_(None)
            )
        ).all()
        == []
    )
    assert session.scalars(select(Device).where(Device.user_id == rep.id)).all() == []
    assert session.get(Video, video.id) is not None
    # Reactivated, they sign in again.
    back = scim("PATCH", f"/Users/{rep.id}", patch({"op": "replace", "value": {"active": True}}))
    assert back.status_code == 200
    assert client.get("/api/v1/me", headers=bearer(client, rep)).status_code == 200


def test_deleting_a_person_deactivates_them_and_creating_them_again_brings_them_back(
    client: FlaskClient, session: Session, scim: Scim
) -> None:
    created = scim("POST", "/Users", user_body("leaver@example.com", externalId="x-9")).get_json()
    user = session.get(User, uuid.UUID(created["id"]))
    assert user is not None
    user.password_hash = passwords.hash_of(factories.PASSWORD)
    session.flush()
    headers = bearer(client, user)
    video = _video(session, user, "My best call")

    assert scim("DELETE", f"/Users/{created['id']}").status_code == 204
    assert scim("GET", f"/Users/{created['id']}").status_code == 404
    assert scim("GET", '/Users?filter=externalId eq "x-9"').get_json()["totalResults"] == 0
    session.refresh(user)
    assert user.is_active is False and user.deprovisioned_at is not None
    assert user.deleted_at is None and session.get(Video, video.id) is not None
    assert client.get("/api/v1/me", headers=headers).status_code == 401

    again = scim("POST", "/Users", user_body("leaver@example.com", externalId="x-10"))
    assert again.status_code == 201, again.get_json()
    assert again.get_json()["id"] == created["id"] and again.get_json()["active"] is True
    session.refresh(user)
    assert user.is_active and user.deprovisioned_at is None and user.external_id == "x-10"


def test_groups_are_teams_whose_members_are_patched(session: Session, scim: Scim, rep: Any) -> None:
    ana = scim("POST", "/Users", user_body("ana@example.com")).get_json()
    ben = scim("POST", "/Users", user_body("ben@example.com")).get_json()
    made = scim(
        "POST",
        "/Groups",
        {
            "schemas": [GROUP],
            "displayName": "Sales",
            "externalId": "g-1",
            "members": [{"value": ana["id"]}, {"value": ben["id"]}],
        },
    )
    assert made.status_code == 201, made.get_json()
    group = made.get_json()
    team = session.get(Team, uuid.UUID(group["id"]))
    assert team is not None and team.name == "Sales" and team.external_id == "g-1"

    def members() -> set[str]:
        rows = session.scalars(
            select(TeamMembership.user_id).where(TeamMembership.team_id == team.id)
        )
        return {str(user_id) for user_id in rows}

    assert members() == {ana["id"], ben["id"]}
    # Okta: a path filter; Entra: the members to remove named in `value`.
    okta = scim(
        "PATCH",
        f"/Groups/{group['id']}",
        patch({"op": "remove", "path": f'members[value eq "{ana["id"]}"]'}),
    )
    assert okta.status_code == 200, okta.get_json()
    assert members() == {ben["id"]}
    entra = scim(
        "PATCH",
        f"/Groups/{group['id']}",
        patch(
            {"op": "Add", "path": "members", "value": [{"value": str(rep.id)}]},
            {"op": "Remove", "path": "members", "value": [{"value": ben["id"]}]},
        ),
    )
    assert entra.status_code == 200, entra.get_json()
    assert members() == {str(rep.id)}
    renamed = scim(
        "PATCH",
        f"/Groups/{group['id']}",
        patch({"op": "replace", "value": {"id": group["id"], "displayName": "Sales EMEA"}}),
    )
    assert renamed.status_code == 200, renamed.get_json()
    session.refresh(team)
    assert team.name == "Sales EMEA"
    listed = scim("GET", "/Groups?excludedAttributes=members").get_json()
    assert listed["Resources"][0]["displayName"] == "Sales EMEA"
    assert "members" not in listed["Resources"][0]
    found = scim("GET", f'/Groups?filter=members[value eq "{rep.id}"]').get_json()
    assert [g["id"] for g in found["Resources"]] == [group["id"]]
    # Teams hold people only, and only existing ones.
    nested = scim(
        "PATCH",
        f"/Groups/{group['id']}",
        patch({"op": "add", "path": "members", "value": [{"value": str(uuid.uuid4())}]}),
    )
    assert nested.status_code == 400 and nested.get_json()["scimType"] == "invalidValue"
    # Deleting the team leaves its people as they were.
    assert scim("DELETE", f"/Groups/{group['id']}").status_code == 204
    assert session.scalar(select(Team.id).where(Team.id == team.id)) is None
    assert scim("GET", f"/Groups/{group['id']}").status_code == 404
    assert scim("GET", f"/Users/{rep.id}").get_json()["active"] is True


# -- protocol -----------------------------------------------------------------------------------


def test_filters_run_in_the_database_and_page(scim: Scim, admin: Any) -> None:
    for n in range(5):
        body = user_body(f"Rep{n}@Example.com", externalId=f"ext-{n}", displayName=f"Rep {n}")
        body[ENTERPRISE] = {"department": "North" if n % 2 else "South"}
        assert scim("POST", "/Users", body).status_code == 201

    def found(expression: str, **params: Any) -> dict[str, Any]:
        query = "&".join(f"{k}={v}" for k, v in {"filter": expression, **params}.items())
        response = scim("GET", f"/Users?{query}")
        assert response.status_code == 200, response.get_json()
        body: dict[str, Any] = response.get_json()
        return body

    def names(body: dict[str, Any]) -> list[str]:
        return sorted(item["userName"] for item in body["Resources"])

    assert names(found('userName eq "rep1@example.com"')) == ["Rep1@Example.com"]
    assert names(found('emails.value co "p3@"')) == ["Rep3@Example.com"]
    assert names(found('emails[type eq "work" and value sw "rep4"]')) == ["Rep4@Example.com"]
    assert found('displayName sw "Rep "')["totalResults"] == 5
    assert names(found('externalId eq "ext-2"')) == ["Rep2@Example.com"]
    assert found('externalId eq "EXT-2"')["totalResults"] == 0  # caseExact
    assert names(found(f'{ENTERPRISE}:department eq "north" and displayName co "3"')) == [
        "Rep3@Example.com"
    ]
    assert found('not (userName sw "rep") and active eq true')["totalResults"] == 1  # the admin
    # Pages by index: totalResults counts every match.
    page = found('userName sw "rep"', startIndex=2, count=2)
    assert page["totalResults"] == 5 and page["startIndex"] == 2
    assert page["itemsPerPage"] == 2 and len(page["Resources"]) == 2
    everyone = [item["id"] for item in found('userName sw "rep"')["Resources"]]
    assert [item["id"] for item in page["Resources"]] == everyone[1:3]
    bad = scim("GET", "/Users?filter=userName eq")
    assert bad.status_code == 400 and bad.get_json()["scimType"] == "invalidFilter"
    unknown = scim("GET", '/Users?filter=nickName eq "x"')
    assert unknown.status_code == 400 and unknown.get_json()["scimType"] == "invalidFilter"
    # At the root, Users then Groups; a Group's attribute is absent on Users.
    scim("POST", "/Groups", {"schemas": [GROUP], "displayName": "Rep squad"})
    both = scim("GET", '/?filter=displayName sw "rep"').get_json()
    assert both["totalResults"] == 6
    assert [item["displayName"] for item in both["Resources"]][-1] == "Rep squad"
    members = scim("GET", "/?filter=members pr").get_json()
    assert members["totalResults"] == 0


def test_etags_make_changes_conditional(scim: Scim) -> None:
    created = scim("POST", "/Users", user_body("etag@example.com"))
    person = created.get_json()
    version = created.headers["ETag"]
    changed = scim(
        "PATCH",
        f"/Users/{person['id']}",
        patch({"op": "replace", "path": "displayName", "value": "B. Jensen"}),
        headers={"If-Match": version},
    )
    assert changed.status_code == 200, changed.get_json()
    assert changed.headers["ETag"] != version
    stale = scim(
        "PUT",
        f"/Users/{person['id']}",
        user_body("etag@example.com", displayName="Someone else"),
        headers={"If-Match": version},
    )
    assert stale.status_code == 412
    assert scim("GET", f"/Users/{person['id']}").get_json()["displayName"] == "B. Jensen"
    unchanged = scim(
        "GET", f"/Users/{person['id']}", headers={"If-None-Match": changed.headers["ETag"]}
    )
    assert unchanged.status_code == 304


def test_inputs_have_limits(scim: Scim, client: FlaskClient) -> None:
    too_long = scim("POST", "/Users", user_body("x" * 250 + "@example.com"))
    assert too_long.status_code == 400
    name = user_body("long@example.com", displayName="y" * 121)
    assert scim("POST", "/Users", name).status_code == 400
    huge = scim("GET", "/Users?filter=" + 'userName eq "a" or ' * 200 + 'userName eq "b"')
    assert huge.status_code == 400
    big = {"schemas": [GROUP], "displayName": "Big", "members": [{"value": "x" * 60}] * 20_000}
    assert scim("POST", "/Groups", big).status_code == 413
    capped = scim("GET", "/Users?count=10000").get_json()
    assert capped["itemsPerPage"] <= 200
    taken = scim("POST", "/Users", user_body("dup@example.com"))
    assert taken.status_code == 201
    again = scim("POST", "/Users", user_body("DUP@example.com"))
    assert again.status_code == 409 and again.get_json()["scimType"] == "uniqueness"


def test_entra_ids_forms_of_patch_are_understood(scim: Scim, session: Session) -> None:
    """Entra ID writes the email through a value filter and sends booleans as strings."""
    person = scim("POST", "/Users", user_body("old@example.com")).get_json()
    changed = scim(
        "PATCH",
        f"/Users/{person['id']}",
        patch(
            {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "new@example.com"},
            {"op": "Replace", "path": "active", "value": "False"},
        ),
    )
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["emails"] == [{"value": "new@example.com", "type": "work"}]
    user = session.get(User, uuid.UUID(person["id"]))
    assert user is not None
    session.refresh(user)
    assert (user.email, user.is_active) == ("new@example.com", False)
    # Another account's address, or a team name already used, is a uniqueness conflict.
    other = scim("POST", "/Users", user_body("other@example.com")).get_json()
    taken = scim(
        "PATCH",
        f"/Users/{other['id']}",
        patch({"op": "replace", "path": "emails", "value": [{"value": "new@example.com"}]}),
    )
    assert taken.status_code == 409 and taken.get_json()["scimType"] == "uniqueness"
    assert scim("POST", "/Groups", {"schemas": [GROUP], "displayName": "T"}).status_code == 201
    twin = scim("POST", "/Groups", {"schemas": [GROUP], "displayName": "T"})
    assert twin.status_code == 409 and twin.get_json()["scimType"] == "uniqueness"


def test_a_page_costs_the_same_queries_whatever_its_size(scim: Scim, count_queries: Any) -> None:
    """No query per person or per team: a page of 3 and a page of 12 cost the same."""
    people = [
        scim("POST", "/Users", user_body(f"p{n}@example.com")).get_json()["id"] for n in range(12)
    ]
    for n in range(12):
        members = [{"value": person} for person in people[: n + 1]]
        body = {"schemas": [GROUP], "displayName": f"Team {n}", "members": members}
        assert scim("POST", "/Groups", body).status_code == 201

    def cost(path: str) -> int:
        before = count_queries.count
        assert scim("GET", path).status_code == 200
        return int(count_queries.count - before)

    assert cost("/Users?count=3") == cost("/Users?count=12")
    assert cost("/Groups?count=3") == cost("/Groups?count=12")
