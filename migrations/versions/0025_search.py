"""search: text search configurations, a search document per video, saved searches

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-04

Every organisation searches in one language (`organisations.search_language`); each language
has a text search configuration `fieldcast_<code>` that stems its words and drops accents
(unaccent), and `fieldcast_simple` is the fallback that only folds case and accents. Existing
videos get a document each, left to the indexing worker to build (`indexed_at` is null).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0025'
down_revision: str | None = '0024'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Code -> PostgreSQL's built-in configuration whose stemmer it uses (see fieldcast.search.language).
LANGUAGES = {
    'simple': 'simple',
    'da': 'danish',
    'de': 'german',
    'en': 'english',
    'es': 'spanish',
    'fi': 'finnish',
    'fr': 'french',
    'it': 'italian',
    'nl': 'dutch',
    'no': 'norwegian',
    'pt': 'portuguese',
    'sv': 'swedish',
}


# The text search configuration of an organisation (fieldcast.search.language.config_for).
_SEARCH_CONFIG = """
    CREATE FUNCTION search_config(p_org uuid) RETURNS regconfig LANGUAGE sql STABLE AS $$
        SELECT ('fieldcast_' || CASE WHEN code = ANY(%s) THEN code ELSE 'simple' END)::regconfig
        FROM (SELECT split_part(lower(search_language), '-', 1) AS code
              FROM organisations WHERE id = p_org) o
    $$
"""
# A comment's words, stemmed in its organisation's language: the moments search shows are
# found among a video's comments without parsing them at query time.
_COMMENTS_SEARCH_TSV = """
    CREATE FUNCTION comments_search_tsv() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.search_tsv := to_tsvector(search_config(NEW.org_id), NEW.body);
        RETURN NEW;
    END
    $$
