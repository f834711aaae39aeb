"""conversation: comments, reactions, questions, handles, reports, audit log

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-02
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# Every handle of an organisation, a person's or a team's, in one table whose primary key
# makes them one namespace. Kept by these triggers whatever path writes a user or a team.
_HANDLES_SYNC = """
    CREATE FUNCTION handles_sync() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            IF TG_TABLE_NAME = 'users' THEN
                DELETE FROM handles WHERE user_id = OLD.id;
            ELSE
                DELETE FROM handles WHERE team_id = OLD.id;
            END IF;
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN
            IF TG_TABLE_NAME = 'users' THEN
                INSERT INTO handles (org_id, handle, user_id) VALUES (NEW.org_id, NEW.handle, NEW.id);
            ELSE
                INSERT INTO handles (org_id, handle, team_id) VALUES (NEW.org_id, NEW.handle, NEW.id);
            END IF;
        END IF;
        RETURN NULL;
    END
    $$
"""

revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Counts of live comments, replies and reactions per 100 ms slot of a video's timeline
# (fieldcast.models.conversation.MomentCount): a row leaving the count (deleted, hidden, moved)
# takes one off its slot, a row joining it adds one. A comment counts when it has a time and is
# neither deleted nor hidden; a reply counts at its thread's time. A video being deleted takes
# its counts with it: nothing is written for it then.
_MOMENT_COUNTS = """
    CREATE FUNCTION moment_counts_add(
        p_org uuid, p_video uuid, p_at_ms integer, p_comments integer, p_replies integer,
        p_reactions integer
    ) RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        IF NOT EXISTS (SELECT 1 FROM videos WHERE id = p_video) THEN
            RETURN;
        END IF;
        INSERT INTO moment_counts AS m (org_id, video_id, slot, comments, replies, reactions)
        VALUES (p_org, p_video, p_at_ms / 100, p_comments, p_replies, p_reactions)
        ON CONFLICT (video_id, slot) DO UPDATE
           SET comments = m.comments + EXCLUDED.comments,
               replies = m.replies + EXCLUDED.replies,
               reactions = m.reactions + EXCLUDED.reactions;
    END
    $$;

    CREATE FUNCTION moment_counts_comments() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.at_ms IS NOT NULL
                AND OLD.deleted_at IS NULL AND OLD.hidden_at IS NULL THEN
            PERFORM moment_counts_add(OLD.org_id, OLD.video_id, OLD.at_ms,
                CASE WHEN OLD.parent_id IS NULL THEN -1 ELSE 0 END,
                CASE WHEN OLD.parent_id IS NULL THEN 0 ELSE -1 END, 0);
        END IF;
        IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.at_ms IS NOT NULL
                AND NEW.deleted_at IS NULL AND NEW.hidden_at IS NULL THEN
            PERFORM moment_counts_add(NEW.org_id, NEW.video_id, NEW.at_ms,
                CASE WHEN NEW.parent_id IS NULL THEN 1 ELSE 0 END,
                CASE WHEN NEW.parent_id IS NULL THEN 0 ELSE 1 END, 0);
        END IF;
        RETURN NULL;
    END
    $$;

    CREATE FUNCTION moment_counts_reactions() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN
            PERFORM moment_counts_add(OLD.org_id, OLD.video_id, OLD.at_ms, 0, 0, -1);
        END IF;
        IF TG_OP IN ('UPDATE', 'INSERT') THEN
            PERFORM moment_counts_add(NEW.org_id, NEW.video_id, NEW.at_ms, 0, 0, 1);
        END IF;
        RETURN NULL;
    END
    $$;
