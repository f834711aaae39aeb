"""share audiences until recipient rows

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Recipient rows give access once they exist; the blocks only bridge the moments before.
    op.execute(
        "DELETE FROM share_audiences AS a "
        "WHERE EXISTS (SELECT 1 FROM share_recipients AS r WHERE r.share_id = a.share_id)"
    )
    op.drop_index('ix_share_audiences_user_ids', table_name='share_audiences', postgresql_using='gin')
    op.create_index('ix_share_audiences_org_id', 'share_audiences', ['org_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_share_audiences_org_id', table_name='share_audiences')
    op.create_index('ix_share_audiences_user_ids', 'share_audiences', ['user_ids'], unique=False, postgresql_using='gin', postgresql_with={'fastupdate': 'off'})
    # Every share's access comes from its blocks again: rebuild them from the recipient rows.
    op.execute(
        "INSERT INTO share_audiences (org_id, share_id, block, video_id, user_ids) "
        "SELECT org_id, share_id, (n - 1) / 1000, video_id, array_agg(user_id ORDER BY user_id) "
        "FROM (SELECT org_id, share_id, video_id, user_id, "
        "row_number() OVER (PARTITION BY share_id ORDER BY user_id) AS n "
        "FROM share_recipients) AS numbered "
        "GROUP BY org_id, share_id, video_id, (n - 1) / 1000 "
        "ON CONFLICT DO NOTHING"
    )
