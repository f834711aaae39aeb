"""Alembic migrations. `fieldcast migrate` applies them; see `migrations.config`."""