"""


def upgrade() -> None:
    op.create_table('comments',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('video_id', sa.Uuid(), nullable=False),
    sa.Column('author_id', sa.Uuid(), nullable=False),
    sa.Column('parent_id', sa.Uuid(), nullable=True),
    sa.Column('at_ms', sa.Integer(), nullable=True),
    sa.Column('end_ms', sa.Integer(), nullable=True),
    sa.Column('timeline_ms', sa.Integer(), sa.Computed('COALESCE(at_ms, -1)', persisted=True), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('mentions', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('reply_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('like_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_reply_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('edited_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_by_id', sa.Uuid(), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by_id', sa.Uuid(), nullable=True),
    sa.Column('hidden_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('hidden_reason', sa.String(length=500), nullable=True),
    sa.Column('change_seq', sa.BigInteger(), server_default=sa.FetchedValue(), nullable=True),
    sa.Column('change_xid', sa.BigInteger(), server_default=sa.FetchedValue(), nullable=True),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.CheckConstraint('at_ms IS NULL OR at_ms >= 0', name=op.f('ck_comments_at_ms_not_negative')),
    sa.CheckConstraint('end_ms IS NULL OR (at_ms IS NOT NULL AND end_ms > at_ms)', name=op.f('ck_comments_range_in_order')),
    sa.CheckConstraint('parent_id IS NULL OR parent_id <> id', name=op.f('ck_comments_not_own_parent')),
    sa.ForeignKeyConstraint(['org_id', 'author_id'], ['users.org_id', 'users.id'], name='fk_comments_author_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'parent_id'], ['comments.org_id', 'comments.id'], name='fk_comments_parent_id_comments', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'video_id'], ['videos.org_id', 'videos.id'], name='fk_comments_video_id_videos', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_comments_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_comments')),
    sa.UniqueConstraint('org_id', 'id', name=op.f('uq_comments_org_id_id'))
    )
    op.create_index(op.f('ix_comments_org_id'), 'comments', ['org_id'], unique=False)
    op.create_index('ix_comments_org_id_change_seq', 'comments', ['org_id', 'change_seq'], unique=False)
    op.create_index('ix_comments_org_id_change_xid', 'comments', ['org_id', 'change_xid'], unique=False)
    op.create_index('ix_comments_parent_id_id', 'comments', ['parent_id', 'id'], unique=False)
    op.create_index('ix_comments_threads_newest', 'comments', ['video_id', 'id'], unique=False, postgresql_where='parent_id IS NULL')
    op.create_index('ix_comments_threads_timeline', 'comments', ['video_id', 'timeline_ms', 'id'], unique=False, postgresql_where='parent_id IS NULL')
    op.create_index('ix_comments_video_id_at_ms', 'comments', ['video_id', 'at_ms'], unique=False)
    op.create_table('answer_votes',
    sa.Column('video_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_answer_votes_user_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'video_id'], ['videos.org_id', 'videos.id'], name='fk_answer_votes_video_id_videos', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_answer_votes_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('video_id', 'user_id', name=op.f('pk_answer_votes'))
    )
    op.create_index(op.f('ix_answer_votes_org_id'), 'answer_votes', ['org_id'], unique=False)
    op.create_index(op.f('ix_answer_votes_user_id'), 'answer_votes', ['user_id'], unique=False)
    op.create_table('audit_log',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('actor_id', sa.Uuid(), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=False),
    sa.Column('object_id', sa.Uuid(), nullable=True),
    sa.Column('details', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'actor_id'], ['users.org_id', 'users.id'], name='fk_audit_log_actor_id_users', ondelete='SET NULL (actor_id)'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_audit_log_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index(op.f('ix_audit_log_org_id'), 'audit_log', ['org_id'], unique=False)
    op.create_index('ix_audit_log_org_id_id', 'audit_log', ['org_id', 'id'], unique=False)
    op.create_table('comment_likes',
    sa.Column('comment_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'comment_id'], ['comments.org_id', 'comments.id'], name='fk_comment_likes_comment_id_comments', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_comment_likes_user_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_comment_likes_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('comment_id', 'user_id', name=op.f('pk_comment_likes'))
    )
    op.create_index(op.f('ix_comment_likes_org_id'), 'comment_likes', ['org_id'], unique=False)
    op.create_index(op.f('ix_comment_likes_user_id'), 'comment_likes', ['user_id'], unique=False)
    op.create_table('handles',
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('handle', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=True),
    sa.Column('team_id', sa.Uuid(), nullable=True),
    sa.CheckConstraint('(user_id IS NULL) <> (team_id IS NULL)', name=op.f('ck_handles_one_owner')),
    sa.ForeignKeyConstraint(['org_id', 'team_id'], ['teams.org_id', 'teams.id'], name='fk_handles_team_id_teams', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_handles_user_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_handles_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'handle', name=op.f('pk_handles')),
    sa.UniqueConstraint('team_id', name=op.f('uq_handles_team_id')),
    sa.UniqueConstraint('user_id', name=op.f('uq_handles_user_id'))
    )
    op.create_table('push_windows',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('video_id', sa.Uuid(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('notification_id', sa.Uuid(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_push_windows_user_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'video_id'], ['videos.org_id', 'videos.id'], name='fk_push_windows_video_id_videos', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_push_windows_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'video_id', name=op.f('pk_push_windows'))
    )
    op.create_index(op.f('ix_push_windows_org_id'), 'push_windows', ['org_id'], unique=False)
    op.create_index(op.f('ix_push_windows_video_id'), 'push_windows', ['video_id'], unique=False)
    op.create_table('reactions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('video_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('emoji', sa.String(length=16), nullable=False),
    sa.Column('at_ms', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.CheckConstraint('at_ms >= 0', name=op.f('ck_reactions_at_ms_not_negative')),
    sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_reactions_user_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'video_id'], ['videos.org_id', 'videos.id'], name='fk_reactions_video_id_videos', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_reactions_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reactions')),
    sa.UniqueConstraint('org_id', 'id', name=op.f('uq_reactions_org_id_id')),
    sa.UniqueConstraint('video_id', 'user_id', 'emoji', 'at_ms', name=op.f('uq_reactions_video_id_user_id_emoji_at_ms'))
    )
    op.create_index(op.f('ix_reactions_org_id'), 'reactions', ['org_id'], unique=False)
    op.create_index('ix_reactions_video_id_at_ms', 'reactions', ['video_id', 'at_ms'], unique=False)
    op.create_table('reports',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('reporter_id', sa.Uuid(), nullable=False),
    sa.Column('video_id', sa.Uuid(), nullable=True),
    sa.Column('comment_id', sa.Uuid(), nullable=True),
    sa.Column('reason', sa.Enum('spam', 'harassment', 'inappropriate', 'confidential', 'misleading', 'other', name='report_reason', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('details', sa.String(length=1000), server_default='', nullable=False),
    sa.Column('status', sa.Enum('open', 'hidden', 'dismissed', name='report_status', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_by_id', sa.Uuid(), nullable=True),
    sa.Column('resolution_note', sa.String(length=500), nullable=True),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.CheckConstraint('(comment_id IS NULL) <> (video_id IS NULL)', name=op.f('ck_reports_one_reported_object')),
    sa.ForeignKeyConstraint(['org_id', 'comment_id'], ['comments.org_id', 'comments.id'], name='fk_reports_comment_id_comments', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'reporter_id'], ['users.org_id', 'users.id'], name='fk_reports_reporter_id_users', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id', 'resolved_by_id'], ['users.org_id', 'users.id'], name='fk_reports_resolved_by_id_users', ondelete='SET NULL (resolved_by_id)'),
    sa.ForeignKeyConstraint(['org_id', 'video_id'], ['videos.org_id', 'videos.id'], name='fk_reports_video_id_videos', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_reports_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reports'))
    )
    op.create_index('ix_reports_comment_id', 'reports', ['comment_id'], unique=False)
    op.create_index(op.f('ix_reports_org_id'), 'reports', ['org_id'], unique=False)
    op.create_index('ix_reports_org_id_status_id', 'reports', ['org_id', 'status', 'id'], unique=False)
    op.create_index('ix_reports_video_id', 'reports', ['video_id'], unique=False)
    op.create_index('uq_reports_open_comment', 'reports', ['reporter_id', 'comment_id'], unique=True, postgresql_where=sa.text("status = 'open' AND comment_id IS NOT NULL"))
    op.create_index('uq_reports_open_video', 'reports', ['reporter_id', 'video_id'], unique=True, postgresql_where=sa.text("status = 'open' AND video_id IS NOT NULL"))
    # Teams get handles from their names, made as `fieldcast.accounts.services.free_handle`
    # makes them: a handle a person or another team has already gets the first free -2, -3, ...
    op.add_column('teams', sa.Column('handle', sa.String(length=32), nullable=True))
    bind = op.get_bind()
    taken: dict[object, set[str]] = {}
    for org_id, handle in bind.execute(sa.text('SELECT org_id, handle FROM users')):
        taken.setdefault(org_id, set()).add(handle)
    teams = bind.execute(sa.text('SELECT id, org_id, name FROM teams ORDER BY id')).all()
    for team_id, org_id, name in teams:
        base = re.sub(r'[^a-z0-9_]+', '-', name.lower()).strip('-')[:28].strip('-')
        if len(base) < 2:
            base = 'team'
        used = taken.setdefault(org_id, set())
        candidate, n = base, 1
        while candidate in used:
            n += 1
            candidate = f'{base}-{n}'
        used.add(candidate)
        bind.execute(
            sa.text('UPDATE teams SET handle = :handle WHERE id = :id'),
            {'handle': candidate, 'id': team_id},
        )
    op.alter_column('teams', 'handle', nullable=False)
    op.create_unique_constraint(op.f('uq_teams_org_id_handle'), 'teams', ['org_id', 'handle'])
    op.execute("INSERT INTO handles (org_id, handle, user_id) SELECT org_id, handle, id FROM users")
    op.execute("INSERT INTO handles (org_id, handle, team_id) SELECT org_id, handle, id FROM teams")
    op.execute(_HANDLES_SYNC)
    for table in ('users', 'teams'):
        op.execute(
            f'CREATE TRIGGER {table}_handle AFTER INSERT OR DELETE OR UPDATE OF handle ON {table} '
            'FOR EACH ROW EXECUTE FUNCTION handles_sync()'
        )
    op.create_table('moment_counts',
    sa.Column('video_id', sa.Uuid(), nullable=False),
    sa.Column('slot', sa.Integer(), nullable=False),
    sa.Column('comments', sa.Integer(), server_default='0', nullable=False),
    sa.Column('replies', sa.Integer(), server_default='0', nullable=False),
    sa.Column('reactions', sa.Integer(), server_default='0', nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'video_id'], ['videos.org_id', 'videos.id'], name='fk_moment_counts_video_id_videos', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_moment_counts_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('video_id', 'slot', name=op.f('pk_moment_counts'))
    )
    op.create_index(op.f('ix_moment_counts_org_id'), 'moment_counts', ['org_id'], unique=False)
    op.execute(_MOMENT_COUNTS)
    op.execute(
        'CREATE TRIGGER comments_moment_counts AFTER INSERT OR DELETE '
        'OR UPDATE OF at_ms, parent_id, deleted_at, hidden_at ON comments '
        'FOR EACH ROW EXECUTE FUNCTION moment_counts_comments()'
    )
    op.execute(
        'CREATE TRIGGER reactions_moment_counts AFTER INSERT OR DELETE OR UPDATE OF at_ms '
        'ON reactions FOR EACH ROW EXECUTE FUNCTION moment_counts_reactions()'
    )
    # Items folded into their push window's summary, until it goes (a constant default: the
    # column is added without rewriting the table).
    op.add_column('notifications', sa.Column('folded', sa.Boolean(), server_default='false', nullable=False))
    op.create_index('ix_notifications_folded', 'notifications', ['user_id', 'id'], postgresql_where=sa.text('folded'))
    # The inbox items about one comment, redacted when it is deleted or hidden.
    op.create_index(
        'ix_notifications_comment_id', 'notifications', [sa.text("(data ->> 'comment_id')")],
        postgresql_where=sa.text("data ? 'comment_id'"),
    )
    # Comments join delta sync (migration 0013's marks).
    op.execute(
        'CREATE TRIGGER comments_mark_change BEFORE INSERT OR UPDATE ON comments '
        'FOR EACH ROW EXECUTE FUNCTION sync_mark_change()'
    )
    op.add_column('videos', sa.Column('kind', sa.Enum('video', 'question', name='video_kind', native_enum=False, create_constraint=True, length=16), server_default='video', nullable=False))
    op.add_column('videos', sa.Column('needed_by', sa.DateTime(timezone=True), nullable=True))
    op.add_column('videos', sa.Column('answers_video_id', sa.Uuid(), nullable=True))
    op.add_column('videos', sa.Column('accepted_comment_id', sa.Uuid(), nullable=True))
    op.add_column('videos', sa.Column('accepted_video_id', sa.Uuid(), nullable=True))
    op.add_column('videos', sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('videos', sa.Column('hidden_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('videos', sa.Column('hidden_reason', sa.String(length=500), nullable=True))
    op.create_index('ix_videos_answers_video_id', 'videos', ['answers_video_id'], unique=False, postgresql_where=sa.text('answers_video_id IS NOT NULL'))
    op.create_foreign_key('fk_videos_answers_video_id_videos', 'videos', 'videos', ['org_id', 'answers_video_id'], ['org_id', 'id'], ondelete='SET NULL (answers_video_id)')
    op.create_foreign_key('fk_videos_accepted_video_id_videos', 'videos', 'videos', ['org_id', 'accepted_video_id'], ['org_id', 'id'], ondelete='SET NULL (accepted_video_id)')
    op.create_foreign_key('fk_videos_accepted_comment_id_comments', 'videos', 'comments', ['org_id', 'accepted_comment_id'], ['org_id', 'id'], ondelete='SET NULL (accepted_comment_id)')


def downgrade() -> None:
    op.drop_constraint('fk_videos_accepted_comment_id_comments', 'videos', type_='foreignkey')
    op.drop_constraint('fk_videos_accepted_video_id_videos', 'videos', type_='foreignkey')
    op.drop_constraint('fk_videos_answers_video_id_videos', 'videos', type_='foreignkey')
    op.drop_index('ix_videos_answers_video_id', table_name='videos', postgresql_where=sa.text('answers_video_id IS NOT NULL'))
    op.drop_column('videos', 'hidden_reason')
    op.drop_column('videos', 'hidden_at')
    op.drop_column('videos', 'answered_at')
    op.drop_column('videos', 'accepted_video_id')
    op.drop_column('videos', 'accepted_comment_id')
    op.drop_column('videos', 'answers_video_id')
    op.drop_column('videos', 'needed_by')
    op.drop_column('videos', 'kind')
    op.drop_index('ix_notifications_comment_id', table_name='notifications')
    op.drop_index('ix_notifications_folded', table_name='notifications')
    op.drop_column('notifications', 'folded')
    op.execute('DROP TRIGGER comments_mark_change ON comments')
    op.execute('DROP TRIGGER comments_moment_counts ON comments')
    op.execute('DROP TRIGGER reactions_moment_counts ON reactions')
    op.execute('DROP FUNCTION moment_counts_comments()')
    op.execute('DROP FUNCTION moment_counts_reactions()')
    op.execute('DROP FUNCTION moment_counts_add(uuid, uuid, integer, integer, integer, integer)')
    op.drop_index(op.f('ix_moment_counts_org_id'), table_name='moment_counts')
    op.drop_table('moment_counts')
    for table in ('users', 'teams'):
        op.execute(f'DROP TRIGGER {table}_handle ON {table}')
    op.execute('DROP FUNCTION handles_sync()')
    op.drop_constraint(op.f('uq_teams_org_id_handle'), 'teams', type_='unique')
    op.drop_column('teams', 'handle')
    op.drop_index('uq_reports_open_video', table_name='reports', postgresql_where=sa.text("status = 'open' AND video_id IS NOT NULL"))
    op.drop_index('uq_reports_open_comment', table_name='reports', postgresql_where=sa.text("status = 'open' AND comment_id IS NOT NULL"))
    op.drop_index('ix_reports_video_id', table_name='reports')
    op.drop_index('ix_reports_org_id_status_id', table_name='reports')
    op.drop_index(op.f('ix_reports_org_id'), table_name='reports')
    op.drop_index('ix_reports_comment_id', table_name='reports')
    op.drop_table('reports')
    op.drop_index('ix_reactions_video_id_at_ms', table_name='reactions')
    op.drop_index(op.f('ix_reactions_org_id'), table_name='reactions')
    op.drop_table('reactions')
    op.drop_index(op.f('ix_push_windows_video_id'), table_name='push_windows')
    op.drop_index(op.f('ix_push_windows_org_id'), table_name='push_windows')
    op.drop_table('push_windows')
    op.drop_table('handles')
    op.drop_index(op.f('ix_comment_likes_user_id'), table_name='comment_likes')
    op.drop_index(op.f('ix_comment_likes_org_id'), table_name='comment_likes')
    op.drop_table('comment_likes')
    op.drop_index('ix_audit_log_org_id_id', table_name='audit_log')
    op.drop_index(op.f('ix_audit_log_org_id'), table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_index(op.f('ix_answer_votes_user_id'), table_name='answer_votes')
    op.drop_index(op.f('ix_answer_votes_org_id'), table_name='answer_votes')
    op.drop_table('answer_votes')
    op.drop_index('ix_comments_video_id_at_ms', table_name='comments')
    op.drop_index('ix_comments_threads_timeline', table_name='comments', postgresql_where='parent_id IS NULL')
    op.drop_index('ix_comments_threads_newest', table_name='comments', postgresql_where='parent_id IS NULL')
    op.drop_index('ix_comments_parent_id_id', table_name='comments')
    op.drop_index('ix_comments_org_id_change_xid', table_name='comments')
    op.drop_index('ix_comments_org_id_change_seq', table_name='comments')
    op.drop_index(op.f('ix_comments_org_id'), table_name='comments')
    op.drop_table('comments')
