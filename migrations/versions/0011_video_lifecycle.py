"""video lifecycle: deleted, archived, recalled

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns without defaults: added without rewriting the tables.
    op.add_column('videos', sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('videos', sa.Column('purge_after', sa.DateTime(timezone=True), nullable=True))
    op.add_column('videos', sa.Column('archived_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('shares', sa.Column('recalled_at', sa.DateTime(timezone=True), nullable=True))
    # The purge worker's scan: only deleted videos are in the index.
    op.create_index(
        'ix_videos_purge_after', 'videos', ['purge_after'],
        postgresql_where=sa.text('deleted_at IS NOT NULL'),
    )


def downgrade() -> None:
    op.drop_index('ix_videos_purge_after', table_name='videos')
    op.drop_column('shares', 'recalled_at')
    op.drop_column('videos', 'archived_at')
    op.drop_column('videos', 'purge_after')
    op.drop_column('videos', 'deleted_at')
