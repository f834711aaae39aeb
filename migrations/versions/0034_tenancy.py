"""many organisations on one deployment: storage quotas and retention policies

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0034'
down_revision: str | None = '0033'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'organisation_policies',
        sa.Column('org_id', sa.Uuid(), nullable=False),
        sa.Column('storage_quota_bytes', sa.BigInteger(), nullable=True),
        sa.Column('video_retention_days', sa.Integer(), nullable=True),
        sa.Column('view_retention_days', sa.Integer(), nullable=True),
        sa.Column('deleted_retention_days', sa.Integer(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'),
                  nullable=False),
        sa.CheckConstraint(
            'storage_quota_bytes >= 0',
            name=op.f('ck_organisation_policies_storage_quota_bytes'),
        ),
        sa.CheckConstraint(
            'video_retention_days >= 1',
            name=op.f('ck_organisation_policies_video_retention_days'),
        ),
        sa.CheckConstraint(
            'view_retention_days >= 1',
            name=op.f('ck_organisation_policies_view_retention_days'),
        ),
        sa.CheckConstraint(
            'deleted_retention_days >= 0',
            name=op.f('ck_organisation_policies_deleted_retention_days'),
        ),
        sa.ForeignKeyConstraint(
            ['org_id'], ['organisations.id'],
            name=op.f('fk_organisation_policies_org_id_organisations'), ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('org_id', name=op.f('pk_organisation_policies')),
    )
    # What the retention job and the storage overview read per organisation. Built without
    # blocking the players' reports on a table of millions of rows (outside the transaction).
    with op.get_context().autocommit_block():
        op.create_index(
            'ix_views_org_id_started_at',
            'views',
            ['org_id', 'started_at'],
            postgresql_concurrently=True,
            if_not_exists=True,
        )
    # Fair shares of the media workers: an organisation's jobs past its share wait, held.
    op.drop_constraint(op.f('ck_outbox_jobs_outbox_status'), 'outbox_jobs', type_='check')
    op.create_check_constraint(
        op.f('ck_outbox_jobs_outbox_status'),
        'outbox_jobs',
        "status IN ('pending', 'running', 'done', 'failed', 'held')",
    )
    op.create_index(
        'ix_outbox_jobs_fair_share',
        'outbox_jobs',
        ['org_id', 'task', 'created_at'],
        postgresql_where=sa.text("status IN ('held', 'pending', 'running')"),
    )


def downgrade() -> None:
    op.drop_index('ix_outbox_jobs_fair_share', table_name='outbox_jobs')
    op.execute("UPDATE outbox_jobs SET status = 'pending' WHERE status = 'held'")
    op.drop_constraint(op.f('ck_outbox_jobs_outbox_status'), 'outbox_jobs', type_='check')
    op.create_check_constraint(
        op.f('ck_outbox_jobs_outbox_status'),
        'outbox_jobs',
        "status IN ('pending', 'running', 'done', 'failed')",
    )
    op.drop_index('ix_views_org_id_started_at', table_name='views')
    op.drop_table('organisation_policies')
