"""xAPI: the organisation's learning record store and the statements sent to it

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-03

`xapi_lrs` is an organisation's LRS (endpoint, credentials, delivery state); `xapi_statements`
the statements recorded for it, keyed by their natural key, sent in batches by workers.

Assignments and comments are written by set-wise SQL in many places, so their statements are
recorded by triggers, in the statement that changes them, and only for an organisation whose
LRS is on (see fieldcast/xapi/recording.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0029'
down_revision: str | None = '0028'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ENABLED = 'EXISTS (SELECT 1 FROM xapi_lrs l WHERE l.org_id = {org} AND l.enabled)'

TRIGGERS = (
    # A person's row of an assignment made (an audience fanned out): `assigned`.
    (
        'xapi_assignees_assigned',
        f"""
        CREATE FUNCTION xapi_assignees_assigned() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO xapi_statements
                (org_id, key, verb, user_id, subject_id, occurred_at, data)
            SELECT a.org_id, 'assignment:' || a.assignment_id || ':' || a.user_id || ':' || 'assigned',
                   'assignment.assigned', a.user_id, a.assignment_id, a.assigned_at,
                   jsonb_build_object('due_at', a.due_at)
            FROM added a
            WHERE {_ENABLED.format(org='a.org_id')}
            ON CONFLICT DO NOTHING;
            RETURN NULL;
        END $$
        """,
        'CREATE TRIGGER xapi_assignees_assigned AFTER INSERT ON assignees '
        'REFERENCING NEW TABLE AS added '
        'FOR EACH STATEMENT EXECUTE FUNCTION xapi_assignees_assigned()',
        'assignees',
    ),
    # A person's part completed (their progress reached the threshold): `completed`.
    (
        'xapi_assignees_completed',
        f"""
        CREATE FUNCTION xapi_assignees_completed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO xapi_statements
                (org_id, key, verb, user_id, subject_id, occurred_at, data)
            SELECT NEW.org_id,
                   'assignment:' || NEW.assignment_id || ':' || NEW.user_id || ':' || 'completed',
                   'assignment.completed', NEW.user_id, NEW.assignment_id,
                   coalesce(NEW.completed_at, now()), '{{}}'::jsonb
            WHERE {_ENABLED.format(org='NEW.org_id')}
            ON CONFLICT DO NOTHING;
            RETURN NULL;
        END $$
        """,
        'CREATE TRIGGER xapi_assignees_completed AFTER UPDATE OF state ON assignees '
        "FOR EACH ROW WHEN (NEW.state = 'completed' AND OLD.state IS DISTINCT FROM NEW.state) "
        'EXECUTE FUNCTION xapi_assignees_completed()',
        'assignees',
    ),
    # A person declined an assignment: `declined`, with their reason.
    (
        'xapi_assignment_requests_declined',
        f"""
        CREATE FUNCTION xapi_assignment_requests_declined() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO xapi_statements
                (org_id, key, verb, user_id, subject_id, occurred_at, data)
            SELECT NEW.org_id,
                   'assignment:' || NEW.assignment_id || ':' || NEW.user_id || ':' || 'declined:'
                       || NEW.id,
                   'assignment.declined', NEW.user_id, NEW.assignment_id, NEW.created_at,
                   jsonb_build_object('reason', NEW.reason)
            WHERE {_ENABLED.format(org='NEW.org_id')}
            ON CONFLICT DO NOTHING;
            RETURN NULL;
        END $$
        """,
        'CREATE TRIGGER xapi_assignment_requests_declined AFTER INSERT ON assignment_requests '
        "FOR EACH ROW WHEN (NEW.kind = 'decline') "
        'EXECUTE FUNCTION xapi_assignment_requests_declined()',
        'assignment_requests',
    ),
    # A comment or a reply: `commented`, at its time in the video.
    (
        'xapi_comments_commented',
        f"""
        CREATE FUNCTION xapi_comments_commented() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO xapi_statements
                (org_id, key, verb, user_id, video_id, subject_id, occurred_at, data)
            SELECT NEW.org_id, 'comment:' || NEW.id || ':' || 'commented', 'comment.commented',
                   NEW.author_id, NEW.video_id, NEW.id, NEW.created_at,
                   jsonb_build_object('at_ms', NEW.at_ms, 'end_ms', NEW.end_ms)
            WHERE {_ENABLED.format(org='NEW.org_id')}
            ON CONFLICT DO NOTHING;
            RETURN NULL;
        END $$
        """,
        'CREATE TRIGGER xapi_comments_commented AFTER INSERT ON comments '
        'FOR EACH ROW EXECUTE FUNCTION xapi_comments_commented()',
        'comments',
    ),
)


def upgrade() -> None:
    op.create_table('xapi_lrs',
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('endpoint', sa.String(length=2048), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('secret', sa.String(length=255), nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default='true', nullable=False),
    sa.Column('actor_format', sa.Enum('account', 'mbox_sha1sum', name='xapi_actor_format', native_enum=False, create_constraint=True, length=16), server_default='account', nullable=False),
    sa.Column('account_home_page', sa.String(length=2048), nullable=True),
    sa.Column('failures', sa.Integer(), server_default='0', nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_xapi_lrs_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', name=op.f('pk_xapi_lrs'))
    )
    op.create_table('xapi_statements',
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('verb', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('video_id', sa.Uuid(), nullable=True),
    sa.Column('view_id', sa.Uuid(), nullable=True),
    sa.Column('subject_id', sa.Uuid(), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_xapi_statements_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'key', name=op.f('pk_xapi_statements'))
    )
    op.create_index('ix_xapi_statements_created_at', 'xapi_statements', ['created_at'], unique=False)
    op.create_index('ix_xapi_statements_unsent', 'xapi_statements', ['org_id', 'created_at'], unique=False, postgresql_where='sent_at IS NULL')
    for _name, function, trigger, _table in TRIGGERS:
        op.execute(function)
        op.execute(trigger)


def downgrade() -> None:
    for name, _function, _trigger, table in TRIGGERS:
        op.execute(f'DROP TRIGGER IF EXISTS {name} ON {table}')
        op.execute(f'DROP FUNCTION IF EXISTS {name}()')
    op.drop_index('ix_xapi_statements_unsent', table_name='xapi_statements', postgresql_where='sent_at IS NULL')
    op.drop_index('ix_xapi_statements_created_at', table_name='xapi_statements')
    op.drop_table('xapi_statements')
    op.drop_table('xapi_lrs')
