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
    # Blocks of earlier shares are left to the hourly housekeeping, so processes still running
    # the previous release (which read only the blocks) keep their access checks right while
    # they are replaced. The new index is built before the old one is dropped, so the table is
    # locked against reads only for the drop.
    op.create_index('ix_share_audiences_org_id', 'share_audiences', ['org_id'], unique=False)
    op.drop_index('ix_share_audiences_user_ids', table_name='share_audiences', postgresql_using='gin')


def downgrade() -> None:
    op.create_index('ix_share_audiences_user_ids', 'share_audiences', ['user_ids'], unique=False, postgresql_using='gin', postgresql_with={'fastupdate': 'off'})
    op.drop_index('ix_share_audiences_org_id', table_name='share_audiences')
    # Access comes from the blocks alone again: rebuild those that went from the recipient rows.
    op.execute(
        "INSERT INTO share_audiences (org_id, share_id, block, video_id, user_ids) "
        "SELECT org_id, share_id, (n - 1) / 1000, video_id, array_agg(user_id ORDER BY user_id) "
        "FROM (SELECT r.org_id, r.share_id, r.video_id, r.user_id, "
        "row_number() OVER (PARTITION BY r.share_id ORDER BY r.user_id) AS n "
        "FROM share_recipients AS r WHERE NOT EXISTS "
        "(SELECT 1 FROM share_audiences AS a WHERE a.share_id = r.share_id)) AS numbered "
        "GROUP BY org_id, share_id, video_id, (n - 1) / 1000"
    )
