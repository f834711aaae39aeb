"""Migration 0023 moves the videos' free-form deal attributes into each organisation's
catalogue without losing a value."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, pool, text

from migrations.config import upgrade
from tests.conftest import scratch_database


@pytest.fixture
def database(server_database_url: str) -> Iterator[str]:
    with scratch_database(server_database_url, "fieldcast_deals_mig") as url:
        yield url


def test_free_form_attributes_join_the_catalogue_and_nothing_is_lost(database: str) -> None:
    upgrade(database, "0022")
    engine = create_engine(database, poolclass=pool.NullPool)
    org, user = uuid.uuid4(), uuid.uuid4()
    given = {
        "clip-1": {
            "stage": "Negotiation",
            "industry": "Retail",
            "deal size": "$50,000",
            "competitor": "Acme",
        },
        "clip-2": {"stage": "closed won", "deal size": "huge", "region": "EMEA"},
        "clip-3": {"competitors": "Globex", "use case": "Onboarding"},
    }
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO organisations (id, name, slug) VALUES (:id, 'Acme', 'acme')"),
            {"id": org},
        )
        conn.execute(
            text(
                "INSERT INTO users (id, org_id, email, display_name, handle, role)"
                " VALUES (:id, :org, 'ana@acme.example', 'Ana', 'ana', 'rep')"
            ),
            {"id": user, "org": org},
        )
        for title, attributes in given.items():
            conn.execute(
                text(
                    "INSERT INTO videos (id, org_id, owner_id, title, status, deal_attributes)"
                    " VALUES (:id, :org, :owner, :title, 'ready', CAST(:attrs AS jsonb))"
                ),
                {
                    "id": uuid.uuid4(),
                    "org": org,
                    "owner": user,
                    "title": title,
                    "attrs": json.dumps(attributes),
                },
            )
    upgrade(database)
    with engine.connect() as conn:
        stored: dict[str, Any] = dict(
            conn.execute(text("SELECT title, deal_attributes FROM videos")).all()
        )
        catalogue = {
            row.name: row
            for row in conn.execute(
                text(
                    "SELECT name, label, type, choices, choices_open FROM attribute_definitions"
                    " WHERE org_id = :org ORDER BY position"
                ),
                {"org": org},
            )
        }
    engine.dispose()
    assert stored["clip-1"] == {
        "stage": "negotiation",
        "industry": "retail",
        "deal_size": 50000,
        "competitor": "Acme",
    }
    assert stored["clip-2"] == {
        "stage": "closed won",
        "deal_size_text": "huge",
        "region": "EMEA",
    }
    assert stored["clip-3"] == {"competitors": ["Globex"], "use_case": "Onboarding"}
    assert list(catalogue)[:7] == [
        "stage",
        "industry",
        "region",
        "competitors",
        "products",
        "deal_size",
        "outcome",
    ]
    assert catalogue["stage"].choices[-1] == "closed won"
    assert catalogue["region"].choices[-1] == "EMEA"
    assert "Globex" in catalogue["competitors"].choices and catalogue["competitors"].choices_open
    for name, label in [
        ("competitor", "competitor"),
        ("use_case", "use case"),
        ("deal_size_text", "deal size (as written)"),
    ]:
        assert catalogue[name].type == "text" and catalogue[name].label == label
