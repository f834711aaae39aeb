"""delta sync: change marks, tombstones, the feed's index

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


revision: str = '0013'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The rows delta sync reads changes of. Every insert and update stamps them with the next value
# of one sequence and the writing transaction's id (see fieldcast/sync/changes.py for why both).
MARKED = ('videos', 'shares', 'share_recipients', 'notifications', 'sync_tombstones')


def upgrade() -> None:
    op.execute('CREATE SEQUENCE sync_change_seq')
    op.execute(
        """
        CREATE FUNCTION sync_mark_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.change_seq := nextval('sync_change_seq');
            NEW.change_xid := pg_current_xact_id()::text::bigint;
            RETURN NEW;
        END
        $$
        """
    )
    op.create_table(
        'sync_tombstones',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('org_id', sa.Uuid(), nullable=False),
        sa.Column('user_ids', postgresql.ARRAY(sa.Uuid()), nullable=True),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('object_id', sa.Uuid(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('change_seq', sa.BigInteger(), nullable=True),
        sa.Column('change_xid', sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_tombstones')),
    )
    op.create_index('ix_sync_tombstones_org_id_change_seq', 'sync_tombstones', ['org_id', 'change_seq'])
    op.create_index('ix_sync_tombstones_org_id_change_xid', 'sync_tombstones', ['org_id', 'change_xid'])
    op.create_index('ix_sync_tombstones_created_at', 'sync_tombstones', ['created_at'])
    # Nullable without a default: added without rewriting the tables. Rows written before
    # this migration carry NULL and count as older than any sync token.
    for table in MARKED:
        if table != 'sync_tombstones':
            op.add_column(table, sa.Column('change_seq', sa.BigInteger(), nullable=True))
            op.add_column(table, sa.Column('change_xid', sa.BigInteger(), nullable=True))
        op.execute(
            f'CREATE TRIGGER {table}_mark_change BEFORE INSERT OR UPDATE ON {table} '
            'FOR EACH ROW EXECUTE FUNCTION sync_mark_change()'
        )
    # The changed videos of an organisation since a token.
    op.create_index('ix_videos_org_id_change_seq', 'videos', ['org_id', 'change_seq'])
    op.create_index('ix_videos_org_id_change_xid', 'videos', ['org_id', 'change_xid'])
    # Listings filtered by deal attributes (JSONB containment, `@>`).
    op.create_index(
        'ix_videos_deal_attributes', 'videos', ['deal_attributes'],
        postgresql_using='gin', postgresql_ops={'deal_attributes': 'jsonb_path_ops'},
    )
    # The feed: a person's shares, newest first, a page at a time.
    op.create_index(
        'ix_share_recipients_user_id_share_id', 'share_recipients', ['user_id', 'share_id']
    )
    # An inbox item deleted by any path leaves a tombstone for its person's apps.
    op.execute(
        """
        CREATE FUNCTION sync_notification_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO sync_tombstones (id, org_id, user_ids, kind, object_id, created_at)
            VALUES (gen_random_uuid(), OLD.org_id, ARRAY[OLD.user_id], 'notification', OLD.id,
                    now());
            RETURN OLD;
        END
        $$
        """
    )
    op.execute(
        'CREATE TRIGGER notifications_tombstone AFTER DELETE ON notifications '
        'FOR EACH ROW EXECUTE FUNCTION sync_notification_deleted()'
    )


def downgrade() -> None:
    op.execute('DROP TRIGGER notifications_tombstone ON notifications')
    op.execute('DROP FUNCTION sync_notification_deleted()')
    op.drop_index('ix_share_recipients_user_id_share_id', table_name='share_recipients')
    op.drop_index('ix_videos_deal_attributes', table_name='videos')
    op.drop_index('ix_videos_org_id_change_xid', table_name='videos')
    op.drop_index('ix_videos_org_id_change_seq', table_name='videos')
    for table in MARKED:
        op.execute(f'DROP TRIGGER {table}_mark_change ON {table}')
        if table != 'sync_tombstones':
            op.drop_column(table, 'change_xid')
            op.drop_column(table, 'change_seq')
    op.drop_table('sync_tombstones')
    op.execute('DROP FUNCTION sync_mark_change()')
    op.execute('DROP SEQUENCE sync_change_seq')
