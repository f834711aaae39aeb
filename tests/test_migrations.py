"""The models and the Alembic migrations describe the same schema, both ways."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, inspect, pool

from fieldcast.schema_check import schema_differences
from migrations.config import downgrade, upgrade
from tests.conftest import scratch_database


def test_models_match_migrations(database_url: str) -> None:
    assert schema_differences(database_url) == []


@pytest.fixture
def empty_database(server_database_url: str) -> Iterator[str]:
    with scratch_database(server_database_url, "fieldcast_mig") as url:
        yield url


def test_migrations_upgrade_downgrade_and_upgrade_again(empty_database: str) -> None:
    upgrade(empty_database)
    engine = create_engine(empty_database, poolclass=pool.NullPool)
    assert "users" in inspect(engine).get_table_names()
    downgrade(empty_database, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(empty_database)
    assert schema_differences(empty_database) == []
    engine.dispose()
