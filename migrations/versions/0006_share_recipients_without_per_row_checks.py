"""share recipients without per-row checks

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index(op.f('ix_share_recipients_org_id'), table_name='share_recipients')
    op.drop_constraint(op.f('fk_share_recipients_notification_id_notifications'), 'share_recipients', type_='foreignkey')
    op.drop_constraint(op.f('fk_share_recipients_org_id_organisations'), 'share_recipients', type_='foreignkey')
    op.drop_constraint(op.f('fk_share_recipients_user_id_users'), 'share_recipients', type_='foreignkey')


def downgrade() -> None:
    op.create_foreign_key(op.f('fk_share_recipients_user_id_users'), 'share_recipients', 'users', ['org_id', 'user_id'], ['org_id', 'id'], ondelete='CASCADE')
    op.create_foreign_key(op.f('fk_share_recipients_org_id_organisations'), 'share_recipients', 'organisations', ['org_id'], ['id'], ondelete='CASCADE')
    op.create_foreign_key(op.f('fk_share_recipients_notification_id_notifications'), 'share_recipients', 'notifications', ['notification_id'], ['id'], ondelete='SET NULL')
    op.create_index(op.f('ix_share_recipients_org_id'), 'share_recipients', ['org_id'], unique=False)