"""


def upgrade() -> None:
    op.execute('CREATE EXTENSION IF NOT EXISTS unaccent')
    op.execute('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    for code, builtin in LANGUAGES.items():
        name = f'fieldcast_{code}'
        op.execute(f'CREATE TEXT SEARCH CONFIGURATION {name} (COPY = {builtin})')
        dictionary = 'simple' if builtin == 'simple' else f'{builtin}_stem'
        op.execute(
            f'ALTER TEXT SEARCH CONFIGURATION {name} ALTER MAPPING FOR'
            f' hword, hword_part, word WITH unaccent, {dictionary}'
        )

    op.create_index(
        'ix_users_display_name_trgm', 'users', ['display_name'],
        postgresql_using='gin', postgresql_ops={'display_name': 'gin_trgm_ops'},
    )
    op.add_column(
        'organisations',
        sa.Column('search_language', sa.String(length=8), server_default='en', nullable=False),
    )
    codes = ", ".join(f"'{code}'" for code in LANGUAGES if code != 'simple')
    op.execute(_SEARCH_CONFIG % f"ARRAY[{codes}]")
    op.add_column('comments', sa.Column('search_tsv', postgresql.TSVECTOR(), nullable=True))
    # Delta sync marks a comment changed on insert, and on an update unless the update only
    # stems its words again (a change of search language, this migration's backfill): apps
    # need not fetch every comment again for that. The WHEN clause sees the row before
    # comments_search_tsv (which runs after it, by name) sets the new words of an edit.
    op.execute('DROP TRIGGER comments_mark_change ON comments')
    op.execute(
        'CREATE TRIGGER comments_mark_change BEFORE INSERT ON comments '
        'FOR EACH ROW EXECUTE FUNCTION sync_mark_change()'
    )
    op.execute(
        'CREATE TRIGGER comments_mark_update BEFORE UPDATE ON comments FOR EACH ROW '
        'WHEN (OLD.search_tsv IS NOT DISTINCT FROM NEW.search_tsv) '
        'EXECUTE FUNCTION sync_mark_change()'
    )
    op.execute(_COMMENTS_SEARCH_TSV)
    op.execute(
        'CREATE TRIGGER comments_search_tsv BEFORE INSERT OR UPDATE OF body ON comments'
        ' FOR EACH ROW EXECUTE FUNCTION comments_search_tsv()'
    )
    op.execute('UPDATE comments SET search_tsv = to_tsvector(search_config(org_id), body)')

    op.create_table(
        'search_documents',
        sa.Column('video_id', sa.Uuid(), nullable=False),
        sa.Column('owner_id', sa.Uuid(), nullable=False),
        sa.Column('title', sa.String(length=200), server_default='', nullable=False),
        sa.Column('attrs', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
        sa.Column('tsv', postgresql.TSVECTOR(), nullable=True),
        sa.Column('config', sa.String(length=32), server_default='fieldcast_simple', nullable=False),
        sa.Column('engagement', sa.Integer(), server_default='0', nullable=False),
        sa.Column('rank_key', sa.Float(), server_default='0', nullable=False),
        sa.Column('requested_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('indexed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('engagement_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('org_id', sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_search_documents_org_id_organisations'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['org_id', 'video_id'], ['videos.org_id', 'videos.id'], name='fk_search_documents_video_id_videos', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('video_id', name=op.f('pk_search_documents')),
    )
    op.create_index(op.f('ix_search_documents_org_id'), 'search_documents', ['org_id'])
    op.create_index('ix_search_documents_tsv', 'search_documents', ['tsv'], postgresql_using='gin')
    op.create_index('ix_search_documents_org_id_rank_key', 'search_documents', ['org_id', sa.text('rank_key DESC')])
    op.create_index(
        'ix_search_documents_title_trgm', 'search_documents', ['title'],
        postgresql_using='gin', postgresql_ops={'title': 'gin_trgm_ops'},
    )
    op.create_index(
        'ix_search_documents_attrs', 'search_documents', ['attrs'],
        postgresql_using='gin', postgresql_ops={'attrs': 'jsonb_path_ops'},
    )
    op.create_index(
        'ix_search_documents_stale', 'search_documents', ['requested_at'],
        postgresql_where=sa.text('indexed_at IS NULL OR requested_at > indexed_at'),
    )

    op.create_table(
        'saved_searches',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('user_id', sa.Uuid(), nullable=False),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('query', sa.String(length=200), server_default='', nullable=False),
        sa.Column('filters', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
        sa.Column('notify', sa.Boolean(), server_default='true', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('checked_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('last_notified_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('org_id', sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_saved_searches_org_id_organisations'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['org_id', 'user_id'], ['users.org_id', 'users.id'], name='fk_saved_searches_user_id_users', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_searches')),
    )
    op.create_index(op.f('ix_saved_searches_org_id'), 'saved_searches', ['org_id'])
    op.create_index('ix_saved_searches_user_id_id', 'saved_searches', ['user_id', 'id'])
    op.create_index('ix_saved_searches_checked_at', 'saved_searches', ['checked_at'])

    op.create_table(
        'saved_search_hits',
        sa.Column('saved_search_id', sa.Uuid(), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('org_id', sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_saved_search_hits_org_id_organisations'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['saved_search_id'], ['saved_searches.id'], name='fk_saved_search_hits_saved_search_id_saved_searches', ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('saved_search_id', 'key', name=op.f('pk_saved_search_hits')),
    )
    op.create_index(op.f('ix_saved_search_hits_org_id'), 'saved_search_hits', ['org_id'])
    op.create_index('ix_saved_search_hits_created_at', 'saved_search_hits', ['created_at'])
    # What a person received is their recipient rows less those of the few recalled shares.
    op.create_index(
        'ix_shares_recalled_id', 'shares', ['id'], postgresql_where=sa.text('recalled_at IS NOT NULL')
    )

    # Every video that is not deleted gets a document for the worker to build.
    op.execute(
        """
        INSERT INTO search_documents (org_id, video_id, owner_id, title, attrs)
        SELECT org_id, id, owner_id, title, deal_attributes
        FROM videos WHERE deleted_at IS NULL
        """
    )


def downgrade() -> None:
    op.drop_index('ix_shares_recalled_id', table_name='shares')
    op.drop_table('saved_search_hits')
    op.drop_table('saved_searches')
    op.drop_table('search_documents')
    op.execute('DROP TRIGGER comments_search_tsv ON comments')
    op.execute('DROP TRIGGER comments_mark_update ON comments')
    op.execute('DROP TRIGGER comments_mark_change ON comments')
    op.execute(
        'CREATE TRIGGER comments_mark_change BEFORE INSERT OR UPDATE ON comments '
        'FOR EACH ROW EXECUTE FUNCTION sync_mark_change()'
    )
    op.execute('DROP FUNCTION comments_search_tsv()')
    op.drop_column('comments', 'search_tsv')
    op.execute('DROP FUNCTION search_config(uuid)')
    op.drop_column('organisations', 'search_language')
    op.drop_index('ix_users_display_name_trgm', table_name='users')
    for code in LANGUAGES:
        op.execute(f'DROP TEXT SEARCH CONFIGURATION IF EXISTS fieldcast_{code}')
