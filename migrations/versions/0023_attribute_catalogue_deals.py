"""attribute catalogue and deals: each organisation's catalogue, deals, videos and comments
naming a deal

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04

Every organisation gets the default catalogue (stage, industry, region, competitors, products,
deal_size, outcome). The videos' free-form `deal_attributes` are rewritten in the catalogue's
form and nothing of them is lost: a name is read as its slug ("Deal size" -> deal_size); a name
the defaults lack becomes a text attribute of its organisation (labelled as it was written); a
value a default choice list lacks joins the list (competitors and products are open lists:
any value, learned in its first spelling); a deal size that reads as a number becomes
one, and one that does not is kept as text under `deal_size_text`.

The normalising below is a copy of fieldcast.deals.catalogue as it is at this revision, so
that this migration means the same whatever the code becomes.
"""

import json
import re
import uuid
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0023'
down_revision: str | None = '0022'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DEFAULTS: list[tuple[str, str, str, list[str], list[dict[str, Any]]]] = [
    (
        'stage',
        'Stage',
        'single_choice',
        ['prospecting', 'discovery', 'qualification', 'demo', 'proposal', 'negotiation', 'closed'],
        [],
    ),
    (
        'industry',
        'Industry',
        'single_choice',
        [
            'software', 'financial services', 'banking', 'insurance', 'healthcare',
            'life sciences', 'retail', 'consumer goods', 'manufacturing', 'energy',
            'telecommunications', 'media', 'transportation', 'professional services',
            'public sector', 'education', 'real estate', 'hospitality',
        ],
        [],
    ),
    (
        'region',
        'Region',
        'single_choice',
        ['north america', 'latin america', 'europe', 'middle east', 'africa', 'asia pacific'],
        [],
    ),
    ('competitors', 'Competitors', 'multiple_choice', [], []),
    ('products', 'Products', 'multiple_choice', [], []),
    (
        'deal_size',
        'Deal size',
        'number',
        [],
        [
            {'label': '<10k', 'max': 10000},
            {'label': '10k-50k', 'min': 10000, 'max': 50000},
            {'label': '50k-250k', 'min': 50000, 'max': 250000},
            {'label': '250k+', 'min': 250000},
        ],
    ),
    ('outcome', 'Outcome', 'single_choice', ['open', 'won', 'lost'], []),
]

_definitions = sa.table(
    'attribute_definitions',
    sa.column('id', sa.Uuid()),
    sa.column('org_id', sa.Uuid()),
    sa.column('name', sa.String()),
    sa.column('label', sa.String()),
    sa.column('type', sa.String()),
    sa.column('choices', postgresql.JSONB()),
    sa.column('choices_open', sa.Boolean()),
    sa.column('bands', postgresql.JSONB()),
    sa.column('position', sa.Integer()),
)
_OPEN = {'competitors', 'products'}


def _slug(name: str) -> str:
    text = re.sub(r'[^a-z0-9]+', '_', ' '.join(str(name).split()).casefold()).strip('_')
    if not text:
        return ''
    if not text[0].isalpha() or not text.isascii():
        text = 'a_' + text
    text = re.sub(r'[^a-z0-9_]', '', text)
    return text[:63].rstrip('_')


def _text(value: Any) -> str:
    if isinstance(value, str):
        return ' '.join(value.split())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


_SCALE = {'k': 1_000, 'm': 1_000_000, 'b': 1_000_000_000}
_NUMBER = re.compile(r'^[-+]?(\d+(\.\d*)?|\.\d+)([kmb])?$')


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = Decimal(str(value))
    elif isinstance(value, str):
        text = re.sub(r'[\s,_$€£¥]', '', value).casefold()
        match = _NUMBER.match(text)
        if not match:
            return None
        try:
            number = Decimal(text.rstrip('kmb')) * _SCALE.get(match.group(3) or '', 1)
        except InvalidOperation:
            return None
    else:
        return None
    if not number.is_finite() or abs(number) >= Decimal(10) ** 15:
        return None
    return int(number) if number == number.to_integral_value() else float(number)


