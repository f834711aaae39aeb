"""transcripts and document text: timed segments of what a video says, text of attachments

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04

A video's transcript (one per video, of one source version) and its segments, made by the
`transcribe` worker and editable by the video's author; the text of file attachments read by a
worker, for search.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0024'
down_revision: str | None = '0023'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('transcript_segments',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('video_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('start_ms', sa.Integer(), nullable=False),
    sa.Column('end_ms', sa.Integer(), nullable=False),
    sa.Column('text', sa.String(length=1000), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.CheckConstraint('start_ms >= 0 AND end_ms > start_ms', name=op.f('ck_transcript_segments_times_in_order')),
    sa.ForeignKeyConstraint(['org_id', 'video_id'], ['videos.org_id', 'videos.id'], name='fk_transcript_segments_video_id_videos', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_transcript_segments_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transcript_segments')),
    sa.UniqueConstraint('video_id', 'position', name=op.f('uq_transcript_segments_video_id_position'))
    )
    op.create_index(op.f('ix_transcript_segments_org_id'), 'transcript_segments', ['org_id'], unique=False)
    op.create_index('ix_transcript_segments_video_id_start_ms', 'transcript_segments', ['video_id', 'start_ms'], unique=False)
    op.create_table('transcripts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('video_id', sa.Uuid(), nullable=False),
    sa.Column('source_version', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'done', 'failed', 'no_speech', 'skipped', name='transcript_status', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('engine', sa.String(length=32), nullable=True),
    sa.Column('language', sa.String(length=16), nullable=True),
    sa.Column('failure_detail', sa.String(length=500), nullable=True),
    sa.Column('edited_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('edited_by_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'edited_by_id'], ['users.org_id', 'users.id'], name='fk_transcripts_edited_by_id_users', ondelete='SET NULL (edited_by_id)'),
    sa.ForeignKeyConstraint(['org_id', 'video_id'], ['videos.org_id', 'videos.id'], name='fk_transcripts_video_id_videos', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_transcripts_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transcripts')),
    sa.UniqueConstraint('video_id', name=op.f('uq_transcripts_video_id'))
    )
    op.create_index(op.f('ix_transcripts_org_id'), 'transcripts', ['org_id'], unique=False)
    op.add_column('attachments', sa.Column('text', sa.Text(), nullable=True))
    op.add_column('attachments', sa.Column('text_status', sa.Enum('pending', 'done', 'failed', 'unsupported', name='attachment_text_status', native_enum=False, create_constraint=True, length=16), nullable=True))
    op.add_column('attachments', sa.Column('text_failure_detail', sa.String(length=500), nullable=True))


def downgrade() -> None:
    op.drop_column('attachments', 'text_failure_detail')
    op.drop_column('attachments', 'text_status')
    op.drop_column('attachments', 'text')
    op.drop_index(op.f('ix_transcripts_org_id'), table_name='transcripts')
    op.drop_table('transcripts')
    op.drop_index('ix_transcript_segments_video_id_start_ms', table_name='transcript_segments')
    op.drop_index(op.f('ix_transcript_segments_org_id'), table_name='transcript_segments')
    op.drop_table('transcript_segments')
