"""insights: what viewer insights and learning metrics read

`video_insights` holds each video's viewing figures as last computed (views, viewers,
completions, the average share played, and per percent of the duration the retention curve,
drop-offs and rewatches), so reading them costs one row however many people watched.
Learning metrics read the programs' own tables and need nothing of their own.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0030'
down_revision: str | None = '0029'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('video_insights',
    sa.Column('video_id', sa.Uuid(), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=False),
    sa.Column('views', sa.Integer(), nullable=False),
    sa.Column('viewers', sa.Integer(), nullable=False),
    sa.Column('completed', sa.Integer(), nullable=False),
    sa.Column('average_share', sa.Double(), nullable=False),
    sa.Column('retention', postgresql.ARRAY(sa.Integer()), nullable=False),
    sa.Column('drop_offs', postgresql.ARRAY(sa.Integer()), nullable=False),
    sa.Column('rewatches', postgresql.ARRAY(sa.Integer()), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'video_id'], ['videos.org_id', 'videos.id'], name='fk_video_insights_video_id_videos', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_video_insights_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('video_id', name=op.f('pk_video_insights'))
    )
    op.create_index(op.f('ix_video_insights_org_id'), 'video_insights', ['org_id'], unique=False)
    op.create_index('ix_video_insights_requested_at', 'video_insights', ['requested_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_video_insights_requested_at', table_name='video_insights')
    op.drop_index(op.f('ix_video_insights_org_id'), table_name='video_insights')
    op.drop_table('video_insights')
