"""uploads: deferred length, first bytes, capability

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A tus upload may start before its length is known (Upload-Defer-Length).
    op.alter_column('uploads', 'length', existing_type=sa.BigInteger(), nullable=True)
    op.drop_constraint(op.f('ck_uploads_offset_within_length'), 'uploads', type_='check')
    op.create_check_constraint(
        op.f('ck_uploads_offset_within_length'),
        'uploads',
        '"offset" >= 0 AND (length IS NULL OR "offset" <= length)',
    )
    # Nullable columns without defaults: added without rewriting the table.
    op.add_column('uploads', sa.Column('head', sa.LargeBinary(), nullable=True))
    op.add_column('uploads', sa.Column('capability_digest', sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column('uploads', 'capability_digest')
    op.drop_column('uploads', 'head')
    op.execute('DELETE FROM uploads WHERE length IS NULL')
    op.drop_constraint(op.f('ck_uploads_offset_within_length'), 'uploads', type_='check')
    op.create_check_constraint(
        op.f('ck_uploads_offset_within_length'), 'uploads', '"offset" BETWEEN 0 AND length'
    )
    op.alter_column('uploads', 'length', existing_type=sa.BigInteger(), nullable=False)
