"""viewing: views with their played segments, the player's events, each person's progress

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-02

A view's played segments are an int4multirange of milliseconds: a report's segments are merged
by union, so a report sent twice, or out of order, counts once. `video_progress` is the union
over a person's views of a video; an organisation sets the share that counts as completed.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0026'
down_revision: str | None = '0025'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('video_progress',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('video_id', sa.Uuid(), nullable=False),
    sa.Column('played', postgresql.INT4MULTIRANGE(), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('played_ms', sa.Integer(), server_default='0', nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('first_played_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_video_progress_user_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'video_id'], ['videos.org_id', 'videos.id'], name='fk_video_progress_video_id_videos', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_video_progress_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'video_id', name=op.f('pk_video_progress'))
    )
    op.create_index(op.f('ix_video_progress_org_id'), 'video_progress', ['org_id'], unique=False)
    op.create_index('ix_video_progress_video_id', 'video_progress', ['video_id'], unique=False)
    op.create_table('views',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('video_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('session_id', sa.Uuid(), nullable=False),
    sa.Column('start_ms', sa.Integer(), server_default='0', nullable=False),
    sa.Column('end_ms', sa.Integer(), nullable=False),
    sa.Column('played', postgresql.INT4MULTIRANGE(), server_default=sa.text("'{}'"), nullable=False),
    sa.Column('played_ms', sa.Integer(), server_default='0', nullable=False),
    sa.Column('position_ms', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_seq', sa.Integer(), server_default='-1', nullable=False),
    sa.Column('reports', sa.Integer(), server_default='0', nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('device_started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('device_last_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_reported_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_views_user_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'video_id'], ['videos.org_id', 'videos.id'], name='fk_views_video_id_videos', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_views_org_id_organisations'), ondelete='CASCADE'),
    sa.CheckConstraint('start_ms >= 0 AND end_ms > start_ms', name=op.f('ck_views_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_views')),
    sa.UniqueConstraint('org_id', 'id', name=op.f('uq_views_org_id_id')),
    sa.UniqueConstraint('user_id', 'session_id', name=op.f('uq_views_user_id_session_id'))
    )
    op.create_index(op.f('ix_views_org_id'), 'views', ['org_id'], unique=False)
    op.create_index('ix_views_video_id_user_id', 'views', ['video_id', 'user_id'], unique=False)
    op.create_table('view_events',
    sa.Column('view_id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.Column('kind', sa.Enum('play', 'pause', 'seek', 'complete', name='view_event_kind', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('position_ms', sa.Integer(), nullable=False),
    sa.Column('device_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'view_id'], ['views.org_id', 'views.id'], name='fk_view_events_view_id_views', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_view_events_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('view_id', 'seq', 'n', name=op.f('pk_view_events'))
    )
    op.create_index(op.f('ix_view_events_org_id'), 'view_events', ['org_id'], unique=False)
    op.add_column('organisations', sa.Column('completion_threshold_pct', sa.Integer(), server_default='90', nullable=False))


def downgrade() -> None:
    op.drop_column('organisations', 'completion_threshold_pct')
    op.drop_index(op.f('ix_view_events_org_id'), table_name='view_events')
    op.drop_table('view_events')
    op.drop_index('ix_views_video_id_user_id', table_name='views')
    op.drop_index(op.f('ix_views_org_id'), table_name='views')
    op.drop_table('views')
    op.drop_index('ix_video_progress_video_id', table_name='video_progress')
    op.drop_index(op.f('ix_video_progress_org_id'), table_name='video_progress')
    op.drop_table('video_progress')
