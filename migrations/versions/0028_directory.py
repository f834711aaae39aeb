"""SCIM provisioning: directory fields of people and teams, per-organisation SCIM tokens

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-03

People gain what the directory says of them (user name, name parts, and the enterprise
extension's department and employee number) and when it deleted them; an
organisation's identity provider provisions with a bearer token of its own, one live at a time.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0028'
down_revision: str | None = '0027'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('users', sa.Column('user_name', sa.String(length=255), nullable=True))
    op.add_column('users', sa.Column('given_name', sa.String(length=120), nullable=True))
    op.add_column('users', sa.Column('family_name', sa.String(length=120), nullable=True))
    op.add_column('users', sa.Column('department', sa.String(length=255), nullable=True))
    op.add_column('users', sa.Column('employee_number', sa.String(length=64), nullable=True))
    op.add_column('users', sa.Column('deprovisioned_at', sa.DateTime(timezone=True), nullable=True))
    op.create_index('uq_users_org_id_user_name', 'users', ['org_id', 'user_name'], unique=True, postgresql_where='user_name IS NOT NULL')
    op.create_table('scim_tokens',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['org_id', 'created_by_id'], ['users.org_id', 'users.id'], name='fk_scim_tokens_created_by_id_users', ondelete='SET NULL (created_by_id)'),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_scim_tokens_org_id_organisations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scim_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_scim_tokens_token_hash'))
    )
    op.create_index(op.f('ix_scim_tokens_org_id'), 'scim_tokens', ['org_id'], unique=False)
    op.create_index('uq_scim_tokens_org_id_live', 'scim_tokens', ['org_id'], unique=True, postgresql_where=sa.text('revoked_at IS NULL'))


def downgrade() -> None:
    op.drop_index('uq_scim_tokens_org_id_live', table_name='scim_tokens', postgresql_where=sa.text('revoked_at IS NULL'))
    op.drop_index(op.f('ix_scim_tokens_org_id'), table_name='scim_tokens')
    op.drop_table('scim_tokens')
    op.drop_index('uq_users_org_id_user_name', table_name='users', postgresql_where='user_name IS NOT NULL')
    op.drop_column('users', 'deprovisioned_at')
    op.drop_column('users', 'employee_number')
    op.drop_column('users', 'department')
    op.drop_column('users', 'family_name')
    op.drop_column('users', 'given_name')
    op.drop_column('users', 'user_name')
