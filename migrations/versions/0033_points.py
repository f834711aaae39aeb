"""points and badges: what people earn for building the library, per organisation

`point_awards` is the ledger: one row per (kind, subject, actor, person), so nothing is awarded
twice; `point_totals` keeps each person's points per week, month, quarter and all time, so a
board reads one row a person; `badge_awards` the badges earned; `points_settings` whether an
organisation awards points at all (no row: on).

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0033'
down_revision: str | None = '0032'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('point_awards',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.Enum('video_completed', 'answer_accepted', 'comment_liked', 'assignment_on_time', name='point_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('subject_id', sa.Uuid(), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=False),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.CheckConstraint('points > 0', name=op.f('ck_point_awards_points_positive')),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_point_awards_user_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_point_awards_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_point_awards')),
    sa.UniqueConstraint('org_id', 'kind', 'subject_id', 'actor_id', 'user_id', name=op.f('uq_point_awards_org_id_kind_subject_id_actor_id_user_id'))
    )
    op.create_index(op.f('ix_point_awards_org_id'), 'point_awards', ['org_id'], unique=False)
    op.create_index('ix_point_awards_org_id_occurred_at', 'point_awards', ['org_id', 'occurred_at'], unique=False)
    op.create_index('ix_point_awards_user_id_kind_occurred_at', 'point_awards', ['user_id', 'kind', 'occurred_at'], unique=False)

    op.create_table('point_totals',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('period', sa.Enum('week', 'month', 'quarter', 'all', name='point_period', native_enum=False, create_constraint=True, length=8), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('points', sa.Integer(), server_default='0', nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_point_totals_user_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_point_totals_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'period', 'starts_on', name=op.f('pk_point_totals'))
    )
    op.create_index(op.f('ix_point_totals_org_id'), 'point_totals', ['org_id'], unique=False)
    op.create_index('ix_point_totals_board', 'point_totals', ['org_id', 'period', 'starts_on', 'points', 'user_id'], unique=False)

    op.create_table('badge_awards',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('badge', sa.String(length=32), nullable=False),
    sa.Column('earned_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_badge_awards_user_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_badge_awards_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'badge', name=op.f('pk_badge_awards'))
    )
    op.create_index(op.f('ix_badge_awards_org_id'), 'badge_awards', ['org_id'], unique=False)

    op.create_table('points_settings',
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('updated_by_id', sa.Uuid(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_points_settings_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', name=op.f('pk_points_settings'))
    )


def downgrade() -> None:
    op.drop_table('points_settings')
    op.drop_index(op.f('ix_badge_awards_org_id'), table_name='badge_awards')
    op.drop_table('badge_awards')
    op.drop_index('ix_point_totals_board', table_name='point_totals')
    op.drop_index(op.f('ix_point_totals_org_id'), table_name='point_totals')
    op.drop_table('point_totals')
    op.drop_index('ix_point_awards_user_id_kind_occurred_at', table_name='point_awards')
    op.drop_index('ix_point_awards_org_id_occurred_at', table_name='point_awards')
    op.drop_index(op.f('ix_point_awards_org_id'), table_name='point_awards')
    op.drop_table('point_awards')
