"""uploads, renditions, attachments and the inbox

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Referenced by the tenant-scoped foreign keys below, so it comes first.
    op.create_unique_constraint(op.f('uq_videos_org_id_id'), 'videos', ['org_id', 'id'])
    op.create_table('notifications',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.String(length=1000), nullable=False),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('dedup_key', sa.String(length=255), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_notifications_user_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_notifications_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_notifications_dedup_key'))
    )
    op.create_index(op.f('ix_notifications_org_id'), 'notifications', ['org_id'], unique=False)
    op.create_index('ix_notifications_unread', 'notifications', ['user_id'], unique=False, postgresql_where=sa.text('read_at IS NULL'))
    op.create_index('ix_notifications_user_id_id', 'notifications', ['user_id', 'id'], unique=False)
    op.create_table('attachments',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('video_id', sa.Uuid(), nullable=False),
    sa.Column('created_by_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.Enum('file', 'link', 'note', name='attachment_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=True),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=True),
    sa.Column('content_type', sa.String(length=127), nullable=True),
    sa.Column('size_bytes', sa.BigInteger(), nullable=True),
    sa.Column('storage_key', sa.String(length=900), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.CheckConstraint("(kind = 'file' AND storage_key IS NOT NULL) OR (kind = 'link' AND url IS NOT NULL) OR (kind = 'note' AND body IS NOT NULL)", name=op.f('ck_attachments_kind_has_content')),
    sa.ForeignKeyConstraint(['org_id', 'created_by_id'], ['users.org_id', 'users.id'], name='fk_attachments_created_by_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'video_id'], ['videos.org_id', 'videos.id'], name='fk_attachments_video_id_videos', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_attachments_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attachments'))
    )
    op.create_index(op.f('ix_attachments_org_id'), 'attachments', ['org_id'], unique=False)
    op.create_index('ix_attachments_video_id_id', 'attachments', ['video_id', 'id'], unique=False)
    op.create_table('renditions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('video_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.Enum('hls', 'master', 'mp4', 'poster', 'storyboard', name='rendition_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('source_version', sa.Integer(), nullable=False),
    sa.Column('storage_key', sa.String(length=900), nullable=False),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('bitrate_kbps', sa.Integer(), nullable=True),
    sa.Column('size_bytes', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'video_id'], ['videos.org_id', 'videos.id'], name='fk_renditions_video_id_videos', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_renditions_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_renditions')),
    sa.UniqueConstraint('video_id', 'name', name=op.f('uq_renditions_video_id_name'))
    )
    op.create_index(op.f('ix_renditions_org_id'), 'renditions', ['org_id'], unique=False)
    op.create_table('uploads',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('video_id', sa.Uuid(), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('protocol', sa.Enum('tus', 's3_multipart', name='upload_protocol', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('length', sa.BigInteger(), nullable=False),
    sa.Column('offset', sa.BigInteger(), nullable=False),
    sa.Column('storage_key', sa.String(length=900), nullable=False),
    sa.Column('state', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=True),
    sa.Column('filetype', sa.String(length=127), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.CheckConstraint('"offset" BETWEEN 0 AND length', name=op.f('ck_uploads_offset_within_length')),
    sa.ForeignKeyConstraint(['org_id', 'owner_id'], ['users.org_id', 'users.id'], name='fk_uploads_owner_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'video_id'], ['videos.org_id', 'videos.id'], name='fk_uploads_video_id_videos', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_uploads_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_uploads'))
    )
    op.create_index('ix_uploads_open_expires_at', 'uploads', ['expires_at'], unique=False, postgresql_where=sa.text('completed_at IS NULL'))
    op.create_index(op.f('ix_uploads_org_id'), 'uploads', ['org_id'], unique=False)
    op.create_index('ix_uploads_video_id', 'uploads', ['video_id'], unique=False)
    op.add_column('videos', sa.Column('source_key', sa.String(length=900), nullable=True))
    op.add_column('videos', sa.Column('source_version', sa.Integer(), server_default='0', nullable=False))
    op.add_column('videos', sa.Column('playable_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('videos', 'playable_at')
    op.drop_column('videos', 'source_version')
    op.drop_column('videos', 'source_key')
    op.drop_index('ix_uploads_video_id', table_name='uploads')
    op.drop_index(op.f('ix_uploads_org_id'), table_name='uploads')
    op.drop_index('ix_uploads_open_expires_at', table_name='uploads', postgresql_where=sa.text('completed_at IS NULL'))
    op.drop_table('uploads')
    op.drop_index(op.f('ix_renditions_org_id'), table_name='renditions')
    op.drop_table('renditions')
    op.drop_index('ix_attachments_video_id_id', table_name='attachments')
    op.drop_index(op.f('ix_attachments_org_id'), table_name='attachments')
    op.drop_table('attachments')
    op.drop_index('ix_notifications_user_id_id', table_name='notifications')
    op.drop_index('ix_notifications_unread', table_name='notifications', postgresql_where=sa.text('read_at IS NULL'))
    op.drop_index(op.f('ix_notifications_org_id'), table_name='notifications')
    op.drop_table('notifications')
    op.drop_constraint(op.f('uq_videos_org_id_id'), 'videos', type_='unique')
