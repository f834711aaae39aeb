from __future__ import annotations

from typing import Any

from tests import factories


def test_me_returns_the_user_with_teams_and_organisation(
    client: Any, org: Any, rep: Any, auth: Any
) -> None:
    team = factories.TeamFactory(org=org, name="Sales West")
    factories.MembershipFactory(team=team, user=rep, lead=True)
    response = client.get("/api/v1/me", headers=auth(rep))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["id"] == str(rep.id)
    assert body["handle"] == rep.handle
    assert body["role"] == "rep"
    assert body["organisation"]["slug"] == org.slug
    assert body["teams"] == [{"id": str(team.id), "name": "Sales West", "role": "lead"}]