class _Catalogue:
    """One organisation's catalogue while its videos are rewritten."""

    def __init__(self) -> None:
        self.types = {name: kind for name, _, kind, _, _ in _DEFAULTS}
        self.choices = {name: list(choices) for name, _, _, choices, _ in _DEFAULTS}
        self.new: dict[str, str] = {}  # a text attribute made for the organisation: its label

    def _choice(self, name: str, value: Any) -> str:
        text = _text(value)[:200]
        known = {c.casefold(): c for c in self.choices[name]}
        if text.casefold() in known:
            return known[text.casefold()]
        self.choices[name].append(text)
        return text

    def _text_attribute(self, name: str, label: str) -> None:
        if name not in self.types:
            self.types[name] = 'text'
            self.new[name] = (' '.join(label.split()) or name)[:120]

    def rewrite(self, attributes: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}

        def put(name: str, value: Any) -> None:
            base, n = name, 2
            while name in result:  # two spellings of one name keep both values
                name = f'{base[:60]}_{n}'
                n += 1
                self._text_attribute(name, name)
            result[name] = value

        for raw_name, value in attributes.items():
            if value is None:
                continue
            name = _slug(raw_name) or 'attribute'
            kind = self.types.get(name)
            if kind is None:
                self._text_attribute(name, str(raw_name))
                kind = 'text'
            if kind == 'single_choice':
                put(name, self._choice(name, value))
            elif kind == 'multiple_choice':
                items = value if isinstance(value, list) else [value]
                chosen = {self._choice(name, item) for item in items}
                put(name, sorted(chosen, key=lambda c: (c.casefold(), c)))
            elif kind == 'number':
                number = _number(value)
                if number is None:
                    self._text_attribute(f'{name}_text', f'{name.replace("_", " ")} (as written)')
                    put(f'{name}_text', _text(value)[:200])
                else:
                    put(name, number)
            else:
                put(name, _text(value))
        return result


