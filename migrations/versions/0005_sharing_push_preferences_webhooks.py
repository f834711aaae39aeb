"""sharing, push deliveries, preferences, team webhooks

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('distribution_lists',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('description', sa.String(length=2000), server_default='', nullable=False),
    sa.Column('visibility', sa.Enum('private', 'organisation', name='list_visibility', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'owner_id'], ['users.org_id', 'users.id'], name='fk_distribution_lists_owner_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_distribution_lists_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_distribution_lists')),
    sa.UniqueConstraint('org_id', 'id', name=op.f('uq_distribution_lists_org_id_id'))
    )
    op.create_index(op.f('ix_distribution_lists_org_id'), 'distribution_lists', ['org_id'], unique=False)
    op.create_index('ix_distribution_lists_owner_id', 'distribution_lists', ['owner_id'], unique=False)
    op.create_table('notification_preferences',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('muted_types', sa.ARRAY(sa.String(length=64)), server_default='{}', nullable=False),
    sa.Column('quiet_start', sa.Time(), nullable=True),
    sa.Column('quiet_end', sa.Time(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_notification_preferences_user_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_notification_preferences_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_notification_preferences'))
    )
    op.create_index(op.f('ix_notification_preferences_org_id'), 'notification_preferences', ['org_id'], unique=False)
    op.create_table('team_webhooks',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('team_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.Enum('slack', 'teams', name='webhook_kind', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_team_webhooks_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['org_id', 'team_id'], ['teams.org_id', 'teams.id'], name='fk_team_webhooks_team_id_teams', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_team_webhooks_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_team_webhooks')),
    sa.UniqueConstraint('team_id', 'url', name=op.f('uq_team_webhooks_team_id_url'))
    )
    op.create_index(op.f('ix_team_webhooks_org_id'), 'team_webhooks', ['org_id'], unique=False)
    op.create_index('ix_team_webhooks_team_id', 'team_webhooks', ['team_id'], unique=False)
    op.create_table('distribution_list_teams',
    sa.Column('list_id', sa.Uuid(), nullable=False),
    sa.Column('team_id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'list_id'], ['distribution_lists.org_id', 'distribution_lists.id'], name='fk_distribution_list_teams_list_id_distribution_lists', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'team_id'], ['teams.org_id', 'teams.id'], name='fk_distribution_list_teams_team_id_teams', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_distribution_list_teams_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('list_id', 'team_id', name=op.f('pk_distribution_list_teams'))
    )
    op.create_index(op.f('ix_distribution_list_teams_org_id'), 'distribution_list_teams', ['org_id'], unique=False)
    op.create_index('ix_distribution_list_teams_team_id', 'distribution_list_teams', ['team_id'], unique=False)
    op.create_table('distribution_list_users',
    sa.Column('list_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'list_id'], ['distribution_lists.org_id', 'distribution_lists.id'], name='fk_distribution_list_users_list_id_distribution_lists', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_distribution_list_users_user_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_distribution_list_users_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('list_id', 'user_id', name=op.f('pk_distribution_list_users'))
    )
    op.create_index(op.f('ix_distribution_list_users_org_id'), 'distribution_list_users', ['org_id'], unique=False)
    op.create_index('ix_distribution_list_users_user_id', 'distribution_list_users', ['user_id'], unique=False)
    op.create_table('push_deliveries',
    sa.Column('notification_id', sa.Uuid(), nullable=False),
    sa.Column('device_id', sa.Uuid(), nullable=False),
    sa.Column('status', sa.Enum('sending', 'retry', 'accepted', 'failed', name='delivery_status', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='1', nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('message_id', sa.String(length=255), nullable=True),
    sa.Column('error', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['device_id'], ['devices.id'], name=op.f('fk_push_deliveries_device_id_devices'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], name=op.f('fk_push_deliveries_notification_id_notifications'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('notification_id', 'device_id', name=op.f('pk_push_deliveries'))
    )
    op.create_index(op.f('ix_push_deliveries_device_id'), 'push_deliveries', ['device_id'], unique=False)
    op.create_table('shares',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('video_id', sa.Uuid(), nullable=False),
    sa.Column('sender_id', sa.Uuid(), nullable=False),
    sa.Column('message', sa.String(length=1000), server_default='', nullable=False),
    sa.Column('audience', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('recipient_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'sender_id'], ['users.org_id', 'users.id'], name='fk_shares_sender_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'video_id'], ['videos.org_id', 'videos.id'], name='fk_shares_video_id_videos', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_shares_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_shares')),
    sa.UniqueConstraint('org_id', 'id', name=op.f('uq_shares_org_id_id'))
    )
    op.create_index(op.f('ix_shares_org_id'), 'shares', ['org_id'], unique=False)
    op.create_index('ix_shares_sender_id_id', 'shares', ['sender_id', 'id'], unique=False)
    op.create_index('ix_shares_video_id', 'shares', ['video_id'], unique=False)
    op.create_table('video_mutes',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('video_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_video_mutes_user_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'video_id'], ['videos.org_id', 'videos.id'], name='fk_video_mutes_video_id_videos', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_video_mutes_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'video_id', name=op.f('pk_video_mutes'))
    )
    op.create_index(op.f('ix_video_mutes_org_id'), 'video_mutes', ['org_id'], unique=False)
    op.create_table('share_recipients',
    sa.Column('share_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('video_id', sa.Uuid(), nullable=False),
    sa.Column('state', sa.Enum('queued', 'sent', 'delivered', 'opened', 'watched', 'failed', name='recipient_state', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('failure_reason', sa.String(length=64), nullable=True),
    sa.Column('notification_id', sa.Uuid(), nullable=True),
    sa.Column('queued_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('watched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'], name=op.f('fk_share_recipients_notification_id_notifications'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['org_id', 'share_id'], ['shares.org_id', 'shares.id'], name='fk_share_recipients_share_id_shares', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_share_recipients_user_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_share_recipients_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('share_id', 'user_id', name=op.f('pk_share_recipients'))
    )
    op.create_index(op.f('ix_share_recipients_org_id'), 'share_recipients', ['org_id'], unique=False)
    op.create_index('ix_share_recipients_user_id_video_id', 'share_recipients', ['user_id', 'video_id'], unique=False)
    op.add_column('notifications', sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('notifications', sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('notifications', 'opened_at')
    op.drop_column('notifications', 'delivered_at')
    op.drop_index('ix_share_recipients_user_id_video_id', table_name='share_recipients')
    op.drop_index(op.f('ix_share_recipients_org_id'), table_name='share_recipients')
    op.drop_table('share_recipients')
    op.drop_index(op.f('ix_video_mutes_org_id'), table_name='video_mutes')
    op.drop_table('video_mutes')
    op.drop_index('ix_shares_video_id', table_name='shares')
    op.drop_index('ix_shares_sender_id_id', table_name='shares')
    op.drop_index(op.f('ix_shares_org_id'), table_name='shares')
    op.drop_table('shares')
    op.drop_index(op.f('ix_push_deliveries_device_id'), table_name='push_deliveries')
    op.drop_table('push_deliveries')
    op.drop_index('ix_distribution_list_users_user_id', table_name='distribution_list_users')
    op.drop_index(op.f('ix_distribution_list_users_org_id'), table_name='distribution_list_users')
    op.drop_table('distribution_list_users')
    op.drop_index('ix_distribution_list_teams_team_id', table_name='distribution_list_teams')
    op.drop_index(op.f('ix_distribution_list_teams_org_id'), table_name='distribution_list_teams')
    op.drop_table('distribution_list_teams')
    op.drop_index('ix_team_webhooks_team_id', table_name='team_webhooks')
    op.drop_index(op.f('ix_team_webhooks_org_id'), table_name='team_webhooks')
    op.drop_table('team_webhooks')
    op.drop_index(op.f('ix_notification_preferences_org_id'), table_name='notification_preferences')
    op.drop_table('notification_preferences')
    op.drop_index('ix_distribution_lists_owner_id', table_name='distribution_lists')
    op.drop_index(op.f('ix_distribution_lists_org_id'), table_name='distribution_lists')
    op.drop_table('distribution_lists')
