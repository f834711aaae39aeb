"""videos missing outputs

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: the column is added without rewriting the table.
    op.add_column(
        'videos',
        sa.Column('missing', postgresql.ARRAY(sa.String(length=32)), server_default='{}', nullable=False),
    )


def downgrade() -> None:
    op.drop_column('videos', 'missing')