def upgrade() -> None:
    op.add_column(
        'organisations',
        sa.Column('catalogue_strict', sa.Boolean(), server_default='false', nullable=False),
    )
    op.create_table(
        'attribute_definitions',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('name', sa.String(length=63), nullable=False),
        sa.Column('label', sa.String(length=120), nullable=False),
        sa.Column(
            'type',
            sa.Enum(
                'single_choice',
                'multiple_choice',
                'number',
                'text',
                'date',
                name='attribute_type',
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column('choices', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
        sa.Column('choices_open', sa.Boolean(), server_default='false', nullable=False),
        sa.Column('bands', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
        sa.Column('position', sa.Integer(), server_default='0', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('org_id', sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "name ~ '^[a-z][a-z0-9_]{0,62}$'", name=op.f('ck_attribute_definitions_name_is_a_slug')
        ),
        sa.ForeignKeyConstraint(
            ['org_id'],
            ['organisations.id'],
            name=op.f('fk_attribute_definitions_org_id_organisations'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_attribute_definitions')),
        sa.UniqueConstraint('org_id', 'name', name=op.f('uq_attribute_definitions_org_id_name')),
    )
    op.create_index(
        'ix_attribute_definitions_org_id_position',
        'attribute_definitions',
        ['org_id', 'position'],
        unique=False,
    )
    op.create_index(
        op.f('ix_attribute_definitions_org_id'), 'attribute_definitions', ['org_id'], unique=False
    )
    op.create_table(
        'deals',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('source', sa.String(length=64), nullable=False),
        sa.Column('external_id', sa.String(length=255), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('account', sa.String(length=255), server_default='', nullable=False),
        sa.Column('owner_id', sa.Uuid(), nullable=False),
        sa.Column('team_id', sa.Uuid(), nullable=True),
        sa.Column('stage', sa.String(length=200), nullable=True),
        sa.Column('amount', sa.Numeric(precision=18, scale=2), nullable=True),
        sa.Column('currency', sa.String(length=3), nullable=True),
        sa.Column('close_date', sa.Date(), nullable=True),
        sa.Column(
            'outcome',
            sa.Enum(
                'open',
                'won',
                'lost',
                name='deal_outcome',
                native_enum=False,
                create_constraint=True,
                length=8,
            ),
            server_default='open',
            nullable=False,
        ),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('attributes', postgresql.JSONB(astext_type=sa.Text()), server_default='{}', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('org_id', sa.Uuid(), nullable=False),
        sa.CheckConstraint('amount IS NULL OR amount >= 0', name=op.f('ck_deals_amount_not_negative')),
        sa.CheckConstraint(
            "currency IS NULL OR currency ~ '^[A-Z]{3}$'", name=op.f('ck_deals_currency_iso_4217')
        ),
        sa.ForeignKeyConstraint(
            ['org_id', 'owner_id'],
            ['users.org_id', 'users.id'],
            name='fk_deals_owner_id_users',
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['org_id', 'team_id'],
            ['teams.org_id', 'teams.id'],
            name='fk_deals_team_id_teams',
            ondelete='SET NULL (team_id)',
        ),
        sa.ForeignKeyConstraint(
            ['org_id'],
            ['organisations.id'],
            name=op.f('fk_deals_org_id_organisations'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_deals')),
        sa.UniqueConstraint('org_id', 'id', name=op.f('uq_deals_org_id_id')),
        sa.UniqueConstraint(
            'org_id', 'source', 'external_id', name=op.f('uq_deals_org_id_source_external_id')
        ),
    )
    op.create_index(op.f('ix_deals_org_id'), 'deals', ['org_id'], unique=False)
    op.create_index(
        'ix_deals_owner_id_open',
        'deals',
        ['owner_id', 'id'],
        unique=False,
        postgresql_where=sa.text("outcome = 'open'"),
    )
    op.create_index(
        'ix_deals_team_id',
        'deals',
        ['team_id'],
        unique=False,
        postgresql_where=sa.text('team_id IS NOT NULL'),
    )
    op.create_index(
        'ix_deals_attributes',
        'deals',
        ['attributes'],
        unique=False,
        postgresql_using='gin',
        postgresql_ops={'attributes': 'jsonb_path_ops'},
    )
    for table in ('videos', 'comments'):
        op.add_column(table, sa.Column('deal_id', sa.Uuid(), nullable=True))
        op.create_foreign_key(
            f'fk_{table}_deal_id_deals',
            table,
            'deals',
            ['org_id', 'deal_id'],
            ['org_id', 'id'],
            ondelete='SET NULL (deal_id)',
        )
    op.create_index(
        'ix_videos_deal_id',
        'videos',
        ['deal_id'],
        unique=False,
        postgresql_where=sa.text('deal_id IS NOT NULL'),
    )
    _catalogue_from_videos()


def _catalogue_from_videos() -> None:
    connection = op.get_bind()
    org_ids = connection.scalars(sa.text('SELECT id FROM organisations ORDER BY id')).all()
    for org_id in org_ids:
        catalogue = _Catalogue()
        rows = connection.execute(
            sa.text(
                "SELECT id, deal_attributes FROM videos"
                " WHERE org_id = :org AND deal_attributes <> '{}'::jsonb ORDER BY id"
            ),
            {'org': org_id},
        ).all()
        rewritten = [
            {'vid': video_id, 'attrs': json.dumps(catalogue.rewrite(attributes))}
            for video_id, attributes in rows
        ]
        definitions = [
            {
                'id': uuid.uuid4(),
                'org_id': org_id,
                'name': name,
                'label': label,
                'type': kind,
                'choices': catalogue.choices[name] if kind != 'number' else [],
                'choices_open': name in _OPEN,
                'bands': bands,
                'position': position,
            }
            for position, (name, label, kind, _, bands) in enumerate(_DEFAULTS)
        ]
        definitions += [
            {
                'id': uuid.uuid4(),
                'org_id': org_id,
                'name': name,
                'label': label,
                'type': 'text',
                'choices': [],
                'choices_open': False,
                'bands': [],
                'position': len(_DEFAULTS) + offset,
            }
            for offset, (name, label) in enumerate(catalogue.new.items())
        ]
        op.bulk_insert(_definitions, definitions)
        if rewritten:
            connection.execute(
                sa.text(
                    'UPDATE videos SET deal_attributes = CAST(:attrs AS jsonb) WHERE id = :vid'
                ),
                rewritten,
            )


def downgrade() -> None:
    # Back to flat text values: a list as its values joined by commas, a number as text.
    op.execute(
        """
        UPDATE videos SET deal_attributes = (
            SELECT jsonb_object_agg(
                key,
                CASE jsonb_typeof(value)
                    WHEN 'array' THEN to_jsonb(array_to_string(
                        ARRAY(SELECT jsonb_array_elements_text(value)), ', '))
                    ELSE to_jsonb(value #>> '{}')
                END)
            FROM jsonb_each(deal_attributes))
        WHERE deal_attributes <> '{}'::jsonb
        """
    )
    op.drop_index('ix_videos_deal_id', table_name='videos', postgresql_where=sa.text('deal_id IS NOT NULL'))
    for table in ('comments', 'videos'):
        op.drop_constraint(f'fk_{table}_deal_id_deals', table, type_='foreignkey')
        op.drop_column(table, 'deal_id')
    op.drop_index(
        'ix_deals_attributes',
        table_name='deals',
        postgresql_using='gin',
        postgresql_ops={'attributes': 'jsonb_path_ops'},
    )
    op.drop_index('ix_deals_team_id', table_name='deals', postgresql_where=sa.text('team_id IS NOT NULL'))
    op.drop_index('ix_deals_owner_id_open', table_name='deals', postgresql_where=sa.text("outcome = 'open'"))
    op.drop_index(op.f('ix_deals_org_id'), table_name='deals')
    op.drop_table('deals')
    op.drop_index(op.f('ix_attribute_definitions_org_id'), table_name='attribute_definitions')
    op.drop_index('ix_attribute_definitions_org_id_position', table_name='attribute_definitions')
    op.drop_table('attribute_definitions')
    op.drop_column('organisations', 'catalogue_strict')
