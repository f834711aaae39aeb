"""curation and programs: collections of videos and clips, features, top lists, assignments

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-02

A collection's items are whole videos or clips ([start_ms, end_ms)); published, a collection
lets its audience see its videos. An assignment reaches its people through audience blocks
(as a share does) that a worker turns into one `assignees` row each; requests (decline, more
time) keep their reasons; rules assign by team, role and schedule.

Viewing gains what offline players need: a view's completion by the device's clock, the
organisation's threshold bounded to 1-100 %, and `multirange_ms`, the length of a multirange
(what its segments add up to), which progress and assignments compute with.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0027'
down_revision: str | None = '0026'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The milliseconds a union of [start, end) segments covers (its ranges never overlap).
_MULTIRANGE_MS = """
    CREATE FUNCTION multirange_ms(played int4multirange) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
        SELECT CAST(coalesce(sum(upper(r) - lower(r)), 0) AS integer) FROM unnest(played) AS r
    $$
"""


def upgrade() -> None:
    op.execute(_MULTIRANGE_MS)
    op.add_column('views', sa.Column('device_completed_at', sa.DateTime(timezone=True), nullable=True))
    op.create_check_constraint(op.f('ck_organisations_completion_threshold_pct'), 'organisations', 'completion_threshold_pct BETWEEN 1 AND 100')
    op.create_table('collections',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.String(length=5000), server_default='', nullable=False),
    sa.Column('cover_video_id', sa.Uuid(), nullable=True),
    sa.Column('visibility', sa.Enum('private', 'teams', 'organisation', name='collection_visibility', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'owner_id'], ['users.org_id', 'users.id'], name='fk_collections_owner_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_collections_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_collections')),
    sa.UniqueConstraint('org_id', 'id', name=op.f('uq_collections_org_id_id'))
    )
    op.create_index(op.f('ix_collections_org_id'), 'collections', ['org_id'], unique=False)
    op.create_index('ix_collections_owner_id', 'collections', ['owner_id'], unique=False)
    op.create_index('ix_collections_published', 'collections', ['org_id', 'visibility'], unique=False, postgresql_where=sa.text('published_at IS NOT NULL AND deleted_at IS NULL'))
    op.create_table('collection_editors',
    sa.Column('collection_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'collection_id'], ['collections.org_id', 'collections.id'], name='fk_collection_editors_collection_id_collections', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_collection_editors_user_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_collection_editors_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('collection_id', 'user_id', name=op.f('pk_collection_editors'))
    )
    op.create_index(op.f('ix_collection_editors_org_id'), 'collection_editors', ['org_id'], unique=False)
    op.create_index('ix_collection_editors_user_id', 'collection_editors', ['user_id'], unique=False)
    op.create_table('collection_teams',
    sa.Column('collection_id', sa.Uuid(), nullable=False),
    sa.Column('team_id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'collection_id'], ['collections.org_id', 'collections.id'], name='fk_collection_teams_collection_id_collections', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'team_id'], ['teams.org_id', 'teams.id'], name='fk_collection_teams_team_id_teams', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_collection_teams_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('collection_id', 'team_id', name=op.f('pk_collection_teams'))
    )
    op.create_index(op.f('ix_collection_teams_org_id'), 'collection_teams', ['org_id'], unique=False)
    op.create_index('ix_collection_teams_team_id', 'collection_teams', ['team_id'], unique=False)
    op.create_table('assignment_rules',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('team_id', sa.Uuid(), nullable=True),
    sa.Column('role', sa.Enum('rep', 'manager', 'enablement', 'admin', name='rule_role', native_enum=False, create_constraint=True, length=16), nullable=True),
    sa.Column('video_id', sa.Uuid(), nullable=True),
    sa.Column('start_ms', sa.Integer(), nullable=True),
    sa.Column('end_ms', sa.Integer(), nullable=True),
    sa.Column('collection_id', sa.Uuid(), nullable=True),
    sa.Column('message', sa.String(length=2000), server_default='', nullable=False),
    sa.Column('due_days', sa.Integer(), server_default='7', nullable=False),
    sa.Column('threshold_pct', sa.Integer(), nullable=True),
    sa.Column('every_months', sa.Integer(), nullable=True),
    sa.Column('next_round_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_round_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rounds_before', sa.Integer(), server_default='0', nullable=False),
    sa.Column('rounds', sa.Integer(), server_default='0', nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.CheckConstraint('(start_ms IS NULL AND end_ms IS NULL) OR (start_ms >= 0 AND end_ms > start_ms)', name=op.f('ck_assignment_rules_clip_range')),
    sa.CheckConstraint('(team_id IS NULL) <> (role IS NULL)', name=op.f('ck_assignment_rules_one_trigger')),
    sa.CheckConstraint('(video_id IS NULL) <> (collection_id IS NULL) AND (collection_id IS NULL OR start_ms IS NULL)', name=op.f('ck_assignment_rules_one_subject')),
    sa.CheckConstraint('every_months IS NULL OR every_months BETWEEN 1 AND 60', name=op.f('ck_assignment_rules_every')),
    sa.CheckConstraint('threshold_pct IS NULL OR threshold_pct BETWEEN 1 AND 100', name=op.f('ck_assignment_rules_threshold_range')),
    sa.ForeignKeyConstraint(['org_id', 'collection_id'], ['collections.org_id', 'collections.id'], name='fk_assignment_rules_collection_id_collections', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'team_id'], ['teams.org_id', 'teams.id'], name='fk_assignment_rules_team_id_teams', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'video_id'], ['videos.org_id', 'videos.id'], name='fk_assignment_rules_video_id_videos', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_assignment_rules_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assignment_rules')),
    sa.UniqueConstraint('org_id', 'id', name=op.f('uq_assignment_rules_org_id_id'))
    )
    op.create_index('ix_assignment_rules_next_round_at', 'assignment_rules', ['next_round_at'], unique=False, postgresql_where=sa.text('active AND every_months IS NOT NULL'))
    op.create_index(op.f('ix_assignment_rules_org_id'), 'assignment_rules', ['org_id'], unique=False)
    op.create_table('assignments',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('assigned_by', sa.Uuid(), nullable=True),
    sa.Column('video_id', sa.Uuid(), nullable=True),
    sa.Column('start_ms', sa.Integer(), nullable=True),
    sa.Column('end_ms', sa.Integer(), nullable=True),
    sa.Column('collection_id', sa.Uuid(), nullable=True),
    sa.Column('message', sa.String(length=2000), server_default='', nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('threshold_pct', sa.Integer(), nullable=True),
    sa.Column('audience', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('person_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('rule_id', sa.Uuid(), nullable=True),
    sa.Column('round', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.CheckConstraint('(start_ms IS NULL AND end_ms IS NULL) OR (start_ms >= 0 AND end_ms > start_ms)', name=op.f('ck_assignments_clip_range')),
    sa.CheckConstraint('(video_id IS NULL) <> (collection_id IS NULL) AND (collection_id IS NULL OR start_ms IS NULL)', name=op.f('ck_assignments_one_subject')),
    sa.CheckConstraint('threshold_pct IS NULL OR threshold_pct BETWEEN 1 AND 100', name=op.f('ck_assignments_threshold_range')),
    sa.ForeignKeyConstraint(['org_id', 'collection_id'], ['collections.org_id', 'collections.id'], name='fk_assignments_collection_id_collections', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'video_id'], ['videos.org_id', 'videos.id'], name='fk_assignments_video_id_videos', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_assignments_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assignments')),
    sa.UniqueConstraint('org_id', 'id', name=op.f('uq_assignments_org_id_id'))
    )
    op.create_index('ix_assignments_assigned_by_id', 'assignments', ['assigned_by', 'id'], unique=False)
    op.create_index('ix_assignments_collection_id', 'assignments', ['collection_id'], unique=False)
    op.create_index(op.f('ix_assignments_org_id'), 'assignments', ['org_id'], unique=False)
    op.create_index('ix_assignments_rule_id', 'assignments', ['rule_id', 'round'], unique=False)
    op.create_index('ix_assignments_video_id', 'assignments', ['video_id'], unique=False)
    op.create_table('collection_items',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('collection_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('video_id', sa.Uuid(), nullable=False),
    sa.Column('start_ms', sa.Integer(), nullable=True),
    sa.Column('end_ms', sa.Integer(), nullable=True),
    sa.Column('note', sa.String(length=1000), server_default='', nullable=False),
    sa.Column('comment_id', sa.Uuid(), nullable=True),
    sa.Column('added_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.CheckConstraint('(start_ms IS NULL AND end_ms IS NULL) OR (start_ms >= 0 AND end_ms > start_ms)', name=op.f('ck_collection_items_clip_range')),
    sa.ForeignKeyConstraint(['org_id', 'collection_id'], ['collections.org_id', 'collections.id'], name='fk_collection_items_collection_id_collections', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'video_id'], ['videos.org_id', 'videos.id'], name='fk_collection_items_video_id_videos', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_collection_items_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_collection_items')),
    sa.UniqueConstraint('org_id', 'id', name=op.f('uq_collection_items_org_id_id'))
    )
    op.create_index('ix_collection_items_collection_id_position', 'collection_items', ['collection_id', 'position'], unique=False)
    op.create_index(op.f('ix_collection_items_org_id'), 'collection_items', ['org_id'], unique=False)
    op.create_index('ix_collection_items_video_id', 'collection_items', ['video_id'], unique=False)
    op.create_table('features',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('team_id', sa.Uuid(), nullable=True),
    sa.Column('video_id', sa.Uuid(), nullable=True),
    sa.Column('start_ms', sa.Integer(), nullable=True),
    sa.Column('end_ms', sa.Integer(), nullable=True),
    sa.Column('collection_id', sa.Uuid(), nullable=True),
    sa.Column('note', sa.String(length=1000), server_default='', nullable=False),
    sa.Column('featured_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.CheckConstraint('(start_ms IS NULL AND end_ms IS NULL) OR (start_ms >= 0 AND end_ms > start_ms)', name=op.f('ck_features_clip_range')),
    sa.CheckConstraint('(video_id IS NULL) <> (collection_id IS NULL) AND (collection_id IS NULL OR start_ms IS NULL)', name=op.f('ck_features_one_subject')),
    sa.ForeignKeyConstraint(['org_id', 'collection_id'], ['collections.org_id', 'collections.id'], name='fk_features_collection_id_collections', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'team_id'], ['teams.org_id', 'teams.id'], name='fk_features_team_id_teams', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'video_id'], ['videos.org_id', 'videos.id'], name='fk_features_video_id_videos', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_features_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_features')),
    sa.UniqueConstraint('org_id', 'id', name=op.f('uq_features_org_id_id'))
    )
    op.create_index(op.f('ix_features_org_id'), 'features', ['org_id'], unique=False)
    op.create_index('ix_features_org_id_team_id', 'features', ['org_id', 'team_id', 'created_at'], unique=False)
    op.create_table('top_entries',
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('board', sa.String(length=300), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('video_id', sa.Uuid(), nullable=False),
    sa.Column('start_ms', sa.Integer(), nullable=True),
    sa.Column('end_ms', sa.Integer(), nullable=True),
    sa.Column('score', sa.Double(), nullable=False),
    sa.Column('reasons', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('computed_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('(start_ms IS NULL AND end_ms IS NULL) OR (start_ms >= 0 AND end_ms > start_ms)', name=op.f('ck_top_entries_clip_range')),
    sa.ForeignKeyConstraint(['org_id', 'video_id'], ['videos.org_id', 'videos.id'], name='fk_top_entries_video_id_videos', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_top_entries_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'board', 'rank', name=op.f('pk_top_entries'))
    )
    op.create_index('ix_top_entries_video_id', 'top_entries', ['video_id'], unique=False)
    op.create_table('assignees',
    sa.Column('assignment_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('state', sa.Enum('not_started', 'in_progress', 'completed', 'excused', name='assignee_state', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('played_ms', sa.Integer(), server_default='0', nullable=False),
    sa.Column('total_ms', sa.Integer(), server_default='0', nullable=False),
    sa.Column('assigned_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('notified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('excused_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('excused_by', sa.Uuid(), nullable=True),
    sa.Column('reminded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('overdue_reminded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'assignment_id'], ['assignments.org_id', 'assignments.id'], name='fk_assignees_assignment_id_assignments', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_assignees_user_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_assignees_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('assignment_id', 'user_id', name=op.f('pk_assignees'))
    )
    op.create_index('ix_assignees_assignment_id_state', 'assignees', ['assignment_id', 'state'], unique=False)
    op.create_index('ix_assignees_due_unreminded', 'assignees', ['due_at'], unique=False, postgresql_where=sa.text("state IN ('not_started', 'in_progress') AND reminded_at IS NULL"))
    op.create_index('ix_assignees_overdue_unreminded', 'assignees', ['due_at'], unique=False, postgresql_where=sa.text("state IN ('not_started', 'in_progress') AND overdue_reminded_at IS NULL"))
    op.create_index(op.f('ix_assignees_org_id'), 'assignees', ['org_id'], unique=False)
    op.create_index('ix_assignees_user_id_due_at', 'assignees', ['user_id', 'due_at'], unique=False)
    op.create_table('assignment_audiences',
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('assignment_id', sa.Uuid(), nullable=False),
    sa.Column('block', sa.Integer(), nullable=False),
    sa.Column('user_ids', postgresql.ARRAY(sa.Uuid()), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'assignment_id'], ['assignments.org_id', 'assignments.id'], name='fk_assignment_audiences_assignment_id_assignments', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_assignment_audiences_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('assignment_id', 'block', name=op.f('pk_assignment_audiences'))
    )
    op.create_table('assignment_requests',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('assignment_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.Enum('decline', 'more_time', name='request_kind', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('reason', sa.Enum('no_time', 'not_relevant', 'already_know', 'technical_problem', 'other', name='request_reason', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('text', sa.String(length=1000), server_default='', nullable=False),
    sa.Column('wanted_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by', sa.Uuid(), nullable=True),
    sa.Column('granted', sa.Boolean(), nullable=True),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.CheckConstraint("reason <> 'other' OR length(text) > 0", name=op.f('ck_assignment_requests_other_has_text')),
    sa.ForeignKeyConstraint(['org_id', 'assignment_id'], ['assignments.org_id', 'assignments.id'], name='fk_assignment_requests_assignment_id_assignments', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_assignment_requests_user_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_assignment_requests_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assignment_requests')),
    sa.UniqueConstraint('org_id', 'id', name=op.f('uq_assignment_requests_org_id_id'))
    )
    op.create_index('ix_assignment_requests_assignment_id', 'assignment_requests', ['assignment_id', 'created_at'], unique=False)
    op.create_index(op.f('ix_assignment_requests_org_id'), 'assignment_requests', ['org_id'], unique=False)
    op.create_index('ix_assignment_requests_user_id', 'assignment_requests', ['user_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_assignment_requests_user_id', table_name='assignment_requests')
    op.drop_index(op.f('ix_assignment_requests_org_id'), table_name='assignment_requests')
    op.drop_index('ix_assignment_requests_assignment_id', table_name='assignment_requests')
    op.drop_table('assignment_requests')
    op.drop_table('assignment_audiences')
    op.drop_index('ix_assignees_user_id_due_at', table_name='assignees')
    op.drop_index(op.f('ix_assignees_org_id'), table_name='assignees')
    op.drop_index('ix_assignees_overdue_unreminded', table_name='assignees', postgresql_where=sa.text("state IN ('not_started', 'in_progress') AND overdue_reminded_at IS NULL"))
    op.drop_index('ix_assignees_due_unreminded', table_name='assignees', postgresql_where=sa.text("state IN ('not_started', 'in_progress') AND reminded_at IS NULL"))
    op.drop_index('ix_assignees_assignment_id_state', table_name='assignees')
    op.drop_table('assignees')
    op.drop_index('ix_top_entries_video_id', table_name='top_entries')
    op.drop_table('top_entries')
    op.drop_index('ix_features_org_id_team_id', table_name='features')
    op.drop_index(op.f('ix_features_org_id'), table_name='features')
    op.drop_table('features')
    op.drop_index('ix_collection_items_video_id', table_name='collection_items')
    op.drop_index(op.f('ix_collection_items_org_id'), table_name='collection_items')
    op.drop_index('ix_collection_items_collection_id_position', table_name='collection_items')
    op.drop_table('collection_items')
    op.drop_index('ix_assignments_video_id', table_name='assignments')
    op.drop_index('ix_assignments_rule_id', table_name='assignments')
    op.drop_index(op.f('ix_assignments_org_id'), table_name='assignments')
    op.drop_index('ix_assignments_collection_id', table_name='assignments')
    op.drop_index('ix_assignments_assigned_by_id', table_name='assignments')
    op.drop_table('assignments')
    op.drop_index(op.f('ix_assignment_rules_org_id'), table_name='assignment_rules')
    op.drop_index('ix_assignment_rules_next_round_at', table_name='assignment_rules', postgresql_where=sa.text('active AND every_months IS NOT NULL'))
    op.drop_table('assignment_rules')
    op.drop_index('ix_collection_teams_team_id', table_name='collection_teams')
    op.drop_index(op.f('ix_collection_teams_org_id'), table_name='collection_teams')
    op.drop_table('collection_teams')
    op.drop_index('ix_collection_editors_user_id', table_name='collection_editors')
    op.drop_index(op.f('ix_collection_editors_org_id'), table_name='collection_editors')
    op.drop_table('collection_editors')
    op.drop_index('ix_collections_published', table_name='collections', postgresql_where=sa.text('published_at IS NOT NULL AND deleted_at IS NULL'))
    op.drop_index('ix_collections_owner_id', table_name='collections')
    op.drop_index(op.f('ix_collections_org_id'), table_name='collections')
    op.drop_table('collections')
    op.drop_constraint(op.f('ck_organisations_completion_threshold_pct'), 'organisations', type_='check')
    op.drop_column('views', 'device_completed_at')
    op.execute('DROP FUNCTION multirange_ms(int4multirange)')
