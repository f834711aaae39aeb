"""notification args: the values of a push's localized wording

Revision ID: 0016
Revises: 0013
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0016'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: PostgreSQL adds the column without rewriting the table.
    op.add_column(
        'notifications',
        sa.Column(
            'args', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_column('notifications', 'args')
