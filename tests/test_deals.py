"""Deals and the attribute catalogue, as a CRM integration and the apps use them: the default
catalogue, lenient and strict catalogues, one spelling of every value, deals upserted one at a
time and thousands at once, "my deals", who reads a deal, and videos and comments about a
deal keeping its attributes as they were."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from fieldcast.accounts.services import create_organisation
from fieldcast.deals import catalogue
from fieldcast.deals.catalogue import Catalogue, band_label
from fieldcast.errors import InvalidInput
from fieldcast.models.accounts import ApiToken, Organisation
from fieldcast.models.deals import AttributeDefinition, Deal
from fieldcast.models.videos import Video
from fieldcast.policy import Principal
from fieldcast.policy import deals as deal_policy
from tests import factories

PROBLEM = "application/problem+json"


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_json()
    return response.get_json()


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_json()
    assert response.mimetype == PROBLEM
    body: dict[str, Any] = response.get_json()
    assert body["code"] == code, body
    return body


def _put_deal(client: FlaskClient, headers: dict[str, str], external_id: str, **fields: Any) -> Any:
    return client.put(
        f"/api/v1/deals/by-source/salesforce/{external_id}", json=fields, headers=headers
    )


def _token(session: Session, user: Any) -> dict[str, str]:
    secret = "fct_" + uuid.uuid4().hex
    session.add(
        ApiToken(
            org_id=user.org_id,
            name="CRM sync",
            prefix=secret[:10],
            token_hash=hashlib.sha256(secret.encode()).hexdigest(),
            user_id=user.id,
        )
    )
    session.flush()
    return {"Authorization": f"Bearer {secret}"}


# -- the catalogue --------------------------------------------------------------------------


def test_every_new_organisation_starts_with_the_default_catalogue(session: Session) -> None:
    made = create_organisation(
        session,
        name="Acme Field",
        slug=f"acme-{uuid.uuid4().hex[:8]}",
        admin_email=f"{uuid.uuid4().hex[:8]}@acme.example",
        admin_name="Ada",
        admin_handle=f"ada{uuid.uuid4().hex[:6]}",
        admin_password="a-long-enough-password",
    )
    names = [d.name for d in catalogue.definitions(session, made.organisation.id)]
    assert names == [
        "stage",
        "industry",
        "region",
        "competitors",
        "products",
        "deal_size",
        "outcome",
    ]
    assert made.organisation.catalogue_strict is False


def test_members_read_the_catalogue_and_admins_keep_it(
    client: FlaskClient, admin: Any, rep: Any, auth: Any
) -> None:
    read = _ok(client.get("/api/v1/attributes", headers=auth(rep)))
    assert read["strict"] is False
    stage = next(a for a in read["items"] if a["name"] == "stage")
    assert stage["type"] == "single_choice" and "negotiation" in stage["choices"]
    size = next(a for a in read["items"] if a["name"] == "deal_size")
    assert [b["label"] for b in size["bands"]] == ["<10k", "10k-50k", "50k-250k", "250k+"]

    body = {"label": "Use case", "type": "single_choice", "choices": ["Onboarding", "Renewal"]}
    _problem(
        client.put("/api/v1/attributes/use_case", json=body, headers=auth(rep)),
        403,
        "permission_denied",
    )
    made = _ok(client.put("/api/v1/attributes/use_case", json=body, headers=auth(admin)), 201)
    assert made["name"] == "use_case" and made["choices"] == ["Onboarding", "Renewal"]
    again = client.put(
        "/api/v1/attributes/use_case", json={**body, "label": "Use-case"}, headers=auth(admin)
    )
    assert _ok(again)["label"] == "Use-case"
    bad = client.put("/api/v1/attributes/Use-Case", json=body, headers=auth(admin))
    assert _problem(bad, 422, "validation_failed")["errors"]["name"]
    twice = {**body, "choices": ["A", "a"]}
    _problem(
        client.put("/api/v1/attributes/x", json=twice, headers=auth(admin)),
        422,
        "validation_failed",
    )

    assert client.delete("/api/v1/attributes/use_case", headers=auth(admin)).status_code == 204
    _problem(client.delete("/api/v1/attributes/use_case", headers=auth(admin)), 404, "not_found")


def test_values_are_stored_one_way(session: Session, org: Any) -> None:
    cat = Catalogue.load(session, org.id)
    cleaned = cat.normalise(
        {
            " Stage ": "NEGOTIATION",
            "competitors": ["Acme", "Globex", "acme"],
            "products": "Mobile app",
            "Deal size": "$1.2M",
            "industry": "Retail",
        }
    )
    assert cleaned == {
        "stage": "negotiation",
        "competitors": ["Acme", "Globex"],
        "products": ["Mobile app"],
        "deal_size": 1_200_000,
        "industry": "retail",
    }
    assert cat.normalise({"deal_size": "50,000"}) == {"deal_size": 50_000}
    assert cat.normalise({"deal_size": "48k"}) == {"deal_size": 48_000}
    with pytest.raises(InvalidInput) as refused:
        cat.normalise({"deal_size": "large"})
    assert refused.value.code == "attribute_type_mismatch"
    bands = cat.definitions["deal_size"].bands
    assert band_label(bands, 9_999) == "<10k"
    assert band_label(bands, 10_000) == "10k-50k"
    assert band_label(bands, "300k") == "250k+"
    assert band_label(bands, "large") is None


def test_a_lenient_catalogue_learns_names_and_values(session: Session, org: Any) -> None:
    cleaned = catalogue.normalise(
        session,
        org.id,
        {"Stage": "Closed won", "Renewal date": "2027-01-31", "use case": "Onboarding"},
    )
    assert cleaned == {
        "stage": "Closed won",
        "renewal_date": "2027-01-31",
        "use_case": "Onboarding",
    }
    found = {d.name: d for d in catalogue.definitions(session, org.id)}
    assert found["stage"].choices[-1] == "Closed won"
    assert found["renewal_date"].type == "text" and found["renewal_date"].label == "Renewal date"
    # The same value again is the catalogue's spelling, and joins nothing twice.
    assert catalogue.normalise(session, org.id, {"stage": "CLOSED WON"}) == {"stage": "Closed won"}
    session.expire_all()
    stage = session.scalars(
        select(AttributeDefinition).where(
            AttributeDefinition.org_id == org.id, AttributeDefinition.name == "stage"
        )
    ).one()
    assert stage.choices.count("Closed won") == 1


def test_a_strict_catalogue_refuses_what_it_lacks_with_clear_codes(
    client: FlaskClient, admin: Any, rep: Any, auth: Any
) -> None:
    switched = client.put("/api/v1/attributes", json={"strict": True}, headers=auth(admin))
    assert _ok(switched)["strict"] is True
    _problem(
        client.put("/api/v1/attributes", json={"strict": False}, headers=auth(rep)),
        403,
        "permission_denied",
    )

    def create(attributes: dict[str, Any]) -> Any:
        return client.post(
            "/api/v1/videos",
            json={"title": "Pricing", "deal_attributes": attributes},
            headers=auth(rep),
        )

    unknown = _problem(create({"favourite_colour": "blue"}), 422, "unknown_attribute")
    assert "favourite_colour" in unknown["errors"]["deal_attributes"]
    not_allowed = _problem(create({"stage": "closed won"}), 422, "attribute_value_not_allowed")
    assert "stage" in not_allowed["errors"]["deal_attributes"]
    _problem(create({"deal_size": "big"}), 422, "attribute_type_mismatch")
    # Open lists stay open, and known values are spelled the catalogue's way.
    made = _ok(create({"Stage": "Demo", "competitors": ["Initech"]}), 201)
    assert made["deal_attributes"] == {"stage": "demo", "competitors": ["Initech"]}


def test_the_video_list_filters_a_multiple_choice_by_one_of_its_values(
    client: FlaskClient, rep: Any, auth: Any
) -> None:
    body = {"title": "Battlecard", "deal_attributes": {"competitors": ["Globex", "Acme"]}}
    made = _ok(client.post("/api/v1/videos", json=body, headers=auth(rep)), 201)
    found = _ok(client.get("/api/v1/videos?deal=competitors:acme", headers=auth(rep)))
    assert [v["id"] for v in found["items"]] == [made["id"]]
    none = _ok(client.get("/api/v1/videos?deal=competitors:Initech", headers=auth(rep)))
    assert none["items"] == []


# -- deals ----------------------------------------------------------------------------------


def test_a_crm_upserts_a_deal_by_its_key(
    client: FlaskClient, session: Session, admin: Any, rep: Any, auth: Any
) -> None:
    fields = {
        "name": "Northwind renewal",
        "account": "Northwind",
        "owner_email": rep.email.upper(),
        "stage": "Negotiation",
        "amount": 48000,
        "currency": "eur",
        "close_date": "2027-03-31",
        "attributes": {"competitors": ["Acme"], "industry": "Retail"},
    }
    made = _ok(_put_deal(client, auth(admin), "006A1", **fields), 201)
    assert made["owner_id"] == str(rep.id) and made["currency"] == "EUR"
    assert made["stage"] == "negotiation" and made["outcome"] == "open"
    assert made["closed_at"] is None
    assert made["attributes"] == {
        "stage": "negotiation",
        "outcome": "open",
        "deal_size": 48000,
        "competitors": ["Acme"],
        "industry": "retail",
    }
    won = _ok(_put_deal(client, auth(admin), "006A1", **{**fields, "outcome": "won"}))
    assert won["id"] == made["id"] and won["outcome"] == "won" and won["closed_at"]
    assert won["attributes"]["outcome"] == "won"

    unknown = _put_deal(client, auth(admin), "006A2", **{**fields, "owner_email": "x@nowhere.io"})
    _problem(unknown, 422, "deal_owner_unknown")
    _problem(_put_deal(client, auth(rep), "006A3", **fields), 403, "permission_denied")
    # An integration's token writes deals whoever it acts as.
    assert _put_deal(client, _token(session, rep), "006A4", **fields).status_code == 201

    assert (
        client.delete("/api/v1/deals/by-source/salesforce/006A1", headers=auth(admin)).status_code
        == 204
    )
    _problem(client.get(f"/api/v1/deals/{made['id']}", headers=auth(admin)), 404, "not_found")


def test_a_bulk_sync_writes_thousands_and_reports_the_items_at_fault(
    client: FlaskClient, session: Session, org: Any, admin: Any, rep: Any, auth: Any
) -> None:
    team = factories.TeamFactory(org=org, external_id="T-WEST")
    items: list[dict[str, Any]] = [
        {
            "source": "hubspot",
            "external_id": f"D-{i}",
            "name": f"Deal {i}",
            "owner_email": rep.email,
            "team_external_id": "T-WEST",
            "stage": ["discovery", "demo", "proposal"][i % 3],
            "amount": 1000 * i,
            "currency": "USD",
            "attributes": {"industry": "software", "competitors": [f"Rival {i % 7}"]},
        }
        for i in range(3000)
    ]
    items[5]["owner_email"] = "ghost@nowhere.io"
    items[6]["amount"] = -1
    items[7] = {**items[8]}  # the same deal twice: the first entry is written
    items[9]["amount"] = "9000"  # JSON says a string: not read as a number
    response = client.post("/api/v1/deals/bulk", json={"items": items}, headers=auth(admin))
    result = _ok(response)
    faults = {e["index"]: e["code"] for e in result["errors"]}
    assert faults == {
        5: "deal_owner_unknown",
        6: "validation_failed",
        8: "validation_failed",
        9: "validation_failed",
    }
    assert next(e for e in result["errors"] if e["index"] == 9)["errors"] == {
        "amount": ["Not a number."]
    }
    assert len(result["synced"]) == 2996 and all(s["created"] for s in result["synced"])
    stored = session.scalars(select(Deal).where(Deal.org_id == org.id)).all()
    assert len(stored) == 2996 and {d.team_id for d in stored} == {team.id}

    # Again, changed: every deal is updated in place, none is made.
    for item in items:
        item["outcome"] = "lost"
    again = _ok(client.post("/api/v1/deals/bulk", json={"items": items}, headers=auth(admin)))
    assert not any(s["created"] for s in again["synced"])
    session.expire_all()
    assert {d.outcome for d in session.scalars(select(Deal).where(Deal.org_id == org.id))} == {
        "lost"
    }
    # An item that is not even an object refuses the whole body.
    _problem(
        client.post("/api/v1/deals/bulk", json={"items": [items[0], 7]}, headers=auth(admin)),
        422,
        "validation_failed",
    )
    _problem(
        client.post("/api/v1/deals/bulk", json={"items": items[:1]}, headers=auth(rep)),
        403,
        "permission_denied",
    )


def test_my_deals_are_my_open_ones(
    client: FlaskClient, admin: Any, rep: Any, auth: Any, org: Any
) -> None:
    peer = factories.UserFactory(org=org)
    for key, owner, outcome in [
        ("A", rep, "open"),
        ("B", rep, "won"),
        ("C", peer, "open"),
        ("D", rep, "open"),
    ]:
        body = {"name": f"Deal {key}", "owner_id": str(owner.id), "outcome": outcome}
        _ok(_put_deal(client, auth(admin), key, **body), 201)
    mine = _ok(client.get("/api/v1/me/deals?limit=1", headers=auth(rep)))
    assert [d["external_id"] for d in mine["items"]] == ["D"]
    rest = _ok(client.get(f"/api/v1/me/deals?cursor={mine['next_cursor']}", headers=auth(rep)))
    assert [d["external_id"] for d in rest["items"]] == ["A"] and rest["next_cursor"] is None
    listed = _ok(client.get("/api/v1/deals?outcome=won", headers=auth(rep)))
    assert [d["external_id"] for d in listed["items"]] == ["B"]


def test_a_deal_is_read_by_its_owner_team_managers_enablement_and_admins(
    client: FlaskClient, session: Session, org: Any, other_org: Any, admin: Any, auth: Any
) -> None:
    boss = factories.UserFactory(org=org, manager=True)
    owner = factories.UserFactory(org=org, manager_id=boss.id)
    team = factories.TeamFactory(org=org)
    teammate, peer = factories.UserFactory(org=org), factories.UserFactory(org=org)
    factories.MembershipFactory(team=team, user=teammate)
    coach = factories.UserFactory(org=org, enablement=True)
    outsider = factories.UserFactory(org=other_org, admin=True)
    body = {"name": "Big one", "owner_id": str(owner.id), "team_id": str(team.id)}
    deal_id = _ok(_put_deal(client, auth(admin), "X1", **body), 201)["id"]
    for reader in (owner, boss, teammate, coach, admin):
        assert _ok(client.get(f"/api/v1/deals/{deal_id}", headers=auth(reader)))["id"] == deal_id
    for stranger in (peer, outsider):
        _problem(client.get(f"/api/v1/deals/{deal_id}", headers=auth(stranger)), 404, "not_found")
    # The SQL predicate and the check of one deal agree for everyone.
    deal = session.get(Deal, uuid.UUID(deal_id))
    assert deal is not None
    for person in (owner, boss, teammate, coach, admin, peer, outsider):
        principal = Principal(user=person)
        seen = session.scalar(select(Deal.id).where(deal_policy.visible(principal)))
        assert (seen is not None) == deal_policy.can_see(session, principal, deal), person.role


def test_a_video_keeps_the_deal_as_it_was_and_search_can_read_it_now(
    client: FlaskClient, session: Session, admin: Any, rep: Any, auth: Any, org: Any
) -> None:
    fields = {
        "name": "Northwind",
        "owner_id": str(rep.id),
        "stage": "discovery",
        "amount": 9000,
        "currency": "EUR",
    }
    deal = _ok(_put_deal(client, auth(admin), "N1", **fields), 201)
    body = {
        "title": "Discovery call",
        "deal_id": deal["id"],
        "deal_attributes": {"competitors": ["Acme"], "deal_size": 12000},
    }
    video = _ok(client.post("/api/v1/videos", json=body, headers=auth(rep)), 201)
    assert video["deal"] == {
        "id": deal["id"],
        "name": "Northwind",
        "account": "",
        "stage": "discovery",
        "outcome": "open",
    }
    # Then: the deal's attributes when it was recorded, what was given for the video over them.
    assert video["deal_attributes"] == {
        "stage": "discovery",
        "outcome": "open",
        "deal_size": 12000,
        "competitors": ["Acme"],
    }
    _ok(_put_deal(client, auth(admin), "N1", **{**fields, "stage": "negotiation"}))
    read = _ok(client.get(f"/api/v1/videos/{video['id']}", headers=auth(rep)))
    assert read["deal_attributes"]["stage"] == "discovery"
    assert read["deal"]["stage"] == "negotiation"
    # Now: search joins the video's deal.
    now = session.execute(
        select(Video.deal_attributes["stage"].astext, Deal.attributes["stage"].astext)
        .join(Deal, (Deal.org_id == Video.org_id) & (Deal.id == Video.deal_id))
        .where(Video.id == uuid.UUID(video["id"]))
    ).one()
    assert tuple(now) == ("discovery", "negotiation")

    # A deal the caller cannot see cannot be named.
    other = factories.UserFactory(org=org)
    hidden = _ok(_put_deal(client, auth(admin), "N2", name="Other", owner_id=str(other.id)), 201)
    refused = client.post(
        "/api/v1/videos", json={"title": "x", "deal_id": hidden["id"]}, headers=auth(rep)
    )
    _problem(refused, 404, "not_found")
    # Nor can a video be moved to it, or to a deal that does not exist; the video stays as it was.
    for missing in (hidden["id"], str(uuid.uuid4())):
        moved = client.patch(
            f"/api/v1/videos/{video['id']}",
            json={"deal_id": missing, "deal_attributes": {"industry": "retail"}},
            headers=auth(rep),
        )
        _problem(moved, 404, "not_found")
    kept = _ok(client.get(f"/api/v1/videos/{video['id']}", headers=auth(rep)))
    assert kept["deal_id"] == deal["id"] and "industry" not in kept["deal_attributes"]

    # A comment names a deal too; the CRM deleting the deal leaves the snapshot.
    comment = client.post(
        f"/api/v1/videos/{video['id']}/comments",
        json={"body": "Same as the Northwind call", "deal_id": deal["id"]},
        headers=auth(rep),
    )
    assert _ok(comment, 201)["deal"]["id"] == deal["id"]
    assert (
        client.delete("/api/v1/deals/by-source/salesforce/N1", headers=auth(admin)).status_code
        == 204
    )
    after = _ok(client.get(f"/api/v1/videos/{video['id']}", headers=auth(rep)))
    assert after["deal"] is None and after["deal_id"] is None
    assert after["deal_attributes"]["stage"] == "discovery"


def test_an_organisation_made_by_the_factory_has_the_catalogue_too(
    session: Session, org: Organisation
) -> None:
    count = len(catalogue.definitions(session, org.id))
    assert count == len(catalogue.DEFAULTS)
