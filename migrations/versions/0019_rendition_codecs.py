"""rendition codecs: RFC 6381 codec string and video range of each rendition

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable columns without defaults: added without rewriting the table.
    op.add_column('renditions', sa.Column('codec', sa.String(length=80), nullable=True))
    op.add_column('renditions', sa.Column('video_range', sa.String(length=8), nullable=True))


def downgrade() -> None:
    op.drop_column('renditions', 'video_range')
    op.drop_column('renditions', 'codec')
