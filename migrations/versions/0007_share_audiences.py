"""share audiences

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('share_audiences',
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('share_id', sa.Uuid(), nullable=False),
    sa.Column('block', sa.Integer(), nullable=False),
    sa.Column('video_id', sa.Uuid(), nullable=False),
    sa.Column('user_ids', sa.ARRAY(sa.Uuid()), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'share_id'], ['shares.org_id', 'shares.id'], name='fk_share_audiences_share_id_shares', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('share_id', 'block', name=op.f('pk_share_audiences'))
    )
    op.create_index('ix_share_audiences_user_ids', 'share_audiences', ['user_ids'], unique=False, postgresql_using='gin')
    # Shares made before keep their recipients' access: their blocks come from their rows.
    op.execute(
        "INSERT INTO share_audiences (org_id, share_id, block, video_id, user_ids) "
        "SELECT org_id, share_id, (n - 1) / 1000, video_id, array_agg(user_id ORDER BY user_id) "
        "FROM (SELECT org_id, share_id, video_id, user_id, "
        "row_number() OVER (PARTITION BY share_id ORDER BY user_id) AS n "
        "FROM share_recipients) AS numbered "
        "GROUP BY org_id, share_id, video_id, (n - 1) / 1000"
    )


def downgrade() -> None:
    op.drop_index('ix_share_audiences_user_ids', table_name='share_audiences', postgresql_using='gin')
    op.drop_table('share_audiences')
