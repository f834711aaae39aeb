"""reports name their video: a report of a comment keeps the comment's video too

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03

0021 allowed a report to name a comment or a video, never both; the moderation queue shows a
reported comment with its video, so every report now names its video, and a report of a
comment names the comment as well. One open report per person and video counts only reports
of the video itself.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0022'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        UPDATE reports AS r SET video_id = c.video_id
          FROM comments AS c
         WHERE r.video_id IS NULL AND c.org_id = r.org_id AND c.id = r.comment_id
        """
    )
    op.drop_constraint(op.f('ck_reports_one_reported_object'), 'reports', type_='check')
    op.alter_column('reports', 'video_id', existing_type=sa.Uuid(), nullable=False)
    op.drop_index(
        'uq_reports_open_video',
        table_name='reports',
        postgresql_where=sa.text("status = 'open' AND video_id IS NOT NULL"),
    )
    op.create_index(
        'uq_reports_open_video',
        'reports',
        ['reporter_id', 'video_id'],
        unique=True,
        postgresql_where=sa.text("status = 'open' AND comment_id IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        'uq_reports_open_video',
        table_name='reports',
        postgresql_where=sa.text("status = 'open' AND comment_id IS NULL"),
    )
    op.alter_column('reports', 'video_id', existing_type=sa.Uuid(), nullable=True)
    op.execute("UPDATE reports SET video_id = NULL WHERE comment_id IS NOT NULL")
    op.create_check_constraint(
        op.f('ck_reports_one_reported_object'),
        'reports',
        '(comment_id IS NULL) <> (video_id IS NULL)',
    )
    op.create_index(
        'uq_reports_open_video',
        'reports',
        ['reporter_id', 'video_id'],
        unique=True,
        postgresql_where=sa.text("status = 'open' AND video_id IS NOT NULL"),
    )
