"""BI export: change marks on the exported facts, and read-only views of them for a BI tool

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0031'
down_revision: str | None = '0030'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The facts' tables that carry no change marks yet get delta sync's (migration 0013): every
# insert and update stamps the next value of `sync_change_seq` and the writing transaction's
# id, which an export's cursor compares with (fieldcast/exports/cursor.py). No index on them:
# an index on a column every update changes would make each progress report a non-HOT update
# writing every index of `views` and `video_progress`; an incremental export scans the
# organisation's rows instead, which it does at most every few minutes.
MARKED = (
    'users',
    'teams',
    'team_memberships',
    'views',
    'video_progress',
    'assignments',
    'assignees',
    'reactions',
)

# The views a BI tool reads, one per fact, each with `org_id` so a role can be restricted to
# one organisation (docs/bi.md). No secret is in them: no password or token hash, no email
# of an erased person (nor their directory fields), no body of a deleted or hidden comment.
BI_VIEWS = {
    'people': """
        SELECT id, org_id, display_name, handle,
               CASE WHEN deleted_at IS NULL THEN email END AS email,
               role, manager_id, is_active, external_id,
               CASE WHEN deleted_at IS NULL THEN department END AS department,
               CASE WHEN deleted_at IS NULL THEN employee_number END AS employee_number,
               time_zone, last_login_at, created_at, updated_at, deprovisioned_at, deleted_at
          FROM public.users
    """,
    'teams': """
        SELECT id, org_id, name, handle, description, parent_id, external_id,
               created_at, updated_at
          FROM public.teams
    """,
    'team_members': """
        SELECT team_id, user_id, org_id, role, created_at
          FROM public.team_memberships
    """,
    'videos': """
        SELECT id, org_id, owner_id, title, kind, status, duration_ms, deal_id,
               answers_video_id, created_at, updated_at, playable_at, ready_at, archived_at,
               deleted_at
          FROM public.videos
    """,
    'views': """
        SELECT id, org_id, video_id, user_id, session_id, start_ms, end_ms,
               played::text AS played, played_ms, position_ms, reports, started_at,
               last_reported_at, completed_at, device_started_at, device_last_at,
               device_completed_at
          FROM public.views
    """,
    'progress': """
        SELECT user_id, video_id, org_id, played::text AS played, played_ms, duration_ms,
               first_played_at, completed_at, updated_at
          FROM public.video_progress
    """,
    'assignments': """
        SELECT id, org_id, assigned_by, video_id, start_ms, end_ms, collection_id, message,
               due_at, threshold_pct, person_count, rule_id, round, created_at, published_at,
               withdrawn_at
          FROM public.assignments
    """,
    'assignees': """
        SELECT assignment_id, user_id, org_id, state, due_at, played_ms, total_ms,
               assigned_at, notified_at, started_at, completed_at, excused_at, excused_by
          FROM public.assignees
    """,
    'shares': """
        SELECT id, org_id, video_id, sender_id, message, recipient_count, created_at,
               released_at, recalled_at
          FROM public.shares
    """,
    'share_recipients': """
        SELECT share_id, user_id, org_id, video_id, state, failure_reason, queued_at,
               sent_at, delivered_at, opened_at, watched_at, failed_at
          FROM public.share_recipients
    """,
    'comments': """
        SELECT id, org_id, video_id, author_id, parent_id, deal_id, at_ms, end_ms,
               CASE WHEN deleted_at IS NULL AND hidden_at IS NULL THEN body END AS body,
               reply_count, like_count, created_at, updated_at, edited_at, deleted_at,
               resolved_at, hidden_at
          FROM public.comments
    """,
    'reactions': """
        SELECT id, org_id, video_id, user_id, emoji, at_ms, created_at
          FROM public.reactions
    """,
}


def upgrade() -> None:
    for table in MARKED:
        # Nullable without a default: added without rewriting the table. Rows written before
        # this migration carry NULL and count as older than any export cursor.
        op.add_column(table, sa.Column('change_seq', sa.BigInteger(), nullable=True))
        op.add_column(table, sa.Column('change_xid', sa.BigInteger(), nullable=True))
        op.execute(
            f'CREATE TRIGGER {table}_mark_change BEFORE INSERT OR UPDATE ON {table} '
            'FOR EACH ROW EXECUTE FUNCTION sync_mark_change()'
        )
    op.execute('CREATE SCHEMA bi')
    op.execute(
        "COMMENT ON SCHEMA bi IS 'Read-only views of the facts for BI tools: one per fact, "
        "each with org_id; no secrets. See docs/bi.md.'"
    )
    for name, query in BI_VIEWS.items():
        # security_barrier: a row-level predicate a role adds on top (docs/bi.md) is applied
        # before any function of the BI tool's query sees a row.
        op.execute(f'CREATE VIEW bi.{name} WITH (security_barrier) AS {query}')


def downgrade() -> None:
    # (CASCADE: with the per-organisation views an operator made over them, docs/bi.md.)
    op.execute('DROP SCHEMA bi CASCADE')
    for table in MARKED:
        op.execute(f'DROP TRIGGER {table}_mark_change ON {table}')
        op.drop_column(table, 'change_xid')
        op.drop_column(table, 'change_seq')
