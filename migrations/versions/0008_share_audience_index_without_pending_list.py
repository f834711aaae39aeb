"""share audience index without pending list

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # With a pending list, the share that fills it merges everyone's entries in its request.
    op.execute("ALTER INDEX ix_share_audiences_user_ids SET (fastupdate = off)")


def downgrade() -> None:
    op.execute("ALTER INDEX ix_share_audiences_user_ids RESET (fastupdate)")
