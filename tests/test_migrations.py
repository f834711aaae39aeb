"""The models and the Alembic migrations describe the same schema, both ways."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, inspect, pool, text
from sqlalchemy.engine import make_url

from fieldcast.schema_check import schema_differences
from migrations.config import downgrade, upgrade


def test_models_match_migrations(database_url: str) -> None:
    assert schema_differences(database_url) == []


@pytest.fixture
def scratch_database(server_database_url: str) -> Iterator[str]:
    name = f"fieldcast_mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(
        server_database_url, isolation_level="AUTOCOMMIT", poolclass=pool.NullPool
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(server_database_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_migrations_upgrade_downgrade_and_upgrade_again(scratch_database: str) -> None:
    upgrade(scratch_database)
    engine = create_engine(scratch_database, poolclass=pool.NullPool)
    assert "users" in inspect(engine).get_table_names()
    downgrade(scratch_database, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(scratch_database)
    assert schema_differences(scratch_database) == []
    engine.dispose()
